"""``snn-compile inspect``: a readable summary of a float IR graph."""

from __future__ import annotations

import numpy as np

from .escape import terminal
from .ir import nodes as n
from .ir.graph import Graph


def _summary(arr) -> str:
    arr = np.asarray(arr)
    if arr.size == 1:
        return f"{float(arr.reshape(-1)[0]):.4g}"
    return f"[{arr.min():.4g}..{arr.max():.4g}] ({arr.size} values)"


def _neuron_line(node) -> str:
    parts = [f"{k}={_summary(getattr(node, k))}" for k in ("alpha", "beta", "threshold", "bias")
             if hasattr(node, k)]
    if isinstance(node, n.NeuronNode):
        parts += [f"reset={node.reset}/{node.reset_timing}", f"spike v{node.spike_test}thr"]
        if node.grid is not None:
            parts.append(f"on the {terminal(node.grid.target)} grid (QAT)")
    return ", ".join(parts)


def _synapses(node) -> int:
    weight = getattr(node, "weight", None)
    return 0 if weight is None else int(np.count_nonzero(weight))


def describe(graph: Graph, title: str) -> str:
    """One line per node; names are printed through :func:`snn_compile.escape.terminal`."""
    shapes = graph.shapes
    lines = [f"{terminal(title)}: {len(graph.nodes)} nodes, {len(graph.edges)} edges"]
    neurons = synapses = 0
    for node in graph.in_order():
        kind = type(node).__name__
        feedback = [f"{terminal(e.src)} ({e.delay} step{'s' if e.delay > 1 else ''} ago)"
                    for e in graph.incoming(node.name) if e.delay]
        line = f"  {terminal(node.name):<16} {kind:<10} -> {shapes[node.name]}"
        if isinstance(node, (n.NeuronNode, n.LI)):
            neurons += int(np.prod(node.shape))
            line += f"  {_neuron_line(node)}"
        if getattr(node, "weight", None) is not None:
            synapses += _synapses(node)
            line += f"  weights {node.weight.shape} {_summary(node.weight)}"
        if feedback:
            line += f"  (delayed input from {', '.join(feedback)})"
        lines.append(line)
    lines.append(f"neurons: {neurons}, synapses (non-zero weights): {synapses}")
    return "\n".join(lines)
