"""Encryption of everything we hand to Temporal: one data converter for every client and worker.

Workflow histories keep our inputs, results, signals, updates, queries and failures for as long as
the namespace retains them, and anyone who can open the Web UI could read the payer's name, e-mail,
phone, CIN and PayDirect contract number there. So every payload is sealed with AES-256-GCM before it
leaves the process, and only holders of the key read it: the worker, the portal, and finance through
the portal's codec endpoint (web/codec_server.py), which the Web UI calls to show decoded histories.

One payload in, one payload out: the serialized original payload is encrypted under a random 96-bit
nonce; the key id travels in the metadata (``encryption-key-id``) and is bound as associated data, so
a ciphertext cannot be passed off as sealed under another key. Rotation: ``TEMPORAL_PAYLOAD_KEYS``
lists ``kid:base64key`` pairs, the first one encrypts, all of them decrypt — add a new key in front,
keep the old ones until no open history still needs them. Payloads without our encoding (histories
recorded before the codec, or by a client without it) pass through unchanged.

Every Temporal client of the system must be built with :func:`data_converter` (portal, worker,
launcher, tests, benchmarks), or the parts cannot read each other's payloads.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from google.protobuf.message import DecodeError
from temporalio.api.common.v1 import Payload
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes, PayloadCodec

from portnet.settings import Settings

ENCODING = b"binary/encrypted"
KEY_ID_METADATA = "encryption-key-id"
NONCE_BYTES = 12  # 96 bits: the size GCM is defined for
KEY_BYTES = 32  # AES-256
SETTING = "TEMPORAL_PAYLOAD_KEYS"
_KEY_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The development key is derived from SECRET_KEY; this label keeps it distinct from every other use.
_DEV_KEY_INFO = b"portnet temporal payload key v1"


class PayloadKeyError(ValueError):
    """TEMPORAL_PAYLOAD_KEYS is missing (production) or malformed. Never carries key material."""


class PayloadDecryptionError(ValueError):
    """A payload says it is ours but cannot be opened: unknown key id, or tampered with."""


@dataclass(frozen=True)
class PayloadKey:
    key_id: str
    key: bytes = dataclasses.field(repr=False)


def parse_payload_keys(value: str) -> list[PayloadKey]:
    """``"kid2:base64key,kid1:base64key"`` -> keys, the current (encrypting) one first."""
    keys: list[PayloadKey] = []
    for position, item in enumerate(value.split(","), start=1):
        item = item.strip()
        if not item:
            continue
        key_id, sep, encoded = item.partition(":")
        key_id = key_id.strip()
        if not sep or not _KEY_ID.fullmatch(key_id):
            raise PayloadKeyError(
                f"{SETTING}: entry {position} must be KEY_ID:BASE64_KEY, the key id made of letters, "
                "digits, '.', '_' or '-' (at most 64)"
            )
        # Standard or URL-safe alphabet, padded or not: whatever the operator's tool printed.
        text = encoded.strip().replace("-", "+").replace("_", "/")
        try:
            key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
        except (binascii.Error, ValueError):
            raise PayloadKeyError(f"{SETTING}: the key of {key_id!r} is not base64") from None
        if len(key) != KEY_BYTES:
            raise PayloadKeyError(
                f"{SETTING}: the key of {key_id!r} must be {KEY_BYTES} random bytes (AES-256), "
                f'not {len(key)}; make one with: python -c "import base64,os; '
                'print(base64.b64encode(os.urandom(32)).decode())"'
            )
        if any(existing.key_id == key_id for existing in keys):
            raise PayloadKeyError(f"{SETTING}: the key id {key_id!r} appears twice")
        keys.append(PayloadKey(key_id, key))
    return keys


def development_key(secret_key: str) -> PayloadKey:
    """A stable key for `make run` and the tests, so nobody has to generate one to start developing.

    Its id carries a fingerprint, so a history sealed under another SECRET_KEY fails with "unknown key
    id" rather than a bare authentication error.
    """
    key = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=_DEV_KEY_INFO).derive(
        secret_key.encode()
    )
    return PayloadKey(f"dev-{hashlib.sha256(key).hexdigest()[:8]}", key)


def payload_keys(settings: Settings) -> list[PayloadKey]:
    """The configured keys; in development, a key derived from SECRET_KEY when none is configured."""
    keys = parse_payload_keys(settings.temporal_payload_keys)
    if keys:
        return keys
    if settings.is_production:
        raise PayloadKeyError(
            f"{SETTING} must be set in production: KEY_ID:BASE64_KEY[,OLD_ID:OLD_KEY...], "
            "32 random bytes per key, the first one encrypts"
        )
    return [development_key(settings.secret_key)]


class EncryptionCodec(PayloadCodec):
    """AES-256-GCM over each serialized payload; see the module docstring for the format."""

    def __init__(self, keys: Sequence[PayloadKey]) -> None:
        if not keys:
            raise PayloadKeyError(f"{SETTING}: at least one key is needed")
        self._current = keys[0]
        self._ciphers = {k.key_id: AESGCM(k.key) for k in keys}

    @property
    def current_key_id(self) -> str:
        return self._current.key_id

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self._current.key_id
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(
            metadata={"encoding": ENCODING, KEY_ID_METADATA: key_id.encode()},
            data=nonce + sealed,
        )

    def decrypt(self, payload: Payload) -> Payload:
        if payload.metadata.get("encoding") != ENCODING:
            return payload  # recorded without the codec: nothing to open
        key_id = payload.metadata.get(KEY_ID_METADATA, b"").decode("utf-8", errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise PayloadDecryptionError(f"payload sealed with unknown key id {key_id!r}")
        nonce, sealed = payload.data[:NONCE_BYTES], payload.data[NONCE_BYTES:]
        try:
            return Payload.FromString(cipher.decrypt(nonce, sealed, key_id.encode()))
        except (InvalidTag, DecodeError):
            raise PayloadDecryptionError(
                f"payload sealed with key id {key_id!r} fails authentication"
            ) from None


def payload_codec(settings: Settings) -> EncryptionCodec:
    return EncryptionCodec(payload_keys(settings))


def data_converter(settings: Settings) -> DataConverter:
    """The converter of every Temporal client and worker of PortNet Payments.

    Failures keep their message and stack trace in an encoded attribute too: an error text can quote
    an e-mail address or a phone number (an SMTP refusal, a partner's answer) as easily as a payload.
    """
    return DataConverter(
        payload_codec=payload_codec(settings),
        failure_converter_class=DefaultFailureConverterWithEncodedAttributes,
    )
