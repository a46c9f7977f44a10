"""Compile an expression into a flat list of steps, run by the torch module, the fingerprint and the counting code.

A flat program keeps `forward` a short loop over plain tuples (which torch.compile unrolls into one graph), gives
every parameter occurrence a stable key, and folds constant-only subexpressions once, so at run time each step has
at least one tensor operand. Keys: the i-th anonymous `beta` in print order is `beta_i`; a named one keeps its name
(`beta1`), which is how occurrences of a named parameter end up sharing one tensor.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch

from search_space.expr import BinOp, Call, Const, Eps, Expr, Hole, Neg, Param, Var
from search_space.functions import EPS, FUNCTIONS

__all__ = ["Program", "Step", "compile_expr", "run"]

_ARITHMETIC: dict[str, Callable[..., object]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "**": operator.pow,
}


@dataclass(frozen=True)
class Step:
    """One instruction: read an input, a constant or a parameter, or apply `fn` to earlier steps' results."""

    kind: str  # "input", "const", "param" or "apply"
    value: float | str | None = None  # the constant, the parameter key or the input name
    fn: Callable[..., object] | None = None
    args: tuple[int, ...] = ()  # indices of earlier steps


@dataclass(frozen=True)
class Program:
    """A compiled expression: its steps (the last one is the result) and the parameter keys in first-use order."""

    steps: tuple[Step, ...]
    param_keys: tuple[str, ...]


class _Compiler:
    def __init__(self, inputs: Sequence[str]) -> None:
        self.steps = [Step("input", name) for name in inputs]
        self.inputs = {name: i for i, name in enumerate(inputs)}
        self.keys: list[str] = []
        self.anonymous = 0

    def emit(self, step: Step) -> int:
        self.steps.append(step)
        return len(self.steps) - 1

    def constant(self, value: float) -> int:
        return self.emit(Step("const", value))

    def apply(self, fn: Callable[..., object], children: Sequence[Expr]) -> int:
        args = tuple(self.visit(child) for child in children)
        if all(self.steps[i].kind == "const" for i in args):
            return self.constant(_fold(fn, [float(self.steps[i].value) for i in args]))
        return self.emit(Step("apply", fn=fn, args=args))

    def visit(self, expr: Expr) -> int:
        if isinstance(expr, Var | Hole):
            if expr.name not in self.inputs:
                raise ValueError(f"expression uses {expr.name!r}, but the program's inputs are {list(self.inputs)}")
            return self.inputs[expr.name]
        if isinstance(expr, Const):
            return self.constant(expr.value)
        if isinstance(expr, Eps):
            return self.constant(EPS)
        if isinstance(expr, Param):
            key = expr.name
            if key == "beta":
                key = f"beta_{self.anonymous}"
                self.anonymous += 1
            if key not in self.keys:
                self.keys.append(key)
            return self.emit(Step("param", key))
        if isinstance(expr, Neg):
            return self.apply(operator.neg, [expr.operand])
        if isinstance(expr, BinOp):
            return self.apply(_ARITHMETIC[expr.op], [expr.left, expr.right])
        if isinstance(expr, Call):
            return self.apply(FUNCTIONS[expr.name].torch_fn, expr.args)
        raise TypeError(f"cannot compile node type {type(expr).__name__}")


def _fold(fn: Callable[..., object], values: list[float]) -> float:
    # float64 tensors rather than Python floats: 0.0 ** -1 is inf here instead of a ZeroDivisionError.
    result = fn(*[torch.tensor(value, dtype=torch.float64) for value in values])
    return float(result)


def compile_expr(expr: Expr, inputs: Sequence[str] = ("x",)) -> Program:
    """Return the program computing `expr` from the named inputs (`x`, or template holes such as `x1`, `x2`)."""
    compiler = _Compiler(inputs)
    output = compiler.visit(expr)
    steps = compiler.steps
    if output != len(steps) - 1:  # the result is an input: copy it so "the last step is the result" holds
        steps.append(Step("apply", fn=operator.pos, args=(output,)))
    return Program(tuple(steps), tuple(compiler.keys))


def run(program: Program, inputs: Sequence[object], params: Mapping[str, object]) -> object:
    """Execute a program; returns a tensor, or a float when the expression does not depend on its inputs."""
    values: list[object] = []
    for step in program.steps:
        if step.kind == "apply":
            values.append(step.fn(*[values[i] for i in step.args]))
        elif step.kind == "input":
            values.append(inputs[len(values)])
        elif step.kind == "param":
            values.append(params[step.value])
        else:
            values.append(step.value)
    return values[-1]
