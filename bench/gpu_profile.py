"""Where a packed training step spends its time on a GPU: the profile behind `bench/gpu_session.py`'s speed figures.

    python bench/gpu_profile.py --out DIR [--device cuda] [--pack 32] [--steps 40]

Trains one pack of K candidates of the search proxy (ResNet-8, 1-D) for a few steps, once with relu in every slot
and once with K random 2-unit candidates, and profiles the second: wall seconds per step for both (how much the
per-slot activations cost), then the operators by self CPU time and the CUDA runtime calls (launches,
synchronisations) per step, over a short profiled run whose set-up (data, the init gain, the final evaluation) is
counted in. Writes `DIR/gpu-profile.txt`.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _train(candidates: list, device: str, steps: int, pack: int) -> float:
    import torch

    from evaluator import TrainConfig
    from evaluator.tasks import get_task
    from evaluator.training import train_slots

    config = TrainConfig(steps=steps, seeds=(0,), device=device)
    start = time.perf_counter()
    train_slots(candidates, get_task("mnist1d"), "resnet8_1d", config, pack_size=pack)
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--pack", type=int, default=32)
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--profile-steps", type=int, default=3, help="steps of the profiled run (the profiler "
                        "slows a step of 32 random candidates on an H200 from 0.3 s to well over 1 s)")
    args = parser.parse_args()
    import torch
    from torch.profiler import ProfilerActivity, profile

    from search_space.space import Space

    rng = random.Random(0)
    space = Space(units=2, ops="paper")
    randoms = [space.sample(rng) for _ in range(args.pack)]
    lines = [f"device {args.device}, torch {torch.__version__}, pack {args.pack}, {args.steps} steps"]
    _train(["relu"], args.device, 5, 1)  # warm-up
    for label, candidates in (("relu x K", ["relu"] * args.pack), ("random x K", randoms), ("relu x 1", ["relu"])):
        per_step = _train(candidates, args.device, args.steps, len(candidates))
        lines.append(f"{label:11s}: {per_step * 1000:.1f} ms per step")
        print(lines[-1], flush=True)
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if args.device == "cuda" else [])
    with profile(activities=activities) as prof:
        _train(randoms, args.device, args.profile_steps, args.pack)
    events = prof.key_averages()
    runtime = [e for e in events if e.key.startswith("cuda") and not e.key.startswith("cudaGetDevice")]
    lines.append("\nCUDA runtime calls per step:")
    lines += [f"  {e.key:40s} {e.count / args.profile_steps:9.1f}  "
              f"{e.cpu_time_total / args.profile_steps / 1000:8.2f} ms"
              for e in sorted(runtime, key=lambda e: -e.count)[:12]]
    lines.append("\noperators by self CPU time:")
    lines.append(events.table(sort_by="self_cpu_time_total", row_limit=30, max_name_column_width=50))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "gpu-profile.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:40]))


if __name__ == "__main__":
    main()
