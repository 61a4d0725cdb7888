"""Post-training quantization of one population and the projections into it.

1. **Weight scale** ``s_w`` over every incoming projection (:mod:`.scales`).
2. **Exponent and threshold**: ``weight_exp`` from 0 downwards until the threshold mantissa and
   the calibrated state ranges fit; for thresholds shared per scale group ``s_w`` is nudged down
   so that ``threshold * S`` lands exactly on the threshold grid.
3. **Registers**: thresholds, biases and decays in the target's formats (:mod:`.registers`).
4. **Features**: reset, timing and spike test mapped onto the target (:mod:`.neuron`).

A synaptic bias (from the linear layers' biases) of a population without current memory is a
voltage bias; with current memory it needs the target's synaptic-current bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..errors import QuantizationError, UnsupportedError
from ..ir.fixed import QNeuron, QPopulation, QProjection
from ..targets import Target
from . import registers as reg
from .neuron import FloatNeuron, check_model, map_features, require_shared, spike_cap
from .scales import (
    choose_scale, exponent_range, land_threshold, round_grid, state_estimate, weight_grid,
    weight_peak,
)


@dataclass
class LayerReport:
    name: str
    neuron: str
    scale: float
    weight_exp: int
    weight_range: tuple
    weight_rms_error: float     # RMS of (W - W_int / s_w), relative to max |W|
    threshold: float
    threshold_int: int
    threshold_rel_error: float
    decay_v: tuple              # (float beta, effective beta)
    decay_u: tuple
    bias_max_abs_error: float
    headroom_v: float | None    # max |v| on calibration data / largest representable v
    headroom_u: float | None
    custom_neuron: bool
    notes: list = field(default_factory=list)


def scaled_projections(pg, pop, input_unit: float):
    """The incoming float projections, weights of graded-input projections in integer input
    units (``w / input_scale``)."""
    from dataclasses import replace

    out = []
    for proj in pg.incoming(pop.name):
        if proj.source == pg.input.name and input_unit != 1.0:
            proj = replace(proj, weight=proj.weight * input_unit)
        out.append(proj)
    return out


def quantize_projection(proj, s_w: np.ndarray, wexp: int, even: bool, top: int, shape
                        ) -> tuple[QProjection, float, tuple]:
    """The integer projection for scale ``s_w`` (scalar or per target neuron); returns it, the
    RMS weight error relative to max |w|, and the integer weight range."""
    s = np.broadcast_to(s_w, shape)
    if proj.kind == "dense":
        rows = s.reshape(-1, 1)
    elif proj.kind == "conv":
        rows = s.reshape(shape[0], -1)[:, 0].reshape(-1, 1, 1, 1)
    else:
        rows = s
    w_int = round_grid(proj.weight * rows, even, top)
    deq = w_int / rows
    peak = np.abs(proj.weight).max(initial=0.0) or 1.0
    err = float(np.sqrt(np.mean((deq - proj.weight) ** 2)) / peak) if proj.weight.size else 0.0
    if proj.kind == "elementwise":
        w_int = reg.compact(w_int, shape)
    q = QProjection(name=proj.name, source=proj.source, target=proj.target, kind=proj.kind,
                    weight=w_int, weight_exp=wexp, delay=proj.delay, conv=proj.conv)
    return q, err, (int(np.min(w_int, initial=0)), int(np.max(w_int, initial=0)))


def quantize_population(pg, pop, target: Target, input_unit: float, ranges: dict | None):
    """``(QPopulation, [QProjection], LayerReport)`` for population ``pop`` of ``pg``."""
    neuron = FloatNeuron.of(pop.node)
    name = neuron.name
    check_model(neuron, target)
    neuron, custom = map_features(neuron, target)
    if neuron.spiking and np.any(neuron.threshold <= 0):
        raise QuantizationError("threshold must be positive", node=name,
                                value=float(neuron.threshold.min()))
    projections = scaled_projections(pg, pop, input_unit)
    _check_max_pool(projections, target)
    v_bias = neuron.bias.reshape(-1).copy()
    syn_bias = np.broadcast_to(pop.bias, (neuron.size,)).copy()
    input_bias_float = None
    if np.any(syn_bias):
        if not neuron.cuba:
            v_bias += syn_bias  # without current memory the synaptic bias is a voltage bias
        elif target.features.synapse_bias or target.features.bias_source:
            input_bias_float = syn_bias
        else:
            raise UnsupportedError(f"target '{target.name}' cannot add a bias to the synaptic "
                                   "current of a current-based (Synaptic) neuron", node=name,
                                   value=f"max |bias| = {np.abs(syn_bias).max():.4g}",
                                   hint="train the layer feeding it with bias=False")
    fmt = target.neuron
    has_conv = any(p.kind == "conv" for p in projections)
    exp_lo, exp_hi = exponent_range(target, has_conv)
    per_neuron = target.weights.scale_granularity == "neuron"
    if not per_neuron and target.features.neuron_groups == 1:
        require_shared(neuron, target)
    even, top = weight_grid(target, [p.weight for p in projections])
    wmax = weight_peak(projections, neuron.shape, per_neuron)
    s_w = np.where(wmax > 0, top / np.where(wmax > 0, wmax, 1.0), 1.0)
    v_est = state_estimate(ranges, "v", projections, neuron.threshold)
    u_est = state_estimate(ranges, "i" if neuron.cuba else "current", projections,
                           neuron.threshold)
    s_w, wexp = choose_scale(target=target, s_w=s_w, wmax=wmax, exp_lo=exp_lo, exp_hi=exp_hi,
                             threshold=neuron.threshold, spiking=neuron.spiking, v_est=v_est,
                             u_est=u_est, name=name)
    if neuron.spiking:
        s_w = land_threshold(target, s_w, wexp, neuron.threshold, name)
    scale = s_w * 2.0 ** wexp * 2.0 ** fmt.activation_shift
    scale_flat = np.broadcast_to(scale, neuron.shape).reshape(-1)

    qprojs, errors, ranges_w = [], [], []
    for proj in projections:
        q, err, w_range = quantize_projection(proj, s_w, wexp, even, top, neuron.shape)
        qprojs.append(q)
        errors.append(err)
        ranges_w.append(w_range)

    thr_int, thr_err = _thresholds(neuron, s_w, wexp, target, scale_flat)
    bias_int, bias_err = reg.encode_bias(v_bias, scale_flat, fmt, name)
    notes = list(neuron.notes)
    m_v, beta_eff = reg.encode_decay(neuron.beta, fmt.decay_bits, fmt.v_decay_range, name,
                                     "beta", notes)
    if neuron.cuba:
        m_u, alpha_eff = reg.encode_decay(neuron.alpha, fmt.decay_bits, fmt.u_decay_range,
                                          name, "alpha", notes)
    else:
        m_u, alpha_eff = np.zeros(1, np.int64), np.zeros(1)
        if fmt.u_decay_range[0] > 0:
            raise UnsupportedError(f"target '{target.name}' has no neuron without current "
                                   "memory", node=name)
    if not per_neuron:
        _check_groups(name, target, m_u if neuron.cuba else 0, m_v, thr_int, (neuron.size,),
                      notes)
    input_bias = None
    if input_bias_float is not None:
        input_bias = _input_bias(name, target, input_bias_float, scale_flat, notes)
    shape = neuron.shape
    qneuron = QNeuron(
        shape=shape, decay_u=reg.compact(m_u, shape), decay_v=reg.compact(m_v, shape),
        threshold=reg.compact(thr_int, shape), bias=reg.compact(bias_int, shape),
        reset=neuron.reset, reset_timing=neuron.reset_timing,
        reset_discards_input=neuron.reset_discards_input, spike_test=neuron.spike_test,
        spiking=neuron.spiking, has_current=neuron.cuba, max_spikes=spike_cap(neuron, target),
        v_floor=_floor(neuron, thr_int, scale_flat, target))
    qpop = QPopulation(name=name, neuron=qneuron,
                       input_bias=None if input_bias is None else input_bias.reshape(shape),
                       scale=np.array(scale if np.ndim(scale) == 0 else scale.reshape(shape)),
                       lag=pop.lag)
    s_max = float(np.max(scale))
    report = LayerReport(
        name=name, neuron=neuron.kind, scale=s_max, weight_exp=wexp,
        weight_range=(min(r[0] for r in ranges_w), max(r[1] for r in ranges_w)),
        weight_rms_error=max(errors), threshold=float(neuron.threshold.max())
        if neuron.spiking else 0.0, threshold_int=int(np.max(thr_int)),
        threshold_rel_error=thr_err,
        decay_v=(float(neuron.beta.max()), float(np.max(beta_eff))),
        decay_u=(float(neuron.alpha.max()), float(np.max(alpha_eff))),
        bias_max_abs_error=bias_err,
        headroom_v=None if not ranges or ranges.get("v") is None
        else ranges["v"] * s_max / fmt.v.max,
        headroom_u=None if not ranges else
        (ranges["i"] if neuron.cuba else ranges["current"]) * s_max / fmt.u.max,
        custom_neuron=custom, notes=notes)
    return qpop, qprojs, report


def _input_bias(name: str, target: Target, bias: np.ndarray, scale_flat, notes: list):
    """The synaptic-current bias in synaptic-input units ``a``: ``round(bias * S / 2**shift)``,
    on a bias source's weight grid where the target adds it that way."""
    shift = 2.0 ** target.neuron.activation_shift
    values = bias * scale_flat / shift
    if target.features.synapse_bias:
        return np.rint(values).astype(np.int64)
    ints = reg.encode_source_bias(values, target, name)
    err = float(np.max(np.abs(ints * shift / scale_flat - bias), initial=0.0))
    notes.append(f"bias on the synaptic current added by a bias-source population (a neuron "
                 f"spiking every step, weights = bias, max rounding error {err:.3g})")
    return ints


