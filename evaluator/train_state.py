"""`TrainState`: where a candidate's training stopped, so that a fidelity cascade can continue it exactly.

A cascade trains a candidate for the first `stop_at` steps of its schedule (`TrainConfig.stop_at`), keeps its state
(`evaluate_many(..., keep_states=True)`), and later trains it on to a longer rung from that state
(`evaluate_many(..., states=[...])`) instead of from scratch. The continued training is the uninterrupted one: same
batches, same learning rates, same weights and moments (tests/evaluator/test_train_state.py).

Bytes are `torch.save` of plain tensors and numbers, read back with `weights_only=True`: a state file from elsewhere
can hold nothing but data.

>>> from evaluator import TrainConfig, evaluate_many
>>> config = TrainConfig(steps=20, stop_at=10, device="cpu")
>>> first = evaluate_many(["tanh"], task="xor", config=config, keep_states=True)[0]
>>> first.train_state.step
10
>>> state = TrainState.from_bytes(first.train_state.to_bytes())
>>> evaluate_many(["tanh"], task="xor", config=TrainConfig(steps=20, device="cpu"), states=[state])[0].steps
20
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field

import torch

from evaluator.packing.state import SlotState

__all__ = ["TrainState"]

_FORMAT = 1


@dataclass
class TrainState:
    """Every seed's state after `step` of a `schedule_steps`-step schedule; slots[i] belongs to seeds[i]."""

    step: int
    schedule_steps: int
    seeds: list[int]
    slots: list[SlotState] = field(repr=False)
    grad_norm_init: list[float] = field(default_factory=list)  # measured at step 0, kept for the continued result

    def to_bytes(self) -> bytes:
        """Return the state as bytes (`torch.save` of tensors, numbers and lists)."""
        buffer = io.BytesIO()
        torch.save({"format": _FORMAT, "step": self.step, "schedule_steps": self.schedule_steps,
                    "seeds": list(self.seeds), "slots": self.slots, "grad_norm_init": list(self.grad_norm_init)},
                   buffer)
        return buffer.getvalue()

    @classmethod
    def from_bytes(cls, data: bytes) -> TrainState:
        """Read `to_bytes()` output (weights only: never code); ValueError for bytes that are not a state."""
        try:
            raw = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
        except Exception as error:
            raise ValueError(f"not a saved training state ({type(error).__name__}: {error})") from None
        if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
            raise ValueError("not a saved training state of this version (format "
                             f"{raw.get('format') if isinstance(raw, dict) else '?'}, expected {_FORMAT})")
        return cls(step=int(raw["step"]), schedule_steps=int(raw["schedule_steps"]), seeds=list(raw["seeds"]),
                   slots=list(raw["slots"]), grad_norm_init=list(raw["grad_norm_init"]))
