"""A tabular benchmark: every distinct function of a space, scored once, as a DataFrame that strategies replay.

A table is exported from a normal run store (an exhaustive run; it may still be going, then the table is partial):
one row per distinct function (by the run's fingerprint: up to scale and offset for standardised activations),
screened-out functions included with their reason, and every token sequence of the space that spells it, so a
replay maps a proposal to its row without computing fingerprints. `controller.table_replay` drives a strategy against it
with the run loop's rules and no training.

>>> from controller.tabular import example_table, replay, targets
>>> table = example_table()                       # or load_table("results/tables/paper-1unit.csv.gz")
>>> trace = replay("random", table, budget=30, seed=0)
>>> trace.evaluations, len(trace.best_so_far())
(30, 30)
>>> trace.evaluations_to(targets(table)["best"]) in (None, *range(1, 31))
True
"""

from __future__ import annotations

import functools
import gzip
import itertools
import json
import math
import statistics
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from controller.config import RunConfig
from controller.store import RunStore, load_run
from controller.table_replay import ReplayTrace, TableIndex, replay
from search_space import Space
from search_space.known import fingerprint_labels

__all__ = ["ReplayTrace", "TableIndex", "example_table", "export_table", "format_tokens", "load_table",
           "parse_tokens", "replay", "save_table", "table_space", "targets", "top_fingerprints"]

_HEADER = "# actsearch-table "
_SHAPE_COLUMNS = ("monotonic", "smooth", "bounded_below", "bounded_above", "value_at_0", "slope_at_0",
                  "slope_neg_inf", "slope_pos_inf", "bump_position", "bump_depth")
REQUIRED_COLUMNS = ("expression", "fingerprint", "tokens", "status", "val_acc")


def format_tokens(tokens: Iterable[int]) -> str:
    """Return a token sequence as compact text: `[0, 3, 0, 5, 2]` -> `"0.3.0.5.2"`."""
    return ".".join(str(int(token)) for token in tokens)


def parse_tokens(text: str) -> list[int]:
    """Return the token sequence of `format_tokens` text."""
    return [int(token) for token in str(text).split(".")]


def _seeds_text(values: Iterable[float] | None) -> str:
    return " ".join(f"{value:.6g}" for value in values) if values else ""


def _mean(values: list[float] | None) -> float:
    return statistics.fmean(values) if values else math.nan


@functools.lru_cache(maxsize=4)
def _spellings(space: Space, affine: bool) -> dict[str, list[tuple[str, list[int]]]]:
    """Return fingerprint -> [(text, tokens)] for every token sequence of the space (shortest text first).

    Cached (a minute or two for the 6,250 sequences of the 1-unit paper space); callers must not modify it."""
    forms: dict[str, list[tuple[str, list[int]]]] = {}
    for tokens in itertools.product(*(range(size) for size in space.vocab_sizes())):
        expr = space.decode(list(tokens))
        forms.setdefault(expr.fingerprint(affine=affine), []).append((str(expr), list(tokens)))
    for spelled in forms.values():
        spelled.sort(key=lambda form: (len(form[0]), form[0], form[1]))
    return forms


def _row(first: pd.Series, spelled: list[tuple[str, list[int]]], known: dict[str, str],
         eval_steps: list[int]) -> dict[str, Any]:
    metrics = first["metrics"] or {}
    ok = first["status"] == "ok"
    expression, tokens = spelled[0] if spelled else (first["canonical"], first["tokens"])
    row: dict[str, Any] = {
        "expression": expression, "canonical": first["canonical"], "fingerprint": first["fingerprint"],
        "tokens": format_tokens(tokens), "status": first["status"], "reason": first["reason"] or "",
        "val_acc": first["score"] if ok else math.nan, "val_acc_std": metrics.get("val_acc_std"),
        "val_acc_seeds": _seeds_text(metrics.get("per_seed_val_acc")),
        "test_acc": metrics.get("test_acc"), "test_acc_std": metrics.get("test_acc_std"), "loss": metrics.get("loss"),
        "dead_rate": metrics.get("dead_rate"), "pred_diff": metrics.get("pred_diff"),
        "act_cost": metrics.get("act_cost"), "grad_norm_init": metrics.get("grad_norm_init"),
        "seeds": len(first["seeds"] or []), "known": known.get(first["fingerprint"], ""),
        "forms": len(spelled), "spellings": ";".join(format_tokens(t) for _, t in spelled), "run_row": first["id"],
    }
    at = metrics.get("val_acc_at") or {}
    for step in eval_steps:
        row[f"val_acc_at_{step}"] = _mean(at.get(str(step)))
        row[f"val_acc_at_{step}_seeds"] = _seeds_text(at.get(str(step)))
    return row


