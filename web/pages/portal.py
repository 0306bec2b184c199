"""The portal's routers gathered for the factory (each channel's own pages come from web/channels/).

Not in ``web/pages/__init__.py``: a channel's module uses the portal's helpers (web/pages/guards.py,
rendering.py), and importing those must not import every page of the portal first.
"""

from fastapi import APIRouter

from web.pages import access_requests, auth, finance, invoices, language, password_reset, payments
from web.pages import reconciliation as reconciliation_pages

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(invoices.router)
router.include_router(payments.router)
router.include_router(finance.router)
router.include_router(reconciliation_pages.router)
router.include_router(password_reset.router)
router.include_router(access_requests.router)
router.include_router(language.router)
