"""The float reference simulator reproduces snnTorch spike for spike.

Random snnTorch networks are imported with ``from_snntorch`` and simulated with
``reference.simulate``; spikes must be identical to snnTorch's own time-major forward pass and
membranes (and synaptic currents) equal within float tolerance. Hand-checked goldens pin the
equations themselves.
"""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from hypothesis import given, settings, strategies as st
from torch import nn

from snn_compile.backend import get_backend
from snn_compile.importers.snntorch import from_snntorch
from snn_compile.ir import (
    IF, LI, LIF, AvgPool2d, CubaLIF, Delay, Flatten, Input, Scale, SumPool2d, sequential,
)
from snn_compile.reference import simulate

RESETS = ("subtract", "zero", "none")
NEURONS = ("leaky", "synaptic", "rleaky", "rleaky_1to1", "rsynaptic", "rsynaptic_1to1")


# --------------------------------------------------------------------------- random networks


def _param(rng: np.random.Generator, per_neuron: bool, shape, low: float, high: float):
    """A scalar or per-neuron float32 parameter drawn uniformly from [low, high]."""
    return torch.tensor(rng.uniform(low, high, size=shape if per_neuron else ()),
                        dtype=torch.float32)


@st.composite
def neuron_specs(draw, kinds=NEURONS):
    return {
        "kind": draw(st.sampled_from(kinds)),
        "reset": draw(st.sampled_from(RESETS)),
        "reset_delay": draw(st.booleans()),
        "per_neuron": draw(st.booleans()),
        "learn": draw(st.booleans()),
    }


def _neuron(spec: dict, shape, rng: np.random.Generator) -> nn.Module:
    """An snnTorch neuron layer for ``shape``; beta/alpha drawn beyond [0, 1] to hit the clamp."""
    per = spec["per_neuron"]
    common = dict(
        beta=_param(rng, per, shape, -0.2, 1.2),
        threshold=_param(rng, per, shape, 0.3, 1.5),
        reset_mechanism=spec["reset"],
        reset_delay=spec["reset_delay"],
        learn_beta=spec["learn"],
        learn_threshold=spec["learn"],
        init_hidden=True,
    )
    kind = spec["kind"]
    if kind.startswith(("synaptic", "rsynaptic")):
        common.update(alpha=_param(rng, per, shape, -0.2, 1.2), learn_alpha=spec["learn"])
    if kind.startswith("rsynaptic"):
        common["reset_delay"] = True  # snnTorch 1.0.0 RSynaptic crashes with reset_delay=False
    if kind.endswith("_1to1"):
        common.update(all_to_all=False, V=_param(rng, per, shape, -1.0, 1.0))
    elif kind.startswith("r") and len(shape) == 1:
        common["linear_features"] = shape[0]
    elif kind.startswith("r"):
        common.update(conv2d_channels=shape[0], kernel_size=3)
    cls = {"leaky": snn.Leaky, "synaptic": snn.Synaptic, "rleaky": snn.RLeaky,
           "rsynaptic": snn.RSynaptic}[kind.removesuffix("_1to1")]
    return cls(**common)


def _scale_weights(net: nn.Module, gain: float) -> nn.Module:
    with torch.no_grad():
        for module in net.modules():
            if isinstance(module, (nn.Linear, nn.Conv2d)):
                module.weight.mul_(gain)
    return net


@st.composite
def dense_networks(draw, max_layers=3):
    """``(net, input_shape)``: Linear + neuron layers of random widths and neuron options."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    torch.manual_seed(int(rng.integers(2**31)))
    width = draw(st.integers(1, 6))
    layers = []
    for _ in range(draw(st.integers(1, max_layers))):
        out = draw(st.integers(1, 6))
        layers += [nn.Linear(width, out, bias=draw(st.booleans())),
                   _neuron(draw(neuron_specs()), (out,), rng)]
        width = out
    gain = draw(st.sampled_from([1.5, 3.0, 6.0]))
    return _scale_weights(nn.Sequential(*layers), gain), (layers[0].in_features,)


@st.composite
def conv_networks(draw):
    """``(net, input_shape)``: Conv2d -> neuron -> AvgPool2d -> Flatten -> Linear -> neuron."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    torch.manual_seed(int(rng.integers(2**31)))
    cin, cout = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    size, kernel = draw(st.integers(6, 9)), draw(st.sampled_from([1, 2, 3]))
    stride, padding = draw(st.integers(1, 2)), draw(st.integers(0, 1))
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding)
    side = (size + 2 * padding - kernel) // stride + 1
    pool = draw(st.sampled_from([1, 2]))
    pooled = side // pool
    fc_in, fc_out = cout * pooled * pooled, draw(st.integers(1, 5))
    kinds = ("leaky", "synaptic", "rleaky", "rleaky_1to1", "rsynaptic_1to1")
    net = nn.Sequential(
        conv, _neuron(draw(neuron_specs(kinds)), (cout, side, side), rng),
        nn.AvgPool2d(pool), nn.Flatten(),
        nn.Linear(fc_in, fc_out), _neuron(draw(neuron_specs(("leaky", "synaptic"))),
                                         (fc_out,), rng))
    return _scale_weights(net, draw(st.sampled_from([1.0, 3.0]))), (cin, size, size)


