"""`--from-run`: the best distinct functions of a run store, read through the store's API without its lease."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.store import EvaluationRow, RunStore
from controller.validation.run_source import RunSourceError, top_expressions


def _row(canonical: str, fingerprint: str, status: str, score: float | None, rung: int = 0) -> EvaluationRow:
    return EvaluationRow(expression=canonical, canonical=canonical, fingerprint=fingerprint, tokens=[],
                         strategy="random", status=status, trained=True, score=score, rung=rung)


def test_one_function_per_fingerprint_best_first_while_a_driver_holds_the_lease(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with RunStore(path, lease=True) as store:  # a live search still writing: reading must not need the lease
        for row in (_row("max(x, 0)", "relu", "ok", 0.80), _row("x * sigmoid(x)", "swish", "ok", 0.90),
                    _row("-min(-x, 0)", "relu", "ok", 0.85), _row("sin(x)", "sin", "nan", None),
                    _row("x", "identity", "ok", 0.85)):
            store.append(row)
        functions, scores, found = top_expressions(tmp_path, top=2)
    # Ties (0.85) go to the function met first; a function is named by its shortest spelling, as on the leaderboard.
    assert functions == ["x * sigmoid(x)", "max(x, 0)"]
    assert scores == {"x * sigmoid(x)": 0.90, "max(x, 0)": 0.85}
    assert found == path


def test_a_cascade_is_ranked_by_the_highest_rung_reached_and_scored_there(tmp_path: Path) -> None:
    with RunStore(tmp_path / "run.sqlite") as store:
        for row in (_row("sin(x)", "sin", "ok", 0.95, rung=0),  # a lucky short training that climbed no further
                    _row("x * sigmoid(x)", "swish", "ok", 0.70, rung=0),
                    _row("x * sigmoid(x)", "swish", "ok", 0.93, rung=1),
                    _row("max(x, 0)", "relu", "ok", 0.60, rung=0),
                    _row("max(x, 0)", "relu", "ok", 0.92, rung=1),
                    _row("max(x, 0)", "relu", "ok", 0.91, rung=2)):  # its extra seeds: the mean over all of them
            store.append(row)
    functions, scores, _ = top_expressions(tmp_path, top=3)
    assert functions == ["max(x, 0)", "x * sigmoid(x)", "sin(x)"]
    assert scores == {"max(x, 0)": 0.91, "x * sigmoid(x)": 0.93, "sin(x)": 0.95}


def test_a_missing_or_empty_run_fails_with_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(RunSourceError, match="no run store for"):
        top_expressions(tmp_path / "nowhere", top=3)
    RunStore(tmp_path / "run.sqlite").close()
    with pytest.raises(RunSourceError, match="no successful evaluation yet"):
        top_expressions(tmp_path / "run.sqlite", top=3)
    (tmp_path / "bad.sqlite").write_text("not a database")
    with pytest.raises(RunSourceError, match="cannot read the run store"):
        top_expressions(tmp_path / "bad.sqlite", top=3)
