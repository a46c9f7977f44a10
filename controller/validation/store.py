"""The validation store: one SQLite row per finished (function, model, seed) trial, so a validation resumes.

Only the driver writes (Ray Tune reports results to it): `python -m controller.validate` opens the store with
`lease=True`, taking its writer lease (`controller.lease`), so a second validation on the same store is refused while
the first runs; every write checks in its transaction that no other live driver holds the lease. The primary key
makes a trial that finishes twice (a retry after a driver crash) count once, and `pending` tells a resumed
validation which trials are still owed.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd

from controller.lease import LeaseHeld, LeaseLost, WriterLease, check_writer, close_store

__all__ = ["ValidationStore", "TrialKey", "StoreError"]

SCHEMA_VERSION = 1
TrialKey = tuple[str, str, int]  # (function, model, seed)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS trials (
    function TEXT NOT NULL,
    model TEXT NOT NULL,
    seed INTEGER NOT NULL,
    task TEXT NOT NULL,
    status TEXT NOT NULL,
    reason TEXT NOT NULL DEFAULT '',
    test_acc REAL,
    val_acc REAL,
    dead_rate REAL,
    predictions BLOB,
    wall_s REAL,
    device TEXT,
    finished_at REAL NOT NULL,
    PRIMARY KEY (function, model, seed)
);
"""


class StoreError(RuntimeError):
    """The store cannot be opened or written; the message says why and what to do."""


class ValidationStore:
    """Append-only SQLite log of validation trials.

    >>> import tempfile, pathlib
    >>> store = ValidationStore(pathlib.Path(tempfile.mkdtemp()) / "v.sqlite")
    >>> store.record("relu", "mlp", 0, task="xor", status="ok", test_acc=0.9)
    >>> store.pending([("relu", "mlp", 0), ("relu", "mlp", 1)])
    [('relu', 'mlp', 1)]
    """

    def __init__(self, path: str | Path, lease: bool = False) -> None:
        """Open (or create) the store; `lease=True` also takes its writer lease (StoreError while another live
        validation holds it), given up again by `close()`."""
        self.path = Path(path)
        self.lease: WriterLease | None = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            self._check_schema()
            if lease:  # last: nothing after it can fail and leave the lease held
                self.lease = WriterLease.acquire(self.path, what="validation store")
        except LeaseHeld as error:
            self._db.close()
            raise StoreError(str(error)) from None
        except (sqlite3.Error, OSError) as error:
            message = f"cannot open the validation store {self.path}: {error}; choose a writable --out"
            raise StoreError(message) from None

    def _check_schema(self) -> None:
        row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
        if row is None:
            with self._db:
                self._db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        elif int(row[0]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer actsearch (schema {row[0]} > {SCHEMA_VERSION}); upgrade actsearch"
            )

    @contextmanager
    def _write(self) -> Iterator[None]:
        """One write transaction (BEGIN IMMEDIATE): StoreError instead of writing while another driver holds the
        lease."""
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                if self.lease is not None:
                    self.lease.check(self._db)
                else:
                    check_writer(self._db, self.path, "validation store")
            except LeaseLost as error:
                raise StoreError(str(error)) from None
            yield

    def set_meta(self, key: str, value: object) -> None:
        """Record a piece of metadata (JSON-encoded), replacing any earlier value."""
        with self._write():
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, json.dumps(value)))

    def meta(self, key: str, default: object = None) -> object:
        """Return a metadata value recorded with `set_meta`."""
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else json.loads(row[0])

    def record(
        self,
        function: str,
        model: str,
        seed: int,
        *,
        task: str,
        status: str,
        reason: str = "",
        test_acc: float | None = None,
        val_acc: float | None = None,
        dead_rate: float | None = None,
        predictions: Iterable[int] | None = None,
        wall_s: float | None = None,
        device: str | None = None,
    ) -> None:
        """Append one finished trial; a trial already recorded is kept as it was."""
        blob = None if predictions is None else np.asarray(list(predictions), dtype=np.int16).tobytes()
        with self._write():
            self._db.execute(
                "INSERT OR IGNORE INTO trials VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (function, model, seed, task, status, reason, test_acc, val_acc, dead_rate, blob, wall_s, device,
                 time.time()),
            )

    def pending(self, grid: Iterable[TrialKey]) -> list[TrialKey]:
        """Return the trials of `grid` that are not recorded yet, in grid order."""
        done = set(self._db.execute("SELECT function, model, seed FROM trials").fetchall())
        return [key for key in grid if tuple(key) not in done]

    def frame(self) -> pd.DataFrame:
        """Return every recorded trial as a DataFrame, predictions decoded to integer arrays."""
        frame = pd.read_sql_query("SELECT * FROM trials ORDER BY model, function, seed", self._db)
        frame["predictions"] = [
            None if blob is None else np.frombuffer(blob, dtype=np.int16) for blob in frame["predictions"]
        ]
        return frame

    def close(self) -> None:
        """Give up the writer lease if this store holds it and close the connection (the data is committed)."""
        lease, self.lease = self.lease, None
        close_store(lease, self._db)
