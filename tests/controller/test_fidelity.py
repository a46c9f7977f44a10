"""Successive halving over training steps: which result is promoted when, and how a crash is survived."""

from __future__ import annotations

import pytest

from controller.fidelity import Ladder, parse_rungs


def test_a_rung_promotes_its_best_third_best_first() -> None:
    ladder = Ladder(rungs=(50, 150, 300), eta=3)
    for key, score in zip("abcdef", [0.5, 0.9, 0.7, 0.8, 0.6, 0.4]):
        ladder.record(key, 0, score)
    assert ladder.next_promotion() == ("b", 1)  # 6 results: the best 2 (b, d) are due, b first
    ladder.start("b", 1)
    assert ladder.next_promotion() == ("d", 1)
    ladder.start("d", 1)
    assert ladder.next_promotion() is None  # c is third: not in the top third of 6


def test_higher_rungs_promote_first_and_failures_never() -> None:
    ladder = Ladder(rungs=(50, 150, 300), eta=2)
    for key, score in zip("abcd", [0.9, 0.8, None, 0.1]):
        ladder.record(key, 0, score)
    ladder.record("a", 1, 0.95)
    ladder.record("b", 1, None)  # failed at the second rung
    assert ladder.next_promotion() == ("a", 2)  # rung 1 has 2 results, best 1 (a) goes up before rung 0's
    ladder.record("a", 2, 0.97)
    assert ladder.next_promotion() is None  # rung 0: 4 results, best 2 are a and b, both already sent to rung 1
    assert ladder.highest_rung("a") == 2 and ladder.highest_rung("c") == 0 and ladder.highest_rung("z") is None


def test_a_promotion_lost_in_a_crash_is_due_again_and_a_recorded_one_is_not() -> None:
    results = [("a", 0, 0.9), ("b", 0, 0.8), ("c", 0, 0.7), ("d", 0, 0.6), ("e", 0, 0.5), ("f", 0, 0.4),
               ("a", 1, 0.93)]
    before = Ladder(rungs=(50, 150), eta=3)
    for key, rung, score in results:
        before.record(key, rung, score)
    before.start("b", 1)  # in flight when the driver was killed: no row
    rebuilt = Ladder(rungs=(50, 150), eta=3)
    for key, rung, score in results:  # a resume replays the store's rows only
        rebuilt.record(key, rung, score)
    assert before.next_promotion() is None
    assert rebuilt.next_promotion() == ("b", 1)  # trained again, once


def test_bad_rungs_and_eta_are_refused() -> None:
    assert parse_rungs([100, 300, 1000]) == (100, 300, 1000)
    for bad in ([], [300, 100], [0, 100], [100, 100]):
        with pytest.raises(ValueError, match="increasing positive"):
            parse_rungs(bad)
    with pytest.raises(ValueError, match="eta must be at least 2"):
        Ladder(rungs=(10, 20), eta=1)
