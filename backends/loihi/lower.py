"""Lowering: a :class:`QNetwork` becomes a Lava network description (registers + arrays).

The result, :class:`LavaNet`, is plain data: a JSON-able manifest (one entry per layer with the
Lava process types and register values) and a dict of integer arrays (weights, per-neuron
biases). The standalone builder (:mod:`.build`) turns exactly this data into Lava processes, both
in-process (:mod:`.run`) and in the generated bring-up bundle, so the two cannot drift apart.

Every register is checked to represent the quantizer's value *exactly*; anything that Lava would
clip, truncate or ignore raises :class:`TargetError` naming the layer and the value. The facts
come from lava-nc 0.10 (``lava/proc/lif/models.py``, ``dense/models.py``, ``conv/models.py``,
``utils/weightutils.py``); see ``/work/shared/reference/lava-fixed-point.md``.

Layouts: Lava's Conv works on ``(W, H, C)`` tensors while the IR is ``(C, H, W)``. A layer fed by
a convolution keeps Lava's ``(W, H, C)`` shape (``lava_axes = (2, 1, 0)``); every other layer is
a flat vector. Dense weights reading a ``(W, H, C)`` population get their columns permuted into
Lava's flatten order, and Conv kernels are transposed and flipped (Lava convolves, PyTorch
correlates).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snn_compile.errors import TargetError, UnsupportedError
from snn_compile.ir.fixed import QConv, QDense, QLayer, QNetwork, QNeuron

FORMAT_VERSION = 1

# What Lava 0.10's fixed_pt models compute, as the target fields that describe it. A network
# quantized for a target that disagrees on any of these would not run bit-exactly on Lava.
LAVA_ARITHMETIC = {
    "timing.synapse_delay": 1,
    "weights.bits": 8,
    "weights.mixed_sign_even": True,
    "weights.conv_exp": False,
    "accumulator.dense_bits": 32,
    "accumulator.conv_bits": 24,
    "accumulator.intermediate_bits": 32,
    "neuron.activation_shift": 6,
    "neuron.decay_mode": "multiply",
    "neuron.decay_bits": 12,
    "neuron.decay_rounding": "toward_zero",
    "neuron.u_bits": 24,
    "neuron.u_overflow": "wrap_lava",
    "neuron.v_bits": 24,
    "neuron.v_overflow": "saturate_symmetric",
    "neuron.threshold_shift": 6,
}

# Register fields of the Loihi 2 compartment (lava/proc/lif/models.py:84-85, 252-262).
DECAY_MAX = 4095           # du, dv: 12-bit unsigned
VTH_MAX = (1 << 17) - 1    # vth: 17-bit unsigned mantissa, threshold = vth << 6
VTH_SHIFT = 6
BIAS_MANT = (-(1 << 12), (1 << 12) - 1)  # 13-bit signed
BIAS_EXP_MAX = 7           # 3-bit unsigned
MAX_DELAY = 62             # DelayDense: 6 bits, netx clamps to 62
INT32_LIMIT = 1 << 31

# Dense weights after Lava's clip_weights + truncate_weights (num_weight_bits=8): the weights
# that pass unchanged, by the sign mode Lava derives from the matrix.
SIGN_MODES = {
    # name: (predicate on the matrix, lowest, highest, must be even)
    "EXCITATORY": (lambda w: w.min(initial=0) >= 0, 0, 255, False),
    "INHIBITORY": (lambda w: w.max(initial=0) <= 0, -255, 0, False),
    "MIXED": (lambda w: True, -256, 254, True),
}

# The standard Lava LIF implements exactly this neuron; anything else runs on SnnLIF.
# reset_discards_input does not matter here: after a same-step zero reset the stored v is 0 or
# below the threshold, so the reset term r computed from it is always 0.
STANDARD_NEURON = {
    "reset": ("zero",),
    "reset_timing": ("same_step",),
    "spike_test": (">",),
    "spiking": (True,),
}

CUSTOM_PROCESS = "SnnLIF"
CUSTOM_NOTE = ("SnnLIF is a Lava fixed_pt process model written by snn-compile; on real Loihi 2 "
               "hardware it needs a custom neuron microcode program (there is no standard "
               "Loihi 2 compartment with this reset behaviour).")


@dataclass(frozen=True)
class Layout:
    """How an IR tensor ``shape`` is laid out in Lava: ``lava_shape``; ``lava_axes`` is the
    transpose taking the IR array to Lava's (None: a plain C-order reshape)."""

    shape: tuple
    lava_shape: tuple
    lava_axes: tuple | None

    @classmethod
    def flat(cls, shape) -> "Layout":
        return cls(tuple(shape), (int(np.prod(shape)),), None)

    @classmethod
    def whc(cls, shape) -> "Layout":
        c, h, w = shape
        return cls(tuple(shape), (w, h, c), (2, 1, 0))

    def flat_order(self) -> np.ndarray:
        """IR flat index of each element of Lava's C-order flattening."""
        idx = np.arange(int(np.prod(self.shape))).reshape(self.shape)
        return (idx if self.lava_axes is None else idx.transpose(self.lava_axes)).reshape(-1)

    def to_lava(self, arr: np.ndarray) -> np.ndarray:
        """IR array of trailing shape ``shape`` -> trailing shape ``lava_shape``."""
        lead = arr.shape[:arr.ndim - len(self.shape)]
        if self.lava_axes is None:
            return arr.reshape(*lead, *self.lava_shape)
        axes = tuple(range(len(lead))) + tuple(len(lead) + a for a in self.lava_axes)
        return arr.transpose(axes)

    def manifest(self) -> dict:
        return {"shape": list(self.shape), "lava_shape": list(self.lava_shape),
                "lava_axes": None if self.lava_axes is None else list(self.lava_axes)}


