"""The `surrogate` strategy: it proposes what its forest predicts best, never twice, reproducibly, across checkpoints.

Scores here are real functions of the candidate: its standardised value at x = 1 (a feature the forest sees), so a
forest that learns anything ranks candidates by it.
"""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
import torch

from controller.strategies import SearchExhausted, create_strategy
from controller.strategies.surrogate_search import _whole_space
from controller.surrogate import features
from search_space import Space

SPACE = Space(units=1, ops="small")  # 144 sequences: scored whole
TWO_UNITS = Space(units=2, ops="small")  # 82,944 sequences: a random pool per ask
FAST = {"trees": 16, "pool": 40}


def value_at_1(tokens: list[int], space: Space = SPACE) -> float | None:
    """The standardised function's value at x = 1 (clipped to [-5, 5]), or None (a failure) without features."""
    row = features(space.decode(tokens))
    return None if row is None else float(np.clip(row[20], -5.0, 5.0))


def tell_scored(strategy, space: Space, n: int) -> list[list[int]]:
    """Ask and tell `n` candidates scored by `value_at_1`; return their tokens."""
    asked = []
    for _ in range(n):
        proposal = strategy.ask()
        score = value_at_1(proposal.tokens, space)
        strategy.tell(proposal.trial_id, "ok" if score is not None else "error", score)
        asked.append(proposal.tokens)
    return asked


def roundtrip(state: dict) -> dict:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return torch.load(io.BytesIO(buffer.getvalue()), weights_only=True)


def test_proposes_what_its_forest_predicts_best() -> None:
    """With no exploration and no spread bonus, each pick is the forest's best prediction among the functions not
    asked yet, and the picks score far above the space's typical function (the forest learned the score)."""
    scores = {}
    for tokens in np.ndindex(*SPACE.vocab_sizes()):
        score = value_at_1(list(tokens))
        if score is not None:
            scores[SPACE.decode(list(tokens)).fingerprint(affine=True)] = score
    strategy = create_strategy("surrogate", SPACE, seed=0, initial=8, explore=0.0, kappa=0.0, **FAST)
    tell_scored(strategy, SPACE, 8)
    spellings, keys, rows = _whole_space(SPACE)
    picks = []
    for _ in range(10):
        strategy._refit()
        predicted = strategy._acquisition(rows)
        new = [i for i, key in enumerate(keys) if key not in strategy._asked]
        pick = tell_scored(strategy, SPACE, 1)[0]
        assert predicted[keys.index(SPACE.decode(pick).fingerprint(affine=True))] == max(predicted[new])
        picks.append(value_at_1(pick))
    assert np.median(picks) > np.quantile(list(scores.values()), 0.9)


def test_never_proposes_a_function_twice_and_ends_when_all_were_proposed() -> None:
    strategy = create_strategy("surrogate", SPACE, seed=1, initial=4, **FAST)
    asked = []
    with pytest.raises(SearchExhausted):
        for _ in range(200):
            asked.extend(tell_scored(strategy, SPACE, 1))
    keys = [SPACE.decode(tokens).fingerprint(affine=True) for tokens in asked]
    assert len(set(keys)) == len(keys)
    with_features = {SPACE.decode(list(t)).fingerprint(affine=True) for t in np.ndindex(*SPACE.vocab_sizes())
                     if features(SPACE.decode(list(t))) is not None}
    assert set(keys) == with_features  # every function the forest can describe, once


def test_a_big_space_is_searched_from_random_pools_without_repeats_and_reproducibly() -> None:
    def run(seed: int) -> list[list[int]]:
        return tell_scored(create_strategy("surrogate", TWO_UNITS, seed=seed, initial=3, **FAST), TWO_UNITS, 15)

    first = run(0)
    assert len({tuple(tokens) for tokens in first}) == len(first)
    assert first == run(0)
    assert first != run(1)


def test_a_repeat_is_not_learned_as_news_and_a_failure_is_learned_as_a_low_score() -> None:
    strategy = create_strategy("surrogate", SPACE, seed=0, failure_score=0.05, **FAST)
    strategy.add_evaluated([0, 5, 0, 0, 3], "ok", 0.9)
    strategy.add_evaluated([0, 5, 0, 0, 3], "ok", 0.9, duplicate=True)
    strategy.add_evaluated([0, 1, 0, 1, 0], "nan", None)
    assert strategy.state_dict()["extra"]["told"] == [[[0, 5, 0, 0, 3], 0.9], [[0, 1, 0, 1, 0], 0.05]]


def test_a_restored_checkpoint_has_the_same_forest_and_continues_the_same_proposals() -> None:
    original = create_strategy("surrogate", TWO_UNITS, seed=4, initial=3, explore=0.3, **FAST)
    tell_scored(original, TWO_UNITS, 12)
    restored = create_strategy("surrogate", TWO_UNITS, seed=4, initial=3, explore=0.3, **FAST)
    restored.load_state_dict(roundtrip(original.state_dict()))
    rows = np.stack([row for row in (features(TWO_UNITS.sample(random.Random(i))) for i in range(30))
                     if row is not None])
    assert np.array_equal(original._acquisition(rows), restored._acquisition(rows))
    assert tell_scored(original, TWO_UNITS, 8) == tell_scored(restored, TWO_UNITS, 8)
