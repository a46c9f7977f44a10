"""CIFAR-10 and CIFAR-100 through torchvision, from a folder the user filled (never downloaded here)."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch

from evaluator.task_data import TaskData, TaskDataError

__all__ = ["load_cifar"]

# torchvision's folder and download page per task: what the error message tells the user to fetch.
_SOURCES = {
    "cifar10": ("cifar-10-batches-py", "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz", 10),
    "cifar100": ("cifar-100-python", "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz", 100),
}
_VAL_SIZE = 5000  # held out of the 50,000 training images for search scores


@functools.cache
def _dataset_class(which: str) -> type:
    """torchvision's dataset class with the md5 check replaced by a presence check.

    Hashing 170 MB on every load costs seconds per worker; a damaged file still fails loudly when it is unpickled.
    """
    from torchvision.datasets import CIFAR10, CIFAR100

    base = CIFAR10 if which == "cifar10" else CIFAR100
    return type(
        f"PresenceChecked{base.__name__}",
        (base,),
        {
            "train_list": [[name, None] for name, _ in base.train_list],
            "test_list": [[name, None] for name, _ in base.test_list],
            "meta": {**base.meta, "md5": None},
        },
    )


def load_cifar(which: str, data_dir: str | os.PathLike | None, size: int | None = None, seed: int = 0) -> TaskData:
    """Return CIFAR as (3, 32, 32) float32 images normalised per channel; TaskDataError if the files are absent.

    The validation split is 5,000 training images chosen with `seed` (fewer when `size` trims the training set).
    """
    folder, url, classes = _SOURCES[which]
    if data_dir is None:
        raise TaskDataError(f"task {which!r} needs --data-dir: a folder holding {folder}/ (extract {url} there)")
    root = Path(data_dir).expanduser()
    if not (root / folder).is_dir():
        raise TaskDataError(f"{which} not found: expected {root / folder}/ (download {url} and extract it in {root})")
    try:
        dataset = _dataset_class(which)
        train, test = dataset(str(root), train=True, download=False), dataset(str(root), train=False, download=False)
    except (RuntimeError, OSError, KeyError, ValueError, EOFError) as error:
        raise TaskDataError(f"cannot read {which} from {root / folder}: {error} (re-extract {url} there)") from None
    x_all, y_all = np.asarray(train.data), np.asarray(train.targets, dtype=np.int64)  # (N, 32, 32, 3) uint8
    order = np.random.default_rng(seed).permutation(len(y_all))[:size]
    n_val = min(_VAL_SIZE, len(order) // 5)
    val, fit = order[:n_val], order[n_val:]
    x_test, y_test = np.asarray(test.data), np.asarray(test.targets, dtype=np.int64)

    def images(x: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2))).float().div_(255.0)  # (N, 3, 32, 32)

    x_train = images(x_all[fit])
    mean = x_train.mean(dim=(0, 2, 3), keepdim=True)
    std = x_train.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return TaskData(
        name=which,
        x_train=(x_train - mean) / std,
        y_train=torch.from_numpy(y_all[fit]),
        x_val=(images(x_all[val]) - mean) / std,
        y_val=torch.from_numpy(y_all[val]),
        x_test=(images(x_test) - mean) / std,
        y_test=torch.from_numpy(y_test),
        num_classes=classes,
    )
