"""`evaluate` and `evaluate_many`: score candidates through the one training loop, never raising for a bad one.

>>> from evaluator import TrainConfig, evaluate
>>> result = evaluate("x * sigmoid(x)", task="xor", config=TrainConfig(steps=20, device="cpu"))
>>> result.status, 0.0 <= result.score <= 1.0
('ok', True)
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import torch

from evaluator.config import TrainConfig, resolve_device
from evaluator.result import EvalResult
from evaluator.scoring import describe
from evaluator.tasks import TASKS, TaskData, get_task
from evaluator.train_state import TrainState
from evaluator.training import train_candidates

__all__ = ["describe", "evaluate", "evaluate_many"]

log = logging.getLogger(__name__)


def _setup(task: str | TaskData, model: str | None, config: TrainConfig | dict | None,
           task_options: dict[str, Any] | None) -> tuple[TaskData, str, TrainConfig]:
    """Resolve the task data, the model name and a config whose device is 'cpu' or 'cuda'."""
    if config is None:
        config = TrainConfig()
    elif isinstance(config, dict):
        config = TrainConfig.from_dict(config)
    elif not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, a dict of its settings or None, got {type(config).__name__}")
    config = dataclasses.replace(config, device=resolve_device(config.device))
    data = task if isinstance(task, TaskData) else get_task(task, **(task_options or {}))
    if model is None:
        if data.name not in TASKS:
            raise ValueError(f"task data {data.name!r} is not a registered task; pass model= explicitly")
        model = TASKS[data.name].default_model
    if config.num_threads is not None:
        torch.set_num_threads(config.num_threads)
    return data, model, config


def evaluate(candidate: Any, task: str | TaskData = "mnist1d", model: str | None = None,
             config: TrainConfig | dict | None = None, *, task_options: dict[str, Any] | None = None,
             model_options: dict[str, Any] | None = None) -> EvalResult:
    """Return the `EvalResult` of training `candidate` once per seed of `config`; never raises.

    candidate: a known name, an expression text, an Expr or a zero-arg callable returning a module.
    task: a task name (see TASKS) or loaded TaskData; model: a MODELS name (None: the task's default).
    task_options: get_task arguments (size, seed, data_dir); model_options: build_model options (depth, width...).
    The candidate trains as a pack of its seeds, so its result is the one `evaluate_many` gives it in any company.
    """
    return evaluate_many([candidate], task, model, config, task_options=task_options, model_options=model_options)[0]


def evaluate_many(candidates: Iterable[Any], task: str | TaskData = "mnist1d", model: str | None = None,
                  config: TrainConfig | dict | None = None, *, task_options: dict[str, Any] | None = None,
                  model_options: dict[str, Any] | None = None, states: Sequence[TrainState | None] | None = None,
                  keep_states: bool = False) -> list[EvalResult]:
    """Return one `EvalResult` per candidate, in order, trained in packs (`evaluator.training`). Never raises for a
    bad candidate; a bad setting gives every candidate an `error` result.

    Cascades: `config.stop_at` trains only the first steps of the schedule; `keep_states` puts where each ok
    candidate stopped on its result (`EvalResult.train_state`); `states[i]` continues candidate i from such a state.
    """
    candidates = list(candidates)
    start, device = time.perf_counter(), ""
    try:
        if states is not None and len(states) != len(candidates):
            raise ValueError(f"{len(states)} states for {len(candidates)} candidates; give one per candidate (None: "
                             "from scratch)")
        data, model, config = _setup(task, model, config, task_options)
        device = config.device
        return train_candidates(candidates, data, model, config, model_options, states=states,
                                keep_states=keep_states)
    except Exception as error:  # the contract: a bad setting comes back as results, never raises
        log.debug("evaluating %d candidates failed", len(candidates), exc_info=True)
        reason = f"{type(error).__name__}: {error}"
        return [EvalResult(describe(c), status="error", reason=reason, wall_s=time.perf_counter() - start,
                           device=device) for c in candidates]
