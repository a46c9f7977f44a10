"""One validation from start to end: build the grid, run what is pending through Tune, report everything recorded."""

from __future__ import annotations

import argparse
import logging
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from controller.cluster import connect_ray
from controller.validation.render import to_markdown, write_report
from controller.validation.report import ValidationReport
from controller.validation.store import ValidationStore
from controller.validation.tune_runner import TrialSpec, run_grid

__all__ = ["grid_of", "run_validation"]

log = logging.getLogger(__name__)


def grid_of(functions: list[str], models: list[str], seeds: int) -> list[tuple[str, str, int]]:
    """Return every (function, model, seed) trial; seeds are shared so comparisons can be paired by seed."""
    return [(function, model, seed) for model in models for function in functions for seed in range(seeds)]


def _recipe(args: argparse.Namespace, store: ValidationStore) -> dict[str, object]:
    """Return the training recipe of this validation: the one recorded in the store (a resume may not change it, so
    that every trial of a report trained alike), else the command line's over TrainConfig's defaults."""
    from evaluator.config import TrainConfig
    from evaluator.recipe import LEGACY_RECIPE, RECIPE_KEYS, recipe_from_args

    given = recipe_from_args(args)
    recorded = store.meta("recipe")
    if recorded is None and store.meta("grid") is not None:
        recorded = LEGACY_RECIPE  # a validation started before the recipe was recorded
    if recorded is not None:
        for key, value in given.items():
            if recorded.get(key) != value:
                raise ValueError(f"--{key.replace('_', '-')} {value!r} differs from this validation's "
                                 f"{recorded.get(key)!r}; drop it to resume, or use another --name")
        return dict(recorded)
    defaults = TrainConfig().to_dict()
    recipe = {key: given.get(key, defaults[key]) for key in RECIPE_KEYS}
    TrainConfig(**recipe)  # a bad value fails here, before any cluster time
    store.set_meta("recipe", recipe)
    return recipe


def _check_subset(store: ValidationStore, subset: pd.DataFrame) -> None:
    """Refuse to resume a table's validation with another subset (another table, --top, --random or --subset-seed):
    its report would mix two subsets."""
    recorded = store.meta("subset")
    if recorded is not None and [row["function"] for row in recorded] != list(subset["function"]):
        raise ValueError(f"the table and --top, --random, --subset-seed draw another subset than the one {store.path} "
                         "validates; give the same ones to resume it, or use another --name")


def run_validation(
    args: argparse.Namespace,
    functions: list[str],
    search_scores: dict[str, float],
    store: ValidationStore,
    name: str,
    context: dict[str, str],
    echo: Callable[[str], None] = log.info,
    subset: pd.DataFrame | None = None,
) -> ValidationReport:
    """Train every pending trial, then write the report of all recorded trials; `echo` shows progress and report.

    The CLI passes `print`; from Python, progress goes to logging. `subset` (a table's stratified subset,
    `table_source.draw_subset`) adds the report's comparison of the table's proxy with these models.
    """
    from search_space import make_activation

    everything = list(dict.fromkeys(functions + list(args.baselines)))
    for spec in everything:
        make_activation(spec)  # a bad expression or name fails here, before any cluster time is spent
    if subset is not None:
        _check_subset(store, subset)
    grid = grid_of(everything, args.models, args.seeds)
    recipe = _recipe(args, store)
    store.set_meta("grid", grid)
    store.set_meta("search_scores", search_scores)
    if subset is not None:
        store.set_meta("subset", subset.to_dict("records"))
    spec = TrialSpec(
        task=args.task,
        steps=args.steps,
        recipe=recipe,
        device=args.device,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
        task_options={k: v for k, v in {"data_dir": args.data_dir, "size": args.task_size}.items() if v is not None},
    )
    pending = store.pending(grid)
    if pending:
        echo(f"validating {len(everything)} functions x {len(args.models)} models x {args.seeds} seeds: "
              f"{len(pending)} of {len(grid)} trials to run")
        url = connect_ray(args.address, num_cpus=args.workers, dashboard=getattr(args, "dashboard", False))
        if url:
            echo(f"Ray dashboard: {url} (localhost only)")
        run_grid(store, grid, spec, tune_dir=Path(store.path).parent / f"{name}-tune")
    trials = store.frame()
    report = ValidationReport.build(trials, baselines=list(args.baselines), search_scores=search_scores,
                                    subset=subset)
    context = {**context, "task": args.task, "steps per training": str(args.steps), "seeds": str(args.seeds),
               "recipe": ", ".join(f"{key} {value}" for key, value in recipe.items())}
    echo(to_markdown(report, f"Validation: {name}", context))
    paths = write_report(report, Path(args.out), name, context)
    echo("wrote " + ", ".join(str(p) for p in paths))
    return report
