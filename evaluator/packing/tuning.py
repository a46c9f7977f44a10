"""Measure the fastest pack size K for this machine once, then reuse it (like `torch.backends.cudnn.benchmark`).

The best K depends on the machine more than on the code: a packed step streams every activation through the cache,
so on a CPU with 2 MiB of L2 per core the ResNet proxy trains fastest in packs of 2 (K=8 keeps its tensors out of
L2: 1.54 against 1.39 candidates/s in two worker processes), while on a CPU with 1 MiB it was K=8, and a GPU wants
packs of hundreds. A fixed table cannot know which machine it runs on, so the first packed training of a
(model, input shape, device, threads) on a machine times a few steps at each K in `CANDIDATE_PACK_SIZES` and keeps
the fastest per candidate-step; the choice is cached under `cache_dir()` and shared by the worker processes (one
measures, the others wait for it). Set ACTSEARCH_PACK_TUNING=0 to use the fixed `PACK_SIZES` table instead. The
steps timed are the training loop's own (`evaluator.step.training_step`).

Tuning changes only how candidates are grouped: every slot keeps its own weights, data order and activation, so a
candidate's result does not depend on K (tests/evaluator/test_packed.py).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import math
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import torch

from evaluator.config import TrainConfig
from evaluator.step import make_optimizer, training_step
from evaluator.tasks import cache_dir

__all__ = ["CANDIDATE_PACK_SIZES", "TUNING_ENV", "measure_pack_sizes", "tuned_pack_size", "tuning_enabled"]

log = logging.getLogger(__name__)

TUNING_ENV = "ACTSEARCH_PACK_TUNING"
# The pack sizes tried per device type: from the smallest pack that still shares a step's fixed costs to the
# largest one whose step fits comfortably in memory with the default proxies.
CANDIDATE_PACK_SIZES: dict[str, tuple[int, ...]] = {"cpu": (2, 4, 8, 16, 32), "cuda": (16, 32, 64, 128, 256, 512)}
# Activations of the measured packs: cheap, composite and learnable ones, as a search proposes them.
_MIX = ("relu", "x * sigmoid(beta * x)", "tanh", "gelu", "sin", "elu", "sigmoid", "swish")
_CACHE_FILE = "pack_sizes.json"
_TIME_PER_SIZE_S = 0.25  # timed steps per K and round run at least this long (and at least _MIN_STEPS steps)
_MIN_STEPS, _WARMUP_STEPS, _ROUNDS = 3, 2, 2
_TIE = 0.03  # a smaller K within 3% of the fastest is kept: less work lost to a short last pack, less memory
# Sizes this process already knows, by (cache file, key): a cache that cannot be written costs one measurement per
# process, not one per pack.
_KNOWN: dict[tuple[str, str], int] = {}


def tuning_enabled() -> bool:
    """Whether packed training picks K by measurement (default) rather than from the fixed table."""
    return os.environ.get(TUNING_ENV, "1").strip().lower() not in ("0", "off", "false", "no")


def tuned_pack_size(
    model: str,
    device: torch.device,
    features: int,
    classes: int,
    batch: int,
    build: Callable[[list, int, int], torch.nn.Module],
) -> int:
    """Return the fastest pack size for this packed model on this machine, measuring it on first use.

    `build(factories, features, classes)` makes the packed model; the result is cached per machine, model, input
    shape, batch, device and thread count, so it is measured once per machine, not once per run.
    """
    key = _cache_key(model, device, features, classes, batch)
    path = cache_dir() / _CACHE_FILE
    known = (str(path), key)
    if known not in _KNOWN:
        _KNOWN[known] = _cached_or_measured(path, key, lambda: measure_pack_sizes(
            build, device, features, classes, batch, CANDIDATE_PACK_SIZES[device.type]))
    return _KNOWN[known]


def _cached_or_measured(path: Path, key: str, measure: Callable[[], dict[str, float | None]]) -> int:
    """The pack size stored under `key`, measuring and storing it first when it is not there."""
    cached = _read(path).get(key)
    if isinstance(cached, dict) and isinstance(cached.get("pack_size"), int):
        return cached["pack_size"]
    with _locked(path):  # the first worker measures; the others wait here and then read its result
        table = _read(path)
        entry = table.get(key)
        if not (isinstance(entry, dict) and isinstance(entry.get("pack_size"), int)):
            per_step = measure()
            entry = table[key] = {"pack_size": _fastest(per_step), "ms_per_candidate_step": per_step}
            _write(path, table)
            log.info("pack size for %s on this machine: %d (ms per candidate-step by K: %s)", key,
                     entry["pack_size"], per_step)
    return entry["pack_size"]


def measure_pack_sizes(
    build: Callable[[list, int, int], torch.nn.Module],
    device: torch.device,
    features: int,
    classes: int,
    batch: int,
    sizes: tuple[int, ...],
) -> dict[str, float | None]:
    """Return {K: milliseconds per candidate-step} of training steps on random data, best of a few rounds.

    Rounds alternate over the sizes so that a burst of load on a shared machine does not land on one K only. The
    data are random: a step costs the same whatever the values (a non-finite slot is kept, not dropped, here). A K
    that runs out of memory (a small GPU with the largest packs) gets None, and so does every larger K.
    """
    from search_space import make_activation

    best: dict[int, float] = {k: math.inf for k in sizes}
    too_big = math.inf  # the smallest K that ran out of memory: it and every larger K are left out
    for _ in range(_ROUNDS):
        for k in sizes:
            if k >= too_big:
                continue
            mix = [_MIX[i % len(_MIX)] for i in range(k)]
            factories = [lambda c, spec=spec: make_activation(spec, channels=c) for spec in mix]
            try:
                seconds = _time_steps(build(factories, features, classes).to(device), k, device, features, classes,
                                      batch)
            except (torch.OutOfMemoryError, RuntimeError) as error:  # CPU allocators raise a plain RuntimeError
                if "memory" not in str(error).lower():
                    raise
                too_big = k
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            best[k] = min(best[k], seconds)
    return {str(k): round(seconds * 1e3, 4) if k < too_big else None for k, seconds in best.items()}


def _time_steps(net: torch.nn.Module, packs: int, device: torch.device, features: int, classes: int,
                batch: int) -> float:
    """Seconds per candidate-step of the training loop's steps (default recipe) of a packed model, after a warm-up."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(packs, batch, features, generator=gen).to(device)  # (K, B, features)
    y = torch.randint(0, classes, (packs, batch), generator=gen).to(device)  # (K, B)
    opt = make_optimizer(net.parameters(), TrainConfig(device=device.type), device)

    def step() -> None:
        training_step(net, opt, x, y)

    for _ in range(_WARMUP_STEPS):
        step()
    _sync(device)
    steps, start = 0, time.perf_counter()
    while steps < _MIN_STEPS or time.perf_counter() - start < _TIME_PER_SIZE_S:
        step()
        steps += 1
        if steps % _MIN_STEPS == 0:
            _sync(device)
    _sync(device)
    return (time.perf_counter() - start) / (steps * packs)


