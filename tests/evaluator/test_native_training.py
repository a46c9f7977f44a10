"""Training through compiled expression kernels (search_space.native) against training through torch's operators."""

from __future__ import annotations

import shutil

import pytest

from evaluator import TrainConfig, evaluate_many
from search_space import native

pytestmark = pytest.mark.skipif(shutil.which("gcc") is None, reason="no C compiler on this machine")


def test_compiled_kernels_train_like_torchs_program(monkeypatch: pytest.MonkeyPatch, mnist1d_small) -> None:
    """The default proxy's activation sites (128 x 16 x 40 floats) run compiled; the candidates end with the same
    status and the same accuracy up to float rounding as with `ACTSEARCH_NATIVE=0`."""
    calls: list[int] = []
    forward = native.Kernel.forward
    monkeypatch.setattr(native.Kernel, "forward", lambda self, *a, **k: calls.append(1) or forward(self, *a, **k))
    candidates = ["x * sigmoid(beta * x)", "min(sinh(max(beta, -x)), asinh(max(beta, -x)))", "exp(exp(exp(x)))"]
    config = TrainConfig(steps=40, seeds=(0,), device="cpu", num_threads=1)

    compiled = evaluate_many(candidates, mnist1d_small, model="resnet8_1d", config=config)
    assert calls, "no activation ran through a compiled kernel"
    monkeypatch.setenv("ACTSEARCH_NATIVE", "0")
    calls.clear()
    eager = evaluate_many(candidates, mnist1d_small, model="resnet8_1d", config=config)
    assert not calls

    assert [r.status for r in compiled] == [r.status for r in eager] == ["ok", "ok", "nan"]
    for ours, theirs in zip(compiled[:2], eager[:2], strict=True):
        # Measured gap 0.000-0.010 over 16 random candidates at 60 steps (bench/search_candidates.py): rounding.
        assert abs(ours.val_acc - theirs.val_acc) <= 0.03


def test_packed_site_computes_what_each_slot_would(monkeypatch: pytest.MonkeyPatch) -> None:
    """A packed activation site runs all slots' kernels into one output; the values and gradients are bit for bit
    those of each slot's module run on its own (channels-last) slice."""
    import torch

    from evaluator.models.packed_layers import PackedActivation
    from search_space import make_activation

    specs = ["x * sigmoid(beta * x)", "sinc(x) + beta * abs(x)", "max(x, beta) - softplus(x)"]
    site = PackedActivation([lambda c, s=s: make_activation(s, channels=c) for s in specs], channels=16)
    with torch.no_grad():
        for i, param in enumerate(site.parameters()):
            param.uniform_(0.5, 1.5, generator=torch.Generator().manual_seed(i))
    x = torch.randn(3, 128, 40, 16, generator=torch.Generator().manual_seed(0))
    weight = torch.randn(3, 128, 40, 16, generator=torch.Generator().manual_seed(1))

    def run() -> tuple[torch.Tensor, ...]:
        site.zero_grad()
        leaf = x.clone().requires_grad_()
        y = site(leaf)
        (y * weight).sum().backward()
        return (y.detach(), leaf.grad, *[p.grad.clone() for p in site.parameters()])

    calls: list[int] = []
    together = native.run_slices
    monkeypatch.setattr(native, "run_slices", lambda *a, **k: calls.append(1) or together(*a, **k))
    fused = run()
    assert calls
    monkeypatch.setattr(native, "run_slices", lambda *a, **k: None)  # each slot's module on its own slice
    alone = run()
    for a, b in zip(fused, alone, strict=True):
        assert torch.equal(a, b)
