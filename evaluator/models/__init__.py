"""Child models: one registry row per model, each using the candidate activation in every hidden layer.

>>> import torch
>>> from evaluator.models import build_model
>>> net = build_model("resnet8_1d", "x * sigmoid(beta * x)", input_shape=(40,), num_classes=10)
>>> net(torch.randn(4, 40)).shape
torch.Size([4, 10])
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from evaluator.models.init import INIT_SCHEMES, activation_gain, initialise
from evaluator.models.layers import ActivationFactory, HiddenActivation
from evaluator.models.packed import packed_mlp, packed_resnet1d, packed_resnet8_1d
from evaluator.models.resnet import ResNet, WideResNet
from evaluator.models.small import MLP, DenseNet, SmallCNN
from evaluator.models.standardise import ACT_NORMS, standardised_factory
from search_space.registry import unknown_name

__all__ = [
    "ACT_NORMS", "INIT_SCHEMES", "MODELS", "ActivationFactory", "HiddenActivation", "ModelSpec", "PackedForm",
    "activation_factory", "activation_gain", "build_from_factory", "build_model", "check_input", "check_model",
    "initialise",
]


# packed(factories, gains, input_shape, num_classes) -> a module holding one slot per factory that maps
# (K, B, *input_shape) to (K, B, classes), or None for inputs the packed form does not take.
PackedForm = Callable[[list, list[float], tuple[int, ...], int], "nn.Module | None"]


@dataclass(frozen=True)
class ModelSpec:
    """A registry row: the model class, its fixed arguments, the input it accepts and its packed form, if any."""

    name: str
    cls: Callable[..., nn.Module]
    fixed: dict[str, Any] = field(default_factory=dict)  # arguments that define this row (blocks, dims)
    input: str = "any"  # "any": vectors, sequences or images; "image": (C, H, W) only
    description: str = ""
    packed: PackedForm | None = None  # stacked weights for K slots (evaluator.models.packed); None: K plain modules

    def options(self) -> list[str]:
        """Names of the arguments a user may set through build_model(**options)."""
        params = inspect.signature(self.cls).parameters
        return [p for p in params if p not in {"act", "in_channels", "in_features", "num_classes", *self.fixed}]


def _rows() -> list[ModelSpec]:
    rows = [
        ModelSpec("mlp", MLP, {}, "any", "MLP, hidden widths 100-100 (option hidden)", packed_mlp),
        ModelSpec("resnet8_1d", ResNet, {"blocks": 1, "dims": 1}, "any",
                  "1-D ResNet-8 with BatchNorm, 16/32/64 channels: the default search proxy", packed_resnet8_1d),
        ModelSpec("cnn", SmallCNN, {"dims": 2}, "image", "small CNN, 32/32/64/64 channels (digits, mnist5k)"),
        ModelSpec("cnn_1d", SmallCNN, {"dims": 1}, "any", "small CNN on sequences"),
    ]
    for depth in (20, 32, 56):
        blocks = (depth - 2) // 6
        rows.append(ModelSpec(f"resnet{depth}", ResNet, {"blocks": blocks, "dims": 2}, "image",
                              f"CIFAR ResNet-{depth} (the paper's child is ResNet-20)"))
        rows.append(ModelSpec(f"resnet{depth}_1d", ResNet, {"blocks": blocks, "dims": 1}, "any",
                              f"1-D ResNet-{depth} for sequence tasks", packed_resnet1d(blocks)))
    rows += [
        ModelSpec("wrn", WideResNet, {"dims": 2}, "image", "Wide ResNet, options depth (6n+4, 16) and width (4)"),
        ModelSpec("wrn_1d", WideResNet, {"dims": 1}, "any", "1-D Wide ResNet, options depth and width"),
        ModelSpec("densenet", DenseNet, {"dims": 2}, "image", "small DenseNet, options growth (12), layers_per_block"),
        ModelSpec("densenet_1d", DenseNet, {"dims": 1}, "any", "1-D small DenseNet"),
    ]
    return rows


MODELS: dict[str, ModelSpec] = {row.name: row for row in _rows()}


def activation_factory(spec: Any) -> ActivationFactory:
    """Return channels -> fresh activation module for a known name, expression text, Expr or zero-arg callable.

    Builds the activation once up front, so a bad expression raises ValueError here rather than deep in a model.
    """
    from search_space import Expr, known, make_activation, parse

    if isinstance(spec, str) and spec not in known.names():
        try:
            spec = parse(spec)  # parse once, not once per layer
        except ValueError:
            pass  # make_activation below raises the teaching error (with a "did you mean" for names)
    make_activation(spec)
    if isinstance(spec, Expr):
        return lambda channels: spec.to_module(channels=channels)
    return lambda channels: make_activation(spec, channels=channels)


def check_input(name: str, input_shape: tuple[int, ...]) -> None:
    """Raise ValueError when model `name` cannot take examples of this shape (an image model on sequences)."""
    if name not in MODELS:
        raise unknown_name("model", name, MODELS)
    if MODELS[name].input == "image" and len(input_shape) != 3:
        raise ValueError(f"model {name!r} needs image input (C, H, W) but the task gives shape {tuple(input_shape)}; "
                         f"use a 1-D model such as {name}_1d, resnet8_1d or mlp")


def build_model(name: str, activation: Any, input_shape: tuple[int, ...], num_classes: int, init: str = "auto",
                act_norm: str = "standardize", **options: Any) -> nn.Module:
    """Return child model `name` with `activation` in every hidden layer, initialised by `init` (auto|he|default).

    activation: a known name, an expression text, an Expr or a zero-arg callable returning a module.
    act_norm: `standardize` shifts and scales the activation's output to mean 0 and sd 1 under N(0, 1) inputs
    (`evaluator.models.standardise`: then a positive output scale or an offset does not change the score), `none`.
    input_shape: one example's shape, e.g. (40,) for MNIST-1D or (3, 32, 32) for CIFAR.
    options: model-specific arguments (e.g. depth=28, width=10 for wrn); ValueError lists the valid ones.
    """
    if act_norm not in ACT_NORMS:
        raise ValueError(f"unknown act_norm {act_norm!r}; choose one of: {', '.join(ACT_NORMS)}")
    check_model(name, input_shape, init, options)
    factory = activation_factory(activation)
    if act_norm == "standardize":
        factory = standardised_factory(factory)
    return build_from_factory(name, factory, input_shape, num_classes, init, **options)


def check_model(name: str, input_shape: tuple[int, ...], init: str = "auto", options: dict | None = None) -> None:
    """Raise ValueError for an unknown model, init or option, or an input shape the model cannot take."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; choose one of: {', '.join(MODELS)}")
    if init not in INIT_SCHEMES:
        raise ValueError(f"unknown init {init!r}; choose one of: {', '.join(INIT_SCHEMES)}")
    unknown = sorted(set(options or {}) - set(MODELS[name].options()))
    if unknown:
        raise ValueError(f"model {name!r} has no option {', '.join(unknown)}; its options: "
                         f"{MODELS[name].options() or 'none'}")
    check_input(name, tuple(input_shape))


def build_from_factory(name: str, factory: ActivationFactory, input_shape: tuple[int, ...], num_classes: int,
                       init: str = "auto", **options: Any) -> nn.Module:
    """Return child model `name` with `factory`'s modules in every hidden layer (checked by `check_model`).

    The weights are drawn from torch's global generator: seed it (or fork it) first for a reproducible model.
    """
    spec, input_shape = MODELS[name], tuple(input_shape)
    if spec.cls is MLP:
        net = MLP(factory, in_features=math.prod(input_shape), num_classes=num_classes, **options)
    else:
        channels = input_shape[0] if len(input_shape) >= 2 else 1
        net = spec.cls(factory, in_channels=channels, num_classes=num_classes, **spec.fixed, **options)
    gain = activation_gain(factory(None)) if init == "auto" else None
    initialise(net, init, gain)
    return net
