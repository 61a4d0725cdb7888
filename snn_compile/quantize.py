"""Post-training quantization: float IR + target (+ calibration data) -> fixed-point QNetwork.

Per layer (see :mod:`snn_compile.layers` for how layers are formed):

1. **Weight scale** ``s_w``: the largest weight magnitude maps to the top of the target's weight
   grid (per layer, or per output neuron where the target allows it).
2. **Exponent and threshold**: the state scale is ``S = s_w * 2**weight_exp * 2**activation_shift``
   (integer state per float unit). ``weight_exp`` starts at 0 and goes down only when the threshold
   mantissa or the calibrated state range would not fit. For a per-layer threshold ``s_w`` is then
   nudged down so that ``threshold * S`` lands exactly on the target's threshold grid: the spike
   decision ``v > threshold`` is preserved exactly up to weight rounding.
3. **Biases** become ``mantissa << exponent`` in state units; **decays** become multipliers
   ``round(beta * 2**decay_bits)`` within the target's range (the rounding is reported).
4. **Features**: reset mode, reset timing and spike test must be native to the target, exactly
   convertible (zero reset "next step" == "same step" spike for spike), or available through the
   target's custom neuron program; otherwise UnsupportedError says what to change.

A neuron that carries a :class:`~snn_compile.ir.nodes.StateGrid` (a quantization-aware trained
layer, :mod:`snn_compile.qat`) is not quantized but *adopted*: its integers become the QLayer
unchanged, after checking that the target's datapath is the grid's and that every incoming weight
``W * weight_scale`` is an integer of the target's weight grid (:func:`_adopt_grid`).

Everything that cannot be represented is an error naming the layer and the value; nothing is
clipped silently. The :class:`LayerReport` records scale, weight error, threshold and decay
rounding, and the state headroom measured on the calibration data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from .errors import QuantizationError, SnnCompileError, UnsupportedError
from .ir import nodes as n
from .ir.fixed import QConv, QDense, QLayer, QNetwork, QNeuron
from .ir.graph import Graph
from .layers import ConvSpec, LayerSpec, extract_layers
from .targets import Target

HEADROOM = 0.9  # use at most this fraction of a state's range on the calibration data


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


@dataclass
class Quantized:
    network: QNetwork
    report: list[LayerReport]

    def report_dict(self) -> list[dict]:
        return [asdict(r) for r in self.report]


def quantize(graph: Graph, target: Target, calibration: np.ndarray | None = None,
             *, source_sha256: str | None = None) -> Quantized:
    """Quantize ``graph`` for ``target``; ``calibration`` is sample input [T, B, *input_shape]."""
    specs = extract_layers(graph)
    input_shape = graph.inputs[0].shape
    if calibration is not None:
        calibration = np.asarray(calibration)
        if tuple(calibration.shape[2:]) != tuple(input_shape) or 0 in calibration.shape[:2]:
            raise SnnCompileError("calibration data do not fit the model's input",
                                  value=f"shape {calibration.shape}",
                                  hint=f"time-major [T, B, {', '.join(map(str, input_shape))}]")
        if not np.all(np.isfinite(calibration)):
            raise SnnCompileError("calibration data contain NaN or Inf")
    graded = calibration is not None and not np.isin(calibration, (0, 1)).all()
    input_bits, input_scale = 1, 1.0
    if graded and _grid_of(specs[0]) is not None:
        raise UnsupportedError("a quantization-aware (grid) input layer takes 0/1 spikes only",
                               node=specs[0].neuron.name, hint="encode the input as spikes")
    if graded:
        if not target.features.graded_input:
            raise UnsupportedError(f"target '{target.name}' takes binary spikes only",
                                   hint="encode the input as 0/1 spikes")
        input_bits = min(8, target.features.input_bits)
        peak = float(np.abs(calibration).max()) or 1.0
        input_scale = ((1 << (input_bits - 1)) - 1) / peak
    ranges = _calibrate(graph, specs, calibration) if calibration is not None else {}
    layers, reports = [], []
    for i, spec in enumerate(specs):
        unit = 1.0 / input_scale if i == 0 else 1.0
        if _grid_of(spec) is not None:
            layer, report = _adopt_grid(spec, target, lead=(i + 1) * target.timing.synapse_delay)
        else:
            layer, report = _quantize_layer(spec, target, unit, ranges.get(spec.neuron.name))
        layers.append(layer)
        reports.append(report)
    meta = {"source_sha256": source_sha256} if source_sha256 else {}
    net = QNetwork(input_shape=input_shape, layers=tuple(layers), target=target,
                   input_bits=input_bits, input_scale=input_scale, metadata=meta)
    return Quantized(network=net, report=reports)


# ----------------------------------------------------------------------------- calibration

def _calibrate(graph: Graph, specs: list[LayerSpec], data: np.ndarray) -> dict:
    """Max |input current|, |v| and |i| per layer from the float reference on ``data``."""
    from .reference import simulate

    trace = simulate(graph, data)
    out = {}
    for spec in specs:
        x = np.asarray(data) if spec.source is None else trace.layers[spec.source]["spikes"]
        x = np.asarray(x, np.float64).reshape(-1, *spec.in_shape)
        current = np.abs(_float_synapse(spec, x)).max(initial=0.0)
        states = trace.layers.get(spec.neuron.name, {})
        out[spec.neuron.name] = {
            "current": float(current),
            "v": float(np.abs(states["v"]).max(initial=0.0)) if "v" in states else None,
            "i": float(np.abs(states["i"]).max(initial=0.0)) if "i" in states else None,
        }
    return out


def _float_synapse(spec: LayerSpec, x: np.ndarray) -> np.ndarray:
    syn = spec.synapse
    if isinstance(syn, ConvSpec):
        y = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(syn.weight),
                                       stride=syn.stride, padding=syn.padding,
                                       dilation=syn.dilation, groups=syn.groups)
        return y.reshape(x.shape[0], -1).numpy() + spec.synapse_bias
    return x.reshape(x.shape[0], -1) @ syn.T + spec.synapse_bias


# ----------------------------------------------------------------------------- one layer

def _neuron_params(node) -> dict:
    """Float parameters of any population node, with the defaults its type implies."""
    shape = node.shape
    spiking = isinstance(node, n.NeuronNode)
    return {
        "shape": shape,
        "beta": np.broadcast_to(getattr(node, "beta", 1.0), shape).astype(np.float64),
        "alpha": np.broadcast_to(getattr(node, "alpha", 0.0), shape).astype(np.float64),
        "threshold": np.broadcast_to(node.threshold if spiking else np.inf, shape).astype(
            np.float64),
        "bias": np.broadcast_to(node.bias, shape).astype(np.float64),
        "spiking": spiking,
        "cuba": isinstance(node, n.CubaLIF),
        "reset": node.reset if spiking else "none",
        "reset_timing": node.reset_timing if spiking else "same_step",
        "reset_discards_input": node.reset_discards_input if spiking else False,
        "spike_test": node.spike_test if spiking else ">",
    }


def _check_model(node, target: Target) -> str:
    kind = type(node).__name__
    if kind not in target.features.neuron_models:
        raise UnsupportedError(f"neuron model {kind} is not supported by target '{target.name}'",
                               node=node.name, hint=f"supported: {target.features.neuron_models}")
    return kind


def _quantize_layer(spec: LayerSpec, target: Target, unit: float, ranges: dict | None):
    node = spec.neuron
    name = node.name
    p = _neuron_params(node)
    notes: list[str] = []
    kind = _check_model(node, target)
    custom = _check_features(p, target, name, notes)
    if p["spiking"] and np.any(p["threshold"] <= 0):
        raise QuantizationError("threshold must be positive", node=name,
                                value=float(p["threshold"].min()))

    is_conv = isinstance(spec.synapse, ConvSpec)
    w_float = (spec.synapse.weight if is_conv else spec.synapse) * unit
    rec_float = spec.recurrent
    v_bias = p["bias"].reshape(-1).copy()
    syn_bias = np.broadcast_to(spec.synapse_bias, (int(np.prod(p["shape"])),)).copy()
    input_bias_float = None
    if np.any(syn_bias):
        if not p["cuba"]:
            v_bias += syn_bias  # without current memory the synaptic bias is a voltage bias
        elif target.features.synapse_bias:
            input_bias_float = syn_bias
        else:
            raise UnsupportedError(f"target '{target.name}' cannot add a bias to the synaptic "
                                   "current of a current-based (Synaptic) neuron", node=name,
                                   value=f"max |bias| = {np.abs(syn_bias).max():.4g}",
                                   hint="train the layer feeding it with bias=False")

    fmt, wfmt = target.neuron, target.weights
    exp_lo, exp_hi = _exp_range(target, is_conv)
    per_neuron = wfmt.scale_granularity == "neuron"
    if not per_neuron:
        _require_shared(p, name, target)
    even, top = weight_grid(target, w_float, rec_float)

    wmax = _row_max(w_float, rec_float, p["shape"], is_conv, per_neuron)
    s_w = np.where(wmax > 0, top / np.where(wmax > 0, wmax, 1.0), 1.0)
    gain = 2.0 ** (fmt.activation_shift - fmt.threshold_shift)
    mant_max = (1 << fmt.threshold_mant_bits) - 1
    v_lim = ((1 << (fmt.v_bits - 1)) - 1) * HEADROOM
    u_lim = ((1 << (fmt.u_bits - 1)) - 1) * HEADROOM
    v_est = _estimate(ranges, "v", p, w_float, rec_float)
    u_est = _estimate(ranges, "i" if p["cuba"] else "current", p, w_float, rec_float)

    wexp = min(max(0, exp_lo), exp_hi)
    thr = p["threshold"] if p["spiking"] else np.ones(p["shape"])
    thr_flat = thr.reshape(-1)

    def state_scale(sw, e):
        return sw * 2.0 ** e * 2.0 ** fmt.activation_shift

    def fits(sw, e):
        s = np.max(state_scale(sw, e))
        mant_ok = not p["spiking"] or np.max(thr * sw * 2.0 ** e * gain) <= mant_max
        return mant_ok and v_est * s <= v_lim and u_est * s <= u_lim

    while not fits(s_w, wexp) and wexp > exp_lo:
        wexp -= 1
    while not fits(s_w, wexp):
        s_w = s_w / 2.0
        if np.max(s_w) * (wmax.max() if wmax.size else 0) < 1:
            raise QuantizationError("state range cannot be represented", node=name,
                                    value=f"estimated max |v| = {v_est:.4g}",
                                    hint=f"target '{target.name}' has {fmt.v_bits}-bit state; "
                                         "lower the weights or threshold")

    # land thresholds exactly on their grid by nudging s_w down: possible when every scale
    # group (the layer, a conv channel, or a single neuron) shares one threshold
    if p["spiking"] and _uniform_per_group(thr, s_w):
        t = np.broadcast_to(thr, np.shape(s_w)) if np.ndim(s_w) else thr_flat[0]
        mant = np.floor(t * s_w * 2.0 ** wexp * gain)
        if np.min(mant) < 1:
            raise QuantizationError("threshold too small for the weight grid", node=name,
                                    value=float(thr_flat.min()))
        s_w = mant / (t * 2.0 ** wexp * gain)
    scale = state_scale(s_w, wexp)  # per layer (shape ()) or per neuron (shape = p["shape"])
    scale_flat = np.broadcast_to(scale, p["shape"]).reshape(-1)

    q_syn, w_err, w_range = _quantize_synapse(spec, w_float, s_w, wexp, even, top, p["shape"])
    q_rec = None
    if rec_float is not None:
        s_rows = np.broadcast_to(s_w, p["shape"]).reshape(-1, 1)
        rec_int = round_grid(rec_float * s_rows, even, top)
        q_rec = QDense(weight=rec_int, weight_exp=wexp)

    if p["spiking"]:
        thr_mant = np.rint(thr_flat * np.broadcast_to(s_w, p["shape"]).reshape(-1)
                           * 2.0 ** wexp * gain).astype(np.int64)
        if thr_mant.min() < 1 or thr_mant.max() > mant_max:
            raise QuantizationError("threshold does not fit the target", node=name,
                                    value=f"mantissa {thr_mant.max()} > {mant_max}")
        thr_int = thr_mant << fmt.threshold_shift
        thr_err = float(np.max(np.abs(thr_int / scale_flat - thr_flat) / thr_flat))
    else:
        thr_int = np.full(thr_flat.shape, mant_max << fmt.threshold_shift, np.int64)
        thr_err = 0.0
    bias_int, bias_err = _quantize_bias(v_bias, scale_flat, fmt, name)
    m_v, beta_eff = _decay(p["beta"], fmt.decay_bits, fmt.v_decay_range, name, "beta", notes)
    if p["cuba"]:
        m_u, alpha_eff = _decay(p["alpha"], fmt.decay_bits, fmt.u_decay_range, name, "alpha",
                                notes)
    else:
        m_u, alpha_eff = np.zeros(1, np.int64), np.zeros(1)
        if fmt.u_decay_range[0] > 0:
            raise UnsupportedError(f"target '{target.name}' has no neuron without current "
                                   "memory", node=name)
    input_bias = None
    if input_bias_float is not None:
        input_bias = np.rint(input_bias_float * scale_flat
                             / 2.0 ** fmt.activation_shift).astype(np.int64)

    shape = p["shape"]
    neuron = QNeuron(
        shape=shape, decay_u=_compact(m_u, shape), decay_v=_compact(m_v, shape),
        threshold=_compact(thr_int, shape), bias=_compact(bias_int, shape),
        reset=p["reset"], reset_timing=p["reset_timing"],
        reset_discards_input=p["reset_discards_input"], spike_test=p["spike_test"],
        spiking=p["spiking"], has_current=p["cuba"])
    layer = QLayer(name=name, synapse=q_syn, neuron=neuron, recurrent=q_rec,
                   input_bias=None if input_bias is None else input_bias.reshape(shape),
                   delay=spec.delay, source=spec.source,
                   scale=np.array(scale if np.ndim(scale) == 0 else scale.reshape(shape)))
    v_max = float((1 << (fmt.v_bits - 1)) - 1)
    u_max = float((1 << (fmt.u_bits - 1)) - 1)
    s_max = float(np.max(scale))
    report = LayerReport(
        name=name, neuron=kind, scale=s_max, weight_exp=wexp, weight_range=w_range,
        weight_rms_error=w_err, threshold=float(thr_flat.max()) if p["spiking"] else 0.0,
        threshold_int=int(thr_int.max()), threshold_rel_error=thr_err,
        decay_v=(float(p["beta"].max()), float(np.max(beta_eff))),
        decay_u=(float(p["alpha"].max()), float(np.max(alpha_eff))),
        bias_max_abs_error=bias_err,
        headroom_v=None if not ranges or ranges.get("v") is None
        else ranges["v"] * s_max / v_max,
        headroom_u=None if not ranges else
        (ranges["i"] if p["cuba"] else ranges["current"]) * s_max / u_max,
        custom_neuron=custom, notes=notes)
    return layer, report


def _check_features(p: dict, target: Target, name: str, notes: list) -> bool:
    """Map reset/timing/test onto the target; True when a custom neuron program is needed."""
    feats = target.features
    if (p["reset"] == "zero" and p["reset_timing"] == "next_step"
            and not p["reset_discards_input"] and "next_step" not in feats.reset_timings):
        p["reset_timing"] = "same_step"
        notes.append("zero reset moved from next step to same step (identical spikes; the "
                     "recorded membrane is the reset value instead of the pre-reset value)")
    native = (p["reset"] in feats.reset_modes and p["reset_timing"] in feats.reset_timings
              and p["spike_test"] in feats.spike_tests
              and (not p["reset_discards_input"] or feats.zero_reset_discards_input))
    if native:
        return False
    wanted = (f"reset '{p['reset']}' ({p['reset_timing']}"
              f"{', input discarded' if p['reset_discards_input'] else ''}), "
              f"spike test '{p['spike_test']}'")
    if feats.custom_reset_modes and p["reset"] in feats.reset_modes + feats.custom_reset_modes:
        notes.append(f"{wanted} is not a standard {target.name} neuron: it runs as a custom "
                     "neuron model (real hardware needs a custom neuron program)")
        return True
    raise UnsupportedError(f"target '{target.name}' cannot express {wanted}", node=name,
                           hint=f"supported resets {feats.reset_modes} timed "
                                f"{feats.reset_timings} with spike test {feats.spike_tests}; "
                                "retrain with e.g. reset_mechanism='zero' or pick another target")


def _exp_range(target: Target, is_conv: bool) -> tuple[int, int]:
    wfmt = target.weights
    return (wfmt.exp_min, wfmt.exp_max) if (wfmt.conv_exp or not is_conv) else (0, 0)


def weight_grid(target: Target, w: np.ndarray, rec: np.ndarray | None) -> tuple[bool, int]:
    """``(even, top)``: integer weights lie in ``[-top - (2 if even else 1), top]``, even only
    when the target drops the lowest bit of mixed-sign matrices."""
    mixed = _mixed(w) or (rec is not None and _mixed(rec))
    even = target.weights.mixed_sign_even and mixed
    return even, (1 << target.weights.bits) - (2 if even else 1)


# ----------------------------------------------------------------------------- QAT grids

def _grid_of(spec: LayerSpec):
    return getattr(spec.neuron, "grid", None)


def grid_datapath(target: Target, is_conv: bool) -> dict:
    """The target's datapath as :class:`~snn_compile.ir.nodes.StateGrid` fields."""
    fmt, acc = target.neuron, target.accumulator
    return {"activation_shift": fmt.activation_shift,
            "synapse_bits": acc.conv_bits if is_conv else acc.dense_bits,
            "recurrent_bits": acc.dense_bits, "intermediate_bits": acc.intermediate_bits,
            "decay_bits": fmt.decay_bits, "rounding": fmt.decay_rounding,
            "u_bits": fmt.u_bits, "u_overflow": fmt.u_overflow,
            "v_bits": fmt.v_bits, "v_overflow": fmt.v_overflow}


