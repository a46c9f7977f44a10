"""The operator registry: the grammar's unary and binary operators, as templates that build expression trees.

A core unit of a candidate is `binary(unary(a), unary(b))`; the rows below are the paper's operators (Ramachandran
et al. 2017, section 3). Each row's `build` takes the operand expressions and returns the tree it stands for, so an
operator is printed, compiled to torch, fingerprinted and parsed exactly like any hand-written expression, and the
space's encoder can recognise it inside a tree by matching its `template`. Op sets (`paper`, `small`, or a list of
names) choose which rows a search may use; `register_operator` adds a row.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property

from search_space.expr import BETA, EPS_NODE, Expr, Hole, call
from search_space.registry import unknown_name

__all__ = ["OPERATORS", "OP_SETS", "OpSet", "Operator", "op_set", "register_operator"]

_HOLES = {1: (Hole("x"),), 2: (Hole("x1"), Hole("x2"))}


@dataclass(frozen=True)
class Operator:
    """One grammar operator: its name, arity and a `build` function from operand trees to the result tree."""

    name: str
    arity: int
    build: Callable[..., Expr]
    description: str = ""

    @cached_property
    def template(self) -> Expr:
        """The operator's tree over placeholder holes `x` (unary) or `x1`, `x2` (binary)."""
        return self.build(*_HOLES[self.arity])

    @property
    def form(self) -> str:
        """The printed form, e.g. `x1 / (x2 + eps)`."""
        return str(self.template)

    def __call__(self, *operands: Expr) -> Expr:
        if len(operands) != self.arity:
            raise ValueError(f"operator {self.name!r} takes {self.arity} operand(s), got {len(operands)}")
        return self.build(*operands)


def _unary(name: str, build: Callable[[Expr], Expr], description: str = "") -> Operator:
    return Operator(name, 1, build, description)


def _binary(name: str, build: Callable[[Expr, Expr], Expr], description: str = "") -> Operator:
    return Operator(name, 2, build, description)


def _function(name: str) -> Operator:
    return _unary(name, lambda x: call(name, x))


_ROWS = [
    _unary("identity", lambda x: x),
    _unary("neg", lambda x: -x),
    _function("abs"),
    _unary("square", lambda x: x**2),
    _unary("cube", lambda x: x**3),
    _function("sqrt"),
    _unary("scale", lambda x: BETA * x, "learnable slope"),
    _unary("shift", lambda x: x + BETA, "learnable offset"),
    _unary("log_abs", lambda x: call("log", call("abs", x) + EPS_NODE)),
    _function("exp"),
    _function("sin"),
    _function("cos"),
    _function("sinh"),
    _function("cosh"),
    _function("tanh"),
    _function("asinh"),
    _function("atan"),
    _function("sinc"),
    _unary("relu", lambda x: call("max", x, 0)),
    _unary("min0", lambda x: call("min", x, 0)),
    _function("sigmoid"),
    _function("softplus"),
    _unary("gauss", lambda x: call("exp", -(x**2))),
    _function("erf"),
    _unary("beta", lambda x: BETA, "a learnable constant; ignores its operand"),
    _binary("add", lambda a, b: a + b),
    _binary("mul", lambda a, b: a * b),
    _binary("sub", lambda a, b: a - b),
    _binary("div", lambda a, b: a / (b + EPS_NODE)),
    _binary("max", lambda a, b: call("max", a, b)),
    _binary("min", lambda a, b: call("min", a, b)),
    _binary("sigmoid_mul", lambda a, b: call("sigmoid", a) * b),
    _binary("rbf_sq", lambda a, b: call("exp", -BETA * (a - b) ** 2)),
    _binary("rbf_abs", lambda a, b: call("exp", -BETA * call("abs", a - b))),
    # The paper writes beta * x1 + (1 - beta) * x2; with one occurrence of beta it stays one parameter.
    _binary("interp", lambda a, b: b + BETA * (a - b), "beta * x1 + (1 - beta) * x2, written with one beta"),
]

OPERATORS: dict[str, Operator] = {row.name: row for row in _ROWS}

OP_SETS: dict[str, tuple[str, ...]] = {
    "paper": tuple(row.name for row in _ROWS),
    # Small enough to enumerate 2 units exactly in tests, and still holding relu and swish in one unit.
    "small": ("identity", "neg", "square", "relu", "sigmoid", "scale", "add", "mul", "max", "sigmoid_mul"),
}


@dataclass(frozen=True)
class OpSet:
    """The operators a space may use; their order fixes the token ids."""

    name: str
    unary: tuple[Operator, ...]
    binary: tuple[Operator, ...]

    def __post_init__(self) -> None:
        if not self.unary or not self.binary:
            raise ValueError(
                f"op set {self.name!r} needs at least one unary and one binary operator, got "
                f"{len(self.unary)} unary and {len(self.binary)} binary"
            )

    @property
    def names(self) -> tuple[str, ...]:
        """Names of all operators, unary first."""
        return tuple(op.name for op in self.unary + self.binary)


def _lookup(name: str) -> Operator:
    if name not in OPERATORS:
        raise unknown_name("operator", name, OPERATORS)
    return OPERATORS[name]


def op_set(spec: str | Sequence[str] | OpSet) -> OpSet:
    """Return an op set from a set name (`paper`, `small`), a list of operator names, or an OpSet (returned as is)."""
    if isinstance(spec, OpSet):
        return spec
    if isinstance(spec, str):
        if spec not in OP_SETS:
            raise unknown_name("op set", spec, OP_SETS, advice=" Or give a list of operator names.")
        name, names = spec, list(OP_SETS[spec])
    else:
        names = list(spec)
        name = "custom"
    if len(set(names)) != len(names):
        raise ValueError(f"op set lists an operator twice: {names}")
    ops = [_lookup(n) for n in names]
    return OpSet(name, tuple(op for op in ops if op.arity == 1), tuple(op for op in ops if op.arity == 2))


def register_operator(name: str, arity: int, build: Callable[..., Expr], description: str = "") -> Operator:
    """Add an operator to the registry and return it; use its name in an op set list to search with it.

    `build` takes `arity` expressions and returns an expression made of them, e.g.
    `register_operator("swish", 1, lambda x: x * call("sigmoid", x))`.
    """
    if not name.isidentifier() or name in OPERATORS:
        taken = "is already registered" if name in OPERATORS else "is not a valid identifier"
        raise ValueError(f"cannot register operator {name!r}: the name {taken}")
    if arity not in _HOLES:
        raise ValueError(f"operator arity must be 1 (unary) or 2 (binary), got {arity!r}")
    row = Operator(name, arity, build, description)
    template = row.build(*_HOLES[arity])
    if not isinstance(template, Expr):
        raise TypeError(f"build for operator {name!r} must return an Expr, got {type(template).__name__}")
    OPERATORS[name] = row
    return row
