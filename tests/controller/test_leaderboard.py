"""The leaderboard and export CLIs on a small run recorded by the real run loop on a real local Ray."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pandas as pd
import pytest
import torch

from controller import load_run
from controller.export import main as export_main
from controller.leaderboard import main as leaderboard_main
from controller.leaderboard_frame import leaderboard_frame
from controller.store import EvaluationRow, RunStore
from search_space import parse


def _cli(module: str, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=300, cwd=cwd)


@pytest.fixture(scope="module")
def run_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Record a real run: the exhaustive strategy over the 1-unit small space on the xor task."""
    out = tmp_path_factory.mktemp("run")
    ray_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths are limited to 107 bytes
    env = {**os.environ, "ACTSEARCH_RAY_TMPDIR": ray_dir}
    done = subprocess.run(
        [sys.executable, "-m", "controller.run", "--budget", "14", "--strategy", "exhaustive", "--units", "1",
         "--ops", "small", "--task", "xor", "--steps", "60", "--name", "lb", "--out", str(out)],
        capture_output=True, text=True, timeout=400, env=env,
    )
    shutil.rmtree(ray_dir, ignore_errors=True)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    return out / "run.sqlite"


@pytest.mark.slow
def test_leaderboard_has_one_row_per_function_with_shape_columns(run_store: Path) -> None:
    frame = load_run(run_store)
    board = leaderboard_frame(run_store)
    assert len(board) == frame["fingerprint"].nunique()
    assert list(board["rank"]) == list(range(1, len(board) + 1))
    ok = board[board["status"] == "ok"]
    assert ok["score"].is_monotonic_decreasing
    for column in ("monotonic", "smooth", "bounded_below", "slope_at_0", "bump_position", "cost", "forms"):
        assert column in board


def _row(text: str, score: float | None, status: str = "ok", duplicate: bool = False) -> EvaluationRow:
    expr = parse(text)
    return EvaluationRow(expression=text, canonical=str(expr), fingerprint=expr.fingerprint(), tokens=[],
                         strategy="random", status=status, trained=not duplicate, duplicate=duplicate, score=score,
                         metrics={"val_acc_std": 0.01, "act_cost": 1.5}, seeds=[0, 1])


@pytest.fixture
def known_store(tmp_path: Path) -> Path:
    """A real SQLite run store holding known functions, one of them in two spellings, and a failure."""
    with RunStore(tmp_path / "run.sqlite") as store:
        for row in (_row("max(x, 0)", 0.91), _row("x * sigmoid(beta * x)", 0.93), _row("sin(x)", 0.80),
                    _row("-min(-x, 0)", 0.91, duplicate=True), _row("exp(exp(x))", None, status="nan")):
            store.append(row)
    return tmp_path / "run.sqlite"


def test_spellings_of_one_function_share_a_row_and_known_ones_are_labelled(known_store: Path) -> None:
    board = leaderboard_frame(known_store)
    assert list(board["known"][:3]) == ["swish", "relu", "sin"]
    assert list(board["status"]) == ["ok", "ok", "ok", "nan"]
    relu = board.set_index("known").loc["relu"]
    assert relu["expression"] == "max(x, 0)" and relu["forms"] == 2 and relu["seen"] == 2


@pytest.mark.parametrize("act_norm, label", [("standardize", "relu"), ("none", "")])
def test_known_labels_follow_how_the_run_fingerprinted(tmp_path: Path, act_norm: str, label: str) -> None:
    """A standardising run stores affine fingerprints, so a scaled relu is relu; a plain run's is another function."""
    expr = parse("2 * max(x, 0)")
    with RunStore(tmp_path / "run.sqlite") as store:
        store.set_meta({"config": {"act_norm": act_norm}})
        store.append(EvaluationRow(expression=str(expr), canonical=str(expr), tokens=[], strategy="random",
                                   fingerprint=expr.fingerprint(affine=act_norm == "standardize"), status="ok",
                                   trained=True, duplicate=False, score=0.9, metrics={}, seeds=[0]))
    assert list(leaderboard_frame(tmp_path / "run.sqlite", properties=False)["known"]) == [label]


