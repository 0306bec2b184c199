"""The portal (server-rendered, French): one router per concern, gathered in portal.py for the factory."""
