"""What a table says a training scores at each rung of a successive-halving cascade, for replays without training.

A `Cascade` is the ladder a replay (`controller.table_replay.replay`) trains candidates through: rungs of training
steps (`controller.fidelity.Ladder`), the last one the table's full training length, and `eta`. A function's score at
a rung is the table's validation accuracy after that many steps: the `val_acc_at_<steps>` columns for an intermediate
rung (recorded with the run's `--eval-steps`, from the same training as the final score) and the final accuracy for
the top rung. `score_seed` says which training seed's accuracy: seed 0 by default, because a cascade is priced as one
training per candidate; ``None`` takes the mean over seeds, which is what a flat run is told, so that a flat replay
is exactly the one-rung cascade ``Cascade(rungs=(steps,), score_seed=None)``. A function that failed in the table
fails at every rung with the table's status (the table keeps only how its training ended).

>>> from controller.tabular import example_table
>>> results = rung_results(example_table(), Cascade(rungs=(50, 150, 300), eta=3))
>>> [status for status, _ in next(iter(results.values()))]
['ok', 'ok', 'ok']
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from controller.fidelity import Ladder, parse_rungs

__all__ = ["Cascade", "RungResult", "rung_results", "training_steps"]

RungResult = tuple[str, float | None]  # (status, score) of one function trained to one rung


@dataclass(frozen=True)
class Cascade:
    """Rungs of training steps (increasing, the last = the table's training length), `eta` (each rung promotes its
    best 1/eta) and which training seed's accuracy a rung reads (`score_seed`; None: the mean over seeds)."""

    rungs: tuple[int, ...]
    eta: int = 4
    score_seed: int | None = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "rungs", parse_rungs(self.rungs))
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ValueError(f"eta must be an integer >= 2 (keep the best 1/eta of each rung), got {self.eta!r}")
        if self.score_seed is not None and (isinstance(self.score_seed, bool) or not isinstance(self.score_seed, int)
                                            or self.score_seed < 0):
            raise ValueError(f"score_seed must be a training seed index (0, 1, ...) or None for the mean over seeds, "
                             f"got {self.score_seed!r}")

    def ladder(self) -> Ladder:
        """Return an empty ladder of these rungs (one per replay: it holds the replay's results)."""
        return Ladder(rungs=self.rungs, eta=self.eta)


def training_steps(table: Any) -> int:
    """Return how many steps the table's final scores were trained for: the run's `--steps`, or the evaluator's
    default when the run left it unset (the run loop then passes none and the evaluator uses its own)."""
    steps = table.attrs.get("steps")
    if steps is None:
        from evaluator.config import TrainConfig

        return int(TrainConfig.steps)
    return int(steps)


def rung_results(table: Any, cascade: Cascade) -> dict[str, tuple[RungResult, ...]]:
    """Return fingerprint -> (status, score) at each rung of `cascade`, for every trained function of `table`.

    Raises ValueError when the top rung is not the table's training length, when the table did not measure an
    intermediate rung, or when a function that trained fine has no score at a rung."""
    top = training_steps(table)
    if cascade.rungs[-1] != top:
        raise ValueError(f"the cascade's top rung must be the table's training length, {top} steps; got rungs "
                         f"{list(cascade.rungs)}")
    columns = [_rung_column(table, steps, top, cascade.score_seed) for steps in cascade.rungs]
    results: dict[str, tuple[RungResult, ...]] = {}
    for position, (code, status) in enumerate(zip(table["fingerprint"], table["status"], strict=True)):
        if status == "screened":
            continue
        if status != "ok":
            results[code] = ((status, None),) * len(cascade.rungs)
            continue
        scores = [values[position] for values in columns]
        for steps, score in zip(cascade.rungs, scores, strict=True):
            if not math.isfinite(score):
                raise ValueError(f"{table['expression'].iloc[position]} trained fine but the table holds no score "
                                 f"after {steps} steps ({_seed_text(cascade.score_seed)}); drop its row or "
                                 f"choose other rungs")
        results[code] = tuple(("ok", score) for score in scores)
    return results


def _rung_column(table: Any, steps: int, top: int, seed: int | None) -> list[float]:
    """Return the table's validation accuracy after `steps` steps, one value per row (NaN where it has none)."""
    from controller.tabular import parse_seeds

    name = "val_acc" if steps == top else f"val_acc_at_{steps}"
    name = name if seed is None else f"{name}_seeds"
    if name not in table.columns:
        measured = sorted(int(column[len("val_acc_at_"):]) for column in table.columns
                          if column.startswith("val_acc_at_") and column[len("val_acc_at_"):].isdigit())
        raise ValueError(f"the table has no column {name}: it holds validation accuracy after {measured or 'no'} "
                         f"intermediate steps and after {top} (the end); choose rungs among those")
    if seed is None:
        return [float(value) for value in table[name].fillna(math.nan)]
    values = [parse_seeds(text) for text in table[name]]
    return [row[seed] if len(row) > seed else math.nan for row in values]


def _seed_text(seed: int | None) -> str:
    return "mean over seeds" if seed is None else f"seed {seed}"
