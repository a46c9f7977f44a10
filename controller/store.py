"""The run store: one SQLite file per run, an append-only log of finished evaluations plus strategy checkpoints.

Modelled on optuna's RDB storage: a crash loses nothing that was recorded, and a resume replays the log. Tables:

- `meta`: key/value run metadata (schema version, the full config as JSON, op set, task, model, package versions).
- `evaluations`: one row per finished evaluation, appended in the order results reached the driver; the main
  figures are columns, every metric of the evaluator's `EvalResult.to_dict()` is kept as JSON in `metrics`.
  `trained` is 1 for candidates that cost a training run, `duplicate` is 1 for a candidate whose function was
  already recorded (it reuses that score), status `screened` marks candidates rejected before training and
  `skipped` those the surrogate pre-screen did not train (`metrics.predicted` holds its prediction). `rung` is the
  fidelity rung the row's training reached (`controller.fidelity`): 0 for every first training; a cascade adds a
  row for each promotion of a function (rung 1, 2, ...), so a function has one row per rung it climbed.
- `checkpoints`: `torch.save` bytes of the strategy and loop state, written in the same transaction as the id of
  the last evaluation row it covers, so a checkpoint and its rows can never disagree. Loads use `weights_only=True`.

Only the driver of a run writes its store: it opens it with `lease=True`, which takes the store's writer lease
(`controller.lease`: host, pid, heartbeat) or refuses while another live driver holds it, and every write checks in
its transaction that the lease is still this store's. Readers (`load_run`, the leaderboard, a `RunStore` opened
without the lease) never need it: WAL mode lets them look at a live run.
"""

from __future__ import annotations

import io
import json
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from controller.lease import WriterLease, check_writer, close_store

__all__ = ["SCHEMA_VERSION", "EvaluationRow", "RunStore", "StoreError", "load_run"]

SCHEMA_VERSION = 2  # 2: the `rung` column (added in place to a version-1 store opened for writing)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS evaluations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    trial_id INTEGER, expression TEXT NOT NULL, canonical TEXT NOT NULL, fingerprint TEXT NOT NULL,
    tokens TEXT NOT NULL, strategy TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL DEFAULT '',
    score REAL, val_acc REAL, val_acc_std REAL, test_acc REAL, test_acc_std REAL, loss REAL,
    trained INTEGER NOT NULL, duplicate INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 1,
    seeds TEXT, metrics TEXT, worker TEXT, started_at REAL, finished_at REAL, rung INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS evaluations_fingerprint ON evaluations (fingerprint);
