"""Placing populations on Loihi 2 neurocores against the target's ``[resources]`` limits.

Each neuron process (a population, or each register group of a split population, see
:mod:`.layout`) is split into ``k`` cores of contiguous neurons (its IR order), with the
smallest ``k`` for which every core fits:

- ``neurons``: neurons on the core <= ``neurons_per_core``;
- ``memory_bits``: synapses into the core's neurons from *every* incoming projection (non-zero
  weights; convolution weights counted once per connection they make, i.e. expanded) times
  ``weights.type.bits`` (magnitude + sign) <= ``synaptic_memory_bits_per_core``;
- ``fan_in``: presynaptic neurons (input axons) reaching the core, summed over the incoming
  projections, <= ``fan_in_per_core``;
- ``fan_out``: output axons of the core, one per (neuron, destination core) pair of every
  outgoing projection it has a synapse in, <= ``fan_out_per_core``. Spikes leaving the chip
  (the output population's) are not counted.

Fan-out depends on how the consumers are split, and recurrent or feedback loops make that
circular: placement repeats until no split changes (splits only grow, so it ends). This is an
estimate from public numbers (see the target's ``[sources]``); the real Loihi 2 compiler
(lava-loihi) packs synapses its own way. A process that cannot fit even one neuron per core, or a
network needing more cores than the chip has, raises :class:`TargetError` naming the population,
the quantity and the limit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from snn_compile.errors import TargetError
from snn_compile.ir.fixed import QNetwork, QProjection

from .layout import neuron_groups

LIMITS = {  # per-core quantity -> resources field
    "neurons": "neurons_per_core",
    "memory_bits": "synaptic_memory_bits_per_core",
    "fan_in": "fan_in_per_core",
    "fan_out": "fan_out_per_core",
}


@dataclass
class CoreUse:
    core: int
    population: str
    group: int
    neurons: int
    synapses: int
    memory_bits: int
    fan_in: int
    fan_out: int


@dataclass
class PopulationMapping:
    name: str
    neurons: int
    groups: int
    synapses: int
    memory_bits: int
    cores: int
    first_core: int
    max_fan_in: int
    max_fan_out: int
    split_by: list = field(default_factory=list)  # limits that forced more than one core


@dataclass
class MappingReport:
    target: str
    cores_used: int
    cores_available: int | None
    limits: dict
    bits_per_synapse: int
    populations: list
    cores: list

    def as_dict(self) -> dict:
        return asdict(self)

    def population(self, name: str) -> PopulationMapping:
        return next(m for m in self.populations if m.name == name)


# ----------------------------------------------------------------------------- connectivity

class Links:
    """Non-zero pattern of a projection: ``counts()`` synapses per target neuron, and
    ``sources(rows)`` the source neurons wired to the target neurons ``rows`` (IR flat order)."""

    def __init__(self, proj: QProjection, source_shape, target_size: int):
        import torch  # on first use: loading the backend (`snn-compile backends`) need not

        self.proj = proj
        if proj.kind == "dense":
            self.mask = np.asarray(proj.weight) != 0
        elif proj.kind == "elementwise":
            self.diag = np.broadcast_to(proj.weight, source_shape).reshape(-1) != 0
        else:
            self.kernel = torch.from_numpy((np.asarray(proj.weight) != 0).astype(np.float64))
        self.target_size = target_size

    def _conv(self, x):
        import torch

        geo = self.proj.conv
        return torch.nn.functional.conv2d(x, self.kernel, stride=geo.stride,
                                          padding=geo.padding, dilation=geo.dilation,
                                          groups=geo.groups)

    def counts(self) -> np.ndarray:
        import torch

        if self.proj.kind == "dense":
            return self.mask.sum(axis=1)
        if self.proj.kind == "elementwise":
            return self.diag.astype(np.int64)
        ones = torch.ones((1, *self.proj.conv.in_shape), dtype=torch.float64)
        return self._conv(ones).reshape(-1).numpy().astype(np.int64)

    def sources(self, rows: np.ndarray) -> np.ndarray:
        import torch

        if self.proj.kind == "dense":
            return self.mask[rows].any(axis=0)
        if self.proj.kind == "elementwise":
            return rows & self.diag
        x = torch.ones((1, *self.proj.conv.in_shape), dtype=torch.float64, requires_grad=True)
        y = self._conv(x).reshape(-1)
        (y * torch.from_numpy(rows.astype(np.float64))).sum().backward()
        return (x.grad.reshape(-1) > 0).numpy()


# ----------------------------------------------------------------------------- placement

@dataclass
class Process:
    """One neuron process to place: ``members`` are its IR flat indices in its population."""

    population: str
    group: int
    members: np.ndarray
    size: int  # the population's size

    def chunks(self, k: int) -> list[np.ndarray]:
        """``k`` contiguous groups of the members, as boolean masks over the population."""
        masks = []
        for part in np.array_split(self.members, k):
            mask = np.zeros(self.size, bool)
            mask[part] = True
            masks.append(mask)
        return masks


def _violations(stats: dict, limits: dict) -> list[str]:
    return [key for key, limit in limits.items() if limit is not None and stats[key] > limit]


def _candidates(k_min: int, n: int):
    k = k_min
    while k < n:
        yield k
        k = k + 1 if k < 64 else math.ceil(k * 1.1)
    yield n


class Placer:
    """Per-core statistics of every process of ``net`` for candidate splits."""

    def __init__(self, net: QNetwork):
        self.net = net
        res = net.target.resources
        self.limits = {key: getattr(res, f) for key, f in LIMITS.items()}
        self.bits = net.target.weights.type.bits
        self.links = {p.name: Links(p, net.shape_of(p.source), net.population(p.target).size)
                      for p in net.projections}
        self.counts = {}
        for pop in net.populations:
            total = np.zeros(pop.size, np.int64)
            for proj in net.incoming(pop.name):
                total = total + self.links[proj.name].counts()
            self.counts[pop.name] = total
        self.processes = [Process(pop.name, i, members, pop.size)
                          for pop in net.in_order()
                          for i, members in enumerate(neuron_groups(pop))]
        self.split = {(p.population, p.group): 1 for p in self.processes}

    def destinations(self, pop: str, own: tuple | None = None) -> list[tuple]:
        """``(links, target chunks)`` of every outgoing projection (``own``: a candidate split
        of one of ``pop``'s processes, for its self-connections)."""
        out = []
        for proj in self.net.outgoing(pop):
            chunks = []
            for p in self.processes:
                if p.population == proj.target:
                    k = own[1] if own is not None and (p.population, p.group) == own[0] \
                        else self.split[(p.population, p.group)]
                    chunks += p.chunks(k)
            out.append((self.links[proj.name], chunks))
        return out

    def evaluate(self, proc: Process, k: int) -> list[dict]:
        chunks = proc.chunks(k)
        dests = self.destinations(proc.population, ((proc.population, proc.group), k))
        stats = []
        for chunk in chunks:
            synapses = int(self.counts[proc.population][chunk].sum())
            fan_in = sum(int(self.links[p.name].sources(chunk).sum())
                         for p in self.net.incoming(proc.population))
            fan_out = sum(int((links.sources(dest) & chunk).sum())
                          for links, dest_chunks in dests for dest in dest_chunks)
            stats.append({"neurons": int(chunk.sum()), "synapses": synapses,
                          "memory_bits": synapses * self.bits, "fan_in": fan_in,
                          "fan_out": fan_out})
        return stats

    def place(self, proc: Process) -> tuple[list, list[str]]:
        """Smallest split of ``proc`` that fits; (per-core stats, limits one core breaks)."""
        n, limits = proc.members.size, self.limits
        k_min = 1
        if limits["neurons"]:
            k_min = max(k_min, math.ceil(n / limits["neurons"]))
        if limits["memory_bits"]:
            synapses = int(self.counts[proc.population][proc.members].sum())
            k_min = max(k_min, math.ceil(synapses * self.bits / limits["memory_bits"]))
        for k in _candidates(min(k_min, n), n):
            stats = self.evaluate(proc, k)
            failed = sorted({key for s in stats for key in _violations(s, limits)})
            if not failed:
                split_by = _violations(self.evaluate(proc, 1)[0], limits) if k > 1 else []
                return stats, split_by
        key = failed[0]
        worst = max(s[key] for s in stats)
        raise TargetError(f"population does not fit a Loihi 2 core even with one neuron per "
                          f"core: {key} {worst} exceeds {LIMITS[key]} = {limits[key]}",
                          node=proc.population,
                          hint="make the population sparser or smaller (fewer inputs per "
                               "neuron)")


def map_to_cores(net: QNetwork) -> MappingReport:
    """Split every population over neurocores; TargetError if the network does not fit."""
    placer = Placer(net)
    placed = {}
    for _ in range(len(placer.processes) + 1):  # fan-out follows the consumers' splits
        changed = False
        for proc in reversed(placer.processes):
            key = (proc.population, proc.group)
            stats, why = placer.place(proc)
            placed[key] = (stats, why)
            if len(stats) != placer.split[key]:
                placer.split[key] = len(stats)
                changed = True
        if not changed:
            break
    populations, cores = [], []
    for pop in net.in_order():
        first = len(cores)
        procs = [p for p in placer.processes if p.population == pop.name]
        why = sorted({w for p in procs for w in placed[(p.population, p.group)][1]})
        for p in procs:
            for s in placed[(p.population, p.group)][0]:
                cores.append(CoreUse(core=len(cores), population=pop.name, group=p.group, **s))
        mine = cores[first:]
        populations.append(PopulationMapping(
            name=pop.name, neurons=pop.size, groups=len(procs),
            synapses=sum(c.synapses for c in mine), memory_bits=sum(c.memory_bits for c in mine),
            cores=len(mine), first_core=first, max_fan_in=max(c.fan_in for c in mine),
            max_fan_out=max(c.fan_out for c in mine), split_by=why))
    res = net.target.resources
    if res.cores is not None and len(cores) > res.cores:
        biggest = max(populations, key=lambda m: m.cores)
        raise TargetError(f"network needs {len(cores)} cores, {net.target.name} has "
                          f"resources.cores = {res.cores}", node=biggest.name,
                          value=f"population '{biggest.name}' alone needs {biggest.cores} cores",
                          hint="shrink the network or split it over several chips")
    return MappingReport(target=net.target.name, cores_used=len(cores),
                         cores_available=res.cores, limits=placer.limits,
                         bits_per_synapse=placer.bits, populations=populations, cores=cores)
