"""Replaying a search strategy against a table (`controller.tabular`) with the run loop's rules, without training.

The rules are those of `controller.loop.RunLoop._next_candidate` and `_record`, with one worker and packs of one
(each proposal is told before the next ask):

- a proposal whose function (fingerprint) was already met in this replay is a duplicate: it costs no evaluation
  and the strategy is told, with ``duplicate=True``, what it was told for that function the first time;
- a function screened out before training costs nothing and is told as ``"screened"`` with score None;
- with a pre-screen (`controller.surrogate.PreScreen`), a function it skips costs nothing and is told ``"ok"``
  with the predicted score; a function it lets through is trained, and the pre-screen learns its result;
- any other function costs one evaluation and is told its status in the table: ``"ok"`` with its score, or its
  failure status (``"nan"``, ``"diverged"``, ``"timeout"``, ``"error"``) with score None;
- `ask` raising `SearchExhausted`, or `max_idle` proposals in a row without a new evaluation, ends the replay.

Flat (the default), an evaluation trains the table's full length and is told the mean validation accuracy over
seeds. As a cascade (`cascade=Cascade(rungs=(50, 150, 300), eta=3)`, successive halving over training steps with
`controller.fidelity.Ladder`), a promotion that is due runs before any new candidate and costs only the steps between
its rungs (training continues where it stopped); a new candidate costs the lowest rung's steps and the strategy is
told its score at the lowest rung (`controller.cascade_replay` says what a rung scores). Promotions that are due when
the budget of evaluations is spent still run. Flat is the one-rung cascade, so both share this one loop, and the
trace counts the training steps spent either way.

A proposal whose function is not in the table (a table still being computed) is, with ``missing="skip"``, counted
and never told (like a result that never came back); with ``missing="error"`` it raises `KeyError`. A sequence
missed for the first time is new to the search, so it does not count towards `max_idle` (a strategy stalling on
repeats is told apart from one exploring where a partial table has holes); a sequence missed again does.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from controller.cascade_replay import Cascade, RungResult, rung_results, training_steps
from controller.loop import MAX_IDLE_PROPOSALS
from controller.strategies import SearchExhausted, Strategy, create_strategy
from search_space import Space

if TYPE_CHECKING:
    from controller.surrogate import PreScreen

__all__ = ["MISSING_POLICIES", "Cascade", "ReplayTrace", "TableIndex", "Training", "replay"]

MISSING_POLICIES = ("error", "skip")


@dataclass(frozen=True)
class Training:
    """One training a replay paid for: a new candidate to the lowest rung (`rung` 0) or a promotion one rung up."""

    fingerprint: str
    rung: int  # index into the trace's rungs
    status: str
    score: float | None
    steps: int  # training steps the replay had spent once this one finished (cumulative)


@dataclass
class ReplayTrace:
    """What one replay did: the score of each evaluation in order, every training paid for, and what the other
    proposals were."""

    strategy: str
    seed: int
    rungs: tuple[int, ...] = ()  # training steps of each rung; flat: the table's training length alone
    scores: list[float | None] = field(default_factory=list)  # per evaluation, as told; None for a failure
    fingerprints: list[str] = field(default_factory=list)  # per evaluation
    trainings: list[Training] = field(default_factory=list)  # evaluations and promotions, in order
    proposals: int = 0  # every ask, evaluations included
    duplicates: int = 0
    screened: int = 0
    skipped: int = 0  # proposals the pre-screen skipped
    failures: int = 0
    missing: int = 0  # proposals whose function the table does not hold (skipped)
    exhausted: bool = False  # the strategy ran out (or stalled) before the budget

    @property
    def evaluations(self) -> int:
        """Return the number of distinct trained functions (the budget the run loop counts)."""
        return len(self.scores)

    @property
    def steps(self) -> int:
        """Return the training steps spent in all (of one training seed)."""
        return self.trainings[-1].steps if self.trainings else 0

    @property
    def promotions(self) -> int:
        """Return how many trainings continued a candidate to a higher rung."""
        return sum(training.rung > 0 for training in self.trainings)

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

    def steps_to(self, fingerprints: Collection[str]) -> int | None:
        """Return the training steps spent when one of `fingerprints` first finished the top rung; None if never.

        With `controller.tabular.top_fingerprints(table)`, the compute a search needed to find a top-1 % function."""
        top = len(self.rungs) - 1
        return next((training.steps for training in self.trainings
                     if training.rung == top and training.fingerprint in fingerprints), None)

    def _add(self, code: str, rung: int, status: str, score: float | None) -> Training:
        spent = self.rungs[rung] - (self.rungs[rung - 1] if rung else 0)  # a promotion continues where it stopped
        training = Training(code, rung, status, score, self.steps + spent)
        self.trainings.append(training)
        if rung == 0:
            self.scores.append(score)
            self.fingerprints.append(code)
            self.failures += status != "ok"
        return training


class TableIndex:
    """Token sequence -> (fingerprint, status, score) of a table, built once and shared by many replays."""

    def __init__(self, table: Any) -> None:
        from controller.tabular import parse_tokens, table_space

        self.table = table
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
           stop_at: float | None = None, max_idle: int = MAX_IDLE_PROPOSALS, cascade: Cascade | None = None,
           prescreen: PreScreen | None = None, stop_on: Collection[str] = ()) -> ReplayTrace:
    """Return the trace of `strategy` searching `table` for up to `budget` evaluations (default: all of them).

    `strategy` is a registered name, a Strategy class or factory (called as ``factory(space, seed=seed,
    **options)``) or a built Strategy instance (used as it is). `table` is a table DataFrame, a path to one, or a
    `TableIndex`. `cascade` trains through successive-halving rungs instead of flat; `prescreen` (a fresh
    `controller.surrogate.PreScreen` per replay: it learns) skips predicted losers. The replay ends once a score at
    the top rung reaches `stop_at`, or once one of the functions in `stop_on` (fingerprints) finishes the top rung.

    >>> from controller.tabular import example_table
    >>> trace = replay("evolution", example_table(), budget=10, seed=0)
    >>> trace.strategy, trace.evaluations, len(trace.best_so_far()), trace.steps
    ('evolution', 10, 10, 3000)
    >>> trace = replay("random", example_table(), budget=10, seed=0, cascade=Cascade(rungs=(50, 150, 300), eta=3))
    >>> trace.evaluations, trace.promotions, trace.steps == 10 * 50 + sum(
    ...     trace.rungs[t.rung] - trace.rungs[t.rung - 1] for t in trace.trainings if t.rung)
    (10, 4, True)
    """
    if missing not in MISSING_POLICIES:
        raise ValueError(f"missing must be one of {', '.join(MISSING_POLICIES)}, got {missing!r}")
    if isinstance(table, str | Path):
        from controller.tabular import load_table

        table = load_table(table)
    index = table if isinstance(table, TableIndex) else TableIndex(table)
    if budget is None:
        budget = sum(status != "screened" for status, _ in index.functions.values())
    if cascade is None:  # flat: one rung, the table's training length, told the mean over seeds
        cascade = Cascade(rungs=(training_steps(index.table),), score_seed=None)
        results: dict[str, tuple[RungResult, ...]] = {code: (result,) for code, result in index.functions.items()}
    else:
        results = rung_results(index.table, cascade)
    searcher = _build(strategy, index.space, seed, options or {})
    trace = ReplayTrace(strategy=searcher.name, seed=seed, rungs=cascade.rungs)
    ladder = cascade.ladder()
    targets = frozenset(stop_on)

    def done(training: Training) -> bool:
        """Whether this training ends the replay: a target reached at the top rung."""
        if training.rung != ladder.top:
            return False
        return training.fingerprint in targets or (stop_at is not None and training.score is not None
                                                    and training.score >= stop_at)

    known: dict[str, tuple[str, float | None]] = {}  # fingerprint -> what the strategy was told for it
    missed: set[tuple[int, ...]] = set()  # token sequences proposed that the table does not hold
    idle = 0
    while True:
        due = ladder.next_promotion()
        if due is not None:  # one worker: a due promotion goes before any new candidate
            code, rung = due
            ladder.start(code, rung)
            status, score = results[code][rung]
            ladder.record(code, rung, score)
            if done(trace._add(code, rung, status, score)):
                break
            continue
        if trace.evaluations >= budget:
            break
        if idle >= max_idle:
            trace.exhausted = True
            break
        try:
            proposal = searcher.ask()
        except SearchExhausted:
            trace.exhausted = True
            break
        trace.proposals += 1
        idle += 1
        code = index.lookup(proposal.tokens)
        if code is None:
            if missing == "error":
                raise KeyError(f"{proposal.expr} (tokens {proposal.tokens}) is not in the table; replay a partial "
                               f"table with missing='skip'")
            trace.missing += 1
            if tuple(proposal.tokens) not in missed:  # new to the search, only not in the table yet: not idle
                missed.add(tuple(proposal.tokens))
                idle = 0
            continue
        if code in known:
            trace.duplicates += 1
            searcher.tell(proposal.trial_id, *known[code], duplicate=True)
            continue
        if index.functions[code][0] == "screened":
            trace.screened += 1
            known[code] = ("screened", None)
            searcher.tell(proposal.trial_id, "screened", None)
            continue
        if prescreen is not None:
            decision = prescreen.decide(proposal.expr)
            if not decision.train:
                trace.skipped += 1
                known[code] = ("ok", decision.predicted)
                searcher.tell(proposal.trial_id, "ok", decision.predicted)
                continue
        idle = 0
        status, score = known[code] = results[code][0]
        ladder.record(code, 0, score)
        training = trace._add(code, 0, status, score)
        if prescreen is not None:
            prescreen.observe(proposal.expr, status, score)
        searcher.tell(proposal.trial_id, status, score)
        if done(training):
            break
    return trace
