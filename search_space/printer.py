"""The canonical printer: Python-style infix with the fewest parentheses that still parse back to the same tree.

Dispatch is by node type (one small method per node kind, as in sympy's printers). Precedence and associativity
follow Python, so every printed expression is also a valid Python expression over `x`, `beta`, `eps` and the
function table. `**` is printed without spaces (`x**2`), as black formats simple powers.
"""

from __future__ import annotations

from search_space.expr import BinOp, Call, Const, Eps, Expr, Hole, Neg, Param, Var

__all__ = ["precedence", "to_text"]

_BINARY_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "**": 4}
_NEG_PRECEDENCE = 3
_ATOM_PRECEDENCE = 5


def precedence(expr: Expr) -> int:
    """Return how tightly a node binds: 1 for + -, 2 for * /, 3 for unary minus, 4 for **, 5 for atoms."""
    if isinstance(expr, BinOp):
        return _BINARY_PRECEDENCE[expr.op]
    if isinstance(expr, Neg):
        return _NEG_PRECEDENCE
    return _ATOM_PRECEDENCE


def _wrap(text: str, needed: bool) -> str:
    return f"({text})" if needed else text


def _var(expr: Var) -> str:
    return expr.name


def _const(expr: Const) -> str:
    value = expr.value
    if value.is_integer() and value < 1e16:
        return str(int(value))
    return repr(value)  # shortest text that reads back as the same float


def _eps(expr: Eps) -> str:
    return "eps"


def _param(expr: Param) -> str:
    return expr.name


def _hole(expr: Hole) -> str:
    return expr.name


def _neg(expr: Neg) -> str:
    operand = expr.operand
    return "-" + _wrap(to_text(operand), precedence(operand) < _NEG_PRECEDENCE)


def _binop(expr: BinOp) -> str:
    own = _BINARY_PRECEDENCE[expr.op]
    if expr.op == "**":  # right-associative; the exponent may be a bare unary minus (x**-2), as in Python
        left = _wrap(to_text(expr.left), precedence(expr.left) <= own)
        right = _wrap(to_text(expr.right), precedence(expr.right) < _NEG_PRECEDENCE)
        return f"{left}**{right}"
    left = _wrap(to_text(expr.left), precedence(expr.left) < own)
    right = _wrap(to_text(expr.right), precedence(expr.right) <= own)  # a - (b - c) keeps its parentheses
    return f"{left} {expr.op} {right}"


def _call(expr: Call) -> str:
    return f"{expr.name}({', '.join(to_text(arg) for arg in expr.args)})"


_PRINTERS = {Var: _var, Const: _const, Eps: _eps, Param: _param, Hole: _hole, Neg: _neg, BinOp: _binop, Call: _call}


def to_text(expr: Expr) -> str:
    """Return the canonical infix text of an expression; `parse(to_text(e)) == e` for every candidate `e`."""
    try:
        printer = _PRINTERS[type(expr)]
    except KeyError:
        raise TypeError(f"no printer for node type {type(expr).__name__}; add one to printer._PRINTERS") from None
    return printer(expr)
