"""One validation trial: train a function on a model under its seeds, as one pack, on the Ray worker that runs it."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

__all__ = ["train_seeds"]

log = logging.getLogger(__name__)


def train_seeds(trial: dict[str, Any]) -> dict[int, dict[str, Any]]:
    """Return {seed: metrics} of training `trial["function"]` on `trial["model"]` under each of `trial["seeds"]`,
    as plain data; never raises.

    The seeds train together (`evaluator.training.train_slots`: one pack where the model has a packed form, e.g. the
    1-D ResNets; each seed keeps its own weights and data order, so its result does not depend on the others). The
    test predictions come back too, so that the driver can measure how often retrains disagree. `wall_s` is the
    trial's time shared evenly by its seeds.
    """
    from evaluator.config import TrainConfig, resolve_device
    from evaluator.tasks import get_task
    from evaluator.training import train_slots

    seeds = [int(seed) for seed in trial["seeds"]]
    start = time.perf_counter()
    results: dict[int, dict[str, Any]] = {}
    try:
        device = resolve_device(trial["device"])
        config = TrainConfig(steps=int(trial["steps"]), seeds=tuple(seeds), device=device, **trial.get("recipe", {}))
        data = get_task(trial["task"], **trial.get("task_options", {}))
        slots, errors, _ = train_slots([trial["function"]], data, trial["model"], config)
        for seed in seeds:
            run = None if errors else next(slot for slot in slots if slot.seed == seed)
            metrics: dict[str, Any] = {"status": run.status if run else "error",
                                       "reason": run.reason if run else errors[0], "device": device}
            if run is not None and run.test_pred is not None:
                metrics.update(test_acc=run.test_acc, val_acc=run.val_acc, predictions=run.test_pred.tolist(),
                               dead_rate=run.dead_rate)
            results[seed] = metrics
    except Exception as error:  # a trial that cannot run is recorded with its reason, never retried forever
        log.debug("validation trial %r failed", trial, exc_info=True)
        results = {seed: {"status": "error", "reason": f"{type(error).__name__}: {error}"} for seed in seeds}
    wall = (time.perf_counter() - start) / len(seeds)
    return {seed: {k: v for k, v in {**metrics, "wall_s": wall}.items() if not (isinstance(v, float) and math.isnan(v))}
            for seed, metrics in results.items()}
