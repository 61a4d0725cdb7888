"""The Loihi 2 bring-up bundle: everything a lab machine needs to rerun a network on Lava.

Layout of ``out_dir`` (fields of manifest.json are documented in BUNDLE.md, copied as README.md)::

    manifest.json     populations, neuron and synapse processes with their registers, the
                      mapping (sorted keys, no paths or times)
    params.npz        weights, layouts and per-neuron arrays referenced as "params:<key>"
    inputs.npz        "input": integer input [T, B, *input_shape]
    golden.npz        the emulator's Trace (Trace.to_npz_dict())
    run_lava.py       rebuilds the network with lava_net/ and writes lava_run.npz
    compare.py        compares a run with golden.npz; exit 0 / 1
    lava_net/         verbatim copies of build.py, lava_shim.py, lava_cleanup.py (+ processes.py
                      if SnnLIF is used)
    README.md

Every file is byte-for-byte deterministic: npz members carry a fixed timestamp, JSON is written
with sorted keys, templates are rendered from whole files.
"""

from __future__ import annotations

import json
from pathlib import Path

import jinja2
import numpy as np

from snn_compile.errors import SnnCompileError
from snn_compile.escape import filters
from snn_compile.ir.fixed_io import npz_bytes
from snn_compile.trace import Trace

from .lower import FORMAT_VERSION, LavaNet
from .mapping import map_to_cores
from .run import encode

HERE = Path(__file__).resolve().parent
VENDORED = {"lava_net/build.py": "build.py", "lava_net/lava_shim.py": "lava_shim.py",
            "lava_net/lava_cleanup.py": "lava_cleanup.py"}
VENDORED_CUSTOM = {"lava_net/processes.py": "processes.py"}
TEMPLATES = {"run_lava.py": "run_lava.py.j2", "compare.py": "compare.py.j2",
             "lava_net/__init__.py": "lava_net_init.py.j2"}


def json_bytes(data) -> bytes:
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(HERE / "templates"),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             trim_blocks=True, lstrip_blocks=True, autoescape=False)
    env.filters.update(filters())  # every input string passes snn_compile.escape
    return env


def _population_lines(manifest: dict) -> list[dict]:
    """One line per population for run_lava.py's docstring: process kinds only (names pass
    through the templates' own escaping)."""
    lines = []
    for pop in manifest["populations"]:
        kinds = sorted({s["process"] for s in manifest["synapses"]
                        if s["target"] in pop["units"]})
        neuron = pop["process"] + (f" x{pop['groups']} (register groups)"
                                   if pop["groups"] > 1 else "")
        lines.append({"name": pop["name"], "neuron": neuron, "synapse": " + ".join(kinds),
                      "shape": tuple(pop["shape"])})
    return lines


def _check_golden(golden: Trace, x: np.ndarray, lowered: LavaNet) -> None:
    for pop in lowered.network.populations:
        states = golden.layers.get(pop.name, {})
        for state in ("spikes", "u", "v"):
            arr = states.get(state)
            if arr is None or arr.shape[:2] != x.shape[:2]:
                raise SnnCompileError("golden trace does not match the inputs",
                                      node=pop.name, value=state,
                                      hint="pass the emulator's Trace for these inputs")


def bundle_files(lowered: LavaNet, *, inputs: np.ndarray, golden: Trace,
                 source_name: str) -> tuple[dict[str, bytes], dict]:
    """The bundle as {relative path: bytes}, plus the summary."""
    net = lowered.network
    report = map_to_cores(net)
    x = encode(lowered, inputs).astype(np.int32)
    _check_golden(golden, x, lowered)
    custom = lowered.custom_populations
    manifest = dict(lowered.manifest)
    manifest["bundle"] = {
        "format": "snn-compile-lava-bundle", "format_version": FORMAT_VERSION,
        "source": source_name, "time_steps": int(x.shape[0]), "batch": int(x.shape[1]),
        "files": {"params": "params.npz", "inputs": "inputs.npz", "golden": "golden.npz",
                  "run": "run_lava.py", "compare": "compare.py"},
    }
    manifest["mapping"] = report.as_dict()
    context = {
        "source_name": source_name, "format_version": FORMAT_VERSION,
        "layers": _population_lines(manifest), "custom_layers": custom,
        "custom_models": lowered.custom_models, "steps": int(x.shape[0]),
        "batch": int(x.shape[1]), "input_shape": tuple(net.input_shape),
        "input_kind": "binary spikes" if net.input.binary else
                      f"graded {net.input.dtype} payloads",
    }
    env = _environment()
    files = {
        "manifest.json": json_bytes(manifest),
        "params.npz": npz_bytes(lowered.params, compress=False),
        "inputs.npz": npz_bytes({"input": x}, compress=False),
        "golden.npz": npz_bytes(golden.to_npz_dict(), compress=False),
        "README.md": (HERE / "BUNDLE.md").read_bytes(),
    }
    files.update({path: env.get_template(name).render(**context).encode()
                  for path, name in TEMPLATES.items()})
    vendored = {**VENDORED, **(VENDORED_CUSTOM if custom else {})}
    files.update({path: (HERE / name).read_bytes() for path, name in vendored.items()})
    bias = manifest["bias_source"]
    summary = {
        "format_version": FORMAT_VERSION,
        "source": source_name,
        "files": sorted(files),
        "mapping": report.as_dict(),
        "custom_models": lowered.custom_models,
        "custom_populations": custom,
        "requires_custom_microcode": bool(custom),
        "bias_source": None if bias is None else bias_cost(lowered, report),
    }
    return files, summary


def bias_cost(lowered: LavaNet, report) -> dict:
    """What the bias source costs: its cores and the synapses of its projections."""
    bias = lowered.manifest["bias_source"]
    name = bias["population"]
    synapses = sum(int(np.count_nonzero(p.weight)) for p in lowered.network.outgoing(name)
                   if p.target != name)
    return {**bias, "cores": report.population(name).cores, "synapses": synapses}


def emit_bundle(lowered: LavaNet, out_dir: Path, *, inputs: np.ndarray, golden: Trace,
                source_name: str) -> dict:
    """Write the bundle into ``out_dir`` (created if needed); return the summary dict."""
    files, summary = bundle_files(lowered, inputs=inputs, golden=golden,
                                  source_name=source_name)
    for rel, data in sorted(files.items()):
        path = out_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    return summary
