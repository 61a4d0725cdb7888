"""HLS backend: the generated C++ (compiled with g++ and the ap_types headers) equals the
emulator bit for bit, every spike and every u/v of every layer and step.

g++ on ap_int code takes ~10 s per translation unit, so the default run compiles only a few
networks, each built to cover many features at once (every reset mode x timing, both spike
tests, CUBA and LIF, recurrence, delay, input bias, conv, graded input, narrow wrapping and
saturating widths, all rounding rules). Broader random sweeps are marked ``slow``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from snn_compile.emulator import run_network
from snn_compile.backends.hls import HlsBackend, csim
from snn_compile.errors import TargetError, UnsupportedError
from snn_compile.ir.fixed import QConv, QDense, QLayer, QNetwork, QNeuron
from snn_compile.targets import load_target

from strategies import random_qnetwork, random_spikes

pytestmark = [pytest.mark.hls,
              pytest.mark.skipif(csim.missing() is not None, reason=str(csim.missing()))]

PART = load_target("xc7z020")
HLS = HlsBackend()

# (reset, timing, spike test, CUBA, reset discards input) for consecutive layers
COMBOS = [("subtract", "same_step", ">", True, False),
          ("zero", "next_step", ">=", False, True),
          ("subtract", "next_step", ">=", True, False),
          ("zero", "same_step", ">", False, False),
          ("none", "same_step", ">", True, False)]


@pytest.fixture(scope="module", autouse=True)
def compile_cache(tmp_path_factory):
    """A private g++ binary cache for this module (run() and emit() share binaries)."""
    old = os.environ.get(csim.CACHE_ENV)
    os.environ[csim.CACHE_ENV] = str(tmp_path_factory.mktemp("hls-cache"))
    yield
    if old is None:
        os.environ.pop(csim.CACHE_ENV, None)
    else:
        os.environ[csim.CACHE_ENV] = old


def assert_same(golden, got):
    """Every state of every layer equal; report the first difference."""
    assert set(got.layers) == set(golden.layers)
    for name, states in golden.layers.items():
        for key in ("spikes", "u", "v"):
            want, have = np.asarray(states[key]), np.asarray(got.layers[name][key])
            assert have.shape == want.shape, (name, key, have.shape, want.shape)
            bad = np.argwhere(have != want)
            assert bad.size == 0, (f"{name}.{key} first mismatch at [t, b, ...] = {bad[0]}: "
                                   f"csim {have[tuple(bad[0])]}, emulator {want[tuple(bad[0])]}")
    assert np.array_equal(np.asarray(got.output), np.asarray(golden.output))


def with_features(net: QNetwork, rng, *, combos=COMBOS, bias_layer=1, delay_layer=2):
    """Assign reset/timing/test/CUBA per layer, an input bias and a synaptic delay."""
    layers = []
    for i, layer in enumerate(net.layers):
        reset, timing, test, cuba, discard = combos[i % len(combos)]
        n = layer.neuron
        neuron = dataclasses.replace(
            n, reset=reset, reset_timing=timing, spike_test=test, reset_discards_input=discard,
            has_current=cuba, decay_u=int(rng.integers(1, 65537)) if cuba else 0)
        extra = {}
        if i == bias_layer:
            extra["input_bias"] = rng.integers(-300, 300, size=n.shape)
        if i == delay_layer:
            extra["delay"] = 2
        layers.append(dataclasses.replace(layer, neuron=neuron, **extra))
    return dataclasses.replace(net, layers=tuple(layers))


def saturates(trace, bits: int) -> bool:
    top = (1 << (bits - 1)) - 1
    return any(np.abs(states[k]).max() >= top for states in trace.layers.values()
               for k in ("u", "v"))


def check_network(net, spikes, tmp_path, reuse_factor=1):
    """csim == emulator through run(), and the emitted project's testbench passes."""
    golden = run_network(net, spikes)
    got = HLS.run(net, spikes, reuse_factor=reuse_factor)
    assert_same(golden, got)
    prj = tmp_path / "prj"
    HLS.emit(net, prj, inputs=spikes, golden=golden, source_name="snn",
             reuse_factor=reuse_factor)
    out = csim.run_testbench(csim.build(prj), prj / "tb_data")  # cached binary of run()
    assert out.startswith("PASS"), out
    return golden, prj


