"""Search strategies behind one ask/tell boundary, chosen by name from the `STRATEGIES` table.

>>> from search_space import Space
>>> strategy = create_strategy("random", Space(units=1, ops="small"), seed=0)
>>> proposal = strategy.ask()
>>> strategy.tell(proposal.trial_id, "ok", 0.8)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from controller.strategies.base import FAILURE_STATUSES, Proposal, SearchExhausted, Strategy
from search_space import Space
from search_space.registry import unknown_name

__all__ = [
    "DEFAULT_STRATEGY",
    "FAILURE_STATUSES",
    "STRATEGIES",
    "Proposal",
    "SearchExhausted",
    "Strategy",
    "create_strategy",
]

# name -> "module:Class"; modules are imported only when their row is chosen (optuna is heavy).
STRATEGIES: dict[str, str] = {
    "rl": "controller.strategies.rl:PPOController",
    "random": "controller.strategies.random_search:RandomSearch",
    "evolution": "controller.strategies.evolution:RegularizedEvolution",
    "tpe": "controller.strategies.tpe:TPEStrategy",
    "exhaustive": "controller.strategies.exhaustive:Exhaustive",
    "surrogate": "controller.strategies.surrogate_search:SurrogateSearch",
}
DEFAULT_STRATEGY = "rl"


def strategy_class(name: str) -> type[Strategy]:
    """Return the strategy class registered under `name`; ValueError listing the valid names otherwise."""
    if name not in STRATEGIES:
        raise unknown_name("strategy", name, STRATEGIES)
    module_name, class_name = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def create_strategy(
    name: str | Callable[..., Strategy], space: Space, seed: int = 0, **options: Any
) -> Strategy:
    """Return a strategy built over `space`: `name` is a key of `STRATEGIES` or a callable (a Strategy class)."""
    factory = name if callable(name) else strategy_class(name)
    return factory(space, seed=seed, **options)
