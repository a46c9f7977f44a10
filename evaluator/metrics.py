"""Diagnostics of a candidate beyond accuracy: dead units, prediction difference, activation cost."""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from torch import nn

from evaluator.models import HiddenActivation, activation_factory
from evaluator.models.packed_layers import PackedActivation
from evaluator.packing.plain import PlainSlots

__all__ = ["activation_cost", "dead_rate", "prediction_difference", "slot_dead_rates"]


@torch.no_grad()
def _inputs_of_activations(model: nn.Module, x: torch.Tensor) -> list[tuple[HiddenActivation, torch.Tensor]]:
    """Run `model` in eval mode on x and return (activation slot, the tensor it received) for every hidden layer."""
    seen: list[tuple[HiddenActivation, torch.Tensor]] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: seen.append((mod, args[0].detach())))
             for m in model.modules() if isinstance(m, HiddenActivation)]
    try:
        model.eval()
        model(x)
    finally:
        for hook in hooks:
            hook.remove()
    return seen


def dead_rate(model: nn.Module, x: torch.Tensor) -> float:
    """Return the fraction of hidden units whose activation gradient f'(input) is zero for every example of x.

    A unit is a feature of an MLP layer or a channel of a conv layer (all positions pooled): dead when the candidate's
    derivative is exactly zero wherever that unit fires on this batch, so no gradient ever reaches its weights.
    """
    counts = [_dead_units(slot, inputs) for slot, inputs in _inputs_of_activations(model, x)]
    total = sum(units for _, units in counts)
    return sum(dead for dead, _ in counts) / total if total else 0.0


def _dead_units(activation: nn.Module, inputs: torch.Tensor) -> tuple[int, int]:
    """(dead units, units) of one activation site on inputs (B, units, ...): dead where f' is 0 for every example."""
    z = inputs.float().requires_grad_(True)
    with torch.enable_grad():
        (grad,) = torch.autograd.grad(activation(z).sum(), z, allow_unused=True)
    if grad is None:  # the output does not depend on the input at all (a constant activation)
        grad = torch.zeros_like(z)
    alive = (grad != 0).transpose(0, 1).flatten(1).any(1)  # (units,): dim 1 is features / channels
    return int((~alive).sum()), alive.numel()


@torch.no_grad()
def slot_dead_rates(net: nn.Module, x: torch.Tensor) -> list[float]:
    """Return `dead_rate` of every slot of a K-slot model on the same examples x (B, ...), as each slot's plain model
    would give it: a packed site's slice k goes through activation k in the plain layout (units on dim 1)."""
    if isinstance(net, PlainSlots):
        return [dead_rate(plain, x) for plain in net.nets]
    modules = [m for m in net.modules() if isinstance(m, PackedActivation)]
    if not modules:
        raise ValueError(f"{type(net).__name__} is not a K-slot model: it has no PackedActivation site")
    slots = len(modules[0].acts)
    sites: list[tuple[PackedActivation, torch.Tensor]] = []
    hooks = [m.register_forward_pre_hook(lambda mod, args: sites.append((mod, args[0].detach()))) for m in modules]
    try:
        net.eval()
        net(x.expand(slots, *x.shape))
    finally:
        for hook in hooks:
            hook.remove()
    dead, total = [0] * slots, [0] * slots
    for site, inputs in sites:  # (K, B, C) or channels-last (K, B, L, C)
        for k, act in enumerate(site.acts):
            plain = inputs[k] if inputs.dim() == 3 else inputs[k].transpose(1, 2).contiguous()  # (B, C[, L])
            dead_k, units = _dead_units(act, plain)
            dead[k] += dead_k
            total[k] += units
    return [d / t if t else 0.0 for d, t in zip(dead, total)]


def prediction_difference(pred_a: torch.Tensor, pred_b: torch.Tensor) -> float:
    """Return the fraction of examples whose top-1 prediction differs between two trainings (reproducibility)."""
    return float((pred_a != pred_b).float().mean())


def _time_forward_backward(module: nn.Module, x: torch.Tensor) -> float:
    """Seconds of one forward+backward pass of `module` on x."""
    z = x.detach().requires_grad_(True)
    start = time.perf_counter()
    module(z).sum().backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _probe(device: str) -> torch.Tensor:
    """A fixed (128, 64, 32) activation tensor: a conv layer's worth of hidden units at batch 128."""
    return torch.randn(128, 64, 32, generator=torch.Generator().manual_seed(0)).to(device)


def activation_cost(candidate: Any, device: str = "cpu", repeats: int = 10) -> float:
    """Return the forward+backward time of the candidate on a fixed tensor relative to ReLU (1.0 = as fast).

    The two are timed alternately and the fastest pass of each is kept: other processes on a shared machine only
    ever add time, so the minimum is the stable estimate.
    """
    module, relu, x = activation_factory(candidate)(64).to(device), nn.ReLU(), _probe(device)
    _time_forward_backward(module, x)  # warm-up: first-call allocations
    _time_forward_backward(relu, x)
    seconds, reference = math.inf, math.inf
    for _ in range(repeats):
        seconds = min(seconds, _time_forward_backward(module, x))
        reference = min(reference, _time_forward_backward(relu, x))
    return seconds / max(reference, 1e-9)
