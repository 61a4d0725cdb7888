"""Lava backend: lowering registers, exact Lava == emulator traces, core mapping.

Every Lava test compares every spike and every u/v value of every population at every step with
the emulator. Networks are small: each Lava run forks one OS process per Lava process.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_compile import ir
from snn_compile.backend import get_backend
from snn_compile.backends.loihi import LavaBackend, lower, map_to_cores
from snn_compile.emulator import run_network as emulate
from snn_compile.errors import BackendError, TargetError, UnsupportedError
from snn_compile.ir.chain import QDense, QLayer, chain
from snn_compile.ir.fixed import ConvGeometry, QInput, QNetwork, QNeuron, QPopulation, QProjection
from snn_compile.quantize import quantize
from snn_compile.targets import load_target

from strategies import random_network, random_qnetwork, random_spikes

LOIHI = load_target("loihi2")
# Same arithmetic, plus the reset timings and spike tests that only SnnLIF provides.
LOIHI_ALL_RESETS = load_target("loihi2", {"features.reset_timings": ["same_step", "next_step"],
                                          "features.spike_tests": [">", ">="]})
LAVA = LavaBackend()
LAVA_MISSING = LAVA.available()


def needs_lava(fn):
    return pytest.mark.lava(pytest.mark.skipif(bool(LAVA_MISSING), reason=str(LAVA_MISSING))(fn))


# ----------------------------------------------------------------------------- helpers

def with_neurons(net: QNetwork, names=None, **changes) -> QNetwork:
    for pop in net.populations:
        if names is None or pop.name in names:
            net = net.with_population(dataclasses.replace(
                pop, neuron=dataclasses.replace(pop.neuron, **changes)))
    return net


def with_dense_exp(net: QNetwork, exp: int) -> QNetwork:
    """Every dense projection with weight_exp = exp: drives u to wrap, v to clip."""
    return net.replace(projections=tuple(
        dataclasses.replace(p, weight_exp=exp) if p.kind == "dense" else p
        for p in net.projections))


def assert_lava_matches(net: QNetwork, x: np.ndarray) -> dict:
    """Lava trace == emulator trace, everywhere; returns statistics of the golden trace."""
    golden = emulate(net, x)
    got = LAVA.run(net, x)
    assert set(got.layers) == set(golden.layers)
    for name, states in golden.layers.items():
        assert set(got.layers[name]) == set(states)
        for state, want in states.items():
            have = got.layers[name][state]
            assert have.shape == want.shape, (name, state, have.shape, want.shape)
            diff = np.argwhere(have != want)
            assert not len(diff), (f"{name}/{state} first differs at (step, sample, neuron) "
                                   f"{tuple(diff[0])}: lava {have[tuple(diff[0])]}, "
                                   f"emulator {want[tuple(diff[0])]}")
    assert np.array_equal(got.output, golden.output)
    return {"spikes": sum(int(s["spikes"].sum()) for s in golden.layers.values()),
            "max_count": max(int(s["spikes"].max(initial=0)) for s in golden.layers.values()),
            "u_max": max(int(np.abs(s["u"]).max(initial=0)) for s in golden.layers.values()),
            "v_max": max(int(np.abs(s["v"]).max(initial=0)) for s in golden.layers.values()),
            "trace": got}


def draw(seed: int, target=LOIHI, **kwargs) -> tuple[QNetwork, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return random_qnetwork(rng, target, **kwargs), rng


def spikes(rng, net, steps=12, batch=2):
    return random_spikes(rng, net, steps, batch)


def neuron(shape, **fields) -> QNeuron:
    base = dict(shape=shape, decay_u=0, decay_v=4096, threshold=64 * 10, bias=0)
    base.update(fields)
    return QNeuron(**base)


# ----------------------------------------------------------------------------- Lava == emulator

@needs_lava
@pytest.mark.parametrize("seed,cuba", [(0, False), (1, True)])
def test_dense_networks_match(seed, cuba):
    net, rng = draw(seed, cuba=cuba, depth=2)
    assert_lava_matches(net, spikes(rng, net))


@needs_lava
@pytest.mark.parametrize("seed", [10, 11])
def test_conv_and_recurrent_networks_match(seed):
    net, rng = draw(seed, conv=seed == 10, recurrent=True, cuba=seed % 2 == 0, depth=1)
    assert any(p.kind == "conv" for p in net.projections) == (seed == 10)
    assert any(p.source == p.target for p in net.projections)
    assert_lava_matches(net, spikes(rng, net))


@needs_lava
@pytest.mark.parametrize("seed,exp", [(30, 7), (31, 6)])
def test_overflow_edges_match(seed, exp):
    """Large dendritic exponents: u wraps at 24 bits (Lava's single pass), v saturates."""
    net, rng = draw(seed, cuba=True, depth=2, conv=seed % 2 == 1)
    net = with_dense_exp(net, exp)
    stats = assert_lava_matches(net, spikes(rng, net, steps=16, batch=3))
    assert stats["v_max"] == (1 << 23) - 1  # saturation reached
    assert stats["u_max"] > 1 << 22


@needs_lava
def test_summed_inputs_wrap_in_int32_like_lava():
    """Two projections into one population: each contribution wraps to int32 in Lava's channel,
    their sum wraps in the receiving port, and ``a << 6`` wraps again in the LIF."""
    n = 40_000
    layer = QLayer(name="fc1", synapse=QDense(weight=np.full((2, n), 254), weight_exp=7),
                   neuron=neuron((2,), threshold=64 * 100_000, has_current=True, decay_u=10))
    net = chain((n,), [layer], LOIHI)
    second = QProjection(name="fc1.again", source="input", target="fc1", kind="dense",
                         weight=np.full((2, n), 254), weight_exp=7, delay=1)
    net = net.replace(projections=net.projections + (second,))
    x = np.ones((4, 1, n), np.float32)
    x[2, 0, : n // 2] = 0
    stats = assert_lava_matches(net, x)
    assert stats["u_max"] > 0
    assert 2 * (254 * n << 7) > 1 << 31  # the sum itself wraps


@needs_lava
def test_subtract_reset_runs_on_custom_neuron():
    net, rng = draw(40, cuba=True, depth=2, recurrent=True)
    net = with_neurons(net, reset="subtract")
    assert lower(net).custom_populations == list(net.order)
    stats = assert_lava_matches(net, spikes(rng, net, steps=16))
    assert stats["spikes"] > 0


@needs_lava
@pytest.mark.parametrize("seed", [50, 51])
def test_reset_timings_and_spike_tests_match(seed):
    net, rng = draw(seed, LOIHI_ALL_RESETS, depth=3, conv=seed % 2 == 1)
    net = with_neurons(net, [net.order[0]], reset_timing="next_step", spike_test=">=",
                       reset="subtract")
    assert_lava_matches(with_dense_exp(net, 1), spikes(rng, net, steps=14))


@needs_lava
def test_discarding_zero_reset_and_readout_match():
    net, rng = draw(60, LOIHI_ALL_RESETS, depth=2, cuba=True)
    net = with_neurons(net, reset="zero", reset_timing="next_step", reset_discards_input=True)
    net = with_neurons(net, [net.output], spiking=False, reset="none")
    assert lower(net).manifest["output"]["state"] == "v"
    assert_lava_matches(net, spikes(rng, net, steps=14))


@needs_lava
@pytest.mark.parametrize("reset", ["zero", "subtract"])  # Lava's LIF, then SnnLIF
def test_graded_input_delay_and_per_neuron_bias_match(reset):
    net, rng = draw(70, depth=2, cuba=True)
    net = with_neurons(net, ["fc1"], reset=reset)
    first = net.population("fc1")
    bias = rng.integers(-4096, 4096, first.shape) << rng.integers(0, 8, first.shape)
    bias[:2] = [-4095, 4095 << 5]  # odd and large: no exponent shared by the population
    net = with_neurons(net, ["fc1"], bias=bias)
    net = net.replace(input=QInput(shape=net.input.shape, dtype="int8", scale=1.0),
                      projections=tuple(dataclasses.replace(p, delay=3)
                                        if p.name == "fc1.synapse" else p
                                        for p in net.projections))
    lowered = lower(net)
    (syn,) = [s for s in lowered.manifest["synapses"] if s["projection"] == "fc1.synapse"]
    assert syn["process"] == "DelayDense" and syn["delay"] == 2
    assert syn["num_message_bits"] == 8
    (cell,) = [n for n in lowered.manifest["neurons"] if n["population"] == "fc1"]
    assert cell["bias_exp"].startswith("params:")
    assert cell["process"] == {"zero": "LIF", "subtract": "SnnLIF"}[reset]
    x = rng.integers(-128, 128, (12, 2, *net.input_shape)).astype(np.float32)
    assert_lava_matches(net, x)


@needs_lava
def test_multi_spike_floor_and_immediate_reset_on_snnlif():
    """Counts clip(v // thr, 0, max_spikes) with an immediate subtract (or zero) reset and a
    membrane floor; the counts travel as graded payloads (num_message_bits) downstream."""
    net, rng = draw(75, depth=3, cuba=True)
    net = with_dense_exp(net, 2)
    fc1, fc2 = net.population("fc1").neuron, net.population("fc2").neuron
    net = with_neurons(net, ["fc1"], max_spikes=6, reset="subtract", reset_timing="immediate",
                       spike_test=">=", v_floor=-np.asarray(fc1.threshold))
    net = with_neurons(net, ["fc2"], max_spikes=3, reset="zero", reset_timing="immediate",
                       v_floor=-2 * np.asarray(fc2.threshold))
    net = with_neurons(net, ["fc3"], reset="subtract", reset_timing="immediate")
    lowered = lower(net)
    bits = {s["projection"]: s["num_message_bits"] for s in lowered.manifest["synapses"]}
    assert bits == {"fc1.synapse": 0, "fc2.synapse": 3, "fc3.synapse": 2}
    assert "membrane floor" in lowered.manifest["populations"][0]["custom_reasons"]
    stats = assert_lava_matches(net, spikes(rng, net, steps=16, batch=2))
    assert stats["max_count"] >= 2  # several spikes in one step happened


@needs_lava
@settings(max_examples=3, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), conv=st.booleans(), recurrent=st.booleans(),
       cuba=st.booleans(), exp=st.sampled_from([None, -2, 4]))
def test_random_chains_match_property(seed, conv, recurrent, cuba, exp):
    net, rng = draw(seed, LOIHI_ALL_RESETS, conv=conv, recurrent=recurrent, cuba=cuba, depth=1)
    if exp is not None:
        net = with_dense_exp(net, exp)
    assert_lava_matches(net, spikes(rng, net, steps=10))


@needs_lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 124))
def test_random_graphs_match_sweep(seed):
    """Graphs with every feature (refused ones: weights off Lava's grid, the overload draws)."""
    rng = np.random.default_rng(seed)
    net = random_network(rng, LOIHI_ALL_RESETS)
    x = spikes(rng, net, steps=20, batch=3)
    try:
        LAVA.lower(net)
    except UnsupportedError as exc:
        assert "overload" in net.metadata["features"], exc
        pytest.skip(f"Lava refuses this overload draw: {exc}")
    assert_lava_matches(net, x)


