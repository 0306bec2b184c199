"""The guide's "COMMENT PROCÉDER AU PAIEMENT" of the Fatourati page: each bank channel's steps as the
guide words them, French msgids the page translates (web/templates/channels/fatourati_status.html).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from portnet.i18n import N_


@dataclass(frozen=True)
class GuideChannel:
    name: str
    intro: str
    steps: tuple[str, ...] = ()
    outro: tuple[str, ...] = field(default_factory=tuple)
    sandbox_code: str = ""
    agency: str = ""  # fills AGENCY's {agency} once the sentence is translated (the page does it)


RECEIPT = N_(
    "Après avoir accompli toutes les étapes, votre reçu de paiement sera affiché pour téléchargement."
)
AGENCY = N_(
    "Veuillez sélectionner la plateforme de paiement CMI>FATOURATI et récupérer la référence FATOURATI "
    "à présenter directement à l'agence {agency} choisie."
)

# The guide says "dans un délai de 24 heures" here and "3H" in its NB [375-380]: the token expires
# after FATOURATI_EXPIRY_SECONDS (3 hours), and the page says that this is the deadline that counts.
GENERAL = N_(
    "Veuillez utiliser l'un des canaux de paiement autorisés, sélectionner le service ANP et le « PortNet » "
    "et communiquer votre référence Fatourati {reference} dans un délai de {hours}. Passé ce délai, "
    "votre règlement sera refusé."
)

CHANNELS: tuple[GuideChannel, ...] = (
    GuideChannel(
        "AttijariNet / Attijari Mobile",
        N_(
            "Il faut accéder à votre application, choisir le menu liste des services, sélectionner PortNet, "
            "saisir la référence Fatourati et le montant de votre facture, choisir le compte à débiter et "
            "procéder au paiement."
        ),
        outro=(RECEIPT,),
        sandbox_code="attijarinet",
    ),
    GuideChannel(
        "BMCE Portail / BMCE Direct",
        N_("Il faut accéder à votre BMCE Portail et suivre les étapes suivantes :"),
        (
            N_("Choisir le menu liste des services,"),
            "Sélectionner PortNet,",
            N_("Saisir la référence Fatourati et le montant de votre facture,"),
            N_("Choisir le compte à débiter et procéder au paiement."),
        ),
        (RECEIPT,),
        "bmce",
    ),
    GuideChannel(
        N_("CIH Online et CIH Online Mobile"),
        N_("Il faut se connecter à votre espace CIH ONLINE, et suivre les étapes suivantes :"),
        (
            N_("Cliquez sur le menu « mes opérations » puis « paiement des factures »"),
            N_("Choisir le menu « autres services » parmi les onglets proposés,"),
            "Sélectionner PortNet,",
            N_("Saisir la référence Fatourati (13 chiffres)"),
        ),
        (
            N_(
                "Un tableau récapitulatif s'affichera contenant le service de Portnet, "
                "la référence de l'article, les frais, le montant et la date."
            ),
            N_(
                "Sélectionnez le compte à débiter et cliquez sur Payer, un OTP (Mot de Passe à usage Unique) "
                "vous sera communiqué par SMS pour sécuriser l'opération."
            ),
            N_(
                "Après la saisie de votre OPT cliquez sur « Valider », le paiement est alors effectué, et un "
                "reçu de paiement électronique s'affichera ainsi qu'un email de confirmation de paiement "
                "vous sera communiqué."
            ),
            N_(
                "NB : Il est à noter que vous pouvez payer tous les prestations de PORTNET SA "
                "à travers CIH Online"
            ),
        ),
        "cih",
    ),
    GuideChannel(
        "Barid Bank Mobile",
        N_("Il faut vous connecter à votre espace Barid Bank Mobile et suivre les étapes suivantes :"),
        (
            N_("Cliquer sur « Paiements »"),
            N_("Cliquer sur « Paiement Impôts et Taxes »"),
            N_("Choisir votre compte"),
            N_("Cliquer sur le facturier « Portnet »"),
            N_("Insérer la référence Fatourati et le montant"),
            N_("Valider le paiement en insérant le code confidentiel"),
            N_("Télécharger le reçu de paiement"),
        ),
        sandbox_code="baridbank",
    ),
    GuideChannel(
        "CAM Online",
        N_("Il faut se connecter à votre espace CAM ONLINE, et suivre les étapes suivantes :"),
        (
            N_("Sélectionner PortNet ;"),
            N_("Saisir la référence Fatourati (13 chiffres) ;"),
            N_("Procéder au paiement."),
        ),
        sandbox_code="cam",
    ),
    GuideChannel(
        "CDM Banque Direct",
        N_("Il faut se connecter à votre espace CDM Banque Direct, et suivre les étapes suivantes :"),
        (
            N_("Sélectionner PortNet ;"),
            N_("Saisir la référence Fatourati (13 chiffres) ;"),
            N_("Procéder au paiement."),
        ),
        sandbox_code="cdm",
    ),
    GuideChannel(
        "SG Maroc Cashnet",
        N_("Il faut se connecter à votre espace SGMASOGECASHNET, et suivre les étapes suivantes :"),
        (
            N_("Sélectionner PortNet ;"),
            N_("Saisir la référence Fatourati (13 chiffres) ;"),
            N_("Procéder au paiement."),
        ),
        sandbox_code="sgma",
    ),
    GuideChannel("CashPlus", AGENCY, sandbox_code="cashplus", agency="CASHPLUS"),
    GuideChannel(
        "Global Vision Fawatir", AGENCY, sandbox_code="globalvision", agency="Global Vision FAWATIR"
    ),
    GuideChannel("CMI Fawatir Cash", AGENCY, sandbox_code="fawatircash", agency="FAWATIR"),
    GuideChannel(
        "DamanePay / DamanCash",
        N_(
            "Veillez sélectionner la plateforme de paiement CMI>FATOURATI et récupérer la référence "
            "FATOURATI à présenter directement à l'agence choisie."
        ),
        sandbox_code="damane",
    ),
)
