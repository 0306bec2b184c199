"""The portal, its API errors, e-mails and receipts in French, Arabic and English.

The language comes from the user's profile, then the header switch's cookie, then
``Accept-Language``; Arabic pages and receipts read right to left.
"""

from __future__ import annotations

import io
import re
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import httpx
import pytest
import pytest_asyncio
from pypdf import PdfReader
from sqlmodel import Session, select

from activities.mail import compose_payment_confirmation
from portnet import documents
from portnet.models import Company, Invoice, Payment, PaymentInvoice, User
from portnet.security import hash_password
from tests.support.fonts import require_arabic_font
from tests.support.pages import PASSWORD, NoTemporal, logged_in, login, token_of
from web.app import create_app
from workflows.types import NextAction, PaymentView

HTML_TAG = re.compile(r"<html lang=\"(\w+)\" dir=\"(\w+)\">")
ARABIC = re.compile(r"[\u0600-\u06ff]")


@pytest_asyncio.fixture
async def portal(database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app()
    app.state.temporal = NoTemporal()
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as client:
        client.app = app  # type: ignore[attr-defined]
        yield client


def html_language(page: httpx.Response) -> tuple[str, str]:
    match = HTML_TAG.search(page.text)
    assert match, page.text[:300]
    return match.group(1), match.group(2)


def make_user(db: Session, language: str | None = None) -> User:
    company = db.exec(select(Company).where(Company.customs_code == "290240")).one()
    user = User(
        username=f"lang{uuid.uuid4().hex[:8]}",
        password_hash=hash_password(PASSWORD),
        role="client",
        company_id=company.id,
        full_name="Utilisateur de test",
        email="test@demo.portnet.ma",
        language=language,
    )
    db.add(user)
    db.commit()
    return user


@pytest.mark.parametrize(
    ("accept", "lang", "direction", "sentence"),
    [
        (None, "fr", "ltr", "ACCÈS GUICHET UNIQUE"),
        ("ar-MA,ar;q=0.9", "ar", "rtl", "الولوج إلى الشباك الوحيد"),
        ("en-GB,en;q=0.9", "en", "ltr", "SINGLE WINDOW ACCESS"),
        ("de-DE", "fr", "ltr", "ACCÈS GUICHET UNIQUE"),
    ],
)
async def test_the_login_page_follows_the_browser(
    portal: httpx.AsyncClient, accept: str | None, lang: str, direction: str, sentence: str
) -> None:
    headers = {"Accept-Language": accept} if accept else {}
    page = await portal.get("/connexion", headers=headers)
    assert page.status_code == 200
    assert html_language(page) == (lang, direction)
    assert sentence in page.text
    # The switch offers the three languages, each named in its own.
    for code, name in (("fr", "Français"), ("ar", "العربية"), ("en", "English")):
        assert f'name="lang" value="{code}" lang="{code}"' in page.text and name in page.text


async def test_a_visitor_switches_language_in_the_header(portal: httpx.AsyncClient) -> None:
    page = await portal.get("/connexion")
    switched = await portal.post(
        "/langue",
        data={"csrf_token": token_of(page.text), "lang": "ar"},
        headers={"Referer": "http://portal/connexion"},
    )
    assert switched.status_code == 303 and switched.headers["location"] == "/"
    assert switched.cookies.get("pn_lang") == "ar"
    page = await portal.get("/connexion", headers={"Accept-Language": "en"})  # the choice beats the browser
    assert html_language(page) == ("ar", "rtl") and "كلمة المرور" in page.text


async def test_the_switch_needs_its_csrf_token(portal: httpx.AsyncClient) -> None:
    await portal.get("/connexion")
    refused = await portal.post("/langue", data={"lang": "ar"})
    assert refused.status_code == 400 and "pn_lang" not in refused.cookies


async def test_a_user_choice_is_their_profile(portal: httpx.AsyncClient, db: Session) -> None:
    user = make_user(db)
    token = await logged_in(portal, user.username)
    back = {"Referer": "http://portal/factures?number=1"}
    switched = await portal.post("/langue", data={"csrf_token": token, "lang": "en"}, headers=back)
    assert switched.headers["location"] == "/factures?number=1"
    elsewhere = {"Referer": "https://evil.example/factures"}
    away = await portal.post("/langue", data={"csrf_token": token, "lang": "en"}, headers=elsewhere)
    assert away.headers["location"] == "/"
    db.refresh(user)
    assert user.language == "en"
    # Another browser, no cookie, French Accept-Language: the profile wins.
    app = portal.app  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://portal") as other:
        await login(other, user.username)
        listing = await other.get("/factures", headers={"Accept-Language": "fr"})
        assert html_language(listing) == ("en", "ltr")
        assert "Invoice management" in listing.text and "Search criteria" in listing.text
        assert "Gestion des factures" not in listing.text


@pytest.mark.parametrize(
    ("lang", "direction", "title", "amount", "status"),
    [
        ("fr", "ltr", "Suivi du Facture", "120,00", "Non réglée"),
        ("ar", "rtl", "تتبع الفاتورة", "120,00", "غير مؤداة"),
        ("en", "ltr", "Invoice follow-up", "120.00", "Unpaid"),
    ],
)
async def test_invoice_pages_in_each_language(
    portal: httpx.AsyncClient,
    db: Session,
    make_invoice: Callable[..., Invoice],
    lang: str,
    direction: str,
    title: str,
    amount: str,
    status: str,
) -> None:
    user = make_user(db, lang)
    invoice = make_invoice(ht="100.00", tva="20.00")
    await logged_in(portal, user.username)
    home = await portal.get("/accueil")
    assert html_language(home) == (lang, direction)
    detail = await portal.get(f"/factures/{invoice.id}")
    assert detail.status_code == 200 and html_language(detail) == (lang, direction)
    assert title in detail.text and status in detail.text and amount in detail.text
    listing = await portal.get("/factures", params={"number": invoice.number})
    assert html_language(listing) == (lang, direction) and status in listing.text


async def test_api_errors_answer_in_the_callers_language(portal: httpx.AsyncClient) -> None:
    french = await portal.get("/api/v1/invoices")
    assert french.status_code == 401 and french.json()["detail"] == "Authentification requise."
    english = await portal.get("/api/v1/invoices", headers={"Accept-Language": "en"})
    assert english.status_code == 401 and english.json()["detail"] == "Authentication required."
    assert english.headers["content-language"] == "en"
    assert int(english.headers["content-length"]) == len(english.content)
    arabic = await portal.get("/api/v1/invoices", headers={"Accept-Language": "ar"})
    assert arabic.json()["detail"] == "تسجيل الدخول مطلوب."


# ------------------------------------------------------------------------------ CMI, mail, receipt


class CapturingTemporal:
    """Temporal as the payment start sees it: keeps the workflow's input, answers the CMI form."""

    def __init__(self) -> None:
        self.inputs: list[Any] = []

    async def get(self) -> CapturingTemporal:
        return self

    async def execute_update_with_start_workflow(
        self, update: Any, start_workflow_operation: Any
    ) -> PaymentView:
        inp = start_workflow_operation._start_workflow_input.args[0]
        self.inputs.append(inp)
        return PaymentView(
            id=inp.payment_id,
            workflow_id=f"payment-{inp.payment_id}",
            status="awaiting_payer",
            channel="cmi_card",
            amount="120.00",
            invoice_ids=inp.invoice_ids,
            next_action=NextAction(
                type="redirect_form", url="https://testpayment.cmi.co.ma/fim/est3Dgate", fields={}
            ),
            deadline="2026-11-27T10:20:00+00:00",
        )


@pytest.mark.parametrize("lang", ["fr", "ar", "en"])
async def test_cmi_receives_the_payers_language(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice], lang: str
) -> None:
    temporal = CapturingTemporal()
    portal.app.state.temporal = temporal  # type: ignore[attr-defined]
    user = make_user(db)
    invoice = make_invoice()
    await logged_in(portal, user.username)
    page = await portal.get("/factures", headers={"Accept-Language": lang})
    response = await portal.post(
        "/paiements",
        data={
            "csrf_token": token_of(page.text),
            "invoice_ids": str(invoice.id),
            "channel": "cmi_card",
            "payer_name": "Comptabilité SATAA",
            "payer_email": "sataa@demo.portnet.ma",
        },
        headers={"Accept-Language": lang},
    )
    assert response.status_code == 200, response.text[:400]
    assert [inp.lang for inp in temporal.inputs] == [lang]


