"""The emulator as a backend (entry point ``emulator``)."""

from __future__ import annotations

import numpy as np

from ..backend import Backend, Option
from ..ir.fixed import QNetwork
from ..trace import Trace
from .engine import ENGINES, RECORDS, run_network


class EmulatorBackend(Backend):
    name = "emulator"
    golden = True
    description = "bit-accurate integer emulator of the target datapath (native C kernels or numpy)"
    options = (Option("record", str, "all", "what to record: all states, spikes of every "
                      "population, or the output population only", choices=RECORDS),
               Option("engine", str, "auto", "native (compiled C kernels), numpy, or auto "
                      "(native where a C compiler works and the run is large)", choices=ENGINES),
               Option("threads", int, 0, "threads of the native engine (0: every CPU)"))

    def run_lowered(self, network: QNetwork, spikes: np.ndarray) -> Trace:
        return run_network(network, spikes, record=self.settings["record"],
                           engine=self.settings["engine"],
                           threads=self.settings["threads"] or None)