# ---------------------------------------------------------------------------------- defaults

def test_available():
    assert HLS.available() is None


def test_hand_checked_golden(tmp_path):
    """Two layers small enough to step by hand (fpga rules: floor-rounded decays).

    Layer a (LIF, m_v = 0.75, thr 4, subtract, next step, '>'), inputs [1,1],[1,0],[0,0],[0,1]:
      n0: input 2, 3, 0, -1 -> v = 2, floor(1.5)+3 = 4, floor(3)+0 = 3, floor(2.25)-1 = 1
      n1: input 4, 2, 0, 2  -> v = 4, 3+2 = 5 (spike; v kept), floor(3.75)+0-4 = -1,
          floor(-0.75)+2 = 1 (rounding toward zero would give 2)
    Layer b (CUBA, m_u = 0.5, no leak, thr 6, zero reset in the same step, '>='), fed by n1's
    spike at t=1 through weight 7: u = 0, 7, floor(3.5) = 3, floor(1.5) = 1;
      v = 0, 7 -> spike -> 0, 3, 4.
    """
    target = PART
    a = QLayer(name="a", synapse=QDense(weight=[[3, -1], [2, 2]]),
               neuron=QNeuron(shape=(2,), decay_u=0, decay_v=49152, threshold=4, bias=0,
                              reset="subtract", reset_timing="next_step", spike_test=">"))
    b = QLayer(name="b", source="a", synapse=QDense(weight=[[5, 7]]),
               neuron=QNeuron(shape=(1,), decay_u=32768, decay_v=65536, threshold=6, bias=0,
                              reset="zero", reset_timing="same_step", spike_test=">=",
                              has_current=True))
    net = QNetwork(input_shape=(2,), layers=(a, b), target=target)
    spikes = np.array([[1, 1], [1, 0], [0, 0], [0, 1]], np.float32)[:, None, :]
    want = {
        "a": {"u": [[2, 4], [3, 2], [0, 0], [-1, 2]], "v": [[2, 4], [4, 5], [3, -1], [1, 1]],
              "spikes": [[0, 0], [0, 1], [0, 0], [0, 0]]},
        "b": {"u": [[0], [7], [3], [1]], "v": [[0], [0], [3], [4]],
              "spikes": [[0], [1], [0], [0]]},
    }
    golden = run_network(net, spikes)
    got = HLS.run(net, spikes)
    for name, states in want.items():
        for key, values in states.items():
            expected = np.array(values)[:, None, :]
            assert np.array_equal(golden.layers[name][key], expected), (name, key, "emulator")
            assert np.array_equal(got.layers[name][key], expected), (name, key, "csim")


def test_mixed_network_every_feature(tmp_path):
    """conv + 4 dense layers: all reset x timing combinations, both tests, CUBA and LIF,
    recurrence, input bias, a 2-step delay, saturating weights, reuse factor 3."""
    rng = np.random.default_rng(7)
    net = random_qnetwork(rng, PART, conv=True, recurrent=True, cuba=True, depth=4,
                          weight_scale=400.0)
    net = with_features(net, rng)
    spikes = random_spikes(rng, net, steps=16, batch=3)
    golden, prj = check_network(net, spikes, tmp_path, reuse_factor=3)
    assert saturates(golden, PART.neuron.v.bits), "the test should drive states into saturation"

    # the testbench reports the first mismatch and fails
    gold = prj / "tb_data" / "golden_fc2_v.dat"
    lines = gold.read_text().splitlines()
    row = lines[5].split()
    row[1] = str(int(row[1]) + 1)
    lines[5] = " ".join(row)
    gold.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([str(csim.build(prj)), str(prj / "tb_data")], capture_output=True,
                          text=True)
    assert proc.returncode == 1
    assert "MISMATCH layer fc2 state v sample 0 step 5 neuron 1" in proc.stdout


