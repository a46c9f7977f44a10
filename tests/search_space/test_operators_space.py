"""The operator registry, op sets and the core-unit space: sizes, order, sampling, encoding and decoding."""

from __future__ import annotations

import random

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from search_space import OP_SETS, OPERATORS, Space, op_set, parse, register_operator
from search_space.expr import X, call

PAPER_UNARY_FORMS = [
    "x", "-x", "abs(x)", "x**2", "x**3", "sqrt(x)", "beta * x", "x + beta", "log(abs(x) + eps)", "exp(x)", "sin(x)",
    "cos(x)", "sinh(x)", "cosh(x)", "tanh(x)", "asinh(x)", "atan(x)", "sinc(x)", "max(x, 0)", "min(x, 0)",
    "sigmoid(x)", "softplus(x)", "exp(-x**2)", "erf(x)", "beta",
]  # fmt: skip
PAPER_BINARY_FORMS = [
    "x1 + x2", "x1 * x2", "x1 - x2", "x1 / (x2 + eps)", "max(x1, x2)", "min(x1, x2)", "sigmoid(x1) * x2",
    "exp(-beta * (x1 - x2)**2)", "exp(-beta * abs(x1 - x2))", "x2 + beta * (x1 - x2)",
]  # fmt: skip


def test_paper_op_set_holds_the_papers_operators_in_order() -> None:
    ops = op_set("paper")
    assert [op.form for op in ops.unary] == PAPER_UNARY_FORMS
    assert [op.form for op in ops.binary] == PAPER_BINARY_FORMS


def test_interp_is_the_papers_interpolation_with_one_parameter() -> None:
    interp = OPERATORS["interp"](X, call("sin", X))
    assert interp.num_params == 1
    module = interp.to_module()
    with torch.no_grad():
        module.params["beta_0"].fill_(0.25)
    x = torch.linspace(-2, 2, 9)
    assert torch.allclose(module(x), 0.25 * x + 0.75 * torch.sin(x))


def test_op_sets_from_names_keep_order_and_split_by_arity() -> None:
    ops = op_set(["sin", "add", "identity", "mul"])
    assert [op.name for op in ops.unary] == ["sin", "identity"]
    assert [op.name for op in ops.binary] == ["add", "mul"]
    assert set(OP_SETS) >= {"paper", "small"}


@pytest.mark.parametrize(
    ("spec", "message"),
    [("papr", "Did you mean 'paper'"), (["sigmoid", "ad"], "Did you mean 'add'"), (["sin"], "at least one unary")],
)
def test_bad_op_sets_are_rejected_with_a_hint(spec, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        op_set(spec)


def test_register_operator_makes_a_new_operator_usable_in_a_space() -> None:
    name = "test_swish_unit"
    op = register_operator(name, 1, lambda x: x * call("sigmoid", x), "x * sigmoid(x) in one operator")
    try:
        assert op.form == "x * sigmoid(x)"
        space = Space(units=1, ops=["identity", name, "add"])
        assert str(space.decode([0, 1, 0, 0, 0])) == "x * sigmoid(x) + x"
        with pytest.raises(ValueError, match="already registered"):
            register_operator(name, 1, lambda x: x)
        with pytest.raises(ValueError, match="arity"):
            register_operator("test_ternary", 3, lambda a, b, c: a)
    finally:
        del OPERATORS[name]


@pytest.mark.parametrize(
    ("units", "ops", "size"), [(1, "paper", 6250), (2, "paper", 156_250_000), (3, "small", 36 * 144**3)]
)
def test_size_is_the_closed_form(units: int, ops: str, size: int) -> None:
    space = Space(units=units, ops=ops)
    assert space.size() == size
    product = 1
    for vocab in space.vocab_sizes():
        product *= vocab
    assert product == size


def test_vocab_sizes_follow_the_token_layout() -> None:
    assert Space(units=3, ops="paper").vocab_sizes() == [1, 25, 1, 25, 10, 2, 25, 2, 25, 10, 3, 25, 3, 25, 10]


def test_enumerate_is_lazy_ordered_and_complete() -> None:
    space = Space(units=1, ops="small")
    candidates = list(space.enumerate())
    assert len(candidates) == space.size()
    assert str(candidates[0]) == "x + x"  # tokens (0, 0, 0, 0, 0): add(identity(x), identity(x))
    assert str(candidates[1]) == "x * x"
    assert next(iter(Space(units=3, ops="paper").enumerate())) is not None  # 8.8e12 candidates: must not list them


def test_sampling_is_seeded_and_covers_the_space() -> None:
    space = Space(units=1, ops="small")
    first = [space.sample_tokens(random.Random(7)) for _ in range(2)]
    assert first[0] == first[1]
    rng = random.Random(0)
    seen = {str(space.sample(rng)) for _ in range(3000)}
    assert seen == {str(e) for e in space.enumerate()}  # uniform over 144 sequences: every one shows up


def test_decode_rejects_wrong_tokens_with_the_position() -> None:
    space = Space(units=2, ops="small")
    with pytest.raises(ValueError, match="needs 10 tokens"):
        space.decode([0] * 5)
    with pytest.raises(ValueError, match="token 5 is 2, but position 5 takes 0 to 1"):
        space.decode([0] * 5 + [2, 0, 0, 0, 0])
    with pytest.raises(ValueError, match="token 0 must be an int"):
        space.decode(["a"] + [0] * 9)


def test_decode_wires_units_as_the_paper_does() -> None:
    space = Space(units=2, ops="small")
    # unit 0: sigmoid_mul(scale(x), identity(x)) = swish; unit 1: max(identity(u0), neg(x))
    tokens = [0, 5, 0, 0, 3, 1, 0, 0, 1, 2]
    assert str(space.decode(tokens)) == "max(sigmoid(beta * x) * x, -x)"
    assert space.encode(space.decode(tokens)) == tokens


def test_encode_is_canonical_for_ambiguous_sequences() -> None:
    space = Space(units=2, ops="paper")
    # unit 1 reads only x, so unit 0 is unused: encoding fills it with zeros
    tokens = [0, 10, 0, 11, 3, 0, 10, 0, 11, 1]
    assert space.encode(space.decode(tokens)) == [0, 0, 0, 0, 0, 0, 10, 0, 11, 1]


def test_encode_rejects_expressions_outside_the_space() -> None:
    with pytest.raises(ValueError, match="not a candidate"):
        Space(units=1, ops="small").encode(parse("sin(x) + x"))
    assert parse("sin(x) + x") in Space(units=1, ops="paper")
    assert parse("x") not in Space(units=1, ops="paper")


@pytest.mark.parametrize(("units", "ops"), [(1, "paper"), (2, "paper"), (3, "paper"), (3, "small")])
@settings(max_examples=60, deadline=None)
@given(seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_encode_and_decode_round_trip(units: int, ops: str, seed: int) -> None:
    space = Space(units=units, ops=ops)
    tokens = space.sample_tokens(random.Random(seed))
    expr = space.decode(tokens)
    canonical = space.encode(expr)
    assert space.decode(canonical) == expr  # decode(encode(e)) == e
    assert space.encode(space.decode(canonical)) == canonical  # encode(decode(t)) == t for canonical t
    assert parse(str(expr)) == expr


def test_units_are_validated() -> None:
    with pytest.raises(ValueError, match="units must be an int"):
        Space(units=0)
    with pytest.raises(TypeError, match="random.Random"):
        Space(units=1).sample(0)  # type: ignore[arg-type]
