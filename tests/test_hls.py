"""HLS backend: the generated C++ (compiled with g++ and the ap_types headers) equals the
emulator bit for bit, every spike and every u/v of every population and step, in both designs
(parallel: every weight on chip; event: event-driven, weights on chip or in external memory).

g++ on ap_int code takes seconds per translation unit, so the default run compiles only a few
networks, each built to cover many features at once (every reset mode x timing, both spike
tests, CUBA and LIF, recurrence, feedback, skip and elementwise projections, delays, input bias,
conv with max pooling, graded input and spike counts, membrane floors, narrow wrapping and
saturating widths, all rounding rules). Broader random sweeps are marked ``slow``.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from snn_compile.backend import get_backend
from snn_compile.backends.hls import HlsBackend, csim
from snn_compile.backends.hls.estimate import problems
from snn_compile.backends.hls.lower import analyze, c_identifier
from snn_compile.backends.hls.plan import parallel_candidate, smallest_fitting_reuse
from snn_compile.backends.hls.render import render_project
from snn_compile.emulator import run_network
from snn_compile.errors import TargetError, UnsupportedError
from snn_compile.ir.fixed import ConvGeometry, QInput, QNetwork, QNeuron, QPopulation, QProjection
from snn_compile.targets import load_target

from strategies import random_network, random_qnetwork, random_spikes

pytestmark = [pytest.mark.hls,
              pytest.mark.skipif(csim.missing() is not None, reason=str(csim.missing()))]

PART = load_target("xc7z020")
HLS = HlsBackend()

# (reset, timing, spike test, CUBA, reset discards input) for consecutive populations
COMBOS = [("subtract", "same_step", ">", True, False),
          ("zero", "next_step", ">=", False, True),
          ("subtract", "next_step", ">=", True, False),
          ("zero", "same_step", ">", False, False),
          ("none", "same_step", ">", True, False),
          ("subtract", "immediate", ">=", False, False),
          ("zero", "immediate", ">", True, False)]


@pytest.fixture(scope="module", autouse=True)
def compile_cache(tmp_path_factory):
    """A private g++ binary cache for this module (run and emit share binaries)."""
    old = os.environ.get(csim.CACHE_ENV)
    os.environ[csim.CACHE_ENV] = str(tmp_path_factory.mktemp("hls-cache"))
    yield
    if old is None:
        os.environ.pop(csim.CACHE_ENV, None)
    else:
        os.environ[csim.CACHE_ENV] = old


# ---------------------------------------------------------------------------------- helpers

def lif(shape, threshold, decay_v=60000, **kw) -> QNeuron:
    kw.setdefault("decay_u", 0)
    return QNeuron(shape=shape, decay_v=decay_v, threshold=threshold, bias=kw.pop("bias", 0),
                   **kw)


def dense(source, target, weight, **kw) -> QProjection:
    return QProjection(name=f"{source}->{target}", source=source, target=target, kind="dense",
                       weight=weight, **kw)


def assert_same(golden, got):
    """Every state of every population equal; report the first difference."""
    assert set(got.layers) == set(golden.layers)
    for name, states in golden.layers.items():
        for key in ("spikes", "u", "v"):
            want, have = np.asarray(states[key]), np.asarray(got.layers[name][key])
            assert have.shape == want.shape, (name, key, have.shape, want.shape)
            bad = np.argwhere(have != want)
            assert bad.size == 0, (f"{name}.{key} first mismatch at [t, b, ...] = {bad[0]}: "
                                   f"csim {have[tuple(bad[0])]}, emulator {want[tuple(bad[0])]}")
    assert np.array_equal(np.asarray(got.output), np.asarray(golden.output))


def with_features(net: QNetwork, rng, *, combos=COMBOS, bias_pop=1, delay_pop=2):
    """Assign reset/timing/test/CUBA per population (in evaluation order), a synaptic-current
    bias and two extra steps of delay on one population's feed-forward projection."""
    pops = []
    for i, pop in enumerate(net.in_order()):
        reset, timing, test, cuba, discard = combos[i % len(combos)]
        neuron = dataclasses.replace(
            pop.neuron, reset=reset, reset_timing=timing, spike_test=test,
            reset_discards_input=discard, has_current=cuba,
            decay_u=int(rng.integers(1, 65537)) if cuba else 0)
        bias = rng.integers(-300, 300, size=pop.shape) if i == bias_pop else pop.input_bias
        pops.append(dataclasses.replace(pop, neuron=neuron, input_bias=bias))
    delayed = net.order[delay_pop] if 0 <= delay_pop < len(net.order) else None
    projs = [dataclasses.replace(p, delay=p.delay + 2)
             if p.target == delayed and p.source != p.target else p for p in net.projections]
    return net.replace(populations=tuple(pops), projections=tuple(projs))


