"""The ask/tell boundary every search strategy implements, and the record of one proposal.

Lifecycle (the same for every strategy, modelled on optuna's samplers and Ray Tune's searchers):

1. ``strategy = create_strategy("rl", space, seed=0)`` builds it over a `search_space.Space`.
2. ``proposal = strategy.ask()`` returns a `Proposal` (trial id, tokens, expression). Many proposals may be in
   flight at once; the trial id is opaque and only keys the later `tell`.
3. ``strategy.tell(proposal.trial_id, status, score)`` reports how it went: status ``"ok"`` with the score
   (validation accuracy, higher is better), or a failure status (``"nan"``, ``"diverged"``, ``"timeout"``,
   ``"error"``, ``"screened"``) with ``score=None``. Results may come back in any order. A proposal whose function
   was already evaluated (the run loop deduplicates functions, not token sequences) is told with ``duplicate=True``
   and the recorded result: it cost nothing, so a strategy may choose not to learn from it as from news.
4. ``strategy.add_evaluated(tokens, status, score)`` reports a result the strategy did not ask for in this process
   (a resumed run re-telling rows recorded after its checkpoint), like Ray Tune's ``add_evaluated_point``.
5. ``state_dict()`` / ``load_state_dict()`` save and restore everything needed to continue the same sequence:
   tensors and plain Python data only, so ``torch.load(..., weights_only=True)`` can read it back.

A strategy knows nothing about workers, Ray or storage. `ask` raises `SearchExhausted` when it has nothing left.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from typing import Any

from search_space import Expr, Space

__all__ = ["FAILURE_STATUSES", "Proposal", "SearchExhausted", "Strategy"]

FAILURE_STATUSES = ("nan", "diverged", "timeout", "error", "screened")


class SearchExhausted(Exception):
    """Raised by `Strategy.ask` when the strategy has no new candidate to propose (e.g. a fully enumerated space)."""


@dataclass(frozen=True)
class Proposal:
    """One candidate a strategy wants scored: an opaque `trial_id`, its token sequence and its expression."""

    trial_id: int
    tokens: list[int]
    expr: Expr


class Strategy(abc.ABC):
    """Base of all search strategies: proposes token sequences of `space` and learns from their scores.

    Subclasses implement `_propose` (tokens for a new trial id), `_observe` (a finished result) and the
    `_extra_state` / `_load_extra_state` pair; the base keeps trial ids and the in-flight table.
    """

    name = "base"

    def __init__(self, space: Space, seed: int = 0) -> None:
        if not isinstance(space, Space):
            raise TypeError(f"space must be a search_space.Space, got {type(space).__name__}")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise ValueError(f"seed must be an int, got {seed!r}")
        self.space = space
        self.seed = seed
        self.vocab_sizes = space.vocab_sizes()
        self._next_trial_id = 0
        self._pending: dict[int, list[int]] = {}  # trial id -> tokens, asked and not yet told

    # ----- the public boundary -----
    def ask(self) -> Proposal:
        """Return the next candidate to evaluate; raises `SearchExhausted` when there is none left."""
        trial_id = self._next_trial_id
        tokens = [int(token) for token in self._propose(trial_id)]
        self._next_trial_id += 1
        self._pending[trial_id] = tokens
        return Proposal(trial_id, tokens, self.space.decode(tokens))

    def tell(self, trial_id: int, status: str, score: float | None, *, duplicate: bool = False) -> None:
        """Record the result of an asked trial: status "ok" with its score, or a failure status with None;
        `duplicate` when the function was evaluated before and this is its recorded result."""
        if trial_id not in self._pending:
            raise ValueError(
                f"trial {trial_id} is not in flight for this {self.name!r} strategy (in flight: "
                f"{sorted(self._pending)[:10]}); tell each asked trial once, or use add_evaluated for other results"
            )
        _check_result(status, score)
        tokens = self._pending.pop(trial_id)
        self._dispatch(trial_id, tokens, status, score, duplicate)

    def add_evaluated(self, tokens: list[int], status: str, score: float | None, trial_id: int | None = None, *,
                      duplicate: bool = False) -> None:
        """Record a result this strategy did not ask for (e.g. replayed from a run store after a checkpoint)."""
        _check_result(status, score)
        tokens = [int(token) for token in tokens]
        self.space.decode(tokens)  # ValueError for tokens outside the space
        if trial_id is None:
            trial_id = self._next_trial_id
        self._next_trial_id = max(self._next_trial_id, trial_id + 1)  # new trial ids never collide with old rows
        self._dispatch(trial_id, tokens, status, score, duplicate)

    def _dispatch(self, trial_id: int, tokens: list[int], status: str, score: float | None, duplicate: bool) -> None:
        if duplicate:
            self._observe_duplicate(trial_id, tokens, status, score)
        else:
            self._observe(trial_id, tokens, status, score)

    def is_pending(self, trial_id: int) -> bool:
        """Return whether `trial_id` was asked and not yet told."""
        return trial_id in self._pending

    @property
    def pending(self) -> dict[int, list[int]]:
        """Return a copy of the in-flight trials: trial id -> tokens."""
        return dict(self._pending)

    def state_dict(self) -> dict[str, Any]:
        """Return the strategy's full state: tensors and plain Python data only."""
        return {
            "name": self.name,
            "seed": self.seed,
            "vocab_sizes": list(self.vocab_sizes),
            "next_trial_id": self._next_trial_id,
            "pending": [[trial_id, tokens] for trial_id, tokens in self._pending.items()],
            "extra": self._extra_state(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a state from `state_dict`; ValueError when it belongs to another strategy or space."""
        if state.get("name") != self.name:
            raise ValueError(f"this checkpoint is for strategy {state.get('name')!r}, not {self.name!r}")
        if list(state.get("vocab_sizes", [])) != list(self.vocab_sizes):
            raise ValueError(
                f"this checkpoint is for a space with vocabularies {state.get('vocab_sizes')}, "
                f"not {self.vocab_sizes} ({self.space!r})"
            )
        self._next_trial_id = int(state["next_trial_id"])
        self._pending = {int(trial_id): [int(t) for t in tokens] for trial_id, tokens in state["pending"]}
        self._load_extra_state(state["extra"])

    # ----- what subclasses provide -----
    @abc.abstractmethod
    def _propose(self, trial_id: int) -> list[int]:
        """Return the tokens of a new trial (raise `SearchExhausted` when there is nothing left)."""

    @abc.abstractmethod
    def _observe(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        """Learn from one finished result (score is None unless status is "ok")."""

    def _observe_duplicate(self, trial_id: int, tokens: list[int], status: str, score: float | None) -> None:
        """Learn from a proposal whose function was already evaluated (its recorded result); by default as from
        any result, which is right for a strategy that keeps a population or a model of scores."""
        self._observe(trial_id, tokens, status, score)

    @abc.abstractmethod
    def _extra_state(self) -> dict[str, Any]:
        """Return the subclass's state (tensors and plain data)."""

    @abc.abstractmethod
    def _load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what `_extra_state` returned."""


def _check_result(status: str, score: float | None) -> None:
    if status == "ok":
        if score is None:
            raise ValueError("status 'ok' needs a score (the validation accuracy), got None")
    elif status in FAILURE_STATUSES:
        if score is not None:
            raise ValueError(f"a failed evaluation (status {status!r}) is told with score=None, got {score!r}")
    else:
        raise ValueError(f"unknown status {status!r}; expected 'ok' or one of {', '.join(FAILURE_STATUSES)}")