def settled_payment(db: Session, user: User, invoice: Invoice) -> Payment:
    payment = Payment(
        id=f"PN{uuid.uuid4().hex[:12].upper()}",
        workflow_id=f"payment-{uuid.uuid4().hex}",
        channel="cmi_card",
        amount=invoice.amount_ttc,
        status="succeeded",
        company_id=invoice.company_id,
        user_id=user.id,
        invoice_numbers=invoice.number,
        partner_transaction_id="T123",
        paid_at=datetime(2026, 11, 30, 13, 7),
    )
    db.add(payment)
    db.add(PaymentInvoice(payment_id=payment.id, invoice_id=invoice.id or 0, amount_ttc=invoice.amount_ttc))
    db.commit()
    return payment


@pytest.mark.parametrize(
    ("lang", "subject", "sentence", "amount"),
    [
        ("fr", "PortNet - Paiement confirmé", "a été confirmé le 30/11/2026 14:07", "5\u202f284,80 MAD"),
        ("ar", "PortNet - تم تأكيد الأداء", "بتاريخ 30/11/2026 14:07", "5.284,80 MAD"),
        ("en", "PortNet - Payment confirmed", "was confirmed on 30 Nov 2026 14:07", "5,284.80 MAD"),
    ],
)
def test_the_confirmation_mail_is_in_the_payers_language(
    db: Session, make_invoice: Callable[..., Invoice], lang: str, subject: str, sentence: str, amount: str
) -> None:
    user = make_user(db, lang)
    payment = settled_payment(db, user, make_invoice(ht="4404.00", tva="880.80"))
    message = compose_payment_confirmation(payment.id, "payer@example.ma")
    assert str(message["Subject"]).startswith(subject)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert sentence in text and amount in text and amount in html
    assert f'lang="{lang}" dir="{"rtl" if lang == "ar" else "ltr"}"' in html


