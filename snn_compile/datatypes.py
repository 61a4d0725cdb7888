"""Integer number formats: the one datatype object every target field and backend uses.

A format is a two's complement (``int24``) or unsigned (``uint17``) integer of ``bits`` bits,
optionally scaled by a fixed left shift (``uint17<<6``: a 17-bit unsigned mantissa that the
hardware shifts left by 6, so the value is ``mantissa * 2**6``). Names are the canonical text form
used in target files and reports::

    IntType.parse("int9")      # [-256, 255]        (weights: 8 magnitude bits + sign)
    IntType.parse("uint17<<6") # 0, 64, ..., (2**17 - 1) * 64

``bits`` always counts every bit of the stored integer, the sign included, so ``int9`` holds
9 bits; there is no "magnitude bits" reading.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

_NAME = re.compile(r"^(u?int)(\d+)(?:<<(\d+))?$")
MAX_BITS = 64  # every datapath value is a 64-bit two's complement integer at most


@dataclass(frozen=True)
class IntType:
    """``bits``-bit integer, signed (two's complement) or unsigned, times ``2**shift``."""

    bits: int
    signed: bool = True
    shift: int = 0

    def __post_init__(self):
        if not isinstance(self.bits, int) or isinstance(self.bits, bool) \
                or not 1 <= self.bits <= MAX_BITS or (self.signed and self.bits < 2):
            raise ValueError(f"an integer format needs 1..{MAX_BITS} bits (2.. when signed), "
                             f"got {self.bits!r}")
        if not isinstance(self.shift, int) or not 0 <= self.shift < MAX_BITS:
            raise ValueError(f"shift must be 0..{MAX_BITS - 1}, got {self.shift!r}")

    @classmethod
    def parse(cls, value) -> "IntType":
        """``"int24"``, ``"uint17"``, ``"uint17<<6"`` (or an IntType) -> IntType."""
        if isinstance(value, IntType):
            return value
        match = _NAME.match(str(value).strip()) if isinstance(value, str) else None
        if match is None:
            raise ValueError(f"not an integer format: {value!r} (write e.g. 'int24', 'uint17' "
                             "or 'uint17<<6')")
        kind, bits, shift = match.groups()
        return cls(int(bits), kind == "int", int(shift or 0))

    @property
    def name(self) -> str:
        base = f"{'' if self.signed else 'u'}int{self.bits}"
        return f"{base}<<{self.shift}" if self.shift else base

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"IntType.parse({self.name!r})"

    @property
    def min(self) -> int:
        """Smallest mantissa."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        """Largest mantissa."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    def holds(self, values) -> bool:
        """True when every value is a representable *value* (mantissa << shift)."""
        arr = np.asarray(values, dtype=np.int64)
        if arr.size == 0:
            return True
        step = 1 << self.shift
        return bool(np.all(arr % step == 0) and arr.min() >= self.min * step
                    and arr.max() <= self.max * step)


def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's complement width (>= 2) holding every integer in ``[lo, hi]``."""
    lo, hi = int(lo), int(hi)
    need = max(hi.bit_length() if hi > 0 else 0, (-lo - 1).bit_length() if lo < 0 else 0)
    return max(2, need + 1)


BINARY = IntType(1, signed=False)  # 0/1 spikes
