"""Graded input from real data: event counts as themselves, other values scaled from their
distribution (not their peak) with rare large values saturating, the cost reported."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snn_compile.emulator import run_network
from snn_compile.ir import LIF, Affine, Graph, Input, Output
from snn_compile.ir.fixed import QInput
from snn_compile.ir.fixed_io import load_network, save_network
from snn_compile.quantize import quantize
from snn_compile.reference import simulate
from snn_compile.targets import load_target

PAPER = Path(__file__).parent / "data" / "nir-paper"


def _net(n_in=16, n_out=4, seed=0, gain=0.6):
    rng = np.random.default_rng(seed)
    return Graph((Input(name="in", shape=(n_in,)),
                  Affine(name="fc", weight=rng.normal(0, gain, (n_out, n_in))),
                  LIF(name="lif", shape=(n_out,), beta=0.8, reset="zero",
                      reset_timing="same_step"),
                  Output(name="out")),
                 (("in", "fc"), ("fc", "lif"), ("lif", "out")))


def _counts(shape, seed=0, rate=0.2, top=4):
    rng = np.random.default_rng(seed)
    return (rng.random(shape) < rate) * rng.integers(1, top + 1, shape).astype(np.float32)


def test_event_counts_are_encoded_as_themselves():
    x = _counts((30, 8, 16))
    q = quantize(_net(), load_target("xc7z020"), x)
    rep = q.input
    assert (rep.kind, rep.scale, rep.exact, rep.saturated) == ("counts", 1.0, True, 0.0)
    assert q.network.input.scale == 1.0 and q.network.input.saturate
    assert rep.class_agreement == 1.0 and not rep.costs_accuracy()
    assert "multi-spike input" in rep.notes[0]
    np.testing.assert_array_equal(q.network.input.encode(x).reshape(x.shape), x)


def test_counts_keep_the_first_layer_precise():
    """The peak scaling of the first version (127/peak) shrank the first layer's integer
    weights; counts at scale 1 keep the full weight range."""
    x = _counts((30, 8, 16), top=4)
    q = quantize(_net(), load_target("loihi2"), x)
    lo, hi = q.report[0].weight_range
    assert max(-lo, hi) >= 200 and q.report[0].weight_rms_error < 0.005


def test_rare_large_counts_saturate_and_are_reported():
    x = _counts((30, 8, 16), top=3)
    x[3, 0, 5] = 500.0  # one burst far beyond int8
    q = quantize(_net(), load_target("cpu"), x)
    rep = q.input
    assert rep.kind == "counts" and rep.scale == 1.0 and rep.peak == 500.0
    assert rep.saturated == pytest.approx(1 / x.size)
    assert any("saturate" in note for note in rep.notes)
    assert not rep.exact and rep.class_agreement is not None
    encoded = q.network.input.encode(x).reshape(x.shape)
    assert encoded[3, 0, 5] == 127 and encoded.max() == 127  # clipped, not an error


def test_graded_values_are_scaled_from_their_distribution_not_their_peak():
    rng = np.random.default_rng(1)
    x = (rng.random((30, 8, 16)) < 0.3) * rng.uniform(0.05, 1.0, (30, 8, 16))
    x[0, 0, 0] = 40.0  # an outlier would have set the scale before
    x = x.astype(np.float32)
    q = quantize(_net(), load_target("xc7z020"), x)
    rep = q.input
    assert rep.kind == "graded" and rep.peak == 40.0
    assert rep.reference < 1.0 and rep.scale == pytest.approx(127 / rep.reference)
    assert 0 < rep.saturated_nonzero < 0.002
    assert any("quantile" in note for note in rep.notes)
    decoded = q.network.input.encode(x).reshape(x.shape) / rep.scale
    kept = x * rep.scale <= 127.5
    assert np.max(np.abs(decoded - x)[kept]) <= 0.5 / rep.scale + 1e-9  # rounding only
    assert decoded[0, 0, 0] == pytest.approx(127 / rep.scale)           # the outlier saturates


def test_input_quantization_that_changes_classes_fails_the_hook():
    rng = np.random.default_rng(2)
    x = rng.uniform(0.01, 0.02, (20, 16, 16))
    burst = rng.random((20, 16, 16)) < 0.0005  # a few strong values carry the signal
    x = np.where(burst, 60.0, x).astype(np.float32)
    q = quantize(_net(gain=1.0, seed=3), load_target("xc7z020"), x)
    rep = q.input
    assert rep.saturated_nonzero > 0 and rep.class_agreement < 0.99
    assert rep.costs_accuracy() and any("predicted classes" in n for n in rep.notes)


def test_saturating_input_survives_save_and_load(tmp_path):
    x = _counts((10, 2, 16))
    q = quantize(_net(), load_target("cpu"), x)
    save_network(q.network, tmp_path / "net")
    back = load_network(tmp_path / "net")
    assert back.input.saturate and back.input.scale == 1.0


def test_non_saturating_input_still_refuses_out_of_range_values():
    inp = QInput(shape=(2,), dtype="int8", scale=1.0)
    with pytest.raises(Exception, match="exceeds the input format"):
        inp.encode(np.full((1, 1, 2), 300.0))


def test_paper_cnn_event_counts_are_multi_spike_input():
    from snn_compile.importers.nir import load_nir

    data = np.load(PAPER / "cnn_sinabs.npz")
    graph = load_nir(PAPER / "cnn_sinabs.nir", convention="sinabs-multispike")
    x = data["input"][40:70, :3].astype(np.float32)  # the first saccade turn: counts up to 4
    q = quantize(graph, load_target("loihi2"), x)
    assert q.input.kind == "counts" and q.input.exact
    first = next(r for r in q.report if r.name == "1")
    assert first.weight_rms_error < 0.005  # 0.040 with the old 127/peak input scale
    assert any("NIR convention sinabs-multispike" in note for note in q.notes)


@pytest.mark.slow
@pytest.mark.parametrize("target", ["loihi2", "xc7z020", "cpu"])
def test_paper_cnn_keeps_its_float_accuracy_on_recorded_frames(target):
    from snn_compile.importers.nir import load_nir

    data = np.load(PAPER / "cnn_sinabs.npz")
    x, labels = data["input"].astype(np.float32), data["labels"]
    graph = load_nir(PAPER / "cnn_sinabs.nir", convention="sinabs-multispike")
    float_acc = np.mean(data["output"].sum(0).argmax(1) == labels)
    q = quantize(graph, load_target(target), x[:, :4])
    lag = q.network.max_lag
    run = run_network(q.network, np.concatenate([x, np.zeros((lag, *x.shape[1:]), np.float32)]))
    acc = np.mean(run.output[lag:].sum(0).argmax(1) == labels)
    assert abs(acc - float_acc) <= 0.01 + 1e-9, (acc, float_acc)
    assert np.array_equal(simulate(graph, x[:20]).output, data["output"][:20])
