"""The ledger package: tables, money, statuses, queries, settings and migrations.

Nothing here imports the web layer, the workflows or the activities.
"""
