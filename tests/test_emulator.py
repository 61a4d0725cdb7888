"""Emulator arithmetic: hand-checked goldens of the Loihi datapath and properties of the rules."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from snn_compile.datapath.numpy_ops import NUMPY
from snn_compile.datapath.rules import RULES
from snn_compile.datapath.step import apply
from snn_compile.emulator import run_network
from snn_compile.ir.chain import QDense, QLayer, chain
from snn_compile.ir.fixed import QNeuron
from snn_compile.targets import load_target

from strategies import random_qnetwork, random_spikes

LOIHI = load_target("loihi2")


def single_neuron(target, *, weight, decay_u=0, decay_v=4096, threshold=64 << 6, bias=0,
                  reset="zero", cuba=False):
    neuron = QNeuron(shape=(1,), decay_u=decay_u, decay_v=decay_v, threshold=threshold,
                     bias=bias, reset=reset, has_current=cuba)
    layer = QLayer(name="n", synapse=QDense(weight=[[weight]]), neuron=neuron)
    return chain((1,), [layer], target)


def wrap(x, bits):
    return apply(NUMPY, "overflow", "wrap", np.asarray(x, np.int64), bits)


def wrap_lava(x, bits):
    return apply(NUMPY, "overflow", "wrap_lava", np.asarray(x, np.int64), bits)


OVERFLOW = {name: (lambda name: lambda x, b: apply(NUMPY, "overflow", name,
                                                    np.asarray(x, np.int64), b))(name)
            for name in RULES["overflow"]}
ROUNDING = {name: (lambda name: lambda p, k: apply(NUMPY, "rounding", name,
                                                    np.asarray(p, np.int64), k))(name)
            for name in RULES["rounding"]}


def test_lava_worked_example():
    """du=409, dv=204, bias 5<<2, activation -2 arriving at t=2: v = 20, -89, -179 (Lava)."""
    net = single_neuron(LOIHI, weight=-2, decay_u=4095 - 409, decay_v=4096 - 204,
                        bias=5 << 2, cuba=True, threshold=100000 << 6)
    spikes = np.zeros((4, 1, 1), np.float32)
    spikes[0, 0, 0] = 1  # Lava: input at step 0 reaches the neuron one step later
    trace = run_network(net, spikes)
    v = trace.layers["n"]["v"][:, 0, 0]
    u = trace.layers["n"]["u"][:, 0, 0]
    assert list(v[:3]) == [20, -89, -179]
    assert list(u[:3]) == [0, -128, -115]


def test_threshold_is_strict_and_resets_to_zero():
    net = single_neuron(LOIHI, weight=2, threshold=128, decay_v=4096)  # a << 6 = 128 per spike
    trace = run_network(net, np.ones((4, 1, 1), np.float32))
    assert list(trace.layers["n"]["spikes"][:, 0, 0]) == [0, 0, 1, 0]  # v: 0, 128, 256 -> 0, 128
    assert list(trace.layers["n"]["v"][:, 0, 0]) == [0, 128, 0, 128]


def test_lava_wrap_is_asymmetric_and_single_pass():
    x = np.array([2**23, -2**23, 2**23 + 5, -2**23 - 5, 3 * 2**23])
    assert list(wrap_lava(x, 24)) == [2**23, 2**23, 5 - 2**23, 2**23 - 5, 2**23]


@given(st.integers(-2**40, 2**40), st.integers(2, 40))
def test_wrap_matches_twos_complement(x, bits):
    y = int(wrap(np.int64(x), bits))
    assert -(1 << (bits - 1)) <= y < (1 << (bits - 1)) and (y - x) % (1 << bits) == 0


@given(st.integers(-2**40, 2**40), st.integers(1, 20))
def test_rounding_rules(p, k):
    exact = p / 2**k
    assert int(ROUNDING["floor"](np.int64(p), k)) == int(np.floor(exact))
    assert int(ROUNDING["toward_zero"](np.int64(p), k)) == int(np.trunc(exact))
    assert abs(int(ROUNDING["nearest"](np.int64(p), k)) - exact) <= 0.5


def test_saturation_rules():
    x = np.array([-2**30, 2**30])
    assert list(OVERFLOW["saturate"](x, 8)) == [-128, 127]
    assert list(OVERFLOW["saturate_symmetric"](x, 8)) == [-127, 127]


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(["loihi2", "cpu", "xc7z020"]),
       st.booleans(), st.booleans(), st.booleans())
def test_emulator_is_deterministic_and_batch_independent(seed, target, conv, recurrent, cuba):
    """Each sample's trace is the same whether run alone or in a batch."""
    rng = np.random.default_rng(seed)
    net = random_qnetwork(rng, load_target(target), conv=conv, recurrent=recurrent, cuba=cuba)
    spikes = random_spikes(rng, net, steps=12, batch=3)
    full = run_network(net, spikes)
    alone = run_network(net, spikes[:, 1:2])
    for name, states in full.layers.items():
        for key, arr in states.items():
            np.testing.assert_array_equal(arr[:, 1:2], alone.layers[name][key])


def test_state_stays_within_target_widths_under_overload():
    rng = np.random.default_rng(3)
    for name in ("loihi2", "xc7z020"):
        target = load_target(name)
        net = random_qnetwork(rng, target, cuba=True, weight_scale=40.0)
        trace = run_network(net, random_spikes(rng, net, 30, 2, rate=0.9))
        for states in trace.layers.values():
            assert np.abs(states["v"]).max() <= 2 ** (target.neuron.v.bits - 1)
            assert np.abs(states["u"]).max() <= 2 ** (target.neuron.u.bits - 1)


def test_binary_input_is_enforced():
    net = single_neuron(LOIHI, weight=2)
    with pytest.raises(Exception, match="not binary"):
        run_network(net, np.full((2, 1, 1), 0.5, np.float32))


def test_empty_window():
    net = random_qnetwork(np.random.default_rng(0), LOIHI, conv=True, recurrent=True)
    trace = run_network(net, np.zeros((0, 3, *net.input_shape), np.float32))
    assert trace.output.shape[:2] == (0, 3)
