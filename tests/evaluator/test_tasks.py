"""Every task loads offline into float32 train/val/test tensors; CIFAR reads real-format files written here."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from evaluator import TASKS, TaskDataError, get_task
from evaluator.tasks import cache_dir


def _check(data, input_shape: tuple[int, ...], classes: int) -> None:
    assert data.input_shape == input_shape
    assert data.num_classes == classes
    for split in ("train", "val", "test"):
        x, y = getattr(data, f"x_{split}"), getattr(data, f"y_{split}")
        assert x.dtype == torch.float32 and y.dtype == torch.int64
        assert len(x) == len(y) > 0
        assert torch.isfinite(x).all()
        assert 0 <= int(y.min()) and int(y.max()) < classes


def test_mnist1d_generates_offline_with_three_splits(mnist1d_small) -> None:
    _check(mnist1d_small, (40,), 10)
    assert (len(mnist1d_small.y_train), len(mnist1d_small.y_val), len(mnist1d_small.y_test)) == (400, 100, 100)
    assert set(mnist1d_small.y_train.tolist()) == set(range(10))


def test_mnist1d_is_cached_on_disk_and_reloaded_identically(mnist1d_small) -> None:
    files = list(cache_dir().glob("mnist1d-n600-s0-*.npz"))
    assert len(files) == 1
    before = files[0].stat().st_mtime_ns
    start = time.perf_counter()
    again = TASKS["mnist1d"].load(size=600, seed=0)  # bypasses the in-process memo: reads the .npz
    assert time.perf_counter() - start < 1.0
    assert files[0].stat().st_mtime_ns == before
    assert torch.equal(again.x_train, mnist1d_small.x_train) and torch.equal(again.y_test, mnist1d_small.y_test)


def test_mnist1d_seed_changes_the_data(mnist1d_small) -> None:
    other = get_task("mnist1d", size=600, seed=1)
    assert not torch.equal(other.x_train, mnist1d_small.x_train)


def test_digits_and_mnist5k_are_images() -> None:
    _check(get_task("digits"), (1, 8, 8), 10)
    _check(get_task("mnist5k", size=500), (1, 28, 28), 10)


def test_xor_is_a_two_class_2d_task(xor_data) -> None:
    _check(xor_data, (2,), 2)


def test_unknown_task_lists_the_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown task 'mnist2d'.*mnist1d.*cifar10"):
        get_task("mnist2d")


def _write_cifar(root: Path, which: str, per_file: int = 20) -> None:
    """Write tiny files in the real CIFAR python format (pickled dicts of uint8 rows) under root."""
    rng = np.random.default_rng(0)

    def batch(labels_key: str, classes: int) -> dict:
        return {"data": rng.integers(0, 256, size=(per_file, 3072), dtype=np.uint8),
                labels_key: rng.integers(0, classes, size=per_file).tolist()}

    if which == "cifar10":
        folder = root / "cifar-10-batches-py"
        files = {f"data_batch_{i}": batch("labels", 10) for i in range(1, 6)}
        files["test_batch"] = batch("labels", 10)
        files["batches.meta"] = {"label_names": [f"class{i}" for i in range(10)]}
    else:
        folder = root / "cifar-100-python"
        files = {"train": batch("fine_labels", 100), "test": batch("fine_labels", 100),
                 "meta": {"fine_label_names": [f"class{i}" for i in range(100)]}}
    folder.mkdir(parents=True)
    for name, content in files.items():
        with open(folder / name, "wb") as handle:
            pickle.dump(content, handle, protocol=2)


@pytest.mark.parametrize(("which", "classes", "train_images"), [("cifar10", 10, 100), ("cifar100", 100, 20)])
def test_cifar_reads_real_format_files(tmp_path: Path, which: str, classes: int, train_images: int) -> None:
    _write_cifar(tmp_path, which)
    data = get_task(which, data_dir=tmp_path)
    _check(data, (3, 32, 32), classes)
    assert len(data.y_train) + len(data.y_val) == train_images and len(data.y_test) == 20
    # normalised per channel with the training split's statistics
    assert data.x_train.mean(dim=(0, 2, 3)).abs().max() < 1e-4


@pytest.mark.parametrize("which", ["cifar10", "cifar100"])
def test_cifar_absent_says_where_to_put_it(tmp_path: Path, which: str) -> None:
    with pytest.raises(TaskDataError, match=f"{tmp_path}.*(cifar-10-batches-py|cifar-100-python).*download"):
        get_task(which, data_dir=tmp_path)
    with pytest.raises(TaskDataError, match="needs --data-dir"):
        get_task(which)


def test_cifar_damaged_file_is_a_task_data_error(tmp_path: Path) -> None:
    _write_cifar(tmp_path, "cifar10")
    (tmp_path / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(TaskDataError, match="cannot read cifar10"):
        get_task("cifar10", data_dir=tmp_path)
