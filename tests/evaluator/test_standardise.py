"""Standardised activations: the score cannot depend on a candidate's positive output scale or offset."""

from __future__ import annotations

import math

import pytest
import torch

from evaluator import TrainConfig, build_model, evaluate_many
from evaluator.models.packed_layers import PackedActivation
from evaluator.models.standardise import Standardised, output_moments, standardise, standardised_factory
from search_space import make_activation


def test_moments_of_relu_match_the_closed_form() -> None:
    mean, std = output_moments(make_activation("max(x, 0)"))
    assert mean == pytest.approx(1 / math.sqrt(2 * math.pi), abs=1e-5)
    assert std == pytest.approx(math.sqrt(0.5 - 1 / (2 * math.pi)), abs=1e-5)


@pytest.mark.parametrize("variant", ["0.5 * max(x, 0)", "2 * max(x, 0)", "3 * max(x, 0) + 1", "max(x, 0) - 2"])
def test_positive_scale_and_offset_give_the_same_standardised_function(variant: str) -> None:
    x = torch.linspace(-5, 5, 1001)
    reference = standardise(make_activation("max(x, 0)"))(x)
    torch.testing.assert_close(standardise(make_activation(variant))(x), reference, rtol=1e-5, atol=1e-5)


def test_a_negative_scale_is_a_different_function() -> None:
    x = torch.linspace(-5, 5, 101)
    flipped = standardise(make_activation("-max(x, 0)"))(x)
    assert not torch.allclose(flipped, standardise(make_activation("max(x, 0)"))(x), atol=1e-2)


def test_undefined_standardisation_leaves_the_activation_as_it_is() -> None:
    constant, overflowing = make_activation("0 * x"), make_activation("exp(100 * x)")
    assert standardise(constant) is constant
    assert standardise(overflowing) is overflowing


def test_learnable_parameters_stay_trainable_and_the_constants_fixed() -> None:
    act = standardised_factory(lambda channels: make_activation("x * sigmoid(beta * x)", channels=channels))(4)
    assert isinstance(act, Standardised)
    names = [name for name, _ in act.named_parameters()]
    assert len(names) == 1 and names[0].startswith("fn.")  # beta, not the mean or the scale
    x = torch.randn(8, 4, 5)
    act(x).sum().backward()
    assert next(act.parameters()).grad is not None


def test_build_model_standardises_every_hidden_activation_and_rejects_unknown_norms() -> None:
    net = build_model("resnet8_1d", "2 * max(x, 0)", input_shape=(40,), num_classes=10, act_norm="standardize")
    assert any(isinstance(m, Standardised) for m in net.modules())
    with pytest.raises(ValueError, match="act_norm 'scaled'.*standardize, none"):
        build_model("resnet8_1d", "relu", input_shape=(40,), num_classes=10, act_norm="scaled")


def test_packed_standardised_slots_compute_what_each_module_computes() -> None:
    specs = ["2 * max(x, 0)", "x * sigmoid(beta * x)", "sin(x) + x"]
    factories = [standardised_factory(lambda c, s=s: make_activation(s, channels=c)) for s in specs]
    site = PackedActivation(factories, channels=16)
    x = torch.randn(3, 32, 40, 16, requires_grad=True)  # (K, B, L, C): large enough for the compiled kernels
    out = site(x)
    reference = torch.stack([act(h.transpose(1, 2)).transpose(1, 2) for act, h in zip(site.acts, x.unbind(0))])
    torch.testing.assert_close(out, reference, rtol=1e-5, atol=1e-5)
    (grad,) = torch.autograd.grad(out.square().sum(), x)
    (ref_grad,) = torch.autograd.grad(reference.square().sum(), x)
    torch.testing.assert_close(grad, ref_grad, rtol=1e-4, atol=1e-4)


def test_default_proxy_scores_scaled_relus_as_relu(mnist1d_small) -> None:
    """The regression the scale-free default exists for: c * relu must score as relu (it scored 0.84/0.935/0.967
    for c = 0.5/1/2 under the old default, 300 steps)."""
    functions = ["0.5 * max(x, 0)", "max(x, 0)", "2 * max(x, 0)"]
    config = TrainConfig(steps=40, seeds=(0,), device="cpu")
    assert config.act_norm == "standardize"
    half, relu, double = (r.score for r in evaluate_many(functions, mnist1d_small, config=config))
    assert abs(half - relu) <= 0.01 and abs(double - relu) <= 0.01
    raw = evaluate_many(functions, mnist1d_small, config=TrainConfig(steps=40, seeds=(0,), device="cpu",
                                                                      act_norm="none"))
    assert max(r.score for r in raw) - min(r.score for r in raw) > 0.02  # what the default removes
