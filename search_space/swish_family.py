"""Whether a function is Swish, x * sigmoid(beta * x), or shaped like it: two stated rules, no training.

Equivalent (`SwishMatch.equivalent`): at each of the fingerprint's two parameter settings (every beta 1.0, then every
beta `BETA_PROBE`), the function's values at 49 points on [-6, 6] equal c * x * sigmoid(b * x) + d for some c > 0, d
and b in [0.01, 100], fitted, to within 1e-6 of the values' standard deviation (the largest residual, with the values
scaled into [-1, 1] first, so that one huge value cannot hide the others). b and c may differ between the settings,
so the learnable Swish `x * sigmoid(beta * x)`, its fixed-beta members (silu `x * sigmoid(x)`, `sigmoid(x + x) * x`)
and `(beta * x) * sigmoid(beta * x)` all count, and so does any positive scale and offset of them, the identity of
candidates in a run whose outputs are standardised (`fingerprint(affine=True)`). Fingerprint equality alone would miss
silu: a function with a learnable beta is fingerprinted at two betas so that it is not merged with its beta = 1
member. The bounds on b keep out the identity (b -> 0) and relu (b -> inf).

Near (`SwishMatch.near`), judged on the function at its initial parameters (every beta 1.0) and unchanged by a
positive scale and an offset; with a = f'(300), the right-hand slope (far points at 100 and 300, where exp(x) is
still finite in float64, so that x * exp(x) and the like can be judged):

1. linear on the right with a positive slope: a > 0 and f'(100) within 1 % of a;
2. flat on the left: |f'(-100)| and |f'(-300)| at most 1 % of a, and f(-100), f(-300) finite and within
   0.01 * a of each other (the left limit L = f(-300));
3. one dip left of 0: on [-10, 10], f falls to its minimum at some m < 0 and rises after it (before m it never climbs,
   after m it never drops, by more than 0.01 * a: a hump before the dip, as in softplus(x) - exp(-x**2), or the
   ripples of sinc fail), and f(m) < L - 0.01 * a: the negative bump of Swish, measured from the left limit;
4. smooth: a continuous first derivative on [-10, 10] (`properties.describe(...).smooth`).

Up to a flip (`SwishMatch.flipped`): a function that is neither equivalent nor near but whose mirror f(-x), negation
-f(x) or both is one of them. In a network the layer before an activation can absorb a mirror (its weights change
sign) and the layer after it a negation, so such a function trains as Swish does; a search of a space with negation
meets these as often as Swish itself.

The rules are checked in this order, cheapest first, and `SwishMatch.reason` names the first one failed. Swish
(bump -0.28 at -1.28), GELU (-0.17 at -0.75) and Mish (-0.31 at -1.19) pass; relu, softplus and elu (no dip), tanh
(no linear rise on the right), a Swish mirrored in x or y, and x**2 do not. A Swish-equivalent function counts as
near without the shape test (a steep member such as x * sigmoid(100 * x) is too sharp for rule 4 on this grid).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from search_space.expr import Expr
from search_space.fingerprint import SETTINGS
from search_space.program import compile_expr, run

__all__ = ["SwishMatch", "swish_match"]

# 49 points on [-6, 6], off the integers and 0, where kinks of max/min/abs sit.
_POINTS = np.array([-6.0 + 0.25 * i + 0.0123 for i in range(49)])
_LOG_BETA = (math.log(0.01), math.log(100.0))
_FIT_TOLERANCE = 1e-6  # of the values' standard deviation
_SHAPE_TOLERANCE = 0.01  # of the right-hand slope a
_GRID = torch.linspace(-10.0, 10.0, 8001, dtype=torch.float64) + 1.234e-4  # properties' grid


@dataclass(frozen=True)
class SwishMatch:
    """Whether a function is Swish up to scale and offset (`equivalent`) or shaped like it (`near`), and why."""

    equivalent: bool
    near: bool  # the shape rule; True whenever `equivalent` is
    betas: tuple[float, ...] | None  # the fitted b at each parameter setting, when equivalent
    reason: str  # what matched, or the first rule the function failed
    # "mirrored", "negated" or "mirrored and negated" when the function is near (or equivalent) only after that flip
    flipped: str | None = None


def _function(expr: Expr, beta: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """Return f as a float64 torch function of x, every parameter set to beta, broadcast to x's shape."""
    program = compile_expr(expr)
    params = {key: torch.tensor(beta, dtype=torch.float64) for key in program.param_keys}

    def function(x: torch.Tensor) -> torch.Tensor:
        result = run(program, [x], params)
        if not isinstance(result, torch.Tensor):
            return torch.full_like(x, float(result)) + 0.0 * x  # constant, still part of x's graph
        return result.expand(x.shape)

    return function


