"""from_snntorch: layer order, the IR fields it writes, custom forward tracing, and refusals."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import snntorch as snn
import torch
from snntorch import surrogate
from torch import nn

from snn_compile.errors import GraphError, UnsupportedError
from snn_compile.importers.snntorch import from_snntorch
from snn_compile.ir import LIF, Affine, CubaLIF, Flatten, Scale
from snn_compile.passes.identities import drop_identities
from snn_compile.reference import simulate


# --------------------------------------------------------------------------- mapping


def test_recurrent_layer_is_synapse_before_neuron_with_feedback():
    net = nn.Sequential(nn.Linear(3, 4), snn.RLeaky(beta=0.9, linear_features=4,
                                                    init_hidden=True))
    graph = from_snntorch(net, (3,))
    assert [n.name for n in graph.nodes] == ["input", "0", "1.recurrent", "1", "output"]
    assert graph.edges[1:4] == (("0", "1", 0), ("1", "1.recurrent", 1), ("1.recurrent", "1", 0))
    assert graph.order.index("1.recurrent") < graph.order.index("1")
    rec = graph["1.recurrent"]
    assert isinstance(rec, Affine)
    np.testing.assert_array_equal(rec.bias, net[1].recurrent.bias.detach().numpy())


def test_one_to_one_recurrence_is_a_scale_with_v():
    v = torch.tensor([0.5, -1.0, 2.0])
    net = nn.Sequential(snn.RSynaptic(alpha=0.5, beta=0.5, all_to_all=False, V=v,
                                      init_hidden=True))
    rec = from_snntorch(net, (3,))["0.recurrent"]
    assert isinstance(rec, Scale)
    np.testing.assert_array_equal(rec.scale, v.numpy())


@pytest.mark.parametrize("beta, effective", [(1.3, 1.0), (-0.2, 0.0), (0.25, 0.25)])
def test_decays_are_clamped_like_snntorch(beta, effective):
    net = nn.Sequential(snn.Synaptic(alpha=beta, beta=beta, learn_alpha=True, learn_beta=True,
                                     init_hidden=True))
    node = from_snntorch(net, (2,))["0"]
    assert isinstance(node, CubaLIF)
    assert float(node.beta) == effective and float(node.alpha) == effective


@pytest.mark.parametrize("cls, kwargs, discards", [
    (snn.Leaky, {}, False),
    (snn.Synaptic, {"alpha": 0.5}, True),
    (snn.RLeaky, {"linear_features": 2}, True),
    (snn.RSynaptic, {"alpha": 0.5, "linear_features": 2}, True),
])
@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("delay", [True, False])
def test_reset_fields(cls, kwargs, discards, reset, delay):
    layer = cls(beta=0.5, reset_mechanism=reset, reset_delay=delay, init_hidden=True, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # RSynaptic without reset_delay: tested below
        node = from_snntorch(nn.Sequential(layer), (2,))["0"]
    assert node.reset == reset
    next_step = delay or cls is snn.RSynaptic
    assert node.reset_timing == ("next_step" if next_step else "same_step")
    assert node.reset_discards_input == (reset == "zero" and discards)
    assert node.spike_test == ">"


def test_per_neuron_parameters_and_learned_threshold():
    beta = torch.tensor([0.1, 0.5, 0.9])
    layer = snn.Leaky(beta=beta, threshold=torch.tensor([[1.0, 2.0, 3.0]]), learn_threshold=True,
                      init_hidden=True)
    node = from_snntorch(nn.Sequential(layer), (3,))["0"]
    assert isinstance(node, LIF)
    np.testing.assert_array_equal(node.beta, beta.numpy())
    np.testing.assert_array_equal(node.threshold, [1.0, 2.0, 3.0])


def test_spike_function_probe_accepts_surrogates():
    layer = snn.Leaky(beta=0.5, spike_grad=surrogate.fast_sigmoid(), init_hidden=True)
    assert from_snntorch(nn.Sequential(layer), (1,))["0"].spike_test == ">"


def test_dropout_and_identity_are_imported_as_identities_and_dropped_by_the_pass():
    net = nn.Sequential(nn.Linear(3, 4), nn.Dropout(0.5), nn.Identity(),
                        snn.Leaky(beta=0.5, init_hidden=True))
    graph = from_snntorch(net, (3,))
    assert [type(graph[k]).__name__ for k in ("1", "2")] == ["Identity", "Identity"]
    assert graph["1"].origin == "Dropout(p=0.5)"
    dropped = drop_identities(graph)
    assert [n.name for n in dropped.nodes] == ["input", "0", "3", "output"]


def test_shape_mismatch_names_the_layer():
    net = nn.Sequential(nn.Linear(3, 4), snn.Leaky(beta=0.5, init_hidden=True), nn.Linear(5, 2))
    with pytest.raises(GraphError, match="node '2'.*input shape"):
        from_snntorch(net, (3,))


# --------------------------------------------------------------------------- custom forward


class TimeLoopNet(nn.Module):
    """The snnTorch tutorial style: explicit states, a loop over a time-major input."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.lif1 = snn.Leaky(beta=0.8, reset_mechanism="zero")
        self.fc = nn.Linear(2 * 6 * 6, 3)
        self.lif2 = snn.Synaptic(alpha=0.7, beta=0.8)

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        syn2, mem2 = self.lif2.init_synaptic()
        out = []
        for step in range(x.shape[0]):
            spk1, mem1 = self.lif1(self.conv(x[step]), mem1)
            spk2, syn2, mem2 = self.lif2(self.fc(spk1.view(spk1.shape[0], -1)), syn2, mem2)
            out.append(spk2)
        return torch.stack(out)


