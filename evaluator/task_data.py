"""`TaskData`, what every task gives, and `TaskDataError`: on their own so that loaders (`evaluator.cifar`) and the
task registry (`evaluator.tasks`) both import them without importing each other."""

from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["TaskData", "TaskDataError"]


class TaskDataError(ValueError):
    """The data a task needs is missing or unreadable; the message says where to put it."""


@dataclass(frozen=True)
class TaskData:
    """One task's data: float32 inputs, int64 labels; train fits, val scores the search, test is kept for reports."""

    name: str
    x_train: torch.Tensor  # (N_train, *input_shape)
    y_train: torch.Tensor  # (N_train,)
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int

    @property
    def input_shape(self) -> tuple[int, ...]:
        """Shape of one example: (L,) for sequences and tabular data, (C, H, W) for images."""
        return tuple(self.x_train.shape[1:])

    def __repr__(self) -> str:
        sizes = f"{len(self.y_train)}/{len(self.y_val)}/{len(self.y_test)}"
        return (f"TaskData({self.name!r}, train/val/test={sizes}, input_shape={self.input_shape}, "
                f"classes={self.num_classes})")
