"""The model zoo (examples/zoo): each model's float reference equals its source framework spike
for spike, and each compiles for loihi2, xc7z020 and cpu and runs on the bit-accurate emulator,
or stops at its documented refusal (examples/zoo/README.md)."""

from __future__ import annotations

import subprocess
import sys
from functools import lru_cache
from pathlib import Path

import numpy as np
import pytest

from snn_compile.errors import UnsupportedError
from snn_compile.quantize import quantize
from snn_compile.reference import simulate
from snn_compile.targets import load_target

ZOO = Path(__file__).resolve().parent.parent / "examples" / "zoo"
sys.path.insert(0, str(ZOO))
import evaluate  # noqa: E402
import zoo  # noqa: E402

SAMPLES = 8
TARGETS = evaluate.TARGETS
REFUSALS = {  # (model, target): what the error must say; README's table lists the same
    ("tut6_csnn", "loihi2"): r"node '0'.*cannot take the maximum of synaptic sums.*pool the "
                             r"spikes instead",
}
MIN_AGREEMENT = 0.9  # output entries equal to the float model's on the test digits
LOW_AGREEMENT = {  # multi-spike counts compared exactly, Loihi's coarser conv weights
    ("sinabs_ms", "loihi2"): 0.7,
}


@lru_cache(maxsize=None)
def _model(name):
    return evaluate.float_model(name, SAMPLES)


@lru_cache(maxsize=None)
def _float_output(name):
    graph, x, _, _ = _model(name)
    return simulate(graph, x).output


@lru_cache(maxsize=None)
def _compiled(name, target):
    graph, x, _, _ = _model(name)
    return evaluate.compile_and_run(graph, x, target)


@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_float_reference_equals_the_source_framework(name):
    graph, x, labels, framework = _model(name)
    assert framework.any()
    np.testing.assert_array_equal(_float_output(name), framework)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_compiles_and_runs_on_the_emulator_or_refuses(name, target):
    graph, x, labels, framework = _model(name)
    expected = REFUSALS.get((name, target))
    if expected is not None:
        with pytest.raises(UnsupportedError, match=expected):
            quantize(graph, load_target(target), x)
        return
    q, out = _compiled(name, target)
    assert q is not None, out
    assert out.shape == framework.shape
    agreement = np.mean(out == _float_output(name))
    assert agreement >= LOW_AGREEMENT.get((name, target), MIN_AGREEMENT)


def test_tutorial5_runs_snntorchs_subtract_reset_as_a_custom_loihi_neuron():
    q, _ = _compiled("tut5_fc", "loihi2")
    assert all(r.custom_neuron for r in q.report)
    q, _ = _compiled("tut5_fc", "xc7z020")
    assert not any(r.custom_neuron for r in q.report) and q.input.kind == "graded"


def test_tutorial6_pools_synaptic_sums_inside_the_convolutions():
    q, _ = _compiled("tut6_csnn", "xc7z020")
    pooled = [p for p in q.network.projections if p.conv is not None and p.conv.max_pool]
    assert [p.name for p in pooled] == ["0", "3"]


def test_bn_conv_folds_its_batch_norms_and_pools_spikes_with_an_or_layer():
    q, _ = _compiled("bn_conv", "loihi2")
    names = {p.name for p in q.network.populations}
    assert names == {"2", "3", "7", "11"}          # "3": the OR layer of MaxPool2d "3"
    assert not any(r.custom_neuron for r in q.report)  # zero resets: Loihi's standard neuron
    assert any("batch norm folded into Conv2d '0'" in n for n in q.notes)
    lags = {p.name: p.lag for p in q.network.populations}
    assert lags == {"2": 1, "3": 2, "7": 3, "11": 4}


def test_rsynaptic_bias_keeps_the_current_bias_where_targets_have_one():
    q, _ = _compiled("rsynaptic_bias", "xc7z020")
    assert q.network.population("2").input_bias is not None


def test_sew_residual_is_read_from_its_forward_and_delays_the_skip_on_loihi():
    graph, *_ = _model("sew_residual")
    assert graph.metadata["data_flow"] == "torch.fx"
    q, _ = _compiled("sew_residual", "loihi2")
    into = {p.source: p.delay for p in q.network.incoming("out")}
    assert into == {"sn2": 1, "sn0": 3}


def test_sinabs_model_has_multi_spike_layers_with_floors():
    graph, x, _, framework = _model("sinabs_ms")
    assert all(n.max_spikes is None and n.v_floor is not None for n in graph.neurons)
    data = np.load(ZOO / "sinabs_ms" / "sinabs_ms.npz")
    trace = simulate(graph, x)  # every hidden layer, not only the output
    for key in [k for k in data.files if k.startswith("hidden/")]:
        np.testing.assert_array_equal(trace.layers[key.split("/", 1)[1]]["spikes"],
                                      data[key][:, :SAMPLES])
    assert max(int((data[k] > 1).sum()) for k in data.files if k.startswith("hidden/")) > 100
    q, _ = _compiled("sinabs_ms", "loihi2")
    assert q.input.kind == "counts" and all(r.custom_neuron for r in q.report)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(zoo.MODELS))
def test_float_reference_equals_the_framework_on_the_whole_test_set(name):
    graph, x, labels, framework = evaluate.float_model(name, None)
    np.testing.assert_array_equal(simulate(graph, x).output, framework)


@pytest.mark.slow
def test_training_is_deterministic(tmp_path):
    """Retraining writes the shipped weights bit for bit (the quickest model)."""
    code = ("import sys; sys.path.insert(0, %r); import train; "
            "train.train('rsynaptic_bias', %r)" % (str(ZOO), str(tmp_path)))
    subprocess.run([sys.executable, "-c", code], check=True, capture_output=True)
    with np.load(tmp_path / "rsynaptic_bias.npz") as new, \
            np.load(zoo.MODELS["rsynaptic_bias"].weights) as shipped:
        assert new.files == shipped.files
        for key in shipped.files:
            np.testing.assert_array_equal(new[key], shipped[key], err_msg=key)


# ----------------------------------------------------------------------------- backends

BACKEND_RUNS = [  # (model, target, backend): the compiled zoo network on each executor
    ("sew_residual", "loihi2", "lava"), ("sew_residual", "xc7z020", "hls"),
    ("sew_residual", "loihi2", "onnx"), ("sew_residual", "xc7z020", "onnx"),
    ("rsynaptic_bias", "loihi2", "lava"),
    pytest.param("bn_conv", "loihi2", "lava", marks=pytest.mark.slow),  # conv layers: ~50 s
    ("sinabs_ms", "loihi2", "lava"), ("bn_conv", "cpu", "onnx"),
]
BACKEND_SAMPLES = 2


@pytest.mark.parametrize("name,target,backend", BACKEND_RUNS)
def test_zoo_network_runs_bit_identically_on_the_backend(name, target, backend):
    """The residual network (and the zoo's other graph shapes: bias sources, OR layers,
    multi-spike counts) on Lava, HLS csim and ONNX equals the emulator in every state."""
    from snn_compile.backend import get_backend
    from snn_compile.compare import pad_for_latency, traces_identical
    from snn_compile.emulator import run_network

    q, _ = _compiled(name, target)
    engine = get_backend(backend)
    if engine.available():
        pytest.skip(engine.available())
    _, x, _, _ = _model(name)
    x = pad_for_latency(x[:, :BACKEND_SAMPLES], q.network)
    assert traces_identical(run_network(q.network, x), engine.run(q.network, x)) is None
