"""C source for one expression's fused CPU kernels: its value, and its gradients by forward-mode differentiation.

torch runs an expression as one pass over memory per operator, and its backward as several more, so a random
two-unit candidate costs 10-60x relu per activation site (bench/RESULTS.md). The kernels generated here compute the
whole expression per element in registers: `forward` reads x and writes y; `backward` reads x and the incoming
gradient, recomputes the value with its derivatives by x and by every parameter (forward mode: one tangent per
input, carried alongside each value), writes the input gradient and adds up the parameter gradients. Nothing but x
is saved between the two. The loops carry `#pragma omp simd`, and the math functions are declared with their SIMD
variants, so gcc calls glibc's vectorised libm (libmvec) instead of one scalar call per element.

Each operator follows torch's definition of its value and gradient (the function table's `elementwise` forms for
max, min and sinc): max/min propagate NaN and send the whole gradient to one side, softplus is linear above 20,
sinc's slope uses its series near 0. The source holds only operator templates from this file and numbers printed as
exact hex floats, never text from the expression, so it cannot carry anything but arithmetic.

Layout: x is `outer` rows of `period` elements (a multiple of one vector), and element m of every row reads its
parameters at position m of a (P, period) array, so per-channel parameters in either memory layout, and scalar
ones, are one loop: `search_space.native` expands them to the row's layout and sums their gradients per channel.
"""

from __future__ import annotations

import math
import operator
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from search_space import elementwise
from search_space.functions import FUNCTIONS
from search_space.program import Program

__all__ = ["KERNEL_FUNCTIONS", "LANES", "VECTOR_MATH", "Unsupported", "kernel_source"]

# Math functions the kernels call; each is declared with `omp declare simd` so the vectoriser uses libmvec.
VECTOR_MATH = ("expf", "logf", "log1pf", "sinf", "cosf", "sinhf", "coshf", "tanhf", "asinhf", "atanf", "erff", "powf")

KERNEL_FUNCTIONS = (
    "abs", "sqrt", "log", "exp", "sin", "cos", "sinh", "cosh", "tanh", "asinh", "atan", "sinc", "sigmoid",
    "softplus", "erf", "max", "min",
)  # fmt: skip

_TWO_OVER_SQRT_PI = 2.0 / math.sqrt(math.pi)
_SINC_SERIES_BELOW = 0.1  # as elementwise._sinc_slope
_SINC_TINY = 1e-30  # as elementwise._away_from_zero
_SOFTPLUS_THRESHOLD = 20.0  # torch's F.softplus default


class Unsupported(Exception):
    """The program uses a step the kernels do not implement (e.g. a power with a tensor exponent)."""


def literal(value: float) -> str:
    """An exact C float literal for a Python float rounded to float32, as torch rounds a scalar operand."""
    if math.isnan(value):
        return "__builtin_nanf(\"\")"
    if math.isinf(value):
        return "__builtin_inff()" if value > 0 else "(-__builtin_inff())"
    as_float32 = struct.unpack("f", struct.pack("f", value))[0]
    return f"{as_float32.hex()}f" if math.isfinite(as_float32) else literal(as_float32)


@dataclass
class _Value:
    """One step's C value and its tangents: seed index (0 = x, 1 + i = parameter i) -> C expression; absent = 0."""

    code: str
    tangents: dict[int, str]
    const: float | None = None  # set for constant steps


def _combine(
    a: dict[int, str], b: dict[int, str], both: Callable[[str, str], str], only_a: Callable[[str], str],
    only_b: Callable[[str], str],
) -> dict[int, str]:
    out = {}
    for seed in sorted(set(a) | set(b)):
        if seed in a and seed in b:
            out[seed] = both(a[seed], b[seed])
        elif seed in a:
            out[seed] = only_a(a[seed])
        else:
            out[seed] = only_b(b[seed])
    return out


def _scaled(tangents: dict[int, str], slope: str) -> dict[int, str]:
    return {seed: f"({slope}) * {t}" for seed, t in tangents.items()}


