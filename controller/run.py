"""`python -m controller.run`: search for activation functions with a strategy on Ray, recording every result.

    python -m controller.run --budget 300 --strategy rl --units 2 --ops paper --workers 2
    python -m controller.run --name my-run --resume            # continue a stopped or killed run
    ray job submit -- python -m controller.run --budget 10000 --address auto --workers 16

Exit status: 0 when the run finished or was stopped cleanly, 2 for bad arguments, an unreachable cluster or an
unusable output folder, a store that another live driver is writing (its writer lease, see `controller.lease`), or a
store that can no longer be written (a full disk, a lease taken over; one line on stderr, no traceback, nothing
recorded lost), 130 after a second Ctrl-C.
"""

from __future__ import annotations

import argparse
import inspect
import json
import logging
import sqlite3
import sys
from typing import Any, NoReturn

from controller.config import SEARCH_KEYS, RunConfig
from controller.strategies import DEFAULT_STRATEGY, STRATEGIES
from evaluator.recipe import RECIPE_KEYS, add_recipe_arguments

__all__ = ["main", "parse_args"]


class UsageError(Exception):
    """A problem with the command line or its environment, reported as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


class _Deprecated(argparse.Action):
    """An old spelling of an option: stores into the new option's dest and says on stderr what to use instead."""

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        new = "--" + self.dest.replace("_", "-")
        print(f"{parser.prog}: {option_string} is deprecated; use {new}", file=sys.stderr)
        setattr(namespace, self.dest, values)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser; search settings default to None so a resume can tell what was given."""
    parser = _Parser(prog="python -m controller.run", description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--budget", type=int, help="distinct candidates to train (required for a new run; a resume may raise it)")
    add("--strategy", choices=list(STRATEGIES), help=f"search strategy (default {DEFAULT_STRATEGY})")
    add("--units", type=int, choices=[1, 2, 3], help="core units per candidate (default 2)")
    add("--ops", help="op set: paper, small, or comma-separated operator names (default paper)")
    add("--task", help="training task for the child networks (default mnist1d)")
    add("--model", help="child network (default: the task's default)")
    add("--seeds", type=int, help="training seeds per candidate (default 1)")
    add("--steps", type=int, help="training steps per seed (default: the evaluator's)")
    add("--seed", type=int, help="strategy seed (default 0)")
    add("--strategy-option", action="append", metavar="KEY=VALUE", dest="strategy_option",
        help="an option of the strategy's constructor, repeatable; VALUE is read as JSON when it parses, else as "
        "text (e.g. order=scattered for exhaustive)")
    add("--workers", type=int, help="Ray tasks in flight at once, each training a batch of candidates (default 2)")
    add("--task-batch", type=int, metavar="N", help="candidates per Ray task, trained in packed models where that is "
        "faster (default: the evaluator's pack size for the model and device, e.g. 8 for the 1-D ResNet proxy on CPU)")
    add("--pack-size", type=int, dest="task_batch", action=_Deprecated, help=argparse.SUPPRESS)
    add("--cpus-per-worker", type=float, help="Ray CPUs per task (default 1)")
    add("--gpus-per-worker", type=float, help="Ray GPUs per task, fractional to share a GPU (default 0)")
    add("--device", choices=["auto", "cpu", "cuda"], help="device the workers train on (default auto)")
    add("--checkpoint-every", type=int, help="rows between strategy checkpoints (default 25; also every 60 s)")
    add("--eval-steps", type=int, nargs="+", metavar="STEP", help="also record each candidate's validation accuracy "
        "after these steps (lower fidelities for multi-fidelity replay; default none)")
    add("--rungs", type=int, nargs="+", metavar="STEPS", help="fidelity cascade: training lengths a candidate climbs "
        "(e.g. 100 300 1000; the last is the full training); the best 1/eta of a rung train on to the next "
        "(default: 1/6, 1/2 and all of --steps, i.e. 50 150 300)")
    add("--flat", action="store_true", default=None, help="no cascade: every candidate trains the full --steps")
    add("--eta", type=int, help="keep the best 1/eta of each rung (default 4)")
    add("--top-seeds", type=int, metavar="N", help="train the best --top-k functions of the top rung again until "
        "each has N seeds, so the top of the leaderboard is a mean (default 3; 0: off)")
    add("--top-k", type=int, metavar="K", help="how many of the best get --top-seeds (default 10)")
    add("--prescreen", action=argparse.BooleanOptionalAction, default=None,
        help="skip proposals a surrogate fitted on the run's own scores predicts well below them (default: on)")
    add("--prescreen-kappa", type=float, metavar="K", help="skip only when the prediction plus K times the spread "
        "of the surrogate's trees is below the run's median score (default 1; 0: the prediction alone)")
    add("--timeout", type=float, help="seconds per candidate before it is recorded as timeout (default none)")
    add("--address", help="Ray cluster to join (auto, host:port, ray://host:10001); default: a local Ray")
    add("--dashboard", action="store_true", default=None,
        help="start the local Ray's dashboard, bound to 127.0.0.1 only (default: off)")
    add("--name", default="run", help="run name; the store goes to results/runs/NAME/run.sqlite (default run)")
    add("--out", help="folder for the run store instead of results/runs/NAME")
    add("--resume", action="store_true", help="continue the run stored at --out or under --name")
    add("-v", "--verbose", action="store_true", help="log what the loop does")
    add_recipe_arguments(parser)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Return the parsed command line."""
    return build_parser().parse_args(argv)


