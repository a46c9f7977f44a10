"""The writer lease of a SQLite store: a run store or a validation store has one driver at a time.

The driver takes the lease when it opens the store for writing: one row of a `lease` table naming its host, pid,
process start (so a pid reused after a reboot or a crash is not mistaken for the holder), when it took the lease,
its last heartbeat and how long its heartbeat may lapse. A daemon thread with its own connection renews the
heartbeat every few seconds, so a driver busy in a long `ray.wait` or a PPO update keeps the lease.

Another process that asks for the lease is refused (`LeaseHeld`, one line naming the holder) unless the holder is
gone: on the same host, a holder whose process is dead (or whose pid now belongs to a later process) is taken over
at once; a holder on another host is trusted until its heartbeat is older than the stale time it recorded with the
lease (`stale_s`, 60 s unless $ACTSEARCH_LEASE_STALE_S says otherwise; hosts' clocks must agree to within it). The
row is read and written in one `BEGIN IMMEDIATE` transaction, so of two drivers racing for the lease exactly one
wins. Every write of a store runs `check_writer` inside its own transaction: a driver whose lease was taken over (it
stalled past `stale_s`) gets `LeaseLost` instead of writing next to the new holder.

Readers never take the lease: SQLite's WAL lets them read a store that is being written. Only the standard library
is used, and nothing here knows which store it guards, so the module moves with the stores that use it.

>>> import pathlib, sqlite3, tempfile
>>> path = pathlib.Path(tempfile.mkdtemp()) / "store.sqlite"
>>> lease = WriterLease.acquire(path, what="run store")
>>> WriterLease.acquire(path, what="run store")
Traceback (most recent call last):
...
controller.lease.LeaseHeld: the run store at ... is being written by pid ...
>>> lease.release()
"""

from __future__ import annotations

import logging
import os
import socket
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LEASE_SCHEMA", "STALE_ENV", "LeaseHeld", "LeaseLost", "WriterLease", "check_writer", "close_store",
           "stale_seconds"]

logger = logging.getLogger(__name__)

STALE_ENV = "ACTSEARCH_LEASE_STALE_S"  # seconds without a heartbeat before another host may take a lease over
DEFAULT_STALE_S = 60.0
LEASE_SCHEMA = """
CREATE TABLE IF NOT EXISTS lease (
    id INTEGER PRIMARY KEY CHECK (id = 1), token TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    process_start TEXT NOT NULL, acquired_at REAL NOT NULL, heartbeat_at REAL NOT NULL, stale_s REAL NOT NULL
);
"""
_COLUMNS = "token, host, pid, process_start, acquired_at, heartbeat_at, stale_s"


class LeaseHeld(RuntimeError):
    """Another live process holds the store's lease; the message names it and says what to do."""


class LeaseLost(RuntimeError):
    """This process's lease was taken over (or another live process holds it): it must stop writing."""


def stale_seconds() -> float:
    """Return how long a heartbeat may lapse before the lease is taken over ($ACTSEARCH_LEASE_STALE_S, else 60)."""
    text = os.environ.get(STALE_ENV, "")
    try:
        value = float(text) if text else DEFAULT_STALE_S
    except ValueError:
        raise ValueError(f"{STALE_ENV}={text!r} is not a number of seconds; unset it for {DEFAULT_STALE_S:g}") from None
    if value <= 0:
        raise ValueError(f"{STALE_ENV}={text!r} must be positive; unset it for {DEFAULT_STALE_S:g}")
    return value


def _process_start(pid: int) -> str:
    """Return "<boot id>:<start tick>" of a live process, "" for a dead or zombie one or where /proc is missing."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""
    fields = stat.rsplit(")", 1)[1].split()  # the command name in (...) may hold spaces
    return "" if fields[0] in ("Z", "X") else f"{boot}:{fields[19]}"


def _alive(pid: int) -> bool:
    if Path("/proc/self/stat").exists():
        return bool(_process_start(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: alive
        return True
    return True


@dataclass(frozen=True)
class _Holder:
    token: str
    host: str
    pid: int
    process_start: str
    acquired_at: float
    heartbeat_at: float
    stale_s: float

    def is_this_process(self) -> bool:
        return self.host == socket.gethostname() and self.pid == os.getpid() and (
            self.process_start == _process_start(os.getpid()))

    def gone(self, now: float) -> str:
        """Return why the holder is gone ("" while it holds the lease)."""
        if self.host == socket.gethostname():
            if not _alive(self.pid):
                return f"its process {self.pid} on this host is gone"
            started = _process_start(self.pid)
            if self.process_start and started and started != self.process_start:
                return f"pid {self.pid} on this host now belongs to another process"
            return ""
        if now - self.heartbeat_at > self.stale_s:
            return f"host {self.host} sent no heartbeat for {now - self.heartbeat_at:.0f} s"
        return ""

    def describe(self, now: float) -> str:
        day = "%H:%M" if now - self.acquired_at < 20 * 3600 else "%Y-%m-%d %H:%M"
        since = time.strftime(day, time.localtime(self.acquired_at))
        return (f"pid {self.pid} on host {self.host} since {since} "
                f"(heartbeat {max(0.0, now - self.heartbeat_at):.0f} s ago)")


def _holder(db: sqlite3.Connection) -> _Holder | None:
    """Return the lease's holder, None when there is none (or no lease table: no driver ever took the lease)."""
    try:
        row = db.execute(f"SELECT {_COLUMNS} FROM lease WHERE id = 1").fetchone()
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):
            return None
        raise
    return None if row is None else _Holder(*row)


