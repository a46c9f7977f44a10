"""Layers that hold K independent candidates in one module (weights stacked per candidate): the packed models' parts.

Every tensor carries the pack on dimension 0: a packed MLP works on (K, B, features), a packed 1-D conv net on
(K, B, L, C), channels last, so that each convolution is batched matmuls over the K candidates. Nothing mixes
slices: matmuls are per slice, BatchNorm keeps statistics per (slice, channel), and slice k goes through activation
module k only. A NaN in one slice therefore stays in that slice.

>>> import torch
>>> from torch import nn
>>> site = PackedActivation([lambda c: nn.ReLU(), lambda c: nn.Tanh()], channels=3)
>>> site(torch.full((2, 4, 3), -1.0))[:, 0]  # (K, B, C): slice 0 through relu, slice 1 through tanh
tensor([[ 0.0000,  0.0000,  0.0000],
        [-0.7616, -0.7616, -0.7616]])
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from evaluator.models.layers import ActivationFactory
from evaluator.models.packed_ops import BatchNormTrain, Conv3Shifted, Im2Col3
from evaluator.models.standardise import Standardised
from search_space import native
from search_space.torch_module import ExprModule

__all__ = ["PackedActivation", "PackedBatchNorm", "PackedConv1d", "PackedLinear", "keep_slices",
           "seed_slices"]



def _init_stacked(
    weight: torch.Tensor,
    fan_in: int,
    gains: Sequence[float],
    generators: Sequence[torch.Generator | None] | None = None,
) -> None:
    """Fill weight (K, ...) in place with N(0, gain_k^2 / fan_in) per slice: He init with a per-candidate gain.

    Slice k draws from generators[k], so a (candidate, seed) gets the same initial weights alone or in any pack.
    """
    generators = generators or [None] * len(gains)
    with torch.no_grad():
        for k, (gain, gen) in enumerate(zip(gains, generators)):
            weight[k].normal_(0.0, gain / math.sqrt(fan_in), generator=gen)


def seed_slices(model: nn.Module, generators: Sequence[torch.Generator]) -> None:
    """Re-draw every stacked weight of a packed model, slice k from generators[k], in a fixed layer order."""
    for module in model.modules():
        if isinstance(module, (PackedLinear, PackedConv1d)):
            _init_stacked(module.weight, module.fan_in, module.gains, generators)


def keep_slices(model: nn.Module, keep: torch.Tensor) -> dict[nn.Parameter, nn.Parameter]:
    """Cut a packed model down to the slices in `keep` (ascending indices), in place; return {old: new} parameters.

    Stacked weights, biases and BatchNorm statistics are indexed on dimension 0, and each `PackedActivation` keeps
    only the modules of the kept slices (their parameters stay the same objects). The caller moves optimizer state
    across with the returned map. Used to stop spending steps on slices whose training has gone non-finite.
    """
    replaced: dict[nn.Parameter, nn.Parameter] = {}
    for module in model.modules():
        if isinstance(module, PackedActivation):
            module.acts = nn.ModuleList(module.acts[i] for i in keep.tolist())
            module._affine = None
        elif isinstance(module, (PackedLinear, PackedConv1d, PackedBatchNorm)):
            for name, param in list(module.named_parameters(recurse=False)):
                replaced[param] = nn.Parameter(param.detach()[keep])
                setattr(module, name, replaced[param])
            for name, buffer in list(module.named_buffers(recurse=False)):
                setattr(module, name, buffer[keep])
            if hasattr(module, "gains"):
                module.gains = [module.gains[i] for i in keep.tolist()]
    return replaced


class PackedLinear(nn.Module):
    """K independent linear layers: (K, B, in) -> (K, B, out) with one baddbmm."""

    def __init__(self, packs: int, in_features: int, out_features: int, gains: Sequence[float]) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(packs, in_features, out_features))  # (K, in, out)
        self.bias = nn.Parameter(torch.zeros(packs, 1, out_features))  # (K, 1, out)
        self.fan_in, self.gains = in_features, list(gains)
        _init_stacked(self.weight, in_features, gains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias, x, self.weight)  # (K, B, out)


# Below this many input channels a kernel-3 convolution gathers its taps first (measured: im2col + bmm 1.2 ms, shifted
# matmuls 1.5 ms for the 1-channel stem at K=8; from 16 channels up the shifted matmuls win, see Conv3Shifted).
_SHIFTED_MIN_CHANNELS = 8


class PackedConv1d(nn.Module):
    """K independent 1-D convolutions (kernel 3, padding 1, or kernel 1) on channels-last input.

    (K, B, L, C_in) -> (K, B, L', C_out), with a (K, 3*C_in, C_out) weight (taps left, middle, right). Kernel 3 runs
    as three batched matmuls on shifted views of the input (`Conv3Shifted`), except on inputs of fewer than
    `_SHIFTED_MIN_CHANNELS` channels (the stem), where the taps are gathered next to the channels first (im2col, a
    (K, B, L', 3*C_in) tensor) and multiplied in one bmm: matmuls over one or two channels are slower than the copy.
    Both measured faster on CPU than `groups=K` convolutions (bench/RESULTS.md).
    """

    def __init__(self, packs: int, in_ch: int, out_ch: int, gains: Sequence[float], kernel: int = 3, stride: int = 1):
        super().__init__()
        if kernel not in (1, 3) or stride not in (1, 2):
            raise ValueError(f"PackedConv1d supports kernel 1 or 3 and stride 1 or 2, got {kernel=}, {stride=}")
        self.kernel, self.stride = kernel, stride
        self.weight = nn.Parameter(torch.empty(packs, kernel * in_ch, out_ch))  # (K, taps*C_in, C_out)
        self.fan_in, self.gains = kernel * in_ch, list(gains)
        _init_stacked(self.weight, self.fan_in, gains)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel == 3 and x.shape[-1] >= _SHIFTED_MIN_CHANNELS:
            return Conv3Shifted.apply(x, self.weight, self.stride)  # (K, B, L', C_out)
        packs, batch = x.shape[:2]
        if self.kernel == 1:
            cols = x[:, :, :: self.stride] if self.stride > 1 else x  # (K, B, L', C_in)
        else:
            cols = Im2Col3.apply(x, self.stride)  # (K, B, L', 3*C_in)
        out_len = cols.shape[2]
        y = torch.bmm(cols.reshape(packs, batch * out_len, -1), self.weight)  # (K, B*L', C_out)
        return y.view(packs, batch, out_len, -1)


class PackedBatchNorm(nn.Module):
    """BatchNorm over the channels-last axis with statistics per (slice, channel): (K, ..., C) -> same shape."""

    def __init__(self, packs: int, channels: int, momentum: float = 0.1, eps: float = 1e-5) -> None:
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.weight = nn.Parameter(torch.ones(packs, 1, channels))  # (K, 1, C)
        self.bias = nn.Parameter(torch.zeros(packs, 1, channels))  # (K, 1, C)
        self.register_buffer("running_mean", torch.zeros(packs, 1, channels))
        self.register_buffer("running_var", torch.ones(packs, 1, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(x.shape[0], -1, x.shape[-1])  # (K, N, C), N = B * L
        if not self.training:
            scale = self.weight * torch.rsqrt(self.running_var + self.eps)  # (K, 1, C)
            return torch.addcmul(self.bias - self.running_mean * scale, flat, scale).view_as(x)
        y, mean, var = BatchNormTrain.apply(flat, self.weight, self.bias, self.eps)
        with torch.no_grad():
            n = flat.shape[1]
            self.running_mean.lerp_(mean, self.momentum)
            self.running_var.lerp_(var * (n / max(n - 1, 1)), self.momentum)
        return y.view_as(x)


class PackedActivation(nn.Module):
    """Applies activation module k to slice k (unbind/stack: indexing h[k] makes backward 2x slower).

    When every slice's module is an expression with a compiled kernel (`search_space.native`), the kernels write
    their slices straight into one output, computing exactly what each module would, without a stacked copy.
    """

    def __init__(self, factories: Sequence[ActivationFactory], channels: int) -> None:
        super().__init__()
        self.channels = channels
        self.acts = nn.ModuleList(factory(channels) for factory in factories)
        self._affine: tuple[torch.Tensor, torch.Tensor] | None = None  # standardised slices' (scale, shift), cached

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = self._fused(x)
        if fused is not None:
            return fused
        if x.dim() == 4:  # (K, B, L, C): each module expects channels on dim 1, so hand it a (B, C, L) view
            return torch.stack([act(h.transpose(1, 2)).transpose(1, 2) for act, h in zip(self.acts, x.unbind(0))])
        return torch.stack([act(h) for act, h in zip(self.acts, x.unbind(0))])  # (K, B, C)


    def _fused(self, x: torch.Tensor) -> torch.Tensor | None:
        """All slices through their compiled kernels into one output (then one multiply-add for standardised
        slices), or None when a slice is not an expression with a kernel."""
        inner = [act.fn if isinstance(act, Standardised) else act for act in self.acts]
        if not all(isinstance(act, ExprModule) and act.channels == self.channels for act in inner):
            return None
        out = native.run_slices([act.program for act in inner], x, [act.params for act in inner], self.channels)
        if out is None or not any(isinstance(act, Standardised) for act in self.acts):
            return out
        if self._affine is None:  # (K, 1, ..., 1): slice k's scale and shift, identity for a plain slice
            shape = (len(self.acts),) + (1,) * (x.dim() - 1)
            scale = [float(act.scale) if isinstance(act, Standardised) else 1.0 for act in self.acts]
            shift = [float(act.shift) if isinstance(act, Standardised) else 0.0 for act in self.acts]
            self._affine = (torch.tensor(scale, device=x.device).view(shape),
                            torch.tensor(shift, device=x.device).view(shape))
        scale, shift = self._affine
        return torch.addcmul(shift.to(out.dtype), out, scale.to(out.dtype))
