"""The writer lease of a store (`controller.lease`) and the validation store's use of it: real processes and SQLite."""

from __future__ import annotations

import doctest
import logging
import multiprocessing
import os
import socket
import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from controller import lease as lease_module
from controller.lease import LEASE_SCHEMA, LeaseHeld, LeaseLost, WriterLease, check_writer
from controller.validate import main as validate_main
from controller.validation.store import StoreError, ValidationStore

FORK = multiprocessing.get_context("fork")  # children that start in milliseconds and need no imports


def write_lease(path: Path, host: str, pid: int, heartbeat_age: float = 0.0, stale_s: float = 60.0,
                process_start: str = "") -> None:
    """Write the lease row directly, as a driver elsewhere would have."""
    now = time.time()
    with sqlite3.connect(path) as db:
        db.executescript(LEASE_SCHEMA)
        db.execute("INSERT OR REPLACE INTO lease (id, token, host, pid, process_start, acquired_at, heartbeat_at,"
                   " stale_s) VALUES (1, 'theirs', ?, ?, ?, ?, ?, ?)",
                   (host, pid, process_start, now - 600, now - heartbeat_age, stale_s))


def lease_row(path: Path) -> tuple | None:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT host, pid, heartbeat_at FROM lease").fetchone()


def _race(path: str, barrier: object, results: object, done: object) -> None:
    barrier.wait()
    try:
        WriterLease.acquire(path, what="run store", stale_s=600)
        results.put("won")
        done.wait(30)  # hold the lease (alive) until every racer has tried
    except LeaseHeld:
        results.put("held")
    except Exception as error:  # noqa: BLE001 (reported to the parent, which fails the test)
        results.put(f"error: {error!r}")
    os._exit(0)  # no release: the winner leaves its row behind, as a killed driver would


