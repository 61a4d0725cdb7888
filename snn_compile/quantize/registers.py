"""Register encodings of a target's neuron formats, shared by the quantizer and the backends.

* threshold = ``mant << threshold_shift`` with ``mant`` an unsigned ``neuron.threshold``
  mantissa (at least 1 for a spiking population);
* bias = ``mant << exp`` with a signed ``neuron.bias`` mantissa and ``0 <= exp <=
  bias_exp_max`` (one exponent for the population when possible);
* decays: multipliers ``m = round(beta * 2**decay_bits)`` within ``u_decay_range`` /
  ``v_decay_range``.

The quantizer produces values with these functions; a backend with fixed registers (Lava's
``vth``, ``bias_mant``/``bias_exp``, ``du``/``dv``) checks with the same functions that a value
it is given is representable.
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizationError


def threshold_mantissa(thr_int: np.ndarray, fmt) -> np.ndarray | None:
    """``thr >> threshold_shift`` when every threshold is ``mant << shift`` with a mantissa of
    the format (>= 1), else None."""
    thr = np.asarray(thr_int, np.int64)
    mant = thr >> fmt.threshold_shift
    if np.any(mant << fmt.threshold_shift != thr) or mant.min(initial=1) < 1 \
            or mant.max(initial=1) > fmt.threshold.max:
        return None
    return mant


def bias_exponent(bias: np.ndarray, fmt) -> int | None:
    """The smallest exponent ``e`` with every ``bias = mant << e`` a mantissa of the format."""
    bias = np.asarray(bias, np.int64)
    lo, hi = fmt.bias.min, fmt.bias.max
    for e in range(fmt.bias_exp_max + 1):
        mant = bias >> e
        if np.all(mant << e == bias) and mant.min(initial=0) >= lo and mant.max(initial=0) <= hi:
            return e
    return None


def bias_fits(bias: np.ndarray, fmt) -> bool:
    return bias_exponent(bias, fmt) is not None


def encode_bias(bias: np.ndarray, scale: np.ndarray, fmt, name: str) -> tuple[np.ndarray, float]:
    """Float ``bias`` (state units = ``bias * scale``) as ``mant << exp`` with one exponent;
    returns (integers in state units, max |error| in float units)."""
    target = bias * scale
    limit = fmt.bias.max
    for exp in range(fmt.bias_exp_max + 1):
        mant = np.rint(target / 2.0 ** exp)
        if np.abs(mant).max(initial=0) <= limit:
            q = mant.astype(np.int64) << exp
            return q, float(np.max(np.abs(q / scale - bias), initial=0.0))
    raise QuantizationError("bias does not fit the target's bias format", node=name,
                            value=f"{np.abs(bias).max():.4g} (= {np.abs(target).max():.4g} "
                                  f"state units > {limit} << {fmt.bias_exp_max})",
                            hint="reduce the bias or the layer's weight range")


def encode_decay(beta: np.ndarray, bits: int, allowed, name: str, what: str,
                 notes: list) -> tuple[np.ndarray, np.ndarray]:
    """Multipliers ``round(beta * 2**bits)`` within ``allowed``; a value moved to the range's
    edge (not just rounded) is reported in ``notes``. Returns (multipliers, effective decays)."""
    if beta.min() < 0 or beta.max() > 1:
        raise QuantizationError(f"{what} must lie in [0, 1]", node=name,
                                value=f"{beta.min():.4g}..{beta.max():.4g}")
    lo, hi = allowed
    rounded = np.rint(beta.reshape(-1) * (1 << bits)).astype(np.int64)
    m = np.clip(rounded, lo, hi)
    if np.any(m != rounded):
        i = int(np.argmax(m != rounded))
        notes.append(f"{what} {beta.reshape(-1)[i]:.6g} is outside the target's decay range and "
                     f"becomes {m[i] / (1 << bits):.6g} (multipliers {lo}..{hi} / 2^{bits})")
    return m, m / (1 << bits)


def compact(values: np.ndarray, shape) -> np.ndarray:
    """A scalar when all values are equal (per-layer registers), else the population array."""
    flat = np.asarray(values).reshape(-1)
    if flat.size and np.all(flat == flat[0]):
        return np.array(flat[0])
    return flat.reshape(shape)


def parameter_groups(shape, *registers) -> list[np.ndarray]:
    """Neurons that share every register of ``registers`` (arrays broadcasting to ``shape``,
    e.g. current decay, voltage decay, threshold): flat neuron indices, ascending, one array per
    distinct register set, the sets ordered by their first neuron."""
    size = int(np.prod(shape))
    keys = np.stack([np.broadcast_to(np.asarray(r, np.int64), shape).reshape(-1)
                     for r in registers], axis=1) if registers else np.zeros((size, 1), np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    inverse = inverse.reshape(-1)
    return [np.flatnonzero(inverse == g) for g in np.argsort(first)]


# ----------------------------------------------------------------------------- bias sources
#
# A target without a synaptic-current bias but with ``features.bias_source`` adds the bias as
# the input of a projection from a neuron that spikes every step: the bias is ``w << e`` with
# ``w`` a weight of the target's grid and ``e`` a weight exponent (see passes/bias_source.py).


def _source_bias_range(mixed: bool, target) -> tuple[int, int, bool]:
    """``(lo, hi, even)`` of a bias-source weight: symmetric, even when both signs occur on a
    target that keeps only even mixed-sign weights."""
    top = target.weights.type.max
    even = mixed and target.weights.mixed_sign_even
    return (-top - 1, top - 1, True) if even else (-top, top, False)


def _source_exponents(target) -> range:
    return range(max(0, target.weights.exp_min), target.weights.exp_max + 1)


def encode_source_bias(bias: np.ndarray, target, name: str) -> np.ndarray:
    """Float ``bias`` (synaptic-input units) as integers ``w << e`` of a bias source: ``e`` the
    smallest exponent for which every rounded ``w`` fits the weight grid."""
    bias = np.asarray(bias, np.float64)
    lo, hi, even = _source_bias_range(bool(np.any(bias > 0) and np.any(bias < 0)), target)
    step = 2 if even else 1
    for e in _source_exponents(target):
        w = np.rint(bias / (step << e)).astype(np.int64) * step
        if w.min(initial=0) >= lo and w.max(initial=0) <= hi:
            return w << e
    raise QuantizationError("synaptic-current bias does not fit the bias source's weights",
                            node=name, value=f"max |bias| = {np.abs(bias).max():.6g} state "
                                             f"units > {hi} << {target.weights.exp_max} = "
                                             f"{hi << target.weights.exp_max}",
                            hint="reduce the bias, or the layer's weights (a smaller weight "
                                 "range gives the bias more room)")


def source_bias_weights(values: np.ndarray, target, name: str) -> tuple[np.ndarray, int]:
    """``(w, e)`` with ``w << e == values`` exactly (integers in synaptic-input units), ``w`` on
    the target's weight grid; QuantizationError with the numbers when there is none."""
    values = np.asarray(values, np.int64)
    lo, hi, even = _source_bias_range(bool(np.any(values > 0) and np.any(values < 0)), target)
    for e in _source_exponents(target):
        w = values >> e
        if np.all(w << e == values) and w.min(initial=0) >= lo and w.max(initial=0) <= hi \
                and (not even or np.all(w % 2 == 0)):
            return w, e
    exps = _source_exponents(target)
    raise QuantizationError("synaptic-current bias is not a bias-source weight << exponent",
                            node=name, value=f"bias {values.min()}..{values.max()}; weights "
                                             f"{lo}..{hi}{' (even)' if even else ''} << "
                                             f"{exps.start}..{exps.stop - 1}",
                            hint="quantize the network for this target (the quantizer puts "
                                 "biases on this grid)")
