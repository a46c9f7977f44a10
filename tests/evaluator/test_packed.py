"""Packed training: a slot computes exactly what a plain network computes, and slots never influence each other."""

from __future__ import annotations

import math
from types import SimpleNamespace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluator.packed import packing_policy, train_packed
from evaluator.packed_layers import PackedMLP, PackedResNet1d, seed_slices
from search_space import make_activation


def _field(result, name: str):
    """A result field, whether results are EvalResult dataclasses or (before the plain evaluator lands) dicts."""
    return result[name] if isinstance(result, dict) else getattr(result, name)


def _factories(specs: list[str]) -> list:
    return [lambda channels, spec=spec: make_activation(spec, channels=channels) for spec in specs]


@pytest.fixture(scope="module")
def data() -> dict[str, torch.Tensor]:
    """MNIST-1D (offline generation, fixed seed); 500 held-out examples keep evaluation quick."""
    from mnist1d.data import get_dataset_args, make_dataset

    d = make_dataset(get_dataset_args())
    x, y = torch.tensor(d["x"], dtype=torch.float32), torch.tensor(d["y"])
    xt, yt = torch.tensor(d["x_test"], dtype=torch.float32), torch.tensor(d["y_test"])
    return {"x_train": x, "y_train": y, "x_val": xt[:500], "y_val": yt[:500], "x_test": xt[500:], "y_test": yt[500:]}


def _plain_resnet_forward(net: PackedResNet1d, k: int, x: torch.Tensor) -> torch.Tensor:
    """Slot k of a packed ResNet recomputed with torch's own conv1d/batch_norm on (B, C, L) tensors."""

    def conv(layer, h):
        taps = layer.kernel
        weight = layer.weight[k].view(taps, -1, layer.weight.shape[-1]).permute(2, 1, 0)  # (C_out, C_in, taps)
        return F.conv1d(h, weight, stride=layer.stride, padding=taps // 2)

    def bn(layer, h):
        return F.batch_norm(h, None, None, layer.weight[k, 0], layer.bias[k, 0], training=True, eps=layer.eps)

    h = net.stem_act.acts[k](bn(net.stem_bn, conv(net.stem, x.unsqueeze(1))))
    for block in net.stages:
        out = bn(block.bn2, conv(block.conv2, block.act1.acts[k](bn(block.bn1, conv(block.conv1, h)))))
        short = h if isinstance(block.shortcut, nn.Identity) else bn(block.shortcut[1], conv(block.shortcut[0], h))
        h = block.act2.acts[k](out + short)
    return h.mean(2) @ net.head.weight[k] + net.head.bias[k, 0]


def test_packed_resnet_slot_equals_plain_network_in_values_and_gradients() -> None:
    torch.manual_seed(0)
    net = PackedResNet1d(_factories(["relu", "x * sigmoid(beta * x)", "tanh"]))
    x = torch.randn(8, 40)
    packed_out = net(x.expand(3, -1, -1))  # (K, B, classes)
    params = [p for p in net.parameters()]
    for k in range(3):
        reference = _plain_resnet_forward(net, k, x)
        torch.testing.assert_close(packed_out[k], reference, rtol=1e-4, atol=1e-5)
        grads = torch.autograd.grad(packed_out[k].square().sum(), params, retain_graph=True, allow_unused=True)
        ref_grads = torch.autograd.grad(reference.square().sum(), params, allow_unused=True)
        for g, ref in zip(grads, ref_grads):
            if ref is not None:  # g also holds zeros for the other slots
                torch.testing.assert_close(g, ref, rtol=1e-3, atol=1e-5)


def test_packed_mlp_slot_equals_plain_network() -> None:
    torch.manual_seed(0)
    net = PackedMLP(_factories(["relu", "sin"]))
    x = torch.randn(16, 40)
    out = net(x.expand(2, -1, -1))
    for k in range(2):
        h = x
        for layer in net.body:
            h = layer.acts[k](h) if hasattr(layer, "acts") else h @ layer.weight[k] + layer.bias[k]
        torch.testing.assert_close(out[k], h)


def test_slot_initialisation_depends_on_its_seed_only() -> None:
    alone, packed = PackedResNet1d(_factories(["relu"])), PackedResNet1d(_factories(["tanh", "relu"]))
    seed_slices(alone, [torch.Generator().manual_seed(7)])
    seed_slices(packed, [torch.Generator().manual_seed(3), torch.Generator().manual_seed(7)])
    torch.testing.assert_close(alone.stages[2].conv2.weight[0], packed.stages[2].conv2.weight[1])


@pytest.mark.parametrize(("model", "steps"), [("resnet8_1d", 60), ("mlp", 300)])
def test_candidate_alone_and_in_pack_reach_the_same_accuracy(data, model: str, steps: int) -> None:
    config = SimpleNamespace(steps=steps, seeds=(0, 1), lr=2e-3)
    alone = train_packed(["relu"], data, model, config)[0]
    in_pack = train_packed(["tanh", "relu", "sin"], data, model, config)[1]
    assert _field(alone, "status") == _field(in_pack, "status") == "ok"
    # Same seed, same initial weights and batch order: only float summation order differs, far below seed noise.
    assert abs(_field(alone, "val_acc") - _field(in_pack, "val_acc")) <= max(0.02, 2 * _field(alone, "val_acc_std"))
    assert _field(alone, "val_acc") > 0.4


def test_nan_candidate_does_not_poison_its_pack(data) -> None:
    config = SimpleNamespace(steps=30, seeds=(0,), lr=2e-3)
    clean = train_packed(["relu", "tanh"], data, "resnet8_1d", config)
    mixed = train_packed(["relu", "exp(exp(x))", "tanh"], data, "resnet8_1d", config)
    assert [_field(r, "status") for r in mixed] == ["ok", "nan", "ok"]
    assert _field(mixed[1], "score") is None
    for before, after in zip(clean, [mixed[0], mixed[2]]):
        assert _field(after, "val_acc") == pytest.approx(_field(before, "val_acc"), abs=0.01)
        assert _field(after, "loss") == pytest.approx(_field(before, "loss"), rel=1e-3)


def test_bad_expression_and_unpackable_model() -> None:
    assert packing_policy("no_such_model", "cpu") == 1
    assert train_packed(["relu"], {}, "no_such_model", SimpleNamespace()) is None
    bad = train_packed(["relu(", "relu"], _tiny_data(), "mlp", SimpleNamespace(steps=3))
    assert _field(bad[0], "status") == "error" and "relu(" in _field(bad[0], "expression")
    assert _field(bad[1], "status") == "ok"


def _tiny_data() -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 40, generator=g), torch.randint(0, 10, (64,), generator=g)
    return {"x_train": x, "y_train": y, "x_val": x, "y_val": y, "x_test": x, "y_test": y}