@dataclass
class LavaNet:
    """A lowered network: ``manifest`` (JSON-able) and ``params`` (name -> int array)."""

    manifest: dict
    params: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def custom_layers(self) -> list[str]:
        return [layer["name"] for layer in self.manifest["layers"]
                if layer["neuron"]["process"] == CUSTOM_PROCESS]

    @property
    def custom_models(self) -> list[str]:
        return [CUSTOM_PROCESS] if self.custom_layers else []


# ----------------------------------------------------------------------------- checks

def check_target(net: QNetwork) -> None:
    """The network's target arithmetic must be Lava's (see LAVA_ARITHMETIC)."""
    for dotted, expected in LAVA_ARITHMETIC.items():
        got = net.target.get(dotted)
        if got != expected:
            raise TargetError(
                f"target '{net.target.name}' differs from Lava's fixed_pt arithmetic",
                value=f"{dotted} = {got!r}, Lava computes {expected!r}",
                hint="quantize the network for the loihi2 target")


def _uniform(layer: str, key: str, arr: np.ndarray) -> int:
    values = np.unique(np.asarray(arr))
    if values.size != 1:
        raise TargetError(f"{key} differs between neurons; Loihi 2 has one {key} per population",
                          node=layer, value=f"{values.size} distinct values",
                          hint="quantize with scale_granularity = 'layer'")
    return int(values[0])


def _register(layer: str, key: str, value: int, lo: int, hi: int, what: str) -> int:
    if not lo <= value <= hi:
        raise TargetError(f"{key} is not representable ({what})", node=layer,
                          value=value, hint=f"Lava's {key} register holds {lo}..{hi}")
    return int(value)


def decay_registers(layer: str, n: QNeuron) -> tuple[int, int]:
    """``du = 4095 - m_u`` (4095 without current memory) and ``dv = 4096 - m_v``."""
    m_u = _uniform(layer, "decay_u", n.decay_u) if n.has_current else 0
    m_v = _uniform(layer, "decay_v", n.decay_v)
    du = _register(layer, "du", DECAY_MAX - m_u, 0, DECAY_MAX, f"current multiplier {m_u}")
    dv = _register(layer, "dv", DECAY_MAX + 1 - m_v, 0, DECAY_MAX, f"voltage multiplier {m_v}")
    return du, dv


def threshold_register(layer: str, n: QNeuron) -> int:
    """``vth = threshold >> 6``, exactly."""
    thr = _uniform(layer, "threshold", n.threshold)
    if thr % (1 << VTH_SHIFT):
        raise TargetError("threshold is not a multiple of 2**6 (Lava uses vth << 6)",
                          node=layer, value=thr)
    return _register(layer, "vth", thr >> VTH_SHIFT, 0, VTH_MAX, f"threshold {thr}")


def bias_registers(layer: str, n: QNeuron, layout: Layout) -> tuple:
    """``bias = bias_mant << bias_exp``: one exponent for the layer if possible, else per neuron.

    Returns (mant, exp), each an int (uniform) or an int array in Lava layout.
    """
    bias = layout.to_lava(np.broadcast_to(n.bias, n.shape).astype(np.int64))
    lo, hi = BIAS_MANT
    fits = [np.all(bias % (1 << e) == 0, axis=None) & np.all((bias >> e >= lo) & (bias >> e <= hi))
            for e in range(BIAS_EXP_MAX + 1)]
    shared = next((e for e, ok in enumerate(fits) if ok), None)
    if shared is not None:
        mant = bias >> shared
        return (int(mant.flat[0]) if np.all(mant == mant.flat[0]) else mant), shared
    exps = np.full(bias.shape, -1, np.int64)
    for e in range(BIAS_EXP_MAX, -1, -1):  # smallest exponent that fits, per neuron
        ok = (bias % (1 << e) == 0) & (bias >> e >= lo) & (bias >> e <= hi)
        exps = np.where(ok, e, exps)
    if np.any(exps < 0):
        bad = int(bias[exps < 0].flat[0])
        raise TargetError("bias is not representable as bias_mant << bias_exp", node=layer,
                          value=bad, hint=f"mantissa {lo}..{hi}, exponent 0..{BIAS_EXP_MAX}")
    return bias >> exps, exps


