"""`controller.rediscovery` and `controller.progress` on real SQLite run stores written through the store's API."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from controller import load_run
from controller.leaderboard_frame import leaderboard_frame
from controller.progress import progress_frame
from controller.rediscovery import analyse_run, main, swish_standing
from controller.store import EvaluationRow, RunStore
from search_space import parse


def _row(text: str, score: float | None, *, status: str = "ok", trained: bool = True, duplicate: bool = False,
         rung: int = 0, steps: int | None = 150, start: int = 0, seeds: tuple[int, ...] = (0,),
         strategy: str = "rl", affine: bool = True, fingerprint: str | None = None) -> EvaluationRow:
    expr = parse(text)
    metrics = {"seeds": list(seeds), "steps": steps, "start_step": start} if trained and steps is not None else {}
    return EvaluationRow(
        expression=text, canonical=str(expr), fingerprint=fingerprint or expr.fingerprint(affine=affine), tokens=[],
        strategy=strategy, status=status, trained=trained, duplicate=duplicate, score=score, metrics=metrics,
        seeds=list(seeds), rung=rung,
    )


def _store(path: Path, rows: list[EvaluationRow], act_norm: str = "standardize") -> Path:
    with RunStore(path / "run.sqlite") as store:
        store.set_meta({"config": {"act_norm": act_norm, "units": 1, "ops": "paper"}})
        for row in rows:
            store.append(row)
    return path / "run.sqlite"


@pytest.fixture
def flat_run(tmp_path: Path) -> Path:
    """A flat run (rl): a Swish-near winner, relu, silu, the paper's cos(x) - x twice, and paper functions met
    without a score (skipped by the pre-screen, NaN in training)."""
    return _store(tmp_path / "flat", [
        _row("max(x, 0)", 0.93),
        _row("softplus(x) * erf(x)", 0.95),
        _row("min(x, sin(x))", None, status="skipped", trained=False),
        _row("x * sigmoid(x)", 0.92),  # silu: Swish-equivalent, but not the paper's learnable-beta Swish
        _row("cos(x) - x", 0.80),
        _row("-x + cos(x)", 0.80, trained=False, duplicate=True),
        _row("x + sinc(x)", None, status="nan"),
    ])


def test_swish_standing_ranks_the_first_equivalent_and_near_functions(flat_run: Path) -> None:
    findings = analyse_run(flat_run)
    swish = findings.swish.set_index("kind")
    assert swish.loc["first Swish-equivalent", "rank"] == 3
    assert swish.loc["first Swish-equivalent", "expression"] == "x * sigmoid(x)"
    assert swish.loc["first Swish-equivalent", "score"] == pytest.approx(0.92)
    assert swish.loc["first Swish-near", "rank"] == 1
    assert swish.loc["first Swish-near, not equivalent", "expression"] == "softplus(x) * erf(x)"


def test_a_swish_mirrored_in_x_counts_only_as_near_up_to_a_flip(tmp_path: Path) -> None:
    board = leaderboard_frame(load_run(_store(tmp_path, [_row("-x * sigmoid(-x)", 0.95), _row("max(x, 0)", 0.9),
                                                         _row("softplus(x) * erf(x)", 0.85)])))
    standing = swish_standing(board).set_index("kind")
    assert standing.loc["first Swish-near up to a flip", "rank"] == 1
    assert standing.loc["first Swish-near up to a flip", "why"].endswith("Swish-near when mirrored")
    assert pd.isna(standing.loc["first Swish-equivalent", "rank"])
    assert standing.loc["first Swish-near", "rank"] == 3


def test_a_board_without_swish_says_not_met(tmp_path: Path) -> None:
    board = leaderboard_frame(load_run(_store(tmp_path, [_row("max(x, 0)", 0.9), _row("tanh(x)", 0.8)])))
    standing = swish_standing(board)
    assert standing["rank"].isna().all() and set(standing["why"]) == {"not met"}


def test_paper_functions_are_met_by_any_row_and_reported_with_rank_and_score(flat_run: Path) -> None:
    paper = analyse_run(flat_run).paper.set_index("name")
    assert not paper.loc["swish", "met"]  # silu is not x * sigmoid(beta * x)
    cos = paper.loc["cos_minus_x"]
    assert cos["met"] and cos["rows"] == 2 and cos["first_candidate"] == 5
    assert cos["rank"] == 4 and cos["score"] == pytest.approx(0.80) and cos["status"] == "ok"
    sin = paper.loc["min_x_sin"]
    assert sin["met"] and sin["status"] == "skipped" and pd.isna(sin["score"]) and sin["first_candidate"] == 3
    assert paper.loc["sinc_plus_x", "met"] and paper.loc["sinc_plus_x", "status"] == "nan"
    assert not paper.loc["max_x_tanh", "met"] and pd.isna(paper.loc["max_x_tanh", "first_candidate"])


@pytest.mark.parametrize("case", ["plain", "stale"])
def test_paper_functions_are_matched_up_to_scale_and_offset_whatever_the_store_fingerprinted(
        tmp_path: Path, case: str) -> None:
    if case == "plain":  # a run that did not standardise stored plain fingerprints: 2 (cos(x) - x) + 3 is its own
        store = _store(tmp_path, [_row("2 * (cos(x) - x) + 3", 0.7, affine=False)], act_norm="none")
    else:  # says it standardised, but its codes are not this version's affine fingerprints
        store = _store(tmp_path, [_row("2 * (cos(x) - x) + 3", 0.7, fingerprint="0" * 32)])
    paper = analyse_run(store).paper.set_index("name")
    assert paper.loc["cos_minus_x", "met"] and paper.loc["cos_minus_x", "rank"] == 1
    assert paper["met"].sum() == 1


def test_progress_counts_candidates_steps_and_only_full_schedule_scores(tmp_path: Path) -> None:
    store = _store(tmp_path, [
        _row("max(x, 0)", 0.5, rung=0, steps=50, strategy="random"),
        _row("tanh(x)", 0.6, rung=0, steps=50, strategy="random"),
        _row("tanh(x)", 0.8, rung=1, steps=150, start=50, strategy="random"),  # a promotion: 100 more steps
        _row("-min(-x, 0)", 0.5, trained=False, duplicate=True, strategy="random"),
        _row("sin(x)", 0.9, rung=0, steps=50, strategy="random"),  # best so far, but after a sixth of the schedule
        _row("tanh(x)", 0.79, rung=2, steps=150, seeds=(1, 2), strategy="random"),  # extra seeds: 2 x 150 steps
        _row("sin(x)", 0.85, rung=1, steps=150, start=50, strategy="random"),
        _row("exp(x)", None, status="error", steps=None, strategy="random"),  # trained, no step count recorded
        _row("x / x", None, status="screened", trained=False, strategy="random"),  # screened: no budget
        _row("cos(x)", None, status="skipped", trained=False, strategy="random"),  # skipped: uses budget
    ])
    curve = progress_frame(load_run(store))
    assert list(curve["candidates"]) == [1, 2, 2, 2, 3, 3, 3, 4, 4, 5]  # what --budget counts
    assert list(curve["proposals"]) == [1, 2, 2, 3, 4, 4, 4, 5, 6, 7]  # repeats and screened too
    assert list(curve["trained"]) == [1, 2, 2, 2, 3, 3, 3, 4, 4, 4]
    assert list(curve["steps"]) == [50, 100, 200, 200, 250, 550, 650, 650, 650, 650]
    assert list(curve["unrecorded_steps"]) == [0] * 7 + [1] * 3
    best = [None if math.isnan(v) else v for v in curve["best_score"]]
    assert best == [None, None, 0.8, 0.8, 0.8, 0.8, 0.85, 0.85, 0.85, 0.85]
    assert list(curve["best_expression"])[-1] == "sin(x)"


def test_cli_writes_the_report_csvs_and_one_plot_for_several_runs(flat_run: Path, tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    other = _store(tmp_path / "evo", [_row("x * sigmoid(beta * x)", 0.94, strategy="evolution"),
                                      _row("max(x, tanh(x))", 0.90, strategy="evolution")])
    out = tmp_path / "report"
    assert main([str(flat_run), str(other.parent), "--out", str(out)]) == 0
    markdown = capsys.readouterr().out
    assert (out / "rediscovery.md").read_text().strip() == markdown.strip()
    assert "| flat | rl |" in markdown and "| evo | evolution |" in markdown
    assert "#1 `x * sigmoid(beta * x)` 0.9400" in markdown  # evo met the paper's Swish, at rank 1
    progress = pd.read_csv(out / "progress.csv")
    assert set(progress["run"]) == {"flat", "evo"} and set(progress["strategy"]) == {"rl", "evolution"}
    paper = pd.read_csv(out / "paper_functions.csv")
    assert paper.groupby("run")["met"].sum().to_dict() == {"evo": 2, "flat": 3}
    assert len(pd.read_csv(out / "swish.csv")) == 8  # 2 runs x 4 kinds
    assert (out / "progress.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_names_a_missing_run_in_one_line_and_writes_nothing(flat_run: Path, tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "report"
    assert main([str(flat_run), str(tmp_path / "no-such-run"), "--out", str(out)]) == 2
    error = capsys.readouterr().err.strip()
    assert error.startswith("error: no run store for") and "no-such-run" in error and "\n" not in error
    assert not out.exists()


def test_runs_sharing_a_folder_name_stay_apart(flat_run: Path, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main([str(flat_run), str(flat_run), "--out", str(tmp_path / "report")]) == 0
    assert set(pd.read_csv(tmp_path / "report" / "progress.csv")["run"]) == {"flat", "flat-2"}


def test_the_leaderboard_labels_known_activations_in_standardised_and_plain_runs(tmp_path: Path) -> None:
    """A standardised run stores affine fingerprints, a plain one plain fingerprints: relu is labelled in both (it
    was labelled in neither kind of standardised run before the leaderboard asked for the affine table)."""
    for affine, act_norm in ((True, "standardize"), (False, "none")):
        path = _store(tmp_path / act_norm, [_row("max(x, 0)", 0.93, affine=affine), _row("cos(x) - x", 0.8,
                                                                                          affine=affine)], act_norm)
        board = leaderboard_frame(path, properties=False).set_index("expression")
        assert board.loc["max(x, 0)", "known"] == "relu"
        assert board.loc["cos(x) - x", "known"] == ""
