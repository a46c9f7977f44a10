"""A run store has one driver: real `controller.run` processes, a real Ray and real SQLite (issue #16).

A second driver on a running store refuses within seconds and the first finishes its exact budget; a store whose
driver was SIGKILLed is resumed at once; a lease held from another host is honoured until its heartbeat is stale.
"""

from __future__ import annotations

import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from controller import leaderboard_frame, load_run
from controller.lease import LeaseHeld, LeaseLost
from controller.session import _print_top
from controller.store import EvaluationRow, RunStore
from search_space import Space, parse
from tests.controller.conftest import REPO
from tests.controller.test_cli_e2e import check_store, run_cli, trained_rows
from tests.controller.test_writer_lease import held_in_child, lease_row, write_lease

XOR = ["--strategy", "random", "--units", "1", "--ops", "small", "--task", "xor", "--workers", "1",
       "--task-batch", "1"]


def row(text: str, score: float | None, trained: bool = True) -> EvaluationRow:
    expr = parse(text)
    return EvaluationRow(expression=text, canonical=str(expr), fingerprint=expr.fingerprint(), tokens=[],
                         strategy="random", status="ok" if score is not None else "nan", trained=trained,
                         score=score, metrics={"val_acc_std": 0.01})


def finished_store(out: Path) -> Path:
    """A run store whose budget (1) is done: a resume has nothing to train and needs no Ray."""
    space = Space(units=1, ops="small")
    tokens = space.sample_tokens(random.Random(0))
    done = row(str(space.decode(tokens)), 0.75)
    done.tokens = tokens
    with RunStore(out / "run.sqlite") as store:
        store.set_meta({"config": {"budget": 1, "strategy": "random", "units": 1, "ops": "small", "task": "xor"}})
        store.append(done)
    return out / "run.sqlite"


def test_a_store_with_a_driver_refuses_a_second_and_fences_a_driver_that_lost_it(tmp_path: Path) -> None:
    path = finished_store(tmp_path / "run")
    with RunStore(path, lease=True) as driver:
        with pytest.raises(LeaseHeld, match=f"run store at {path} is being written by pid {os.getpid()}"):
            RunStore(path, lease=True)
        with RunStore(path, create=False) as reader:  # readers never need the lease
            assert len(list(reader.rows())) == 1
        assert len(load_run(path)) == 1 and len(leaderboard_frame(path, properties=False)) == 1

        write_lease(path, "other-host", 4242)  # this driver stalled past the stale time and was taken over
        with pytest.raises(LeaseLost, match="was taken over by pid 4242 on host other-host"):
            driver.append(row("sin(x)", 0.5))
        with pytest.raises(LeaseLost):
            driver.save_checkpoint({"strategy": {}})
    assert len(load_run(path)) == 1  # nothing written after the takeover
    assert lease_row(path)[:2] == ("other-host", 4242)  # closing left the new holder's lease alone


def test_a_writer_without_the_lease_cannot_write_next_to_a_live_driver(tmp_path: Path) -> None:
    path = finished_store(tmp_path / "run")
    with held_in_child(lambda: RunStore(path, lease=True)) as pid, RunStore(path) as other:
        with pytest.raises(LeaseLost, match=f"being written by pid {pid} on host {socket.gethostname()}"):
            other.append(row("sin(x)", 0.5))
    assert len(load_run(path)) == 1
    with RunStore(path) as other:  # the driver is gone: writing is allowed again
        other.append(row("sin(x)", 0.5))


def test_the_end_of_run_summary_lists_each_function_once_as_the_leaderboard(tmp_path: Path,
                                                                           capsys: pytest.CaptureFixture) -> None:
    with RunStore(tmp_path / "run.sqlite") as store:
        # Two trained rows of one function (as two drivers on one store left them) and one spelled differently.
        for entry in (row("sigmoid(x**2) * max(x, 0)", 0.90), row("x * sigmoid(x)", 0.95),
                      row("sigmoid(x**2) * max(x, 0)", 0.92), row("sigmoid(x**2) * max(0, x)", 0.91),
                      row("exp(exp(x))", None)):
            store.append(entry)
        _print_top(store)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["rank", "score", "±", "sd", "expression"]
    shown = [(line.split()[0], line.split()[1], " ".join(line.split()[3:])) for line in lines[1:]]
    board = leaderboard_frame(tmp_path / "run.sqlite", status="ok", properties=False)
    assert shown == [(str(r.rank), f"{r.score:.4f}", r.expression) for r in board.itertuples()]
    assert [score for _, score, _ in shown] == ["0.9500", "0.9200"]  # the function once, with its best score


def drivers(*commands: list[str], env: dict[str, str]) -> list[subprocess.CompletedProcess]:
    """Run `python -m controller.run` with each argument list at the same time; return them all when done."""
    started = [subprocess.Popen([sys.executable, "-m", "controller.run", *args], env=env, cwd=REPO,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for args in commands]
    done = []
    for process in started:
        stdout, stderr = process.communicate(timeout=120)
        done.append(subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr))
    return done


