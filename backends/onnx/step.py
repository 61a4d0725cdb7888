"""One time step of a :class:`~snn_compile.ir.fixed.QNetwork` as an int64 ONNX graph.

The graph is the equation block of :mod:`snn_compile.ir.fixed`: populations in the network's
evaluation order, each fed by the sum of its projections, its neuron update built by the generic
step of :mod:`snn_compile.datapath.step` through the ONNX family of the rule table
(:class:`.arith.OnnxOps`). Per population ``P`` (``n`` neurons, values flattened in C, H, W order)
the step carries these states, all int64:

``P.u``, ``P.v``          [B, n]     current and voltage after the previous step
``S.history``             [D, B, n]  the spikes of source ``S`` (the input or a population) of the
                                     last ``D`` steps, oldest first, where ``D`` is the longest
                                     delay of a projection leaving ``S`` (only when ``D > 0``)

A projection with delay ``d > 0`` reads slot ``D - d`` of its source's history; with ``d = 0``
the source's value of this step (the source comes earlier in the evaluation order). The step
records ``P.spikes`` (uint8 0/1 or spike counts) and ``P.u``/``P.v`` (the ``.next`` states).
"""

from __future__ import annotations

import numpy as np

from snn_compile.datapath.step import (
    NeuronConfig, NeuronParams, contribution, current, membrane, synaptic_input,
)
from snn_compile.ir.fixed import QNetwork

from .arith import OnnxOps
from .builder import BATCH, INT64, UINT8, GraphBuilder, StepGraph, Tensor, fifo_push
from .synapse import product


def build_step(net: QNetwork) -> StepGraph:
    """The one-step graph of ``net`` (input ``x``: int64 [B, n_in], the encoded input)."""
    b = GraphBuilder()
    step = StepGraph(builder=b, x=Tensor("x", INT64, (BATCH, net.input.size)),
                     doc=f"one time step of a fixed-point SNN for target '{net.target.name}'")
    depth = _history_depths(net)
    history = {src: step.add_state(f"{src}.history", INT64, (d, BATCH, _size(net, src)),
                                   doc=f"spikes of the last {d} steps, oldest first")
               for src, d in depth.items()}
    now = {net.input.name: step.x.name}
    for pop in net.in_order():
        with b.scope(pop.name):
            now[pop.name] = _population(step, net, pop, now, history, depth)
    for src, state in history.items():
        with b.scope(state):
            fifo_push(step, state, now[src])
    return step


def _size(net: QNetwork, name: str) -> int:
    return int(np.prod(net.shape_of(name)))


def _history_depths(net: QNetwork) -> dict[str, int]:
    depth: dict[str, int] = {}
    for proj in net.projections:
        if proj.delay:
            depth[proj.source] = max(depth.get(proj.source, 0), proj.delay)
    return dict(sorted(depth.items()))


def _source(b: GraphBuilder, proj, now: dict, history: dict, depth: dict) -> str:
    if proj.delay == 0:
        return now[proj.source]
    slot = depth[proj.source] - proj.delay
    return b.op("Gather", history[proj.source], b.const(slot), axis=0)


def _population(step: StepGraph, net: QNetwork, pop, now, history, depth) -> str:
    """Append one population: synaptic input, neuron update, states and records; returns its
    spikes (int64 0/1 or counts), the input of its projections."""
    b, o, n = step.builder, OnnxOps(step.builder), pop.size
    target = net.target
    parts = []
    for proj in net.incoming(pop.name):
        with b.scope(proj.name):
            acc = product(b, proj, _source(b, proj, now, history, depth), pop.shape)
            parts.append(contribution(o, acc, proj.weight_exp,
                                      proj.accumulator(target).bits))
    bias = None
    if pop.input_bias is not None:
        bias = b.const(np.broadcast_to(pop.input_bias, pop.shape).reshape(-1),
                       hint="input_bias")
    a = synaptic_input(o, parts, bias, target.accumulator.dense.bits)
    cfg = NeuronConfig.of(target, pop.neuron)
    p = NeuronParams.of(o, pop.neuron, pop.size)
    u_prev = step.add_state(f"{pop.name}.u", INT64, (BATCH, n), doc="synaptic current")
    v_prev = step.add_state(f"{pop.name}.v", INT64, (BATCH, n), doc="membrane voltage")
    u = current(o, cfg, p, u_prev, a)
    s, v = membrane(o, cfg, p, v_prev, u)
    step.set_next(u_prev, u)
    step.set_next(v_prev, v)
    if s is None:  # a non-spiking readout
        s_int = b.op("Mul", v, b.const(0))
    else:
        s_int = s if cfg.max_spikes > 1 else o.as_int(s)
    kind = UINT8 if pop.neuron.max_spikes <= 255 else INT64
    spikes = b.op("Cast", s_int, to=kind, out=f"{pop.name}.spikes")
    step.records[f"{pop.name}.spikes"] = Tensor(spikes, kind, (BATCH, n))
    step.records[f"{pop.name}.u"] = Tensor(f"{u_prev}.next", INT64, (BATCH, n))
    step.records[f"{pop.name}.v"] = Tensor(f"{v_prev}.next", INT64, (BATCH, n))
    return s_int
