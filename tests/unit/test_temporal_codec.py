"""The payload codec: what Temporal stores of our payloads is AES-256-GCM ciphertext under a key id."""

from __future__ import annotations

import base64
import dataclasses
import os

import pytest
from temporalio.api.common.v1 import Payload
from temporalio.api.failure.v1 import Failure
from temporalio.converter import DataConverter
from temporalio.exceptions import ApplicationError

from portnet.settings import Settings
from portnet.temporal_codec import (
    ENCODING,
    KEY_ID_METADATA,
    EncryptionCodec,
    PayloadDecryptionError,
    PayloadKey,
    PayloadKeyError,
    data_converter,
    development_key,
    parse_payload_keys,
    payload_keys,
)
from workflows.types import AmanpayPayer, PayerInfo, PaymentInput

PAYER_EMAIL = "mandataire.sataa@example.ma"
PAYER_PHONE = "+212600000001"
CIN = "BE123456"
CONTRACT = "PD1002457"


def b64(key: bytes) -> str:
    return base64.b64encode(key).decode()


def keys_setting(*pairs: tuple[str, bytes]) -> str:
    return ",".join(f"{kid}:{b64(key)}" for kid, key in pairs)


def settings(**values: object) -> Settings:
    return Settings.model_validate({"portnet_env": "development", "secret_key": "s" * 40, **values})


def paydirect_input() -> PaymentInput:
    return PaymentInput(
        payment_id="PN0123456789AB",
        channel="amanpay_paydirect",
        company_id=1,
        user_id=2,
        user_name="sataa",
        invoice_ids=[10, 11],
        payer=PayerInfo(name="Karim Alaoui", email=PAYER_EMAIL, phone=PAYER_PHONE),
        amanpay=AmanpayPayer(contract_number=CONTRACT, cin=CIN, mandataire="Karim Alaoui", phone=PAYER_PHONE),
    )


def personal_data_in(data: bytes) -> list[str]:
    return [s for s in (PAYER_EMAIL, PAYER_PHONE, CIN, CONTRACT, "Karim Alaoui") if s.encode() in data]


async def test_a_payment_input_round_trips_and_is_stored_as_ciphertext() -> None:
    key = os.urandom(32)
    converter = data_converter(settings(temporal_payload_keys=keys_setting(("k1", key))))
    inp = paydirect_input()
    [payload] = await converter.encode([inp])
    assert payload.metadata["encoding"] == ENCODING
    assert payload.metadata[KEY_ID_METADATA] == b"k1"
    assert personal_data_in(payload.data) == []
    assert personal_data_in(payload.SerializeToString()) == []
    [back] = await converter.decode([payload], [PaymentInput])
    assert back == inp
    # A client without the codec (or with the wrong keys) cannot make a PaymentInput of it.
    with pytest.raises(KeyError, match="binary/encrypted"):
        await DataConverter.default.decode([payload], [PaymentInput])


async def test_each_payload_gets_its_own_nonce() -> None:
    codec = EncryptionCodec([PayloadKey("k1", os.urandom(32))])
    clear = Payload(metadata={"encoding": b"json/plain"}, data=b'{"email": "a@b.ma"}')
    first, second = await codec.encode([clear, clear])
    assert first.data[:12] != second.data[:12] and first.data != second.data
    assert await codec.decode([first, second]) == [clear, clear]


async def test_rotation_old_key_still_decodes_new_key_encodes() -> None:
    old, new = os.urandom(32), os.urandom(32)
    before = data_converter(settings(temporal_payload_keys=keys_setting(("2026-01", old))))
    after = data_converter(settings(temporal_payload_keys=keys_setting(("2026-07", new), ("2026-01", old))))
    inp = paydirect_input()
    [sealed_before] = await before.encode([inp])
    [sealed_after] = await after.encode([inp])
    assert sealed_before.metadata[KEY_ID_METADATA] == b"2026-01"
    assert sealed_after.metadata[KEY_ID_METADATA] == b"2026-07"
    assert await after.decode([sealed_before], [PaymentInput]) == [inp]
    assert await after.decode([sealed_after], [PaymentInput]) == [inp]
    # A process still on the old key list cannot open what the new key sealed, and says why.
    with pytest.raises(PayloadDecryptionError, match="unknown key id '2026-07'"):
        await before.decode([sealed_after], [PaymentInput])


