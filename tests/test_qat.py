"""Quantization-aware training: float reference == emulator on every spike, gradients, files.

The central property: for a QAT-prepared (and trained, and exported) network, the float
reference simulator and the bit-accurate emulator agree on every spike of every layer, for
Loihi 2 and FPGA targets, Leaky and Synaptic neurons, zero and subtract resets.
"""

from pathlib import Path

import numpy as np
import pytest
import snntorch as snn
from hypothesis import given, settings, strategies as st
import torch
from snntorch import functional as SF
from torch import nn

import snn_compile
from snn_compile.calibrate import balance
from snn_compile.check import run_check, summary_lines
from snn_compile.cli import main as cli_main
from snn_compile.errors import QuantizationError, UnsupportedError
from snn_compile.importers.model_file import graph_from_dict, graph_to_dict
from snn_compile.ir import Affine
from snn_compile.qat import attach_grids, convert, export, prepare_qat
from snn_compile.quantize import quantize
from snn_compile.reference import simulate
from snn_compile.targets import load_target

torch.set_num_threads(1)
ROOT = Path(__file__).resolve().parents[1]
DIGITS_QAT = ROOT / "examples" / "qat" / "digits_qat_loihi2.pt"
DIGITS_TEST = ROOT / "examples" / "digits" / "digits_test.npz"


def snn_net(rng, kind: str, reset: str, sizes=(12, 16, 5), conv: bool = False,
            per_neuron: bool = False) -> nn.Module:
    """A random snnTorch chain; Synaptic layers get bias-free synapses (QAT needs that).

    ``per_neuron`` draws one beta per neuron (FPGA targets); Loihi 2 has one per layer.
    Everything random comes from ``rng``: the layers' initial weights are drawn by torch from a
    seed taken from ``rng``, inside ``fork_rng`` so that torch's global state is neither read
    nor changed (a test must not depend on what ran before it).
    """
    seed = int(rng.integers(2**63))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return _snn_net(rng, kind, reset, sizes, conv, per_neuron)


def _snn_net(rng, kind, reset, sizes, conv, per_neuron) -> nn.Module:
    def neuron(n):
        beta = torch.tensor(rng.uniform(0.5, 0.95, n if per_neuron else ()), dtype=torch.float32)
        thr = float(rng.uniform(0.5, 1.5))
        if kind == "Synaptic":
            return snn.Synaptic(alpha=float(rng.uniform(0.3, 0.9)), beta=beta, threshold=thr,
                                reset_mechanism=reset, init_hidden=True)
        return snn.Leaky(beta=beta, threshold=thr, reset_mechanism=reset, init_hidden=True)

    bias = kind != "Synaptic"
    layers = []
    if conv:
        layers += [nn.Conv2d(1, 3, 3, bias=bias), neuron((3, 4, 4)), nn.Flatten()]
        sizes = (48,) + sizes[1:]
    for a, b in zip(sizes, sizes[1:]):
        layers += [nn.Linear(a, b, bias=bias), neuron(b)]
    net = nn.Sequential(*layers)
    with torch.no_grad():
        for p in net.parameters():
            p.mul_(2.0)  # lively: a fair share of neurons spike
    return net


def spikes_for(rng, shape, steps=20, batch=12, rate=0.3) -> np.ndarray:
    return (rng.random((steps, batch, *shape)) < rate).astype(np.float32)


def train_steps(qat, spikes, labels, n=2, lr=5e-3) -> list[float]:
    """A few Adam steps on the spike-count loss; returns the losses seen."""
    optimizer = torch.optim.Adam(qat.parameters(), lr=lr)
    losses = []
    for _ in range(n):
        loss = SF.ce_count_loss()(qat(spikes), torch.as_tensor(labels))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def assert_exact(graph, target, spikes):
    """Float reference vs emulator: level exact and every spike of every layer equal."""
    result = run_check(graph, quantize(graph, target).network, spikes, progress=False)
    report = result.report
    assert report["level"] == "exact", report["level_reason"]
    assert report["exact"], [(a.name, a.spike_agreement, a.first_divergence)
                             for a in result.agreements]
    assert result.passed
    return result


