"""What runs on a Ray worker: score one batch of candidates with the evaluator and return plain dicts.

Workers return results and never touch the run store. Task data is generated (and cached) by the evaluator on
the node that trains, so nothing assumes a shared file system.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any

__all__ = ["evaluate_batch"]


def evaluate_batch(expressions: list[str], task: str, model: str | None, train: dict[str, Any]) -> dict[str, Any]:
    """Return {"results": [EvalResult.to_dict(), ...], "worker", "started_at", "finished_at"} for a batch."""
    started = time.time()
    from evaluator import TrainConfig, evaluate_many

    results = evaluate_many(expressions, task=task, model=model, config=TrainConfig.from_dict(train))
    return {
        "results": [result.to_dict() for result in results],
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "started_at": started,
        "finished_at": time.time(),
    }
