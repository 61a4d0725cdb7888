"""FPGA backend: emits a Vitis HLS C++ project and runs its C simulation with g++.

Pipeline: :func:`.lower.lower` (QNetwork -> typed :class:`.project.Project`),
:func:`.estimate.estimate` / :func:`.estimate.check_fits` (resources before emitting),
:func:`.render.render_project` (jinja2 templates + the ``include/snn_*.h`` kernel library),
:mod:`.csim` (g++ build with the hls4ml ap_types headers, run, parse).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from snn_compile.backend import Backend
from snn_compile.ir.fixed import QNetwork
from snn_compile.trace import Trace

from . import csim
from .estimate import check_fits, estimate
from .lower import lower
from .project import Project
from .render import render_project, testbench_data, write_files


def _encode(net: QNetwork, spikes: np.ndarray) -> np.ndarray:
    # the emulator's input encoding is part of the golden model's contract
    from snn_compile.backends.emulator.engine import encode_input

    return encode_input(net, spikes)


class HlsBackend(Backend):
    name = "hls"
    description = "Vitis HLS C++ project (ap_int datapath); C simulation with g++"

    def available(self) -> str | None:
        return csim.missing()

    def lower(self, qnet: QNetwork, *, source_name: str = "snn", reuse_factor: int = 1,
              steps: int = 1) -> Project:
        return lower(qnet, source_name=source_name, reuse_factor=reuse_factor, max_steps=steps)

    def estimate(self, qnet: QNetwork, *, reuse_factor: int = 1, steps: int = 1,
                 check: bool = True) -> dict:
        """Resource/latency report; with ``check``, TargetError when it does not fit."""
        report = estimate(self.lower(qnet, reuse_factor=reuse_factor, steps=steps), qnet.target)
        return check_fits(report, qnet.target) if check else report

    def emit(self, qnet: QNetwork, out_dir: Path, *, inputs: np.ndarray, golden: Trace | None,
             source_name: str, reuse_factor: int = 1, check: bool = True) -> dict:
        """Write the complete project into ``out_dir``; returns the estimate and file list.

        ``inputs`` [T, B, *input_shape] become ``tb_data/input.dat`` and ``golden`` (the
        emulator's trace of them) the per-layer golden files; with ``golden=None`` the testbench
        only simulates and dumps. Raises TargetError before writing anything when the design
        does not fit the target part (``check=False`` skips that, for simulation only).
        """
        x = _encode(qnet, inputs)
        project = self.lower(qnet, source_name=source_name, reuse_factor=reuse_factor,
                             steps=x.shape[0])
        report = estimate(project, qnet.target)
        if check:
            check_fits(report, qnet.target)
        files = render_project(project, report)
        files.update(testbench_data(project, x, golden))
        write_files(Path(out_dir), files)
        return {"project": project.name, "top": "snn_top", "files": sorted(files),
                "estimate": report}

    def run(self, qnet: QNetwork, spikes: np.ndarray, *, reuse_factor: int = 1) -> Trace:
        """C simulation of the generated project on ``spikes`` [T, B, *input_shape]."""
        steps, batch = np.asarray(spikes).shape[:2]
        with tempfile.TemporaryDirectory(prefix="snn-hls-") as tmp:
            prj = Path(tmp)
            self.emit(qnet, prj, inputs=spikes, golden=None, source_name="snn",
                      reuse_factor=reuse_factor, check=False)
            project = self.lower(qnet, reuse_factor=reuse_factor, steps=steps)
            csim.run_testbench(csim.build(prj), prj / "tb_data")
            layers = csim.read_states(project, prj / "tb_data", steps, batch)
        last = qnet.output_layer
        output = layers[last.name]["spikes" if last.neuron.spiking else "v"]
        return Trace(output=output, layers=layers)


__all__ = ["HlsBackend"]