# snnTorch's Synaptic zero reset discards the step's input, which no target expresses natively
CASES = [(kind, reset, target) for kind, reset in (("Leaky", "zero"), ("Leaky", "subtract"),
                                                   ("Synaptic", "subtract"))
         for target in ("loihi2", "xc7z020")]


@pytest.mark.parametrize("kind,reset,target", CASES)
@pytest.mark.parametrize("seed", [0, 1])
def test_trained_qat_network_matches_the_emulator_on_every_spike(kind, reset, target, seed):
    rng = np.random.default_rng(seed + 10 * CASES.index((kind, reset, target)))
    torch.manual_seed(seed)
    net = snn_net(rng, kind, reset, per_neuron=target != "loihi2")
    data = spikes_for(rng, (12,))
    qat = prepare_qat(net, target, (12,), calibration=data)
    train_steps(qat, data, rng.integers(0, 5, data.shape[1]))
    graph = convert(qat)
    result = assert_exact(graph, load_target(target), data)
    assert sum(a.float_spikes for a in result.agreements) > 0
    with torch.no_grad():  # the QAT forward pass is the float reference
        np.testing.assert_array_equal(qat(data).numpy(), simulate(graph, data).output)


@settings(max_examples=12, deadline=None, derandomize=True)  # same examples every run
@given(st.integers(0, 2**32 - 1), st.sampled_from(CASES), st.integers(2, 40),
       st.floats(0.05, 0.8))
def test_random_qat_networks_are_exact(seed, case, hidden, rate):
    kind, reset, target = case
    rng = np.random.default_rng(seed)
    net = snn_net(rng, kind, reset, sizes=(12, hidden, 4), per_neuron=target != "loihi2")
    data = spikes_for(rng, (12,), rate=rate)
    qat = prepare_qat(net, target, (12,), calibration=data[:, :6])
    train_steps(qat, data, rng.integers(0, 4, data.shape[1]), n=1, lr=2e-2)
    assert_exact(convert(qat), load_target(target), data)


@pytest.mark.parametrize("target", ["loihi2", "xc7z020"])
def test_convolutional_qat_network_is_exact(target):
    rng = np.random.default_rng(3)
    net = snn_net(rng, "Leaky", "zero", conv=True, per_neuron=target != "loihi2")
    data = spikes_for(rng, (1, 6, 6))
    qat = prepare_qat(net, target, (1, 6, 6), calibration=data)
    train_steps(qat, data, rng.integers(0, 5, data.shape[1]), n=1)
    assert_exact(convert(qat), load_target(target), data)


def test_saturation_and_wrap_are_reproduced():
    """Narrow states (18 bits) and weights pushed up after preparation: states hit the limits."""
    rng = np.random.default_rng(4)
    target = load_target("loihi2", {"neuron.v": "int18", "neuron.u": "int18"})
    net = snn_net(rng, "Synaptic", "subtract")
    data = spikes_for(rng, (12,), rate=0.6)
    qat = prepare_qat(net, target, (12,), calibration=data)
    with torch.no_grad():
        for layer in qat.layers:
            layer.weight.copy_(layer.weight.abs() * 8)  # clipped to the top of the grid
    graph = convert(qat)
    assert_exact(graph, target, data)
    from snn_compile.compare import pad_for_latency
    from snn_compile.emulator import run_network
    net = quantize(graph, target).network
    trace = run_network(net, pad_for_latency(data, net))
    v_max = max(np.abs(states["v"]).max() for states in trace.layers.values())
    assert v_max == (1 << 17) - 1


def test_gradients_flow_and_training_lowers_the_loss():
    rng = np.random.default_rng(5)
    torch.manual_seed(0)
    net = snn_net(rng, "Leaky", "zero")
    data = spikes_for(rng, (12,), batch=32)
    labels = rng.integers(0, 5, 32)
    qat = prepare_qat(net, "loihi2", (12,), calibration=data)
    loss = SF.ce_count_loss()(qat(data), torch.as_tensor(labels))
    loss.backward()
    for p in qat.parameters():
        assert torch.isfinite(p.grad).all() and p.grad.abs().max() > 0
    losses = train_steps(qat, data, labels, n=15, lr=1e-2)
    assert losses[-1] < losses[0]