def saturates(trace, bits: int) -> bool:
    top = (1 << (bits - 1)) - 1
    return any(np.abs(states[k]).max() >= top for states in trace.layers.values()
               for k in ("u", "v"))


def image_args(prj: Path) -> list[str]:
    image = prj / "firmware" / "weights" / "external.bin"
    return [str(image)] if image.exists() else []


def check_network(net, spikes, tmp_path, **options):
    """csim == emulator through run_lowered(), and the emitted project's testbench passes."""
    backend = HlsBackend(**options)
    golden = run_network(net, spikes)
    lowered = backend.lower(net)
    assert_same(golden, backend.run_lowered(lowered, spikes))
    prj = tmp_path / "prj"
    summary = backend.emit(lowered, prj, inputs=spikes, golden=golden, source_name="snn")
    out = csim.run_testbench(csim.build(prj), prj / "tb_data", *image_args(prj))  # cached
    assert out.startswith("PASS"), out
    return golden, prj, summary


def feature_graph(target) -> QNetwork:
    """A hand-made graph with every projection kind and every new neuron feature:

    input (2x7x7) -conv 3x3, max pool 3 stride 2 (overlapping windows)-> p1 (3x3x3, multi-spike
    counts up to 5, subtract, membrane floor) -dense (graded counts)-> p2 (zero reset,
    immediate) ; p1 -skip dense-> p3 ; p2 -elementwise-> p3 (delay 1) ; p3 -feedback dense,
    delay 2-> p2 ; p3 self-recurrent (delay 1) ; input bias on p3 ; input -dense, delay 3-> p4 ;
    p3 -dense-> p4, a non-spiking readout with a same-step zero reset (its stored v doubles).
    """
    rng = np.random.default_rng(21)
    geo = ConvGeometry(in_shape=(2, 7, 7), padding=(1, 1), max_pool=((3, 3), (2, 2)))
    wc = rng.integers(-256, 160, size=(3, 2, 3, 3))
    p1_shape = geo.out_shape(wc.shape)
    n1 = int(np.prod(p1_shape))
    pops = (
        QPopulation(name="p1", neuron=lif(p1_shape, 250, reset="subtract",
                                          reset_timing="immediate", spike_test=">=",
                                          max_spikes=5, v_floor=-250)),
        QPopulation(name="p2", neuron=lif((12,), rng.integers(200, 500, 12), decay_v=50000,
                                          reset="zero", reset_timing="immediate")),
        QPopulation(name="p3", neuron=lif((12,), 2500, decay_u=30000, has_current=True,
                                          v_floor=rng.integers(-900, -100, 12)),
                    input_bias=rng.integers(-40, 80, 12)),
        QPopulation(name="p4", neuron=lif((5,), 700, reset="zero", reset_timing="same_step",
                                          spiking=False, bias=-20)),
    )
    projs = (
        QProjection(name="conv", source="input", target="p1", kind="conv", weight=wc, conv=geo),
        dense("p1", "p2", rng.integers(-256, 256, (12, n1))),
        dense("p1", "p3", rng.integers(-256, 200, (12, n1))),
        QProjection(name="p2=>p3", source="p2", target="p3", kind="elementwise",
                    weight=rng.integers(-256, 256, 12), delay=1),
        dense("p3", "p2", rng.integers(-256, 256, (12, 12)), delay=2),
        QProjection(name="p3.recurrent", source="p3", target="p3", kind="dense",
                    weight=rng.integers(-256, 256, (12, 12)), delay=1),
        dense("input", "p4", rng.integers(-100, 100, (5, 98)), delay=3),
        dense("p3", "p4", rng.integers(-256, 256, (5, 12))),
    )
    return QNetwork(input=QInput(shape=(2, 7, 7)), populations=pops, projections=projs,
                    output="p4", target=target)


