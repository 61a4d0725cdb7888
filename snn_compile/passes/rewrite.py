"""Small, exact edits of a float graph shared by the inference-time passes.

Every helper returns a new :class:`~snn_compile.ir.Graph` (graphs are frozen) and keeps the
metadata; the caller's pass verifies the result through :func:`~snn_compile.passes.run_pipeline`.
"""

from __future__ import annotations

import numpy as np

from ..ir import nodes as n
from ..ir.graph import Edge, Graph


def bypass(graph: Graph, name: str) -> Graph | None:
    """``graph`` without the one-input node ``name``: each consumer reads its source directly,
    the two edge delays added. None when that would duplicate an edge (a consumer already reads
    the source with that delay: the caller keeps the node, e.g. as a Sum)."""
    (into,) = graph.incoming(name)
    kept = [e for e in graph.edges if name not in (e.src, e.dst)]
    new = [Edge(into.src, e.dst, into.delay + e.delay) for e in graph.outgoing(name)]
    if set(new) & set(kept) or len(set(new)) != len(new):
        return None
    return Graph(tuple(node for node in graph.nodes if node.name != name), tuple(kept + new),
                 dict(graph.metadata))


def replace_nodes(graph: Graph, changes: dict[str, n.Node]) -> Graph:
    """``graph`` with the nodes named in ``changes`` replaced (same names, same edges)."""
    return graph.replace(nodes=tuple(changes.get(node.name, node) for node in graph.nodes))


def nonnegative(graph: Graph, name: str, _memo: dict | None = None) -> bool:
    """True when the output of ``name`` provably never goes below zero, whatever the input:
    spikes and spike counts, and what max/sum/average pooling, flattening, delays, identities,
    ReLUs, sums and non-negative gains or weights make of non-negative values."""
    memo = {} if _memo is None else _memo
    if name in memo:
        return memo[name]
    memo[name] = False  # a cycle proves nothing until a neuron closes it
    node = graph[name]
    if isinstance(node, n.NeuronNode):
        result = True
    elif isinstance(node, n.ReLU):
        result = True
    elif isinstance(node, (n.Flatten, n.Identity, n.Delay, n.Sum, n.Output, n.MaxPool2d,
                           n.SumPool2d, n.AvgPool2d)):
        result = True
    elif isinstance(node, n.Scale):
        result = bool(np.all(node.scale >= 0))
    elif isinstance(node, (n.Affine, n.Conv2d)):
        result = bool(np.all(node.weight >= 0)) and (node.bias is None
                                                      or bool(np.all(node.bias >= 0)))
    else:  # Input, LI readouts, batch norm: anything
        result = False
    if result and not isinstance(node, (n.NeuronNode, n.ReLU)):
        result = all(nonnegative(graph, e.src, memo) for e in graph.incoming(name))
    memo[name] = result
    return result
