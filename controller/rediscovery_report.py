"""The markdown of `python -m controller.rediscovery`: runs, the Swish family's standing, the paper's functions."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import pandas as pd

if TYPE_CHECKING:
    from controller.rediscovery import RunFindings

__all__ = ["render_markdown"]

_RULES = (
    "Swish-equivalent: c * x * sigmoid(b * x) + d with c > 0 and b fitted in [0.01, 100] at every parameter setting "
    "(so silu and x * sigmoid(beta * x) both count); Swish-near: smooth, flat on the left, linear on the right, one "
    "dip left of 0 below the left limit (`search_space/swish_family.py` states the tolerances); near up to a flip: "
    "near, or its mirror f(-x), its negation -f(x) or both are, flips the neighbouring layers absorb. Ranks are "
    "leaderboard ranks: distinct functions, and in a cascade those that reached the highest rung first."
)


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _score(value: object) -> str:
    return "-" if _missing(value) else f"{float(value):.4f}"


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in rows]


def _function_cell(row: pd.Series) -> str:
    """Return `#rank expression score`, or `not met`."""
    if _missing(row["rank"]):
        return "not met"
    score = _score(row["score"]) if row["status"] == "ok" else str(row["status"])
    return f"#{int(row['rank'])} `{row['expression']}` {score}"


def _paper_cell(row: pd.Series) -> str:
    """Return `#rank score (candidate n)`, the status when it was not trained to a score, or `-` when not met."""
    if not row["met"]:
        return "-"
    where = f"candidate {int(row['first_candidate'])}"
    if row["status"] == "ok" and not _missing(row["score"]):
        return f"#{int(row['rank'])} {_score(row['score'])} ({where})"
    return f"{row['status']} ({where})"


def render_markdown(findings: list[RunFindings], plot: str | None = None) -> str:
    """Return the report as markdown: a summary per run, the Swish standing, the paper's functions, the curves."""
    lines = ["## Rediscovery: the Swish family and the paper's top functions", ""]
    lines += ["Candidates: what `--budget` counts, new functions trained or skipped by the pre-screen; proposals also "
              "count repeats of known functions and those screened out at no cost.", ""]
    lines += _table(
        ["run", "strategy", "candidates", "proposals", "distinct functions", "trained", "training steps",
         "best score (function)"],
        [[f.name, str(f.summary["strategy"]), str(f.summary["candidates"]), str(f.summary["proposals"]),
          str(f.summary["functions"]),
          str(f.summary["trained"]), f"{f.summary['steps']:,}" + (f" (+{f.summary['unrecorded_steps']} rows "
                                                                   "without a step count)"
                                                                   if f.summary["unrecorded_steps"] else ""),
          f"{_score(f.summary['best_score'])} (`{f.summary['best_expression']}`)"
          if not _missing(f.summary["best_score"]) else "-"] for f in findings],
    )
    lines += ["", "### Where the Swish family stands", "", _RULES, ""]
    kinds = list(findings[0].swish["kind"]) if findings else []
    lines += _table(["run", *kinds], [[f.name, *(_function_cell(row) for _, row in f.swish.iterrows())]
                                      for f in findings])
    lines += ["", "### The paper's top functions", "",
              "Met: a row of any status computing the function up to a positive scale and an offset; the cell gives "
              "its leaderboard rank and score, or its status where it was not trained to a score (screened, "
              "skipped, nan...), and the candidate (the budget's count) at which the run first met it.", ""]
    if findings:
        paper = findings[0].paper
        rows = [[f"`{text}`", *(_paper_cell(f.paper.iloc[i]) for f in findings)]
                for i, text in enumerate(paper["paper"])]
        lines += _table(["function", *(f.name for f in findings)], rows)
    if plot:
        lines += ["", "### Progress", "",
                  "Best full-schedule score so far against candidates considered and against training steps spent "
                  "(all seeds; a cascade's promotions count their own steps): `progress.csv`.", "",
                  f"![progress]({plot})"]
    return "\n".join(lines)
