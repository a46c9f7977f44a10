"""One `EvalResult` from a candidate's trained slots (one per seed), with every metric, for every model and pack."""

from __future__ import annotations

import logging
import math
import statistics
from typing import Any

from evaluator.config import TrainConfig
from evaluator.metrics import activation_cost, prediction_difference
from evaluator.result import EvalResult

__all__ = ["build_result", "describe"]

log = logging.getLogger(__name__)


def describe(candidate: Any) -> str:
    """Return the text that names a candidate in results: the expression or name, or a callable's name."""
    if isinstance(candidate, str):
        return candidate
    if callable(candidate) and hasattr(candidate, "__name__"):
        return candidate.__name__
    return str(candidate)


def build_result(candidate: Any, slots: list, error: str | None, wall: float, config: TrainConfig) -> EvalResult:
    """Aggregate one candidate's slots (`evaluator.training.Slot`, one per seed) into its `EvalResult`.

    The status and reason are the first non-ok slot's; accuracies are means over the slots that were evaluated (not
    dropped when their loss went non-finite); `dead_rate` is the first evaluated seed's, `pred_diff` compares the
    first two; `wall` is this candidate's share of its packs' time.
    """
    fields: dict[str, Any] = {"expression": describe(candidate), "device": config.device, "wall_s": wall,
                              "seeds": [s.seed for s in slots]}
    if error is not None:
        return EvalResult(**fields, status="error", reason=error)
    bad = next((s for s in slots if s.status != "ok"), None)
    finished = [s for s in slots if s.test_pred is not None]
    val = [s.val_acc for s in finished]
    test = [s.test_acc for s in finished]
    return EvalResult(
        **fields,
        status=bad.status if bad else "ok",
        reason=bad.reason if bad else "",
        score=None if bad else statistics.fmean(val),
        val_acc=statistics.fmean(val) if val else None,
        val_acc_std=statistics.pstdev(val) if val else None,
        test_acc=statistics.fmean(test) if test else None,
        test_acc_std=statistics.pstdev(test) if test else None,
        loss=_finite_mean([s.loss for s in slots]) if not bad else None,
        per_seed_val_acc=val,
        steps=config.stop,
        start_step=slots[0].start if slots else 0,
        # all seeds over this share of the time
        steps_per_s=(config.stop - slots[0].start) * len(slots) / wall if wall > 0 and slots else None,
        grad_norm_init=_finite_mean([s.grad_norm_init for s in slots]),
        val_acc_at={step: [s.val_acc_at[step] for s in finished] for step in (finished[0].val_acc_at if val else {})
                    if all(step in s.val_acc_at for s in finished)},
        dead_rate=finished[0].dead_rate if finished else None,
        pred_diff=prediction_difference(finished[0].test_pred, finished[1].test_pred) if len(finished) > 1 else None,
        act_cost=_cost(candidate, config.device),
    )


def _cost(candidate: Any, device: str) -> float | None:
    """`activation_cost`, or None when timing the candidate on the probe tensor fails (the training did not)."""
    try:
        return activation_cost(candidate, device)
    except Exception:  # a diagnostic must not turn a trained candidate into an error
        log.debug("timing %r failed", candidate, exc_info=True)
        return None


def _finite_mean(values: list[float]) -> float | None:
    """Mean of the values, or None when there are none or one is not finite (results must stay JSON-safe)."""
    return statistics.fmean(values) if values and all(math.isfinite(v) for v in values) else None
