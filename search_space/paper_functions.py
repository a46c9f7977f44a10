"""The top functions that "Searching for Activation Functions" (Ramachandran et al. 2017, Figure 3) reports, written
in this project's grammar, with a spelling that the paper op set's core-unit space produces.

One table keyed by a snake_case name. `expression` is the function as the paper writes it; `spelling` is a candidate
of `Space(units=units, ops="paper")` that computes the same function (`sigmoid_mul` puts the sigmoid first, and a
square of atan or asinh needs a second unit, since a unary operator applies to x or to a unit's output). A run meets
a paper function when one of its candidates has the same fingerprint, up to a positive scale and an offset.

>>> PAPER_FUNCTIONS["swish"].expression
'x * sigmoid(beta * x)'
"""

from __future__ import annotations

from dataclasses import dataclass

from search_space.expr import Expr
from search_space.registry import unknown_name

__all__ = ["PAPER_FUNCTIONS", "PaperFunction", "paper_function"]


@dataclass(frozen=True)
class PaperFunction:
    """One function the paper reports: its name, its text, a spelling in the core-unit space and that space's units."""

    name: str
    expression: str  # as the paper writes it, in this grammar
    spelling: str  # the same function as a candidate of Space(units=units, ops="paper")
    units: int

    def expr(self) -> Expr:
        """Return the function as an expression (parsed from `expression`)."""
        from search_space.parser import parse

        return parse(self.expression)


PAPER_FUNCTIONS: dict[str, PaperFunction] = {
    row.name: row
    for row in (
        PaperFunction("swish", "x * sigmoid(beta * x)", "sigmoid(beta * x) * x", 1),
        PaperFunction("max_x_sigmoid", "max(x, sigmoid(x))", "max(x, sigmoid(x))", 1),
        PaperFunction("cos_minus_x", "cos(x) - x", "cos(x) - x", 1),
        PaperFunction("min_x_sin", "min(x, sin(x))", "min(x, sin(x))", 1),
        PaperFunction("atan_squared_minus_x", "atan(x)**2 - x", "max(atan(x), atan(x))**2 - x", 2),
        PaperFunction("max_x_tanh", "max(x, tanh(x))", "max(x, tanh(x))", 1),
        PaperFunction("sinc_plus_x", "sinc(x) + x", "sinc(x) + x", 1),
        PaperFunction("x_asinh_squared", "x * asinh(x)**2", "x * max(asinh(x), asinh(x))**2", 2),
    )
}


def paper_function(name: str) -> PaperFunction:
    """Return the paper function of that name; ValueError naming the valid ones for an unknown name."""
    if name not in PAPER_FUNCTIONS:
        raise unknown_name("paper function", name, PAPER_FUNCTIONS)
    return PAPER_FUNCTIONS[name]
