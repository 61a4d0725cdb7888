"""Entry point of the ``float`` backend that loads without torch.

``snn-compile backends`` loads every backend class to show its status; the float reference
simulator (:mod:`snn_compile.reference`) needs torch, which takes seconds to import. This class
carries the backend's declared attributes and imports the simulator only when it runs.
"""

from __future__ import annotations

from .backend import Backend
from .trace import Trace


class FloatBackend(Backend):
    """The float reference simulator as a backend (runs a float IR graph)."""

    name = "float"
    fixed_point = False
    description = "float32 reference simulator (torch, CPU); matches snnTorch spike for spike"

    def run_lowered(self, network, spikes) -> Trace:
        from .reference import FloatBackend as Simulator

        return Simulator().run_lowered(network, spikes)
