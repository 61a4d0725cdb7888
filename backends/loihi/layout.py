"""How each population (and the input) is laid out in Lava, and split into neuron processes.

The IR indexes a population's neurons in C order of its ``shape`` (``(C, H, W)`` maps or flat).
In Lava a population is one or more neuron processes (*units*); the concatenation of the units'
C-order elements is the population's *Lava order*, and ``order[i]`` is the IR flat index of its
``i``-th element:

* a population fed by, or feeding, a convolution is one unit of shape ``(W, H, C)`` (Lava's
  Conv works on ``(X, Y, C)`` tensors): ``order`` is the transpose of ``(C, H, W)``;
* a population whose neurons need different decay/threshold registers (one set per Lava LIF
  process) is one flat unit per register set, in the order of
  :func:`snn_compile.quantize.registers.parameter_groups`; ``order`` lists the groups' neurons;
* every other population and the input is one flat unit in IR order (``order`` is None).

Dense and sparse weights are written in Lava order on both sides; recorded states are put back
into IR order with ``order``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from snn_compile.errors import UnsupportedError
from snn_compile.ir.fixed import QNetwork, QPopulation
from snn_compile.quantize.registers import parameter_groups


@dataclass(frozen=True)
class Unit:
    """One neuron process: elements ``start:stop`` of the population's Lava order."""

    name: str
    start: int
    stop: int
    lava_shape: tuple

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Layout:
    shape: tuple
    lava_shape: tuple
    order: np.ndarray | None
    units: tuple

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def lava_order(self) -> np.ndarray:
        return np.arange(self.size) if self.order is None else self.order

    def indices(self, unit: Unit) -> np.ndarray:
        """IR flat indices of ``unit``'s elements, in its C order."""
        return self.lava_order[unit.start:unit.stop]

    def position(self) -> np.ndarray:
        """Lava-order position of every IR flat index (the inverse of ``order``)."""
        out = np.empty(self.size, np.int64)
        out[self.lava_order] = np.arange(self.size)
        return out

    def manifest(self) -> dict:
        return {"shape": list(self.shape), "lava_shape": list(self.lava_shape)}


def whc_order(chw) -> np.ndarray:
    """IR flat index of each element of the ``(W, H, C)`` transpose of ``(C, H, W)``."""
    return np.arange(int(np.prod(chw))).reshape(chw).transpose(2, 1, 0).reshape(-1)


def neuron_groups(pop: QPopulation) -> list[np.ndarray]:
    """IR flat indices of the neurons sharing one (du, dv, vth) register set."""
    n = pop.neuron
    return parameter_groups(pop.shape, n.decay_u if n.has_current else 0, n.decay_v,
                            n.threshold)


class _Names:
    """Unique names for the units of split populations (``<population>#<i>``, with more ``#``
    while the name is taken); a whole population's unit keeps the population's name."""

    def __init__(self, taken):
        self.taken = set(taken)

    def get(self, wanted: str) -> str:
        name = wanted
        while name in self.taken:
            name += "#"
        self.taken.add(name)
        return name


def _conv_geometry(net: QNetwork, name: str):
    """The ``(C, H, W)`` a convolution reads or writes at node ``name``, or None."""
    shapes = {tuple(net.shape_of(name)) for p in net.incoming(name) if p.kind == "conv"} \
        if name != net.input.name else set()
    shapes |= {tuple(p.conv.in_shape) for p in net.outgoing(name) if p.kind == "conv"}
    if len(shapes) > 1:
        raise UnsupportedError("convolutions read this population with different (C, H, W) "
                               "shapes; Lava holds one (X, Y, C) layout per population",
                               node=name, value=sorted(shapes))
    return next(iter(shapes), None)


def layouts(net: QNetwork, max_groups: int) -> dict[str, Layout]:
    """The Lava layout of the input and of every population (see the module docstring)."""
    names = _Names([net.input.name] + [p.name for p in net.populations])  # groups avoid them
    out = {}
    for name in (net.input.name, *net.order):
        shape = tuple(net.shape_of(name))
        geometry = _conv_geometry(net, name)
        groups = [np.arange(int(np.prod(shape)))] if name == net.input.name else \
            neuron_groups(net.population(name))
        if len(groups) > 1:
            out[name] = _split(net, name, shape, groups, geometry, max_groups, names)
        elif geometry is not None:
            c, h, w = geometry
            out[name] = Layout(shape, (w, h, c), whc_order(geometry),
                               (Unit(name, 0, c * h * w, (w, h, c)),))
        else:
            n = int(np.prod(shape))
            out[name] = Layout(shape, (n,), None, (Unit(name, 0, n, (n,)),))
    return out


def _split(net, name, shape, groups, geometry, max_groups, names) -> Layout:
    n = int(np.prod(shape))
    if geometry is not None:
        raise UnsupportedError("a convolutional population with per-neuron decays or "
                               "thresholds is not split into LIF processes", node=name,
                               value=f"{len(groups)} register sets over {n} neurons",
                               hint="train with one beta and threshold per layer")
    if len(groups) > max_groups:
        raise UnsupportedError(
            f"Loihi 2 holds one du/dv/vth per LIF process; this population needs "
            f"{len(groups)} processes, more than {max_groups} (features.neuron_groups)",
            node=name, value=f"{len(groups)} distinct (du, dv, vth) over {n} neurons; every "
                             "projection into or out of it splits the same way",
            hint="train with a shared beta and threshold, or quantize for a target with "
                 "per-neuron registers")
    units, start = [], 0
    for i, members in enumerate(groups):
        units.append(Unit(names.get(f"{name}#{i}"), start, start + members.size,
                          (int(members.size),)))
        start += members.size
    return Layout(shape, (n,), np.concatenate(groups), tuple(units))
