"""One run from start to end, for the CLI: connect to Ray, build the strategy, show progress, print the top 10."""

from __future__ import annotations

import logging
import math
import platform
import signal
import sys
import time
from importlib import metadata
from typing import Any

from controller.cluster import ClusterError
from controller.cluster import connect_ray as connect
from controller.config import RunConfig
from controller.leaderboard_frame import leaderboard_frame
from controller.loop import Progress, RunLoop
from controller.store import SCHEMA_VERSION, RunStore, load_run
from controller.strategies import create_strategy

__all__ = ["ClusterError", "connect_ray", "resume_command", "run_session", "top_rows"]

logger = logging.getLogger(__name__)


def connect_ray(config: RunConfig) -> None:
    """Start a local Ray (`workers` x `cpus_per_worker` CPUs; dashboard off unless asked, and then on 127.0.0.1)
    or join the cluster at `address`."""
    cpus = max(1, math.ceil(config.workers * config.cpus_per_worker)) if config.address is None else None
    url = connect(config.address, num_cpus=cpus, dashboard=config.dashboard)
    if url:
        port = url.rsplit(":", 1)[1]
        print(f"Ray dashboard: {url} (localhost only; from another machine: ssh -L {port}:localhost:{port} HOST)",
              file=sys.stderr)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("actsearch", "torch", "ray", "optuna", "numpy"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _write_meta(store: RunStore, config: RunConfig, space: Any) -> None:
    store.set_meta({
        "config": config.to_dict(), "ops": list(space.ops.names), "units": config.units, "task": config.task,
        "model": config.model, "strategy": config.strategy, "versions": _versions(), "schema_version": SCHEMA_VERSION,
        "command": " ".join(sys.argv), "updated_at": time.time(),
    })


class _ProgressBar:
    """tqdm bar: done/budget, best so far, evaluations per second, ETA, failures."""

    def __init__(self, budget: int, initial: int) -> None:
        from tqdm import tqdm

        self.bar = tqdm(total=budget, initial=initial, unit="cand", file=sys.stderr, mininterval=0.5,
                        dynamic_ncols=True, smoothing=0.1)

    def __call__(self, progress: Progress) -> None:
        self.bar.n = progress.trained + progress.skipped
        best = "-" if progress.best_score is None else f"{progress.best_score:.4f}"
        rungs = ""
        if progress.rungs:  # results per rung, and the rung the best score was measured at
            best += f"@r{progress.best_rung}"
            rungs = " rungs=" + "/".join(str(n) for n in progress.rungs)
        skipped = f" skipped={progress.skipped}" if progress.skipped else ""
        self.bar.set_postfix_str(f"best={best}{rungs} failed={progress.failures} dup={progress.duplicates} "
                                 f"screened={progress.screened}{skipped}", refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        self.bar.close()


def top_rows(store: RunStore, k: int = 10) -> Any:
    """Return the k best functions with status ok, best first: the leaderboard's rows (a pandas DataFrame, one row
    per function, however many rows of the store it has)."""
    return leaderboard_frame(load_run(store.path), top=k, status="ok", properties=False)


def _print_top(store: RunStore) -> None:
    board = top_rows(store)
    if board.empty:
        print("no candidate finished with status ok")
        return
    steps = "steps" in board and board["steps"].nunique() > 1  # a cascade: say how long each was trained
    print(f"{'rank':>4}  {'score':>7}  {'± sd':>6}  " + (f"{'steps':>5}  " if steps else "") + "expression")
    for row in board.itertuples(index=False):
        sd = float("nan") if row.score_std is None else row.score_std
        trained = f"{row.steps:>5}  " if steps else ""
        print(f"{row.rank:>4}  {row.score:7.4f}  {sd:6.4f}  {trained}{row.expression}")


def _install_stop_handler(loop: RunLoop) -> None:
    """First Ctrl-C (or SIGTERM) asks the loop to stop cleanly; a second one interrupts at once."""

    def handler(signum: int, frame: Any) -> None:
        if loop.stop_requested:
            raise KeyboardInterrupt
        loop.request_stop()
        print("\nstopping: cancelling work in flight and saving a checkpoint (Ctrl-C again to abort)",
              file=sys.stderr)

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


def run_session(config: RunConfig, store: RunStore, resumed: bool) -> int:
    """Run the search described by `config` into `store`; return the exit status (0 done or stopped cleanly)."""
    import torch

    from search_space import Space

    # The driver's torch work (the RL controller, fingerprints) is tiny: one thread, so it never competes with
    # the workers on this node (with 2 threads on a busy 2-core machine a PPO update took 20x longer).
    torch.set_num_threads(1)
    space = Space(units=config.units, ops=config.ops)
    strategy = create_strategy(config.strategy, space, seed=config.seed, **config.strategy_options)
    loop = RunLoop(config, store, strategy)
    considered = loop.progress.trained + loop.progress.skipped
    if considered >= config.budget and not loop.promotion_due():
        print(f"the run already has {considered} of {config.budget} candidates; nothing to do")
        _print_top(store)
        return 0
    connect_ray(config)
    _write_meta(store, config, space)  # after connecting: a run that never started leaves no config behind
    import ray

    bar = _ProgressBar(config.budget, considered)
    loop.on_progress = bar
    _install_stop_handler(loop)
    try:
        progress = loop.run()
    except KeyboardInterrupt:
        bar.close()
        print(f"aborted; resume with: {resume_command(config)}", file=sys.stderr)
        return 130
    finally:
        bar.close()
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        ray.shutdown()
    wall = time.time() - progress.started_at
    skipped = f", {progress.skipped} skipped on the pre-screen's prediction" if progress.skipped else ""
    print(f"{progress.trained}/{config.budget} candidates trained ({progress.failures} failed, "
          f"{progress.duplicates} duplicates and {progress.screened} screened out at no training cost{skipped}) "
          f"in {wall:.1f} s; store: {store.path}")
    if progress.rungs:
        print("results per rung: " + ", ".join(f"{n} at {steps} steps" for n, steps in zip(progress.rungs,
                                                                                         config.rung_steps())))
    if loop.stop_requested:
        print(f"stopped; resume with: {resume_command(config)}")
    elif progress.trained + progress.skipped < config.budget:
        print(f"the {config.strategy} strategy ran out of new candidates before the budget")
    _print_top(store)
    return 0


def resume_command(config: RunConfig) -> str:
    where = f"--out {config.out}" if config.out else f"--name {config.name}"
    return f"python -m controller.run {where} --resume"
