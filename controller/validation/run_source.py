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

    Distinct means one per fingerprint, named by the spelling of its best-scoring row; ties go to the function met
    first.
    """
    path = resolve_run(run)
    try:
        frame = load_run(path)
    except (StoreError, sqlite3.Error, OSError) as error:  # pandas raises its DatabaseError, an OSError
        raise RunSourceError(f"cannot read the run store {path}: {error}") from None
    ok = frame[(frame["status"] == "ok") & frame["score"].notna()]
    if ok.empty:
        raise RunSourceError(f"the run store {path} holds no successful evaluation yet")
    best = ok.sort_values(["score", "id"], ascending=[False, True]).drop_duplicates("fingerprint")
    first_seen = ok.groupby("fingerprint")["id"].min()
    best = best.assign(first_seen=best["fingerprint"].map(first_seen))
    best = best.sort_values(["score", "first_seen"], ascending=[False, True]).head(int(top))
    functions = best["canonical"].tolist()
    return functions, dict(zip(functions, best["score"].astype(float), strict=True)), path
