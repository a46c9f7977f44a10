"""How many evaluations each strategy needs to find a top-1% function of a small space, against random search.

Step 1 (once, real training): score every distinct function of a small space with the exhaustive strategy, as a
normal run (`python -m controller.run --strategy exhaustive ...`), whose store is the score table.
Step 2 (no training): replay each strategy against that table over 20 seeds, through the same ask/tell boundary
and the same dedup as the run loop (a function already scored costs nothing), and count the distinct
evaluations until one scores in the top 1% of the table. Random search is the reference ratio.

    python bench/search_efficiency.py                       # score the table if missing, then replay
    python bench/search_efficiency.py --table results/runs/bench-table --seeds 20
"""

from __future__ import annotations

import argparse
import functools
import math
import statistics
import subprocess
import sys
from pathlib import Path

import torch

from controller import STRATEGIES, RunStore, SearchExhausted, create_strategy, load_run
from search_space import Space

STRATEGY_OPTIONS = {  # sized for a space of ~100 functions (the defaults suit budgets of thousands)
    "evolution": {"population": 10, "sample_size": 3},
    "rl": {"lr": 0.01, "update_every": 4},
    "tpe": {"n_startup_trials": 5},
}


def score_table(out: Path, units: int, ops: str, task: str, steps: int | None, workers: int) -> None:
    """Score every distinct function of the space once (an exhaustive run into `out`)."""
    space = Space(units=units, ops=ops)
    command = [sys.executable, "-m", "controller.run", "--strategy", "exhaustive", "--units", str(units),
               "--ops", ops, "--task", task, "--budget", str(space.size()), "--workers", str(workers),
               "--out", str(out)]
    if steps:
        command += ["--steps", str(steps)]
    if (out / "run.sqlite").exists():
        command.append("--resume")
    subprocess.run(command, check=True)


def load_table(path: Path) -> tuple[Space, dict[str, float], set[str]]:
    """Return the space, fingerprint -> score (failures and screened-out functions score 0), and the
    fingerprints screened out before training (they cost no evaluation, as in the run loop)."""
    frame = load_run(path)
    with RunStore(path / "run.sqlite", create=False) as store:
        meta = store.get_meta()["config"]
    space = Space(units=meta["units"], ops=meta["ops"])
    rows = frame[~frame["duplicate"]]
    table = {row.fingerprint: (row.score if row.status == "ok" else 0.0) for row in rows.itertuples()}
    screened = set(rows.loc[rows["status"] == "screened", "fingerprint"])
    return space, table, screened


@functools.cache
def fingerprint_of(space: Space, tokens: tuple[int, ...]) -> str:
    """Return the fingerprint of a token sequence (cached: replays propose the same sequences again and again)."""
    return space.decode(tokens).fingerprint()


def evaluations_to_top(name: str, seed: int, space: Space, table: dict[str, float], screened: set[str],
                       threshold: float, limit: int, options: dict) -> int | None:
    """Return the distinct evaluations the strategy needs to reach `threshold`, or None within `limit` proposals."""
    strategy = create_strategy(name, space, seed=seed, **options)
    seen: dict[str, float] = {}
    for _ in range(limit):
        try:
            proposal = strategy.ask()
        except SearchExhausted:
            return None
        code = fingerprint_of(space, tuple(proposal.tokens))
        if code not in table:
            raise KeyError(f"{proposal.expr} is not in the table: was the table scored on another space?")
        score = table[code]
        if code not in seen and code not in screened:
            seen[code] = score
            if score >= threshold:
                return len(seen)
        strategy.tell(proposal.trial_id, "ok", score)
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", type=Path, default=Path("results/runs/bench-search-efficiency"))
    parser.add_argument("--units", type=int, default=1)
    parser.add_argument("--ops", default="small")
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seeds", type=int, default=20)
    parser.add_argument("--limit", type=int, default=5000, help="proposals per replay before giving up")
    parser.add_argument("--strategies", default=",".join(STRATEGIES), help="comma-separated strategy names")
    parser.add_argument("--defaults", action="store_true", help="strategies' default options, not STRATEGY_OPTIONS")
    args = parser.parse_args()
    torch.set_num_threads(1)  # small LSTM updates: extra threads only add contention
    if not (args.table / "run.sqlite").exists() or not args.table.exists():
        score_table(args.table, args.units, args.ops, args.task, args.steps, args.workers)
    space, table, screened = load_table(args.table)
    scores = sorted((score for code, score in table.items() if code not in screened), reverse=True)
    top = max(1, math.ceil(0.01 * len(scores)))
    threshold = scores[top - 1]
    print(f"table: {len(table)} distinct functions of {space!r}; top 1% = best {top} (score >= {threshold:.4f})")
    results = {}
    for name in args.strategies.split(","):
        options = {} if args.defaults else STRATEGY_OPTIONS.get(name, {})
        counts = [evaluations_to_top(name, seed, space, table, screened, threshold, args.limit, options)
                  for seed in range(args.seeds)]
        print(f"  {name}: {counts}", flush=True)
        # A replay that never finds it (stuck on known functions for --limit proposals) is charged every
        # function of the table: what finishing the job by enumeration would cost.
        charged = [count if count is not None else len(scores) for count in counts]
        results[name] = (statistics.mean(charged), statistics.median(charged), sum(c is not None for c in counts))
    reference = results["random"][0] if "random" in results else float("nan")
    print(f"{'strategy':<11} {'mean evals':>10} {'median':>7} {'found':>6} {'vs random':>9}")
    for name, (mean, median, found) in results.items():
        print(f"{name:<11} {mean:10.1f} {median:7.1f} {found:>3}/{args.seeds} {mean / reference:9.2f}")

if __name__ == "__main__":
    main()
