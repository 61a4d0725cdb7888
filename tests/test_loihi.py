"""Lava backend: lowering registers, exact Lava == emulator traces, core mapping.

Every Lava test compares every spike and every u/v value of every layer at every step with the
emulator. Networks are small: each Lava run forks one OS process per Lava process.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from snn_compile.backend import get_backend
from snn_compile.emulator import run_network as emulate
from snn_compile.backends.loihi import LavaBackend, lower, map_to_cores
from snn_compile.errors import TargetError, UnsupportedError
from snn_compile.ir.fixed import QConv, QDense, QLayer, QNetwork, QNeuron
from snn_compile.targets import load_target

from strategies import random_qnetwork, random_spikes

LOIHI = load_target("loihi2")
# Same arithmetic, plus the reset timings and spike tests that only SnnLIF provides.
LOIHI_ALL_RESETS = load_target("loihi2", {"features.reset_timings": ["same_step", "next_step"],
                                          "features.spike_tests": [">", ">="]})
LAVA_MISSING = LavaBackend().available()


def needs_lava(fn):
    return pytest.mark.lava(pytest.mark.skipif(bool(LAVA_MISSING), reason=str(LAVA_MISSING))(fn))


# ----------------------------------------------------------------------------- helpers

def with_neurons(net: QNetwork, layers=None, **changes) -> QNetwork:
    new = [dataclasses.replace(la, neuron=dataclasses.replace(la.neuron, **changes))
           if layers is None or la.name in layers else la for la in net.layers]
    return dataclasses.replace(net, layers=tuple(new))


def with_dense_exp(net: QNetwork, exp: int) -> QNetwork:
    """Every dense (and recurrent) synapse with weight_exp = exp: drives u to wrap, v to clip."""
    def change(syn):
        return syn if syn is None or isinstance(syn, QConv) else \
            dataclasses.replace(syn, weight_exp=exp)
    new = [dataclasses.replace(la, synapse=change(la.synapse), recurrent=change(la.recurrent))
           for la in net.layers]
    return dataclasses.replace(net, layers=tuple(new))


def assert_lava_matches(net: QNetwork, x: np.ndarray) -> dict:
    """Lava trace == emulator trace, everywhere; returns statistics of the golden trace."""
    golden = emulate(net, x)
    got = LavaBackend().run(net, x)
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
            "u_max": max(int(np.abs(s["u"]).max()) for s in golden.layers.values()),
            "v_max": max(int(np.abs(s["v"]).max()) for s in golden.layers.values())}


def draw(seed: int, target=LOIHI, **kwargs) -> tuple[QNetwork, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return random_qnetwork(rng, target, **kwargs), rng


def spikes(rng, net, steps=12, batch=2):
    return random_spikes(rng, net, steps, batch)


# ----------------------------------------------------------------------------- Lava == emulator

@needs_lava
@pytest.mark.parametrize("seed,cuba", [(0, False), (1, True), (2, True)])
def test_dense_networks_match(seed, cuba):
    net, rng = draw(seed, cuba=cuba, depth=2)
    assert_lava_matches(net, spikes(rng, net))


@needs_lava
@pytest.mark.parametrize("seed", [10, 11])
def test_conv_networks_match(seed):
    net, rng = draw(seed, conv=True, cuba=seed % 2 == 0, depth=1)
    assert isinstance(net.layers[0].synapse, QConv)
    assert_lava_matches(net, spikes(rng, net))


@needs_lava
@pytest.mark.parametrize("seed", [20, 21])
def test_recurrent_networks_match(seed):
    net, rng = draw(seed, recurrent=True, cuba=seed % 2 == 1, depth=2)
    assert net.layers[0].recurrent is not None
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
@pytest.mark.parametrize("seed", [40, 41])
def test_subtract_reset_runs_on_custom_neuron(seed):
    net, rng = draw(seed, cuba=seed % 2 == 0, depth=2, recurrent=True)
    net = with_neurons(net, reset="subtract")
    lowered = lower(net)
    assert lowered.custom_layers == [la.name for la in net.layers]
    stats = assert_lava_matches(net, spikes(rng, net, steps=16))
    assert stats["spikes"] > 0


@needs_lava
@pytest.mark.parametrize("seed", [50, 51])
def test_reset_timings_and_spike_tests_match(seed):
    net, rng = draw(seed, LOIHI_ALL_RESETS, depth=3, conv=seed % 2 == 1)
    net = with_neurons(net, layers=[net.layers[0].name], reset_timing="next_step",
                       spike_test=">=", reset="subtract")
    assert_lava_matches(with_dense_exp(net, 1), spikes(rng, net, steps=14))


@needs_lava
def test_discarding_zero_reset_and_readout_match():
    net, rng = draw(60, LOIHI_ALL_RESETS, depth=2, cuba=True)
    net = with_neurons(net, reset="zero", reset_timing="next_step", reset_discards_input=True)
    net = with_neurons(net, layers=[net.layers[-1].name], spiking=False, reset="none")
    lowered = lower(net)
    assert lowered.manifest["output"]["state"] == "v"
    assert_lava_matches(net, spikes(rng, net, steps=14))


@needs_lava
@pytest.mark.parametrize("reset", ["zero", "subtract"])  # Lava's LIF, then SnnLIF
def test_graded_input_delay_and_per_neuron_bias_match(reset):
    net, rng = draw(70, depth=2, cuba=True)
    net = with_neurons(net, layers=["fc1"], reset=reset)
    first = net.layers[0]
    bias = rng.integers(-4096, 4096, first.neuron.shape) << rng.integers(0, 8, first.neuron.shape)
    bias[:2] = [-4095, 4095 << 5]  # odd and large: no exponent shared by the layer
    layers = (dataclasses.replace(first, delay=2,
                                  neuron=dataclasses.replace(first.neuron, bias=bias)),
              *net.layers[1:])
    net = dataclasses.replace(net, layers=layers, input_bits=8)
    lowered = lower(net)
    assert lowered.manifest["layers"][0]["synapse"]["process"] == "DelayDense"
    assert lowered.manifest["layers"][0]["synapse"]["num_message_bits"] == 8
    assert lowered.manifest["layers"][0]["neuron"]["bias_exp"] == "params:fc1/bias_exp"
    assert lowered.manifest["layers"][0]["neuron"]["process"] == \
        {"zero": "LIF", "subtract": "SnnLIF"}[reset]
    x = rng.integers(-128, 128, (12, 2, *net.input_shape)).astype(np.float32)
    assert_lava_matches(net, x)


@needs_lava
@settings(max_examples=3, deadline=None, derandomize=True)
@given(seed=st.integers(0, 2**31 - 1), conv=st.booleans(), recurrent=st.booleans(),
       cuba=st.booleans(), exp=st.sampled_from([None, -2, 4]))
def test_random_networks_match_property(seed, conv, recurrent, cuba, exp):
    net, rng = draw(seed, LOIHI_ALL_RESETS, conv=conv, recurrent=recurrent, cuba=cuba, depth=1)
    if exp is not None:
        net = with_dense_exp(net, exp)
    assert_lava_matches(net, spikes(rng, net, steps=10))


@needs_lava
@pytest.mark.slow
@pytest.mark.parametrize("seed", range(100, 130))
def test_random_networks_match_sweep(seed):
    net, rng = draw(seed, LOIHI_ALL_RESETS, conv=seed % 3 == 0, recurrent=seed % 3 == 1,
                    cuba=seed % 2 == 0, depth=2)
    if seed % 4 == 0:
        net = with_dense_exp(net, 5)
    assert_lava_matches(net, spikes(rng, net, steps=20, batch=3))


# ----------------------------------------------------------------------------- backend

def test_backend_is_discovered_through_entry_point():
    backend = get_backend("lava")
    assert isinstance(backend, LavaBackend) and backend.name == "lava"


@needs_lava
def test_backend_available_and_hardware_status():
    backend = LavaBackend()
    assert backend.available() is None
    status = backend.hardware_available()
    assert status is None or "lava-loihi" in status
    if status is not None:
        assert LavaBackend(hardware=True).available() == status


# ----------------------------------------------------------------------------- registers

def one_layer(weight, target=LOIHI, **neuron) -> QNetwork:
    weight = np.asarray(weight)
    fields = dict(shape=(weight.shape[0],), decay_u=0, decay_v=4096, threshold=64 * 10, bias=0)
    fields.update(neuron)
    layer = QLayer(name="fc1", synapse=QDense(weight=weight), neuron=QNeuron(**fields))
    return QNetwork(input_shape=(weight.shape[1],), layers=(layer,), target=target)


def test_registers_are_exact():
    net = one_layer([[2, -4], [6, 8]], decay_u=4000, decay_v=4000, has_current=True,
                    threshold=64 * 131071, bias=-4096 << 7)
    entry = lower(net).manifest["layers"][0]
    neuron = entry["neuron"]
    assert (neuron["du"], neuron["dv"], neuron["vth"]) == (95, 96, 131071)
    assert (neuron["bias_mant"], neuron["bias_exp"]) == (-4096, 7)
    assert neuron["process"] == "LIF" and neuron["custom_reasons"] == []
    assert entry["synapse"]["sign_mode"] == "MIXED"
    no_current = lower(one_layer([[2]], decay_u=123)).manifest["layers"][0]["neuron"]
    assert no_current["du"] == 4095 and no_current["dv"] == 0


@pytest.mark.parametrize("change,message", [
    (dict(weight=[[3, -2]]), "MIXED"),
    (dict(weight=[[-256, -2]]), "INHIBITORY"),
    (dict(weight=[[256, 2]]), "EXCITATORY"),
    (dict(threshold=100), r"multiple of 2\*\*6"),
    (dict(threshold=64 << 17), "vth"),
    (dict(bias=(4095 << 7) + 2), "bias"),
    (dict(decay_v=0), "dv"),
    (dict(threshold=np.array([64, 128])), "threshold differs"),
])
def test_unrepresentable_values_raise_target_error(change, message):
    weight = change.pop("weight", [[2, -2], [4, 6]])
    with pytest.raises(TargetError, match=message) as info:
        lower(one_layer(weight, **change))
    assert "fc1" in str(info.value)


def test_target_with_other_arithmetic_is_refused():
    with pytest.raises(TargetError, match="Lava's fixed_pt arithmetic"):
        lower(one_layer([[2]], target=load_target("cpu")))


def test_conv_layout_and_custom_reasons():
    net, _ = draw(3, conv=True, depth=1)
    net = with_neurons(net, reset="subtract")
    manifest = lower(net).manifest
    conv, fc = manifest["layers"]
    c, h, w = net.layers[0].neuron.shape
    assert conv["neuron"]["lava_shape"] == [w, h, c] and conv["neuron"]["lava_axes"] == [2, 1, 0]
    assert fc["synapse"]["flatten_input"] is True
    assert conv["neuron"]["custom_reasons"] == ["reset='subtract'"]
    assert manifest["custom_neuron"]["layers"] == ["conv1", "fc1"]
    assert "microcode" in manifest["custom_neuron"]["note"]


def test_unsupported_structures_raise():
    net, _ = draw(4, conv=True, depth=1)
    conv = net.layers[0]
    with pytest.raises(TargetError, match="ignores weight_exp"):
        lower(dataclasses.replace(net, layers=(dataclasses.replace(
            conv, synapse=dataclasses.replace(conv.synapse, weight_exp=1)), net.layers[1])))
    with pytest.raises(UnsupportedError, match="delays on convolutions"):
        lower(dataclasses.replace(net, layers=(dataclasses.replace(conv, delay=1),
                                               net.layers[1])))


# ----------------------------------------------------------------------------- mapping

def test_mapping_report_of_small_network():
    net, _ = draw(5, conv=True, recurrent=True, depth=2)
    report = map_to_cores(net)
    assert report.cores_used == len(net.layers) == len(report.cores)
    data = report.as_dict()
    assert data["limits"]["neurons"] == LOIHI.resources.neurons_per_core
    fc1 = report.layer("fc1")
    w, rec = net.layers[1].synapse.weight, net.layers[1].recurrent.weight
    assert fc1.synapses == int((w != 0).sum() + (rec != 0).sum())
    assert fc1.memory_bits == fc1.synapses * 9
    assert fc1.max_fan_out == int((net.layers[2].synapse.weight != 0).any(axis=0).sum()
                                  + (rec != 0).any(axis=0).sum())


def test_large_layer_is_split_across_cores():
    report = map_to_cores(one_layer(np.full((100, 4000), 2)))
    layer = report.layer("fc1")
    assert layer.cores == 4 and layer.split_by == ["memory_bits"]
    assert all(c.memory_bits <= LOIHI.resources.synaptic_memory_bits_per_core
               for c in report.cores)
    assert sum(c.neurons for c in report.cores) == 100


def test_network_that_does_not_fit_names_layer_and_limit():
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
    trace = LavaBackend().run(net, spikes(rng, net, steps=steps, batch=batch))
    golden = emulate(net, spikes(rng, net, steps=steps, batch=batch))
    for name, states in golden.layers.items():
        for state, want in states.items():
            assert trace.layers[name][state].shape == want.shape
