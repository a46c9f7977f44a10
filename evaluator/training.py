"""The training loop, the only one: K (candidate, seed) slots of one child model, trained together, top to bottom.

A single candidate is a pack of its seeds. Slot k has its own weights, BatchNorm statistics, activation module,
initial weights and minibatch order (both drawn from its seed), so a (candidate, seed) trains the same alone, in any
pack and when retried; only the matmuls of a packed form are shared. A slot whose loss turns non-finite leaves the
model and the optimizer (status `nan` for its candidate only); a pack stops at its time limit (`timeout`); a slot
whose final training loss is above `config.diverge_loss` is `diverged`. `train_slots` never raises for a bad
candidate: one whose activation cannot be built, or whose pack raises when it trains alone, ends as an error.

>>> from evaluator import TrainConfig, get_task
>>> from evaluator.training import train_candidates
>>> config = TrainConfig(steps=20, seeds=(0, 1), device="cpu")
>>> [r.status for r in train_candidates(["relu", "tanh", "relu("], get_task("xor", size=200), "mlp", config)]
['ok', 'ok', 'error']
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from evaluator.config import TrainConfig
from evaluator.metrics import slot_dead_rates
from evaluator.models import ActivationFactory, activation_factory, activation_gain, check_model
from evaluator.models.standardise import standardised_factory
from evaluator.packing import (
    CANDIDATE_PACK_SIZES,
    build_slots,
    keep_slots,
    packed_form,
    packing_policy,
    slot_grad_norms,
    tuned_pack_size,
    tuning_builder,
    tuning_enabled,
)
from evaluator.result import EvalResult
from evaluator.scoring import build_result
from evaluator.step import autocast, keep_freed_memory, lr_factor, make_optimizer, training_step
from evaluator.tasks import TaskData

__all__ = ["Slot", "batch_order", "train_candidates", "train_slots"]

log = logging.getLogger(__name__)

DEAD_RATE_BATCH = 256  # validation examples the dead-unit count runs on
_EVAL_CHUNK = 250  # examples per evaluation forward: keeps a K=8 ResNet's activations near the caches


@dataclass
class Slot:
    """One (candidate, seed) of a pack and what its training gave."""

    candidate: int  # index into the candidates list
    seed: int
    status: str = "ok"
    reason: str = ""
    loss: float = math.nan  # mean training loss over the last tenth of the steps
    val_acc: float = math.nan
    test_acc: float = math.nan
    grad_norm_init: float = math.nan
    dead_rate: float = math.nan
    test_pred: torch.Tensor | None = None  # (N_test,) top-1 predictions
    val_acc_at: dict[str, float] = field(default_factory=dict)  # step -> validation accuracy after it


def batch_order(seed: int, n: int, steps: int, batch: int) -> torch.Tensor:
    """Return (steps, batch) example indices: shuffled epochs drawn from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    epochs = -(-steps * batch // n)
    return torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)])[: steps * batch].view(steps, batch)


def train_candidates(candidates: Sequence[Any], data: TaskData, model: str, config: TrainConfig,
                     options: dict[str, Any] | None = None, pack_size: int | None = None) -> list[EvalResult]:
    """Return one `EvalResult` per candidate, in order (see `train_slots` for the arguments)."""
    slots, errors, wall = train_slots(candidates, data, model, config, options, pack_size)
    share = wall / max(len(candidates), 1)
    return [build_result(candidate, [s for s in slots if s.candidate == i], errors.get(i), share, config)
            for i, candidate in enumerate(candidates)]


