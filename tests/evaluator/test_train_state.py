"""A training stopped at a rung and continued from its saved state is the uninterrupted training (the cascade's
promise): same weights, same scores, in any pack, for packed and plain models, Adam and SGD."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from evaluator import TaskData, TrainConfig
from evaluator.train_state import TrainState
from evaluator.training import train_candidates

CANDIDATES = ["x * sigmoid(x)", "tanh(x)", "max(x, 0) + beta * min(x, 0)"]  # the last has a learnable parameter


def _config(**changes) -> TrainConfig:
    return TrainConfig(**{"steps": 24, "seeds": (0, 1), "device": "cpu", "batch_size": 32, **changes})


def _scores(results) -> list:
    return [(r.status, r.per_seed_val_acc, r.test_acc, r.loss) for r in results]


def _continued(candidates, data, model, config, stops, pack_size=None, **train):
    """Train to each stop in turn, each leg from the previous leg's states."""
    states = None
    for stop in stops:
        results = train_candidates(candidates, data, model, dataclasses.replace(config, stop_at=stop), states=states,
                                   keep_states=True, pack_size=pack_size, **train)
        states = [r.train_state for r in results]
    return results


@pytest.mark.parametrize("model, changes", [
    ("resnet8_1d", {}),  # packed
    ("resnet8_1d", {"optimizer": "sgd"}),  # momentum buffers instead of Adam's moments
    ("mlp", {"init": "default"}),  # no packed form: plain slots
])
def test_a_training_continued_from_its_states_is_the_uninterrupted_one(mnist1d_small: TaskData, model: str,
                                                                       changes: dict) -> None:
    config = _config(**changes)
    flat = train_candidates(CANDIDATES, mnist1d_small, model, config)
    legs = _continued(CANDIDATES, mnist1d_small, model, config, stops=(8, 16, 24))
    assert all(r.ok for r in flat), [r.reason for r in flat]
    assert _scores(legs) == _scores(flat)
    assert [r.steps for r in legs] == [24, 24, 24]
    assert [r.grad_norm_init for r in legs] == [r.grad_norm_init for r in flat]  # measured at step 0, carried on


def test_a_state_continues_the_same_in_another_pack(mnist1d_small: TaskData) -> None:
    config = _config(stop_at=10)
    first = train_candidates(CANDIDATES, mnist1d_small, "resnet8_1d", config, keep_states=True)
    states = [r.train_state for r in first]
    together = train_candidates(CANDIDATES, mnist1d_small, "resnet8_1d", _config(), states=states)
    alone = train_candidates(CANDIDATES[1:2], mnist1d_small, "resnet8_1d", _config(), states=states[1:2])
    assert alone[0].per_seed_val_acc == together[1].per_seed_val_acc
    assert alone[0].loss == pytest.approx(together[1].loss, rel=1e-5)  # fused Adam rounds by position in a pack


def test_fresh_and_continued_candidates_share_a_call(mnist1d_small: TaskData) -> None:
    config = _config()
    first = train_candidates(CANDIDATES[:1], mnist1d_small, "resnet8_1d", _config(stop_at=12), keep_states=True)
    mixed = train_candidates(CANDIDATES[:2], mnist1d_small, "resnet8_1d", config, states=[first[0].train_state, None])
    flat = train_candidates(CANDIDATES[:2], mnist1d_small, "resnet8_1d", config)
    assert [r.per_seed_val_acc for r in mixed] == [r.per_seed_val_acc for r in flat]
    assert mixed[0].steps_per_s is not None


def test_states_survive_bytes_and_refuse_anything_else(mnist1d_small: TaskData) -> None:
    result = train_candidates(["tanh(x)"], mnist1d_small, "resnet8_1d", _config(stop_at=6), keep_states=True)[0]
    state = TrainState.from_bytes(result.train_state.to_bytes())
    assert (state.step, state.schedule_steps, state.seeds) == (6, 24, [0, 1])
    assert all(torch.equal(state.slots[0][key], value) for key, value in result.train_state.slots[0].items())
    assert "train_state" not in result.to_dict()
    with pytest.raises(ValueError, match="not a saved training state"):
        TrainState.from_bytes(b"not a state")


def test_a_state_that_does_not_fit_the_training_is_that_candidates_error(mnist1d_small: TaskData) -> None:
    state = train_candidates(["tanh(x)"], mnist1d_small, "resnet8_1d", _config(stop_at=6),
                             keep_states=True)[0].train_state
    other_seeds = train_candidates(["tanh(x)", "sin(x)"], mnist1d_small, "resnet8_1d", _config(seeds=(3, 4)),
                                   states=[state, None])
    assert other_seeds[0].status == "error" and "seeds [0, 1]" in other_seeds[0].reason
    assert other_seeds[1].ok
    already_there = train_candidates(["tanh(x)"], mnist1d_small, "resnet8_1d", _config(stop_at=6), states=[state])
    assert already_there[0].status == "error" and "not before this training's stop 6" in already_there[0].reason


def test_only_ok_candidates_keep_a_state(mnist1d_small: TaskData) -> None:
    results = train_candidates(["tanh(x)", "exp(exp(exp(x)))"], mnist1d_small, "resnet8_1d", _config(stop_at=6),
                               keep_states=True)
    assert results[0].train_state is not None
    assert not results[1].ok and results[1].train_state is None


def test_stop_at_must_lie_inside_the_schedule() -> None:
    with pytest.raises(ValueError, match="stop_at must lie in 1..steps=24"):
        _config(stop_at=25)
    assert _config(stop_at=5).stop == 5 and _config().stop == 24
