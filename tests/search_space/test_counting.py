"""Distinct-function counts: the batched exact count agrees with fingerprinting every candidate."""

from __future__ import annotations

import pytest

from search_space import Space
from search_space.counting import count_distinct, distinct_work, estimate_distinct

TINY = ["identity", "neg", "sqrt", "beta", "add", "max"]  # NaNs, constants and ties, 4096 two-unit candidates


def _brute_force(space: Space) -> int:
    return len({expr.fingerprint() for expr in space.enumerate()})


@pytest.mark.parametrize(("units", "ops"), [(1, "small"), (1, TINY), (2, TINY)])
def test_exact_count_equals_fingerprinting_every_candidate(units: int, ops) -> None:
    space = Space(units=units, ops=ops)
    assert count_distinct(space) == _brute_force(space)


def test_reference_counts_of_the_small_and_paper_spaces() -> None:
    assert count_distinct(Space(units=1, ops="small")) == 85
    assert count_distinct(Space(units=1, ops="paper")) == 3989
    assert count_distinct(Space(units=2, ops="small")) == 11981


def test_progress_is_reported_for_two_units() -> None:
    calls: list[tuple[int, int]] = []
    count_distinct(Space(units=2, ops=TINY), progress=lambda done, total: calls.append((done, total)))
    assert calls[-1] == (8, 8)  # one chunk per (binary, first unary) pair


def test_three_units_are_not_counted_exactly() -> None:
    assert distinct_work(Space(units=3, ops="small")) is None
    with pytest.raises(ValueError, match="estimate_distinct"):
        count_distinct(Space(units=3, ops="small"))


def test_sampling_estimate_is_seeded_and_bounded_by_the_truth() -> None:
    space = Space(units=1, ops="small")
    first = estimate_distinct(space, samples=300, seed=1)
    assert first == estimate_distinct(space, samples=300, seed=1)
    assert first.distinct_seen <= 85 <= first.samples
    assert first.distinct_seen <= first.chao1


@pytest.mark.parametrize(("units", "ops"), [(1, "small"), (2, TINY)])
def test_affine_count_equals_affine_fingerprinting_every_candidate(units: int, ops) -> None:
    space = Space(units=units, ops=ops)
    brute = len({expr.fingerprint(affine=True) for expr in space.enumerate()})
    assert count_distinct(space, affine=True) == brute < count_distinct(space)


def test_reference_affine_counts() -> None:
    # Functions equal up to a positive output scale and an offset merge (relu + relu with max(x, max(x, 0)), ...).
    assert count_distinct(Space(units=1, ops="small"), affine=True) == 79
    assert count_distinct(Space(units=1, ops="paper"), affine=True) == 3955