def _fit_errors(values: np.ndarray, log_betas: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (largest |residual|, scale c) of the least-squares fits values ~ c * x * sigmoid(b * x) + d, one per b."""
    swish = _POINTS / (1.0 + np.exp(-np.exp(log_betas)[:, None] * _POINTS))  # (B, P)
    centred = swish - swish.mean(axis=1, keepdims=True)
    scale = (centred @ (values - values.mean())) / (centred**2).sum(axis=1)  # (B,)
    residual = (values - values.mean()) - scale[:, None] * centred
    return np.abs(residual).max(axis=1), scale


def _fit_beta(values: np.ndarray) -> float | None:
    """Return b when values = c * x * sigmoid(b * x) + d (c > 0, b in range) to within the tolerance, else None."""
    if not np.isfinite(values).all():
        return None
    values = values - np.median(values)
    largest = float(np.abs(values).max())
    if largest <= 1e-12:
        return None
    values = values / largest  # in [-1, 1]: a huge value (exp(exp(x))) cannot overflow the spread
    grid = np.linspace(*_LOG_BETA, 201)
    errors, _ = _fit_errors(values, grid)
    i = int(np.argmin(errors))
    if errors[i] > 0.1 * values.std():  # far from every member: no need to refine
        return None
    low, high = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
    for _ in range(6):  # refine on log b around the best point, 21 points a round: the bracket shrinks 10-fold
        points = np.linspace(low, high, 21)
        errors, _ = _fit_errors(values, points)
        j = int(np.argmin(errors))
        low, high = points[max(j - 1, 0)], points[min(j + 1, len(points) - 1)]
    log_beta = points[j]
    error, scale = (float(a[0]) for a in _fit_errors(values, np.array([log_beta])))
    return math.exp(log_beta) if scale > 0 and error <= _FIT_TOLERANCE * values.std() else None


FLIPS = {"mirrored": (-1.0, 1.0), "negated": (1.0, -1.0), "mirrored and negated": (-1.0, -1.0)}  # (x, y) signs


def _equivalent(expr: Expr, x_sign: float = 1.0, y_sign: float = 1.0) -> tuple[float, ...] | None:
    """Return the fitted b at each parameter setting when y_sign * f(x_sign * x) is Swish at all of them, else None."""
    settings = SETTINGS if expr.num_params else SETTINGS[:1]
    betas = []
    x = torch.tensor(_POINTS * x_sign, dtype=torch.float64)
    for setting in settings:
        with torch.no_grad():
            beta = _fit_beta(y_sign * _function(expr, setting)(x).numpy())
        if beta is None:
            return None
        betas.append(beta)
    return tuple(betas)


def _shape_failure(expr: Expr, x_sign: float = 1.0, y_sign: float = 1.0) -> str | None:
    """Return the first of the near rules (module docstring) that y_sign * f(x_sign * x) fails, or None when it passes
    them all."""
    from search_space.properties import _values_and_slopes, describe

    def at(points: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        values, slopes = _values_and_slopes(function, points)
        return values.numpy(), slopes.numpy()

    plain = _function(expr, 1.0)

    def function(x: torch.Tensor) -> torch.Tensor:
        return y_sign * plain(x_sign * x)

    tails, tail_slopes = at(torch.tensor([1e2, 3e2, -1e2, -3e2], dtype=torch.float64))
    if not (np.isfinite(tails).all() and np.isfinite(tail_slopes).all()):
        return "not finite far from 0"
    right = tail_slopes[1]
    tol = _SHAPE_TOLERANCE * abs(right)
    if right <= 0 or abs(tail_slopes[0] - right) > tol:
        return "not linear with a positive slope for large x"
    if abs(tail_slopes[2]) > tol or abs(tail_slopes[3]) > tol or abs(tails[2] - tails[3]) > tol:
        return "not flat for large negative x"
    values, slopes = at(_GRID)
    if not (np.isfinite(values).all() and np.isfinite(slopes).all()):
        return "not finite on [-10, 10]"
    lowest = int(np.argmin(values))
    if not (0 < lowest < len(values) - 1 and float(_GRID[lowest]) < 0):
        return "no minimum left of 0"
    before, after = values[: lowest + 1], values[lowest:]
    rise = float((before - np.minimum.accumulate(before)).max())  # the largest climb on the way down to m
    fall = float((np.maximum.accumulate(after) - after).max())  # the largest drop on the way up from m
    if rise > tol or fall > tol:
        return "not falling to one minimum and rising after it"
    if values[lowest] >= tails[3] - tol:
        return "no dip below the left limit"
    if not describe(function).smooth:
        return "not smooth on [-10, 10] (a kink)"
    return None


def swish_match(expr: Expr | str) -> SwishMatch:
    """Return whether a function is Swish up to scale and offset, or near it by shape (rules: module docstring).

    >>> from search_space import parse
    >>> swish_match("x * sigmoid(x)").equivalent, swish_match("max(x, 0)").near
    (True, False)
    """
    if isinstance(expr, str):
        from search_space.parser import parse

        expr = parse(expr)
    betas = _equivalent(expr)
    if betas is not None:
        shown = ", ".join(f"{b:.4g}" for b in betas)
        return SwishMatch(True, True, betas, f"c * x * sigmoid(b * x) + d with b = {shown}")
    try:
        failure = _shape_failure(expr)
    except (RuntimeError, ValueError) as error:  # a function torch cannot differentiate here is not near
        failure = f"shape not measurable: {error}"
    if failure is None:
        return SwishMatch(False, True, None, "smooth, one dip left of 0, flat on the left, linear on the right")
    flipped = next((name for name, signs in FLIPS.items() if _near(expr, *signs)), None)
    return SwishMatch(False, False, None, failure + (f"; Swish-near when {flipped}" if flipped else ""), flipped)


def _near(expr: Expr, x_sign: float, y_sign: float) -> bool:
    """Whether y_sign * f(x_sign * x) is Swish-equivalent or near (an unmeasurable shape is not)."""
    if _equivalent(expr, x_sign, y_sign) is not None:
        return True
    try:
        return _shape_failure(expr, x_sign, y_sign) is None
    except (RuntimeError, ValueError):
        return False
