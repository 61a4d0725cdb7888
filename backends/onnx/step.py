"""One time step of a :class:`~snn_compile.ir.fixed.QNetwork` as an int64 ONNX graph.

The graph is the equation block of :mod:`snn_compile.ir.fixed`, line by line, in the order the
emulator (``backends/emulator/engine.py``) evaluates it. Per layer ``L`` (``n`` neurons, values
flattened in C, H, W order) the step carries these states, all int64:

``L.u``, ``L.v``         [B, n]     current and voltage after the previous step
``L.delay``              [d, B, n]  synaptic delay line, ``d = synapse_delay + layer.delay``
                                    (only when d > 0): slot 0 is the oldest, ``a[t - d]``
``L.spike_history``      [R, B, n]  the layer's own spikes of the last ``R`` steps, for a
                                    recurrent synapse (``R = max(1, synapse_delay)``)

and records ``L.spikes`` (uint8 [B, n]); the records ``L.u``/``L.v`` are the ``.next`` states.
"""

from __future__ import annotations

import numpy as np

from snn_compile.errors import UnsupportedError
from snn_compile.ir.fixed import QConv, QLayer, QNetwork
from snn_compile.targets import Target

from .arith import OVERFLOW, ROUNDING, as_int, passes, shift_left, wrap
from .builder import BATCH, INT64, UINT8, GraphBuilder, StepGraph, Tensor, fifo_push, fifo_read
from .synapse import dense_product, synaptic_product


def build_step(net: QNetwork) -> StepGraph:
    """The one-step graph of ``net`` (input ``x``: int64 [B, n_in], the encoded input)."""
    _check_target(net.target)
    b = GraphBuilder()
    n_in = int(np.prod(net.input_shape))
    step = StepGraph(builder=b, x=Tensor("x", INT64, (BATCH, n_in)),
                     doc=f"one time step of a fixed-point SNN for target '{net.target.name}'")
    x = step.x.name
    for layer in net.layers:
        with b.scope(layer.name):
            x = _layer_step(step, layer, net.target, x)
    return step


def _check_target(target: Target) -> None:
    fmt = target.neuron
    for key, rule, table in (("u_overflow", fmt.u_overflow, OVERFLOW),
                             ("v_overflow", fmt.v_overflow, OVERFLOW),
                             ("decay_rounding", fmt.decay_rounding, ROUNDING)):
        if rule not in table:
            raise UnsupportedError("the ONNX backend has no lowering for this rule",
                                   value=f"neuron.{key} = {rule!r}",
                                   hint="add it to backends/onnx/arith.py")


def synapse_delay(layer: QLayer, target: Target) -> int:
    """Steps between a source spike and its feed-forward effect on ``layer``."""
    return target.timing.synapse_delay + layer.delay


def recurrent_delay(target: Target) -> int:
    """Steps between a layer's spike and its recurrent effect (as the emulator does it)."""
    return max(1, target.timing.synapse_delay)


def _per_neuron(b: GraphBuilder, value: np.ndarray, shape, hint: str) -> str:
    """A scalar constant, or the value broadcast to the population and flattened."""
    value = np.asarray(value)
    if value.ndim == 0:
        return b.const(value, hint=hint)
    return b.const(np.broadcast_to(value, shape).reshape(-1), hint=hint)


def _feedforward(step: StepGraph, layer: QLayer, target: Target, x: str) -> str:
    """``a``: product, exponent, accumulator wrap, synaptic delay, input bias."""
    b, syn = step.builder, layer.synapse
    n = layer.neuron.size
    bits = target.accumulator.conv_bits if isinstance(syn, QConv) else \
        target.accumulator.dense_bits
    a = wrap(b, shift_left(b, synaptic_product(b, syn, x), syn.weight_exp), bits)
    delay = synapse_delay(layer, target)
    if delay:
        name = f"{layer.name}.delay"
        fifo_push(step, name, a)
        a = fifo_read(step, name, INT64, (delay, BATCH, n), doc=f"synaptic delay ({delay} steps)")
    if layer.input_bias is not None:
        bias = _per_neuron(b, np.broadcast_to(layer.input_bias, layer.neuron.shape),
                           layer.neuron.shape, "input_bias")
        a = wrap(b, b.op("Add", a, bias), target.accumulator.dense_bits)
    return a


