"""A population's float neuron parameters as one typed record, and the feature mapping onto a
target (native, exactly convertible, custom neuron program, or refused)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import UnsupportedError
from ..ir import nodes as n
from ..targets import Target


@dataclass(frozen=True)
class FloatNeuron:
    """Float parameters of any population node, broadcast to its shape (float64), with the
    defaults its type implies (LI: no spikes, no reset; LIF: no current memory; IF: no leak)."""

    name: str
    kind: str                 # LIF | CubaLIF | IF | LI
    shape: tuple
    beta: np.ndarray
    alpha: np.ndarray
    threshold: np.ndarray     # inf for a non-spiking readout
    bias: np.ndarray
    spiking: bool
    cuba: bool
    reset: str
    reset_timing: str
    reset_discards_input: bool
    spike_test: str
    max_spikes: int | None = 1          # None: uncapped multi-spike
    v_floor: np.ndarray | None = None   # float units
    notes: list = field(default_factory=list)

    @classmethod
    def of(cls, node) -> "FloatNeuron":
        shape = tuple(node.shape)
        spiking = isinstance(node, n.NeuronNode)

        def full(value):
            return np.broadcast_to(np.asarray(value, np.float64), shape).astype(np.float64)

        return cls(
            name=node.name, kind=type(node).__name__, shape=shape,
            beta=full(getattr(node, "beta", 1.0)), alpha=full(getattr(node, "alpha", 0.0)),
            threshold=full(node.threshold if spiking else np.inf), bias=full(node.bias),
            spiking=spiking, cuba=isinstance(node, n.CubaLIF),
            reset=node.reset if spiking else "none",
            reset_timing=node.reset_timing if spiking else "same_step",
            reset_discards_input=bool(node.reset_discards_input) if spiking else False,
            spike_test=node.spike_test if spiking else ">",
            max_spikes=node.max_spikes if spiking else 1,
            v_floor=None if not spiking or node.v_floor is None else full(node.v_floor))

    @property
    def multi_spike(self) -> bool:
        return self.max_spikes is None or self.max_spikes > 1

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


_MODEL_ADVICE = {
    "Alpha": "snnTorch's Alpha neuron keeps two synaptic currents (excitatory and inhibitory) "
             "and no membrane of its own, which no target datapath has; train with "
             "snn.Synaptic (one current) or snn.Leaky for hardware",
}


def check_model(neuron: FloatNeuron, target: Target) -> None:
    if neuron.kind not in target.features.neuron_models:
        advice = _MODEL_ADVICE.get(neuron.kind)
        raise UnsupportedError(f"neuron model {neuron.kind} is not supported by target "
                               f"'{target.name}'", node=neuron.name,
                               hint=(advice + "; " if advice else "")
                               + f"supported: {target.features.neuron_models}")


def map_features(neuron: FloatNeuron, target: Target) -> tuple[FloatNeuron, bool]:
    """``(neuron as the target runs it, needs a custom neuron program)``.

    A zero reset "next step" that keeps the input is converted to "same step" exactly (same
    spikes; the recorded membrane is the reset value). Anything else the target's standard
    neuron lacks runs on its custom neuron program if the target has one, or is refused.
    """
    feats = target.features
    notes = list(neuron.notes)
    if (neuron.reset == "zero" and neuron.reset_timing == "next_step"
            and not neuron.reset_discards_input and "next_step" not in feats.reset_timings):
        neuron = replace(neuron, reset_timing="same_step")
        notes.append("zero reset moved from next step to same step (identical spikes; the "
                     "recorded membrane is the reset value instead of the pre-reset value)")
    if (neuron.reset == "zero" and neuron.reset_timing == "immediate" and not neuron.multi_spike
            and "immediate" not in feats.reset_timings):
        neuron = replace(neuron, reset_timing="same_step")  # identical for a positive threshold
    extras = _extra_features(neuron, target, notes)
    native = (neuron.reset in feats.reset_modes and neuron.reset_timing in feats.reset_timings
              and neuron.spike_test in feats.spike_tests
              and (not neuron.reset_discards_input or feats.zero_reset_discards_input)
              and not extras)
    neuron = replace(neuron, notes=notes)
    if native:
        return neuron, False
    wanted = (f"reset '{neuron.reset}' ({neuron.reset_timing}"
              f"{', input discarded' if neuron.reset_discards_input else ''}), "
              f"spike test '{neuron.spike_test}'")
    if extras:
        wanted += " with " + " and ".join(extras)
    if feats.custom_reset_modes and neuron.reset in feats.reset_modes + feats.custom_reset_modes:
        notes.append(f"{wanted} is not a standard {target.name} neuron: it runs as a custom "
                     "neuron model (real hardware needs a custom neuron program)")
        return replace(neuron, notes=notes), True
    raise UnsupportedError(f"target '{target.name}' cannot express {wanted}", node=neuron.name,
                           hint=f"supported resets {feats.reset_modes} timed "
                                f"{feats.reset_timings} with spike test {feats.spike_tests}; "
                                "retrain with e.g. reset_mechanism='zero' or pick another target")


def _extra_features(neuron: FloatNeuron, target: Target, notes: list) -> list[str]:
    """Multi-spike output and a membrane floor: refused where the target has none, listed
    (for the custom neuron program) where only its custom program has them."""
    feats, used = target.features, []
    if neuron.multi_spike:
        if feats.max_spikes < 2:
            raise UnsupportedError(f"target '{target.name}' sends single spikes; this layer "
                                   "emits several per step", node=neuron.name,
                                   value=f"max_spikes {neuron.max_spikes}",
                                   hint="use single-spike neurons (e.g. Sinabs SingleSpike, "
                                        "Rockpool max_spikes_per_dt=1) or an FPGA/cpu target")
        if neuron.max_spikes is None or neuron.max_spikes > feats.max_spikes:
            what = ("uncapped multi-spike output" if neuron.max_spikes is None else
                    f"multi-spike output (the model caps it at {neuron.max_spikes})")
            notes.append(f"{what} capped at {feats.max_spikes} spikes per step (the target's "
                         "spike payload); larger counts saturate")
        if "multi_spike" in feats.custom_features:
            used.append("multi-spike output")
    if neuron.v_floor is not None:
        if not feats.membrane_floor:
            raise UnsupportedError(f"target '{target.name}' has no membrane floor",
                                   node=neuron.name, hint="train without a floor (Sinabs: "
                                                          "min_v_mem=None)")
        if "membrane_floor" in feats.custom_features:
            used.append("a membrane floor")
    return used


def spike_cap(neuron: FloatNeuron, target: Target) -> int:
    """The fixed-point ``max_spikes`` of a population."""
    if not neuron.multi_spike:
        return 1
    cap = target.features.max_spikes
    return cap if neuron.max_spikes is None else min(int(neuron.max_spikes), cap)


def require_shared(neuron: FloatNeuron, target: Target) -> None:
    """Targets with per-layer registers need one decay and one threshold per layer."""
    for key in ("beta", "alpha", "threshold"):
        values = getattr(neuron, key)
        if np.ptp(values) != 0 and np.all(np.isfinite(values)):
            raise UnsupportedError(f"target '{target.name}' has one {key} per layer, this layer "
                                   "has one per neuron", node=neuron.name,
                                   value=f"{key} {values.min():.4g}..{values.max():.4g}",
                                   hint=f"train with a scalar {key} (not learned per neuron) "
                                        "or pick a target with per-neuron registers (cpu, FPGA)")
