"""Autograd functions behind the packed layers, written by hand where autograd's composites cost extra passes.

Every function works on tensors whose dimension 0 is the pack (K independent candidates) and never mixes slices.
Each one is checked against autograd by `torch.autograd.gradcheck` in double precision (tests/evaluator/test_packed.py).
"""

from __future__ import annotations

import torch

__all__ = ["BatchNormTrain", "Im2Col3"]


class Im2Col3(torch.autograd.Function):
    """(K, B, L, C) -> (K, B, L', 3C): the taps x[i*s - 1], x[i*s], x[i*s + 1] of a kernel-3, padding-1 convolution.

    Written by hand because autograd's pad + strided slices + cat spends its backward filling and adding full-size
    zero tensors (one per tap); here forward and backward are three strided copies each, with no padded buffer.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, stride: int) -> torch.Tensor:
        packs, batch, length, channels = x.shape
        if stride not in (1, 2) or length % stride:
            raise ValueError(f"kernel-3 convolution supports stride 1, or 2 on even lengths; got {stride}, L={length}")
        ctx.stride = stride
        out_len = length // stride
        cols = x.new_empty(packs, batch, out_len, 3 * channels)
        left, mid, right = cols[..., :channels], cols[..., channels : 2 * channels], cols[..., 2 * channels :]
        mid.copy_(x[:, :, ::stride])  # x[i*s]
        left[:, :, 0].zero_()  # x[-1] is padding
        left[:, :, 1:].copy_(x[:, :, stride - 1 : length - 1 : stride])  # x[i*s - 1]
        if stride == 1:
            right[:, :, :-1].copy_(x[:, :, 1:])  # x[i + 1]
            right[:, :, -1].zero_()  # x[L] is padding
        else:
            right.copy_(x[:, :, 1::2])  # x[2i + 1], always inside for even L
        return cols

    @staticmethod
    def backward(ctx, grad_cols: torch.Tensor) -> tuple[torch.Tensor, None]:
        channels = grad_cols.shape[-1] // 3
        g_left = grad_cols[..., :channels]
        g_mid = grad_cols[..., channels : 2 * channels]
        g_right = grad_cols[..., 2 * channels :]
        if ctx.stride == 1:
            grad_x = g_mid.clone(memory_format=torch.contiguous_format)  # (K, B, L, C)
            grad_x[:, :, :-1] += g_left[:, :, 1:]
            grad_x[:, :, 1:] += g_right[:, :, :-1]
            return grad_x, None
        packs, batch, out_len, _ = grad_cols.shape
        grad_x = grad_cols.new_empty(packs, batch, 2 * out_len, channels)  # (K, B, L, C)
        grad_x[:, :, 0::2] = g_mid  # even positions are only ever the middle tap
        odd = grad_x[:, :, 1::2]  # odd position 2i+1: right tap of output i, left tap of output i+1
        odd.copy_(g_right)
        odd[:, :, :-1] += g_left[:, :, 1:]
        return grad_x, None


class BatchNormTrain(torch.autograd.Function):
    """Training-mode BatchNorm of (K, N, C) over N, statistics per (k, c); returns (y, mean, var).

    By hand because `torch.var_mean` over the middle axis runs ~20x slower than two sums on CPU, and autograd's
    backward of the composite spends half a dozen full passes; this one makes two sums and two addcmuls.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float):
        n = x.shape[1]
        mean = x.sum(1, keepdim=True) / n  # (K, 1, C)
        var = ((x * x).sum(1, keepdim=True) / n - mean * mean).clamp_(min=0.0)
        rstd = torch.rsqrt(var + eps)
        scale = weight * rstd  # (K, 1, C): y = x * scale + shift
        y = torch.addcmul(bias - mean * scale, x, scale)
        ctx.save_for_backward(x, mean, rstd, scale)
        ctx.mark_non_differentiable(mean, var)
        return y, mean, var

    @staticmethod
    def backward(ctx, grad_y: torch.Tensor, _grad_mean: torch.Tensor, _grad_var: torch.Tensor):
        x, mean, rstd, scale = ctx.saved_tensors
        n = x.shape[1]
        grad_bias = grad_y.sum(1, keepdim=True)  # (K, 1, C)
        grad_weight = ((grad_y * x).sum(1, keepdim=True) - mean * grad_bias) * rstd  # sum(grad_y * x_hat)
        # grad_x = scale * (grad_y - grad_bias / n - x_hat * grad_weight / n), x_hat = (x - mean) * rstd
        coef_x = -scale * rstd * grad_weight / n
        const = -scale * grad_bias / n - coef_x * mean
        grad_x = torch.addcmul(const, grad_y, scale).addcmul_(x, coef_x)
        return grad_x, grad_weight, grad_bias, None
