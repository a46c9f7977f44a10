"""`evaluate` and `evaluate_many`: score candidates, never raising for a bad one.

>>> from evaluator import TrainConfig, evaluate
>>> result = evaluate("x * sigmoid(x)", task="xor", config=TrainConfig(steps=20, device="cpu"))
>>> result.status, 0.0 <= result.score <= 1.0
('ok', True)
"""

from __future__ import annotations

import dataclasses
import logging
import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from evaluator.config import TrainConfig, resolve_device
from evaluator.metrics import activation_cost, dead_rate, prediction_difference
from evaluator.result import EvalResult
from evaluator.tasks import TASKS, TaskData, get_task
from evaluator.training import SeedRun, train_seed

__all__ = ["describe", "evaluate", "evaluate_many", "packed_trainer"]

log = logging.getLogger(__name__)

_DEAD_RATE_BATCH = 256  # validation examples used for the dead-unit count


def describe(candidate: Any) -> str:
    """Return the text that names a candidate in results: the expression or name, or a callable's name."""
    if isinstance(candidate, str):
        return candidate
    if callable(candidate) and hasattr(candidate, "__name__"):
        return candidate.__name__
    return str(candidate)


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
    """
    start = time.perf_counter()
    device = ""
    try:
        data, model, config = _setup(task, model, config, task_options)
        device = config.device
        return _train_and_measure(candidate, data, model, config, model_options or {}, start)
    except Exception as error:  # the contract: a bad candidate or setting comes back as a result, never raises
        log.debug("evaluating %r failed", candidate, exc_info=True)
        return EvalResult(describe(candidate), status="error", reason=f"{type(error).__name__}: {error}",
                          wall_s=time.perf_counter() - start, device=device)


def _train_and_measure(candidate: Any, data: TaskData, model: str, config: TrainConfig, model_options: dict,
                       start: float) -> EvalResult:
    runs: list[SeedRun] = []
    for seed in config.seeds:
        remaining = None if config.time_limit_s is None else config.time_limit_s - (time.perf_counter() - start)
        if remaining is not None and remaining <= 0:
            runs.append(SeedRun(seed, status="timeout", reason=f"time limit {config.time_limit_s:g} s reached"))
            break
        runs.append(train_seed(candidate, data, model, dataclasses.replace(config, time_limit_s=remaining), seed,
                               config.device, model_options))
        if runs[-1].status != "ok":
            break
    bad = next((run for run in runs if run.status != "ok"), None)
    finished = [run for run in runs if run.test_pred is not None]
    val = [run.val_acc for run in finished]
    test = [run.test_acc for run in finished]
    result = EvalResult(
        describe(candidate),
        status=bad.status if bad else "ok",
        reason=f"seed {bad.seed}: {bad.reason}" if bad else "",
        score=statistics.fmean(val) if not bad else None,
        val_acc=statistics.fmean(val) if val else None,
        val_acc_std=statistics.pstdev(val) if val else None,
        test_acc=statistics.fmean(test) if test else None,
        test_acc_std=statistics.pstdev(test) if test else None,
        loss=statistics.fmean(run.loss for run in runs),
        seeds=[run.seed for run in runs],
        per_seed_val_acc=val,
        steps_per_s=sum(r.steps_done for r in runs) / max(sum(r.train_s for r in runs), 1e-9),
        grad_norm_init=statistics.fmean(run.grad_norm_init for run in runs),
        val_acc_at={step: [run.val_acc_at[step] for run in finished] for step in config_steps(config)
                    if finished and all(step in run.val_acc_at for run in finished)},
        device=config.device,
    )
    if len(finished) >= 2:
        result.pred_diff = prediction_difference(finished[0].test_pred, finished[1].test_pred)
    if finished:
        result.dead_rate = dead_rate(finished[0].model, data.x_val[:_DEAD_RATE_BATCH].to(config.device))
    result.act_cost = activation_cost(candidate, config.device)
    result.wall_s = time.perf_counter() - start
    return result


def config_steps(config: TrainConfig) -> list[str]:
    """Return the config's evaluation steps as the keys results use."""
    return [str(step) for step in config.eval_steps]


def packed_trainer() -> Callable[..., list | None] | None:
    """Return `evaluator.packed.train_packed` when that module is installed, else None (the packing hook).

    Its contract: train_packed(candidates, task_data, model_name, config) -> list[EvalResult] | None, where None
    means packing is not supported or not faster for this model, device and config.
    """
    try:
        from evaluator import packed
    except ImportError:
        return None
    return getattr(packed, "train_packed", None)


def _try_packed(candidates: Sequence[Any], data: TaskData, model: str, config: TrainConfig) -> list[EvalResult] | None:
    trainer = packed_trainer()
    if trainer is None or len(candidates) < 2:
        return None
    try:
        results = trainer(candidates, data, model, config)
    except Exception:  # a packing bug must not lose the batch: fall back to one by one
        log.warning("packed training failed; training the %d candidates one by one", len(candidates), exc_info=True)
        return None
    if results is None:
        return None
    results = [r if isinstance(r, EvalResult) else EvalResult.from_dict(r) for r in results]
    for candidate, result in zip(candidates, results):
        if result.act_cost is None and result.status != "error":
            result.act_cost = activation_cost(candidate, config.device)
    return results


def evaluate_many(candidates: Iterable[Any], task: str | TaskData = "mnist1d", model: str | None = None,
                  config: TrainConfig | dict | None = None, *, task_options: dict[str, Any] | None = None,
                  model_options: dict[str, Any] | None = None) -> list[EvalResult]:
    """Return one `EvalResult` per candidate, in order: packed training where the packed trainer takes it, else one
    by one. Never raises for a bad candidate; a bad setting gives every candidate an `error` result."""
    candidates = list(candidates)
    start = time.perf_counter()
    try:
        data, model, config = _setup(task, model, config, task_options)
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        return [EvalResult(describe(c), status="error", reason=reason, wall_s=time.perf_counter() - start)
                for c in candidates]
    packed = None if model_options else _try_packed(candidates, data, model, config)
    if packed is not None:
        return packed
    return [evaluate(c, data, model, config, model_options=model_options) for c in candidates]
