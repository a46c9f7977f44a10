"""Faults a long search meets, against the real CLI, a real Ray and a real SQLite store: nothing recorded is lost.

Driver killed at random points and inside a checkpoint write, a worker killed mid-evaluation, a full disk, a
read-only folder, a store from a newer version.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import random
import resource
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller import load_run
from controller.store import EvaluationRow, RunStore
from tests.controller.conftest import REPO, processes_marked
from tests.controller.test_cli_e2e import check_store, cli, run_cli, trained_rows

XOR = ["--units", "1", "--ops", "small", "--task", "xor"]


def integrity(store: Path) -> str:
    with sqlite3.connect(store) as db:
        return db.execute("PRAGMA integrity_check").fetchone()[0]


def assert_intact(out: Path, before: object | None) -> object:
    """The store passes SQLite's integrity check, keeps every row it had `before`, and trains nothing twice."""
    assert integrity(out / "run.sqlite") == "ok"
    frame = load_run(out)
    if before is not None:
        assert frame["id"].tolist()[: len(before)] == before["id"].tolist()
        assert frame["fingerprint"].tolist()[: len(before)] == before["fingerprint"].tolist()
    trained = frame[frame["trained"]]
    assert not trained.duplicated(["fingerprint", "rung"]).any(), "a function trained twice to the same rung"
    assert frame.loc[frame["rung"] == 0, "trial_id"].is_unique
    return frame


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def kill_after_rows(args: list[str], env: dict, out: Path, more: int, pause: float) -> None:
    """Run `python -m controller.run ARGS` and SIGKILL it `pause` seconds after its store holds `more` trained rows
    beyond what it had (or after 150 s, or when it ends by itself)."""
    driver = subprocess.Popen([sys.executable, "-m", "controller.run", *args], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target, deadline = trained_rows(out / "run.sqlite") + more, time.time() + 150
    while trained_rows(out / "run.sqlite") < target and time.time() < deadline and driver.poll() is None:
        time.sleep(0.05)
    time.sleep(pause)
    driver.kill()
    driver.wait()


@pytest.mark.slow
def test_driver_killed_inside_a_checkpoint_and_at_random_points_loses_nothing(ray_head: dict, tmp_path: Path) -> None:
    out, budget, env = tmp_path / "run", 24, ray_head["env"]
    where = ["--out", str(out), "--address", ray_head["address"]]
    settings = ["--budget", str(budget), "--strategy", "rl", "--checkpoint-every", "2", *XOR, "--steps", "300",
                "--workers", "2", "--task-batch", "2"]  # small batches: results arrive often, so kills land mid-run

    # Killed between the INSERT and the COMMIT of its second checkpoint: SQLite rolls that write back.
    died = subprocess.run([sys.executable, "-m", "tests.controller.die_in_checkpoint", "2", *settings, *where],
                          env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert died.returncode == -signal.SIGKILL, died.stderr[-2000:]
    frame = assert_intact(out, None)
    assert frame["trained"].sum() >= 3
    with sqlite3.connect(out / "run.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] == 1  # the second never committed

    rng = random.Random(8)
    for _ in range(2):  # killed from outside at random points of the resumed run
        kill_after_rows(["--resume", *where], env, out, more=rng.randint(1, 4), pause=rng.uniform(0.0, 0.4))
        frame = assert_intact(out, frame)
        assert frame["trained"].sum() < budget, "a kill should land before the end of the run"

    result = run_cli(["--resume", *where], env)
    assert result.returncode == 0, result.stderr[-2000:]
    assert_intact(out, frame)
    check_store(out, budget)


@pytest.mark.slow
def test_a_cascade_killed_at_random_points_neither_loses_nor_repeats_a_promotion(ray_head: dict,
                                                                                 tmp_path: Path) -> None:
    out, budget, env = tmp_path / "run", 14, ray_head["env"]
    where = ["--out", str(out), "--address", ray_head["address"]]
    settings = ["--budget", str(budget), "--strategy", "random", *XOR, "--rungs", "20", "60", "180", "--eta", "2",
                "--workers", "2", "--task-batch", "2"]
    frame, rng = None, random.Random(3)
    for attempt in range(2):
        args = [*settings, *where] if attempt == 0 else ["--resume", *where]
        kill_after_rows(args, env, out, more=rng.randint(2, 5), pause=rng.uniform(0.0, 0.3))
        frame = assert_intact(out, frame)
    assert (frame["rung"] > 0).any(), "kills should land after the first promotions"
    result = run_cli(["--resume", *where], env)
    assert result.returncode == 0, result.stderr[-2000:]
    frame = assert_intact(out, frame)
    check_store(out, budget)
    # Finished: every rung's best half went up (nothing lost), and no function went up twice.
    ok = frame[frame["trained"] & (frame["status"] == "ok")]
    for rung in (0, 1):
        here, above = ok[ok["rung"] == rung], set(frame.loc[frame["trained"] & (frame["rung"] == rung + 1),
                                                            "fingerprint"])
        results = int((frame["trained"] & (frame["rung"] == rung)).sum())
        best = here.sort_values(["score", "fingerprint"], ascending=False).head(results // 2)  # the ladder's order
        assert set(best["fingerprint"]) <= above
    assert "results per rung" in result.stdout


def evaluation_workers(marker: str) -> list[int]:
    """Ray worker processes of the cluster `marker` that are running an evaluation task right now."""
    found = []
    for pid in processes_marked(marker):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes().startswith(b"ray::evaluate_batch"):
                found.append(pid)
        except OSError:
            continue
    return found


@pytest.mark.slow
def test_worker_killed_mid_evaluation_is_retried_and_recorded_once(ray_head: dict, tmp_path: Path) -> None:
    out, budget = tmp_path / "run", 5
    driver = subprocess.Popen(
        [sys.executable, "-m", "controller.run", "--budget", str(budget), "--strategy", "random", "--seed", "3",
         *XOR, "--steps", "4000", "--workers", "1", "--task-batch", "1", "--address", ray_head["address"],
         "--out", str(out)],
        env=ray_head["env"], cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, victims = time.time() + 120, []
    while not victims and time.time() < deadline and driver.poll() is None:
        victims = evaluation_workers(ray_head["temp"])
        time.sleep(0.05)
    assert victims, "no worker was seen evaluating"
    time.sleep(0.3)
    os.kill(victims[0], signal.SIGKILL)
    stdout, stderr = driver.communicate(timeout=240)
    assert driver.returncode == 0, stderr[-2000:]
    assert f"{budget}/{budget} candidates trained" in stdout
    check_store(out, budget)
    frame = assert_intact(out, None)
    retried = frame[frame["attempts"] > 1]
    assert len(retried) == 1 and retried["trained"].all()  # the killed candidate: tried again, recorded once


def limit_file_size(limit: int):
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_full_disk_stops_the_run_with_one_line_and_keeps_what_was_recorded(ray_head: dict, tmp_path: Path) -> None:
    out, env = tmp_path / "run", ray_head["env"]
    where = ["--out", str(out), "--address", ray_head["address"]]
    first = run_cli(["--budget", "3", "--strategy", "random", *XOR, "--steps", "30", "--workers", "2", *where], env)
    assert first.returncode == 0, first.stderr[-2000:]
    before = assert_intact(out, None)

    # The driver may grow no file past 40 kB beyond the store's size (the disk "fills"; its Ray is not limited).
    full = subprocess.run([sys.executable, "-m", "controller.run", "--resume", "--budget", "400", *where], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=240,
                          preexec_fn=limit_file_size((out / "run.sqlite").stat().st_size + 40_000))
    assert full.returncode == 2, full.stderr[-2000:]
    assert "Traceback" not in full.stderr
    last = full.stderr.strip().splitlines()[-1]
    assert last.startswith("python -m controller.run: error: cannot write the run store")
    assert f"resume with: python -m controller.run --out {out} --resume" in last
    during = assert_intact(out, before)
    assert len(during) > len(before)  # it did record rows until the disk was full

    result = run_cli(["--resume", "--budget", "12", *where], env)  # space again: the run goes on
    assert result.returncode == 0, result.stderr[-2000:]
    assert_intact(out, during)
    check_store(out, 12)


def small_store(out: Path, schema: int | None = None) -> Path:
    """A run store holding a config and one recorded evaluation (optionally claiming another schema version)."""
    with RunStore(out / "run.sqlite") as store:
        store.set_meta({"config": {"budget": 4, "strategy": "random", "units": 1, "ops": "small", "task": "xor"}})
        store.append(EvaluationRow(expression="x", canonical="x", fingerprint="f0", tokens=[0], strategy="random",
                                   status="ok", trained=True, score=0.5, trial_id=0))
        if schema is not None:
            store.set_meta({"schema_version": schema})
    return out


def without_root_override() -> None:
    """In the child: drop the capabilities that let root ignore file permissions (no-op for other users)."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2, 3):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP: gone for the program exec'd next
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def test_a_read_only_run_folder_is_one_clear_line_and_left_untouched(tmp_path: Path) -> None:
    out = small_store(tmp_path / "run")
    before = digest(out)
    (out / "run.sqlite").chmod(0o444)
    out.chmod(0o555)
    try:
        result = subprocess.run([sys.executable, "-m", "controller.run", "--out", str(out), "--resume"],
                                env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True,
                                text=True, timeout=120, preexec_fn=without_root_override)
    finally:
        out.chmod(0o755)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "Traceback" not in result.stderr
    assert "cannot be written" in result.stderr and "writable" in result.stderr
    assert digest(out) == before


def test_a_store_from_a_newer_version_is_refused_and_left_untouched(tmp_path: Path,
                                                                    capsys: pytest.CaptureFixture) -> None:
    out = small_store(tmp_path / "run", schema=99)
    before = digest(out)
    status, err = cli(["--out", str(out), "--resume"], capsys)
    assert status == 2 and err.strip().count("\n") == 0
    assert "written by a newer actsearch" in err and "upgrade" in err
    assert digest(out) == before
