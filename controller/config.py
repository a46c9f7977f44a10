"""`RunConfig`: every setting of a search run, validated, JSON-safe, stored in the run's metadata."""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evaluator.config import TrainConfig
from evaluator.recipe import LEGACY_RECIPE, RECIPE_KEYS

__all__ = ["SEARCH_KEYS", "RunConfig"]

_TRAIN = TrainConfig()  # the evaluator's defaults
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z")
# The default cascade's rungs as fractions of the training length (50, 150, 300 of the default 300 steps): measured
# against flat training in bench/RESULTS.md ("Session 7").
DEFAULT_RUNG_FRACTIONS = (1 / 6, 1 / 2, 1.0)


@dataclass
class RunConfig:
    """Settings of one search run (`python -m controller.run` builds it from its arguments)."""

    budget: int  # distinct candidates to train (duplicates and screened-out candidates do not count)
    strategy: str = "rl"  # a key of controller.strategies.STRATEGIES
    units: int = 2  # core units per candidate (the paper searched 1 to 3)
    ops: str | list[str] = "paper"  # op set: "paper", "small" or a list of operator names
    task: str = "mnist1d"  # a key of evaluator.TASKS
    model: str | None = None  # a key of evaluator.MODELS; None: the task's default child network
    seeds: int = 1  # training seeds per candidate (its score is the mean validation accuracy)
    steps: int | None = None  # training steps per seed; None: the evaluator's default
    # The training recipe (evaluator.TrainConfig's settings of the same names; defaults are the evaluator's).
    batch_size: int = _TRAIN.batch_size
    optimizer: str = _TRAIN.optimizer
    lr: float = _TRAIN.lr
    schedule: str = _TRAIN.schedule
    weight_decay: float = _TRAIN.weight_decay
    init: str = _TRAIN.init
    act_norm: str = _TRAIN.act_norm
    eval_steps: list[int] = field(default_factory=list)  # also record validation accuracy after these steps
    # The fidelity cascade (controller.fidelity): training lengths a candidate climbs, the last one the schedule's
    # length; the best 1/eta of a rung go up one rung. None: 1/6, 1/2 and all of `steps` (50, 150, 300 by
    # default); empty: flat training (every candidate the full length).
    rungs: list[int] | None = None
    eta: int = 4  # 4 rather than 3: the same top 10 for 18 % fewer steps (bench/RESULTS.md, "Session 9")
    prescreen: bool = True  # skip proposals a surrogate predicts far below the run's scores (controller.surrogate)
    # The pre-screen skips only when its mean prediction plus prescreen_kappa times its trees' spread is below the run's
    # median (0: the mean alone). A converged search proposes functions within noise of the median, and the mean alone
    # then skips good ones on differences the forest cannot resolve (bench/RESULTS.md, "Session 12").
    prescreen_kappa: float = 1.0
    # More seeds where it matters: a function in the best `top_k` of the top rung is trained again with fresh seeds
    # until it has `top_seeds` in all (0, or not above `seeds`: off), so the top of the leaderboard is a mean.
    top_seeds: int = 3
    top_k: int = 10
    seed: int = 0  # strategy seed
    workers: int = 2  # Ray tasks in flight at once (each trains one batch of candidates)
    cpus_per_worker: float = 1.0  # Ray CPUs each task declares
    gpus_per_worker: float = 0.0  # Ray GPUs each task declares (fractional lets tasks share a GPU)
    task_batch: int | None = None  # candidates per Ray task; None: what the evaluator packs for model and device
    device: str = "auto"  # "auto", "cpu" or "cuda", passed to the evaluator on the workers
    timeout: float | None = None  # seconds per candidate before it is recorded as "timeout"
    address: str | None = None  # Ray cluster to join ("auto", "ray://host:10001", "host:6379"); None: local Ray
    dashboard: bool = False  # start the local Ray's dashboard, bound to 127.0.0.1
    name: str = "run"  # run name: the store goes to results/runs/<name>/run.sqlite unless out is given
    out: str | None = None  # folder of the run store
    max_attempts: int = 3  # tries per candidate when its worker dies or the task raises
    checkpoint_every: int = 25  # rows between strategy checkpoints (also every 60 s and at the end)
    strategy_options: dict[str, Any] = field(default_factory=dict)  # passed to the strategy's constructor

    def __post_init__(self) -> None:
        for key in ("budget", "units", "seeds", "workers", "task_batch", "max_attempts", "checkpoint_every", "steps"):
            value = getattr(self, key)
            if key in ("task_batch", "steps") and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer, got {value!r}")
        if self.cpus_per_worker <= 0 or self.gpus_per_worker < 0:
            raise ValueError(f"cpus-per-worker must be > 0 and gpus-per-worker >= 0, got {self.cpus_per_worker} "
                             f"and {self.gpus_per_worker}")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"device must be auto, cpu or cuda, got {self.device!r}")
        if self.timeout is not None and self.timeout <= 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if self.rungs:
            from controller.fidelity import parse_rungs

            self.rungs = list(parse_rungs(self.rungs))
            if self.steps is not None and self.steps != self.rungs[-1]:
                raise ValueError(f"--steps {self.steps} differs from the top rung {self.rungs[-1]}; the top rung is "
                                 f"the training length, so drop --steps")
        for key, least in (("top_seeds", 0), ("top_k", 1)):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise ValueError(f"{key.replace('_', '-')} must be an integer >= {least}, got {value!r}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, int) or self.eta < 2:
            raise ValueError(f"eta must be an integer >= 2 (the best 1/eta of a rung are promoted), got {self.eta!r}")
        # ValueError naming a bad recipe setting and its valid values.
        TrainConfig(**self.recipe(), eval_steps=tuple(self.eval_steps), steps=self.schedule_steps)
        if not _NAME.match(self.name):
            raise ValueError(f"name must be letters, digits, '.', '_' or '-' (it names a folder), got {self.name!r}")

    def candidates_per_task(self) -> int:
        """Candidates sent to one Ray task: `task_batch`, or by default the evaluator's pack size for the child
        model on the workers' device divided by the seeds (an evaluator pack holds one slot per candidate and seed)."""
        if self.task_batch is not None:
            return self.task_batch
        from evaluator import TASKS, packing_policy

        model = self.model or TASKS[self.task].default_model
        device = "cuda" if self.gpus_per_worker > 0 or self.device == "cuda" else "cpu"
        return max(1, packing_policy(model, device) // self.seeds)

    @property
    def schedule_steps(self) -> int:
        """Training steps of a candidate that goes all the way: the top rung, else `steps`, else the evaluator's."""
        return self.rungs[-1] if self.rungs else self.steps or _TRAIN.steps

    def rung_steps(self) -> tuple[int, ...]:
        """The rungs as training lengths (`rungs`, or the default fractions of the schedule); one rung when the run
        trains flat."""
        if self.rungs is None:
            full = self.schedule_steps
            return tuple(sorted({max(1, round(full * f)) for f in DEFAULT_RUNG_FRACTIONS} | {full}))
        return tuple(self.rungs) or (self.schedule_steps,)

    @property
    def extra_seeds(self) -> list[int]:
        """The seeds a top function gets beyond the run's own (none when `top_seeds` is off)."""
        return list(range(self.seeds, self.top_seeds))

    def recipe(self) -> dict[str, Any]:
        """Return the training recipe as TrainConfig settings."""
        return {key: getattr(self, key) for key in RECIPE_KEYS}

    @property
    def store_path(self) -> Path:
        """Return the path of the run's SQLite store."""
        folder = Path(self.out) if self.out else Path("results") / "runs" / self.name
        return folder / "run.sqlite"

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as a JSON-safe dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Return a config from `to_dict` output, ignoring keys this version does not know; a config stored before
        the recipe was recorded gets the recipe it ran with (LEGACY_RECIPE), not today's defaults, and one stored
        with `pack_size` (the old name of `task_batch`) keeps its value."""
        known = {f.name for f in dataclasses.fields(cls)}
        if "pack_size" in values and values.get("task_batch") is None:
            values = {**values, "task_batch": values["pack_size"]}
        # A run stored before the cascade existed trained flat, whatever today's defaults are.
        legacy = {**LEGACY_RECIPE, "rungs": [], "prescreen": False, "top_seeds": 0, "prescreen_kappa": 0.0}
        return cls(**{**legacy, **{key: value for key, value in values.items() if key in known}})


# Settings that define what a run searches: a resumed run must keep them (the rest are execution settings).
SEARCH_KEYS = ("strategy", "units", "ops", "task", "model", "seeds", "steps", "seed", "strategy_options", "rungs",
               "eta", "prescreen", "prescreen_kappa", "top_seeds", "top_k", *RECIPE_KEYS)
