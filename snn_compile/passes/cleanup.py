"""Pass ``drop_output_delays``: remove the Delay nodes between the last neuron layer and the
graph's Output.

Requires: a verified float graph. Guarantees: every spike of every neuron is unchanged; only the
time at which the Output node sees the last layer may move (the network's output is read from
the output population, so a trailing delay - Spyx's spike taken before the update - is an output
latency, recorded in ``graph.metadata["output_delay"]``).
"""

from __future__ import annotations

from ..ir import nodes as n
from ..ir.graph import Graph


def drop_output_delays(graph: Graph) -> Graph:
    """``graph`` without trailing Delay nodes (see the module docstring)."""
    out = graph.outputs[0]
    edges = list(graph.edges)
    removed, delay = set(), 0
    feeding = graph.incoming(out.name)
    while len(feeding) == 1 and isinstance(graph[feeding[0].src], n.Delay):
        node = graph[feeding[0].src]
        if len(graph.outgoing(node.name)) != 1 or len(graph.incoming(node.name)) != 1:
            break
        delay += node.steps + feeding[0].delay
        removed.add(node.name)
        feeding = graph.incoming(node.name)
    if not removed:
        return graph
    source = feeding[0]
    edges = [e for e in edges if e.src not in removed and e.dst not in removed]
    edges.append((source.src, out.name, 0))
    metadata = dict(graph.metadata)
    metadata["output_delay"] = int(metadata.get("output_delay", 0)) + delay + source.delay
    return Graph(tuple(node for node in graph.nodes if node.name not in removed),
                 tuple(edges), metadata)
