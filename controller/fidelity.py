"""Asynchronous successive halving over training steps (ASHA, Li et al. 2020): train many candidates briefly and
only the promising ones longer.

Rungs are training lengths, e.g. (100, 300, 1000) steps. Every candidate starts on the lowest rung; whenever a worker
is free, the highest rung that has a result in the top 1/eta of its rung that was not promoted yet sends it one
rung up (training continues where it stopped: same run, more steps of the top rung's schedule); only when no
promotion is due does a new candidate start. Nothing waits for a rung to fill, so workers never idle, and the state
is the set of results per rung: a run rebuilds it from its store after a crash, and a promotion that was in flight
is simply due again (never lost, never done twice).

>>> ladder = Ladder(rungs=(100, 300, 1000), eta=3)
>>> for key, score in [("a", 0.90), ("b", 0.80), ("c", 0.70)]:
...     ladder.record(key, 0, score)
>>> ladder.next_promotion()
('a', 1)
>>> ladder.start("a", 1); ladder.next_promotion() is None
True
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["Ladder", "parse_rungs"]


def parse_rungs(rungs: Sequence[int]) -> tuple[int, ...]:
    """Return the rungs as a strictly increasing tuple of positive step counts; ValueError otherwise."""
    values = tuple(int(r) for r in rungs)
    if not values or values[0] < 1 or any(b <= a for a, b in zip(values, values[1:])):
        raise ValueError(f"rungs must be increasing positive step counts, e.g. 100 300 1000; got {list(rungs)}")
    return values


@dataclass
class Ladder:
    """The rungs' results and promotions of one run. Keys are opaque (the run uses fingerprints)."""

    rungs: tuple[int, ...]
    eta: int = 4
    scores: list[dict[str, float | None]] = field(default_factory=list)  # rung -> key -> score (None: failed)
    started: list[set[str]] = field(default_factory=list)  # rung -> keys sent to it (finished or in flight)

    def __post_init__(self) -> None:
        self.rungs = parse_rungs(self.rungs)
        if self.eta < 2:
            raise ValueError(f"eta must be at least 2 (keep the best 1/eta of each rung), got {self.eta}")
        self.scores = self.scores or [{} for _ in self.rungs]
        self.started = self.started or [set() for _ in self.rungs]

    @property
    def top(self) -> int:
        """Index of the highest rung."""
        return len(self.rungs) - 1

    def start(self, key: str, rung: int) -> None:
        """Note that `key` was sent to `rung` (it will not be promoted there again)."""
        self.started[rung].add(key)

    def record(self, key: str, rung: int, score: float | None) -> None:
        """Record the result of `key` on `rung` (None for a failed training, which is never promoted)."""
        self.started[rung].add(key)
        self.scores[rung][key] = score

    def next_promotion(self) -> tuple[str, int] | None:
        """Return (key, rung to train it to) for the most valuable promotion due now, or None.

        Higher rungs first (their candidates are the closest to a final answer); within a rung, the best score.
        A rung with n results promotes its best floor(n / eta).
        """
        for rung in range(self.top - 1, -1, -1):
            finished = [(score, key) for key, score in self.scores[rung].items() if score is not None]
            finished.sort(reverse=True)
            best = finished[: len(self.scores[rung]) // self.eta]
            for _, key in best:
                if key not in self.started[rung + 1]:
                    return key, rung + 1
        return None

    def waiting(self, rung: int, slack: float = 1.5) -> set[str]:
        """Keys whose result on `rung` might still be promoted: not sent up yet and within its best
        ceil(slack * n / eta) results (a rung's cut moves as results come in, so a little beyond today's cut)."""
        if rung >= self.top:
            return set()
        finished = sorted(((score, key) for key, score in self.scores[rung].items() if score is not None),
                          reverse=True)
        best = finished[: math.ceil(slack * len(self.scores[rung]) / self.eta)]
        return {key for _, key in best if key not in self.started[rung + 1]}

    def counts(self) -> list[int]:
        """Results recorded on each rung."""
        return [len(scores) for scores in self.scores]

    def highest_rung(self, key: str) -> int | None:
        """Return the highest rung `key` has a result on, or None."""
        return next((rung for rung in range(self.top, -1, -1) if key in self.scores[rung]), None)