def receipt(language: str) -> documents.ReceiptDocument:
    return documents.ReceiptDocument(
        receipt_number="REC-PN0000000001",
        payment_id="PN0000000001",
        channel_label="CMI carte bancaire",
        paid_at=datetime(2026, 11, 30, 14, 7),
        client=documents.ClientInfo("SATAA IMPORT EXPORT SARL AU", "290240", None, None),
        invoices=[documents.PaidInvoiceItem("00069321", "PORTNET", Decimal("5284.80"))],
        total_paid=Decimal("5284.80"),
        language=language,
    )


def catalog_language(reader: PdfReader) -> str:
    root: Any = reader.trailer["/Root"]
    return str(root["/Lang"])


def test_the_english_receipt() -> None:
    reader = PdfReader(io.BytesIO(documents.render_receipt_pdf(receipt("en"))))
    text = reader.pages[0].extract_text()
    assert "Payment receipt" in text and "Payment confirmed" in text and "5,284.80 MAD" in text
    assert "INVOICES PAID" in text and "Paiement" not in text
    assert catalog_language(reader) == "en"


def test_the_arabic_receipt_is_drawn_in_an_arabic_font() -> None:
    require_arabic_font()
    pdf = documents.render_receipt_pdf(receipt("ar"))
    reader = PdfReader(io.BytesIO(pdf))
    assert catalog_language(reader) == "ar-MA"
    resources: Any = reader.pages[0]["/Resources"]
    fonts = {str(font.get_object()["/BaseFont"]) for font in resources["/Font"].values()}
    assert any("DejaVuSans" in name for name in fonts), fonts
    text = reader.pages[0].extract_text()
    assert ARABIC.search(text), text[:200]
    assert "REC-PN0000000001" in text and "5.284,80" in text
    # Shaped, not drawn letter by letter: the words use Arabic's joined presentation forms or glyph runs.
    assert "Paiement confirmé" not in text


@pytest.mark.parametrize(
    ("lang", "heading"), [("fr", "INFORMATIONS DE LA FACTURE"), ("en", "INVOICE INFORMATION")]
)
async def test_the_invoice_pdf_is_in_the_readers_language(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice], lang: str, heading: str
) -> None:
    user = make_user(db, lang)
    invoice = make_invoice(ht="4404.00", tva="880.80")
    await logged_in(portal, user.username)
    response = await portal.get(f"/api/v1/invoices/{invoice.id}/pdf")
    assert response.status_code == 200
    reader = PdfReader(io.BytesIO(response.content))
    text = reader.pages[0].extract_text()
    assert heading in text and ("5,284.80 MAD" if lang == "en" else "5 284,80 MAD") in text.replace(
        "\u202f", " "
    )