def tutorial5(target, rng) -> QNetwork:
    """snnTorch tutorial 5's shape: 784-1000-10 LIF, subtract reset delayed by a step."""
    neuron = dict(decay_v=62259, reset="subtract", reset_timing="next_step")
    pops = (QPopulation(name="lif1", neuron=lif((1000,), 3000, **neuron)),
            QPopulation(name="lif2", neuron=lif((10,), 6000, **neuron)))
    projs = (dense("input", "lif1", rng.integers(-256, 256, (1000, 784))),
             dense("lif1", "lif2", rng.integers(-256, 256, (10, 1000))))
    return QNetwork(input=QInput(shape=(784,)), populations=pops, projections=projs,
                    output="lif2", target=target)


def tutorial6(target, rng) -> QNetwork:
    """snnTorch tutorial 6's CSNN shape: 1x28x28 -> conv 12@5x5 -> max pool 2 -> conv 64@5x5
    -> max pool 2 -> dense 10 (the pools take the max of the convolutions' currents)."""
    neuron = dict(decay_v=62259, reset="subtract", reset_timing="next_step")
    g1 = ConvGeometry(in_shape=(1, 28, 28), max_pool=(2, 2))
    g2 = ConvGeometry(in_shape=(12, 12, 12), max_pool=(2, 2))
    pops = (QPopulation(name="lif1", neuron=lif((12, 12, 12), 1500, **neuron)),
            QPopulation(name="lif2", neuron=lif((64, 4, 4), 6000, **neuron)),
            QPopulation(name="lif3", neuron=lif((10,), 4000, **neuron)))
    projs = (QProjection(name="conv1", source="input", target="lif1", kind="conv",
                         weight=rng.integers(-256, 256, (12, 1, 5, 5)), conv=g1),
             QProjection(name="conv2", source="lif1", target="lif2", kind="conv",
                         weight=rng.integers(-256, 256, (64, 12, 5, 5)), conv=g2),
             dense("lif2", "lif3", rng.integers(-256, 256, (10, 1024))))
    return QNetwork(input=QInput(shape=(1, 28, 28)), populations=pops, projections=projs,
                    output="lif3", target=target)


def mnist_like(rng, net, steps, batch, rate=0.15) -> np.ndarray:
    return (rng.random((steps, batch, *net.input_shape)) < rate).astype(np.float32)


# ---------------------------------------------------------------------------------- defaults

def test_available():
    assert HLS.available() is None


def test_hand_checked_golden():
    """Two populations small enough to step by hand (fpga rules: floor-rounded decays).

    Population a (LIF, m_v = 0.75, thr 4, subtract, next step, '>'), inputs [1,1],[1,0],[0,0],
    [0,1]:
      n0: input 2, 3, 0, -1 -> v = 2, floor(1.5)+3 = 4, floor(3)+0 = 3, floor(2.25)-1 = 1
      n1: input 4, 2, 0, 2  -> v = 4, 3+2 = 5 (spike; v kept), floor(3.75)+0-4 = -1,
          floor(-0.75)+2 = 1 (rounding toward zero would give 2)
    Population b (CUBA, m_u = 0.5, no leak, thr 6, zero reset in the same step, '>='), fed by
    n1's spike at t=1 through weight 7: u = 0, 7, floor(3.5) = 3, floor(1.5) = 1;
      v = 0, 7 -> spike -> 0, 3, 4.
    """
    net = QNetwork(
        input=QInput(shape=(2,)), target=PART, output="b",
        populations=(QPopulation(name="a", neuron=lif((2,), 4, decay_v=49152, reset="subtract",
                                                      reset_timing="next_step")),
                     QPopulation(name="b", neuron=lif((1,), 6, decay_u=32768, decay_v=65536,
                                                      reset="zero", reset_timing="same_step",
                                                      spike_test=">=", has_current=True))),
        projections=(dense("input", "a", [[3, -1], [2, 2]]), dense("a", "b", [[5, 7]])))
    spikes = np.array([[1, 1], [1, 0], [0, 0], [0, 1]], np.float32)[:, None, :]
    want = {
        "a": {"u": [[2, 4], [3, 2], [0, 0], [-1, 2]], "v": [[2, 4], [4, 5], [3, -1], [1, 1]],
              "spikes": [[0, 0], [0, 1], [0, 0], [0, 0]]},
        "b": {"u": [[0], [7], [3], [1]], "v": [[0], [0], [3], [4]],
              "spikes": [[0], [1], [0], [0]]},
    }
    golden = run_network(net, spikes)
    got = HLS.run_lowered(HLS.lower(net), spikes)
    for name, states in want.items():
        for key, values in states.items():
            expected = np.array(values)[:, None, :]
            assert np.array_equal(golden.layers[name][key], expected), (name, key, "emulator")
            assert np.array_equal(got.layers[name][key], expected), (name, key, "csim")


