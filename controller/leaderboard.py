"""`python -m controller.leaderboard RUN`: the best functions a search found, with their scores and shapes.

    python -m controller.leaderboard demo --top 10
    python -m controller.leaderboard demo --format markdown --plot demo.png
    python -m controller.leaderboard demo --compare other-run --top 20

RUN is a run name (under results/runs/) or the path of its run.sqlite. Reading never locks out a run that is
still going, so the leaderboard can be watched while the search runs.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import pandas as pd

from controller.leaderboard_frame import SORT_KEYS, leaderboard_frame, resolve_run
from controller.store import StoreError, load_run

__all__ = ["compare_frame", "format_board", "main", "save_frame"]

FORMATS = ("table", "csv", "json", "markdown")
STATUSES = ("ok", "nan", "diverged", "timeout", "error", "screened")


def _num(value: object, spec: str = ".3g") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return format(value, spec) if isinstance(value, int | float) else str(value)


def _display(board: pd.DataFrame) -> pd.DataFrame:
    """Return the human-facing columns: score as mean ± std, bounds and bump in short words."""
    def bounds(row: pd.Series) -> str:
        below = "below" if row.get("bounded_below") is True else ""
        above = "above" if row.get("bounded_above") is True else ""
        return "+".join(b for b in (below, above) if b) or "none"

    def bump(row: pd.Series) -> str:
        position = row.get("bump_position")
        return "-" if position is None or pd.isna(position) else f"{position:.2f} ({row['bump_depth']:.2f})"

    columns = {
        "rank": board["rank"],
        "expression": board["expression"],
        "score": [f"{_num(s, '.4f')} ± {_num(d, '.4f')}" if not pd.isna(s) else "-"
                  for s, d in zip(board["score"], board["score_std"])],
        "seeds": board["seeds"],
        "forms": board["forms"],
        "status": board["status"],
        "known": board["known"].replace("", "-"),
        "monotonic": board.get("monotonic", "-"),
        "smooth": board["smooth"].map({True: "yes", False: "no"}).fillna("-") if "smooth" in board else "-",
        "bounded": board.apply(bounds, axis=1),
        "f(0)": board.get("value_at_0", pd.Series(dtype=float)).map(_num),
        "f'(0)": board.get("slope_at_0", pd.Series(dtype=float)).map(_num),
        "f'(-inf)": board.get("slope_neg_inf", pd.Series(dtype=float)).map(_num),
        "f'(+inf)": board.get("slope_pos_inf", pd.Series(dtype=float)).map(_num),
        "bump (depth)": board.apply(bump, axis=1),
        "cost": board["cost"].map(lambda c: _num(c, ".2f") + "x" if c is not None and not pd.isna(c) else "-"),
    }
    if "rung" in board and board["rung"].nunique() > 1:  # a cascade: the rung and length each score was measured at
        columns = {**dict(list(columns.items())[:4]), "steps": board["steps"].map(
        lambda n: "-" if n is None or pd.isna(n) else str(int(n))), **dict(list(columns.items())[4:])}
    return pd.DataFrame(columns)


def _text_table(frame: pd.DataFrame) -> str:
    cells = [list(map(str, frame.columns))] + [[str(v) for v in row] for row in frame.itertuples(index=False)]
    widths = [max(len(row[i]) for row in cells) for i in range(len(frame.columns))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in cells]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def _markdown(frame: pd.DataFrame) -> str:
    escape = [[str(v).replace("|", "\\|") for v in row] for row in frame.itertuples(index=False)]
    lines = ["| " + " | ".join(map(str, frame.columns)) + " |", "|" + "---|" * len(frame.columns)]
    return "\n".join(lines + ["| " + " | ".join(row) + " |" for row in escape])


def format_board(board: pd.DataFrame, fmt: str) -> str:
    """Return the leaderboard as text in one of FORMATS (csv and json keep every column, raw)."""
    if board.empty:
        return "no evaluations recorded yet" if fmt in ("table", "markdown") else ("[]" if fmt == "json" else "")
    if fmt == "csv":
        return board.to_csv(index=False).rstrip("\n")
    if fmt == "json":
        return json.dumps(json.loads(board.to_json(orient="records")), indent=2)
    shown = _display(board) if "status" in board else board
    return _markdown(shown) if fmt == "markdown" else _text_table(shown)


def compare_frame(runs: dict[str, pd.DataFrame], top: int | None) -> pd.DataFrame:
    """Return one table with a score column per run, over the union of the runs' functions, best first."""
    boards = {name: leaderboard_frame(frame, properties=False) for name, frame in runs.items()}
    merged: pd.DataFrame | None = None
    for name, board in boards.items():
        part = board[["fingerprint", "expression", "score"]].rename(columns={"score": name})
        merged = part if merged is None else merged.merge(part, on="fingerprint", how="outer", suffixes=("", "_"))
        if "expression_" in merged:
            merged["expression"] = merged["expression"].fillna(merged.pop("expression_"))
    merged = merged.assign(best=merged[list(boards)].max(axis=1)).sort_values("best", ascending=False)
    merged.insert(0, "rank", range(1, len(merged) + 1))
    merged = merged.drop(columns=["fingerprint", "best"]).head(top or len(merged))
    for name in boards:
        merged[name] = merged[name].map(lambda s: _num(s, ".4f"))
    return merged.reset_index(drop=True)


def save_frame(frame: pd.DataFrame, path: Path) -> None:
    """Write a frame as CSV or Parquet, by the file name's suffix (Parquet goes through pyarrow, which Ray brings)."""
    if path.suffix == ".csv":
        frame.to_csv(path, index=False)
    elif path.suffix == ".parquet":
        frame.to_parquet(path, index=False)
    else:
        raise ValueError(f"--save needs a .csv or .parquet file name, got {str(path)!r}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m controller.leaderboard", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", help="run name (results/runs/NAME) or path of its run.sqlite")
    parser.add_argument("--top", type=int, default=20, help="rows to show (default 20; 0 for all)")
    parser.add_argument("--status", choices=STATUSES, help="only functions whose evaluation ended so")
    parser.add_argument("--sort", choices=SORT_KEYS, default="score")
    parser.add_argument("--format", choices=FORMATS, default="table")
    parser.add_argument("--compare", nargs="+", default=[], metavar="RUN", help="other runs: a score column each")
    parser.add_argument("--plot", type=Path, metavar="FILE", help="write a .png or .svg of functions and progress")
    parser.add_argument("--save", type=Path, metavar="FILE", help="write every column to a .csv or .parquet file")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the leaderboard CLI; return the exit code."""
    args = _parser().parse_args(argv)
    try:
        names = [args.run, *args.compare]
        paths = [resolve_run(name) for name in names]
        runs = {path.parent.name or str(name): load_run(path) for name, path in zip(names, paths)}
        top = args.top or None
        if args.compare:
            print(format_board(compare_frame(runs, top), args.format))
        else:
            board = leaderboard_frame(runs[next(iter(runs))], top=top, status=args.status, sort=args.sort)
            print(format_board(board, args.format))
            if args.save:
                save_frame(board, args.save)
        if args.plot:
            board = leaderboard_frame(next(iter(runs.values())), top=5, status="ok")
            from controller.plots import plot_runs

            path = plot_runs(board, runs, args.plot)
            print(f"wrote {path}", file=sys.stderr)
    except (StoreError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