def _adopt_grid(spec: LayerSpec, target: Target, lead: int):
    """The QLayer of a grid neuron: its integers unchanged, after checking they fit ``target``
    (``lead``: the layer's time alignment on the target, see StateGrid)."""
    node, grid = spec.neuron, spec.neuron.grid
    name, notes = node.name, [f"quantization-aware grid (trained for '{grid.target}') adopted "
                              "as is: every spike equals the float reference's"]
    p = _neuron_params(node)
    kind = _check_model(node, target)
    custom = _check_features(p, target, name, notes)
    is_conv = isinstance(spec.synapse, ConvSpec)
    _check_grid_datapath(grid, target, is_conv, lead, name)
    if np.any(spec.synapse_bias):
        raise QuantizationError("a grid layer's synapse carries a bias", node=name,
                                value=f"max |bias| = {np.abs(spec.synapse_bias).max():.4g}",
                                hint="fold it into the grid's bias (snn_compile.qat.convert does)")
    w_float = spec.synapse.weight if is_conv else spec.synapse
    even, top = weight_grid(target, w_float, spec.recurrent)
    s_w = np.broadcast_to(grid.weight_scale, p["shape"])
    s_neurons = s_w.reshape(-1)
    _check_on_grid(w_float, s_w.reshape(p["shape"][0], -1)[:, 0] if is_conv else s_neurons,
                   even, top, name, "weight")
    q_syn, _, w_range = _quantize_synapse(spec, w_float, s_w, grid.weight_exp, even, top,
                                          p["shape"])
    q_rec = None
    if spec.recurrent is not None:
        _check_on_grid(spec.recurrent, s_neurons, even, top, name, "recurrent weight")
        q_rec = QDense(weight=round_grid(spec.recurrent * s_neurons.reshape(-1, 1), even, top),
                       weight_exp=grid.weight_exp)
    _check_grid_values(grid, target, p["shape"], name)
    shape = p["shape"]
    neuron = QNeuron(
        shape=shape, decay_u=grid.decay_u, decay_v=grid.decay_v, threshold=grid.threshold,
        bias=grid.bias, reset=p["reset"], reset_timing=p["reset_timing"],
        reset_discards_input=p["reset_discards_input"], spike_test=p["spike_test"],
        spiking=True, has_current=p["cuba"])
    scale = grid.scale
    layer = QLayer(name=name, synapse=q_syn, neuron=neuron, recurrent=q_rec, delay=spec.delay,
                   source=spec.source, scale=np.array(scale if np.ndim(scale) == 0
                                                      else np.broadcast_to(scale, shape)))
    k = 1 << grid.decay_bits
    report = LayerReport(
        name=name, neuron=kind, scale=float(np.max(scale)), weight_exp=grid.weight_exp,
        weight_range=w_range, weight_rms_error=0.0, threshold=float(np.max(p["threshold"])),
        threshold_int=int(grid.threshold.max()), threshold_rel_error=0.0,
        decay_v=(float(p["beta"].max()), float(grid.decay_v.max()) / k),
        decay_u=(float(p["alpha"].max()), float(grid.decay_u.max()) / k),
        bias_max_abs_error=0.0, headroom_v=None, headroom_u=None, custom_neuron=custom,
        notes=notes)
    return layer, report


