"""Small child models: an MLP, a small image CNN and a small DenseNet (1-D or 2-D)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from evaluator.models.layers import ActivationFactory, HiddenActivation, Layers, as_sequence

__all__ = ["MLP", "SmallCNN", "DenseNet"]


class MLP(nn.Module):
    """Flatten, then Linear-act for each hidden width, then a linear classifier."""

    def __init__(self, act: ActivationFactory, in_features: int, num_classes: int,
                 hidden: Sequence[int] = (100, 100)) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        for width in hidden:
            layers += [nn.Linear(in_features, width), HiddenActivation(act, width)]
            in_features = width
        layers.append(nn.Linear(in_features, num_classes))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SmallCNN(nn.Module):
    """Four conv-BN-act layers (32, 32, 64, 64 channels; stride 2 at the 2nd and 4th), GAP, linear: for 8x8-28x28."""

    def __init__(self, act: ActivationFactory, in_channels: int, num_classes: int, dims: int = 2) -> None:
        super().__init__()
        layers = Layers(dims)
        self.dims = dims
        body: list[nn.Module] = []
        for out_ch, stride in ((32, 1), (32, 2), (64, 1), (64, 2)):
            body += [layers.conv(in_channels, out_ch, 3, stride=stride, padding=1, bias=False), layers.bn(out_ch),
                     HiddenActivation(act, out_ch)]
            in_channels = out_ch
        self.body = nn.Sequential(*body, layers.global_pool, nn.Flatten())
        self.head = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(as_sequence(x) if self.dims == 1 else x))


class DenseLayer(nn.Module):
    """BN-act-conv3x3 producing `growth` new channels, concatenated to its input."""

    def __init__(self, layers: Layers, act: ActivationFactory, in_ch: int, growth: int) -> None:
        super().__init__()
        self.bn, self.act = layers.bn(in_ch), HiddenActivation(act, in_ch)
        self.conv = layers.conv(in_ch, growth, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.conv(self.act(self.bn(x)))], dim=1)


class DenseNet(nn.Module):
    """A small DenseNet (Huang et al. 2017): three dense blocks joined by BN-act-1x1 conv-avgpool transitions."""

    def __init__(self, act: ActivationFactory, in_channels: int, num_classes: int, growth: int = 12,
                 layers_per_block: int = 4, dims: int = 2) -> None:
        super().__init__()
        layers = Layers(dims)
        self.dims = dims
        channels = 2 * growth
        body: list[nn.Module] = [layers.conv(in_channels, channels, 3, padding=1, bias=False)]
        for block in range(3):
            for _ in range(layers_per_block):
                body.append(DenseLayer(layers, act, channels, growth))
                channels += growth
            if block < 2:  # transition: halve the channels and the resolution
                body += [layers.bn(channels), HiddenActivation(act, channels),
                         layers.conv(channels, channels // 2, 1, bias=False), layers.avg_pool(2, ceil_mode=True)]
                channels //= 2
        body += [layers.bn(channels), HiddenActivation(act, channels), layers.global_pool, nn.Flatten()]
        self.body = nn.Sequential(*body)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(as_sequence(x) if self.dims == 1 else x))
