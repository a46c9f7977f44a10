"""Train K candidates at once in one packed child model: stacked weights, one optimizer step for the whole pack.

A pack holds one slot per (candidate, seed). Slot k has its own weights, BatchNorm statistics, activation module,
initial weights (drawn from its seed) and minibatch order (also from its seed), so a (candidate, seed) trains the
same alone or inside any pack; only the matmuls are shared. The loss is the sum of per-slot losses, so gradients never
mix, and a slot whose loss turns non-finite leaves the model and the optimizer (status `nan` for its candidate only).

>>> from evaluator.packed import packing_policy
>>> packing_policy("mlp", "cpu"), packing_policy("resnet8_1d", "cpu"), packing_policy("vgg", "cpu")
(16, 8, 1)
"""

from __future__ import annotations

import ctypes
import functools
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from evaluator.config import resolve_device
from evaluator.models import activation_gain
from evaluator.models.standardise import standardised_factory
from evaluator.pack_tuning import CANDIDATE_PACK_SIZES, tuned_pack_size, tuning_enabled
from evaluator.packed_layers import PackedMLP, PackedResNet1d, keep_slices, seed_slices
from evaluator.result import EvalResult
from evaluator.training import batch_order

__all__ = ["PACK_SIZES", "packing_policy", "train_packed"]

# Canonical packed model per model name (aliases included, so the plain registry's spelling can vary).
_PACKED_MODELS = {
    "mlp": "mlp",
    "mlp_1d": "mlp",
    "resnet8_1d": "resnet8_1d",
    "resnet1d_8": "resnet8_1d",
    "resnet8": "resnet8_1d",
    "resnet_1d": "resnet8_1d",
}

# Pack size per (model, device type) when it is not measured on the machine (ACTSEARCH_PACK_TUNING=0; by default
# `pack_tuning` times the candidates and caches the fastest), and the run loop's default candidates per Ray task. CPU
# values from bench/throughput.py on a 2-core AMD EPYC (figures in bench/RESULTS.md); the packs run in one
# single-thread worker per core (the controller's Ray layout; with torch's default threads a loaded machine
# collapses). CUDA values are not measured (no GPU was lent): small child nets leave a GPU idle, so large packs are
# the expected best, and tuning picks among 16 to 512 on the GPU itself.
PACK_SIZES: dict[tuple[str, str], int] = {
    ("mlp", "cpu"): 16,  # 2.0x one plain single-thread process per core (K=8: 1.8x)
    ("resnet8_1d", "cpu"): 8,  # 1.43x one plain single-thread process per core; K=16 within load noise
    ("mlp", "cuda"): 256,
    ("resnet8_1d", "cuda"): 64,
}


def packing_policy(model_name: str, device: str | torch.device) -> int:
    """Return the fixed pack size K for this model on this device; 1 means train candidates one by one.

    `train_packed` replaces K > 1 by the size measured on the machine unless ACTSEARCH_PACK_TUNING=0; this fixed value
    is what a driver that cannot see its workers' hardware plans with (candidates per Ray task).
    """
    model = _PACKED_MODELS.get(model_name)
    return PACK_SIZES.get((model, torch.device(device).type), 1) if model else 1


@dataclass
class _Slot:
    """One (candidate, seed) trained in the pack."""

    candidate: int  # index into the candidates list
    seed: int
    status: str = "ok"
    reason: str = ""
    loss: float = math.nan
    val_acc: float = math.nan
    test_acc: float = math.nan
    grad_norm_init: float = math.nan
    test_pred: torch.Tensor | None = None
    val_acc_at: dict[str, float] = field(default_factory=dict)  # step -> validation accuracy after it


