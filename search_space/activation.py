"""`make_activation`: one factory from any way of naming an activation to a torch module."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from search_space import known
from search_space.expr import Expr
from search_space.parser import ParseError, parse

__all__ = ["make_activation"]


def make_activation(spec: str | Expr | Callable[[], nn.Module], channels: int | None = None) -> nn.Module:
    """Return a fresh activation module from a known name, an expression text, an Expr, or a zero-arg factory.

    A known name (`"relu"`, `"swish"`) wins over parsing, so `"sigmoid"` is torch's module, not `sigmoid(x)`.
    """
    if isinstance(spec, Expr):
        return spec.to_module(channels=channels)
    if isinstance(spec, str):
        if spec in known.names():
            return known.create(spec, channels=channels)
        try:
            expr = parse(spec)
        except ParseError as error:
            if spec.isidentifier():  # a single word: more likely a misspelt activation name than an expression
                known.create(spec)  # raises ValueError with the closest known name
            raise ValueError(
                f"activation spec is neither a known name nor an expression: {error.one_line()}"
            ) from error
        return expr.to_module(channels=channels)
    if callable(spec):
        module = spec()
        if not isinstance(module, nn.Module):
            raise TypeError(f"activation factory {spec!r} must return a torch.nn.Module, got {type(module).__name__}")
        return module
    raise TypeError(
        f"activation spec must be a known name, an expression string, an Expr or a zero-arg callable, got {spec!r}"
    )
