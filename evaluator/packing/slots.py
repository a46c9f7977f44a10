"""K-slot child models: one module for K (candidate, seed) slots, packed where the registry has a packed form.

A slot draws its initial weights from a generator seeded with its own seed (stacked weights are re-drawn slice by
slice; a plain model is built under its seed), so a (candidate, seed) starts from the same weights alone, in any
pack and when retried. `packing_policy` is the fixed number of slots per pack, used when the size is not measured on
the machine (`evaluator.packing.tuning`).

>>> from evaluator.packing import packing_policy
>>> packing_policy("mlp", "cpu"), packing_policy("resnet8_1d", "cpu"), packing_policy("wrn", "cpu")
(16, 8, 1)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from evaluator.config import TrainConfig
from evaluator.models import MODELS, ActivationFactory, activation_gain, build_from_factory
from evaluator.models.packed_layers import keep_slices, seed_slices
from evaluator.packing.plain import PlainSlots

__all__ = ["PACK_SIZES", "build_slots", "keep_slots", "packed_form", "packing_policy", "slot_grad_norms",
           "tuning_builder"]

# Slots per pack for each (model, device type) when the size is not measured on the machine
# (ACTSEARCH_PACK_TUNING=0), and what the run loop plans its Ray tasks with. The CPU sizes were measured with
# bench/throughput.py (bench/RESULTS.md) for one single-thread worker per core; the CUDA sizes are a guess that
# large packs suit a GPU that small nets leave idle, and tuning picks among 16 to 512 on the GPU itself.
PACK_SIZES: dict[tuple[str, str], int] = {
    ("mlp", "cpu"): 16,
    ("resnet8_1d", "cpu"): 8,
    ("mlp", "cuda"): 256,
    ("resnet8_1d", "cuda"): 64,
    # The deeper 1-D ResNets validate winners, a pack holding the seeds of one function (bench/validation_packing.py).
    **{(f"resnet{depth}_1d", "cpu"): 8 for depth in (20, 32, 56)},
    **{(f"resnet{depth}_1d", "cuda"): 64 for depth in (20, 32, 56)},
}


def packing_policy(model_name: str, device: str | torch.device) -> int:
    """Return the fixed pack size K (slots) for this model on this device; 1 for a model without a packed form."""
    spec = MODELS.get(model_name)
    if spec is None or spec.packed is None:
        return 1
    return PACK_SIZES.get((model_name, torch.device(device).type), 1)


def packed_form(model_name: str, config: TrainConfig, options: dict[str, Any] | None = None) -> Callable | None:
    """The registry's packed builder when it applies to this training, else None (K plain modules instead).

    Packed forms take no model options and draw He-style weights only: torch's default init stays plain.
    """
    spec = MODELS[model_name]
    if spec.packed is None or options or config.init not in ("auto", "he"):
        return None
    return spec.packed


def build_slots(model_name: str, factories: Sequence[ActivationFactory], seeds: Sequence[int],
                input_shape: tuple[int, ...], num_classes: int, config: TrainConfig,
                options: dict[str, Any] | None = None) -> nn.Module:
    """Return a module mapping (K, B, *input_shape) to (K, B, classes), slot k with factories[k] and seeds[k]."""
    form = packed_form(model_name, config, options)
    if form is not None:
        gains = [math.sqrt(2.0) if config.init == "he" else activation_gain(f(None)) for f in factories]
        net = form(list(factories), gains, tuple(input_shape), num_classes)
        if net is not None:
            seed_slices(net, [torch.Generator().manual_seed(seed) for seed in seeds])
            return net
    nets = []
    for factory, seed in zip(factories, seeds, strict=True):
        with torch.random.fork_rng(devices=[]):  # the slot's seed, without moving the caller's generator
            torch.manual_seed(seed)
            nets.append(build_from_factory(model_name, factory, input_shape, num_classes, config.init,
                                           **(options or {})))
    return PlainSlots(nets)


def keep_slots(net: nn.Module, keep: torch.Tensor) -> dict[nn.Parameter, nn.Parameter]:
    """Cut a K-slot model down to the slots in `keep`, in place; return {old: new} for replaced parameters."""
    if isinstance(net, PlainSlots):
        net.keep(keep)
        return {}
    return keep_slices(net, keep)


def slot_grad_norms(net: nn.Module, slots: int) -> list[float]:
    """Per slot: the L2 norm of its weights' gradients (stacked weights: dim 0 is the slot)."""
    if isinstance(net, PlainSlots):
        return net.grad_norms()
    squares = sum(p.grad.flatten(1).pow(2).sum(1) for p in net.parameters()
                  if p.grad is not None and p.dim() >= 2 and p.shape[0] == slots)
    return [math.sqrt(square) if math.isfinite(square) else math.nan for square in squares.tolist()]


def tuning_builder(model_name: str) -> Callable[[list, int, int], nn.Module]:
    """`build(factories, features, classes)` for `evaluator.packing.tuning`: the packed form with He gains in every
    slot (the time of a step does not depend on the gains)."""
    form = MODELS[model_name].packed
    if form is None:
        raise ValueError(f"model {model_name!r} has no packed form to measure")
    return lambda factories, features, classes: form(factories, [math.sqrt(2.0)] * len(factories), (features,),
                                                     classes)
