"""Candidates per second on MNIST-1D: the naive loop against packed training, for the MLP and the default proxy.

    python bench/throughput.py --quick          # ~3 minutes on 2 CPU cores; ends with `ratio: N`
    python bench/throughput.py --device cuda    # on a GPU machine

Every configuration trains real candidates (build, train, evaluate on the held-out splits) through the product's
training loop (evaluator.training) in the same run:
  naive        one process, torch's default threads, candidates one after another, each its registry model with
               torch's own layers (a pack of one plain module); the baseline, also run with one thread, and the
               faster of the two is the reference (see the comment in main)
  procs        one single-thread process per core, each running the naive loop
  packK        K candidates per packed model, one process with torch's default threads
  packK x P    packs of K in P single-thread processes side by side
The ratio is the best configuration's candidates/s over `naive` on the default proxy (resnet8_1d).
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import platform
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# This benchmark sets the pack size K itself: measuring the machine's own best K would override it.
os.environ["ACTSEARCH_PACK_TUNING"] = "0"

from evaluator import TaskData, TrainConfig, build_model, get_task  # noqa: E402
from evaluator.training import train_candidates  # noqa: E402

# A mix of cheap and composite activations, cycled to fill packs (a search sees all kinds).
CANDIDATES = ["relu", "swish", "gelu", "elu", "tanh", "sigmoid", "sin", "x * sigmoid(beta * x)"]


def mnist1d_data() -> TaskData:
    """MNIST-1D generated offline (4000 train, 1000 validation, 1000 test)."""
    return get_task("mnist1d")


def _config(steps: int, device: str, init: str) -> TrainConfig:
    """The benchmark's recipe: Adam 1e-3 at a constant rate, raw outputs, one seed."""
    return TrainConfig(steps=steps, batch_size=128, lr=1e-3, schedule="constant", act_norm="none", seeds=(0,),
                       device=device, init=init)


def run_naive(n: int, data: TaskData, model: str, steps: int, device: str) -> int:
    """Train n candidates one after another, each its registry model with torch's own layers and torch's default
    init (a pack of one plain module: the training loop's adapter), as a plain training script would."""
    for i in range(n):
        train_candidates([CANDIDATES[i % len(CANDIDATES)]], data, model, _config(steps, device, "default"),
                         pack_size=1)
    return n


def run_packed(n: int, data: TaskData, model: str, steps: int, device: str, pack: int) -> int:
    """Train n candidates in packs of `pack` slots of the model's packed form."""
    results = train_candidates([CANDIDATES[i % len(CANDIDATES)] for i in range(n)], data, model,
                               _config(steps, device, "auto"), pack_size=pack)
    return len(results)


def _worker(barrier, queue, fn_name: str, kwargs: dict) -> None:
    torch.set_num_threads(1)
    fn = globals()[fn_name]
    fn(**{**kwargs, "n": 2, "steps": 5})  # warm-up outside the clock
    barrier.wait()
    start = time.perf_counter()
    done = fn(**kwargs)
    queue.put((done, time.perf_counter() - start))


def in_processes(procs: int, fn_name: str, **kwargs) -> float:
    """Run fn in `procs` single-thread processes started together; return total candidates per second."""
    ctx = mp.get_context("spawn")
    barrier, queue = ctx.Barrier(procs), ctx.Queue()
    workers = [ctx.Process(target=_worker, args=(barrier, queue, fn_name, kwargs)) for _ in range(procs)]
    for w in workers:
        w.start()
    results = [queue.get() for _ in workers]
    for w in workers:
        w.join()
    return sum(done for done, _ in results) / max(wall for _, wall in results)


def timed(fn, **kwargs) -> float:
    """Candidates per second of fn in this process, after a one-candidate warm-up."""
    fn(**{**kwargs, "n": 2, "steps": 5})  # warm-up: first calls allocate and load kernels
    start = time.perf_counter()
    done = fn(**kwargs)
    return done / (time.perf_counter() - start)


