"""Placing layers on Loihi 2 neurocores against the target's ``[resources]`` limits.

Each layer is split into ``k`` cores of contiguous neurons (snn-compile's flat order), with the
smallest ``k`` for which every core fits:

- ``neurons``: neurons on the core <= ``neurons_per_core``;
- ``memory_bits``: synapses into the core's neurons (non-zero weights, feed-forward and
  recurrent; convolution weights counted once per connection they make, i.e. expanded) times
  ``weights.bits + 1`` (magnitude + sign) <= ``synaptic_memory_bits_per_core``;
- ``fan_in``: distinct presynaptic neurons (input axons) reaching the core <= ``fan_in_per_core``;
- ``fan_out``: output axons of the core, one per (neuron, destination core) pair that it has a
  synapse into <= ``fan_out_per_core``. Spikes leaving the chip (the output layer) are not
  counted.

This is an estimate built from public numbers (see the target's ``[sources]``); the real Loihi 2
compiler (lava-loihi) packs synapses its own way. A layer that cannot fit even one neuron per
core, or a network needing more cores than the chip has, raises :class:`TargetError` naming the
layer, the quantity and the limit.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from snn_compile.errors import TargetError
from snn_compile.ir.fixed import QConv, QDense, QLayer, QNetwork

LIMITS = {  # per-core quantity -> resources field
    "neurons": "neurons_per_core",
    "memory_bits": "synaptic_memory_bits_per_core",
    "fan_in": "fan_in_per_core",
    "fan_out": "fan_out_per_core",
}


@dataclass
class CoreUse:
    core: int
    layer: str
    neurons: int
    synapses: int
    memory_bits: int
    fan_in: int
    fan_out: int


@dataclass
class LayerMapping:
    name: str
    neurons: int
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
    layers: list
    cores: list

    def as_dict(self) -> dict:
        return asdict(self)

    def layer(self, name: str) -> LayerMapping:
        return next(m for m in self.layers if m.name == name)


# ----------------------------------------------------------------------------- connectivity

class DenseLinks:
    """Non-zero pattern of a dense synapse (n_out, n_in)."""

    def __init__(self, syn: QDense):
        self.mask = syn.weight != 0

    def counts(self) -> np.ndarray:
        return self.mask.sum(axis=1)

    def sources(self, rows: np.ndarray) -> np.ndarray:
        return self.mask[rows].any(axis=0)


class ConvLinks:
    """Non-zero pattern of a convolution, through exact float64 convolutions of indicators.

    torch is imported here, on first use, so that loading the backend (``snn-compile backends``)
    does not import it.
    """

    def __init__(self, syn: QConv):
        import torch

        self.syn = syn
        self.kernel = torch.from_numpy((syn.weight != 0).astype(np.float64))

    def _conv(self, x):
        import torch

        s = self.syn
        return torch.nn.functional.conv2d(x, self.kernel, stride=s.stride, padding=s.padding,
                                          dilation=s.dilation, groups=s.groups)

    def counts(self) -> np.ndarray:
        import torch

        ones = torch.ones((1, *self.syn.in_shape), dtype=torch.float64)
        return self._conv(ones).reshape(-1).numpy().astype(np.int64)

    def sources(self, rows: np.ndarray) -> np.ndarray:
        import torch

        x = torch.ones((1, *self.syn.in_shape), dtype=torch.float64, requires_grad=True)
        y = self._conv(x).reshape(-1)
        (y * torch.from_numpy(rows.astype(np.float64))).sum().backward()
        return (x.grad.reshape(-1) > 0).numpy()


LINKS = {QDense: DenseLinks, QConv: ConvLinks}


def _links(syn):
    return LINKS[type(syn)](syn)


# ----------------------------------------------------------------------------- placement

def _chunks(n: int, k: int) -> list[np.ndarray]:
    """k contiguous groups of neurons as boolean masks over n."""
    masks = []
    for part in np.array_split(np.arange(n), k):
        mask = np.zeros(n, bool)
        mask[part] = True
        masks.append(mask)
    return masks


class LayerPlan:
    """Per-core statistics of one layer for a candidate number of cores."""

    def __init__(self, layer: QLayer, bits: int):
        self.layer = layer
        self.n = layer.neuron.size
        self.inputs = [_links(layer.synapse)]
        if layer.recurrent is not None:
            self.inputs.append(_links(layer.recurrent))
        self.counts = sum(link.counts() for link in self.inputs)
        self.bits = bits

    def stats(self, chunk: np.ndarray, fan_out: int) -> dict:
        synapses = int(self.counts[chunk].sum())
        return {"neurons": int(chunk.sum()), "synapses": synapses,
                "memory_bits": synapses * self.bits,
                "fan_in": sum(int(link.sources(chunk).sum()) for link in self.inputs),
                "fan_out": fan_out}


def _fan_out(chunks: list[np.ndarray], dests: list[tuple]) -> list[int]:
    """Output axons per chunk: for every destination core, the chunk's neurons wired into it."""
    totals = [0] * len(chunks)
    for links, dest_chunks in dests:
        for dest in dest_chunks:
            wired = links.sources(dest)
            for i, chunk in enumerate(chunks):
                totals[i] += int((wired & chunk).sum())
    return totals


