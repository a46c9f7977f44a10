"""Packing: K (candidate, seed) slots in one child model, and how many slots a pack holds on this machine.

`build_slots` gives the registry row's packed form (stacked weights, `evaluator.models.packed`) or, for a row
without one, K plain models side by side (`PlainSlots`); the training loop (`evaluator.training`) sees the same
(K, B, ...) -> (K, B, classes) module either way. The pack size is measured once per machine
(`evaluator.packing.tuning`) or read from the fixed `PACK_SIZES` table (`packing_policy`).
"""

from __future__ import annotations

from evaluator.packing.plain import PlainSlots
from evaluator.packing.slots import (
    PACK_SIZES,
    build_slots,
    keep_slots,
    packed_form,
    packing_policy,
    slot_grad_norms,
    tuning_builder,
)
from evaluator.packing.tuning import CANDIDATE_PACK_SIZES, TUNING_ENV, tuned_pack_size, tuning_enabled

__all__ = [
    "CANDIDATE_PACK_SIZES", "PACK_SIZES", "TUNING_ENV", "PlainSlots", "build_slots", "keep_slots", "packed_form",
    "packing_policy", "slot_grad_norms", "tuned_pack_size", "tuning_builder", "tuning_enabled",
]
