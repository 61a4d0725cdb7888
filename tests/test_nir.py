"""NIR import/export: framework recordings reproduced spike for spike, conventions, errors.

The graphs and recordings in tests/data/nir were made by scripts/make_nir_testdata (one side venv
per framework, see its README): each framework exported a small network to NIR and ran its own
forward pass on fixed-seed Bernoulli input.
"""

from __future__ import annotations

import json
from pathlib import Path

import nir
import numpy as np
import pytest

from snn_compile.errors import GraphError, ModelFileError, SnnCompileError, UnsupportedError
from snn_compile.exporters.nir import export_nir
from snn_compile.importers.nir import CONVENTIONS, load_nir
from snn_compile.ir import (
    IF, LIF, Affine, Conv2d, CubaLIF, Delay, Flatten, Graph, Input, Output, SumPool2d,
)
from snn_compile.reference import simulate

DATA = Path(__file__).parent / "data" / "nir"

RECORDINGS = [
    ("snntorch_linear_lif", "snntorch"),
    ("snntorch_conv_lif", "snntorch"),
    ("snntorch_linear_cubalif", "snntorch"),
    ("snntorch_rleaky", "snntorch"),
    ("norse_linear_lif", "norse"),
    ("norse_conv_lif", "norse"),
    ("norse_linear_cubalif", "norse"),
    ("sinabs_linear_lif", "sinabs"),
    ("sinabs_conv_lif", "sinabs"),
    ("sinabs_conv_iaf_sumpool", "sinabs"),
    ("rockpool_linear_lif", "rockpool"),
    ("rockpool_linear_cubalif", "rockpool"),
    ("rockpool_linear_lif_multispike", "rockpool-multispike"),
    ("rockpool_linear_cubalif_multispike", "rockpool[max_spikes=3]"),
    ("spyx_linear_lif", "spyx"),
    ("spyx_linear_cubalif", "spyx"),
]


def recording(name):
    data = np.load(DATA / f"{name}.npz")
    return data, json.loads(str(data["meta_json"]))


def run(name, convention, dt=None):
    data, _ = recording(name)
    graph = load_nir(DATA / f"{name}.nir", convention=convention, dt=dt)
    return simulate(graph, data["input"]), data


# --------------------------------------------------------------------------- recordings


@pytest.mark.parametrize("name,convention", RECORDINGS)
def test_framework_spikes_reproduced(name, convention):
    trace, data = run(name, convention)
    assert data["output"].any(), "recording without output spikes tests nothing"
    np.testing.assert_array_equal(trace.output, data["output"])


@pytest.mark.parametrize("name,convention", [r for r in RECORDINGS if r[1] != "spyx"])
def test_hidden_spikes_reproduced(name, convention):
    trace, data = run(name, convention)
    hidden = [k for k in data.files if k.startswith("hidden/")]
    layers = {k.split("/", 1)[1] for k in hidden} & set(trace.layers)
    if not layers:
        pytest.skip("recorded layer names differ from the NIR node names")
    for layer in layers:
        np.testing.assert_array_equal(trace.layers[layer]["spikes"], data[f"hidden/{layer}"],
                                      err_msg=layer)


def test_spyx_hidden_spikes_are_the_neurons_spikes_one_step_late():
    trace, data = run("spyx_linear_lif", "spyx")
    ir_spikes = trace.layers["layer_1"]["spikes"]
    spyx_spikes = data["hidden/layer_1"]
    np.testing.assert_array_equal(spyx_spikes[1:], ir_spikes[:-1])
    assert not spyx_spikes[0].any()


@pytest.mark.parametrize("name,wrong,dt", [
    ("snntorch_linear_lif", "euler", 1e-4),     # same decay, reset to zero in the same step
    ("snntorch_rleaky", "euler", 1e-4),
    ("norse_conv_lif", "snntorch", None),       # dt 1e-4 instead of 1e-3
    ("sinabs_linear_lif", "spyx", None),        # Euler decay, pre-update spike
    ("rockpool_linear_cubalif", "norse", None),
    ("spyx_linear_lif", "sinabs", None),
    ("rockpool_linear_lif_multispike", "rockpool", None),       # single spikes
    ("rockpool_linear_cubalif_multispike", "rockpool-multispike", None),  # cap 2**16, not 3
])
def test_wrong_convention_gives_different_spikes(name, wrong, dt):
    trace, data = run(name, wrong, dt)
    assert np.mean(trace.output != data["output"]) > 0.01


