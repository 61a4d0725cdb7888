"""The primitives as C: an executor family that writes the datapath as C statements.

Where the other families compute, this one records: every primitive appends one statement
``const int64_t tN = <expression>;`` to :attr:`CFamily.lines` and returns the name ``tN``, so a
rule or the whole generic step (:mod:`.step`) applied to this family becomes straight-line C that
the native emulator compiles (:mod:`snn_compile.emulator.kernel_source`). Nothing is written by
hand per rule: a new rule in the table needs no kernel edit.

Values are C expressions of type ``int64_t``; booleans are ``int64_t`` 0/1. Sums, differences,
products and left shifts go through unsigned 64-bit arithmetic (``snn_add`` etc. in
``kernel_prelude.h``), which C defines as wrapping modulo 2**64: the datapath's 64-bit two's
complement width without relying on compiler flags. ``>>`` of a signed value is the arithmetic
(floor) shift with GCC and Clang.

Constants: Python integers become literals; an array (a per-neuron parameter) becomes a runtime
input ``P<k>[<index>]``, collected in :attr:`CFamily.arrays` for the caller to pass.

Two rules have shorter C forms (specialisations, tested equal to the table's definition like the
numpy family's): ``wrap`` at ``bits < 64`` is ``(x << (64 - bits)) >> (64 - bits)`` (the low
bits, sign-extended) and ``toward_zero`` adds ``2**k - 1`` to negative products through the sign
mask ``p >> 63`` instead of a multiplication.
"""

from __future__ import annotations

import numpy as np

INT64_MIN = -(1 << 63)


def literal(value: int) -> str:
    """A C literal of the 64-bit integer ``value`` (wrapped into int64 first)."""
    value = (int(value) + (1 << 63)) % (1 << 64) - (1 << 63)
    if value == INT64_MIN:
        return "INT64_MIN"
    return f"INT64_C({value})" if value >= 0 else f"(-INT64_C({-value}))"


class CFamily:
    """:class:`~snn_compile.datapath.rules.Primitives` writing C statements.

    ``index`` is the C name of the element index that per-neuron arrays are read at, ``prefix``
    names the temporaries (several families may write into one C function).
    """

    def _wrap(self, x, bits: int):
        if bits >= 64:
            return x
        return self.let(f"((int64_t)((uint64_t)({x}) << {64 - bits}) >> {64 - bits})")

    def _toward_zero(self, p, k: int):
        if k == 0:
            return p
        mask = literal((1 << k) - 1)
        return self.let(f"(snn_add({p}, ({p} >> 63) & {mask}) >> {k})")

    @property
    def special(self):
        return {("overflow", "wrap"): self._wrap, ("rounding", "toward_zero"): self._toward_zero}

    def __init__(self, index: str = "j", prefix: str = "t", array_prefix: str = "P"):
        self.index, self.prefix, self.array_prefix = index, prefix, array_prefix
        self.lines: list[str] = []
        self.arrays: list[np.ndarray] = []
        self._count = 0

    def let(self, expr: str) -> str:
        """A new temporary holding ``expr``; returns its name."""
        name = f"{self.prefix}{self._count}"
        self._count += 1
        self.lines.append(f"const int64_t {name} = {expr};")
        return name

    # ------------------------------------------------------------------ primitives
    def const(self, value):
        arr = np.asarray(value)
        if arr.ndim == 0:
            return literal(int(arr))
        self.arrays.append(np.ascontiguousarray(arr.reshape(-1), dtype=np.int64))
        return f"{self.array_prefix}{len(self.arrays) - 1}[{self.index}]"

    def add(self, a, b):
        return self.let(f"snn_add({a}, {b})")

    def sub(self, a, b):
        return self.let(f"snn_sub({a}, {b})")

    def mul(self, a, b):
        return self.let(f"snn_mul({a}, {b})")

    def shl(self, x, k: int):
        if k >= 64:  # every bit shifted out (a C shift this wide would be undefined)
            return literal(0)
        return self.let(f"snn_shl({x}, {int(k)})")

    def shr(self, x, k: int):
        return self.let(f"({x} >> {min(int(k), 63)})")  # >> 63 already gives 0 or -1

    def gt(self, a, b):
        return self.let(f"(int64_t)({a} > {b})")

    def ge(self, a, b):
        return self.let(f"(int64_t)({a} >= {b})")

    def where(self, cond, a, b):
        return self.let(f"({cond} ? {a} : {b})")

    def minimum(self, a, b):
        return self.let(f"({a} < {b} ? {a} : {b})")

    def maximum(self, a, b):
        return self.let(f"({a} > {b} ? {a} : {b})")

    def as_int(self, cond):
        return cond  # booleans are already int64 0/1

    def count(self, v, thr, cap: int):
        return self.let(f"snn_count({v}, {thr}, {literal(cap)})")
