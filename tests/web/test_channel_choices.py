"""The confirmation screen's channels, gathered from each channel's web part, in the guide's order."""

from __future__ import annotations

from portnet.statuses import Channel, PaymentMethod
from web.channels import chosen_web_channel, web_channel
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
