"""`python -m controller.rediscovery RUN [RUN ...] --out DIR`: did the search find Swish and the paper's functions?

    python -m controller.rediscovery rl-10k random-10k --out results/rediscovery

For each run store (a name under results/runs/, a run folder or its run.sqlite), read only:

- where the Swish family stands: the leaderboard rank and score of the first Swish-equivalent function, the first
  Swish-near one and the first near one that is not equivalent (`search_space.swish_family` states both rules);
- which of the paper's reported top functions (`search_space.paper_functions`) the run met: a row of any status
  (trained, duplicate, screened, skipped) computing it up to a positive scale and an offset (affine fingerprint),
  with the candidate at which it was first met, and its rank and score where it was trained;
- progress: best full-schedule score so far against candidates considered and against training steps spent
  (`controller.progress` says what is counted).

Ranks are those of `controller.leaderboard`: one row per distinct function; in a cascade, the functions that reached
the highest rung come first. DIR receives rediscovery.md (also printed), swish.csv, paper_functions.csv, progress.csv
and progress.png (one line per run).
"""

from __future__ import annotations

import argparse
import logging
import sqlite3
import sys
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from controller.leaderboard_frame import leaderboard_frame, resolve_run
from controller.progress import plot_progress, progress_frame
from controller.rediscovery_report import render_markdown
from controller.store import RunStore, StoreError, load_run

__all__ = ["RunFindings", "analyse_run", "main", "paper_functions_met", "swish_standing"]

logger = logging.getLogger(__name__)

SWISH_KINDS = ("first Swish-equivalent", "first Swish-near", "first Swish-near, not equivalent",
               "first Swish-near up to a flip")


@dataclass
class RunFindings:
    """What `analyse_run` found in one run: its summary, the Swish standing, the paper functions and progress."""

    name: str
    summary: dict[str, object]  # run, strategy, candidates, functions, trained, steps, best_score, ...
    swish: pd.DataFrame  # one row per SWISH_KINDS entry: kind, rank, expression, score, status, why
    paper: pd.DataFrame  # one row per paper function: name, paper, met, first_candidate, spelling, rank, score, ...
    progress: pd.DataFrame  # controller.progress.progress_frame


def _match(expression: str) -> tuple[bool, bool, bool, str]:
    """Return (equivalent, near, near up to a flip, reason) of a function's text; a text that cannot be judged is none
    of them."""
    from search_space import swish_match

    try:
        match = swish_match(expression)
    except Exception as error:  # a candidate that cannot be parsed or probed again is simply not Swish
        return False, False, False, f"not judged: {error}"
    return match.equivalent, match.near, match.near or match.flipped is not None, match.reason


def swish_standing(board: pd.DataFrame) -> pd.DataFrame:
    """Return the first Swish-equivalent, Swish-near, near-but-not-equivalent and near-up-to-a-flip (mirrored in x or
    negated: `search_space.swish_family`) functions of a leaderboard.

    Walks the board in rank order and stops once all four are found; a kind never met has rank None.
    """
    found: dict[str, dict[str, object]] = {}
    for row in board.itertuples():
        equivalent, near, flipped, reason = _match(row.expression)
        for kind, hit in zip(SWISH_KINDS, (equivalent, near, near and not equivalent, flipped), strict=True):
            if hit and kind not in found:
                found[kind] = {"kind": kind, "rank": int(row.rank), "expression": row.expression,
                               "score": row.score, "status": row.status, "why": reason}
        if len(found) == len(SWISH_KINDS):
            break
    empty = {"rank": None, "expression": None, "score": None, "status": None, "why": "not met"}
    return pd.DataFrame([found.get(kind, {"kind": kind, **empty}) for kind in SWISH_KINDS]).astype({"rank": "Int64"})


def _affine_codes(frame: pd.DataFrame, column_is_affine: bool) -> dict[str, str | None]:
    """Return stored fingerprint -> affine fingerprint, one per distinct stored function.

    A run that standardised its outputs stored affine fingerprints already; that is checked on its first function
    (a store written by an older fingerprint would not match) before the column is trusted. Otherwise each
    function's first spelling is fingerprinted again.
    """
    from search_space import parse

    def code(text: str) -> str | None:
        try:
            return parse(text).fingerprint(affine=True)
        except Exception:  # a spelling this version cannot read meets nothing
            return None

    firsts = frame.drop_duplicates("fingerprint")
    if column_is_affine and not firsts.empty and code(firsts.iloc[0]["canonical"]) == firsts.iloc[0]["fingerprint"]:
        return {stored: stored for stored in firsts["fingerprint"]}
    logger.info("fingerprinting %d functions up to scale and offset", len(firsts))
    return {stored: code(text) for stored, text in zip(firsts["fingerprint"], firsts["canonical"])}


