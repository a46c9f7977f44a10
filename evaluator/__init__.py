"""How a candidate is scored: tasks (data), child models, packing, one training loop, metrics, and the `evaluate` API.

>>> from evaluator import TASKS, MODELS, TrainConfig, evaluate
>>> "mnist1d" in TASKS and "resnet8_1d" in MODELS
True
>>> evaluate("relu", task="xor", config=TrainConfig(steps=10, device="cpu")).status
'ok'
"""

from __future__ import annotations

from evaluator.api import evaluate, evaluate_many
from evaluator.config import TrainConfig
from evaluator.models import MODELS, activation_gain, build_model
from evaluator.packing import packing_policy
from evaluator.result import EvalResult
from evaluator.tasks import TASKS, TaskData, TaskDataError, get_task

__all__ = [
    "MODELS", "TASKS", "EvalResult", "TaskData", "TaskDataError", "TrainConfig", "activation_gain", "build_model",
    "evaluate", "evaluate_many", "get_task", "packing_policy",
]
