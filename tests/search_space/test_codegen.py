"""Exported module source computes the same function as `Expr.to_module`, and holds only generated code."""

from __future__ import annotations

import importlib.util
import random
from pathlib import Path

import pytest
import torch

from search_space import Space, parse
from search_space.codegen import to_torch_source
from search_space.operators import OPERATORS


def _load(source: str, tmp_path: Path, name: str = "exported"):
    path = tmp_path / f"{name}.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _agree(text: str, tmp_path: Path) -> None:
    expr = parse(text)
    exported = _load(to_torch_source(expr), tmp_path).Activation()
    reference = expr.to_module()
    with torch.no_grad():
        for param in reference.parameters():
            param.fill_(0.7)  # non-default values: the names must line up, not just the initial 1.0
        for param in exported.parameters():
            param.fill_(0.7)
    x = torch.linspace(-4, 4, 101, dtype=torch.float64)
    torch.testing.assert_close(exported.double()(x), reference.double()(x), equal_nan=True)


@pytest.mark.parametrize(
    "text",
    ["x * sigmoid(beta * x)", "max(x, 0)", "-min(-x, 0)", "x / (sinc(x) + eps)", "beta1 * x + beta1 * tanh(x)",
     "log(abs(x) + eps) ** 2", "exp(-beta * (x - sin(x)) ** 2)", "min(0, x) + softplus(erf(x))"],
)
def test_exported_module_matches_to_module(text: str, tmp_path: Path) -> None:
    _agree(text, tmp_path)


def test_every_paper_operator_exports_correctly(tmp_path: Path) -> None:
    space = Space(units=1, ops="paper")
    unary = len(space.ops.unary)
    for i in range(len(space.ops.binary)):
        _agree(str(space.decode([0, i % unary, 0, (3 * i + 5) % unary, i])), tmp_path)
    for i in range(unary):
        _agree(str(space.decode([0, i, 0, 0, 0])), tmp_path)
    assert len(OPERATORS) >= 35


def test_learned_betas_become_initial_values_and_unknown_names_are_refused(tmp_path: Path) -> None:
    source = to_torch_source(parse("x * sigmoid(beta * x)"), class_name="Swish", betas={"beta_0": 1.702})
    module = _load(source, tmp_path, "swish").Swish()
    assert module.beta_0.item() == pytest.approx(1.702)
    with pytest.raises(ValueError, match="beta_7"):
        to_torch_source(parse("x"), betas={"beta_7": 1.0})
    with pytest.raises(ValueError, match="identifier"):
        to_torch_source(parse("x"), class_name="bad name; import os")


def test_exported_source_imports_only_math_and_torch() -> None:
    rng = random.Random(0)
    space = Space(units=2, ops="paper")
    for _ in range(50):
        source = to_torch_source(space.sample(rng))
        imports = [line for line in source.splitlines() if line.startswith(("import", "from"))]
        assert imports == ["import math  # noqa: F401  (used by some expressions)", "import torch",
                           "from torch import nn"]
        compile(source, "<exported>", "exec")  # valid Python, never executed here