# Unary functions as (value, slope) C templates: {x} is the argument, {v} the value (slopes that can use it do not
# recompute it); softplus and sinc, which select between two forms, are written out in `_Emitter.unary`.
_UNARY = {
    "abs": ("__builtin_fabsf({x})", "(float)(({x} > 0.0f) - ({x} < 0.0f))"),  # torch: sign(x), 0 at 0
    "sqrt": ("__builtin_sqrtf({x})", "0.5f / {v}"),
    "log": ("logf({x})", "1.0f / {x}"),
    "exp": ("expf({x})", "{v}"),
    "sin": ("sinf({x})", "cosf({x})"),
    "cos": ("cosf({x})", "-sinf({x})"),
    "sinh": ("sinhf({x})", "coshf({x})"),
    "cosh": ("coshf({x})", "sinhf({x})"),
    "tanh": ("tanhf({x})", "1.0f - {v} * {v}"),
    "asinh": ("asinhf({x})", "1.0f / __builtin_sqrtf(1.0f + {x} * {x})"),
    "atan": ("atanf({x})", "1.0f / (1.0f + {x} * {x})"),
    "sigmoid": ("1.0f / (1.0f + expf(-{x}))", "{v} * (1.0f - {v})"),
    "erf": ("erff({x})", literal(_TWO_OVER_SQRT_PI) + " * expf(-{x} * {x})"),
}


