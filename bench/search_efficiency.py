"""How many evaluations each strategy needs to reach the best, a top-1 % and a better-than-relu function of a table.

A table scores every distinct function of a space once (an exhaustive run, exported with
`python -m controller.tabular export RUN --out FILE`; `results/tables/` holds the committed ones). This replays
every strategy against it over 20 seeds with no training, through `controller.tabular.replay` (the run loop's
ask/tell and dedup rules: duplicates and screened functions cost nothing, failures are told as failures), and
reports per target the evaluations needed (mean, median, IQR, sd, found, ratio to random) and a plot of the mean
best-so-far score against evaluations.

Targets: the table's best; a top-1 % function (the best ceil(1 %) of the trained functions); a function that beats
relu by more than the seed noise (relu's mean + 2 x the median per-function sample sd over seeds). A replay that
never reaches a target within the budget is charged the budget. Replays stop once they reach the table's best.

    python bench/search_efficiency.py --table results/tables/paper-1unit.csv.gz
    python bench/search_efficiency.py --table RUN_DIR --missing skip --seeds 20 --plot arena.png   # a live run
    python bench/search_efficiency.py --jobs 2                  # replays in 2 processes: same figures, sooner
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

from controller.arena import format_summary, plot_arena, run_arena, summarize
from controller.strategies import STRATEGIES
from controller.table_replay import TableIndex
from controller.tabular import export_table, load_table, targets
from controller.tabular_cli import parse_option

DEFAULT_TABLE = Path("results/tables/paper-1unit.csv.gz")


def read_table(path: Path):
    """Return a table from a table file, or exported on the fly from a run store (a folder or run.sqlite)."""
    if path.is_dir() or path.suffix == ".sqlite":
        return export_table(path, shapes=False)
    return load_table(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=DEFAULT_TABLE, help="table file or run store")
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--budget", type=int, default=None, help="evaluations per replay (default: all trained)")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated strategy names")
    parser.add_argument("--option", action="append", default=[], metavar="STRATEGY:KEY=VALUE")
    parser.add_argument("--missing", choices=("error", "skip"), default="error",
                        help="skip: a proposal the (partial) table lacks is re-asked without counting")
    parser.add_argument("--plot", type=Path, default=None, help="write the best-so-far plot (.png)")
    parser.add_argument("--jobs", type=int, default=1, help="replays run in this many processes (same results)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small LSTM updates: extra threads only add contention
    try:
        if args.jobs < 1:
            raise ValueError(f"--jobs must be >= 1, got {args.jobs}")
        options: dict[str, dict] = {}
        for text in args.option:
            name, key, value = parse_option(text)
            options.setdefault(name, {})[key] = value
        table = read_table(args.table)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    index, aims = TableIndex(table), targets(table)
    budget = args.budget or aims["trained"]
    partial = "" if index.complete else f" PARTIAL ({table.attrs.get('read_at', '?')})"
    print(f"table {args.table}: {len(table)} functions, {aims['trained']} trained, of {index.space!r}{partial}")
    print(f"best {aims['best']:.4f}; top 1 % = best {aims['top']} (>= {aims['top_threshold']:.4f}); relu "
          f"{aims['relu']}; seed noise {aims['noise']}; beats relu: >= {aims['beats_relu']}; budget {budget}")
    started = time.time()
    traces = run_arena(index, args.strategies.split(","), seeds=args.seeds, budget=budget, options=options,
                       missing=args.missing, stop_at=aims["best"], jobs=args.jobs,
                       on_trace=lambda t: print(f"  {t.strategy} seed {t.seed}: {t.evaluations} evaluations, "
                                                f"{t.proposals} proposals, {t.missing} missing", flush=True))
    print(format_summary(summarize(traces, aims, budget), aims, budget))
    print(f"\n{args.seeds} seeds x {len(traces)} strategies in {time.time() - started:.0f} s")
    if args.plot:
        print(f"wrote {plot_arena(traces, aims, budget, args.plot, title=f'{args.table}{partial}')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