def _check_grid_datapath(grid, target: Target, is_conv: bool, lead: int, name: str) -> None:
    """The target must compute exactly what the grid describes."""
    expected = grid_datapath(target, is_conv) | {"lead": lead}
    differ = [f"{key} {getattr(grid, key)} vs {value}" for key, value in expected.items()
              if getattr(grid, key) != value]
    lo, hi = _exp_range(target, is_conv)
    if not lo <= grid.weight_exp <= hi:
        differ.append(f"weight_exp {grid.weight_exp} outside {lo}..{hi}")
    if differ:
        raise QuantizationError(f"the layer was trained for target '{grid.target}', whose "
                                f"arithmetic differs from '{target.name}'", node=name,
                                value="; ".join(differ),
                                hint=f"prepare the model for '{target.name}' "
                                     "(snn_compile.qat.prepare_qat) and fine-tune it again")


def _check_on_grid(w: np.ndarray, s_rows: np.ndarray, even: bool, top: int, name: str,
                   what: str) -> None:
    """Every ``W * s_w`` must be an integer of the target's weight range (and even if needed)."""
    exact = w.reshape(len(s_rows), -1) * s_rows.reshape(-1, 1)
    ints = np.rint(exact)
    off = np.abs(exact - ints).max(initial=0.0)
    low = -top - (2 if even else 1)
    if off > 1e-3 or ints.min(initial=0) < low or ints.max(initial=0) > top or (
            even and np.any(ints % 2)):
        raise QuantizationError(f"a {what} is off the layer's fixed-point grid", node=name,
                                value=f"max |W*s_w - round| = {off:.3g}, range "
                                      f"[{ints.min(initial=0):.0f}, {ints.max(initial=0):.0f}] "
                                      f"vs [{low}, {top}]{', even' if even else ''}",
                                hint="export the model with snn_compile.qat.export, which puts "
                                     "the weights on the grid")


