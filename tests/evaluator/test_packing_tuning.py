"""Pack sizes measured on the machine: chosen by timing real packed steps, cached, shared, and used by the loop."""

from __future__ import annotations

import json
import logging
import multiprocessing as mp
import os

import pytest
import torch

from evaluator import TrainConfig, training
from evaluator.packing import PACK_SIZES, TUNING_ENV, tuned_pack_size, tuning_builder
from evaluator.packing import tuning as pack_tuning

CPU = torch.device("cpu")
SMALL = {"features": 12, "classes": 3, "batch": 16}  # a small MLP keeps a measurement well under a second


_build_mlp = tuning_builder("mlp")


@pytest.fixture()
def tuning(monkeypatch: pytest.MonkeyPatch, tmp_path) -> dict:
    """Measuring on, in a fresh cache, over K in (2, 4) with short timings; returns the cache file's path."""
    monkeypatch.setenv(TUNING_ENV, "1")
    monkeypatch.setenv("ACTSEARCH_CACHE", str(tmp_path))
    monkeypatch.setitem(pack_tuning.CANDIDATE_PACK_SIZES, "cpu", (2, 4))
    monkeypatch.setattr(pack_tuning, "_TIME_PER_SIZE_S", 0.02)
    monkeypatch.setattr(pack_tuning, "_KNOWN", {})  # what this process already knows
    return {"cache": tmp_path / "pack_sizes.json"}


def test_the_fastest_pack_size_is_measured_once_and_cached(tuning, monkeypatch: pytest.MonkeyPatch) -> None:
    measured = []
    real_measure = pack_tuning.measure_pack_sizes
    monkeypatch.setattr(pack_tuning, "measure_pack_sizes", lambda *a, **k: measured.append(1) or real_measure(*a, **k))

    first = tuned_pack_size("mlp", CPU, **SMALL, build=_build_mlp)
    pack_tuning._KNOWN.clear()  # as in a new process: only the file knows
    second = tuned_pack_size("mlp", CPU, **SMALL, build=_build_mlp)

    assert first == second and first in (2, 4)
    assert len(measured) == 1  # the second call read the cache file
    (entry,) = json.loads(tuning["cache"].read_text()).values()
    times = entry["ms_per_candidate_step"]
    assert set(times) == {"2", "4"} and all(ms > 0 for ms in times.values())
    assert entry["pack_size"] == pack_tuning._fastest(times) == first


def test_the_cache_key_separates_shapes_and_thread_counts() -> None:
    key = pack_tuning._cache_key("mlp", CPU, 40, 10, 128)
    assert key != pack_tuning._cache_key("mlp", CPU, 64, 10, 128)
    assert key != pack_tuning._cache_key("resnet8_1d", CPU, 40, 10, 128)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert key != pack_tuning._cache_key("mlp", CPU, 40, 10, 128)
    finally:
        torch.set_num_threads(threads)


def test_a_smaller_pack_within_three_percent_of_the_fastest_wins() -> None:
    assert pack_tuning._fastest({"2": 10.0, "4": 9.8, "8": 9.0}) == 8
    assert pack_tuning._fastest({"2": 9.2, "4": 9.5, "8": 9.0}) == 2
    assert pack_tuning._fastest({"16": 1.0, "32": 1.0}) == 16


def test_packs_that_run_out_of_memory_are_left_out(monkeypatch: pytest.MonkeyPatch) -> None:
    def build_or_fail(factories: list, features: int, classes: int) -> torch.nn.Module:
        if len(factories) >= 4:  # what a GPU too small for the largest packs does
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 6.00 GiB")
        return _build_mlp(factories, features, classes)

    monkeypatch.setattr(pack_tuning, "_TIME_PER_SIZE_S", 0.02)
    times = pack_tuning.measure_pack_sizes(build_or_fail, CPU, SMALL["features"], SMALL["classes"], SMALL["batch"],
                                           (2, 4, 8))
    assert times["4"] is None and times["8"] is None and times["2"] > 0
    assert pack_tuning._fastest(times) == 2
    assert pack_tuning._fastest({"16": None, "32": None}) == 16


def test_other_errors_while_measuring_are_not_swallowed() -> None:
    def broken(factories: list, features: int, classes: int) -> torch.nn.Module:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    with pytest.raises(RuntimeError, match="shapes"):
        pack_tuning.measure_pack_sizes(broken, CPU, 4, 2, 8, (2,))


@pytest.mark.parametrize("damage", ["{not json", "[1, 2]", '{"KEY": {"pack_size": "eight"}}'])
def test_a_damaged_cache_is_measured_again(tuning, damage: str) -> None:
    key = pack_tuning._cache_key("mlp", CPU, *SMALL.values())
    tuning["cache"].write_text(damage.replace("KEY", key))
    assert tuned_pack_size("mlp", CPU, **SMALL, build=_build_mlp) in (2, 4)
    assert isinstance(json.loads(tuning["cache"].read_text())[key]["pack_size"], int)


