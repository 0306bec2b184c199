"""The payment channels of ``PaymentWorkflow``, one class per channel, by the ``Channel`` value the
payer chose. Adding a channel: its file here (a ``PaymentChannel``, workflows/channels/base.py) and
its line below.
"""

from __future__ import annotations

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from portnet.statuses import Channel
    from workflows.attempt import Attempt
    from workflows.channels.amanpay import Amanpay
    from workflows.channels.base import PaymentChannel, Unavailable
    from workflows.channels.cheque_transfer import ChequeTransfer
    from workflows.channels.cmi_card import CmiCard
    from workflows.channels.fatourati import Fatourati
    from workflows.channels.paydirect import PayDirect

CHANNELS: dict[str, type[PaymentChannel]] = {
    Channel.CMI_CARD.value: CmiCard,
    Channel.CMI_FATOURATI.value: Fatourati,
    Channel.AMANPAY_CODE.value: Amanpay,
    Channel.AMANPAY_AMANTY.value: Amanpay,
    Channel.AMANPAY_PAYDIRECT.value: PayDirect,
    Channel.CHEQUE.value: ChequeTransfer,
    Channel.BANK_TRANSFER.value: ChequeTransfer,
}


def channel_for(attempt: Attempt) -> PaymentChannel:
    """The attempt's channel; one this build does not take fails the attempt at its start."""
    return CHANNELS.get(attempt.inp.channel, Unavailable)(attempt)
