"""Quantizer: exact thresholds, reported rounding, folding, and errors that name the layer."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import snn_compile.ir as ir
from snn_compile.check import run_check
from snn_compile.emulator import run_network
from snn_compile.errors import QuantizationError, UnsupportedError
from snn_compile.passes.fold import apply_chain as _apply, fold_chain
from snn_compile.passes.group import group_populations
from snn_compile.quantize import quantize
from snn_compile.targets import load_target


def mlp(rng, sizes=(20, 30, 5), reset="zero", beta=0.9, threshold=1.0):
    nodes = [ir.Input(name="in", shape=(sizes[0],))]
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        nodes.append(ir.Affine(name=f"fc{i}", weight=rng.normal(0, 0.5, (b, a))))
        nodes.append(ir.LIF(name=f"lif{i}", shape=(b,), beta=beta, reset=reset,
                            threshold=threshold))
    return ir.sequential(nodes)


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["loihi2", "cpu", "xc7z020"]),
       st.floats(0.2, 5.0))
def test_thresholds_land_exactly_on_the_grid(seed, target, threshold):
    rng = np.random.default_rng(seed)
    q = quantize(mlp(rng, threshold=threshold), load_target(target))
    for layer, rep in zip(q.network.in_order(), q.report):
        thr_float = np.broadcast_to(layer.neuron.threshold, layer.neuron.shape) / np.broadcast_to(
            layer.scale, layer.neuron.shape)
        np.testing.assert_allclose(thr_float, float(np.float32(threshold)), rtol=1e-12)
        lo, hi = rep.weight_range
        fmt = load_target(target).weights.type
        assert fmt.min <= lo and hi <= fmt.max


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["loihi2", "xc7z020"]))
def test_quantized_network_tracks_the_float_model(seed, target):
    rng = np.random.default_rng(seed)
    graph = mlp(rng)
    spikes = (rng.random((20, 16, 20)) < 0.3).astype(np.float32)
    net = quantize(graph, load_target(target), spikes).network
    result = run_check(graph, net, spikes)
    assert all(layer["spike_agreement"] > 0.9 for layer in result.report["layers"])


def test_conv_and_pool_fold_into_one_convolution():
    rng = np.random.default_rng(1)
    chain = [ir.Conv2d(name="c", weight=rng.normal(size=(3, 2, 3, 3)), padding=1, stride=1),
             ir.AvgPool2d(name="p", kernel_size=2)]
    kind, weight, geo = fold_chain(chain, (2, 8, 8), "lif")
    assert kind == "conv" and geo.stride == (2, 2)
    x = rng.random((4, 2, 8, 8))
    import torch
    folded = torch.nn.functional.conv2d(torch.from_numpy(x), torch.from_numpy(weight),
                                        stride=geo.stride, padding=geo.padding).numpy()
    np.testing.assert_allclose(folded, _apply(chain, x, bias=False), atol=1e-12)


def test_flatten_and_dense_fold_into_a_matrix():
    rng = np.random.default_rng(2)
    chain = [ir.SumPool2d(name="p", kernel_size=2), ir.Flatten(name="f"),
             ir.Affine(name="fc", weight=rng.normal(size=(5, 16)), bias=rng.normal(size=5))]
    kind, matrix, _ = fold_chain(chain, (1, 8, 8), "lif")
    assert kind == "dense"
    x = rng.random((3, 1, 8, 8))
    bias = _apply(chain, np.zeros((1, 1, 8, 8)))
    np.testing.assert_allclose(x.reshape(3, -1) @ matrix.T + bias, _apply(chain, x), atol=1e-12)


def test_recurrent_layer_is_extracted():
    rng = np.random.default_rng(0)
    nodes = (ir.Input(name="in", shape=(4,)), ir.Affine(name="fc", weight=rng.normal(size=(3, 4))),
             ir.Affine(name="rec", weight=rng.normal(size=(3, 3))),
             ir.LIF(name="lif", shape=(3,), beta=0.5), ir.Output(name="out"))
    g = ir.Graph(nodes, (("in", "fc"), ("fc", "lif"), ("lif", "rec", 1), ("rec", "lif"),
                         ("lif", "out")))
    pg = group_populations(g)
    rec = next(p for p in pg.projections if p.source == "lif")
    assert rec.float_delay == 1 and rec.target == "lif"
    np.testing.assert_array_equal(rec.weight, nodes[2].weight)


def test_subtract_reset_on_loihi_needs_the_custom_neuron():
    q = quantize(mlp(np.random.default_rng(0), reset="subtract"), load_target("loihi2"))
    assert all(r.custom_neuron for r in q.report)
    assert "custom neuron" in q.report[0].notes[0]


def test_unsupported_feature_is_an_actionable_error():
    target = load_target("loihi2", {"features.custom_reset_modes": []})
    with pytest.raises(UnsupportedError, match="node 'lif0'.*reset 'subtract'.*reset_mechanism"):
        quantize(mlp(np.random.default_rng(0), reset="subtract"), target)


def test_bias_that_cannot_fit_names_the_layer():
    g = ir.sequential([ir.Input(name="in", shape=(2,)),
                       ir.Affine(name="fc", weight=[[1.0, 1.0]], bias=[1e6]),
                       ir.LIF(name="lif", shape=(1,), beta=0.5, reset="zero")])
    with pytest.raises(QuantizationError, match="node 'lif'.*bias"):
        quantize(g, load_target("loihi2"))


def test_parallel_paths_from_one_source_sum_into_one_dense_projection():
    nodes = (ir.Input(name="in", shape=(2,)), ir.Affine(name="a", weight=np.eye(2)),
             ir.Affine(name="b", weight=2 * np.eye(2)), ir.LIF(name="lif", shape=(2,), beta=0.5),
             ir.Output(name="out"))
    g = ir.Graph(nodes, (("in", "a"), ("in", "b"), ("a", "lif"), ("b", "lif"), ("lif", "out")))
    (proj,) = group_populations(g).projections
    np.testing.assert_array_equal(proj.weight, 3 * np.eye(2))
    quantize(g, load_target("cpu"))


def test_emulator_runs_quantized_conv_network():
    rng = np.random.default_rng(5)
    g = ir.sequential([ir.Input(name="in", shape=(1, 8, 8)),
                       ir.Conv2d(name="c", weight=rng.normal(0, 0.5, (4, 1, 3, 3)), padding=1),
                       ir.AvgPool2d(name="p", kernel_size=2),
                       ir.LIF(name="lif1", shape=(4, 4, 4), beta=0.9, reset="zero"),
                       ir.Flatten(name="f"), ir.Affine(name="fc", weight=rng.normal(0, .3, (10, 64))),
                       ir.LIF(name="lif2", shape=(10,), beta=0.8, reset="zero")])
    spikes = (rng.random((15, 8, 1, 8, 8)) < 0.3).astype(np.float32)
    net = quantize(g, load_target("loihi2"), spikes).network
    assert net.incoming("lif1")[0].kind == "conv"
    result = run_check(g, net, spikes)
    assert result.report["layers"][0]["spike_agreement"] > 0.95


def test_nir_graphs_from_every_framework_lower_to_hardware_layers():
    """Every single-spike NIR test graph whose topology is a chain quantizes for the cpu target."""
    from pathlib import Path
    from snn_compile.importers.nir import load_nir

    lowered = 0
    for path in sorted(Path(__file__).parent.glob("data/nir/*.nir")):
        graph = load_nir(path, convention=path.name.split("_")[0])
        try:
            quantize(graph, load_target("cpu"))
            lowered += 1
        except UnsupportedError as exc:  # must be one of the documented topology limits
            assert any(s in str(exc) for s in ("non-spiking layer", "after the last neuron"))
    assert lowered >= 10


def test_synaptic_zero_reset_is_native_on_fpga_and_custom_on_loihi():
    """snnTorch Synaptic's zero reset discards the step after a spike (reset_discards_input)."""
    g = ir.sequential([ir.Input(name="in", shape=(4,)),
                       ir.Affine(name="fc", weight=np.full((3, 4), 0.5)),
                       ir.CubaLIF(name="syn", shape=(3,), alpha=0.8, beta=0.9, reset="zero",
                                  reset_discards_input=True)])
    assert not quantize(g, load_target("xc7z020")).report[0].custom_neuron
    assert quantize(g, load_target("loihi2")).report[0].custom_neuron
    no_custom = load_target("loihi2", {"features.custom_reset_modes": []})
    with pytest.raises(UnsupportedError, match="input discarded"):
        quantize(g, no_custom)


