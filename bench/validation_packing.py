"""Validation training, the seeds of one function one at a time (plain model) against one pack (packed model).

A validation trains each function on a larger model under several seeds. The deeper 1-D ResNets have a packed form
(`evaluator.models.packed.PackedResNet1d` with n blocks per stage) so that the seeds of a function train as one
pack. This times both ways on the same machine, one after the other, in one process with one thread (a Ray worker's
layout), and prints the ratio:

    python bench/validation_packing.py --models resnet20_1d resnet32_1d --seeds 3 5 --steps 60

Both arms train the same function under the same seeds and data order through `evaluator.training.train_slots`;
the plain arm is the registry row with its packed form removed (what validation ran before the packed forms existed).
The two draw their initial weights differently (the packed form seeds each slot's slices, He-style), so their
accuracies agree in distribution, not digit for digit.
Pack-size tuning is off (ACTSEARCH_PACK_TUNING=0), so the pack is all the seeds at once.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import time

os.environ.setdefault("ACTSEARCH_PACK_TUNING", "0")

import torch  # noqa: E402

from evaluator import TrainConfig  # noqa: E402
from evaluator.models import MODELS  # noqa: E402
from evaluator.tasks import get_task  # noqa: E402
from evaluator.training import train_slots  # noqa: E402


def timed(model: str, function: str, seeds: tuple[int, ...], steps: int, packed: bool, data) -> tuple[float, list]:
    """Seconds to train `function` under `seeds`, and the validation accuracies."""
    spec = MODELS[model]
    if not packed:
        MODELS[model] = dataclasses.replace(spec, packed=None)
    try:
        start = time.perf_counter()
        slots, errors, _ = train_slots([function], data, model, TrainConfig(steps=steps, seeds=seeds, device="cpu"))
        seconds = time.perf_counter() - start
    finally:
        MODELS[model] = spec
    if errors:
        raise RuntimeError(f"{function} on {model}: {errors}")
    return seconds, [round(slot.val_acc, 4) for slot in slots]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["resnet20_1d", "resnet32_1d"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[3, 5], help="seed counts to time")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--function", default="x * sigmoid(beta * x)")
    parser.add_argument("--rounds", type=int, default=2, help="rounds, alternating the arms; the best is kept")
    args = parser.parse_args()
    torch.set_num_threads(1)
    data = get_task("mnist1d")
    timed(args.models[0], args.function, (0,), 2, True, data)  # warm-up: kernels, caches
    print(f"{args.function}, {args.steps} steps, one thread, torch {torch.__version__}")
    print("| model | seeds | one at a time s | one pack s | ratio | mean val_acc, one at a time / pack |")
    print("|---|---|---|---|---|---|")
    for model in args.models:
        for count in args.seeds:
            seeds = tuple(range(count))
            plain, packed = [], []
            for _ in range(args.rounds):
                seconds, plain_acc = timed(model, args.function, seeds, args.steps, False, data)
                plain.append(seconds)
                seconds, packed_acc = timed(model, args.function, seeds, args.steps, True, data)
                packed.append(seconds)
            print(f"| {model} | {count} | {min(plain):.2f} | {min(packed):.2f} | {min(plain) / min(packed):.2f} | "
                  f"{sum(plain_acc) / count:.4f} / {sum(packed_acc) / count:.4f} |", flush=True)


if __name__ == "__main__":
    main()