def _check_grid_values(grid, target: Target, shape, name: str) -> None:
    """Threshold, bias and decays must be register values of the target."""
    fmt = target.neuron
    thr = grid.threshold
    mant = thr >> fmt.threshold_shift
    problems = []
    if np.any(mant << fmt.threshold_shift != thr) or mant.min() < 1 \
            or mant.max() >= 1 << fmt.threshold_mant_bits:
        problems.append(f"threshold {thr.min()}..{thr.max()}")
    if not _bias_fits(grid.bias, fmt):
        problems.append(f"bias {grid.bias.min()}..{grid.bias.max()}")
    for key, (lo, hi) in (("decay_u", fmt.u_decay_range), ("decay_v", fmt.v_decay_range)):
        value = getattr(grid, key)
        if value.min() < lo or value.max() > hi:
            problems.append(f"{key} {value.min()}..{value.max()} outside {lo}..{hi}")
    if problems:
        raise QuantizationError(f"grid values do not fit target '{target.name}'", node=name,
                                value="; ".join(problems))


def _bias_fits(bias: np.ndarray, fmt) -> bool:
    """``bias = mant << exp`` with one exponent up to ``bias_exp_max`` and a signed mantissa."""
    limit = (1 << (fmt.bias_mant_bits - 1)) - 1
    return any(np.all(bias % (1 << e) == 0) and np.abs(bias >> e).max(initial=0) <= limit
               for e in range(fmt.bias_exp_max + 1))


