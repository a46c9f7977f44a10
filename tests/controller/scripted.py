"""A strategy for tests: proposes a fixed list of token sequences and keeps every tell (a user's own strategy)."""

from __future__ import annotations

from typing import Any

from controller.strategies import SearchExhausted, Strategy
from search_space import Space

__all__ = ["Scripted"]


class Scripted(Strategy):
    """A user's own strategy: proposes a fixed list of token sequences and keeps every tell."""

    name = "scripted"

    def __init__(self, space: Space, seed: int = 0, script: list[list[int]] | None = None) -> None:
        super().__init__(space, seed)
        self.script = list(script or [])
        self.told: list[tuple[str, float | None]] = []
        self.duplicates: list[int] = []  # positions in `told` that were told as a known function's result

    def _propose(self, trial_id: int) -> list[int]:
        if not self.script:
            raise SearchExhausted("script done")
        return self.script.pop(0)

    def _observe(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        self.told.append((status, score))

    def _observe_duplicate(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        self.duplicates.append(len(self.told))
        self._observe(trial_id, tokens, status, score)

    def _extra_state(self) -> dict[str, Any]:
        return {}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        pass
