"""Fixtures for the evaluator tests: one torch thread, and small task data shared by the whole session."""

from __future__ import annotations

import pytest
import torch

from evaluator import TaskData, get_task


@pytest.fixture(autouse=True, scope="session")
def _one_thread() -> None:
    # Two cores are shared with other test runs and engineers: small nets gain nothing from a second thread.
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def mnist1d_small() -> TaskData:
    """600 generated MNIST-1D examples (400 train / 100 val / 100 test)."""
    return get_task("mnist1d", size=600)


@pytest.fixture(scope="session")
def xor_data() -> TaskData:
    return get_task("xor", size=300)
