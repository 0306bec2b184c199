"""Accounts in a browser: the forced password change at first login, and the forgotten password
reset from the e-mail link."""

from __future__ import annotations

import re
import uuid

from playwright.async_api import expect
from sqlmodel import Session, select

from portnet.models import Company, User
from portnet.security import hash_password
from tests.support.api import Stack
from tests.support.browser import Scenario, last_mail_to, log_in

GIVEN = "Donne-2026-par-PortNet!"
CHOSEN = "grue bleue sur le quai trois"


def new_user(db: Session, must_change: bool) -> User:
    company = db.exec(select(Company).where(Company.customs_code == "290240")).one()
    user = User(
        username=f"nav{uuid.uuid4().hex[:8]}",
        password_hash=hash_password(GIVEN),
        role="client",
        company_id=company.id,
        full_name="Agent de test",
        email=f"agent.{uuid.uuid4().hex[:8]}@sataa.ma",
        must_change_password=must_change,
    )
    db.add(user)
    db.commit()
    db.refresh(user)
    return user


async def test_login_and_forced_password_change(scenario: Scenario, db: Session) -> None:
    user = new_user(db, must_change=True)
    page = scenario.page
    await page.goto(scenario.base_url + "/connexion")
    await expect(page.get_by_role("link", name="Nouveau client ?")).to_be_visible()
    await expect(page.get_by_role("link", name="Mot de passe oublié ?")).to_be_visible()
    await scenario.check("login page", readme="connexion")

    await log_in(scenario, user.username, GIVEN)
    await expect(page).to_have_url(re.compile(r"/mot-de-passe$"))
    await expect(page.get_by_role("heading", name="Changement du mot de passe")).to_be_visible()
    await scenario.check("forced password change")

    await page.get_by_label("Mot de Passe", exact=True).fill(GIVEN)
    await page.get_by_label("Nouveau mot de passe", exact=True).fill("court")
    await page.get_by_label("Confirmer mot de passe").fill("court")
    await page.get_by_role("button", name="Modifier").click()
    await expect(page.get_by_role("alert")).to_contain_text("au moins 12 caractères")
    await scenario.check("password refused")

    await page.get_by_label("Mot de Passe", exact=True).fill(GIVEN)
    await page.get_by_label("Nouveau mot de passe", exact=True).fill(CHOSEN)
    await page.get_by_label("Confirmer mot de passe").fill(CHOSEN)
    await page.get_by_role("button", name="Modifier").click()
    await expect(page.get_by_text("Votre nouveau mot de passe a été enregistré.")).to_be_visible()
    await scenario.check("password changed")


async def test_password_reset_from_the_mail_link(scenario: Scenario, stack: Stack, db: Session) -> None:
    user = new_user(db, must_change=False)
    page = scenario.page
    await page.goto(scenario.base_url + "/connexion")
    await page.get_by_role("link", name="Mot de passe oublié ?").click()
    await page.get_by_label("Nom d'utilisateur ou e-mail").fill(str(user.email))
    await scenario.check("forgotten password form")
    await page.get_by_role("button", name="Envoyer le lien").click()
    await expect(page.get_by_role("status")).to_contain_text("Si un compte correspond")
    await scenario.check("link sent")

    mail = await last_mail_to(stack.sandbox_url, str(user.email), "réinitialisation")
    link = re.search(r"https?://\S+/mot-de-passe-oublie/\S+", mail["text"])
    assert link, mail["text"]
    await page.goto(link.group(0))
    await expect(page.get_by_role("heading", name="Choisir un nouveau mot de passe")).to_be_visible()
    await scenario.check("new password form")
    await page.get_by_label("Nouveau mot de passe", exact=True).fill(CHOSEN)
    await page.get_by_label("Confirmer mot de passe").fill(CHOSEN)
    await page.get_by_role("button", name="Modifier").click()
    await expect(page).to_have_url(re.compile(r"/connexion$"))
    await expect(page.get_by_role("status")).to_contain_text("nouveau mot de passe a été enregistré")
    await scenario.check("password reset")

    await log_in(scenario, user.username, CHOSEN)
    await expect(page).to_have_url(re.compile(r"/accueil$"))
    await expect(page.get_by_role("heading", name="Mon compte")).to_be_visible()
    await scenario.check("home screen")

    # The link served once.
    await page.goto(link.group(0))
    await expect(page).to_have_url(re.compile(r"/mot-de-passe-oublie$"))
