"""End-to-end: `python -m controller.validate` runs a real grid through Ray Tune, records it, and resumes."""

from __future__ import annotations

import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

pytestmark = pytest.mark.slow

BASE = ["--expressions", "x * sigmoid(x)", "--baselines", "relu", "--models", "mlp", "--task", "xor",
        "--seeds", "2", "--workers", "1"]


@pytest.fixture(autouse=True)
def _short_ray_dir(monkeypatch: pytest.MonkeyPatch):
    """Ray's socket paths must stay under 107 bytes: a short folder of its own, not pytest's deep tmp_path."""
    ray_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")
    monkeypatch.setenv("ACTSEARCH_RAY_TMPDIR", ray_dir)
    yield
    shutil.rmtree(ray_dir, ignore_errors=True)


def _validate(tmp_path: Path, *args: str, wait: bool = True) -> subprocess.Popen | subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [sys.executable, "-m", "controller.validate", *BASE, "--out", str(tmp_path / "out"), *args]
    if not wait:
        return subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                start_new_session=True)
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)


def _rows(store: Path) -> list[tuple[str, str, int, str]]:
    if not store.exists():
        return []
    with sqlite3.connect(store) as db:
        try:
            return db.execute("SELECT function, model, seed, status FROM trials").fetchall()
        except sqlite3.OperationalError:
            return []


def test_an_interrupted_validation_resumes_with_only_the_missing_trials_then_reports(tmp_path: Path) -> None:
    store = tmp_path / "out" / "cut.sqlite"
    first = _validate(tmp_path, "--steps", "1000", "--name", "cut", wait=False)
    deadline = time.monotonic() + 240
    while not _rows(store) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = len(_rows(store))
    assert 1 <= before < 4, "the first run should be cut after its first trial"

    resumed = _validate(tmp_path, "--steps", "1000", "--name", "cut", "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{4 - before} of 4 trials to run" in resumed.stdout
    rows = _rows(store)
    assert sorted((f, s) for f, _, s, _ in rows) == [("relu", 0), ("relu", 1), ("x * sigmoid(x)", 0),
                                                      ("x * sigmoid(x)", 1)]
    assert {status for *_, status in rows} == {"ok"}
    report = (tmp_path / "out" / "cut.md").read_text()
    assert "## mlp" in report and "x * sigmoid(x)" in report and "Wins across models" in report
    assert (tmp_path / "out" / "cut.png").read_bytes()[:4] == b"\x89PNG"

    again = _validate(tmp_path, "--steps", "1000", "--name", "cut")
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr


def test_a_bad_expression_fails_in_one_line_before_any_training(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "controller.validate", "--expressions", "x * sigmod(x)",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "sigmoid" in done.stderr


def test_a_tables_stratified_subset_is_validated_and_reported_against_the_tables_proxy(tmp_path: Path) -> None:
    from controller.tabular import example_table, save_table
    from controller.validation.table_source import draw_subset

    table = example_table()
    save_table(table, tmp_path / "tiny.csv.gz")
    command = [sys.executable, "-m", "controller.validate", "--from-table", str(tmp_path / "tiny.csv.gz"),
               "--top", "1", "--random", "1", "--subset-seed", "3", "--baselines", "relu", "--models", "mlp",
               "--task", "xor", "--seeds", "1", "--steps", "50", "--workers", "1", "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    subset = draw_subset(table, top=1, random=1, seed=3)
    store = tmp_path / "out" / "tiny-validation.sqlite"  # the default name: the table's, under --out
    assert sorted((f, s) for f, _, s, _ in _rows(store)) == sorted(
        (f, 0) for f in [*subset["function"], "relu"])
    written = pd.read_csv(tmp_path / "out" / "tiny-validation-subset.csv")
    assert list(written["function"]) == list(subset["function"])
    assert list(written["stratum"]) == ["top", "random"]
    report = (tmp_path / "out" / "tiny-validation.md").read_text()
    assert "second fidelity" in report and "### The proxy's top 10" in report
    assert "top 1 by mean validation accuracy and 1 drawn at random" in report
