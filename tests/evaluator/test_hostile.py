"""Hostile candidates: extreme inputs and explosive expressions end with a status, never an exception."""

from __future__ import annotations

import math

import pytest
import torch

from evaluator import TrainConfig, evaluate_many
from evaluator.result import STATUSES
from search_space import Space, parse

EXTREMES = torch.tensor([0.0, -0.0, 1e-30, -1e-30, 1e-6, -1e-6, 1.0, -1.0, 88.0, -88.0, 1e4, -1e4, 1e30, -1e30,
                         3.4e38, -3.4e38, math.inf, -math.inf, math.nan])


def test_every_paper_operator_computes_on_extreme_inputs_without_raising() -> None:
    space = Space(units=1, ops="paper")
    unary, binary = len(space.ops.unary), len(space.ops.binary)
    candidates = [space.decode([0, u, 0, 0, 0]) for u in range(unary)]
    candidates += [space.decode([0, 0, 0, 1, b]) for b in range(binary)]  # binary(x, -x)
    for expr in candidates:
        module = expr.to_module()
        x = EXTREMES.clone().requires_grad_(True)
        y = module(x)  # NaN and inf are allowed answers; an exception is not
        y.sum().backward()
        assert y.shape == x.shape, str(expr)


@pytest.mark.parametrize("text", ["exp(exp(x))", "1 / (x - x + eps)", "x**3**3", "exp(x)**x", "log(abs(x) + eps)"])
def test_explosive_candidates_screen_or_train_to_a_status(text: str) -> None:
    verdict = parse(text).screen()
    assert isinstance(verdict.ok, bool) and (verdict.ok or verdict.reason)


def test_a_pack_of_hostile_candidates_all_get_statuses_and_good_ones_still_score(xor_data) -> None:
    hostile = ["exp(exp(x))", "1 / (x - x + eps)", "x**3**3", "sqrt(x) * exp(x)", "max(x, 0)"]
    results = evaluate_many(hostile, task=xor_data, config=TrainConfig(steps=60, seeds=(0,)))
    assert [r.expression for r in results] == hostile
    assert all(r.status in STATUSES for r in results)
    assert results[-1].status == "ok" and results[-1].score is not None
    assert {r.status for r in results[:3]} <= {"nan", "diverged", "ok"}