class StepNet(nn.Module):
    """One time step per call, hidden state inside the neurons."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 5)
        self.lif1 = snn.RLeaky(beta=0.9, all_to_all=False, V=0.5, init_hidden=True)
        self.fc2 = nn.Linear(5, 2)
        self.lif2 = snn.Leaky(beta=0.9, init_hidden=True, output=True)

    def forward(self, x):
        return self.lif2(self.fc2(self.lif1(self.fc1(x.flatten(1)))))


def test_custom_forward_over_time_matches_snntorch():
    torch.manual_seed(1)
    net = TimeLoopNet()
    with torch.no_grad():
        net.fc.weight.mul_(4.0)
    graph = from_snntorch(net, (1, 8, 8), example_input=torch.rand(2, 1, 1, 8, 8))
    assert [n.name for n in graph.nodes] == ["input", "conv", "lif1", "fc.flatten_input", "fc",
                                             "lif2", "output"]
    assert isinstance(graph["fc.flatten_input"], Flatten)
    x = (torch.rand(12, 3, 1, 8, 8) < 0.6).float()
    with torch.no_grad():
        expected = net(x).numpy()
    assert expected.any()
    np.testing.assert_array_equal(simulate(graph, x.numpy()).output, expected)


class FixedLoopNet(TimeLoopNet):
    """A loop over a fixed number of steps: fx unrolls it and sees the input indexed."""

    def forward(self, x):
        mem1 = self.lif1.init_leaky()
        syn2, mem2 = self.lif2.init_synaptic()
        out = []
        for step in range(12):
            spk1, mem1 = self.lif1(self.conv(x[step]), mem1)
            spk2, syn2, mem2 = self.lif2(self.fc(spk1.flatten(1)), syn2, mem2)
            out.append(spk2)
        return torch.stack(out)


def test_fixed_time_loop_falls_back_to_the_hook_reader():
    torch.manual_seed(1)
    net = FixedLoopNet()
    with torch.no_grad():
        net.fc.weight.mul_(4.0)
    graph = from_snntorch(net, (1, 8, 8), example_input=torch.rand(12, 2, 1, 8, 8))
    assert "data_flow" not in graph.metadata
    x = (torch.rand(12, 3, 1, 8, 8) < 0.6).float()
    with torch.no_grad():
        expected = net(x).numpy()
    assert expected.any()
    np.testing.assert_array_equal(simulate(graph, x.numpy()).output, expected)


def test_custom_step_forward_matches_snntorch_and_leaves_module_untouched():
    torch.manual_seed(2)
    net = StepNet()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    graph = from_snntorch(net, (2, 2))
    assert [n.name for n in graph.nodes][:3] == ["input", "fc1.flatten_input", "fc1"]
    assert net.lif1.mem.numel() == 0  # the trace ran on a copy
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    x = torch.randn(10, 3, 2, 2) * 3
    expected = []
    with torch.no_grad():
        for step in x:
            expected.append(net(step)[0])
    np.testing.assert_array_equal(simulate(graph, x.numpy()).output, torch.stack(expected))


# --------------------------------------------------------------------------- refusals


class SkipNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 3), nn.Linear(3, 3)
        self.lif = snn.Leaky(beta=0.5, init_hidden=True)

    def forward(self, x):
        return self.lif(self.fc2(self.fc1(x) * 2.0))


class GateNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(3, 3), nn.Linear(3, 3)
        self.lif = snn.Leaky(beta=0.5, init_hidden=True)

    def forward(self, x):
        return self.lif(self.fc1(x) * self.fc2(x))


class ConcatNet(GateNet):
    def forward(self, x):
        return self.lif(torch.cat([self.fc1(x), self.fc2(x)], 1)[:, :3])


class MembraneNet(GateNet):
    def __init__(self):
        super().__init__()
        self.lif = snn.Leaky(beta=0.5)
        self.lif2 = snn.Leaky(beta=0.5, init_hidden=True)

    def forward(self, x):
        spk, mem = self.lif(self.fc1(x))
        return self.lif2(self.fc2(mem))


class DivideNet(GateNet):
    def forward(self, x):
        return self.lif(self.fc1(x) / 3.0)


class ReuseNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        self.lif = snn.Leaky(beta=0.5, init_hidden=True)

    def forward(self, x):
        return self.lif(self.fc(self.lif(self.fc(x))))


def _seq(*layers):
    return nn.Sequential(nn.Linear(4, 4), *layers)


def _inhibited():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # snnTorch calls inhibition unstable
        return snn.Leaky(beta=0.5, inhibition=True)


IMG = (1, 4, 4)


@pytest.mark.parametrize("net, shape, message", [
    (_seq(nn.MaxPool1d(2)), (4,), r"node '1': unsupported layer type .*MaxPool1d.*nn.AvgPool2d"),
    (_seq(nn.BatchNorm1d(4, track_running_stats=False)), (4,),
     r"node '1'.*track_running_stats=False"),
    (_seq(nn.MaxPool2d(2, ceil_mode=True)), (4,), r"node '1'.*MaxPool2d needs ceil_mode=False"),
    (_seq(nn.Tanh()), (4,), r"node '1'.*Tanh.*supported layers: Alpha, AvgPool2d"),
    (_seq(_inhibited()), (4,), r"node '1': inhibition=True"),
    (_seq(snn.Leaky(beta=0.5, state_quant=lambda x: x)), (4,), r"node '1': state_quant"),
    (_seq(snn.Leaky(beta=0.5, graded_spikes_factor=2.0)), (4,), r"graded spikes.*2\.0"),
    (_seq(snn.Leaky(beta=0.5, spike_grad=torch.sigmoid)), (4,), r"not a Heaviside step"),
    (_seq(snn.Leaky(beta=0.5, threshold=torch.ones(2, 4))), (4,), r"more dimensions"),
    (_seq(snn.Leaky(beta=torch.ones(4, dtype=torch.float64))), (4,), r"float64.*\.float\(\)"),
    (nn.Sequential(nn.Flatten(0)), IMG, r"start_dim=1"),
    (nn.Sequential(nn.Conv2d(1, 1, 3, padding=1, padding_mode="circular")), IMG,
     r"padding_mode"),
    (nn.Sequential(nn.Conv2d(1, 1, 2, padding="same")), IMG, r"unevenly"),
    (nn.Sequential(nn.AvgPool2d(2, ceil_mode=True)), IMG, r"ceil_mode=True"),
    (GateNet(), (3,), r"product of two tensors.*forward line \d+ \(test_importer_snntorch.py\)"
                      r": return self.lif\(self.fc1\(x\) \* self.fc2\(x\)\)"),
    (ConcatNet(), (3,), r"concatenation.*torch.cat"),
    (MembraneNet(), (3,), r"membrane/current of neuron 'lif'.*layer 'fc2'"),
    (DivideNet(), (3,), r"power of two"),
    (ReuseNet(), (3,), r"node 'fc': layer called twice.*fc -> lif -> fc"),
])
def test_unsupported_models_are_refused(net, shape, message):
    with pytest.raises(UnsupportedError, match=message):
        from_snntorch(net, shape)


def test_skip_connection_with_a_gain_is_read_by_fx_and_matches_snntorch():
    torch.manual_seed(3)
    net = SkipNet()
    graph = from_snntorch(net, (3,))
    assert graph.metadata["data_flow"] == "torch.fx"
    assert isinstance(graph["mul"], Scale) and float(graph["mul"].scale) == 2.0
    x = torch.randn(15, 4, 3) * 2
    with torch.no_grad():
        expected = torch.stack([net(step) for step in x])
    assert expected.any()
    np.testing.assert_array_equal(simulate(graph, x.numpy()).output, expected.numpy())


def test_changed_reset_mechanism_is_refused():
    layer = snn.Leaky(beta=0.5, init_hidden=True)
    layer.reset_mechanism = "zero"  # snnTorch keeps subtracting: the two disagree
    with pytest.raises(UnsupportedError, match="built with 'subtract'.*says 'zero'"):
        from_snntorch(nn.Sequential(layer), (2,))


def test_untraceable_forward_asks_for_example_input():
    with pytest.raises(UnsupportedError, match="could not trace TimeLoopNet.*example_input"):
        from_snntorch(TimeLoopNet(), (1, 8, 8))


def test_rsynaptic_without_reset_delay_warns():
    layer = snn.RSynaptic(alpha=0.5, beta=0.5, linear_features=2, reset_delay=False,
                          init_hidden=True)
    with pytest.warns(UserWarning, match="RSynaptic.*next-step resets"):
        node = from_snntorch(nn.Sequential(layer), (2,))["0"]
    assert node.reset_timing == "next_step"
