"""The function table: every named function an expression may call, with its arity and its torch implementation.

Expressions (`Call` nodes) refer to these rows by name, the parser accepts exactly these names, and the torch module,
the fingerprint and the counting code all evaluate through the same `torch_fn`, so a function means the same thing
everywhere. Each implementation takes tensors, or (for `max`/`min`) one tensor and one Python float, because the
program compiler (`program.py`) folds constant-only subexpressions and passes constants as floats. sinh, cosh,
asinh and sinc come from `elementwise`, whose CPU forms are vectorised (torch's are scalar loops), and so do max and
min, whose backward passes there are relu's instead of torch's masked ones.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from search_space import elementwise
from search_space.registry import unknown_name

__all__ = ["EPS", "FUNCTIONS", "Function", "function"]

# The `eps` constant of the grammar: keeps log(abs(x) + eps) and x1 / (x2 + eps) finite at 0.
EPS = 1e-6


@dataclass(frozen=True)
class Function:
    """One row of the function table: a name the grammar may call, how many arguments it takes, and its torch code."""

    name: str
    arity: int
    torch_fn: Callable[..., torch.Tensor]
    description: str


_ROWS = [
    Function("abs", 1, torch.abs, "absolute value"),
    Function("sqrt", 1, torch.sqrt, "square root (NaN for negative input)"),
    Function("log", 1, torch.log, "natural logarithm (NaN for negative input, -inf at 0)"),
    Function("exp", 1, torch.exp, "exponential"),
    Function("sin", 1, torch.sin, "sine"),
    Function("cos", 1, torch.cos, "cosine"),
    Function("sinh", 1, elementwise.sinh, "hyperbolic sine"),
    Function("cosh", 1, elementwise.cosh, "hyperbolic cosine"),
    Function("tanh", 1, torch.tanh, "hyperbolic tangent"),
    Function("asinh", 1, elementwise.asinh, "inverse hyperbolic sine"),
    Function("atan", 1, torch.atan, "inverse tangent"),
    Function("sinc", 1, elementwise.sinc, "sin(x) / x, 1 at x = 0"),
    Function("sigmoid", 1, torch.sigmoid, "logistic function 1 / (1 + exp(-x))"),
    Function("softplus", 1, F.softplus, "log(1 + exp(x)), linear above 20 as in torch"),
    Function("erf", 1, torch.erf, "Gauss error function"),
    Function("max", 2, elementwise.maximum, "elementwise maximum"),
    Function("min", 2, elementwise.minimum, "elementwise minimum"),
]

FUNCTIONS: dict[str, Function] = {row.name: row for row in _ROWS}


def function(name: str) -> Function:
    """Return the function-table row called `name`; ValueError naming the closest known function otherwise."""
    if name not in FUNCTIONS:
        raise unknown_name("function", name, FUNCTIONS)
    return FUNCTIONS[name]
