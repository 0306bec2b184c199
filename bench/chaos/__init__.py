"""The chaos run: payments under worker and Temporal crashes and partner faults (``make chaos``)."""
