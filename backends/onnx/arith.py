"""The ONNX executor family of the rule table: the primitives as int64 ONNX operators.

:class:`OnnxOps` implements the primitives of :mod:`snn_compile.datapath.rules` on graph values
(names), so every rule and the generic population step (:mod:`snn_compile.datapath.step`) build
ONNX subgraphs. Operators with a fully specified integer behaviour only:

* a floor shift ``p >> k`` is ``(p - Mod(p, 2^k)) / 2^k`` (``Mod`` with ``fmod=0`` is the floor
  modulo): the division is exact, so it does not depend on how a runtime rounds integer ``Div``
  (onnxruntime truncates toward zero); ``BitShift`` is defined for unsigned types only;
* two rules are specialised (tested equal to the table): ``wrap(x) = Mod(x + 2^(b-1), 2^b) -
  2^(b-1)`` and the saturations as ``Clip``.
"""

from __future__ import annotations

from .builder import INT64, GraphBuilder


class OnnxOps:
    """:class:`~snn_compile.datapath.rules.Primitives` building int64 ONNX nodes."""

    def __init__(self, b: GraphBuilder):
        self.b = b
        self.special = {
            ("overflow", "wrap"): self._wrap,
            ("overflow", "saturate"): lambda x, bits: self._clip(x, 0, bits),
            ("overflow", "saturate_symmetric"): lambda x, bits: self._clip(x, 1, bits),
        }

    def const(self, value):
        return self.b.const(value)

    def _value(self, x):
        return x if isinstance(x, str) else self.const(x)

    def add(self, a, b):
        return self.b.op("Add", self._value(a), self._value(b))

    def sub(self, a, b):
        return self.b.op("Sub", self._value(a), self._value(b))

    def mul(self, a, b):
        return self.b.op("Mul", self._value(a), self._value(b))

    def shl(self, x, k: int):
        return x if k == 0 else self.b.op("Mul", x, self.const(1 << k))

    def shr(self, x, k: int):
        if k == 0:
            return x
        div = self.const(1 << k)
        return self.b.op("Div", self.b.op("Sub", x, self.b.op("Mod", x, div, fmod=0)), div)

    def gt(self, a, b):
        return self.b.op("Greater", self._value(a), self._value(b))

    def ge(self, a, b):
        return self.b.op("GreaterOrEqual", self._value(a), self._value(b))

    def where(self, cond, a, b):
        return self.b.op("Where", cond, self._value(a), self._value(b))

    def minimum(self, a, b):
        return self.b.op("Min", self._value(a), self._value(b))

    def maximum(self, a, b):
        return self.b.op("Max", self._value(a), self._value(b))

    def as_int(self, cond):
        return self.b.op("Cast", cond, to=INT64)

    def count(self, v, thr, cap: int):
        # max(v, 0) first: for non-negative values onnxruntime's truncating Div is the floor
        positive = self.b.op("Max", v, self.const(0))
        return self.b.op("Clip", self.b.op("Div", positive, self._value(thr)), self.const(0),
                         self.const(cap))

    def _wrap(self, x, bits: int):
        if bits >= 64:
            return x
        half, full = 1 << (bits - 1), 1 << bits
        shifted = self.b.op("Add", x, self.const(half))
        return self.b.op("Sub", self.b.op("Mod", shifted, self.const(full), fmod=0),
                         self.const(half))

    def _clip(self, x, lo_offset: int, bits: int):
        half = 1 << (bits - 1)
        return self.b.op("Clip", x, self.const(lo_offset - half), self.const(half - 1))
