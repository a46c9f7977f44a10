"""Faster forms of the function table's slow rows: sinh, cosh, asinh and sinc on CPU, and max and min everywhere.

torch's CPU kernels for these four (and their backward passes, which call each other) are scalar loops: on one
activation site of the search proxy they cost 8-14x relu, where `exp`, `expm1`, `log1p` and `sin` are vectorised
and cost 1-2x. A random paper-space candidate uses one of them about half the time, and the activation runs at every
hidden layer, so they were most of a search's training time (bench/RESULTS.md, "Where a real candidate's time
goes"). Each function here is written from the fast primitives, with its own backward and forward-mode derivative
(the fingerprints use forward-mode autodiff), and agrees with torch's to float rounding, also where naive formulas
cancel or overflow (tests/search_space/test_elementwise.py); sinh and cosh go through exp, so they reach inf within
a factor 2 of the largest float, where torch's still return a finite value. On other devices torch's own kernels are
vectorised already, so the functions dispatch to them.

`max` and `min` keep torch's forward (`maximum`, `clamp`), but their backward passes were 3x (a constant bound) and
7x (two tensors) the cost of relu's: torch builds boolean masks and splits the gradient at ties. Here the gradient
goes through relu's own fused `threshold_backward` (the whole gradient to the larger side; at a tie to the second
operand of max and the first of min), on every device.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

__all__ = ["asinh", "cosh", "maximum", "minimum", "sinc", "sinh"]

# Below this |x| the sinc slope uses its series: (cos x - sinc x) / x cancels to a few digits in float32 near 0.
_SINC_SERIES_BELOW = 0.1
_SINC_TINY = 1e-30
# |x| is clamped here inside asinh's correction term so that x * x stays finite in float32 (the term is ~1 by then).
_ASINH_CLAMP = 1e18


def _sinh(x: torch.Tensor) -> torch.Tensor:
    # expm1(x) - expm1(-x) never cancels (the two have opposite signs) and is exact to rounding near 0.
    return (torch.expm1(x) - torch.expm1(-x)).mul_(0.5)


def _cosh(x: torch.Tensor) -> torch.Tensor:
    e = torch.exp(x)
    return e.reciprocal().add_(e).mul_(0.5)  # exp overflow or underflow gives inf, as cosh does


def _asinh(x: torch.Tensor) -> torch.Tensor:
    # asinh(a) = log1p(a + a^2 / (1 + sqrt(1 + a^2))) for a = |x|: no cancellation near 0, no overflow for large a.
    a = x.abs()
    clamped = a.clamp(max=_ASINH_CLAMP)
    ratio = clamped / clamped.square().add_(1.0).sqrt_().add_(1.0)
    return torch.copysign(torch.log1p(ratio.mul_(a).add_(a)), x)


def _asinh_slope(x: torch.Tensor) -> torch.Tensor:
    return x.square().add_(1.0).rsqrt_()


def _away_from_zero(x: torch.Tensor) -> torch.Tensor:
    # |x| raised to at least 1e-30, where sin(x) / x is 1 to float precision: 0 needs no compare-and-select (each
    # costs several arithmetic ops on CPU). NaN stays NaN through clamp_min.
    return x.abs().clamp_min_(_SINC_TINY).copysign_(x)


def _sinc(x: torch.Tensor) -> torch.Tensor:
    safe = _away_from_zero(x)
    return torch.sin(safe).div_(safe)


def _sinc_slope(x: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    # d/dx sin(x)/x = (cos x - sin(x)/x) / x from the saved value; near 0, where that cancels, its series
    # -x/3 + x^3/30 - x^5/840.
    square = x.square()
    series = square.mul(-1.0 / 840.0).add_(1.0 / 30.0).mul_(square).sub_(1.0 / 3.0).mul_(x)
    safe = _away_from_zero(x)
    direct = (torch.cos(safe) - value).div_(safe)
    return torch.where(x.abs() < _SINC_SERIES_BELOW, series, direct)


def _function(name: str, **methods: Callable) -> type:
    """A torch.autograd.Function subclass from plain functions (forward, setup_context, backward, jvp)."""
    return type(name, (torch.autograd.Function,), {key: staticmethod(fn) for key, fn in methods.items()})


def _pointwise(name: str, value: Callable, slope: Callable, slope_uses_value: bool = False) -> type:
    """An autograd Function computing `value(x)` whose backward and forward-mode derivatives are `slope` times the
    incoming gradient or tangent; `slope` takes x, and the saved value too when `slope_uses_value`."""

    def setup_context(ctx, inputs, output) -> None:
        saved = (inputs[0], output) if slope_uses_value else (inputs[0],)
        ctx.save_for_backward(*saved)
        ctx.save_for_forward(*saved)

    def derivative(ctx, incoming: torch.Tensor) -> torch.Tensor:
        return incoming * slope(*ctx.saved_tensors)

    return _function(name, forward=value, setup_context=setup_context, backward=derivative, jvp=derivative)


_Sinh = _pointwise("Sinh", _sinh, _cosh)
_Cosh = _pointwise("Cosh", _cosh, _sinh)
_Asinh = _pointwise("Asinh", _asinh, _asinh_slope)
_Sinc = _pointwise("Sinc", _sinc, _sinc_slope, slope_uses_value=True)

_threshold_backward = torch.ops.aten.threshold_backward  # grad where input > threshold, else 0: one fused pass


def _sum_to(grad: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return grad if grad.shape == like.shape else grad.sum_to_size(like.shape)


def _tangent(tangent: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    return torch.zeros_like(like) if tangent is None else tangent


def _select(larger: bool) -> type:
    """max (`larger`) or min of two broadcast tensors: the whole gradient to the selected side, at a tie to the
    second operand of max and the first of min."""

    def forward(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return torch.maximum(a, b) if larger else torch.minimum(a, b)

    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(*inputs)
        ctx.save_for_forward(*inputs)

    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a, b = ctx.saved_tensors
        to_greater = _threshold_backward(grad, (a - b).expand_as(grad), 0)  # where a > b
        to_a, to_b = (to_greater, grad - to_greater) if larger else (grad - to_greater, to_greater)
        return _sum_to(to_a, a), _sum_to(to_b, b)

    def jvp(ctx, tangent_a: torch.Tensor | None, tangent_b: torch.Tensor | None) -> torch.Tensor:
        a, b = ctx.saved_tensors  # a select, not b + (a - b), which rounds (the fingerprints see every bit)
        tangent_a, tangent_b = _tangent(tangent_a, a), _tangent(tangent_b, b)
        return torch.where(a > b, *((tangent_a, tangent_b) if larger else (tangent_b, tangent_a)))

    name = "Maximum" if larger else "Minimum"
    return _function(name, forward=forward, setup_context=setup_context, backward=backward, jvp=jvp)


def _clamp(lower: bool) -> type:
    """max(x, c) (`lower`: c is a lower bound) or min(x, c) for a constant c; the gradient passes where x is not
    cut: x > c for max, x <= c for min."""

    def forward(x: torch.Tensor, bound: float) -> torch.Tensor:
        return torch.clamp(x, min=bound) if lower else torch.clamp(x, max=bound)

    def setup_context(ctx, inputs, output) -> None:
        ctx.save_for_backward(inputs[0])
        ctx.save_for_forward(inputs[0])
        ctx.bound = inputs[1]

    def passed(ctx, incoming: torch.Tensor) -> torch.Tensor:
        above = _threshold_backward(incoming, ctx.saved_tensors[0], ctx.bound)
        return above if lower else incoming - above

    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        return passed(ctx, grad), None

    def jvp(ctx, tangent: torch.Tensor, _bound: None) -> torch.Tensor:
        return passed(ctx, tangent)

    name = "ClampMin" if lower else "ClampMax"
    return _function(name, forward=forward, setup_context=setup_context, backward=backward, jvp=jvp)


_Maximum, _Minimum = _select(larger=True), _select(larger=False)
_ClampMin, _ClampMax = _clamp(lower=True), _clamp(lower=False)


def _apply(a: torch.Tensor | float, b: torch.Tensor | float, of_tensors: type, with_constant: type) -> torch.Tensor:
    # The program compiler passes constants as Python floats: max/min is symmetric, so the constant goes second.
    if not isinstance(b, torch.Tensor):
        return with_constant.apply(a, b)
    if not isinstance(a, torch.Tensor):
        return with_constant.apply(b, a)
    return of_tensors.apply(a, b)


def maximum(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """Elementwise max of two tensors or of a tensor and a Python float."""
    return _apply(a, b, _Maximum, _ClampMin)


def minimum(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    """Elementwise min of two tensors or of a tensor and a Python float."""
    return _apply(a, b, _Minimum, _ClampMax)


def sinh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic sine; vectorised on CPU."""
    return _Sinh.apply(x) if x.device.type == "cpu" else torch.sinh(x)


def cosh(x: torch.Tensor) -> torch.Tensor:
    """Hyperbolic cosine; vectorised on CPU."""
    return _Cosh.apply(x) if x.device.type == "cpu" else torch.cosh(x)


def asinh(x: torch.Tensor) -> torch.Tensor:
    """Inverse hyperbolic sine; vectorised on CPU."""
    return _Asinh.apply(x) if x.device.type == "cpu" else torch.asinh(x)


def sinc(x: torch.Tensor) -> torch.Tensor:
    """The paper's sinc, sin(x) / x with the value 1 at 0 (torch.sinc is the normalised sin(pi x) / (pi x))."""
    return _Sinc.apply(x) if x.device.type == "cpu" else torch.sinc(x * (1.0 / torch.pi))