def single_thread(fn, *args, **kwargs) -> float:
    """Run fn with one torch thread in this process, then restore the thread count."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return fn(*args, **kwargs)
    finally:
        torch.set_num_threads(threads)


def step_flops(model: str) -> float:
    """FLOPs of one training step (forward + backward) of one candidate at batch 128, counted by torch."""
    from torch.utils.flop_counter import FlopCounterMode

    net = build_model(model, "relu", (40,), 10, init="default", act_norm="none")
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(net(torch.randn(128, 40)), torch.randint(0, 10, (128,))).backward()
    return float(counter.get_total_flops())


def tuned_choice(model: str, device: str, threads: int) -> str:
    """What evaluator/packing/tuning.py picks here (measured afresh, not cached), with its per-step timings."""
    from evaluator.packing import tuning as pack_tuning
    from evaluator.packing import tuning_builder

    previous = torch.get_num_threads()
    torch.set_num_threads(threads or previous)  # as the workers run: one thread each when there are several cores
    try:
        times = pack_tuning.measure_pack_sizes(
            tuning_builder(model),
            torch.device(device), 40, 10, 128, pack_tuning.CANDIDATE_PACK_SIZES[torch.device(device).type],
        )
    finally:
        torch.set_num_threads(previous)
    return f"K={pack_tuning._fastest(times)} (ms per candidate-step by K: {times})"


def matmul_peak(device: str, threads: int) -> float:
    """Measured fp32 GFLOP/s of a 1024^3 matmul."""
    torch.set_num_threads(threads)
    a = torch.randn(1024, 1024, device=device)
    for _ in range(3):
        a @ a
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ a
    if device == "cuda":
        torch.cuda.synchronize()
    return 2 * 1024**3 * reps / (time.perf_counter() - start) / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer steps (about 4 minutes on 2 quiet cores)")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    parser.add_argument("--packs", default="2,8,16,64", help="pack sizes K to measure (all but the last "
                        "also in one single-thread process per core)")
    parser.add_argument("--rounds", type=int, default=2, help="times each configuration runs; best kept")
    args = parser.parse_args()
    device, cores = args.device, os.cpu_count() or 1
    packs = [int(k) for k in args.packs.split(",")]
    default_threads = torch.get_num_threads()
    data = mnist1d_data()
    print(
        f"machine: {platform.processor() or platform.machine()}, {cores} cores, torch {torch.__version__}, "
        f"device {device}, default threads {default_threads}"
    )
    peak = {t: matmul_peak(device, t) for t in sorted({1, default_threads})}
    torch.set_num_threads(default_threads)
    print("matmul peak 1024^3: " + ", ".join(f"{g:.0f} GFLOP/s at {t} thread(s)" for t, g in peak.items()))
    ratio = 0.0
    for model, steps in (("mlp", 300 if args.quick else 2000), ("resnet8_1d", 30 if args.quick else 150)):
        flops = step_flops(model) * steps
        common = {"data": data, "model": model, "steps": steps, "device": device}
        configs = {
            "naive": lambda c=common: timed(run_naive, n=2, **c),
            "naive 1 thread": lambda c=common: single_thread(timed, run_naive, n=2, **c),
        }
        if device == "cpu" and cores > 1:
            configs[f"procs x{cores}"] = lambda c=common: in_processes(cores, "run_naive", n=2, **c)
        for k in packs:
            configs[f"pack{k}"] = lambda c=common, k=k: timed(run_packed, n=k, pack=k, **c)
        if device == "cpu" and cores > 1:
            for k in packs[:-1] or packs:
                configs[f"pack{k} x{cores} procs"] = lambda c=common, k=k: in_processes(
                    cores, "run_packed", n=k, pack=k, **c
                )
        # Rounds alternate over the configurations and each keeps its best round: on a shared machine the load
        # drifts, and the best round is the least disturbed one.
        rows = {name: 0.0 for name in configs}
        for _ in range(args.rounds):
            for name, measure in configs.items():
                rows[name] = max(rows[name], measure())
        print(
            f"\n{model}: {steps} steps per candidate, {flops / 1e9:.2f} GFLOP per candidate, best of "
            f"{args.rounds} rounds",
            flush=True,
        )
        # The baseline is the faster of the two one-process naive runs: on a loaded machine torch's default threads
        # can collapse (OpenMP barriers waiting on a busy core), which would inflate every ratio.
        base = max(rows["naive"], rows["naive 1 thread"])
        for name, rate in rows.items():
            achieved = rate * flops / 1e9
            print(
                f"  {name:<22} {rate:8.3f} cand/s  {rate / base:6.2f}x naive  "
                f"{achieved:6.1f} GFLOP/s ({100 * achieved / max(peak.values()):4.1f}% of peak)",
                flush=True,
            )
        best = max(rows, key=rows.get)
        print(
            f"  best: {best}, {rows[best] / base:.2f}x the best one-process naive run, "
            f"{rows[best] / rows[f'procs x{cores}'] if f'procs x{cores}' in rows else 1.0:.2f}x one process per core"
        )
        print(f"  the product's own choice here: {tuned_choice(model, device, threads=1 if cores > 1 else 0)}")
        ratio = rows[best] / base  # the last model is the default proxy
    print(f"ratio: {ratio:.2f}", flush=True)


if __name__ == "__main__":
    main()
