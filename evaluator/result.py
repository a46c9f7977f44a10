"""`EvalResult`: what scoring one candidate gives back, as JSON-safe plain data for Ray and the run store."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["STATUSES", "EvalResult"]

STATUSES = ("ok", "nan", "diverged", "timeout", "error")


@dataclass
class EvalResult:
    """The scores and diagnostics of one candidate; `score` is the mean validation accuracy, None unless ok.

    >>> from evaluator import EvalResult
    >>> r = EvalResult("relu", status="error", reason="ValueError: bad")
    >>> EvalResult.from_dict(r.to_dict()) == r
    True
    """

    expression: str  # the candidate as given (canonical text for an Expr)
    status: str = "ok"  # ok | nan | diverged | timeout | error
    reason: str = ""  # why the status is not ok
    score: float | None = None  # validation accuracy, mean over seeds; None unless ok
    val_acc: float | None = None  # mean over seeds
    val_acc_std: float | None = None  # population std over seeds
    test_acc: float | None = None  # kept for reports, never for search decisions
    test_acc_std: float | None = None
    loss: float | None = None  # training loss over the last tenth of the steps, mean over seeds
    seeds: list[int] = field(default_factory=list)
    per_seed_val_acc: list[float] = field(default_factory=list)
    steps_per_s: float | None = None  # optimizer steps per second of training (all seeds)
    wall_s: float | None = None  # total seconds spent on this candidate
    dead_rate: float | None = None  # fraction of hidden units whose activation gradient is 0 over a validation batch
    pred_diff: float | None = None  # fraction of test examples whose top-1 differs between the first two seeds
    act_cost: float | None = None  # forward+backward time of the activation relative to ReLU
    grad_norm_init: float | None = None  # L2 norm of the loss gradient at initialisation, mean over seeds
    # Per-seed validation accuracy after each of TrainConfig.eval_steps (keys are step counts as text, JSON-style):
    # the lower fidelities that multi-fidelity methods replay without training again.
    val_acc_at: dict[str, list[float]] = field(default_factory=dict)
    device: str = ""
    steps: int | None = None  # steps of the schedule trained (TrainConfig.stop_at, else steps); None: not trained
    start_step: int = 0  # the step training started from: 0, or where the saved state it continued had stopped
    # Where training stopped, when asked for (`evaluate_many(..., keep_states=True)`): tensors, never part of the
    # result's data (`to_dict`, equality).
    train_state: Any = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"EvalResult status must be one of {', '.join(STATUSES)}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        """True when the candidate trained to the end with finite losses."""
        return self.status == "ok"

    def to_dict(self) -> dict[str, Any]:
        """Return plain JSON-safe data: non-finite floats become None."""
        return {f.name: _json_safe(getattr(self, f.name)) for f in fields(self) if f.name != "train_state"}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EvalResult:
        """Rebuild a result from `to_dict()` output; ValueError names any unknown key."""
        valid = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - valid)
        if unknown:
            raise ValueError(f"unknown EvalResult field(s) {', '.join(unknown)}; valid fields: {', '.join(valid)}")
        return cls(**data)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value
