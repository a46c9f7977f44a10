"""The training step every candidate takes, alone or packed, and the optimizer it updates with.

Training, pack-size tuning (`evaluator.packing.tuning`) and `bench/throughput.py` all time this one step, so what
is measured is what trains.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import sys
from collections.abc import Callable, Iterable

import torch
import torch.nn.functional as F
from torch import nn

from evaluator.config import TrainConfig

__all__ = ["autocast", "keep_freed_memory", "lr_factor", "make_optimizer", "training_step"]


def make_optimizer(params: Iterable[nn.Parameter], config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """Return the config's optimizer; its update is elementwise, so stacked weights get per-slot updates."""
    # One fused kernel over all parameters (CPU too since torch 2.4): a K-slot model's many small tensors would
    # otherwise cost a kernel call each (figures in bench/RESULTS.md).
    fast = {"fused": True} if device.type in ("cpu", "cuda") else {"foreach": True}
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=0.9, nesterov=True, weight_decay=config.weight_decay,
                               **fast)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, **fast)


def lr_factor(step: int, config: TrainConfig) -> float:
    """The learning rate's multiplier at `step`: 1 (constant) or a cosine decay to 0 over `config.steps`."""
    if config.schedule == "constant":
        return 1.0
    return 0.5 * (1.0 + math.cos(math.pi * step / config.steps))


def autocast(device: torch.device, config: TrainConfig) -> contextlib.AbstractContextManager:
    """bfloat16 autocast on CUDA when `config.amp`; nothing on CPU, where it is slower."""
    if device.type == "cuda" and config.amp:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def training_step(net: nn.Module, optimizer: torch.optim.Optimizer, x: torch.Tensor, y: torch.Tensor,
                  cast: contextlib.AbstractContextManager | None = None,
                  before_update: Callable[[], None] | None = None) -> torch.Tensor:
    """Take one optimizer step of a K-slot model on x (K, B, ...) and labels y (K, B); return the (K,) losses.

    The loss is the sum of the slots' losses, so gradients never mix. `before_update` sees the gradients.
    """
    with cast or contextlib.nullcontext():
        logits = net(x)  # (K, B, classes)
    # Classes on dim 1 of a (K, classes, B) view: CPU log-softmax over a strided middle dim vectorises along B,
    # while over (K*B, 10) rows each short row is a loop of its own (figures in bench/RESULTS.md).
    losses = F.cross_entropy(logits.float().transpose(1, 2), y, reduction="none").mean(1)  # (K,)
    optimizer.zero_grad(set_to_none=True)
    losses.sum().backward()
    if before_update is not None:
        before_update()
    optimizer.step()
    return losses


# glibc's mallopt parameters (malloc.h).
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3


@functools.cache
def keep_freed_memory() -> bool:
    """Make glibc's malloc keep freed tensor memory for reuse; return whether it could (False off glibc).

    A packed step allocates and frees tens of MB in 0.5-10 MB tensors. Under glibc's adaptive defaults some of them
    go back to the kernel (mmap'd blocks, the trimmed top of the heap) and return as fresh pages, each costing a page
    fault on first touch, and step times then vary from one process to the next (bench/RESULTS.md). A fixed 32 MiB
    mmap threshold (glibc's maximum) and a 1 GiB trim threshold keep them in the heap. Process-wide, like the thread
    count.
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, 32 << 20)) and bool(mallopt(_M_TRIM_THRESHOLD, 1 << 30))