def test_docstring_example_runs() -> None:
    outcome = doctest.testmod(lease_module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0 and outcome.failed == 0


def test_of_racing_drivers_exactly_one_wins_and_a_dead_winner_is_taken_over_at_once(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    for round_ in range(3):
        path = tmp_path / f"race{round_}.sqlite"
        racers = 4
        barrier, results, done = FORK.Barrier(racers), FORK.SimpleQueue(), FORK.Event()
        children = [FORK.Process(target=_race, args=(str(path), barrier, results, done)) for _ in range(racers)]
        for child in children:
            child.start()
        outcomes, deadline = [], time.time() + 60
        while len(outcomes) < racers and time.time() < deadline:
            if results.empty():
                time.sleep(0.01)
            else:
                outcomes.append(results.get())
        outcomes.sort()
        done.set()
        for child in children:
            child.join(30)
        assert outcomes == ["held", "held", "held", "won"]

    # The winner died without releasing: on the same host a dead pid is taken over without waiting (stale_s 600).
    winner = lease_row(path)
    assert winner is not None and winner[0] == socket.gethostname()
    caplog.set_level(logging.WARNING, logger="controller.lease")
    start = time.time()
    lease = WriterLease.acquire(path, what="run store")
    try:
        assert time.time() - start < 5
        warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "taking over the lease" in warnings[0] and f"process {winner[1]} on this host is gone" in warnings[0]
        assert lease_row(path)[1] == os.getpid()
    finally:
        lease.release()
    assert lease_row(path) is None  # released on a clean exit


def test_a_reused_pid_does_not_hold_the_lease(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "store.sqlite"
    # A live pid on this host (our parent) whose start time is not the one recorded: the pid was reused.
    write_lease(path, socket.gethostname(), os.getppid(), process_start="another-boot:12345")
    caplog.set_level(logging.WARNING, logger="controller.lease")
    WriterLease.acquire(path, what="run store").release()
    assert any("now belongs to another process" in r.getMessage() for r in caplog.records)
    # The same pid with its real start time holds the lease.
    write_lease(path, socket.gethostname(), os.getppid(), process_start=lease_module._process_start(os.getppid()))
    with pytest.raises(LeaseHeld, match=f"pid {os.getppid()} on host"):
        WriterLease.acquire(path, what="run store")


def test_another_hosts_lease_is_honoured_until_its_heartbeat_is_stale(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    write_lease(path, "other-host", 4242, heartbeat_age=1.0, stale_s=3.0)
    with pytest.raises(LeaseHeld) as refused:
        WriterLease.acquire(path, what="run store", stale_s=0.5)  # the holder's own stale time counts
    message = str(refused.value)
    assert "\n" not in message
    assert "is being written by pid 4242 on host other-host since" in message and "(heartbeat 1 s ago)" in message
    assert "no heartbeat for 3 s is taken over" in message
    assert lease_row(path)[:2] == ("other-host", 4242)  # a refusal changes nothing

    write_lease(path, "other-host", 4242, heartbeat_age=3.5, stale_s=3.0)
    lease = WriterLease.acquire(path, what="run store")
    lease.release()


def test_the_heartbeat_renews_while_the_driver_is_busy_and_notices_a_takeover(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    lease = WriterLease.acquire(path, what="run store", stale_s=0.6)  # a heartbeat every 0.1 s
    try:
        first = lease_row(path)[2]
        time.sleep(0.5)  # the main thread is busy elsewhere (as in a long ray.wait)
        assert lease_row(path)[2] > first
        write_lease(path, "other-host", 4242)  # it stalled past stale_s and another driver took over
        with sqlite3.connect(path) as db, pytest.raises(LeaseLost, match="was taken over by pid 4242 on host other"):
            lease.check(db)
        deadline = time.time() + 5
        while not lease.lost and time.time() < deadline:
            time.sleep(0.05)
        assert lease.lost
    finally:
        lease.release()
    assert lease_row(path)[:2] == ("other-host", 4242)  # releasing a lost lease leaves the new holder's row


def test_a_writer_without_the_lease_is_stopped_only_by_a_live_holder(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    with sqlite3.connect(path) as db:
        check_writer(db, path, "run store")  # no lease table yet: nobody holds it
        write_lease(path, "other-host", 4242)
        with pytest.raises(LeaseLost, match="being written by pid 4242 on host other-host"):
            check_writer(db, path, "run store")
        write_lease(path, "other-host", 4242, heartbeat_age=120)
        check_writer(db, path, "run store")  # a stale holder stops nobody


@contextmanager
def held_in_child(open_store: Callable[[], object]) -> Iterator[int]:
    """Run `open_store()` in a child process that keeps the store open (its lease held); yield the child's pid."""
    ready, done = FORK.Event(), FORK.Event()

    def child() -> None:
        store = open_store()
        ready.set()
        done.wait(60)
        store.close()
        os._exit(0)

    process = FORK.Process(target=child)
    process.start()
    try:
        assert ready.wait(30), "the child did not open the store"
        yield process.pid
    finally:
        done.set()
        process.join(30)


def test_a_validation_store_has_one_writer_and_any_number_of_readers(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "out" / "v.sqlite"
    setup = ValidationStore(path)
    setup.record("relu", "mlp", 0, task="xor", status="ok", test_acc=0.9)
    setup.close()
    grid = [("relu", "mlp", 0), ("relu", "mlp", 1)]
    with held_in_child(lambda: ValidationStore(path, lease=True)) as pid:
        with pytest.raises(StoreError, match=f"validation store at {path} is being written by pid {pid} on host"):
            ValidationStore(path, lease=True)
        reader = ValidationStore(path)  # readers need no lease ...
        assert reader.pending(grid) == [("relu", "mlp", 1)] and len(reader.frame()) == 1
        with pytest.raises(StoreError, match="only its lease holder may write"):  # ... but may not write
            reader.record("relu", "mlp", 1, task="xor", status="ok")
        reader.close()

        with pytest.raises(SystemExit) as refused:  # the CLI: one line, exit status 2, before any cluster work
            validate_main(["--expressions", "relu", "--baselines", "--models", "mlp", "--task", "xor",
                           "--out", str(path.parent), "--name", "v", "--resume"])
        assert refused.value.code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"is being written by pid {pid} on host" in err

    store = ValidationStore(path, lease=True)  # the child closed its store: the lease is free again
    store.record("relu", "mlp", 1, task="xor", status="ok", test_acc=0.8)
    store.close()
    assert ValidationStore(path).pending(grid) == [] and lease_row(path) is None