def test_a_cache_that_cannot_be_written_costs_one_measurement_per_process(monkeypatch: pytest.MonkeyPatch,
                                                                           tmp_path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the cache folder should be")
    monkeypatch.setenv(TUNING_ENV, "1")
    monkeypatch.setenv("ACTSEARCH_CACHE", str(blocker))
    monkeypatch.setitem(pack_tuning.CANDIDATE_PACK_SIZES, "cpu", (2, 4))
    monkeypatch.setattr(pack_tuning, "_TIME_PER_SIZE_S", 0.02)
    monkeypatch.setattr(pack_tuning, "_KNOWN", {})
    measured = []
    real_measure = pack_tuning.measure_pack_sizes
    monkeypatch.setattr(pack_tuning, "measure_pack_sizes", lambda *a, **k: measured.append(1) or real_measure(*a, **k))

    sizes = {tuned_pack_size("mlp", CPU, **SMALL, build=_build_mlp) for _ in range(3)}
    assert len(sizes) == 1 and sizes <= {2, 4}
    assert len(measured) == 1


def test_switched_off_the_loop_uses_the_fixed_table(monkeypatch: pytest.MonkeyPatch, tmp_path, xor_data) -> None:
    monkeypatch.setenv(TUNING_ENV, "0")
    monkeypatch.setenv("ACTSEARCH_CACHE", str(tmp_path))
    monkeypatch.setitem(PACK_SIZES, ("mlp", "cpu"), 3)
    sizes = _pack_sizes_used(monkeypatch, xor_data, candidates=5)
    assert sizes == [3, 2]
    assert not (tmp_path / "pack_sizes.json").exists()


def test_the_loop_splits_candidates_by_the_measured_size(tuning, monkeypatch: pytest.MonkeyPatch,
                                                              xor_data) -> None:
    monkeypatch.setitem(PACK_SIZES, ("mlp", "cpu"), 16)  # the table would put all 5 in one pack
    key = pack_tuning._cache_key("mlp", CPU, xor_data.input_shape[0], xor_data.num_classes, 32)
    tuning["cache"].write_text(json.dumps({key: {"pack_size": 2, "ms_per_candidate_step": {"2": 1.0}}}))

    assert _pack_sizes_used(monkeypatch, xor_data, candidates=5) == [2, 2, 1]


def test_slots_that_fit_the_smallest_pack_are_not_worth_measuring(tuning, monkeypatch: pytest.MonkeyPatch,
                                                                   xor_data) -> None:
    assert _pack_sizes_used(monkeypatch, xor_data, candidates=2) == [2]
    assert not tuning["cache"].exists()


def _pack_sizes_used(monkeypatch: pytest.MonkeyPatch, data, candidates: int) -> list[int]:
    """Train `candidates` candidates packed (real training) and return the sizes of the packs the loop made."""
    sizes, real_train_pack = [], training._train_pack
    monkeypatch.setattr(training, "_train_pack",
                        lambda slots, *a: sizes.append(len(slots)) or real_train_pack(slots, *a))
    config = TrainConfig(steps=3, batch_size=32, device="cpu")
    results = training.train_candidates(["relu", "tanh", "x", "sin", "swish"][:candidates], data, "mlp", config)
    assert [r.status for r in results] == ["ok"] * candidates
    return sizes


def _tune_in_child(barrier, queue, cache: str) -> None:
    """One worker process: tune the same key as its sibling at the same moment; report K and whether it measured."""
    os.environ.update({TUNING_ENV: "1", "ACTSEARCH_CACHE": cache})
    torch.set_num_threads(1)
    pack_tuning.CANDIDATE_PACK_SIZES["cpu"] = (2, 4)
    pack_tuning._TIME_PER_SIZE_S = 0.05
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    pack_tuning.log.addHandler(handler)
    pack_tuning.log.setLevel(logging.INFO)
    barrier.wait()
    size = tuned_pack_size("mlp", CPU, **SMALL, build=_build_mlp)
    queue.put((size, len(records)))


def test_two_workers_starting_together_measure_once_and_agree(tmp_path) -> None:
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(2), ctx.Queue()
    workers = [ctx.Process(target=_tune_in_child, args=(barrier, queue, str(tmp_path))) for _ in range(2)]
    for worker in workers:
        worker.start()
    reports = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    assert reports[0][0] == reports[1][0]
    assert sorted(measured for _, measured in reports) == [0, 1]  # one measured, the other waited and read
