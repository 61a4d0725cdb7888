"""The executable specification: a deliberately simple executor of a QNetwork.

One time step at a time, one population at a time in evaluation order, every value a Python
integer (:mod:`.exact`), every product written out as sums of products. It is slow and has no
shortcuts: the fast emulator (:mod:`snn_compile.emulator`) and every backend are tested against
it. It records exactly what the emulator records (spikes, u, v of every population).
"""

from __future__ import annotations

import numpy as np

from ..ir.fixed import QNetwork, QProjection
from ..trace import Trace
from .exact import ExactOps, as_exact
from .step import (
    NeuronConfig, NeuronParams, contribution, neuron_step, spike_dtype, synaptic_input,
)

O = ExactOps()


def exact_product(proj: QProjection, x, source_shape) -> np.ndarray:
    """``acc = W (*) x`` for ``x`` an object array [B, n_source] of Python ints."""
    w = as_exact(proj.weight)
    if proj.kind == "dense":
        return x.dot(w.T)
    if proj.kind == "elementwise":
        return x * np.broadcast_to(w, source_shape).reshape(-1)
    return _exact_conv(proj, x, w)


def _exact_conv(proj: QProjection, x, w) -> np.ndarray:
    geo = proj.conv
    c, h, wd = geo.in_shape
    co, cg, kh, kw = w.shape
    (sh, sw), (ph, pw), (dh, dw), g = geo.stride, geo.padding, geo.dilation, geo.groups
    _, oh, ow = geo.conv_shape(w.shape)
    batch = x.shape[0]
    padded = np.zeros((batch, c, h + 2 * ph, wd + 2 * pw), dtype=object)
    padded[:, :, ph:ph + h, pw:pw + wd] = x.reshape(batch, c, h, wd)
    out = np.zeros((batch, co, oh, ow), dtype=object)
    per_group = co // g
    for o in range(co):
        group = o // per_group
        for ci in range(cg):
            for p in range(kh):
                for q in range(kw):
                    rows = slice(p * dh, p * dh + sh * (oh - 1) + 1, sh)
                    cols = slice(q * dw, q * dw + sw * (ow - 1) + 1, sw)
                    out[:, o] += w[o, ci, p, q] * padded[:, group * cg + ci, rows, cols]
    if geo.max_pool is not None:
        (pkh, pkw), (psh, psw) = geo.max_pool
        poh, pow_ = (oh - pkh) // psh + 1, (ow - pkw) // psw + 1
        pooled = None
        for p in range(pkh):
            for q in range(pkw):
                window = out[:, :, p:p + psh * (poh - 1) + 1:psh, q:q + psw * (pow_ - 1) + 1:psw]
                pooled = window if pooled is None else np.maximum(pooled, window)
        out = pooled
    return out.reshape(batch, -1)


def run_reference(net: QNetwork, spikes) -> Trace:
    """Run ``net`` on ``spikes`` [T, B, *input_shape] by the specification."""
    x = as_exact(net.input.encode(spikes))
    steps, batch = x.shape[:2]
    dense_bits = net.target.accumulator.dense.bits
    configs = {p.name: NeuronConfig.of(net.target, p.neuron, optimise=False)
               for p in net.populations}
    params = {p.name: NeuronParams.of(O, p.neuron, p.size) for p in net.populations}
    u = {p.name: np.zeros((batch, p.size), dtype=object) for p in net.populations}
    v = {p.name: np.zeros((batch, p.size), dtype=object) for p in net.populations}
    spikes_of = {net.input.name: [x[t] for t in range(steps)]}
    spikes_of.update({p.name: [] for p in net.populations})
    rec = {p.name: {"spikes": [], "u": [], "v": []} for p in net.populations}
    for t in range(steps):
        for name in net.order:
            pop = net.population(name)
            parts = []
            for proj in net.incoming(name):
                if t < proj.delay:
                    source = np.zeros((batch, int(np.prod(net.shape_of(proj.source)))),
                                      dtype=object)
                else:
                    source = spikes_of[proj.source][t - proj.delay]
                acc = exact_product(proj, source, net.shape_of(proj.source))
                parts.append(contribution(O, acc, proj.weight_exp,
                                          proj.accumulator(net.target).bits))
            bias = None if pop.input_bias is None else as_exact(
                np.broadcast_to(pop.input_bias, pop.shape).reshape(-1))
            a = synaptic_input(O, parts, bias, dense_bits)
            s, u[name], v[name] = neuron_step(O, configs[name], params[name], u[name],
                                              v[name], a)
            if s is None:
                s_int = np.zeros((batch, pop.size), dtype=object)
            else:
                s_int = s if configs[name].max_spikes > 1 else O.as_int(s)
            spikes_of[name].append(s_int)
            rec[name]["spikes"].append(s_int)
            rec[name]["u"].append(u[name])
            rec[name]["v"].append(v[name])
    layers = {}
    for pop in net.populations:
        shape = (steps, batch, *pop.shape)
        layers[pop.name] = {
            "spikes": _stack(rec[pop.name]["spikes"], shape).astype(spike_dtype(pop.neuron)),
            "u": _stack(rec[pop.name]["u"], shape),
            "v": _stack(rec[pop.name]["v"], shape),
        }
    out = net.output_population
    return Trace(output=layers[out.name]["spikes" if out.neuron.spiking else "v"], layers=layers)


def _stack(values: list, shape) -> np.ndarray:
    if not values:
        return np.zeros(shape, np.int64)
    return np.array(np.stack(values), dtype=np.int64).reshape(shape)