async def test_tampered_ciphertext_fails() -> None:
    codec = EncryptionCodec([PayloadKey("k1", os.urandom(32))])
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    for position in (0, 12, len(sealed.data) - 1):  # nonce, ciphertext, tag
        tampered = Payload()
        tampered.CopyFrom(sealed)
        data = bytearray(sealed.data)
        data[position] ^= 0x01
        tampered.data = bytes(data)
        with pytest.raises(PayloadDecryptionError, match="fails authentication"):
            await codec.decode([tampered])
    truncated = Payload()
    truncated.CopyFrom(sealed)
    truncated.data = sealed.data[:10]
    with pytest.raises(PayloadDecryptionError):
        await codec.decode([truncated])


async def test_key_id_is_bound_as_associated_data() -> None:
    """Same key under two ids: relabelling a payload still fails, so the id cannot be lied about."""
    key = os.urandom(32)
    codec = EncryptionCodec([PayloadKey("a", key), PayloadKey("b", key)])
    [sealed] = await codec.encode([Payload(metadata={"encoding": b"json/plain"}, data=b'"x"')])
    relabelled = Payload()
    relabelled.CopyFrom(sealed)
    relabelled.metadata[KEY_ID_METADATA] = b"b"
    with pytest.raises(PayloadDecryptionError, match="'b' fails authentication"):
        await codec.decode([relabelled])


async def test_payloads_recorded_without_the_codec_pass_through() -> None:
    codec = EncryptionCodec([PayloadKey("k1", os.urandom(32))])
    plain = await DataConverter.default.encode([paydirect_input(), None, b"raw"])
    assert await codec.decode(plain) == plain
    converter = data_converter(settings())
    assert await converter.decode(plain[:1], [PaymentInput]) == [paydirect_input()]


async def test_failure_messages_are_encrypted_too() -> None:
    """An error text can quote an e-mail address (an SMTP refusal): it goes into an encoded attribute."""
    converter = data_converter(settings())
    failure = Failure()
    await converter.encode_failure(ApplicationError(f"550 recipient refused: {PAYER_EMAIL}"), failure)
    assert PAYER_EMAIL.encode() not in failure.SerializeToString()
    assert failure.encoded_attributes.metadata["encoding"] == ENCODING
    error = await converter.decode_failure(failure)
    assert PAYER_EMAIL in str(error)


def test_key_setting_is_parsed_current_first() -> None:
    k1, k2 = os.urandom(32), os.urandom(32)
    urlsafe_unpadded = base64.urlsafe_b64encode(k2).decode().rstrip("=")
    keys = parse_payload_keys(f" kid2:{urlsafe_unpadded} , kid1:{b64(k1)} ,")
    assert [(k.key_id, k.key) for k in keys] == [("kid2", k2), ("kid1", k1)]
    assert b64(k1) not in repr(keys)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("nokeyid", "KEY_ID:BASE64_KEY"),
        (f"bad id:{b64(b'x' * 32)}", "KEY_ID:BASE64_KEY"),
        ("k1:not*base64", "not base64"),
        (f"k1:{b64(b'x' * 16)}", "must be 32 random bytes"),
        (f"k1:{b64(b'x' * 32)},k1:{b64(b'y' * 32)}", "appears twice"),
    ],
)
def test_malformed_key_setting_is_refused_without_echoing_keys(value: str, message: str) -> None:
    with pytest.raises(PayloadKeyError, match=message) as info:
        parse_payload_keys(value)
    assert "TEMPORAL_PAYLOAD_KEYS" in str(info.value)
    assert "eHh4" not in str(info.value) and "eXl5" not in str(info.value)  # base64 of the keys


def test_production_requires_the_key_setting() -> None:
    production = Settings.model_validate({"portnet_env": "production", "secret_key": "p" * 40})
    with pytest.raises(PayloadKeyError, match="TEMPORAL_PAYLOAD_KEYS must be set in production"):
        data_converter(production)
    key = os.urandom(32)
    configured = production.model_copy(update={"temporal_payload_keys": keys_setting(("prod-1", key))})
    assert [dataclasses.astuple(k) for k in payload_keys(configured)] == [("prod-1", key)]


def test_development_key_derives_from_secret_key() -> None:
    first, again = payload_keys(settings(secret_key="a" * 40)), payload_keys(settings(secret_key="a" * 40))
    other = payload_keys(settings(secret_key="b" * 40))
    assert first == again == [development_key("a" * 40)]
    assert len(first[0].key) == 32 and first[0].key_id.startswith("dev-")
    assert other[0].key != first[0].key and other[0].key_id != first[0].key_id
