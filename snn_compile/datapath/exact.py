"""The primitives on Python integers: the executable specification's arithmetic.

Values are Python ``int`` or numpy ``object`` arrays of them, so nothing can overflow by accident;
the datapath's 64-bit two's complement width is applied explicitly after every sum, difference,
product and left shift (:func:`wrap64`). Slow and obviously right; the fast families are tested
against it.
"""

from __future__ import annotations

import numpy as np

_HALF, _FULL = 1 << 63, 1 << 64


def wrap64(x):
    """Two's complement wrap of Python integers (or an object array of them) to 64 bits."""
    return (x + _HALF) % _FULL - _HALF


def as_exact(value):
    """An int, or an object array of Python ints, from any integer value or array."""
    arr = np.asarray(value)
    if arr.ndim == 0:
        return int(arr)
    return np.vectorize(int, otypes=[object])(arr) if arr.size else arr.astype(object)


class ExactOps:
    """:class:`~snn_compile.datapath.rules.Primitives` on Python integers."""

    def const(self, value):
        return as_exact(value)

    def add(self, a, b):
        return wrap64(a + b)

    def sub(self, a, b):
        return wrap64(a - b)

    def mul(self, a, b):
        return wrap64(a * b)

    def shl(self, x, k: int):
        return wrap64(x * (1 << k))

    def shr(self, x, k: int):
        return x // (1 << k)  # Python's // is the floor division

    def gt(self, a, b):
        return np.asarray(np.greater(a, b), dtype=bool)

    def ge(self, a, b):
        return np.asarray(np.greater_equal(a, b), dtype=bool)

    def where(self, cond, a, b):
        out = np.where(cond, a, b)
        return out if out.ndim else out.item()

    def minimum(self, a, b):
        out = np.minimum(a, b)
        return out if np.ndim(out) else out.item() if hasattr(out, "item") else out

    def maximum(self, a, b):
        out = np.maximum(a, b)
        return out if np.ndim(out) else out.item() if hasattr(out, "item") else out

    def as_int(self, cond):
        out = np.where(cond, 1, 0)
        return out.astype(object) if out.ndim else int(out)

    def count(self, v, thr, cap: int):
        out = np.minimum(np.maximum(v // thr, 0), cap)
        return out if np.ndim(out) else int(out)
