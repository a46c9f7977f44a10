"""The hand-written autograd functions of the packed layers: gradients against autograd's numerical ones (gradcheck)."""

from __future__ import annotations

import pytest
import torch

from evaluator.packed_ops import BatchNormTrain, Im2Col3


def _double(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.double, generator=torch.Generator().manual_seed(seed)).requires_grad_()


@pytest.mark.parametrize("stride", [1, 2])
def test_im2col_gradients(stride: int) -> None:
    assert torch.autograd.gradcheck(lambda x: Im2Col3.apply(x, stride), (_double(2, 3, 6, 4),))


def test_batchnorm_train_gradients() -> None:
    x, weight, bias = _double(2, 12, 5), _double(2, 1, 5, seed=1), _double(2, 1, 5, seed=2)
    assert torch.autograd.gradcheck(lambda *args: BatchNormTrain.apply(*args, 1e-5)[0], (x, weight, bias))