def test_mixed_network_every_feature(tmp_path):
    """conv + 4 dense populations: every reset x timing combination (incl. immediate), both
    tests, CUBA and LIF, recurrence, input bias, a 2-step delay, saturating weights, reuse
    factor 3; and the testbench reports the first mismatch."""
    rng = np.random.default_rng(7)
    net = random_qnetwork(rng, PART, conv=True, recurrent=True, cuba=True, depth=4,
                          weight_scale=400.0)
    net = with_features(net, rng)
    spikes = random_spikes(rng, net, steps=16, batch=3)
    golden, prj, summary = check_network(net, spikes, tmp_path, reuse_factor=3)
    assert summary["design"] == "parallel" and summary["reuse_factor"] == 3
    assert saturates(golden, PART.neuron.v.bits), "the test should drive states into saturation"

    gold = prj / "tb_data" / "golden_fc2_v.dat"
    lines = gold.read_text().splitlines()
    row = lines[5].split()
    row[1] = str(int(row[1]) + 1)
    lines[5] = " ".join(row)
    gold.write_text("\n".join(lines) + "\n")
    proc = subprocess.run([str(csim.build(prj)), str(prj / "tb_data")], capture_output=True,
                          text=True)
    assert proc.returncode == 1
    assert "MISMATCH population fc2 state v sample 0 step 5 neuron 1" in proc.stdout


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
    net = with_features(net, rng, combos=COMBOS[:2] + [COMBOS[4]], delay_pop=-1)
    last = net.output_population
    readout = dataclasses.replace(last.neuron, spiking=False, reset="none")
    net = net.replace(input=QInput(shape=net.input_shape, dtype="int8", scale=16.0),
                      populations=tuple(dataclasses.replace(p, neuron=readout)
                                        if p.name == last.name else p for p in net.populations))
    spikes = rng.integers(-64, 64, size=(14, 3, *net.input_shape)) / 16.0
    golden, _, _ = check_network(net, spikes, tmp_path, reuse_factor=2)
    assert saturates(golden, 10)


def test_conv_groups_dilation_max_pool_toward_zero(tmp_path):
    """Grouped, dilated, strided conv with padding and an overlapping max pool of its sums;
    toward-zero rounding; wrapping v; a 9-bit conv accumulator that wraps."""
    target = load_target("xc7z020", overrides={"neuron.decay_rounding": "toward_zero",
                                               "neuron.v_overflow": "wrap", "neuron.v": "int14",
                                               "accumulator.conv": "int9"})
    rng = np.random.default_rng(3)
    geo = ConvGeometry(in_shape=(4, 9, 8), stride=(1, 2), padding=(2, 1), dilation=(2, 1),
                       groups=2, max_pool=((2, 2), (1, 1)))
    w = rng.integers(-255, 256, size=(4, 2, 3, 2))
    shape = geo.out_shape(w.shape)
    n = int(np.prod(shape))
    net = QNetwork(
        input=QInput(shape=geo.in_shape), target=target, output="out",
        populations=(
            QPopulation(name="c", neuron=QNeuron(
                shape=shape, decay_u=40000, decay_v=rng.integers(0, 65537, size=shape),
                threshold=rng.integers(50, 400, size=shape), bias=-3, reset="subtract",
                reset_timing="same_step", has_current=True)),
            QPopulation(name="out", neuron=lif((5,), 300, reset="zero",
                                               reset_timing="next_step"))),
        projections=(QProjection(name="conv", source="input", target="c", kind="conv",
                                 weight=w, conv=geo),
                     dense("c", "out", rng.integers(-255, 256, (5, n)))))
    spikes = random_spikes(rng, net, steps=10, batch=2, rate=0.5)
    check_network(net, spikes, tmp_path, reuse_factor=4)


@pytest.mark.parametrize("options", [{"design": "parallel"},
                                     {"design": "event", "weights": "external"}],
                         ids=["parallel", "event-external"])
