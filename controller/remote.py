"""What runs on a Ray worker: score one batch of candidates with the evaluator and return plain dicts.

Workers return results and never touch the run store. Task data is generated (and cached) by the evaluator on
the node that trains, so nothing assumes a shared file system.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Any

__all__ = ["evaluate_batch"]

logger = logging.getLogger(__name__)


def evaluate_batch(expressions: list[str], task: str, model: str | None, train: dict[str, Any],
                   states: list[bytes | None] | None = None, keep_states: bool = False) -> dict[str, Any]:
    """Return {"results": [EvalResult.to_dict(), ...], "states", "worker", "started_at", "finished_at"} for a batch.

    A cascade's rung: `states[i]` (bytes of `evaluator.train_state.TrainState`, None: from scratch) is where
    candidate i continues from; with `keep_states`, "states" holds where each ok candidate stopped (bytes or None).
    A state that cannot be read trains its candidate from scratch, which gives the same result, only slower.
    """
    started = time.time()
    from evaluator import TrainConfig, evaluate_many
    from evaluator.train_state import TrainState

    loaded = None
    if states is not None:
        loaded = []
        for expression, data in zip(expressions, states, strict=True):
            try:
                loaded.append(None if data is None else TrainState.from_bytes(data))
            except ValueError as error:
                logger.warning("training %s from scratch: its saved state is unusable (%s)", expression, error)
                loaded.append(None)
    results = evaluate_many(expressions, task=task, model=model, config=TrainConfig.from_dict(train), states=loaded,
                            keep_states=keep_states)
    return {
        "results": [result.to_dict() for result in results],
        "states": [r.train_state.to_bytes() if r.train_state is not None else None for r in results],
        "worker": f"{socket.gethostname()}:{os.getpid()}",
        "started_at": started,
        "finished_at": time.time(),
    }
