"""``TinyCoreBackend``: the snn-compile backend contract for TinyCore (see README.md)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from snn_compile.backend import Backend, Capabilities, Option
from snn_compile.compare import traces_identical
from snn_compile.errors import BackendError
from snn_compile.trace import Trace

from .engine import run_program
from .program import MAX_CORES, MAX_FAN_IN, OVERFLOW_MODES, Program, lower_network


class TinyCoreBackend(Backend):
    """Lowers a fixed-point network to a TinyCore program, runs it, writes it."""

    name = "tinycore"
    description = "TinyCore (example third-party backend): CSR tables, ring-buffer delays"

    # What TinyCore runs. Backend.check() compares a network with this before lowering and
    # raises one UnsupportedError naming the node; the conformance kit holds us to it.
    capabilities = Capabilities(
        projections=frozenset({"dense", "elementwise"}),
        max_pool=False,
        rules={"overflow": OVERFLOW_MODES},
        features={"multi_spike": (False,)},
        max_fan_in=MAX_FAN_IN,
        notes={
            "conv projections": "TinyCore has no convolution engine; use a dense network, "
                                "or another backend (emulator, hls, onnx)",
            "multi_spike": "TinyCore's spike register holds one spike per step",
            f"more than {MAX_FAN_IN} projections into one population":
                f"a TinyCore population has {MAX_FAN_IN} input ports",
            "the overflow rule 'wrap_lava'": "TinyCore's overflow modes are "
                                             f"{', '.join(OVERFLOW_MODES)}; pick another target "
                                             "(e.g. --target cpu)",
        })

    # Typed settings: --backend-opt cores=4, or TinyCoreBackend(cores=4).
    options = (
        Option("cores", int, 1, f"TinyCore cores to place the populations on (1..{MAX_CORES})"),
        Option("prune_zeros", bool, True, "leave zero weights out of the CSR weight tables"),
    )

    def __init__(self, **options):
        super().__init__(**options)  # unknown names and wrong types are refused here
        cores = self.settings["cores"]
        if not 1 <= cores <= MAX_CORES:
            raise BackendError(f"option 'cores' must lie in 1..{MAX_CORES}", value=cores)

    def lower(self, network) -> Program:
        self.check(network)  # also when called directly, not only through the pipeline
        return lower_network(network, cores=self.settings["cores"],
                             prune_zeros=self.settings["prune_zeros"])

    def run_lowered(self, program: Program, spikes: np.ndarray) -> Trace:
        return run_program(program, spikes)

    def emit(self, program: Program, out_dir: Path, *, inputs: np.ndarray | None = None,
             golden: Trace | None = None, source_name: str | None = None,
             float_graph=None) -> dict:
        """Write ``program.json`` and ``program.npz`` into ``out_dir`` (data only, the same
        bytes for the same network and options). With ``inputs`` and ``golden`` the written
        files are read back, run, and compared with the golden trace (``"verified"``)."""
        files = program.save(out_dir)
        summary = {
            "files": {name: {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}
                      for name, data in sorted(files.items())},
            "cores": [{key: core[key] for key in ("core", "neurons", "synapses")}
                      for core in program.header["cores"]],
        }
        if inputs is not None and golden is not None:
            mismatch = traces_identical(golden, run_program(Program.load(out_dir), inputs))
            summary["verified"] = mismatch is None or mismatch
        return summary
