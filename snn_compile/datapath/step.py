"""One time step of an integer population, written once for every executor family.

The functions here are the equation block of :mod:`snn_compile.ir.fixed`, line by line, on the
primitives of :mod:`.rules` (``o`` is an executor family: Python ints, numpy, torch or an ONNX
graph builder). What a population is (rule names, widths, feature switches) is a
:class:`NeuronConfig`; its per-neuron integers (decay multipliers, threshold, bias) are
:class:`NeuronParams` in the family's own value type.

Stages, so that an executor can vectorise what does not depend on the state::

    a    = synaptic_input(o, contributions, input_bias, dense_bits)
    u[t] = current(o, cfg, p, u[t-1], a)         # no state without current memory
    s, v = membrane(o, cfg, p, v[t-1], u[t])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .rules import RULES


def apply(o, kind: str, name: str, x, param):
    """Rule ``name`` of ``kind`` on ``x``: the family's specialisation if it has one, else the
    table's definition on the family's primitives."""
    special = getattr(o, "special", None)
    fn = special.get((kind, name)) if special else None
    if fn is not None:
        return fn(x, param)
    return RULES[kind][name].apply(o, x, param)


def wrap(o, x, bits: int):
    return apply(o, "overflow", "wrap", x, bits)


def shift_exponent(o, x, exp: int):
    """``x << exp``, or the floor shift ``x >> -exp`` for a negative exponent."""
    if exp > 0:
        return o.shl(x, exp)
    if exp < 0:
        return o.shr(x, -exp)
    return x


def contribution(o, acc, exp: int, bits: int):
    """One projection's share of the synaptic input: ``wrap_bits(acc << exp)``."""
    return wrap(o, shift_exponent(o, acc, exp), bits)


def synaptic_input(o, contributions: list, input_bias, dense_bits: int):
    """``a = wrap_dense(sum_k c_k + input_bias)`` (``input_bias`` may be None)."""
    total = contributions[0]
    for c in contributions[1:]:
        total = o.add(total, c)
    if input_bias is not None:
        total = o.add(total, input_bias)
    return wrap(o, total, dense_bits)


@dataclass(frozen=True)
class NeuronConfig:
    """The static datapath of one population."""

    u_overflow: str
    v_overflow: str
    rounding: str
    spike_test: str
    u_bits: int
    v_bits: int
    intermediate_bits: int
    decay_bits: int
    activation_shift: int
    reset: str
    same_step: bool
    discards_input: bool
    spiking: bool
    has_current: bool
    immediate: bool = False          # reset right after each spike: no reset flag r
    max_spikes: int = 1              # > 1: a multi-spike population (its output is a count)
    has_floor: bool = False          # a membrane floor v_floor
    leak_free: bool = False          # m_v == 2**decay_bits everywhere: the decay is the identity
    reset_flag_is_zero: bool = False  # proven: the reset flag r is always 0 (see of())

    @classmethod
    def of(cls, target, neuron, *, optimise: bool = True) -> "NeuronConfig":
        """The configuration of ``neuron`` (a QNeuron) on ``target``; ``optimise`` adds the
        two proven shortcuts (the reference executor runs without them)."""
        fmt = target.neuron
        k = fmt.decay_bits
        thr = np.asarray(neuron.threshold)
        zero_same = neuron.reset == "zero" and neuron.reset_timing in ("same_step", "immediate")
        # After a same-step zero reset the stored v is 0 or failed the test, so the reset flag
        # r = test(v[t-1], thr) stays 0 unless 0 itself passes the test.
        zero_passes = bool(np.any(thr < 0) if neuron.spike_test == ">" else np.any(thr <= 0))
        return cls(
            u_overflow=fmt.u_overflow, v_overflow=fmt.v_overflow, rounding=fmt.decay_rounding,
            spike_test=neuron.spike_test, u_bits=fmt.u.bits, v_bits=fmt.v.bits,
            intermediate_bits=target.accumulator.intermediate.bits, decay_bits=k,
            activation_shift=fmt.activation_shift, reset=neuron.reset,
            same_step=neuron.reset_timing in ("same_step", "immediate"),
            immediate=neuron.reset_timing == "immediate",
            discards_input=bool(neuron.reset_discards_input), spiking=bool(neuron.spiking),
            has_current=bool(neuron.has_current),
            max_spikes=int(neuron.max_spikes), has_floor=neuron.v_floor is not None,
            leak_free=optimise and bool(np.all(np.asarray(neuron.decay_v) == 1 << k)),
            reset_flag_is_zero=optimise and zero_same and neuron.spiking and not zero_passes)

    @property
    def uses_reset_flag(self) -> bool:
        return self.reset != "none" and not self.immediate and not self.reset_flag_is_zero


