"""Functional identity and pre-screening: values and slopes of an expression at fixed probe points.

`fingerprint` hashes what a function does rather than how it is written, so `max(x, 0)` and `-min(-x, 0)` (or
`x * sigmoid(x)` and `sigmoid(x) * x`) count once when the search space is deduplicated. It evaluates in float64 at
`PROBES`, with slopes by forward-mode autodiff, at two parameter settings: every beta 1.0 (the initial value) and
every beta `BETA_PROBE`, so that a function with a learnable beta is not merged with its beta = 1 special case
(`x * sigmoid(beta * x)` versus `x * sigmoid(x)`). All betas share one value per setting, which keeps the probe
compositional (a unit's values depend only on its inputs' values), so the counting code can evaluate whole layers
of units at once and get the same codes. Values are rounded to `SIGNIFICANT_DIGITS` so float noise from different
but equal formulas does not split them; NaN and +-inf get their own codes, and a slope where the value is not
finite counts as NaN.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.autograd.forward_ad as fwad

from search_space.expr import Expr
from search_space.program import Program, compile_expr, run

__all__ = ["BETA_PROBE", "PROBES", "ScreenResult", "evaluate_dual", "fingerprint", "probe", "row_codes", "screen"]

# 25 points on [-6, 6], shifted so that none falls on 0 or an integer, where kinks of max/min/abs sit.
PROBES: tuple[float, ...] = tuple(-6.0 + 0.5 * i + 0.0123 for i in range(25))
BETA_PROBE = 1.7  # the second parameter setting: generic, away from 0, 1 and simple fractions
SETTINGS = (1.0, BETA_PROBE)
SIGNIFICANT_DIGITS = 8
_TINY = 1e-12  # |v| below this is 0: cancellation noise of equal formulas lives around 1e-16 * |terms|
_NAN, _POS_INF, _NEG_INF = 2**62, 2**62 + 1, 2**62 + 2


def _warm_up_forward_ad() -> None:
    # The first make_dual loads torch's jit-scripted forward-AD decompositions, which warns that torch.jit.script
    # is deprecated: a torch-internal warning that would otherwise end up in every command's output.
    with warnings.catch_warnings(), fwad.dual_level():
        warnings.filterwarnings("ignore", message=r".*torch\.jit\.script.*", category=FutureWarning)
        fwad.make_dual(torch.zeros(1, dtype=torch.float64), torch.ones(1, dtype=torch.float64))


_warm_up_forward_ad()


@dataclass(frozen=True)
class ScreenResult:
    """Whether a candidate is worth training (`ok`) and, when it is not, why (`reason`)."""

    ok: bool
    reason: str

    def __bool__(self) -> bool:
        return self.ok


def evaluate_dual(program: Program, inputs: Sequence[torch.Tensor], beta: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Return (values, slopes) of a program whose inputs are (value, tangent) pairs, every parameter set to beta.

    `inputs` are dual tensors made inside an active `forward_ad.dual_level()`; the result is broadcast to the
    inputs' common shape, also when the expression ignores them.
    """
    shape = torch.broadcast_shapes(*(tensor.shape for tensor in inputs))
    params = {key: torch.tensor(beta, dtype=torch.float64) for key in program.param_keys}
    result = run(program, inputs, params)
    if not isinstance(result, torch.Tensor):
        full = torch.full(shape, float(result), dtype=torch.float64)
        return full, torch.zeros_like(full)
    primal, tangent = fwad.unpack_dual(result)
    tangent = torch.zeros_like(primal) if tangent is None else tangent
    return primal.expand(shape), tangent.expand(shape)


def probe(expr: Expr) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """Return [(values, slopes)] at `PROBES`, one pair per parameter setting (beta 1.0, then `BETA_PROBE`)."""
    program = compile_expr(expr)
    x = torch.tensor(PROBES, dtype=torch.float64)
    pairs = []
    with fwad.dual_level():
        dual_x = fwad.make_dual(x, torch.ones_like(x))
        for beta in SETTINGS:
            values, slopes = evaluate_dual(program, [dual_x], beta)
            pairs.append((values.detach().clone(), slopes.detach().clone()))
    return pairs


def _quantize(values: np.ndarray) -> np.ndarray:
    """Return int64 codes of values rounded to SIGNIFICANT_DIGITS (mantissa * 1024 + exponent + 512)."""
    values = np.asarray(values, dtype=np.float64)
    codes = np.zeros(values.shape, dtype=np.int64)
    finite = np.isfinite(values)
    codes[np.isnan(values)] = _NAN
    codes[values == np.inf] = _POS_INF
    codes[values == -np.inf] = _NEG_INF
    big = finite & (np.abs(values) >= _TINY)
    v = values[big]
    top = 10 ** (SIGNIFICANT_DIGITS - 1)
    exponent = np.floor(np.log10(np.abs(v))).astype(np.int64) - (SIGNIFICANT_DIGITS - 1)
    mantissa = np.round(v / np.power(10.0, exponent))
    for _ in range(2):  # log10 can be off by one next to a power of ten; renormalise into [top, 10 * top)
        low = np.abs(mantissa) < top
        high = np.abs(mantissa) >= 10 * top
        exponent = exponent - low + high
        mantissa = np.where(low | high, np.round(v / np.power(10.0, exponent)), mantissa)
    codes[big] = mantissa.astype(np.int64) * 1024 + (exponent + 512)
    return codes


