"""TinyCore's step loop: runs a :class:`~snn_tinycore.program.Program` one time step at a time.

Nothing here re-invents arithmetic. The neuron update, the shift and wrap of each projection's
sum and the summation of a population's inputs are :mod:`snn_compile.datapath.step` on
:class:`snn_compile.datapath.numpy_ops.NumpyOps` (the rule table, defined once). The engine
only does what is TinyCore's own: the CSR weight tables and the spike ring buffers.

Each step, for each population in evaluation order::

    x_k  = ring[source_k][(t - delay_k) mod depth]     (zeros before the first delay_k steps)
    acc_k = CSR_k . x_k                                (int64, wrapping like the datapath)
    c_k  = contribution(acc_k, weight_exp_k, acc_bits_k)
    a    = synaptic_input(c_1..c_K, input_bias, dense_bits)
    s, u, v = neuron_step(config, registers, u, v, a)
    ring[population][t mod depth] = s
"""

from __future__ import annotations

import numpy as np

from snn_compile.datapath.numpy_ops import NumpyOps
from snn_compile.datapath.step import (
    NeuronConfig, NeuronParams, contribution, neuron_step, synaptic_input,
)
from snn_compile.ir.fixed import QInput
from snn_compile.trace import Trace

from .program import Program

O = NumpyOps()


def csr_product(indptr, indices, weights, x: np.ndarray, n_out: int) -> np.ndarray:
    """``acc[b, i] = sum_k weights[k] * x[b, indices[k]]`` over row ``i``'s entries, for ``x``
    [B, n_in]; int64 sums wrap modulo 2**64 like every datapath intermediate."""
    if weights.size == 0:
        return np.zeros((x.shape[0], n_out), np.int64)
    terms = O.mul(x[:, indices], weights)
    running = np.zeros((x.shape[0], weights.size + 1), np.int64)
    np.cumsum(terms, axis=1, out=running[:, 1:])
    return O.sub(running[:, indptr[1:]], running[:, indptr[:-1]])


def run_program(program: Program, spikes: np.ndarray) -> Trace:
    """Run ``program`` on ``spikes`` [T, B, *input_shape]; spikes, u and v of every population."""
    head, tab = program.header, program.tables
    inp = head["input"]
    x = QInput(**inp["format"]).encode(spikes)  # the input format's own definition
    steps, batch = x.shape[:2]
    pops, projs = head["populations"], head["projections"]

    rings = [np.zeros((p["ring"], batch, p["size"]), np.int64) for p in pops]
    rings.append(np.zeros((inp["ring"], batch, inp["size"]), np.int64))  # rings[-1]: input
    configs = [NeuronConfig(**p["neuron"]) for p in pops]
    params = [NeuronParams(m_u=tab[f"pop{i}/decay_u"], m_v=tab[f"pop{i}/decay_v"],
                           threshold=tab[f"pop{i}/threshold"], bias=tab[f"pop{i}/bias"],
                           v_floor=tab.get(f"pop{i}/v_floor")) for i in range(len(pops))]
    biases = [tab.get(f"pop{i}/input_bias") for i in range(len(pops))]
    synapses = [[(projs[j]["source"], projs[j]["delay"], projs[j]["weight_exp"],
                  projs[j]["acc_bits"], tab[f"proj{j}/indptr"], tab[f"proj{j}/indices"],
                  tab[f"proj{j}/weights"]) for j in p["inputs"]] for p in pops]

    u = [np.zeros((batch, p["size"]), np.int64) for p in pops]
    v = [np.zeros((batch, p["size"]), np.int64) for p in pops]
    record = [{"spikes": np.zeros((steps, batch, p["size"]), np.uint8),
               "u": np.zeros((steps, batch, p["size"]), np.int64),
               "v": np.zeros((steps, batch, p["size"]), np.int64)} for p in pops]
    for t in range(steps):
        rings[-1][t % inp["ring"]] = x[t]
        for i, pop in enumerate(pops):
            parts = []
            for source, delay, exp, bits, indptr, indices, weights in synapses[i]:
                ring = rings[source]
                acc = csr_product(indptr, indices, weights, ring[(t - delay) % len(ring)],
                                  pop["size"])
                parts.append(contribution(O, acc, exp, bits))
            a = synaptic_input(O, parts, biases[i], head["dense_bits"])
            s, u[i], v[i] = neuron_step(O, configs[i], params[i], u[i], v[i], a)
            fired = 0 if s is None else O.as_int(s)  # a non-spiking readout never fires
            rings[i][t % pop["ring"]] = fired
            record[i]["spikes"][t] = fired
            record[i]["u"][t] = u[i]
            record[i]["v"][t] = v[i]

    layers = {p["name"]: {key: arr.reshape(steps, batch, *p["shape"])
                          for key, arr in rec.items()} for p, rec in zip(pops, record)}
    out = pops[head["output"]]
    key = "spikes" if out["neuron"]["spiking"] else "v"
    return Trace(output=layers[out["name"]][key], layers=layers)
