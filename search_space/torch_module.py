"""`Expr.to_module`: an elementwise `torch.nn.Module` that runs a compiled expression, with betas as parameters."""

from __future__ import annotations

import torch
from torch import nn

from search_space import native
from search_space.expr import Expr
from search_space.program import compile_expr, run

__all__ = ["ExprModule"]


class ExprModule(nn.Module):
    """An activation function given by an expression; every parameter starts at 1.0.

    With `channels=C` each parameter has shape (C,) and is broadcast over dimension 1, so an input of shape
    (N, C, ...) gets one value per channel; otherwise parameters are scalars. Parameters are cast to the input's
    dtype, so bfloat16 inputs give bfloat16 outputs. The output always has the input's shape, also for
    expressions that do not depend on x (those are rejected by `Expr.screen` before training anyway). Large float32
    CPU inputs run through the expression's compiled kernel (`search_space.native`: one fused pass, 2-5x faster than
    the program on torch's operators); everything else runs the program.

    >>> import torch
    >>> from search_space import parse
    >>> swish = parse("x * sigmoid(beta * x)").to_module()
    >>> [name for name, _ in swish.named_parameters()]
    ['params.beta_0']
    >>> swish(torch.zeros(2, 3)).shape
    torch.Size([2, 3])
    """

    def __init__(self, expr: Expr, channels: int | None = None) -> None:
        super().__init__()
        if channels is not None and (isinstance(channels, bool) or not isinstance(channels, int) or channels < 1):
            raise ValueError(f"channels must be a positive int or None, got {channels!r}")
        self.expression = str(expr)
        self.channels = channels
        self.program = compile_expr(expr)
        shape = () if channels is None else (channels,)
        self.params = nn.ParameterDict({key: nn.Parameter(torch.ones(shape)) for key in self.program.param_keys})

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fused = native.run(self.program, x, self.params, self.channels)
        if fused is not None:  # the compiled kernel ran (see search_space.native for when it does)
            return fused
        params = {key: self._shaped(param, x) for key, param in self.params.items()}
        y = run(self.program, [x], params)
        if not isinstance(y, torch.Tensor):
            return torch.full_like(x, float(y))
        if y.shape != x.shape:
            y = y.expand_as(x)
        return y.to(x.dtype) if y.dtype != x.dtype else y

    def _shaped(self, param: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        param = param.to(x.dtype)
        if self.channels is None:
            return param
        if x.dim() < 2 or x.shape[1] != self.channels:
            raise ValueError(
                f"per-channel activation with channels={self.channels} needs input of shape (N, {self.channels}, ...),"
                f" got {tuple(x.shape)}"
            )
        return param.view(-1, *([1] * (x.dim() - 2)))  # (C, 1, ..., 1): broadcasts over dim 1 of (N, C, ...)

    def extra_repr(self) -> str:
        channels = "" if self.channels is None else f", channels={self.channels}"
        return f"{self.expression!r}{channels}"
