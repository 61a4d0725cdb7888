"""Pass ``drop_identities``: remove the layers that do nothing at inference.

Requires: a verified float graph.

Guarantees: no :class:`~snn_compile.ir.nodes.Identity` node (``nn.Identity``, dropout) and no
:class:`~snn_compile.ir.nodes.ReLU` node is left. An Identity with one input is bypassed (its
consumers read its source, delays added); one with several inputs becomes the Sum it computes. A
ReLU is removed only where its input is provably never negative (spikes, and pooling, sums,
flattening or non-negative gains of spikes: :func:`~.rewrite.nonnegative`), where it is the
identity; any other ReLU acts on currents or graded values, which a spiking network does not
pass, and is refused naming it and its source. Every value the graph computes is unchanged
bit for bit (``x + 0`` is never formed; a bypassed node passed its input on as it was).
"""

from __future__ import annotations

from ..errors import UnsupportedError
from ..ir import nodes as n
from ..ir.graph import Graph
from .rewrite import bypass, nonnegative, replace_nodes


def drop_identities(graph: Graph, notes: list | None = None) -> Graph:
    """``graph`` without Identity and ReLU nodes (see the module docstring)."""
    for node in sorted((x for x in graph.nodes if isinstance(x, n.ReLU)), key=lambda x: x.name):
        sources = [e.src for e in graph.incoming(node.name)]
        bad = [s for s in sources if not nonnegative(graph, s)]
        if bad:
            kind = type(graph[bad[0]]).__name__
            raise UnsupportedError("ReLU on a value that can be negative has no spiking "
                                   "equivalent", node=node.name,
                                   value=f"its input comes from {kind} '{bad[0]}'",
                                   hint="a spiking network passes spikes between layers: remove "
                                        "the ReLU, or put it after a neuron layer (where it is "
                                        "the identity)")
    for node in sorted((x for x in graph.nodes if isinstance(x, (n.Identity, n.ReLU))),
                       key=lambda x: x.name):
        what = node.origin if isinstance(node, n.Identity) else "ReLU on spikes"
        shorter = bypass(graph, node.name) if len(graph.incoming(node.name)) == 1 else None
        if shorter is None:
            graph = replace_nodes(graph, {node.name: n.Sum(name=node.name)})
            action = "kept as the sum of its inputs"
        else:
            graph = shorter
            action = "removed"
        if notes is not None:
            notes.append(f"{node.name}: {what} {action} (the identity at inference)")
    return graph