def test_packed_agrees_with_the_plain_evaluator() -> None:
    """evaluate_many (packed) against evaluate (torch's own layers, the plain loop): same accuracy within seed noise."""
    from evaluator import TrainConfig, evaluate, evaluate_many

    config = TrainConfig(steps=80, seeds=(0, 1), device="cpu")
    plain = evaluate("relu", task="mnist1d", model="resnet8_1d", config=config)
    packed = evaluate_many(["tanh", "relu"], task="mnist1d", model="resnet8_1d", config=config)[1]
    assert plain.status == packed.status == "ok"
    # Different random draws for the initial weights (the plain loop uses torch's global RNG): seed noise, which at
    # 80 steps is a few points; measured gap 0.021.
    assert abs(plain.val_acc - packed.val_acc) <= 0.05


def test_a_pack_past_its_time_limit_stops_and_reports_timeout_with_accuracies(data: dict) -> None:
    config = SimpleNamespace(steps=100_000, seeds=(0,), lr=2e-3, time_limit_s=0.2)
    results = train_packed(["relu", "tanh", "nonsense((x"], data, "mlp", config)
    for result in results[:2]:
        assert _field(result, "status") == "timeout"
        steps_run = int(_field(result, "reason").split("after ")[1].split(" steps")[0])
        assert 1 <= steps_run < 100_000  # it stopped early, not at the end
        assert 0.0 <= _field(result, "val_acc") <= 1.0 and _field(result, "score") is None
    assert _field(results[2], "status") == "error"  # a bad expression is still an error, not a timeout
    untimed = train_packed(["relu"], data, "mlp", SimpleNamespace(steps=5, seeds=(0,), time_limit_s=None))
    assert _field(untimed[0], "status") == "ok"


class _NanFromStep(nn.Module):
    """relu until its `step`-th training call, NaN after: a candidate whose training blows up mid-way."""

    def __init__(self, step: int) -> None:
        super().__init__()
        self.step, self.calls = step, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += self.training
        return torch.relu(x) * (math.nan if self.training and self.calls > self.step else 1.0)


@pytest.mark.parametrize("model", ["mlp", "resnet8_1d"])
def test_slots_dropped_when_they_die_leave_the_others_exactly_as_without_them(data, model: str) -> None:
    """A dead slot is cut out of the model and its optimizer state (it would cost a live slot's time to the end);
    the kept slots' weights and Adam moments are their own rows, so they end as in a pack without it (bit for bit
    here; the tolerance leaves room for a GEMM kernel that rounds differently for another pack size)."""
    config = SimpleNamespace(steps=30, seeds=(0, 1), lr=2e-3)
    clean = train_packed(["relu", "tanh"], data, model, config)
    mixed = train_packed(["relu", lambda: _NanFromStep(12), "tanh", "exp(exp(x))"], data, model, config)
    assert [_field(r, "status") for r in mixed] == ["ok", "nan", "ok", "nan"]
    assert "at step 12" in _field(mixed[1], "reason") and "at step 0" in _field(mixed[3], "reason")
    assert _field(mixed[1], "val_acc") is None and _field(mixed[1], "pred_diff") is None
    for before, after in zip(clean, [mixed[0], mixed[2]]):
        for name in ("val_acc", "test_acc", "pred_diff"):
            assert _field(after, name) == pytest.approx(_field(before, name), abs=0.004)  # two examples of 500
        assert _field(after, "loss") == pytest.approx(_field(before, "loss"), rel=1e-4)