class _Emitter:
    """Writes one loop body: a `const float` per step value and per nonzero tangent (when `derivatives`).

    A math function is never called inside a conditional: its SIMD variant has no mask, so gcc leaves such a loop
    scalar. Both sides are computed and selected (softplus, sinc)."""

    def __init__(self, derivatives: bool) -> None:
        self.derivatives = derivatives
        self.lines: list[str] = []
        self.count = 0

    def let(self, code: str) -> str:
        name = f"t{self.count}"
        self.count += 1
        self.lines.append(f"const float {name} = {code};")
        return name

    def value(self, code: str, tangents: dict[int, str]) -> _Value:
        name = self.let(code)
        if not self.derivatives:
            return _Value(name, {})
        return _Value(name, {seed: self.let(t) for seed, t in tangents.items()})

    def unary(self, name: str, a: _Value) -> _Value:
        x, d = a.code, a.tangents
        if name in _UNARY:
            value, slope = _UNARY[name]
            v = self.let(value.format(x=x))
            return self._with_slope(v, d, slope.format(x=x, v=v))
        if name == "softplus":
            cut = literal(_SOFTPLUS_THRESHOLD)
            e = self.let(f"expf({x})")
            v = self.let(f"{x} > {cut} ? {x} : {self.let(f'log1pf({e})')}")
            return self._with_slope(v, d, f"{x} > {cut} ? 1.0f : {e} / ({e} + 1.0f)")
        if name == "sinc":
            # |x| raised to 1e-30 (NaN stays NaN: the comparison is false), as elementwise._away_from_zero.
            tiny = literal(_SINC_TINY)
            ax = self.let(f"__builtin_fabsf({x})")
            safe = self.let(f"__builtin_copysignf({ax} < {tiny} ? {tiny} : {ax}, {x})")
            v = self.let(f"sinf({safe}) / {safe}")
            sq = f"({x} * {x})"
            series = f"(({sq} * {literal(-1 / 840)} + {literal(1 / 30)}) * {sq} - {literal(1 / 3)}) * {x}"
            direct = self.let(f"(cosf({safe}) - {v}) / {safe}") if self.derivatives else ""
            return self._with_slope(v, d, f"{ax} < {literal(_SINC_SERIES_BELOW)} ? {series} : {direct}")
        raise Unsupported(name)

    def _with_slope(self, v: str, d: dict[int, str], slope: str) -> _Value:
        if not self.derivatives:
            return _Value(v, {})
        return _Value(v, {seed: self.let(t) for seed, t in _scaled(d, slope).items()})

    def select(self, larger: bool, a: _Value, b: _Value) -> _Value:
        """max/min as `elementwise.maximum`/`minimum`: NaN propagates; the gradient goes whole to one side."""
        if a.const is not None and b.const is None:
            a, b = b, a  # the constant second, as elementwise._apply
        x, y = a.code, b.code
        # `|`, not `||`: a short-circuit is control flow, which can keep gcc from vectorising the loop
        keep = f"(({x} > {y}) | ({x} != {x}))" if larger else f"(({x} < {y}) | ({x} != {x}))"
        if b.const is not None:  # torch.clamp: the gradient passes where x > c (max) or where it does not (min)
            passes = f"{x} > {y}" if larger else f"!({x} > {y})"
            tangents = {seed: f"{passes} ? {t} : 0.0f" for seed, t in a.tangents.items()}
        else:  # threshold_backward on a - b: to the first operand of max where a - b > 0, else to the second
            to_a = f"({x} - {y}) > 0.0f" if larger else f"!(({x} - {y}) > 0.0f)"
            tangents = _combine(
                a.tangents, b.tangents,
                lambda ta, tb: f"{to_a} ? {ta} : {tb}",
                lambda ta: f"{to_a} ? {ta} : 0.0f",
                lambda tb: f"{to_a} ? 0.0f : {tb}",
            )  # fmt: skip
        return self.value(f"{keep} ? {x} : {y}", tangents)

    def arithmetic(self, fn: Callable[..., object], args: Sequence[_Value]) -> _Value:
        if fn is operator.neg:
            return self.value(f"-{args[0].code}", {s: f"-{t}" for s, t in args[0].tangents.items()})
        if fn is operator.pos:
            return self.value(args[0].code, dict(args[0].tangents))
        a, b = args
        x, y = a.code, b.code
        if fn is operator.add:
            return self.value(f"{x} + {y}", _combine(a.tangents, b.tangents, lambda p, q: f"{p} + {q}", str, str))
        if fn is operator.sub:
            neg = _combine(a.tangents, b.tangents, lambda p, q: f"{p} - {q}", str, lambda q: f"-{q}")
            return self.value(f"{x} - {y}", neg)
        if fn is operator.mul:
            return self.value(f"{x} * {y}", _combine(
                a.tangents, b.tangents,
                lambda p, q: f"{p} * {y} + {x} * {q}", lambda p: f"{p} * {y}", lambda q: f"{x} * {q}",
            ))  # fmt: skip
        if fn is operator.truediv:
            return self.value(f"{x} / {y}", _combine(
                a.tangents, b.tangents,
                lambda p, q: f"{p} / {y} - {x} * {q} / ({y} * {y})", lambda p: f"{p} / {y}",
                lambda q: f"-{x} * {q} / ({y} * {y})",
            ))  # fmt: skip
        if fn is operator.pow:
            return self.power(a, b)
        raise Unsupported(getattr(fn, "__name__", repr(fn)))

    def power(self, a: _Value, b: _Value) -> _Value:
        if b.const is None or a.const is not None:
            raise Unsupported("a power with a tensor exponent")
        x, e = a.code, b.const
        if e == 2.0:
            return self.value(f"{x} * {x}", _scaled(a.tangents, f"2.0f * {x}"))
        if e == 3.0:
            return self.value(f"{x} * {x} * {x}", _scaled(a.tangents, f"3.0f * {x} * {x}"))
        if e == 0.0:  # torch: x ** 0 is 1 everywhere, with gradient 0
            return self.value("1.0f", {})
        slope = f"{literal(e)} * powf({x}, {literal(e - 1.0)})"
        return self.value(f"powf({x}, {literal(e)})", _scaled(a.tangents, slope))


_ARITHMETIC = {operator.add, operator.sub, operator.mul, operator.truediv, operator.pow, operator.neg, operator.pos}
_SELECTS = {elementwise.maximum: True, elementwise.minimum: False}
_NAMES = {FUNCTIONS[name].torch_fn: name for name in KERNEL_FUNCTIONS if name not in ("max", "min")}


