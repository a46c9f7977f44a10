"""Known activations: the table, their modules, and their expressions checked against the modules."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from search_space import Expr, known, make_activation, parse

EXPECTED = [
    "relu", "leaky_relu", "prelu", "softplus", "elu", "selu", "gelu", "swish", "silu", "mish", "smelu", "helu",
    "tanh", "sigmoid", "sin", "identity",
]  # fmt: skip


def test_names_are_the_documented_table() -> None:
    assert known.names() == EXPECTED


def _values_and_grads(module: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    y = module(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad


@pytest.mark.parametrize("name", [n for n in EXPECTED if n != "helu"])
def test_each_expression_matches_its_module_in_values_and_gradients(name: str) -> None:
    expr = known.expression(name)
    assert isinstance(expr, Expr)
    reference = known.create(name).double()
    candidate = expr.to_module().double()
    for module in (reference, candidate):  # compare learnable ones at the same, non-initial parameter value
        for param in module.parameters():
            torch.nn.init.constant_(param, 0.6)
    # probe points avoid the kinks, where one-sided derivatives legitimately differ between formulas
    x = torch.linspace(-5, 5, 401, dtype=torch.float64) + 0.00123
    ref_values, ref_grads = _values_and_grads(reference, x)
    values, grads = _values_and_grads(candidate, x)
    torch.testing.assert_close(values, ref_values, rtol=1e-9, atol=1e-12)
    torch.testing.assert_close(grads, ref_grads, rtol=1e-7, atol=1e-9)


def test_swish_module_is_x_sigmoid_beta_x_with_beta_starting_at_1() -> None:
    swish = known.create("swish", channels=4)
    assert swish.beta.shape == (4,) and bool((swish.beta == 1).all())
    x = torch.randn(3, 4, 2)
    torch.testing.assert_close(swish(x), F.silu(x))


def test_smelu_is_zero_quadratic_then_linear() -> None:
    smelu = known.create("smelu")
    x = torch.tensor([-3.0, -1.0, 0.0, 1.0, 3.0])
    assert smelu(x).tolist() == [0.0, 0.0, 0.25, 1.0, 3.0]


def test_helu_forward_is_relu_and_backward_uses_a_shifted_threshold() -> None:
    helu = known.create("helu")
    assert known.expression("helu") is None
    x = torch.tensor([-1.0, -0.03, 0.02, 2.0], requires_grad=True)
    y = helu(x)
    assert y.tolist() == torch.relu(x).tolist()
    (grad,) = torch.autograd.grad(y.sum(), x)
    assert grad.tolist() == [0.0, 1.0, 1.0, 1.0]  # -0.03 > -alpha (0.05): gradient passes although relu is 0


def test_prelu_takes_channels() -> None:
    assert known.create("prelu", channels=8).weight.shape == (8,)


def test_unknown_names_get_a_suggestion() -> None:
    with pytest.raises(ValueError, match="Did you mean 'swish'"):
        known.create("swissh")


def test_make_activation_accepts_every_kind_of_spec() -> None:
    assert isinstance(make_activation("relu"), torch.nn.ReLU)
    assert make_activation("x * sigmoid(beta * x)", channels=3).params["beta_0"].shape == (3,)
    assert make_activation(parse("x**2"))(torch.tensor([3.0])).item() == 9.0
    assert isinstance(make_activation(torch.nn.GELU), torch.nn.GELU)
    with pytest.raises(ValueError, match="Did you mean 'gelu'"):
        make_activation("gleu")
    with pytest.raises(ValueError, match="column 4"):
        make_activation("x**")
    with pytest.raises(TypeError, match="must return a torch.nn.Module"):
        make_activation(lambda: 3)
    with pytest.raises(TypeError, match="activation spec"):
        make_activation(3)  # type: ignore[arg-type]
