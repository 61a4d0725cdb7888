"""Loihi 2 backend through Lava 0.10: lowering, bit-exact simulation, core mapping, bundles.

- :meth:`LavaBackend.lower` turns a QNetwork (any graph of populations and projections) into
  Lava registers and arrays, exactly or not at all (:mod:`.lower`, :mod:`.layout`,
  :mod:`.registers`).
- :meth:`LavaBackend.run_lowered` runs it on ``Loihi2SimCfg(select_tag="fixed_pt")`` (or on
  Loihi 2 with the option ``hardware=true`` when Intel's lava-loihi is installed) and returns a
  Trace equal to the emulator's, spike for spike and state for state.
- :func:`map_to_cores` places the populations on neurocores against the target's
  ``[resources]``.
- :meth:`LavaBackend.emit` writes a self-contained bring-up bundle (see BUNDLE.md).

Populations with subtract reset, next-step reset timing, a ``>=`` spike test, a non-spiking
readout, multi-spike (count) output or a membrane floor run on :class:`processes.SnnLIF`, a
custom Lava process model; real Loihi 2 needs a custom neuron microcode program for them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from snn_compile.backend import Backend, Option
from snn_compile.ir.fixed import QNetwork
from snn_compile.trace import Trace

from .lower import CAPABILITIES, LavaNet, lower
from .mapping import MappingReport, map_to_cores
from .run import hardware_status, lava_status, run_lowered


class LavaBackend(Backend):
    name = "lava"
    description = "Intel Loihi 2 via Lava 0.10 (bit-accurate fixed_pt simulation)"
    capabilities = CAPABILITIES
    options = (Option("hardware", bool, False, "run on Loihi 2 (Loihi2HwCfg; needs Intel's "
                      "lava-loihi) instead of Lava's bit-accurate simulation"),)

    @property
    def hardware(self) -> bool:
        return self.settings["hardware"]

    def available(self) -> str | None:
        return lava_status() or (hardware_status() if self.hardware else None)

    def hardware_available(self) -> str | None:
        """None when Loihi2HwCfg can run (Intel's lava-loihi present), else why not."""
        return hardware_status()

    def lower(self, network: QNetwork) -> LavaNet:
        return lower(network)

    def run_lowered(self, lowered: LavaNet, spikes: np.ndarray) -> Trace:
        return run_lowered(lowered, spikes, hw=self.hardware)

    def map_to_cores(self, network: QNetwork) -> MappingReport:
        return map_to_cores(network)

    def emit(self, lowered: LavaNet, out_dir: Path, *, inputs: np.ndarray, golden: Trace,
             source_name: str, float_graph=None) -> dict:
        """Write the bring-up bundle (see BUNDLE.md); ``float_graph`` is not needed here."""
        from .bundle import emit_bundle
        return emit_bundle(lowered, Path(out_dir), inputs=inputs, golden=golden,
                           source_name=source_name)


__all__ = ["LavaBackend", "LavaNet", "MappingReport", "lower", "map_to_cores"]
