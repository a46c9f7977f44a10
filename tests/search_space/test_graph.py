"""The computation graph of an expression."""

from __future__ import annotations

import networkx as nx

from search_space import parse
from search_space.graph import graph_stats


def test_graph_has_one_node_per_computed_value_and_edges_towards_the_output() -> None:
    graph = parse("sin(x) * sin(x) + x").to_graph()
    assert nx.is_directed_acyclic_graph(graph)
    labels = sorted(data["label"] for _, data in graph.nodes(data=True))
    assert labels == ["*", "+", "sin", "x"]  # sin(x) and x are computed once
    output = graph.graph["output"]
    assert graph.nodes[output]["text"] == "sin(x) * sin(x) + x"
    assert graph.out_degree(output) == 0


def test_anonymous_betas_stay_separate_nodes() -> None:
    graph = parse("beta * x + beta * x").to_graph()
    params = [n for n, data in graph.nodes(data=True) if data["kind"] == "param"]
    assert len(params) == 2
    assert len([n for n, d in parse("beta1 * x + beta1 * x").to_graph().nodes(data=True) if d["kind"] == "param"]) == 1


def test_graph_stats_count_ops_and_longest_path() -> None:
    stats = graph_stats(parse("x * sigmoid(beta * x)").to_graph())
    assert stats == {"nodes": 5, "ops": 3, "longest_path": 3, "op_counts": {"*": 2, "sigmoid": 1}}
