"""The payers of the chaos run: each takes one invoice and pays it as a script would, on one channel.

    card:      POST /api/v1/payments (cmi_card) -> the form to CMI's gateway -> the scripted card
               payment (/sandbox/cmi/card-payments) -> the browser comes back to okUrl/failUrl
    fatourati: POST /api/v1/payments (cmi_fatourati) -> the reference paid at a bank channel
               (/sandbox/fatourati/payments)
    amanpay:   POST /api/v1/payments (amanpay_code) -> the code paid at a Tashilat counter
               (/sandbox/tashilat/payments)

A payer is patient as a person with a browser is: while the portal answers 5xx or cannot be reached
(Temporal killed, worker restarting) it tries the start again with the same ``Idempotency-Key``, for
up to ``START_PATIENCE`` seconds; so it does when the portal says the partner does not answer
(``partner_unavailable``). A 409 means an attempt it never saw holds the invoice: recorded,
that invoice did not get its attempt. What happens after the payment is the platform's business:
the run's tally (bench/chaos/tally.py) looks at the bank, the API and the ledger at the end.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx

CHANNELS = ("card", "fatourati", "amanpay")
API_CHANNEL = {"card": "cmi_card", "fatourati": "cmi_fatourati", "amanpay": "amanpay_code"}
VISA = {"pan": "4000000000000010", "expiry": "12/30", "cvv": "000"}
PAYER = {"name": "Yassine Alaoui", "email": "tresorerie@sataa.ma"}
CASH_PAYER = {"last_name": "Alaoui", "first_name": "Yassine", "email": "tresorerie@sataa.ma"}
START_PATIENCE = 120.0
RETRY_PAUSE = 1.0


@dataclass
class PaymentRun:
    """One invoice's payment as its payer saw it."""

    invoice_id: int
    channel: str
    payment_id: str | None = None
    reference: str | None = None  # Fatourati token, Amanpay cash code
    start_tries: int = 0
    start_answers: list[str] = field(default_factory=list)  # 201, 503, ReadTimeout, 409 ...
    bank_answer: str = ""  # what the bank's scripted page said: approved, paid, refused, error ...
    notes: list[str] = field(default_factory=list)

    @property
    def started(self) -> bool:
        return self.payment_id is not None


