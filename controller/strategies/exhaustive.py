"""`exhaustive`: every distinct function of the space once, in lexicographic or scattered token order.

Token sequences are visited by index (a mixed-radix counter over the vocabulary sizes, the order of
`Space.enumerate`), and a sequence whose function (fingerprint) was already proposed or reported is skipped, so
each function costs one evaluation. Meant for small spaces (`Space(units=1, ops="small")` has 144 sequences).
`order="scattered"` visits the indices i -> (a * i + b) mod N for a stride a near N / golden ratio, coprime with N:
every index once, and any prefix of the run spread evenly over the space, so a table that is still being computed
is already a fair sample of it (the lexicographic order would give all candidates of the first operators first).
"""

from __future__ import annotations

import math
from typing import Any

from controller.strategies.base import SearchExhausted, Strategy
from search_space import Space

__all__ = ["ORDERS", "Exhaustive"]

ORDERS = ("lexicographic", "scattered")


def _scatter(total: int, seed: int) -> tuple[int, int]:
    """Return (stride, offset) of the scattered order: a stride coprime with `total` near total / golden ratio."""
    stride = max(1, round(total / 1.618033988749895))
    while math.gcd(stride, total) != 1:
        stride += 1
    return stride, (seed * 7919) % total


class Exhaustive(Strategy):
    """Enumerate the space in a fixed order, skipping functions already seen; `ask` raises `SearchExhausted` at the end.

    >>> from search_space import Space
    >>> strategy = Exhaustive(Space(units=1, ops="small"))
    >>> strategy.ask().tokens
    [0, 0, 0, 0, 0]
    """

    name = "exhaustive"

    def __init__(self, space: Space, seed: int = 0, order: str = "lexicographic") -> None:
        super().__init__(space, seed)
        if order not in ORDERS:
            raise ValueError(f"exhaustive order {order!r} is not valid; choose one of: {', '.join(ORDERS)}")
        self.order = order
        self._index = 0  # next position in the visiting order
        self._total = space.size()
        self._seen: set[str] = set()
        self._stride, self._offset = _scatter(self._total, seed) if order == "scattered" else (1, 0)

    def _tokens_at(self, position: int) -> list[int]:
        index = (self._stride * position + self._offset) % self._total
        tokens = []
        for size in reversed(self.vocab_sizes):  # the last position varies fastest, as in itertools.product
            index, token = divmod(index, size)
            tokens.append(token)
        return tokens[::-1]

    def _propose(self, trial_id: int) -> list[int]:
        while self._index < self._total:
            tokens = self._tokens_at(self._index)
            self._index += 1
            code = self.space.decode(tokens).fingerprint()
            if code not in self._seen:
                self._seen.add(code)
                return tokens
        raise SearchExhausted(f"all {self._total} token sequences of {self.space!r} have been proposed")

    def _observe(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        self._seen.add(self.space.decode(tokens).fingerprint())

    def _extra_state(self) -> dict[str, Any]:
        return {"index": self._index, "seen": sorted(self._seen)}

    def _load_extra_state(self, state: dict[str, Any]) -> None:
        self._index = int(state["index"])
        self._seen = set(state["seen"])
