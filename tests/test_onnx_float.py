"""The float ONNX export (``export_float_onnx``) runs like the float reference simulator.

Weights are dyadic (k/8) and inputs are spikes, so every synaptic sum is exact in float32 in any
summation order; the remaining operations are elementwise and done in the simulator's order.
Spikes and states must therefore agree exactly, step for step.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

pytest.importorskip("onnxruntime")

from snn_compile.backends.onnx.backend import _session  # noqa: E402
from snn_compile.backends.onnx.float import export_float_onnx  # noqa: E402
from snn_compile.ir import (  # noqa: E402
    IF, LI, LIF, Affine, AvgPool2d, Conv2d, CubaLIF, Delay, Flatten, Graph, Input, Output, Scale,
    SumPool2d, sequential,
)

RESETS = [("subtract", "next_step", False, ">"), ("zero", "same_step", False, ">="),
          ("zero", "next_step", True, ">"), ("subtract", "same_step", False, ">="),
          ("none", "next_step", False, ">")]


def _dyadic(rng, shape, scale=8):
    return (rng.integers(-scale, scale + 1, size=shape) / scale).astype(np.float32)


def _neuron_kw(rng, shape, reset):
    mode, timing, discard, test = reset
    return dict(shape=shape, threshold=rng.uniform(0.3, 1.5, shape).astype(np.float32),
                bias=np.float32(rng.uniform(-0.1, 0.1)), reset=mode, reset_timing=timing,
                reset_discards_input=discard, spike_test=test)


def conv_graph(rng, reset) -> Graph:
    """Conv -> LIF -> SumPool -> AvgPool-free branch -> Flatten -> Affine -> CubaLIF -> LI."""
    conv = Conv2d(name="conv", weight=_dyadic(rng, (3, 2, 3, 3)), bias=_dyadic(rng, (3,)),
                  padding=1, stride=1)
    lif = LIF(name="lif", beta=np.float32(0.9), **_neuron_kw(rng, (3, 8, 8), reset))
    pool = SumPool2d(name="pool", kernel_size=2)
    avg = AvgPool2d(name="avg", kernel_size=2, stride=1, padding=1)
    flat = Flatten(name="flat")
    fc = Affine(name="fc", weight=_dyadic(rng, (7, 3 * 5 * 5)), bias=_dyadic(rng, (7,)))
    cuba = CubaLIF(name="cuba", alpha=np.float32(0.8), beta=rng.uniform(0.5, 1, 7)
                   .astype(np.float32), **_neuron_kw(rng, (7,), reset))
    out = Affine(name="out", weight=_dyadic(rng, (4, 7)))
    li = LI(name="li", shape=(4,), beta=np.float32(0.95), bias=np.float32(0.25))
    return sequential([Input(name="in", shape=(2, 8, 8)), conv, lif, pool, avg, flat, fc, cuba,
                       out, li])


def recurrent_graph(rng, reset) -> Graph:
    """fc -> rec -> lif (feedback lif -> rec), then Delay -> Affine -> IF -> Scale -> Output."""
    nodes = [Input(name="in", shape=(6,)),
             Affine(name="fc", weight=_dyadic(rng, (9, 6))),
             Affine(name="rec", weight=_dyadic(rng, (9, 9))),
             LIF(name="lif", beta=rng.uniform(0.6, 1, 9).astype(np.float32),
                 **_neuron_kw(rng, (9,), reset)),
             Delay(name="delay", steps=2),
             Affine(name="fc2", weight=_dyadic(rng, (5, 9)), bias=_dyadic(rng, (5,))),
             IF(name="if", **_neuron_kw(rng, (5,), reset)),
             Scale(name="gain", scale=np.float32(0.5)),
             Output(name="output")]
    edges = [("in", "fc"), ("fc", "lif"), ("lif", "rec", 1), ("rec", "lif"), ("lif", "delay"),
             ("delay", "fc2"), ("fc2", "if"), ("if", "gain"), ("gain", "output")]
    return Graph(tuple(nodes), tuple(edges), {"source_sha256": "cd" * 32})


def run_window(graph: Graph, spikes: np.ndarray) -> dict[str, np.ndarray]:
    model = export_float_onnx(graph, mode="window")
    onnx.checker.check_model(model, full_check=True)
    session = _session(model)
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(names, {"x": spikes})))


@pytest.mark.parametrize("reset", RESETS, ids=lambda r: "-".join(map(str, r)))
@pytest.mark.parametrize("make", [conv_graph, recurrent_graph])
def test_float_window_equals_reference(make, reset):
    simulate = pytest.importorskip("snn_compile.reference").simulate
    rng = np.random.default_rng([RESETS.index(reset), make is conv_graph])
    graph = make(rng, reset)
    spikes = (rng.random((16, 3, *graph.inputs[0].shape)) < 0.4).astype(np.float32)
    ref = simulate(graph, spikes)
    got = run_window(graph, spikes)
    for layer, states in ref.layers.items():
        for key, value in states.items():
            assert np.array_equal(got[f"{layer}.{key}"], value), f"{layer}.{key}"
    if "output" in got:
        assert np.array_equal(got["output"], ref.output)
    assert sum(float(s["spikes"].sum()) for s in ref.layers.values() if "spikes" in s) > 0


def test_float_step_model_and_determinism():
    rng = np.random.default_rng(1)
    graph = recurrent_graph(rng, RESETS[0])
    model = export_float_onnx(graph)  # one step
    onnx.checker.check_model(model, full_check=True)
    assert model.SerializeToString(deterministic=True) == \
        export_float_onnx(graph).SerializeToString(deterministic=True)
    props = {p.key: p.value for p in model.metadata_props}
    assert props["snn_compile.source_sha256"] == "cd" * 32
    session = _session(model)
    inputs = {i.name: np.zeros([2 if d == "B" else d for d in i.shape], np.float32)
              for i in session.get_inputs()}
    assert set(inputs) == {"x", "lif.history", "lif.v", "delay.queue", "if.v"}
    spikes = (rng.random((10, 2, 6)) < 0.5).astype(np.float32)
    window = run_window(graph, spikes)
    names = [o.name for o in session.get_outputs()]
    for t in range(10):
        out = dict(zip(names, session.run(names, {**inputs, "x": spikes[t]})))
        inputs = {name: out[f"{name}.next"] for name in inputs if name != "x"}
        assert np.array_equal(out["output"], window["output"][t])
        assert np.array_equal(out["lif.v.next"], window["lif.v"][t])
