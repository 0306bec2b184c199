"""What the Temporal Web UI shows finance of a card payment: the French summary and details it was
started with, its current details at each phase, its activities' summaries (dev server)."""

from __future__ import annotations

import html
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import unquote

import httpx
import temporalio.api.sdk.v1
from temporalio.client import WorkflowHandle
from temporalio.converter import DataConverter

from portnet.localtime import to_local
from portnet.models import Invoice
from portnet.settings import get_settings
from tests.support.api import VISA, Stack, login, open_cmi_page, pay, start_card_payment, until_status
from tests.support.workers import eventually
from web.temporal_queries import by_company, by_invoice, finance_links

DECLINED = {"pan": "4111111111111111", "expiry": "12/30", "cvv": "123"}
METADATA_QUERY = "__temporal_workflow_metadata"


async def current_details(handle: WorkflowHandle) -> str:
    """What the Web UI reads on the workflow page (the SDK's built-in metadata query)."""
    metadata = await handle.query(METADATA_QUERY, result_type=temporalio.api.sdk.v1.WorkflowMetadata)
    return metadata.current_details


async def activity_summaries(handle: WorkflowHandle, converter: DataConverter) -> list[str]:
    """The summary of each activity the workflow scheduled (encrypted by the codec like any payload)."""
    found: list[str] = []
    async for event in handle.fetch_history_events():
        if event.HasField("activity_task_scheduled_event_attributes") and event.user_metadata.HasField(
            "summary"
        ):
            found.append((await converter.decode([event.user_metadata.summary]))[0])
    return found


async def test_card_payment_reads_in_french_from_start_to_settlement(
    stack: Stack,
    sataa: httpx.AsyncClient,
    anonymous: httpx.AsyncClient,
    make_invoice: Callable[..., Invoice],
) -> None:
    invoice = make_invoice(ht="3000.00", tva="600.00")
    payment = await start_card_payment(sataa, [invoice.id or 0])
    handle = stack.env.client.get_workflow_handle(payment["workflow_id"])

    described = await handle.describe()
    summary = await described.static_summary()
    assert summary == (
        "CMI carte bancaire — 3\u202f600,00 MAD — SATAA IMPORT EXPORT SARL AU (290240)"
        f" — facture {invoice.number}"
    )
    static = await described.static_details()
    assert static is not None
    assert f"- **{invoice.number}** — émetteur 6110DOO116 — 3\u202f600,00 MAD" in static
    # Encrypted by the payload codec like the inputs: without the key the Web UI shows ciphertext.
    raw = described.raw_description.execution_config.user_metadata.summary
    assert raw.metadata["encoding"] == b"binary/encrypted"
    for personal in ("Yassine", "Alaoui", "tresorerie@sataa.ma"):
        assert personal not in summary + static

    # The attempt's deadline (CMI_PAYMENT_DEADLINE_SECONDS, 20 min) in Casablanca time, with its date
    # when it falls on the next day (an attempt begun in the 20 minutes before local midnight).
    deadline = datetime.fromisoformat(payment["deadline"])
    begun = deadline - timedelta(seconds=get_settings().cmi_payment_deadline_seconds)
    same_day = to_local(begun).date() == to_local(deadline).date()
    shown = to_local(deadline).strftime("%H:%M" if same_day else "%d/%m à %H:%M")
    assert await current_details(handle) == f"En attente du payeur — expire à {shown}"

    await open_cmi_page(anonymous, payment)
    declined = await pay(anonymous, payment["id"], DECLINED)
    assert declined["result"] == "declined"

    async def counted() -> str | None:
        text = await current_details(handle)
        return text if "1 refus" in text else None

    assert (await eventually(counted, timeout=20)).startswith("En attente du payeur — expire à ")

    await pay(anonymous, payment["id"], VISA)
    done = await until_status(sataa, payment["id"], "succeeded")

    async def settled() -> str | None:
        text = await current_details(handle)
        return text if text.startswith("Réglée") else None

    assert (await eventually(settled, timeout=30)).startswith(
        f"Réglée — transaction {done['transaction_id']}"
    )
    summaries = await activity_summaries(handle, stack.env.client.data_converter)
    assert summaries[0] == f"Réservation des factures {invoice.number}"
    assert "Vérification de la capture CMI" in summaries
    assert "Règlement des factures (CMI carte bancaire)" in summaries


async def test_finance_pages_link_to_web_ui_queries_the_server_accepts(
    stack: Stack, sataa: httpx.AsyncClient, make_invoice: Callable[..., Invoice]
) -> None:
    invoice = make_invoice()
    payment = await start_card_payment(sataa, [invoice.id or 0])
    finance = await login(stack.base_url, "finance")
    before = datetime.now(UTC)
    try:
        page = await finance.get(
            "/finance/paiements", params={"invoice": invoice.number, "company": "290240"}
        )
        invoices_page = await finance.get("/finance/factures", params={"number": invoice.number})
    finally:
        await finance.aclose()
    settings = get_settings()
    # The stuck-attempts query holds a time to the second: the page drew it between these two moments.
    seconds = int((datetime.now(UTC) - before).total_seconds()) + 2
    moments = [before + timedelta(seconds=s) for s in range(seconds)]
    drawn = [finance_links(settings, moment, "290240", invoice.number) for moment in moments]
    links = drawn[0]
    assert [link.label for link in links[:3]] == [
        f"Facture {invoice.number}",
        "Société 290240",
        "Tentatives bloquées",
    ]
    for n, link in enumerate(links):
        assert any(html.escape(moment[n].url) in page.text for moment in drawn), link.url
        assert link.url.startswith(f"{settings.temporal_ui_url.rstrip('/')}/namespaces/")
        assert unquote(link.url.split("?query=", 1)[1]) == link.query
    assert html.escape(links[0].url) in invoices_page.text

    async def found(query: str) -> list[str] | None:
        ids = [wf.id async for wf in stack.env.client.list_workflows(query)]
        return ids if payment["workflow_id"] in ids else None

    # The invoice's and the company's queries find the attempt; every other query is valid on the server.
    await eventually(lambda: found(by_invoice(invoice.number)), timeout=30)
    await eventually(lambda: found(by_company("290240")), timeout=30)
    for link in links[2:]:
        assert payment["workflow_id"] not in [
            wf.id async for wf in stack.env.client.list_workflows(link.query)
        ]
