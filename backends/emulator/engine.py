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
from .synapse import dense_product, product_bound, synaptic_product


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
                                  hint="quantize with graded sample input (--calibration or "
                                       "--data) to run real-valued input")
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
        x = states["spikes"]  # uint8 0/1: the products take any integer type
    last = net.output_layer
    output = layers[last.name]["spikes" if last.neuron.spiking else "v"]
    return Trace(output=output, layers=layers)


def feedforward_input(layer: QLayer, x: np.ndarray, target: Target, delay: int) -> np.ndarray:
    """Synaptic input ``a`` [T, B, n] of one layer: product, exponent, wrap, delay, bias.

    The product of the first ``T - delay`` steps is written straight into its delayed place, as
    int32 when its bound (times the exponent's gain) proves that nothing can leave int32.
    """
    T, B, _ = x.shape
    syn = layer.synapse
    n_out = layer.neuron.size
    bits = target.accumulator.conv_bits if hasattr(syn, "in_shape") else \
        target.accumulator.dense_bits
    gain = 1 << max(syn.weight_exp, 0)
    small = product_bound(syn, x) * gain < 1 << 31
    a = np.zeros((T, B, n_out), np.int32 if small else np.int64)
    if T > delay:
        synaptic_product(syn, x[:T - delay].reshape((T - delay) * B, syn.in_size),
                         out=a[delay:].reshape((T - delay) * B, n_out))
    a = wrap(shift_left(a, syn.weight_exp), bits)
    if layer.input_bias is not None:
        bias = np.broadcast_to(layer.input_bias, layer.neuron.shape).reshape(-1)
        a = wrap(a + bias, target.accumulator.dense_bits)
    return a


def _datapath(ib: int, thr: np.ndarray, exact_in_int32: bool):
    """Integer type of the neuron datapath and ``wrap(x, ib)`` for it, decided once per layer.

    numpy's int32/int64 arithmetic wraps modulo 2^32/2^64, which *is* ``wrap(x, ib)`` for those
    widths: the explicit wraps become free (a cast, for int64 products). int32 is used when the
    thresholds fit (the spike test compares with them) and every expression that the equations do
    not wrap stays in range (``exact_in_int32``).
    """
    if ib == 32 and exact_in_int32 and thr.min(initial=0) >= -(1 << 31) \
            and thr.max(initial=0) < (1 << 31):
        return np.int32, lambda x: x.astype(np.int32, copy=False)
    if ib >= 64:
        return np.int64, lambda x: x
    return np.int64, lambda x: wrap(x, ib)


def run_neurons(layer: QLayer, a: np.ndarray, target: Target) -> dict[str, np.ndarray]:
    """Step the neuron population over time; ``a`` is the feed-forward input [T, B, n].

    Everything that does not depend on the state is computed for all steps at once; branches on
    the layer's fixed parameters are taken once, outside the time loop.
    """
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
    # A same-step zero reset leaves v = 0 after a spike and v failing the test otherwise, so the
    # reset flag r (the test on the previous v) stays 0 unless v = 0 itself passes the test.
    no_reset_flag = n.reset == "none" or (
        zero and same_step and n.spiking and not passes(np.int64(0), thr, n.spike_test).any())
    # v' - (s - r) * v' is the one unwrapped expression; it can leave int32 only when r = 1
    dt, wrap_ib = _datapath(ib, thr, exact_in_int32=no_reset_flag or not (zero and same_step))
    thr, bias = thr.astype(dt), bias.astype(dt)  # the bias wraps like every term of y
    a = a.astype(np.int64, copy=False) if dt == np.int64 else a  # shifts must not wrap at 32
    has_bias = bool(bias.any())

    def ovf_state(x, ovf, bits):
        return ovf(x, bits).astype(dt, copy=False)

    if np.all(m_v == 1 << k):
        def decay_v(v):  # no leak: rnd(v * 2^k, k) == v for every rounding
            return wrap_ib(v)
    else:
        def decay_v(v):
            return wrap_ib(rnd(v * m_v, k))

    rec = layer.recurrent
    rec_delay = max(1, target.timing.synapse_delay)
    dense_bits = target.accumulator.dense_bits

    def activation(a_t):
        return wrap_ib(a_t << fmt.activation_shift if fmt.activation_shift else a_t)

    act_all = activation(a) if rec is None else None
    # without current memory and recurrence, u is a function of the input only
    u_all = ovf_state(act_all, ovf_u, fmt.u_bits) if rec is None and not n.has_current else None

    u = np.zeros((B, size), dt)
    v = np.zeros((B, size), dt)
    no_spike = np.zeros((B, size), bool)
    r = no_spike
    out_s = np.zeros((T, B, size), bool)
    out_u = np.empty((T, B, size), dt) if u_all is None else u_all
    out_v = np.empty((T, B, size), dt)

    for t in range(T):
        if rec is None:
            act = act_all[t]
        else:
            a_t = a[t]
            if t >= rec_delay:
                back = dense_product(rec, out_s[t - rec_delay].astype(np.int64))
                a_t = wrap(a_t + wrap(shift_left(back, rec.weight_exp), dense_bits), dense_bits)
            act = activation(a_t)
        if not no_reset_flag:
            r = passes(v, thr, n.spike_test)
            if zero_keep_input:
                v = v * ~r
        if u_all is not None:
            u = u_all[t]
        elif n.has_current:
            u = ovf_state(wrap_ib(wrap_ib(rnd(u * m_u, k)) + act), ovf_u, fmt.u_bits)
        else:
            u = ovf_state(act, ovf_u, fmt.u_bits)
        y = decay_v(v) + u
        if has_bias:
            y += bias
        if subtract:
            y -= r * thr
        v = ovf_state(wrap_ib(y), ovf_v, fmt.v_bits)
        if zero and n.reset_discards_input:
            v = v * ~r
        s = passes(v, thr, n.spike_test) if n.spiking else no_spike
        if same_step and subtract:
            v = ovf_state(wrap_ib(v - (s.astype(dt) - r) * thr), ovf_v, fmt.v_bits)
        elif same_step and zero:
            if no_reset_flag:
                v = v * ~s  # v' - s * v' (a product: much faster than masked assignment)
            else:
                v = v - (s.astype(dt) - r) * v
        out_s[t], out_v[t] = s, v
        if u_all is None:
            out_u[t] = u
    return {"spikes": out_s.astype(np.uint8), "u": out_u, "v": out_v}
