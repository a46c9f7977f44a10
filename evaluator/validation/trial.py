"""One validation trial: train a function on a model under one seed, on the Ray worker that runs it."""

from __future__ import annotations

import logging
import math
import time
from typing import Any

__all__ = ["train_one"]

log = logging.getLogger(__name__)
_DEAD_RATE_BATCH = 256


def train_one(trial: dict[str, Any]) -> dict[str, Any]:
    """Return the metrics of one (function, model, seed) training as plain data; never raises.

    The test predictions come back too, so that the driver can measure how often retrains disagree.
    """
    from evaluator.config import TrainConfig, resolve_device
    from evaluator.metrics import dead_rate
    from evaluator.tasks import get_task
    from evaluator.training import train_seed

    start = time.perf_counter()
    try:
        device = resolve_device(trial["device"])
        config = TrainConfig(steps=int(trial["steps"]), seeds=(int(trial["seed"]),), device=device,
                             **trial.get("recipe", {}))
        data = get_task(trial["task"], **trial.get("task_options", {}))
        run = train_seed(trial["function"], data, trial["model"], config, int(trial["seed"]), device)
        metrics: dict[str, Any] = {"status": run.status, "reason": run.reason, "device": device}
        if run.test_pred is not None:
            metrics["test_acc"] = run.test_acc
            metrics["val_acc"] = run.val_acc
            metrics["predictions"] = run.test_pred.tolist()
            metrics["dead_rate"] = dead_rate(run.model, data.x_val[:_DEAD_RATE_BATCH].to(device))
    except Exception as error:  # a trial that cannot run is recorded with its reason, never retried forever
        log.debug("validation trial %r failed", trial, exc_info=True)
        metrics = {"status": "error", "reason": f"{type(error).__name__}: {error}"}
    metrics["wall_s"] = time.perf_counter() - start
    return {k: v for k, v in metrics.items() if not (isinstance(v, float) and math.isnan(v))}