def sign_mode(layer: str, key: str, w: np.ndarray) -> str:
    """Lava's automatic sign mode of ``w``, after checking that Lava keeps every weight."""
    name = next(name for name, (applies, *_rest) in SIGN_MODES.items() if applies(w))
    _, lo, hi, even = SIGN_MODES[name]
    bad = (w < lo) | (w > hi) | ((w % 2 != 0) if even else False)
    if np.any(bad):
        raise TargetError(f"{key} not representable in Lava's {name} weights", node=layer,
                          value=int(w[bad].flat[0]),
                          hint=f"{name} weights lie in [{lo}, {hi}]"
                               + (" and must be even" if even else ""))
    return name


def _exponent(layer: str, key: str, exp: int, net: QNetwork) -> int:
    lo, hi = net.target.weights.exp_min, net.target.weights.exp_max
    return _register(layer, f"{key} weight_exp", exp, lo, hi, "dendritic exponent")


# ----------------------------------------------------------------------------- lowering

def neuron_entry(layer: QLayer, layout: Layout, params: dict) -> dict:
    n = layer.neuron
    name = layer.name
    du, dv = decay_registers(name, n)
    vth = threshold_register(name, n)
    mant, exp = bias_registers(name, n, layout)
    reasons = [f"{key}={getattr(n, key)!r}" for key, allowed in STANDARD_NEURON.items()
               if getattr(n, key) not in allowed]
    entry = {
        "process": CUSTOM_PROCESS if reasons else "LIF",
        "custom_reasons": reasons,
        **layout.manifest(),
        "du": du, "dv": dv, "vth": vth,
        "bias_mant": _param(params, f"{name}/bias_mant", mant),
        "bias_exp": _param(params, f"{name}/bias_exp", exp),
        "reset": n.reset, "reset_timing": n.reset_timing, "spike_test": n.spike_test,
        "reset_discards_input": bool(n.reset_discards_input), "spiking": bool(n.spiking),
    }
    return entry


def _param(params: dict, key: str, value):
    """Scalars stay in the manifest; arrays go to params.npz, referenced as 'params:<key>'."""
    if isinstance(value, np.ndarray):
        params[key] = value.astype(np.int32)
        return f"params:{key}"
    return int(value)


def dense_entry(net: QNetwork, layer: QLayer, syn: QDense, source: Layout, msg_bits: int,
                params: dict, key: str, delay: int) -> dict:
    name = layer.name
    w = syn.weight[:, source.flat_order()]
    mode = sign_mode(name, key, w)
    exp = _exponent(name, key, syn.weight_exp, net)
    if msg_bits and exp < 0:
        # Graded Dense wraps W @ x in int32 *before* the exponent shift; the emulator after.
        bound = (1 << (msg_bits - 1)) * int(np.abs(w).sum(axis=1).max(initial=0))
        if bound >= INT32_LIMIT:
            raise TargetError("graded input can overflow Lava's int32 dendritic sum before the "
                              "negative weight_exp shift", node=name, value=bound,
                              hint="use fewer input bits or a non-negative weight_exp")
    if delay:
        _register(name, "delay", delay, 0, min(MAX_DELAY, net.target.features.max_synapse_delay),
                  "synaptic delay")
    return {
        "process": "DelayDense" if delay else "Dense",
        "weights": _param(params, f"{name}/{key}", w),
        "weight_exp": exp, "sign_mode": mode, "num_weight_bits": 8,
        "num_message_bits": msg_bits, "delay": delay,
        "flatten_input": len(source.lava_shape) > 1,
    }


