"""The surrogate pre-screen: features of the standardised function, online fitting, skip and explore decisions."""

from __future__ import annotations

import random

import numpy as np
import pytest

from controller.surrogate import PreScreen, features
from search_space import Space, parse


def test_features_see_the_function_as_the_network_does() -> None:
    # Standardised outputs: a positive scale and an offset do not change the features; a sign flip does.
    np.testing.assert_allclose(features(parse("2 * max(x, 0) + 1")), features(parse("max(x, 0)")), atol=1e-5)
    assert not np.allclose(features(parse("-max(x, 0)")), features(parse("max(x, 0)")))
    assert features(parse("0 * x")) is None and features(parse("exp(100 * x)")) is None


def _scored(n: int, seed: int = 0) -> list:
    """Paper-space functions with a synthetic score that depends on shape: how close the slope at +4 is to 1."""
    rng, space, rows = random.Random(seed), Space(units=1, ops="paper"), []
    while len(rows) < n:
        expr = space.sample(rng)
        row = features(expr)
        if row is not None:
            rows.append((expr, float(np.exp(-abs(row[-1] - row[33:].std())))))
    return rows


def test_nothing_is_skipped_before_min_rows_and_decisions_follow_the_prediction() -> None:
    screen = PreScreen(min_rows=40, refit_every=10, explore=0.0, seed=1)
    rows = _scored(120)
    for expr, score in rows[:39]:
        assert screen.decide(expr).train and screen.decide(expr).predicted is None
        screen.observe(expr, "ok", score)
    for expr, score in rows[39:80]:
        screen.observe(expr, "ok", score)
    held_out = rows[80:]
    predicted = [screen.predict(expr) for expr, _ in held_out]
    assert np.corrcoef(predicted, [s for _, s in held_out])[0, 1] > 0.5  # it learned the synthetic rule
    for expr, _ in held_out:
        decision = screen.decide(expr)
        assert decision.train == (decision.predicted >= np.quantile(screen._y, 0.5))


def test_explore_share_trains_some_predicted_losers_reproducibly() -> None:
    rows = _scored(200, seed=2)

    def decisions(seed: int, explore: float) -> list[bool]:
        screen = PreScreen(min_rows=30, refit_every=1000, explore=explore, seed=seed)
        for expr, score in rows[:30]:
            screen.observe(expr, "ok", score)
        return [screen.decide(expr) for expr, _ in rows[30:]]

    greedy, exploring = decisions(0, 0.0), decisions(0, 0.5)
    assert [d.train for d in decisions(0, 0.5)] == [d.train for d in exploring]
    threshold = np.quantile([s for _, s in rows[:30]], 0.5)
    losers = [d for d in exploring if d.predicted < threshold]
    explored = sum(d.train for d in losers)
    assert 0.2 * len(losers) < explored < 0.8 * len(losers)
    assert not any(d.train for d in greedy if d.predicted < threshold)


def test_kappa_skips_only_what_is_far_below_and_keeps_the_same_prediction() -> None:
    rows = _scored(160, seed=3)

    def screen(kappa: float) -> PreScreen:
        made = PreScreen(min_rows=60, refit_every=1000, explore=0.0, seed=0, kappa=kappa)
        for expr, score in rows[:60]:
            made.observe(expr, "ok", score)
        return made

    plain, careful = screen(0.0), screen(2.0)
    threshold = np.quantile(plain._y, 0.5)
    plain_decisions = [plain.decide(expr) for expr, _ in rows[60:]]
    careful_decisions = [careful.decide(expr) for expr, _ in rows[60:]]
    for a, b in zip(plain_decisions, careful_decisions, strict=True):
        assert a.predicted == pytest.approx(b.predicted)  # the forest's mean is the mean of its trees
        assert b.train or not a.train  # a margin only ever trains more
    # Some proposals predicted just below the median are trained now, with the spread in the reason ...
    rescued = [b for a, b in zip(plain_decisions, careful_decisions, strict=True) if b.train and not a.train]
    assert rescued and all(d.predicted < threshold and "spread" in d.reason for d in rescued)
    # ... and the clear losers are still skipped.
    assert any(not d.train for d in careful_decisions)
    with pytest.raises(ValueError, match="kappa"):
        PreScreen(kappa=-1.0)


def test_failures_count_as_low_scores_and_bad_settings_are_refused() -> None:
    screen = PreScreen(min_rows=2, refit_every=1, failure_score=0.1)
    screen.observe(parse("max(x, 0)"), "nan", None)
    screen.observe(parse("tanh(x)"), "ok", 0.9)
    assert screen._y == [0.1, 0.9]
    with pytest.raises(ValueError, match="skip_quantile"):
        PreScreen(skip_quantile=1.5)
