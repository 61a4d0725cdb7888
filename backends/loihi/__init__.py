"""Loihi 2 backend through Lava 0.10: lowering, bit-exact simulation, core mapping, bundles.

- :func:`lower` turns a QNetwork into Lava registers and arrays, exactly or not at all.
- :class:`LavaBackend` runs it on ``Loihi2SimCfg(select_tag="fixed_pt")`` (or on Loihi 2 with
  ``hardware=True`` when Intel's lava-loihi is installed) and returns a Trace equal to the
  emulator's, spike for spike and state for state.
- :func:`map_to_cores` places the layers on neurocores against the target's ``[resources]``.
- :meth:`LavaBackend.emit` writes a self-contained bring-up bundle (see BUNDLE.md).

Layers with subtract reset, next-step reset timing, a ``>=`` spike test or a non-spiking
readout run on :class:`processes.SnnLIF`, a custom Lava process model; real Loihi 2 needs a
custom neuron microcode program for them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snn_compile.backend import Backend
from snn_compile.ir.fixed import QNetwork
from snn_compile.trace import Trace

from .lower import LavaNet, lower
from .mapping import MappingReport, map_to_cores
from .run import hardware_status, lava_status, run_network


class LavaBackend(Backend):
    name = "lava"
    description = "Intel Loihi 2 via Lava 0.10 (bit-accurate fixed_pt simulation)"

    def __init__(self, *, hardware: bool = False):
        self.hardware = hardware

    def available(self) -> str | None:
        return lava_status() or (hardware_status() if self.hardware else None)

    def hardware_available(self) -> str | None:
        """None when Loihi2HwCfg can run (Intel's lava-loihi present), else why not."""
        return hardware_status()

    def lower(self, network: QNetwork) -> LavaNet:
        return lower(network)

    def run(self, network: QNetwork, spikes: np.ndarray) -> Trace:
        return run_network(network, spikes, hw=self.hardware)

    def map_to_cores(self, network: QNetwork) -> MappingReport:
        return map_to_cores(network)

    def emit(self, network: QNetwork, out_dir: Path, *, inputs: np.ndarray, golden: Trace,
             source_name: str, float_graph=None) -> dict:
        """Write the bring-up bundle (see BUNDLE.md); ``float_graph`` is not needed here."""
        from .bundle import emit_bundle
        return emit_bundle(network, Path(out_dir), inputs=inputs, golden=golden,
                           source_name=source_name)


__all__ = ["LavaBackend", "LavaNet", "MappingReport", "lower", "map_to_cores"]