def _given(args: argparse.Namespace) -> dict[str, Any]:
    keys = ("budget", "strategy", "units", "ops", "task", "model", "seeds", "steps", "seed", "workers", "task_batch",
            "cpus_per_worker", "gpus_per_worker", "device", "timeout", "address", "dashboard",
            "checkpoint_every", "eval_steps", "rungs", "eta", "prescreen", "prescreen_kappa", "top_seeds", "top_k",
            *RECIPE_KEYS)
    values = {key: getattr(args, key) for key in keys if getattr(args, key) is not None}
    if getattr(args, "flat", None):
        if "rungs" in values:
            raise UsageError("--flat and --rungs contradict each other; give one")
        values["rungs"] = []
    if getattr(args, "strategy_option", None):
        values["strategy_options"] = dict(_strategy_option(text) for text in args.strategy_option)
    if "ops" in values and values["ops"] not in ("paper", "small"):
        values["ops"] = [name.strip() for name in values["ops"].split(",") if name.strip()]
    return values


def _strategy_option(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise UsageError(f"--strategy-option needs KEY=VALUE, got {text!r} (e.g. --strategy-option order=scattered)")
    try:
        return key.strip(), json.loads(value)
    except json.JSONDecodeError:
        return key.strip(), value


def make_config(args: argparse.Namespace, stored: dict[str, Any] | None) -> RunConfig:
    """Return the run's config: the command line for a new run, the stored config plus execution settings for a
    resume (search settings that differ from the stored ones are an error)."""
    given = _given(args)
    if stored is None:
        if "budget" not in given:
            raise UsageError("--budget is required for a new run (the number of distinct candidates to train)")
        return RunConfig(name=args.name, out=args.out, **given)
    recorded = RunConfig.from_dict({**stored, "name": args.name, "out": args.out}).to_dict()  # legacy keys filled
    for key in SEARCH_KEYS:
        if key in given and given[key] != recorded.get(key):
            raise UsageError(f"--{key.replace('_', '-')} {given[key]!r} differs from the run's {recorded.get(key)!r}; "
                             f"drop it to resume, or start a new run with another --name")
    return RunConfig.from_dict({**recorded, **given, "name": args.name, "out": args.out})


def _open(args: argparse.Namespace) -> tuple[RunConfig, Any]:
    from controller.lease import LeaseHeld
    from controller.store import RunStore, StoreError

    probe = RunConfig(budget=1, name=args.name, out=args.out)
    path = probe.store_path
    exists = path.is_file()
    if args.resume and not exists:
        raise UsageError(f"--resume: no run store at {path}; check --name/--out, or drop --resume to start it")
    try:
        store = RunStore(path, lease=True)  # before anything else: a store another driver writes is left alone
    except LeaseHeld as error:
        raise UsageError(str(error)) from None
    except (OSError, StoreError) as error:
        raise UsageError(f"cannot use the run store at {path}: {error}") from None
    stored = store.get_meta().get("config") if exists else None
    if exists and not args.resume and (stored is not None or store.last_row_id()):
        store.close()
        raise UsageError(f"a run is already stored at {path}; add --resume to continue it, or choose another "
                         f"--name or --out")
    try:
        config = make_config(args, stored)
        _check_choices(config)
    except (ValueError, UsageError):
        store.close()
        raise
    return config, store


def _check_choices(config: RunConfig) -> None:
    """Raise ValueError for an op set, task or model the other packages do not know."""
    from search_space import Space

    space = Space(units=config.units, ops=config.ops)
    import evaluator

    for kind, table, value in (("task", evaluator.TASKS, config.task), ("model", evaluator.MODELS, config.model)):
        if value is not None and value not in table:
            raise ValueError(f"unknown {kind} {value!r}; choose one of: {', '.join(table)}")
    from controller.strategies import create_strategy, strategy_class

    valid = [name for name in inspect.signature(strategy_class(config.strategy)).parameters if name not in
             ("space", "seed")]
    unknown = sorted(set(config.strategy_options) - set(valid))
    if unknown:
        raise ValueError(f"strategy {config.strategy!r} has no option {', '.join(unknown)}; its options: "
                         f"{', '.join(valid) or 'none'}")
    create_strategy(config.strategy, space, seed=config.seed, **config.strategy_options)  # bad option values


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(message)s")
    try:
        config, store = _open(args)
    except (UsageError, ValueError) as error:
        print(f"python -m controller.run: error: {error}", file=sys.stderr)
        return 2
    from controller import session
    from controller.lease import LeaseLost

    try:
        return session.run_session(config, store, resumed=args.resume)
    except (session.ClusterError, LeaseLost) as error:
        print(f"python -m controller.run: error: {error}", file=sys.stderr)
        return 2
    except (sqlite3.Error, OSError) as error:  # a full disk, a folder turned read-only, a file-size limit
        # SQLite rolled back the write that failed: every row recorded before it is intact, and so is the last
        # checkpoint; the results that were in flight are trained again on resume.
        print(f"python -m controller.run: error: cannot write the run store at {store.path} ({error}); every "
              f"result recorded so far is kept: free disk space or fix the folder's permissions, then resume with: "
              f"{session.resume_command(config)}", file=sys.stderr)
        return 2
    finally:
        store.close()


if __name__ == "__main__":
    sys.exit(main())
