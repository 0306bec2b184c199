"""Invoice and payment vocabularies, with the French labels of the user guide.

The API speaks the stable codes; the portal shows the labels.
"""

from __future__ import annotations

from enum import StrEnum


class InvoiceStatus(StrEnum):
    UNPAID = "unpaid"
    REQUESTED = "requested"
    IN_PAYMENT = "in_payment"
    PAYMENT_CONFIRMED = "payment_confirmed"
    AWAITING_PARTNER = "awaiting_partner"
    PAID = "paid"
    BLOCKED = "blocked"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return INVOICE_STATUS_LABELS[self]


INVOICE_STATUS_LABELS: dict[InvoiceStatus, str] = {
    InvoiceStatus.UNPAID: "Non réglée",
    InvoiceStatus.REQUESTED: "Demandée",
    InvoiceStatus.IN_PAYMENT: "En cours de paiement",
    InvoiceStatus.PAYMENT_CONFIRMED: "Paiement confirmé",
    InvoiceStatus.AWAITING_PARTNER: "Attente confirmation partenaire",
    InvoiceStatus.PAID: "Facture payée",
    InvoiceStatus.BLOCKED: "Bloquée",
    InvoiceStatus.CANCELLED: "Annulée",
}

# Only these may be put into a payment attempt.
PAYABLE_STATUSES = frozenset({InvoiceStatus.UNPAID, InvoiceStatus.REQUESTED})


class InvoiceType(StrEnum):
    PRINCIPALE = "principale"
    AVOIR = "avoir"
    COMPLEMENTAIRE = "complementaire"

    @property
    def label(self) -> str:
        return {"principale": "Principale", "avoir": "Avoir", "complementaire": "Complémentaire"}[self.value]


class Channel(StrEnum):
    CMI_CARD = "cmi_card"
    CMI_FATOURATI = "cmi_fatourati"
    AMANPAY_AMANTY = "amanpay_amanty"
    AMANPAY_PAYDIRECT = "amanpay_paydirect"
    AMANPAY_CODE = "amanpay_code"
    BANK_TRANSFER = "bank_transfer"
    CHEQUE = "cheque"

    @property
    def label(self) -> str:
        return CHANNEL_LABELS[self]

    @property
    def method(self) -> PaymentMethod:
        return CHANNEL_METHOD[self]

    @property
    def message_function(self) -> str:
        """The message-log function code of this channel (CMI, AMA, FIN)."""
        return {PaymentMethod.CMI: "CMI", PaymentMethod.AMANPAY: "AMA"}.get(self.method, "FIN")


class PaymentMethod(StrEnum):
    """What an invoice allows ("Moyen de paiement" in the guide); a method offers one or more channels."""

    CMI = "cmi"
    AMANPAY = "amanpay"
    CHEQUE = "cheque"
    VIREMENT = "virement"

    @property
    def label(self) -> str:
        return {"cmi": "CMI", "amanpay": "Amanpay", "cheque": "Chèque", "virement": "Virement"}[self.value]


CHANNEL_LABELS: dict[Channel, str] = {
    Channel.CMI_CARD: "CMI carte bancaire",
    Channel.CMI_FATOURATI: "CMI Fatourati",
    Channel.AMANPAY_AMANTY: "Amanpay Amanty",
    Channel.AMANPAY_PAYDIRECT: "Amanpay PayDirect",
    Channel.AMANPAY_CODE: "Amanpay code de paiement",
    Channel.BANK_TRANSFER: "Virement",
    Channel.CHEQUE: "Chèque",
}

CHANNEL_METHOD: dict[Channel, PaymentMethod] = {
    Channel.CMI_CARD: PaymentMethod.CMI,
    Channel.CMI_FATOURATI: PaymentMethod.CMI,
    Channel.AMANPAY_AMANTY: PaymentMethod.AMANPAY,
    Channel.AMANPAY_PAYDIRECT: PaymentMethod.AMANPAY,
    Channel.AMANPAY_CODE: PaymentMethod.AMANPAY,
    Channel.BANK_TRANSFER: PaymentMethod.VIREMENT,
    Channel.CHEQUE: PaymentMethod.CHEQUE,
}

# The channels this build can take payments on; a new channel is offered once it is listed here.
ENABLED_CHANNELS: tuple[Channel, ...] = (
    Channel.CMI_CARD,
    Channel.CMI_FATOURATI,
    Channel.CHEQUE,
    Channel.BANK_TRANSFER,
    Channel.AMANPAY_CODE,
    Channel.AMANPAY_AMANTY,
    Channel.AMANPAY_PAYDIRECT,
)


class PaymentStatus(StrEnum):
    STARTED = "started"
    AWAITING_PAYER = "awaiting_payer"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def label(self) -> str:
        return PAYMENT_STATUS_LABELS[self]

    @property
    def is_final(self) -> bool:
        return self in {
            PaymentStatus.SUCCEEDED,
            PaymentStatus.FAILED,
            PaymentStatus.EXPIRED,
            PaymentStatus.CANCELLED,
        }


PAYMENT_STATUS_LABELS: dict[PaymentStatus, str] = {
    PaymentStatus.STARTED: "Démarré",
    PaymentStatus.AWAITING_PAYER: "En attente du payeur",
    PaymentStatus.AWAITING_CONFIRMATION: "En attente de confirmation",
    PaymentStatus.SUCCEEDED: "Réussi",
    PaymentStatus.FAILED: "Échoué",
    PaymentStatus.EXPIRED: "Expiré",
    PaymentStatus.CANCELLED: "Annulé",
}


class Role(StrEnum):
    CLIENT = "client"
    FINANCE = "finance"
    ADMIN = "admin"


class MessageFunction(StrEnum):
    """ "Fonction de la demande" of the message log."""

    INV = "INV"
    CMI = "CMI"
    AMA = "AMA"
    FIN = "FIN"

    @property
    def label(self) -> str:
        return {
            "INV": "Invoice (facture) (INV)",
            "CMI": "Dans le processus de paiement (CMI)",
            "AMA": "Dans le processus de paiement (AMA)",
            "FIN": "Back-office finance (FIN)",
        }[self.value]
