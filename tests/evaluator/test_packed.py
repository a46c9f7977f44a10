"""Packing and the one training loop: a slot computes what a plain network computes, slots never influence each
other, and a candidate scores the same alone, packed with others and as a retry."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from evaluator import TaskData, TrainConfig, build_model, evaluate, evaluate_many
from evaluator.metrics import dead_rate, slot_dead_rates
from evaluator.models.packed import PackedMLP, PackedResNet1d
from evaluator.models.packed_layers import seed_slices
from evaluator.packing import PlainSlots, build_slots, packing_policy
from evaluator.training import train_candidates
from search_space import make_activation


def _field(result, name: str):
    return getattr(result, name)


def train_packed(candidates, data, model, config):
    """The loop with the fixed pack size (the suite's default), for the older tests below."""
    return train_candidates(candidates, data, model, config)


def _factories(specs: list[str]) -> list:
    return [lambda channels, spec=spec: make_activation(spec, channels=channels) for spec in specs]


@pytest.fixture(scope="module")
def data() -> TaskData:
    """MNIST-1D (offline generation, fixed seed); 500 held-out examples keep evaluation quick."""
    from mnist1d.data import get_dataset_args, make_dataset

    d = make_dataset(get_dataset_args())
    x, y = torch.tensor(d["x"], dtype=torch.float32), torch.tensor(d["y"])
    xt, yt = torch.tensor(d["x_test"], dtype=torch.float32), torch.tensor(d["y_test"])
    return TaskData("mnist1d", x, y, xt[:500], yt[:500], xt[500:], yt[500:], num_classes=10)


def _config(**settings) -> TrainConfig:
    return TrainConfig(**{"device": "cpu", "seeds": (0,), **settings})


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


@pytest.mark.parametrize("blocks", [1, 3])  # the ResNet-8 proxy and the ResNet-20 that validates winners
def test_packed_resnet_slot_equals_plain_network_in_values_and_gradients(blocks: int) -> None:
    torch.manual_seed(0)
    net = PackedResNet1d(_factories(["relu", "x * sigmoid(beta * x)", "tanh"]), blocks=blocks)
    assert len(net.stages) == 3 * blocks
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
                # Nine blocks sum more float32 roundings than three: a looser floor, still far below any bug.
                torch.testing.assert_close(g, ref, rtol=1e-3, atol=1e-5 if blocks == 1 else 1e-4)


def test_the_deeper_1d_resnets_pack_like_the_plain_registry_model() -> None:
    """resnet20_1d and resnet32_1d have packed forms with the plain model's shape: same parameter count per slot."""
    from evaluator.models import MODELS, build_model

    for name, blocks in (("resnet20_1d", 3), ("resnet32_1d", 5)):
        assert packing_policy(name, "cpu") > 1
        packed = MODELS[name].packed(_factories(["relu", "tanh"]), [1.0, 1.0], (40,), 10)
        assert isinstance(packed, PackedResNet1d) and len(packed.stages) == 3 * blocks
        plain = build_model(name, "relu", input_shape=(40,), num_classes=10)
        assert sum(p.numel() for p in packed.parameters()) == 2 * sum(p.numel() for p in plain.parameters())
        assert MODELS[name].packed(_factories(["relu"]), [1.0], (3, 40), 10) is None  # (C, L) input: plain model


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
    config = _config(steps=steps, seeds=(0, 1), lr=2e-3)
    alone = train_packed(["relu"], data, model, config)[0]
    in_pack = train_packed(["tanh", "relu", "sin"], data, model, config)[1]
    assert _field(alone, "status") == _field(in_pack, "status") == "ok"
    # Same seed, same initial weights and batch order: only float summation order differs, far below seed noise.
    assert abs(_field(alone, "val_acc") - _field(in_pack, "val_acc")) <= max(0.02, 2 * _field(alone, "val_acc_std"))
    assert _field(alone, "val_acc") > 0.4


def test_nan_candidate_does_not_poison_its_pack(data) -> None:
    config = _config(steps=30, seeds=(0,), lr=2e-3)
    clean = train_packed(["relu", "tanh"], data, "resnet8_1d", config)
    mixed = train_packed(["relu", "exp(exp(x))", "tanh"], data, "resnet8_1d", config)
    assert [_field(r, "status") for r in mixed] == ["ok", "nan", "ok"]
    assert _field(mixed[1], "score") is None
    for before, after in zip(clean, [mixed[0], mixed[2]]):
        assert _field(after, "val_acc") == pytest.approx(_field(before, "val_acc"), abs=0.01)
        assert _field(after, "loss") == pytest.approx(_field(before, "loss"), rel=1e-3)


def test_bad_expression_and_unknown_model() -> None:
    assert packing_policy("no_such_model", "cpu") == 1 and packing_policy("wrn", "cpu") == 1
    with pytest.raises(ValueError, match="unknown model 'no_such_model'"):
        train_packed(["relu"], _tiny_data(), "no_such_model", _config())
    bad = train_packed(["relu(", "relu"], _tiny_data(), "mlp", _config(steps=3))
    assert _field(bad[0], "status") == "error" and "relu(" in _field(bad[0], "expression")
    assert _field(bad[1], "status") == "ok"


def _tiny_data() -> TaskData:
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 40, generator=g), torch.randint(0, 10, (64,), generator=g)
    return TaskData("tiny", x, y, x, y, x, y, num_classes=10)


SCORES = ("status", "score", "val_acc", "val_acc_std", "test_acc", "per_seed_val_acc", "val_acc_at", "pred_diff",
          "dead_rate", "seeds")


