"""The paper's reported top functions: each parses, and its spelling is a candidate of the paper space computing it."""

from __future__ import annotations

import pytest
import torch

from search_space import Space, parse
from search_space.paper_functions import PAPER_FUNCTIONS, paper_function

_REFERENCE = {  # the paper's formulas in torch, independent of the grammar
    "swish": lambda x: x * torch.sigmoid(x),  # beta at its initial value 1
    "max_x_sigmoid": lambda x: torch.maximum(x, torch.sigmoid(x)),
    "cos_minus_x": lambda x: torch.cos(x) - x,
    "min_x_sin": lambda x: torch.minimum(x, torch.sin(x)),
    "atan_squared_minus_x": lambda x: torch.atan(x) ** 2 - x,
    "max_x_tanh": lambda x: torch.maximum(x, torch.tanh(x)),
    "sinc_plus_x": lambda x: torch.sin(x) / x + x,
    "x_asinh_squared": lambda x: x * torch.asinh(x) ** 2,
}


def test_the_table_holds_the_eight_functions_of_the_paper() -> None:
    assert set(PAPER_FUNCTIONS) == set(_REFERENCE)


@pytest.mark.parametrize("name", list(PAPER_FUNCTIONS))
def test_expression_computes_the_papers_formula(name: str) -> None:
    row = PAPER_FUNCTIONS[name]
    x = torch.linspace(-5.0, 5.0, 201, dtype=torch.float64) + 0.0123
    module = row.expr().to_module().double()
    torch.testing.assert_close(module(x), _REFERENCE[name](x))


@pytest.mark.parametrize("name", list(PAPER_FUNCTIONS))
def test_spelling_is_a_candidate_of_the_space_with_the_same_function(name: str) -> None:
    row = PAPER_FUNCTIONS[name]
    spelling, expression = parse(row.spelling), parse(row.expression)
    assert spelling in Space(units=row.units, ops="paper")
    assert spelling.fingerprint(affine=True) == expression.fingerprint(affine=True)
    assert str(parse(str(expression))) == str(expression)  # prints and parses back


def test_two_unit_functions_are_not_one_unit_candidates_as_spelled() -> None:
    two = [row for row in PAPER_FUNCTIONS.values() if row.units == 2]
    assert {row.name for row in two} == {"atan_squared_minus_x", "x_asinh_squared"}
    assert all(parse(row.spelling) not in Space(units=1, ops="paper") for row in two)


def test_unknown_name_lists_the_table() -> None:
    with pytest.raises(ValueError, match="unknown paper function 'swsh'. Did you mean 'swish'"):
        paper_function("swsh")
    assert paper_function("swish") is PAPER_FUNCTIONS["swish"]
