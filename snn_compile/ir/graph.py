"""The float IR graph: nodes joined by edges that carry their delay, and its verifier.

Meaning comes from the edges alone, never from the order in which nodes or edges are listed.
An :class:`Edge` ``src -> dst`` with ``delay = d`` feeds ``dst`` at step ``t`` with ``src``'s
output of step ``t - d`` (zero for ``t < d``). A node's input is the sum of its incoming edges.
Recurrence is a cycle, and every cycle must carry a delay: the edges with ``delay = 0`` form an
acyclic graph, whose topological order (ties broken by node name) is the evaluation order of one
time step. snnTorch's ``RLeaky`` is ``fc -> lif``, ``lif -> rec`` (delay 1), ``rec -> lif``.

Float sums are not associative, so the order in which a node adds its inputs is fixed too
(:meth:`Graph.incoming`): inputs that do not lie on a cycle through the node come first, then
recurrent ones (those the node itself reaches), each group by source name. That is snnTorch's
order for ``RLeaky`` (``beta * mem + fc + rec``); fixed-point sums are exact, so backends do not
depend on it.

The verifier rejects graphs a backend could not run: unknown or dangling edges, negative delays,
nodes without input, shape mismatches and cycles without a delay, naming the node.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import NamedTuple

from ..errors import GraphError
from .nodes import Input, Node, NeuronNode, Output, Shape
from .topology import strongly_connected, toposort


class Edge(NamedTuple):
    """``dst`` reads ``src``'s output of ``delay`` steps ago (0: the same step)."""

    src: str
    dst: str
    delay: int = 0


def _edge(value) -> Edge:
    if isinstance(value, Edge):
        return value
    try:
        parts = tuple(value)
    except TypeError:
        raise GraphError("an edge is (source, target) or (source, target, delay)",
                         value=repr(value)) from None
    if len(parts) not in (2, 3):
        raise GraphError("an edge is (source, target) or (source, target, delay)",
                         value=repr(value))
    delay = parts[2] if len(parts) == 3 else 0
    if isinstance(delay, bool) or not isinstance(delay, int) or delay < 0:
        raise GraphError("an edge delay must be a non-negative integer", node=str(parts[1]),
                         value=f"{parts[0]} -> {parts[1]} delay {delay!r}")
    return Edge(str(parts[0]), str(parts[1]), int(delay))


@dataclass(frozen=True, eq=False)
class Graph:
    """A discrete-time SNN: ``nodes`` (any order) and ``edges`` with their delays."""

    nodes: tuple[Node, ...]
    edges: tuple[Edge, ...]
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "nodes", tuple(self.nodes))
        object.__setattr__(self, "edges", tuple(_edge(e) for e in self.edges))

    # ----------------------------------------------------------------- lookups
    @cached_property
    def by_name(self) -> dict[str, Node]:
        return {n.name: n for n in self.nodes}

    def __getitem__(self, name: str) -> Node:
        return self.by_name[name]

    @cached_property
    def _component(self) -> dict[str, int]:
        """Each node's strongly connected component (over all edges)."""
        succ: dict[str, set[str]] = {n.name: set() for n in self.nodes}
        for e in self.edges:
            succ.setdefault(e.src, set()).add(e.dst)
            succ.setdefault(e.dst, set())
        return {name: i for i, comp in enumerate(strongly_connected(list(succ), succ))
                for name in comp}

    def is_recurrent(self, edge: Edge) -> bool:
        """True when ``edge`` closes a cycle: its target reaches its source (both ends in one
        strongly connected component)."""
        comp = self._component
        return edge.src in comp and comp[edge.src] == comp.get(edge.dst)

    @cached_property
    def _by_end(self) -> tuple[dict, dict]:
        """Edges by destination (summation order) and by source (by destination, delay)."""
        into, out = {}, {}
        for e in self.edges:
            into.setdefault(e.dst, []).append(e)
            out.setdefault(e.src, []).append(e)
        return ({k: tuple(sorted(v, key=lambda e: (self.is_recurrent(e), e.src, e.delay)))
                 for k, v in into.items()},
                {k: tuple(sorted(v, key=lambda e: (e.dst, e.delay))) for k, v in out.items()})

    def incoming(self, name: str) -> tuple[Edge, ...]:
        """Edges into ``name`` in summation order (see the module docstring)."""
        return self._by_end[0].get(name, ())

    def outgoing(self, name: str) -> tuple[Edge, ...]:
        return self._by_end[1].get(name, ())

    def predecessors(self, name: str) -> list[str]:
        return [e.src for e in self.incoming(name)]

    def successors(self, name: str) -> list[str]:
        return [e.dst for e in self.outgoing(name)]

    @cached_property
    def order(self) -> tuple[str, ...]:
        """Evaluation order of one step: topological over delay-0 edges, ties by name."""
        return tuple(toposort([n.name for n in self.nodes],
                               [(e.src, e.dst) for e in self.edges if e.delay == 0]))

    def in_order(self) -> list[Node]:
        return [self.by_name[name] for name in self.order]

    @property
    def inputs(self) -> list[Input]:
        return sorted((n for n in self.nodes if isinstance(n, Input)), key=lambda n: n.name)

    @property
    def outputs(self) -> list[Output]:
        return sorted((n for n in self.nodes if isinstance(n, Output)), key=lambda n: n.name)

    @property
    def neurons(self) -> list[NeuronNode]:
        return sorted((n for n in self.nodes if isinstance(n, NeuronNode)), key=lambda n: n.name)

    @cached_property
    def shapes(self) -> dict[str, Shape]:
        """Output shape of every node (runs the verifier)."""
        return verify(self)

    def replace(self, **changes) -> "Graph":
        values = {"nodes": self.nodes, "edges": self.edges, "metadata": self.metadata}
        values.update(changes)
        return Graph(**values)


