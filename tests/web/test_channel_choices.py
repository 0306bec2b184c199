"""The confirmation screen's channels, gathered from each channel's web part, in the guide's order."""

from __future__ import annotations

from portnet.statuses import Channel, PaymentMethod
from web.channels import web_channel
from web.pages.payments import platforms_for


def test_platforms_are_grouped_and_ordered_as_the_guide_shows_them() -> None:
    platforms = platforms_for(list(PaymentMethod))
    assert [(p.name, [(c.channel, c.label) for c in p.choices]) for p in platforms] == [
        ("CMI", [(Channel.CMI_CARD, "Carte bancaire"), (Channel.CMI_FATOURATI, "Fatourati")]),
        (
            "Amanpay",
            [
                (Channel.AMANPAY_AMANTY, "Amanty"),
                (Channel.AMANPAY_PAYDIRECT, "PayDirect"),
                (Channel.AMANPAY_CODE, "Code de paiement"),
            ],
        ),
        ("Chèque", [(Channel.CHEQUE, "Chèque")]),
        ("Virement", [(Channel.BANK_TRANSFER, "Virement")]),
    ]
    assert [p.name for p in platforms_for([PaymentMethod.CHEQUE, PaymentMethod.CMI])] == ["CMI", "Chèque"]


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
