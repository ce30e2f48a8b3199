"""The portal's state in one SQLite file: partners, settings and versions, with an atomic compare-and-write."""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hbsdeploy.files import FileRefused, refuse_link

SCHEMA_VERSION = 1
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = """
CREATE TABLE IF NOT EXISTS partners (
    partner_id TEXT PRIMARY KEY,
    registered_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS service_types (
    partner_id TEXT NOT NULL REFERENCES partners(partner_id),
    service_type TEXT NOT NULL,
    settings TEXT NOT NULL,
    version INTEGER NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (partner_id, service_type)
);
"""


class StoreError(Exception):
    """The state file cannot be opened or read (the portal layer turns this into a PortalError)."""


class UnknownPartner(Exception):
    """The partner is not registered in the store."""


class StaleVersion(Exception):
    """The expected version is not the current one."""

    def __init__(self, current: int) -> None:
        super().__init__(f"current version is {current}")
        self.current = current


@dataclass(frozen=True)
class Stored:
    """What the store holds for one service type: settings (None if never written) and the version number."""

    settings: dict[str, Any] | None
    version: int


class Store:
    """One state file behind one SQLite connection per process (guarded by a lock, so safe across threads); other
    processes share the file through SQLite's own locking (WAL, BEGIN IMMEDIATE, a busy timeout)."""

    def __init__(self, path: Path, *, busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self.busy_timeout_ms = busy_timeout_ms
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        self._pid = 0
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            for part in (self.path, *(self.path.with_name(self.path.name + s) for s in ("-wal", "-shm", "-journal"))):
                refuse_link(part)  # SQLite follows links: a planted one would create and migrate a file elsewhere
        except FileRefused as exc:
            raise StoreError(f"{self.path}: {exc}") from None
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the state file ({exc})") from exc
        try:
            with self._transaction() as db:
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise StoreError(f"{self.path}: written by a newer hbsdeploy (store version {version}); "
                                     "upgrade hbsdeploy")
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        except (sqlite3.Error, OSError) as exc:
            self.close()
            raise StoreError(f"{self.path}: cannot open the state file ({exc})") from exc

    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                             check_same_thread=False)
        try:
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
            # WAL: readers never wait for the writer; a killed writer leaves the last committed state, never half of
            # one.
            with contextlib.suppress(sqlite3.OperationalError):
                db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = FULL")
            db.execute("PRAGMA foreign_keys = ON")
        except BaseException:
            db.close()
            raise
        return db

    def _connection(self) -> sqlite3.Connection:
        # Called with the lock held. A forked child must not use its parent's connection (SQLite forbids carrying
        # one across fork): it opens its own.
        if self._db is None or self._pid != os.getpid():
            self._db = self._connect()
            self._pid = os.getpid()
        return self._db

    def close(self) -> None:
        """Close this process's connection (the next call opens a new one)."""
        with self._lock:
            if self._db is not None and self._pid == os.getpid():
                with contextlib.suppress(sqlite3.Error):
                    self._db.close()
            self._db = None

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        # BEGIN IMMEDIATE takes the write lock up front, so the version check and the write are one atomic step.
        with self._lock:
            db = self._connection()
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
                # A COMMIT that fails (a full disk, an I/O error) can leave the transaction open: rolled back here,
                # or every later call on this process's one connection would fail.
                db.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                raise

    @contextlib.contextmanager
    def _reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connection()
            db.execute("BEGIN")  # one snapshot for every SELECT of the call
            try:
                yield db
            finally:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")

    def register_partner(self, partner_id: str) -> bool:
        """Make the partner known; True if it was not known before."""
        with self._transaction() as db:
            cursor = db.execute("INSERT OR IGNORE INTO partners (partner_id, registered_at) VALUES (?, ?)",
                                (partner_id, time.time()))
            return cursor.rowcount == 1

    def has_partner(self, partner_id: str) -> bool:
        """Whether the partner is registered."""
        with self._reading() as db:
            return db.execute("SELECT 1 FROM partners WHERE partner_id = ?", (partner_id,)).fetchone() is not None

    def partners(self) -> list[str]:
        """Every registered partner, sorted."""
        with self._reading() as db:
            return [row[0] for row in db.execute("SELECT partner_id FROM partners ORDER BY partner_id")]

    def read(self, partner_id: str, service_type: str) -> Stored:
        """One service type of a registered partner (UnknownPartner otherwise)."""
        with self._reading() as db:
            self._require_partner(db, partner_id)
            row = db.execute("SELECT settings, version FROM service_types WHERE partner_id = ? AND service_type = ?",
                             (partner_id, service_type)).fetchone()
        return Stored(None, 0) if row is None else Stored(_decode(row[0]), int(row[1]))

    def read_all(self, partner_id: str) -> dict[str, Stored]:
        """Every service type ever written for a registered partner, in one snapshot."""
        with self._reading() as db:
            self._require_partner(db, partner_id)
            rows = db.execute("SELECT service_type, settings, version FROM service_types WHERE partner_id = ?",
                              (partner_id,)).fetchall()
        return {name: Stored(_decode(text), int(version)) for name, text, version in rows}

    def read_page(self, after: str | None, limit: int) -> tuple[list[tuple[str, dict[str, Stored]]], bool]:
        """Up to `limit` registered partners whose ID sorts after `after` (all from the first when None), in ID
        order (SQLite's binary collation: code points), each with every service type ever written, and whether more
        follow; one snapshot."""
        with self._reading() as db:
            ids = [row[0] for row in db.execute(
                "SELECT partner_id FROM partners WHERE ? IS NULL OR partner_id > ? ORDER BY partner_id LIMIT ?",
                (after, after, limit + 1))]
            more = len(ids) > limit
            ids = ids[:limit]
            found: dict[str, dict[str, Stored]] = {partner_id: {} for partner_id in ids}
            if ids:
                rows = db.execute(
                    "SELECT partner_id, service_type, settings, version FROM service_types "
                    "WHERE partner_id >= ? AND partner_id <= ?", (ids[0], ids[-1])).fetchall()
                for partner_id, name, text, version in rows:
                    if partner_id in found:
                        found[partner_id][name] = Stored(_decode(text), int(version))
        return list(found.items()), more

    def write(self, partner_id: str, service_type: str, settings: Mapping[str, Any], expected_version: int, *,
              register: bool = False) -> int:
        """Store the settings if the current version is `expected_version` (StaleVersion otherwise); the new version.
        With `register`, an unknown partner is registered in the same transaction (UnknownPartner otherwise)."""
        text = json.dumps(dict(settings), sort_keys=True, separators=(",", ":"))
        with self._transaction() as db:
            known = db.execute("SELECT 1 FROM partners WHERE partner_id = ?", (partner_id,)).fetchone() is not None
            if not known and not register:
                raise UnknownPartner(partner_id)
            row = db.execute("SELECT version FROM service_types WHERE partner_id = ? AND service_type = ?",
                             (partner_id, service_type)).fetchone() if known else None
            current = 0 if row is None else int(row[0])
            if current != expected_version:
                raise StaleVersion(current)  # and nothing registered: a refused write leaves no trace
            if not known:
                db.execute("INSERT INTO partners (partner_id, registered_at) VALUES (?, ?)", (partner_id, time.time()))
            db.execute(
                "INSERT INTO service_types (partner_id, service_type, settings, version, updated_at) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT (partner_id, service_type) DO UPDATE SET "
                "settings = excluded.settings, version = excluded.version, updated_at = excluded.updated_at",
                (partner_id, service_type, text, current + 1, time.time()))
            return current + 1

    @staticmethod
    def _require_partner(db: sqlite3.Connection, partner_id: str) -> None:
        if db.execute("SELECT 1 FROM partners WHERE partner_id = ?", (partner_id,)).fetchone() is None:
            raise UnknownPartner(partner_id)


def _decode(text: str) -> dict[str, Any]:
    value = json.loads(text)
    if not isinstance(value, dict):
        raise StoreError(f"stored settings are not an object: {text[:80]!r}")
    return value
