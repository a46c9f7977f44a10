"""What to try next and how a run goes: search strategies, the run store, the Ray run loop and the CLI.

>>> from search_space import Space
>>> from controller import create_strategy
>>> strategy = create_strategy("evolution", Space(units=1, ops="small"), seed=0)
>>> proposal = strategy.ask()
>>> strategy.tell(proposal.trial_id, "ok", 0.7)
"""

from __future__ import annotations

from controller.leaderboard_frame import leaderboard_frame
from controller.store import RunStore, StoreError, load_run
from controller.strategies import (
    DEFAULT_STRATEGY,
    STRATEGIES,
    Proposal,
    SearchExhausted,
    Strategy,
    create_strategy,
)

_TABULAR = ("ReplayTrace", "export_table", "load_table", "replay", "save_table", "targets")


def __getattr__(name: str) -> object:
    """Import the tabular benchmark's names on first use (so `python -m controller.tabular` runs it only once)."""
    if name in _TABULAR:
        import controller.tabular

        return getattr(controller.tabular, name)
    raise AttributeError(f"module 'controller' has no attribute {name!r}")

__all__ = [
    "DEFAULT_STRATEGY",
    "STRATEGIES",
    "Proposal",
    "ReplayTrace",
    "RunStore",
    "SearchExhausted",
    "StoreError",
    "Strategy",
    "create_strategy",
    "export_table",
    "leaderboard_frame",
    "load_run",
    "load_table",
    "replay",
    "save_table",
    "targets",
]
