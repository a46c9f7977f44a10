"""The leaderboard of a run as a DataFrame: one row per distinct function, with its score and its shape.

A search meets the same function in many spellings (`max(x, 0)`, `-min(-x, 0)`); the store groups them by
fingerprint, so the leaderboard shows each function once, in its shortest spelling, with how many forms were seen.
The shape columns come from the function itself (`search_space.properties`), so a reader can tell a Swish-like
winner from a ReLU-like one without plotting it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from controller.store import load_run
from controller.validation.run_source import resolve_run

__all__ = ["SORT_KEYS", "leaderboard_frame", "resolve_run"]

SORT_KEYS = ("score", "forms", "cost", "expression")
_PROPERTY_COLUMNS = (
    "monotonic", "smooth", "bounded_below", "bounded_above", "value_at_0", "slope_at_0", "slope_neg_inf",
    "slope_pos_inf", "bump_position", "bump_depth",
)


def _known_labels(frame: pd.DataFrame) -> Callable[[str], str]:
    """Return fingerprint -> the known activation's name, or "", for the run of `frame`.

    A run that standardises its activations stores affine fingerprints (`controller.loop`), others plain ones; the
    run's `act_norm` (`frame.attrs["config"]`, from `load_run`) says which table to ask. A frame without the run's
    settings asks both: the two never coincide for different functions in practice."""
    from search_space.known import fingerprint_labels

    act_norm = frame.attrs.get("config", {}).get("act_norm")
    if act_norm is not None:
        table = fingerprint_labels(act_norm == "standardize")
        return lambda fingerprint: table.get(fingerprint, "")
    affine, plain = fingerprint_labels(True), fingerprint_labels(False)
    return lambda fingerprint: affine.get(fingerprint) or plain.get(fingerprint, "")


def _shape(canonical: str) -> dict[str, object]:
    from search_space import parse
    from search_space.properties import describe

    try:
        return describe(parse(canonical).to_module()).to_dict()
    except Exception:  # a function whose shape cannot be probed still gets its row, with blank shape columns
        return {}


def _group(frame: pd.DataFrame) -> pd.DataFrame:
    """Return one row per fingerprint: its evaluation at the highest rung it reached (a cascade records one per
    rung; flat runs have rung 0 only), its shortest spelling and the count of forms."""
    rows = []
    known = _known_labels(frame)
    if "rung" not in frame:
        frame = frame.assign(rung=0)
    for fingerprint, group in frame.groupby("fingerprint", sort=False):
        trained = group[group["trained"]]
        best = trained if not trained.empty else group
        best = best[best["rung"] == best["rung"].max()]
        ok = best[best["status"] == "ok"]
        chosen = (ok.sort_values("score", ascending=False) if not ok.empty else best).iloc[0]
        forms = sorted(set(group["canonical"]), key=lambda text: (len(text), text))
        metrics = chosen["metrics"] or {}
        seeds = chosen["seeds"] or []
        rows.append(
            {
                "expression": forms[0],
                "score": chosen["score"] if chosen["status"] == "ok" else math.nan,
                "score_std": metrics.get("val_acc_std"),
                "seeds": len(seeds),
                "rung": int(chosen["rung"]),
                "steps": metrics.get("steps"),
                "forms": len(forms),
                "seen": len(group),
                "status": chosen["status"],
                "reason": chosen["reason"],
                "test_acc": chosen["test_acc"],
                "cost": metrics.get("act_cost"),
                "dead_rate": metrics.get("dead_rate"),
                "known": known(fingerprint),
                "fingerprint": fingerprint,
                "first_seen": int(group["id"].min()),
            }
        )
    return pd.DataFrame(rows)


def leaderboard_frame(
    run: str | Path | pd.DataFrame,
    top: int | None = None,
    status: str | None = None,
    sort: str = "score",
    properties: bool = True,
) -> pd.DataFrame:
    """Return the leaderboard of a run (a name, a path, or a `load_run` frame), best first.

    >>> import pandas as pd
    >>> leaderboard_frame(pd.DataFrame(columns=["fingerprint"])).empty
    True
    """
    if sort not in SORT_KEYS:
        raise ValueError(f"unknown sort key {sort!r}; choose one of {', '.join(SORT_KEYS)}")
    frame = run if isinstance(run, pd.DataFrame) else load_run(resolve_run(run))
    board = _group(frame) if not frame.empty else pd.DataFrame()
    if board.empty:
        return board
    if status is not None:
        board = board[board["status"] == status]
    ascending = {"score": False, "forms": False, "cost": True, "expression": True}[sort]
    # A cascade's scores are comparable within a rung only: the functions that climbed highest come first.
    keys = (["rung"] if sort == "score" else []) + [sort, "first_seen"]
    board = board.sort_values(keys, ascending=[False] * (len(keys) - 2) + [ascending, True], na_position="last")
    board.insert(0, "rank", range(1, len(board) + 1))
    board = board.head(top) if top is not None else board
    if properties:
        shapes = pd.DataFrame([_shape(text) for text in board["expression"]], index=board.index)
        board = board.join(shapes.reindex(columns=list(_PROPERTY_COLUMNS)))
    return board.reset_index(drop=True)
