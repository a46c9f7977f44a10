"""Training compute until a top-1 % function is found: successive halving over steps against flat training, replayed
on a table (one whose run recorded `--eval-steps`), with no training.

    python bench/cascade_replay.py results/tables/paper-1unit.csv.gz --rungs 50 150 300 --eta 3 --seeds 20
    python bench/cascade_replay.py results/runs/table-paper-1unit --strategies random rl --prescreen

SOURCE is a table file (`controller.tabular.load_table`: .csv.gz, .csv, .parquet) or a run store (folder, run.sqlite
or run name), exported on the fly with `controller.tabular.export_table`. Every replay is
`controller.table_replay.replay`, the run loop's rules in one place: a function seen before, a screened one and one
the table does not hold yet (a partial table: never told, like a result that never came back) cost nothing. Flat:
every candidate costs the top rung's steps and the strategy is told its score there. Cascade
(`controller.cascade_replay.Cascade`, `controller.fidelity.Ladder`, one worker): a due promotion runs before any new
candidate, costing only the steps between its rungs (training continues); a new candidate costs the lowest rung and
the strategy is told its score at that rung. A rung's score is the table's seed-0 validation accuracy after that
many steps (`val_acc_at`, the same training as the final score), in both modes. Found: a function of the table's
top 1 % (`controller.tabular.top_fingerprints`: mean over its seeds at the top rung) has been trained to the top rung.
With `--prescreen`, `controller.surrogate.PreScreen` (a fresh one per replay) also skips predicted losers (a skipped
candidate costs nothing and is told its predicted score). Reports steps until found (mean, median over seeds; a
replay that never finds it within --limit evaluations, or whose strategy runs out, is charged what it spent) and the
ratio flat / mode per strategy.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

import pandas as pd
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from controller.arena import ARENA_OPTIONS  # noqa: E402
from controller.cascade_replay import rung_results  # noqa: E402
from controller.config import RunConfig  # noqa: E402
from controller.surrogate import PreScreen  # noqa: E402
from controller.table_replay import Cascade, ReplayTrace, TableIndex, replay  # noqa: E402
from controller.tabular import export_table, load_table, targets, top_fingerprints  # noqa: E402

MODES = {"flat": (False, False), "cascade": (True, False), "prescreen+flat": (False, True),
         "prescreen+cascade": (True, True)}  # mode -> (cascade, pre-screen)


def read_table(source: str) -> pd.DataFrame:
    """Return the table of a table file, or of a run store exported now."""
    if source.endswith((".csv", ".csv.gz", ".parquet")):
        return load_table(source)
    return export_table(source, shapes=False, spellings=False)  # replays then fingerprint proposals (cached)


def replay_mode(name: str, seed: int, index: TableIndex, rungs: tuple[int, ...], eta: int, cascade: bool,
                prescreen: bool, top: set[str], limit: int | None, kappa: float = RunConfig.prescreen_kappa
                ) -> ReplayTrace:
    """Return the trace of one replay, stopped once a top-1 % function finished the top rung."""
    ladder = Cascade(rungs=rungs if cascade else rungs[-1:], eta=eta)  # seed 0's accuracy in both modes
    screen = PreScreen(seed=seed, kappa=kappa) if prescreen else None
    return replay(name, index, budget=limit, seed=seed, options=ARENA_OPTIONS.get(name, {}), missing="skip",
                  cascade=ladder, prescreen=screen, stop_on=top)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("source", help="a table file (.csv.gz, .csv, .parquet) or a run store recorded with "
                                       "--eval-steps")
    parser.add_argument("--rungs", type=int, nargs="+", default=[50, 150, 300],
                        help="training steps of each rung; the last is the table's training length")
    parser.add_argument("--eta", type=int, default=4, help="each rung promotes its best 1/eta")
    parser.add_argument("--seeds", type=int, default=20, help="replays per strategy and mode (seeds 0 .. N-1)")
    parser.add_argument("--strategies", nargs="+", default=["random", "rl"])
    parser.add_argument("--prescreen", action="store_true", help="also replay with the surrogate pre-screen")
    parser.add_argument("--prescreen-kappa", type=float, default=RunConfig.prescreen_kappa,
                        help="the pre-screen's margin (default: controller.run's)")
    parser.add_argument("--limit", type=int, default=None,
                        help="new candidates (evaluations) per replay before giving up (default: as many as the table "
                             "holds)")
    args = parser.parse_args()
    if args.seeds < 1 or (args.limit is not None and args.limit < 1):
        parser.error(f"--seeds and --limit must be >= 1, got {args.seeds} and {args.limit}")
    torch.set_num_threads(1)
    rungs = tuple(args.rungs)
    try:
        cascade = Cascade(rungs=rungs, eta=args.eta)
        table = read_table(args.source)
        rung_results(table, cascade)  # refuse rungs the table did not measure before any replay
        index = TableIndex(table)
        aims, top = targets(table), top_fingerprints(table)
    except ValueError as error:
        parser.exit(2, f"error: {error}\n")
    screened = int((table["status"] == "screened").sum())
    in_space = table.attrs.get("functions_in_space")
    print(f"{Path(args.source).name}: {aims['trained']} trained functions ({int((table['status'] == 'ok').sum())} "
          f"ok), {screened} screened, of {in_space or '?'} in the space; top 1% = {len(top)} (val_acc >= "
          f"{aims['top_threshold']:.4f}); rungs {list(rungs)}, eta {args.eta}, {args.seeds} seeds, "
          f"pre-screen margin {args.prescreen_kappa:g}")
    modes = [mode for mode, (_, prescreen) in MODES.items() if args.prescreen or not prescreen]
    print(f"{'strategy':<9} {'mode':<18} {'mean steps':>11} {'median':>9} {'found':>6} {'vs flat':>8} "
          f"{'evals':>7} {'skipped':>8} {'missing':>8}")
    for name in args.strategies:
        flat_mean = None
        for mode in modes:
            cascade, prescreen = MODES[mode]
            try:
                traces = [replay_mode(name, seed, index, rungs, args.eta, cascade, prescreen, top, args.limit,
                                      args.prescreen_kappa)
                          for seed in range(args.seeds)]
            except ValueError as error:
                parser.exit(2, f"error: {error}\n")
            found = [trace.steps_to(top) for trace in traces]
            spent = [steps if steps is not None else trace.steps for steps, trace in zip(found, traces, strict=True)]
            mean = statistics.mean(spent)
            flat_mean = flat_mean or mean
            print(f"{name:<9} {mode:<18} {mean:11.0f} {statistics.median(spent):9.0f} "
                  f"{sum(steps is not None for steps in found):>3}/{args.seeds} {flat_mean / mean:8.2f} "
                  f"{statistics.mean(t.evaluations for t in traces):7.1f} "
                  f"{statistics.mean(t.skipped for t in traces):8.1f} "
                  f"{statistics.mean(t.missing for t in traces):8.1f}", flush=True)


if __name__ == "__main__":
    main()
