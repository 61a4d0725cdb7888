"""Inference-time passes: drop_identities, fold_batch_norm, pool_spikes, and max pooling of
synaptic sums in group_populations.

Each pass is checked for its structural effect and for leaving the float reference's spikes
unchanged (every neuron layer of the graph before the pass spikes identically after it).
"""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from torch import nn

from snn_compile.emulator import run_network
from snn_compile.errors import UnsupportedError
from snn_compile.importers.snntorch import from_snntorch
from snn_compile.ir import IF, BatchNorm, Identity, MaxPool2d, ReLU, Sum, SumPool2d
from snn_compile.ir import nodes as n
from snn_compile.passes import PIPELINE
from snn_compile.passes.batchnorm import fold_batch_norm
from snn_compile.passes.group import group_populations
from snn_compile.passes.identities import drop_identities
from snn_compile.passes.maxpool import pool_spikes
from snn_compile.quantize import quantize
from snn_compile.reference import simulate
from snn_compile.targets import load_target


def _leaky(**kw):
    return snn.Leaky(beta=0.8, init_hidden=True, **kw)


def _randomise_batch_norms(net: nn.Module, seed: int) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                c = m.num_features
                m.running_mean.copy_(torch.rand(c, generator=g) * 0.4 - 0.2)
                m.running_var.copy_(torch.rand(c, generator=g) * 1.5 + 0.3)
                m.weight.copy_(torch.rand(c, generator=g) + 0.5)
                m.bias.copy_(torch.rand(c, generator=g) * 0.6 - 0.1)
    return net.eval()


def _spikes(shape, steps=20, batch=3, p=0.4, seed=0):
    rng = np.random.default_rng(seed)
    return (rng.random((steps, batch, *shape)) < p).astype(np.float32)


def _snntorch(net, x):
    net.eval()  # dropout off, batch norm on its running statistics
    with torch.no_grad():
        return torch.stack([net(torch.from_numpy(step)) for step in x]).numpy()


def _same_spikes(before, after, x):
    """Every neuron layer of ``before`` spikes identically in ``after``."""
    a, b = simulate(before, x), simulate(after, x)
    layers = [k for k in a.layers if "spikes" in a.layers[k]]
    assert layers
    for name in layers:
        np.testing.assert_array_equal(b.layers[name]["spikes"], a.layers[name]["spikes"],
                                      err_msg=name)
    np.testing.assert_array_equal(b.output, a.output)
    return a


def test_pipeline_runs_the_inference_passes_first():
    names = [p.name for p in PIPELINE]
    assert names[:4] == ["drop_identities", "fold_batch_norm", "pool_spikes",
                         "drop_output_delays"]
    assert names.index("pool_spikes") < names.index("group_populations")


# --------------------------------------------------------------------------- identities


def test_identities_and_relu_on_spikes_are_dropped():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.Dropout(0.3), _leaky(), nn.ReLU(), nn.Identity(),
                        nn.Linear(8, 4), _leaky())
    with torch.no_grad():
        net[0].weight.mul_(3)
    graph = from_snntorch(net, (6,))
    notes = []
    out = drop_identities(graph, notes)
    assert not any(isinstance(x, (Identity, ReLU)) for x in out.nodes)
    assert ("2", "5", 0) in out.edges and len(notes) == 3
    x = _spikes((6,))
    trace = _same_spikes(graph, out, x)
    assert trace.output.any()
    np.testing.assert_array_equal(trace.output, _snntorch(net, x))


def test_relu_on_currents_is_refused_naming_its_source():
    graph = from_snntorch(nn.Sequential(nn.Linear(4, 4), nn.ReLU(), _leaky()), (4,))
    with pytest.raises(UnsupportedError, match="node '1'.*Affine '0'"):
        drop_identities(graph)
    with pytest.raises(UnsupportedError, match="drop_identities.*'1': ReLU on a value"):
        try:
            quantize(graph, load_target("cpu"))
        except UnsupportedError as err:
            raise UnsupportedError(f"{err.passes[-1]} {err}") from None


def test_relu_after_non_negative_weights_of_spikes_is_the_identity():
    net = nn.Sequential(nn.Linear(4, 4), _leaky(), nn.Linear(4, 3), nn.ReLU(), _leaky())
    with torch.no_grad():
        net[2].weight.abs_()
        net[2].bias.abs_()
    out = drop_identities(from_snntorch(net, (4,)))
    assert not any(isinstance(x, ReLU) for x in out.nodes)