def train_slots(candidates: Sequence[Any], data: TaskData, model: str, config: TrainConfig,
                options: dict[str, Any] | None = None,
                pack_size: int | None = None) -> tuple[list[Slot], dict[int, str], float]:
    """Train every (candidate, seed of `config`) in packs; return the slots, {candidate index: error}, wall seconds.

    `config.device` must be resolved ('cpu' or 'cuda'); `options` are model options (a model built with options has
    no packed form). The pack size is `pack_size`, else the one measured on this machine for a packed form
    (`evaluator.packing.tuning`, ~8 s once for the ResNet proxy on CPU, outside any time limit), else the fixed
    `packing_policy`; a model without a packed form trains one candidate (its seeds) per pack.
    ValueError for a model that cannot take this task's input.
    """
    check_model(model, data.input_shape, config.init, options)
    device = torch.device(config.device)
    if device.type == "cpu":
        keep_freed_memory()
    slots, factories, errors = [], [], {}
    for index, spec in enumerate(candidates):
        try:
            factory = _factory(spec, config)
        except Exception as error:  # a bad candidate is its own error, never its pack's
            errors[index] = f"{type(error).__name__}: {error}"
            continue
        for seed in config.seeds:
            slots.append(Slot(index, seed))
            factories.append(factory)
    size = pack_size or _pack_size(model, data, config, options, len(slots))
    packs = ([range(first, min(first + size, len(slots))) for first in range(0, len(slots), size)]
             if packed_form(model, config, options) or pack_size
             else [[k for k, s in enumerate(slots) if s.candidate == i] for i in sorted({s.candidate for s in slots})])
    start = time.perf_counter()
    for pack in packs:
        _train_or_split([slots[k] for k in pack], [factories[k] for k in pack], data, model, config, options, errors)
    return slots, errors, time.perf_counter() - start


def _factory(spec: Any, config: TrainConfig) -> ActivationFactory:
    """The candidate's activation factory, standardised when the config says so; raises for a bad candidate."""
    factory = activation_factory(spec)
    if config.act_norm == "standardize":
        factory = standardised_factory(factory)
    activation_gain(factory(None))  # a module that fails on a plain tensor fails here, not inside its pack
    return factory


def _pack_size(model: str, data: TaskData, config: TrainConfig, options: dict | None, slots: int) -> int:
    """The fixed pack size, or the one measured on this machine when more slots than the smallest tried pack."""
    device = torch.device(config.device)
    size = packing_policy(model, device)
    if packed_form(model, config, options) is None or not tuning_enabled():
        return size
    if slots <= min(CANDIDATE_PACK_SIZES.get(device.type, (size,))):
        return size  # one expression over a seed or two: not worth measuring
    return tuned_pack_size(model, device, math.prod(data.input_shape), data.num_classes, config.batch_size,
                           build=tuning_builder(model))


def _train_or_split(slots: list[Slot], factories: list, data: TaskData, model: str, config: TrainConfig,
                    options: dict | None, errors: dict[int, str]) -> None:
    """Train one pack; if it raises, train its candidates one by one, and one that raises alone is an error."""
    try:
        _train_pack(slots, factories, data, model, config, options)
        return
    except Exception as error:
        reason = f"{type(error).__name__}: {error}"
        log.debug("a pack of %d slots failed", len(slots), exc_info=True)
    candidates = sorted({slot.candidate for slot in slots})
    if len(candidates) == 1:
        errors[candidates[0]] = reason
        return
    log.warning("a pack failed (%s); training its %d candidates one by one", reason, len(candidates))
    for index in candidates:
        mine = [k for k, slot in enumerate(slots) if slot.candidate == index]
        for k in mine:  # start again from a clean record
            vars(slots[k]).update(vars(Slot(index, slots[k].seed)))
        _train_or_split([slots[k] for k in mine], [factories[k] for k in mine], data, model, config, options, errors)