def _split(task_data: Any, name: str, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (x, y) of one split from task data given as an object with x_train, y_train... attributes or a dict."""
    get = task_data.get if isinstance(task_data, dict) else lambda key: getattr(task_data, key, None)
    x, y = get(f"x_{name}"), get(f"y_{name}")
    if x is None or y is None:
        raise ValueError(f"task data has no {name!r} split (needs x_{name} and y_{name})")
    return (
        torch.as_tensor(x, dtype=torch.float32).reshape(len(x), -1).to(device),
        torch.as_tensor(y, dtype=torch.long).to(device),
    )


def _num_classes(task_data: Any, y_train: torch.Tensor) -> int:
    """The task's class count, or one more than its largest training label when the task does not say."""
    return int(getattr(task_data, "num_classes", 0) or int(y_train.max()) + 1)


def _shape(task_data: Any) -> tuple[int, int]:
    """Return (input features, classes) of a task's training split, as the packed models take them."""
    x_train, y_train = _split(task_data, "train", torch.device("cpu"))
    return x_train.shape[1], _num_classes(task_data, y_train)


def _build(model: str, factories: list, gains: list[float], features: int, classes: int) -> nn.Module:
    if model == "mlp":
        return PackedMLP(factories, in_features=features, classes=classes, gains=gains)
    return PackedResNet1d(factories, length=features, classes=classes, gains=gains)


def tuning_builder(model: str) -> Callable[[list, int, int], nn.Module]:
    """`build(factories, features, classes)` for `pack_tuning`: the packed model with He gains in every slot (the
    time of a step does not depend on the gains)."""
    return lambda factories, features, classes: _build(
        model, factories, [math.sqrt(2.0)] * len(factories), features, classes
    )


def train_packed(candidates: Sequence[Any], task_data: Any, model_name: str, config: Any) -> list[EvalResult] | None:
    """Return one EvalResult per candidate, trained together in packs; None if this model cannot be packed.

    `config` is a `TrainConfig` (or any object with its fields; missing ones take TrainConfig's defaults). Not
    mirrored from the plain loop yet: `amp`. `time_limit_s` is per candidate, as in the plain loop; the slots of a
    pack share their steps, so a pack stops when it has used the limit times its number of candidates, and its
    surviving slots end as `timeout` (evaluated like the plain loop's timeouts). Candidates whose activation cannot
    be built come back with status `error`; `act_cost` and `dead_rate` are left to the caller. The pack size is the
    one measured on this machine (`pack_tuning`; the first call for a model and shape measures it, ~8 s for the
    ResNet proxy on CPU, outside any time limit), or the fixed `PACK_SIZES` with ACTSEARCH_PACK_TUNING=0.
    """
    model = _PACKED_MODELS.get(model_name)
    device = torch.device(resolve_device(getattr(config, "device", "cpu") or "cpu"))
    pack_size = packing_policy(model_name, device)
    if model is None or pack_size <= 1 or getattr(config, "init", "auto") not in ("auto", "he"):
        return None  # torch's default init is not implemented for stacked weights: train those one by one
    if getattr(config, "num_threads", None):
        torch.set_num_threads(config.num_threads)
    if device.type == "cpu":
        _keep_freed_memory()
    from search_space import make_activation

    seeds = list(getattr(config, "seeds", (0,)))
    standardize = getattr(config, "act_norm", "none") == "standardize"
    slots, factories, errors = [], [], {}
    for index, spec in enumerate(candidates):
        try:
            make_activation(spec)  # fail early, outside the pack, for a bad expression
        except (ValueError, TypeError) as error:
            errors[index] = f"{type(error).__name__}: {error}"
            continue
        factory = lambda channels, spec=spec: make_activation(spec, channels=channels)  # noqa: E731
        if standardize:
            factory = standardised_factory(factory)
        for seed in seeds:
            slots.append(_Slot(index, seed))
            factories.append(factory)
    # The fastest K on this machine, measured once and cached (pack_tuning); not worth measuring for slots that fit
    # in the smallest pack it would try (one expression scored over a seed or two).
    if tuning_enabled() and len(slots) > min(CANDIDATE_PACK_SIZES.get(device.type, (pack_size,))):
        features, classes = _shape(task_data)
        pack_size = tuned_pack_size(
            model, device, features, classes, int(getattr(config, "batch_size", 128)),
            build=tuning_builder(model),
        )
    start = time.perf_counter()
    for first in range(0, len(slots), pack_size):
        _train_pack(
            slots[first : first + pack_size], factories[first : first + pack_size], task_data, model, config, device
        )
    wall = time.perf_counter() - start
    return [
        _result(candidates[i], i, slots, errors.get(i), wall / max(len(candidates), 1), config, device)
        for i in range(len(candidates))
    ]


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def _keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed tensor memory for reuse; return whether it could (False off glibc).

    A packed step allocates and frees tens of MB in 0.5-10 MB tensors. Under glibc's adaptive defaults some of them
    go back to the kernel (mmap'd blocks, the trimmed top of the heap) and return as fresh pages, each costing a page
    fault on first touch: measured 200 to 2,000 faults per step, and the same step 9.6 or 11.4 ms per candidate from
    one process to the next. A fixed 32 MiB mmap threshold (glibc's maximum) and a 1 GiB trim threshold keep them
    in the heap: about 100 faults per step and steady step times. Process-wide, like the thread count.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))


def _train_pack(
    slots: list[_Slot], factories: list, task_data: Any, model: str, config: Any, device: torch.device
) -> None:
    """Train one pack in place: fills each slot's status, loss, accuracies and test predictions."""
    steps, batch = int(getattr(config, "steps", 300)), int(getattr(config, "batch_size", 128))
    x_train, y_train = _split(task_data, "train", device)
    classes = _num_classes(task_data, y_train)
    he = getattr(config, "init", "auto") == "he"
    gains = [math.sqrt(2.0) if he else activation_gain(factory(None)) for factory in factories]
    net = _build(model, factories, gains, x_train.shape[1], classes).to(device)
    seed_slices(net, [torch.Generator().manual_seed(slot.seed) for slot in slots])
    opt = _optimizer(net, config, device)
    lr, cosine = float(getattr(config, "lr", 1e-3)), getattr(config, "schedule", "cosine") == "cosine"
    order = torch.stack([batch_order(s.seed, len(x_train), steps, batch) for s in slots], dim=1).to(device)
    packs, live = len(slots), list(slots)  # live: the slots still in the model, in its slice order
    loss_sum = torch.zeros(packs, device=device)  # (K,) running loss over the last steps, for the report
    tail = max(steps // 10, 1)
    limit = getattr(config, "time_limit_s", None)
    budget = None if limit is None else float(limit) * len({slot.candidate for slot in slots})
    start, timed_out, tail_steps = time.perf_counter(), None, 0
    eval_steps = set(getattr(config, "eval_steps", ()))
    for step in range(steps):
        if cosine:  # the plain loop's schedule: cosine decay to 0 over `steps`
            for group in opt.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))
        idx = order[step]  # (K, B): each slot's own minibatch
        logits = net(x_train[idx])  # (K, B, classes)
        # Classes on dim 1 of a (K, classes, B) view: CPU log-softmax over a strided middle dim vectorises along B;
        # on (K*B, 10) rows it was 4.3x slower (465 -> 107 us forward + backward for K=16), 6% of an MLP step.
        losses = F.cross_entropy(logits.transpose(1, 2), y_train[idx], reduction="none").mean(1)  # (K,)
        # Slots never share a weight, so a slot whose loss is not finite spoils only its own gradients, weights and
        # moments, and it leaves the model below, before the next step uses them.
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        if step == 0:
            _record_grad_norms(net, slots)
        opt.step()
        if step >= steps - tail:
            loss_sum += losses.detach()
            tail_steps += 1
        if step + 1 in eval_steps:
            _record_val_acc(net, task_data, device, live, step + 1)
        finite = torch.isfinite(losses)
        if not bool(finite.all()):  # drop the dead slots: they would cost as much as live ones until the end
            for k in (~finite).nonzero().flatten().tolist():
                live[k].status, live[k].reason = "nan", f"non-finite training loss at step {step}"
            keep = finite.nonzero().flatten()
            opt = _keep_slots(net, opt, keep, config, device)
            live, order, loss_sum = [live[k] for k in keep.tolist()], order[:, keep], loss_sum[keep]
            packs = len(live)
            if not live:
                break
        if budget is not None and time.perf_counter() - start > budget and step < steps - 1:
            timed_out = f"time limit {limit:g} s per candidate reached after {step + 1} steps (packed)"
            break
    if not live:
        return
    net.eval()
    with torch.inference_mode():
        val_acc, _ = _accuracy(net, *_split(task_data, "val", device), packs)
        test_acc, test_pred = _accuracy(net, *_split(task_data, "test", device), packs)
    for k, slot in enumerate(live):
        slot.loss = float(loss_sum[k]) / tail_steps if tail_steps else math.nan  # nan: stopped before the tail
        slot.val_acc, slot.test_acc, slot.test_pred = float(val_acc[k]), float(test_acc[k]), test_pred[k].cpu()
        if timed_out:
            slot.status, slot.reason = "timeout", timed_out
        elif slot.loss > float(getattr(config, "diverge_loss", 100.0)):
            slot.status, slot.reason = "diverged", f"final training loss {slot.loss:.3g}"


