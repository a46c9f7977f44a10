"""The hand-written autograd functions of the packed layers: gradients against autograd's numerical ones (gradcheck)."""

from __future__ import annotations

import pytest
import torch

from evaluator.models.packed_ops import BatchNormTrain, Conv3Shifted, Im2Col3


def _double(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, dtype=torch.double, generator=torch.Generator().manual_seed(seed)).requires_grad_()


@pytest.mark.parametrize("stride", [1, 2])
def test_im2col_gradients(stride: int) -> None:
    assert torch.autograd.gradcheck(lambda x: Im2Col3.apply(x, stride), (_double(2, 3, 6, 4),))


def test_batchnorm_train_gradients() -> None:
    x, weight, bias = _double(2, 12, 5), _double(2, 1, 5, seed=1), _double(2, 1, 5, seed=2)
    assert torch.autograd.gradcheck(lambda *args: BatchNormTrain.apply(*args, 1e-5)[0], (x, weight, bias))


@pytest.mark.parametrize("stride", [1, 2])
def test_shifted_convolution_gradients(stride: int) -> None:
    x, weight = _double(2, 3, 6, 4), _double(2, 12, 5, seed=1)
    assert torch.autograd.gradcheck(lambda a, w: Conv3Shifted.apply(a, w, stride), (x, weight))


@pytest.mark.parametrize("stride", [1, 2])
def test_shifted_convolution_equals_im2col_matmul(stride: int) -> None:
    x, weight = _double(3, 4, 8, 5), _double(3, 15, 6, seed=1)
    cols = Im2Col3.apply(x, stride)  # (K, B, L', 3C)
    expected = torch.bmm(cols.reshape(3, -1, 15), weight).view(3, 4, 8 // stride, 6)
    torch.testing.assert_close(Conv3Shifted.apply(x, weight, stride), expected)