def sequential(nodes, metadata=None) -> Graph:
    """A chain graph ``Input -> n1 -> n2 -> ... -> Output`` (adds a missing Output)."""
    nodes = list(nodes)
    if not isinstance(nodes[-1], Output):
        nodes.append(Output(name="output"))
    edges = [(a.name, b.name) for a, b in zip(nodes, nodes[1:])]
    return Graph(tuple(nodes), tuple(edges), dict(metadata or {}))


def from_ordered(nodes, edges, metadata=None) -> Graph:
    """A graph in the first file format's convention: ``nodes`` in evaluation order and edges
    ``(src, dst)``; an edge from a node at or after its target's position read the previous
    step (it becomes ``delay = 1``)."""
    nodes = tuple(nodes)
    position = {n.name: i for i, n in enumerate(nodes)}
    out = []
    for e in edges:
        a, b = (tuple(e) + (None,))[:2]
        if a not in position or b not in position:
            raise GraphError("edge refers to an unknown node",
                             node=str(b if a in position else a), value=f"edge {a} -> {b}")
        out.append((a, b, 1 if position[a] >= position[b] else 0))
    return Graph(nodes, tuple(out), dict(metadata or {}))


def verify(graph: Graph) -> dict[str, Shape]:
    """Check the graph and return every node's output shape; raise GraphError naming the node."""
    names = [n.name for n in graph.nodes]
    seen: set[str] = set()
    for name in names:
        if not isinstance(name, str) or not name:
            raise GraphError("node names must be non-empty strings", value=repr(name))
        if name in seen:
            raise GraphError("duplicate node name", node=name, hint="node names must be unique")
        seen.add(name)
    for e in graph.edges:
        for end in (e.src, e.dst):
            if end not in seen:
                raise GraphError("edge refers to an unknown node", node=end,
                                 value=f"edge {e.src} -> {e.dst}")
    if len(set(graph.edges)) != len(graph.edges):
        dup = next(e for e in graph.edges if graph.edges.count(e) > 1)
        raise GraphError("duplicate edge", node=dup.dst, value=f"{dup.src} -> {dup.dst}")
    if not graph.inputs:
        raise GraphError("graph has no Input node", hint="add an Input with the sample shape")
    if not graph.outputs:
        raise GraphError("graph has no Output node", hint="mark the output layer with an Output")
    order = graph.order  # raises on a cycle without delay
    for node in graph.nodes:
        preds = graph.incoming(node.name)
        if isinstance(node, Input) and preds:
            raise GraphError("Input node has incoming edges", node=node.name,
                             value=f"from {[e.src for e in preds]}")
        if not isinstance(node, Input) and not preds:
            raise GraphError("node has no input (dangling)", node=node.name,
                             hint="connect it or remove it")
        if not isinstance(node, Output) and not graph.outgoing(node.name):
            raise GraphError("node output is never used (dangling)", node=node.name,
                             hint="connect it to an Output or remove it")
    return _infer_shapes(graph, order)


def _infer_shapes(graph: Graph, order) -> dict[str, Shape]:
    """Shapes in evaluation order; a delayed edge may come from a node evaluated later, whose
    shape is then known from its own declaration (neurons, Input) or from a later pass."""
    shapes: dict[str, Shape] = {}
    for node in graph.nodes:
        declared = node.declared_shape()
        if declared is not None:
            shapes[node.name] = declared
    pending = list(order)
    while pending:
        progress = False
        for name in list(pending):
            node = graph[name]
            preds = graph.incoming(name)
            if isinstance(node, Input):
                pending.remove(name)
                progress = True
                continue
            if any(e.src not in shapes or e.src in pending and e.delay == 0 for e in preds):
                continue
            in_shapes = {e.src: shapes[e.src] for e in preds}
            distinct = set(in_shapes.values())
            if len(distinct) > 1:
                raise GraphError("inputs of different shapes are summed", node=name,
                                 value=", ".join(f"{k}: {v}" for k, v in in_shapes.items()))
            try:
                shapes[name] = tuple(node.output_shape(distinct.pop()))
            except GraphError as err:
                raise err.at(node=name)
            pending.remove(name)
            progress = True
        if not progress:
            raise GraphError("cannot infer the shape of a cycle", node=pending[0],
                             hint="a cycle must pass through a node with a declared shape "
                                  "(a neuron)")
    return shapes
