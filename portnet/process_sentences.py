"""Sentences the workflows and the activities write for the payer or finance (a refusal, why an attempt
ended), in French as their code has them: listed here so that the catalogs hold them and the pages
show them in the reader's language (``| translate``). The workflow code stays free of any i18n
import (its sandbox); tests/i18n checks that no such sentence is missing from this list.
"""

from __future__ import annotations

from portnet.i18n import N_

SENTENCES = (
    N_("Amanpay ne répond pas : réessayez dans quelques minutes."),
    N_("Annulé par le payeur"),
    N_("Annulé par le payeur sur Amanty"),
    N_("Aucun code SMS n'est attendu pour ce paiement."),
    N_("Ce code a expiré : demandez un nouveau code."),
    N_("Ce code est bloqué après 3 essais : demandez un nouveau code."),
    N_("Ce paiement n'attend plus de code SMS."),
    N_("Ce règlement n'attend plus de confirmation : délai dépassé ou annulé."),
    N_("Code de paiement expiré sans paiement"),
    N_("Code incorrect, trop d'essais : ce code est bloqué, demandez un nouveau code."),
    N_("Commande refusée par Amanpay."),
    N_("Contrat PayDirect refusé."),
    N_("Décision déjà enregistrée."),
    N_("Délai de paiement Amanty dépassé"),
    N_("Délai de paiement dépassé"),
    N_("Délai de saisie du code SMS dépassé"),
    N_("Encaissement confirmé."),
    N_("Encaissement non confirmé par la finance dans le délai"),
    N_("Facture introuvable (ou numéro ambigu)."),
    N_("Facture payée"),
    N_("Format de code invalide."),
    N_("La banque ne répond pas : réessayez."),
    N_("Le montant encaissé ne couvre pas la facture."),
    N_("MARSA MAROC a refusé l'accès de PortNet (authentification). Contactez le support PortNet."),
    N_("MARSA MAROC a renvoyé une réponse illisible. Réessayez plus tard ou contactez le support."),
    N_("MARSA MAROC ne connaît pas ce client ou cette facture sur ce terminal."),
    N_("MARSA MAROC ne répond pas pour le moment. Réessayez dans quelques minutes."),
    N_("Paiement autorisé par la banque."),
    N_("Paiement non confirmé par CMI : aucune autorisation à capturer"),
    N_("Paiement refusé par la banque"),
    N_("PayDirect ne répond pas : réessayez dans quelques minutes."),
    N_("Règlement rejeté."),
    N_("Référence Fatourati expirée (délai de paiement dépassé)"),
    N_("Référence Fatourati indisponible, réessayez plus tard"),
    N_("Seuls les chèques et virements attendent une décision de la finance."),
    N_("Tentative annulée par l'opérateur"),
    N_("Une des factures est déjà en cours de paiement."),
    N_("Vérification en cours, patientez."),
)
