"""Reads the best functions of a finished (or running) search from its run store, read-only.

The evaluator does not import the controller (dependencies point one way), so this reads the run store's
documented `evaluations` table directly: one row per evaluation with `canonical`, `fingerprint`, `status`, `score`.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

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
    """Return the run's `top` best distinct functions (canonical text), their search scores, and the store path."""
    path = resolve_run(run)
    query = (
        "SELECT canonical, fingerprint, MAX(score) FROM evaluations WHERE status = 'ok' AND score IS NOT NULL "
        "GROUP BY fingerprint ORDER BY MAX(score) DESC, MIN(id) LIMIT ?"
    )
    try:
        with closing(sqlite3.connect(f"file:{path.resolve()}?mode=ro", uri=True)) as db:
            rows = db.execute(query, (int(top),)).fetchall()
    except sqlite3.Error as error:
        raise RunSourceError(f"cannot read the run store {path}: {error}") from None
    if not rows:
        raise RunSourceError(f"the run store {path} holds no successful evaluation yet")
    return [canonical for canonical, _, _ in rows], {canonical: score for canonical, _, score in rows}, path
