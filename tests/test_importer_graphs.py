"""snnTorch networks beyond chains: branching forwards read with torch.fx, Lapicque and Alpha
neurons. The float reference must equal snnTorch's own forward pass spike for spike, and the
membranes bit for bit (float rounding included: sums are added in torch's order)."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from snn_compile.errors import UnsupportedError
from snn_compile.importers.snntorch import from_snntorch
from snn_compile.ir import LIF, Alpha, Scale, Sum
from snn_compile.quantize import quantize
from snn_compile.reference import simulate
from snn_compile.targets import load_target


def _leaky(**kw):
    return snn.Leaky(beta=kw.pop("beta", 0.8), init_hidden=True, **kw)


def _run(net, x, neurons=()):
    """snnTorch's output per step and the membranes of ``neurons`` (paths) after each step."""
    net.eval()
    out, mems = [], {p: [] for p in neurons}
    with torch.no_grad():
        for step in x:
            y = net(torch.from_numpy(step))
            out.append(y[0] if isinstance(y, tuple) else y)
            for p in neurons:
                mems[p].append(net.get_submodule(p).mem.clone())
    return torch.stack(out).numpy(), {p: torch.stack(v).numpy() for p, v in mems.items()}


def _inputs(shape, steps=30, batch=4, seed=0, gain=1.0):
    rng = np.random.default_rng(seed)
    return ((rng.random((steps, batch, *shape)) < 0.4) * gain).astype(np.float32)


def _check(net, shape, neurons, x=None):
    x = _inputs(shape) if x is None else x
    graph = from_snntorch(net, shape)
    want, mems = _run(net, x, neurons)
    trace = simulate(graph, x)
    assert want.any(), "a test without output spikes tests nothing"
    np.testing.assert_array_equal(trace.output, want)
    for p in neurons:
        np.testing.assert_array_equal(trace.layers[p]["v"], mems[p], err_msg=p)
    return graph, trace


# --------------------------------------------------------------------------- branching


class SewBlock(nn.Module):
    """Spike-element-wise residual block (SEW-ResNet ADD): spikes of the block plus its input
    spikes feed the next layer."""

    def __init__(self, c=4):
        super().__init__()
        self.stem, self.lif0 = nn.Conv2d(1, c, 3, padding=1), _leaky()
        self.conv1, self.lif1 = nn.Conv2d(c, c, 3, padding=1), _leaky()
        self.conv2, self.lif2 = nn.Conv2d(c, c, 3, padding=1), _leaky()
        self.fc, self.out = nn.Linear(c * 6 * 6, 3), _leaky()

    def forward(self, x):
        s = self.lif0(self.stem(x))
        h = self.lif2(self.conv2(self.lif1(self.conv1(s))))
        y = h + s                                     # SEW: a spike count of 0, 1 or 2
        return self.out(self.fc(y.flatten(1)))


class MembraneShortcut(nn.Module):
    """MS-ResNet style: the shortcut joins the currents before the neuron."""

    def __init__(self):
        super().__init__()
        self.fc1, self.lif1 = nn.Linear(6, 8), _leaky()
        self.fc2, self.fc_skip, self.lif2 = nn.Linear(8, 8), nn.Linear(6, 8), _leaky()
        self.fc3, self.lif3 = nn.Linear(8, 3), _leaky(output=True)

    def forward(self, x):
        s1 = self.lif1(self.fc1(x))
        s2 = self.lif2(self.fc2(s1) + self.fc_skip(x))
        spk, mem = self.lif3(self.fc3(s2))
        return spk, mem


class ManyInputs(nn.Module):
    """Four currents into one population, in torch's order: ((b + 0.75 c) + d) - e."""

    def __init__(self):
        super().__init__()
        self.fa, self.fb, self.fd, self.fe = (nn.Linear(5, 7) for _ in range(4))
        self.fc = nn.Linear(7, 7)
        self.pre = _leaky()
        self.lif = _leaky(beta=0.9)

    def forward(self, x):
        s = self.pre(self.fa(x))
        return self.lif(self.fb(x) + self.fc(s) * 0.75 + self.fd(x) - self.fe(x))


def test_sew_residual_block_matches_snntorch():
    torch.manual_seed(0)
    net = SewBlock()
    with torch.no_grad():
        for m in (net.stem, net.conv1, net.conv2, net.fc):
            m.weight.mul_(3)
    graph, trace = _check(net, (1, 6, 6), ["lif0", "lif2", "out"])
    assert isinstance(graph["add"], Sum)
    assert set(graph.predecessors("add")) == {"lif0", "lif2"}
    assert graph.metadata["data_flow"] == "torch.fx"