@contextmanager
def heartbeats_from_another_host(path: Path, interval: float = 0.3) -> Iterator[None]:
    """Keep the lease's heartbeat fresh, as its live holder on another host would, until the block ends."""
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            with sqlite3.connect(path) as db:
                db.execute("UPDATE lease SET heartbeat_at = ?", (time.time(),))

    thread = threading.Thread(target=beat, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_a_lease_held_from_another_host_is_honoured_until_its_heartbeat_is_stale(tmp_path: Path) -> None:
    out, stale_s = tmp_path / "run", 3.0
    path = finished_store(out)
    before = load_run(path)
    write_lease(path, "other-host", 4242, stale_s=stale_s)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with heartbeats_from_another_host(path):
        # A resume, and a new run there: both refused.
        refused, new = drivers(["--out", str(out), "--resume"], ["--out", str(out), "--budget", "5"], env=env)
    assert refused.returncode == 2, refused.stderr[-2000:]
    assert refused.stderr.count("\n") == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.startswith(f"python -m controller.run: error: the run store at {path} is being written "
                                     f"by pid 4242 on host other-host since ")
    assert "wait for it to finish or stop it (Ctrl-C) before resuming" in refused.stderr
    assert "a lease with no heartbeat for 3 s is taken over" in refused.stderr
    assert new.returncode == 2 and "is being written by pid 4242 on host other-host" in new.stderr
    assert load_run(path).equals(before) and lease_row(path)[:2] == ("other-host", 4242)

    time.sleep(max(0.0, lease_row(path)[2] + stale_s + 0.5 - time.time()))  # the other host stopped beating
    (taken,) = drivers(["--out", str(out), "--resume"], env=env)
    assert taken.returncode == 0, taken.stderr[-2000:]
    assert "nothing to do" in taken.stdout
    warnings = [line for line in taken.stderr.splitlines() if "taking over the lease" in line]
    assert len(warnings) == 1
    assert f"of the run store at {path} from pid 4242 on host other-host" in warnings[0]
    assert "sent no heartbeat for" in warnings[0]
    assert lease_row(path) is None  # released when the driver finished


@pytest.mark.slow
def test_a_second_driver_on_a_running_store_refuses_and_the_first_trains_its_exact_budget(ray_head: dict,
                                                                                         tmp_path: Path) -> None:
    out, budget, env = tmp_path / "run", 4, ray_head["env"]
    where = ["--out", str(out), "--address", ray_head["address"]]
    first = subprocess.Popen(
        [sys.executable, "-m", "controller.run", "--budget", str(budget), *XOR, "--steps", "1200", *where],
        env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while (not (out / "run.sqlite").is_file() or _no_lease(out / "run.sqlite")) and time.time() < deadline:
        assert first.poll() is None, first.communicate()[1][-2000:]
        time.sleep(0.1)

    start = time.time()
    for second in drivers([*where, "--resume"], [*where, "--budget", str(budget), *XOR], env=env):
        assert second.returncode == 2, second.stderr[-2000:]
        assert second.stderr.count("\n") == 1
        assert f"is being written by pid {first.pid} on host {socket.gethostname()}" in second.stderr
    assert time.time() - start < 30, "the second driver should refuse within seconds"
    assert first.poll() is None, "the first driver should still be running when the second is refused"

    stdout, stderr = first.communicate(timeout=240)
    assert first.returncode == 0, stderr[-2000:]
    assert f"{budget}/{budget} candidates trained" in stdout
    check_store(out, budget)  # exactly the budget in distinct trained functions
    lines = stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.split()[:1] == ["rank"])
    top = [line.split(maxsplit=3)[3] for line in lines[header + 1:]]
    assert top and len(top) == len(set(top))  # the closing top list names each function once
    assert lease_row(out / "run.sqlite") is None


def _no_lease(path: Path) -> bool:
    try:
        return lease_row(path) is None
    except sqlite3.Error:  # no lease table yet
        return True


@pytest.mark.slow
def test_a_store_whose_driver_was_sigkilled_is_resumed_at_once(ray_head: dict, tmp_path: Path) -> None:
    out, budget = tmp_path / "run", 3
    env = {**ray_head["env"], "ACTSEARCH_LEASE_STALE_S": "600"}  # waiting for staleness would take 10 minutes
    args = ["--budget", str(budget), *XOR, "--steps", "300", "--address", ray_head["address"], "--out", str(out)]
    driver = subprocess.Popen([sys.executable, "-m", "controller.run", *args], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while trained_rows(out / "run.sqlite") < 1 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.1)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    held = lease_row(out / "run.sqlite")
    assert held is not None and held[1] == driver.pid  # the killed driver left its lease behind
    assert trained_rows(out / "run.sqlite") < budget, "the driver should have been killed mid-run"

    start = time.time()
    result = run_cli(["--out", str(out), "--resume"], env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert time.time() - start < 120
    warnings = [line for line in result.stderr.splitlines() if "taking over the lease" in line]
    assert len(warnings) == 1 and f"process {driver.pid} on this host is gone" in warnings[0]
    check_store(out, budget)
    assert lease_row(out / "run.sqlite") is None
