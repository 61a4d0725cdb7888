"""Per-layer comparison of two traces, with the target's time alignment.

Float (snnTorch-timed) population ``p`` at step ``t`` corresponds to the fixed-point population at
step ``t + lag_p`` (:attr:`~snn_compile.ir.fixed.QPopulation.lag`, set by the lowering from the
target's synaptic delays: Loihi one step per layer deep, FPGA/CPU none). :func:`pad_for_latency`
appends that many silent steps to an input so every float step has a fixed-point counterpart.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .ir.fixed import QNetwork
from .trace import Trace


@dataclass
class LayerAgreement:
    name: str
    offset: int                  # fixed-point steps later than float
    spike_agreement: float       # fraction of equal (step, sample, neuron) spike entries
    float_spikes: int
    fixed_spikes: int
    rate_error: float            # mean |count_float - count_fixed| per neuron and sample, in spikes
    first_divergence: dict | None  # step, sample, neuron, float/fixed spike and membrane

    def as_dict(self):
        return asdict(self)


def pad_for_latency(spikes: np.ndarray, net: QNetwork) -> np.ndarray:
    extra = net.max_lag
    if not extra:
        return spikes
    pad = np.zeros((extra, *spikes.shape[1:]), spikes.dtype)
    return np.concatenate([spikes, pad])


def compare_layers(float_trace: Trace, fixed_trace: Trace, net: QNetwork,
                   steps: int) -> list[LayerAgreement]:
    """Compare every layer over the ``steps`` float steps (fixed trace padded by the latency)."""
    result = []
    for layer in net.float_counterparts():
        off = layer.lag
        f_states, q_states = float_trace.layers[layer.name], fixed_trace.layers[layer.name]
        key = "spikes" if layer.neuron.spiking else None
        if key is None:  # non-spiking readout: compare the sign-free argmax later, skip here
            continue
        fs = np.asarray(f_states["spikes"][:steps]) > 0
        qs = np.asarray(q_states["spikes"][off:off + steps]) > 0
        equal = fs == qs
        counts_f = fs.sum(axis=0)
        counts_q = qs.sum(axis=0)
        first = None
        if not equal.all():
            t, b, *idx = (int(i) for i in np.argwhere(~equal)[0])
            scale = np.broadcast_to(layer.scale, layer.neuron.shape)[tuple(idx)]
            first = {"step": t, "sample": b, "neuron": idx,
                     "float_spike": int(fs[(t, b, *idx)]), "fixed_spike": int(qs[(t, b, *idx)]),
                     "float_v": float(np.asarray(f_states["v"])[(t, b, *idx)]),
                     "fixed_v": float(q_states["v"][(t + off, b, *idx)] / scale)}
        result.append(LayerAgreement(
            name=layer.name, offset=off, spike_agreement=float(equal.mean()),
            float_spikes=int(counts_f.sum()), fixed_spikes=int(counts_q.sum()),
            rate_error=float(np.abs(counts_f - counts_q.astype(np.int64)).mean()),
            first_divergence=first))
    return result


def predictions(trace: Trace, steps: int | None = None, offset: int = 0,
                scale=1.0) -> np.ndarray:
    """Class per sample: argmax over output neurons of the summed output (spike counts, or the
    membrane of a non-spiking readout; ``scale`` turns integer membranes into float units, which
    matters when every neuron has its own scale)."""
    out = np.asarray(trace.output, np.float64)
    if steps is not None:
        out = out[offset:offset + steps]
    out = out / np.asarray(scale, np.float64)
    return out.sum(axis=0).reshape(out.shape[1], -1).argmax(axis=1)


def traces_identical(a: Trace, b: Trace, keys=("spikes", "u", "v")) -> str | None:
    """None when every recorded state is equal, else a sentence naming the first mismatch.

    A layer, or one of ``keys``, recorded in one trace but not the other is a mismatch.
    """
    missing = [(n, "a" if n in b.layers else "b") for n in {**a.layers, **b.layers}
               if n not in a.layers or n not in b.layers]
    if missing:
        return f"layer {missing[0][0]!r} is missing from trace {missing[0][1]}"
    for name, states in a.layers.items():
        for key in keys:
            if (key in states) != (key in b.layers[name]):
                return f"layer {name!r} {key}: recorded in only one trace"
            if key not in states:
                continue
            x, y = np.asarray(states[key]), np.asarray(b.layers[name][key])
            if x.shape != y.shape:
                return f"layer {name} {key}: shapes {x.shape} vs {y.shape}"
            diff = np.argwhere(x != y)
            if len(diff):
                t, s, *idx = (int(i) for i in diff[0])
                return (f"layer {name} {key}: first mismatch at step {t}, sample {s}, neuron "
                        f"{idx}: {x[tuple(diff[0])]} vs {y[tuple(diff[0])]} "
                        f"({len(diff)} entries differ)")
    return None
