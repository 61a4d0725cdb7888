"""Pass ``group_populations``: float IR graph -> population graph (folds linear chains).

Requires: a verified float graph with one Input and one Output; every cycle passes through a
neuron (LIF, CubaLIF, IF, LI); nothing but neurons, linear nodes (Affine, Conv2d, SumPool2d,
AvgPool2d, Flatten, Scale, Sum), max poolings (each with a single path through it from one
source, so that it stays inside one projection) and Delay nodes.

Guarantees: one :class:`~.populations.Population` per neuron node; for every path from a
population (or the input) to a population through linear nodes, one projection computing that
path (:func:`~.fold.fold_chain`), with the path's delay (edge delays plus Delay nodes) as its
``float_delay``; paths from the same source with the same delay that both fold to dense matrices
are summed into one; each population's ``bias`` is its linear subgraph evaluated on zero input.
The float semantics are unchanged (up to float rounding of the folded products).
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir import nodes as n
from ..ir.graph import Graph
from .fold import FOLDABLE, apply_chain, fold_chain
from .populations import Population, PopulationGraph, Projection

POPULATION_NODES = (n.NeuronNode, n.LI)


def group_populations(graph: Graph) -> PopulationGraph:
    """The population graph of ``graph`` (see the module docstring)."""
    shapes = graph.shapes
    inputs, outputs = graph.inputs, graph.outputs
    if len(inputs) != 1 or len(outputs) != 1:
        raise UnsupportedError("hardware lowering needs exactly one Input and one Output",
                               value=f"{len(inputs)} inputs, {len(outputs)} outputs")
    for node in graph.nodes:
        if not isinstance(node, POPULATION_NODES + FOLDABLE + (n.Delay, n.Input, n.Output)):
            raise UnsupportedError(f"{type(node).__name__} nodes cannot be lowered to hardware",
                                   node=node.name, hint=_ADVICE.get(type(node), None))
        if isinstance(node, n.MaxPool2d):
            _single_path(graph, node)
    source_name = inputs[0].name
    populations, projections = [], []
    for node in graph.in_order():
        if not isinstance(node, POPULATION_NODES):
            continue
        paths = list(_paths(graph, node.name))
        projections += _projections(graph, node, paths, shapes)
        bias = _bias(graph, node, shapes)
        populations.append(Population(node=node, bias=bias))
    if not populations:
        raise UnsupportedError("the network has no neuron layer")
    output = _output_population(graph)
    for proj in projections:
        src = graph[proj.source] if proj.source != source_name else None
        if isinstance(src, n.LI):
            raise UnsupportedError("a non-spiking layer can only be the last layer",
                                   node=src.name, hint="hardware passes spikes between layers")
    return PopulationGraph(input=inputs[0], populations=tuple(populations),
                           projections=tuple(projections), output=output,
                           metadata=dict(graph.metadata))


_ADVICE = {
    n.BatchNorm: "run the pass fold_batch_norm first (snn_compile.quantize does)",
    n.Identity: "run the pass drop_identities first (snn_compile.quantize does)",
    n.ReLU: "run the pass drop_identities first (snn_compile.quantize does)",
}


def _single_path(graph: Graph, pool) -> None:
    """A max pooling must see one source through one chain: the maximum of a sum of several
    paths cannot be split into one projection per path."""
    name = pool.name
    while True:
        edges = graph.incoming(name)
        if len(edges) != 1:
            raise UnsupportedError("max pooling over the sum of several inputs", node=pool.name,
                                   value=f"'{name}' sums {[e.src for e in edges]}",
                                   hint="pool each input before adding them, or pool the "
                                        "spikes of the layer they feed")
        name = edges[0].src
        if _is_leaf(graph[name]):
            return


def _is_leaf(node) -> bool:
    return isinstance(node, POPULATION_NODES + (n.Input,))


def _paths(graph: Graph, target: str):
    """``(source, chain, delay)`` for every path into ``target`` through linear nodes; the
    chain is in forward order, the delay sums edge delays and Delay nodes."""
    stack = [(e, [], 0) for e in graph.incoming(target)]
    while stack:
        edge, chain, delay = stack.pop()
        node = graph[edge.src]
        delay += edge.delay
        if _is_leaf(node):
            yield node.name, chain, delay
            continue
        if node.name in {c.name for c in chain}:
            raise UnsupportedError("a cycle through linear nodes only (no neuron)",
                                   node=node.name, hint="recurrence must pass through a neuron")
        if isinstance(node, n.Delay):
            delay += node.steps
            inner = chain
        elif isinstance(node, n.Output):
            raise UnsupportedError("an Output feeds a layer", node=node.name)
        else:
            inner = [node] + chain
        for e in graph.incoming(node.name):
            stack.append((e, inner, delay))


def _projections(graph: Graph, node, paths, shapes) -> list[Projection]:
    """One projection per path; dense ones from the same (source, delay) are summed."""
    out, dense = [], {}
    for source, chain, delay in sorted(paths, key=lambda p: (p[0], p[2],
                                                            [c.name for c in p[1]])):
        kind, weight, conv = fold_chain(chain, shapes[source], node.name)
        name = _name(node.name, source, chain, delay)
        if kind == "dense" and (source, delay) in dense:
            prev = dense[(source, delay)]
            dense[(source, delay)] = Projection(
                name=prev.name, source=source, target=node.name, kind="dense",
                weight=prev.weight + weight, float_delay=delay)
            continue
        proj = Projection(name=name, source=source, target=node.name, kind=kind,
                          weight=weight, conv=conv, float_delay=delay)
        if kind == "dense":
            dense[(source, delay)] = proj
        else:
            out.append(proj)
    out += dense.values()
    names = [p.name for p in out]
    for i, p in enumerate(out):  # distinct names for parallel paths
        if names.count(p.name) > 1:
            out[i] = Projection(name=f"{p.name}#{i}", source=p.source, target=p.target,
                                kind=p.kind, weight=p.weight, conv=p.conv,
                                float_delay=p.float_delay)
    return out


def _name(target: str, source: str, chain, delay: int) -> str:
    """The projection's name: its linear node when there is exactly one (a max pooling does not
    count: it belongs to its convolution), else source->target."""
    linear = [c.name for c in chain if not isinstance(c, (n.Flatten, n.Sum, n.MaxPool2d))]
    if len(linear) == 1:
        return linear[0]
    return f"{source}->{target}" + (f"@{delay}" if delay else "")


def _bias(graph: Graph, node, shapes) -> np.ndarray:
    """The population's constant input: its linear subgraph on zero input (float64). A bias
    that reaches the population through a delay would be missing for the first steps: refused."""
    memo: dict[str, np.ndarray] = {}

    def incoming_sum(name: str):
        total = None
        for e in graph.incoming(name):
            part = value(e.src)
            if e.delay and np.any(part):
                raise UnsupportedError("a bias reaches this node through a delay, so it is "
                                       "missing for the first steps", node=e.src,
                                       hint="move the bias after the delay")
            total = part if total is None else total + part
        return total

    def value(name: str) -> np.ndarray:
        src = graph[name]
        if _is_leaf(src):
            return np.zeros((1, *shapes[name]))
        if name not in memo:
            total = incoming_sum(name)
            if isinstance(src, n.Delay):
                if np.any(total):
                    raise UnsupportedError("a bias passes a Delay node, so it is missing for "
                                           "the first steps", node=name,
                                           hint="move the bias after the delay")
                memo[name] = total
            else:
                memo[name] = apply_chain([src], total)
        return memo[name]

    return incoming_sum(node.name).reshape(-1)


def _output_population(graph: Graph) -> str:
    """The population the Output reads (through Delay nodes at most)."""
    out = graph.outputs[0]
    edges = graph.incoming(out.name)
    if len(edges) != 1:
        raise UnsupportedError("the Output must read one neuron layer", node=out.name,
                               value=f"inputs {[e.src for e in edges]}")
    node = graph[edges[0].src]
    while isinstance(node, n.Delay) and len(graph.incoming(node.name)) == 1:
        node = graph[graph.incoming(node.name)[0].src]
    if not isinstance(node, POPULATION_NODES):
        raise UnsupportedError("linear layers after the last neuron layer", node=node.name,
                               hint="end the network with a neuron layer (e.g. a Leaky readout "
                                    "with reset_mechanism='none')")
    return node.name
