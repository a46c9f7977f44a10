"""Batch-evaluation functions that Ray workers run in tests/controller/test_loop.py (stdlib only: cheap to import).

They stand in for `controller.remote.evaluate_batch` to make a worker really die or really hang, which the real
evaluator never does on purpose.
"""

from __future__ import annotations

import os
import time


def dying_or_hanging_batch(expressions: list[str], task: str, model: str | None, train: dict) -> dict:
    """Kill this worker process on a candidate with `sigmoid`, hang on `max(x, x)`, else score by text length and
    echo the time limit the task carried in the reason."""
    started = time.time()
    results = []
    for expression in expressions:
        if "sigmoid" in expression:
            os._exit(1)  # the worker process dies, as on an out-of-memory kill
        if expression == "max(x, x)":
            time.sleep(120)
        results.append({"expression": expression, "status": "ok", "score": 1 / len(expression),
                        "reason": f"time_limit_s={train.get('time_limit_s')}"})
    return {"results": results, "worker": f"test:{os.getpid()}", "started_at": started, "finished_at": time.time()}
