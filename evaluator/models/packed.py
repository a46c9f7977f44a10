"""Packed forms of the search proxies and the 1-D validation ResNets: K MLPs or K 1-D ResNet-(6n+2)s in one
module, one slot per (candidate, seed).

Each is the registry row's plain model (`evaluator.models.small.MLP`, `evaluator.models.resnet.ResNet` with n blocks
per stage: 1 for the ResNet-8 proxy, 3/5/9 for the ResNet-20/32/56 that validate winners) with its weights stacked
on dimension 0, so one slot computes what the plain model computes (tests/evaluator/test_packed.py checks values and
gradients against torch's own layers). A validation trains the seeds of one function as one pack.

>>> import torch
>>> from torch import nn
>>> net = PackedResNet1d([lambda c: nn.ReLU(), lambda c: nn.Tanh()], length=40)
>>> net(torch.randn(2, 5, 40)).shape  # (K, B, L) in, (K, B, classes) out
torch.Size([2, 5, 10])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from evaluator.models.layers import ActivationFactory
from evaluator.models.packed_layers import PackedActivation, PackedBatchNorm, PackedConv1d, PackedLinear

__all__ = ["PackedMLP", "PackedResNet1d", "packed_mlp", "packed_resnet1d", "packed_resnet8_1d"]


def packed_mlp(factories: Sequence[ActivationFactory], gains: Sequence[float], input_shape: tuple[int, ...],
               num_classes: int) -> nn.Module:
    """The `mlp` row's packed form: examples of any shape are flattened, as the plain MLP does."""
    return PackedMLP(factories, in_features=math.prod(input_shape), classes=num_classes, gains=gains)


def packed_resnet1d(blocks: int) -> Callable[..., nn.Module | None]:
    """The packed form of the `resnet{6n+2}_1d` row with n = `blocks` per stage, for one-channel sequences (L,);
    the form returns None for other inputs (the plain model reads (C, L) or images as C channels, which the packed
    stem does not)."""

    def form(factories: Sequence[ActivationFactory], gains: Sequence[float], input_shape: tuple[int, ...],
             num_classes: int) -> nn.Module | None:
        if len(input_shape) != 1:
            return None
        return PackedResNet1d(factories, length=input_shape[0], classes=num_classes, gains=gains, blocks=blocks)

    form.__name__ = f"packed_resnet{6 * blocks + 2}_1d"
    return form


packed_resnet8_1d = packed_resnet1d(1)  # the default search proxy's packed form


class PackedMLP(nn.Module):
    """K MLPs in-hidden...-out with their own activations: (K, B, in) -> (K, B, classes)."""

    def __init__(
        self,
        factories: Sequence[ActivationFactory],
        in_features: int = 40,
        hidden: Sequence[int] = (100, 100),
        classes: int = 10,
        gains: Sequence[float] | None = None,
    ) -> None:
        super().__init__()
        packs = len(factories)
        gains = list(gains) if gains is not None else [math.sqrt(2.0)] * packs
        widths = [in_features, *hidden]
        layers: list[nn.Module] = []
        for i in range(len(hidden)):
            # The first layer sees raw inputs (gain 1); later ones see activations (per-candidate gain).
            layers += [
                PackedLinear(packs, widths[i], widths[i + 1], gains if i else [1.0] * packs),
                PackedActivation(factories, widths[i + 1]),
            ]
        layers.append(PackedLinear(packs, widths[-1], classes, gains))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.flatten(2))  # (K, B, *input_shape) -> (K, B, features)


class PackedBasicBlock1d(nn.Module):
    """conv-BN-act-conv-BN plus shortcut, then act; a 1x1 conv + BN shortcut when the shape changes."""

    def __init__(
        self, factories: Sequence[ActivationFactory], in_ch: int, out_ch: int, stride: int, gains: Sequence[float]
    ) -> None:
        super().__init__()
        packs = len(factories)
        self.conv1 = PackedConv1d(packs, in_ch, out_ch, gains, stride=stride)
        self.bn1 = PackedBatchNorm(packs, out_ch)
        self.act1 = PackedActivation(factories, out_ch)
        self.conv2 = PackedConv1d(packs, out_ch, out_ch, gains)
        self.bn2 = PackedBatchNorm(packs, out_ch)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(
                PackedConv1d(packs, in_ch, out_ch, gains, kernel=1, stride=stride), PackedBatchNorm(packs, out_ch)
            )
        self.act2 = PackedActivation(factories, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.bn1(self.conv1(x)))
        return self.act2(self.bn2(self.conv2(h)) + self.shortcut(x))


class PackedResNet1d(nn.Module):
    """K 1-D ResNet-(6n+2)s (stem + 16/32/64-channel stages of n = `blocks` BasicBlocks, stride 2 entering stages 2
    and 3): (K, B, L) -> (K, B, classes). blocks=1 is the ResNet-8 search proxy."""

    def __init__(
        self,
        factories: Sequence[ActivationFactory],
        length: int = 40,
        widths: Sequence[int] = (16, 32, 64),
        classes: int = 10,
        gains: Sequence[float] | None = None,
        blocks: int = 1,
    ) -> None:
        super().__init__()
        if blocks < 1:
            raise ValueError(f"blocks per stage must be >= 1, got {blocks}")
        packs = len(factories)
        gains = list(gains) if gains is not None else [math.sqrt(2.0)] * packs
        self.stem = PackedConv1d(packs, 1, widths[0], [1.0] * packs)  # raw input: gain 1
        self.stem_bn = PackedBatchNorm(packs, widths[0])
        self.stem_act = PackedActivation(factories, widths[0])
        stages, in_ch = [], widths[0]
        for i, width in enumerate(widths):
            for j in range(blocks):
                stride = 2 if i > 0 and j == 0 else 1
                stages.append(PackedBasicBlock1d(factories, in_ch, width, stride=stride, gains=gains))
                in_ch = width
        self.stages = nn.Sequential(*stages)
        self.head = PackedLinear(packs, in_ch, classes, gains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem_act(self.stem_bn(self.stem(x.unsqueeze(-1))))  # (K, B, L, 16)
        h = self.stages(h)  # (K, B, L/4, 64)
        return self.head(h.mean(dim=2))  # global average pool over length: (K, B, 64) -> (K, B, classes)
