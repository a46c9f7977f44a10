"""Expression trees: small frozen nodes (an operator label plus children) that describe one activation function.

Nodes are immutable and hashable, so equal trees compare equal and can key dicts (the space's encoder and the
counting code rely on that). They know nothing about torch or printing: `str(expr)` goes through `printer.py`,
`to_module` through `torch_module.py`, `fingerprint`/`screen` through `fingerprint.py`, `to_graph` through
`graph.py`. Build trees with the parser (`parse("x * sigmoid(beta * x)")`) or with Python operators on the
ready-made leaves (`X * call("sigmoid", BETA * X)`).

A `Param` called `beta` is anonymous: every occurrence is its own learnable parameter. `beta1`, `beta2`, ... are
named and every occurrence of one name is the same parameter.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from search_space.functions import function

if TYPE_CHECKING:
    import networkx
    import torch

    from search_space.fingerprint import ScreenResult

__all__ = [
    "BETA",
    "BINARY_OPS",
    "EPS_NODE",
    "X",
    "BinOp",
    "Call",
    "Const",
    "Eps",
    "Expr",
    "Hole",
    "Neg",
    "Param",
    "Var",
    "call",
    "walk",
]

BINARY_OPS = ("+", "-", "*", "/", "**")
_PARAM_NAME = re.compile(r"beta([1-9][0-9]*)?\Z")


class Expr:
    """Base of all expression nodes; gives arithmetic operators and the evaluation entry points."""

    __slots__ = ()

    def children(self) -> tuple[Expr, ...]:
        """Return the direct sub-expressions (none for a leaf)."""
        return ()

    # ----- building with Python operators (numbers become Const, negatives become Neg(Const)) -----
    def __add__(self, other: Expr | float) -> Expr:
        return BinOp("+", self, _lift(other))

    def __radd__(self, other: float) -> Expr:
        return BinOp("+", _lift(other), self)

    def __sub__(self, other: Expr | float) -> Expr:
        return BinOp("-", self, _lift(other))

    def __rsub__(self, other: float) -> Expr:
        return BinOp("-", _lift(other), self)

    def __mul__(self, other: Expr | float) -> Expr:
        return BinOp("*", self, _lift(other))

    def __rmul__(self, other: float) -> Expr:
        return BinOp("*", _lift(other), self)

    def __truediv__(self, other: Expr | float) -> Expr:
        return BinOp("/", self, _lift(other))

    def __rtruediv__(self, other: float) -> Expr:
        return BinOp("/", _lift(other), self)

    def __pow__(self, other: Expr | float) -> Expr:
        return BinOp("**", self, _lift(other))

    def __rpow__(self, other: float) -> Expr:
        return BinOp("**", _lift(other), self)

    def __neg__(self) -> Expr:
        return Neg(self)

    # ----- text -----
    def __str__(self) -> str:
        from search_space.printer import to_text

        return to_text(self)

    # ----- structure -----
    @property
    def size(self) -> int:
        """Number of nodes in the tree."""
        return sum(1 for _ in walk(self))

    @property
    def depth(self) -> int:
        """Longest root-to-leaf path counted in nodes (a leaf has depth 1)."""
        return 1 + max((child.depth for child in self.children()), default=0)

    @property
    def num_params(self) -> int:
        """Number of distinct learnable parameters: each anonymous `beta` counts once, each named one once."""
        names = [node.name for node in walk(self) if isinstance(node, Param)]
        return names.count("beta") + len({name for name in names if name != "beta"})

    # ----- evaluation (implemented in their own modules) -----
    def to_module(self, channels: int | None = None) -> torch.nn.Module:
        """Return an elementwise torch module computing this expression; see `torch_module.ExprModule`."""
        from search_space.torch_module import ExprModule

        return ExprModule(self, channels=channels)

    def fingerprint(self, affine: bool = False) -> str:
        """Return a hex hash of values and slopes at fixed probe points; equal for functionally equal expressions
        (with affine=True, also for those equal up to a positive output scale and an offset)."""
        from search_space.fingerprint import fingerprint

        return fingerprint(self, affine=affine)

    def screen(self) -> ScreenResult:
        """Return whether the candidate is worth training, with the reason when it is not."""
        from search_space.fingerprint import screen

        return screen(self)

    def to_graph(self) -> networkx.DiGraph:
        """Return the computation as a networkx DiGraph (edges point from inputs to the node that uses them)."""
        from search_space.graph import to_graph

        return to_graph(self)


def _lift(value: Expr | float) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"cannot combine an expression with {type(value).__name__} {value!r}; use a number or Expr")
    return Neg(Const(-value)) if value < 0 else Const(value)


@dataclass(frozen=True, slots=True)
class Var(Expr):
    """The input variable `x`."""

    name: str = "x"

    def __post_init__(self) -> None:
        if self.name != "x":
            raise ValueError(f"the only variable is 'x', got {self.name!r}")


@dataclass(frozen=True, slots=True)
class Const(Expr):
    """A non-negative finite number (negative numbers are `Neg(Const)`, so printing and parsing agree)."""

    value: float

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, int | float):
            raise TypeError(f"Const needs a number, got {type(self.value).__name__} {self.value!r}")
        value = float(self.value)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"Const must be finite and >= 0 (write -c as Neg(Const(c))), got {value!r}")
        object.__setattr__(self, "value", value + 0.0)  # + 0.0 turns -0.0 into 0.0


@dataclass(frozen=True, slots=True)
class Eps(Expr):
    """The small constant `eps` (`functions.EPS`) that keeps divisions and logarithms finite at 0."""


@dataclass(frozen=True, slots=True)
class Param(Expr):
    """A learnable parameter: `beta` (one parameter per occurrence) or `beta1`, `beta2`, ... (shared by name)."""

    name: str = "beta"

    def __post_init__(self) -> None:
        if not _PARAM_NAME.match(self.name):
            raise ValueError(f"a parameter is named 'beta' or 'beta1', 'beta2', ...; got {self.name!r}")


@dataclass(frozen=True, slots=True)
class Hole(Expr):
    """A placeholder in an operator template (`x`, `x1`, `x2`); never part of a candidate."""

    name: str


@dataclass(frozen=True, slots=True)
class Neg(Expr):
    """Unary minus."""

    operand: Expr

    def children(self) -> tuple[Expr, ...]:
        return (self.operand,)


@dataclass(frozen=True, slots=True)
class BinOp(Expr):
    """Binary arithmetic: `+ - * / **`."""

    op: str
    left: Expr
    right: Expr

    def __post_init__(self) -> None:
        if self.op not in BINARY_OPS:
            raise ValueError(f"binary operator must be one of {BINARY_OPS}, got {self.op!r}")

    def children(self) -> tuple[Expr, ...]:
        return (self.left, self.right)


@dataclass(frozen=True, slots=True)
class Call(Expr):
    """A call of a function-table row (`functions.FUNCTIONS`), e.g. `sigmoid(x)` or `max(x, 0)`."""

    name: str
    args: tuple[Expr, ...]

    def __post_init__(self) -> None:
        row = function(self.name)
        object.__setattr__(self, "args", tuple(self.args))
        if len(self.args) != row.arity:
            raise ValueError(f"{self.name} takes {row.arity} argument(s), got {len(self.args)}")

    def children(self) -> tuple[Expr, ...]:
        return self.args


def call(name: str, *args: Expr | float) -> Call:
    """Return the call `name(args...)`; numbers are turned into constants."""
    return Call(name, tuple(_lift(arg) for arg in args))


def walk(expr: Expr) -> Iterator[Expr]:
    """Yield every node of the tree in pre-order (a node before its children, children left to right)."""
    stack = [expr]
    while stack:
        node = stack.pop()
        yield node
        stack.extend(reversed(node.children()))


X = Var()
BETA = Param()
EPS_NODE = Eps()
