"""Invoice and payment vocabularies, with the French labels of the user guide.

The API speaks the stable codes; the portal shows the labels.
"""

from __future__ import annotations

from enum import StrEnum

from portnet.i18n import N_


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
    InvoiceStatus.UNPAID: N_("Non réglée"),
    InvoiceStatus.REQUESTED: N_("Demandée"),
    InvoiceStatus.IN_PAYMENT: N_("En cours de paiement"),
    InvoiceStatus.PAYMENT_CONFIRMED: N_("Paiement confirmé"),
    InvoiceStatus.AWAITING_PARTNER: N_("Attente confirmation partenaire"),
    InvoiceStatus.PAID: N_("Facture payée"),
    InvoiceStatus.BLOCKED: N_("Bloquée"),
    InvoiceStatus.CANCELLED: N_("Annulée"),
}

# Only these may be put into a payment attempt.
PAYABLE_STATUSES = frozenset({InvoiceStatus.UNPAID, InvoiceStatus.REQUESTED})


class InvoiceType(StrEnum):
    PRINCIPALE = "principale"
    AVOIR = "avoir"
    COMPLEMENTAIRE = "complementaire"

    @property
    def label(self) -> str:
        return {
            "principale": N_("Principale"),
            "avoir": N_("Avoir"),
            "complementaire": N_("Complémentaire"),
        }[self.value]


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
        labels = {"cmi": "CMI", "amanpay": "Amanpay", "cheque": N_("Chèque"), "virement": N_("Virement")}
        return labels[self.value]


CHANNEL_LABELS: dict[Channel, str] = {
    Channel.CMI_CARD: N_("CMI carte bancaire"),
    Channel.CMI_FATOURATI: N_("CMI Fatourati"),
    Channel.AMANPAY_AMANTY: N_("Amanpay Amanty"),
    Channel.AMANPAY_PAYDIRECT: N_("Amanpay PayDirect"),
    Channel.AMANPAY_CODE: N_("Amanpay code de paiement"),
    Channel.BANK_TRANSFER: N_("Virement"),
    Channel.CHEQUE: N_("Chèque"),
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
    PaymentStatus.STARTED: N_("Démarré"),
    PaymentStatus.AWAITING_PAYER: N_("En attente du payeur"),
    PaymentStatus.AWAITING_CONFIRMATION: N_("En attente de confirmation"),
    PaymentStatus.SUCCEEDED: N_("Réussi"),
    PaymentStatus.FAILED: N_("Échoué"),
    PaymentStatus.EXPIRED: N_("Expiré"),
    PaymentStatus.CANCELLED: N_("Annulé"),
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
            "INV": N_("Invoice (facture) (INV)"),
            "CMI": N_("Dans le processus de paiement (CMI)"),
            "AMA": N_("Dans le processus de paiement (AMA)"),
            "FIN": N_("Back-office finance (FIN)"),
        }[self.value]
