"""The payloads of a recorded history, to look for what must never be in one (an SMS code, a card
number) or to check they are encrypted."""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec


def history_payloads(history_json: str) -> list[Payload]:
    """Every payload of a history in protobuf JSON (``fetch_history().to_json()`` or ``temporal
    workflow show --output json``): inputs, results, signals, updates, queries, failures, markers."""
    found: list[Payload] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            metadata = node.get("metadata")
            if isinstance(metadata, dict) and "encoding" in metadata:
                found.append(json_format.ParseDict(node, Payload(), ignore_unknown_fields=True))
                return
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(json.loads(history_json))
    return found


async def history_payload_texts(history_json: str, codec: PayloadCodec | None = None) -> list[str]:
    """The payloads' data as text, opened by ``codec`` first if given (what finance reads in the UI)."""
    payloads = history_payloads(history_json)
    if codec is not None:
        payloads = await codec.decode(payloads)
    return [p.data.decode("utf-8", errors="replace") for p in payloads]


def encodings(payloads: list[Payload]) -> set[str]:
    return {p.metadata["encoding"].decode() for p in payloads}
