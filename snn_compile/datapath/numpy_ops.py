"""The primitives on numpy int64 arrays: the emulator's arithmetic.

numpy's int64 sums, differences, products and left shifts wrap modulo 2**64, which is the
datapath's 64-bit width, and ``>>`` on int64 is the floor shift, so every rule of the table runs
as written. Two rules are specialised for speed (and tested equal to the table's definition):
``wrap`` and ``saturate*`` return their argument itself when it is already in range, which is the
common case and saves a pass over memory.
"""

from __future__ import annotations

import numpy as np


def _within(x, lo: int, hi: int) -> bool:
    """lo <= x <= hi everywhere (two reductions, no temporary array)."""
    x = np.asarray(x)
    return x.size == 0 or (lo <= x.min() and x.max() <= hi)


def _wrap(x, bits: int):
    if bits >= 64:
        return x
    half = 1 << (bits - 1)
    if _within(x, -half, half - 1):
        return x
    return ((x + half) & ((1 << bits) - 1)) - half


def _saturate(lo_offset: int):
    def clip(x, bits: int):
        half = 1 << (bits - 1)
        lo, hi = lo_offset - half, half - 1
        return x if _within(x, lo, hi) else np.clip(x, lo, hi)
    return clip


class NumpyOps:
    """:class:`~snn_compile.datapath.rules.Primitives` on int64 numpy arrays."""

    special = {
        ("overflow", "wrap"): _wrap,
        ("overflow", "saturate"): _saturate(0),
        ("overflow", "saturate_symmetric"): _saturate(1),
    }

    def const(self, value):
        return np.asarray(value, dtype=np.int64)

    def add(self, a, b):
        return np.add(a, b, dtype=np.int64)

    def sub(self, a, b):
        return np.subtract(a, b, dtype=np.int64)

    def mul(self, a, b):
        return np.multiply(a, b, dtype=np.int64)

    def shl(self, x, k: int):
        return np.left_shift(np.asarray(x, dtype=np.int64), k)

    def shr(self, x, k: int):
        return np.right_shift(np.asarray(x, dtype=np.int64), k)

    def gt(self, a, b):
        return np.greater(a, b)

    def ge(self, a, b):
        return np.greater_equal(a, b)

    def where(self, cond, a, b):
        return np.where(cond, a, b).astype(np.int64, copy=False)

    def minimum(self, a, b):
        return np.minimum(a, b)

    def maximum(self, a, b):
        return np.maximum(a, b)

    def as_int(self, cond):
        return np.asarray(cond).astype(np.int64)

    def count(self, v, thr, cap: int):
        return np.clip(np.floor_divide(v, thr), 0, cap).astype(np.int64)


NUMPY = NumpyOps()
