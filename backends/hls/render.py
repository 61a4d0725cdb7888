"""Render a :class:`~.project.Project` into the files of a Vitis HLS project.

Every source file is rendered whole from one jinja2 template in ``templates/``; the kernel
library in ``include/`` and the Xilinx ``ap_types`` headers in ``ap_types/`` (Apache-2.0, with
their LICENSE and NOTICE) are copied verbatim, so the project compiles without hls4ml or Vitis;
test data are plain text written by
:func:`testbench_data`. Output is deterministic (sorted, no time stamps, no absolute paths).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np

from snn_compile.escape import filters
from snn_compile.trace import Trace

from .project import Project

#: output path -> template, for files rendered once per project
PROJECT_FILES = {
    "firmware/snn_top.h": "snn_top.h.j2",
    "firmware/snn_top.cpp": "snn_top.cpp.j2",
    "firmware/snn_params.h": "snn_params.h.j2",
    "tb/snn_tb.cpp": "snn_tb.cpp.j2",
    "build_prj.tcl": "build_prj.tcl.j2",
    "README.md": "README.md.j2",
}
LIBRARY = ("snn_arith.h", "snn_delay.h", "snn_neuron.h", "snn_synapse.h")
AP_TYPES = "ap_types"  # folder of the package and of the project: g++ -Iap_types
STATES = {"s": "spikes", "u": "u", "v": "v"}  # file suffix -> Trace state key


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files(__package__) / "templates")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)
    env.filters.update(filters())  # every input string passes snn_compile.escape
    env.filters["cbool"] = lambda value: "true" if value else "false"
    return env


def library_sources() -> dict[str, str]:
    root = resources.files(__package__) / "include"
    return {f"firmware/include/{name}": (root / name).read_text() for name in LIBRARY}


def ap_types_sources() -> dict[str, str]:
    """The vendored ap_types headers with their licence files, as ``ap_types/<path>``."""
    root = resources.files(__package__) / AP_TYPES
    files, stack = {}, [(root, AP_TYPES)]
    while stack:  # Traversable has no rglob
        folder, rel = stack.pop()
        for entry in folder.iterdir():
            if entry.is_dir():
                if entry.name != "__pycache__":
                    stack.append((entry, f"{rel}/{entry.name}"))
            else:
                files[f"{rel}/{entry.name}"] = entry.read_text()
    return files


def render_project(project: Project, estimate: dict) -> dict[str, str]:
    """All source files of the project: relative path -> text."""
    env = _environment()
    files = {path: env.get_template(tpl).render(project=project, estimate=estimate)
             for path, tpl in PROJECT_FILES.items()}
    weights = env.get_template("weights.h.j2")
    for layer in project.layers:
        files[f"firmware/weights/{layer.ident}.h"] = weights.render(
            project=project, layer=layer, roms=layer.roms)
    files.update(library_sources())
    files.update(ap_types_sources())
    files["estimate.json"] = json.dumps(estimate, indent=2, sort_keys=True) + "\n"
    return dict(sorted(files.items()))


def _lines(array: np.ndarray) -> str:
    """[B, T, n] or [rows, n] integers as text, one row per line."""
    rows = np.asarray(array, dtype=np.int64).reshape(-1, array.shape[-1])
    return "".join(" ".join(map(str, row)) + "\n" for row in rows.tolist())


def testbench_data(project: Project, x: np.ndarray, golden: Trace | None) -> dict[str, str]:
    """``tb_data`` files from encoded inputs ``x`` [T, B, n_in] and an optional golden trace."""
    steps, batch = x.shape[:2]
    files = {"tb_data/input.dat": f"{steps} {batch} {project.input_size}\n"
             + _lines(np.swapaxes(x, 0, 1))}
    if golden is not None:
        for layer in project.layers:
            states = golden.layers[layer.name]
            for suffix, key in STATES.items():
                arr = np.asarray(states[key]).reshape(steps, batch, layer.size)
                files[f"tb_data/golden_{layer.ident}_{suffix}.dat"] = _lines(np.swapaxes(arr, 0, 1))
    return files


def write_files(out_dir: Path, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = Path(out_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, newline="\n")
