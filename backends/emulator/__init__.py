"""Bit-accurate CPU emulator backend: the golden model every other fixed-point backend matches."""

from __future__ import annotations

import numpy as np

from snn_compile.backend import Backend
from snn_compile.ir.fixed import QNetwork
from snn_compile.trace import Trace

from .engine import run_network


class EmulatorBackend(Backend):
    name = "emulator"
    golden = True
    description = "bit-accurate integer emulator of the target datapath (numpy/BLAS)"

    def run(self, network: QNetwork, spikes: np.ndarray) -> Trace:
        return run_network(network, spikes)


__all__ = ["EmulatorBackend", "run_network"]
