"""Recognise a tree as a sequence of core units: the inverse of `Space.decode`, used by `Space.encode`.

Decoding is many-to-one (the `beta` operator ignores its operand, a unit whose output is never used can hold
anything, two units may compute the same tree), so encoding picks one canonical token sequence: the first plan
found by trying binary operators, then unary operators, in op-set order, with unused units filled with token 0 and
placed first. `decode(encode(e)) == e` always holds; `encode(decode(t)) == t` holds for canonical `t`.
"""

from __future__ import annotations

from collections.abc import Iterator

from search_space.expr import BinOp, Call, Expr, Hole, Neg, X
from search_space.operators import OpSet

__all__ = ["UnitChoice", "match", "plan_units"]

# (input_a, unary_a, input_b, unary_b, binary): inputs are X or the tree an earlier unit computes.
UnitChoice = tuple[Expr, int, Expr, int, int]
Plan = list[tuple[Expr, UnitChoice]]


def match(template: Expr, target: Expr, bindings: dict[str, Expr] | None = None) -> dict[str, Expr] | None:
    """Return the hole bindings that make `template` equal to `target`, or None when it cannot."""
    bindings = {} if bindings is None else bindings
    if isinstance(template, Hole):
        if template.name in bindings:
            return bindings if bindings[template.name] == target else None
        bindings[template.name] = target
        return bindings
    if type(template) is not type(target):
        return None
    if isinstance(template, Neg):
        return match(template.operand, target.operand, bindings)
    if isinstance(template, BinOp):
        if template.op != target.op or match(template.left, target.left, bindings) is None:
            return None
        return match(template.right, target.right, bindings)
    if isinstance(template, Call):
        if template.name != target.name:
            return None
        for sub_template, sub_target in zip(template.args, target.args, strict=True):
            if match(sub_template, sub_target, bindings) is None:
                return None
        return bindings
    return bindings if template == target else None


def _unary_splits(operand: Expr | None, ops: OpSet) -> Iterator[tuple[int, Expr]]:
    if operand is None:  # the binary operator ignores this operand: any choice decodes the same
        yield 0, X
        return
    for index, op in enumerate(ops.unary):
        bindings = match(op.template, operand)
        if bindings is not None:
            yield index, bindings.get("x", X)  # an operator that ignores its operand (beta) reads x


def _unit_splits(target: Expr, ops: OpSet) -> Iterator[UnitChoice]:
    for b_index, op in enumerate(ops.binary):
        bindings = match(op.template, target)
        if bindings is None:
            continue
        for a_index, input_a in _unary_splits(bindings.get("x1"), ops):
            for u_index, input_b in _unary_splits(bindings.get("x2"), ops):
                yield input_a, a_index, input_b, u_index, b_index


def plan_units(target: Expr, budget: int, ops: OpSet) -> Iterator[Plan]:
    """Yield unit lists (dependencies first, `target` last, at most `budget` long) whose last unit computes target."""
    if budget < 1:
        return
    for choice in _unit_splits(target, ops):
        needed: list[Expr] = []
        for operand in (choice[0], choice[2]):
            if operand != X and operand not in needed:
                needed.append(operand)
        for prefix in _cover(needed, [], budget - 1, ops):
            yield [*prefix, (target, choice)]


def _cover(needed: list[Expr], plan: Plan, budget: int, ops: OpSet) -> Iterator[Plan]:
    """Yield extensions of `plan` (at most `budget` units) in which some unit computes each tree in `needed`."""
    if not needed:
        yield plan
        return
    first, rest = needed[0], needed[1:]
    if any(tree == first for tree, _ in plan):
        yield from _cover(rest, plan, budget, ops)
        return
    for sub in plan_units(first, budget, ops):
        merged = plan + [(tree, choice) for tree, choice in sub if all(tree != done for done, _ in plan)]
        if len(merged) <= budget:
            yield from _cover(rest, merged, budget, ops)
