"""The Loihi 2 bring-up bundle: deterministic bytes, and a fresh interpreter with only numpy and
lava reproduces golden.npz through the generated run_lava.py and compare.py."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snn_compile.backends.loihi import LavaBackend
from snn_compile.emulator import run_network as emulate
from snn_compile.targets import load_target

from strategies import random_qnetwork, random_spikes
from test_loihi import residual_network

LAVA = LavaBackend()
LAVA_MISSING = LAVA.available()

# Runs a script with snn_compile made unimportable: the bundle must not need it.
WITHOUT_SNN_COMPILE = """
import runpy, sys
sys.modules["snn_compile"] = None
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def with_reset(net, names, reset):
    for pop in net.populations:
        if pop.name in names:
            net = net.with_population(dataclasses.replace(
                pop, neuron=dataclasses.replace(pop.neuron, reset=reset)))
    return net


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(7)
    net = random_qnetwork(rng, load_target("loihi2"), conv=True, cuba=True, depth=1)
    net = with_reset(net, ["fc1"], "subtract")
    x = random_spikes(rng, net, 10, 2)
    return net, x, emulate(net, x)


def emit(case, out: Path) -> dict:
    net, x, golden = case
    return LAVA.emit(LAVA.lower(net), out, inputs=x, golden=golden, source_name="digits.snn")


def read_all(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_bundle_is_deterministic_and_complete(case, tmp_path):
    summary = emit(case, tmp_path / "a")
    emit(case, tmp_path / "b")
    first, second = read_all(tmp_path / "a"), read_all(tmp_path / "b")
    assert first == second
    assert sorted(first) == summary["files"]
    for name in ("manifest.json", "params.npz", "inputs.npz", "golden.npz", "run_lava.py",
                 "compare.py", "README.md", "lava_net/build.py", "lava_net/lava_shim.py",
                 "lava_net/processes.py", "lava_net/__init__.py"):
        assert name in first, name
    assert summary["custom_models"] == ["SnnLIF"] and summary["custom_populations"] == ["fc1"]
    assert summary["requires_custom_microcode"] is True and summary["bias_source"] is None
    manifest = json.loads(first["manifest.json"])
    assert manifest["format_version"] == 2 and manifest["bundle"]["source"] == "digits.snn"
    assert manifest["mapping"]["cores_used"] == 2
    assert str(tmp_path) not in first["manifest.json"].decode()
    assert [p["name"] for p in manifest["populations"]] == ["conv1", "fc1"]
    (fc1,) = [n for n in manifest["neurons"] if n["population"] == "fc1"]
    for key in ("du", "dv", "vth", "bias_mant", "bias_exp", "reset", "process", "max_spikes"):
        assert key in fc1
    assert {s["process"] for s in manifest["synapses"]} == {"Conv", "Dense"}
    assert "microcode" in first["run_lava.py"].decode()
    with np.load(tmp_path / "a" / "golden.npz") as golden:
        assert np.array_equal(golden["layer/fc1/v"], case[2].layers["fc1"]["v"])


def test_bundle_without_custom_neuron_leaves_it_out(case, tmp_path):
    net, x, _ = case
    plain = with_reset(net, ["conv1", "fc1"], "zero")
    summary = LAVA.emit(LAVA.lower(plain), tmp_path, inputs=x, golden=emulate(plain, x),
                        source_name="plain")
    assert "lava_net/processes.py" not in summary["files"]
    assert summary["custom_models"] == []


def run(args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


def run_bundle(bundle: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    """run_lava.py without snn_compile, then compare.py against golden.npz."""
    (tmp_path / "isolated.py").write_text(WITHOUT_SNN_COMPILE)
    done = run([str(tmp_path / "isolated.py"), "run_lava.py", "--out", "lava_run.npz"], bundle)
    assert done.returncode == 0, done.stderr
    return run(["compare.py", "lava_run.npz", "golden.npz"], bundle)


def n_values(golden) -> int:
    return sum(arr.size for states in golden.layers.values() for arr in states.values())


@pytest.mark.lava
@pytest.mark.skipif(bool(LAVA_MISSING), reason=str(LAVA_MISSING))
def test_generated_runner_reproduces_golden(case, tmp_path):
    bundle = tmp_path / "bundle"
    emit(case, bundle)
    checked = run_bundle(bundle, tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == f"all {n_values(case[2])} spikes and states match"

    with np.load(bundle / "lava_run.npz") as data:
        tampered = {k: data[k].copy() for k in data.files}
    tampered["layer/fc1/v"][4, 1, 0] += 1
    np.savez(bundle / "tampered.npz", **tampered)
    checked = run(["compare.py", "tampered.npz", "golden.npz"], bundle)
    assert checked.returncode == 1
    assert "layer/fc1/v: first mismatch at step 4, sample 1, neuron (0,)" in checked.stdout

    hw = run(["run_lava.py", "--hw"], bundle)
    if LAVA.hardware_available() is not None:
        assert hw.returncode == 2 and "lava-loihi" in hw.stderr


@pytest.mark.lava
@pytest.mark.skipif(bool(LAVA_MISSING), reason=str(LAVA_MISSING))
def test_bundle_of_a_graph_reproduces_golden(tmp_path):
    """Convolutions with an elementwise shortcut (DelaySparse), a merge, feedback, multi-spike
    counts and a floor, batched: the standalone builder handles every synapse kind."""
    net = residual_network()
    x = (np.random.default_rng(8).random((12, 3, 1, 5, 5)) < 0.5).astype(np.float32)
    golden = emulate(net, x)
    summary = LAVA.emit(LAVA.lower(net), tmp_path / "bundle", inputs=x, golden=golden,
                        source_name="residual")
    assert summary["mapping"]["cores_used"] == 6
    checked = run_bundle(tmp_path / "bundle", tmp_path)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert checked.stdout.strip() == f"all {n_values(golden)} spikes and states match"


@pytest.mark.parametrize("saturate", [True, False])
def test_bundle_reads_graded_data_files_like_the_emulator(tmp_path, saturate):
    """run_lava.py --inputs with a data file ('spikes', floats) encodes as QInput.encode does:
    clipped into the input's bits where the format saturates, refused where it does not."""
    import runpy

    rng = np.random.default_rng(5)
    net = random_qnetwork(rng, load_target("loihi2"), depth=1)
    net = net.replace(input=dataclasses.replace(net.input, dtype="int8", scale=50.0,
                                                saturate=saturate))
    x = rng.uniform(-4, 4, size=(6, 2, *net.input.shape)).astype(np.float32)  # beyond +-2.56
    inside = np.clip(x, -2.5, 2.5)
    bundle = tmp_path / "bundle"
    LAVA.emit(LAVA.lower(net), bundle, inputs=inside, golden=emulate(net, inside),
              source_name="graded")
    spec = json.loads((bundle / "manifest.json").read_text())["input"]
    np.savez(tmp_path / "data.npz", spikes=x)
    read_inputs = runpy.run_path(str(bundle / "run_lava.py"))["read_inputs"]
    if saturate:
        np.testing.assert_array_equal(read_inputs(tmp_path / "data.npz", spec),
                                      net.input.encode(x).reshape(x.shape))
    else:
        with pytest.raises(ValueError, match="exceed"):
            read_inputs(tmp_path / "data.npz", spec)