def _check_groups(name: str, target: Target, m_u, m_v, thr_int, shape, notes: list) -> None:
    """A per-layer-register target runs distinct decays/thresholds as neuron groups (one
    register set each), up to ``features.neuron_groups``; refused with the numbers beyond."""
    groups = len(reg.parameter_groups(shape, m_u, m_v, thr_int))
    limit = target.features.neuron_groups
    if groups > limit:
        raise UnsupportedError(
            f"target '{target.name}' holds one decay and threshold register set per neuron "
            f"group, at most {limit} groups per layer; this layer needs {groups}", node=name,
            value=f"{groups} distinct (current decay, voltage decay, threshold) sets over "
                  f"{int(np.prod(shape))} neurons: {groups} neuron processes, at least "
                  f"{groups} cores",
            hint="train with a shared beta and threshold (scalars, not learned per neuron) or "
                 "pick a target with per-neuron registers (cpu, FPGA)")
    if groups > 1:
        notes.append(f"per-neuron decays/thresholds: {groups} register sets, run as {groups} "
                     "neuron groups (one neuron process each)")

def _check_max_pool(projections, target: Target) -> None:
    """Max pooling of synaptic sums only where the target can take a maximum."""
    for proj in projections:
        if proj.conv is not None and proj.conv.max_pool is not None \
                and not target.features.max_pool:
            raise UnsupportedError(f"target '{target.name}' cannot take the maximum of synaptic "
                                   "sums (max pooling after a convolution, before the neuron "
                                   "layer)", node=proj.name,
                                   value=f"max_pool kernel {proj.conv.max_pool[0]}",
                                   hint="pool the spikes instead (Conv2d -> neuron -> "
                                        "MaxPool2d, computed exactly as an OR layer), or use "
                                        "AvgPool2d (folded into the convolution), and retrain")


