"""Flat training against the fidelity cascade (and the pre-screen) on a real search, same strategy, same budget.

    python bench/cascade_real.py --budget 300 --units 2 --strategy random
    python bench/cascade_real.py --budget 300 --arms flat cascade prescreen+cascade --rungs 50 150 300 --eta 3
    python bench/cascade_real.py --budget 1000 --arms flat default       # every step off against every step on

Each arm is one `python -m controller.run` (a fresh local Ray, the run's default workers, one seed) into its own
temporary store, one after the other on the same machine. Reported per arm: wall time of the command, candidates
considered per hour, training steps spent (each row costs the steps it trained from where it started, times its
seeds), and the quality of its top 10: the leaderboard's ten best functions (a cascade ranks the highest rung first),
each trained again at the top rung with `--check-seeds` fresh seeds (5 by default) in one packed `evaluate_many`
call, so every arm's top 10 is judged by the same measurement. With the random strategy the arms see the same
proposals in the same order (random ignores what it is told), so the difference in their top 10 is what the cascade
and pre-screen chose to train fully.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from controller.leaderboard_frame import leaderboard_frame  # noqa: E402
from controller.store import load_run  # noqa: E402

# Each arm spells out every step, so that the arms keep their meaning whatever `controller.run`'s defaults are.
_CASCADE = lambda rungs, eta: ["--rungs", *map(str, rungs), "--eta", str(eta)]  # noqa: E731
_FLAT = lambda rungs, eta: ["--steps", str(rungs[-1]), "--flat"]  # noqa: E731
ARMS = {
    "flat": lambda rungs, eta: [*_FLAT(rungs, eta), "--no-prescreen", "--top-seeds", "0"],
    "cascade": lambda rungs, eta: [*_CASCADE(rungs, eta), "--no-prescreen", "--top-seeds", "0"],
    "prescreen": lambda rungs, eta: [*_FLAT(rungs, eta), "--prescreen", "--top-seeds", "0"],
    "prescreen+cascade": lambda rungs, eta: [*_CASCADE(rungs, eta), "--prescreen", "--top-seeds", "0"],
    # What a user gets: the cascade, the pre-screen and 3 seeds for the top 10 (`controller.run`'s defaults).
    "default": lambda rungs, eta: [*_CASCADE(rungs, eta), "--prescreen", "--top-seeds", "3"],
}


def run_arm(name: str, args: argparse.Namespace, out: Path) -> dict:
    """Run one arm's search; return its figures (the store is read afterwards)."""
    extra = ARMS[name](args.rungs, args.eta)
    command = [sys.executable, "-m", "controller.run", "--budget", str(args.budget), "--strategy", args.strategy,
               "--units", str(args.units), "--seed", str(args.seed), "--out", str(out), *extra]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"arm {name} failed:\n{done.stderr[-2000:]}")
    frame = load_run(out)
    trained = frame[frame["trained"]]
    # One seed per candidate; a row one rung above the top trained a top function's extra seeds: all its seeds but
    # the one it had.
    steps = sum(((m or {}).get("steps", 0) - (m or {}).get("start_step", 0))
                * (len(seeds) - 1 if rung == len(args.rungs) else 1)
                for m, rung, seeds in zip(trained["metrics"], trained["rung"], trained["seeds"], strict=True))
    considered = int(((frame["rung"] == 0) & (frame["trained"] | (frame["status"] == "skipped"))).sum())
    board = leaderboard_frame(frame, top=10, status="ok", properties=False)
    return {"arm": name, "wall_s": wall, "considered": considered, "steps": steps,
            "per_hour": considered / wall * 3600, "top": list(board["expression"]),
            "rungs": trained.groupby("rung").size().to_dict()}


def recheck(expressions: list[str], steps: int, seeds: int, threads: int) -> dict[str, float]:
    """Mean validation accuracy of each function over `seeds` fresh seeds at `steps` steps."""
    import torch

    from evaluator import TrainConfig, evaluate_many

    torch.set_num_threads(threads)  # more threads than idle cores makes torch's CPU kernels crawl (100x measured)
    config = TrainConfig(steps=steps, seeds=tuple(range(100, 100 + seeds)), device="cpu")
    results = evaluate_many(expressions, config=config)
    return {e: (r.score if r.ok else float("nan")) for e, r in zip(expressions, results, strict=True)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=300)
    parser.add_argument("--units", type=int, default=2)
    parser.add_argument("--strategy", default="random")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--rungs", type=int, nargs="+", default=[50, 150, 300])
    parser.add_argument("--eta", type=int, default=4)
    parser.add_argument("--arms", nargs="+", default=["flat", "cascade", "prescreen+cascade"], choices=list(ARMS))
    parser.add_argument("--check-seeds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="torch threads of the re-check")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="actsearch-cascade-"))
    figures = [run_arm(name, args, root / name) for name in args.arms]
    union = sorted({e for f in figures for e in f["top"]})
    checked = recheck(union, args.rungs[-1], args.check_seeds, args.threads)
    flat = figures[0]
    print(f"budget {args.budget}, {args.units}-unit paper space, strategy {args.strategy}, rungs {args.rungs}, "
          f"eta {args.eta}; top 10 re-measured with {args.check_seeds} seeds at {args.rungs[-1]} steps")
    print("| arm | wall s | candidates/h | training steps | results per rung (+ top seeds) | "
          "top-10 mean (re-measured) | best | steps vs flat | wall vs flat |")
    print("|---|---|---|---|---|---|---|---|---|")
    for f in figures:
        scores = [checked[e] for e in f["top"]]
        print(f"| {f['arm']} | {f['wall_s']:.0f} | {f['per_hour']:.0f} | {f['steps']:,} | "
              f"{'/'.join(str(f['rungs'].get(r, 0)) for r in range(len(args.rungs) + 1))} | "
              f"{statistics.fmean(scores):.4f} | {max(scores):.4f} | {flat['steps'] / f['steps']:.2f}x | "
              f"{flat['wall_s'] / f['wall_s']:.2f}x |")
    for f in figures:
        print(f"{f['arm']} top 10: " + ", ".join(f"{e} ({checked[e]:.4f})" for e in f["top"]))
    print(f"stores: {root}")


if __name__ == "__main__":
    main()
