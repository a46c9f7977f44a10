"""The training loop, the only one: K (candidate, seed) slots of one child model, trained together, top to bottom.

A single candidate is a pack of its seeds. Slot k has its own weights, BatchNorm statistics, activation module,
initial weights and minibatch order (both drawn from its seed), so a (candidate, seed) trains the same alone, in any
pack and when retried; only the matmuls of a packed form are shared. A slot whose loss turns non-finite leaves the
model and the optimizer (status `nan` for its candidate only); a pack stops at its time limit (`timeout`); a slot
whose final training loss is above `config.diverge_loss` is `diverged`. `train_slots` never raises for a bad
candidate: one whose activation cannot be built, or whose pack raises when it trains alone, ends as an error.

A fidelity cascade trains the first `config.stop_at` steps of the `config.steps`-step schedule and keeps each
slot's state (`keep_states`); given those states (`states`), a later call trains on from there to its own stop,
exactly as one uninterrupted training would (`evaluator.packing.state`). Slots continue in packs of slots that
stopped at the same step.

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
from evaluator.packing.state import SlotState, load_slot_states, slot_states
from evaluator.result import EvalResult
from evaluator.scoring import build_result
from evaluator.step import autocast, keep_freed_memory, lr_factor, make_optimizer, training_step
from evaluator.tasks import TaskData
from evaluator.train_state import TrainState

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
    start: int = 0  # the step training starts from: 0, or that of the saved state it continues
    resume: SlotState | None = field(default=None, repr=False)  # the saved state it continues, if any
    state: SlotState | None = field(default=None, repr=False)  # where it stopped (kept when asked for)


def batch_order(seed: int, n: int, steps: int, batch: int) -> torch.Tensor:
    """Return (steps, batch) example indices: shuffled epochs drawn from `seed`."""
    gen = torch.Generator().manual_seed(seed)
    epochs = -(-steps * batch // n)
    return torch.cat([torch.randperm(n, generator=gen) for _ in range(epochs)])[: steps * batch].view(steps, batch)


def train_candidates(candidates: Sequence[Any], data: TaskData, model: str, config: TrainConfig,
                     options: dict[str, Any] | None = None, pack_size: int | None = None,
                     states: Sequence[TrainState | None] | None = None, keep_states: bool = False) -> list[EvalResult]:
    """Return one `EvalResult` per candidate, in order (see `train_slots` for the arguments); with `keep_states`,
    each ok result carries its `train_state` to continue from."""
    slots, errors, wall = train_slots(candidates, data, model, config, options, pack_size, states, keep_states)
    share = wall / max(len(candidates), 1)
    results = []
    for i, candidate in enumerate(candidates):
        mine = [s for s in slots if s.candidate == i]
        result = build_result(candidate, mine, errors.get(i), share, config)
        if keep_states and result.ok and mine and all(s.state is not None for s in mine):
            result.train_state = TrainState(step=config.stop, schedule_steps=config.steps, seeds=[s.seed for s in mine],
                                            slots=[s.state for s in mine],
                                            grad_norm_init=[s.grad_norm_init for s in mine])
        results.append(result)
    return results


def train_slots(candidates: Sequence[Any], data: TaskData, model: str, config: TrainConfig,
                options: dict[str, Any] | None = None, pack_size: int | None = None,
                states: Sequence[TrainState | None] | None = None,
                keep_states: bool = False) -> tuple[list[Slot], dict[int, str], float]:
    """Train every (candidate, seed of `config`) in packs; return the slots, {candidate index: error}, wall seconds.

    `config.device` must be resolved ('cpu' or 'cuda'); `options` are model options (a model built with options has
    no packed form). The pack size is `pack_size`, else the one measured on this machine for a packed form
    (`evaluator.packing.tuning`, ~8 s once for the ResNet proxy on CPU, outside any time limit), else the fixed
    `packing_policy`; a model without a packed form trains one candidate (its seeds) per pack. `states[i]` (None:
    from scratch) is where candidate i's training continues from; `keep_states` keeps each slot's final state.
    ValueError for a model that cannot take this task's input.
    """
    check_model(model, data.input_shape, config.init, options)
    device = torch.device(config.device)
    if device.type == "cpu":
        keep_freed_memory()
    slots, factories, errors = [], [], {}
    for index, spec in enumerate(candidates):
        state = states[index] if states is not None else None
        try:
            factory = _factory(spec, config)
            _check_state(state, config)
        except Exception as error:  # a bad candidate is its own error, never its pack's
            errors[index] = f"{type(error).__name__}: {error}"
            continue
        for i, seed in enumerate(config.seeds):
            slot = Slot(index, seed)
            if state is not None:  # its step-0 gradient norm was measured before it stopped
                slot.start, slot.resume, slot.grad_norm_init = state.step, state.slots[i], state.grad_norm_init[i]
            slots.append(slot)
            factories.append(factory)
    size = pack_size or _pack_size(model, data, config, options, len(slots))
    packs: list[list[int]] = []
    for first_step in sorted({s.start for s in slots}):  # a pack's slots continue from the same step
        group = [k for k, s in enumerate(slots) if s.start == first_step]
        packs += ([group[i : i + size] for i in range(0, len(group), size)]
                  if packed_form(model, config, options) or pack_size
                  else [[k for k in group if slots[k].candidate == i]
                        for i in sorted({slots[k].candidate for k in group})])
    start = time.perf_counter()
    for pack in packs:
        _train_or_split([slots[k] for k in pack], [factories[k] for k in pack], data, model, config, options, errors,
                        keep_states)
    return slots, errors, time.perf_counter() - start


def _check_state(state: TrainState | None, config: TrainConfig) -> None:
    """ValueError when a saved state cannot continue into this config's training."""
    if state is None:
        return
    if state.schedule_steps != config.steps or list(state.seeds) != list(config.seeds):
        raise ValueError(f"the saved state is of a {state.schedule_steps}-step schedule with seeds {state.seeds}, "
                         f"this training has {config.steps} steps and seeds {list(config.seeds)}")
    if not state.step < config.stop:
        raise ValueError(f"the saved state is at step {state.step}, not before this training's stop {config.stop}")


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
                    options: dict | None, errors: dict[int, str], keep_states: bool = False) -> None:
    """Train one pack; if it raises, train its candidates one by one, and one that raises alone is an error."""
    try:
        _train_pack(slots, factories, data, model, config, options, keep_states)
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
        for k in mine:  # start again from a clean record (and the same saved state)
            vars(slots[k]).update(vars(Slot(index, slots[k].seed, start=slots[k].start, resume=slots[k].resume,
                                          grad_norm_init=slots[k].grad_norm_init if slots[k].start else math.nan)))
        _train_or_split([slots[k] for k in mine], [factories[k] for k in mine], data, model, config, options, errors,
                        keep_states)


