"""Printing and parsing: canonical text, minimal parentheses, round trips and errors that point at the problem."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from search_space import ParseError, parse
from search_space.expr import BETA, BinOp, Call, Const, Eps, Neg, Param, Var, X, call
from search_space.parser import MAX_DEPTH, MAX_LENGTH

from .strategies import expressions, mutated_expressions


@pytest.mark.parametrize(
    ("text", "canonical"),
    [
        ("x*sigmoid(beta*x)", "x * sigmoid(beta * x)"),
        ("exp(-x**2)", "exp(-x**2)"),
        ("(-x)**2", "(-x)**2"),
        ("-(x**2)", "-x**2"),
        ("x**(-2)", "x**-2"),
        ("(x - beta) - eps", "x - beta - eps"),
        ("x - (beta - eps)", "x - (beta - eps)"),
        ("x / (x * x)", "x / (x * x)"),
        ("(x / x) * x", "x / x * x"),
        ("2**(x**3)", "2**x**3"),
        ("(2**x)**3", "(2**x)**3"),
        ("-(x + 1)", "-(x + 1)"),
        ("x + -x", "x + -x"),
        ("((x))", "x"),
        ("1.50", "1.5"),
        ("3.0", "3"),
        ("1e-6 * x", "1e-06 * x"),
        ("max( x ,0 ) + beta1 * min(x, 0)", "max(x, 0) + beta1 * min(x, 0)"),
    ],
)
def test_printer_gives_canonical_text_with_minimal_parentheses(text: str, canonical: str) -> None:
    assert str(parse(text)) == canonical


def test_parse_builds_the_expected_tree() -> None:
    assert parse("x * sigmoid(beta * x)") == BinOp("*", X, Call("sigmoid", (BinOp("*", BETA, X),)))
    assert parse("-x**2") == Neg(BinOp("**", X, Const(2)))
    assert parse("x - x - x") == BinOp("-", BinOp("-", X, X), X)
    assert parse("2**x**3") == BinOp("**", Const(2), BinOp("**", X, Const(3)))
    assert parse("eps + beta2") == BinOp("+", Eps(), Param("beta2"))


def test_python_operators_build_the_same_trees_as_the_parser() -> None:
    assert X * call("sigmoid", BETA * X) == parse("x * sigmoid(beta * x)")
    assert 1 - BETA == parse("1 - beta")
    assert X * -2 == parse("x * -2")
    assert 2**X / (X + Eps()) == parse("2**x / (x + eps)")


def test_nodes_are_frozen_hashable_and_validated() -> None:
    with pytest.raises(AttributeError):
        X.name = "y"  # type: ignore[misc]
    assert len({parse("x + 1"), parse("x+1"), parse("x + 2")}) == 2
    with pytest.raises(ValueError, match="Neg"):
        Const(-1.0)
    with pytest.raises(ValueError, match="beta1"):
        Param("gamma")
    with pytest.raises(ValueError, match="only variable"):
        Var("y")
    with pytest.raises(ValueError, match="takes 2"):
        Call("max", (X,))
    with pytest.raises(ValueError, match="sigmoid"):
        Call("sigmod", (X,))


def test_size_depth_and_params_count_the_tree() -> None:
    expr = parse("x * sigmoid(beta * x) + beta1 * beta1 + beta")
    assert expr.size == 12
    assert expr.depth == 6  # + + * sigmoid * x
    assert expr.num_params == 3  # two anonymous betas and beta1 once


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("x * sigmod(x)", 4, "did you mean 'sigmoid'"),
        ("x +", 3, "found end of input"),
        ("(x", 2, "expected ')'"),
        ("sin", 0, "write sin(...)"),
        ("x(2)", 1, "not a function"),
        ("beta0", 0, "beta1, beta2"),
        ("2x", 1, "after a complete expression"),
        ("max(x)", 0, "takes 2 argument"),
        ("x $ 2", 2, "unexpected character '$'"),
        ("1e999", 0, "too large"),
        ("", 0, "found end of input"),
        ("x ++ x", 3, "found '+'"),
    ],
)
def test_parse_errors_show_position_and_reason(text: str, position: int, fragment: str) -> None:
    with pytest.raises(ParseError) as info:
        parse(text)
    error = info.value
    assert isinstance(error, ValueError)
    assert error.position == position
    assert fragment in str(error)
    assert str(error).splitlines()[-1] == "  " + " " * position + "^"
    assert "\n" not in error.one_line()


def test_length_and_depth_are_bounded() -> None:
    with pytest.raises(ParseError, match="limit is"):
        parse("x + " * MAX_LENGTH + "x")
    with pytest.raises(ParseError, match="nested deeper"):
        parse("(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))
    with pytest.raises(ParseError, match="deeper than"):
        parse(" + ".join(["x"] * (MAX_DEPTH + 1)))  # a flat chain is still a deep left-leaning tree
    assert parse("-" * (MAX_DEPTH - 1) + "x").depth == MAX_DEPTH


@settings(max_examples=300, deadline=None)
@given(expressions)
def test_print_then_parse_gives_the_same_tree(expr) -> None:
    assert parse(str(expr)) == expr


_ALPHABET = "x beta1 eps sigmoid max ( ) , + - * / ** 0 1 . e 9 abc $ \t".split(" ") + [" "]


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(st.sampled_from(_ALPHABET), max_size=25).map("".join)))
def test_parse_raises_only_parse_error_on_random_text(text: str) -> None:
    try:
        parse(text)
    except ParseError:
        pass


@settings(max_examples=300, deadline=None)
@given(mutated_expressions())
def test_mutated_expressions_parse_or_raise_parse_error_only(text: str) -> None:
    try:
        parse(text)
    except ParseError:
        pass
