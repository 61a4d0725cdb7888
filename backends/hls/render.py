"""Render a :class:`~.project.Project` into the files of a Vitis HLS project.

Every source file is rendered whole from one jinja2 template in ``templates/``; the kernel
library in ``include/`` and the Xilinx ``ap_types`` headers in ``ap_types/`` (Apache-2.0, with
their LICENSE and NOTICE) are copied verbatim, so the project compiles without hls4ml or Vitis;
test data are plain text written by :func:`testbench_data`; the external weight image (event
design) is binary, built by :func:`external_image`. Output is deterministic (sorted, no time
stamps, no absolute paths). Names from input files reach the files only through the filters
of :mod:`snn_compile.escape` (C++ code itself holds only mangled identifiers).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jinja2
import numpy as np

from snn_compile.escape import filters
from snn_compile.trace import Trace

from .lower import memory_storage
from .project import Project, Rom

#: output path -> template, for files rendered once per project
PROJECT_FILES = {
    "firmware/snn_top.h": "snn_top.h.j2",
    "firmware/snn_top.cpp": "snn_top.cpp.j2",
    "firmware/snn_params.h": "snn_params.h.j2",
    "tb/snn_tb.cpp": "snn_tb.cpp.j2",
    "build_prj.tcl": "build_prj.tcl.j2",
    "README.md": "README.md.j2",
}
LIBRARY = ("snn_arith.h", "snn_delay.h", "snn_events.h", "snn_neuron.h", "snn_synapse.h")
AP_TYPES = "ap_types"  # folder of the package and of the project: g++ -Iap_types
STATES = {"s": "spikes", "u": "u", "v": "v"}  # file suffix -> Trace state key
IMAGE = "firmware/weights/external.bin"
VALUES_PER_LINE = 16


def _rom_values(rom: Rom) -> str:
    """The initializer lines of a ROM (C order, brace elision for several dimensions)."""
    flat = rom.flat().tolist()
    return "\n".join("    " + ", ".join(map(str, flat[k:k + VALUES_PER_LINE])) + ","
                     for k in range(0, len(flat), VALUES_PER_LINE))


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(resources.files(__package__) / "templates")),
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
        keep_trailing_newline=True, autoescape=False)
    env.filters.update(filters())  # every input string passes snn_compile.escape
    env.filters["cbool"] = lambda value: "true" if value else "false"
    env.filters["rom_values"] = _rom_values
    env.filters["storage"] = lambda size: memory_storage(*size)
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


def render_project(project: Project, estimate: dict, *, max_steps: int,
                   decision: str = "") -> dict[str, str | bytes]:
    """All files of the project: relative path -> text (or bytes for the weight image);
    ``max_steps`` is the window of the synthesis top, ``decision`` why this design."""
    env = _environment()
    context = dict(project=project, estimate=estimate, max_steps=max_steps, decision=decision)
    files: dict[str, str | bytes] = {path: env.get_template(tpl).render(**context)
                                     for path, tpl in PROJECT_FILES.items()}
    weights = env.get_template("weights.h.j2")
    for pop in project.populations:
        files[f"firmware/weights/{pop.ident}.h"] = weights.render(
            project=project, pop=pop, roms=pop.roms)
    files.update(library_sources())
    files.update(ap_types_sources())
    if project.memory is not None:
        files[IMAGE] = external_image(project)
    files["estimate.json"] = json.dumps(estimate, indent=2, sort_keys=True) + "\n"
    return dict(sorted(files.items()))


def external_image(project: Project) -> bytes:
    """The external weight image: for each external projection, row ``i`` (the weights from
    source neuron ``i`` to every target) at word ``base + i * words``, ``lanes`` weights per
    word, lane ``l`` in bits ``[l * wb, (l + 1) * wb)`` (two's complement), words as
    little-endian bytes (see ``include/snn_events.h``)."""
    mem = project.memory
    image = np.zeros((mem.words, mem.word_bits // 8), np.uint8)
    for p in project.external:
        wb, lanes, words = p.weight.bits, p.lanes, p.words
        rows = np.asarray(p.weights.values, np.int64)          # [n_in, n_out]
        padded = np.zeros((rows.shape[0], words * lanes), np.int64)
        padded[:, :rows.shape[1]] = rows
        codes = (padded & ((1 << wb) - 1)).astype(np.uint32).reshape(rows.shape[0], words, lanes)
        bits = ((codes[..., None] >> np.arange(wb, dtype=np.uint32)) & 1).astype(np.uint8)
        bits = bits.reshape(rows.shape[0], words, lanes * wb)
        full = np.zeros((rows.shape[0], words, mem.word_bits), np.uint8)
        full[..., :lanes * wb] = bits
        packed = np.packbits(full, axis=-1, bitorder="little")  # [n_in, words, bytes]
        image[p.base:p.base + rows.shape[0] * words] = packed.reshape(-1, mem.word_bits // 8)
    return image.tobytes()


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
        for pop in project.populations:
            states = golden.layers[pop.name]
            for suffix, key in STATES.items():
                arr = np.asarray(states[key]).reshape(steps, batch, pop.size)
                files[f"tb_data/golden_{pop.ident}_{suffix}.dat"] = _lines(np.swapaxes(arr, 0, 1))
    return files


def write_files(out_dir: Path, files: dict[str, str | bytes]) -> None:
    for rel, content in files.items():
        path = Path(out_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, newline="\n")
