"""Every model trains forwards and backwards with several activations, in every hidden layer; init gains."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from evaluator import MODELS, activation_gain, build_model
from evaluator.models import HiddenActivation, initialise
from evaluator.models.standardise import Standardised

ACTIVATIONS = ["relu", "x * sigmoid(beta * x)", nn.Tanh]
# Small options keep the big validation models quick here; their defaults are exercised by the registry shapes.
OPTIONS = {"wrn": {"depth": 10, "width": 1}, "wrn_1d": {"depth": 10, "width": 1}, "densenet": {"layers_per_block": 2},
           "densenet_1d": {"layers_per_block": 2}}


def _input_shape(name: str) -> tuple[int, ...]:
    return (3, 16, 16) if MODELS[name].input == "image" else (40,)


@pytest.mark.parametrize("activation", ACTIVATIONS, ids=["relu", "swish_beta", "tanh_callable"])
@pytest.mark.parametrize("name", list(MODELS))
def test_forward_backward(name: str, activation) -> None:
    torch.manual_seed(0)
    shape = _input_shape(name)
    net = build_model(name, activation, shape, num_classes=7, **OPTIONS.get(name, {}))
    logits = net(torch.randn(4, *shape))
    assert logits.shape == (4, 7)
    logits.logsumexp(1).sum().backward()
    grads = [p.grad for p in net.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    if isinstance(activation, str) and "beta" in activation:  # the candidate's own parameters train too
        betas = [p for n, p in net.named_parameters() if ".fn." in n]
        assert betas and all(p.grad is not None for p in betas)


@pytest.mark.parametrize("name", list(MODELS))
def test_candidate_is_the_only_nonlinearity(name: str) -> None:
    net = build_model(name, "tanh", _input_shape(name), 10, **OPTIONS.get(name, {}))
    slots = [m for m in net.modules() if isinstance(m, HiddenActivation)]
    # By default each slot holds the candidate standardised (shifted and scaled, evaluator.models.standardise).
    assert slots and all(isinstance(m.fn, Standardised) and isinstance(m.fn.fn, nn.Tanh) for m in slots)
    stray = [m for m in net.modules() if isinstance(m, (nn.ReLU, nn.GELU, nn.SiLU)) and m not in slots]
    assert not stray


def test_one_d_models_take_images_flattened() -> None:
    net = build_model("resnet8_1d", "relu", (1, 8, 8), 10)
    assert net(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_image_model_on_sequences_says_which_model_to_use() -> None:
    with pytest.raises(ValueError, match="needs image input.*resnet20_1d"):
        build_model("resnet20", "relu", (40,), 10)


def test_unknown_model_and_option_list_the_valid_ones() -> None:
    with pytest.raises(ValueError, match="unknown model 'resnet9'.*resnet8_1d"):
        build_model("resnet9", "relu", (40,), 10)
    with pytest.raises(ValueError, match="no option depthh.*depth.*width"):
        build_model("wrn_1d", "relu", (40,), 10, depthh=10)
    with pytest.raises(ValueError, match="6n \\+ 4"):
        build_model("wrn_1d", "relu", (40,), 10, depth=12)


def test_bad_expression_fails_at_build_time() -> None:
    with pytest.raises(ValueError, match="relu"):
        build_model("mlp", "relux", (40,), 10)


def test_resnet_depths_match_their_names() -> None:
    for depth in (20, 32, 56):
        net = build_model(f"resnet{depth}_1d", "relu", (40,), 10)
        convs3 = [m for m in net.modules() if isinstance(m, nn.Conv1d) and m.kernel_size == (3,)]
        assert len(convs3) + 1 == depth  # 3x3 convs plus the classifier; 1x1 shortcuts do not count


@pytest.mark.parametrize(("activation", "expected"), [
    (nn.ReLU, math.sqrt(2.0)),
    ("identity", 1.0),
    ("x", 1.0),
    ("sigmoid", 1.0 / math.sqrt(0.2933)),  # E[sigmoid(z)^2] = 0.2933 for z ~ N(0, 1)
])
def test_auto_gain_preserves_the_second_moment(activation, expected: float) -> None:
    from search_space import make_activation

    assert activation_gain(make_activation(activation)) == pytest.approx(expected, rel=0.01)


def test_auto_gain_is_bounded_for_explosive_candidates() -> None:
    from search_space import make_activation

    assert activation_gain(make_activation("exp(exp(x))")) == 1.0  # E[f^2] overflows: fall back to 1
    assert 0.1 <= activation_gain(make_activation("exp(x)")) <= 10.0


def test_auto_init_keeps_activations_at_unit_scale_in_a_deep_mlp() -> None:
    torch.manual_seed(0)
    x = torch.randn(512, 100)
    for activation in ("relu", "tanh", "x * sigmoid(x)"):
        # The gain of the raw function; a standardised one has gain 1 (and, with no BatchNorm, a 10-layer MLP drifts
        # up to ~3.8 for swish: its variance map has slope ~1 at the fixed point).
        net = build_model("mlp", activation, (100,), 10, hidden=[100] * 10, act_norm="none")
        h = x
        for layer in net.body[1:-1]:
            h = layer(h)
        assert 0.3 < h.pow(2).mean().item() < 3.0, activation


def test_init_schemes() -> None:
    torch.manual_seed(0)
    net = build_model("mlp", "relu", (400,), 10, init="he", hidden=[400])
    hidden = net.body[3].weight.detach()  # the second linear layer: it sees activations
    assert hidden.std().item() == pytest.approx(math.sqrt(2.0 / 400), rel=0.05)
    assert net.body[1].weight.detach().std().item() == pytest.approx(math.sqrt(1.0 / 400), rel=0.05)
    assert float(net.body[3].bias.detach().abs().max()) == 0.0
    with pytest.raises(ValueError, match="auto, he, default"):
        initialise(net, "xavier")
