"""The Swish rules (`search_space.swish_family`): equivalence by a fitted beta, nearness by shape."""

from __future__ import annotations

import pytest

from search_space import known, parse
from search_space.swish_family import swish_match


@pytest.mark.parametrize(
    ("text", "betas"),
    [
        ("x * sigmoid(beta * x)", (1.0, 1.7)),  # the learnable Swish, measured at both fingerprint settings
        ("sigmoid(beta * x) * x", (1.0, 1.7)),  # the 1-unit space's spelling
        ("x * sigmoid(x)", (1.0,)),  # silu: its own fingerprint, still Swish with beta 1
        ("sigmoid(x + x) * x", (2.0,)),
        ("x * sigmoid(0.5 * x)", (0.5,)),
        ("(beta * x) * sigmoid(beta * x)", (1.0, 1.7)),  # a learnable output scale as well
        ("3 * x * sigmoid(x) + 1", (1.0,)),  # a positive scale and an offset, as standardised outputs see it
    ],
)
def test_swish_family_members_are_equivalent_with_their_beta(text: str, betas: tuple[float, ...]) -> None:
    match = swish_match(text)
    assert match.equivalent and match.near, match.reason
    assert match.betas == pytest.approx(betas, rel=1e-5)


def test_silu_differs_from_swish_by_fingerprint_but_both_are_equivalent() -> None:
    swish, silu = parse("x * sigmoid(beta * x)"), parse("x * sigmoid(x)")
    assert swish.fingerprint(affine=True) != silu.fingerprint(affine=True)
    assert swish_match(swish).equivalent and swish_match(silu).equivalent


@pytest.mark.parametrize("name", ["gelu", "mish"])
def test_gelu_and_mish_are_near_but_not_equivalent(name: str) -> None:
    match = swish_match(known.expression(name))
    assert not match.equivalent and match.betas is None
    assert match.near, match.reason


@pytest.mark.parametrize(
    "text",
    [
        "softplus(x) * erf(x)",  # the negative bump of a soft knee (the RL reference run's second best)
        "min(x, 0) * exp(x) + max(x, 0)",  # x * exp(x) on the left: smooth at 0, NaN far right of 1000
        "sigmoid(x) * (x + 1)",
        "2 * (0.5 * x * (1 + erf(0.7071067811865476 * x))) - 5",  # gelu up to scale and offset
    ],
)
def test_other_smooth_dips_are_near(text: str) -> None:
    match = swish_match(text)
    assert match.near and not match.equivalent, match.reason


@pytest.mark.parametrize(
    ("text", "failure"),
    [
        ("max(x, 0)", "no minimum left of 0"),  # relu: its minimum 0 reaches -10
        ("sigmoid(x) * max(x, 0)", "no minimum left of 0"),  # top of the small space, no dip
        ("softplus(x)", "no minimum left of 0"),  # monotonic
        ("max(x, 0) - 0.3 * exp(-abs(x + 1))", "not smooth"),  # a Swish-like dip, with kinks at -1 and 0
        ("max(x, 0) + min(exp(x) - 1, 0)", "no minimum left of 0"),  # elu
        ("tanh(x)", "not linear"),
        ("x", "not flat"),
        ("x**2", "not linear"),
        ("-x * sigmoid(x)", "not linear"),  # Swish upside down
        ("x * sigmoid(-x)", "not linear"),  # Swish mirrored in x
        ("x * sigmoid(x) + sin(x)", "not linear"),  # oscillates on the right
        ("x * sigmoid(0.005 * x)", "not linear"),  # beta below the range: not yet linear at x = 100
        ("exp(exp(x))", "not finite far from 0"),
        ("cos(x) - x", "not linear"),
        ("sinc(x) + x", "not flat"),
        ("softplus(x) - sinc(x)", "not falling to one minimum"),  # a dip, with the ripples of sinc around it
        ("softplus(x) - exp(-x**2)", "not falling to one minimum"),  # a hump of 0.11 on the way down to its dip
    ],
)
def test_functions_that_are_not_swish_say_which_rule_they_fail(text: str, failure: str) -> None:
    match = swish_match(text)
    assert not match.equivalent and not match.near
    assert match.reason.startswith(failure), match.reason


@pytest.mark.parametrize("text", ["x * sigmoid(beta * x)", "softplus(x) * erf(x)", "sigmoid(x) * max(x, 0)"])
def test_the_answer_is_the_same_for_a_positive_scale_and_an_offset(text: str) -> None:
    plain, moved = swish_match(text), swish_match(f"0.25 * ({text}) + 7")
    assert (plain.equivalent, plain.near) == (moved.equivalent, moved.near)


def test_a_dip_too_shallow_for_the_rule_is_not_near() -> None:
    # a sharp softplus with a dip of depth 0.005 at -2 (the rule asks for 0.01 of the right-hand slope 1)
    soft_relu = "softplus(10 * x) / 10"
    assert swish_match(f"{soft_relu} - 0.005 * exp(-(x + 2)**2)").reason == "no dip below the left limit"
    assert swish_match(f"{soft_relu} - 0.05 * exp(-(x + 2)**2)").near


@pytest.mark.parametrize(
    ("text", "flip"),
    [
        ("x * sigmoid(-x)", "mirrored and negated"),  # = -(-x) * sigmoid(-x): Swish mirrored in x and upside down
        ("-x * sigmoid(-x)", "mirrored"),  # Swish mirrored in x: the layer before absorbs it
        ("-x * sigmoid(x)", "negated"),  # Swish upside down: the layer after absorbs it
        ("-(softplus(x) * erf(x))", "negated"),  # a near function, negated
    ],
)
def test_a_swish_mirrored_or_negated_is_swish_up_to_that_flip_and_nothing_more(text: str, flip: str) -> None:
    match = swish_match(text)
    assert not match.equivalent and not match.near and match.flipped == flip
    assert match.reason.endswith(f"Swish-near when {flip}")


@pytest.mark.parametrize("text", ["x * sigmoid(x)", "max(x, 0)", "-max(x, 0)", "x * sigmoid(asinh(x))", "tanh(x)"])
def test_swish_itself_and_functions_no_flip_makes_swish_have_no_flip(text: str) -> None:
    # x * sigmoid(asinh(x)) gates x like Swish but has no dip below its left limit, flipped or not
    assert swish_match(text).flipped is None
