"""The docstring examples of the evaluator's public modules run as tests."""

from __future__ import annotations

import doctest

import pytest

import evaluator
from evaluator import api, config, models, result, tasks


@pytest.mark.parametrize("module", [evaluator, api, config, models, result, tasks], ids=lambda m: m.__name__)
def test_docstring_examples_run(module) -> None:
    outcome = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert outcome.attempted > 0
    assert outcome.failed == 0
