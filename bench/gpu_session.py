"""One prepared script for a lent GPU machine: the CUDA path's first run, its speed, and a validation at scale.

    python bench/gpu_session.py --out DIR --like results/rediscovery/state/paper-2unit-10k.validation.sqlite.gz \
        --models resnet20_1d resnet32_1d resnet56_1d --seeds 5 --steps 1000 --workers 12 --deadline 420

Such a machine is lent for minutes, starts bare and reaches no package registry; Ray's wheel is larger than what
may travel to it, so this script needs no Ray: it calls the evaluator and the validation trial (`train_seeds`, what
a Ray Tune trial runs) directly, in worker processes that share the GPU. Three parts, in one process tree:

1. agreement: the same functions and seeds trained on the GPU (bfloat16 autocast, the CUDA default; and float32)
   and on the machine's CPU. The scores should agree within seed noise; a CUDA-only bug shows here first.
2. speed: packs of K random 2-unit candidates of the search proxy (ResNet-8, 150 steps) on the GPU and on the CPU
   (one process, all cores), candidates per second side by side.
3. validation: the grid of `--like`'s functions (a validation store of the CPU run: its functions, proxy scores and
   seeds) on `--models` with `--seeds`, every (function, model) one pack of its seeds, each result recorded as it
   lands in a validation store under DIR; at `--deadline` seconds no new pack starts and the report covers what
   finished. Then DIR holds `gpu-session.json` (parts 1-2, timings, GPU utilisation samples) and the validation
   store and report (`gpu-validation.sqlite|md|csv|png`); re-render the report here with `--render --out DIR`.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import platform
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

AGREEMENT_FUNCTIONS = ["relu", "swish", "sigmoid(beta * x) * max(x, 0)"]
SPEED_PACKS = {"cuda": (1, 8, 32, 128), "cpu": (8,)}


def _machine() -> dict[str, object]:
    import torch

    info: dict[str, object] = {"python": platform.python_version(), "torch": torch.__version__,
                               "cpus": os.cpu_count(), "cuda": torch.cuda.is_available()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def _like(path: Path) -> tuple[list[str], dict[str, float], list[str]]:
    """Return (functions in grid order, proxy scores, baselines) of a validation store (or its .gz)."""
    if path.suffix == ".gz":
        plain = Path("/tmp") / path.stem
        with gzip.open(path, "rb") as source, open(plain, "wb") as target:
            shutil.copyfileobj(source, target)
        path = plain
    with sqlite3.connect(path) as db:
        meta = {key: json.loads(value) for key, value in db.execute("SELECT key, value FROM meta")}
    functions = list(dict.fromkeys(function for function, _, _ in meta["grid"]))
    scores = {key: float(value) for key, value in meta.get("search_scores", {}).items()}
    return functions, scores, [f for f in functions if f not in scores]


def agreement(device: str, steps: int = 300) -> list[dict[str, object]]:
    """Train the same functions and seeds on cuda (bf16 autocast and fp32) and on the CPU; return the scores."""
    from evaluator import TrainConfig, evaluate

    rows = []
    settings = [("cuda bf16", "cuda", True), ("cuda fp32", "cuda", False)] if device == "cuda" else []
    for label, device, amp in [*settings, ("cpu", "cpu", False)]:
        for function in AGREEMENT_FUNCTIONS:
            result = evaluate(function, "mnist1d", config=TrainConfig(steps=steps, seeds=(0, 1), device=device,
                                                                       amp=amp))
            rows.append({"setting": label, "function": function, "status": result.status, "reason": result.reason,
                         "per_seed_val_acc": result.per_seed_val_acc, "wall_s": result.wall_s})
            print(f"agreement {label:9s} {function:32s} {result.status} {result.per_seed_val_acc} "
                  f"{result.wall_s:.1f} s", flush=True)
    return rows


def speed(device: str, steps: int = 150) -> list[dict[str, object]]:
    """Candidates per second for packs of K random 2-unit candidates of the proxy, on cuda and on the CPU."""
    import torch

    from evaluator import TrainConfig
    from evaluator.tasks import get_task
    from evaluator.training import train_slots
    from search_space.space import Space

    space, data = Space(units=2, ops="paper"), get_task("mnist1d")
    rows = []
    packs = SPEED_PACKS if device == "cuda" else {"cpu": SPEED_PACKS["cpu"]}
    for where, sizes in packs.items():
        for k in sizes:
            rng = random.Random(k)
            candidates = [space.sample(rng) for _ in range(k)]
            config = TrainConfig(steps=steps, seeds=(0,), device=where)
            train_slots(candidates[:1], data, "resnet8_1d", config, pack_size=1)  # warm-up: kernels, allocator
            if where == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            slots, errors, _ = train_slots(candidates, data, "resnet8_1d", config, pack_size=k)
            if where == "cuda":
                torch.cuda.synchronize()
            wall = time.perf_counter() - start
            rows.append({"device": where, "pack": k, "steps": steps, "wall_s": wall, "cand_per_s": k / wall,
                         "ok": sum(slot.status == "ok" for slot in slots), "errors": len(errors),
                         "threads": torch.get_num_threads()})
            print(f"speed {where} K={k}: {k / wall:.2f} candidates/s ({wall:.1f} s)", flush=True)
    return rows


def _recipe() -> dict[str, object]:
    """The default training recipe, as the CPU validation recorded it."""
    from evaluator import TrainConfig
    from evaluator.recipe import RECIPE_KEYS

    defaults = TrainConfig()
    return {key: getattr(defaults, key) for key in RECIPE_KEYS}


def _worker_init() -> None:
    import torch

    torch.set_num_threads(1)


def _train(trial: dict[str, object]) -> tuple[dict[str, object], dict[int, dict[str, object]], float]:
    from controller.validation.trial import train_seeds

    start = time.perf_counter()
    return trial, train_seeds(trial), time.perf_counter() - start


class _Utilisation(threading.Thread):
    """Samples the GPU's utilisation (nvidia-smi) every few seconds while the validation runs."""

    def __init__(self, every: float = 5.0) -> None:
        super().__init__(daemon=True)
        self.every, self.samples, self.stop = every, [], threading.Event()

    def run(self) -> None:
        while not self.stop.wait(self.every):
            try:
                out = subprocess.run(["nvidia-smi", "--query-gpu=utilization.gpu,memory.used",
                                      "--format=csv,noheader,nounits"], capture_output=True, text=True, timeout=5)
                gpu, memory = (float(v) for v in out.stdout.strip().split(","))
                self.samples.append({"t": time.time(), "gpu_pct": gpu, "memory_mib": memory})
            except (OSError, ValueError, subprocess.SubprocessError):
                return