def _recurrent(step: StepGraph, layer: QLayer, target: Target, a: str) -> str:
    """Add the recurrent input from the spike history state ``L.spike_history``."""
    b, rec, n = step.builder, layer.recurrent, layer.neuron.size
    past = fifo_read(step, f"{layer.name}.spike_history", INT64,
                     (recurrent_delay(target), BATCH, n),
                     doc="own spikes of the last steps (recurrent synapse)")
    bits = target.accumulator.dense_bits
    back = wrap(b, shift_left(b, dense_product(b, rec, past), rec.weight_exp), bits)
    return wrap(b, b.op("Add", a, back), bits)


def _layer_step(step: StepGraph, layer: QLayer, target: Target, x: str) -> str:
    """Append one layer: synaptic input, neuron update, states and records.

    Returns the layer's spikes as int64 0/1 (the next layer's input).
    """
    b, n, name = step.builder, layer.neuron.size, layer.name
    a = _feedforward(step, layer, target, x)
    if layer.recurrent is not None:
        a = _recurrent(step, layer, target, a)
    u_prev = step.add_state(f"{name}.u", INT64, (BATCH, n), doc="synaptic current")
    v_prev = step.add_state(f"{name}.v", INT64, (BATCH, n), doc="membrane voltage")
    s, u, v = _neuron_update(b, layer, target, a, u_prev, v_prev)
    step.set_next(u_prev, u)
    step.set_next(v_prev, v)
    if layer.recurrent is not None:
        fifo_push(step, f"{name}.spike_history", s)
    spikes = b.op("Cast", s, to=UINT8, out=f"{name}.spikes")
    step.records[f"{name}.spikes"] = Tensor(spikes, UINT8, (BATCH, n))
    step.records[f"{name}.u"] = Tensor(f"{u_prev}.next", INT64, (BATCH, n))
    step.records[f"{name}.v"] = Tensor(f"{v_prev}.next", INT64, (BATCH, n))
    return s


def _neuron_update(b: GraphBuilder, layer: QLayer, target: Target, a: str, u: str,
                   v: str) -> tuple[str, str, str]:
    """The neuron lines of the fixed-point equations: returns ``(s, u[t], v[t])``, int64."""
    fmt, nrn = target.neuron, layer.neuron
    ovf_u, ovf_v = OVERFLOW[fmt.u_overflow], OVERFLOW[fmt.v_overflow]
    rnd = ROUNDING[fmt.decay_rounding]
    ib, k, shape = target.accumulator.intermediate_bits, fmt.decay_bits, nrn.shape
    thr = _per_neuron(b, nrn.threshold, shape, "threshold")

    # r = test(v[t-1], thr): the reset decided from the stored voltage
    r_flag = passes(b, v, thr, nrn.spike_test) if nrn.reset != "none" else None
    r = as_int(b, r_flag) if r_flag is not None else b.const(0)
    if nrn.reset == "zero" and not nrn.reset_discards_input:
        v = b.op("Where", r_flag, b.const(0), v)

    act = wrap(b, shift_left(b, a, fmt.activation_shift), ib)
    if nrn.has_current:
        m_u = _per_neuron(b, nrn.decay_u, shape, "decay_u")
        leak_u = wrap(b, rnd(b, b.op("Mul", u, m_u), k), ib)
        act = wrap(b, b.op("Add", leak_u, act), ib)
    u = ovf_u(b, act, fmt.u_bits)

    m_v = _per_neuron(b, nrn.decay_v, shape, "decay_v")
    y = b.op("Add", wrap(b, rnd(b, b.op("Mul", v, m_v), k), ib), u)
    if np.any(nrn.bias):
        y = b.op("Add", y, _per_neuron(b, nrn.bias, shape, "bias"))
    if nrn.reset == "subtract":
        y = b.op("Sub", y, b.op("Mul", r, thr))
    v = ovf_v(b, wrap(b, y, ib), fmt.v_bits)
    if nrn.reset == "zero" and nrn.reset_discards_input:
        v = b.op("Where", r_flag, b.const(0), v)

    s = as_int(b, passes(b, v, thr, nrn.spike_test)) if nrn.spiking else \
        b.op("Mul", v, b.const(0))
    if nrn.reset_timing == "same_step" and nrn.reset != "none":
        change = b.op("Sub", s, r)
        if nrn.reset == "subtract":
            v = ovf_v(b, wrap(b, b.op("Sub", v, b.op("Mul", change, thr)), ib), fmt.v_bits)
        else:
            v = b.op("Sub", v, b.op("Mul", change, v))
    return s, u, v