def _uniform_per_group(thr: np.ndarray, s_w: np.ndarray) -> bool:
    """True when neurons sharing a weight scale also share a threshold."""
    if np.ndim(s_w) == 0:
        return bool(np.ptp(thr) == 0)
    flat_s, flat_t = np.asarray(s_w).reshape(-1), np.broadcast_to(thr, np.shape(s_w)).reshape(-1)
    for value in np.unique(flat_s):
        if np.ptp(flat_t[flat_s == value]) != 0:
            return False
    return True


def _mixed(w: np.ndarray) -> bool:
    return bool(np.any(w > 0) and np.any(w < 0))


def _row_max(w, rec, shape, is_conv, per_neuron) -> np.ndarray:
    """Max |weight| per layer (shape ()) or per output neuron (shape = population shape)."""
    if not per_neuron:
        peak = np.abs(w).max(initial=0.0)
        if rec is not None:
            peak = max(peak, np.abs(rec).max(initial=0.0))
        return np.array(peak)
    if is_conv:
        per_channel = np.abs(w).reshape(w.shape[0], -1).max(axis=1)
        rows = np.broadcast_to(per_channel.reshape(-1, 1, 1), shape).copy()
    else:
        rows = np.abs(w).max(axis=1).reshape(shape)
    if rec is not None:
        rows = np.maximum(rows, np.abs(rec).max(axis=1).reshape(shape))
    if is_conv:  # one scale per channel: neurons of a channel share the kernel
        rows = np.broadcast_to(rows.reshape(shape[0], -1).max(axis=1).reshape(-1, 1, 1), shape)
    return np.asarray(rows, np.float64)


