"""FPGA backend: emits a Vitis HLS C++ project and runs its C simulation with g++.

Pipeline: :func:`.lower.lower` (QNetwork -> typed :class:`.project.Project`),
:func:`.estimate.estimate` / :func:`.estimate.check_fits` (resources before emitting),
:func:`.render.render_project` (jinja2 templates + the ``include/snn_*.h`` kernel library),
:mod:`.csim` (g++ build with the project's own copy of the ap_types headers, run, parse).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

from snn_compile.backend import Backend
from snn_compile.errors import TargetError
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
        """The typed project description (nothing written)."""
        return lower(qnet, source_name=source_name, reuse_factor=reuse_factor, max_steps=steps)

    def estimate(self, qnet: QNetwork, *, reuse_factor: int | str = 1, steps: int = 1,
                 check: bool = True) -> dict:
        """Resource/latency report; with ``check``, TargetError when it does not fit."""
        project = self.lower(qnet, reuse_factor=self._reuse(qnet, reuse_factor, steps),
                             steps=steps)
        report = estimate(project, qnet.target)
        return check_fits(report, qnet.target) if check else report

    def smallest_reuse_factor(self, qnet: QNetwork, *, steps: int = 1,
                              limit: int = 1 << 20) -> int:
        """The smallest power-of-two reuse factor whose design fits the target part."""
        rf, error = 1, None
        while rf <= limit:
            try:
                check_fits(estimate(self.lower(qnet, reuse_factor=rf, steps=steps),
                                    qnet.target), qnet.target)
                return rf
            except TargetError as exc:
                error = exc
            rf *= 2
        raise error

    def _reuse(self, qnet: QNetwork, reuse_factor: int | str, steps: int) -> int:
        if reuse_factor == "auto":
            return self.smallest_reuse_factor(qnet, steps=steps)
        return int(reuse_factor)

    def emit(self, qnet: QNetwork, out_dir: Path, *, inputs: np.ndarray, golden: Trace | None,
             source_name: str, reuse_factor: int | str = "auto", check: bool = True,
             float_graph=None) -> dict:
        """Write the complete project into ``out_dir``; returns the estimate and file list.

        ``inputs`` [T, B, *input_shape] become ``tb_data/input.dat`` and ``golden`` (the
        emulator's trace of them) the per-layer golden files; with ``golden=None`` the testbench
        only simulates and dumps. ``reuse_factor="auto"`` picks the smallest power of two that
        fits the part. Raises TargetError before writing anything when the design does not fit
        the target part (``check=False`` skips that, for simulation only).
        """
        project, report = self._emit(qnet, Path(out_dir), inputs, golden, source_name,
                                     reuse_factor, check)
        return {"project": project.name, "top": "snn_top", "reuse_factor": project.reuse_factor,
                "files": report.pop("_files"), "estimate": report}

    def _emit(self, qnet, out_dir: Path, inputs, golden, source_name, reuse_factor, check):
        x = _encode(qnet, inputs)
        steps = x.shape[0]
        project = self.lower(qnet, source_name=source_name, steps=steps,
                             reuse_factor=self._reuse(qnet, reuse_factor, steps))
        report = estimate(project, qnet.target)
        if check:
            check_fits(report, qnet.target)
        files = render_project(project, report)
        files.update(testbench_data(project, x, golden))
        write_files(out_dir, files)
        return project, {**report, "_files": sorted(files)}

    def run(self, qnet: QNetwork, spikes: np.ndarray, *, reuse_factor: int = 1) -> Trace:
        """C simulation of the generated project on ``spikes`` [T, B, *input_shape].

        Emits to a temporary directory, builds the testbench once per distinct project (g++
        binaries are cached by source hash), runs all samples in one process and reads the
        dumped spikes/u/v of every layer back into a Trace.
        """
        steps, batch = np.asarray(spikes).shape[:2]
        with tempfile.TemporaryDirectory(prefix="snn-hls-") as tmp:
            prj = Path(tmp)
            project, _ = self._emit(qnet, prj, spikes, None, "snn", reuse_factor, False)
            csim.run_testbench(csim.build(prj), prj / "tb_data")
            layers = csim.read_states(project, prj / "tb_data", steps, batch)
        last = qnet.output_layer
        output = layers[last.name]["spikes" if last.neuron.spiking else "v"]
        return Trace(output=output, layers=layers)


__all__ = ["HlsBackend"]
