"""The one datapath description: every family equals the specification, rule by rule, and the
fast emulator equals the reference executor on graphs with every feature."""

import zlib

import numpy as np
import pytest
import torch
from hypothesis import given, settings, strategies as st

from snn_compile.compare import traces_identical
from snn_compile.datapath.exact import ExactOps, as_exact
from snn_compile.datapath.numpy_ops import NUMPY
from snn_compile.datapath.reference import run_reference
from snn_compile.datapath.rules import RULES, rule
from snn_compile.datapath.step import apply
from snn_compile.emulator import run_network
from snn_compile.grid import TorchOps
from snn_compile.ir.fixed import QNetwork
from snn_compile.ir.fixed_io import load_network, network_files, save_network
from snn_compile.targets import load_target

from strategies import random_network, random_qnetwork, random_spikes

EXACT = ExactOps()
ALL_RULES = [(kind, name) for kind, table in RULES.items() for name in table]
TARGETS = ["loihi2", "cpu", "xc7z020"]


def _param(kind, rng):
    if kind == "overflow":
        return int(rng.integers(2, 40))
    if kind == "rounding":
        return int(rng.integers(0, 20))
    return rng.integers(-2**20, 2**20, size=64)  # thresholds for spike tests


def _edge_values(rng, param, kind):
    bits = param if kind == "overflow" else 24
    half = 1 << (bits - 1)
    edges = [0, 1, -1, half, -half, half - 1, 1 - half, half + 1, -half - 1, 2 * half, -2 * half]
    return np.concatenate([np.array(edges, np.int64),
                           rng.integers(-2**44, 2**44, size=200)])


@pytest.mark.parametrize("kind,name", ALL_RULES)
def test_numpy_and_torch_families_equal_the_specification(kind, name):
    rng = np.random.default_rng(zlib.crc32(f"{kind}:{name}".encode()))  # not hash(): salted
    for _ in range(20):
        param = _param(kind, rng)
        x = _edge_values(rng, param if kind != "spike_test" else 0, kind)
        if kind == "spike_test":
            x = x[:64]
        want = apply(EXACT, kind, name, as_exact(x), as_exact(param))
        got_np = apply(NUMPY, kind, name, x, param)
        np.testing.assert_array_equal(np.asarray(got_np, np.int64), np.asarray(want, np.int64))
        xt = torch.as_tensor(x, dtype=torch.float64)
        pt = param if kind != "spike_test" else torch.as_tensor(param, dtype=torch.float64)
        got_t = apply(TorchOps(), kind, name, xt, pt)
        np.testing.assert_array_equal(np.asarray(got_t, np.int64), np.asarray(want, np.int64))


def test_rule_table_documents_every_rule():
    for kind, table in RULES.items():
        for name, r in table.items():
            assert r.doc and r.kind == kind and r.name == name
    with pytest.raises(KeyError, match="known"):
        rule("overflow", "bounce")


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(TARGETS))
def test_emulator_equals_reference_on_graphs_with_every_feature(seed, target):
    rng = np.random.default_rng(seed)
    net = random_network(rng, load_target(target))
    spikes = random_spikes(rng, net, steps=int(rng.integers(4, 14)), batch=2)
    fast, spec = run_network(net, spikes), run_reference(net, spikes)
    for name, states in spec.layers.items():
        for key, want in states.items():
            np.testing.assert_array_equal(np.asarray(fast.layers[name][key], np.int64), want,
                                          err_msg=f"{net.metadata} {name}.{key}")


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 2**32 - 1), st.sampled_from(TARGETS))
def test_meaning_does_not_depend_on_listing_order(seed, target):
    rng = np.random.default_rng(seed)
    net = random_network(rng, load_target(target))
    spikes = random_spikes(rng, net, steps=10, batch=2)
    order_p = rng.permutation(len(net.populations))
    order_e = rng.permutation(len(net.projections))
    shuffled = QNetwork(input=net.input, populations=tuple(net.populations[i] for i in order_p),
                        projections=tuple(net.projections[i] for i in order_e),
                        output=net.output, target=net.target)
    a, b = run_network(net, spikes).to_npz_dict(), run_network(shuffled, spikes).to_npz_dict()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key])


