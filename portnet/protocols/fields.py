"""Field rules that every partner message is held to before its signature is even looked at.

A signature only says who computed it over which string; when that string joins fields with a
separator, a separator inside a field moves text from one field to the next without changing the
string. So a message is first read field by field against closed rules (known names, our own ids,
amounts as money, bounded lengths, no separator or control character), and only a message that
passes is verified. A message that does not pass is rejected with the name of the first field at
fault, and nothing in it is signed, echoed or acted on.

The protocol modules next to this one (``cmi``, ``fatourati``, ``amanpay``, ``emitter``) build
their typed messages with the readers here.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import parse_qsl

# Our order id, also CMI's ``oid``, Fatourati's ``orderId`` and Amanpay's ``order_id``
# (web/payments.py: "PN" + 12 upper-case hex digits).
PAYMENT_ID = re.compile(r"PN[0-9A-F]{12}")
# Money as partners write it: digits, a dot, at most two decimals; no sign, exponent, NaN or
# Infinity, no thousands separator. Twelve integer digits are far above any invoice.
_AMOUNT = re.compile(r"(?:0|[1-9][0-9]{0,11})(?:\.[0-9]{1,2})?")
# The joining separator and every control or line-breaking character.
_UNSAFE = re.compile(r"[|\x00-\x1f\x7f-\x9f\u2028\u2029]")
HEX_SHA256 = re.compile(r"[0-9a-fA-F]{64}")
_ISO_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?(?:Z|[+-][0-9]{2}:[0-9]{2})?"
)
# No partner field we know needs more; a longer one is a mistake or an attack.
DEFAULT_MAX_LENGTH = 255
MAX_FIELDS = 64


class MessageRejected(ValueError):
    """A partner message that breaks a field rule. ``field`` names the first field at fault."""

    def __init__(self, field: str, rule: str) -> None:
        super().__init__(f"{field}: {rule}")
        self.field = field
        self.rule = rule


def is_safe_text(value: str, max_length: int = DEFAULT_MAX_LENGTH) -> bool:
    """Bounded, and free of the separator and of control characters."""
    return len(value) <= max_length and _UNSAFE.search(value) is None


def parse_amount(value: object) -> Decimal | None:
    """A finite, strictly positive amount with at most two decimals, quantized to centimes."""
    if not isinstance(value, str) or not _AMOUNT.fullmatch(value):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:  # pragma: no cover - the pattern admits only plain decimals
        return None
    if not amount.is_finite() or amount <= 0:
        return None
    return amount.quantize(Decimal("0.01"))


def parse_datetime(value: str) -> datetime | None:
    if not _ISO_DATETIME.fullmatch(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def strict_json_object(raw: bytes) -> dict[str, Any]:
    """A flat JSON object (every partner message is one), as UTF-8, without duplicate names, the
    non-standard NaN/Infinity constants, nested values or characters that cannot be encoded."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        names = [name for name, _ in items]
        if len(names) != len(set(names)):
            raise MessageRejected("body", "duplicate name")
        return dict(items)

    def constant(name: str) -> Any:
        raise MessageRejected("body", f"{name} is not JSON")

    try:
        data = json.loads(raw.decode("utf-8"), object_pairs_hook=pairs, parse_constant=constant)
    except MessageRejected:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise MessageRejected("body", "not a JSON document") from None
    if not isinstance(data, dict):
        raise MessageRejected("body", "not a JSON object")
    for name, value in data.items():
        if isinstance(value, dict | list):
            raise MessageRejected(ascii(name[:40]), "nested value")
        for text in (name, value):
            if isinstance(text, str):
                try:
                    text.encode("utf-8")
                except UnicodeEncodeError:  # "\ud800" is valid JSON but no character
                    raise MessageRejected("body", "lone surrogate") from None
    return data


def strict_form(raw: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, UTF-8, each name once (ignoring case)."""
    try:
        pairs = parse_qsl(
            raw.decode("utf-8"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except ValueError:  # UnicodeDecodeError included
        raise MessageRejected("body", "not a UTF-8 form") from None
    names = [name.lower() for name, _ in pairs]
    if len(names) != len(set(names)):
        raise MessageRejected("body", "duplicate name")
    return dict(pairs)


class FieldReader:
    """Reads one message's fields against the rules; every method raises ``MessageRejected``."""

    def __init__(
        self,
        fields: Mapping[str, object],
        allowed: Collection[str],
        required: Collection[str] = (),
    ) -> None:
        if len(fields) > MAX_FIELDS:
            raise MessageRejected("body", "too many fields")
        for name in fields:
            if name not in allowed:
                raise MessageRejected(ascii(str(name)[:40]), "unknown field")
        for name in required:
            if name not in fields:
                raise MessageRejected(name, "missing")
        self.fields = fields

    def text(
        self,
        name: str,
        pattern: re.Pattern[str] | None = None,
        max_length: int = DEFAULT_MAX_LENGTH,
        optional: bool = False,
    ) -> str:
        """A string (JSON numbers, booleans and nulls are refused) that passes the safe-text rule."""
        value = self.fields.get(name)
        if value is None and optional and name not in self.fields:
            return ""
        if not isinstance(value, str):
            raise MessageRejected(name, "not a string")
        if not is_safe_text(value, max_length):
            raise MessageRejected(name, "too long or unsafe character")
        if pattern is not None and not pattern.fullmatch(value):
            raise MessageRejected(name, "bad format")
        return value

    def one_of(self, name: str, allowed: Collection[str]) -> str:
        value = self.text(name)
        if value not in allowed:
            raise MessageRejected(name, "unknown value")
        return value

    def equal(self, name: str, expected: str) -> str:
        value = self.text(name)
        if value != expected:
            raise MessageRejected(name, "not ours")
        return value

    def amount(self, name: str) -> Decimal:
        amount = parse_amount(self.fields.get(name))
        if amount is None:
            raise MessageRejected(name, "not a positive amount with two decimals")
        return amount

    def payment_id(self, name: str) -> str:
        return self.text(name, PAYMENT_ID)

    def datetime(self, name: str, optional: bool = False) -> datetime | None:
        value = self.text(name, max_length=40, optional=optional)
        if value == "" and optional:
            return None
        parsed = parse_datetime(value)
        if parsed is None:
            raise MessageRejected(name, "not an ISO 8601 date and time")
        return parsed

    def integer(self, name: str, low: int, high: int) -> int:
        """A JSON integer (not a boolean, not a string) within bounds."""
        value = self.fields.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise MessageRejected(name, f"not an integer from {low} to {high}")
        return value