def test_graph_features_both_designs(tmp_path, options):
    """Skip, feedback, elementwise and self-recurrent projections, delays on feed-forward and
    feedback edges, spike counts feeding a dense projection, membrane floors, immediate resets,
    an overlapping max pool and a doubling zero-reset readout: csim == emulator."""
    net = feature_graph(PART)
    rng = np.random.default_rng(5)
    spikes = random_spikes(rng, net, steps=14, batch=3, rate=0.6)
    golden, prj, summary = check_network(net, spikes, tmp_path, **options)
    assert summary["design"] == options["design"]
    p1 = golden.layers["p1"]["spikes"]
    assert p1.max() >= 2, "the multi-spike population should emit counts above one"
    assert (golden.layers["p1"]["v"] == -250).any(), "the floor should bind"
    if options["design"] == "event":
        assert (prj / "firmware" / "weights" / "external.bin").stat().st_size > 0
        assert "external" in summary["decision"]


def test_shuffled_order_is_identical():
    """The same graph with populations and projections listed in another order lowers to the
    same files (so the same binary and the same spikes)."""
    net = feature_graph(PART)
    rng = np.random.default_rng(9)
    shuffled = net.replace(
        populations=tuple(net.populations[i] for i in rng.permutation(len(net.populations))),
        projections=tuple(net.projections[i] for i in rng.permutation(len(net.projections))))
    for design in ("parallel", "event"):
        backend = HlsBackend(design=design)
        one, two = backend.lower(net), backend.lower(shuffled)
        files = [render_project(lw.project, lw.report, max_steps=8, decision=lw.decision)
                 for lw in (one, two)]
        assert files[0] == files[1]


def test_emit_is_deterministic_and_relocatable(tmp_path):
    rng = np.random.default_rng(5)
    net = with_features(random_qnetwork(rng, PART, conv=True, recurrent=True, cuba=True,
                                        depth=2), rng)
    spikes = random_spikes(rng, net, steps=6, batch=2)
    golden = run_network(net, spikes)
    for options in ({"reuse_factor": 2}, {"design": "event", "weights": "external"}):
        backend = HlsBackend(**options)
        dirs = [tmp_path / f"one{len(options)}", tmp_path / f"two{len(options)}"]
        for d in dirs:
            backend.emit(backend.lower(net), d, inputs=spikes, golden=golden,
                         source_name="model.pt")
        files = sorted(p.relative_to(dirs[0]) for p in dirs[0].rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(dirs[1]) for p in dirs[1].rglob("*")
                               if p.is_file())
        for rel in files:
            text = (dirs[0] / rel).read_bytes()
            assert text == (dirs[1] / rel).read_bytes(), rel
            for needle in ("/work", str(tmp_path), "/tmp", str(Path.home())):
                assert needle.encode() not in text, (rel, needle)
        for expected in ("build_prj.tcl", "README.md", "firmware/snn_top.cpp", "tb/snn_tb.cpp",
                         "firmware/include/snn_neuron.h", "firmware/include/snn_events.h",
                         "tb_data/input.dat", "estimate.json"):
            assert Path(expected) in files
        tcl = (dirs[0] / "build_prj.tcl").read_text()
        for step in ("csim_design", "csynth_design", "cosim_design", "export_design",
                     "set_part"):
            assert step in tcl
    assert Path("firmware/weights/external.bin") in files


def test_readme_build_command_works_with_only_the_project(tmp_path):
    """The g++ block of the generated README.md builds and passes as written, in a copy of the
    project, with every include path inside the project (no hls4ml, no environment paths)."""
    rng = np.random.default_rng(2)
    net = random_qnetwork(rng, PART, depth=1)
    spikes = random_spikes(rng, net, steps=5, batch=2)
    HLS.emit(HLS.lower(net), tmp_path / "emitted", inputs=spikes,
             golden=run_network(net, spikes), source_name="tiny")
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
    HLS.emit(HLS.lower(net), tmp_path, inputs=spikes, golden=None, source_name="deps")
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


