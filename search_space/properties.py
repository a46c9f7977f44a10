"""Shape properties of an activation function, read off the function itself (no training).

The leaderboard shows these beside each score so that a reader sees at a glance whether a discovered function is,
say, Swish-like (smooth, non-monotonic, a negative bump, bounded below) or ReLU-like (a kink at 0, monotonic).
Everything is computed in float64 on fixed grids, so the same function always gets the same description.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass

import torch

__all__ = ["FunctionProperties", "describe"]

# The central range where shapes are judged; offset so that no grid point falls exactly on a kink at 0.
_GRID = torch.linspace(-10.0, 10.0, 8001, dtype=torch.float64) + 1.234e-4
# Far points that tell growth (unbounded) from saturation (bounded), and asymptotic slopes.
_FAR = torch.tensor([1e2, 1e3, 1e4, 1e6], dtype=torch.float64)
_ASYMPTOTE = 1e3
# A derivative jump is a kink when it is this many times larger than the jumps around it.
_KINK_RATIO = 10.0
_KINK_MIN_JUMP = 1e-3


@dataclass(frozen=True)
class FunctionProperties:
    """What a function looks like: monotonicity, smoothness, bounds, values at 0, asymptotes and bump."""

    monotonic: str  # "increasing", "decreasing" or "no" (judged on [-10, 10])
    smooth: bool  # continuous first derivative on [-10, 10]
    bounded_below: bool
    bounded_above: bool
    value_at_0: float
    slope_at_0: float
    slope_neg_inf: float  # slope at x = -1000
    slope_pos_inf: float  # slope at x = +1000
    bump_position: float | None  # x of a negative local minimum left of 0 (Swish: about -1.28)
    bump_depth: float | None  # f at that minimum (Swish: about -0.28)

    def to_dict(self) -> dict[str, object]:
        """Return the properties as a plain JSON-safe dict."""
        return asdict(self)


def _values_and_slopes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    x = x.detach().clone().requires_grad_(True)
    y = fn(x)
    if y.shape != x.shape:
        y = y.expand_as(x)
    (slope,) = torch.autograd.grad(y.sum(), x, allow_unused=True)
    if slope is None:
        slope = torch.zeros_like(x)
    return y.detach(), slope.detach()


def _monotonic(slope: torch.Tensor) -> str:
    finite = slope[torch.isfinite(slope)]
    tol = 1e-9
    if finite.numel() and bool((finite >= -tol).all()):
        return "increasing"
    if finite.numel() and bool((finite <= tol).all()):
        return "decreasing"
    return "no"


def _smooth(slope: torch.Tensor) -> bool:
    """Return False when the derivative jumps somewhere much more than it changes around that place."""
    if not bool(torch.isfinite(slope).all()):
        return False
    jumps = (slope[1:] - slope[:-1]).abs()
    window = 6
    padded = torch.nn.functional.pad(jumps[None, None], (window, window))[0, 0]
    neighbourhood = padded.unfold(0, 2 * window + 1, 1).clone()  # (N, 2 * window + 1), jump i at the centre
    neighbourhood[:, window - 1 : window + 2] = 0.0  # a kink may spread over the jump and its two neighbours
    around = neighbourhood.max(dim=1).values
    kinks = (jumps > _KINK_MIN_JUMP) & (jumps > _KINK_RATIO * around)
    return not bool(kinks.any())


def _bounded(values: torch.Tensor, far_values: torch.Tensor, above: bool) -> bool:
    """Bounded unless, in some direction, the function keeps going past its central range as x grows.

    `far_values` holds f at +/- the `_FAR` points (shape (2, len(_FAR))). A saturating function (exp towards
    -inf, elu) settles; an unbounded one (x, log|x|) still moves between the last far points.
    """
    if torch.isnan(values).any() or torch.isnan(far_values).any():
        return False
    sign = 1.0 if above else -1.0
    central = sign * values
    if not bool(torch.isfinite(central).all()):
        return False
    limit = float(central.max())
    for direction in sign * far_values:
        *_, before, last = direction.tolist()
        if last == math.inf:
            return False
        tol = 1e-6 * (1.0 + abs(before))
        if last > limit + 1e-6 * (1.0 + abs(limit)) and last > before + tol:
            return False
    return True


def _negative_bump(fn: Callable[[torch.Tensor], torch.Tensor]) -> tuple[float | None, float | None]:
    """Return (position, depth) of a Swish-like dip: below 0, left of 0, and the tail settles above it."""
    left = torch.linspace(-10.0, 0.0, 10001, dtype=torch.float64)
    tail = torch.tensor([-1e3, -1e4], dtype=torch.float64)
    with torch.no_grad():
        y = fn(left).expand_as(left)
        tail_values = fn(tail).expand_as(tail)
    if not (bool(torch.isfinite(y).all()) and bool(torch.isfinite(tail_values).all())):
        return None, None
    tail_settles = abs(float(tail_values[0] - tail_values[1])) < 1e-3
    i = int(torch.argmin(y))
    depth = float(y[i])
    is_interior = 0 < i < left.numel() - 1
    rises_again = depth < float(tail_values[1]) - 1e-6 and depth < float(y[-1]) - 1e-6
    if tail_settles and is_interior and depth < -1e-6 and rises_again:
        return round(float(left[i]), 3), depth
    return None, None


def describe(fn: Callable[[torch.Tensor], torch.Tensor] | torch.nn.Module) -> FunctionProperties:
    """Return the shape properties of an elementwise function (a module from `to_module`/`known`, or a callable).

    >>> import torch
    >>> describe(torch.relu).monotonic, describe(torch.relu).smooth
    ('increasing', False)
    """
    if isinstance(fn, torch.nn.Module):
        fn = _float64_copy(fn)
    values, slopes = _values_and_slopes(fn, _GRID)
    with torch.no_grad():
        far_pos = fn(_FAR).expand_as(_FAR)
        far_neg = fn(-_FAR).expand_as(_FAR)
    far = torch.stack([far_pos, far_neg])  # (2, len(_FAR))
    at_zero, slope_zero = _values_and_slopes(fn, torch.zeros(1, dtype=torch.float64))
    _, slope_far = _values_and_slopes(fn, torch.tensor([-_ASYMPTOTE, _ASYMPTOTE], dtype=torch.float64))
    bump_position, bump_depth = _negative_bump(fn)
    return FunctionProperties(
        monotonic=_monotonic(slopes),
        smooth=_smooth(slopes),
        bounded_below=_bounded(values, far, above=False),
        bounded_above=_bounded(values, far, above=True),
        value_at_0=float(at_zero[0]),
        slope_at_0=float(slope_zero[0]),
        slope_neg_inf=float(slope_far[0]),
        slope_pos_inf=float(slope_far[1]),
        bump_position=bump_position,
        bump_depth=bump_depth,
    )


def _float64_copy(module: torch.nn.Module) -> torch.nn.Module:
    """Return a float64 copy so that probing never changes the caller's module or its dtype."""
    import copy

    return copy.deepcopy(module).to(torch.float64).eval()
