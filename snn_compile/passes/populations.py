"""The float population graph: the float IR regrouped as hardware sees it.

:func:`~snn_compile.passes.group.group_populations` turns a float :class:`~snn_compile.ir.Graph`
into populations (the neuron nodes) joined by folded float projections (every run of linear nodes
between two populations becomes one dense, convolution or elementwise projection); the later
passes give each population its time alignment and each projection its hardware delay, and the
quantizer turns the result into a :class:`~snn_compile.ir.fixed.QNetwork`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import GraphError
from ..ir.fixed import PROJECTION_KINDS, ConvGeometry
from ..ir.nodes import LI, Input, Node, NeuronNode, Shape


@dataclass(frozen=True, kw_only=True, eq=False)
class Projection:
    """Float synapses from ``source`` (the input or a population) to population ``target``.

    ``weight`` is float64: ``(n_out, n_in)`` (dense), ``(C_out, C_in / groups, kH, kW)`` (conv,
    with ``conv``), or broadcasting to the target shape over the flattened source (elementwise).
    ``float_delay`` is the delay in the float model's steps; ``delay`` the target's (set by
    :func:`~snn_compile.passes.delays.assign_delays`).
    """

    name: str
    source: str
    target: str
    kind: str
    weight: np.ndarray
    conv: ConvGeometry | None = None
    float_delay: int = 0
    delay: int | None = None

    def __post_init__(self):
        if self.kind not in PROJECTION_KINDS:
            raise GraphError("unknown projection kind", node=self.name, value=self.kind)
        object.__setattr__(self, "weight", np.asarray(self.weight, dtype=np.float64))


@dataclass(frozen=True, kw_only=True, eq=False)
class Population:
    """A neuron node (LIF, CubaLIF, IF or LI) with the constant input its synapses add every
    step (``bias``, float64 per neuron, from the biases of the folded linear nodes)."""

    node: NeuronNode | LI
    bias: np.ndarray
    lag: int = 0

    @property
    def name(self) -> str:
        return self.node.name

    @property
    def shape(self) -> Shape:
        return tuple(self.node.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.node.shape))

    @property
    def spiking(self) -> bool:
        return isinstance(self.node, NeuronNode)


@dataclass(frozen=True, eq=False)
class PopulationGraph:
    """Populations and projections; ``output`` is the population the graph's Output reads."""

    input: Input
    populations: tuple[Population, ...]
    projections: tuple[Projection, ...]
    output: str
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "populations", tuple(self.populations))
        object.__setattr__(self, "projections", tuple(self.projections))

    def population(self, name: str) -> Population:
        return next(p for p in self.populations if p.name == name)

    def incoming(self, name: str) -> tuple[Projection, ...]:
        return tuple(sorted((p for p in self.projections if p.target == name),
                            key=lambda p: p.name))

    def shape_of(self, name: str) -> Shape:
        return self.input.shape if name == self.input.name else self.population(name).shape

    def replace(self, **changes) -> "PopulationGraph":
        return replace(self, **changes)

    def nodes(self) -> list[Node]:
        return [p.node for p in self.populations]

    def verify(self) -> None:
        names = {p.name for p in self.populations}
        if len(names) != len(self.populations):
            raise GraphError("duplicate population name")
        if self.output not in names:
            raise GraphError("the output is not a population", node=self.output)
        for proj in self.projections:
            if proj.source not in names | {self.input.name} or proj.target not in names:
                raise GraphError("projection between unknown populations", node=proj.name,
                                 value=f"{proj.source} -> {proj.target}")
        for pop in self.populations:
            if not self.incoming(pop.name):
                raise GraphError("population has no input", node=pop.name)