def test_metadata_records_convention_and_dt():
    graph = load_nir(DATA / "norse_linear_lif.nir", convention="norse")
    assert graph.metadata["convention"] == "norse" and graph.metadata["dt"] == 1e-3


def test_recurrent_feedback_starts_at_the_neuron():
    graph = load_nir(DATA / "snntorch_rleaky.nir", convention="snntorch")
    feedback = [e for e in graph.edges if e.delay]
    assert feedback == [("1.lif", "1.w_rec", 1)]


def test_norse_v_reset_shifted_into_threshold():
    graph = load_nir(DATA / "norse_linear_lif.nir", convention="norse")
    lif = graph["1"]
    np.testing.assert_allclose(lif.threshold, 1.25)      # v_th 1.0 - v_reset (-0.25)
    np.testing.assert_allclose(lif.bias, 0.0)            # v_leak == v_reset
    assert (lif.reset, lif.reset_timing) == ("zero", "same_step")


# --------------------------------------------------------------------------- errors


def test_missing_convention_lists_choices():
    with pytest.raises(SnnCompileError) as err:
        load_nir(DATA / "snntorch_linear_lif.nir")
    for name in ("snntorch", "norse", "sinabs", "rockpool", "spyx", "lava", "euler"):
        assert name in str(err.value)


def test_unknown_convention_lists_choices():
    with pytest.raises(SnnCompileError, match="snntorch.*spyx"):
        load_nir(DATA / "snntorch_linear_lif.nir", convention="brian2")


def test_euler_needs_dt():
    with pytest.raises(SnnCompileError, match="dt"):
        load_nir(DATA / "snntorch_linear_lif.nir", convention="euler")


def test_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "cut.nir"
    path.write_bytes((DATA / "snntorch_linear_lif.nir").read_bytes()[:500])
    with pytest.raises(ModelFileError, match="cut.nir"):
        load_nir(path, convention="snntorch")


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="nope.nir"):
        load_nir(tmp_path / "nope.nir", convention="snntorch")


def _write(tmp_path, nodes, edges, name="g.nir"):
    path = tmp_path / name
    nir.write(path, nir.NIRGraph(nodes=nodes, edges=edges))
    return path


def _lif(n, **kw):
    params = dict(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                  v_threshold=np.ones(n))
    params.update(kw)
    return nir.LIF(**params)


def test_conv1d_is_unsupported_naming_the_node(tmp_path):
    conv = nir.Conv1d(input_shape=8, weight=np.ones((2, 1, 3)), stride=1, padding=1,
                      dilation=1, groups=1, bias=np.zeros(2))
    path = _write(tmp_path, {"input": nir.Input(np.array([1, 8])), "c1": conv,
                             "output": nir.Output(np.array([2, 8]))},
                  [("input", "c1"), ("c1", "output")])
    with pytest.raises(UnsupportedError, match="'c1'.*Conv1d"):
        load_nir(path, convention="snntorch")


def test_partial_flatten_is_unsupported(tmp_path):
    path = _write(tmp_path, {"input": nir.Input(np.array([2, 3, 4])),
                             "flat": nir.Flatten(input_type={"input": np.array([2, 3, 4])},
                                                 start_dim=1, end_dim=-1),
                             "output": nir.Output(np.array([2, 12]))},
                  [("input", "flat"), ("flat", "output")])
    with pytest.raises(UnsupportedError, match="'flat'.*whole-sample"):
        load_nir(path, convention="snntorch")


@pytest.mark.parametrize("name,convention", [
    ("rockpool_linear_lif_multispike", "rockpool-multispike"),
    ("rockpool_linear_cubalif_multispike", "rockpool[max_spikes=3]"),
])
def test_multispike_steps_with_several_spikes_reproduced(name, convention):
    trace, data = run(name, convention)
    hidden = [k for k in data.files if k.startswith("hidden/")]
    for key in hidden:
        assert (data[key] > 1).sum() > 20, key  # the recording really has 2+ spike steps
    layers = sorted(trace.layers)
    assert len(layers) == len(hidden)
    for layer, key in zip(layers, sorted(hidden)):
        np.testing.assert_array_equal(trace.layers[layer]["spikes"], data[key], err_msg=layer)