def test_graded_input_narrow_wrapping_widths(tmp_path):
    """Graded 8-bit input (multiplies), 10-bit wrapping u, 12-bit symmetric-saturating v,
    11-bit accumulators and 14-bit intermediates (wrap), round-to-nearest decays, weight
    exponents, activation shift, a non-spiking readout."""
    target = load_target("xc7z020", overrides={
        "neuron.u": "int10", "neuron.u_overflow": "wrap",
        "neuron.v": "int12", "neuron.v_overflow": "saturate_symmetric",
        "accumulator.dense": "int11", "accumulator.intermediate": "int14",
        "neuron.decay_rounding": "nearest", "neuron.activation_shift": 1,
        "weights.exp_min": -2, "weights.exp_max": 2})
    rng = np.random.default_rng(11)
    net = random_qnetwork(rng, target, recurrent=True, cuba=True, depth=3)
    net = with_features(net, rng, combos=COMBOS[:2] + [COMBOS[4]], delay_layer=-1)
    last = net.layers[-1]
    readout = dataclasses.replace(last.neuron, spiking=False, reset="none")
    net = dataclasses.replace(net, input_bits=8, input_scale=16.0,
                              layers=net.layers[:-1] + (dataclasses.replace(last, neuron=readout),))
    spikes = rng.integers(-64, 64, size=(14, 3, *net.input_shape)) / 16.0
    golden, _ = check_network(net, spikes, tmp_path, reuse_factor=2)
    assert saturates(golden, 10)


def test_conv_groups_dilation_toward_zero(tmp_path):
    """Grouped, dilated, strided conv with padding; toward-zero rounding; wrapping v."""
    target = load_target("xc7z020", overrides={"neuron.decay_rounding": "toward_zero",
                                               "neuron.v_overflow": "wrap", "neuron.v": "int14",
                                               "accumulator.conv": "int9"})
    rng = np.random.default_rng(3)
    conv = QConv(weight=rng.integers(-255, 256, size=(4, 2, 3, 2)), in_shape=(4, 9, 8),
                 stride=(1, 2), padding=(2, 1), dilation=(2, 1), groups=2)
    shape = conv.out_shape
    neuron = QNeuron(shape=shape, decay_u=40000, decay_v=rng.integers(0, 65537, size=shape),
                     threshold=rng.integers(50, 400, size=shape), bias=-3, reset="subtract",
                     reset_timing="same_step", has_current=True)
    n = int(np.prod(shape))
    fc = QLayer(name="out", source="c", synapse=QDense(weight=rng.integers(-255, 256, (5, n))),
                neuron=QNeuron(shape=(5,), decay_u=0, decay_v=60000, threshold=300, bias=0,
                               reset="zero", reset_timing="next_step"))
    net = QNetwork(input_shape=conv.in_shape,
                   layers=(QLayer(name="c", synapse=conv, neuron=neuron), fc), target=target)
    spikes = random_spikes(rng, net, steps=10, batch=2, rate=0.5)
    check_network(net, spikes, tmp_path, reuse_factor=4)  # 180 decay multipliers: share DSPs


