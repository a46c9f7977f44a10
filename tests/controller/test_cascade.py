"""The fidelity cascade and the pre-screen inside the run loop, on a real local Ray with real (tiny) training."""

from __future__ import annotations

import collections
from pathlib import Path

import pytest

from controller.config import RunConfig
from controller.leaderboard_frame import leaderboard_frame
from controller.loop import RunLoop
from controller.store import RunStore, load_run
from controller.strategies import create_strategy
from controller.surrogate import PreScreen
from evaluator import TrainConfig, evaluate_many
from search_space import Space

RUNGS = [4, 8, 16]


def _config(tmp_path: Path, **changes) -> RunConfig:
    settings = {"budget": 9, "strategy": "exhaustive", "units": 1, "ops": "small", "task": "digits", "model": "mlp",
                "workers": 2, "task_batch": 2, "rungs": RUNGS, "eta": 3, "batch_size": 32, "device": "cpu",
                "out": str(tmp_path), "prescreen": False, "top_seeds": 0}
    return RunConfig(**{**settings, **changes})


def _loop(config: RunConfig, store: RunStore) -> RunLoop:
    return RunLoop(config, store, create_strategy(config.strategy, Space(units=config.units, ops=config.ops)))


def _rows_by_rung(store: RunStore) -> dict[int, dict[str, object]]:
    by_rung: dict[int, dict[str, object]] = collections.defaultdict(dict)
    for row in store.rows():
        if row.trained:
            assert row.fingerprint not in by_rung[row.rung], f"{row.expression} trained twice to rung {row.rung}"
            by_rung[row.rung][row.fingerprint] = row
    return by_rung


def _flat_scores(rows, config: RunConfig) -> dict[str, float]:
    """The same functions trained in one go, the full schedule: what a promoted function's top score must be."""
    train = TrainConfig(steps=RUNGS[-1], batch_size=config.batch_size, device="cpu", seeds=(0,))
    results = evaluate_many([row.expression for row in rows], task="digits", model="mlp", config=train)
    return {row.fingerprint: result.score for row, result in zip(rows, results, strict=True)}


@pytest.mark.slow
def test_the_best_climb_the_rungs_by_continuing_their_training(local_ray: None, tmp_path: Path) -> None:
    config = _config(tmp_path)
    with RunStore(config.store_path) as store:
        loop = _loop(config, store)
        progress = loop.run()
        by_rung = _rows_by_rung(store)
        assert not loop.strategy.pending
    assert progress.trained == 9 and len(by_rung[0]) == 9  # promotions do not spend the budget
    ranked = sorted((row.score for row in by_rung[0].values() if row.status == "ok"), reverse=True)
    top_third = {fp for fp, row in by_rung[0].items() if row.status == "ok" and row.score >= ranked[2]}
    assert top_third <= set(by_rung[1])  # the best 1/eta of rung 0 all went up (ASHA may send a few more)
    assert set(by_rung[2]) <= set(by_rung[1]) <= set(by_rung[0]) and len(by_rung[2]) >= len(by_rung[1]) // 3 >= 1
    assert progress.rungs == [len(by_rung[r]) for r in range(3)] and progress.best_rung == 2
    assert all(row.metrics["steps"] == RUNGS[r] for r in range(3) for row in by_rung[r].values())
    # Each promotion trained only the steps between its rungs, from the saved state ...
    assert all(row.metrics["start_step"] == ([0] + RUNGS)[r] for r in range(3) for row in by_rung[r].values())
    # ... and the top rung's score is the uninterrupted 16-step training's.
    flat = _flat_scores(list(by_rung[2].values()), config)
    assert {fp: row.score for fp, row in by_rung[2].items()} == flat
    # States are let go once their function went up a rung; none is kept for the top rung.
    saved = loop.states.saved()
    assert not any(rung == 2 or (rung == 0 and fp in by_rung[1]) or (rung == 1 and fp in by_rung[2])
                   for fp, rung in saved)
    board = leaderboard_frame(load_run(config.store_path), properties=False)
    assert list(board["rung"][: len(by_rung[2])]) == [2] * len(by_rung[2])  # the ones that climbed highest first
    assert board["steps"].iloc[0] == 16


@pytest.mark.slow
def test_a_cascade_stopped_mid_rung_resumes_without_losing_or_repeating_a_promotion(local_ray: None,
                                                                                    tmp_path: Path) -> None:
    config = _config(tmp_path, budget=12)
    with RunStore(config.store_path) as store:
        first = _loop(config, store)
        first.on_progress = lambda progress: first.request_stop() if progress.rungs[1] >= 1 else None
        first.run()
        assert 1 <= first.progress.rungs[1] and first.progress.trained < 12
        due = {key for key, rung in first.ladder.scores[0].items()} - set(first.ladder.scores[1])
        kept = {key for key, rung in first.states.saved() if rung == 0}
        assert due & set(first.ladder.started[1]) <= kept  # promotions cancelled in flight keep their states
        before, last_row = set(first.ladder.scores[0]), store.last_row_id()
    for path in (tmp_path / "states").iterdir():  # the states lost too (another machine): promotions train from 0
        path.unlink()
    with RunStore(config.store_path) as store:
        second = _loop(config, store)
        assert second.progress.rungs == first.progress.rungs  # rebuilt from the rows
        second.run()
        by_rung = _rows_by_rung(store)  # asserts no (function, rung) twice
    assert len(by_rung[0]) == 12 and by_rung[2]
    for row in by_rung[1].values():  # a state deleted before the resume: from scratch; else from where it stopped
        if row.id > last_row:
            assert row.metrics["start_step"] == (0 if row.fingerprint in before else RUNGS[0]), row.expression
    assert {fp: row.score for fp, row in by_rung[2].items()} == _flat_scores(list(by_rung[2].values()), config)
    assert not second.promotion_due()