def _fastest(per_step: dict[str, float | None]) -> int:
    """The smallest K whose time per candidate-step is within _TIE of the fastest (the smallest K if none ran)."""
    ran = {int(k): ms for k, ms in per_step.items() if ms is not None}
    if not ran:
        return min(int(k) for k in per_step)
    fastest = min(ran.values())
    return min(k for k, ms in ran.items() if ms <= fastest * (1 + _TIE))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _cache_key(model: str, device: torch.device, features: int, classes: int, batch: int) -> str:
    """What the best K depends on: the model and its shapes, the processor or GPU, torch, and the thread count."""
    if device.type == "cuda":
        hardware = torch.cuda.get_device_name(device)
    else:
        hardware = f"{_cpu_name()} x{os.cpu_count()} {torch.backends.cpu.get_cpu_capability()}"
    return (f"{model} in={features} classes={classes} batch={batch} | {device.type}: {hardware} | "
            f"torch {torch.__version__} threads={torch.get_num_threads()}")


@functools.cache
def _cpu_name() -> str:
    """The processor's model name (/proc/cpuinfo on Linux; platform's answer elsewhere), read once per process:
    every packed training builds the cache key, and the processor does not change under it."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def _read(path: Path) -> dict:
    """The cached table, or {} when absent or unreadable (a damaged cache is measured again, not fatal)."""
    try:
        table = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return table if isinstance(table, dict) else {}


def _write(path: Path, table: dict) -> None:
    """Replace the cache file atomically; a cache that cannot be written only costs a measurement next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", dir=path.parent, suffix=".json", delete=False) as tmp:
            json.dump(table, tmp, indent=1, sort_keys=True)
        os.replace(tmp.name, path)
    except OSError as error:
        log.warning("could not cache the measured pack size at %s: %s", path, error)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock next to the cache file (POSIX); elsewhere, or when it cannot be made, no lock."""
    try:
        import fcntl

        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path.with_suffix(".lock"), "a")  # noqa: SIM115 - closed in the finally below
    except (ImportError, OSError):
        yield
        return
    try:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield
    finally:
        handle.close()  # closing releases the lock
