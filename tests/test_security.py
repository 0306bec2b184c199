from __future__ import annotations

import pytest
from pwdlib.hashers.argon2 import Argon2Hasher

from portnet.security import (
    MIN_PASSWORD_LENGTH,
    generate_password,
    hash_password,
    needs_rehash,
    password_problems,
    verify_password,
)


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


def test_generated_passwords_are_strong_and_distinct() -> None:
    passwords = {generate_password() for _ in range(200)}
    assert len(passwords) == 200
    for password in passwords:
        assert len(password) >= 14
        assert any(c.isalpha() for c in password)
        assert any(c.isdigit() for c in password)
        assert any(not c.isalnum() for c in password)
        assert not any(c.isspace() for c in password)
        assert password_problems(password, "admin") == []


def test_generated_password_length_floor() -> None:
    assert len(generate_password(20)) == 20
    with pytest.raises(ValueError):
        generate_password(8)


def test_good_password_has_no_problem() -> None:
    assert password_problems("Casablanca2026", "sataa") == []


def test_short_password() -> None:
    assert password_problems("Abc12345", "sataa") == [
        f"Le mot de passe doit contenir au moins {MIN_PASSWORD_LENGTH} caractères."
    ]


def test_password_needs_a_letter_and_a_digit() -> None:
    assert password_problems("1234567890", "sataa") == ["Le mot de passe doit contenir au moins une lettre."]
    assert password_problems("abcdefghijk", "sataa") == ["Le mot de passe doit contenir au moins un chiffre."]


def test_password_equal_to_username_is_refused_whatever_the_case() -> None:
    problems = password_problems("Finance2026", "finance2026")
    assert problems == ["Le mot de passe ne doit pas être identique au nom d'utilisateur."]


def test_every_problem_is_reported_at_once() -> None:
    assert len(password_problems("", "sataa")) == 3


def test_messages_are_french() -> None:
    for message in password_problems("x", "x"):
        assert message.startswith("Le mot de passe")