def check_writer(db: sqlite3.Connection, path: str | Path, what: str, token: str | None = None) -> None:
    """Raise LeaseLost unless this process may write: call it inside the write's `BEGIN IMMEDIATE` transaction.

    With `token` (the store holds the lease) the lease must still be that one; without, no other live process may
    hold it (a store opened without the lease, e.g. by a driver-side callback or a script, writes only while its
    process holds the lease or nobody does).
    """
    holder = _holder(db)
    now = time.time()
    if token is not None:
        if holder is not None and holder.token == token:
            return
        taken = "was released" if holder is None else f"was taken over by {holder.describe(now)}"
        raise LeaseLost(f"the lease of the {what} at {path} {taken} (this driver's heartbeat lapsed); this driver "
                        f"stops writing: every result it recorded is kept")
    if holder is None or holder.is_this_process() or holder.gone(now):
        return
    raise LeaseLost(f"the {what} at {path} is being written by {holder.describe(now)}; only its lease holder may "
                    f"write it")


class WriterLease:
    """This process's lease on a store: `WriterLease.acquire(path, what)`, renewed until `release()`."""

    def __init__(self, path: Path, what: str, token: str, stale_s: float, db: sqlite3.Connection) -> None:
        self.path, self.what, self.token, self.stale_s = path, what, token, stale_s
        self.heartbeat_s = max(0.1, min(5.0, stale_s / 6))
        self.lost = False
        self._db = db  # used by the heartbeat thread only, between acquire and release
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name=f"lease heartbeat {path.name}", daemon=True)

    @classmethod
    def acquire(cls, path: str | Path, what: str, stale_s: float | None = None) -> WriterLease:
        """Take the lease of the store at `path` and start its heartbeat; raise LeaseHeld while another holds it.

        `what` names the store in messages ("run store", "validation store"); `stale_s` defaults to
        `stale_seconds()`.
        """
        path = Path(path)
        stale_s = stale_seconds() if stale_s is None else stale_s
        db = sqlite3.connect(path, isolation_level=None, timeout=30, check_same_thread=False)
        try:
            db.executescript(LEASE_SCHEMA)
            db.execute("BEGIN IMMEDIATE")  # read and claim in one transaction: of two racing drivers one wins
            try:
                now, holder = time.time(), _holder(db)
                reason = "" if holder is None else holder.gone(now)
                if holder is not None and not reason:
                    raise LeaseHeld(
                        f"the {what} at {path} is being written by {holder.describe(now)}; wait for it to finish or "
                        f"stop it (Ctrl-C) before resuming; a lease with no heartbeat for {holder.stale_s:g} s is "
                        f"taken over")
                token = uuid.uuid4().hex
                db.execute(f"INSERT OR REPLACE INTO lease (id, {_COLUMNS}) VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
                           (token, socket.gethostname(), os.getpid(), _process_start(os.getpid()), now, now, stale_s))
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except BaseException:
            db.close()
            raise
        if reason:
            logger.warning("taking over the lease of the %s at %s from %s: %s", what, path,
                           f"pid {holder.pid} on host {holder.host}", reason)
        lease = cls(path, what, token, stale_s, db)
        lease._thread.start()
        return lease

    def check(self, db: sqlite3.Connection) -> None:
        """Raise LeaseLost unless this lease still holds the store (call inside a write transaction on `db`)."""
        check_writer(db, self.path, self.what, self.token)

    def _beat(self) -> None:
        while not self._stop.wait(self.heartbeat_s):
            try:
                cursor = self._db.execute("UPDATE lease SET heartbeat_at = ? WHERE id = 1 AND token = ?",
                                          (time.time(), self.token))
            except sqlite3.Error as error:  # busy or a full disk: the next beat tries again, writes report it
                logger.debug("lease heartbeat failed: %s", error)
                continue
            if cursor.rowcount == 0:
                self.lost = True
                logger.error("lost the lease of the %s at %s to another driver; its next write stops this one",
                             self.what, self.path)
                return

    def release(self) -> None:
        """Stop the heartbeat and give the lease up (a lease already taken over is left to its new holder)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()
        try:
            self._db.execute("DELETE FROM lease WHERE id = 1 AND token = ?", (self.token,))
        except sqlite3.Error as error:  # (a full disk) the row stays: the next driver on this host takes it over
            # at once and says so; a warning here would add a second line to the error that ended this driver
            logger.info("could not release the lease of the %s at %s: %s", self.what, self.path, error)
        finally:
            self._db.close()


def close_store(lease: WriterLease | None, db: sqlite3.Connection) -> None:
    """Give up a store's writer lease, if it holds one, then close its connection (even when the release fails):
    how every leased store closes."""
    try:
        if lease is not None:
            lease.release()
    finally:
        db.close()