def test_per_neuron_decay_is_refused_on_per_layer_targets():
    g = ir.sequential([ir.Input(name="in", shape=(4,)),
                       ir.Affine(name="fc", weight=np.full((3, 4), 0.5)),
                       ir.LIF(name="lif", shape=(3,), beta=[0.5, 0.6, 0.7], reset="zero")])
    with pytest.raises(UnsupportedError, match="node 'lif'.*one beta per layer"):
        quantize(g, load_target("loihi2", {"features.neuron_groups": 1}))
    quantize(g, load_target("xc7z020"))  # per-neuron registers


def test_per_neuron_decays_become_register_groups_up_to_the_targets_limit():
    """loihi2 runs a layer with a few distinct decays/thresholds as one LIF process per
    register set (features.neuron_groups), and refuses more with the numbers."""
    def graph(beta):
        n = len(beta)
        return ir.sequential([ir.Input(name="in", shape=(4,)),
                              ir.Affine(name="fc", weight=np.full((n, 4), 0.5)),
                              ir.LIF(name="lif", shape=(n,), beta=beta, reset="zero")])
    q = quantize(graph([0.5, 0.6, 0.5, 0.7]), load_target("loihi2"))
    assert list(q.network.population("lif").neuron.decay_v) == [2048, 2458, 2048, 2867]
    assert any("3 register sets" in note for note in q.report[0].notes)
    with pytest.raises(UnsupportedError, match=r"node 'lif'.*at most 16 groups per layer; this "
                                               r"layer needs 30.*30 neuron processes"):
        quantize(graph(np.linspace(0.5, 0.9, 30)), load_target("loihi2"))


