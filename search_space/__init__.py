"""What a candidate activation function is: operators, the core-unit grammar, expressions, parsing, torch modules.

>>> from search_space import Space, parse
>>> expr = parse("x * sigmoid(beta * x)")
>>> str(expr), expr.num_params, expr.screen().ok
('x * sigmoid(beta * x)', 1, True)
>>> Space(units=2, ops="paper").size()
156250000
"""

from __future__ import annotations

from search_space import known
from search_space.activation import make_activation
from search_space.expr import Expr
from search_space.fingerprint import ScreenResult
from search_space.operators import OP_SETS, OPERATORS, Operator, OpSet, op_set, register_operator
from search_space.paper_functions import PAPER_FUNCTIONS, PaperFunction
from search_space.parser import ParseError, parse
from search_space.space import Space
from search_space.swish_family import SwishMatch, swish_match

__all__ = [
    "OPERATORS",
    "OP_SETS",
    "PAPER_FUNCTIONS",
    "Expr",
    "OpSet",
    "Operator",
    "PaperFunction",
    "ParseError",
    "ScreenResult",
    "Space",
    "SwishMatch",
    "known",
    "make_activation",
    "op_set",
    "parse",
    "register_operator",
    "swish_match",
]
