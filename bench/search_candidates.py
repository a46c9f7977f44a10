"""Seconds per candidate on what a search actually trains: random paper-space candidates, two ways of running their
activations side by side in one run.

    python bench/search_candidates.py                 # compiled kernels against torch's kernels, 16 candidates
    python bench/search_candidates.py --steps 300     # the default proxy's full training length
    python bench/search_candidates.py --compare elementwise   # torch's own sinh, cosh, ... against elementwise's

`--compare native` (the default) runs each expression through its compiled kernel (`search_space.native`) in one arm
and as a program of torch operators in the other (`ACTSEARCH_NATIVE=0`). `--compare elementwise` runs both arms on
torch's operators, with torch's own sinh, cosh, asinh, sinc, max and min in one and the faster forms of
`search_space.elementwise` in the other.

`bench/throughput.py` times a fixed mix of standard activations (relu, swish, gelu, ...); a search trains random
compositions of the paper's operators instead, whose own elementwise programs can outweigh the convolutions. Both
arms train the same candidates with the same seeds through `evaluator.evaluate_many` (packed, one thread, the
default resnet8_1d proxy on MNIST-1D); rounds alternate the arms so drift on a shared machine hits both. The arms'
validation accuracies are compared too: they differ only by float rounding and by max/min's gradient at exact ties.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from evaluator import TrainConfig, evaluate_many, get_task  # noqa: E402
from search_space import Space  # noqa: E402
from search_space.functions import FUNCTIONS  # noqa: E402


def torch_max(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    if not isinstance(b, torch.Tensor):
        return torch.clamp(a, min=b)
    return torch.clamp(b, min=a) if not isinstance(a, torch.Tensor) else torch.maximum(a, b)


def torch_min(a: torch.Tensor | float, b: torch.Tensor | float) -> torch.Tensor:
    if not isinstance(b, torch.Tensor):
        return torch.clamp(a, max=b)
    return torch.clamp(b, max=a) if not isinstance(a, torch.Tensor) else torch.minimum(a, b)


FASTER = {name: FUNCTIONS[name] for name in ("sinh", "cosh", "asinh", "sinc", "max", "min")}
TORCH_OWN = {"sinh": torch.sinh, "cosh": torch.cosh, "asinh": torch.asinh,
             "sinc": lambda x: torch.sinc(x * (1.0 / torch.pi)), "max": torch_max, "min": torch_min}


def use(arm: str) -> None:
    """Set up one arm: the function table's implementations (programs look them up when a model is built) and
    whether expressions run through compiled kernels."""
    for name, row in FASTER.items():
        own = type(row)(name, row.arity, TORCH_OWN[name], row.description)
        FUNCTIONS[name] = own if arm == "torch's own" else row
    os.environ["ACTSEARCH_NATIVE"] = "1" if arm == "compiled" else "0"


ARMS = {"native": ("torch kernels", "compiled"), "elementwise": ("torch's own", "elementwise")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=16)
    parser.add_argument("--units", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--compare", choices=sorted(ARMS), default="native")
    args = parser.parse_args()

    torch.set_num_threads(1)
    rng = random.Random(args.seed)
    space = Space(units=args.units, ops="paper")
    candidates = [space.sample(rng) for _ in range(args.candidates)]
    using = sum(any(f"{name}(" in str(c) for name in FASTER) for c in candidates)
    data = get_task("mnist1d")
    config = TrainConfig(steps=args.steps, device="cpu", num_threads=1)
    print(f"{platform.processor() or platform.machine()}, torch {torch.__version__}, one thread; "
          f"{args.candidates} random {args.units}-unit paper-space candidates "
          f"({using} use sinh/cosh/asinh/sinc/max/min), "
          f"resnet8_1d on mnist1d, {args.steps} steps")

    evaluate_many(candidates[:2], data, config=TrainConfig(steps=2, device="cpu", num_threads=1))  # warm-up
    baseline, contender = ARMS[args.compare]
    times: dict[str, list[float]] = {baseline: [], contender: []}
    scores: dict[str, list[float | None]] = {}
    for _ in range(args.rounds):
        for arm in times:
            use(arm)
            start = time.perf_counter()
            results = evaluate_many(candidates, data, config=config)
            times[arm].append((time.perf_counter() - start) / len(candidates))
            scores[arm] = [r.val_acc if r.status == "ok" else None for r in results]
    use("compiled")

    for arm, seconds in times.items():
        print(f"{arm:14s} s/candidate: {' / '.join(f'{s:.3f}' for s in seconds)}  (best {min(seconds):.3f})")
    gaps = [abs(a - b) for a, b in zip(scores[baseline], scores[contender], strict=True)
            if a is not None and b is not None]
    same_status = sum((a is None) == (b is None) for a, b in zip(*scores.values(), strict=True))
    print(f"validation accuracy, largest gap between arms: {max(gaps, default=0.0):.4f} "
          f"({same_status}/{len(candidates)} candidates with the same status)")
    speed_up = min(times[baseline]) / min(times[contender])
    print(f"speed-up: {speed_up:.2f}")


if __name__ == "__main__":
    main()
