from __future__ import annotations

import pytest
from pwdlib.hashers.argon2 import Argon2Hasher

from portnet.security import (
    MAX_PASSWORD_LENGTH,
    MIN_PASSWORD_LENGTH,
    common_passwords,
    generate_password,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)
from tests.support.passwords import PORTAL as PORTAL_HASHER


@pytest.fixture(scope="module")
def stored() -> str:
    return hash_password("Portnet2026!")


def test_hash_is_argon2id_and_salted(stored: str) -> None:
    assert stored.startswith("$argon2id$")
    assert "Portnet2026!" not in stored
    assert hash_password("Portnet2026!") != stored


def test_verify_accepts_the_password_only(stored: str) -> None:
    assert verify_password("Portnet2026!", stored) is True
    assert verify_password("portnet2026!", stored) is False
    assert verify_password("", stored) is False


@pytest.mark.parametrize(
    "broken",
    [
        "",
        "not a hash",
        "$argon2id$",
        "$argon2id$v=19$m=65536,t=3,p=4$garbage",
        "$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$",
        "$2b$12$abcdefghijklmnopqrstuuJ0rW1vEw2k3yqYcGv8p7aNq9WlZ0x2S",  # bcrypt: not ours
        "\x00\x01",
    ],
)
def test_malformed_hash_is_a_wrong_password_not_an_error(broken: str) -> None:
    assert verify_password("Portnet2026!", broken) is False


def test_none_hash_is_a_wrong_password() -> None:
    assert verify_password("Portnet2026!", None) is False


def test_needs_rehash(stored: str) -> None:
    assert needs_rehash(stored) is False
    weaker = Argon2Hasher(time_cost=1, memory_cost=8192, parallelism=1).hash("Portnet2026!")
    assert verify_password("Portnet2026!", weaker) is True
    assert needs_rehash(weaker) is True
    assert needs_rehash("garbage") is True


def test_the_portals_hashes_cost_64_mib_3_passes_4_lanes() -> None:
    """The suite hashes at argon2's smallest cost (tests/support/passwords.py); the portal at this one."""
    stored = PORTAL_HASHER.hash("Portnet2026!")
    assert stored.startswith("$argon2id$v=19$m=65536,t=3,p=4$")
    assert PORTAL_HASHER.verify("Portnet2026!", stored)
    assert needs_rehash(stored) is True  # the suite's hasher sees other parameters: the mechanism works


def test_generated_passwords_are_strong_and_distinct() -> None:
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) >= 14
        assert not any(c.isspace() for c in password)
        assert password_problems(password, "admin") == []


def test_generated_password_length_floor() -> None:
    assert len(generate_password(20)) == 20
    with pytest.raises(ValueError):
        generate_password(8)


@pytest.mark.parametrize(
    "password",
    [
        "Nouveau-Secret-2027",
        "tigre bleu sous la pluie",  # a passphrase: spaces allowed, no digit or capital needed
        "abcdefghijkz",  # twelve letters, no composition rule
        "Été à Essaouira, 7h",  # any character
    ],
)
def test_accepted_passwords(password: str) -> None:
    assert password_problems(password, "sataa") == []


def test_length_bounds() -> None:
    assert MIN_PASSWORD_LENGTH == 12 and MAX_PASSWORD_LENGTH >= 64
    assert password_problems("Nouveau-2027", "sataa") == []  # exactly 12
    assert password_problems("Nouveau-202", "sataa") == [
        f"Le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères."
    ]
    assert password_problems("Tigre bleu! " * 10 + "abcdefgh", "sataa") == []  # 128
    too_long = password_problems("Tigre bleu! " * 11, "sataa")
    assert too_long == [f"Le mot de passe ne doit pas dépasser {MAX_PASSWORD_LENGTH} caractères."]


def test_no_composition_rule() -> None:
    assert password_problems("la mer est calme ce soir", "sataa") == []
    assert password_problems("7394 1862 0057 3318", "sataa") == []


@pytest.mark.parametrize(
    "password",
    ["qwertyuiop123", "iloveyou1234", "Password2026!", "P@ssw0rd2026!", "Soleil2026!!!", "motdepasse12"],
)
def test_common_passwords_and_padded_common_words_are_refused(password: str) -> None:
    assert password_problems(password, "sataa") == [
        "Ce mot de passe est trop courant (il figure dans les listes de mots de passe les plus utilisés) : "
        "choisissez-en un autre, par exemple une phrase de plusieurs mots."
    ]


def test_common_password_list_is_shipped_and_small() -> None:
    words = common_passwords()
    assert 3000 <= len(words) <= 10000
    assert {"password", "azertyuiop", "123qweasdzxc"} <= words
    assert all(word == word.strip().casefold() for word in words)


@pytest.mark.parametrize(
    "password", ["Portnet2026!", "Portnet2027!", "PORTNET-2026", "Amanty2026!!", "p0rtnet2026!"]
)
def test_demo_password_patterns_are_refused(password: str) -> None:
    assert password_problems(password, "sataa") == [
        "Le mot de passe ne doit pas être un mot du service (PortNet, Amanpay...) complété de chiffres ou "
        "de symboles."
    ]


@pytest.mark.parametrize("password", ["123456789012", "210987654321", "aaaaaaaaaaaaaa", "azertyuiopqs"])
def test_runs_and_repetitions_are_refused(password: str) -> None:
    assert password_problems(password, "sataa") == [
        "Le mot de passe ne doit pas être une suite ou une répétition de caractères."
    ]


@pytest.mark.parametrize(
    ("password", "username"), [("Finance2026xyz", "FINANCE"), ("karim.alaoui!!", "karim")]
)
def test_password_containing_the_username_is_refused(password: str, username: str) -> None:
    assert password_problems(password, username) == [
        "Le mot de passe ne doit pas contenir le nom d'utilisateur."
    ]


def test_messages_are_french() -> None:
    for password in ("x", "Portnet2026!", "password2026", "sataa-sataa-sataa", "1111111111111"):
        for message in password_problems(password, "sataa"):
            assert message.startswith(("Le mot de passe", "Ce mot de passe"))