def test_decay_moved_into_the_target_range_is_reported():
    g = ir.sequential([ir.Input(name="in", shape=(4,)),
                       ir.Affine(name="fc", weight=np.full((3, 4), 0.5)),
                       ir.CubaLIF(name="syn", shape=(3,), alpha=1.0, beta=0.9, reset="zero")])
    notes = quantize(g, load_target("loihi2")).report[0].notes
    assert any("alpha 1 is outside the target's decay range" in note for note in notes)


def test_nan_calibration_is_an_error():
    g = mlp(np.random.default_rng(0))
    data = np.full((3, 2, 20), np.nan, np.float32)
    with pytest.raises(Exception, match="NaN"):
        quantize(g, load_target("loihi2"), data)


def test_non_spiking_readout_classes_use_each_neurons_scale():
    """An LI readout on a per-neuron-scale target: classes from float units, not raw integers."""
    rng = np.random.default_rng(3)
    g = ir.sequential([ir.Input(name="in", shape=(6,)),
                       ir.Affine(name="fc", weight=rng.normal(0, 1, (4, 6)) * [[1], [10], [1], [5]]),
                       ir.LI(name="li", shape=(4,), beta=0.9)])
    spikes = (rng.random((20, 32, 6)) < 0.4).astype(np.float32)
    net = quantize(g, load_target("xc7z020"), spikes).network
    assert np.ptp(net.population("li").scale) > 0
    assert run_check(g, net, spikes).report["class_agreement"] > 0.9


def synaptic_chain(rng, bias_scale=0.3):
    """Two snnTorch-Synaptic-like layers fed by linear layers with biases."""
    return ir.sequential([
        ir.Input(name="in", shape=(6,)),
        ir.Affine(name="fc1", weight=rng.normal(0, 1, (5, 6)), bias=rng.normal(0, bias_scale, 5)),
        ir.CubaLIF(name="syn1", shape=(5,), alpha=0.8, beta=0.9, reset="zero"),
        ir.Affine(name="fc2", weight=rng.normal(0, 1, (3, 5)), bias=rng.normal(0, 0.5, 3)),
        ir.CubaLIF(name="syn2", shape=(3,), alpha=0.7, beta=0.9, reset="zero")])


def test_synaptic_bias_on_loihi2_is_a_bias_source_arriving_at_the_first_aligned_step():
    """No population keeps an input_bias; a one-neuron source spiking every step feeds each
    biased population with weights = bias and delay = its lag, so the bias starts exactly at
    the population's float step 0 (an input_bias would charge syn2 for two steps earlier)."""
    g = synaptic_chain(np.random.default_rng(0))
    net = quantize(g, load_target("loihi2")).network
    source = net.metadata["bias_source"]
    assert source == "bias_source" and all(p.input_bias is None for p in net.populations)
    for name in ("syn1", "syn2"):
        (proj,) = [p for p in net.incoming(name) if p.source == source]
        assert proj.delay == net.population(name).lag == {"syn1": 1, "syn2": 2}[name]
    trace = run_network(net, np.zeros((6, 1, 6), np.float32))
    np.testing.assert_array_equal(trace.layers[source]["spikes"][:, 0, 0], 1)  # every step
    lag = net.population("syn2").lag
    u = trace.layers["syn2"]["u"][:, 0]
    (proj,) = [p for p in net.incoming("syn2") if p.source == source]
    assert not u[:lag].any()
    np.testing.assert_array_equal(u[lag], (proj.weight[:, 0] << proj.weight_exp) << 6)
    spikes = (np.random.default_rng(1).random((20, 8, 6)) < 0.3).astype(np.float32)
    report = run_check(g, net, spikes).report  # the source has no float counterpart: skipped
    assert [layer["name"] for layer in report["layers"]] == ["syn1", "syn2"]
    assert all(layer["spike_agreement"] > 0.9 for layer in report["layers"])


def test_bias_source_that_cannot_hold_the_bias_gives_the_numbers():
    g = ir.sequential([ir.Input(name="in", shape=(2,)),
                       ir.Affine(name="fc", weight=[[1e-3, 1e-3]], bias=[50.0]),
                       ir.CubaLIF(name="syn", shape=(1,), alpha=0.5, beta=0.5, reset="zero")])
    with pytest.raises(QuantizationError, match=r"node 'syn'.*bias source.*> 255 << 7 = 32640"):
        quantize(g, load_target("loihi2"))
    no_source = load_target("loihi2", {"features.bias_source": False})
    with pytest.raises(UnsupportedError, match="cannot add a bias to the synaptic current"):
        quantize(synaptic_chain(np.random.default_rng(0)), no_source)
