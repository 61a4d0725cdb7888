"""Recorded activity of one run: the common result type of every backend.

Arrays are time-major, ``[T, B, *shape]``, like snnTorch. Layers are keyed by the name of the
neuron node they come from, so float and fixed-point traces line up by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Trace:
    """``output``: the output layer's spikes (or membrane, for a non-spiking readout).

    ``layers[name]`` maps a state name to its ``[T, B, *shape]`` array for every neuron layer:
    ``"spikes"`` and ``"v"`` everywhere, the synaptic current as ``"i"`` in float traces (CubaLIF
    only) and as ``"u"`` (the integer current register, every layer) in fixed-point traces.
    """

    output: np.ndarray
    layers: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)

    def to_npz_dict(self) -> dict[str, np.ndarray]:
        """Flat dict for ``np.savez``: ``spikes`` plus ``layer/<name>/<state>``."""
        out = {"spikes": np.asarray(self.output)}
        for name, states in self.layers.items():
            for key, arr in states.items():
                out[f"layer/{name}/{key}"] = np.asarray(arr)
        return out

    @classmethod
    def from_npz_dict(cls, data) -> "Trace":
        layers: dict[str, dict[str, np.ndarray]] = {}
        for key in data.keys():
            if key.startswith("layer/"):
                _, name, state = key.split("/", 2)
                layers.setdefault(name, {})[state] = np.asarray(data[key])
        return cls(output=np.asarray(data["spikes"]), layers=layers)