def _affine_normalised(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Return the pairs with every row's values mapped by v -> (v - m) / s and slopes by d -> d / s.

    m and s are the row's mean and standard deviation over the probes at the first setting (beta = 1, where a
    standardised activation measures its constants), applied to every setting alike. A row that is not finite or
    constant at beta = 1 is left as it is.
    """
    first = np.atleast_2d(pairs[0][0].numpy())
    with np.errstate(invalid="ignore", over="ignore"):
        mean, std = first.mean(axis=1, keepdims=True), first.std(axis=1, keepdims=True)
    usable = np.isfinite(mean) & np.isfinite(std) & (std > _TINY * (1.0 + np.abs(mean)))
    mean, std = np.where(usable, mean, 0.0), np.where(usable, std, 1.0)
    out = []
    for values, slopes in pairs:
        with np.errstate(invalid="ignore", over="ignore"):
            out.append(((np.atleast_2d(values.numpy()) - mean) / std, np.atleast_2d(slopes.numpy()) / std))
    return out


def row_codes(pairs: Sequence[tuple[torch.Tensor, torch.Tensor]], affine: bool = False) -> np.ndarray:
    """Return one row of codes per function: for each setting, its rounded values then its rounded slopes.

    `pairs` holds one (values, slopes) pair per setting, each of shape (N, P) (or (P,) for a single function).
    affine: codes of the function up to a positive scale and an offset (`_affine_normalised`), so c * f + d and f
    (c > 0) get the same row.
    """
    arrays = _affine_normalised(pairs) if affine else [(v.numpy(), s.numpy()) for v, s in pairs]
    parts = []
    for values, slopes in arrays:
        # Where the value is NaN or infinite the slope means nothing, and forward-mode autodiff gives 0 or NaN
        # depending on operand order (min(nan, 1) versus min(1, nan)); one code keeps such twins together.
        slopes = np.where(np.isfinite(values), slopes, np.nan)
        parts += [_quantize(values), _quantize(slopes)]
    return np.ascontiguousarray(np.concatenate([np.atleast_2d(part) for part in parts], axis=1))


def hash_row(codes: np.ndarray) -> str:
    """Return the hex fingerprint of one row of codes."""
    return hashlib.blake2b(np.ascontiguousarray(codes, dtype=np.int64).tobytes(), digest_size=16).hexdigest()


def fingerprint(expr: Expr, affine: bool = False) -> str:
    """Return a 32-digit hex hash of the function's rounded values and slopes at the probe points.

    affine: hash the function up to a positive output scale and an offset (c * f + d with c > 0 and f alike), the
    identity of candidates whose outputs are standardised before use.

    >>> from search_space import parse
    >>> parse("max(x, 0)").fingerprint() == parse("-min(-x, 0)").fingerprint()
    True
    >>> parse("x * sigmoid(beta * x)").fingerprint() == parse("x * sigmoid(x)").fingerprint()
    False
    >>> parse("2 * max(x, 0) + 1").fingerprint(affine=True) == parse("max(x, 0)").fingerprint(affine=True)
    True
    >>> parse("-max(x, 0)").fingerprint(affine=True) == parse("max(x, 0)").fingerprint(affine=True)
    False
    """
    return hash_row(row_codes(probe(expr), affine=affine)[0])


def screen(expr: Expr) -> ScreenResult:
    """Return ScreenResult(ok=False, reason) for a candidate not worth training: non-finite, constant or flat.

    Non-finite is judged at the initial parameters (every beta 1.0), where training starts; constant and
    zero-gradient must hold at both probe settings, since `(beta - 1) * x` is flat only at the start.
    """
    pairs = [(values.numpy(), slopes.numpy()) for values, slopes in probe(expr)]
    values, slopes = pairs[0]
    for name, array in (("value", values), ("slope", slopes)):
        bad = np.flatnonzero(~np.isfinite(array))
        if bad.size:
            i = int(bad[0])
            return ScreenResult(False, f"non-finite {name} {array[i]} at x = {PROBES[i]:.4g} (with beta = 1)")
    finite_pairs = [(v, s) for v, s in pairs if np.isfinite(v).all() and np.isfinite(s).all()]
    if all(np.ptp(v) <= 1e-9 * (1.0 + np.abs(v).max()) for v, _ in finite_pairs):
        return ScreenResult(False, f"constant: f(x) = {values[0] + 0.0:.6g} on the probe range [-6, 6]")
    if all(np.abs(s).max() <= _TINY for _, s in finite_pairs):
        return ScreenResult(False, "zero gradient everywhere on the probe range [-6, 6]")
    return ScreenResult(True, "ok")
