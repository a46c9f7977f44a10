"""Autograd functions behind the packed layers, written by hand where autograd's composites cost extra passes.

Every function works on tensors whose dimension 0 is the pack (K independent candidates) and never mixes slices.
Each one is checked against autograd by `torch.autograd.gradcheck` in double precision (tests/evaluator/test_packed.py).
"""

from __future__ import annotations

import torch

__all__ = ["BatchNormTrain", "Conv3Shifted", "Im2Col3"]

# Under CUDA autocast (TrainConfig.amp) these run in float32: their hand-written backward passes assume the dtypes
# their forward saw. Nothing changes on CPU.
_float32_under_autocast = torch.amp.custom_fwd(device_type="cuda", cast_inputs=torch.float32)
_backward_as_forward = torch.amp.custom_bwd(device_type="cuda")


class Im2Col3(torch.autograd.Function):
    """(K, B, L, C) -> (K, B, L', 3C): the taps x[i*s - 1], x[i*s], x[i*s + 1] of a kernel-3, padding-1 convolution.

    Written by hand because autograd's pad + strided slices + cat spends its backward filling and adding full-size
    zero tensors (one per tap); here forward and backward are three strided copies each, with no padded buffer.
    """

    @staticmethod
    @_float32_under_autocast
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
    @_backward_as_forward
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
    @_float32_under_autocast
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
    @_backward_as_forward
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


class Conv3Shifted(torch.autograd.Function):
    """Kernel-3, padding-1 convolution (stride 1, or 2 on even lengths) of (K, B, L, C) by (K, 3C, C_out) taps.

    Returns (K, B, L', C_out); the weight rows are ordered like `Im2Col3`'s columns (left, middle, right tap). No
    im2col buffer: each tap is one batched matmul on a shifted view of the flat (K, B*L, C) input, accumulated in
    place. A shifted view runs across sample boundaries, so the first (last) output of each sample also picks up the
    neighbouring sample's last (first) position instead of the zero padding; one small matmul over the B - 1
    boundary rows subtracts that term again. Measured 1.35x faster than im2col + bmm for forward and backward
    together (single thread, K=8, B=128): the 3x-wide im2col buffer and its gradient never touch memory.
    """

    @staticmethod
    @_float32_under_autocast
    def forward(ctx, x: torch.Tensor, weight: torch.Tensor, stride: int) -> torch.Tensor:
        packs, batch, length, channels = x.shape
        if stride not in (1, 2) or length % stride:
            raise ValueError(f"kernel-3 convolution supports stride 1, or 2 on even lengths; got {stride}, L={length}")
        ctx.stride = stride
        ctx.save_for_backward(x, weight)
        out_len = length // stride
        rows = batch * out_len
        left, mid, right = _taps(weight, channels)  # (K, C, C_out) each
        flat = x.view(packs, batch * length, channels)  # row n = b * L + l
        y = torch.bmm(flat[:, ::stride], mid)  # (K, B*L', C_out): output row m reads input row m*s
        y4 = y.view(packs, batch, out_len, -1)
        y[:, 1:].baddbmm_(flat[:, stride - 1 : stride * rows - 1 : stride], left)  # row m reads m*s - 1
        y4[:, 1:, 0].baddbmm_(x[:, :-1, -1], left, alpha=-1)  # ... which is the previous sample at l = 0
        if stride == 1:
            y[:, :-1].baddbmm_(flat[:, 1:], right)  # row m reads m + 1
            y4[:, :-1, -1].baddbmm_(x[:, 1:, 0], right, alpha=-1)  # ... which is the next sample at l = L - 1
        else:
            y.baddbmm_(flat[:, 1::2], right)  # row m reads 2m + 1, always inside its sample for even L
        return y4

    @staticmethod
    @_backward_as_forward
    def backward(ctx, grad_y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        x, weight = ctx.saved_tensors
        stride = ctx.stride
        packs, batch, length, channels = x.shape
        grad_y = grad_y.contiguous()  # (K, B, L', C_out)
        rows = grad_y.shape[1] * grad_y.shape[2]
        grad_flat = grad_y.view(packs, rows, -1)
        flat = x.view(packs, batch * length, channels)
        left, mid, right = _taps(weight, channels)
        grad_weight = torch.empty_like(weight)
        g_left, g_mid, g_right = _taps(grad_weight, channels)
        # Weight gradients: the forward's shifted views against grad_y, with the same boundary corrections.
        g_mid.baddbmm_(flat[:, ::stride].transpose(1, 2), grad_flat, beta=0)
        g_left.baddbmm_(flat[:, stride - 1 : stride * rows - 1 : stride].transpose(1, 2), grad_flat[:, 1:], beta=0)
        g_left.baddbmm_(x[:, :-1, -1].transpose(1, 2), grad_y[:, 1:, 0], alpha=-1)
        if stride == 1:
            g_right.baddbmm_(flat[:, 1:].transpose(1, 2), grad_flat[:, :-1], beta=0)
            g_right.baddbmm_(x[:, 1:, 0].transpose(1, 2), grad_y[:, :-1, -1], alpha=-1)
            grad_x = torch.bmm(grad_flat, mid.transpose(1, 2))  # (K, B*L, C)
            grad_x[:, :-1].baddbmm_(grad_flat[:, 1:], left.transpose(1, 2))
            grad_x[:, 1:].baddbmm_(grad_flat[:, :-1], right.transpose(1, 2))
            grad_x4 = grad_x.view(packs, batch, length, channels)
            grad_x4[:, :-1, -1].baddbmm_(grad_y[:, 1:, 0], left.transpose(1, 2), alpha=-1)
            grad_x4[:, 1:, 0].baddbmm_(grad_y[:, :-1, -1], right.transpose(1, 2), alpha=-1)
            return grad_x4, grad_weight, None
        g_right.baddbmm_(flat[:, 1::2].transpose(1, 2), grad_flat, beta=0)
        grad_x = x.new_empty(packs, batch * length, channels)
        grad_x[:, 0::2].baddbmm_(grad_flat, mid.transpose(1, 2), beta=0)  # even rows: middle tap only
        grad_x[:, 1::2].baddbmm_(grad_flat, right.transpose(1, 2), beta=0)  # odd row 2m + 1: right tap of m ...
        grad_x[:, 1:-1:2].baddbmm_(grad_flat[:, 1:], left.transpose(1, 2))  # ... and left tap of m + 1
        grad_x4 = grad_x.view(packs, batch, length, channels)
        grad_x4[:, :-1, -1].baddbmm_(grad_y[:, 1:, 0], left.transpose(1, 2), alpha=-1)
        return grad_x4, grad_weight, None


def _taps(weight: torch.Tensor, channels: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split (K, 3C, C_out) kernel-3 weights into the (K, C, C_out) views of the left, middle and right taps."""
    return weight[:, :channels], weight[:, channels : 2 * channels], weight[:, 2 * channels :]
