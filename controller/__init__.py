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
from controller.table_replay import ReplayTrace, replay
from controller.tabular import export_table, load_table, save_table, targets

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
