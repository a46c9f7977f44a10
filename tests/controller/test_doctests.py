"""The docstring examples of the controller's public classes and functions run as tests."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["controller", "controller.store", "controller.strategies", "controller.strategies.rl",
           "controller.strategies.random_search", "controller.strategies.evolution", "controller.strategies.tpe",
           "controller.strategies.exhaustive", "controller.tabular", "controller.arena",
           "controller.table_replay"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name: str) -> None:
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
