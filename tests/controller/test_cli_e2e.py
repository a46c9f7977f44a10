"""End-to-end: the real `python -m controller.run` on a real Ray, with the real evaluator on the tiny xor task."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from controller import STRATEGIES, load_run
from controller.config import RunConfig
from controller.run import main
from controller.store import RunStore
from tests.controller.conftest import RAY, REPO, free_port

TINY = ["--units", "1", "--ops", "small", "--task", "xor", "--steps", "30", "--workers", "1"]


def run_cli(args: list[str], env: dict[str, str], timeout: float = 180) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "controller.run", *args], env=env, cwd=REPO, capture_output=True,
                          text=True, timeout=timeout)


def trained_rows(store: Path) -> int:
    try:
        with sqlite3.connect(store) as db:
            return db.execute("SELECT COUNT(*) FROM evaluations WHERE trained = 1").fetchone()[0]
    except sqlite3.Error:
        return 0


def check_store(out: Path, budget: int) -> None:
    """The run trained exactly `budget` distinct functions, each once per rung it reached (a flat run: once), and
    every row is consistent."""
    frame = load_run(out)
    trained = frame[frame["trained"]]
    assert (trained["rung"] == 0).sum() == budget
    assert not trained.duplicated(["fingerprint", "rung"]).any()
    assert frame.loc[frame["rung"] == 0, "trial_id"].is_unique  # a promotion row keeps its function's trial id
    assert set(frame["status"]) <= {"ok", "nan", "diverged", "timeout", "error", "screened"}
    assert (frame.loc[frame["status"] == "ok", "score"].between(0, 1)).all()
    duplicates = frame[frame["duplicate"]]
    assert set(duplicates["fingerprint"]) <= set(frame.loc[~frame["duplicate"], "fingerprint"])


@pytest.mark.slow
@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_each_strategy_runs_on_a_ray_cluster(strategy: str, ray_head: dict, tmp_path: Path) -> None:
    out = tmp_path / "run"
    result = run_cli(["--budget", "4", "--strategy", strategy, "--seed", "1", "--address", ray_head["address"],
                      "--out", str(out), *TINY], ray_head["env"])
    assert result.returncode == 0, result.stderr
    assert "4/4 candidates trained" in result.stdout
    assert "rank" in result.stdout and "Traceback" not in result.stderr
    check_store(out, 4)
    with sqlite3.connect(out / "run.sqlite") as db:
        meta = {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM meta")}
    assert meta["config"]["strategy"] == strategy and meta["task"] == "xor" and "torch" in meta["versions"]


@pytest.mark.slow
def test_run_submitted_as_a_ray_job(ray_head: dict, tmp_path: Path) -> None:
    out = tmp_path / "job-run"
    entrypoint = (f"{sys.executable} -m controller.run --budget 3 --strategy random --address auto "
                  f"--out {out} {' '.join(TINY)}")
    for _ in range(6):  # the head's job agent can start seconds after the head on a loaded machine
        result = subprocess.run([RAY, "job", "submit", "--address", ray_head["jobs"], "--", *entrypoint.split()],
                                env=ray_head["env"], capture_output=True, text=True, timeout=180)
        if "No available agent to submit job" not in result.stderr:
            break
        time.sleep(5)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    assert "succeeded" in result.stdout
    check_store(out, 3)


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_reaches_the_exact_budget(ray_head: dict, tmp_path: Path) -> None:
    out, budget, env = tmp_path / "run", 10, ray_head["env"]
    args = ["--budget", str(budget), "--strategy", "rl", "--out", str(out), *TINY[:-4], "--steps", "400",
            "--workers", "2", "--task-batch", "1", "--address", ray_head["address"]]  # one result at a time
    driver = subprocess.Popen([sys.executable, "-m", "controller.run", *args], env=env, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 150
    while trained_rows(out / "run.sqlite") < 3 and time.time() < deadline and driver.poll() is None:
        time.sleep(0.2)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    before = load_run(out)
    assert 3 <= before["trained"].sum() < budget, "the run should have been killed mid-way"

    result = run_cli(["--out", str(out), "--resume"], env)  # the stored --address is reused
    assert result.returncode == 0, result.stderr
    after = load_run(out)
    check_store(out, budget)
    assert after.iloc[: len(before)]["fingerprint"].tolist() == before["fingerprint"].tolist()  # nothing lost

    again = run_cli(["--out", str(out), "--resume"], env)  # a finished run has nothing left to do
    assert again.returncode == 0 and "nothing to do" in again.stdout
    assert len(load_run(out)) == len(after)


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_prints_the_resume_command(ray_env: dict, tmp_path: Path) -> None:
    out = tmp_path / "run"
    driver = subprocess.Popen([sys.executable, "-m", "controller.run", "--budget", "50", "--out", str(out),
                               "--strategy", "evolution", *TINY[:-4], "--steps", "300", "--workers", "2",
                               "--dashboard"],
                              env=ray_env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 150
    while trained_rows(out / "run.sqlite") < 2 and time.time() < deadline:
        time.sleep(0.2)
    driver.send_signal(signal.SIGINT)
    stdout, stderr = driver.communicate(timeout=60)
    assert driver.returncode == 0, stderr
    assert f"resume with: python -m controller.run --out {out} --resume" in stdout
    assert "Ray dashboard: http://127.0.0.1:" in stderr  # --dashboard: on, and on localhost only
    with sqlite3.connect(out / "run.sqlite") as db:
        assert db.execute("SELECT COUNT(*) FROM checkpoints").fetchone()[0] >= 1


def cli(args: list[str], capsys: pytest.CaptureFixture) -> tuple[int, str]:
    """Run the CLI's main() in this process; return (exit status, stderr)."""
    try:
        status = main(args)
    except SystemExit as exit_:  # argparse errors
        status = exit_.code
    return status, capsys.readouterr().err


