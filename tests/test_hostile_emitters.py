"""Hostile names through every emitter: the generated files parse (Python), compile and pass
their C simulation (C++ with g++), source cleanly (Tcl), load (ONNX, JSON), print no control
characters, and no injected code ever runs (the sentinel file is never created).

Names come from tests/hostile.py and reach the emitters through the Python API (which accepts
any name), not only through the import grammar of the command line.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path

import numpy as np
import pytest

from snn_compile.emulator import run_network
from snn_compile.compare import pad_for_latency, traces_identical
from snn_compile.ir.fixed import QNetwork
from snn_compile.targets import load_target
from snn_compile.trace import Trace

from hostile import names
from strategies import random_qnetwork, random_spikes

DEPTH = 8  # layers per network: the names are spread over three networks


def _visible(text: str) -> bool:
    return all(ch in "\n" or ch == " " or unicodedata.category(ch)[0] not in "CZ"
               for ch in text)


def _renamed(net: QNetwork, new: list[str]) -> QNetwork:
    """Populations renamed, in evaluation order, to the names ``new``."""
    return net.renamed(dict(zip(net.order, new)))


@pytest.fixture(scope="module")
def sentinel(tmp_path_factory):
    path = tmp_path_factory.mktemp("sentinel") / "PWNED"
    yield path
    assert not path.exists(), "code injected through a name ran"


def _networks(sentinel, target, seed=7):
    """Networks whose layer names, together, are every hostile name."""
    hostile = names(sentinel)
    rng = np.random.default_rng(seed)
    for start in range(0, len(hostile), DEPTH):
        chunk = hostile[start:start + DEPTH]
        net = random_qnetwork(rng, target, depth=len(chunk))
        yield _renamed(net, chunk), hostile[start]


def _run(cmd, cwd, **kw):
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env, timeout=300,
                          **kw)


@pytest.mark.lava
def test_lava_bundle(sentinel, tmp_path):
    pytest.importorskip("lava")
    from snn_compile.backend import get_backend

    lava = get_backend("lava")
    for k, (net, source) in enumerate(_networks(sentinel, load_target("loihi2"))):
        out = tmp_path / f"b{k}"
        x = pad_for_latency(random_spikes(np.random.default_rng(k), net, 6, 2), net)
        lava.emit(lava.lower(net), out, inputs=x, golden=run_network(net, x),
                  source_name=source)
        for py in out.rglob("*.py"):
            ast.parse(py.read_text(), filename=str(py))  # still valid Python
        manifest = json.loads((out / "manifest.json").read_text())
        assert {pop["name"] for pop in manifest["populations"]} == set(net.order)
        with np.load(out / "golden.npz") as data:
            assert set(Trace.from_npz_dict(data).layers) == set(net.order)
        run = "golden.npz"
        if k == 0:  # Lava takes seconds: run the bundle once, on a data file of our own
            np.savez(out / "data.npz", spikes=x)
            done = _run([sys.executable, "run_lava.py", "--inputs", "data.npz", "--out",
                         "run.npz"], out)
            assert done.returncode == 0, done.stderr
            assert _visible(done.stdout)
            run = "run.npz"
        done = _run([sys.executable, "compare.py", run, "golden.npz"], out)
        assert done.returncode == 0 and "match" in done.stdout, done.stdout + done.stderr


def _hostile_target(base: str, text: str):
    target = load_target(base)
    return dataclasses.replace(target, name=text, description=text,
                               resources=dataclasses.replace(target.resources, part=text))


TCL_STUBS = """
foreach cmd {{open_project set_top add_files open_solution create_clock set_clock_uncertainty
             csim_design csynth_design cosim_design}} {{
    proc $cmd args {{}}
}}
proc set_part {{part}} {{ set ::seen(part) $part }}
proc export_design args {{ set ::seen(export) $args }}
rename exit _exit
proc exit args {{}}
set argv {{csim=1 synth=1 cosim=1 export=1}}
source {script}
set f [open {out} w]
fconfigure $f -encoding utf-8
puts -nonewline $f $::seen(part)
close $f
"""


@pytest.mark.hls
def test_hls_project_compiles_runs_and_sources(sentinel, tmp_path, monkeypatch):
    from snn_compile.backends.hls import HlsBackend, csim

    if csim.missing():
        pytest.skip(csim.missing())
    monkeypatch.setenv(csim.CACHE_ENV, str(tmp_path / "cache"))
    hostile = names(sentinel)
    part = f"x}} ; exec touch {sentinel} ; set x {{"
    target = _hostile_target("xc7z020", hostile[7])  # newline + std::system in the name
    target = dataclasses.replace(target, resources=dataclasses.replace(target.resources,
                                                                         part=part))
    rng = np.random.default_rng(3)
    net = random_qnetwork(rng, target, depth=len(hostile))  # one project, every name
    net = _renamed(net, hostile)
    x = random_spikes(rng, net, 5, 2)
    prj = tmp_path / "prj"
    backend = HlsBackend(reuse_factor=1, check_fit=False)
    backend.emit(backend.lower(net), prj, inputs=x, golden=run_network(net, x),
                 source_name=hostile[0])
    assert all(len(p.name) < 100 for p in prj.rglob("*"))  # the 300-character name
    out = csim.run_testbench(csim.build(prj), prj / "tb_data")  # g++ compiles and runs it
    assert out.startswith("PASS"), out
    readme = (prj / "README.md").read_text()
    assert "<script>" not in readme and _visible(readme)
    if subprocess.run(["which", "tclsh"], capture_output=True).returncode == 0:
        seen = tmp_path / "part.txt"
        stub = tmp_path / "stub.tcl"
        stub.write_text(TCL_STUBS.format(script=prj / "build_prj.tcl", out=seen))
        done = _run(["tclsh", str(stub)], prj)
        assert done.returncode == 0, done.stderr
        assert seen.read_text(encoding="utf-8") == part


def test_onnx_models_and_runner(sentinel, tmp_path):
    import onnx

    from snn_compile.backends.onnx import OnnxBackend

    backend = OnnxBackend()
    for k, (net, source) in enumerate(_networks(sentinel, _hostile_target("cpu", "t\x1b[2J"))):
        x = random_spikes(np.random.default_rng(k), net, 6, 2)
        golden = run_network(net, x)
        assert traces_identical(golden, backend.run(net, x)) is None
        out = tmp_path / f"o{k}"
        summary = backend.emit(net, out, inputs=x, golden=golden, source_name=source)
        assert summary["verified"] is True
        onnx.checker.check_model(onnx.load(out / "model_window.onnx"))
        json.dumps(summary)
        if k == 0:
            done = _run([sys.executable, "run_onnx.py"], out)
            assert done.returncode == 0, done.stderr
            assert _visible(done.stdout)


def test_inspect_and_plots(sentinel, tmp_path):
    import snntorch as snn
    import torch

    from snn_compile.check import run_check, write_outputs
    from snn_compile.importers.snntorch import from_snntorch
    from snn_compile.inspect import describe
    from snn_compile.quantize import quantize

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(6, 5), snn.Leaky(beta=0.9, init_hidden=True),
                              torch.nn.Linear(5, 3), snn.Leaky(beta=0.9, init_hidden=True))
    graph = from_snntorch(net, (6,))
    hostile = names(sentinel)
    mapping = {"1": "$\\alpha^$", "3": hostile[13], "0": hostile[0], "2": hostile[15]}
    graph = graph.replace(
        nodes=tuple(dataclasses.replace(n, name=mapping.get(n.name, n.name)) for n in graph.nodes),
        edges=tuple(e._replace(src=mapping.get(e.src, e.src), dst=mapping.get(e.dst, e.dst))
                    for e in graph.edges))
    text = describe(graph, hostile[13])
    assert _visible(text) and len(text.splitlines()) == len(graph.nodes) + 2
    spikes = (np.random.default_rng(0).random((10, 4, 6)) < 0.4).astype(np.float32)
    qnet = quantize(graph, load_target("cpu"), spikes).network
    result = run_check(graph, qnet, spikes)
    paths = write_outputs(result, tmp_path, plots=True)
    assert {p.name for p in paths} >= {"raster_0.png", "layers.png", "counts.png"}
    json.loads((tmp_path / "check.json").read_text())