def export_table(run: str | Path, shapes: bool = True, spellings: bool = True) -> pd.DataFrame:
    """Return the table of a run store: one row per distinct function, best `val_acc` first.

    `run` is a run.sqlite path, its folder or a run name under results/runs/. `spellings=False` skips mapping every
    token sequence of the space to its function (the table then replays by computing fingerprints);
    `shapes=False` skips the shape columns. `table.attrs` holds the run's space, recipe and versions.
    """
    from controller.leaderboard_frame import _shape, resolve_run

    path = resolve_run(run)
    frame = load_run(path)
    with RunStore(path, create=False) as store:
        meta = store.get_meta()
    config = meta.get("config") or {}
    if "units" not in config or "ops" not in config:
        raise ValueError(f"{path} holds no run config (units, ops); is it a run store written by controller.run?")
    space = Space(units=config["units"], ops=config["ops"])
    affine = config.get("act_norm") == "standardize"
    eval_steps = sorted(int(step) for step in config.get("eval_steps") or [])
    forms = _spellings(space, affine) if spellings else {}
    known = fingerprint_labels(affine)
    firsts = frame[~frame["duplicate"]].drop_duplicates("fingerprint") if not frame.empty else frame
    rows = [_row(first, forms.get(first["fingerprint"], []), known, eval_steps) for _, first in firsts.iterrows()]
    table = pd.DataFrame(rows)
    if not table.empty and shapes:
        shape = pd.DataFrame([_shape(text) for text in table["expression"]], index=table.index)
        table = table.join(shape.reindex(columns=list(_SHAPE_COLUMNS)))
    if not table.empty:
        table = table.sort_values(["val_acc", "run_row"], ascending=[False, True], na_position="last")
    table = table.reset_index(drop=True)
    table.attrs = {
        "format": 1, "units": config["units"], "ops": config["ops"], "affine": affine, "task": config.get("task"),
        "model": config.get("model"), "seeds": config.get("seeds"),
        "steps": RunConfig.from_dict({"budget": 1, **config}).schedule_steps,  # the effective length, also unset
        "eval_steps": eval_steps, "recipe": {key: config.get(key) for key in
                                             ("lr", "optimizer", "schedule", "batch_size", "weight_decay", "init",
                                              "act_norm")},
        "source": str(path), "run_rows": len(frame), "read_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "functions": len(table), "functions_in_space": len(forms) if spellings else None,
        "versions": meta.get("versions", {}), "command": meta.get("command", ""),
    }
    return table


def table_space(table: pd.DataFrame) -> Space:
    """Return the search space a table covers (from `table.attrs`)."""
    if "units" not in table.attrs or "ops" not in table.attrs:
        raise ValueError("this table does not say its space (table.attrs needs units and ops); load it with "
                         "controller.tabular.load_table or build it with export_table")
    return Space(units=table.attrs["units"], ops=table.attrs["ops"])


def save_table(table: pd.DataFrame, path: str | Path) -> Path:
    """Write a table to `.csv.gz`/`.csv` (a JSON header line holds `table.attrs`) or `.parquet`; return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".parquet":
        table.to_parquet(path, index=False)  # pandas keeps table.attrs in the file's metadata
        return path
    if not path.name.endswith((".csv", ".csv.gz")):
        raise ValueError(f"a table is saved as .csv.gz, .csv or .parquet, got {str(path)!r}")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "wt", encoding="utf-8", newline="") as handle:
        handle.write(_HEADER + json.dumps(table.attrs, sort_keys=True, default=str) + "\n")
        table.to_csv(handle, index=False, float_format="%.6g", lineterminator="\n")
    return path


def load_table(path: str | Path) -> pd.DataFrame:
    """Return a table written by `save_table` (or `python -m controller.tabular export`) as a DataFrame."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no table at {str(path)!r}; write one with python -m controller.tabular export RUN --out F")
    if path.suffix == ".parquet":
        table = pd.read_parquet(path)
    else:
        opener = gzip.open if path.suffix == ".gz" else open
        try:
            with opener(path, "rt", encoding="utf-8") as handle:
                first = handle.readline()
                attrs = json.loads(first[len(_HEADER):]) if first.startswith(_HEADER) else {}
                if not attrs:
                    handle.seek(0)
                table = pd.read_csv(handle, keep_default_na=False, na_values=[""], dtype={"tokens": str})
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, pd.errors.ParserError) as error:
            raise ValueError(f"{str(path)!r} is not a readable table ({type(error).__name__}: {error})") from None
        table.attrs = attrs
    missing = [column for column in REQUIRED_COLUMNS if column not in table.columns]
    if missing:
        raise ValueError(f"{str(path)!r} is not an actsearch table: no column {', '.join(missing)}")
    for column in ("reason", "known", "spellings", "canonical"):
        if column in table.columns:
            table[column] = table[column].astype(object).fillna("").astype(str)  # an all-empty column reads as float
    for column in [name for name in table.columns if name.endswith("_seeds")]:  # one seed reads back as a number
        table[column] = table[column].map(lambda v: v if isinstance(v, str) else "" if pd.isna(v) else f"{v:.6g}")
    return table


