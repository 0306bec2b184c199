"""The portal (server-rendered, French): one router per concern, gathered here for the factory."""

from fastapi import APIRouter

from web.pages import access_requests, amanpay, auth, finance, invoices, password_reset, payments
from web.pages.errors import install_error_pages

router = APIRouter(include_in_schema=False)
router.include_router(auth.router)
router.include_router(invoices.router)
router.include_router(payments.router)
router.include_router(finance.router)  # issue 4
router.include_router(amanpay.router)
router.include_router(password_reset.router)
router.include_router(access_requests.router)

__all__ = ["install_error_pages", "router"]
