"""The IR graph: nodes in evaluation order plus edges, and its verifier.

Semantics of one time step: nodes are evaluated in the order of ``Graph.nodes``. A node's input
is the sum of its incoming edges. An edge from a node that comes *earlier* in the order carries
that node's output of the current step; an edge from the node itself or a *later* node (a
feedback edge) carries its output of the previous step (zero at ``t = 0``). Recurrent layers
(snnTorch ``RLeaky``/``RSynaptic``) are neuron -> synapse -> same neuron loops of this kind.

The verifier rejects graphs a backend could not run: unknown or dangling edges, nodes without
input, shape mismatches, and cycles without state. A feedback edge must start at a neuron (a
stateful node with a declared shape); recurrent synapses are therefore placed *before* the
neuron they feed: ``fc -> rec -> lif`` with edges ``fc->lif, lif->rec (feedback), rec->lif``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

from ..errors import GraphError
from .nodes import Input, Node, NeuronNode, Output, Shape


@dataclass(frozen=True, eq=False)
class Graph:
    """A discrete-time SNN. ``nodes`` in evaluation order; ``edges`` as (source, target) names."""

    nodes: tuple[Node, ...]
    edges: tuple[tuple[str, str], ...]
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "edges", tuple((str(a), str(b)) for a, b in self.edges))

    # ----------------------------------------------------------------- lookups
    @cached_property
    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    @cached_property
    def position(self) -> dict[str, int]:
        return {n.name: i for i, n in enumerate(self.nodes)}

    def __getitem__(self, name: str) -> Node:
        return self.by_name[name]

    def predecessors(self, name: str) -> list[str]:
        return [a for a, b in self.edges if b == name]

    def successors(self, name: str) -> list[str]:
        return [b for a, b in self.edges if a == name]

    def is_feedback(self, edge: tuple[str, str]) -> bool:
        """True when the edge carries the previous step's value (see module docstring)."""
        src, dst = edge
        return self.position[src] >= self.position[dst]

    @property
    def inputs(self) -> list[Input]:
        return [n for n in self.nodes if isinstance(n, Input)]

    @property
    def outputs(self) -> list[Output]:
        return [n for n in self.nodes if isinstance(n, Output)]

    @property
    def neurons(self) -> list[NeuronNode]:
        return [n for n in self.nodes if isinstance(n, NeuronNode)]

    @cached_property
    def shapes(self) -> dict[str, Shape]:
        """Output shape of every node (runs the verifier)."""
        return verify(self)

    def replace(self, **changes) -> "Graph":
        values = {"nodes": self.nodes, "edges": self.edges, "metadata": self.metadata}
        values.update(changes)
        return Graph(**values)


def sequential(nodes, metadata=None) -> Graph:
    """A chain graph ``Input -> n1 -> n2 -> ... -> Output`` (adds missing ends)."""
    nodes = list(nodes)
    if not isinstance(nodes[-1], Output):
        nodes.append(Output(name="output"))
    edges = [(a.name, b.name) for a, b in zip(nodes, nodes[1:])]
    return Graph(tuple(nodes), tuple(edges), dict(metadata or {}))


def verify(graph: Graph) -> dict[str, Shape]:
    """Check the graph and return every node's output shape; raise GraphError naming the node."""
    names = [n.name for n in graph.nodes]
    seen = set()
    for name in names:
        if name in seen:
            raise GraphError("duplicate node name", node=name, hint="node names must be unique")
        seen.add(name)
    for src, dst in graph.edges:
        for end in (src, dst):
            if end not in seen:
                raise GraphError("edge refers to an unknown node", node=end,
                                 value=f"edge {src} -> {dst}")
    if len(set(graph.edges)) != len(graph.edges):
        dup = next(e for e in graph.edges if graph.edges.count(e) > 1)
        raise GraphError("duplicate edge", node=dup[1], value=f"{dup[0]} -> {dup[1]}")
    if not graph.inputs:
        raise GraphError("graph has no Input node", hint="add an Input with the sample shape")
    if not graph.outputs:
        raise GraphError("graph has no Output node", hint="mark the output layer with an Output")

    for src, dst in graph.edges:
        if graph.is_feedback((src, dst)) and not (graph[src].stateful
                                                  and hasattr(graph[src], "shape")):
            raise GraphError("cycle without state: feedback edge from a stateless node",
                             node=src, value=f"edge {src} -> {dst}",
                             hint="a feedback loop must start at a neuron; order the "
                                  "recurrent synapse before the neuron it feeds")

    shapes: dict[str, Shape] = {}
    for node in graph.nodes:
        preds = graph.predecessors(node.name)
        if isinstance(node, Input):
            if preds:
                raise GraphError("Input node has incoming edges", node=node.name,
                                 value=f"from {preds}")
            shapes[node.name] = node.shape
            continue
        if not preds:
            raise GraphError("node has no input (dangling)", node=node.name,
                             hint="connect it or remove it")
        in_shapes = {}
        for p in preds:
            # a feedback source (checked above to be a neuron) declares its own shape
            in_shapes[p] = shapes[p] if p in shapes else tuple(graph[p].shape)
        distinct = set(in_shapes.values())
        if len(distinct) > 1:
            raise GraphError("inputs of different shapes are summed", node=node.name,
                             value=", ".join(f"{k}: {v}" for k, v in in_shapes.items()))
        try:
            shapes[node.name] = tuple(node.output_shape(distinct.pop()))
        except GraphError as err:
            raise err.at(node=node.name)
    for node in graph.nodes:
        if not isinstance(node, Output) and not graph.successors(node.name):
            raise GraphError("node output is never used (dangling)", node=node.name,
                             hint="connect it to an Output or remove it")
    return shapes