def _train_pack(slots: list[Slot], factories: list, data: TaskData, model: str, config: TrainConfig,
                options: dict | None, keep_states: bool = False) -> None:
    """Train one pack in place from its slots' common start step to `config.stop`: fills each slot's status, loss,
    accuracies, dead rate and test predictions (and its final state with `keep_states`)."""
    device = torch.device(config.device)
    steps, stop, batch = config.steps, config.stop, min(config.batch_size, len(data.y_train))
    first_step = slots[0].start
    x_train, y_train = data.x_train.to(device), data.y_train.to(device)
    net = build_slots(model, factories, [s.seed for s in slots], data.input_shape, data.num_classes, config,
                      options).to(device)
    opt = make_optimizer(net.parameters(), config, device)
    if first_step:
        load_slot_states(net, opt, [s.resume for s in slots])
    # The whole schedule's batch order (a prefix of a longer one is the shorter one), from where this pack starts.
    order = torch.stack([batch_order(s.seed, len(x_train), steps, batch)[first_step:stop] for s in slots],
                        dim=1).to(device)
    live = list(slots)  # the slots still in the model, in its slice order
    loss_sum = torch.zeros(len(slots), device=device)  # (K,) running loss over the last steps, for the report
    tail, tail_steps = min(max(stop // 10, 1), stop - first_step), 0
    limit = config.time_limit_s
    budget = None if limit is None else limit * len({slot.candidate for slot in slots})  # the slots share steps
    cast, timed_out, start = autocast(device, config), None, time.perf_counter()
    net.train()
    for step in range(first_step, stop):
        for group in opt.param_groups:
            group["lr"] = config.lr * lr_factor(step, config)
        idx = order[step - first_step]  # (K, B): each slot's own minibatch
        first = (lambda: _record_grad_norms(net, slots)) if step == 0 else None  # all slots live
        losses = training_step(net, opt, x_train[idx], y_train[idx], cast, first)  # (K,)
        if step >= stop - tail:
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
        if budget is not None and time.perf_counter() - start > budget and step < stop - 1:
            timed_out = f"time limit {limit:g} s per candidate reached after {step + 1} steps"
            break
    _finish(net, data, device, live, loss_sum, tail_steps, timed_out, config)
    if keep_states and not timed_out:
        for slot, state in zip(live, slot_states(net, opt), strict=True):
            slot.state = state


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
