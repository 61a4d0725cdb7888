"""Lava 0.10 register fields of a Loihi 2 compartment and synapse, each checked to be exact.

The values come from the QNetwork in the effective form of its target (thresholds and biases
already shifted, decays as multipliers ``m``); the widths come from the target data (the Lava
backend requires the loihi2 datapath, so they are Lava's). What each field means in Lava
(``lava/proc/lif/models.py``, ``dense/models.py``, ``utils/weightutils.py``):

* ``du = 2**decay_bits - 1 - m_u`` (Lava multiplies u by ``4095 - du``; ``du = 4095`` without
  current memory), ``dv = 2**decay_bits - m_v`` (v times ``4096 - dv``); both 12-bit unsigned;
* ``vth = threshold >> threshold_shift``: an unsigned ``neuron.threshold`` mantissa, at least 1;
* ``bias = bias_mant << bias_exp``: a ``neuron.bias`` mantissa, ``0 <= bias_exp <= bias_exp_max``,
  one exponent for the process when one fits every neuron, else one per neuron;
* weights: Lava derives a sign mode from the matrix, clips to 8 magnitude bits and, for a matrix
  with both signs, drops the lowest bit; a weight Lava would change is refused;
* ``weight_exp`` within ``weights.exp_min..exp_max``; an extra delay ``d - 1`` of ``DelayDense``
  within ``0..features.max_synapse_delay``.

Every refusal is an :class:`UnsupportedError` naming the node, the value and the range.
"""

from __future__ import annotations

import numpy as np

from snn_compile.errors import UnsupportedError
from snn_compile.quantize import registers as reg

INT32_LIMIT = 1 << 31


def _check(node: str, key: str, value: int, lo: int, hi: int, what: str) -> int:
    if not lo <= value <= hi:
        raise UnsupportedError(f"{key} is not representable in Lava ({what})", node=node,
                               value=value, hint=f"Lava's {key} holds {lo}..{hi}")
    return int(value)


def decay_registers(node: str, m_u: int, m_v: int, has_current: bool, fmt) -> tuple[int, int]:
    """``(du, dv)`` of multipliers ``m_u`` (ignored without current memory) and ``m_v``."""
    unity = 1 << fmt.decay_bits
    du = unity - 1 - m_u if has_current else unity - 1
    dv = unity - m_v
    du = _check(node, "du", du, 0, unity - 1, f"current multiplier {m_u}")
    dv = _check(node, "dv", dv, 0, unity - 1, f"voltage multiplier {m_v}")
    return du, dv


def threshold_register(node: str, threshold: int, fmt) -> int:
    """``vth``: the threshold's mantissa."""
    mant = reg.threshold_mantissa(np.array([threshold]), fmt)
    if mant is None:
        raise UnsupportedError("threshold is not vth << threshold_shift with a Lava vth",
                               node=node, value=int(threshold),
                               hint=f"vth holds 1..{fmt.threshold.max}, the threshold is "
                                    f"vth << {fmt.threshold_shift}")
    return int(mant[0])


def bias_registers(node: str, bias: np.ndarray, fmt):
    """``(bias_mant, bias_exp)`` of ``bias`` (any shape): ints when one exponent and one mantissa
    serve every neuron, else int arrays of ``bias``'s shape (Lava takes both per neuron)."""
    bias = np.asarray(bias, np.int64)
    shared = reg.bias_exponent(bias, fmt)
    if shared is not None:
        mant = bias >> shared
        if mant.size and np.all(mant == mant.flat[0]):
            return int(mant.flat[0]), shared
        return mant, shared
    exps = np.full(bias.shape, -1, np.int64)
    lo, hi = fmt.bias.min, fmt.bias.max
    for e in range(fmt.bias_exp_max, -1, -1):  # the smallest exponent that fits, per neuron
        mant = bias >> e
        exps = np.where((mant << e == bias) & (mant >= lo) & (mant <= hi), e, exps)
    if np.any(exps < 0):
        raise UnsupportedError("bias is not representable as bias_mant << bias_exp", node=node,
                               value=int(bias[exps < 0].flat[0]),
                               hint=f"mantissa {lo}..{hi}, exponent 0..{fmt.bias_exp_max}")
    return bias >> exps, exps


def sign_modes(target) -> dict:
    """Lava's sign modes: name -> (lowest, highest, must be even) of the weights it keeps."""
    top = target.weights.type.max
    even = target.weights.mixed_sign_even
    return {"EXCITATORY": (0, top, False), "INHIBITORY": (-top, 0, False),
            "MIXED": (target.weights.type.min, top - (1 if even else 0), even)}


def sign_mode(node: str, w: np.ndarray, target) -> str:
    """The sign mode Lava derives from weights ``w``, after checking that it keeps them all."""
    w = np.asarray(w)
    name = "EXCITATORY" if w.min(initial=0) >= 0 else \
        "INHIBITORY" if w.max(initial=0) <= 0 else "MIXED"
    lo, hi, even = sign_modes(target)[name]
    bad = (w < lo) | (w > hi) | ((w % 2 != 0) if even else False)
    if np.any(bad):
        raise UnsupportedError(f"weight not representable in Lava's {name} weights", node=node,
                               value=int(w[bad].flat[0]),
                               hint=f"{name} weights lie in [{lo}, {hi}]"
                                    + (" and are even" if even else "")
                                    + "; quantize the network for the loihi2 target")
    return name


def weight_exponent(node: str, exp: int, target) -> int:
    w = target.weights
    return _check(node, "weight_exp", exp, w.exp_min, w.exp_max, "dendritic exponent")


def extra_delay(node: str, delay: int, target) -> int:
    """Lava's ``DelayDense``/``DelaySparse`` delay for a projection of ``delay`` steps: each
    synapse process adds one step, so the extra delay is ``delay - 1``."""
    sd = target.timing.synapse_delay
    if delay < sd:
        raise UnsupportedError("a projection delivers sooner than Lava's synapses can",
                               node=node, value=f"delay {delay}",
                               hint=f"every Lava synapse adds {sd} step; quantize for loihi2")
    return _check(node, "delay", delay - sd, 0, target.features.max_synapse_delay,
                  f"total delay {delay} steps")


def check_pre_shift_sum(node: str, x_max: int, row_sum: int, exp: int) -> None:
    """Lava sums graded inputs in int32 *before* a negative ``weight_exp`` shift (the emulator
    shifts the exact sum); refuse when that sum can wrap."""
    bound = x_max * row_sum
    if exp < 0 and bound >= INT32_LIMIT:
        raise UnsupportedError("the dendritic sum can wrap in Lava's int32 before the negative "
                               "weight_exp shift", node=node,
                               value=f"max |x| {x_max} x max row sum |w| {row_sum} = {bound}",
                               hint="use fewer input bits or a non-negative weight_exp")
