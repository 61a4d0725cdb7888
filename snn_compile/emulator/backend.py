"""The emulator as a backend (entry point ``emulator``)."""

from __future__ import annotations

import numpy as np

from ..backend import Backend, Option
from ..ir.fixed import QNetwork
from ..trace import Trace
from .engine import RECORDS, run_network


class EmulatorBackend(Backend):
    name = "emulator"
    golden = True
    description = "bit-accurate integer emulator of the target datapath (numpy/BLAS)"
    options = (Option("record", str, "all", "what to record: all states, spikes of every "
                      "population, or the output population only", choices=RECORDS),)

    def run_lowered(self, network: QNetwork, spikes: np.ndarray) -> Trace:
        return run_network(network, spikes, record=self.settings["record"])
