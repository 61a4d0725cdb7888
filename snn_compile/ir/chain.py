"""Writing a chain-shaped fixed-point network layer by layer (tests, examples, old code).

A chain is the common case: each population fed by one synapse from the previous population (or
the input), optionally with a dense self-recurrence, a synaptic-current bias and an extra
feed-forward delay. :func:`chain` turns such a list into the general :class:`QNetwork` graph with
the target's timing: the feed-forward projection of a layer arrives ``synapse_delay + delay``
steps after its source's spikes, the recurrent one ``max(1, synapse_delay)`` steps after the
layer's own, and layer ``k`` (0-based) lags the float model by ``(k + 1) * synapse_delay``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..datatypes import BINARY, IntType
from ..targets import Target
from .fixed import ConvGeometry, QInput, QNetwork, QNeuron, QPopulation, QProjection
from .nodes import Shape


@dataclass(frozen=True, kw_only=True, eq=False)
class QDense:
    """Dense synapse: ``a = (W @ x) << weight_exp``; ``weight`` is ``(n_out, n_in)``."""

    weight: np.ndarray
    weight_exp: int = 0


@dataclass(frozen=True, kw_only=True, eq=False)
class QConv:
    """Convolution synapse over ``in_shape`` ``(C, H, W)`` (PyTorch cross-correlation)."""

    weight: np.ndarray
    in_shape: Shape
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weight_exp: int = 0

    @property
    def geometry(self) -> ConvGeometry:
        return ConvGeometry(in_shape=self.in_shape, stride=self.stride, padding=self.padding,
                            dilation=self.dilation, groups=self.groups)

    @property
    def out_shape(self) -> Shape:
        return self.geometry.out_shape(np.shape(self.weight))


@dataclass(frozen=True, kw_only=True, eq=False)
class QLayer:
    """One population with its incoming synapse(s); ``source`` None means the network input."""

    name: str
    synapse: QDense | QConv
    neuron: QNeuron
    recurrent: QDense | None = None
    input_bias: np.ndarray | None = None
    delay: int = 0
    source: str | None = None
    scale: np.ndarray = field(default_factory=lambda: np.array(1.0))


def projection(name: str, source: str, target: str, syn, delay: int) -> QProjection:
    """The graph projection of a chain synapse."""
    if isinstance(syn, QConv):
        return QProjection(name=name, source=source, target=target, kind="conv",
                           weight=syn.weight, weight_exp=syn.weight_exp, delay=delay,
                           conv=syn.geometry)
    return QProjection(name=name, source=source, target=target, kind="dense",
                       weight=syn.weight, weight_exp=syn.weight_exp, delay=delay)


def chain(input_shape, layers, target: Target, *, input_bits: int = 1,
          input_scale: float = 1.0, metadata: dict | None = None) -> QNetwork:
    """The :class:`QNetwork` of a list of :class:`QLayer` (see the module docstring)."""
    d = target.timing.synapse_delay
    inp = QInput(shape=input_shape, dtype=BINARY if input_bits == 1 else IntType(input_bits),
                 scale=input_scale)
    pops, projs = [], []
    for k, layer in enumerate(layers):
        pops.append(QPopulation(name=layer.name, neuron=layer.neuron,
                                input_bias=layer.input_bias, scale=layer.scale,
                                lag=(k + 1) * d))
        source = layer.source if layer.source is not None else inp.name
        projs.append(projection(f"{layer.name}.synapse", source, layer.name, layer.synapse,
                                d + layer.delay))
        if layer.recurrent is not None:
            projs.append(projection(f"{layer.name}.recurrent", layer.name, layer.name,
                                    layer.recurrent, max(1, d)))
    return QNetwork(input=inp, populations=tuple(pops), projections=tuple(projs),
                    output=layers[-1].name, target=target, metadata=dict(metadata or {}))
