"""Pass ``assign_delays``: the target's time alignment of every population and projection.

Requires: a population graph whose projections carry their float delays.

Guarantees: every population has a ``lag`` ``L >= 0`` (its target step ``t + L`` is the float
model's step ``t``) and every projection a target ``delay``, such that the target computes the
float model's timing exactly::

    delay = L_target - L_source + float_delay >= timing.synapse_delay

with the smallest lags that allow it: ``L_input = 0`` and
``L_p = max(0, max over projections into p of (L_source + synapse_delay - float_delay))``
(a longest-path problem; a cycle whose float delays are shorter than the target's synaptic
delays cannot be timed and is refused). On Loihi 2 (``synapse_delay = 1``) a chain of layers
lags one step per layer; a skip connection around a layer gets one extra step of delay; a float
delay of one step (Spyx's spike taken on the previous membrane) absorbs Loihi's own.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import UnsupportedError
from ..targets import Target
from .populations import PopulationGraph


def assign_delays(pg: PopulationGraph, target: Target) -> PopulationGraph:
    """``pg`` with lags and target delays (see the module docstring)."""
    sd = target.timing.synapse_delay
    lag = {p.name: 0 for p in pg.populations}
    lag[pg.input.name] = 0
    rounds = len(pg.populations) + 1
    for _ in range(rounds):
        changed = False
        for proj in pg.projections:
            need = lag[proj.source] + sd - proj.float_delay
            if need > lag[proj.target]:
                lag[proj.target] = need
                changed = True
        if not changed:
            break
    else:
        cycle = next(p for p in pg.projections
                     if lag[p.source] + sd - p.float_delay > lag[p.target])
        raise UnsupportedError("a recurrent loop is faster than the target's synapses",
                               node=cycle.target,
                               value=f"the loop's float delay is shorter than "
                                     f"{sd} step(s) per connection",
                               hint=f"target '{target.name}' delays every connection by {sd} "
                                    "step(s); give the recurrent edge a longer delay")
    limit = sd + target.features.max_synapse_delay
    projections = []
    for proj in pg.projections:
        delay = lag[proj.target] - lag[proj.source] + proj.float_delay
        if delay > limit:
            raise UnsupportedError("synaptic delay longer than the target supports",
                                   node=proj.name, value=f"{delay} steps > {limit}",
                                   hint="shorten the delay or pick a target with longer "
                                        "delays")
        projections.append(replace(proj, delay=delay))
    populations = [replace(p, lag=lag[p.name]) for p in pg.populations]
    return pg.replace(populations=tuple(populations), projections=tuple(projections))
