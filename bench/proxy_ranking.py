"""Does the default proxy rank activations like deep nets? Eight known activations x 5 seeds on the packed ResNet-8.

    python bench/proxy_ranking.py                 # 300 steps, ~3 minutes on 2 CPU cores
    python bench/proxy_ranking.py --steps 150

Trains with TrainConfig's defaults (Adam lr 1e-3, cosine schedule, batch 128, standardised outputs, auto init;
the recipe flags of `evaluator.score` change them). Prints test accuracy
mean +- sd over seeds per activation, the spread of the means against the seed sd, the Spearman
rank correlation with the deep-net order (swish ~ gelu ~ relu ~ elu > tanh > sigmoid ~ sin > identity) and the time
per candidate. Training goes through evaluator.training.train_candidates, split over one single-thread process per core.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import statistics
import sys
import time

from scipy.stats import spearmanr

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# This benchmark sets the pack size K itself: measuring the machine's own best K would override it.
os.environ["ACTSEARCH_PACK_TUNING"] = "0"

from evaluator import get_task  # noqa: E402
from evaluator.recipe import add_recipe_arguments, recipe_from_args  # noqa: E402

# Deep-net reference: higher is better; ties share a value.
REFERENCE = {"relu": 4, "swish": 4, "gelu": 4, "elu": 4, "tanh": 3, "sigmoid": 2, "sin": 2, "identity": 1}


def _train(names: list[str], data, model: str, steps: int, seeds: tuple[int, ...], pack: int, recipe: dict,
           queue) -> None:
    import torch

    from evaluator import TrainConfig
    from evaluator.training import train_candidates

    torch.set_num_threads(1)
    # The product's defaults, except what the command line sets.
    config = TrainConfig(steps=steps, seeds=seeds, device="cpu", num_threads=1, **recipe)
    queue.put(list(zip(names, train_candidates(names, data, model, config, pack_size=pack))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--model", default="resnet8_1d")
    parser.add_argument("--procs", type=int, default=os.cpu_count() or 1)
    add_recipe_arguments(parser)
    args = parser.parse_args()
    recipe = recipe_from_args(args)
    data = get_task("mnist1d")  # 4000 train / 1000 val / 1000 test
    names, seeds = list(REFERENCE), tuple(range(args.seeds))
    shares = [names[i :: args.procs] for i in range(args.procs)]
    pack = -(-len(shares[0]) * len(seeds) // 2)  # two packs per process
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    start = time.perf_counter()
    workers = [
        ctx.Process(target=_train, args=(share, data, args.model, args.steps, seeds, pack, recipe, queue))
        for share in shares
    ]
    for w in workers:
        w.start()
    results = dict(pair for _ in workers for pair in queue.get())
    for w in workers:
        w.join()
    wall = time.perf_counter() - start

    def field(result, key):
        return result[key] if isinstance(result, dict) else getattr(result, key)

    print(f"{args.model}, {args.steps} steps, {args.seeds} seeds, {args.procs} processes, recipe {recipe or 'default'}"
          ", test accuracy:")
    means, sds = {}, {}
    for name in names:
        r = results[name]
        means[name], sds[name] = field(r, "test_acc"), field(r, "test_acc_std")
        print(f"  {name:<9} {means[name]:.3f} +- {sds[name]:.3f}  status {field(r, 'status')}")
    seed_sd = statistics.fmean(sds.values()) or float("nan")  # one seed: no seed noise to compare with
    top = min(means[n] for n in ("relu", "swish", "gelu", "elu"))
    print(
        f"spread of means (max - min): {max(means.values()) - min(means.values()):.3f} = "
        f"{(max(means.values()) - min(means.values())) / seed_sd:.0f} x the mean seed sd ({seed_sd:.4f})"
    )
    print(
        f"gap worst of relu/swish/gelu/elu to tanh: {top - means['tanh']:.3f} = "
        f"{(top - means['tanh']) / seed_sd:.1f} seed sd"
    )
    rho = spearmanr([means[n] for n in names], [REFERENCE[n] for n in names]).statistic
    print(f"Spearman with the deep-net order: {rho:.2f}")
    n = len(names) * len(seeds)
    print(
        f"wall {wall:.1f} s for {n} trainings: {wall / n:.2f} s per (candidate, seed), "
        f"{wall / len(names):.2f} s per candidate with {args.seeds} seeds (including process start and data)"
    )


if __name__ == "__main__":
    main()
