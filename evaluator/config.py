"""`TrainConfig`: every setting of one candidate's training, with its default and why."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import torch

from evaluator.models.init import INIT_SCHEMES
from evaluator.models.standardise import ACT_NORMS

__all__ = ["TrainConfig", "resolve_device"]

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "constant")
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class TrainConfig:
    """How a candidate is trained; the defaults are the measured search proxy (MNIST-1D, 1-D ResNet-8, 300 steps).

    >>> from evaluator import TrainConfig
    >>> TrainConfig(steps=150, seeds=(0, 1)).steps
    150
    >>> TrainConfig.from_dict({"stepz": 1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown TrainConfig setting 'stepz'; valid settings: steps, batch_size, ...
    """

    steps: int = 300  # optimizer steps per seed; 150-300 ranks activations like deep nets (MEASUREMENTS.md)
    batch_size: int = 128  # examples per step
    optimizer: str = "adam"  # adam | sgd (momentum 0.9, Nesterov)
    lr: float = 2e-3  # peak learning rate: with standardised outputs, the proxy's best ranking (bench/RESULTS.md)
    schedule: str = "cosine"  # cosine (decay to 0 over `steps`) | constant
    weight_decay: float = 0.0  # L2 penalty through the optimizer; short proxy runs do not overfit
    seeds: tuple[int, ...] = (0,)  # one training per seed; two or more also give the prediction difference
    device: str = "auto"  # auto (cuda when available) | cpu | cuda
    amp: bool = True  # bfloat16 autocast on CUDA (ignored on CPU, where it is slower)
    time_limit_s: float | None = None  # wall-clock budget per candidate (all seeds); past it the status is timeout
    init: str = "auto"  # auto (variance-preserving gain measured for the activation) | he | default (torch's)
    act_norm: str = "standardize"  # output to mean 0, sd 1 under N(0, 1), so scale cannot buy a score | none
    num_threads: int | None = None  # torch CPU threads for this process (None: leave torch's setting)
    eval_steps: tuple[int, ...] = ()  # also measure validation accuracy after these steps (lower fidelities)
    diverge_loss: float = 100.0  # a training loss above this is `diverged` (cross-entropy starts near ln(classes))
    stop_at: int | None = None  # train only the first stop_at steps of the `steps`-step schedule (a cascade's rung)

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))  # JSON gives lists
        object.__setattr__(self, "eval_steps", tuple(sorted({int(s) for s in self.eval_steps})))
        for name, value, choices in (("optimizer", self.optimizer, OPTIMIZERS), ("schedule", self.schedule, SCHEDULES),
                                     ("device", self.device, DEVICES), ("init", self.init, INIT_SCHEMES),
                                     ("act_norm", self.act_norm, ACT_NORMS)):
            if value not in choices:
                raise ValueError(f"TrainConfig {name}={value!r} is not valid; choose one of: {', '.join(choices)}")
        for name in ("steps", "batch_size"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"TrainConfig {name} must be a positive integer, got {getattr(self, name)!r}")
        if not self.seeds:
            raise ValueError("TrainConfig seeds must hold at least one seed, e.g. seeds=(0,)")
        if self.eval_steps and not 1 <= self.eval_steps[0] <= self.eval_steps[-1] <= self.steps:
            raise ValueError(f"TrainConfig eval_steps must lie in 1..steps={self.steps}, got {list(self.eval_steps)}")
        if self.stop_at is not None and not 1 <= self.stop_at <= self.steps:
            raise ValueError(f"TrainConfig stop_at must lie in 1..steps={self.steps} or be None, got {self.stop_at!r}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig lr must be positive, got {self.lr!r}")
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"TrainConfig num_threads must be None or >= 1, got {self.num_threads!r}")

    @classmethod
    def from_dict(cls, settings: dict[str, Any]) -> TrainConfig:
        """Return a config from plain data, rejecting unknown keys with the list of valid ones."""
        valid = [f.name for f in fields(cls)]
        for key in settings:
            if key not in valid:
                raise ValueError(f"unknown TrainConfig setting {key!r}; valid settings: {', '.join(valid)}")
        return cls(**settings)

    @property
    def stop(self) -> int:
        """The step training ends at: `stop_at`, else `steps`."""
        return self.steps if self.stop_at is None else self.stop_at

    def to_dict(self) -> dict[str, Any]:
        """Return the settings as JSON-safe plain data (seeds as a list)."""
        return {**asdict(self), "seeds": list(self.seeds), "eval_steps": list(self.eval_steps)}


def resolve_device(device: str) -> str:
    """Return 'cuda' or 'cpu' for a config's device; ValueError when cuda is asked for but absent."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was requested but torch sees no CUDA device; use device='auto' or 'cpu'")
    return device
