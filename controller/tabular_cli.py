"""`python -m controller.tabular`: export a run store as a table, and replay strategies against a table.

    python -m controller.tabular export table-paper-1unit --out results/tables/paper-1unit.csv.gz
    python -m controller.tabular replay results/tables/paper-1unit.csv.gz --strategy rl random --seeds 20
    python -m controller.tabular replay TABLE --option rl:lr=0.002 --missing skip --plot arena.png

Bad input (no such run or table, an unknown strategy or option) gives one line and exit status 2.
"""

from __future__ import annotations

import argparse
import inspect
import json
import sys
from pathlib import Path
from typing import Any

from controller.arena import format_summary, plot_arena, run_arena, summarize
from controller.store import StoreError
from controller.strategies import STRATEGIES, strategy_class
from controller.table_replay import MISSING_POLICIES, TableIndex
from controller.tabular import export_table, load_table, save_table, targets

__all__ = ["main", "parse_option"]


def parse_option(text: str) -> tuple[str, str, Any]:
    """Return (strategy, key, value) of `NAME:KEY=VALUE` (the value read as JSON when it is JSON)."""
    name, colon, rest = text.partition(":")
    key, equals, value = rest.partition("=")
    if not colon or not equals or not name.strip() or not key.strip():
        raise ValueError(f"--option needs STRATEGY:KEY=VALUE, got {text!r} (e.g. --option rl:lr=0.002)")
    try:
        return name.strip(), key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return name.strip(), key.strip(), value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m controller.tabular", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a run store's table (one row per distinct function)")
    export.add_argument("run", help="run name (results/runs/NAME), run folder or run.sqlite path")
    export.add_argument("--out", type=Path, required=True, help="a .csv.gz, .csv or .parquet file")
    export.add_argument("--no-shapes", action="store_true", help="leave out the shape columns (faster)")
    play = commands.add_parser("replay", help="replay strategies against a table, no training")
    play.add_argument("table", type=Path, help="a table file written by export")
    play.add_argument("--strategy", nargs="+", default=list(STRATEGIES), metavar="NAME",
                      help=f"strategies to replay (default all: {', '.join(STRATEGIES)})")
    play.add_argument("--seeds", type=int, default=20, help="strategy seeds 0 .. N-1 (default 20)")
    play.add_argument("--budget", type=int, help="evaluations per replay (default: every trained function)")
    play.add_argument("--missing", choices=MISSING_POLICIES, default="error",
                      help="a proposal whose function the table lacks (a partial table): stop, or skip it uncounted")
    play.add_argument("--option", action="append", default=[], metavar="STRATEGY:KEY=VALUE",
                      help="a strategy option, e.g. rl:lr=0.002 (repeatable)")
    play.add_argument("--full", action="store_true", help="run every replay to the budget instead of stopping "
                      "at the table's best")
    play.add_argument("--plot", type=Path, metavar="FILE", help="write the best-so-far curves (.png)")
    play.add_argument("--jobs", type=int, default=1, help="replays run in this many processes, with the same results "
                      "(default 1)")
    return parser


def _replay(args: argparse.Namespace) -> None:
    import torch

    torch.set_num_threads(1)  # small LSTM updates: more threads only add contention
    unknown = [name for name in args.strategy if name not in STRATEGIES]
    if unknown:
        raise ValueError(f"unknown strategy {', '.join(unknown)}; choose from {', '.join(STRATEGIES)}")
    if args.seeds < 1 or (args.budget is not None and args.budget < 1) or args.jobs < 1:
        raise ValueError(f"--seeds, --budget and --jobs must be >= 1, got {args.seeds}, {args.budget} and {args.jobs}")
    options: dict[str, dict[str, Any]] = {}
    for text in args.option:
        name, key, value = parse_option(text)
        if name not in STRATEGIES:
            raise ValueError(f"--option {text!r}: unknown strategy {name!r}; choose from {', '.join(STRATEGIES)}")
        valid = [p for p in inspect.signature(strategy_class(name)).parameters if p not in ("space", "seed")]
        if key not in valid:
            raise ValueError(f"--option {text!r}: strategy {name!r} has no option {key!r}; its options: "
                             f"{', '.join(valid) or 'none'}")
        options.setdefault(name, {})[key] = value
    table = load_table(args.table)
    index, aims = TableIndex(table), targets(table)
    budget = args.budget or aims["trained"]
    print(f"table {args.table}: {len(table)} functions ({aims['trained']} trained) of {index.space!r}"
          f"{'' if index.complete else ', PARTIAL'}; best {aims['best']:.4f}, top 1 % = best {aims['top']} "
          f"(>= {aims['top_threshold']:.4f}), relu {aims['relu']}, seed noise {aims['noise']}", flush=True)
    traces = run_arena(index, args.strategy, seeds=args.seeds, budget=budget, options=options,
                       missing=args.missing, stop_at=None if args.full else aims["best"], jobs=args.jobs,
                       on_trace=lambda trace: print(f"  {trace.strategy} seed {trace.seed}: "
                                                    f"{trace.evaluations} evaluations", file=sys.stderr, flush=True))
    print(format_summary(summarize(traces, aims, budget), aims, budget))
    if args.plot:
        print(f"wrote {plot_arena(traces, aims, budget, args.plot, title=str(args.table))}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = _parser().parse_args(argv)
    try:
        if args.command == "export":
            table = export_table(args.run, shapes=not args.no_shapes)
            path = save_table(table, args.out)
            complete = table.attrs["functions"] == table.attrs["functions_in_space"]
            print(f"wrote {path}: {len(table)} of {table.attrs['functions_in_space']} functions "
                  f"({'complete' if complete else 'PARTIAL'}; {table.attrs['run_rows']} run rows)")
        else:
            _replay(args)
    except (StoreError, ValueError, TypeError, KeyError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
