"""`evolution`: regularized (aging) evolution, Real et al. (2019), with single-token mutations.

The population is the `population` most recent results (oldest dies first, whatever its score). A child is a
copy of the best of `sample_size` members drawn at random, with one token changed to another value of its
position's vocabulary. Until `population` results are in, candidates are drawn at random. Failures join the
population with the lowest fitness, so they age out like any member but are never chosen as parents while a
scored member is in the sample.
"""

from __future__ import annotations

import random
from collections import deque
from typing import Any

from controller.strategies.base import Strategy
from search_space import Space

__all__ = ["RegularizedEvolution"]


class RegularizedEvolution(Strategy):
    """Aging evolution over token sequences.

    >>> from search_space import Space
    >>> strategy = RegularizedEvolution(Space(units=1, ops="small"), seed=0, population=4, sample_size=2)
    >>> for _ in range(6):
    ...     proposal = strategy.ask()
    ...     strategy.tell(proposal.trial_id, "ok", sum(proposal.tokens) / 20)
    """

    name = "evolution"

    def __init__(self, space: Space, seed: int = 0, population: int = 50, sample_size: int = 10) -> None:
        super().__init__(space, seed)
        if not 1 <= sample_size <= population:
            raise ValueError(f"need 1 <= sample_size <= population, got sample_size={sample_size}, "
                             f"population={population}")
        self.population_size = population
        self.sample_size = sample_size
        self._rng = random.Random(seed)
        self._population: deque[tuple[list[int], float]] = deque(maxlen=population)  # (tokens, fitness)
        self._mutable = [i for i, size in enumerate(self.vocab_sizes) if size > 1]

    def _propose(self, trial_id: int) -> list[int]:
        if len(self._population) < self.population_size or not self._mutable:
            return self.space.sample_tokens(self._rng)
        contestants = self._rng.sample(list(self._population), self.sample_size)
        parent = max(contestants, key=lambda member: member[1])[0]
        child = list(parent)
        position = self._rng.choice(self._mutable)
        choice = self._rng.randrange(self.vocab_sizes[position] - 1)
        child[position] = choice if choice < parent[position] else choice + 1  # any value but the parent's
        return child

    def _observe(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        self._population.append((tokens, score if score is not None else float("-inf")))

    def _extra_state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {
            "rng": [version, list(internal), gauss],
            "population": [[tokens, fitness] for tokens, fitness in self._population],
        }

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
        self._population = deque(((list(t), float(f)) for t, f in state["population"]), maxlen=self.population_size)
