"""Recorded activity of one run: the common result type of every backend.

Arrays are time-major, ``[T, B, *shape]``, like snnTorch. Layers are keyed by the name of the
neuron node they come from, so float and fixed-point traces line up by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .errors import SnnCompileError

PREFIX = "layer/"


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
        """Flat dict for ``np.savez``: ``spikes`` plus ``layer/<name>/<state>``.

        The name may hold ``/`` (the state is the part after the last one); a NUL would end
        the npz member's name and let layers overwrite each other, so it is refused.
        """
        out = {"spikes": np.asarray(self.output)}
        for name, states in self.layers.items():
            for key, arr in states.items():
                if "\0" in name or "\0" in key or "/" in key:
                    raise SnnCompileError("a layer or state name cannot be stored in an npz "
                                          "file (NUL in the name, or '/' in the state)",
                                          node=name, value=repr(key))
                out[f"{PREFIX}{name}/{key}"] = np.asarray(arr)
        return out

    @classmethod
    def from_npz_dict(cls, data) -> "Trace":
        """The inverse of :meth:`to_npz_dict` (any mapping with ``keys()`` and ``[]``)."""
        layers: dict[str, dict[str, np.ndarray]] = {}
        for key in data.keys():
            if key.startswith(PREFIX):
                name, sep, state = key[len(PREFIX):].rpartition("/")
                if not sep or not name or not state:
                    raise SnnCompileError("malformed trace key", value=repr(key),
                                          hint="keys are 'spikes' and 'layer/<name>/<state>'")
                layers.setdefault(name, {})[state] = np.asarray(data[key])
        if "spikes" not in data.keys():
            raise SnnCompileError("trace has no 'spikes' array",
                                  value=f"keys {sorted(data.keys())[:6]}")
        return cls(output=np.asarray(data["spikes"]), layers=layers)
