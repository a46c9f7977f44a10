"""Shape properties are checked on functions whose shape is known in closed form."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from search_space.properties import describe


def test_relu_is_monotonic_with_a_kink_and_no_bump() -> None:
    props = describe(torch.relu)
    assert props.monotonic == "increasing"
    assert props.smooth is False
    assert props.bounded_below and not props.bounded_above
    assert (props.slope_neg_inf, props.slope_pos_inf) == (0.0, 1.0)
    assert props.bump_position is None


def test_swish_has_its_negative_bump_near_minus_1_28() -> None:
    props = describe(F.silu)
    assert props.monotonic == "no"
    assert props.smooth is True
    assert props.bump_position == pytest.approx(-1.2785, abs=2e-3)
    assert props.bump_depth == pytest.approx(-0.2785, abs=1e-3)
    assert props.slope_at_0 == pytest.approx(0.5)


def test_sin_is_not_monotonic_and_bounded_without_a_swish_bump() -> None:
    props = describe(torch.sin)
    assert props.monotonic == "no"
    assert props.bounded_below and props.bounded_above
    assert props.bump_position is None


@pytest.mark.parametrize(
    ("fn", "below", "above"),
    [
        (torch.exp, True, False),
        (lambda x: -torch.exp(x), False, True),
        (torch.tanh, True, True),
        (lambda x: x, False, False),
        (lambda x: torch.log(x.abs() + 1e-6), True, False),
    ],
)
def test_bounds_tell_saturation_from_growth(fn, below: bool, above: bool) -> None:
    props = describe(fn)
    assert (props.bounded_below, props.bounded_above) == (below, above)


def test_exp_slope_at_plus_infinity_is_infinite() -> None:
    assert describe(torch.exp).slope_pos_inf == math.inf


def test_modules_are_probed_without_changing_their_dtype() -> None:
    module = torch.nn.PReLU()
    describe(module)
    assert module.weight.dtype == torch.float32
