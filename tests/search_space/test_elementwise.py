"""The faster forms of the function table agree with references in value, gradient and forward-mode slope."""

from __future__ import annotations

import math

import pytest
import torch
import torch.autograd.forward_ad as fwad

from search_space import elementwise
from search_space.functions import FUNCTIONS


def inputs() -> torch.Tensor:
    """A dense grid, magnitudes from 1e-30 to 1e30 of both signs, overflow edges, zeros and non-finite values."""
    magnitudes = torch.logspace(-30, 30, 601, dtype=torch.float64)
    special = [0.0, -0.0, 1e-40, -1e-40, 88.7, -88.7, 89.5, -89.5, 710.0, -710.0, math.inf, -math.inf, math.nan]
    return torch.cat([torch.linspace(-100, 100, 20001, dtype=torch.float64), magnitudes, -magnitudes,
                      torch.tensor(special, dtype=torch.float64)])


def sinc_slope(x: torch.Tensor) -> torch.Tensor:
    # The series near 0, where the closed form cancels even in float64.
    closed = (x * torch.cos(x) - torch.sin(x)) / (x * x)
    return torch.where(x.abs() < 1e-3, -x / 3 + x**3 / 30, closed)


REFERENCE = {  # float64 values and slopes from torch's own kernels (and sin(x)/x for sinc)
    "sinh": (torch.sinh, torch.cosh),
    "cosh": (torch.cosh, torch.sinh),
    "asinh": (torch.asinh, lambda x: 1 / torch.hypot(x, torch.ones_like(x))),
    "sinc": (lambda x: torch.where(x == 0, 1.0, torch.sin(x) / x), sinc_slope),
}
# Allowed relative error: a few float32 ulps; sinc's slope near its own zeros is ill-conditioned in float32.
TOLERANCE = {torch.float32: 1e-6, torch.float64: 1e-13}


def assert_close(got: torch.Tensor, want: torch.Tensor, dtype: torch.dtype, atol: float = 0.0) -> None:
    """Equal to `dtype` rounding where `want` is representable in `dtype`; the same inf or NaN where it is not.

    sinh and cosh go through exp, so they reach inf up to a factor 2 below the largest float (|x| within ln 2 of
    where exp overflows): such values count as the inf they become.
    """
    big = torch.finfo(dtype).max / 2
    want = torch.where(want.abs() > big, want.sign() * math.inf, want)
    want_cast = want.to(dtype).double()
    got = got.double()
    finite = torch.isfinite(want_cast)
    assert torch.equal(got[~finite].nan_to_num(posinf=1, neginf=-1, nan=7),
                       want_cast[~finite].nan_to_num(posinf=1, neginf=-1, nan=7))
    error = (got[finite] - want[finite]).abs()
    # Values that underflow in float32 compare absolutely against the smallest normal.
    scale = want[finite].abs().clamp_min(torch.finfo(dtype).tiny)
    worst = (error / scale).max().item()
    assert worst <= TOLERANCE[dtype] or (error.max().item() <= atol), f"max relative error {worst:.3g}"


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(REFERENCE))
def test_values_match_float64_references(name: str, dtype: torch.dtype) -> None:
    x = inputs().to(dtype)
    assert_close(getattr(elementwise, name)(x), REFERENCE[name][0](x.double()), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(REFERENCE))
def test_backward_and_forward_mode_slopes_match(name: str, dtype: torch.dtype) -> None:
    x = inputs().to(dtype)
    want = REFERENCE[name][1](x.double())
    fn = getattr(elementwise, name)
    leaf = x.clone().requires_grad_()
    fn(leaf).backward(torch.ones_like(leaf))
    with fwad.dual_level():
        dual = fwad.make_dual(x, torch.ones_like(x))
        tangent = fwad.unpack_dual(fn(dual)).tangent
    grad = leaf.grad
    if name == "asinh" and dtype == torch.float32:
        keep = ~(x.abs() > 1e19)  # x * x overflows: the slope underflows to 0 there, as torch's own does
        want, grad, tangent = want[keep], grad[keep], tangent[keep]
    atol = 1e-6 if name == "sinc" else 0.0  # sinc's slope crosses zero: compare absolutely there
    assert_close(grad, want, dtype, atol)
    assert_close(tangent, want, dtype, atol)


def test_sinc_is_the_papers_unnormalised_sinc_with_a_smooth_zero() -> None:
    x = torch.tensor([0.0, math.pi, 1e-8], requires_grad=True)
    y = elementwise.sinc(x)
    y.sum().backward()
    assert y.tolist() == pytest.approx([1.0, 0.0, 1.0], abs=1e-7)
    assert x.grad[0].item() == 0.0 and math.isfinite(x.grad[2].item())


def test_the_function_table_uses_the_vectorised_forms() -> None:
    for name in REFERENCE:
        assert FUNCTIONS[name].torch_fn is getattr(elementwise, name)
    assert FUNCTIONS["max"].torch_fn is elementwise.maximum and FUNCTIONS["min"].torch_fn is elementwise.minimum


def torch_max(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    return torch.clamp(a, min=b) if not isinstance(b, torch.Tensor) else torch.maximum(a, b)


def torch_min(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    return torch.clamp(a, max=b) if not isinstance(b, torch.Tensor) else torch.minimum(a, b)


@pytest.mark.parametrize("name", ["maximum", "minimum"])
@pytest.mark.parametrize("second", ["tensor", "per-channel parameter", "constant"])
def test_max_and_min_match_torch_in_value_gradient_and_forward_slope(name: str, second: str) -> None:
    """Exact values; gradients and forward-mode slopes equal torch's wherever the operands differ (no ties)."""
    ours, theirs = getattr(elementwise, name), torch_max if name == "maximum" else torch_min
    generator = torch.Generator().manual_seed(0)
    a = torch.randn(4, 3, 5, generator=generator, dtype=torch.float64)
    b = {"tensor": torch.randn(4, 3, 5, generator=generator, dtype=torch.float64),
         "per-channel parameter": torch.randn(3, 1, generator=generator, dtype=torch.float64),
         "constant": 0.25}[second]
    results = []
    for fn in (ours, theirs):
        leaf_a = a.clone().requires_grad_()
        leaf_b = b.clone().requires_grad_() if isinstance(b, torch.Tensor) else b
        out = fn(leaf_a, leaf_b)
        out.backward(torch.arange(out.numel(), dtype=out.dtype).reshape(out.shape))  # distinct per element
        grad_b = leaf_b.grad if isinstance(b, torch.Tensor) else None
        with fwad.dual_level():
            dual_a = fwad.make_dual(a, torch.full_like(a, 2.0))
            dual_b = fwad.make_dual(b, torch.full_like(b, -3.0)) if isinstance(b, torch.Tensor) else b
            slope = fwad.unpack_dual(fn(dual_a, dual_b)).tangent
        results.append((out.detach(), leaf_a.grad, grad_b, slope))
    for got, want in zip(*results, strict=True):
        assert (got is None and want is None) or torch.equal(got, want)


def test_max_gives_the_whole_gradient_to_one_side_at_a_tie() -> None:
    a = torch.tensor([1.0, 2.0], requires_grad=True)
    b = torch.tensor([1.0, 1.0], requires_grad=True)
    elementwise.maximum(a, b).sum().backward()
    assert a.grad.tolist() == [0.0, 1.0] and b.grad.tolist() == [1.0, 0.0]  # torch would split the tie 0.5 / 0.5