def test_saved_network_reloads_bit_identical(tmp_path):
    rng = np.random.default_rng(5)
    for target in TARGETS:
        net = random_network(rng, load_target(target))
        folder = save_network(net, tmp_path / target)
        back = load_network(folder)
        assert network_files(back) == network_files(net)  # same bytes, deterministic
        spikes = random_spikes(rng, net, 12, 2)
        a, b = run_network(net, spikes).to_npz_dict(), run_network(back, spikes).to_npz_dict()
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])


def test_chain_guard_networks_equal_reference():
    """A sample of the guard's chain networks (conv, recurrence, CUBA, overload)."""
    rng = np.random.default_rng(11)
    for target in TARGETS:
        for i in range(4):
            net = random_qnetwork(rng, load_target(target), conv=i == 3, recurrent=i == 1,
                                  cuba=bool(i % 2), weight_scale=[1.0, 8.0, 200.0, 1.0][i])
            spikes = random_spikes(rng, net, 15, 2)
            fast, spec = run_network(net, spikes), run_reference(net, spikes)
            for name, states in spec.layers.items():
                for key, want in states.items():
                    np.testing.assert_array_equal(np.asarray(fast.layers[name][key], np.int64),
                                                  want)


def _ceil(o, p, k: int):
    """Round up: ``-((-p) >> k)``."""
    return o.sub(o.const(0), o.shr(o.sub(o.const(0), p), k)) if k else p


def test_a_new_rule_reaches_every_generated_family(monkeypatch):
    """README's "Adding a datapath rule": a rule added to the table (here a rounding "ceil")
    runs in every generated family (numpy and native emulator, torch, ONNX) equal to the spec
    with no other change, and the hand-written backends (HLS headers, Lava process) refuse it
    until they implement it."""
    import dataclasses

    from snn_compile.backend import get_backend, missing_capabilities
    from snn_compile.datapath.rules import Rule

    monkeypatch.setitem(RULES["rounding"], "ceil",
                        Rule("rounding", "ceil", _ceil, _ceil.__doc__, value_preserving=False))
    rng = np.random.default_rng(3)
    x = rng.integers(-2**40, 2**40, size=300)
    for k in (0, 1, 5, 12):
        want = np.asarray(apply(EXACT, "rounding", "ceil", as_exact(x), k), np.int64)
        np.testing.assert_array_equal(-((-x) >> k), want)  # the spec says what it means
        np.testing.assert_array_equal(np.asarray(apply(NUMPY, "rounding", "ceil", x, k)), want)
        got_t = apply(TorchOps(), "rounding", "ceil", torch.as_tensor(x, dtype=torch.float64), k)
        np.testing.assert_array_equal(np.asarray(got_t, np.int64), want)
    base = load_target("cpu")
    target = dataclasses.replace(base, neuron=dataclasses.replace(base.neuron,
                                                                  decay_rounding="ceil"))
    onnx_backend = get_backend("onnx")
    differs = 0
    for seed in range(4):
        net = random_network(np.random.default_rng(seed), target, features=("cuba", "delay"))
        spikes = random_spikes(np.random.default_rng(seed), net, steps=12, batch=2)
        fast, spec = run_network(net, spikes, engine="numpy"), run_reference(net, spikes)
        native = run_network(net, spikes, engine="native")  # the C family's kernels
        for name, states in spec.layers.items():
            for key, value in states.items():
                for trace in (fast, native):
                    np.testing.assert_array_equal(
                        np.asarray(trace.layers[name][key], np.int64), value)
        assert traces_identical(fast, onnx_backend.run(net, spikes)) is None
        floor_net = net.replace(target=base)  # the same network rounding down
        differs += traces_identical(fast, run_network(floor_net, spikes)) is not None
    assert differs, "the new rule was never exercised"
    for name in ("hls", "lava"):
        assert ("cpu", "the rounding rule 'ceil'") in missing_capabilities(
            net, get_backend(name).capabilities)
