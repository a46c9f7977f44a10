"""Writes an expression as the source of a standalone PyTorch module, for users to drop into their own models.

The generated file imports only `math` and `torch`, holds exactly the code of the expression (function names come
from a fixed table, numbers are printed with `repr`), and names its parameters like `Expr.to_module` does
(`beta_0`, `beta_1`, ... for anonymous betas in print order; `beta1`, `beta2` for named ones), so a trained
`to_module()` state can be copied across by name.
"""

from __future__ import annotations

from collections.abc import Mapping

from search_space.expr import BinOp, Call, Const, Eps, Expr, Neg, Param, Var, walk
from search_space.functions import EPS

__all__ = ["to_torch_source"]

_TORCH_CALLS = {
    "abs": "torch.abs({0})",
    "sqrt": "torch.sqrt({0})",
    "log": "torch.log({0})",
    "exp": "torch.exp({0})",
    "sin": "torch.sin({0})",
    "cos": "torch.cos({0})",
    "sinh": "torch.sinh({0})",
    "cosh": "torch.cosh({0})",
    "tanh": "torch.tanh({0})",
    "asinh": "torch.asinh({0})",
    "atan": "torch.atan({0})",
    "sinc": "torch.sinc({0} / math.pi)",  # sin(x) / x; torch.sinc is the normalised sin(pi x) / (pi x)
    "sigmoid": "torch.sigmoid({0})",
    "softplus": "torch.nn.functional.softplus({0})",
    "erf": "torch.erf({0})",
}


def _is_constant(expr: Expr) -> bool:
    return isinstance(expr, Const | Eps) or (isinstance(expr, Neg) and _is_constant(expr.operand))


class _TorchWriter:
    """Prints a tree as a fully parenthesised torch expression, numbering anonymous betas in print order."""

    def __init__(self) -> None:
        self.params: list[str] = []
        self._anonymous = 0

    def write(self, expr: Expr) -> str:
        return getattr(self, f"_write_{type(expr).__name__.lower()}")(expr)

    def _write_var(self, expr: Var) -> str:
        return "x"

    def _write_const(self, expr: Const) -> str:
        return repr(expr.value)

    def _write_eps(self, expr: Eps) -> str:
        return repr(EPS)

    def _write_param(self, expr: Param) -> str:
        key = expr.name
        if key == "beta":
            key = f"beta_{self._anonymous}"
            self._anonymous += 1
        if key not in self.params:
            self.params.append(key)
        return f"self.{key}"

    def _write_neg(self, expr: Neg) -> str:
        return f"(-{self.write(expr.operand)})"

    def _write_binop(self, expr: BinOp) -> str:
        return f"({self.write(expr.left)} {expr.op} {self.write(expr.right)})"

    def _write_call(self, expr: Call) -> str:
        args = [self.write(arg) for arg in expr.args]
        if expr.name in ("max", "min"):
            bound = "min" if expr.name == "max" else "max"
            left_const, right_const = (_is_constant(arg) for arg in expr.args)
            if left_const and right_const:
                return f"{expr.name}({args[0]}, {args[1]})"
            if right_const:
                return f"torch.clamp({args[0]}, {bound}={args[1]})"
            if left_const:
                return f"torch.clamp({args[1]}, {bound}={args[0]})"
            return f"torch.{expr.name}imum({args[0]}, {args[1]})"
        return _TORCH_CALLS[expr.name].format(*args)


def to_torch_source(expr: Expr, class_name: str = "Activation", betas: Mapping[str, float] | None = None) -> str:
    """Return Python source defining `class_name(nn.Module)` that computes `expr` elementwise.

    `betas` maps parameter names (`beta_0`, `beta1`, ...) to initial values (learned ones, say); missing names
    start at 1.0 as in the search.
    """
    if not class_name.isidentifier():
        raise ValueError(f"class_name must be a Python identifier, got {class_name!r}")
    writer = _TorchWriter()
    body = writer.write(expr)
    betas = dict(betas or {})
    unknown = sorted(set(betas) - set(writer.params))
    if unknown:
        raise ValueError(f"betas {unknown} are not parameters of {str(expr)!r}; its parameters: {writer.params}")
    params = [
        f"        self.{key} = nn.Parameter(torch.tensor({float(betas.get(key, 1.0))!r}))" for key in writer.params
    ]
    lines = [
        f'"""{class_name}: an activation function found by actsearch. f(x) = {expr}"""',
        "",
        "import math  # noqa: F401  (used by some expressions)",
        "",
        "import torch",
        "from torch import nn",
        "",
        "",
        f"class {class_name}(nn.Module):",
        f'    """f(x) = {expr}, applied elementwise."""',
        "",
        "    def __init__(self) -> None:",
        "        super().__init__()",
        *params,
        "",
        "    def forward(self, x: torch.Tensor) -> torch.Tensor:",
        f"        return {body}" if any(isinstance(node, Var) for node in walk(expr)) else
        f"        return torch.zeros_like(x) + {body}",
        "",
    ]
    return "\n".join(lines)
