"""The run loop: a strategy proposes, Ray tasks train batches of candidates, the driver records and learns.

One driver process owns the strategy and the run store. It keeps `workers` batches in flight (one Ray task each,
`task_batch` candidates); whenever one comes back (`ray.wait`), it records each result, tells the strategy, and
submits the next batch, so workers never wait for each other. Before dispatch every proposal is fingerprinted: a
function already recorded reuses its score (a `duplicate` row, no training), one already in flight waits for that
result, and one that fails `expr.screen()` is recorded as `screened`. `budget` counts distinct trained candidates. A
batch whose task raises or whose worker dies is retried candidate by candidate (`max_attempts` in all) and then
recorded as `error`; a candidate past `timeout` seconds has its worker killed and is recorded as `timeout`.

Fidelity cascade (`config.rungs`, `controller.fidelity.Ladder`): every candidate first trains to the lowest rung
(the first steps of the full schedule) and the strategy is told its score there, the fidelity it learns from. Whenever
a worker is free, a due promotion (a result in the best 1/eta of its rung) goes before any new candidate: it trains
on from its saved state (`controller.train_states`) to the next rung and is recorded as a row of that rung. Promotions
do not count against `budget` and are never told to the strategy; the run ends when the budget is spent and no
promotion is due. With `config.prescreen`, a proposal the surrogate (`controller.surrogate.PreScreen`, fitted on the
run's lowest-rung scores) predicts well below the run's scores is recorded as `skipped` (with its prediction) and
not trained; the strategy is told the prediction. Skipped candidates count against `budget` (it counts candidates
considered).

More seeds (`config.top_seeds`): a function whose top-rung score places it in the run's best `top_k` is trained
again at the top rung with the seeds it lacks, and recorded one rung above the top (the "seeds rung") with its
scores over all its seeds: the leaderboard ranks those first, by a mean with a standard deviation, not by one draw.

Resume: the newest checkpoint restores the strategy (including the trials it had in flight), rows recorded
after the checkpoint are told again, and in-flight trials without a row are dispatched again. The ladder is rebuilt
from the rows, so a promotion that was in flight is simply due again: never lost, never recorded twice.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from controller.config import RunConfig
from controller.fidelity import Ladder
from controller.store import EvaluationRow, RunStore
from controller.strategies import FAILURE_STATUSES, Proposal, SearchExhausted, Strategy
from controller.train_states import TrainStates

__all__ = ["Candidate", "Progress", "RunLoop"]

logger = logging.getLogger(__name__)

CHECKPOINT_SECONDS = 60.0
# The evaluator stops a slow candidate itself (status timeout); a task still running this long past timeout x batch
# size (which starts at submission, so it must cover starting a worker and generating task data) is killed.
HARD_TIMEOUT_GRACE_S = 60.0
MAX_IDLE_PROPOSALS = 1000  # proposals in a row that bring nothing new before the strategy counts as exhausted


@dataclass
class Candidate:
    """A proposal on its way to training: its fingerprint and how many times it was tried."""

    proposal: Proposal
    fingerprint: str
    attempts: int = 0
    rung: int = 0  # the rung this training reaches; above 0, a promotion of a recorded function


@dataclass
class Progress:
    """Counters the CLI shows: trained candidates, best score so far, failures, duplicates, busy worker time."""

    budget: int
    trained: int = 0
    best_score: float | None = None
    best_expression: str | None = None
    failures: int = 0
    duplicates: int = 0
    screened: int = 0
    skipped: int = 0  # not trained on the pre-screen's prediction (they count against the budget)
    rungs: list[int] = field(default_factory=list)  # results per rung of a cascade (empty: flat)
    best_rung: int = 0  # the rung best_score was measured at (the highest with a success)
    busy_s: float = 0.0  # worker seconds spent inside evaluation tasks
    started_at: float = field(default_factory=time.time)


@dataclass
class _Batch:
    candidates: list[Candidate]
    deadline: float | None


class RunLoop:
    """Drives one run: `RunLoop(config, store, strategy).run()`; `request_stop()` ends it cleanly."""

    def __init__(self, config: RunConfig, store: RunStore, strategy: Strategy,
                 on_progress: Callable[[Progress], None] | None = None,
                 evaluate: Callable[..., dict[str, Any]] | None = None) -> None:
        self.config = config
        self.evaluate = evaluate  # what a Ray task runs on a batch; None: controller.remote.evaluate_batch
        self.hard_timeout_grace_s = HARD_TIMEOUT_GRACE_S
        self.store = store
        self.strategy = strategy
        self.space = strategy.space
        self.on_progress = on_progress or (lambda progress: None)
        self.progress = Progress(budget=config.budget)
        self.exhausted = False
        self.stop_requested = False
        self._known: dict[str, tuple[str, float | None, str]] = {}  # fingerprint -> (status, score, expression)
        self._queue: deque[Proposal] = deque()  # proposals to dispatch before asking for new ones
        self._retry: deque[Candidate] = deque()  # candidates to try again, one per task
        self._in_flight: dict[Any, _Batch] = {}  # Ray object ref -> batch
        self._in_flight_fingerprints: set[str] = set()
        self._waiting: dict[str, list[Proposal]] = {}  # fingerprint in flight -> duplicates waiting for its score
        self._rows_since_checkpoint = 0
        self._last_checkpoint = time.time()
        self._task = None
        self._task_batch = config.candidates_per_task()
        self.rungs = config.rung_steps()
        self.ladder = Ladder(self.rungs, config.eta) if len(self.rungs) > 1 else None
        self.states = TrainStates(config.store_path.parent / "states") if self.ladder else None
        self.seeds_rung = len(self.rungs) if config.extra_seeds else None  # one above the top: more seeds
        self.progress.rungs = [0] * (len(self.rungs) + bool(config.extra_seeds)) if self.ladder or config.extra_seeds \
            else []
        self._top: dict[str, EvaluationRow] = {}  # fingerprint -> its ok row on the top rung (extra seeds)
        self._seeded: set[str] = set()  # fingerprints with extra seeds recorded or in flight
        self._functions: dict[str, Proposal] = {}  # fingerprint -> the proposal it first trained as (promotions)
        self._predicted: dict[str, float] = {}  # fingerprint -> prediction, for functions the pre-screen skipped
        self.prescreen = None
        if config.prescreen:
            from controller.surrogate import PreScreen

            self.prescreen = PreScreen(seed=config.seed, kappa=config.prescreen_kappa)
        self._replay()

    # ----- resume -----
    def _replay(self) -> None:
        """Rebuild the known functions from the store and bring the strategy up to date with its last row."""
        checkpoint = self.store.load_checkpoint()
        last_row = 0
        if checkpoint is not None:
            state, last_row = checkpoint
            self.strategy.load_state_dict(state["strategy"])
        for row in self.store.rows():
            self._count(row)
            self._learn(row)
            if row.rung > 0:  # a promotion: the strategy only ever hears of the lowest rung
                continue
            if not row.duplicate:
                self._known.setdefault(row.fingerprint, (row.status, row.score, row.expression))
            if row.id > last_row:
                status, score = _told(row)
                if row.trial_id is not None and self.strategy.is_pending(row.trial_id):
                    self.strategy.tell(row.trial_id, status, score, duplicate=row.duplicate)
                else:
                    self.strategy.add_evaluated(row.tokens, status, score, trial_id=row.trial_id,
                                                duplicate=row.duplicate)
        for trial_id, tokens in sorted(self.strategy.pending.items()):
            self._queue.append(Proposal(trial_id, tokens, self.space.decode(tokens)))
        if self._queue:
            logger.info("resuming %d candidates that were in flight", len(self._queue))

    # ----- the loop -----
    def run(self) -> Progress:
        """Run until `budget` distinct candidates are trained, the strategy is exhausted, or a stop is requested."""
        import ray

        from controller.remote import evaluate_batch

        self._task = ray.remote(self.evaluate or evaluate_batch).options(
            num_cpus=self.config.cpus_per_worker, num_gpus=self.config.gpus_per_worker, max_retries=0
        )
        self.on_progress(self.progress)
        try:
            while not self.stop_requested:
                self._fill()
                if not self._in_flight:
                    break
                ready, _ = ray.wait(list(self._in_flight), num_returns=1, timeout=self._wait_seconds())
                for ref in ready:
                    self._collect(ref)
                self._expire()
                self._maybe_checkpoint()
            if self._in_flight:  # stopping: keep the results that are already back
                ready, _ = ray.wait(list(self._in_flight), num_returns=len(self._in_flight), timeout=0)
                for ref in ready:
                    self._collect(ref)
        finally:
            for ref in self._in_flight:  # stopped with work in flight: the checkpoint keeps those trials pending
                ray.cancel(ref, force=True)
            self.checkpoint()  # while the batches are still known: their promotions' states are kept for the resume
            self._in_flight.clear()
        return self.progress

    def promotion_due(self) -> bool:
        """Whether a promotion or a top function's extra seeds are due (a run at its budget still trains those)."""
        if self.ladder is not None and self.ladder.next_promotion() is not None:
            return True
        return self.seeds_rung is not None and any(row.fingerprint not in self._seeded for row in self._top_k())

    def request_stop(self) -> None:
        """Ask the loop to stop at the next result: in-flight work is cancelled and kept for the resume."""
        self.stop_requested = True

    def checkpoint(self) -> None:
        """Save the strategy's state, covering every row recorded so far (and let go of unwanted train states)."""
        self.store.save_checkpoint({"strategy": self.strategy.state_dict()})
        self._prune_states()
        self._rows_since_checkpoint = 0
        self._last_checkpoint = time.time()

    def _maybe_checkpoint(self) -> None:
        if (self._rows_since_checkpoint >= self.config.checkpoint_every
                or time.time() - self._last_checkpoint > CHECKPOINT_SECONDS):
            self.checkpoint()

    def _learn(self, row: EvaluationRow) -> None:
        """Feed a new row to the ladder and the pre-screen (at resume and as results come in)."""
        if row.status == "skipped" and not row.duplicate:
            self._predicted[row.fingerprint] = row.metrics.get("predicted")
        if not row.trained or row.duplicate:
            return
        if row.rung == self.seeds_rung:
            self._seeded.add(row.fingerprint)
            return
        if row.rung == len(self.rungs) - 1 and row.status == "ok":
            self._top[row.fingerprint] = row
        if self.ladder is not None:
            self.ladder.record(row.fingerprint, row.rung, row.score if row.status == "ok" else None)
            if row.rung == 0:
                self._functions.setdefault(row.fingerprint,
                                           Proposal(row.trial_id, row.tokens, self.space.decode(row.tokens)))
        if self.prescreen is not None and row.rung == 0:
            self.prescreen.observe(self.space.decode(row.tokens), row.status, row.score)

    def _prune_states(self) -> None:
        """Delete saved states no promotion can still want (see `Ladder.waiting`), keeping those in flight."""
        if self.states is None:
            return
        wanted = {rung: self.ladder.waiting(rung) for rung in range(self.ladder.top)}
        for candidate in self._outstanding():
            wanted.setdefault(candidate.rung - 1, set()).add(candidate.fingerprint)
        self.states.keep(wanted)

    def _outstanding(self) -> list[Candidate]:
        """Candidates sent to train and not recorded yet: in flight or waiting for a retry."""
        return [c for batch in self._in_flight.values() for c in batch.candidates] + list(self._retry)

    def _wait_seconds(self) -> float:
        deadlines = [batch.deadline for batch in self._in_flight.values() if batch.deadline is not None]
        return max(0.05, min([1.0] + [deadline - time.time() for deadline in deadlines]))

    # ----- dispatch -----
    def _fill(self) -> None:
        """Submit batches until `workers` are in flight or the budget is covered and no promotion is due."""
        while not self.stop_requested and len(self._in_flight) < self.config.workers:
            if self._retry:
                self._submit([self._retry.popleft()])
                continue
            promotions = self._promotions() or self._seed_requests()
            if promotions:
                self._submit(promotions)
                continue
            batch: list[Candidate] = []
            while len(batch) < self._task_batch:
                candidate = self._next_candidate(building=len(batch))
                if candidate is None:
                    break
                batch.append(candidate)
            if not batch:
                return
            self._submit(batch)

    def _room(self, building: int = 0) -> int:
        """Budget left for new candidates: the budget less those trained, skipped, in flight, waiting for a retry
        and `building` (a batch being put together)."""
        fresh = sum(c.rung == 0 for c in self._outstanding())
        return self.config.budget - self.progress.trained - self.progress.skipped - fresh - building

    def _promotions(self) -> list[Candidate]:
        """Take up to a task batch of due promotions to one rung (the ladder's order), or none."""
        batch: list[Candidate] = []
        while self.ladder is not None and len(batch) < self._task_batch:
            due = self.ladder.next_promotion()
            if due is None or (batch and due[1] != batch[0].rung):
                break
            key, rung = due
            self.ladder.start(key, rung)
            batch.append(Candidate(self._functions[key], key, rung=rung))
        return batch

    def _seed_requests(self) -> list[Candidate]:
        """Take up to a task batch of the top rung's best `top_k` that still lack their extra seeds."""
        if self.seeds_rung is None:
            return []
        batch = []
        for row in self._top_k():
            if row.fingerprint not in self._seeded and len(batch) < self._task_batch:
                self._seeded.add(row.fingerprint)
                batch.append(Candidate(self._proposal_of(row), row.fingerprint, rung=self.seeds_rung))
        return batch

    def _top_k(self) -> list[EvaluationRow]:
        """The top rung's best `top_k` ok rows, best first (ties by fingerprint, as the ladder breaks them)."""
        ranked = sorted(self._top.values(), key=lambda row: (row.score, row.fingerprint), reverse=True)
        return ranked[: self.config.top_k]

    def _proposal_of(self, row: EvaluationRow) -> Proposal:
        return self._functions.get(row.fingerprint) or Proposal(row.trial_id, row.tokens,
                                                               self.space.decode(row.tokens))

    def _submit(self, batch: list[Candidate]) -> None:
        config = self.config
        rung = batch[0].rung  # a batch trains to one rung
        seeds = config.extra_seeds if rung == self.seeds_rung else list(range(config.seeds))
        train: dict[str, Any] = {"seeds": seeds, "device": config.device,
                                 "num_threads": max(1, int(config.cpus_per_worker)), **config.recipe(),
                                 "eval_steps": list(config.eval_steps)}
        if config.steps is not None or self.ladder is not None:
            train["steps"] = config.schedule_steps
        cascade: dict[str, Any] = {}
        if self.ladder is not None and rung != self.seeds_rung:
            train["stop_at"] = self.rungs[rung]
            cascade["keep_states"] = rung < self.ladder.top
            cascade["states"] = [self.states.get(c.fingerprint, rung - 1) if rung else None for c in batch]
        deadline = None
        if config.timeout:
            train["time_limit_s"] = config.timeout  # per candidate, all seeds: the evaluator stops a slow run ...
            deadline = time.time() + config.timeout * len(batch) + self.hard_timeout_grace_s  # ... or it is killed
        ref = self._task.remote([str(c.proposal.expr) for c in batch], config.task, config.model, train, **cascade)
        self._in_flight[ref] = _Batch(batch, deadline)

    def _next_candidate(self, building: int = 0) -> Candidate | None:
        """Return the next proposal worth training while the budget has room, recording duplicates, screened-out
        and skipped proposals on the way."""
        idle = 0  # proposals in a row that brought nothing new
        while idle < MAX_IDLE_PROPOSALS:
            if self._room(building) <= 0:
                return None
            if self._queue:
                proposal = self._queue.popleft()
            elif self.exhausted:
                return None
            else:
                try:
                    proposal = self.strategy.ask()
                except SearchExhausted as done:
                    logger.info("%s", done)
                    self.exhausted = True
                    return None
            idle += 1
            # With standardised outputs, c * f + d (c > 0) trains exactly as f does: one candidate, one training.
            code = proposal.expr.fingerprint(affine=self.config.act_norm == "standardize")
            if code in self._known:
                self._record_duplicate(proposal, code)
            elif code in self._in_flight_fingerprints:
                self._waiting.setdefault(code, []).append(proposal)
            else:
                verdict = proposal.expr.screen()
                if not verdict.ok:
                    self._record(proposal, code, status="screened", reason=verdict.reason, trained=False)
                    continue
                decision = self.prescreen.decide(proposal.expr) if self.prescreen is not None else None
                if decision is not None and not decision.train:  # considered, not trained: it uses up budget
                    self._record(proposal, code, status="skipped", reason=decision.reason, trained=False,
                                 metrics={"predicted": decision.predicted})
                    idle = 0
                    continue
                self._in_flight_fingerprints.add(code)
                return Candidate(proposal, code)
        logger.warning("the %s strategy proposed %d known candidates in a row; treating the search as exhausted",
                       self.strategy.name, MAX_IDLE_PROPOSALS)
        self.exhausted = True
        return None

    # ----- results -----
    def _collect(self, ref: Any) -> None:
        import ray

        batch = self._in_flight.pop(ref)
        try:
            output = ray.get(ref)
            if len(output["results"]) != len(batch.candidates):
                raise RuntimeError(f"{len(output['results'])} results for a batch of {len(batch.candidates)}")
        except Exception as error:  # a dead worker, a cancelled or crashed task: retry each candidate
            self._retry_or_fail(batch, error)
            return
        self.progress.busy_s += output["finished_at"] - output["started_at"]
        states = output.get("states") or [None] * len(batch.candidates)
        for candidate, result, state in zip(batch.candidates, output["results"], states, strict=True):
            status = result.get("status") if result.get("status") in ("ok", *FAILURE_STATUSES) else "error"
            score = result.get("score") if status == "ok" else None
            if state is not None and self.states is not None:  # saved before its row: a row never lacks a state
                self.states.put(candidate.fingerprint, candidate.rung, state)
            self._finish(candidate, status, score, result.get("reason") or "", candidate.attempts + 1, metrics=result,
                         worker=output["worker"], started_at=output["started_at"], finished_at=output["finished_at"])

    def _retry_or_fail(self, batch: _Batch, error: Exception) -> None:
        reason = f"{type(error).__name__}: {str(error).strip().splitlines()[-1] if str(error).strip() else ''}"
        logger.warning("a task for %d candidates failed (%s); retrying them one by one", len(batch.candidates), reason)
        for candidate in batch.candidates:
            candidate.attempts += 1
            if candidate.attempts < self.config.max_attempts:
                self._retry.append(candidate)
            else:
                reason_all = f"failed {candidate.attempts} times, last: {reason}"
                self._finish(candidate, "error", None, reason_all, candidate.attempts, finished_at=time.time())

    def _expire(self) -> None:
        """Kill tasks past their deadline: a lone candidate is a `timeout`, a batch is retried one by one."""
        import ray

        now = time.time()
        for ref, batch in list(self._in_flight.items()):
            if batch.deadline is None or now < batch.deadline:
                continue
            ray.cancel(ref, force=True)
            del self._in_flight[ref]
            if len(batch.candidates) > 1:
                self._retry.extend(batch.candidates)
                continue
            reason = f"no result within --timeout {self.config.timeout:g} s; its worker was killed"
            candidate = batch.candidates[0]
            self._finish(candidate, "timeout", None, reason, candidate.attempts + 1, finished_at=now)

    def _finish(self, candidate: Candidate, status: str, score: float | None, reason: str, attempts: int,
                **extra: Any) -> None:
        """Record a trained candidate, tell the strategy (lowest rung only), and settle the duplicates that waited
        for it; a promotion's row lets go of the state it started from."""
        if candidate.rung == self.seeds_rung:
            self._record_seeds(candidate, status, score, reason, attempts, **extra)
            return
        if candidate.rung:
            self._record(candidate.proposal, candidate.fingerprint, status=status, score=score, reason=reason,
                         trained=True, attempts=attempts, rung=candidate.rung, **extra)
            self.states.drop(candidate.fingerprint, candidate.rung - 1)
            return
        self._in_flight_fingerprints.discard(candidate.fingerprint)
        self._record(candidate.proposal, candidate.fingerprint, status=status, score=score, reason=reason,
                     trained=True, attempts=attempts, **extra)
        for duplicate in self._waiting.pop(candidate.fingerprint, []):
            self._record_duplicate(duplicate, candidate.fingerprint)

    def _record_seeds(self, candidate: Candidate, status: str, score: float | None, reason: str, attempts: int,
                      metrics: dict[str, Any] | None = None, **extra: Any) -> None:
        """Record a top function's extra seeds as its seeds-rung row: scores over all its seeds (the top rung's and
        the new ones); a failure on a new seed is that row's status."""
        import statistics

        top = self._top[candidate.fingerprint]
        metrics = dict(metrics or {})
        seeds = list(top.seeds or []) + self.config.extra_seeds
        if status == "ok":
            new = metrics.get("per_seed_val_acc") or []
            values = list(top.metrics.get("per_seed_val_acc") or [top.score]) + list(new)
            old_n, new_n = len(values) - len(new), len(new)
            score = statistics.fmean(values)
            tests = [top.metrics.get("test_acc"), metrics.get("test_acc")]
            metrics.update(per_seed_val_acc=values, val_acc=score, val_acc_std=statistics.pstdev(values),
                           test_acc=(tests[0] * old_n + tests[1] * new_n) / len(values) if None not in tests else None,
                           test_acc_std=None)  # only per-seed validation accuracies are kept
        self._record(candidate.proposal, candidate.fingerprint, status=status, score=score, reason=reason,
                     trained=True, attempts=attempts, rung=candidate.rung, metrics=metrics, seeds_override=seeds,
                     **extra)

    def _record_duplicate(self, proposal: Proposal, code: str) -> None:
        status, score, expression = self._known[code]
        metrics = {"predicted": self._predicted[code]} if status == "skipped" else {}
        self._record(proposal, code, status=status, score=score, reason=f"same function as {expression}",
                     trained=False, duplicate=True, canonical=expression, metrics=metrics)

    def _record(self, proposal: Proposal, code: str, *, status: str, trained: bool, reason: str = "",
                score: float | None = None, duplicate: bool = False, canonical: str | None = None,
                seeds_override: list[int] | None = None, **extra: Any) -> None:
        expression = str(proposal.expr)
        row = EvaluationRow(
            expression=expression, canonical=canonical or expression, fingerprint=code, tokens=proposal.tokens,
            strategy=self.strategy.name, status=status, trained=trained, duplicate=duplicate, reason=reason,
            score=score, trial_id=proposal.trial_id, seeds=seeds_override or list(range(self.config.seeds)), **extra,
        )
        row.id = self.store.append(row)  # recorded before the strategy learns of it: a crash re-tells, never loses
        self._learn(row)
        if row.rung == 0:
            if not duplicate:
                self._known.setdefault(code, (status, score, expression))
            self.strategy.tell(proposal.trial_id, *_told(row), duplicate=duplicate)
        self._rows_since_checkpoint += 1
        self._count(row)
        self.on_progress(self.progress)

    def _count(self, row: EvaluationRow) -> None:
        progress = self.progress
        if row.duplicate:
            progress.duplicates += 1
        elif row.status == "screened":
            progress.screened += 1
        elif row.status == "skipped":
            progress.skipped += 1
        elif row.trained:
            if progress.rungs:
                progress.rungs[row.rung] += 1
            if row.rung == 0:
                progress.trained += 1
                progress.failures += row.status != "ok"
            if row.status == "ok" and (progress.best_score is None or (row.rung, row.score) > (progress.best_rung,
                                                                                                 progress.best_score)):
                progress.best_score, progress.best_expression, progress.best_rung = row.score, row.expression, row.rung


def _told(row: EvaluationRow) -> tuple[str, float | None]:
    """What the strategy is told of a row: its status and score, or for a skipped one the prediction as a score."""
    if row.status == "skipped":
        return "ok", row.metrics.get("predicted")
    return row.status, row.score
