"""FPGA backend: emits a Vitis HLS C++ project and runs its C simulation with g++.

Pipeline: :func:`.lower.analyze` (QNetwork -> identifiers and exact widths, once),
:func:`.plan.choose` (the parallel or the event-driven design, whichever fits the part; see
:mod:`.plan`), :func:`.estimate.estimate` (resources and cycles per step, at measured spike rates
when the golden run is known), :func:`.render.render_project` (jinja2 templates + the
``include/snn_*.h`` kernel library), :mod:`.csim` (g++ build with the project's own copy of the ap_types
headers, run, parse).
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np

from snn_compile.backend import Backend, Capabilities, Option
from snn_compile.datapath.step import spike_dtype
from snn_compile.errors import BackendError
from snn_compile.ir.fixed import QNetwork
from snn_compile.trace import Trace

from . import csim
from .estimate import estimate, measured_activity
from .lower import OVERFLOW_STRUCTS, ROUNDING_STRUCTS, TEST_STRUCTS, analyze, c_identifier
from .plan import Lowered, choose
from .render import IMAGE, render_project, testbench_data, write_files

DEFAULT_MAX_STEPS = 64


class HlsBackend(Backend):
    """Vitis HLS project generator; :meth:`run_lowered` is the g++ C simulation."""

    name = "hls"
    description = "Vitis HLS C++ project (ap_int datapath); C simulation with g++"
    capabilities = Capabilities(
        # every kind listed: a rule added to the table is refused until the headers have it
        rules={"overflow": tuple(OVERFLOW_STRUCTS), "rounding": tuple(ROUNDING_STRUCTS),
               "spike_test": tuple(TEST_STRUCTS)},
        notes={"the overflow rule 'wrap_lava'":
               "Lava's single-pass asymmetric wrap is not implemented in the HLS headers; use "
               "wrap, saturate or saturate_symmetric (--set neuron.u_overflow=wrap)"})
    options = (
        Option("design", str, "auto", "parallel (every weight on chip, whole products every "
               "step), event (event-driven, weights on chip or in external memory) or auto "
               "(the parallel design when it fits and is not slower)",
               choices=("auto", "parallel", "event")),
        Option("reuse_factor", int, "auto", "parallel design: products share each adder this "
               "many times (auto: the smallest power of two that fits the part)", also=("auto",)),
        Option("weights", str, "auto", "event design: where dense weights live (auto: on chip "
               "unless they do not fit)", choices=("auto", "chip", "external")),
        Option("check_fit", bool, True, "refuse designs that do not fit the part (false: "
               "simulate anyway)"),
        Option("max_steps", int, DEFAULT_MAX_STEPS, "window of the synthesis top snn_top() "
               "(at least the steps of the emitted inputs)"),
    )

    def __init__(self, **options):
        super().__init__(**options)
        rf = self.settings["reuse_factor"]
        if rf != "auto" and rf < 1:
            raise BackendError("option 'reuse_factor' must be at least 1", value=rf)
        if self.settings["max_steps"] < 1:
            raise BackendError("option 'max_steps' must be at least 1",
                               value=self.settings["max_steps"])

    def available(self) -> str | None:
        return csim.missing()

    def lower(self, network: QNetwork, *, source_name: str = "model") -> Lowered:
        """The chosen design of ``network`` (nothing written): TargetError when it does not
        fit the part (see :mod:`.plan`), UnsupportedError for what the headers cannot run."""
        s = self.settings
        return choose(analyze(network, source_name=source_name), design=s["design"],
                      reuse_factor=s["reuse_factor"], weights=s["weights"],
                      check_fit=s["check_fit"])

    def _steps(self, steps: int) -> int:
        return max(self.settings["max_steps"], int(steps))

    def emit(self, lowered: Lowered, out_dir: Path, *, inputs: np.ndarray,
             golden: Trace | None, source_name: str, float_graph=None) -> dict:
        """Write the complete project into ``out_dir``; return the design decision, the
        estimate and the file list.

        ``inputs`` [T, B, *input_shape] become ``tb_data/input.dat`` and ``golden`` (the
        emulator's trace of them) the per-population golden files; with ``golden=None`` the
        testbench only simulates and dumps. With ``golden`` the event design's cycles per step
        are estimated at the measured spike rates of that run (and the worst case kept).
        """
        net = lowered.net
        # the IP and Vitis project are named after the model (only README and Tcl say so: the
        # C++ sources stay byte-identical to the ones run_lowered() simulates)
        project = dataclasses.replace(lowered.project, source_name=source_name,
                                      name=c_identifier(source_name or "model", set()))
        x = net.input.encode(inputs)
        steps = x.shape[0]
        activity = measured_activity(project, x, golden) if golden is not None else None
        report = estimate(project, net.target, steps=steps, activity=activity)
        files = render_project(project, report, max_steps=self._steps(steps),
                               decision=lowered.decision)
        files.update(testbench_data(project, x, golden))
        write_files(Path(out_dir), files)
        return {"project": project.name, "top": "snn_top", "design": project.design,
                "decision": lowered.decision, "reuse_factor": project.reuse_factor,
                "files": sorted(files), "estimate": report,
                "alternatives": lowered.alternatives(activity)}

    def run_lowered(self, lowered: Lowered, spikes: np.ndarray) -> Trace:
        """C simulation of the generated project on ``spikes`` [T, B, *input_shape].

        Renders the project into a temporary directory, builds the testbench once per distinct
        project (g++ binaries are cached by source hash), runs all samples in one process and
        reads the dumped spikes/u/v of every population back into a Trace.
        """
        project, net = lowered.project, lowered.net
        x = net.input.encode(spikes)
        steps, batch = x.shape[:2]
        with tempfile.TemporaryDirectory(prefix="snn-hls-") as tmp:
            prj = Path(tmp)
            files = render_project(project, lowered.report, max_steps=self._steps(steps),
                                   decision=lowered.decision)
            files.update(testbench_data(project, x, None))
            write_files(prj, files)
            image = [str(prj / IMAGE)] if project.memory is not None else []
            csim.run_testbench(csim.build(prj), prj / "tb_data", *image)
            layers = csim.read_states(project, prj / "tb_data", steps, batch)
        for pop in project.populations:
            states = layers[pop.name]
            states["spikes"] = states["spikes"].astype(spike_dtype(net.population(pop.name).neuron))
        out = net.output_population
        return Trace(output=layers[out.name]["spikes" if out.neuron.spiking else "v"],
                     layers=layers)


__all__ = ["HlsBackend", "Lowered"]
