"""The bit-accurate emulator: runs a QNetwork with its target's exact integer arithmetic.

Layers are evaluated one after the other over the whole time window: the feed-forward synaptic
input of a layer for all T steps and B samples is one exact BLAS product (see ``synapse.py``),
shifted in time by the synaptic delay; only the neuron update (and a recurrent product, if any)
loops over time, vectorised over samples and neurons. The update is the equation block of
:mod:`snn_compile.ir.fixed`, line by line.
"""

from __future__ import annotations

import numpy as np

from snn_compile.errors import SnnCompileError
from snn_compile.ir.fixed import QLayer, QNetwork
from snn_compile.targets import Target
from snn_compile.trace import Trace

from .arith import OVERFLOW, ROUNDING, passes, shift_left, wrap
from .synapse import dense_product, synaptic_product


def encode_input(net: QNetwork, spikes: np.ndarray) -> np.ndarray:
    """Input [T, B, *input_shape] as integers [T, B, n_in]; binary or graded per the network."""
    spikes = np.asarray(spikes)
    if tuple(spikes.shape[2:]) != net.input_shape:
        raise SnnCompileError("input shape mismatch", value=f"{spikes.shape[2:]}",
                              hint=f"expected [T, B, {', '.join(map(str, net.input_shape))}]")
    if not np.all(np.isfinite(spikes)):
        raise SnnCompileError("input contains NaN or Inf values")
    flat = spikes.reshape(spikes.shape[0], spikes.shape[1], int(np.prod(net.input_shape)))
    if net.input_bits == 1:
        if not np.isin(flat, (0, 1)).all():
            raise SnnCompileError("input is not binary spikes (0/1)",
                                  hint="quantize the network with graded input for real values")
        return flat.astype(np.int64)
    ints = np.rint(flat * net.input_scale).astype(np.int64)
    limit = 1 << (net.input_bits - 1)
    if ints.min(initial=0) < -limit or ints.max(initial=0) >= limit:
        raise SnnCompileError("graded input exceeds the input format",
                              value=f"range [{ints.min()}, {ints.max()}]",
                              hint=f"inputs must lie within +-{limit / net.input_scale:g}")
    return ints


def run_network(net: QNetwork, spikes: np.ndarray) -> Trace:
    """Run ``net`` on ``spikes`` [T, B, *input_shape]; record spikes, u and v of every layer."""
    x = encode_input(net, spikes)
    T, B = x.shape[:2]
    layers = {}
    for layer in net.layers:
        delay = net.target.timing.synapse_delay + layer.delay
        a = feedforward_input(layer, x, net.target, delay)
        states = run_neurons(layer, a, net.target)
        layers[layer.name] = {k: v.reshape(T, B, *layer.neuron.shape) for k, v in states.items()}
        x = states["spikes"].astype(np.int64)
    last = net.output_layer
    output = layers[last.name]["spikes" if last.neuron.spiking else "v"]
    return Trace(output=output, layers=layers)


def feedforward_input(layer: QLayer, x: np.ndarray, target: Target, delay: int) -> np.ndarray:
    """Synaptic input ``a`` [T, B, n] of one layer: product, exponent, wrap, delay, bias."""
    T, B, _ = x.shape
    syn = layer.synapse
    acc = synaptic_product(syn, x.reshape(T * B, syn.in_size))
    bits = target.accumulator.conv_bits if hasattr(syn, "in_shape") else \
        target.accumulator.dense_bits
    a = wrap(shift_left(acc, syn.weight_exp), bits).reshape(T, B, acc.shape[1])
    if delay:
        a = np.concatenate([np.zeros((min(delay, T), B, a.shape[2]), np.int64), a[:T - delay]])
    if layer.input_bias is not None:
        bias = np.broadcast_to(layer.input_bias, layer.neuron.shape).reshape(-1)
        a = wrap(a + bias, target.accumulator.dense_bits)
    return a


def run_neurons(layer: QLayer, a: np.ndarray, target: Target) -> dict[str, np.ndarray]:
    """Step the neuron population over time; ``a`` is the feed-forward input [T, B, n]."""
    fmt, n = target.neuron, layer.neuron
    T, B, size = a.shape
    ovf_u = OVERFLOW[fmt.u_overflow]
    ovf_v = OVERFLOW[fmt.v_overflow]
    rnd = ROUNDING[fmt.decay_rounding]
    ib, k = target.accumulator.intermediate_bits, fmt.decay_bits

    def per_neuron(arr):
        return np.broadcast_to(arr, n.shape).reshape(-1)

    m_u, m_v = per_neuron(n.decay_u), per_neuron(n.decay_v)
    thr, bias = per_neuron(n.threshold), per_neuron(n.bias)
    subtract, zero = n.reset == "subtract", n.reset == "zero"
    zero_keep_input = zero and not n.reset_discards_input
    same_step = n.reset_timing == "same_step"

    rec = layer.recurrent
    rec_delay = max(1, target.timing.synapse_delay)
    dense_bits = target.accumulator.dense_bits

    u = np.zeros((B, size), np.int64)
    v = np.zeros((B, size), np.int64)
    no_spike = np.zeros((B, size), bool)
    out_s = np.zeros((T, B, size), bool)
    out_u = np.empty((T, B, size), np.int64)
    out_v = np.empty((T, B, size), np.int64)

    for t in range(T):
        a_t = a[t]
        if rec is not None and t >= rec_delay:
            back = dense_product(rec, out_s[t - rec_delay].astype(np.int64))
            a_t = wrap(a_t + wrap(shift_left(back, rec.weight_exp), dense_bits), dense_bits)
        r = passes(v, thr, n.spike_test) if n.reset != "none" else no_spike
        if zero_keep_input:
            v = np.where(r, 0, v)
        act = wrap(a_t << fmt.activation_shift, ib)
        if n.has_current:
            act = wrap(wrap(rnd(u * m_u, k), ib) + act, ib)
        u = ovf_u(act, fmt.u_bits)
        y = wrap(rnd(v * m_v, k), ib) + u + bias
        if subtract:
            y = y - r * thr
        v = ovf_v(wrap(y, ib), fmt.v_bits)
        if zero and n.reset_discards_input:
            v = np.where(r, 0, v)
        s = passes(v, thr, n.spike_test) if n.spiking else no_spike
        if same_step and subtract:
            v = ovf_v(wrap(v - (s.astype(np.int64) - r) * thr, ib), fmt.v_bits)
        elif same_step and zero:
            v = v - (s.astype(np.int64) - r) * v
        out_s[t], out_u[t], out_v[t] = s, u, v
    return {"spikes": out_s.astype(np.uint8), "u": out_u, "v": out_v}
