"""`Expr.to_graph`: the computation as a networkx DiGraph, for depth, operation counts and plots.

Edges point from an operand to the node that uses it. Identical subtrees without anonymous betas become one node
(the one input `x` feeds every use of it), since they compute one value; a subtree holding an anonymous `beta`
stays separate per occurrence, because each occurrence has its own parameter.
"""

from __future__ import annotations

from collections import Counter

import networkx as nx

from search_space.expr import BinOp, Call, Const, Eps, Expr, Hole, Neg, Param, Var, walk

__all__ = ["graph_stats", "to_graph"]


def _label(expr: Expr) -> tuple[str, str]:
    """Return (kind, label) of a node: kind is input, const, param or op."""
    if isinstance(expr, Var | Hole):
        return "input", expr.name
    if isinstance(expr, Const):
        return "const", str(expr)
    if isinstance(expr, Eps):
        return "const", "eps"
    if isinstance(expr, Param):
        return "param", expr.name
    if isinstance(expr, Neg):
        return "op", "neg"
    if isinstance(expr, BinOp):
        return "op", expr.op
    if isinstance(expr, Call):
        return "op", expr.name
    raise TypeError(f"no graph label for node type {type(expr).__name__}")


def to_graph(expr: Expr) -> nx.DiGraph:
    """Return a DiGraph with integer nodes (attributes `kind`, `label`, `text`); `graph["output"]` is the result."""
    graph = nx.DiGraph(expression=str(expr))
    shared: dict[Expr, int] = {}

    def add(node: Expr) -> int:
        shareable = not any(isinstance(n, Param) and n.name == "beta" for n in walk(node))
        if shareable and node in shared:
            return shared[node]
        kind, label = _label(node)
        operands = [add(child) for child in node.children()]
        node_id = graph.number_of_nodes()
        graph.add_node(node_id, kind=kind, label=label, text=str(node))
        for position, operand in enumerate(operands):
            graph.add_edge(operand, node_id, position=position)
        if shareable:
            shared[node] = node_id
        return node_id

    graph.graph["output"] = add(expr)
    return graph


def graph_stats(graph: nx.DiGraph) -> dict[str, object]:
    """Return node count, op count, longest path (in edges) and how often each operation occurs."""
    ops = Counter(data["label"] for _, data in graph.nodes(data=True) if data["kind"] == "op")
    return {
        "nodes": graph.number_of_nodes(),
        "ops": sum(ops.values()),
        "longest_path": nx.dag_longest_path_length(graph),
        "op_counts": dict(sorted(ops.items())),
    }
