"""Named reference activations as torch modules, and their expressions where the grammar can write them.

One table, keyed by name (as timm's `create_act`): each row makes a fresh module and, when the grammar can
express the function, gives its expression text. The reference modules are torch's own where torch has one, so a
test can compare every expression against an independent implementation. Modules with parameters take
`channels` (one value per channel, broadcast over dim 1); the others ignore it.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from search_space.expr import Expr
from search_space.registry import unknown_name

__all__ = ["HeLU", "SmeLU", "Sin", "Swish", "create", "expression", "fingerprint_labels", "names"]


class Swish(nn.Module):
    """x * sigmoid(beta * x) with a learnable beta starting at 1.0 (Ramachandran et al. 2017)."""

    def __init__(self, channels: int | None = None) -> None:
        super().__init__()
        self.beta = nn.Parameter(torch.ones(() if channels is None else (channels,)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        beta = self.beta if self.beta.dim() == 0 else self.beta.view(-1, *([1] * (x.dim() - 2)))
        return x * torch.sigmoid(beta.to(x.dtype) * x)


class SmeLU(nn.Module):
    """Smooth ReLU (Shamir, Lin, Coviello 2020): 0 below -w, (x + w)**2 / (4 w) on [-w, w], x above w.

    `half_width` is the w of the paper, a fixed hyperparameter.
    """

    def __init__(self, half_width: float = 1.0) -> None:
        super().__init__()
        if half_width <= 0:
            raise ValueError(f"SmeLU half_width must be > 0, got {half_width!r}")
        self.half_width = float(half_width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.half_width
        quadratic = (x + w) ** 2 / (4 * w)
        return torch.where(x <= -w, torch.zeros_like(x), torch.where(x >= w, x, quadratic))


class _HysteresisReLU(torch.autograd.Function):
    """ReLU forward (threshold 0), but the backward pass lets gradient through for x > -alpha."""

    @staticmethod
    def forward(ctx: torch.autograd.function.FunctionCtx, x: torch.Tensor, alpha: float) -> torch.Tensor:
        ctx.save_for_backward(x)
        ctx.alpha = alpha
        return torch.relu(x)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (x,) = ctx.saved_tensors
        return grad * (x > -ctx.alpha).to(grad.dtype), None


class HeLU(nn.Module):
    """Hysteresis ReLU (Kimhi et al. 2024): relu forward, gradient 1 for x > -alpha backward (fewer dead units)."""

    def __init__(self, alpha: float = 0.05) -> None:
        super().__init__()
        self.alpha = float(alpha)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return _HysteresisReLU.apply(x, self.alpha)


class Sin(nn.Module):
    """sin(x) as a module."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sin(x)


@dataclass(frozen=True)
class _Known:
    create: Callable[[int | None], nn.Module]
    expression: str | None  # None: the grammar cannot write it (helu's backward differs from its forward)


_SELU_SCALE, _SELU_ALPHA = 1.0507009873554805, 1.6732632423543772

_TABLE: dict[str, _Known] = {
    "relu": _Known(lambda c: nn.ReLU(), "max(x, 0)"),
    "leaky_relu": _Known(lambda c: nn.LeakyReLU(0.01), "max(x, 0.01 * x)"),
    # nn.PReLU starts its slope at 0.25; the expression's beta starts at 1.0 like every grammar parameter.
    "prelu": _Known(lambda c: nn.PReLU(num_parameters=c or 1), "max(x, 0) + beta * min(x, 0)"),
    "softplus": _Known(lambda c: nn.Softplus(), "softplus(x)"),
    "elu": _Known(lambda c: nn.ELU(), "max(x, 0) + min(exp(x) - 1, 0)"),
    "selu": _Known(lambda c: nn.SELU(), f"{_SELU_SCALE} * (max(x, 0) + min({_SELU_ALPHA} * (exp(x) - 1), 0))"),
    "gelu": _Known(lambda c: nn.GELU(), "0.5 * x * (1 + erf(0.7071067811865476 * x))"),
    "swish": _Known(lambda c: Swish(c), "x * sigmoid(beta * x)"),
    "silu": _Known(lambda c: nn.SiLU(), "x * sigmoid(x)"),
    "mish": _Known(lambda c: nn.Mish(), "x * tanh(softplus(x))"),
    "smelu": _Known(lambda c: SmeLU(1.0), "(max(min(x, 1), -1) + 1)**2 / 4 + max(x - 1, 0)"),
    "helu": _Known(lambda c: HeLU(0.05), None),
    "tanh": _Known(lambda c: nn.Tanh(), "tanh(x)"),
    "sigmoid": _Known(lambda c: nn.Sigmoid(), "sigmoid(x)"),
    "sin": _Known(lambda c: Sin(), "sin(x)"),
    "identity": _Known(lambda c: nn.Identity(), "x"),
}


def _row(name: str) -> _Known:
    if name not in _TABLE:
        raise unknown_name("activation", name, _TABLE)
    return _TABLE[name]


def names() -> list[str]:
    """Return the names of the known activations, in table order."""
    return list(_TABLE)


def create(name: str, channels: int | None = None) -> nn.Module:
    """Return a fresh module of the named activation; `channels` sizes the per-channel parameters of prelu/swish."""
    return _row(name).create(channels)


def expression(name: str) -> Expr | None:
    """Return the named activation as a grammar expression, or None when the grammar cannot express it."""
    from search_space.parser import parse

    text = _row(name).expression
    return None if text is None else parse(text)


@functools.lru_cache(maxsize=2)
def fingerprint_labels(affine: bool) -> dict[str, str]:
    """Return fingerprint -> name for the known activations the grammar can express (the first name wins a tie).

    `affine` must match how the fingerprints being labelled were taken: a run that standardises its activations
    stores `fingerprint(affine=True)`, under which a known function and its scaled copies share one label.
    """
    labels: dict[str, str] = {}
    for name in names():
        expr = expression(name)
        if expr is not None:
            labels.setdefault(expr.fingerprint(affine=affine), name)
    return labels
