"""Pass ``bias_sources``: a synaptic-current bias as the spikes of a constant source.

Requires: a QNetwork. It acts only when its target has no bias on the synaptic current
(``features.synapse_bias = false``) but a bias source (``features.bias_source = true``, Loihi 2)
and a population carries an ``input_bias``.

Guarantees: no population has an ``input_bias``. Instead the network has one population
``BIAS`` (named ``bias_source``, or with ``_`` appended until the name is free; recorded as
``metadata["bias_source"]``) of one neuron that spikes at every step from step 0 on (no leak,
voltage bias ``thr + 1`` above its threshold ``thr``, zero reset; its only input is a zero-weight
connection to itself, because every population needs one), and for every biased population
``P`` a dense projection ``BIAS -> P`` with weights ``w`` ``(n_P, 1)`` and exponent ``e`` such
that ``w << e`` is ``P``'s former ``input_bias`` exactly, and delay ``lag(P)``.

Exactness. ``P`` receives ``a = wrap_dense(sum_k c_k + wrap_dense(w << e))``, and
``wrap_dense(w << e) = input_bias``, so from step ``lag(P)`` on every value equals the former
network's ``a``. ``lag(P)`` is the step that corresponds to the float model's step 0: the float
model adds its bias from its step 0, while an ``input_bias`` would have acted from the target's
step 0 and charged ``P`` for ``lag(P)`` steps before its input could arrive. So the result is the
float model's timing exactly (the reason the bias is a delayed projection rather than a register),
and every backend runs it as ordinary spikes and synapses.

Cost: one neuron (one core in the Loihi mapping), one projection of ``n_P`` synapses per biased
population. A lag beyond the target's longest synaptic delay is refused.
"""

from __future__ import annotations

import numpy as np

from ..errors import UnsupportedError
from ..ir.fixed import QNetwork, QNeuron, QPopulation, QProjection

NAME = "bias_source"


def bias_source_neuron(target) -> QNeuron:
    """One neuron spiking at every step: ``v = 0 + thr + 1 > thr``, then reset to 0 (so its
    leak never acts: the largest allowed multiplier is as good as any)."""
    thr = 1 << target.neuron.threshold_shift
    return QNeuron(shape=(1,), decay_u=0, decay_v=target.neuron.v_decay_range[1],
                   threshold=thr, bias=thr + 1, reset="zero", reset_timing="same_step",
                   spike_test=">")


def add_bias_sources(net: QNetwork) -> QNetwork:
    """``net`` with every ``input_bias`` moved onto a bias source (see the module docstring)."""
    from ..quantize.registers import source_bias_weights  # late: quantize imports passes

    feats = net.target.features
    biased = [p for p in net.populations if p.input_bias is not None]
    if feats.synapse_bias or not feats.bias_source or not biased:
        return net
    taken = {net.input.name, *(p.name for p in net.populations)}
    name = NAME
    while name in taken:
        name += "_"
    target = net.target
    limit = target.timing.synapse_delay + feats.max_synapse_delay
    projections = [QProjection(name=f"{name}.hold", source=name, target=name, kind="dense",
                               weight=[[0]], delay=max(1, target.timing.synapse_delay))]
    populations = []
    for pop in net.populations:
        if pop.input_bias is None:
            populations.append(pop)
            continue
        if not target.timing.synapse_delay <= pop.lag <= limit:
            raise UnsupportedError("the bias source cannot reach this population at its first "
                                   "step", node=pop.name,
                                   value=f"lag {pop.lag} steps, synaptic delays "
                                         f"{target.timing.synapse_delay}..{limit}",
                                   hint="make the network shallower before this layer, or "
                                        "train its input synapses without bias")
        values = np.broadcast_to(pop.input_bias, pop.shape).reshape(-1)
        w, e = source_bias_weights(values, target, pop.name)
        projections.append(QProjection(name=f"{name}->{pop.name}", source=name, target=pop.name,
                                       kind="dense", weight=w.reshape(-1, 1), weight_exp=e,
                                       delay=pop.lag))
        populations.append(QPopulation(name=pop.name, neuron=pop.neuron, input_bias=None,
                                       scale=pop.scale, lag=pop.lag))
    populations.append(QPopulation(name=name, neuron=bias_source_neuron(target), lag=0))
    return net.replace(populations=tuple(populations),
                       projections=tuple(net.projections) + tuple(projections),
                       metadata={**net.metadata, "bias_source": name})