def test_variant_syntax_and_metadata():
    graph = load_nir(DATA / "rockpool_linear_cubalif_multispike.nir",
                     convention="rockpool[max_spikes=3]")
    sem = graph.metadata["nir_convention"]
    assert graph.metadata["convention"] == "rockpool[max_spikes=3]"
    assert (sem["base"], sem["max_spikes"], sem["reset"], sem["reset_timing"]) == (
        "rockpool", 3, "subtract", "immediate")
    assert all(n.max_spikes == 3 for n in graph.neurons)
    same = load_nir(DATA / "rockpool_linear_cubalif_multispike.nir", convention="rockpool",
                    variant={"max_spikes": 3})
    assert same.metadata["convention"] == "rockpool[max_spikes=3]"
    conv = CONVENTIONS["snntorch"].variant(reset="zero", reset_timing="same_step")
    assert conv.name == "snntorch[reset=zero,reset_timing=same_step]"
    assert CONVENTIONS["snntorch"].variant(reset="subtract").name == "snntorch"


@pytest.mark.parametrize("text,message", [
    ("snntorch[reset=sideways]", "unknown reset"),
    ("snntorch[colour=red]", "unknown NIR convention variant key"),
    ("snntorch[max_spikes=3]", "reset immediately"),
    ("snntorch[reset=zero", "malformed"),
    ("rockpool[max_spikes=lots]", "integer or none"),
])
def test_bad_variants_are_errors(text, message):
    with pytest.raises(SnnCompileError, match=message):
        load_nir(DATA / "snntorch_linear_lif.nir", convention=text)


def test_sinabs_multispike_is_from_nir_semantics():
    graph = load_nir(DATA / "sinabs_conv_iaf_sumpool.nir", convention="sinabs-multispike")
    for node in graph.neurons:
        assert node.max_spikes is None and node.reset_timing == "immediate"
        np.testing.assert_array_equal(node.v_floor, -node.threshold)  # IAF: min_v_mem = -thr
    single = load_nir(DATA / "sinabs_conv_iaf_sumpool.nir", convention="sinabs")
    assert all(n.max_spikes == 1 and n.v_floor is None for n in single.neurons)
    assert any("sinabs-multispike" in h for h in single.metadata["hints"])


def test_hints_name_the_likely_framework_and_variant(tmp_path):
    graph = load_nir(DATA / "snntorch_linear_lif.nir", convention="sinabs")
    assert any("snntorch (r = tau/dt at dt = 1e-4)" in h for h in graph.metadata["hints"])
    graph = load_nir(DATA / "norse_conv_lif.nir", convention="snntorch")
    assert any("norse (r = 1 with tau in seconds)" in h for h in graph.metadata["hints"])
    with pytest.raises(UnsupportedError, match="v_reset.*look like an export from norse"):
        load_nir(DATA / "norse_linear_lif.nir", convention="snntorch")
    renamed = tmp_path / "net_noDelay_zero.nir"
    renamed.write_bytes((DATA / "snntorch_linear_lif.nir").read_bytes())
    hints = load_nir(renamed, convention="snntorch").metadata["hints"]
    assert any("reset=zero" in h for h in hints)
    assert any("reset_timing=same_step" in h for h in hints)
    quiet = load_nir(renamed, convention="snntorch[reset=zero,reset_timing=same_step]")
    assert quiet.metadata["hints"] == []


def test_v_reset_where_framework_starts_at_zero_refused(tmp_path):
    path = _write(tmp_path, {"input": nir.Input(np.array([3])),
                             "lif": _lif(3, v_reset=np.full(3, -0.5)),
                             "output": nir.Output(np.array([3]))},
                  [("input", "lif"), ("lif", "output")])
    with pytest.raises(UnsupportedError, match="'lif'.*v_reset"):
        load_nir(path, convention="snntorch")
    graph = load_nir(path, convention="euler", dt=1e-4)   # starts at v_reset: exact shift
    np.testing.assert_allclose(graph["lif"].threshold, 1.5)


