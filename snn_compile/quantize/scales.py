"""Weight grids and state scales of one population.

All projections into a population add up in one accumulator, so they share its state scale::

    S = s_w * 2**weight_exp * 2**activation_shift     (integer state units per float unit)

``s_w`` maps the largest incoming weight magnitude to the top of the target's weight grid (per
population, or per output neuron where the target allows it; per output channel when a
convolution feeds the population). ``weight_exp`` starts at 0 and goes down only when the
threshold mantissa or the state range would not fit (:func:`choose_scale`).
"""

from __future__ import annotations

import numpy as np

from ..errors import QuantizationError
from ..targets import Target

HEADROOM = 0.9  # use at most this fraction of a state's range on the calibration data


def _mixed(w: np.ndarray) -> bool:
    return bool(np.any(w > 0) and np.any(w < 0))


def weight_grid(target: Target, weights) -> tuple[bool, int]:
    """``(even, top)``: integer weights lie in ``[-top - (2 if even else 1), top]``, even only
    when the target drops the lowest bit of mixed-sign matrices and one of ``weights`` is mixed."""
    even = target.weights.mixed_sign_even and any(_mixed(w) for w in weights)
    return even, target.weights.type.max - (1 if even else 0)


def round_grid(x: np.ndarray, even: bool, top: int) -> np.ndarray:
    """Integers ``round(x)`` on the weight grid: even steps if ``even``, clipped to the range."""
    step = 2 if even else 1
    q = np.rint(x / step).astype(np.int64) * step
    return np.clip(q, -top - (2 if even else 1), top)


def exponent_range(target: Target, has_conv: bool) -> tuple[int, int]:
    """The weight exponents a population may use (0 when a convolution ignores them)."""
    w = target.weights
    return (w.exp_min, w.exp_max) if (w.conv_exp or not has_conv) else (0, 0)


def row_magnitude(proj, shape) -> np.ndarray:
    """max |w| of each target neuron over one projection, in the population ``shape``."""
    w = np.abs(proj.weight)
    if proj.kind == "dense":
        return w.max(axis=1, initial=0.0).reshape(shape)
    if proj.kind == "conv":
        per_channel = w.reshape(w.shape[0], -1).max(axis=1, initial=0.0)
        return np.broadcast_to(per_channel.reshape(-1, 1, 1), shape).astype(np.float64)
    return np.broadcast_to(w, shape).astype(np.float64)


def weight_peak(projections, shape, per_neuron: bool) -> np.ndarray:
    """Largest |weight| per population (shape ()) or per output neuron (``shape``); with a
    convolution among the inputs, one value per channel (its neurons share the kernel)."""
    rows = np.zeros(shape)
    for proj in projections:
        rows = np.maximum(rows, row_magnitude(proj, shape))
    if not per_neuron:
        return np.array(rows.max(initial=0.0))
    if any(p.kind == "conv" for p in projections):
        per_channel = rows.reshape(shape[0], -1).max(axis=1)
        rows = np.broadcast_to(per_channel.reshape(-1, 1, 1), shape)
    return np.asarray(rows, np.float64)


def row_sum(projections) -> float:
    """An upper bound of ``sum |w|`` into one neuron over every projection (one-step gain)."""
    total = 0.0
    for proj in projections:
        w = np.abs(proj.weight)
        if proj.kind == "elementwise":
            total += float(w.max(initial=0.0))
        else:
            total += float(w.reshape(w.shape[0], -1).sum(axis=1).max(initial=0.0))
    return total


def state_estimate(ranges: dict | None, key: str, projections, threshold) -> float:
    """Largest state magnitude: calibrated when data was given, else a one-step bound."""
    if ranges and ranges.get(key) is not None:
        return float(ranges[key])
    gain = row_sum(projections)
    thr = float(np.max(threshold))
    return float(max(2.0 * thr, gain)) if np.isfinite(thr) else float(gain)


def choose_scale(*, target: Target, s_w: np.ndarray, wmax: np.ndarray, exp_lo: int,
                 exp_hi: int, threshold: np.ndarray, spiking: bool, v_est: float, u_est: float,
                 name: str) -> tuple[np.ndarray, int]:
    """``(s_w, weight_exp)`` for which the threshold mantissa and the state range fit."""
    fmt = target.neuron
    gain = 2.0 ** (fmt.activation_shift - fmt.threshold_shift)
    mant_max = fmt.threshold.max
    v_lim = fmt.v.max * HEADROOM
    u_lim = fmt.u.max * HEADROOM
    thr = threshold if spiking else np.ones(threshold.shape)

    def fits(sw, e):
        s = np.max(sw * 2.0 ** e * 2.0 ** fmt.activation_shift)
        mant_ok = not spiking or np.max(thr * sw * 2.0 ** e * gain) <= mant_max
        return mant_ok and v_est * s <= v_lim and u_est * s <= u_lim

    wexp = min(max(0, exp_lo), exp_hi)
    while not fits(s_w, wexp) and wexp > exp_lo:
        wexp -= 1
    while not fits(s_w, wexp):
        s_w = s_w / 2.0
        if np.max(s_w) * (wmax.max() if wmax.size else 0) < 1:
            raise QuantizationError("state range cannot be represented", node=name,
                                    value=f"estimated max |v| = {v_est:.4g}",
                                    hint=f"target '{target.name}' has {fmt.v}-bit state; "
                                         "lower the weights or threshold")
    return s_w, wexp


def uniform_per_group(thr: np.ndarray, s_w: np.ndarray) -> bool:
    """True when neurons sharing a weight scale also share a threshold."""
    if np.ndim(s_w) == 0:
        return bool(np.ptp(thr) == 0)
    flat_s, flat_t = np.asarray(s_w).reshape(-1), np.broadcast_to(thr, np.shape(s_w)).reshape(-1)
    for value in np.unique(flat_s):
        if np.ptp(flat_t[flat_s == value]) != 0:
            return False
    return True


def land_threshold(target: Target, s_w: np.ndarray, wexp: int, threshold: np.ndarray,
                   name: str) -> np.ndarray:
    """``s_w`` nudged down so that ``threshold * S`` lands exactly on the threshold grid
    (possible when every scale group shares one threshold); otherwise ``s_w`` unchanged."""
    if not uniform_per_group(threshold, s_w):
        return s_w
    fmt = target.neuron
    gain = 2.0 ** (fmt.activation_shift - fmt.threshold_shift)
    t = np.broadcast_to(threshold, np.shape(s_w)) if np.ndim(s_w) else \
        threshold.reshape(-1)[0]
    mant = np.floor(t * s_w * 2.0 ** wexp * gain)
    if np.min(mant) < 1:
        raise QuantizationError("threshold too small for the weight grid", node=name,
                                value=float(np.min(threshold)))
    return mant / (t * 2.0 ** wexp * gain)
