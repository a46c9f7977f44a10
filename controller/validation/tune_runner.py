"""Runs a validation grid (function x model x seed) as Ray Tune trials, one trial per (function, model) training
its pending seeds as one pack (where the model has a packed form: the 1-D ResNets; bench/validation_packing.py).

Tune brings what long trials need: resources per trial (`--gpus-per-trial`), retries of a trial whose worker died,
and result logging. Every result goes straight into the `ValidationStore` from a driver-side callback, so a
validation that is interrupted loses only the trials in flight, and `--resume` runs just the missing ones.
"""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from controller.validation.store import TrialKey, ValidationStore

__all__ = ["TrialSpec", "run_grid", "seed_groups"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrialSpec:
    """What every trial of one validation shares: the task, the training budget and the hardware per trial."""

    task: str = "mnist1d"
    steps: int = 2000  # optimizer steps per training run
    recipe: dict[str, object] = field(default_factory=dict)  # TrainConfig settings (evaluator.recipe); {}: defaults
    device: str = "auto"
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_retries: int = 2  # Tune retries of a trial whose worker died
    task_options: dict[str, object] = field(default_factory=dict)


def _trial(config: dict[str, object]) -> None:
    """One Tune trial: train (function, model) under its seeds and report each seed's metrics (on a Ray worker)."""
    from ray import tune

    from controller.validation.trial import train_seeds

    results = train_seeds(config["trial"])
    tune.report({"per_seed": [{"seed": seed, **metrics} for seed, metrics in results.items()]})


def _recorder(base: type, store_path: Path, task: str) -> object:
    """Return a Tune callback that records each trial's result in the store at `store_path` (driver side).

    Tune pickles its callbacks with the experiment state, so the callback holds the path and opens the store for
    each result rather than keeping a live SQLite connection.
    """

    class RecordResults(base):
        def _record(self, trial: object, per_seed: list[dict[str, object]]) -> None:
            config = trial.config["trial"]
            store = ValidationStore(store_path)
            try:
                for fields in per_seed:
                    fields = dict(fields)
                    seed = int(fields.pop("seed"))
                    store.record(config["function"], config["model"], seed, task=task, **fields)
            finally:
                store.close()

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:  # noqa: ANN001
            keys = ("seed", "status", "reason", "test_acc", "val_acc", "dead_rate", "predictions", "wall_s", "device")
            self._record(trial, [{key: row[key] for key in keys if key in row} for row in result["per_seed"]])

        def on_trial_error(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
            reason = "the trial failed after its retries; see the Tune logs"
            self._record(trial, [{"seed": seed, "status": "error", "reason": reason}
                                 for seed in trial.config["trial"]["seeds"]])

    return RecordResults()


def seed_groups(pending: list[TrialKey]) -> list[tuple[str, str, list[int]]]:
    """Return (function, model, seeds) per function and model of `pending`, in first-seen order: the Tune trials.

    A resume groups only the missing seeds, so a trial cut short trains just those again.

    >>> seed_groups([("relu", "mlp", 1), ("tanh", "mlp", 0), ("relu", "mlp", 2)])
    [('relu', 'mlp', [1, 2]), ('tanh', 'mlp', [0])]
    """
    groups: dict[tuple[str, str], list[int]] = {}
    for function, model, seed in pending:
        groups.setdefault((function, model), []).append(int(seed))
    return [(function, model, seeds) for (function, model), seeds in groups.items()]


def run_grid(store: ValidationStore, grid: list[TrialKey], spec: TrialSpec, tune_dir: Path | None = None) -> int:
    """Run every pending trial of `grid` through Ray Tune (one Tune trial per function and model, its pending seeds
    packed), recording each result in `store`; return how many (function, model, seed) trainings ran.

    Ray must already be initialised (locally or with `address=`).
    """
    from ray import tune

    pending = store.pending(grid)
    if not pending:
        return 0

    callback = _recorder(tune.Callback, store.path, spec.task)

    # One variant per (function, model) with its pending seeds; grid_search over dicts keeps each variant together.
    shared = {k: v for k, v in asdict(spec).items() if k != "task_options"}
    variants = [{"function": f, "model": m, "seeds": seeds, **shared, "task_options": dict(spec.task_options)}
                for f, m, seeds in seed_groups(pending)]
    trainable = tune.with_resources(_trial, {"cpu": spec.cpus_per_trial, "gpu": spec.gpus_per_trial})
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    storage = Path(tune_dir) if tune_dir else Path(tempfile.mkdtemp(prefix="actsearch-tune-"))
    tuner = tune.Tuner(
        trainable,
        param_space={"trial": tune.grid_search(variants)},
        run_config=tune.RunConfig(
            name="validation",
            storage_path=str(storage.resolve()),
            verbose=0,
            callbacks=[callback],
            failure_config=tune.FailureConfig(max_failures=spec.max_retries),
        ),
    )
    tuner.fit()
    return len(pending)
