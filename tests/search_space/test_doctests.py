"""The docstring examples of the public classes and functions run as tests."""

from __future__ import annotations

import doctest

import pytest

import search_space
from search_space import fingerprint, parser, space, torch_module


@pytest.mark.parametrize("module", [search_space, parser, space, fingerprint, torch_module], ids=lambda m: m.__name__)
def test_docstring_examples_run(module) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
