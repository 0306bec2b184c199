"""CMI Fatourati on the web side: the reference page ("COMMENT PROCÉDER AU PAIEMENT", worded as the
user guide's section II.2.b "Par CMI" words it, channel by channel).

The guide lists "Global Vision FAWATIR" among the channels without steps of its own; like the other
agencies, the reference is presented at the counter.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from sqlmodel import Session

from portnet.models import Payment
from portnet.settings import Settings
from portnet.statuses import Channel, PaymentStatus
from web.channels.base import Choice, StatusPart, WebChannel, remaining_text, sandbox_pages
from workflows.types import PaymentView


@dataclass(frozen=True)
class GuideChannel:
    name: str
    intro: str
    steps: tuple[str, ...] = ()
    outro: tuple[str, ...] = field(default_factory=tuple)
    sandbox_code: str = ""


RECEIPT = "Après avoir accompli toutes les étapes, votre reçu de paiement sera affiché pour téléchargement."
AGENCY = (
    "Veuillez sélectionner la plateforme de paiement CMI>FATOURATI et récupérer la référence FATOURATI "
    "à présenter directement à l'agence {agency} choisie."
)

GENERAL = (
    "Veuillez utiliser l'un des canaux de paiement autorisés, sélectionner le service ANP et le « PortNet » "
    "et communiquer votre référence Fatourati {reference}. Passé le délai, votre règlement sera refusé."
)

CHANNELS: tuple[GuideChannel, ...] = (
    GuideChannel(
        "AttijariNet / Attijari Mobile",
        "Il faut accéder à votre application, choisir le menu liste des services, sélectionner PortNet, "
        "saisir la référence Fatourati et le montant de votre facture, choisir le compte à débiter et "
        "procéder au paiement.",
        outro=(RECEIPT,),
        sandbox_code="attijarinet",
    ),
    GuideChannel(
        "BMCE Portail / BMCE Direct",
        "Il faut accéder à votre BMCE Portail et suivre les étapes suivantes :",
        (
            "Choisir le menu liste des services,",
            "Sélectionner PortNet,",
            "Saisir la référence Fatourati et le montant de votre facture,",
            "Choisir le compte à débiter et procéder au paiement.",
        ),
        (RECEIPT,),
        "bmce",
    ),
    GuideChannel(
        "CIH Online et CIH Online Mobile",
        "Il faut se connecter à votre espace CIH ONLINE, et suivre les étapes suivantes :",
        (
            "Cliquez sur le menu « mes opérations » puis « paiement des factures »",
            "Choisir le menu « autres services » parmi les onglets proposés,",
            "Sélectionner PortNet,",
            "Saisir la référence Fatourati (13 chiffres)",
        ),
        (
            "Un tableau récapitulatif s'affichera contenant le service de Portnet, "
            "la référence de l'article, les frais, le montant et la date.",
            "Sélectionnez le compte à débiter et cliquez sur Payer, un OTP (Mot de Passe à usage Unique) "
            "vous sera communiqué par SMS pour sécuriser l'opération.",
            "Après la saisie de votre OPT cliquez sur « Valider », le paiement est alors effectué, et un "
            "reçu de paiement électronique s'affichera ainsi qu'un email de confirmation de paiement "
            "vous sera communiqué.",
            "NB : Il est à noter que vous pouvez payer tous les prestations de PORTNET SA "
            "à travers CIH Online",
        ),
        "cih",
    ),
    GuideChannel(
        "Barid Bank Mobile",
        "Il faut vous connecter à votre espace Barid Bank Mobile et suivre les étapes suivantes :",
        (
            "Cliquer sur « Paiements »",
            "Cliquer sur « Paiement Impôts et Taxes »",
            "Choisir votre compte",
            "Cliquer sur le facturier « Portnet »",
            "Insérer la référence Fatourati et le montant",
            "Valider le paiement en insérant le code confidentiel",
            "Télécharger le reçu de paiement",
        ),
        sandbox_code="baridbank",
    ),
    GuideChannel(
        "CAM Online",
        "Il faut se connecter à votre espace CAM ONLINE, et suivre les étapes suivantes :",
        ("Sélectionner PortNet ;", "Saisir la référence Fatourati (13 chiffres) ;", "Procéder au paiement."),
        sandbox_code="cam",
    ),
    GuideChannel(
        "CDM Banque Direct",
        "Il faut se connecter à votre espace CDM Banque Direct, et suivre les étapes suivantes :",
        ("Sélectionner PortNet ;", "Saisir la référence Fatourati (13 chiffres) ;", "Procéder au paiement."),
        sandbox_code="cdm",
    ),
    GuideChannel(
        "SG Maroc Cashnet",
        "Il faut se connecter à votre espace SGMASOGECASHNET, et suivre les étapes suivantes :",
        ("Sélectionner PortNet ;", "Saisir la référence Fatourati (13 chiffres) ;", "Procéder au paiement."),
        sandbox_code="sgma",
    ),
    GuideChannel("CashPlus", AGENCY.format(agency="CASHPLUS"), sandbox_code="cashplus"),
    GuideChannel(
        "Global Vision Fawatir", AGENCY.format(agency="Global Vision FAWATIR"), sandbox_code="globalvision"
    ),
    GuideChannel("CMI Fawatir Cash", AGENCY.format(agency="FAWATIR"), sandbox_code="fawatircash"),
    GuideChannel(
        "DamanePay / DamanCash",
        "Veillez sélectionner la plateforme de paiement CMI>FATOURATI et récupérer la référence FATOURATI "
        "à présenter directement à l'agence choisie.",
        sandbox_code="damane",
    ),
)


class FatouratiWeb(WebChannel):
    name = "fatourati"
    choices = (Choice(Channel.CMI_FATOURATI, "Fatourati", "CMI", 2),)

    def deadline_seconds(self, settings: Settings) -> int:
        return settings.fatourati_expiry_seconds

    def status_part(
        self, db: Session, settings: Settings, payment: Payment, view: PaymentView
    ) -> StatusPart | None:
        """The reference while it waits to be paid: its digits, its countdown, the guide's steps."""
        action = view.next_action
        if (
            action is None
            or action.type != "fatourati_reference"
            or not action.fields
            or view.status != PaymentStatus.AWAITING_PAYER.value
        ):
            return None
        sandbox = sandbox_pages(settings)
        return StatusPart(
            "channels/fatourati_status.html",
            {
                "guide": CHANNELS,
                "general": GENERAL.format(reference=action.fields.get("reference", "")),
                "remaining": remaining_text(action.fields.get("expires_at")),
                "sandbox_url": f"{sandbox}/fatourati" if sandbox else "",
            },
        )


CHANNEL = FatouratiWeb()
