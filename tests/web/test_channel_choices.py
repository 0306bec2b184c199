"""The confirmation screen's channels, gathered from each channel's web part, in the guide's order."""

from __future__ import annotations

from datetime import date

import pytest

from portnet.settings import get_settings
from portnet.statuses import Channel, PaymentMethod
from web.channels import chosen_web_channel, web_channel
from web.channels.base import ChannelRefused
from web.pages.payments import platforms_for


def test_platforms_are_grouped_and_ordered_as_the_guide_shows_them() -> None:
    platforms = platforms_for(list(PaymentMethod))
    assert [(p.name, [(c.value, c.label, c.name) for c in p.choices]) for p in platforms] == [
        (
            "CMI",
            [
                ("cmi_card", "Carte bancaire", "CMI carte bancaire"),
                ("cmi_fatourati", "Fatourati", "CMI Fatourati"),
            ],
        ),
        ("Chèque", [("cheque", "Chèque", "Chèque")]),
        # One choice: Amanpay's means are chosen on Amanpay's own screen [287-296].
        ("Amanpay", [("amanpay", "Amanpay", "Amanpay")]),
        ("Virement", [("bank_transfer", "Virement", "Virement")]),
    ]
    assert [p.name for p in platforms_for([PaymentMethod.AMANPAY, PaymentMethod.CMI])] == ["CMI", "Amanpay"]


def test_each_channel_value_has_its_web_part_and_an_unknown_one_none() -> None:
    assert {channel: web_channel(channel.value).name for channel in Channel} == {  # type: ignore[union-attr]
        Channel.CMI_CARD: "cmi_card",
        Channel.CMI_FATOURATI: "fatourati",
        Channel.AMANPAY_AMANTY: "amanpay",
        Channel.AMANPAY_CODE: "amanpay",
        Channel.AMANPAY_PAYDIRECT: "paydirect",
        Channel.CHEQUE: "cheque_transfer",
        Channel.BANK_TRANSFER: "cheque_transfer",
    }
    assert web_channel("bitcoin") is None and web_channel(None) is None
    assert web_channel("amanpay") is None  # a platform, not a channel: no attempt runs on it


def test_the_amanpay_platform_leads_to_amanpay_screen() -> None:
    amanpay = chosen_web_channel("amanpay")
    assert amanpay is not None and amanpay.name == "amanpay" and amanpay.screen is not None
    assert chosen_web_channel("cheque") is web_channel("cheque")
    assert chosen_web_channel("bitcoin") is None and chosen_web_channel(None) is None


def test_paydirect_takes_the_bank_chosen_first_and_refuses_any_other() -> None:
    paydirect = web_channel("amanpay_paydirect")
    assert paydirect is not None
    contract = {
        "contract_number": "PD1002457",
        "cin": "BE123456",
        "mandataire": "Yassine Alaoui",
        "phone": "+212600000001",
    }
    settings, today = get_settings(), date(2026, 11, 30)
    chosen = paydirect.checkout(Channel.AMANPAY_PAYDIRECT, contract | {"bank": "BCP"}, None, settings, today)
    assert chosen.amanpay is not None and chosen.amanpay.contract_number == "PD1002457"
    # The JSON API may leave the bank out: PayDirect is Banque Populaire's.
    assert paydirect.checkout(Channel.AMANPAY_PAYDIRECT, contract, None, settings, today).amanpay is not None
    with pytest.raises(ChannelRefused) as refused:
        paydirect.checkout(Channel.AMANPAY_PAYDIRECT, contract | {"bank": "XYZ"}, None, settings, today)
    assert refused.value.status_code == 422 and refused.value.message == "Choisissez votre banque."
