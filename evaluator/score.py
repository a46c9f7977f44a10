"""`python -m evaluator.score EXPR`: train one candidate and print its scores.

    python -m evaluator.score "x * sigmoid(beta * x)" --task mnist1d --model resnet8_1d --seeds 3 --steps 300
    python -m evaluator.score swish --json

A bad expression, task or model name prints one line on stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import NoReturn

from evaluator.config import DEVICES, TrainConfig
from evaluator.models import MODELS, activation_factory, check_input
from evaluator.recipe import add_recipe_arguments, recipe_from_args
from evaluator.result import EvalResult
from evaluator.tasks import TASKS, get_task

__all__ = ["format_result", "main"]

PROG = "python -m evaluator.score"


class _OneLineParser(argparse.ArgumentParser):
    """Usage errors as one line (no usage dump), exit status 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{PROG}: error: {message}\n")


def _parser() -> argparse.ArgumentParser:
    defaults = TrainConfig()
    p = _OneLineParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("candidate", help="an expression such as 'x * sigmoid(beta * x)' or a known name such as swish")
    p.add_argument("--task", default="mnist1d", help=f"one of: {', '.join(TASKS)} (default mnist1d)")
    p.add_argument("--model", help=f"one of: {', '.join(MODELS)} (default: the task's proxy)")
    p.add_argument("--seeds", type=int, default=1, help="trainings with seeds 0..N-1 (default 1)")
    p.add_argument("--steps", type=int, default=defaults.steps, help=f"optimizer steps per seed ({defaults.steps})")
    p.add_argument("--device", default=defaults.device, choices=DEVICES)
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    p.add_argument("--time-limit", type=float, help="seconds for the whole candidate before status timeout")
    p.add_argument("--task-size", type=int, help="examples to generate or keep (mnist1d default 6,000)")
    p.add_argument("--data-dir", help="folder holding CIFAR (cifar-10-batches-py/, cifar-100-python/)")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    add_recipe_arguments(p)
    return p


def _fail(message: str) -> NoReturn:
    print(f"{PROG}: error: {message}", file=sys.stderr)
    raise SystemExit(2)


def _fmt(value: float | None, spec: str = ".4f") -> str:
    return "-" if value is None else format(value, spec)


def format_result(result: EvalResult, task: str, model: str, steps: int) -> str:
    """Return the human-readable report of one result."""
    seeds = len(result.seeds)
    lines = [
        f"{result.expression}  on {task} / {model}: {seeds} seed(s) x {steps} steps ({result.device})",
        f"  status          {result.status}{'  (' + result.reason + ')' if result.reason else ''}",
        f"  score           {_fmt(result.score)}   validation accuracy, mean over seeds",
        f"  val_acc         {_fmt(result.val_acc)} ± {_fmt(result.val_acc_std)}   per seed: "
        + (" ".join(f"{a:.4f}" for a in result.per_seed_val_acc) or "-"),
        f"  test_acc        {_fmt(result.test_acc)} ± {_fmt(result.test_acc_std)}",
        f"  train loss      {_fmt(result.loss)}",
        f"  dead_rate       {_fmt(result.dead_rate, '.3f')}   hidden units with zero activation gradient",
        f"  pred_diff       {_fmt(result.pred_diff, '.3f')}   test predictions differing between two seeds",
        f"  act_cost        {_fmt(result.act_cost, '.2f')}x relu",
        f"  grad_norm_init  {_fmt(result.grad_norm_init, '.3g')}",
        f"  speed           {_fmt(result.steps_per_s, '.1f')} steps/s, {_fmt(result.wall_s, '.1f')} s in all",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; return 0 when the candidate trained (status ok), 1 otherwise, 2 for bad input."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    args = _parser().parse_args(argv)
    if args.task not in TASKS:
        _fail(f"unknown task {args.task!r}; choose one of: {', '.join(TASKS)}")
    if args.model is not None and args.model not in MODELS:
        _fail(f"unknown model {args.model!r}; choose one of: {', '.join(MODELS)}")
    if args.seeds < 1:
        _fail(f"--seeds must be at least 1, got {args.seeds}")
    from evaluator.api import evaluate

    try:
        activation_factory(args.candidate)  # a bad expression fails here, as one line
        config = TrainConfig(steps=args.steps, seeds=tuple(range(args.seeds)), device=args.device,
                             time_limit_s=args.time_limit, num_threads=args.threads, **recipe_from_args(args))
        data = get_task(args.task, size=args.task_size, data_dir=args.data_dir)
        model = args.model or TASKS[args.task].default_model
        check_input(model, data.input_shape)
    except (ValueError, TypeError) as error:
        _fail(str(error))
    result = evaluate(args.candidate, data, model, config)
    if args.json:
        print(json.dumps(result.to_dict()))
    else:
        print(format_result(result, args.task, model, args.steps))
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