def test_too_big_for_the_parallel_design():
    """800k weights: the parallel design is refused with advice the tool accepts; the default
    design moves the weights to external memory instead, decided in well under a second."""
    rng = np.random.default_rng(0)
    big = QNetwork(input=QInput(shape=(1000,)), target=PART, output="big",
                   populations=(QPopulation(name="big", neuron=lif((800,), 500)),),
                   projections=(dense("input", "big", rng.integers(-255, 256, (800, 1000))),))
    with pytest.raises(TargetError, match=r"reuse factor 1 does not fit.*4096.*design=event"):
        HlsBackend(reuse_factor=1).lower(big)
    with pytest.raises(TargetError, match=r"does not fit.*BRAM_18K.*design=event"):
        HlsBackend(design="parallel", reuse_factor=1024).lower(big)
    start = time.perf_counter()
    lowered = HLS.lower(big)
    assert time.perf_counter() - start < 2.0
    assert lowered.project.design == "event" and lowered.project.memory is not None
    assert "does not fit xc7z020clg400-1 with any reuse factor" in lowered.decision
    # a part with enough block RAM takes the parallel design, at a reuse factor it accepts
    zu9 = analyze(big.replace(target=load_target("xczu9eg")))
    rf = smallest_fitting_reuse(zu9)
    assert rf is not None and rf & (rf - 1) == 0
    fitting = parallel_candidate(zu9, rf)
    assert fitting.fits and fitting.report["resources"]["bram_18k"] <= 1824
    HlsBackend(reuse_factor=rf).lower(big.replace(target=load_target("xczu9eg")))
    smaller = parallel_candidate(zu9, rf // 2)
    assert not smaller.fits


def test_nothing_fits_names_both_designs():
    rng = np.random.default_rng(0)
    geo = ConvGeometry(in_shape=(64, 40, 40), padding=(1, 1))
    w = rng.integers(-255, 256, (256, 64, 3, 3))
    shape = geo.out_shape(w.shape)
    huge = QNetwork(input=QInput(shape=geo.in_shape), target=PART, output="c",
                    populations=(QPopulation(name="c", neuron=lif(shape, 500)),),
                    projections=(QProjection(name="conv", source="input", target="c",
                                             kind="conv", weight=w, conv=geo),))
    with pytest.raises(TargetError, match=r"no design fits.*parallel.*event.*BRAM_18K"):
        HLS.lower(huge)


def test_tutorial_sized_networks_fit_xc7z020(tmp_path):
    """Tutorial 5 (784-1000-10) and tutorial 6 (a CSNN with max pools of conv currents) fit
    the PYNQ-Z2 in the event design; the emit summary explains the choice and estimates the
    cycles per step at the golden run's spike rates."""
    rng = np.random.default_rng(0)
    for make, external in ((tutorial5, True), (tutorial6, False)):
        net = make(PART, rng)
        spikes = mnist_like(rng, net, steps=25, batch=4)
        golden = run_network(net, spikes)
        start = time.perf_counter()
        lowered = HLS.lower(net)
        assert time.perf_counter() - start < 2.0
        summary = HLS.emit(lowered, tmp_path / make.__name__, inputs=spikes, golden=golden,
                           source_name=make.__name__)
        est = summary["estimate"]
        assert summary["design"] == "event"
        assert "the parallel design does not fit" in summary["decision"]
        assert (lowered.project.memory is not None) == external
        for key in ("lut", "ff", "dsp", "bram_18k"):
            assert est["resources"][key] <= est["available"][key], (make.__name__, key)
        assert est["activity"] == "measured"
        assert 0 < est["cycles_per_step"] < est["cycles_per_step_worst"]
        assert est["events_per_step"]["input"] > 0
        readme = (tmp_path / make.__name__ / "README.md").read_text()
        assert "cycles per time step at the measured spike rates" in readme


def _zoo_network(name: str, samples: int):
    """A trained model of examples/zoo quantized for the PYNQ-Z2, and its test inputs."""
    from snn_compile.quantize import quantize

    zoo = Path(__file__).resolve().parent.parent / "examples" / "zoo"
    sys.path.insert(0, str(zoo))
    try:
        import evaluate
    finally:
        sys.path.remove(str(zoo))
    graph, x, _, _ = evaluate.float_model(name, samples)
    return quantize(graph, PART, x).network, x


@pytest.mark.parametrize("name", ["tut6_csnn", "tut5_fc"])
def test_zoo_tutorials_csim_equals_the_emulator(name):
    """The zoo's trained tutorial-5 FC and tutorial-6 CSNN (int8 input of the digits) as
    quantized for xc7z020: the event design fits and its csim equals the emulator."""
    net, x = _zoo_network(name, samples=3)
    lowered = HLS.lower(net)
    assert lowered.project.design == "event"
    assert not problems(lowered.report)
    assert_same(run_network(net, x), HLS.run_lowered(lowered, x))


@pytest.mark.slow
def test_tutorial6_csim_reduced_steps():
    """The tutorial-6 CSNN in the event design (conv scatter, pooled sums, on-chip rows):
    csim == emulator on a few steps."""
    rng = np.random.default_rng(1)
    net = tutorial6(PART, rng)
    spikes = mnist_like(rng, net, steps=4, batch=2)
    assert_same(run_network(net, spikes), HLS.run_lowered(HLS.lower(net), spikes))


def test_unsupported_rules_are_refused():
    rng = np.random.default_rng(1)
    lava_wrap = load_target("xc7z020", overrides={"neuron.v_overflow": "wrap_lava"})
    net = random_qnetwork(rng, lava_wrap)
    with pytest.raises(UnsupportedError, match="wrap_lava"):
        HLS.check(net)
    with pytest.raises(UnsupportedError, match="wrap_lava"):
        HLS.lower(net)
    net = feature_graph(PART)
    p1 = net.population("p1")
    bad = dataclasses.replace(p1.neuron, threshold=np.where(np.arange(p1.size) == 3, 0, 250)
                              .reshape(p1.shape))
    with pytest.raises(UnsupportedError, match="positive thresholds"):
        HLS.lower(net.with_population(dataclasses.replace(p1, neuron=bad)))


def test_options_are_validated():
    from snn_compile.errors import BackendError

    for bad in ({"reuse_factor": "0"}, {"design": "fast"}, {"weights": "ddr"},
                {"max_steps": 0}):
        with pytest.raises(BackendError):
            get_backend("hls", **bad)
    assert get_backend("hls", reuse_factor="8").settings["reuse_factor"] == 8


def test_identifiers_are_sanitized_once():
    taken: set[str] = set()
    assert c_identifier("0.fc-1", taken) == "l0_fc_1"
    assert c_identifier("int", taken) == "int_l"
    assert c_identifier("0.fc-1", taken) == "l0_fc_12"  # "_2" would extend "l0_fc_1"
    assert c_identifier("__w__", taken) == "w"
    assert c_identifier("x", taken) == "x_l"  # reserved by the generated code
    assert c_identifier("w_rec", taken) == "n2_w_rec"  # "w" + "_rec" could be w's name
    # no identifier extends another by "_...", so "<ident>_<suffix>" names never collide
    taken = set()
    assert c_identifier("a", taken) == "a" and c_identifier("a_u", taken) == "n2_a_u"


# ---------------------------------------------------------------------------------- sweeps

@pytest.mark.slow
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("design", ["parallel", "event"])
def test_random_graphs_sweep(tmp_path, seed, design):
    rng = np.random.default_rng(100 + seed)
    target = load_target("xc7z020")
    net = random_network(rng, target)
    spikes = random_spikes(rng, net, steps=12, batch=3)
    options = {"design": design}
    if design == "event":
        options["weights"] = ("chip", "external")[seed % 2]
    else:
        options["reuse_factor"] = int(rng.integers(1, 5))
    check_network(net, spikes, tmp_path, **options)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["dense", "conv", "recurrent", "cuba", "saturate"])