def test_unreachable_address_is_one_clear_line_within_seconds(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    start = time.time()
    status, err = cli(["--budget", "2", "--address", f"127.0.0.1:{free_port()}", "--out", str(tmp_path / "r")], capsys)
    assert status == 2 and time.time() - start < 10
    assert err.strip().count("\n") == 0 and "cannot reach the Ray cluster" in err


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--budget", "0"], "budget must be a positive integer"),
        (["--budget", "3", "--strategy", "annealing"], "invalid choice: 'annealing'"),
        (["--budget", "3", "--ops", "relu,bogus"], "bogus"),
        (["--budget", "3", "--task", "imagenet"], "unknown task 'imagenet'"),
        (["--budget", "3", "--out", "/proc/actsearch-cannot-write"], "cannot use the run store"),
        (["--resume"], "no run store"),
        ([], "--budget is required"),
        (["--budget", "3", "--name", "../escape"], "name must be"),
        (["--budget", "3", "--lr", "-1"], "lr must be positive"),
        (["--budget", "3", "--act-norm", "unit"], "invalid choice: 'unit'"),
        (["--budget", "3", "--eval-steps", "0"], "eval_steps must lie in 1..steps"),
        (["--budget", "3", "--strategy", "exhaustive", "--strategy-option", "orde=scattered"],
         "strategy 'exhaustive' has no option orde; its options: order"),
        (["--budget", "3", "--strategy", "exhaustive", "--strategy-option", "order=sideways"],
         "exhaustive order 'sideways' is not valid"),
        (["--budget", "3", "--strategy-option", "order"], "needs KEY=VALUE"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(args: list[str], message: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture) -> None:
    if "--out" not in args and "--name" not in args:
        args = [*args, "--out", str(tmp_path / "run")]
    status, err = cli(args, capsys)
    assert status == 2
    assert message in err
    assert "Traceback" not in err and err.strip().count("\n") == 0


def test_bad_arguments_from_a_shell_exit_2_without_traceback(tmp_path: Path) -> None:
    result = run_cli(["--budget", "-3", "--out", str(tmp_path / "run")], {**os.environ, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "budget must be a positive integer" in result.stderr


def test_an_existing_run_needs_resume_and_keeps_its_search_settings(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture) -> None:
    out = tmp_path / "run"
    with RunStore(out / "run.sqlite") as store:
        store.set_meta({"config": {"budget": 5, "strategy": "rl", "units": 1, "ops": "small", "task": "xor"}})
    status, err = cli(["--budget", "5", "--out", str(out)], capsys)
    assert status == 2 and "add --resume" in err
    status, err = cli(["--out", str(out), "--resume", "--strategy", "tpe"], capsys)
    assert status == 2 and "--strategy 'tpe' differs from the run's 'rl'" in err


def test_a_resume_keeps_the_training_recipe_and_old_runs_keep_theirs(tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture) -> None:
    from controller.run import make_config, parse_args

    out = tmp_path / "run"
    # A run stored before the recipe was recorded trained with auto init and raw outputs: its resume keeps those.
    with RunStore(out / "run.sqlite") as store:
        store.set_meta({"config": {"budget": 5, "strategy": "rl", "units": 1, "ops": "small", "task": "xor"}})
    status, err = cli(["--out", str(out), "--resume", "--act-norm", "standardize"], capsys)
    assert status == 2 and "--act-norm 'standardize' differs from the run's 'none'" in err
    resumed = make_config(parse_args(["--out", str(out), "--resume", "--budget", "9"]),
                          {"budget": 5, "strategy": "rl", "units": 1, "ops": "small", "task": "xor"})
    assert (resumed.act_norm, resumed.init, resumed.budget) == ("none", "auto", 9)
    fresh = make_config(parse_args(["--budget", "3", "--lr", "0.002", "--init", "he"]), None)
    assert (fresh.lr, fresh.init, fresh.act_norm) == (0.002, "he", "standardize")
    assert fresh.recipe()["lr"] == 0.002 and RunConfig.from_dict(fresh.to_dict()) == fresh
