"""The replay arena: every strategy against one table over many seeds, and how fast each reaches the targets.

>>> from controller.arena import run_arena, summarize
>>> from controller.tabular import example_table, targets
>>> table = example_table()
>>> traces = run_arena(table, ["random", "exhaustive"], seeds=2, budget=20)
>>> list(summarize(traces, targets(table))["strategy"].unique())
['random', 'exhaustive']
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from controller.table_replay import ReplayTrace, TableIndex, replay

__all__ = ["ARENA_OPTIONS", "TARGETS", "best_so_far_curve", "format_summary", "plot_arena", "run_arena",
           "summarize"]

# Options the arena gives a strategy unless told otherwise: exhaustive in its scattered order, so that its seeds
# differ (in token order every seed replays the same sequence).
ARENA_OPTIONS: dict[str, dict[str, Any]] = {"exhaustive": {"order": "scattered"}}
TARGETS = {"best": "the table's best", "top": "a top-1 % function", "beats_relu": "relu + 2 x seed noise"}


def run_arena(table: Any, strategies: Iterable[str], seeds: int = 20, budget: int | None = None,
              options: dict[str, dict[str, Any]] | None = None, missing: str = "error", stop_at: float | None = None,
              on_trace: Callable[[ReplayTrace], None] | None = None, jobs: int = 1) -> dict[str, list[ReplayTrace]]:
    """Return name -> one trace per seed (0 .. seeds-1) of each strategy replayed against `table`.

    Replays are independent and seeded, so `jobs` > 1 runs them in that many processes with the same result (each
    process builds its own index of the table; `on_trace` then sees traces in the order they finish)."""
    index = table if isinstance(table, TableIndex) else TableIndex(table)
    options = {**ARENA_OPTIONS, **(options or {})}
    work = [(name, seed) for name in strategies for seed in range(seeds)]
    settings = {"budget": budget, "missing": missing, "stop_at": stop_at}
    done: dict[tuple[str, int], ReplayTrace] = {}
    if jobs <= 1:
        for name, seed in work:
            done[name, seed] = trace = replay(name, index, seed=seed, options=options.get(name, {}), **settings)
            if on_trace is not None:
                on_trace(trace)
    else:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor, as_completed

        # spawn, not fork: the parent may hold torch's and Ray's threads, which a forked child would inherit broken.
        with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(index.table,)) as pool:
            futures = {pool.submit(_replay_in_worker, name, seed, options.get(name, {}), settings): (name, seed)
                       for name, seed in work}
            for future in as_completed(futures):
                done[futures[future]] = trace = future.result()
                if on_trace is not None:
                    on_trace(trace)
    traces: dict[str, list[ReplayTrace]] = {}
    for name, seed in work:
        traces.setdefault(name, []).append(done[name, seed])
    return traces


_WORKER_INDEX: TableIndex | None = None  # the table index of an arena worker process (set once, by _start_worker)


def _start_worker(table: pd.DataFrame) -> None:
    global _WORKER_INDEX
    import torch

    torch.set_num_threads(1)  # one replay per process: the processes are the parallelism
    _WORKER_INDEX = TableIndex(table)  # the index holds the space's operators, which do not pickle; the table does


def _replay_in_worker(name: str, seed: int, options: dict[str, Any], settings: dict[str, Any]) -> ReplayTrace:
    return replay(name, _WORKER_INDEX, seed=seed, options=options, **settings)


def summarize(traces: dict[str, list[ReplayTrace]], aims: dict[str, Any], budget: int | None = None,
              reference: str = "random") -> pd.DataFrame:
    """Return one row per (strategy, target): evaluations to reach it (a replay that never does is charged
    `budget`, default its largest evaluation count), mean, median, IQR, found count and the ratio to `reference`."""
    thresholds = {"best": aims["best"], "top": aims["top_threshold"], "beats_relu": aims.get("beats_relu")}
    if budget is None:
        budget = max(trace.evaluations for runs in traces.values() for trace in runs)
    rows = []
    for target, threshold in thresholds.items():
        if threshold is None:
            continue
        for name, runs in traces.items():
            counts = [trace.evaluations_to(threshold) for trace in runs]
            charged = [count if count is not None else budget for count in counts]
            quartiles = statistics.quantiles(charged, n=4) if len(charged) > 1 else [charged[0]] * 3
            rows.append({"target": target, "strategy": name, "mean": statistics.fmean(charged),
                         "median": statistics.median(charged), "q1": quartiles[0], "q3": quartiles[2],
                         "sd": statistics.stdev(charged) if len(charged) > 1 else 0.0,
                         "found": sum(count is not None for count in counts), "replays": len(counts),
                         "missing": statistics.fmean(trace.missing for trace in runs),
                         "proposals": statistics.fmean(trace.proposals for trace in runs)})
    summary = pd.DataFrame(rows)
    if summary.empty:
        return summary
    means = summary.set_index(["target", "strategy"])["mean"]
    summary["vs_random"] = [row.mean / means.get((row.target, reference), math.nan) for row in summary.itertuples()]
    return summary


def format_summary(summary: pd.DataFrame, aims: dict[str, Any], budget: int) -> str:
    """Return the summary as markdown tables, one per target."""
    lines = []
    for target, group in summary.groupby("target", sort=False):
        threshold = {"best": aims["best"], "top": aims["top_threshold"], "beats_relu": aims.get("beats_relu")}[target]
        lines += [f"\nEvaluations until {TARGETS[target]} (score >= {threshold:.4f}; not found: charged {budget}):",
                  "", "| strategy | mean | median | IQR | sd | found | vs random | skipped (missing) / replay |",
                  "|---|---|---|---|---|---|---|---|"]
        for row in group.itertuples():
            lines.append(f"| {row.strategy} | {row.mean:.1f} | {row.median:.1f} | {row.q1:.0f}-{row.q3:.0f} | "
                         f"{row.sd:.1f} | {row.found}/{row.replays} | {row.vs_random:.2f} | {row.missing:.1f} |")
    return "\n".join(lines)


def best_so_far_curve(runs: list[ReplayTrace], budget: int) -> list[float]:
    """Return the mean over replays of the best score after 1 .. budget evaluations (a replay that stopped early
    keeps its last best: it stopped on reaching the target or running out)."""
    curves = []
    for trace in runs:
        curve = trace.best_so_far()[:budget]
        curve += [curve[-1] if curve else math.nan] * (budget - len(curve))
        curves.append(curve)
    return [statistics.fmean(v for v in column if not math.isnan(v)) if any(not math.isnan(v) for v in column)
            else math.nan for column in zip(*curves)]


def plot_arena(traces: dict[str, list[ReplayTrace]], aims: dict[str, Any], budget: int, path: str | Path,
               title: str = "") -> Path:
    """Write a plot of the mean best-so-far score against evaluations, one line per strategy; return the path."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7.5, 4.5))
    steps = range(1, budget + 1)
    for name, runs in traces.items():
        axis.plot(steps, best_so_far_curve(runs, budget), label=f"{name} ({len(runs)} seeds)")
    axis.axhline(aims["top_threshold"], color="grey", linestyle="--", linewidth=0.8, label="top 1 %")
    if aims.get("beats_relu") is not None:
        axis.axhline(aims["beats_relu"], color="grey", linestyle=":", linewidth=0.8, label="relu + 2 x seed noise")
    axis.set_xscale("log")
    axis.set_xlabel("evaluations (distinct functions trained)")
    axis.set_ylabel("best validation accuracy so far (mean over seeds)")
    low = aims["top_threshold"] - 0.08
    axis.set_ylim(low, aims["best"] + 0.01)
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=8, loc="lower right")
    figure.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=120)
    plt.close(figure)
    return path