def _violations(stats: dict, limits: dict) -> list[str]:
    return [key for key, limit in limits.items() if limit is not None and stats[key] > limit]


def _candidates(k_min: int, n: int):
    k = k_min
    while k < n:
        yield k
        k = k + 1 if k < 64 else math.ceil(k * 1.1)
    yield n


def _evaluate(plan: LayerPlan, k: int, consumers: list[tuple]) -> list[dict]:
    chunks = _chunks(plan.n, k)
    dests = list(consumers)
    if plan.layer.recurrent is not None:
        dests.append((plan.inputs[-1], chunks))
    return [plan.stats(c, f) for c, f in zip(chunks, _fan_out(chunks, dests))]


def _place(plan: LayerPlan, limits: dict, consumers: list[tuple]) -> tuple[list, list[str]]:
    """Smallest split of ``plan``'s layer that fits; (per-core stats, limits one core breaks)."""
    n = plan.n
    k_min = 1
    if limits["neurons"]:
        k_min = max(k_min, math.ceil(n / limits["neurons"]))
    if limits["memory_bits"]:
        k_min = max(k_min, math.ceil(int(plan.counts.sum()) * plan.bits / limits["memory_bits"]))
    for k in _candidates(min(k_min, n), n):
        stats = _evaluate(plan, k, consumers)
        failed = sorted({key for s in stats for key in _violations(s, limits)})
        if not failed:
            split_by = _violations(_evaluate(plan, 1, consumers)[0], limits) if k > 1 else []
            return stats, split_by
    key = failed[0]
    worst = max(s[key] for s in stats)
    raise TargetError(f"layer does not fit a Loihi 2 core even with one neuron per core: "
                      f"{key} {worst} exceeds {LIMITS[key]} = {limits[key]}",
                      node=plan.layer.name,
                      hint="make the layer sparser or smaller (fewer inputs per neuron)")


def map_to_cores(net: QNetwork) -> MappingReport:
    """Split every layer over neurocores; TargetError if the network does not fit."""
    res = net.target.resources
    limits = {key: getattr(res, field_) for key, field_ in LIMITS.items()}
    bits = net.target.weights.bits + 1
    plans = {layer.name: LayerPlan(layer, bits) for layer in net.layers}
    placed: dict[str, list] = {}
    chunkings: dict[str, list] = {}
    reasons: dict[str, list] = {}
    for layer in reversed(net.layers):
        consumers = [(plans[other.name].inputs[0], chunkings[other.name])
                     for other in net.layers if other.source == layer.name]
        stats, why = _place(plans[layer.name], limits, consumers)
        placed[layer.name] = stats
        chunkings[layer.name] = _chunks(plans[layer.name].n, len(stats))
        reasons[layer.name] = why
    layers, cores, next_core = [], [], 0
    for layer in net.layers:
        stats = placed[layer.name]
        for s in stats:
            cores.append(CoreUse(core=len(cores), layer=layer.name, **s))
        layers.append(LayerMapping(
            name=layer.name, neurons=plans[layer.name].n,
            synapses=sum(s["synapses"] for s in stats),
            memory_bits=sum(s["memory_bits"] for s in stats), cores=len(stats),
            first_core=next_core, max_fan_in=max(s["fan_in"] for s in stats),
            max_fan_out=max(s["fan_out"] for s in stats), split_by=reasons[layer.name]))
        next_core += len(stats)
    if res.cores is not None and next_core > res.cores:
        biggest = max(layers, key=lambda m: m.cores)
        raise TargetError(f"network needs {next_core} cores, {net.target.name} has "
                          f"resources.cores = {res.cores}", node=biggest.name,
                          value=f"layer '{biggest.name}' alone needs {biggest.cores} cores",
                          hint="shrink the network or split it over several chips")
    return MappingReport(target=net.target.name, cores_used=next_core,
                         cores_available=res.cores, limits=limits, bits_per_synapse=bits,
                         layers=layers, cores=cores)
