"""One validation trial: train a function on a model under one seed, on the Ray worker that runs it."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

__all__ = ["train_one"]

log = logging.getLogger(__name__)


def train_one(trial: dict[str, Any]) -> dict[str, Any]:
    """Return the metrics of one (function, model, seed) training as plain data; never raises.

    The test predictions come back too, so that the driver can measure how often retrains disagree.
    """
    from evaluator.config import TrainConfig, resolve_device
    from evaluator.tasks import get_task
    from evaluator.training import train_slots

    start = time.perf_counter()
    try:
        device = resolve_device(trial["device"])
        config = TrainConfig(steps=int(trial["steps"]), seeds=(int(trial["seed"]),), device=device,
                             **trial.get("recipe", {}))
        data = get_task(trial["task"], **trial.get("task_options", {}))
        slots, errors, _ = train_slots([trial["function"]], data, trial["model"], config)
        run = None if errors else slots[0]  # an error: the function cannot be built or trained
        metrics: dict[str, Any] = {"status": run.status if run else "error",
                                   "reason": run.reason if run else errors[0], "device": device}
        if run is not None and run.test_pred is not None:
            metrics["test_acc"] = run.test_acc
            metrics["val_acc"] = run.val_acc
            metrics["predictions"] = run.test_pred.tolist()
            metrics["dead_rate"] = run.dead_rate
    except Exception as error:  # a trial that cannot run is recorded with its reason, never retried forever
        log.debug("validation trial %r failed", trial, exc_info=True)
        metrics = {"status": "error", "reason": f"{type(error).__name__}: {error}"}
    metrics["wall_s"] = time.perf_counter() - start
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}
