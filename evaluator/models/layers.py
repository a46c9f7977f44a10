"""Building blocks shared by the child models: the activation slot and 1-D/2-D layer choice."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

__all__ = ["ActivationFactory", "HiddenActivation", "Layers", "as_sequence"]

# Gives a fresh activation module for a layer with this many channels (per-channel betas broadcast over dim 1).
ActivationFactory = Callable[[int], nn.Module]


class HiddenActivation(nn.Module):
    """Wraps the candidate's module in every hidden layer, so metrics (dead units) can find each one by type."""

    def __init__(self, factory: ActivationFactory, channels: int) -> None:
        super().__init__()
        self.fn = factory(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)


class Layers:
    """The conv, BatchNorm and pooling classes for 1-D sequences or 2-D images, so one model definition serves both."""

    def __init__(self, dims: int) -> None:
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 (sequences) or 2 (images), got {dims!r}")
        self.dims = dims
        self.conv = nn.Conv1d if dims == 1 else nn.Conv2d
        self.bn = nn.BatchNorm1d if dims == 1 else nn.BatchNorm2d
        self.avg_pool = nn.AvgPool1d if dims == 1 else nn.AvgPool2d
        self.global_pool = nn.AdaptiveAvgPool1d(1) if dims == 1 else nn.AdaptiveAvgPool2d(1)


def as_sequence(x: torch.Tensor) -> torch.Tensor:
    """Shape any input as (B, C, L) for a 1-D conv net: (B, L) gains a channel, (B, C, H, W) is flattened to C x HW."""
    if x.dim() == 2:
        return x.unsqueeze(1)
    return x.flatten(2)