@dataclass(frozen=True)
class NeuronParams:
    """Per-neuron integers in an executor family's value type."""

    m_u: Any
    m_v: Any
    threshold: Any
    bias: Any
    has_bias: bool = True
    v_floor: Any = None

    @classmethod
    def of(cls, o, neuron, flat_size: int | None = None) -> "NeuronParams":
        """Constants of ``neuron`` for family ``o``: scalars stay scalars (per-layer registers),
        arrays are flattened to the population size."""
        def value(arr):
            arr = np.asarray(arr)
            if arr.ndim == 0 or flat_size is None:
                return o.const(arr)
            return o.const(np.broadcast_to(arr, neuron.shape).reshape(-1))
        return cls(m_u=value(neuron.decay_u), m_v=value(neuron.decay_v),
                   threshold=value(neuron.threshold), bias=value(neuron.bias),
                   has_bias=bool(np.any(np.asarray(neuron.bias))),
                   v_floor=None if neuron.v_floor is None else value(neuron.v_floor))


def spike_dtype(neuron):
    """The numpy type of a population's recorded spikes (uint8: 0/1 or counts up to 255)."""
    return np.uint8 if neuron.max_spikes <= 255 else np.int32


def spike_test(o, cfg: NeuronConfig, v, thr):
    return apply(o, "spike_test", cfg.spike_test, v, thr)


def current(o, cfg: NeuronConfig, p: NeuronParams, u_prev, a):
    """``u[t] = ovf_u(wrap_ib(wrap_ib(rnd(u[t-1] * m_u)) + wrap_ib(a << activation_shift)))``;
    without current memory ``u[t] = ovf_u(wrap_ib(a << activation_shift))`` (``u_prev`` unused)."""
    ib, k = cfg.intermediate_bits, cfg.decay_bits
    act = wrap(o, o.shl(a, cfg.activation_shift) if cfg.activation_shift else a, ib)
    if cfg.has_current:
        decayed = wrap(o, apply(o, "rounding", cfg.rounding, o.mul(u_prev, p.m_u), k), ib)
        act = wrap(o, o.add(decayed, act), ib)
    return apply(o, "overflow", cfg.u_overflow, act, cfg.u_bits)


def membrane(o, cfg: NeuronConfig, p: NeuronParams, v_prev, u):
    """``(s, v[t])`` from ``v[t-1]`` and ``u[t]``: reset flag, leak, bias, resets, spike test.

    ``s`` is the family's boolean spike value, or None for a non-spiking readout (no spikes).
    """
    ib, k, thr = cfg.intermediate_bits, cfg.decay_bits, p.threshold
    zero, subtract = cfg.reset == "zero", cfg.reset == "subtract"
    r = spike_test(o, cfg, v_prev, thr) if cfg.uses_reset_flag else None
    v0 = v_prev
    if zero and not cfg.discards_input and r is not None:
        v0 = o.where(r, o.const(0), v_prev)
    if cfg.leak_free:
        leak = wrap(o, v0, ib)  # rnd(v * 2**k >> k) == v for every rounding
    else:
        leak = wrap(o, apply(o, "rounding", cfg.rounding, o.mul(v0, p.m_v), k), ib)
    y = o.add(leak, u)
    if p.has_bias:
        y = o.add(y, p.bias)
    if subtract and r is not None:
        y = o.sub(y, o.mul(o.as_int(r), thr))
    v = apply(o, "overflow", cfg.v_overflow, wrap(o, y, ib), cfg.v_bits)
    if zero and cfg.discards_input and r is not None:
        v = o.where(r, o.const(0), v)
    if cfg.spiking and cfg.max_spikes > 1:
        return _multi_spike(o, cfg, p, v)
    s = spike_test(o, cfg, v, thr) if cfg.spiking else None
    if s is not None and hasattr(o, "spikes"):  # a family's gradient hook (torch: surrogate)
        s = o.spikes(s, v, thr)
    if cfg.same_step and (subtract or zero) and (s is not None or r is not None):
        if r is None:
            change = o.as_int(s)
        elif s is None:  # a non-spiking population: s = 0
            change = o.sub(o.const(0), o.as_int(r))
        else:
            change = o.sub(o.as_int(s), o.as_int(r))
        if subtract:
            v = apply(o, "overflow", cfg.v_overflow, wrap(o, o.sub(v, o.mul(change, thr)), ib),
                      cfg.v_bits)
        elif r is None:
            v = o.where(s, o.const(0), v)  # v' - s * v'
        else:
            v = o.sub(v, o.mul(change, v))
    if cfg.has_floor:
        v = o.maximum(v, p.v_floor)
    return s, v


def _multi_spike(o, cfg: NeuronConfig, p: NeuronParams, v):
    """Count ``s = clip(v' // thr, 0, max_spikes)``, the immediate reset, the floor."""
    s = o.count(v, p.threshold, cfg.max_spikes)
    if cfg.reset == "subtract":
        v = apply(o, "overflow", cfg.v_overflow,
                  wrap(o, o.sub(v, o.mul(s, p.threshold)), cfg.intermediate_bits), cfg.v_bits)
    elif cfg.reset == "zero":
        v = o.where(o.gt(s, o.const(0)), o.const(0), v)
    if cfg.has_floor:
        v = o.maximum(v, p.v_floor)
    return s, v


def neuron_step(o, cfg: NeuronConfig, p: NeuronParams, u_prev, v_prev, a):
    """One whole step: ``(s, u[t], v[t])``."""
    u = current(o, cfg, p, u_prev, a)
    s, v = membrane(o, cfg, p, v_prev, u)
    return s, u, v
