"""`python -m controller.export RUN --rank 1`: a discovered function as code to use outside actsearch.

    python -m controller.export demo --rank 1 --out my_activation.py   # standalone torch module file
    python -m controller.export demo --rank 1 --format expr            # text for search_space.parse

The module file imports only torch and math and contains only the code generated for the expression; its betas
start at 1.0, the value every candidate is trained from during the search.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from controller.leaderboard_frame import leaderboard_frame
from controller.store import StoreError

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m controller.export", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("run", help="run name (results/runs/NAME) or path of its run.sqlite")
    parser.add_argument("--rank", type=int, default=1, help="leaderboard rank to export (default 1)")
    parser.add_argument("--format", choices=("module", "expr"), default="module")
    parser.add_argument("--class-name", default="Activation", help="class name in the module file")
    parser.add_argument("--out", type=Path, help="write the module here instead of printing it")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the export CLI; return the exit code."""
    from search_space import parse
    from search_space.codegen import to_torch_source

    args = _parser().parse_args(argv)
    try:
        board = leaderboard_frame(args.run, status="ok", properties=False)
        if not 1 <= args.rank <= len(board):
            raise ValueError(f"--rank {args.rank} is out of range: the run has {len(board)} successful functions")
        expression = board.iloc[args.rank - 1]["expression"]
        text = expression if args.format == "expr" else to_torch_source(parse(expression), args.class_name)
        if args.out:
            args.out.write_text(text + "\n")
            print(f"wrote {args.out} ({expression})", file=sys.stderr)
        else:
            print(text)
    except (StoreError, ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
