"""Expressions as torch modules, checked against torch's own implementations."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from search_space import parse

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _values_and_grads(module: torch.nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    x = x.detach().clone().requires_grad_(True)
    y = module(x)
    (grad,) = torch.autograd.grad(y.sum(), x)
    return y.detach(), grad


@pytest.mark.parametrize("device", DEVICES)
def test_compiled_silu_expression_matches_torch_silu(device: str) -> None:
    module = torch.compile(parse("x * sigmoid(x)").to_module().to(device), backend="eager", fullgraph=True)
    x = torch.linspace(-8, 8, 257, dtype=torch.float64, device=device)
    values, grads = _values_and_grads(module, x)
    ref_values, ref_grads = _values_and_grads(F.silu, x)
    torch.testing.assert_close(values, ref_values)
    torch.testing.assert_close(grads, ref_grads)


@pytest.mark.parametrize("device", DEVICES)
def test_inductor_compiled_swish_matches_eager_with_parameter_gradients(device: str) -> None:
    if device == "cpu":
        pytest.importorskip("torch._inductor")
    eager = parse("x * sigmoid(beta * x) + max(x, beta1) * beta1").to_module(channels=3).to(device)
    compiled = torch.compile(eager)
    x = torch.randn(4, 3, 5, device=device)
    y_eager, y_compiled = eager(x), compiled(x)
    torch.testing.assert_close(y_compiled, y_eager)
    grads = torch.autograd.grad(y_compiled.square().sum(), list(eager.parameters()))
    ref = torch.autograd.grad(eager(x).square().sum(), list(eager.parameters()))
    for got, want in zip(grads, ref, strict=True):
        torch.testing.assert_close(got, want)


def test_anonymous_betas_are_separate_and_named_betas_shared() -> None:
    module = parse("beta * x + beta * x + beta1 * x + beta1").to_module()
    assert sorted(name for name, _ in module.named_parameters()) == [
        "params.beta1", "params.beta_0", "params.beta_1",
    ]  # fmt: skip
    assert all(bool((p == 1.0).all()) for p in module.parameters())
    assert parse("beta * x + beta * x + beta1 * x + beta1").num_params == 3


def test_per_channel_parameters_broadcast_over_dim_1() -> None:
    module = parse("beta * x").to_module(channels=3)
    with torch.no_grad():
        module.params["beta_0"].copy_(torch.tensor([1.0, 2.0, 3.0]))
    x = torch.ones(2, 3, 4, 4)
    assert module(x)[:, :, 0, 0].tolist() == [[1.0, 2.0, 3.0]] * 2
    assert module(torch.ones(2, 3)).tolist() == [[1.0, 2.0, 3.0]] * 2
    with pytest.raises(ValueError, match=r"\(N, 3, \.\.\.\)"):
        module(torch.ones(2, 4))


def test_output_keeps_input_shape_and_dtype() -> None:
    x = torch.randn(2, 3, dtype=torch.bfloat16)
    assert parse("beta * x").to_module()(x).dtype == torch.bfloat16
    constant = parse("beta + 2").to_module()(torch.zeros(2, 3))
    assert constant.shape == (2, 3) and bool((constant == 3.0).all())
    assert parse("2 - 1").to_module()(torch.zeros(4)).tolist() == [1.0] * 4
    assert parse("x").to_module()(torch.arange(3.0)).tolist() == [0.0, 1.0, 2.0]


def test_numerically_unsafe_inputs_give_nan_or_inf_not_errors() -> None:
    x = torch.tensor([-1.0, 0.0, 1.0])
    assert torch.isnan(parse("sqrt(x)").to_module()(x)[0])
    assert torch.isfinite(parse("log(abs(x) + eps)").to_module()(x)).all()
    assert torch.isfinite(parse("x / (x + eps)").to_module()(x)).all()
    assert parse("0**-1 * x").to_module()(x)[2] == float("inf")  # a constant folded without ZeroDivisionError


def test_sinc_is_the_unnormalised_sin_x_over_x() -> None:
    x = torch.tensor([-2.0, 0.0, 0.5, 3.0], dtype=torch.float64)
    y = parse("sinc(x)").to_module()(x)
    expected = torch.where(x == 0, torch.ones_like(x), torch.sin(x) / x)
    torch.testing.assert_close(y, expected)


def test_channels_is_validated() -> None:
    with pytest.raises(ValueError, match="positive int"):
        parse("x").to_module(channels=0)
