"""The ONNX export runs bit-exactly like the emulator in onnxruntime.

Random fixed-point networks for the cpu, loihi2 and xc7z020 targets (dense, conv, recurrent,
CUBA, large weights that drive the states into wrap-around and saturation) are exported, checked
with ``onnx.checker`` (full check) and run by onnxruntime; every spike and every u/v value of
every layer and step must equal the emulator's. The step model stepped by hand must equal the
window model. Files are deterministic and run in a fresh interpreter without snn_compile.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zlib

import numpy as np
import onnx
import pytest

pytest.importorskip("onnxruntime")

from snn_compile.backend import get_backend  # noqa: E402
from snn_compile.emulator import run_network  # noqa: E402
from snn_compile.backends.onnx import export_onnx  # noqa: E402
from snn_compile.backends.onnx.backend import _session  # noqa: E402
from snn_compile.ir.chain import QLayer, chain  # noqa: E402
from snn_compile.ir.fixed import QNetwork, QNeuron  # noqa: E402
from snn_compile.targets import load_target  # noqa: E402

from strategies import random_qnetwork, random_spikes  # noqa: E402

TARGETS = ("cpu", "loihi2", "xc7z020")
# (conv, recurrent, cuba, weight_scale): plain, every feature, and states pushed past their range
CASES = [(False, False, False, 1.0), (True, False, True, 1.0), (False, True, True, 1.0),
         (True, True, False, 4.0), (False, True, True, 64.0), (True, False, True, 4096.0),
         (False, True, True, 2.0 ** 20), (True, False, False, 2.0 ** 20)]
SATURATING = 2.0 ** 20  # weights this large drive u/v of every target into their limits
SEEDS = range(4)


def assert_same_trace(net: QNetwork, got, ref, where: str) -> None:
    for layer in net.populations:
        for key in ("spikes", "u", "v"):
            a, b = got.layers[layer.name][key], ref.layers[layer.name][key]
            assert a.shape == b.shape, f"{where} {layer.name}.{key}: {a.shape} != {b.shape}"
            bad = np.argwhere(a.astype(np.int64) != b.astype(np.int64))
            assert not len(bad), (f"{where} {layer.name}.{key} differs at {tuple(bad[0])}: "
                                  f"onnx {a[tuple(bad[0])]} emulator {b[tuple(bad[0])]}")
    assert np.array_equal(got.output.astype(np.int64), ref.output.astype(np.int64))


@pytest.fixture(scope="module")
def targets():
    return {name: load_target(name) for name in TARGETS}


@pytest.mark.parametrize("target_name", TARGETS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "conv{}-rec{}-cuba{}-w{:g}".format(*c))
def test_window_equals_emulator(targets, target_name, case):
    conv, recurrent, cuba, weight_scale = case
    backend = get_backend("onnx")
    saturated = 0
    for seed in SEEDS:
        rng = np.random.default_rng([seed, TARGETS.index(target_name), CASES.index(case)])
        net = random_qnetwork(rng, targets[target_name], conv=conv, recurrent=recurrent,
                              cuba=cuba, weight_scale=weight_scale,
                              depth=int(rng.integers(1, 4)))
        spikes = random_spikes(rng, net, steps=int(rng.integers(8, 20)),
                               batch=int(rng.integers(1, 4)), rate=float(rng.uniform(0.1, 0.6)))
        ref = run_network(net, spikes)
        assert_same_trace(net, backend.run(net, spikes), ref, f"{target_name} seed {seed}")
        fmt = targets[target_name].neuron
        limits = (("u", fmt.u.bits), ("v", fmt.v.bits))
        saturated += sum(int(np.abs(ref.layers[layer.name][key]).max(initial=0)
                             >= (1 << (bits - 1)) - 1)
                         for layer in net.populations for key, bits in limits)
    if weight_scale >= SATURATING:  # these cases must really exercise the overflow rules
        assert saturated > 0


@pytest.mark.parametrize("target_name", TARGETS)
def test_step_model_equals_emulator(targets, target_name):
    """Stepping the one-step model by hand, feeding states back, gives the emulator's trace."""
    rng = np.random.default_rng(7)
    net = random_qnetwork(rng, targets[target_name], conv=True, recurrent=True, cuba=True,
                          weight_scale=8.0)
    spikes = random_spikes(rng, net, steps=10, batch=2)
    ref = run_network(net, spikes)
    model = export_onnx(net, mode="step")
    session = _session(model)
    x = net.input.encode(spikes)
    batch = x.shape[1]
    states = {}
    for info in session.get_inputs()[1:]:
        dims = [batch if d == "B" else d for d in info.shape]
        states[info.name] = np.zeros(dims, np.int64)
    names = [o.name for o in session.get_outputs()]
    for t in range(x.shape[0]):
        out = dict(zip(names, session.run(names, {"x": x[t], **states})))
        states = {name: out[f"{name}.next"] for name in states}
        for layer in net.populations:
            shape = ref.layers[layer.name]["v"].shape[1:]
            got = {"spikes": out[f"{layer.name}.spikes"], "u": out[f"{layer.name}.u.next"],
                   "v": out[f"{layer.name}.v.next"]}
            for key, value in got.items():
                assert np.array_equal(value.reshape(shape), ref.layers[layer.name][key][t]), \
                    f"{target_name} step {t} {layer.name}.{key}"


