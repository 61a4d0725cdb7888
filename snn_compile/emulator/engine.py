"""The bit-accurate emulator: runs a QNetwork with its target's exact integer arithmetic.

:func:`run_network` runs one of two engines that compute the same values in the same types:
``"native"`` (generated C kernels, :mod:`.native`) or ``"numpy"`` (this module), or picks one
(``"auto"``, the default: native where a C compiler works and the run is large enough to repay
building its kernels, see :func:`.native.auto_engine`).

The numpy engine: populations are evaluated group by group over the whole time window: a group is one population,
or the populations of a cycle (recurrence). The synaptic input a population receives from earlier
groups is computed for all T steps and B samples at once (one exact BLAS product per projection,
see ``synapse.py``, shifted in time by the projection's delay). Only the neuron update, and the
products inside a cycle, loop over time, vectorised over samples and neurons. The update is
:mod:`snn_compile.datapath.step` on numpy int64 (:mod:`snn_compile.datapath.numpy_ops`): the
datapath defined once in the rule table.

``record`` chooses what is kept: ``"all"`` (spikes, u and v of every population), ``"spikes"``
(every population's spikes), ``"output"`` (the output population only), or a collection of
population names (all states of those); see :mod:`.records`.
"""

from __future__ import annotations

import numpy as np

from ..datapath.numpy_ops import NUMPY as O
from ..datapath.step import (
    NeuronConfig, NeuronParams, contribution, current, membrane, spike_dtype, wrap,
)
from ..ir.fixed import QNetwork, QPopulation
from ..trace import Trace
from . import native
from .records import RECORDS, kept, state_dtypes  # noqa: F401 (RECORDS: the record choices)
from .synapse import product

ENGINES = ("auto", "native", "numpy")


