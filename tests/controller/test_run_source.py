"""`--from-run`: the best distinct functions of a run store, read through the store's API without its lease."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.store import EvaluationRow, RunStore
from controller.validation.run_source import RunSourceError, top_expressions


def _row(canonical: str, fingerprint: str, status: str, score: float | None) -> EvaluationRow:
    return EvaluationRow(expression=canonical, canonical=canonical, fingerprint=fingerprint, tokens=[],
                         strategy="random", status=status, trained=True, score=score)


def test_one_function_per_fingerprint_best_first_while_a_driver_holds_the_lease(tmp_path: Path) -> None:
    path = tmp_path / "run.sqlite"
    with RunStore(path, lease=True) as store:  # a live search still writing: reading must not need the lease
        for row in (_row("max(x, 0)", "relu", "ok", 0.80), _row("x * sigmoid(x)", "swish", "ok", 0.90),
                    _row("-min(-x, 0)", "relu", "ok", 0.85), _row("sin(x)", "sin", "nan", None),
                    _row("x", "identity", "ok", 0.85)):
            store.append(row)
        functions, scores, found = top_expressions(tmp_path, top=2)
    assert functions == ["x * sigmoid(x)", "-min(-x, 0)"]  # ties (0.85) go to the function met first
    assert scores == {"x * sigmoid(x)": 0.90, "-min(-x, 0)": 0.85}
    assert found == path


def test_a_missing_or_empty_run_fails_with_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(RunSourceError, match="no run store for"):
        top_expressions(tmp_path / "nowhere", top=3)
    RunStore(tmp_path / "run.sqlite").close()
    with pytest.raises(RunSourceError, match="no successful evaluation yet"):
        top_expressions(tmp_path / "run.sqlite", top=3)
    (tmp_path / "bad.sqlite").write_text("not a database")
    with pytest.raises(RunSourceError, match="cannot read the run store"):
        top_expressions(tmp_path / "bad.sqlite", top=3)
