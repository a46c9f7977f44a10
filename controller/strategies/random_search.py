"""`random`: every token drawn uniformly from its position's vocabulary; the reference every strategy must beat."""

from __future__ import annotations

import random
from typing import Any

from controller.strategies.base import Strategy
from search_space import Space

__all__ = ["RandomSearch"]


class RandomSearch(Strategy):
    """Uniform sampling over token sequences; learns nothing from results.

    >>> from search_space import Space
    >>> strategy = RandomSearch(Space(units=1, ops="small"), seed=0)
    >>> proposal = strategy.ask()
    >>> strategy.tell(proposal.trial_id, "ok", 0.9)
    >>> len(proposal.tokens)
    5
    """

    name = "random"

    def __init__(self, space: Space, seed: int = 0) -> None:
        super().__init__(space, seed)
        self._rng = random.Random(seed)

    def _propose(self, trial_id: int) -> list[int]:
        return self.space.sample_tokens(self._rng)

    def _observe(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        pass

    def _extra_state(self) -> dict[str, Any]:
        version, internal, gauss = self._rng.getstate()
        return {"rng": [version, list(internal), gauss]}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        version, internal, gauss = state["rng"]
        self._rng.setstate((version, tuple(internal), gauss))