def run_network(net: QNetwork, spikes: np.ndarray, *, record="all", engine: str = "auto",
                threads: int | None = None, out: Trace | None = None) -> Trace:
    """Run ``net`` on ``spikes`` [T, B, *input_shape]; return the recorded :class:`Trace`.

    ``engine``: ``"auto"``, ``"native"`` or ``"numpy"`` (see the module docstring); ``threads``:
    the native engine's threads (default: every CPU this process may use); ``out``: a trace of
    an earlier native run of ``net`` with the same ``record``, whose arrays this run may
    overwrite instead of allocating new ones.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, got {engine!r}")
    kept(net, net.output, record)  # validates record before any work
    if engine == "auto":
        engine = native.auto_engine(net, np.shape(spikes))
        if engine == "native":
            try:
                return native.program(net, record).run(spikes, threads=threads, out=out)
            except native.NativeUnavailable as exc:
                native.warn_fallback(str(exc))
                engine = "numpy"
    if engine == "native":
        return native.program(net, record).run(spikes, threads=threads, out=out)
    return run_numpy(net, spikes, record=record)


def run_numpy(net: QNetwork, spikes: np.ndarray, *, record="all") -> Trace:
    """The numpy engine (see the module docstring)."""
    x = net.input.encode(spikes)
    T, B = x.shape[:2]
    outputs = {net.input.name: x}  # spikes [T, B, n] of every evaluated population
    layers = {}
    for group in net.components:
        if len(group) == 1 and not net.is_cyclic(group):
            pop = net.population(group[0])
            states = {pop.name: run_population(net, pop, population_input(net, pop, outputs,
                                                                          T, B), record)}
        else:
            states = run_cycle(net, group, outputs, T, B, record)
        for name, st in states.items():
            outputs[name] = st["spikes"]
            keep = kept(net, name, record)
            if keep:
                shape = net.population(name).shape
                layers[name] = {k: st[k].reshape(T, B, *shape) for k in keep}
    out = net.output_population
    key = "spikes" if out.neuron.spiking else "v"
    return Trace(output=layers[out.name][key], layers=layers)


def _delayed_contribution(net: QNetwork, proj, source: np.ndarray, T: int, B: int):
    """``c`` [T, B, n] of one projection over the window: zero for the first ``delay`` steps."""
    target = net.population(proj.target)
    out = np.zeros((T, B, target.size), np.int64)
    d = proj.delay
    if T > d:
        flat = source[:T - d].reshape((T - d) * B, int(np.prod(net.shape_of(proj.source))))
        acc = product(proj, flat, net.shape_of(proj.source))
        c = contribution(O, acc, proj.weight_exp, proj.accumulator(net.target).bits)
        out[d:] = c.reshape(T - d, B, target.size)
    return out


def population_input(net: QNetwork, pop: QPopulation, outputs: dict, T: int, B: int,
                     skip=frozenset()):
    """``wrap_dense(sum of contributions + input_bias)`` [T, B, n] of the projections whose
    sources are known (all but those from populations in ``skip``)."""
    parts = [_delayed_contribution(net, proj, outputs[proj.source], T, B)
             for proj in net.incoming(pop.name) if proj.source not in skip]
    total = parts[0] if parts else np.zeros((T, B, pop.size), np.int64)
    for part in parts[1:]:
        total = O.add(total, part)
    if pop.input_bias is not None:
        total = O.add(total, np.broadcast_to(pop.input_bias, pop.shape).reshape(-1))
    return wrap(O, total, net.target.accumulator.dense.bits)


class _Population:
    """A population's configuration, constants and recording buffers for one run (u and v
    traces only where ``record`` keeps them; spikes always: later populations read them)."""

    def __init__(self, net: QNetwork, pop: QPopulation, T: int, B: int, record="all"):
        self.pop = pop
        self.cfg = NeuronConfig.of(net.target, pop.neuron)
        self.params = NeuronParams.of(O, pop.neuron, pop.size)
        n = pop.size
        u_type, v_type = state_dtypes(net, pop)
        self.u = np.zeros((B, n), np.int64)
        self.v = np.zeros((B, n), np.int64)
        self.out_s = np.zeros((T, B, n), spike_dtype(pop.neuron))
        keep = kept(net, pop.name, record)
        self.out_u = np.empty((T, B, n), u_type) if "u" in keep else None
        self.out_v = np.empty((T, B, n), v_type) if "v" in keep else None

    def step(self, t: int, u):
        s, self.v = membrane(O, self.cfg, self.params, self.v, u)
        self.u = u
        if s is not None:
            self.out_s[t] = s
        if self.out_u is not None:
            self.out_u[t] = u
        if self.out_v is not None:
            self.out_v[t] = self.v

    def states(self) -> dict:
        return {key: arr for key, arr in (("spikes", self.out_s), ("u", self.out_u),
                                          ("v", self.out_v)) if arr is not None}


def run_population(net: QNetwork, pop: QPopulation, a: np.ndarray, record="all") -> dict:
    """Step one population (outside any cycle) over time; ``a`` [T, B, n] is its input."""
    T, B = a.shape[:2]
    state = _Population(net, pop, T, B, record)
    cfg, p = state.cfg, state.params
    if not cfg.has_current:
        u_all = current(O, cfg, p, None, a)  # a function of the input only: all steps at once
        for t in range(T):
            state.step(t, u_all[t])
    else:
        for t in range(T):
            state.step(t, current(O, cfg, p, state.u, a[t]))
    return state.states()


def run_cycle(net: QNetwork, group: tuple[str, ...], outputs: dict, T: int, B: int,
              record="all") -> dict:
    """Step the populations of one cycle together, in evaluation order, every time step."""
    members = set(group)
    dense_bits = net.target.accumulator.dense.bits
    states = {name: _Population(net, net.population(name), T, B, record) for name in group}
    outside = {name: population_input(net, net.population(name), outputs, T, B, skip=members)
               for name in group}
    inside = {name: [(p, net.shape_of(p.source), p.accumulator(net.target).bits)
                     for p in net.incoming(name) if p.source in members] for name in group}
    for t in range(T):
        for name in group:
            state = states[name]
            a = outside[name][t]
            for proj, source_shape, bits in inside[name]:
                if t < proj.delay:
                    continue
                src = states[proj.source].out_s[t - proj.delay]
                acc = product(proj, src, source_shape)
                a = O.add(a, contribution(O, acc, proj.weight_exp, bits))
            a = wrap(O, a, dense_bits)
            state.step(t, current(O, state.cfg, state.params, state.u, a))
    return {name: st.states() for name, st in states.items()}
