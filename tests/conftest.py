"""Shared pytest fixtures for the whole suite."""

from __future__ import annotations

import os

import pytest

# Tests share two cores with each other and with Ray workers: one torch thread each keeps runs predictable.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Point the data cache at a per-session temporary folder so tests never touch the user's cache."""
    cache = tmp_path_factory.getbasetemp() / "actsearch-cache"
    monkeypatch.setenv("ACTSEARCH_CACHE", str(cache))