def test_delays_and_bias(targets):
    """Extra layer delays, an input bias and a non-spiking readout (not drawn by strategies)."""
    rng = np.random.default_rng(3)
    for name in TARGETS:
        target = targets[name]
        base = random_qnetwork(rng, target, recurrent=True, cuba=True, depth=2)
        first, second = base.in_order()
        rec1 = next(p for p in base.incoming(first.name) if p.source == first.name)
        syn1 = next(p for p in base.incoming(first.name) if p.source != first.name)
        (syn2,) = base.incoming(second.name)
        readout = QNeuron(shape=second.neuron.shape, decay_u=0, decay_v=second.neuron.decay_v,
                          threshold=second.neuron.threshold, bias=0, reset="none",
                          spiking=False, reset_timing=target.features.reset_timings[0])
        layers = (QLayer(name="a", synapse=_dense(syn1), neuron=first.neuron, delay=2,
                         recurrent=_dense(rec1),
                         input_bias=rng.integers(-50, 50, first.neuron.shape)),
                  QLayer(name="b", synapse=_dense(syn2), neuron=readout, delay=1, source="a"))
        net = chain(base.input_shape, layers, target)
        spikes = random_spikes(rng, net, 15, 2, rate=0.5)
        assert_same_trace(net, get_backend("onnx").run(net, spikes), run_network(net, spikes),
                          name)


def _dense(proj):
    from snn_compile.ir.chain import QDense
    return QDense(weight=proj.weight, weight_exp=proj.weight_exp)


def test_graded_input_and_empty_window(targets):
    from snn_compile.ir.fixed import QInput
    rng = np.random.default_rng(5)
    base = random_qnetwork(rng, targets["cpu"], cuba=True)
    net = base.replace(input=QInput(shape=base.input_shape, dtype="int12", scale=100.0))
    spikes = rng.uniform(-3, 3, (9, 2, *net.input_shape)).astype(np.float32)
    backend = get_backend("onnx")
    assert_same_trace(net, backend.run(net, spikes), run_network(net, spikes), "graded")
    empty = backend.run(net, spikes[:0])
    assert empty.output.shape == (0, 2, *net.output_population.shape)


@pytest.mark.parametrize("mode", ["step", "window"])
def test_checker_metadata_and_deterministic_bytes(targets, mode):
    rng = np.random.default_rng(11)
    net = random_qnetwork(rng, targets["loihi2"], conv=True, recurrent=True, cuba=True)
    net.metadata["source_sha256"] = "ab" * 32
    model = export_onnx(net, mode=mode)
    onnx.checker.check_model(model, full_check=True)
    ops = {node.op_type for node in model.graph.node}
    for node in model.graph.node:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                ops |= {n.op_type for n in attr.g.node}
    assert not ops & {"ConvInteger", "MatMulInteger", "BitShift", "Loop"}
    assert model.opset_import[0].version == 17
    props = {p.key: p.value for p in model.metadata_props}
    assert props["snn_compile.source_sha256"] == "ab" * 32
    assert props["snn_compile.target"] == "loihi2"
    assert set(json.loads(props["snn_compile.scales"])) == {p.name for p in net.populations}
    again = random_qnetwork(np.random.default_rng(11), targets["loihi2"], conv=True,
                            recurrent=True, cuba=True)
    again.metadata["source_sha256"] = "ab" * 32
    assert export_onnx(again, mode=mode).SerializeToString(deterministic=True) == \
        model.SerializeToString(deterministic=True)
    if mode == "window":  # a fixed window length is declared in the shapes and still runs
        fixed = export_onnx(net, mode="window", steps=6)
        onnx.checker.check_model(fixed, full_check=True)
        assert fixed.graph.input[0].type.tensor_type.shape.dim[0].dim_value == 6
        x = net.input.encode(random_spikes(rng, net, 6, 2))
        outputs = _session(fixed).run(None, {"x": x})
        assert all(out.shape[:2] == (6, 2) for out in outputs)


