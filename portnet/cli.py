"""Operator commands: ``python -m portnet.cli migrate|seed|create-user|reset-password|schedules``.

Accounts made here get a random password shown once on the terminal and must change it at first
login: nobody, operator included, keeps knowing a user's password. Bad input exits with status 2
(the argparse convention) and a French message with its English gist, since operators are not all
French speakers.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import sys
from collections.abc import Sequence

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

from portnet import migrate
from portnet.audit import audit
from portnet.db import make_engine, normalize_url
from portnet.models import Company, User, UserSession
from portnet.security import generate_password, hash_password
from portnet.seed import DEMO_PASSWORD, USERS, demo_counts, seed_demo
from portnet.settings import get_settings
from portnet.statuses import Role

USERNAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{1,63}$")
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

EXIT_OK = 0
EXIT_FAILURE = 1
EXIT_USAGE = 2


class UsageError(Exception):
    """Bad operator input: reported without a traceback, exit status 2."""


def _url(args: argparse.Namespace) -> str:
    return normalize_url(args.database_url or get_settings().database_url)


def _display_url(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _cmd_migrate(args: argparse.Namespace) -> int:
    url = _url(args)
    migrate.upgrade(url)
    print(f"Base à jour (révision {migrate.current_revision(url)}) : {_display_url(url)}")
    return EXIT_OK


def _cmd_seed(args: argparse.Namespace) -> int:
    url = _url(args)
    migrate.upgrade(url)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            created = seed_demo(session)
            totals = demo_counts(session)
    finally:
        engine.dispose()
    print(f"Données de démonstration : {_display_url(url)}")
    width = max(len(name) for name in totals)
    for name, total in totals.items():
        print(f"  {name:<{width}}  {total:>7}  (+{created.get(name, 0)})")
    print(f"Comptes de démonstration (mot de passe {DEMO_PASSWORD}) : {', '.join(u.username for u in USERS)}")
    return EXIT_OK


def _print_password(username: str, password: str) -> None:
    print(f"Mot de passe provisoire de {username} : {password}")
    print("Il ne sera plus affiché ; il devra être changé à la première connexion.")


def _cmd_create_user(args: argparse.Namespace) -> int:
    username = args.username.strip()
    if not USERNAME_PATTERN.match(username):
        raise UsageError(
            f"nom d'utilisateur invalide : {args.username!r} (2 à 64 caractères : lettres, chiffres, . _ -)"
            " / invalid username"
        )
    role = Role(args.role)
    if role == Role.CLIENT and not args.company:
        raise UsageError(
            "un utilisateur client doit être rattaché à une société (--company) / --company is required"
        )
    if role != Role.CLIENT and args.company:
        raise UsageError(
            f"--company est réservé au rôle client, pas au rôle {role.value} / --company is for clients only"
        )
    if args.email is not None and not EMAIL_PATTERN.match(args.email):
        raise UsageError(f"adresse e-mail invalide : {args.email!r} / invalid e-mail address")

    url = _url(args)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            company_id = None
            if args.company:
                company = session.exec(select(Company).where(Company.customs_code == args.company)).first()
                if company is None:
                    raise UsageError(
                        f"société inconnue (code douanier {args.company}) / unknown company customs code"
                    )
                company_id = company.id
            existing = session.exec(
                select(User.id).where(sa.func.lower(User.username) == username.lower())
            ).first()
            if existing is not None:
                raise UsageError(f"l'utilisateur {username} existe déjà / user already exists")
            password = generate_password()
            session.add(
                User(
                    username=username,
                    password_hash=hash_password(password),
                    role=role.value,
                    company_id=company_id,
                    full_name=args.full_name,
                    email=args.email,
                    must_change_password=True,
                )
            )
            try:
                session.commit()
            except sa.exc.IntegrityError as exc:  # created concurrently by someone else
                raise UsageError(f"l'utilisateur {username} existe déjà / user already exists") from exc
    finally:
        engine.dispose()
    print(f"Utilisateur {username} créé (rôle {role.value}).")
    _print_password(username, password)
    return EXIT_OK


def _cmd_reset_password(args: argparse.Namespace) -> int:
    url = _url(args)
    engine = make_engine(url)
    try:
        with Session(engine) as session:
            user = session.exec(select(User).where(User.username == args.username)).first()
            if user is None:
                raise UsageError(f"utilisateur inconnu : {args.username} / unknown user")
            password = generate_password()
            user.password_hash = hash_password(password)
            user.must_change_password = True
            session.add(user)
            # Whoever holds a session opened with the old password is logged out.
            ended = session.exec(delete(UserSession).where(col(UserSession.user_id) == user.id))
            session.commit()
    finally:
        engine.dispose()
    audit("password.reset", user=args.username, sessions_ended=int(ended.rowcount or 0))
    _print_password(args.username, password)
    return EXIT_OK


def _cmd_schedules(args: argparse.Namespace) -> int:
    """Creates or updates the Temporal Schedules (reconciliation), as the worker does at start."""
    from temporalio.client import Client

    from portnet.schedules import RECONCILIATION_SCHEDULE_ID, ensure_schedules
    from portnet.temporal_codec import data_converter

    settings = get_settings()

    async def run() -> None:
        client = await Client.connect(
            settings.temporal_address,
            namespace=settings.temporal_namespace,
            data_converter=data_converter(settings),
        )
        await ensure_schedules(client, settings)

    try:
        asyncio.run(run())
    except RuntimeError as exc:  # Temporal unreachable
        print(
            f"Temporal injoignable ({settings.temporal_address}) : {exc} / Temporal unreachable",
            file=sys.stderr,
        )
        return EXIT_FAILURE
    print(
        f"Planification {RECONCILIATION_SCHEDULE_ID} à jour : toutes les "
        f"{settings.reconciliation_interval_seconds} s (Temporal {settings.temporal_address})"
    )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m portnet.cli", description="PortNet Payments : administration"
    )
    parser.add_argument("--database-url", help="base de données (défaut : DATABASE_URL)")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMANDE")

    p = commands.add_parser("migrate", help="met le schéma de la base à jour (alembic upgrade head)")
    p.set_defaults(handler=_cmd_migrate)

    p = commands.add_parser("seed", help="migre puis charge les données de démonstration (idempotent)")
    p.set_defaults(handler=_cmd_seed)

    p = commands.add_parser("create-user", help="crée un compte avec un mot de passe provisoire")
    p.add_argument("username", metavar="USERNAME")
    p.add_argument("--role", required=True, choices=[r.value for r in Role])
    p.add_argument("--company", metavar="CUSTOMS_CODE", help="code douanier de la société (rôle client)")
    p.add_argument("--email")
    p.add_argument("--full-name")
    p.set_defaults(handler=_cmd_create_user)

    p = commands.add_parser("reset-password", help="remplace le mot de passe par un mot de passe provisoire")
    p.add_argument("username", metavar="USERNAME")
    p.set_defaults(handler=_cmd_reset_password)

    p = commands.add_parser(
        "schedules", help="crée ou met à jour les planifications Temporal (réconciliation)"
    )
    p.set_defaults(handler=_cmd_schedules)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args))
    except UsageError as exc:
        print(f"{parser.prog} {args.command}: erreur : {exc}", file=sys.stderr)
        return EXIT_USAGE
    except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
        print(
            f"{parser.prog} {args.command}: erreur de base de données ({exc.orig or exc}) ; la base est-elle "
            "joignable et migrée (python -m portnet.cli migrate) ? / database error",
            file=sys.stderr,
        )
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
