"""Validation trials: the seeds of one function train as one pack, on a real local Ray through Tune, and a resume
trains only the missing seeds."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.validation.store import ValidationStore
from controller.validation.trial import train_seeds
from controller.validation.tune_runner import TrialSpec, run_grid

TRIAL = {"model": "resnet20_1d", "steps": 4, "task": "mnist1d", "task_options": {"size": 120}, "device": "cpu",
         "recipe": {"batch_size": 16}}


def test_the_seeds_of_a_function_train_together_each_with_its_own_result() -> None:
    together = train_seeds({**TRIAL, "function": "x * sigmoid(beta * x)", "seeds": [0, 1, 2]})
    assert sorted(together) == [0, 1, 2] and {m["status"] for m in together.values()} == {"ok"}
    assert all(len(m["predictions"]) == 20 and m["wall_s"] > 0 for m in together.values())
    alone = train_seeds({**TRIAL, "function": "x * sigmoid(beta * x)", "seeds": [1]})
    # A seed keeps its own weights and data order in a pack: alone it scores what it scored beside the others.
    assert alone[1]["val_acc"] == pytest.approx(together[1]["val_acc"], abs=1e-6)
    assert alone[1]["predictions"] == together[1]["predictions"]


def test_a_function_that_cannot_be_built_is_one_error_per_seed() -> None:
    broken = train_seeds({**TRIAL, "function": "x * sigmod(x)", "seeds": [0, 1]})
    assert sorted(broken) == [0, 1] and {m["status"] for m in broken.values()} == {"error"}
    assert all("sigmod" in m["reason"] for m in broken.values())


@pytest.mark.slow
def test_a_resumed_grid_trains_only_the_missing_seeds_in_one_trial_per_function(local_ray, tmp_path: Path) -> None:
    store = ValidationStore(tmp_path / "v.sqlite")
    store.record("relu", "mlp", 0, task="xor", status="ok", test_acc=0.5, val_acc=0.5, predictions=[0, 1], wall_s=1.0)
    grid = [(f, "mlp", s) for f in ("relu", "tanh") for s in range(3)]
    spec = TrialSpec(task="xor", steps=20, device="cpu", task_options={"size": 120})
    assert run_grid(store, grid, spec, tune_dir=tmp_path / "tune") == 5
    frame = store.frame()
    assert sorted(zip(frame["function"], frame["seed"])) == sorted((f, s) for f, _, s in grid)
    assert frame.set_index(["function", "seed"]).loc[("relu", 0), "wall_s"] == 1.0  # the recorded one is kept
    assert set(frame["status"]) == {"ok"}
    trials = [p for p in (tmp_path / "tune" / "validation").iterdir() if p.is_dir()]
    assert len(trials) == 2, trials  # relu (seeds 1 and 2) and tanh (seeds 0 to 2): one Tune trial each
    assert store.pending(grid) == []
    store.close()
