"""What a run records, and in which number types: shared by every emulator engine.

``record`` is ``"all"`` (spikes, u and v of every population), ``"spikes"`` (every
population's spikes; ``v`` too for a non-spiking output, whose output it is), ``"output"``
(all states of the output population only) or a collection of population names (all states of
those, and of the output population).

Recorded arrays are ``[T, B, *shape]``: spikes as :func:`~snn_compile.datapath.step.spike_dtype`
(uint8, or int32 for counts above 255), ``u`` and ``v`` in the narrowest type that holds every
value the register can take (:func:`state_dtypes`). Every engine returns exactly these.
"""

from __future__ import annotations

import numpy as np

from ..datapath.step import NeuronConfig
from ..ir.fixed import QNetwork, QPopulation

RECORDS = ("all", "spikes", "output")
STATES = ("spikes", "u", "v")


def kept(net: QNetwork, name: str, record) -> tuple[str, ...]:
    """The states of population ``name`` that ``record`` keeps (possibly none)."""
    if record == "all":
        return STATES
    if record == "spikes":
        spiking = net.population(name).neuron.spiking
        return ("spikes",) if spiking or name != net.output else ("spikes", "v")
    if record == "output":
        return STATES if name == net.output else ()
    if isinstance(record, (set, frozenset, list, tuple)):
        return STATES if name in record or name == net.output else ()
    raise ValueError(f"record must be one of {RECORDS} or a set of population names")


def state_dtype(bits: int):
    """The narrowest numpy integer type holding a register of ``bits`` (int32 or int64)."""
    return np.int32 if bits <= 32 else np.int64


def state_dtypes(net: QNetwork, pop: QPopulation) -> tuple[type, type]:
    """The recorded types of ``u`` and ``v``: the register widths, one bit more where a value
    can leave the register's range (Lava's wrap reaches ``+2**(bits-1)``; a same-step zero reset
    with a reset flag can keep ``v'`` of the step before)."""
    cfg = NeuronConfig.of(net.target, pop.neuron)
    fmt = net.target.neuron
    u_bits = cfg.u_bits + (fmt.u_overflow == "wrap_lava")
    zero_same = cfg.reset == "zero" and cfg.same_step
    v_bits = cfg.v_bits + (zero_same and cfg.uses_reset_flag) + (fmt.v_overflow == "wrap_lava")
    return state_dtype(u_bits), state_dtype(v_bits)
