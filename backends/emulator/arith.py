"""Integer arithmetic rules of the targets, as tables of numpy functions.

Each function works elementwise on int64 (or int32) arrays and is exact for values below 2**62.
A function may return its argument itself when it changes nothing; never modify the result in
place without owning the argument.
"""

from __future__ import annotations

import numpy as np


def _within(x, lo: int, hi: int) -> bool:
    """lo <= x <= hi everywhere (two reductions, no temporary array)."""
    return x.size == 0 or (lo <= x.min() and x.max() <= hi)


def wrap(x, bits: int):
    """Two's complement wrap into [-2^(bits-1), 2^(bits-1))."""
    if bits >= 64:
        return x
    half = 1 << (bits - 1)
    if _within(x, -half, half - 1):  # the common case: no new array
        return x
    return ((x + half) & ((1 << bits) - 1)) - half


def wrap_lava(x, bits: int):
    """Lava's single-pass wrap into (-2^(bits-1), 2^(bits-1)] (lava/proc/lif/models.py:161-171)."""
    half, full = 1 << (bits - 1), 1 << bits
    if _within(x, 1 - half, half):
        return x
    return np.where(x > half, x - full, np.where(x <= -half, x + full, x))


def saturate(x, bits: int):
    """Clip into [-2^(bits-1), 2^(bits-1) - 1]."""
    half = 1 << (bits - 1)
    return np.clip(x, -half, half - 1)


def saturate_symmetric(x, bits: int):
    """Clip into [-(2^(bits-1) - 1), 2^(bits-1) - 1]."""
    half = 1 << (bits - 1)
    return np.clip(x, -(half - 1), half - 1)


OVERFLOW = {
    "wrap": wrap,
    "wrap_lava": wrap_lava,
    "saturate": saturate,
    "saturate_symmetric": saturate_symmetric,
}


def shift_toward_zero(p, k: int):
    """sign(p) * (|p| >> k): Lava's sign-magnitude shift.

    Computed as (p + (2^k - 1 if p < 0)) >> k: adding 2^k - 1 before the floor shift rounds a
    negative p up, i.e. toward zero.
    """
    return (p + (p < 0) * ((1 << k) - 1)) >> k


def shift_floor(p, k: int):
    """p >> k (arithmetic shift, floor): ap_int's >>."""
    return p >> k


def shift_nearest(p, k: int):
    """Round half up: (p + 2^(k-1)) >> k."""
    return (p + (1 << (k - 1))) >> k if k > 0 else p


ROUNDING = {
    "toward_zero": shift_toward_zero,
    "floor": shift_floor,
    "nearest": shift_nearest,
}


def shift_left(x, exp: int):
    """x << exp, or a floor shift x >> -exp for negative exponents (Lava Dense weight_exp)."""
    if exp == 0:
        return x
    return x << exp if exp > 0 else x >> -exp


def passes(v, threshold, test: str):
    """The spike test: v > threshold or v >= threshold."""
    return v > threshold if test == ">" else v >= threshold
