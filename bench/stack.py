"""The embedded stack of bench.e2e_card: everything `make run` starts, on free ports, in a temporary
directory, with a fresh SQLite ledger; and the checks and logs a run keeps of it.

Each child (Temporal dev server, the two worker processes, portal, sandboxes, the bare baseline's
worker) runs in its own process group (bench/_common.py), so that stopping it stops whatever it
spawned.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import httpx
from temporalio.client import Client

from bench._common import (
    RESULTS,
    Child,
    check_alive,
    free_ports,
    spawn,
)
from portnet.http_keep_alive import SERVER_KEEP_ALIVE_SECONDS

SATAA = "290240"
PORTNET_EMITTER = "6110DOO116"
STARTUP_TIMEOUT = 60.0


@dataclass
class Stack:
    tmp: Path
    env: dict[str, str]
    temporal_address: str
    base_url: str
    sandbox_url: str
    bare_queue: str
    children: list[Child]


SANDBOX_DEFAULT = "http://127.0.0.1:8001"


def sandbox_partner_urls(partners: str) -> dict[str, str]:
    """Every partner URL of the settings (CMI and its XML API, Fatourati, Amanpay, PayDirect, SMS...)
    on this run's sandboxes: derived from the defaults, so a partner URL added later follows."""
    from portnet.settings import Settings

    urls: dict[str, str] = {}
    for name, info in Settings.model_fields.items():
        value = info.default
        if isinstance(value, str) and value.startswith(SANDBOX_DEFAULT + "/"):
            urls[name.upper()] = partners + value[len(SANDBOX_DEFAULT) :]
    return urls


def stack_env(
    tmp: Path, temporal_port: int, ui_port: int, web_port: int, smtp_port: int, sandbox_port: int
) -> dict[str, str]:
    base = f"http://127.0.0.1:{web_port}"
    partners = f"http://127.0.0.1:{sandbox_port}"
    return {
        "DATABASE_URL": f"sqlite:///{tmp / 'portnet.db'}",
        "TEMPORAL_ADDRESS": f"127.0.0.1:{temporal_port}",
        "TEMPORAL_NAMESPACE": "default",
        "TEMPORAL_TASK_QUEUE": "portnet-payments",
        "TEMPORAL_UI_URL": f"http://127.0.0.1:{ui_port}",
        "PUBLIC_BASE_URL": base,
        "SANDBOX_BASE_URL": partners,
        "SANDBOX_DATABASE_URL": f"sqlite:///{tmp / 'sandbox.db'}",
        # Every partner URL (CMI's page and XML API, emitters, Fatourati, Amanpay...) on this run's
        # sandboxes, derived from the defaults so that a partner URL added later follows.
        **sandbox_partner_urls(partners),
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(smtp_port),
        "SANDBOX_SMTP_PORT": str(smtp_port),
        "SANDBOX_EMITTER_ACK_DELAY_SECONDS": "0.2",
        "PORTNET_ENV": "development",
        "SECRET_KEY": f"bench-{secrets.token_hex(16)}",
    }


def use_environment(env: dict[str, str | None]) -> dict[str, str | None]:
    """Our own process reads the same settings as the children (caches cleared); returns what to
    pass back to restore the environment as it was."""
    from portnet import db as portnet_db
    from portnet import settings as portnet_settings

    previous = {key: os.environ.get(key) for key in env}
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
    portnet_settings.get_settings.cache_clear()
    portnet_db._engine_for.cache_clear()
    return previous


def prepare_ledger(invoices: int) -> list[int]:
    """Migrated + seeded ledger, plus ``invoices`` new unpaid PORTNET invoices of SATAA; their ids."""
    from sqlmodel import Session, select

    from portnet import db as portnet_db
    from portnet.migrate import upgrade
    from portnet.models import Company, Emitter, Invoice, PrestationLine
    from portnet.seed import seed_demo

    upgrade()
    engine = portnet_db.get_engine()
    with Session(engine, expire_on_commit=False) as session:
        seed_demo(session)
        session.commit()
        company = session.exec(select(Company).where(Company.customs_code == SATAA)).one()
        emitter = session.exec(select(Emitter).where(Emitter.code == PORTNET_EMITTER)).one()
        assert company.id is not None and emitter.id is not None
        created = [
            Invoice(
                number=f"B{n:07d}",
                emitter_id=emitter.id,
                company_id=company.id,
                invoice_date=datetime(2026, 11, 1),
                due_date=datetime(2026, 12, 31),
                amount_ht=Decimal("100.00"),
                amount_tva=Decimal("20.00"),
                amount_ttc=Decimal("120.00"),
                payment_methods="cmi,amanpay,cheque,virement",
                status="unpaid",
                description="Facture de benchmark",
            )
            for n in range(invoices)
        ]
        session.add_all(created)
        session.flush()
        for invoice in created:
            assert invoice.id is not None
            session.add(
                PrestationLine(
                    invoice_id=invoice.id,
                    prestation="Abonnement",
                    operation_type="Abonnement annuel IMP",
                    reference=f"BENCH-{invoice.number}",
                )
            )
        session.commit()
        ids = [invoice.id for invoice in created if invoice.id is not None]
    engine.dispose()
    return ids


