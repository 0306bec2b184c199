"""Our partners' wire rules: each message's fields, their rules and how it is signed.

``fields`` holds the rules every partner message is held to before its signature is looked at;
``cmi``, ``fatourati``, ``amanpay`` (with PayDirect) and ``emitter`` build and read their partner's
messages with them. Shared by the adapters (activities/) and the callback endpoints (web/); the
sandboxes write their side of each protocol apart, on purpose, and import nothing from here.
"""
