"""The training recipe on the command line: one set of flags for `evaluator.score`, `controller.validate` and
`controller.run`, so the three CLIs name, explain and validate the recipe the same way.

>>> import argparse
>>> parser = argparse.ArgumentParser()
>>> add_recipe_arguments(parser)
>>> recipe_from_args(parser.parse_args(["--lr", "0.002", "--init", "he"]))
{'lr': 0.002, 'init': 'he'}
"""

from __future__ import annotations

import argparse
from typing import Any

from evaluator.config import OPTIMIZERS, SCHEDULES, TrainConfig
from evaluator.models import ACT_NORMS, INIT_SCHEMES

__all__ = ["LEGACY_RECIPE", "RECIPE_KEYS", "add_recipe_arguments", "recipe_from_args"]

# TrainConfig settings that make up the recipe (steps and seeds have CLI flags of their own).
RECIPE_KEYS = ("batch_size", "optimizer", "lr", "schedule", "weight_decay", "init", "act_norm")

# The recipe every run and validation used before these settings were recorded: a stored run without them is
# resumed with these, not with today's defaults.
LEGACY_RECIPE: dict[str, Any] = {
    "batch_size": 128, "optimizer": "adam", "lr": 1e-3, "schedule": "cosine", "weight_decay": 0.0, "init": "auto",
    "act_norm": "none",
}


def add_recipe_arguments(parser: argparse.ArgumentParser) -> None:
    """Add --batch-size, --optimizer, --lr, --schedule, --weight-decay, --init and --act-norm, each defaulting to
    None (the caller's default applies), so that a resume can tell which were given."""
    d = TrainConfig()
    group = parser.add_argument_group("training recipe (defaults: the search proxy's, bench/RESULTS.md)")
    add = group.add_argument
    add("--batch-size", type=int, help=f"examples per optimizer step (default {d.batch_size})")
    add("--optimizer", choices=OPTIMIZERS, help=f"optimizer (default {d.optimizer}; sgd: momentum 0.9, Nesterov)")
    add("--lr", type=float, help=f"peak learning rate (default {d.lr:g}; ~0.1 suits sgd)")
    add("--schedule", choices=SCHEDULES, help=f"learning-rate schedule (default {d.schedule})")
    add("--weight-decay", type=float, help=f"L2 penalty through the optimizer (default {d.weight_decay:g})")
    add("--init", choices=INIT_SCHEMES, help=f"weight init: auto (variance-preserving gain measured for the "
        f"activation), he (sqrt 2) or default (torch's) (default {d.init})")
    add("--act-norm", choices=ACT_NORMS, help="standardize: shift and scale each candidate's output to mean 0, sd 1 "
        f"under N(0, 1) inputs, so output scale cannot buy a score; none: as written (default {d.act_norm})")


def recipe_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Return the recipe settings given on the command line (those left at None are omitted)."""
    return {key: getattr(args, key) for key in RECIPE_KEYS if getattr(args, key, None) is not None}
