"""Replaying a search strategy against a table (`controller.tabular`) with the run loop's rules, without training.

The rules are those of `controller.loop.RunLoop._next_candidate` and `_record`, with one worker and packs of one
(each proposal is told before the next ask):

- a proposal whose function (fingerprint) was already met in this replay is a duplicate: it costs no evaluation
  and the strategy is told that function's recorded status and score (a failure with score None);
- a function screened out before training costs nothing and is told as ``"screened"`` with score None;
- any other function costs one evaluation and is told its status in the table: ``"ok"`` with its mean validation
  accuracy, or its failure status (``"nan"``, ``"diverged"``, ``"timeout"``, ``"error"``) with score None;
- `ask` raising `SearchExhausted`, or `max_idle` proposals in a row without a new evaluation, ends the replay.

A proposal whose function is not in the table (a table still being computed) is, with ``missing="skip"``, counted
and never told (like a result that never came back); with ``missing="error"`` it raises `KeyError`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from controller.loop import MAX_IDLE_PROPOSALS
from controller.strategies import SearchExhausted, Strategy, create_strategy
from search_space import Space

__all__ = ["MISSING_POLICIES", "ReplayTrace", "TableIndex", "replay"]

MISSING_POLICIES = ("error", "skip")


@dataclass
class ReplayTrace:
    """What one replay did: the score of each evaluation in order, and what the other proposals were."""

    strategy: str
    seed: int
    scores: list[float | None] = field(default_factory=list)  # per evaluation; None for a failure
    fingerprints: list[str] = field(default_factory=list)  # per evaluation
    proposals: int = 0  # every ask, evaluations included
    duplicates: int = 0
    screened: int = 0
    failures: int = 0
    missing: int = 0  # proposals whose function the table does not hold (skipped)
    exhausted: bool = False  # the strategy ran out (or stalled) before the budget

    @property
    def evaluations(self) -> int:
        """Return the number of distinct trained functions (the budget the run loop counts)."""
        return len(self.scores)

    def best_so_far(self) -> list[float]:
        """Return the best score after each evaluation (NaN until the first success)."""
        best, out = -math.inf, []
        for score in self.scores:
            best = max(best, score) if score is not None else best
            out.append(best if best > -math.inf else math.nan)
        return out

    def evaluations_to(self, threshold: float) -> int | None:
        """Return how many evaluations it took to reach a score >= `threshold`; None when it never did."""
        for count, score in enumerate(self.scores, start=1):
            if score is not None and score >= threshold:
                return count
        return None


class TableIndex:
    """Token sequence -> (fingerprint, status, score) of a table, built once and shared by many replays."""

    def __init__(self, table: Any) -> None:
        from controller.tabular import parse_tokens, table_space

        self.space: Space = table_space(table)
        self.affine = bool(table.attrs.get("affine", False))
        self.functions: dict[str, tuple[str, float | None]] = {}
        self.sequences: dict[tuple[int, ...], str] = {}
        has_spellings = "spellings" in table.columns
        for row in table.itertuples(index=False):
            score = float(row.val_acc) if row.status == "ok" else None
            self.functions[row.fingerprint] = (row.status, score)
            if has_spellings and row.spellings:
                for text in row.spellings.split(";"):
                    self.sequences[tuple(parse_tokens(text))] = row.fingerprint
        self.complete = has_spellings and len(self.sequences) == self.space.size()
        self.by_spelling = has_spellings and bool(self.sequences)

    def lookup(self, tokens: list[int]) -> str | None:
        """Return the fingerprint of a proposal's function when the table holds it, else None."""
        key = tuple(tokens)
        if self.by_spelling:
            return self.sequences.get(key)
        code = _fingerprint(self.space, key, self.affine)
        return code if code in self.functions else None


@functools.lru_cache(maxsize=65536)
def _fingerprint(space: Space, tokens: tuple[int, ...], affine: bool) -> str:
    return space.decode(list(tokens)).fingerprint(affine=affine)


def _build(strategy: str | Strategy | Callable[..., Strategy], space: Space, seed: int,
           options: dict[str, Any]) -> Strategy:
    if isinstance(strategy, Strategy):
        if strategy.space.vocab_sizes() != space.vocab_sizes():
            raise ValueError(f"the strategy searches {strategy.space!r}, the table covers {space!r}")
        return strategy
    return create_strategy(strategy, space, seed=seed, **options)


def replay(strategy: str | Strategy | Callable[..., Strategy], table: Any, budget: int | None = None,
           seed: int = 0, options: dict[str, Any] | None = None, missing: str = "error",
           stop_at: float | None = None, max_idle: int = MAX_IDLE_PROPOSALS) -> ReplayTrace:
    """Return the trace of `strategy` searching `table` for up to `budget` evaluations (default: all of them).

    `strategy` is a registered name, a Strategy class or factory (called as ``factory(space, seed=seed,
    **options)``) or a built Strategy instance (used as it is). `table` is a table DataFrame, a path to one, or a
    `TableIndex`. `stop_at` ends the replay once a score reaches it.

    >>> from controller.tabular import example_table
    >>> trace = replay("evolution", example_table(), budget=10, seed=0)
    >>> trace.strategy, trace.evaluations, len(trace.best_so_far())
    ('evolution', 10, 10)
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    if isinstance(table, str | Path):
        from controller.tabular import load_table

        table = load_table(table)
    index = table if isinstance(table, TableIndex) else TableIndex(table)
    if budget is None:
        budget = sum(status != "screened" for status, _ in index.functions.values())
    searcher = _build(strategy, index.space, seed, options or {})
    trace = ReplayTrace(strategy=searcher.name, seed=seed)
    known: dict[str, tuple[str, float | None]] = {}
    idle = 0
    best = -math.inf
    while trace.evaluations < budget:
        if idle >= max_idle:
            trace.exhausted = True
            break
        try:
            proposal = searcher.ask()
        except SearchExhausted:
            trace.exhausted = True
            break
        trace.proposals += 1
        code = index.lookup(proposal.tokens)
        if code is None:
            if missing == "error":
                raise KeyError(f"{proposal.expr} (tokens {proposal.tokens}) is not in the table; replay a partial "
                               f"table with missing='skip'")
            trace.missing += 1
            idle += 1
            continue
        if code in known:
            trace.duplicates += 1
            idle += 1
            searcher.tell(proposal.trial_id, *known[code])
            continue
        status, score = known[code] = index.functions[code]
        if status == "screened":
            trace.screened += 1
            idle += 1
            searcher.tell(proposal.trial_id, status, None)
            continue
        idle = 0
        trace.scores.append(score)
        trace.fingerprints.append(code)
        trace.failures += status != "ok"
        searcher.tell(proposal.trial_id, status, score)
        best = max(best, score) if score is not None else best
        if stop_at is not None and best >= stop_at:
            break
    return trace