def paper_functions_met(frame: pd.DataFrame, board: pd.DataFrame, codes: dict[str, str | None],
                        progress: pd.DataFrame) -> pd.DataFrame:
    """Return one row per paper function: whether the run met it, where first, as what, and its rank and score.

    `codes` maps the run's stored fingerprints to affine ones (`_affine_codes`); where several stored functions
    share an affine code (a run that did not standardise), the best ranked one is reported. Where it was first met
    is the candidate count of `progress` (`controller.progress.progress_frame`) at that row: the `--budget` count.
    """
    from search_space import PAPER_FUNCTIONS

    candidate_at = dict(zip(progress["row"], progress["candidates"]))
    by_code = board.assign(code=board["fingerprint"].map(codes))
    rows = []
    for name, function in PAPER_FUNCTIONS.items():
        target = function.expr().fingerprint(affine=True)
        stored = {fp for fp, code in codes.items() if code == target}
        met = frame[frame["fingerprint"].isin(stored)].sort_values("id")
        ranked = by_code[by_code["code"] == target].sort_values("rank")
        best = ranked.iloc[0] if not ranked.empty else None
        rows.append({
            "name": name, "paper": function.expression, "met": not met.empty,
            "first_candidate": int(candidate_at[met.iloc[0]["id"]]) if not met.empty else None,
            "spelling": met.iloc[0]["canonical"] if not met.empty else None, "rows": len(met),
            "rank": int(best["rank"]) if best is not None else None,
            "score": best["score"] if best is not None and best["status"] == "ok" else None,
            "status": best["status"] if best is not None else None,
        })
    return pd.DataFrame(rows).astype({"first_candidate": "Int64", "rank": "Int64"})


def analyse_run(run: str | Path) -> RunFindings:
    """Return the findings of one run store (a name under results/runs/, a run folder or its run.sqlite)."""
    path = resolve_run(run)
    frame = load_run(path)
    with RunStore(path, create=False) as store:
        config = store.get_meta().get("config") or {}
    name = path.parent.name or str(run)
    if frame.empty:
        raise ValueError(f"the run store {path} holds no evaluations yet")
    board = leaderboard_frame(frame, properties=False)
    progress = progress_frame(frame)
    last = progress.iloc[-1]
    summary = {
        "run": name, "strategy": frame["strategy"].mode().iloc[0], "candidates": int(last["candidates"]),
        "proposals": int(last["proposals"]),
        "functions": len(board), "trained": int(last["trained"]), "steps": int(last["steps"]),
        "unrecorded_steps": int(last["unrecorded_steps"]), "best_score": last["best_score"],
        "best_expression": last["best_expression"], "path": str(path),
    }
    codes = _affine_codes(frame, config.get("act_norm") == "standardize")
    paper = paper_functions_met(frame, board, codes, progress)
    return RunFindings(name, summary, swish_standing(board), paper, progress)


def write_outputs(findings: list[RunFindings], out: Path) -> str:
    """Write rediscovery.md, swish.csv, paper_functions.csv, progress.csv and progress.png into `out`; return the
    markdown."""
    out.mkdir(parents=True, exist_ok=True)
    labelled = {f.name: f for f in findings}
    pd.concat([f.swish.assign(run=name) for name, f in labelled.items()]).to_csv(out / "swish.csv", index=False)
    pd.concat([f.paper.assign(run=name) for name, f in labelled.items()]).to_csv(
        out / "paper_functions.csv", index=False)
    pd.concat([f.progress.assign(run=name, strategy=f.summary["strategy"]) for name, f in labelled.items()]).to_csv(
        out / "progress.csv", index=False)
    plot_progress({f"{name} ({f.summary['strategy']})": f.progress for name, f in labelled.items()},
                  out / "progress.png")
    markdown = render_markdown(findings, plot="progress.png")
    (out / "rediscovery.md").write_text(markdown + "\n")
    return markdown


def _unique_names(findings: list[RunFindings]) -> None:
    """Give runs that share a folder name a numbered suffix, so that their rows and lines stay apart."""
    seen: dict[str, int] = {}
    for f in findings:
        seen[f.name] = seen.get(f.name, 0) + 1
        if seen[f.name] > 1:
            f.name = f"{f.name}-{seen[f.name]}"
            f.summary["run"] = f.name


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m controller.rediscovery", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", metavar="RUN", help="run name (results/runs/NAME), folder or run.sqlite")
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="folder for the report and curves")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the rediscovery CLI; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        paths = [resolve_run(run) for run in args.runs]  # every name checked before the first run is read
        findings = [analyse_run(path) for path in paths]
        _unique_names(findings)
        markdown = write_outputs(findings, args.out)
    except (StoreError, ValueError, sqlite3.Error, OSError) as error:
        print(f"error: {' '.join(str(error).split())}", file=sys.stderr)
        return 2
    print(markdown)
    print(f"wrote {args.out}/rediscovery.md, swish.csv, paper_functions.csv, progress.csv, progress.png",
          file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