def _train_pack(slots: list[Slot], factories: list, data: TaskData, model: str, config: TrainConfig,
                options: dict | None) -> None:
    """Train one pack in place: fills each slot's status, loss, accuracies, dead rate and test predictions."""
    device = torch.device(config.device)
    steps, batch = config.steps, min(config.batch_size, len(data.y_train))
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    net = build_slots(model, factories, [s.seed for s in slots], data.input_shape, data.num_classes, config,
                      options).to(device)
    opt = make_optimizer(net.parameters(), config, device)
    order = torch.stack([batch_order(s.seed, len(x_train), steps, batch) for s in slots], dim=1).to(device)
    live = list(slots)  # the slots still in the model, in its slice order
    loss_sum = torch.zeros(len(slots), device=device)  # (K,) running loss over the last steps, for the report
    tail, tail_steps = max(steps // 10, 1), 0
    limit = config.time_limit_s
    budget = None if limit is None else limit * len({slot.candidate for slot in slots})  # the slots share steps
    cast, timed_out, start = autocast(device, config), None, time.perf_counter()
    net.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = config.lr * lr_factor(step, config)
        idx = order[step]  # (K, B): each slot's own minibatch
        first = (lambda: _record_grad_norms(net, slots)) if step == 0 else None  # all slots live
        losses = training_step(net, opt, x_train[idx], y_train[idx], cast, first)  # (K,)
        if step >= steps - tail:
            loss_sum += losses.detach()
            tail_steps += 1
        if step + 1 in config.eval_steps:
            _record_val_acc(net, data, device, live, step + 1)
        # Slots never share a weight, so a slot whose loss is not finite spoils only its own gradients, weights and
        # moments; it leaves the model here, before the next step uses them (it would cost a live slot's time).
        finite = torch.isfinite(losses)
        if not bool(finite.all()):
            for k in (~finite).nonzero().flatten().tolist():
                live[k].status, live[k].reason = "nan", f"non-finite training loss at step {step}"
            keep = finite.nonzero().flatten()
            opt = _keep_slots(net, opt, keep, config, device)
            live, order, loss_sum = [live[k] for k in keep.tolist()], order[:, keep], loss_sum[keep]
            if not live:
                return
        if budget is not None and time.perf_counter() - start > budget and step < steps - 1:
            timed_out = f"time limit {limit:g} s per candidate reached after {step + 1} steps"
            break
    _finish(net, data, device, live, loss_sum, tail_steps, timed_out, config)


def _finish(net: nn.Module, data: TaskData, device: torch.device, live: list[Slot], loss_sum: torch.Tensor,
            tail_steps: int, timed_out: str | None, config: TrainConfig) -> None:
    """Evaluate the live slots: accuracies, test predictions, dead rates, final losses and statuses."""
    net.eval()
    with torch.inference_mode():
        val_acc, _ = _accuracy(net, data.x_val.to(device), data.y_val.to(device), len(live))
        test_acc, test_pred = _accuracy(net, data.x_test.to(device), data.y_test.to(device), len(live))
    dead = slot_dead_rates(net, data.x_val[:DEAD_RATE_BATCH].to(device))
    for k, slot in enumerate(live):
        slot.loss = float(loss_sum[k]) / tail_steps if tail_steps else math.nan  # nan: stopped before the tail
        slot.val_acc, slot.test_acc, slot.test_pred = float(val_acc[k]), float(test_acc[k]), test_pred[k].cpu()
        slot.dead_rate = dead[k]
        if timed_out:
            slot.status, slot.reason = "timeout", timed_out
        elif slot.loss > config.diverge_loss:
            slot.status, slot.reason = "diverged", f"final training loss {slot.loss:.3g} > {config.diverge_loss:g}"


def _record_grad_norms(net: nn.Module, live: list[Slot]) -> None:
    for slot, norm in zip(live, slot_grad_norms(net, len(live))):
        slot.grad_norm_init = norm


def _record_val_acc(net: nn.Module, data: TaskData, device: torch.device, live: list[Slot], step: int) -> None:
    """Store each live slot's validation accuracy after `step` steps; training goes on unchanged (no state moves in
    eval mode)."""
    net.eval()
    with torch.inference_mode():
        val_acc, _ = _accuracy(net, data.x_val.to(device), data.y_val.to(device), len(live))
    net.train()
    for slot, acc in zip(live, val_acc.tolist()):
        slot.val_acc_at[str(step)] = acc


def _keep_slots(net: nn.Module, opt: torch.optim.Optimizer, keep: torch.Tensor, config: TrainConfig,
                device: torch.device) -> torch.optim.Optimizer:
    """Cut the model to the slots in `keep`; return a new optimizer holding the kept slots' state.

    The optimizer's update is elementwise, so a kept slot's moments are its rows of the old ones: training goes on
    exactly as before for every kept slot (tested against a pack without the dropped ones).
    """
    original = {new: old for old, new in keep_slots(net, keep).items()}
    fresh = make_optimizer(net.parameters(), config, device)
    for param in net.parameters():
        old = original.get(param, param)  # a stacked weight was replaced; an activation's own is the same object
        sliced = old is not param
        for key, value in opt.state.get(old, {}).items():  # moments sliced with the weights; Adam's step count kept
            fresh.state[param][key] = value[keep] if sliced and torch.is_tensor(value) and value.dim() else value
    return fresh


def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, slots: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Return ((K,) accuracy, (K, N) predictions) of every slot on the same examples."""
    chunks = [x[i : i + _EVAL_CHUNK] for i in range(0, len(x), _EVAL_CHUNK)]
    preds = torch.cat([net(chunk.expand(slots, *chunk.shape)).argmax(-1) for chunk in chunks], 1)
    return (preds == y).float().mean(1), preds  # (K,), (K, N)
