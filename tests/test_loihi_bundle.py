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

from snn_compile.emulator import run_network as emulate
from snn_compile.backends.loihi import LavaBackend
from snn_compile.targets import load_target

from strategies import random_qnetwork, random_spikes

LAVA_MISSING = LavaBackend().available()

# Runs a script with snn_compile made unimportable: the bundle must not need it.
WITHOUT_SNN_COMPILE = """
import runpy, sys
sys.modules["snn_compile"] = None
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


@pytest.fixture(scope="module")
def case():
    rng = np.random.default_rng(7)
    net = random_qnetwork(rng, load_target("loihi2"), conv=True, cuba=True, depth=1)
    layers = [dataclasses.replace(la, neuron=dataclasses.replace(la.neuron, reset="subtract"))
              if la.name == "fc1" else la for la in net.layers]
    net = dataclasses.replace(net, layers=tuple(layers))
    x = random_spikes(rng, net, 10, 2)
    return net, x, emulate(net, x)


def emit(case, out: Path) -> dict:
    net, x, golden = case
    return LavaBackend().emit(net, out, inputs=x, golden=golden, source_name="digits.snn")


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
    assert summary["custom_models"] == ["SnnLIF"] and summary["custom_layers"] == ["fc1"]
    assert summary["requires_custom_microcode"] is True
    manifest = json.loads(first["manifest.json"])
    assert manifest["bundle"]["source"] == "digits.snn"
    assert manifest["mapping"]["cores_used"] == 2
    assert str(tmp_path) not in first["manifest.json"].decode()
    fc1 = manifest["layers"][1]
    for key in ("du", "dv", "vth", "bias_mant", "bias_exp", "reset", "process"):
        assert key in fc1["neuron"]
    assert "microcode" in first["run_lava.py"].decode()
    with np.load(tmp_path / "a" / "golden.npz") as golden:
        assert np.array_equal(golden["layer/fc1/v"], case[2].layers["fc1"]["v"])


def test_bundle_without_custom_neuron_leaves_it_out(case, tmp_path):
    net, x, _ = case
    plain = dataclasses.replace(net, layers=tuple(
        dataclasses.replace(la, neuron=dataclasses.replace(la.neuron, reset="zero"))
        for la in net.layers))
    summary = LavaBackend().emit(plain, tmp_path, inputs=x, golden=emulate(plain, x),
                                 source_name="plain")
    assert "lava_net/processes.py" not in summary["files"]
    assert summary["custom_models"] == []


def run(args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.lava
@pytest.mark.skipif(bool(LAVA_MISSING), reason=str(LAVA_MISSING))
def test_generated_runner_reproduces_golden(case, tmp_path):
    bundle = tmp_path / "bundle"
    emit(case, bundle)
    (tmp_path / "isolated.py").write_text(WITHOUT_SNN_COMPILE)
    done = run([str(tmp_path / "isolated.py"), "run_lava.py", "--out", "lava_run.npz"], bundle)
    assert done.returncode == 0, done.stderr
    checked = run(["compare.py", "lava_run.npz", "golden.npz"], bundle)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    n_values = sum(arr.size for name, states in case[2].layers.items() for arr in states.values())
    assert checked.stdout.strip() == f"all {n_values} spikes and states match"

    with np.load(bundle / "lava_run.npz") as data:
        tampered = {k: data[k].copy() for k in data.files}
    tampered["layer/fc1/v"][4, 1, 0] += 1
    np.savez(bundle / "tampered.npz", **tampered)
    checked = run(["compare.py", "tampered.npz", "golden.npz"], bundle)
    assert checked.returncode == 1
    assert "layer/fc1/v: first mismatch at step 4, sample 1, neuron (0,)" in checked.stdout

    hw = run(["run_lava.py", "--hw"], bundle)
    if LavaBackend().hardware_available() is not None:
        assert hw.returncode == 2 and "lava-loihi" in hw.stderr