# ----------------------------------------------------------------------------- graphs

def residual_network(target=LOIHI) -> QNetwork:
    """A conv block with an identity shortcut around it, two populations both feeding a third,
    feedback from that third back to one of them, a multi-spike population with a floor."""
    rng = np.random.default_rng(90)
    c, h, w = 2, 5, 5

    def weights(shape, lo=-80, hi=80):
        return rng.integers(lo // 2, hi // 2, shape) * 2

    same = ConvGeometry(in_shape=(c, h, w), padding=(1, 1))
    pops = [
        QPopulation(name="c1", neuron=neuron((c, h, w), threshold=64 * 40)),
        QPopulation(name="c2", neuron=neuron((c, h, w), threshold=64 * 40, reset="subtract")),
        QPopulation(name="c3", neuron=neuron((c, h, w), threshold=64 * 50, max_spikes=4,
                                             reset="subtract", reset_timing="immediate",
                                             spike_test=">=", v_floor=-64 * 50)),
        QPopulation(name="a", neuron=neuron((6,), threshold=64 * 60, decay_v=3900)),
        QPopulation(name="b", neuron=neuron((5,), threshold=64 * 30, has_current=True,
                                            decay_u=3000)),
        QPopulation(name="out", neuron=neuron((4,), threshold=64 * 20, decay_v=4000)),
    ]
    n = c * h * w
    projs = [
        QProjection(name="in->c1", source="input", target="c1", kind="conv",
                    weight=weights((c, 1, 3, 3), 0, 160), delay=1, conv=ConvGeometry(
                        in_shape=(1, h, w), padding=(1, 1))),
        QProjection(name="c1->c2", source="c1", target="c2", kind="conv",
                    weight=weights((c, c, 3, 3)), delay=1, conv=same),
        QProjection(name="c2->c3", source="c2", target="c3", kind="conv",
                    weight=weights((c, c, 3, 3)), delay=1, conv=same),
        QProjection(name="c1=>c3", source="c1", target="c3", kind="elementwise",
                    weight=np.full((c, 1, 1), 40), delay=2),  # the identity shortcut
        QProjection(name="c3->a", source="c3", target="a", kind="dense",
                    weight=weights((6, n)), weight_exp=1, delay=1),
        QProjection(name="c3->b", source="c3", target="b", kind="dense",
                    weight=weights((5, n)), delay=1),
        QProjection(name="a->out", source="a", target="out", kind="dense",
                    weight=weights((4, 6), 0, 200), delay=1),
        QProjection(name="b->out", source="b", target="out", kind="dense",
                    weight=weights((4, 5)), weight_exp=2, delay=2),
        QProjection(name="out->a", source="out", target="a", kind="dense",
                    weight=weights((6, 4)), delay=1),  # feedback between populations
    ]
    return QNetwork(input=QInput(shape=(1, h, w)), populations=tuple(pops),
                    projections=tuple(projs), output="out", target=target)


@needs_lava
def test_skip_shortcut_and_feedback_graph_matches_in_any_listing_order():
    net = residual_network()
    lowered = lower(net)
    kinds = {s["projection"]: s["process"] for s in lowered.manifest["synapses"]}
    assert kinds["c1=>c3"] == "DelaySparse" and kinds["in->c1"] == "Conv"
    assert kinds["b->out"] == "DelayDense" and kinds["out->a"] == "Dense"
    rng = np.random.default_rng(91)
    x = (rng.random((14, 2, 1, 5, 5)) < 0.5).astype(np.float32)
    stats = assert_lava_matches(net, x)
    assert stats["spikes"] > 0 and stats["max_count"] >= 2
    order_p, order_e = rng.permutation(len(net.populations)), rng.permutation(len(net.projections))
    shuffled = QNetwork(input=net.input, output=net.output, target=net.target,
                        populations=tuple(net.populations[i] for i in order_p),
                        projections=tuple(net.projections[i] for i in order_e))
    again = LAVA.run(shuffled, x)
    for name, states in stats["trace"].layers.items():
        for state, arr in states.items():
            np.testing.assert_array_equal(again.layers[name][state], arr)


@needs_lava
@pytest.mark.parametrize("seed", [1, 6])
def test_random_graphs_with_every_feature_match(seed):
    """random_network: skips, merges, elementwise shortcuts, delays, feedback, graded input,
    multi-spike, floors, readouts (seeds whose weights lie on Lava's grid)."""
    rng = np.random.default_rng(seed)
    net = random_network(rng, LOIHI)
    assert_lava_matches(net, spikes(rng, net, steps=12))


# ----------------------------------------------------------------------------- bias source

@needs_lava
def test_bias_source_of_a_synaptic_network_matches_and_costs_one_core():
    """A Synaptic (CUBA) network with linear biases, quantized for loihi2: the bias source runs
    on Lava bit for bit like the emulator, and costs one core and one synapse per neuron."""
    rng = np.random.default_rng(0)
    g = ir.sequential([
        ir.Input(name="in", shape=(6,)),
        ir.Affine(name="fc1", weight=rng.normal(0, 1, (5, 6)), bias=rng.normal(0, 0.3, 5)),
        ir.CubaLIF(name="syn1", shape=(5,), alpha=0.8, beta=0.9, reset="zero"),
        ir.Affine(name="fc2", weight=rng.normal(0, 1, (3, 5)), bias=rng.normal(0, 0.5, 3)),
        ir.CubaLIF(name="syn2", shape=(3,), alpha=0.7, beta=0.9, reset="subtract")])
    x = (rng.random((16, 2, 6)) < 0.3).astype(np.float32)
    net = quantize(g, LOIHI, x).network
    lowered = lower(net)
    info = lowered.manifest["bias_source"]
    assert info["population"] == "bias_source"
    assert info["projections"] == ["bias_source->syn1", "bias_source->syn2"]
    (cell,) = [n for n in lowered.manifest["neurons"] if n["population"] == "bias_source"]
    assert cell["process"] == "LIF" and cell["bias_mant"] > cell["vth"] << 6
    assert_lava_matches(net, x)
    report = map_to_cores(net)
    assert report.population("bias_source").cores == 1
    assert report.population("bias_source").max_fan_out == 2  # one axon per target core


def test_input_bias_is_refused_with_the_bias_source_hint():
    layer = QLayer(name="fc1", synapse=QDense(weight=np.full((2, 3), 2)),
                   neuron=neuron((2,), has_current=True, decay_u=2000), input_bias=[4, 8])
    net = chain((3,), [layer], LOIHI)
    with pytest.raises(UnsupportedError, match="node 'fc1'.*input_bias.*bias-source"):
        LAVA.check(net)
    with pytest.raises(UnsupportedError, match="input_bias"):
        lower(net)


# ----------------------------------------------------------------------------- neuron groups

def split_network(groups_fc1: int) -> QNetwork:
    """fc1 with ``groups_fc1`` distinct thresholds, fc2 with two decays, an elementwise
    shortcut between them, recurrence on fc1."""
    rng = np.random.default_rng(95)
    thr = 64 * (20 + 7 * (np.arange(8) % groups_fc1))
    layers = [
        QLayer(name="fc1", synapse=QDense(weight=rng.integers(-60, 60, (8, 6)) * 2),
               recurrent=QDense(weight=rng.integers(-30, 30, (8, 8)) * 2),
               neuron=neuron((8,), threshold=thr, reset="subtract")),
        QLayer(name="fc2", source="fc1", synapse=QDense(weight=rng.integers(-60, 60, (8, 8)) * 2,
                                                        weight_exp=1),
               neuron=neuron((8,), threshold=64 * 30, decay_v=[4000, 3000] * 4)),
        QLayer(name="fc3", source="fc2", synapse=QDense(weight=rng.integers(0, 100, (3, 8))),
               neuron=neuron((3,), threshold=64 * 25)),
    ]
    net = chain((6,), layers, LOIHI)
    shortcut = QProjection(name="fc1=>fc2", source="fc1", target="fc2", kind="elementwise",
                           weight=rng.integers(10, 60, 8) * 2, delay=1)
    return net.replace(projections=net.projections + (shortcut,))


@needs_lava
def test_per_neuron_thresholds_and_decays_split_into_lif_processes():
    net = split_network(3)
    lowered = lower(net)
    pops = {p["name"]: p for p in lowered.manifest["populations"]}
    assert pops["fc1"]["units"] == ["fc1#0", "fc1#1", "fc1#2"]
    assert pops["fc2"]["units"] == ["fc2#0", "fc2#1"] and pops["fc3"]["groups"] == 1
    vths = sorted(n["vth"] for n in lowered.manifest["neurons"] if n["population"] == "fc1")
    assert vths == [20, 27, 34]
    shortcut = [s for s in lowered.manifest["synapses"] if s["projection"] == "fc1=>fc2"]
    assert len(shortcut) == 6  # every (group, group) pair sharing a neuron, zero blocks dropped
    rng = np.random.default_rng(96)
    assert_lava_matches(net, (rng.random((14, 2, 6)) < 0.5).astype(np.float32))
    mapping = map_to_cores(net)
    assert mapping.population("fc1").groups == 3 and mapping.population("fc1").cores == 3


def test_too_many_register_groups_or_a_floored_split_sum_are_refused():
    with pytest.raises(UnsupportedError, match=r"node 'fc1'.*needs 8 processes, more than 4 "
                                               r"\(features.neuron_groups\)"):
        lower(split_network(8).replace(target=load_target("loihi2",
                                                          {"features.neuron_groups": 4})))
    net = split_network(2)
    net = net.replace(projections=tuple(dataclasses.replace(p, weight_exp=-1)
                                        if p.name == "fc2.synapse" else p
                                        for p in net.projections))
    with pytest.raises(UnsupportedError, match="node 'fc2.synapse'.*negative weight_exp"):
        lower(net)


# ----------------------------------------------------------------------------- backend

def test_backend_is_discovered_through_entry_point():
    backend = get_backend("lava")
    assert isinstance(backend, LavaBackend) and backend.name == "lava"
    assert get_backend("lava", hardware="true").hardware is True
    with pytest.raises(BackendError, match="hardware"):
        get_backend("lava", hardware="maybe")


@needs_lava
def test_backend_available_and_hardware_status():
    assert LAVA.available() is None
    status = LAVA.hardware_available()
    assert status is None or "lava-loihi" in status
    if status is not None:
        assert LavaBackend(hardware=True).available() == status


# ----------------------------------------------------------------------------- registers

def one_layer(weight, target=LOIHI, **fields) -> QNetwork:
    weight = np.asarray(weight)
    layer = QLayer(name="fc1", synapse=QDense(weight=weight),
                   neuron=neuron((weight.shape[0],), **fields))
    return chain((weight.shape[1],), [layer], target)


def test_registers_are_exact():
    net = one_layer([[2, -4], [6, 8]], decay_u=4000, decay_v=4000, has_current=True,
                    threshold=64 * 131071, bias=-4096 << 7)
    manifest = lower(net).manifest
    (cell,), (syn,) = manifest["neurons"], manifest["synapses"]
    assert (cell["du"], cell["dv"], cell["vth"]) == (95, 96, 131071)
    assert (cell["bias_mant"], cell["bias_exp"]) == (-4096, 7)
    assert cell["process"] == "LIF" and manifest["populations"][0]["custom_reasons"] == []
    assert syn["sign_mode"] == "MIXED" and syn["process"] == "Dense" and syn["delay"] == 0
    (plain,) = lower(one_layer([[2]], decay_u=123)).manifest["neurons"]
    assert plain["du"] == 4095 and plain["dv"] == 0


@pytest.mark.parametrize("change,message", [
    (dict(weight=[[3, -2]]), "MIXED"),
    (dict(weight=[[-256, -2]]), "INHIBITORY"),
    (dict(weight=[[256, 2]]), "EXCITATORY"),
    (dict(threshold=100), "threshold_shift"),
    (dict(threshold=64 << 17), "vth holds 1..131071"),
    (dict(bias=(4095 << 7) + 2), "bias"),
    (dict(decay_v=0), "dv"),
])
def test_unrepresentable_values_are_refused(change, message):
    weight = change.pop("weight", [[2, -2], [4, 6]])
    with pytest.raises(UnsupportedError, match=message) as info:
        lower(one_layer(weight, **change))
    assert "fc1" in str(info.value)


def test_target_with_other_arithmetic_is_refused():
    net = one_layer([[2]], target=load_target("cpu"))
    with pytest.raises(UnsupportedError, match="loihi2 datapath"):
        LAVA.check(net)
    with pytest.raises(UnsupportedError, match="loihi2 datapath"):
        lower(net)


def test_conv_layout_and_custom_reasons():
    net, _ = draw(3, conv=True, depth=1)
    net = with_neurons(net, reset="subtract")
    manifest = lower(net).manifest
    conv, fc = manifest["populations"]
    c, h, w = net.population("conv1").shape
    assert conv["lava_shape"] == [w, h, c] and conv["order"].startswith("params:")
    (into_fc,) = [s for s in manifest["synapses"] if s["target"] == "fc1"]
    assert into_fc["flatten_input"] is True
    assert conv["custom_reasons"] == ["reset='subtract'"]
    assert manifest["custom_neuron"]["populations"] == ["conv1", "fc1"]
    assert "microcode" in manifest["custom_neuron"]["note"]


def test_unsupported_structures_are_refused():
    net, _ = draw(4, conv=True, depth=1)

    def with_conv(**changes):
        return net.replace(projections=tuple(dataclasses.replace(p, **changes)
                                             if p.kind == "conv" else p
                                             for p in net.projections))
    with pytest.raises(UnsupportedError, match="ignores weight_exp"):
        lower(with_conv(weight_exp=1))
    with pytest.raises(UnsupportedError, match="Conv has no synaptic delay"):
        lower(with_conv(delay=2))
    (conv,) = [p for p in net.projections if p.kind == "conv"]
    pooled = dataclasses.replace(conv.conv, max_pool=((1, 1), (1, 1)))
    with pytest.raises(UnsupportedError, match="max pooling"):
        LAVA.check(with_conv(conv=pooled))
    with pytest.raises(UnsupportedError, match="sooner than Lava's synapses"):
        lower(net.replace(projections=tuple(dataclasses.replace(p, delay=0)
                                            if p.kind == "dense" else p
                                            for p in net.projections)))


# ----------------------------------------------------------------------------- mapping

def test_mapping_report_of_small_network():
    net, _ = draw(5, conv=True, recurrent=True, depth=2)
    report = map_to_cores(net)
    assert report.cores_used == len(net.populations) == len(report.cores)
    assert report.as_dict()["limits"]["neurons"] == LOIHI.resources.neurons_per_core
    fc1 = report.population("fc1")
    w = next(p.weight for p in net.projections if p.name == "fc1.synapse")
    rec = next(p.weight for p in net.projections if p.name == "fc1.recurrent")
    w2 = next(p.weight for p in net.projections if p.name == "fc2.synapse")
    assert fc1.synapses == int((w != 0).sum() + (rec != 0).sum())
    assert fc1.memory_bits == fc1.synapses * 9
    assert fc1.max_fan_out == int((w2 != 0).any(axis=0).sum() + (rec != 0).any(axis=0).sum())


def test_mapping_counts_every_projection_of_a_graph():
    net = residual_network()
    report = map_to_cores(net)
    out, a = report.population("out"), report.population("a")
    wa = next(p.weight for p in net.projections if p.name == "a->out")
    wb = next(p.weight for p in net.projections if p.name == "b->out")
    assert out.synapses == int((wa != 0).sum() + (wb != 0).sum())
    assert out.max_fan_in == 6 + 5
    wf = next(p.weight for p in net.projections if p.name == "out->a")
    assert out.max_fan_out == int((wf != 0).any(axis=0).sum())  # feedback: its consumers
    assert a.max_fan_in == 50 + 4


def test_large_population_is_split_across_cores():
    report = map_to_cores(one_layer(np.full((100, 4000), 2)))
    layer = report.population("fc1")
    assert layer.cores == 4 and layer.split_by == ["memory_bits"]
    assert all(c.memory_bits <= LOIHI.resources.synaptic_memory_bits_per_core
               for c in report.cores)
    assert sum(c.neurons for c in report.cores) == 100


def test_network_that_does_not_fit_names_population_and_limit():
    with pytest.raises(TargetError, match=r"fc1.*fan_in 5000 exceeds fan_in_per_core = 4096"):
        map_to_cores(one_layer(np.full((4, 5000), 2)))
    two_cores = load_target("loihi2", {"resources.cores": 2})
    with pytest.raises(TargetError, match=r"needs 3 cores.*resources.cores = 2"):
        map_to_cores(one_layer(np.full((20_000, 1), 2), target=two_cores))


# ----------------------------------------------------------------------------- batching

@needs_lava
def test_batches_split_over_several_lava_runs_match(monkeypatch):
    from snn_compile.backends.loihi import build
    monkeypatch.setattr(build, "batch_size_limit", lambda manifest, params: 2)
    net, rng = draw(80, conv=True, recurrent=True, depth=1)
    assert_lava_matches(net, spikes(rng, net, steps=8, batch=3))


@needs_lava
@pytest.mark.parametrize("steps,batch", [(0, 2), (3, 0)])
def test_empty_window(steps, batch):
    net, rng = draw(81, depth=1)
    x = spikes(rng, net, steps=steps, batch=batch)
    trace, golden = LAVA.run(net, x), emulate(net, x)
    for name, states in golden.layers.items():
        for state, want in states.items():
            assert trace.layers[name][state].shape == want.shape
