"""The sandboxes' memory: one SQLite file (``SANDBOX_DATABASE_URL``, ``var/sandbox.db`` by default).

A bank does not forget an authorisation because the merchant's server restarted, nor because its
own did: every partner's state (orders, tokens, wallets, SMS, mail, notices, pending deliveries)
lives here, so that restarting the portal or the sandboxes loses nothing.

Records are pydantic models kept as JSON documents by (kind, key), with at most one secondary key
for the one look-up a kind needs (a Fatourati token by order id, a cash code, a phone).
A read-check-write is one transaction (``Store.run(fn)``): a lock and ``BEGIN IMMEDIATE`` keep a
check and its write together, so two payments of one order cannot both pass "not yet paid".
SQLite calls block: async code goes through ``await store.call(fn)``, which runs them on a worker
thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar, TypeVar

from pydantic import BaseModel

R = TypeVar("R")
M = TypeVar("M", bound="Record")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS record (
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    secondary TEXT,
    body TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX IF NOT EXISTS record_secondary ON record (kind, secondary);
CREATE TABLE IF NOT EXISTS counter (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


# Insertion order is the rowid's (an upsert keeps the row, hence its place).
_OLDEST_FIRST = "SELECT body FROM record WHERE kind = ? ORDER BY rowid"
_NEWEST_FIRST = "SELECT body FROM record WHERE kind = ? ORDER BY rowid DESC"
_FOUND_OLDEST_FIRST = "SELECT body FROM record WHERE kind = ? AND secondary = ? ORDER BY rowid"
_FOUND_NEWEST_FIRST = "SELECT body FROM record WHERE kind = ? AND secondary = ? ORDER BY rowid DESC"


class Record(BaseModel):
    """A document of one kind; ``key()`` identifies it, ``secondary()`` is its optional look-up key."""

    kind: ClassVar[str]

    def key(self) -> str:
        raise NotImplementedError

    def secondary(self) -> str | None:
        return None


class Tx:
    """What a transaction may do; only valid inside ``Store.run``."""

    def __init__(self, connection: sqlite3.Connection) -> None:
        self._db = connection

    def get(self, model: type[M], key: str) -> M | None:
        row = self._db.execute(
            "SELECT body FROM record WHERE kind = ? AND key = ?", (model.kind, key)
        ).fetchone()
        return None if row is None else model.model_validate_json(row[0])

    def put(self, record: Record) -> None:
        # An upsert keeps the row (and its rowid, hence the insertion order) of an existing key.
        self._db.execute(
            "INSERT INTO record (kind, key, secondary, body) VALUES (?, ?, ?, ?) "
            "ON CONFLICT (kind, key) DO UPDATE SET secondary = excluded.secondary, body = excluded.body",
            (record.kind, record.key(), record.secondary(), record.model_dump_json()),
        )

    def delete(self, model: type[Record], key: str) -> None:
        self._db.execute("DELETE FROM record WHERE kind = ? AND key = ?", (model.kind, key))

    def delete_all(self, model: type[Record]) -> None:
        self._db.execute("DELETE FROM record WHERE kind = ?", (model.kind,))

    def all(self, model: type[M], newest_first: bool = False) -> list[M]:
        query = _NEWEST_FIRST if newest_first else _OLDEST_FIRST
        return [model.model_validate_json(body) for (body,) in self._db.execute(query, (model.kind,))]

    def find(self, model: type[M], secondary: str, newest_first: bool = False) -> list[M]:
        """The records of that kind whose secondary key is ``secondary``."""
        query = _FOUND_NEWEST_FIRST if newest_first else _FOUND_OLDEST_FIRST
        return [
            model.model_validate_json(body) for (body,) in self._db.execute(query, (model.kind, secondary))
        ]

    def next_number(self, name: str) -> int:
        """1, 2, 3...: never reused, even after the records numbered with it are deleted."""
        self._db.execute(
            "INSERT INTO counter (name, value) VALUES (?, 1) "
            "ON CONFLICT (name) DO UPDATE SET value = value + 1",
            (name,),
        )
        row = self._db.execute("SELECT value FROM counter WHERE name = ?", (name,)).fetchone()
        return int(row[0])


def database_path(url: str) -> Path | None:
    """``sqlite:///relative.db``, ``sqlite:////absolute.db``; None for ``sqlite://`` (in memory)."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        return None
    prefix = "sqlite:///"
    if not url.startswith(prefix):
        raise ValueError(f"SANDBOX_DATABASE_URL must be a SQLite URL (sqlite:///path), not {url!r}")
    return Path(url[len(prefix) :])


class Store:
    """One connection shared by the threads of one process, one transaction at a time.

    The file is opened at the first transaction, not when the store is made: the app is built on
    the event loop (uvicorn's factory), and opening and migrating a file blocks.
    """

    def __init__(self, url: str) -> None:
        self.path = database_path(url)
        self.url = url
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            if self.path is not None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                ":memory:" if self.path is None else str(self.path),
                check_same_thread=False,
                isolation_level=None,
                timeout=30,
            )
            # WAL: pages can be read while a write is being made; NORMAL: a power cut may lose the
            # last transactions of a development sandbox, never corrupt it.
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.executescript(_SCHEMA)
            self._db = db
        return self._db

    def run(self, work: Callable[[Tx], R]) -> R:
        """``work`` in one transaction: committed if it returns, rolled back if it raises."""
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                result = work(Tx(db))
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
            return result

    async def call(self, work: Callable[[Tx], R]) -> R:
        """``run`` from async code: on a worker thread, so the event loop keeps serving."""
        return await asyncio.to_thread(self.run, work)

    def close(self) -> None:
        """Until the next transaction, which opens the file again."""
        with self._lock:
            if self._db is not None:
                self._db.close()
                self._db = None