@st.composite
def inputs(draw, input_shape, max_steps=16):
    """Time-major input ``[T, B, *input_shape]``: binary spikes or graded values."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    shape = (draw(st.integers(3, max_steps)), draw(st.integers(1, 3)), *input_shape)
    if draw(st.booleans()):
        return (rng.random(shape) < draw(st.floats(0.1, 0.9))).astype(np.float32)
    return rng.normal(0.0, draw(st.sampled_from([0.5, 1.0, 3.0])), shape).astype(np.float32)


def assert_matches_snntorch(net, input_shape, spikes, run_snntorch):
    """The imported graph's simulation equals snnTorch's forward, layer by layer."""
    graph = from_snntorch(net, input_shape)
    trace = simulate(graph, spikes)
    expected = run_snntorch(net, spikes)
    assert set(expected) == set(trace.layers)
    for name, states in expected.items():
        got = trace.layers[name]
        for step, (a, b) in enumerate(zip(states["spikes"], got["spikes"])):
            assert np.array_equal(a, b), f"layer {name}: spikes differ first at step {step}"
        for key in states.keys() - {"spikes"}:
            np.testing.assert_allclose(got[key], states[key], rtol=1e-6, atol=1e-6,
                                       err_msg=f"layer {name} state {key}")
    last = list(expected)[-1]
    assert np.array_equal(trace.output, expected[last]["spikes"])


# --------------------------------------------------------------------------- properties


@settings(max_examples=80, deadline=None)
@given(data=st.data())
def test_dense_networks_match_snntorch(data, run_snntorch):
    net, input_shape = data.draw(dense_networks())
    assert_matches_snntorch(net, input_shape, data.draw(inputs(input_shape)), run_snntorch)


@settings(max_examples=25, deadline=None)
@given(data=st.data())
def test_conv_networks_match_snntorch(data, run_snntorch):
    net, input_shape = data.draw(conv_networks())
    spikes = data.draw(inputs(input_shape, max_steps=8))
    assert_matches_snntorch(net, input_shape, spikes, run_snntorch)


@pytest.mark.slow
@settings(max_examples=1500, deadline=None)
@given(data=st.data())
def test_dense_networks_match_snntorch_sweep(data, run_snntorch):
    net, input_shape = data.draw(dense_networks(max_layers=4))
    spikes = data.draw(inputs(input_shape, max_steps=40))
    assert_matches_snntorch(net, input_shape, spikes, run_snntorch)


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_conv_networks_match_snntorch_sweep(data, run_snntorch):
    net, input_shape = data.draw(conv_networks())
    spikes = data.draw(inputs(input_shape, max_steps=20))
    assert_matches_snntorch(net, input_shape, spikes, run_snntorch)


# --------------------------------------------------------------------------- goldens


def _one_neuron(node, drive, steps):
    """Simulate a single-neuron graph under a constant input ``drive``."""
    graph = sequential([Input(name="input", shape=(1,)), node])
    trace = simulate(graph, np.full((steps, 1, 1), drive, dtype=np.float32))
    layer = trace.layers[node.name]
    return np.flatnonzero(layer["spikes"][:, 0, 0]).tolist(), layer["v"][:, 0, 0].tolist()


def test_golden_leaky_subtract_next_step():
    """beta=0.5, x=0.75, thr=1 (all exact in binary): v = .75, 1.125*, .3125, .90625,
    1.203125*, ... the spike at t=1 is subtracted at t=2 (snnTorch reset_delay=True)."""
    node = LIF(name="lif", shape=(1,), beta=0.5)
    spikes, v = _one_neuron(node, 0.75, 6)
    assert spikes == [1, 4]
    assert v == [0.75, 1.125, 0.3125, 0.90625, 1.203125, 0.3515625]


def test_golden_if_zero_reset_spike_tests():
    """IF, x=0.25, thr=1, zero reset: v reaches 1.0 at t=3, which fires only for '>='.
    '>'  fires at t=4 (v=1.25), restarts from 0 at t=5: spikes at 4, 9, 14.
    '>=' fires at t=3, restarts at t=4: spikes at 3, 7, 11."""
    strict = IF(name="if", shape=(1,), reset="zero")
    assert _one_neuron(strict, 0.25, 15)[0] == [4, 9, 14]
    loose = IF(name="if", shape=(1,), reset="zero", spike_test=">=")
    assert _one_neuron(loose, 0.25, 12)[0] == [3, 7, 11]


def test_golden_cuba_same_step_and_discarded_input():
    """CubaLIF alpha=0.5, beta=0.5, thr=1, constant x=0.5:
    i = .5, .75, .875, .9375;  v' = .5, 1.0, 1.375* -> same-step subtract leaves .375;
    next v' = .1875 + .9375 = 1.125* -> .125.  With a zero reset that discards the step's input
    (snnTorch Synaptic), next-step timing: v' = .5, 1.0, 1.375* then t=3 is lost entirely (0),
    t=4: i=.96875, v' = .96875, t=5: i=.984375, v' = .484375+.984375=1.46875*."""
    same = CubaLIF(name="c", shape=(1,), alpha=0.5, beta=0.5, reset_timing="same_step")
    spikes, v = _one_neuron(same, 0.5, 4)
    assert spikes == [2, 3] and v == [0.5, 1.0, 0.375, 0.125]
    lost = CubaLIF(name="c", shape=(1,), alpha=0.5, beta=0.5, reset="zero",
                   reset_discards_input=True)
    spikes, v = _one_neuron(lost, 0.5, 6)
    assert spikes == [2, 5] and v == [0.5, 1.0, 1.375, 0.0, 0.96875, 1.46875]


def test_golden_matches_snntorch_leaky():
    """The first golden, run through snnTorch and the importer."""
    net = nn.Sequential(snn.Leaky(beta=0.5, init_hidden=True))
    trace = simulate(from_snntorch(net, (1,)), np.full((6, 1, 1), 0.75, dtype=np.float32))
    assert np.flatnonzero(trace.output[:, 0, 0]).tolist() == [1, 4]


def test_golden_delay_scale_li_bias():
    """Delay(2) then Scale(2) into an LI readout (beta=0.5, bias=1): the ramp 1, 2, 3, 4
    arrives as 0, 0, 2, 4, so v = 0.5 v + x + 1 = 1, 1.5, 3.75, 6.875."""
    graph = sequential([Input(name="input", shape=(1,)), Delay(name="d", steps=2),
                        Scale(name="s", scale=2.0), LI(name="li", shape=(1,), beta=0.5, bias=1.0)])
    trace = simulate(graph, np.arange(1, 5, dtype=np.float32).reshape(4, 1, 1))
    assert trace.output[:, 0, 0].tolist() == [1.0, 1.5, 3.75, 6.875]
    assert trace.layers["li"]["v"][:, 0, 0].tolist() == [1.0, 1.5, 3.75, 6.875]


def test_sum_pool_is_window_sum():
    x = np.random.default_rng(0).normal(size=(3, 2, 2, 4, 6)).astype(np.float32)
    ends = [Input(name="input", shape=(2, 4, 6))]
    sums = simulate(sequential(ends + [SumPool2d(name="p", kernel_size=2), Flatten(name="f")]), x)
    means = simulate(sequential(ends + [AvgPool2d(name="p", kernel_size=2), Flatten(name="f")]), x)
    expected = x.reshape(3, 2, 2, 2, 2, 3, 2).sum(axis=(4, 6)).reshape(3, 2, -1)
    np.testing.assert_allclose(sums.output, expected, rtol=1e-6)
    np.testing.assert_allclose(means.output * 4, expected, rtol=1e-6)


def test_float_backend_is_discovered():
    backend = get_backend("float")
    assert backend.name == "float" and not backend.fixed_point
    graph = sequential([Input(name="input", shape=(1,)), LIF(name="lif", shape=(1,), beta=0.5)])
    out = backend.run(graph, np.full((6, 1, 1), 0.75, dtype=np.float32)).output
    assert np.flatnonzero(out[:, 0, 0]).tolist() == [1, 4]
