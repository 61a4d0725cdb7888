"""SnnLIF: a Loihi 2 LIF compartment with the neuron variants the standard Lava LIF lacks.

Standalone module (numpy + lava only): snn-compile imports it in-process and copies it verbatim
into bring-up bundles. Import lava through the Python 3.11 shim before importing this module.

.. warning::
   ``SnnLIF`` exists only as a Lava ``fixed_pt`` *Python* process model. Real Loihi 2 hardware
   has no standard compartment with subtract reset, next-step reset timing, a ``>=`` spike test,
   multi-spike (count) output or a membrane floor: running such a population on the chip needs
   a custom neuron microcode program that performs the update below. There is no NcProcessModel
   for SnnLIF.

Registers are those of Lava's LIF (``du``, ``dv``, ``vth``, ``bias_mant``, ``bias_exp``) with
the same widths, plus ``v_floor``; the arithmetic is Loihi 2's (24-bit u with Lava's
single-pass wrap, 24-bit v saturating at +-(2**23 - 1), int32 intermediate sums, decays rounded
toward zero). Per time step, with ``thr = vth << 6``, ``bias = bias_mant << bias_exp``, ``a`` the
int32 synaptic input, ``test`` the spike test (``>`` or ``>=``) and ``v``, ``u`` the stored
states::

    r   = test(v, thr)            if reset != "none" and reset_timing != "immediate" else 0
    v0  = 0 where r else v        (reset "zero" keeping the input)
        = v                       otherwise
    u   = wrap24(int32(trunc0(u * (4095 - du) / 4096) + int32(a << 6)))
    y   = int32(trunc0(v0 * (4096 - dv) / 4096) + u + bias - (r * thr if reset == "subtract"))
    v'  = clip(y, -(2**23 - 1), 2**23 - 1)
    v'  = 0 where r               (reset "zero" with reset_discards_input)
    s   = test(v', thr)           if spiking else 0                  (max_spikes == 1)
        = clip(floor(v' / thr), 0, max_spikes)                       (max_spikes > 1: a count)
    v   = v'                                                  (reset_timing "next_step")
        = clip(int32(v' - (s - r) * thr), +-(2**23 - 1))      (same_step or immediate, subtract)
        = v' - (s - r) * v'                                   (same_step or immediate, zero)
        = 0 where s > 0 else v'                               (multi-spike, zero)
    v   = max(v, v_floor)                                     (with a membrane floor)

``wrap24(x)`` is ``x - 2**24`` if ``x > 2**23``, ``x + 2**24`` if ``x <= -2**23``; ``trunc0``
rounds toward zero; ``int32`` wraps two's complement. The spike output is ``s`` as an int32
payload (a count for a multi-spike population: its receivers run with graded messages). This is
the integer datapath of ``snn_compile.ir.fixed`` for the loihi2 target, line by line. With
``reset="zero"``, ``reset_timing="same_step"``, ``spike_test=">"``, ``spiking=True``, one spike and
no floor it equals Lava's LIF.
"""

from __future__ import annotations

import numpy as np
from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.process.variable import Var
from lava.magma.core.resources import CPU
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

STATE_LIMIT = (1 << 23) - 1     # v saturates at +-(2**23 - 1)
U_HALF, U_FULL = 1 << 23, 1 << 24
DECAY_SHIFT = 12
ACT_SHIFT = 6
VTH_SHIFT = 6

SPIKE_TESTS = {">": np.greater, ">=": np.greater_equal}
RESETS = ("zero", "subtract", "none")
TIMINGS = ("same_step", "next_step", "immediate")