async def wait_for(probe: Callable[[], Awaitable[bool]], what: str, children: list[Child]) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        check_alive(children)
        try:
            if await probe():
                return
        except Exception:  # noqa: BLE001, S110 - not up yet
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not ready within {STARTUP_TIMEOUT:.0f} s")
        await asyncio.sleep(0.3)


async def start_stack(stack: Stack) -> Client:
    from portnet.launcher import find_temporal_binary, temporal_dev_command, worker_commands
    from portnet.settings import get_settings
    from portnet.temporal_codec import data_converter

    env = {**os.environ, **stack.env}
    port = stack.temporal_address.rsplit(":", 1)[1]
    ui_port = stack.env["TEMPORAL_UI_URL"].rsplit(":", 1)[1]
    command = temporal_dev_command(find_temporal_binary(), stack.tmp / "temporal.db")
    # The launcher's fixed ports are `make run`'s; a benchmark takes free ones.
    command[command.index("--port") + 1] = port
    command[command.index("--ui-port") + 1] = ui_port
    http_port, metrics_port = free_ports(2)
    command += ["--http-port", str(http_port), "--metrics-port", str(metrics_port)]
    stack.children.append(spawn("temporal", command, env, stack.tmp))

    # Our process reads the stack's settings (use_environment): same payload key as the children.
    converter = data_converter(get_settings())

    async def temporal_up() -> bool:
        await asyncio.wait_for(Client.connect(stack.temporal_address, data_converter=converter), timeout=3)
        return True

    await wait_for(temporal_up, "Temporal", stack.children)
    client = await Client.connect(stack.temporal_address, data_converter=converter)

    python = sys.executable
    web_port = stack.base_url.rsplit(":", 1)[1]
    stack.children.append(spawn("sandbox", [python, "-m", "sandbox"], env, stack.tmp))
    # As `make run`: workflow tasks and activities in two processes (cpu_seconds has one entry each).
    for name, command in worker_commands(python).items():
        stack.children.append(spawn(name, command, env, stack.tmp))
    stack.children.append(
        spawn(
            "web",
            [
                python,
                "-m",
                "uvicorn",
                "web.app:create_app",
                "--factory",
                "--host",
                "127.0.0.1",
                "--port",
                web_port,
                "--log-level",
                "warning",
                "--no-access-log",
                "--timeout-keep-alive",
                str(SERVER_KEEP_ALIVE_SECONDS),
            ],  # fmt: skip
            env,
            stack.tmp,
        )
    )
    stack.children.append(
        spawn(
            "bare-worker",
            [
                python,
                "-m",
                "bench.bare",
                "worker",
                "--address",
                stack.temporal_address,
                "--task-queue",
                stack.bare_queue,
            ],  # fmt: skip
            env,
            stack.tmp,
        )
    )

    async def web_up() -> bool:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=3) as http:
            return (await http.get("/healthz")).status_code == 200

    async def sandbox_up() -> bool:
        async with httpx.AsyncClient(base_url=stack.sandbox_url, timeout=3) as http:
            return (await http.get("/sandbox/healthz")).status_code == 200

    await wait_for(sandbox_up, "the sandboxes", stack.children)
    await wait_for(web_up, "the portal", stack.children)
    return client


def verify_ledger(invoice_ids: list[int]) -> dict[str, int]:
    """The ledger agrees: every benchmark invoice paid, one succeeded payment each."""
    import sqlalchemy as sa
    from sqlmodel import Session, col, select

    from portnet import db as portnet_db
    from portnet.models import Invoice, Payment

    with Session(portnet_db.get_engine()) as session:
        statuses = session.exec(
            select(Invoice.status, sa.func.count())
            .where(col(Invoice.id).in_(invoice_ids))
            .group_by(col(Invoice.status))
        ).all()
        payments = session.exec(select(Payment.status, sa.func.count()).group_by(col(Payment.status))).all()
    return {
        **{f"invoices_{status}": int(n) for status, n in statuses},
        **{f"payments_{status}": int(n) for status, n in payments},
    }


def keep_logs(children: list[Child]) -> Path:
    """Copies the children's logs next to the results (gitignored), for a failed run."""
    target = RESULTS / f"e2e_card-logs-{time.strftime('%Y%m%dT%H%M%S')}"
    target.mkdir(parents=True, exist_ok=True)
    for child in children:
        if child.log_path.exists():
            shutil.copy(child.log_path, target / child.log_path.name)
    return target
