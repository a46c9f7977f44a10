"""Does the proxy's score depend on a candidate's output scale? Recipes side by side on scaled and known functions.

    python bench/scale_invariance.py                          # 6 recipes x 9 functions x 5 seeds, 300 steps
    python bench/scale_invariance.py --recipes auto standardize,lr2e-3   # the old and the new default
    python bench/scale_invariance.py --recipes standardize he --seeds 3 --json out.json

Every recipe trains the same functions with the same seeds on the default proxy (MNIST-1D, packed 1-D ResNet-8,
300 Adam steps) and prints validation accuracy (the search's score) mean +- sd over seeds, then per recipe: the gap
of 0.5x and 2x relu to relu, and whether gelu and swish reach relu. Work is split over one single-thread process
per core (the search's own layout).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
os.environ.setdefault("ACTSEARCH_PACK_TUNING", "0")  # the pack size does not change a result; skip measuring it

FUNCTIONS = [
    "0.5 * max(x, 0)", "max(x, 0)", "2 * max(x, 0)", "x + beta + abs(x)", "x * sigmoid(beta * x)",
    "2 * (x * sigmoid(beta * x))", "gelu", "cos(x) - x", "tanh(x)",
]

# Recipe name -> TrainConfig settings (explicit, so the table does not change meaning with the defaults).
RECIPES: dict[str, dict[str, Any]] = {
    "auto": {"init": "auto", "act_norm": "none", "lr": 1e-3},  # the default before the scale-free score
    "he": {"init": "he", "act_norm": "none", "lr": 1e-3},
    "standardize": {"init": "auto", "act_norm": "standardize", "lr": 1e-3},
    "standardize+he": {"init": "he", "act_norm": "standardize", "lr": 1e-3},
    "standardize,lr2e-3": {"init": "auto", "act_norm": "standardize", "lr": 2e-3},
    "standardize,lr4e-3": {"init": "auto", "act_norm": "standardize", "lr": 4e-3},
    "auto,lr2e-3": {"init": "auto", "act_norm": "none", "lr": 2e-3},
    "auto,lr5e-4": {"init": "auto", "act_norm": "none", "lr": 5e-4},
}


def _work(jobs: list[tuple[str, list[str]]], steps: int, seeds: tuple[int, ...], queue: Any) -> None:
    from evaluator import TrainConfig, evaluate_many, get_task

    data = get_task("mnist1d")
    out = []
    for recipe, functions in jobs:
        config = TrainConfig(steps=steps, seeds=seeds, device="cpu", num_threads=1, **RECIPES[recipe])
        for name, result in zip(functions, evaluate_many(functions, data, config=config)):
            out.append((recipe, name, result.to_dict()))
    queue.put(out)


def _summary(rows: dict[tuple[str, str], dict], recipe: str, functions: list[str]) -> str:
    def mean(name: str) -> float | None:
        row = rows.get((recipe, name))
        return row["val_acc"] if row and row["status"] == "ok" else None

    relu = mean("max(x, 0)")
    parts = []
    for name in ("0.5 * max(x, 0)", "2 * max(x, 0)"):
        value = mean(name)
        if relu is not None and value is not None and name in functions:
            parts.append(f"{name.split(' ')[0]}x relu {value - relu:+.3f}")
    for name in ("gelu", "x * sigmoid(beta * x)"):
        value = mean(name)
        if relu is not None and value is not None and name in functions:
            parts.append(f"{name.split('(')[0].strip()} {value - relu:+.3f}")
    return f"{recipe}: vs relu: " + ", ".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--recipes", nargs="+", default=list(RECIPES)[:6], choices=list(RECIPES))
    parser.add_argument("--functions", nargs="+", default=FUNCTIONS)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", help="also write every result here")
    args = parser.parse_args()
    seeds = tuple(range(args.seeds))
    # Balance the processes: each takes every procs-th function of every recipe.
    shares = [[(recipe, args.functions[i :: args.procs]) for recipe in args.recipes] for i in range(args.procs)]
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start = time.perf_counter()
    procs = [ctx.Process(target=_work, args=(share, args.steps, seeds, queue)) for share in shares]
    for proc in procs:
        proc.start()
    rows = {(recipe, name): result for _ in procs for recipe, name, result in queue.get()}
    for proc in procs:
        proc.join()
    wall = time.perf_counter() - start

    print(f"validation accuracy (the search score), mean +- sd over {args.seeds} seeds, {args.steps} steps, "
          f"1-D ResNet-8 on MNIST-1D")
    print("| function | " + " | ".join(f"`{r}`" for r in args.recipes) + " |")
    print("|---|" + "---|" * len(args.recipes))
    for name in args.functions:
        cells = []
        for recipe in args.recipes:
            row = rows[(recipe, name)]
            cells.append(f"{row['val_acc']:.3f} ± {row['val_acc_std']:.3f}" if row["status"] == "ok" else row["status"])
        print(f"| {name} | " + " | ".join(cells) + " |")
    sds = [row["val_acc_std"] for row in rows.values() if row["status"] == "ok"]
    print(f"mean seed sd {statistics.fmean(sds):.4f}")
    for recipe in args.recipes:
        print(_summary(rows, recipe, args.functions))
    print(f"wall {wall:.1f} s for {len(rows) * args.seeds} trainings on {args.procs} processes")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([{"recipe": r, "function": f, **row} for (r, f), row in rows.items()], handle, indent=1)


if __name__ == "__main__":
    main()
