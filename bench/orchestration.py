"""Share of wall time not spent in evaluation, for the run loop at its default settings (target: under 5%).

Runs a real search (default strategy, task and child network, `--workers` Ray tasks of one candidate each) into
a temporary store and compares the worker time spent inside evaluation tasks with workers x wall time:

    overhead = 1 - busy / (workers * wall)

reported for the loop alone (first submit to last result) and for the whole command (Ray start-up included).

    python bench/orchestration.py --budget 40 --workers 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from controller.config import RunConfig
from controller.loop import RunLoop
from controller.session import connect_ray
from controller.store import RunStore
from controller.strategies import create_strategy
from search_space import Space


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=int, default=40)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--strategy", default="rl")
    parser.add_argument("--task", default="mnist1d")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--task-batch", type=int, default=None, help="candidates per Ray task (default: the run's)")
    args = parser.parse_args()
    torch.set_num_threads(1)  # as the CLI does: the driver's torch work is tiny
    out = Path(tempfile.mkdtemp(prefix="actsearch-bench-"))
    config = RunConfig(budget=args.budget, workers=args.workers, strategy=args.strategy, task=args.task,
                       steps=args.steps, task_batch=args.task_batch, out=str(out))
    start = time.time()
    import ray

    connect_ray(config)
    ray_up = time.time()
    with RunStore(config.store_path) as store:
        strategy = create_strategy(config.strategy, Space(units=config.units, ops=config.ops), seed=config.seed)
        loop = RunLoop(config, store, strategy)
        loop_start = time.time()
        progress = loop.run()
        loop_wall = time.time() - loop_start
        rows = [row for row in store.rows() if row.trained]
    ray.shutdown()
    total_wall = time.time() - start
    busy = progress.busy_s
    eval_s = sum((row.metrics or {}).get("wall_s") or 0.0 for row in rows)
    print(f"{len(rows)} candidates, {args.workers} workers, {config.candidates_per_task()} per task, task {args.task}")
    print(f"ray start-up {ray_up - start:.1f} s; loop {loop_wall:.1f} s; whole command {total_wall:.1f} s")
    print(f"worker time in evaluation tasks {busy:.1f} s (evaluator-reported training {eval_s:.1f} s); "
          f"{len(rows) / loop_wall:.2f} candidates/s")
    print(f"non-evaluation share, loop only:     {1 - busy / (args.workers * loop_wall):.1%}")
    # Steady state: from the first result back (workers started, task data cached) to the last one.
    first = min(row.finished_at for row in rows if row.started_at)
    last = max(row.finished_at for row in rows if row.started_at)
    spans = {(row.started_at, row.finished_at) for row in rows if row.started_at}  # one span per pack
    inside = sum(max(0.0, min(end, last) - max(begin, first)) for begin, end in spans)
    print(f"non-evaluation share, steady state:  {1 - inside / (args.workers * (last - first)):.1%} "
          f"(first to last result, {last - first:.1f} s)")
    print(f"non-evaluation share, whole command: {1 - busy / (args.workers * total_wall):.1%}")


if __name__ == "__main__":
    main()