def conv_entry(net: QNetwork, layer: QLayer, syn: QConv, source: Layout, msg_bits: int,
               params: dict) -> dict:
    name = layer.name
    if source.lava_axes is None and len(source.shape) != 3:
        raise UnsupportedError("a convolution fed by a flat (dense) population is not lowered "
                               "to Lava", node=name, hint="put convolutions first")
    if layer.delay:
        raise UnsupportedError("synaptic delays on convolutions are not supported by Lava's "
                               "Conv", node=name, value=layer.delay)
    if syn.weight_exp != 0:
        raise TargetError("Lava's Conv ignores weight_exp (lava issue #803)", node=name,
                          value=syn.weight_exp, hint="quantize with weights.conv_exp = false")
    top = 1 << net.target.weights.bits
    w = syn.weight
    if w.min(initial=0) < -top or w.max(initial=0) > top - 1:
        raise TargetError("conv weight outside the 8-bit magnitude + sign range", node=name,
                          value=int(np.abs(w).max()))
    x_max = (1 << (msg_bits - 1)) if msg_bits else 1
    bound = x_max * int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max(initial=0))
    if bound >= INT32_LIMIT:
        raise TargetError("convolution sum can exceed int32 in Lava's Conv (float64 -> int32)",
                          node=name, value=bound, hint="use fewer input bits")
    # IR (C_out, C_in/g, kH, kW) correlation -> Lava (C_out, kW, kH, C_in/g) convolution.
    lava_w = np.ascontiguousarray(w.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :])
    return {
        "process": "Conv",
        "weights": _param(params, f"{name}/weight", lava_w),
        "weight_exp": 0, "sign_mode": None, "num_weight_bits": 8,
        "num_message_bits": msg_bits, "delay": 0, "flatten_input": False,
        "input_shape": list(source.lava_shape),
        "kernel_layout": "(C_out, kW, kH, C_in/groups), flipped: Lava convolves",
        "stride": list(syn.stride[::-1]), "padding": list(syn.padding[::-1]),
        "dilation": list(syn.dilation[::-1]), "groups": int(syn.groups),
    }


def _layer_layout(layer: QLayer) -> Layout:
    if isinstance(layer.synapse, QConv):
        return Layout.whc(layer.neuron.shape)
    return Layout.flat(layer.neuron.shape)


def _input_layout(net: QNetwork) -> Layout:
    users = [layer for layer in net.layers if layer.source is None]
    if any(isinstance(layer.synapse, QConv) for layer in users) and len(net.input_shape) == 3:
        return Layout.whc(net.input_shape)
    return Layout.flat(net.input_shape)


def lower(net: QNetwork) -> LavaNet:
    """Lower ``net`` to a :class:`LavaNet`; TargetError/UnsupportedError if not exact."""
    check_target(net)
    if net.input_bits > net.target.features.input_bits:
        raise TargetError("graded input wider than the spike payload", value=net.input_bits,
                          hint=f"at most {net.target.features.input_bits} bits")
    params: dict[str, np.ndarray] = {}
    in_layout = _input_layout(net)
    layouts = {None: in_layout}
    entries = []
    for layer in net.layers:
        if layer.source not in layouts:
            raise UnsupportedError("layer source is not an earlier layer", node=layer.name,
                                   value=layer.source)
        if layer.input_bias is not None:
            raise TargetError("Loihi 2 has no bias on the synaptic current", node=layer.name,
                              hint="quantize for the loihi2 target (features.synapse_bias)")
        source = layouts[layer.source]
        layout = _layer_layout(layer)
        msg_bits = net.input_bits if layer.source is None and net.input_bits > 1 else 0
        if isinstance(layer.synapse, QConv):
            synapse = conv_entry(net, layer, layer.synapse, source, msg_bits, params)
        else:
            synapse = dense_entry(net, layer, layer.synapse, source, msg_bits, params,
                                  "weight", layer.delay)
        recurrent = None
        if layer.recurrent is not None:
            if layout.lava_axes is not None:
                raise UnsupportedError("recurrent synapses on convolutional layers are not "
                                       "lowered to Lava", node=layer.name)
            recurrent = dense_entry(net, layer, layer.recurrent, layout, 0, params,
                                    "recurrent_weight", 0)
        entries.append({
            "name": layer.name,
            "source": layer.source,
            "neuron": neuron_entry(layer, layout, params),
            "synapse": synapse,
            "recurrent": recurrent,
        })
        layouts[layer.name] = layout
    manifest = {
        "format": "snn-compile-lava-network",
        "format_version": FORMAT_VERSION,
        "target": net.target.name,
        "run_config": {"simulation": "Loihi2SimCfg(select_tag='fixed_pt')",
                       "hardware": "Loihi2HwCfg()"},
        "timing": {"synapse_delay": 1,
                   "monitor_rows": "row t = Lava time step t+1; v is read after the reset"},
        "input": {**in_layout.manifest(), "bits": int(net.input_bits),
                  "scale": float(net.input_scale), "process": "RingBuffer"},
        "output": {"layer": net.output_layer.name,
                   "state": "spikes" if net.output_layer.neuron.spiking else "v"},
        "layers": entries,
    }
    lowered = LavaNet(manifest=manifest, params=params)
    manifest["custom_neuron"] = {"process": CUSTOM_PROCESS, "layers": lowered.custom_layers,
                                 "note": CUSTOM_NOTE} if lowered.custom_layers else None
    return lowered


__all__ = ["LavaNet", "Layout", "lower", "check_target", "FORMAT_VERSION", "CUSTOM_PROCESS"]