def wrap32(x: np.ndarray) -> np.ndarray:
    """Two's complement wrap of int64 values to int32's range (kept as int64)."""
    return ((x + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def wrap24_lava(x: np.ndarray) -> np.ndarray:
    """Lava's single-pass wrap into (-2**23, 2**23] (lava/proc/lif/models.py:161-171)."""
    return np.where(x > U_HALF, x - U_FULL, np.where(x <= -U_HALF, x + U_FULL, x))


def decay(x: np.ndarray, keep: int) -> np.ndarray:
    """int32(trunc0(x * keep / 4096)) in int64."""
    p = x * keep
    return wrap32(np.sign(p) * (np.abs(p) >> DECAY_SHIFT))


def saturate(x: np.ndarray) -> np.ndarray:
    return np.clip(x, -STATE_LIMIT, STATE_LIMIT)


class SnnLIF(AbstractProcess):
    """LIF compartment with configurable reset (zero/subtract/none), reset timing
    (same_step/next_step/immediate), spike test ('>'/'>='), non-spiking readout, multi-spike
    count output (``max_spikes > 1``, immediate reset) and membrane floor (``v_floor``).

    See the module docstring for the exact per-step update. Needs a custom neuron microcode
    program on real Loihi 2; runs in Lava simulation with ``select_tag="fixed_pt"``.
    """

    def __init__(self, *, shape, du: int, dv: int, vth: int, bias_mant=0, bias_exp=0,
                 reset: str = "subtract", reset_timing: str = "same_step",
                 spike_test: str = ">", reset_discards_input: bool = False,
                 spiking: bool = True, max_spikes: int = 1, v_floor=None,
                 name: str | None = None) -> None:
        if reset not in RESETS or reset_timing not in TIMINGS or spike_test not in SPIKE_TESTS:
            raise ValueError(f"SnnLIF: unsupported mode {reset!r}/{reset_timing!r}/"
                             f"{spike_test!r}")
        if max_spikes < 1 or (max_spikes > 1 and reset_timing != "immediate"):
            raise ValueError(f"SnnLIF: max_spikes {max_spikes!r} needs an immediate reset")
        super().__init__(shape=shape, reset=reset, reset_timing=reset_timing,
                         spike_test=spike_test, reset_discards_input=bool(reset_discards_input),
                         spiking=bool(spiking), max_spikes=int(max_spikes),
                         has_floor=v_floor is not None, name=name)
        self.a_in = InPort(shape=shape)
        self.s_out = OutPort(shape=shape)
        self.u = Var(shape=shape, init=0)
        self.v = Var(shape=shape, init=0)
        self.du = Var(shape=(1,), init=int(du))
        self.dv = Var(shape=(1,), init=int(dv))
        self.vth = Var(shape=(1,), init=int(vth))
        self.bias_mant = Var(shape=shape, init=bias_mant)
        self.bias_exp = Var(shape=shape, init=bias_exp)
        self.v_floor = Var(shape=shape, init=0 if v_floor is None else v_floor)


@implements(proc=SnnLIF, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySnnLIFModelFixed(PyLoihiProcessModel):
    """Bit-accurate fixed-point model of :class:`SnnLIF` (equations in the module docstring)."""

    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32, precision=24)
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32, precision=24)
    u: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    v: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)
    du: int = LavaPyType(int, np.uint16, precision=12)
    dv: int = LavaPyType(int, np.uint16, precision=12)
    vth: int = LavaPyType(int, np.int32, precision=17)
    bias_mant: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=13)
    bias_exp: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=3)
    v_floor: np.ndarray = LavaPyType(np.ndarray, np.int32, precision=24)

    def __init__(self, proc_params):
        super().__init__(proc_params)
        self.reset = proc_params["reset"]
        self.immediate = proc_params["reset_timing"] == "immediate"
        self.resets_now = proc_params["reset_timing"] in ("same_step", "immediate")
        self.test = SPIKE_TESTS[proc_params["spike_test"]]
        self.discards_input = proc_params["reset_discards_input"]
        self.spiking = proc_params["spiking"]
        self.max_spikes = proc_params["max_spikes"]
        self.has_floor = proc_params["has_floor"]

    def bias(self) -> np.ndarray:
        mant, exp = self.bias_mant.astype(np.int64), self.bias_exp.astype(np.int64)
        return np.where(exp >= 0, mant << np.maximum(exp, 0), mant >> np.maximum(-exp, 0))

    def run_spk(self) -> None:
        a = self.a_in.recv().astype(np.int64)
        u, v = self.u.astype(np.int64), self.v.astype(np.int64)
        thr = int(self.vth) << VTH_SHIFT
        zero, subtract = self.reset == "zero", self.reset == "subtract"

        flagged = self.reset != "none" and not self.immediate
        r = self.test(v, thr) if flagged else np.zeros(v.shape, bool)
        if zero and not self.discards_input:
            v = np.where(r, 0, v)
        u = wrap24_lava(wrap32(decay(u, 4095 - int(self.du)) + wrap32(a << ACT_SHIFT)))
        y = decay(v, 4096 - int(self.dv)) + u + self.bias()
        if subtract:
            y = y - r * thr
        v = saturate(wrap32(y))
        if zero and self.discards_input:
            v = np.where(r, 0, v)
        if self.spiking and self.max_spikes > 1:
            s = np.clip(np.floor_divide(v, thr), 0, self.max_spikes)
            if subtract:
                v = saturate(wrap32(v - s * thr))
            elif zero:
                v = np.where(s > 0, 0, v)
        else:
            s = self.test(v, thr) if self.spiking else np.zeros(v.shape, bool)
            change = s.astype(np.int64) - r
            if self.resets_now and subtract:
                v = saturate(wrap32(v - change * thr))
            elif self.resets_now and zero:
                v = v - change * v
        if self.has_floor:
            v = np.maximum(v, self.v_floor.astype(np.int64))

        self.u[:] = u
        self.v[:] = v
        self.s_out.send(s.astype(np.int32))