@pytest.mark.parametrize("model", ["resnet8_1d", "mlp", "cnn_1d"])
def test_a_candidate_scores_the_same_alone_packed_with_others_and_retried(data, model: str) -> None:
    """One loop for every path: `evaluate` (a pack of the candidate's seeds), `evaluate_many` with other candidates
    (the pack the run loop sends) and a retry after a worker died (alone again) give the same scores, bit for bit.

    The reported training loss may differ in its last float digits between packs: fused Adam rounds a stacked
    tensor's vectorised body and its tail differently, and where a slot's rows fall in that tensor depends on the
    pack; it stays within 1e-6."""
    config = _config(steps=40, seeds=(0, 1), eval_steps=(20,))
    alone = evaluate("x * sigmoid(beta * x)", data, model, config)
    packed = evaluate_many(["relu", "x * sigmoid(beta * x)", "tanh(x) * x", "exp(exp(x))"], data, model, config)[1]
    retried = evaluate_many(["x * sigmoid(beta * x)"], data, model, config)[0]
    assert alone.status == "ok"
    for other in (packed, retried):
        assert {name: getattr(other, name) for name in SCORES} == {name: getattr(alone, name) for name in SCORES}
        assert other.loss == pytest.approx(alone.loss, rel=1e-6)


@pytest.mark.parametrize("model", ["resnet8_1d", "mlp", "cnn_1d"])
def test_every_result_carries_every_metric(data, model: str) -> None:
    results = evaluate_many(["relu", "tanh"], data, model, _config(steps=5, seeds=(0, 1)))
    for result in results:
        assert result.status == "ok"
        assert 0.0 <= result.dead_rate <= 1.0 and 0.0 <= result.pred_diff <= 1.0 and result.act_cost > 0
        assert result.grad_norm_init > 0 and result.steps_per_s > 0


def test_a_packed_slots_dead_rate_is_the_plain_models_on_the_same_weights() -> None:
    """Slot k of a packed MLP against the registry's plain MLP holding slot k's weights; a few units are pushed dead
    (a large negative bias under relu) so that the count is not trivially zero."""
    factories = _factories(["relu", "tanh", "relu"])
    config = TrainConfig(device="cpu")
    net = build_slots("mlp", factories, [0, 1, 2], (40,), 10, config)
    with torch.no_grad():
        net.body[0].bias[:, :, :7] = -1e3  # 7 of 100 first-layer units never fire
    x = torch.randn(256, 40, generator=torch.Generator().manual_seed(0))
    rates = slot_dead_rates(net, x)
    for k, spec in enumerate(["relu", "tanh", "relu"]):
        plain = build_model("mlp", spec, (40,), 10, act_norm="none")
        linears = [m for m in plain.modules() if isinstance(m, nn.Linear)]
        with torch.no_grad():
            for linear, packed in zip(linears, [m for m in net.body if hasattr(m, "weight")], strict=True):
                linear.weight.copy_(packed.weight[k].T)
                linear.bias.copy_(packed.bias[k, 0])
        assert rates[k] == dead_rate(plain, x)
    assert rates[0] >= 7 / 200  # (tanh saturates there too: its slope at -1000 is exactly 0 in float32)


def test_models_without_a_packed_form_train_as_plain_modules(data) -> None:
    config = _config(steps=3, seeds=(0, 1))
    net = build_slots("cnn_1d", _factories(["relu", "tanh"]), [0, 1], (40,), 10, config)
    assert isinstance(net, PlainSlots) and len(net.nets) == 2
    assert net(data.x_train[:6].expand(2, -1, -1)).shape == (2, 6, 10)
    assert isinstance(build_slots("mlp", _factories(["relu"]), [0], (40,), 10, config, {"hidden": (8,)}), PlainSlots)


def test_a_pack_past_its_time_limit_stops_and_reports_timeout_with_accuracies(data: dict) -> None:
    config = _config(steps=100_000, seeds=(0,), lr=2e-3, time_limit_s=0.2)
    results = train_packed(["relu", "tanh", "nonsense((x"], data, "mlp", config)
    for result in results[:2]:
        assert _field(result, "status") == "timeout"
        steps_run = int(_field(result, "reason").split("after ")[1].split(" steps")[0])
        assert 1 <= steps_run < 100_000  # it stopped early, not at the end
        assert 0.0 <= _field(result, "val_acc") <= 1.0 and _field(result, "score") is None
    assert _field(results[2], "status") == "error"  # a bad expression is still an error, not a timeout
    untimed = train_packed(["relu"], data, "mlp", _config(steps=5, seeds=(0,), time_limit_s=None))
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
    config = _config(steps=30, seeds=(0, 1), lr=2e-3)
    clean = train_packed(["relu", "tanh"], data, model, config)
    mixed = train_packed(["relu", lambda: _NanFromStep(12), "tanh", "exp(exp(x))"], data, model, config)
    assert [_field(r, "status") for r in mixed] == ["ok", "nan", "ok", "nan"]
    assert "at step 12" in _field(mixed[1], "reason") and "at step 0" in _field(mixed[3], "reason")
    assert _field(mixed[1], "val_acc") is None and _field(mixed[1], "pred_diff") is None
    for before, after in zip(clean, [mixed[0], mixed[2]]):
        for name in ("val_acc", "test_acc", "pred_diff"):
            assert _field(after, name) == pytest.approx(_field(before, name), abs=0.004)  # two examples of 500
        assert _field(after, "loss") == pytest.approx(_field(before, "loss"), rel=1e-4)
