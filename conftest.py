"""Shared pytest fixtures for the whole suite, the doctests in the packages included."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

# Tests share two cores with each other and with Ray workers: one torch thread each keeps runs predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Point the data cache at a per-session temporary folder so tests never touch the user's cache, and use the
    fixed pack-size table (tests/evaluator/test_packing_tuning.py turns measuring back on where it is the subject):
    pack sizes then do not depend on how fast the test machine happens to be.

    Session-scoped, so that session fixtures which load task data also see it.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("ACTSEARCH_CACHE", str(tmp_path_factory.getbasetemp() / "actsearch-cache"))
        patch.setenv("ACTSEARCH_PACK_TUNING", "0")
        yield