def test_emit_is_deterministic_and_relocatable(tmp_path):
    rng = np.random.default_rng(5)
    net = with_features(random_qnetwork(rng, PART, conv=True, recurrent=True, cuba=True,
                                        depth=2), rng)
    spikes = random_spikes(rng, net, steps=6, batch=2)
    golden = run_network(net, spikes)
    dirs = [tmp_path / "one", tmp_path / "two"]
    for d in dirs:
        HLS.emit(net, d, inputs=spikes, golden=golden, source_name="model.pt", reuse_factor=2)
    files = sorted(p.relative_to(dirs[0]) for p in dirs[0].rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(dirs[1]) for p in dirs[1].rglob("*") if p.is_file())
    for rel in files:
        text = (dirs[0] / rel).read_bytes()
        assert text == (dirs[1] / rel).read_bytes(), rel
        for needle in ("/work", str(tmp_path), "/tmp", str(Path.home())):
            assert needle.encode() not in text, (rel, needle)
    for expected in ("build_prj.tcl", "README.md", "firmware/snn_top.cpp", "tb/snn_tb.cpp",
                     "firmware/include/snn_neuron.h", "tb_data/input.dat", "estimate.json"):
        assert Path(expected) in files
    tcl = (dirs[0] / "build_prj.tcl").read_text()
    for step in ("csim_design", "csynth_design", "cosim_design", "export_design", "set_part"):
        assert step in tcl