def test_cycle_without_neuron_is_a_graph_error(tmp_path):
    w = np.eye(3)
    path = _write(tmp_path, {"input": nir.Input(np.array([3])), "a": nir.Linear(w),
                             "b": nir.Linear(w), "output": nir.Output(np.array([3]))},
                  [("input", "a"), ("a", "b"), ("b", "a"), ("b", "output")])
    with pytest.raises(GraphError, match="cycle"):
        load_nir(path, convention="snntorch")


def test_fractional_delay_refused(tmp_path):
    path = _write(tmp_path, {"input": nir.Input(np.array([3])),
                             "d": nir.Delay(np.full(3, 1.5e-4)),
                             "output": nir.Output(np.array([3]))},
                  [("input", "d"), ("d", "output")])
    with pytest.raises(UnsupportedError, match="'d'.*whole number"):
        load_nir(path, convention="snntorch")
    path2 = _write(tmp_path, {"input": nir.Input(np.array([3])),
                              "d": nir.Delay(np.full(3, 3e-4)),
                              "output": nir.Output(np.array([3]))},
                   [("input", "d"), ("d", "output")], name="g2.nir")
    assert load_nir(path2, convention="snntorch")["d"].steps == 3


def test_every_convention_is_documented():
    for conv in CONVENTIONS.values():
        assert conv.summary


# --------------------------------------------------------------------------- export


def _feedforward_graph(reset, timing):
    rng = np.random.default_rng(3)
    return Graph(
        nodes=(Input(name="in", shape=(2, 6, 6)),
               Conv2d(name="conv", weight=rng.normal(0, 0.8, (3, 2, 3, 3)), padding=(1, 1)),
               LIF(name="lif1", shape=(3, 6, 6), beta=np.full((3, 6, 6), 0.9),
                   threshold=np.full((3, 6, 6), 1.0), reset=reset, reset_timing=timing),
               SumPool2d(name="pool", kernel_size=2),
               Flatten(name="flat"),
               Affine(name="fc", weight=rng.normal(0, 0.7, (5, 27)), bias=np.full(5, 0.05)),
               CubaLIF(name="cuba", shape=(5,), alpha=np.full(5, 0.7), beta=np.full(5, 0.85),
                       threshold=np.full(5, 0.8), bias=np.full(5, 0.02), reset=reset,
                       reset_timing=timing),
               Delay(name="delay", steps=2),
               Output(name="out")),
        edges=(("in", "conv"), ("conv", "lif1"), ("lif1", "pool"), ("pool", "flat"),
               ("flat", "fc"), ("fc", "cuba"), ("cuba", "delay"), ("delay", "out")),
        metadata={"dt": 1e-4})


def _recurrent_graph():
    rng = np.random.default_rng(4)
    return Graph(
        nodes=(Input(name="in", shape=(6,)),
               Affine(name="fc", weight=rng.normal(0, 1.0, (8, 6))),
               Affine(name="rec", weight=rng.normal(0, 0.5, (8, 8))),
               IF(name="if", shape=(8,), threshold=np.full(8, 1.2), reset="zero",
                  reset_timing="next_step", spike_test=">="),
               Output(name="out")),
        edges=(("in", "fc"), ("fc", "if"), ("if", "rec", 1), ("rec", "if"), ("if", "out")),
        metadata={"dt": 1e-3})


def _spikes(shape, seed=0):
    return (np.random.default_rng(seed).random((30, 2, *shape)) < 0.4).astype(np.float32)


def _same_graph(a: Graph, b: Graph):
    assert [n.name for n in a.nodes] == [n.name for n in b.nodes]
    assert set(a.edges) == set(b.edges)
    for x, y in zip(a.nodes, b.nodes):
        assert type(x) is type(y), x.name
        for key in ("weight", "bias", "beta", "alpha", "threshold", "scale"):
            if getattr(x, key, None) is not None:
                np.testing.assert_allclose(getattr(y, key), getattr(x, key), rtol=1e-6,
                                           atol=1e-7, err_msg=f"{x.name}.{key}")
        for key in ("reset", "reset_timing", "spike_test", "steps", "stride", "padding"):
            assert getattr(x, key, None) == getattr(y, key, None), f"{x.name}.{key}"


