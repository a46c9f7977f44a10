"""The training loop: one candidate, one seed, read top to bottom.

`train_seed` never raises for a bad candidate: a non-finite loss ends the run as `nan`, a loss above
`config.diverge_loss` as `diverged`, the time limit as `timeout`. Exceptions are the caller's (`evaluate`) to catch.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evaluator.config import TrainConfig
from evaluator.models import build_model
from evaluator.tasks import TaskData

__all__ = ["SeedRun", "batch_order", "train_seed"]

_CHECK_EVERY = 10  # steps between loss checks: each check syncs a GPU, and a NaN never recovers anyway


@dataclass
class SeedRun:
    """What one seed's training gives: status, accuracies, test predictions and the trained model."""

    seed: int
    status: str = "ok"
    reason: str = ""
    steps_done: int = 0
    train_s: float = 0.0
    loss: float = math.nan  # mean training loss over the last tenth of the steps
    val_acc: float = math.nan
    test_acc: float = math.nan
    grad_norm_init: float = math.nan
    test_pred: torch.Tensor | None = None  # (N_test,) top-1 predictions
    val_acc_at: dict[str, float] = field(default_factory=dict)  # step -> validation accuracy after it
    model: nn.Module | None = None


def batch_order(seed: int, n: int, steps: int, batch: int) -> torch.Tensor:
    """Return (steps, batch) example indices: shuffled epochs drawn from `seed` (as the packed trainer draws them)."""
    gen = torch.Generator().manual_seed(seed)
    epochs = -(-steps * batch // n)
    return torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)])[: steps * batch].view(steps, batch)


def _optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    if config.optimizer == "sgd":
        return torch.optim.SGD(model.parameters(), lr=config.lr, momentum=0.9, nesterov=True,
                               weight_decay=config.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)


def _lr_factor(step: int, config: TrainConfig) -> float:
    if config.schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * step / config.steps))


def _grad_norm(model: nn.Module) -> float:
    norms = [p.grad.detach().norm() for p in model.parameters() if p.grad is not None]
    return float(torch.stack(norms).norm()) if norms else 0.0


@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device: str, chunk: int = 1000) -> torch.Tensor:
    """Return the top-1 predictions (N,) of `model` in eval mode, on the CPU."""
    model.eval()
    return torch.cat([model(x[i : i + chunk].to(device)).float().argmax(1).cpu() for i in range(0, len(x), chunk)])


def train_seed(candidate: Any, data: TaskData, model_name: str, config: TrainConfig, seed: int, device: str,
               model_options: dict[str, Any] | None = None) -> SeedRun:
    """Train `model_name` with the candidate activation under `seed` on `data`; return its `SeedRun`.

    `device` must be resolved ('cpu' or 'cuda'). Deterministic on CPU: the seed fixes the initial weights (torch's
    global generator, seeded here) and the minibatch order (its own generator).
    """
    run = SeedRun(seed=seed)
    torch.manual_seed(seed)
    model = build_model(model_name, candidate, data.input_shape, data.num_classes, init=config.init,
                        act_norm=config.act_norm, **(model_options or {})).to(device)
    run.model = model
    optimizer = _optimizer(model, config)
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    order = batch_order(seed, len(y_train), config.steps, min(config.batch_size, len(y_train))).to(device)
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device == "cuda" and config.amp
                else contextlib.nullcontext())
    tail_start = config.steps - max(config.steps // 10, 1)
    tail_losses: list[torch.Tensor] = []
    start = time.perf_counter()

    model.train()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = config.lr * _lr_factor(step, config)
        idx = order[step]  # (B,)
        with autocast:
            loss = F.cross_entropy(model(x_train[idx]).float(), y_train[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step == 0:
            run.grad_norm_init = _grad_norm(model)
        optimizer.step()
        run.steps_done = step + 1
        if step >= tail_start:
            tail_losses.append(loss.detach())
        if step + 1 in config.eval_steps:
            run.val_acc_at[str(step + 1)] = float((predict(model, data.x_val, device) == data.y_val).float().mean())
            model.train()

        if step % _CHECK_EVERY == 0 or step == config.steps - 1:
            value = float(loss.detach())
            if not math.isfinite(value):
                run.status, run.reason = "nan", f"non-finite training loss at step {step}"
                break
            if value > config.diverge_loss:
                run.status = "diverged"
                run.reason = f"training loss {value:.3g} > {config.diverge_loss:g} at step {step}"
                break
        if config.time_limit_s is not None and time.perf_counter() - start > config.time_limit_s:
            run.status, run.reason = "timeout", f"time limit {config.time_limit_s:g} s reached after {step + 1} steps"
            break

    run.train_s = time.perf_counter() - start
    if tail_losses:
        run.loss = float(torch.stack(tail_losses).mean())
    if run.status in ("nan", "diverged"):
        return run
    val_pred = predict(model, data.x_val, device)
    run.test_pred = predict(model, data.x_test, device)
    run.val_acc = float((val_pred == data.y_val).float().mean())
    run.test_acc = float((run.test_pred == data.y_test).float().mean())
    if run.status == "ok" and not math.isfinite(run.loss):
        run.status, run.reason = "nan", "non-finite training loss near the end"
    return run