@pytest.mark.slow
def test_the_prescreen_skips_predicted_losers_and_records_why(local_ray: None, tmp_path: Path) -> None:
    config = _config(tmp_path, budget=30, rungs=[], steps=8, prescreen=True)
    with RunStore(config.store_path) as store:
        loop = _loop(config, store)
        loop.prescreen = PreScreen(min_rows=6, refit_every=2, skip_quantile=0.5, explore=0.0)
        progress = loop.run()
        rows = list(store.rows())
        assert not loop.strategy.pending  # skipped proposals were told too
    skipped = [row for row in rows if row.status == "skipped" and not row.duplicate]
    trained = [row for row in rows if row.trained]
    assert skipped and progress.skipped == len(skipped)
    assert progress.trained + progress.skipped == 30  # the budget counts candidates considered
    assert all(not row.trained and row.score is None and "quantile" in row.reason for row in skipped)
    assert all(isinstance(row.metrics["predicted"], float) for row in skipped)
    assert len(trained) >= 6 and all(row.rung == 0 for row in trained)


@pytest.mark.slow
@pytest.mark.parametrize("rungs", [[], RUNGS])
def test_the_best_get_more_seeds_and_lead_the_leaderboard_by_their_mean(local_ray: None, tmp_path: Path,
                                                                       rungs: list[int]) -> None:
    config = _config(tmp_path, budget=8, rungs=rungs, steps=None if rungs else 16, top_seeds=3, top_k=2)
    with RunStore(config.store_path) as store:
        loop = _loop(config, store)
        progress = loop.run()
        by_rung = _rows_by_rung(store)
        assert not loop.promotion_due()
    top, seeded = len(config.rung_steps()) - 1, len(config.rung_steps())
    assert progress.trained == 8 and progress.rungs[seeded] == len(by_rung[seeded])
    best = sorted((row for row in by_rung[top].values() if row.status == "ok"),
                  key=lambda row: (row.score, row.fingerprint), reverse=True)[:2]
    assert {row.fingerprint for row in best} <= set(by_rung[seeded])  # the final top 2 all got their seeds
    for fingerprint, row in by_rung[seeded].items():
        first = by_rung[top][fingerprint]
        assert row.seeds == [0, 1, 2] and row.metrics["start_step"] == 0 and row.metrics["steps"] == 16
        values = row.metrics["per_seed_val_acc"]
        assert len(values) == 3 and values[0] == first.score and row.score == pytest.approx(sum(values) / 3)
    board = leaderboard_frame(load_run(config.store_path), properties=False)
    assert list(board["seeds"][: len(by_rung[seeded])]) == [3] * len(by_rung[seeded])


def test_cascade_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="differs from the top rung"):
        RunConfig(budget=1, rungs=[100, 300], steps=200)
    with pytest.raises(ValueError, match="eta must be an integer >= 2"):
        RunConfig(budget=1, rungs=[100, 300], eta=1)
    with pytest.raises(ValueError, match="increasing positive step counts"):
        RunConfig(budget=1, rungs=[300, 100])
    assert RunConfig(budget=1, rungs=[100, 300]).rung_steps() == (100, 300)
    assert RunConfig(budget=1).rung_steps() == (50, 150, 300)  # the default cascade
    assert RunConfig(budget=1, steps=150).rung_steps() == (25, 75, 150)
    assert RunConfig(budget=1, rungs=[]).rung_steps() == (300,) and RunConfig(budget=1, steps=150).schedule_steps == 150
    assert RunConfig.from_dict({"budget": 1}).rungs == []  # a run stored before the cascade stays flat
    assert RunConfig.from_dict({"budget": 1, "rungs": None}).prescreen_kappa == 0.0  # stored before the margin
    assert RunConfig.from_dict({"budget": 1, "prescreen_kappa": 1.5}).prescreen_kappa == 1.5
    assert RunConfig(budget=1, seeds=2, top_seeds=5).extra_seeds == [2, 3, 4]
    assert RunConfig(budget=1, seeds=2, top_seeds=2).extra_seeds == []  # not above --seeds: off
    with pytest.raises(ValueError, match="top-k must be an integer >= 1"):
        RunConfig(budget=1, top_k=0)


def test_the_run_builds_its_prescreen_with_the_configured_margin(tmp_path: Path) -> None:
    config = _config(tmp_path, budget=4, prescreen=True, prescreen_kappa=1.5)
    with RunStore(config.store_path) as store:
        assert _loop(config, store).prescreen.kappa == 1.5
