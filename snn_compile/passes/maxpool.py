"""Pass ``pool_spikes``: max pooling of spikes becomes an exact OR population.

Requires: a verified float graph without Identity/ReLU nodes (run after ``drop_identities``, so
``Leaky -> ReLU -> MaxPool2d`` is seen as pooling spikes).

Guarantees: every :class:`~snn_compile.ir.nodes.MaxPool2d` whose inputs are all 0/1 spikes
(single-spike neuron layers, directly) is replaced by a window sum feeding a memoryless
threshold population of the same name::

    pool.sum:  c[t] = SumPool2d(s[t])               (same kernel, stride, zero padding)
    pool:      IF, threshold 1/2, reset to zero in the same step, spike test '>'
               v' = v[t-1] + c[t] = c[t]   (v is 0 after every step: it either stays 0 or
               s = H(c - 1/2) = max(s)      spikes and is reset to 0)

On 0/1 spikes the window maximum is 1 exactly when the count is at least 1, so every value of
the graph is unchanged bit for bit (counts are small integers, exact in float). The OR layer is
a standard neuron on every target (Loihi 2: a zero-reset LIF without leak); like any population
it adds the target's synaptic delay (one step on Loihi 2), which ``assign_delays`` accounts for
in the time alignment. A max pooling of anything else is left alone: after a convolution it is
a pooling of synaptic sums, which ``group_populations`` folds into the convolution's projection
(``max_pool``); before multi-spike counts, graded input or currents it is refused there.
"""

from __future__ import annotations

from ..ir import nodes as n
from ..ir.graph import Edge, Graph

OR_THRESHOLD = 0.5  # just below one spike: H(count - 1/2) is the OR of 0/1 spikes


def pool_spikes(graph: Graph, notes: list | None = None) -> Graph:
    """``graph`` with max pooling of spikes rewritten (see the module docstring)."""
    for pool in sorted((x for x in graph.nodes if isinstance(x, n.MaxPool2d)),
                       key=lambda x: x.name):
        edges = graph.incoming(pool.name)
        if not edges or not all(_binary(graph[e.src]) for e in edges) or len(edges) > 1:
            continue
        graph = _rewrite(graph, pool)
        if notes is not None:
            notes.append(f"{pool.name}: max pooling of spikes computed exactly as an OR "
                         f"population (window sum '{pool.name}.sum', threshold "
                         f"{OR_THRESHOLD}); it adds one synaptic delay on targets that have one")
    return graph


def _binary(node) -> bool:
    return isinstance(node, n.NeuronNode) and not node.multi_spike


def _rewrite(graph: Graph, pool: n.MaxPool2d) -> Graph:
    shape = graph.shapes[pool.name]
    window = n.SumPool2d(name=f"{pool.name}.sum", kernel_size=pool.kernel_size,
                         stride=pool.stride, padding=pool.padding)
    gate = n.IF(name=pool.name, shape=shape, threshold=OR_THRESHOLD, reset="zero",
                reset_timing="same_step", spike_test=">")
    nodes = [window if node.name == pool.name else node for node in graph.nodes] + [gate]
    edges = [Edge(e.src, window.name, e.delay) if e.dst == pool.name else e
             for e in graph.edges]
    edges.append(Edge(window.name, gate.name, 0))
    return Graph(tuple(nodes), tuple(edges), dict(graph.metadata))