def _record_val_acc(net: nn.Module, task_data: Any, device: torch.device, live: list[_Slot], step: int) -> None:
    """Store each live slot's validation accuracy after `step` steps; training goes on unchanged (no state moves in
    eval mode)."""
    net.eval()
    with torch.inference_mode():
        val_acc, _ = _accuracy(net, *_split(task_data, "val", device), len(live))
    net.train()
    for slot, acc in zip(live, val_acc.tolist()):
        slot.val_acc_at[str(step)] = acc


def _optimizer(net: nn.Module, config: Any, device: torch.device) -> torch.optim.Optimizer:
    """The plain loop's optimizer; its update is elementwise, so stacked weights get per-candidate updates."""
    lr, decay = float(getattr(config, "lr", 1e-3)), float(getattr(config, "weight_decay", 0.0))
    # One fused kernel over all parameters (CPU too since torch 2.4): 0.69 -> 0.24 ms per Adam step of a K=8 ResNet.
    fast = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    if getattr(config, "optimizer", "adam") == "sgd":
        return torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=decay, **fast)
    return torch.optim.Adam(net.parameters(), lr=lr, weight_decay=decay, **fast)


def _keep_slots(
    net: nn.Module, opt: torch.optim.Optimizer, keep: torch.Tensor, config: Any, device: torch.device
) -> torch.optim.Optimizer:
    """Cut the model to the slices in `keep`; return a new optimizer holding the kept slices' state.

    The optimizer's update is elementwise, so a kept slice's moments are its rows of the old ones: training goes on
    exactly as before for every kept slot (tested against a pack without the dropped ones).
    """
    original = {new: old for old, new in keep_slices(net, keep).items()}
    fresh = _optimizer(net, config, device)
    for param in net.parameters():
        old = original.get(param, param)  # a stacked weight was replaced; an activation's own is the same object
        sliced = old is not param
        for key, value in opt.state.get(old, {}).items():  # moments sliced with the weights; Adam's step count kept
            fresh.state[param][key] = value[keep] if sliced and torch.is_tensor(value) and value.dim() else value
    return fresh