def test_membrane_shortcut_matches_snntorch():
    torch.manual_seed(0)
    net = MembraneShortcut()
    with torch.no_grad():
        for m in (net.fc1, net.fc2, net.fc_skip, net.fc3):
            m.weight.mul_(3.5)
    graph, _ = _check(net, (6,), ["lif1", "lif2", "lif3"])
    assert set(graph.predecessors("add")) == {"fc2", "fc_skip"}


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_several_inputs_sum_in_torch_order_bit_for_bit(seed):
    torch.manual_seed(seed)
    net = ManyInputs()
    with torch.no_grad():
        for m in (net.fa, net.fb, net.fc, net.fd, net.fe):
            m.weight.mul_(1.7)
    x = _inputs((5,), steps=40, seed=seed, gain=1.3)
    graph, _ = _check(net, (5,), ["pre", "lif"], x)
    sums = [node.name for node in graph.nodes if isinstance(node, Sum)]
    assert len(sums) == 3 and isinstance(graph["mul"], Scale)


def test_branching_network_runs_on_the_emulator():
    from snn_compile.emulator import run_network

    torch.manual_seed(0)
    net = SewBlock()
    with torch.no_grad():
        for m in (net.stem, net.conv1, net.conv2, net.fc):
            m.weight.mul_(3)
    graph = from_snntorch(net, (1, 6, 6))
    x = _inputs((1, 6, 6))
    for target in ("loihi2", "xc7z020", "cpu"):
        q = quantize(graph, load_target(target), x)
        lag = q.network.max_lag
        run = run_network(q.network, np.concatenate([x, np.zeros((lag, *x.shape[1:]),
                                                                   np.float32)]))
        assert run.output[lag:].shape == simulate(graph, x).output.shape
        if target == "loihi2":  # the skip path is delayed to meet the long path
            into_out = {p.source: p.delay for p in q.network.incoming("out")}
            assert into_out == {"lif2": 1, "lif0": 3} and lag == 4


# --------------------------------------------------------------------------- neurons


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("kwargs", [
    {"beta": 0.9},
    {"R": 2.3, "C": 1.7, "time_step": 0.3},
    {"beta": torch.tensor(0.85), "R": 1.5},
])
def test_lapicque_matches_snntorch(reset, kwargs):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 6), snn.Lapicque(init_hidden=True, reset_mechanism=reset,
                                                      threshold=0.8, **kwargs))
    with torch.no_grad():
        net[0].weight.mul_(3)
    graph, _ = _check(net, (5,), ["1"], _inputs((5,), steps=60))
    assert isinstance(graph["1"], LIF) and graph["1"].reset_timing == "next_step"


@pytest.mark.parametrize("reset", ["subtract", "zero", "none"])
@pytest.mark.parametrize("alpha, beta", [(0.9, 0.8), (0.95, 0.5)])
def test_alpha_matches_snntorch(reset, alpha, beta):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 6), snn.Alpha(alpha=alpha, beta=beta, init_hidden=True,
                                                   reset_mechanism=reset, threshold=0.5),
                        nn.Linear(6, 3), snn.Alpha(alpha=alpha, beta=beta, init_hidden=True,
                                                   reset_mechanism=reset))
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[2].weight.mul_(3)
    graph, trace = _check(net, (5,), ["1", "3"], _inputs((5,), steps=60))
    assert isinstance(graph["1"], Alpha)
    assert trace.layers["1"]["e"].any() and trace.layers["1"]["i"].any()


def test_alpha_is_refused_by_every_target_with_the_reason():
    net = nn.Sequential(nn.Linear(5, 6), snn.Alpha(alpha=0.9, beta=0.8, init_hidden=True))
    graph = from_snntorch(net, (5,))
    for target in ("loihi2", "xc7z020", "cpu"):
        with pytest.raises(UnsupportedError, match="node '1'.*Alpha.*two synaptic currents"):
            quantize(graph, load_target(target))


def test_model_file_keeps_the_new_layers(tmp_path):
    import snn_compile
    from snn_compile.importers import load_model

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.Dropout(0.1),
                        _leaky(), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                        nn.Linear(4 * 3 * 3, 5),
                        snn.Alpha(alpha=0.9, beta=0.7, init_hidden=True, threshold=0.3))
    with torch.no_grad():
        net[0].weight.mul_(4)
        net[7].weight.mul_(4)
    net.eval()
    graph = from_snntorch(net, (1, 6, 6))
    back = load_model(snn_compile.export(graph, tmp_path / "m.pt"))
    kinds = [type(node).__name__ for node in back.nodes]
    assert {"BatchNorm", "Identity", "ReLU", "MaxPool2d", "Alpha"} <= set(kinds)
    x = _inputs((1, 6, 6))
    want = simulate(graph, x).output
    assert want.any()
    np.testing.assert_array_equal(simulate(back, x).output, want)
    np.testing.assert_array_equal(want, _run(net, x)[0])
