"""evaluate / evaluate_many: real (tiny) trainings, every status, determinism, metrics, the result's JSON form."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from evaluator import EvalResult, TrainConfig, evaluate, evaluate_many

FAST = TrainConfig(steps=30, batch_size=32, device="cpu")


def test_known_name_and_expression_train_on_the_default_proxy(mnist1d_small) -> None:
    for candidate in ("relu", "x * sigmoid(beta * x)"):
        result = evaluate(candidate, mnist1d_small, config=FAST)
        assert result.status == "ok", result.reason
        assert result.score == result.val_acc and 0.1 < result.score <= 1.0  # better than chance on 10 classes
        assert result.test_acc is not None and result.loss is not None and result.steps_per_s > 0
        assert result.grad_norm_init > 0 and 0.0 <= result.dead_rate <= 1.0 and result.act_cost > 0
        assert result.device == "cpu" and result.seeds == [0] and result.pred_diff is None


def test_same_seed_gives_the_same_result(mnist1d_small) -> None:
    a = evaluate("swish", mnist1d_small, config=FAST)
    b = evaluate("swish", mnist1d_small, config=FAST)
    assert (a.val_acc, a.test_acc, a.loss, a.grad_norm_init) == (b.val_acc, b.test_acc, b.loss, b.grad_norm_init)


def test_two_seeds_give_spread_and_prediction_difference(xor_data) -> None:
    result = evaluate("tanh", xor_data, config=TrainConfig(steps=150, seeds=(0, 1), device="cpu"))
    assert result.status == "ok" and result.seeds == [0, 1] and len(result.per_seed_val_acc) == 2
    assert result.val_acc_std is not None and 0.0 <= result.pred_diff <= 1.0
    assert result.score > 0.9  # XOR is easy


@pytest.mark.parametrize("candidate", ["exp(exp(x))", "exp(exp(exp(x)))"])
def test_explosive_candidate_ends_nan_or_diverged(mnist1d_small, candidate: str) -> None:
    result = evaluate(candidate, mnist1d_small, config=FAST)
    assert result.status in ("nan", "diverged") and result.reason
    assert result.score is None
    json.dumps(result.to_dict(), allow_nan=False)  # still JSON-safe


def test_diverging_loss_is_reported(xor_data) -> None:
    result = evaluate("relu", xor_data, config=TrainConfig(steps=30, lr=1e4, optimizer="sgd", device="cpu",
                                                           diverge_loss=5.0))
    assert result.status in ("diverged", "nan"), result


class _Broken(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("this activation always fails")


def _raises_when_built() -> nn.Module:
    raise RuntimeError("cannot build this activation")


@pytest.mark.parametrize("candidate", [_Broken, _raises_when_built, "relux", "x +* 2", 42])
def test_failing_candidate_gives_error_with_reason(xor_data, candidate) -> None:
    result = evaluate(candidate, xor_data, config=FAST)
    assert result.status == "error" and result.score is None
    assert result.reason.split(":")[0] in ("RuntimeError", "ValueError", "TypeError")


def test_bad_settings_give_error_results_not_exceptions() -> None:
    assert "unknown task" in evaluate("relu", task="mnist2d").reason
    assert "unknown model" in evaluate("relu", task="xor", model="resnet9", config=FAST).reason
    assert "unknown TrainConfig setting" in evaluate("relu", task="xor", config={"stepz": 3}).reason
    results = evaluate_many(["relu", "tanh"], task="nope")
    assert [r.status for r in results] == ["error", "error"]


def test_time_limit_ends_with_timeout(mnist1d_small) -> None:
    result = evaluate("relu", mnist1d_small, config=TrainConfig(steps=100_000, time_limit_s=0.5, device="cpu"))
    assert result.status == "timeout" and "time limit" in result.reason
    assert result.wall_s < 10


def test_dead_rate_sees_a_dead_activation(xor_data) -> None:
    dead = evaluate(lambda: nn.Threshold(1e9, 0.0), xor_data, config=FAST)  # always 0: no gradient anywhere
    assert dead.status == "ok" and dead.dead_rate == 1.0
    alive = evaluate("tanh", xor_data, config=FAST)
    assert alive.dead_rate == 0.0


def test_evaluate_many_keeps_order_and_isolates_failures(xor_data) -> None:
    results = evaluate_many(["relu", "exp(exp(x))", "relux", "sin"], xor_data, model="mlp", config=FAST)
    assert [r.expression for r in results] == ["relu", "exp(exp(x))", "relux", "sin"]
    assert [r.status for r in results][2] == "error"
    assert results[0].status == results[3].status == "ok"
    assert results[1].status in ("nan", "diverged", "ok")


def test_result_round_trips_through_json(xor_data) -> None:
    result = evaluate("gelu", xor_data, config=TrainConfig(steps=10, seeds=(0, 1), device="cpu"))
    data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
    assert EvalResult.from_dict(data) == result
    with pytest.raises(ValueError, match="unknown EvalResult field"):
        EvalResult.from_dict({**data, "accuracy": 1.0})


def test_train_config_rejects_unknown_and_invalid_settings() -> None:
    with pytest.raises(ValueError, match="unknown TrainConfig setting 'stepz'.*steps, batch_size"):
        TrainConfig.from_dict({"stepz": 3})
    with pytest.raises(ValueError, match="optimizer='lbfgs'.*adam, sgd"):
        TrainConfig(optimizer="lbfgs")
    with pytest.raises(ValueError, match="steps must be a positive integer"):
        TrainConfig(steps=0)
    config = TrainConfig.from_dict({"seeds": [0, 1], "steps": 5})
    assert config.seeds == (0, 1) and TrainConfig.from_dict(config.to_dict()) == config


def test_sgd_constant_schedule_and_he_init_train(xor_data) -> None:
    config = TrainConfig(steps=40, optimizer="sgd", lr=0.05, schedule="constant", init="he", device="cpu")
    assert evaluate("relu", xor_data, config=config).status == "ok"
    assert evaluate("relu", xor_data, config=TrainConfig(steps=10, init="default", device="cpu")).status == "ok"


@pytest.mark.parametrize(("task", "model"), [("digits", "cnn"), ("mnist1d", "mlp"), ("mnist1d", "resnet20_1d")])
def test_other_task_model_pairs_train(task: str, model: str) -> None:
    config = TrainConfig(steps=5, batch_size=16, device="cpu")
    result = evaluate("relu", task, model, config, task_options={"size": 120})
    assert result.status == "ok", result.reason