def validation(args: argparse.Namespace, functions: list[str], scores: dict[str, float], deadline: float,
               out: Path) -> dict[str, object]:
    """Run the grid in `args.workers` processes until the deadline; record each result; return timings."""
    from controller.validation.store import ValidationStore

    recipe = _recipe()
    store = ValidationStore(out / "gpu-validation.sqlite")
    grid = [(f, m, s) for m in args.models for f in functions for s in range(args.seeds)]
    store.set_meta("grid", grid)
    store.set_meta("search_scores", scores)
    store.set_meta("recipe", recipe)
    first = sorted(functions, key=lambda f: f != "relu")  # the reference first, so a cut grid still has it
    trials = [{"function": f, "model": m, "seeds": list(range(args.seeds)), "task": "mnist1d", "steps": args.steps,
               "recipe": recipe, "device": args.device} for m in args.models for f in first]
    sampler = _Utilisation()
    sampler.start()
    start, done, packs = time.perf_counter(), 0, []
    pool = multiprocessing.get_context("spawn").Pool(args.workers, initializer=_worker_init)
    results = pool.imap_unordered(_train, trials)
    try:
        while done < len(trials):
            left = deadline - time.time()
            if left <= 0:
                raise multiprocessing.TimeoutError
            trial, metrics, wall = results.next(timeout=left)
            for seed, row in metrics.items():
                store.record(trial["function"], trial["model"], seed, task="mnist1d",
                             status=str(row.get("status", "error")), reason=str(row.get("reason", "")),
                             test_acc=row.get("test_acc"), val_acc=row.get("val_acc"),
                             dead_rate=row.get("dead_rate"), predictions=row.get("predictions"),
                             wall_s=row.get("wall_s"), device=str(row.get("device", args.device)))
            done += 1
            packs.append({"function": trial["function"], "model": trial["model"], "wall_s": wall})
            print(f"validation {done}/{len(trials)} {trial['model']} {trial['function']} {wall:.1f} s "
                  f"({time.perf_counter() - start:.0f} s in)", flush=True)
    except multiprocessing.TimeoutError:
        print(f"validation: deadline reached after {done} of {len(trials)} packs", flush=True)
    finally:
        pool.terminate()
        sampler.stop.set()
    store.close()
    return {"packs_done": done, "packs": len(trials), "wall_s": time.perf_counter() - start, "per_pack": packs,
            "utilisation": sampler.samples, "workers": args.workers, "steps": args.steps, "seeds": args.seeds,
            "models": args.models}


