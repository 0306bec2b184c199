"""Fixtures of the partner-message tests: the portal in process and a live attempt."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlmodel import Session

from portnet.models import Invoice
from tests.support.partners import Ledger, Portal, new_attempt


@pytest.fixture
def client() -> Iterator[Portal]:
    portal = Portal()
    yield portal
    portal.close()


@pytest.fixture
def ledger(db: Session, make_invoice: Callable[..., Invoice]) -> Ledger:
    return new_attempt(db, make_invoice(ht="100.00", tva="20.00"))