def round_grid(x: np.ndarray, even: bool, top: int) -> np.ndarray:
    """Integers ``round(x)`` on the weight grid: even steps if ``even``, clipped to the range."""
    step = 2 if even else 1
    q = np.rint(x / step).astype(np.int64) * step
    return np.clip(q, -top - (1 if not even else 2), top)


def _quantize_synapse(spec, w_float, s_w, wexp, even, top, shape):
    if isinstance(spec.synapse, ConvSpec):
        conv = spec.synapse
        per_channel = np.broadcast_to(s_w, shape).reshape(shape[0], -1)[:, 0]
        w_int = round_grid(w_float * per_channel.reshape(-1, 1, 1, 1), even, top)
        syn = QConv(weight=w_int, in_shape=conv.in_shape, stride=conv.stride,
                    padding=conv.padding, dilation=conv.dilation, groups=conv.groups,
                    weight_exp=wexp)
        deq = w_int / per_channel.reshape(-1, 1, 1, 1)
    else:
        rows = np.broadcast_to(s_w, shape).reshape(-1, 1)
        w_int = round_grid(w_float * rows, even, top)
        syn = QDense(weight=w_int, weight_exp=wexp)
        deq = w_int / rows
    peak = np.abs(w_float).max(initial=0.0) or 1.0
    err = float(np.sqrt(np.mean((deq - w_float) ** 2)) / peak) if w_float.size else 0.0
    return syn, err, (int(w_int.min(initial=0)), int(w_int.max(initial=0)))