@pytest.mark.parametrize("graph,convention", [
    (_feedforward_graph("subtract", "next_step"), "snntorch"),
    (_feedforward_graph("zero", "same_step"), "euler"),
    (_feedforward_graph("zero", "next_step"), "snn_compile"),
    (_recurrent_graph(), "snn_compile"),
])
def test_export_round_trip(tmp_path, graph, convention):
    path = export_nir(graph, tmp_path / "rt.nir")
    back = load_nir(path, convention=convention, dt=graph.metadata["dt"])
    _same_graph(graph, back)
    x = _spikes(graph.inputs[0].shape)
    want, got = simulate(graph, x).output, simulate(back, x).output
    assert want.any()
    np.testing.assert_array_equal(got, want)


def test_export_stores_discrete_semantics(tmp_path):
    path = export_nir(_recurrent_graph(), tmp_path / "rt.nir")
    node = nir.read(path).nodes["if"]
    meta = node.metadata["snn_compile"]
    assert meta["reset"] == "zero" and meta["reset_timing"] == "next_step"
    assert meta["spike_test"] == ">=" and float(meta["dt"]) == 1e-3


@pytest.mark.parametrize("name,convention", [("snntorch_rleaky", "snntorch"),
                                             ("sinabs_conv_iaf_sumpool", "sinabs"),
                                             ("sinabs_conv_iaf_sumpool", "sinabs-multispike"),
                                             ("rockpool_linear_cubalif_multispike",
                                              "rockpool[max_spikes=3]")])
def test_imported_framework_graph_survives_export(tmp_path, name, convention):
    graph = load_nir(DATA / f"{name}.nir", convention=convention)
    back = load_nir(export_nir(graph, tmp_path / "x.nir"), convention="snn_compile")
    data, meta = recording(name)
    want = simulate(graph, data["input"]).output
    if meta["convention"] == convention:
        np.testing.assert_array_equal(want, data["output"])
    np.testing.assert_array_equal(simulate(back, data["input"]).output, want)


def test_branching_graph_round_trips_through_nir(tmp_path):
    """A residual (SEW) network read from a custom forward survives NIR: the skip connection is
    two NIR edges into one node, and the spikes stay identical."""
    import sys

    import torch

    from snn_compile.importers.snntorch import from_snntorch

    sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "examples" / "zoo"))
    import zoo

    torch.manual_seed(0)
    graph = from_snntorch(zoo.load("sew_residual"), (1, 8, 8))
    path = export_nir(graph, tmp_path / "sew.nir")
    edges = nir.read(path).edges
    assert sum(1 for _, dst in edges if dst == "add") == 2
    back = load_nir(path, convention="snn_compile")
    x, _ = zoo.test_set("sew_residual", 4)
    want = simulate(graph, x).output
    assert want.any()
    np.testing.assert_array_equal(simulate(back, x).output, want)


@pytest.mark.parametrize("target", ["loihi2", "xc7z020", "cpu"])
def test_multispike_rockpool_compiles_with_its_cap(target):
    from snn_compile.emulator import run_network
    from snn_compile.quantize import quantize
    from snn_compile.targets import load_target

    data, _ = recording("rockpool_linear_cubalif_multispike")
    graph = load_nir(DATA / "rockpool_linear_cubalif_multispike.nir",
                     convention="rockpool[max_spikes=3]")
    q = quantize(graph, load_target(target), data["input"])
    assert all(p.neuron.max_spikes == 3 for p in q.network.populations)
    lag = q.network.max_lag
    x = np.concatenate([data["input"], np.zeros((lag, *data["input"].shape[1:]), np.float32)])
    out = run_network(q.network, x).output[lag:]
    assert out.max() == 3 and np.mean(out == data["output"]) > 0.8
    data, _ = recording("rockpool_linear_lif_multispike")
    default = load_nir(DATA / "rockpool_linear_lif_multispike.nir",
                       convention="rockpool-multispike")  # Rockpool's cap: 2**16
    q = quantize(default, load_target(target), data["input"])
    cap = load_target(target).features.max_spikes
    assert all(p.neuron.max_spikes == cap for p in q.network.populations)
    assert all(any(f"the model caps it at 65536) capped at {cap}" in n for n in r.notes)
               for r in q.report), [r.notes for r in q.report]
