"""Runs a validation grid (function x model x seed) as Ray Tune trials, one full training per trial.

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

__all__ = ["TrialSpec", "run_grid"]

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
    """One Tune trial: train (function, model, seed) once and report its metrics (runs on a Ray worker)."""
    from ray import tune

    from controller.validation.trial import train_one

    tune.report(train_one(config["trial"]))


def _recorder(base: type, store_path: Path, task: str) -> object:
    """Return a Tune callback that records each trial's result in the store at `store_path` (driver side).

    Tune pickles its callbacks with the experiment state, so the callback holds the path and opens the store for
    each result rather than keeping a live SQLite connection.
    """

    class RecordResults(base):
        def _record(self, trial: object, **fields: object) -> None:
            config = trial.config["trial"]
            store = ValidationStore(store_path)
            try:
                store.record(config["function"], config["model"], int(config["seed"]), task=task, **fields)
            finally:
                store.close()

        def on_trial_result(self, iteration, trials, trial, result, **info) -> None:  # noqa: ANN001
            keys = ("status", "reason", "test_acc", "val_acc", "dead_rate", "predictions", "wall_s", "device")
            self._record(trial, **{key: result[key] for key in keys if key in result})

        def on_trial_error(self, iteration, trials, trial, **info) -> None:  # noqa: ANN001
            self._record(trial, status="error", reason="the trial failed after its retries; see the Tune logs")

    return RecordResults()


def run_grid(store: ValidationStore, grid: list[TrialKey], spec: TrialSpec, tune_dir: Path | None = None) -> int:
    """Run every pending trial of `grid` through Ray Tune, recording each result in `store`; return how many ran.

    Ray must already be initialised (locally or with `address=`).
    """
    from ray import tune

    pending = store.pending(grid)
    if not pending:
        return 0

    callback = _recorder(tune.Callback, store.path, spec.task)

    # One variant per pending trial; grid_search over dicts keeps each (function, model, seed) together.
    variants = [
        {"function": f, "model": m, "seed": s, **{k: v for k, v in asdict(spec).items() if k != "task_options"},
         "task_options": dict(spec.task_options)}
        for f, m, s in pending
    ]
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