def test_shape_columns_on_known_functions(known_store: Path) -> None:
    board = leaderboard_frame(known_store).set_index("expression")
    assert board.loc["max(x, 0)", "monotonic"] == "increasing" and not board.loc["max(x, 0)", "smooth"]
    assert board.loc["x * sigmoid(beta * x)", "bump_position"] == pytest.approx(-1.278, abs=0.01)
    assert board.loc["x * sigmoid(beta * x)", "bump_depth"] == pytest.approx(-0.278, abs=0.01)
    assert board.loc["sin(x)", "monotonic"] == "no"


def test_saved_csv_and_parquet_hold_every_column(known_store: Path, tmp_path: Path) -> None:
    for name in ("board.csv", "board.parquet"):
        assert leaderboard_main([str(known_store), "--save", str(tmp_path / name)]) == 0
    csv = pd.read_csv(tmp_path / "board.csv")
    parquet = pd.read_parquet(tmp_path / "board.parquet")
    assert list(csv.columns) == list(parquet.columns) and len(csv) == len(parquet) == 4
    assert {"bump_position", "fingerprint", "known"} <= set(parquet.columns)
    assert leaderboard_main([str(known_store), "--save", str(tmp_path / "board.xlsx")]) == 2


def test_status_filter_sort_and_top(known_store: Path) -> None:
    assert list(leaderboard_frame(known_store, status="nan")["expression"]) == ["exp(exp(x))"]
    assert len(leaderboard_frame(known_store, top=2)) == 2
    assert leaderboard_frame(known_store, sort="forms").iloc[0]["expression"] == "max(x, 0)"
    with pytest.raises(ValueError, match="sort key"):
        leaderboard_frame(known_store, sort="speed")


@pytest.mark.slow
@pytest.mark.parametrize("fmt", ["table", "csv", "json", "markdown"])
def test_leaderboard_cli_prints_every_format(run_store: Path, fmt: str, capsys: pytest.CaptureFixture) -> None:
    assert leaderboard_main([str(run_store), "--top", "5", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        rows = json.loads(out)
        assert len(rows) == 5 and rows[0]["rank"] == 1
    elif fmt == "csv":
        assert out.splitlines()[0].startswith("rank,expression,score")
    elif fmt == "markdown":
        assert out.startswith("| rank | expression | score |")
    else:
        assert out.splitlines()[0].split()[:3] == ["rank", "expression", "score"]


@pytest.mark.slow
def test_compare_and_plot(run_store: Path, tmp_path: Path) -> None:
    plot = tmp_path / "board.png"
    done = _cli("controller.leaderboard", str(run_store), "--compare", str(run_store.parent), "--plot", str(plot))
    assert done.returncode == 0, done.stderr
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000
    svg = tmp_path / "board.svg"
    assert leaderboard_main([str(run_store), "--plot", str(svg)]) == 0
    assert svg.read_text().lstrip().startswith("<?xml") and "<svg" in svg.read_text()


def test_a_missing_run_is_one_clear_line(tmp_path: Path) -> None:
    done = _cli("controller.leaderboard", "no-such-run", cwd=tmp_path)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "no-such-run" in done.stderr


@pytest.mark.slow
def test_export_round_trips_the_expression_and_the_function(
    run_store: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    assert export_main([str(run_store), "--rank", "1", "--format", "expr"]) == 0
    expression = capsys.readouterr().out.strip()
    assert str(parse(expression)) == expression
    module_file = tmp_path / "best.py"
    done = _cli("controller.export", str(run_store), "--rank", "1", "--out", str(module_file))
    assert done.returncode == 0, done.stderr
    spec = importlib.util.spec_from_file_location("best", module_file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    x = torch.linspace(-3, 3, 61)
    torch.testing.assert_close(module.Activation()(x), parse(expression).to_module()(x), equal_nan=True)
    assert export_main([str(run_store), "--rank", "999"]) == 2
