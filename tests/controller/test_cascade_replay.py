"""Replaying successive halving over training steps (and the surrogate pre-screen) on a table, with no training."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from controller.cascade_replay import Cascade, rung_results
from controller.strategies.random_search import RandomSearch
from controller.surrogate import PreScreen
from controller.table_replay import TableIndex, replay
from controller.tabular import _spellings, example_table, format_tokens, top_fingerprints
from search_space import Space
from tests.controller.scripted import Scripted

SPACE = Space(units=1, ops="small")
RUNGS = (50, 150, 300)

# Per function: status and the validation accuracy of seeds 0, 1, 2 after 50, 150 and 300 steps. Seed 0 ranks the
# functions differently from the mean, so a replay that read the wrong seed or the wrong rung would show it.
CURVES: dict[str, tuple[str, list[list[float]]]] = {
    "a": ("ok", [[0.50, 0.95, 0.95], [0.55, 0.90, 0.90], [0.60, 0.90, 0.90]]),
    "b": ("ok", [[0.90, 0.20, 0.20], [0.60, 0.30, 0.30], [0.65, 0.30, 0.30]]),
    "c": ("ok", [[0.70, 0.40, 0.40], [0.70, 0.50, 0.50], [0.70, 0.50, 0.50]]),
    "d": ("ok", [[0.80, 0.60, 0.60], [0.85, 0.90, 0.90], [0.95, 0.97, 0.97]]),
    "e": ("diverged", []),
}


def _text(values: list[float]) -> str:
    return " ".join(f"{value:.6g}" for value in values)


@pytest.fixture(scope="module")
def tokens() -> dict[str, list[list[int]]]:
    """Spellings (token sequences) of five distinct trainable functions of the small space, named a .. e."""
    trainable = [[tokens for _, tokens in spelled] for spelled in _spellings(SPACE, True).values()
                 if SPACE.decode(spelled[0][1]).screen().ok]
    return dict(zip(CURVES, trainable[:len(CURVES)], strict=True))


@pytest.fixture(scope="module")
def table(tokens: dict[str, list[list[int]]]) -> pd.DataFrame:
    """A hand-made table as `export_table` writes one for a 300-step run with `--eval-steps 50 150`."""
    rows = []
    for name, (status, curve) in CURVES.items():
        spelled, expr = tokens[name], SPACE.decode(tokens[name][0])
        row = {"expression": str(expr), "fingerprint": expr.fingerprint(affine=True), "status": status,
               "tokens": format_tokens(spelled[0]), "spellings": ";".join(map(format_tokens, spelled)),
               "val_acc": sum(curve[2]) / 3 if curve else math.nan, "val_acc_seeds": _text(curve[2]) if curve else ""}
        for step, values in zip((50, 150), curve or [[], []], strict=False):
            row[f"val_acc_at_{step}"] = sum(values) / 3 if values else math.nan
            row[f"val_acc_at_{step}_seeds"] = _text(values)
        rows.append(row)
    frame = pd.DataFrame(rows)
    frame.attrs = {"units": 1, "ops": "small", "affine": True, "steps": 300, "eval_steps": [50, 150]}
    return frame


def _code(table: pd.DataFrame, name: str) -> str:
    return table["fingerprint"].iloc[list(CURVES).index(name)]


def test_promotions_go_first_and_cost_only_the_steps_between_rungs(table: pd.DataFrame,
                                                                   tokens: dict[str, list[list[int]]]) -> None:
    script = [tokens[name][0] for name in "abcde"]
    trace = replay(Scripted(SPACE, script=script), table, cascade=Cascade(rungs=RUNGS, eta=2))
    # eta 2: after b, rung 50 has 2 results and promotes b before c is asked; after d, rung 50 (4 results) promotes
    # d, then rung 150 (b, d) sends d to the top before any new candidate: its 150-step score beats b's.
    expected = [("a", 0, 50), ("b", 0, 100), ("b", 1, 200), ("c", 0, 250), ("d", 0, 300), ("d", 1, 400),
                ("d", 2, 550), ("e", 0, 600)]
    assert [(t.fingerprint, t.rung, t.steps) for t in trace.trainings] == [
        (_code(table, name), rung, steps) for name, rung, steps in expected]
    assert trace.steps == 600 and trace.promotions == 3 and trace.evaluations == 5 and trace.failures == 1
    assert top_fingerprints(table) == {_code(table, "d")}
    assert trace.steps_to({_code(table, "d")}) == 550 and trace.steps_to({_code(table, "b")}) is None

    stopped = replay(Scripted(SPACE, script=script), table, cascade=Cascade(rungs=RUNGS, eta=2),
                     stop_on=top_fingerprints(table))
    assert stopped.steps == 550 and stopped.proposals == 4  # found: e is never asked


def test_the_strategy_is_told_the_lowest_rungs_score(table: pd.DataFrame, tokens: dict[str, list[list[int]]]) -> None:
    script = [tokens[name][0] for name in "abcde"] + [tokens["b"][-1], tokens["d"][0]]  # then b and d again
    strategy = Scripted(SPACE, script=script)
    trace = replay(strategy, table, budget=10, cascade=Cascade(rungs=RUNGS, eta=2))  # more than the table holds
    at_50 = [curve[0][0] for status, curve in CURVES.values() if status == "ok"]
    assert strategy.told == [("ok", pytest.approx(score)) for score in at_50] + [
        ("diverged", None), ("ok", pytest.approx(0.90)), ("ok", pytest.approx(0.80))]  # duplicates: the same
    assert trace.duplicates == 2 and trace.scores == [pytest.approx(s) for s in at_50] + [None]

    other = Scripted(SPACE, script=[tokens[name][0] for name in "abcd"])
    replay(other, table, cascade=Cascade(rungs=RUNGS, eta=2, score_seed=1))
    assert other.told == [("ok", pytest.approx(CURVES[name][1][0][1])) for name in "abcd"]


def test_prescreen_skips_cost_nothing_and_are_told_the_prediction() -> None:
    table = example_table()
    index = TableIndex(table)

    class Recording(RandomSearch):
        """Random search that keeps every tell, keyed by the told function."""

        def __init__(self, space: Space, seed: int = 0) -> None:
            super().__init__(space, seed)
            self.told: list[tuple[str | None, str, float | None]] = []

        def _observe(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
            self.told.append((index.lookup(tokens), status, score))

    strategy = Recording(SPACE, seed=0)
    screen = PreScreen(min_rows=8, refit_every=8, explore=0.0, seed=0)
    trace = replay(strategy, index, budget=30, cascade=Cascade(rungs=(50, 150, 300), eta=3), prescreen=screen)
    assert trace.skipped > 0 and trace.evaluations == 30
    promotions = sum(trace.rungs[t.rung] - trace.rungs[t.rung - 1] for t in trace.trainings if t.rung)
    assert trace.steps == 30 * 50 + promotions  # every step spent is a training's; skips spent none
    assert trace.proposals == trace.evaluations + trace.duplicates + trace.screened + trace.skipped + trace.missing
    trained = set(trace.fingerprints)
    first_tells: dict[str, tuple[str, float | None]] = {}
    for code, status, score in strategy.told:
        first_tells.setdefault(code, (status, score))
    skipped = {code: told for code, told in first_tells.items() if code not in trained and told[0] != "screened"}
    assert len(skipped) == trace.skipped
    results = rung_results(table, Cascade(rungs=(50, 150, 300)))
    for code, (status, score) in skipped.items():  # told as ok with the surrogate's guess, not the table's score
        assert status == "ok" and score is not None and score != pytest.approx(results[code][0][1], abs=1e-9)


def test_flat_is_the_one_rung_cascade() -> None:
    table = example_table()
    flat = replay("evolution", table, budget=30, seed=1)
    one_rung = replay("evolution", table, budget=30, seed=1, cascade=Cascade(rungs=(300,), score_seed=None))
    assert flat.rungs == one_rung.rungs == (300,)
    assert flat.fingerprints == one_rung.fingerprints and flat.scores == pytest.approx(one_rung.scores)
    assert flat.trainings == one_rung.trainings and flat.steps == one_rung.steps == 30 * 300

    seed_zero = replay("evolution", table, budget=30, seed=1, cascade=Cascade(rungs=(300,)))
    assert seed_zero.scores[0] == pytest.approx(flat.scores[0] - 0.01)  # seed 0 of the made-up table: mean - 0.01

    unsaid = table.copy()
    unsaid.attrs = {key: value for key, value in table.attrs.items() if key != "steps"}
    assert replay("random", unsaid, budget=3).steps == 3 * 300  # the evaluator's default length


@pytest.mark.parametrize("cascade, message", [
    (dict(rungs=(50, 150, 200)), "top rung must be the table's training length, 300 steps"),
    (dict(rungs=(100, 300)), "no column val_acc_at_100_seeds"),
    (dict(rungs=(150, 50, 300)), "increasing positive step counts"),
    (dict(rungs=(50, 300), eta=1), "eta must be an integer >= 2"),
    (dict(rungs=(50, 300), score_seed=-1), "score_seed must be a training seed index"),
])
def test_bad_cascades_are_refused(cascade: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        replay("random", example_table(), budget=3, cascade=Cascade(**cascade))