def test_emit_runs_in_fresh_interpreter(targets, tmp_path):
    """emit() writes deterministic files; run_onnx.py verifies them without snn_compile."""
    rng = np.random.default_rng(13)
    net = random_qnetwork(rng, targets["loihi2"], conv=True, recurrent=True, cuba=True,
                          weight_scale=8.0)
    spikes = random_spikes(rng, net, 12, 2)
    golden = run_network(net, spikes)
    backend = get_backend("onnx")
    first = backend.emit(net, tmp_path / "a", inputs=spikes, golden=golden, source_name="m.pt")
    second = backend.emit(net, tmp_path / "b", inputs=spikes, golden=golden, source_name="m.pt")
    assert first["verified"] is True
    assert {k: v["sha256"] for k, v in first["files"].items()} == \
        {k: v["sha256"] for k, v in second["files"].items()}
    assert {"model_step.onnx", "model_window.onnx", "run_onnx.py"} <= set(first["files"])
    guard = ("import sys, runpy; sys.modules['snn_compile'] = None; sys.modules['torch'] = None;"
             "sys.argv = ['run_onnx.py']; runpy.run_path('run_onnx.py', run_name='__main__')")
    proc = subprocess.run([sys.executable, "-c", guard], cwd=tmp_path / "a",
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "all equal" in proc.stdout


@pytest.mark.parametrize("kind,name", [(k, n) for k, t in __import__(
    "snn_compile.datapath.rules", fromlist=["RULES"]).RULES.items() for n in t])
def test_onnx_family_equals_the_specification(kind, name):
    """Each rule of the table built from OnnxOps and run by onnxruntime equals the spec."""
    from onnx import helper

    from snn_compile.backends.onnx.arith import OnnxOps
    from snn_compile.backends.onnx.builder import INT64, GraphBuilder, make_model
    from snn_compile.datapath.exact import ExactOps, as_exact
    from snn_compile.datapath.step import apply

    rng = np.random.default_rng(zlib.crc32(f"{kind}:{name}".encode()))  # not hash(): salted
    for _ in range(8):
        param = int(rng.integers(2, 40)) if kind == "overflow" else int(rng.integers(0, 20))
        x = np.concatenate([[0, 1, -1, 1 << 20, -(1 << 20)],
                            rng.integers(-2**44, 2**44, size=100)]).astype(np.int64)
        b = GraphBuilder()
        o = OnnxOps(b)
        thr = b.const(rng.integers(-2**20, 2**20, size=x.size)) if kind == "spike_test" else None
        out = apply(o, kind, name, "x", thr if kind == "spike_test" else param)
        if kind == "spike_test":
            out = o.as_int(out)
        out = b.op("Identity", out, out="y")
        graph = b.graph("rule", [helper.make_tensor_value_info("x", INT64, [x.size])],
                        [helper.make_tensor_value_info("y", INT64, [x.size])])
        got = _session(make_model(graph, {})).run(None, {"x": x})[0]
        if kind == "spike_test":
            init = {i.name: i for i in graph.initializer}
            thr_values = onnx.numpy_helper.to_array(init[thr])
            want = np.asarray(apply(ExactOps(), kind, name, as_exact(x), as_exact(thr_values)),
                              np.int64)
        else:
            want = np.asarray(apply(ExactOps(), kind, name, as_exact(x), param), np.int64)
        np.testing.assert_array_equal(got, want)