async def test_the_arabic_invoice_pdf(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    require_arabic_font()
    user = make_user(db, "ar")
    invoice = make_invoice()
    await logged_in(portal, user.username)
    response = await portal.get(f"/api/v1/invoices/{invoice.id}/pdf")
    reader = PdfReader(io.BytesIO(response.content))
    assert catalog_language(reader) == "ar-MA" and ARABIC.search(reader.pages[0].extract_text())


async def test_the_public_verification_page_follows_the_browser(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    from portnet import receipt_codes
    from portnet.settings import get_settings

    payment = settled_payment(db, make_user(db), make_invoice(ht="4404.00", tva="880.80"))
    code = receipt_codes.receipt_code(payment.id, get_settings().secret_key)
    payment.receipt_code_hash = receipt_codes.code_hash(code)
    db.add(payment)
    db.commit()
    url = f"/verification/{receipt_codes.format_code(code)}"
    english = await portal.get(url, headers={"Accept-Language": "en"})
    assert english.status_code == 200 and html_language(english) == ("en", "ltr")
    assert (
        "5,284.80 MAD" in english.text
        and "30 Nov 2026" in english.text
        and "Payment state today" in english.text
    )
    arabic = await portal.get(url, headers={"Accept-Language": "ar"})
    assert (
        html_language(arabic) == ("ar", "rtl")
        and "5.284,80 MAD" in arabic.text
        and "حالة الأداء اليوم" in arabic.text
    )
    french = await portal.get(url)
    assert "5\u202f284,80 MAD" in french.text and "30/11/2026" in french.text


async def test_a_422_names_the_field_and_the_fault_in_the_callers_language(portal: httpx.AsyncClient) -> None:
    """The sentence is built per request (field, fault): translated piece by piece, not looked up whole."""
    answers = {}
    for lang in ("fr", "en", "ar"):
        answer = await portal.post(
            "/api/v1/access-requests", json={"company_name": "X"}, headers={"Accept-Language": lang}
        )
        assert answer.status_code == 422
        answers[lang] = answer.json()
    assert (
        answers["fr"]["detail"].startswith("Données invalides — ")
        and "champ obligatoire" in answers["fr"]["detail"]
    )
    assert (
        answers["en"]["detail"].startswith("Invalid data — ") and "required field" in answers["en"]["detail"]
    )
    assert "حقل إلزامي" in answers["ar"]["detail"]
    assert {e["message"] for e in answers["en"]["errors"]} == {"required field"}


def test_without_the_arabic_font_the_receipt_is_drawn_in_french(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    """A machine missing DejaVu Sans must not stop a settlement: the receipt comes out in French."""
    from portnet.documents import layout

    monkeypatch.setenv("PORTNET_PDF_FONT_DIR", str(tmp_path))
    monkeypatch.setattr(layout, "FONT_DIRS", ())
    reader = PdfReader(io.BytesIO(documents.render_receipt_pdf(receipt("ar"))))
    text = reader.pages[0].extract_text()
    assert catalog_language(reader) == "fr-MA" and "Paiement confirmé" in text and not ARABIC.search(text)


async def test_a_payment_refusal_names_the_invoices_in_the_callers_language(
    portal: httpx.AsyncClient, db: Session, make_invoice: Callable[..., Invoice]
) -> None:
    portal.app.state.temporal = CapturingTemporal()  # type: ignore[attr-defined]
    user = make_user(db)
    paid = make_invoice(status="paid")
    await logged_in(portal, user.username)
    body = {"invoice_ids": [paid.id], "channel": "cmi_card", "payer": {"name": "A", "email": "a@b.ma"}}
    english = await portal.post("/api/v1/payments", json=body, headers={"Accept-Language": "en"})
    assert english.status_code == 409
    assert english.json()["detail"] == f"Invoice(s) that cannot be paid: {paid.number} (Invoice paid)."
    french = await portal.post("/api/v1/payments", json=body)
    assert french.json()["detail"] == f"Facture(s) non réglable(s): {paid.number} (Facture payée)."