def test_export_and_load_keep_the_grid(tmp_path):
    rng = np.random.default_rng(6)
    net = snn_net(rng, "Synaptic", "subtract")
    data = spikes_for(rng, (12,))
    graph = convert(prepare_qat(net, "xc7z020", (12,), calibration=data))
    loaded = snn_compile.load_model(export(prepare_qat(net, "xc7z020", (12,), data),
                                           tmp_path / "qat.pt"))
    for a, b in zip(graph.neurons, loaded.neurons):
        assert a.grid is not None and b.grid.target == "xc7z020"
        for key in ("weight_scale", "decay_u", "decay_v", "threshold", "bias"):
            np.testing.assert_array_equal(getattr(a.grid, key), getattr(b.grid, key))
        assert (a.grid.rounding, a.grid.v_overflow, a.grid.lead) == \
            (b.grid.rounding, b.grid.v_overflow, b.grid.lead)
    np.testing.assert_array_equal(simulate(graph, data).output, simulate(loaded, data).output)


def test_files_without_grid_still_load():
    data = graph_to_dict(snn_compile.load_model(ROOT / "examples" / "digits" / "digits_snn.pt"))
    for node in data["nodes"]:
        node.pop("grid", None)  # the layout written before grids existed
    assert all(n.grid is None for n in graph_from_dict(data).neurons)


def test_shipped_digits_qat_model_is_exact_on_loihi2():
    graph = snn_compile.load_model(DIGITS_QAT)
    test = np.load(DIGITS_TEST)
    result = assert_exact(graph, load_target("loihi2"), test["spikes"][:, :120])
    assert result.report["latency_steps"] == 2  # Loihi: one step per layer
    summary = "\n".join(summary_lines(result.report))
    assert "level: exact (QAT model" in summary and "every spike equal" in summary


def test_grid_for_another_target_is_refused():
    graph = snn_compile.load_model(DIGITS_QAT)
    with pytest.raises(QuantizationError, match="trained for target 'loihi2'"):
        quantize(graph, load_target("xc7z020"))


def test_off_grid_weight_is_refused():
    graph = snn_compile.load_model(DIGITS_QAT)
    nodes = tuple(Affine(name=n.name, weight=n.weight * 1.001) if isinstance(n, Affine) else n
                  for n in graph.nodes)
    with pytest.raises(QuantizationError, match="off the layer's fixed-point grid"):
        quantize(graph.replace(nodes=nodes), load_target("loihi2"))


def test_recurrent_layers_are_refused_with_a_hint():
    net = nn.Sequential(nn.Linear(4, 3), snn.RLeaky(beta=0.9, linear_features=3,
                                                    init_hidden=True))
    with pytest.raises(UnsupportedError, match="recurrent"):
        prepare_qat(net, "xc7z020", (4,))


def test_ptq_check_is_statistical_and_balancing_does_not_hurt():
    graph = snn_compile.load_model(ROOT / "examples" / "digits" / "digits_snn.pt")
    spikes = np.load(DIGITS_TEST)["spikes"][:, :96]
    target = load_target("xc7z020")
    plain = run_check(graph, quantize(graph, target, spikes).network, spikes).report
    assert plain["level"] == "statistical" and "post-training" in plain["level_reason"]
    balanced = balance(graph, target, spikes)
    tuned = run_check(graph, balanced.network, spikes).report
    for before, after in zip(plain["layers"], tuned["layers"]):
        assert after["spike_agreement"] >= before["spike_agreement"]
    assert any("thresholds balanced" in note for rep in balanced.report for note in rep.notes)


def test_attach_grids_makes_post_training_quantization_exact():
    graph = snn_compile.load_model(ROOT / "examples" / "digits" / "digits_snn.pt")
    spikes = np.load(DIGITS_TEST)["spikes"][:, :64]
    assert_exact(attach_grids(graph, "loihi2", spikes), load_target("loihi2"), spikes)


def test_cli_check_reports_the_exact_level(tmp_path, capsys):
    code = cli_main(["check", str(DIGITS_QAT), "--target", "loihi2", "--data", str(DIGITS_TEST),
                     "--report", str(tmp_path), "--no-plots"])
    out = capsys.readouterr().out
    assert code == 0 and "level: exact (QAT model" in out
