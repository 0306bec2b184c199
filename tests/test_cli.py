"""``python -m portnet.cli``: migrate, seed, create-user, reset-password and their error exits."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from portnet import migrate
from portnet.cli import main
from portnet.db import make_engine
from portnet.models import Company, User, UserSession
from portnet.security import password_problems, verify_password
from tests.support.databases import fresh_database_url

PASSWORD_LINE = re.compile(r"Mot de passe provisoire de (\S+) : (\S+)")


@pytest.fixture(scope="module")
def seeded_url() -> Iterator[str]:
    with fresh_database_url() as url:
        assert main(["--database-url", url, "seed"]) == 0
        yield url


@pytest.fixture
def engine(seeded_url: str) -> Iterator[Engine]:
    engine = make_engine(seeded_url)
    try:
        yield engine
    finally:
        engine.dispose()


def _run(url: str, *args: str) -> int:
    return main(["--database-url", url, *args])


def _user(engine: Engine, username: str) -> User | None:
    with Session(engine) as session:
        return session.exec(select(User).where(User.username == username)).first()


def _printed_password(out: str, username: str) -> str:
    matches = PASSWORD_LINE.findall(out)
    assert len(matches) == 1, out
    assert matches[0][0] == username
    return str(matches[0][1])


def test_migrate(capsys: pytest.CaptureFixture[str]) -> None:
    with fresh_database_url() as url:
        assert _run(url, "migrate") == 0
        assert migrate.current_revision(url) == migrate.head_revision()
        assert _run(url, "migrate") == 0
    assert str(migrate.head_revision()) in capsys.readouterr().out


def test_seed_is_idempotent_and_summarised(seeded_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert _run(seeded_url, "seed") == 0
    out = capsys.readouterr().out
    assert re.search(r"invoices\s+\d{4,}\s+\(\+0\)", out), out
    assert "Portnet2026!" in out
    assert "sataa" in out


def test_create_client_user(engine: Engine, seeded_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    code = _run(
        seeded_url,
        "create-user",
        "karim",
        "--role",
        "client",
        "--company",
        "290240",
        "--email",
        "karim@sataa.ma",
        "--full-name",
        "Karim Alaoui",
    )
    assert code == 0
    password = _printed_password(capsys.readouterr().out, "karim")
    assert password_problems(password, "karim") == []
    user = _user(engine, "karim")
    assert user is not None
    assert user.must_change_password is True
    assert user.role == "client"
    assert user.email == "karim@sataa.ma"
    assert user.full_name == "Karim Alaoui"
    assert user.password_hash.startswith("$argon2id$")
    assert verify_password(password, user.password_hash)
    with Session(engine) as session:
        company = session.exec(select(Company).where(Company.customs_code == "290240")).one()
    assert user.company_id == company.id


def test_create_staff_user(engine: Engine, seeded_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(seeded_url, "create-user", "nadia", "--role", "finance") == 0
    password = _printed_password(capsys.readouterr().out, "nadia")
    user = _user(engine, "nadia")
    assert user is not None
    assert (user.role, user.company_id, user.must_change_password) == ("finance", None, True)
    assert verify_password(password, user.password_hash)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["create-user", "sataa", "--role", "client", "--company", "290240"], "existe déjà"),
        (["create-user", "SATAA", "--role", "client", "--company", "290240"], "existe déjà"),
        (["create-user", "newbie", "--role", "client", "--company", "000000"], "société inconnue"),
        (["create-user", "newbie", "--role", "client"], "--company"),
        (["create-user", "newbie", "--role", "admin", "--company", "290240"], "--company"),
        (["create-user", "new bie", "--role", "admin"], "nom d'utilisateur invalide"),
        (["create-user", "newbie", "--role", "admin", "--email", "not-an-email"], "e-mail"),
        (["reset-password", "nobody"], "utilisateur inconnu"),
    ],
)
def test_bad_input_exits_2_with_a_message(
    engine: Engine, seeded_url: str, capsys: pytest.CaptureFixture[str], args: list[str], message: str
) -> None:
    assert _run(seeded_url, *args) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert "Mot de passe provisoire" not in captured.out
    assert _user(engine, "newbie") is None


def test_unknown_role_is_an_argparse_error(seeded_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        _run(seeded_url, "create-user", "newbie", "--role", "boss")
    assert exc.value.code == 2
    assert "--role" in capsys.readouterr().err


def test_missing_command_is_an_argparse_error() -> None:
    with pytest.raises(SystemExit) as exc:
        main([])
    assert exc.value.code == 2


def test_reset_password(engine: Engine, seeded_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    with Session(engine) as session:
        tmta = session.exec(select(User).where(User.username == "tmta")).one()
        assert tmta.id is not None
        session.add(
            UserSession(token_hash="x" * 64, user_id=tmta.id, expires_at=datetime(2030, 1, 1) + timedelta(0))
        )
        session.commit()
    capsys.readouterr()
    assert _run(seeded_url, "reset-password", "tmta") == 0
    password = _printed_password(capsys.readouterr().out, "tmta")
    user = _user(engine, "tmta")
    assert user is not None
    assert user.must_change_password is True
    assert verify_password(password, user.password_hash)
    assert not verify_password("Portnet2026!", user.password_hash)
    with Session(engine) as session:
        assert session.exec(select(UserSession).where(UserSession.user_id == user.id)).first() is None


def test_unmigrated_database_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    with fresh_database_url() as url:
        assert _run(url, "reset-password", "admin") == 1
    assert "migrate" in capsys.readouterr().err


def test_module_entry_point_from_another_directory(tmp_path: Path) -> None:
    with fresh_database_url() as url:
        root = Path(__file__).resolve().parent.parent
        env = {**os.environ, "DATABASE_URL": url, "PYTHONPATH": str(root)}
        result = subprocess.run(
            [sys.executable, "-m", "portnet.cli", "migrate"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        assert migrate.current_revision(url) == migrate.head_revision()
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "portnet.cli",
                "create-user",
                "xavier",
                "--role",
                "client",
                "--company",
                "1",
            ],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2
        assert "société inconnue" in result.stderr