class Payer:
    def __init__(self, api: httpx.AsyncClient, partners: httpx.AsyncClient) -> None:
        self.api = api  # the portal, logged in as the company
        self.partners = partners  # the sandboxes: the bank's pages, the agencies

    async def pay(self, run: PaymentRun) -> PaymentRun:
        try:
            payment = await self._start(run)
            if payment is None:
                return run
            payment = await self._next_action(run, payment)
            action: dict[str, Any] = payment.get("next_action") or {}
            if run.channel == "card":
                await self._card(run, action)
            elif run.channel == "fatourati":
                run.reference = str((action.get("fields") or {}).get("reference") or "")
                await self._bank(
                    run, "/sandbox/fatourati/payments", {"reference": run.reference, "channel": "cih"}
                )
            else:
                run.reference = str(action.get("code") or "")
                body = {"code": run.reference, "amount": payment["amount"]}
                await self._bank(run, "/sandbox/tashilat/payments", body)
        except Exception as exc:  # noqa: BLE001 - a payer's failure is a figure, not a crash
            run.notes.append(f"{type(exc).__name__}: {exc}")
        return run

    async def _start(self, run: PaymentRun) -> dict[str, Any] | None:
        key = secrets.token_hex(16)
        body: dict[str, Any] = {"invoice_ids": [run.invoice_id], "channel": API_CHANNEL[run.channel]}
        body["payer"] = PAYER if run.channel != "amanpay" else CASH_PAYER
        deadline = time.monotonic() + START_PATIENCE
        while True:
            run.start_tries += 1
            try:
                reply = await self.api.post("/api/v1/payments", json=body, headers={"Idempotency-Key": key})
                run.start_answers.append(str(reply.status_code))
                if reply.status_code in (200, 201):
                    payment: dict[str, Any] = reply.json()
                    run.payment_id = str(payment["id"])
                    return payment
                if reply.status_code < 500 and reply.status_code != 429 and not _try_later(reply):
                    run.notes.append(f"start refused after {run.start_answers}: {reply.text[:100]}")
                    return None
            except httpx.HTTPError as exc:
                run.start_answers.append(type(exc).__name__)
            if time.monotonic() > deadline:
                run.notes.append(f"start gave up after {run.start_answers}")
                return None
            await asyncio.sleep(RETRY_PAUSE)

    async def _next_action(self, run: PaymentRun, payment: dict[str, Any]) -> dict[str, Any]:
        """The payment as last read, with what the payer is asked to do; an answer without it (the
        attempt still starting when the start was answered) is followed by reading the payment again,
        as the portal's page does. The payer pays what that read shows: an attempt still starting
        shows no amount yet (0.00), which a cash counter refuses."""
        deadline = time.monotonic() + START_PATIENCE
        while True:
            action: dict[str, Any] = payment.get("next_action") or {}
            if action or payment.get("status") not in ("started", "awaiting_payer", None):
                return payment
            if time.monotonic() > deadline:
                run.notes.append(f"no next action after {START_PATIENCE:.0f} s: {payment.get('status')}")
                return payment
            await asyncio.sleep(RETRY_PAUSE)
            try:
                reply = await self.api.get(f"/api/v1/payments/{run.payment_id}")
                if reply.status_code == 200:
                    payment = reply.json()
            except httpx.HTTPError:
                pass

    async def _card(self, run: PaymentRun, action: dict[str, Any]) -> None:
        page = await self.partners.post(str(action["url"]), data=action.get("fields") or {})
        if page.status_code != 200:
            run.bank_answer = f"gateway {page.status_code}"
            return
        paid = await self.partners.post("/sandbox/cmi/card-payments", json={"oid": run.payment_id, **VISA})
        if paid.status_code != 200:
            run.bank_answer = f"card {paid.status_code}"
            return
        result = paid.json()
        run.bank_answer = str(result.get("result"))
        redirect = result.get("redirect") or {}
        if redirect.get("url"):  # the browser goes back to the shop with the signed fields
            try:
                await self.api.post(str(redirect["url"]), data=redirect.get("fields") or {})
            except httpx.HTTPError as exc:
                run.notes.append(f"return to the shop: {type(exc).__name__}")

    async def _bank(self, run: PaymentRun, path: str, body: dict[str, Any]) -> None:
        if not run.reference:
            run.bank_answer = "no reference"
            return
        reply = await self.partners.post(path, json=body)
        answer = reply.json() if reply.status_code == 200 else {}
        run.notes.append(f"{path}: {answer.get('result') or reply.status_code}")
        run.bank_answer = str(answer.get("result") or f"http {reply.status_code}")
        if answer.get("result") != "paid":
            run.notes.append(f"bank refused: {answer.get('reason') or reply.text[:120]}")


def _try_later(reply: httpx.Response) -> bool:
    """The portal's "the partner does not answer, try again in a few minutes": a payer does."""
    try:
        return bool(reply.json().get("code") == "partner_unavailable")
    except ValueError:
        return False


async def pay_all(
    payer: Payer, invoice_ids: list[int], concurrency: int, duration: float
) -> list[PaymentRun]:
    """Payments on the three channels in turn, ``concurrency`` at once, started until ``duration``
    seconds have passed or the invoices run out."""
    gate = asyncio.Semaphore(concurrency)
    runs: list[PaymentRun] = []
    tasks: list[asyncio.Task[PaymentRun]] = []
    stop_at = time.monotonic() + duration
    for n, invoice_id in enumerate(invoice_ids):
        await gate.acquire()
        if time.monotonic() > stop_at:
            gate.release()
            break
        run = PaymentRun(invoice_id=invoice_id, channel=CHANNELS[n % len(CHANNELS)])
        runs.append(run)

        async def one(run: PaymentRun = run) -> PaymentRun:
            try:
                return await payer.pay(run)
            finally:
                gate.release()

        tasks.append(asyncio.create_task(one()))
    await asyncio.gather(*tasks)
    return runs