def _body(program: Program, derivatives: bool) -> tuple[tuple[str, ...], _Value]:
    emit = _Emitter(derivatives)
    values: list[_Value] = []
    for step in program.steps:
        if step.kind == "input":
            if values:
                raise Unsupported("more than one input")
            values.append(_Value("xv", {0: "1.0f"}))
        elif step.kind == "const":
            values.append(_Value(literal(float(step.value)), {}, const=float(step.value)))
        elif step.kind == "param":
            index = program.param_keys.index(step.value)
            values.append(_Value(f"p{index}", {1 + index: "1.0f"}))
        elif step.fn in _SELECTS:
            values.append(emit.select(_SELECTS[step.fn], *[values[i] for i in step.args]))
        elif step.fn in _ARITHMETIC:
            values.append(emit.arithmetic(step.fn, [values[i] for i in step.args]))
        elif step.fn in _NAMES:
            values.append(emit.unary(_NAMES[step.fn], values[step.args[0]]))
        else:
            raise Unsupported(getattr(step.fn, "__name__", repr(step.fn)))
    return tuple(emit.lines), values[-1]


_HEADER = """\
#include <stddef.h>
/* Declared here rather than through math.h: with their SIMD variants, which glibc's libmvec provides, and as
   pure functions. The compiler runs with -fno-builtin: as builtins, sinf and cosf of one argument would be merged
   into a scalar sincosf call. */
{declarations}
"""

# One AVX-512 vector of float32: rows are whole vectors (the caller groups rows to make them so, or does not call),
# so the loops have no epilogue: gcc's would call the scalar libm functions, 10-20x slower per element.
LANES = 16


@dataclass(frozen=True)
class _Kind:
    """What one kernel reads and writes per element, given its body from `_body`."""

    backward: bool
    lines: tuple[str, ...]
    out: _Value
    params: int

    def element(self) -> list[str]:
        """Statements for element m of row `row`: parameters read at row position m, x (and, backward, the incoming
        gradient g) read, the value (backward: x's gradient and the parameters' gradients) written."""
        head = [f"const float p{k} = pe[{k} * period + m];" for k in range(self.params)]
        head.append("const float xv = x[row + m];")
        if not self.backward:
            return [*head, *self.lines, f"y[row + m] = {self.out.code};"]
        sums = [f"ge[{k} * period + m] += gv * {self.out.tangents.get(1 + k, '0.0f')};" for k in range(self.params)]
        gradient = f"gx[row + m] = gv * {self.out.tangents.get(0, '0.0f')};"
        return [*head, "const float gv = g[row + m];", *self.lines, gradient, *sums]


def _kernel(name: str, kind: _Kind) -> str:
    if kind.backward:
        arrays = "const float *restrict x, const float *restrict g, float *restrict gx, float *restrict ge"
    else:
        arrays = "const float *restrict x, float *restrict y"
    lines = [
        f"void {name}({arrays}, const float *restrict pe, ptrdiff_t outer, ptrdiff_t period)",
        "{",
        "  if (period % LANES) __builtin_unreachable();  /* no epilogue */",
        "  for (ptrdiff_t o = 0; o < outer; o++) {",
        "    const ptrdiff_t row = o * period;",
        "    #pragma omp simd simdlen(LANES)",
        "    for (ptrdiff_t m = 0; m < period; m++) {",
        *["      " + line for line in kind.element()],
        "    }",
        "  }",
        "}",
    ]
    return "\n".join(lines) + "\n"


def kernel_source(program: Program, prefix: str = "k") -> str:
    """C source for a one-input program; raises `Unsupported` for a step the kernels do not implement.

    It defines `{prefix}_forward(x, y, pe, outer, period)` and `{prefix}_backward(x, g, gx, ge, pe, outer,
    period)`. x is `outer` rows of `period` elements, `period` a multiple of `LANES`; element m of every row uses
    parameter values pe[k, m] (P rows of `period`: per-channel parameters expanded to the row's layout by the
    caller). The backward adds element m's parameter gradients, summed over the rows, to ge[k, m] (zeroed by the
    caller, who sums it per channel).
    """
    params = len(program.param_keys)
    forward = _Kind(False, *_body(program, derivatives=False), params)
    backward = _Kind(True, *_body(program, derivatives=True), params)
    declarations = "\n".join(
        f"#pragma omp declare simd notinbranch\n"
        f"extern float {fn}(float{', float' if fn == 'powf' else ''}) __attribute__((const, nothrow));"
        for fn in VECTOR_MATH
    )
    return (
        _HEADER.format(declarations=declarations)
        + f"#define LANES {LANES}\n"
        + _kernel(f"{prefix}_forward", forward)
        + _kernel(f"{prefix}_backward", backward)
    )