def test_readme_build_command_works_with_only_the_project(tmp_path):
    """The g++ block of the generated README.md builds and passes as written, in a copy of the
    project, with every include path inside the project (no hls4ml, no environment paths)."""
    rng = np.random.default_rng(2)
    net = random_qnetwork(rng, PART, depth=1)
    spikes = random_spikes(rng, net, steps=5, batch=2)
    HLS.emit(net, tmp_path / "emitted", inputs=spikes, golden=run_network(net, spikes),
             source_name="tiny")
    prj = tmp_path / "elsewhere" / "prj"
    shutil.copytree(tmp_path / "emitted", prj)
    shutil.rmtree(tmp_path / "emitted")
    readme = (prj / "README.md").read_text()
    block = re.search(r"## C simulation without Vitis.*?```sh\n(.*?)```", readme, re.S).group(1)
    includes = re.findall(r"-I(\S+)", block)
    assert includes and all((prj / inc).resolve().is_relative_to(prj) for inc in includes)
    assert (prj / "ap_types" / "ap_int.h").is_file() and (prj / "ap_types" / "LICENSE").is_file()
    env = {k: v for k, v in os.environ.items()
           if k not in ("CPATH", "CPLUS_INCLUDE_PATH", "C_INCLUDE_PATH")}
    proc = subprocess.run(["bash", "-ec", block], cwd=prj, capture_output=True, text=True,
                          env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "PASS" in proc.stdout


def test_project_carries_the_vendored_ap_types_unchanged(tmp_path):
    """Every header of the package's ap_types/ lands in the project byte for byte, with the
    licence and notice; g++ -MM finds no ap_types header outside that copy."""
    rng = np.random.default_rng(3)
    net = random_qnetwork(rng, PART, conv=True, recurrent=True, cuba=True, depth=2)
    spikes = random_spikes(rng, net, steps=3, batch=1)
    HLS.emit(net, tmp_path, inputs=spikes, golden=None, source_name="deps")
    package = Path(csim.__file__).parent / "ap_types"
    shipped = sorted(p.relative_to(package) for p in package.rglob("*")
                     if p.is_file() and "__pycache__" not in p.parts)
    assert {"LICENSE", "NOTICE", "ap_int.h"} <= {p.name for p in shipped}
    for rel in shipped:
        assert (tmp_path / "ap_types" / rel).read_bytes() == (package / rel).read_bytes(), rel
    used = set()
    for src in ("firmware/snn_top.cpp", "tb/snn_tb.cpp"):
        deps = subprocess.run([csim.compiler(), "-std=c++17", "-MM", "-Iap_types", "-Ifirmware",
                               "-Ifirmware/include", src], cwd=tmp_path, capture_output=True,
                              text=True, check=True).stdout
        used |= {Path(d) for d in deps.replace("\\\n", " ").split()[1:]}
    ap = {d for d in used if "ap_" in d.name}
    assert ap and all(d.parts[0] == "ap_types" for d in ap), ap


def test_too_big_network_is_refused_before_emitting(tmp_path):
    rng = np.random.default_rng(0)
    n_in, n_out = 1000, 800
    big = QNetwork(input_shape=(n_in,), target=PART, layers=(QLayer(
        name="big", synapse=QDense(weight=rng.integers(-255, 256, (n_out, n_in))),
        neuron=QNeuron(shape=(n_out,), decay_u=0, decay_v=60000, threshold=500, bias=0)),))
    spikes = np.zeros((2, 1, n_in), np.float32)
    with pytest.raises(TargetError, match=r"4096.*reuse factor to at least 196"):
        HLS.emit(big, tmp_path / "a", inputs=spikes, golden=None, source_name="big",
                 reuse_factor=1)
    assert not (tmp_path / "a").exists()
    # enough reuse for Vivado, but 800k 9-bit weights do not fit 280 BRAM_18K
    with pytest.raises(TargetError, match=r"does not fit xc7z020.*BRAM_18K.*bigger part"):
        HLS.emit(big, tmp_path / "b", inputs=spikes, golden=None, source_name="big",
                 reuse_factor=1024)
    report = HLS.estimate(dataclasses.replace(big, target=load_target("xczu9eg")),
                          reuse_factor=1024)
    assert report["resources"]["bram_18k"] <= 1824
    assert report["cycles_per_step"] > 1024
    # the default reuse factor ("auto") finds no fitting one on this part and says what to do
    with pytest.raises(TargetError, match=r"does not fit xc7z020.*bigger part"):
        HLS.emit(big, tmp_path / "c", inputs=spikes, golden=None, source_name="big")
    assert HLS.smallest_reuse_factor(dataclasses.replace(big, target=load_target("xcu250"))) == 256


def test_unsupported_rules_are_refused():
    rng = np.random.default_rng(1)
    lava_wrap = load_target("xc7z020", overrides={"neuron.v_overflow": "wrap_lava"})
    with pytest.raises(UnsupportedError, match="wrap_lava"):
        HLS.lower(random_qnetwork(rng, lava_wrap))
    net = random_qnetwork(rng, PART)
    last = net.layers[-1]
    bad = dataclasses.replace(last.neuron, spiking=False, reset="zero", reset_timing="same_step")
    with pytest.raises(UnsupportedError, match="positive thresholds"):
        HLS.lower(dataclasses.replace(net, layers=net.layers[:-1] +
                                      (dataclasses.replace(last, neuron=bad),)))


def test_identifiers_are_sanitized_once():
    from snn_compile.backends.hls.lower import c_identifier

    taken: set[str] = set()
    assert c_identifier("0.fc-1", taken) == "l0_fc_1"
    assert c_identifier("int", taken) == "int_l"
    assert c_identifier("0.fc-1", taken) == "l0_fc_12"  # "_2" would extend "l0_fc_1"
    assert c_identifier("__w__", taken) == "w"
    assert c_identifier("x", taken) == "x_l"  # reserved by the generated code
    assert c_identifier("w_rec", taken) == "n2_w_rec"  # "w" + "_rec" is w's recurrent ROM


# ---------------------------------------------------------------------------------- sweeps

@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("kind", ["dense", "conv", "recurrent", "cuba", "saturate", "graded"])
def test_random_networks_sweep(tmp_path, seed, kind):
    rng = np.random.default_rng(100 + seed)
    options = {"dense": {}, "conv": {"conv": True}, "recurrent": {"recurrent": True},
               "cuba": {"cuba": True}, "saturate": {"cuba": True, "weight_scale": 300.0,
                                                     "conv": bool(seed % 2)},
               "graded": {"conv": True, "recurrent": True}}[kind]
    net = random_qnetwork(rng, PART, depth=int(rng.integers(1, 4)), **options)
    spikes = random_spikes(rng, net, steps=12, batch=4)
    if kind == "graded":  # 6-bit signed inputs through the convolution's multipliers
        net = dataclasses.replace(net, input_bits=6, input_scale=8.0)
        spikes = rng.integers(-32, 32, size=spikes.shape) / 8.0
    check_network(net, spikes, tmp_path, reuse_factor=int(rng.integers(1, 5)))
