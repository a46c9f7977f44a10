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

BASE = ["--baselines", "relu", "--models", "mlp", "--task", "xor", "--workers", "1"]


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


def test_an_interrupted_validation_of_a_tables_subset_resumes_with_only_the_missing_trials_then_reports(
        tmp_path: Path) -> None:
    """Killed after its first trial, a validation of a table's stratified subset (`--from-table`: the table's best
    and one function drawn at random, beside relu) resumes with only the missing trials and writes the report, the
    second-fidelity section and the subset CSV; without --resume it refuses the existing store."""
    from controller.tabular import example_table, save_table
    from controller.validation.table_source import draw_subset

    table = example_table()
    save_table(table, tmp_path / "tiny.csv.gz")
    source = ["--from-table", str(tmp_path / "tiny.csv.gz"), "--top", "1", "--random", "1", "--subset-seed", "3",
              "--seeds", "1", "--steps", "1000", "--name", "cut"]
    store = tmp_path / "out" / "cut.sqlite"
    first = _validate(tmp_path, *source, wait=False)
    deadline = time.monotonic() + 240
    while not _rows(store) and time.monotonic() < deadline and first.poll() is None:
        time.sleep(0.2)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    before = len(_rows(store))
    assert 1 <= before < 3, "the first run should be cut after its first trial"

    resumed = _validate(tmp_path, *source, "--resume")
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    assert f"{3 - before} of 3 trials to run" in resumed.stdout
    subset = draw_subset(table, top=1, random=1, seed=3)
    rows = _rows(store)
    assert sorted((f, s) for f, _, s, _ in rows) == sorted((f, 0) for f in [*subset["function"], "relu"])
    assert {status for *_, status in rows} == {"ok"}
    written = pd.read_csv(tmp_path / "out" / "cut-subset.csv")
    assert list(written["function"]) == list(subset["function"])
    assert list(written["stratum"]) == ["top", "random"]
    report = (tmp_path / "out" / "cut.md").read_text()
    assert "## mlp" in report and subset["function"][0] in report and "Wins across models" in report
    assert "second fidelity" in report and "### The proxy's top 10" in report
    assert "top 1 by mean validation accuracy and 1 drawn at random" in report
    assert (tmp_path / "out" / "cut.png").read_bytes()[:4] == b"\x89PNG"

    again = _validate(tmp_path, *source)
    assert again.returncode == 2 and "--resume" in again.stderr and "Traceback" not in again.stderr


def test_a_bad_expression_fails_in_one_line_before_any_training(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "controller.validate", "--expressions", "x * sigmod(x)",
                           "--out", str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and "sigmoid" in done.stderr