def test_identity_summing_two_inputs_becomes_a_sum():
    from snn_compile.ir import LIF, Affine, Graph, Input, Output

    w = np.eye(3, dtype=np.float32)
    graph = Graph(
        (Input(name="in", shape=(3,)), Affine(name="a", weight=w), Affine(name="b", weight=2 * w),
         Identity(name="id"), LIF(name="lif", shape=(3,), beta=0.5), Output(name="out")),
        (("in", "a"), ("in", "b"), ("a", "id"), ("b", "id"), ("id", "lif"), ("lif", "out")))
    out = drop_identities(graph)
    assert isinstance(out["id"], Sum)
    _same_spikes(graph, out, _spikes((3,), p=0.7))


# --------------------------------------------------------------------------- batch norm


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_batch_norm_folds_into_conv_and_linear_with_spikes_unchanged(seed):
    torch.manual_seed(seed)
    net = _randomise_batch_norms(nn.Sequential(
        nn.Conv2d(2, 6, 3, padding=1), nn.BatchNorm2d(6), nn.Dropout2d(0.1), _leaky(),
        nn.AvgPool2d(2), nn.Flatten(), nn.Linear(6 * 4 * 4, 5, bias=False), nn.BatchNorm1d(5),
        _leaky()), seed)
    with torch.no_grad():
        net[0].weight.mul_(2)
        net[6].weight.mul_(4)
    graph = from_snntorch(net, (2, 8, 8))
    assert isinstance(graph["1"], BatchNorm)
    x = _spikes((2, 8, 8), seed=seed)
    trace = simulate(graph, x)
    np.testing.assert_array_equal(trace.output, _snntorch(net, x))  # float reference == torch
    assert trace.output.any()
    notes = []
    folded = fold_batch_norm(drop_identities(graph), notes)
    assert not any(isinstance(x, BatchNorm) for x in folded.nodes)
    assert folded["0"].bias is not None and folded["6"].bias is not None
    assert any(note.startswith("1: batch norm folded into Conv2d '0'") for note in notes)
    _same_spikes(graph, folded, x)
    expected = net[1](net[0](torch.from_numpy(x[0]))).detach().numpy()
    got = torch.nn.functional.conv2d(torch.from_numpy(x[0]), torch.tensor(folded["0"].weight),
                                     torch.tensor(folded["0"].bias), padding=1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("net, message", [
    (nn.Sequential(nn.Linear(4, 4), _leaky(), nn.BatchNorm1d(4), nn.Linear(4, 2), _leaky()),
     r"node '2'.*right before it.*LIF '1'"),
    (nn.Sequential(nn.BatchNorm1d(4), nn.Linear(4, 2), _leaky()), r"node '0'.*Input 'input'"),
])
def test_batch_norm_that_cannot_fold_is_refused(net, message):
    graph = from_snntorch(_randomise_batch_norms(net, 0), (4,))
    with pytest.raises(UnsupportedError, match=message):
        fold_batch_norm(graph)


def test_batch_norm_before_a_branch_is_refused():
    class Branch(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.bn, self.lif, self.lif2 = nn.Linear(4, 4), nn.BatchNorm1d(4), \
                _leaky(), _leaky()

        def forward(self, x):
            h = self.fc(x)
            return self.lif2(self.lif(self.bn(h)) + h)

    graph = from_snntorch(_randomise_batch_norms(Branch(), 0), (4,))
    with pytest.raises(UnsupportedError, match="'fc' also feeds"):
        fold_batch_norm(graph)


# --------------------------------------------------------------------------- max pooling


def _pool_net(seed=0, pool_first=False):
    torch.manual_seed(seed)
    if pool_first:  # tutorial 6: Conv -> MaxPool -> Leaky (pooling currents)
        layers = [nn.Conv2d(1, 4, 3), nn.MaxPool2d(2), _leaky()]
    else:        # Conv -> Leaky -> MaxPool (pooling spikes)
        layers = [nn.Conv2d(1, 4, 3), _leaky(), nn.MaxPool2d(2)]
    net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(4 * 4 * 4, 3), _leaky())
    with torch.no_grad():
        net[0].weight.mul_(3)
        net[4].weight.mul_(3)
    return net


def test_max_pool_of_spikes_becomes_an_exact_or_population():
    net = _pool_net()
    graph = from_snntorch(net, (1, 10, 10))
    assert isinstance(graph["2"], MaxPool2d)
    x = _spikes((1, 10, 10), seed=3)
    trace = simulate(graph, x)
    np.testing.assert_array_equal(trace.output, _snntorch(net, x))
    assert trace.output.any()
    notes = []
    out = pool_spikes(graph, notes)
    assert isinstance(out["2.sum"], SumPool2d) and isinstance(out["2"], IF)
    assert out["2"].reset == "zero" and float(out["2"].threshold) == 0.5 and notes
    after = _same_spikes(graph, out, x)
    pooled = torch.nn.functional.max_pool2d(torch.from_numpy(trace.layers["1"]["spikes"]
                                                             .reshape(-1, 4, 8, 8)), 2)
    np.testing.assert_array_equal(simulate(out, x).layers["2"]["spikes"].reshape(pooled.shape),
                                  pooled.numpy())
    assert after.layers["1"]["spikes"].any()


def test_or_population_adds_a_step_on_loihi_and_runs_exactly():
    graph = from_snntorch(_pool_net(), (1, 10, 10))
    x = _spikes((1, 10, 10), seed=3)
    q = quantize(graph, load_target("loihi2"), x)
    lags = {p.name: p.lag for p in q.network.populations}
    assert lags == {"1": 1, "2": 2, "5": 3}
    ref = simulate(graph, x)
    run = run_network(q.network, np.concatenate([x, np.zeros((3, *x.shape[1:]), x.dtype)]))
    got = run.layers["2"]["spikes"][2:22].reshape(ref.layers["1"]["spikes"].shape[0], 3, 4, 4, 4)
    want = torch.nn.functional.max_pool2d(
        torch.from_numpy(run.layers["1"]["spikes"][1:21].reshape(-1, 4, 8, 8)), 2)
    np.testing.assert_array_equal(got.reshape(want.shape), want.numpy())  # an OR, bit for bit


def test_max_pool_of_counts_or_currents_is_left_to_the_projection():
    graph = from_snntorch(_pool_net(pool_first=True), (1, 10, 10))
    assert pool_spikes(graph) is graph
    pg = group_populations(graph)
    conv = next(p for p in pg.projections if p.target == "2")
    assert conv.name == "0" and conv.kind == "conv" and conv.conv.max_pool == ((2, 2), (2, 2))


def test_max_pool_of_currents_runs_on_fpga_and_is_refused_on_loihi():
    net = _pool_net(pool_first=True)
    graph = from_snntorch(net, (1, 10, 10))
    x = _spikes((1, 10, 10), seed=5)
    trace = simulate(graph, x)
    np.testing.assert_array_equal(trace.output, _snntorch(net, x))
    q = quantize(graph, load_target("xc7z020"), x)
    run = run_network(q.network, x)
    assert np.mean(run.layers["2"]["spikes"] == trace.layers["2"]["spikes"]) > 0.97
    with pytest.raises(UnsupportedError, match="node '0'.*loihi2.*maximum of synaptic sums.*"
                                               "pool the spikes instead"):
        quantize(graph, load_target("loihi2"), x)


def test_max_pool_over_a_sum_is_refused():
    class Sew(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1, self.c2 = nn.Conv2d(1, 2, 3, padding=1), nn.Conv2d(2, 2, 3, padding=1)
            self.l1, self.l2, self.l3 = _leaky(), _leaky(), _leaky()
            self.pool = nn.MaxPool2d(2)

        def forward(self, x):
            a = self.l1(self.c1(x))
            return self.l3(self.pool(self.c2(a) + a))

    with pytest.raises(UnsupportedError, match="node 'pool': max pooling over the sum"):
        group_populations(from_snntorch(Sew(), (1, 6, 6)))


def test_max_pool_of_multi_spike_counts_is_a_pooled_identity_projection():
    from snn_compile.ir import LIF, Graph, Input, Output, Scale

    graph = Graph((Input(name="in", shape=(1, 4, 4)), Scale(name="g", scale=3.0),
                   LIF(name="m", shape=(1, 4, 4), beta=0.5, max_spikes=4,
                       reset_timing="immediate"),
                   MaxPool2d(name="p", kernel_size=2), LIF(name="o", shape=(1, 2, 2), beta=0.5),
                   Output(name="out")),
                  (("in", "g"), ("g", "m"), ("m", "p"), ("p", "o"), ("o", "out")))
    assert pool_spikes(graph) is graph  # counts: not an OR
    proj = next(p for p in group_populations(graph).projections if p.target == "o")
    assert proj.conv.max_pool == ((2, 2), (2, 2)) and proj.weight.shape == (1, 1, 1, 1)
    x = _spikes((1, 4, 4), p=0.8)
    q = quantize(graph, load_target("cpu"), x)
    np.testing.assert_array_equal(run_network(q.network, x).layers["m"]["spikes"],
                                  simulate(graph, x).layers["m"]["spikes"])


def test_every_inference_node_type_has_a_float_kernel():
    from snn_compile.reference import _OPS

    for cls in n.INFERENCE_TYPES + (n.Alpha,):
        assert cls in _OPS, cls
