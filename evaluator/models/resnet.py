"""Residual child models: CIFAR-style ResNets (ResNet-8 proxy up to ResNet-56) and Wide ResNets, in 1-D or 2-D."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from evaluator.models.layers import ActivationFactory, HiddenActivation, Layers, as_sequence

__all__ = ["ResNet", "WideResNet"]


class BasicBlock(nn.Module):
    """conv-BN-act-conv-BN plus shortcut, then act (He et al. 2016); 1x1 conv + BN shortcut when the shape changes."""

    def __init__(self, layers: Layers, act: ActivationFactory, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.conv1 = layers.conv(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = layers.bn(out_ch)
        self.act1 = HiddenActivation(act, out_ch)
        self.conv2 = layers.conv(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = layers.bn(out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(layers.conv(in_ch, out_ch, 1, stride=stride, bias=False), layers.bn(out_ch))
        self.act2 = HiddenActivation(act, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(h)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR ResNet-(6n+2): a 3x3 stem, three stages of n BasicBlocks (stride 2 entering stages 2 and 3), GAP, linear.

    n=1 with widths 16/32/64 is the 1-D ResNet-8 search proxy; n=3, 5, 9 give ResNet-20, 32, 56.
    """

    def __init__(self, act: ActivationFactory, in_channels: int, num_classes: int, blocks: int = 3,
                 widths: Sequence[int] = (16, 32, 64), dims: int = 2) -> None:
        super().__init__()
        layers = Layers(dims)
        self.dims = dims
        self.stem = nn.Sequential(
            layers.conv(in_channels, widths[0], 3, padding=1, bias=False), layers.bn(widths[0]),
            HiddenActivation(act, widths[0]),
        )
        stages, in_ch = [], widths[0]
        for i, width in enumerate(widths):
            for j in range(blocks):
                stages.append(BasicBlock(layers, act, in_ch, width, stride=2 if i > 0 and j == 0 else 1))
                in_ch = width
        self.stages = nn.Sequential(*stages)
        self.pool = layers.global_pool
        self.head = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(as_sequence(x) if self.dims == 1 else x))  # (B, 64, L/4) or (B, 64, H/4, W/4)
        return self.head(self.pool(h).flatten(1))


class WideBlock(nn.Module):
    """Pre-activation block of a Wide ResNet: BN-act-conv-BN-act-conv plus shortcut (Zagoruyko & Komodakis 2016)."""

    def __init__(self, layers: Layers, act: ActivationFactory, in_ch: int, out_ch: int, stride: int) -> None:
        super().__init__()
        self.bn1, self.act1 = layers.bn(in_ch), HiddenActivation(act, in_ch)
        self.conv1 = layers.conv(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn2, self.act2 = layers.bn(out_ch), HiddenActivation(act, out_ch)
        self.conv2 = layers.conv(out_ch, out_ch, 3, padding=1, bias=False)
        self.shortcut: nn.Module | None = None
        if stride != 1 or in_ch != out_ch:
            self.shortcut = layers.conv(in_ch, out_ch, 1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.bn1(x))
        out = self.conv2(self.act2(self.bn2(self.conv1(h))))
        return out + (x if self.shortcut is None else self.shortcut(h))


class WideResNet(nn.Module):
    """WRN-depth-width: depth = 6n + 4, stages of n pre-activation blocks with 16k/32k/64k channels, k = width."""

    def __init__(self, act: ActivationFactory, in_channels: int, num_classes: int, depth: int = 16, width: int = 4,
                 dims: int = 2) -> None:
        super().__init__()
        if depth < 10 or (depth - 4) % 6:
            raise ValueError(f"Wide ResNet depth must be 6n + 4 with n >= 1 (10, 16, 22, 28, ...), got {depth}")
        if width < 1:
            raise ValueError(f"Wide ResNet width must be a positive integer, got {width}")
        layers, blocks = Layers(dims), (depth - 4) // 6
        self.dims = dims
        self.stem = layers.conv(in_channels, 16, 3, padding=1, bias=False)
        stages, in_ch = [], 16
        for i, base in enumerate((16, 32, 64)):
            for j in range(blocks):
                stages.append(WideBlock(layers, act, in_ch, base * width, stride=2 if i > 0 and j == 0 else 1))
                in_ch = base * width
        self.stages = nn.Sequential(*stages)
        self.final = nn.Sequential(layers.bn(in_ch), HiddenActivation(act, in_ch), layers.global_pool)
        self.head = nn.Linear(in_ch, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stages(self.stem(as_sequence(x) if self.dims == 1 else x))
        return self.head(self.final(h).flatten(1))