def render(out: Path, baselines: list[str], context: dict[str, str]) -> list[Path]:
    """Write the validation report of `out`'s store with the same code as `python -m controller.validate`."""
    from controller.validation.render import write_report
    from controller.validation.report import ValidationReport
    from controller.validation.store import ValidationStore

    store = ValidationStore(out / "gpu-validation.sqlite")
    try:
        report = ValidationReport.build(store.frame(), baselines=baselines,
                                        search_scores=store.meta("search_scores", {}))
    finally:
        store.close()
    return write_report(report, out, "gpu-validation", context)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--like", type=Path, help="a validation store (.sqlite or .sqlite.gz) whose functions to run")
    parser.add_argument("--models", nargs="+", default=["resnet20_1d", "resnet32_1d", "resnet56_1d"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=1000)
    parser.add_argument("--workers", type=int, default=12, help="processes sharing the GPU")
    parser.add_argument("--deadline", type=float, default=420.0, help="seconds after start: no new pack after it")
    parser.add_argument("--device", default="cuda", choices=["cuda", "cpu"], help="cpu: try the script here")
    parser.add_argument("--agreement-steps", type=int, default=300)
    parser.add_argument("--speed-steps", type=int, default=150)
    parser.add_argument("--skip", nargs="*", default=[], choices=["agreement", "speed", "validation"])
    parser.add_argument("--render", action="store_true", help="only re-render the report of --out's store")
    args = parser.parse_args()
    started = time.time()
    args.out.mkdir(parents=True, exist_ok=True)
    functions, scores, baselines = _like(args.like)
    context = {"command": "python bench/gpu_session.py " + " ".join(sys.argv[1:])}
    if args.render:
        print("wrote " + ", ".join(map(str, render(args.out, baselines, context))))
        return
    summary: dict[str, object] = {"machine": _machine(), "argv": sys.argv[1:], "started": started}
    print(json.dumps(summary["machine"]), flush=True)
    for part, run, steps in (("agreement", agreement, args.agreement_steps), ("speed", speed, args.speed_steps)):
        if part not in args.skip:
            t0 = time.perf_counter()
            try:
                summary[part] = run(args.device, steps)
            except Exception as error:  # one part's failure is a finding; the next part still runs
                traceback.print_exc()
                summary[part] = {"error": f"{type(error).__name__}: {error}"}
            summary[f"{part}_s"] = time.perf_counter() - t0
            (args.out / "gpu-session.json").write_text(json.dumps(summary, indent=1))
    if "validation" not in args.skip:
        summary["validation"] = validation(args, functions, scores, started + args.deadline, args.out)
        (args.out / "gpu-session.json").write_text(json.dumps(summary, indent=1))
        machine = summary["machine"]
        context["machine"] = (f"{machine.get('gpu', 'no GPU')}, {machine['cpus']} CPU cores, torch {machine['torch']}, "
                              f"{args.workers} worker processes sharing the GPU, bf16 autocast" if args.device == "cuda"
                              else f"{args.workers} worker processes on the CPU")
        context.update({"task": "mnist1d", "steps per training": str(args.steps), "seeds": str(args.seeds),
                        "recipe": ", ".join(f"{key} {value}" for key, value in _recipe().items())})
        print("wrote " + ", ".join(map(str, render(args.out, baselines, context))), flush=True)
    summary["total_s"] = time.time() - started
    (args.out / "gpu-session.json").write_text(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