def _quantize_bias(bias: np.ndarray, scale: np.ndarray, fmt, name: str):
    """Bias in state units as mantissa << exponent (one exponent per layer)."""
    target = bias * scale
    limit = (1 << (fmt.bias_mant_bits - 1)) - 1
    for exp in range(fmt.bias_exp_max + 1):
        mant = np.rint(target / 2.0 ** exp)
        if np.abs(mant).max(initial=0) <= limit:
            q = mant.astype(np.int64) << exp
            err = float(np.max(np.abs(q / scale - bias), initial=0.0))
            return q, err
    raise QuantizationError("bias does not fit the target's bias format", node=name,
                            value=f"{np.abs(bias).max():.4g} (= {np.abs(target).max():.4g} "
                                  f"state units > {limit} << {fmt.bias_exp_max})",
                            hint="reduce the bias or the layer's weight range")


def _decay(beta: np.ndarray, bits: int, allowed, name: str, what: str, notes: list):
    """Multipliers ``round(beta * 2^bits)`` within the target's range; a value that had to be
    moved to the range's edge (not just rounded) is reported in ``notes``."""
    if beta.min() < 0 or beta.max() > 1:
        raise QuantizationError(f"{what} must lie in [0, 1]", node=name,
                                value=f"{beta.min():.4g}..{beta.max():.4g}")
    lo, hi = allowed
    rounded = np.rint(beta.reshape(-1) * (1 << bits)).astype(np.int64)
    m = np.clip(rounded, lo, hi)
    if np.any(m != rounded):
        moved = beta.reshape(-1)[np.argmax(m != rounded)]
        notes.append(f"{what} {moved:.6g} is outside the target's decay range and becomes "
                     f"{m[np.argmax(m != rounded)] / (1 << bits):.6g} (multipliers {lo}..{hi} "
                     f"/ 2^{bits})")
    return m, m / (1 << bits)


