"""The rule table: every integer rule of the targets' datapaths, defined once.

A rule is a pure function of integers written against a small set of *primitive operations*
(:class:`Primitives`): addition, subtraction, multiplication, shifts, comparisons, ``where``,
minimum and maximum, all on 64-bit two's complement integers. Each executor family implements the
primitives once and gets every rule from this table:

* :mod:`.exact` - Python integers, the executable specification (:mod:`.reference`);
* :mod:`.numpy_ops` - the numpy emulator (vectorised int64, with range fast paths);
* :mod:`snn_compile.grid` - torch, straight-through, for quantization-aware training;
* ``backends/onnx/arith.py`` - ONNX operators.

The HLS headers (``backends/hls/include/snn_arith.h``) and Lava's process model
(``backends/loihi/processes.py``) are hand-written executors for other toolchains; a test walks
this table and proves that each backend implements or explicitly refuses each rule.

Rule kinds (the target field that names the rule):

``overflow`` (``neuron.u_overflow``, ``neuron.v_overflow``): bring a value into a ``bits``-bit
register; ``rounding`` (``neuron.decay_rounding``): the shift ``p >> k`` of a decay product;
``spike_test`` (a population's ``spike_test``): the comparison of the membrane with the threshold.
``wrap`` (two's complement wrapping at a width) is also the accumulators' and intermediates' rule.

To add a rule: add an entry here (a function of primitives and a docstring), add it to the HLS
header and Lava process model or declare it refused in those backends' capabilities, and the
rule-walk test (``tests/test_datapath.py``) checks every family against the specification.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Protocol


class Primitives(Protocol):
    """What an executor family provides; ``x``/``a``/``b`` are its values, ``k`` Python ints.

    Every result is a 64-bit two's complement integer (sums and products wrap at 64 bits).
    """

    def const(self, value): ...
    def add(self, a, b): ...
    def sub(self, a, b): ...
    def mul(self, a, b): ...
    def shl(self, x, k: int): ...        # x * 2**k
    def shr(self, x, k: int): ...        # floor(x / 2**k)
    def gt(self, a, b): ...              # boolean a > b
    def ge(self, a, b): ...              # boolean a >= b
    def where(self, cond, a, b): ...
    def minimum(self, a, b): ...
    def maximum(self, a, b): ...
    def as_int(self, cond): ...          # boolean -> 0/1
    def count(self, v, thr, cap: int): ...  # clip(floor(v / thr), 0, cap), thr > 0


@dataclass(frozen=True)
class Rule:
    """One named rule: ``apply(ops, x, param)`` with ``param`` a width (overflow), a shift
    (rounding) or the threshold (spike tests). ``value_preserving`` rules leave in-range values
    unchanged (their straight-through gradient is 1); the others are shifts (gradient
    ``2**-k``) or comparisons (a surrogate gradient)."""

    kind: str
    name: str
    apply: Callable
    doc: str
    value_preserving: bool = True


# ----------------------------------------------------------------------------- overflow

def wrap(o, x, bits: int):
    """Two's complement wrap into ``[-2**(bits-1), 2**(bits-1))``:
    ``x - 2**bits * floor((x + 2**(bits-1)) / 2**bits)``; a no-op at 64 bits."""
    if bits >= 64:
        return x
    half = 1 << (bits - 1)
    t = o.add(x, o.const(half))
    return o.sub(o.sub(t, o.shl(o.shr(t, bits), bits)), o.const(half))


def wrap_lava(o, x, bits: int):
    """Lava's single-pass wrap into ``(-2**(bits-1), 2**(bits-1)]`` (lava/proc/lif/models.py:
    161-171): ``x - 2**bits`` above ``2**(bits-1)``, ``x + 2**bits`` at or below its negative."""
    half, full = 1 << (bits - 1), 1 << bits
    above = o.gt(x, o.const(half))
    below = o.ge(o.const(-half), x)
    return o.where(above, o.sub(x, o.const(full)), o.where(below, o.add(x, o.const(full)), x))


def saturate(o, x, bits: int):
    """Clip into ``[-2**(bits-1), 2**(bits-1) - 1]``."""
    half = 1 << (bits - 1)
    return o.minimum(o.maximum(x, o.const(-half)), o.const(half - 1))


def saturate_symmetric(o, x, bits: int):
    """Clip into ``[-(2**(bits-1) - 1), 2**(bits-1) - 1]`` (Lava's voltage)."""
    half = 1 << (bits - 1)
    return o.minimum(o.maximum(x, o.const(1 - half)), o.const(half - 1))


# ----------------------------------------------------------------------------- rounding

def toward_zero(o, p, k: int):
    """``sign(p) * (|p| >> k)`` (Lava's sign-magnitude shift), computed as
    ``(p + (2**k - 1 if p < 0 else 0)) >> k``."""
    if k == 0:
        return p
    negative = o.as_int(o.gt(o.const(0), p))
    return o.shr(o.add(p, o.mul(negative, o.const((1 << k) - 1))), k)


def floor(o, p, k: int):
    """``p >> k``: the arithmetic (floor) shift of ap_int and two's complement CPUs."""
    return o.shr(p, k) if k else p


def nearest(o, p, k: int):
    """Round half up: ``(p + 2**(k-1)) >> k``."""
    return o.shr(o.add(p, o.const(1 << (k - 1))), k) if k else p


# ----------------------------------------------------------------------------- spike tests

def greater(o, v, thr):
    """``v > thr`` (snnTorch, Lava)."""
    return o.gt(v, thr)


def greater_equal(o, v, thr):
    """``v >= thr`` (Sinabs, Rockpool)."""
    return o.ge(v, thr)


def _table(*rules: Rule) -> dict[str, dict[str, Rule]]:
    out: dict[str, dict[str, Rule]] = {}
    for rule in rules:
        out.setdefault(rule.kind, {})[rule.name] = rule
    return out


RULES: dict[str, dict[str, Rule]] = _table(
    Rule("overflow", "wrap", wrap, wrap.__doc__),
    Rule("overflow", "wrap_lava", wrap_lava, wrap_lava.__doc__),
    Rule("overflow", "saturate", saturate, saturate.__doc__),
    Rule("overflow", "saturate_symmetric", saturate_symmetric, saturate_symmetric.__doc__),
    Rule("rounding", "toward_zero", toward_zero, toward_zero.__doc__, value_preserving=False),
    Rule("rounding", "floor", floor, floor.__doc__, value_preserving=False),
    Rule("rounding", "nearest", nearest, nearest.__doc__, value_preserving=False),
    Rule("spike_test", ">", greater, greater.__doc__, value_preserving=False),
    Rule("spike_test", ">=", greater_equal, greater_equal.__doc__, value_preserving=False),
)

#: The neuron features of the step (:mod:`.step`): each is a static switch of a population.
FEATURES: dict[str, tuple] = {
    "reset": ("zero", "subtract", "none"),
    "reset_timing": ("same_step", "next_step", "immediate"),
    "reset_discards_input": (False, True),
    "has_current": (False, True),
    "spiking": (True, False),
    "input_bias": (False, True),
    "multi_spike": (False, True),
    "membrane_floor": (False, True),
}


def rule(kind: str, name: str) -> Rule:
    """The rule ``name`` of ``kind``; KeyError lists the known ones."""
    try:
        return RULES[kind][name]
    except KeyError:
        raise KeyError(f"no {kind} rule {name!r}; known: {sorted(RULES.get(kind, {}))}") from None
