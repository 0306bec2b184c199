"""Imitations of our partners (CMI, CMI Fatourati, Amanpay, Tashilat, Amanty, PayDirect, an SMS
gateway, a mail sink, the emitters, MARSA MAROC), run as their own app and process: sandbox/app.py.

They talk to us over HTTP (and SMTP) only and import nothing of ours but ``portnet.settings``.
"""