def _floor(neuron: FloatNeuron, thr_int, scale_flat, target: Target):
    """The membrane floor in state units (exactly ``-threshold`` when it is ``-threshold``)."""
    if neuron.v_floor is None:
        return None
    floor = neuron.v_floor.reshape(-1)
    exact = np.where(floor == -neuron.threshold.reshape(-1), -thr_int,
                     np.rint(floor * scale_flat)).astype(np.int64)
    lo = target.neuron.v.min
    if exact.min() < lo:
        raise QuantizationError("membrane floor below the voltage register", node=neuron.name,
                                value=f"{exact.min()} < {lo}")
    return reg.compact(exact, neuron.shape)


def _thresholds(neuron: FloatNeuron, s_w, wexp: int, target: Target, scale_flat):
    """Threshold integers ``mant << threshold_shift`` and their worst relative error."""
    fmt = target.neuron
    thr_flat = neuron.threshold.reshape(-1)
    if not neuron.spiking:
        return np.full(thr_flat.shape, fmt.threshold.max << fmt.threshold_shift, np.int64), 0.0
    gain = 2.0 ** (fmt.activation_shift - fmt.threshold_shift)
    mant = np.rint(thr_flat * np.broadcast_to(s_w, neuron.shape).reshape(-1) * 2.0 ** wexp
                   * gain).astype(np.int64)
    if mant.min() < 1 or mant.max() > fmt.threshold.max:
        raise QuantizationError("threshold does not fit the target", node=neuron.name,
                                value=f"mantissa {mant.max()} > {fmt.threshold.max}")
    thr_int = mant << fmt.threshold_shift
    err = float(np.max(np.abs(thr_int / scale_flat - thr_flat) / thr_flat))
    return thr_int, err
