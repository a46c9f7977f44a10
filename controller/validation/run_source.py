"""Reads the best functions of a finished (or running) search from its run store, read-only.

Reading goes through the run store's own API (`controller.store.load_run`), which never takes the writer lease, so a
validation can read a run while its search still writes it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from controller.store import StoreError, load_run

__all__ = ["RunSourceError", "resolve_run", "top_expressions"]

RUNS_DIR = Path("results/runs")


class RunSourceError(ValueError):
    """The run named by `--from-run` cannot be read; the message says where it was looked for."""


def resolve_run(run: str | Path) -> Path:
    """Return the run.sqlite path of a run name (under results/runs/) or of a path to the file or its folder."""
    candidates = [Path(run), Path(run) / "run.sqlite", RUNS_DIR / str(run) / "run.sqlite"]
    for path in candidates:
        if path.is_file():
            return path
    raise RunSourceError(
        f"no run store for {str(run)!r}: looked for {', '.join(str(p) for p in candidates)}; "
        "give a run name from results/runs/ or the path of its run.sqlite"
    )


def top_expressions(run: str | Path, top: int) -> tuple[list[str], dict[str, float], Path]:
    """Return the run's `top` best distinct functions (canonical text), their search scores, and the store path.

    The order and the names are the leaderboard's (`controller.leaderboard_frame`): one function per fingerprint,
    named by its shortest spelling and scored at the highest cascade rung it reached, so a lucky one-seed score at a
    short rung never outranks a function that climbed higher, and the top functions' extra-seed means are what is
    compared; ties go to the function met first.
    """
    from controller.leaderboard_frame import leaderboard_frame  # it imports resolve_run from here

    path = resolve_run(run)
    try:
        frame = load_run(path)
    except (StoreError, sqlite3.Error, OSError) as error:  # pandas raises its DatabaseError, an OSError
        raise RunSourceError(f"cannot read the run store {path}: {error}") from None
    board = leaderboard_frame(frame, status="ok", properties=False)
    if not board.empty:
        board = board[board["score"].notna()]
    if board.empty:
        raise RunSourceError(f"the run store {path} holds no successful evaluation yet")
    best = board.head(int(top))
    functions = best["expression"].tolist()
    return functions, dict(zip(functions, best["score"].astype(float), strict=True)), path