CREATE TABLE IF NOT EXISTS checkpoints (
    id INTEGER PRIMARY KEY AUTOINCREMENT, last_row INTEGER NOT NULL, created_at REAL NOT NULL, state BLOB NOT NULL
);
"""
_METRIC_COLUMNS = ("score", "val_acc", "val_acc_std", "test_acc", "test_acc_std", "loss")
_KEEP_CHECKPOINTS = 2


class StoreError(RuntimeError):
    """A run store that cannot be used as asked (newer schema, missing file, not a run store)."""


@dataclass
class EvaluationRow:
    """One finished evaluation as recorded in the store (`metrics` is the evaluator's full result dict)."""

    expression: str
    canonical: str
    fingerprint: str
    tokens: list[int]
    strategy: str
    status: str
    trained: bool
    duplicate: bool = False
    reason: str = ""
    score: float | None = None
    trial_id: int | None = None
    metrics: dict[str, Any] = field(default_factory=dict)
    seeds: list[int] | None = None
    attempts: int = 1
    worker: str | None = None
    started_at: float | None = None
    finished_at: float | None = None
    rung: int = 0  # the fidelity rung this training reached; above 0: a promotion of an already recorded function
    id: int | None = None


class RunStore:
    """An open run store (one SQLite file); create it with `RunStore(path)`, close it with `close()`.

    >>> import tempfile, pathlib
    >>> store = RunStore(pathlib.Path(tempfile.mkdtemp()) / "run.sqlite")
    >>> store.set_meta({"task": "xor"})
    >>> store.get_meta()["task"]
    'xor'
    >>> store.close()
    """

    def __init__(self, path: str | Path, create: bool = True, lease: bool = False) -> None:
        """Open (or create) the store; `lease=True` also takes its writer lease (`controller.lease.LeaseHeld` while
        another live driver holds it), given up again by `close()`."""
        self.path = Path(path)
        self.lease: WriterLease | None = None
        if not create and not self.path.is_file():
            raise StoreError(f"no run store at {self.path}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        existed = self.path.is_file()
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None)  # autocommit; transactions are explicit
        except sqlite3.Error as error:
            raise StoreError(f"cannot open {self.path} ({error}); check that its folder is writable") from None
        try:
            self._check_schema()  # before any write: a store this version cannot read is left as it is
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable across a process kill
            self._db.executescript(_SCHEMA)
            self._has_rung = self._migrate(write=lease or not existed)
        except StoreError:
            self._db.close()
            raise
        except sqlite3.DatabaseError as error:
            self._db.close()
            if "readonly" in str(error) or "unable to open" in str(error):
                raise StoreError(f"{self.path} cannot be written ({error}); make it and its folder writable, or copy "
                                 f"the run folder somewhere writable") from None
            raise StoreError(f"{self.path} is not a usable run store: {error}") from None
        if lease:
            try:
                self.lease = WriterLease.acquire(self.path, what="run store")
            except BaseException:
                self._db.close()
                raise
        if "schema_version" not in self.get_meta():
            self.set_meta({"schema_version": SCHEMA_VERSION})

    def _check_schema(self) -> None:
        has_meta = self._db.execute("SELECT 1 FROM sqlite_master WHERE type='table' AND name='meta'").fetchone()
        if not has_meta:
            return
        row = self._db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = json.loads(row[0]) if row else SCHEMA_VERSION
        if version > SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written by a newer actsearch (store schema {version}; this version reads up to "
                f"{SCHEMA_VERSION}); upgrade actsearch to read it"
            )

    def _migrate(self, write: bool) -> bool:
        """Bring a version-1 store to version 2 (add the `rung` column, 0 on every old row) when this process is its
        writer; return whether the column is there. A reader leaves the store as it is (its driver may be an older
        actsearch that would then refuse it) and reads every old row as rung 0."""
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(evaluations)")}
        if "rung" in columns:
            return True
        if not write:
            return False
        try:
            self._db.execute("ALTER TABLE evaluations ADD COLUMN rung INTEGER NOT NULL DEFAULT 0")
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('schema_version', ?)",
                             (json.dumps(SCHEMA_VERSION),))
        except sqlite3.OperationalError:  # read-only: old rows are all rung 0 anyway
            return False
        return True

    def close(self) -> None:
        """Close the database connection and give up the writer lease if this store holds it."""
        lease, self.lease = self.lease, None
        close_store(lease, self._db)

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ----- metadata -----
    def set_meta(self, values: dict[str, Any]) -> None:
        """Store JSON-serialisable metadata values under their keys (replacing earlier values)."""
        with self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)",
                [(key, json.dumps(value, sort_keys=True)) for key, value in values.items()],
            )

    def get_meta(self) -> dict[str, Any]:
        """Return all metadata as a dict of decoded JSON values."""
        return {key: json.loads(value) for key, value in self._db.execute("SELECT key, value FROM meta")}

    # ----- evaluations -----
    def append(self, row: EvaluationRow) -> int:
        """Append one finished evaluation and return its row id."""
        if row.rung and not self._has_rung:
            raise StoreError(f"{self.path} is a version-1 store, which has no rungs; open it as its writer "
                             f"(RunStore(path, lease=True)) to bring it to version {SCHEMA_VERSION} first")
        metrics = row.metrics or {}
        values = {name: metrics.get(name) for name in _METRIC_COLUMNS}
        values["score"] = row.score
        with self._transaction():
            cursor = self._db.execute(
                "INSERT INTO evaluations (trial_id, expression, canonical, fingerprint, tokens, strategy, status,"
                " reason, score, val_acc, val_acc_std, test_acc, test_acc_std, loss, trained, duplicate, attempts,"
                " seeds, metrics, worker, started_at, finished_at" + (", rung" if self._has_rung else "") + ")"
                " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?" + (",?" if self._has_rung else "") + ")",
                (row.trial_id, row.expression, row.canonical, row.fingerprint, json.dumps(row.tokens), row.strategy,
                 row.status, row.reason or "", *(values[name] for name in _METRIC_COLUMNS), int(row.trained),
                 int(row.duplicate), row.attempts, json.dumps(row.seeds), json.dumps(metrics, default=str),
                 row.worker, row.started_at, row.finished_at, *([row.rung] if self._has_rung else [])),
            )
        return int(cursor.lastrowid)

    def rows(self, after: int = 0) -> Iterator[EvaluationRow]:
        """Yield the recorded evaluations with row id > `after`, in the order they were appended."""
        cursor = self._db.execute(
            "SELECT id, trial_id, expression, canonical, fingerprint, tokens, strategy, status, reason, score,"
            " trained, duplicate, attempts, seeds, metrics, worker, started_at, finished_at, "
            + ("rung" if self._has_rung else "0") + " FROM evaluations WHERE id > ? ORDER BY id", (after,),
        )
        for (row_id, trial_id, expression, canonical, fingerprint, tokens, strategy, status, reason, score, trained,
             duplicate, attempts, seeds, metrics, worker, started_at, finished_at, rung) in cursor:
            yield EvaluationRow(
                expression=expression, canonical=canonical, fingerprint=fingerprint, tokens=json.loads(tokens),
                strategy=strategy, status=status, trained=bool(trained), duplicate=bool(duplicate), reason=reason,
                score=score, trial_id=trial_id, metrics=json.loads(metrics or "{}"), seeds=json.loads(seeds or "null"),
                attempts=attempts, worker=worker, started_at=started_at, finished_at=finished_at, rung=rung,
                id=row_id,
            )

    def count_trained(self) -> int:
        """Return the number of distinct candidates that cost a training run (promotions are not new ones)."""
        rung = " AND rung = 0" if self._has_rung else ""
        return int(self._db.execute(f"SELECT COUNT(*) FROM evaluations WHERE trained = 1{rung}").fetchone()[0])

    def last_row_id(self) -> int:
        """Return the id of the last evaluation row (0 when there is none)."""
        return int(self._db.execute("SELECT COALESCE(MAX(id), 0) FROM evaluations").fetchone()[0])

    # ----- checkpoints -----
    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Save a checkpoint (tensors and plain data) covering every row appended so far, atomically."""
        buffer = io.BytesIO()
        torch.save(state, buffer)
        with self._transaction():
            last_row = self.last_row_id()
            self._db.execute(
                "INSERT INTO checkpoints (last_row, created_at, state) VALUES (?, ?, ?)",
                (last_row, time.time(), buffer.getvalue()),
            )
            self._db.execute(
                "DELETE FROM checkpoints WHERE id NOT IN (SELECT id FROM checkpoints ORDER BY id DESC LIMIT ?)",
                (_KEEP_CHECKPOINTS,),
            )

    def load_checkpoint(self) -> tuple[dict[str, Any], int] | None:
        """Return (state, id of the last row it covers) of the newest checkpoint, or None when there is none."""
        row = self._db.execute("SELECT state, last_row FROM checkpoints ORDER BY id DESC LIMIT 1").fetchone()
        if row is None:
            return None
        return torch.load(io.BytesIO(row[0]), weights_only=True), int(row[1])

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._check_writer)

    def _check_writer(self) -> None:
        """Raise controller.lease.LeaseLost when this store may no longer write (inside a write transaction)."""
        if self.lease is not None:
            self.lease.check(self._db)
        else:
            check_writer(self._db, self.path, "run store")


class _Transaction:
    """BEGIN IMMEDIATE, a check that this process may still write, ... COMMIT; ROLLBACK when the block raises."""

    def __init__(self, db: sqlite3.Connection, check: Callable[[], None]) -> None:
        self._db = db
        self._check = check

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._check()
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def load_run(path: str | Path) -> Any:
    """Return a pandas DataFrame with one row per recorded evaluation of a run store (a file or a run folder).

    Columns include `expression`, `canonical`, `fingerprint`, `tokens` (list), `status`, `reason`, `score`,
    `val_acc`, `test_acc`, `trained`, `duplicate`, `rung`, `worker`, `started_at`, `finished_at` and `metrics`
    (dict); `frame.attrs["config"]` holds the run's settings ({} for a store without them).
    """
    import pandas as pd

    path = Path(path)
    if path.is_dir():
        path = path / "run.sqlite"
    if not path.is_file():
        raise StoreError(f"no run store at {path} (expected a run.sqlite file or a folder holding one)")
    with closing(sqlite3.connect(path)) as db:
        frame = pd.read_sql_query("SELECT * FROM evaluations ORDER BY id", db)
        row = db.execute("SELECT value FROM meta WHERE key='config'").fetchone()
    frame.attrs["config"] = json.loads(row[0]) if row else {}  # the run's settings (act_norm: how it fingerprinted)
    for column in ("tokens", "metrics", "seeds"):
        frame[column] = frame[column].map(lambda text: json.loads(text) if text else None)
    for column in ("trained", "duplicate"):
        frame[column] = frame[column].astype(bool)
    if "rung" not in frame:  # a version-1 store: every row is a first training
        frame["rung"] = 0
    return frame