def _record_grad_norms(net: nn.Module, slots: list[_Slot]) -> None:
    """Per-slot gradient norm at initialisation, from the stacked weights (dim 0 is the slot)."""
    squares = sum(
        p.grad.flatten(1).pow(2).sum(1)
        for p in net.parameters()
        if p.grad is not None and p.dim() >= 2 and p.shape[0] == len(slots)
    )
    for slot, square in zip(slots, squares.tolist()):
        slot.grad_norm_init = math.sqrt(square) if math.isfinite(square) else math.nan


def _accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, packs: int, chunk: int = 250):
    """Return ((K,) accuracy, (K, N) predictions) of every slot on the same examples.

    Chunks of 250 keep a K=8 ResNet's activations near the caches: 4-6% faster per pack than 500, 1000 is slower.
    """
    preds = torch.cat([net(x[i : i + chunk].expand(packs, -1, -1)).argmax(-1) for i in range(0, len(x), chunk)], 1)
    return (preds == y).float().mean(1), preds  # (K,), (K, N)


def _result(
    candidate: Any, index: int, slots: list[_Slot], error: str | None, wall: float, config: Any, device: torch.device
) -> EvalResult:
    """Aggregate one candidate's slots (one per seed) into an EvalResult."""
    from evaluator.api import describe

    mine = [s for s in slots if s.candidate == index]
    fields: dict[str, Any] = {
        "expression": describe(candidate),
        "device": str(device),
        "wall_s": wall,
        "seeds": [s.seed for s in mine],
    }
    if error is not None:
        return EvalResult(**fields, status="error", reason=error)
    bad = next((s for s in mine if s.status != "ok"), None)
    finished = [s for s in mine if s.test_pred is not None]  # evaluated: not dropped from the pack when it died
    val = [s.val_acc for s in finished]
    test = [s.test_acc for s in finished]
    fields.update(
        status=bad.status if bad else "ok",
        reason=bad.reason if bad else "",
        score=None if bad else statistics.fmean(val),
        val_acc=statistics.fmean(val) if val else None,
        val_acc_std=statistics.pstdev(val) if val else None,
        test_acc=statistics.fmean(test) if test else None,
        test_acc_std=statistics.pstdev(test) if test else None,
        loss=_finite_mean([s.loss for s in mine]) if not bad else None,
        per_seed_val_acc=val,
        # Packed: optimizer steps of all seeds over this candidate's share of the packs' wall time.
        steps_per_s=int(getattr(config, "steps", 300)) * len(mine) / wall if wall > 0 else None,
        grad_norm_init=_finite_mean([s.grad_norm_init for s in mine]),
        val_acc_at={step: [s.val_acc_at[step] for s in finished] for step in (finished[0].val_acc_at if val else {})
                    if all(step in s.val_acc_at for s in finished)},
        # Fraction of test examples whose top-1 prediction differs between the first two seeds.
        pred_diff=float((finished[0].test_pred != finished[1].test_pred).float().mean()) if len(finished) > 1 else None,
    )
    return EvalResult(**fields)


def _finite_mean(values: list[float]) -> float | None:
    """Mean of the values, or None when one is not finite (results must stay JSON-safe)."""
    return statistics.fmean(values) if all(math.isfinite(v) for v in values) else None