def targets(table: pd.DataFrame, top_fraction: float = 0.01) -> dict[str, Any]:
    """Return the scores a replay aims for: the table's best, the top-`top_fraction` threshold, and relu + noise.

    Ranks count the trained functions (screened ones excluded, failures last). The seed noise is the median over
    the ok functions of the sample sd (ddof 1) of their per-seed validation accuracies; `beats_relu` is relu's mean
    plus twice that (None when relu is not in the table or the table has one seed).
    """
    trained = table[table["status"] != "screened"]
    scores = sorted(trained["val_acc"].fillna(-math.inf), reverse=True)
    if not scores or scores[0] == -math.inf:
        raise ValueError("the table has no successfully trained function to aim for")
    top = max(1, math.ceil(top_fraction * len(scores)))
    per_seed = trained.loc[trained["status"] == "ok", "val_acc_seeds"] if "val_acc_seeds" in trained else []
    sds = [statistics.stdev(values) for values in map(parse_seeds, per_seed) if len(values) > 1]
    noise = statistics.median(sds) if sds else None
    is_relu = trained["known"] == "relu" if "known" in trained else pd.Series(False, index=trained.index)
    relu = trained[is_relu & (trained["status"] == "ok")]
    relu_score = float(relu["val_acc"].iloc[0]) if not relu.empty else None
    return {"best": scores[0], "top": top, "top_threshold": scores[top - 1], "trained": len(scores),
            "noise": noise, "relu": relu_score,
            "beats_relu": relu_score + 2 * noise if relu_score is not None and noise is not None else None}


def top_fingerprints(table: pd.DataFrame, top_fraction: float = 0.01) -> set[str]:
    """Return the fingerprints of the table's top-`top_fraction` functions (mean score over seeds at or above the
    `targets` threshold; ties included): the functions a search is said to have found once one is fully trained."""
    threshold = targets(table, top_fraction)["top_threshold"]
    best = table[(table["status"] == "ok") & (table["val_acc"] >= threshold)]
    return set(best["fingerprint"])


def parse_seeds(text: object) -> list[float]:
    """Return the per-seed values of a `*_seeds` column's text (empty for a missing value)."""
    if not isinstance(text, str) or not text.strip():
        return []
    return [float(value) for value in text.split()]


def example_table() -> pd.DataFrame:
    """Return a tiny made-up table of the 1-unit `small` space (scores are a fixed function of the expression,
    not measurements): for examples and tests of replay. Like a run with `--eval-steps 50 150`, it also holds
    accuracies after 50 and 150 of its 300 steps, which rank the functions only roughly as the final ones do."""
    space = Space(units=1, ops="small")
    rows = []
    for fingerprint, spelled in _spellings(space, affine=True).items():
        text, tokens = spelled[0]
        expr = space.decode(tokens)
        verdict = expr.screen()
        code = sum(map(ord, text))
        score = (code * 0.618034) % 1.0
        status = "ok" if not verdict.ok or score > 0.1 else "nan"
        status = "screened" if not verdict.ok else status
        ok = status == "ok"
        row = {"expression": text, "fingerprint": fingerprint, "tokens": format_tokens(tokens), "status": status,
               "reason": verdict.reason, "val_acc": score if ok else math.nan,
               "val_acc_seeds": _seeds_text([score - 0.01, score, score + 0.01] if ok else []), "known": "",
               "spellings": ";".join(format_tokens(t) for _, t in spelled)}
        for step, (share, mix) in {50: (0.5, 0.414214), 150: (0.8, 0.732051)}.items():
            early = score * (share + (1 - share) * ((code * mix) % 1.0))  # a made-up, noisy learning curve
            row[f"val_acc_at_{step}"] = early if ok else math.nan
            row[f"val_acc_at_{step}_seeds"] = _seeds_text([early - 0.01, early, early + 0.01] if ok else [])
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs = {"format": 1, "units": 1, "ops": "small", "affine": True, "functions_in_space": len(rows),
                   "steps": 300, "eval_steps": [50, 150]}
    return table


if __name__ == "__main__":
    import sys

    from controller.tabular_cli import main

    sys.exit(main())