def _require_shared(p: dict, name: str, target: Target) -> None:
    """Targets with per-layer registers need one decay and one threshold per layer."""
    for key in ("beta", "alpha", "threshold"):
        values = p[key]
        if np.ptp(values) != 0 and np.all(np.isfinite(values)):
            raise UnsupportedError(f"target '{target.name}' has one {key} per layer, this layer "
                                   "has one per neuron", node=name,
                                   value=f"{key} {values.min():.4g}..{values.max():.4g}",
                                   hint=f"train with a scalar {key} (not learned per neuron) "
                                        "or pick a target with per-neuron registers (cpu, FPGA)")


def _estimate(ranges, key, p, w, rec) -> float:
    """Largest state magnitude: calibrated when data was given, else a one-step bound."""
    if ranges and ranges.get(key) is not None:
        return float(ranges[key])
    row_sum = np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max(initial=0.0)
    if rec is not None:
        row_sum += np.abs(rec).sum(axis=1).max(initial=0.0)
    thr = np.max(p["threshold"]) if p["spiking"] else 0.0
    return float(max(2.0 * thr, row_sum)) if np.isfinite(thr) else float(row_sum)


def _compact(values: np.ndarray, shape) -> np.ndarray:
    """A scalar when all values are equal (per-layer registers), else the population array."""
    flat = np.asarray(values).reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return np.array(flat[0])
    return flat.reshape(shape)