def test_random_chains_sweep(tmp_path, seed, kind):
    rng = np.random.default_rng(100 + seed)
    options = {"dense": {}, "conv": {"conv": True}, "recurrent": {"recurrent": True},
               "cuba": {"cuba": True}, "saturate": {"cuba": True, "weight_scale": 300.0,
                                                     "conv": bool(seed % 2)}}[kind]
    net = random_qnetwork(rng, PART, depth=int(rng.integers(1, 4)), **options)
    spikes = random_spikes(rng, net, steps=12, batch=4)
    check_network(net, spikes, tmp_path, reuse_factor=int(rng.integers(1, 5)))


@pytest.mark.slow
def test_event_design_conforms():
    """The conformance kit on the event design with every dense matrix in external memory (on
    an FPGA part: external memory needs its memory port)."""
    from snn_compile.testing.conformance import check_backend

    report = check_backend(HlsBackend(design="event", weights="external"), targets=("xc7z020",),
                           networks=6, seed=2)
    assert report.ran > 0, report.summary()


@pytest.mark.slow
def test_tutorial5_csim_reduced_steps():
    """Tutorial 5 in the event design with the 784 x 1000 matrix in external memory."""
    rng = np.random.default_rng(2)
    net = tutorial5(PART, rng)
    spikes = mnist_like(rng, net, steps=6, batch=2)
    assert_same(run_network(net, spikes), HLS.run_lowered(HLS.lower(net), spikes))
