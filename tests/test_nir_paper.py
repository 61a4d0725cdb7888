"""The NIR paper's trained networks reproduce their frameworks' own recordings spike for spike.

``tests/data/nir-paper`` holds the published graphs and what the frameworks did with them (see
its README): the Braille RNNs run by the paper's snnTorch on the trained state_dicts, the N-MNIST
CNN run by ``sinabs.from_nir`` (MultiSpike IAF with a membrane floor). Each is imported with the
convention variant that framework really runs; the wrong variants are shown to differ.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from snn_compile.emulator import run_network
from snn_compile.errors import UnsupportedError
from snn_compile.importers.nir import load_nir
from snn_compile.quantize import quantize
from snn_compile.reference import simulate
from snn_compile.targets import load_target

DATA = Path(__file__).parent / "data" / "nir-paper"
BRAILLE = {
    "braille_noDelay_bias_zero": "snntorch[reset=zero,reset_timing=same_step]",
    "braille_noDelay_noBias_subtract": "snntorch[reset=subtract,reset_timing=same_step]",
}
CNN_STEPS = 60  # a prefix of the 300 recorded steps keeps the default suite fast


def _data(name):
    return np.load(DATA / f"{name}.npz")


@pytest.mark.parametrize("name,convention", sorted(BRAILLE.items()))
def test_braille_reproduces_snntorch_bit_for_bit(name, convention):
    data = _data(name)
    graph = load_nir(DATA / f"{name}.nir", convention=convention)
    assert graph.metadata["hints"] == []
    trace = simulate(graph, data["input"])
    np.testing.assert_array_equal(trace.output, data["output"])
    np.testing.assert_array_equal(trace.layers["lif1.lif"]["spikes"], data["hidden/lif1.lif"])
    for layer in ("lif1.lif", "lif2"):
        for ours, theirs in (("i", "syn"), ("v", "mem")):
            np.testing.assert_array_equal(trace.layers[layer][ours],
                                          data[f"state/{layer}/{theirs}"], err_msg=layer)
    assert graph["lif1.w_rec"] is not None and ("lif1.lif", "lif1.w_rec", 1) in graph.edges


def test_braille_zero_is_euler_at_the_snntorch_dt():
    data = _data("braille_noDelay_bias_zero")
    graph = load_nir(DATA / "braille_noDelay_bias_zero.nir", convention="euler", dt=1e-4)
    np.testing.assert_array_equal(simulate(graph, data["input"]).output, data["output"])


@pytest.mark.parametrize("name", sorted(BRAILLE))
def test_braille_default_snntorch_variant_differs_and_hints(name):
    data = _data(name)
    graph = load_nir(DATA / f"{name}.nir", convention="snntorch")
    trace = simulate(graph, data["input"])
    assert np.mean(trace.layers["lif1.lif"]["spikes"] != data["hidden/lif1.lif"]) > 1e-3
    hints = " ".join(graph.metadata["hints"])
    assert "reset_timing=same_step" in hints
    if "zero" in name:
        assert "reset=zero" in hints


@lru_cache(maxsize=None)
def _cnn_run(convention, steps):
    data = _data("cnn_sinabs")
    graph = load_nir(DATA / "cnn_sinabs.nir", convention=convention)
    return graph, simulate(graph, data["input"][:steps].astype(np.float32))


def _cnn(convention, prefix="", steps=CNN_STEPS):
    graph, trace = _cnn_run(convention, steps)
    return graph, trace, _data("cnn_sinabs"), prefix, steps


def _assert_cnn_layers(trace, data, prefix, steps):
    np.testing.assert_array_equal(trace.output, data[f"{prefix}output"][:steps])
    for layer in ("1", "3", "6", "10"):
        np.testing.assert_array_equal(trace.layers[layer]["spikes"],
                                      data[f"{prefix}hidden/{layer}"][:steps], err_msg=layer)


def test_cnn_reproduces_sinabs_from_nir_multispike_with_floor():
    graph, trace, data, prefix, steps = _cnn("sinabs-multispike")
    _assert_cnn_layers(trace, data, prefix, steps)
    counts = trace.layers["10"]["spikes"]
    assert counts.max() > 10 and (counts > 1).sum() > 1000  # real multi-spike steps
    for node in graph.neurons:
        assert node.max_spikes is None
        np.testing.assert_array_equal(node.v_floor, -node.threshold)
    v = trace.layers["12"]["v"]
    assert v.min() >= -1.0 and np.isclose(v.min(), -1.0)  # the floor is reached
    # Sinabs computes each layer's products over all B*T rows in one GEMM: v agrees to float
    # rounding, the spike counts exactly (tests/data/nir-paper/README.md)
    np.testing.assert_allclose(v, data["state/12/v"][:steps], atol=1e-4)


@pytest.mark.parametrize("convention,prefix,layer", [
    ("sinabs-multispike[v_floor=none]", "alt/no-floor/", "10"),
    ("sinabs", "alt/single-spike-no-floor/", "output"),
])
def test_cnn_variants_reproduce_sinabs_variants_and_differ_from_its_defaults(
        convention, prefix, layer):
    graph, trace, data, prefix, steps = _cnn(convention, prefix)
    _assert_cnn_layers(trace, data, prefix, steps)
    ours = trace.output if layer == "output" else trace.layers[layer]["spikes"]
    theirs = data["output" if layer == "output" else f"hidden/{layer}"][:steps]
    assert np.mean(ours != theirs) > 1e-3


REFUSALS: dict = {}  # (network, target): what the error must say


@pytest.mark.parametrize("target", ["loihi2", "xc7z020", "cpu"])
@pytest.mark.parametrize("name", sorted(BRAILLE) + ["cnn_sinabs"])
def test_paper_networks_compile_and_run_on_the_emulator(name, target):
    data = _data(name)
    if name == "cnn_sinabs":
        graph = load_nir(DATA / "cnn_sinabs.nir", convention="sinabs-multispike")
        x = data["input"][40:70, :2].astype(np.float32)  # the first saccade turn: counts > 1
    else:
        graph = load_nir(DATA / f"{name}.nir", convention=BRAILLE[name])
        x = data["input"][:80, :4]
    if (name, target) in REFUSALS:
        with pytest.raises(UnsupportedError, match=REFUSALS[name, target]):
            quantize(graph, load_target(target), x)
        return
    q = quantize(graph, load_target(target), x)
    lag = q.network.max_lag
    run = run_network(q.network, np.concatenate([x, np.zeros((lag, *x.shape[1:]), x.dtype)]))
    want = simulate(graph, x)
    assert run.output[lag:].shape == want.output.shape
    first = "1" if name == "cnn_sinabs" else "lif1.lif"
    got = run.layers[first]["spikes"][q.network.population(first).lag:][:x.shape[0]]
    assert np.mean(got == want.layers[first]["spikes"]) > 0.95
    if name == "cnn_sinabs":
        assert q.input.kind == "counts" and q.network.population("1").neuron.max_spikes > 1


@pytest.mark.slow
def test_cnn_all_recorded_steps():
    graph, trace, data, prefix, steps = _cnn("sinabs-multispike", steps=None)
    _assert_cnn_layers(trace, data, "", None)
    predictions = trace.output.sum(axis=0).argmax(axis=1)
    assert np.mean(predictions == data["labels"]) == pytest.approx(0.7)
