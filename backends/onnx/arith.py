"""The targets' integer arithmetic rules as ONNX subgraphs on int64 values.

Same tables and semantics as the emulator's ``arith`` module (the golden model), built from
standard operators whose integer behaviour is fully specified:

* ``Mod`` with ``fmod=0`` is the floor modulo (result has the sign of the divisor), so
  ``wrap(x) = Mod(x + 2^(b-1), 2^b) - 2^(b-1)`` is two's complement wrapping.
* A floor shift ``p >> k`` is ``(p - Mod(p, 2^k)) / 2^k``: the division is exact, so it does
  not depend on how a runtime rounds integer ``Div`` (onnxruntime truncates toward zero).
  ``BitShift`` is not used because ONNX defines it for unsigned types only.

Every function takes the :class:`~.builder.GraphBuilder`, the input value name(s) and Python
parameters, and returns the name of the result. Values are exact below 2^62, like the emulator.
"""

from __future__ import annotations

from .builder import INT64, GraphBuilder


def wrap(b: GraphBuilder, x: str, bits: int) -> str:
    """Two's complement wrap into [-2^(bits-1), 2^(bits-1)) (identity from 63 bits up)."""
    if bits >= 63:  # values are below 2^62 (see module docstring): nothing to wrap
        return x
    half, full = 1 << (bits - 1), 1 << bits
    shifted = b.op("Add", x, b.const(half))
    return b.op("Sub", b.op("Mod", shifted, b.const(full), fmod=0), b.const(half))


def wrap_lava(b: GraphBuilder, x: str, bits: int) -> str:
    """Lava's single-pass wrap into (-2^(bits-1), 2^(bits-1)]: subtract or add 2^bits once."""
    half, full = 1 << (bits - 1), 1 << bits
    low = b.op("Where", b.op("LessOrEqual", x, b.const(-half)),
               b.op("Add", x, b.const(full)), x)
    return b.op("Where", b.op("Greater", x, b.const(half)), b.op("Sub", x, b.const(full)), low)


def saturate(b: GraphBuilder, x: str, bits: int) -> str:
    """Clip into [-2^(bits-1), 2^(bits-1) - 1]."""
    half = 1 << (bits - 1)
    return b.op("Clip", x, b.const(-half), b.const(half - 1))


def saturate_symmetric(b: GraphBuilder, x: str, bits: int) -> str:
    """Clip into [-(2^(bits-1) - 1), 2^(bits-1) - 1]."""
    half = 1 << (bits - 1)
    return b.op("Clip", x, b.const(-(half - 1)), b.const(half - 1))


OVERFLOW = {
    "wrap": wrap,
    "wrap_lava": wrap_lava,
    "saturate": saturate,
    "saturate_symmetric": saturate_symmetric,
}


def shift_floor(b: GraphBuilder, p: str, k: int) -> str:
    """``p >> k`` (floor) as an exact division of ``p - Mod(p, 2^k)``."""
    if k <= 0:
        return p
    div = b.const(1 << k)
    return b.op("Div", b.op("Sub", p, b.op("Mod", p, div, fmod=0)), div)


def shift_toward_zero(b: GraphBuilder, p: str, k: int) -> str:
    """``sign(p) * (|p| >> k)``: Lava's sign-magnitude shift."""
    if k <= 0:
        return p
    return b.op("Mul", b.op("Sign", p), shift_floor(b, b.op("Abs", p), k))


def shift_nearest(b: GraphBuilder, p: str, k: int) -> str:
    """Round half up: ``(p + 2^(k-1)) >> k``."""
    if k <= 0:
        return p
    return shift_floor(b, b.op("Add", p, b.const(1 << (k - 1))), k)


ROUNDING = {
    "toward_zero": shift_toward_zero,
    "floor": shift_floor,
    "nearest": shift_nearest,
}


def shift_left(b: GraphBuilder, x: str, exp: int) -> str:
    """``x << exp``, or the floor shift ``x >> -exp`` for a negative exponent."""
    if exp == 0:
        return x
    if exp > 0:
        return b.op("Mul", x, b.const(1 << exp))
    return shift_floor(b, x, -exp)


def passes(b: GraphBuilder, v: str, threshold: str, test: str) -> str:
    """The spike test as a bool value: ``v > threshold`` or ``v >= threshold``."""
    return b.op("Greater" if test == ">" else "GreaterOrEqual", v, threshold)


def as_int(b: GraphBuilder, flag: str) -> str:
    """A bool value as int64 0/1."""
    return b.op("Cast", flag, to=INT64)
