"""Ledger instants are naive UTC; people (portal, receipts, e-mails) read Moroccan wall-clock time."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

LOCAL_TZ = ZoneInfo("Africa/Casablanca")


def to_local(instant: datetime) -> datetime:
    aware = instant.replace(tzinfo=UTC) if instant.tzinfo is None else instant
    return aware.astimezone(LOCAL_TZ)
