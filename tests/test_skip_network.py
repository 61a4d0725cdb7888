"""The skip-connection network of issue 10 on every backend, bit for bit, in any order.

A convolution block with an identity shortcut around its second convolution (c1 -> c2 by a
convolution and by an elementwise projection), then two populations fed by different parts of
the network (``a`` from the block's output, ``b`` from its first population) whose spikes both
feed the output population. The emulator is the reference; Lava (loihi2), HLS csim (xc7z020)
and ONNX (both) must reproduce every spike, u and v; the same network with its populations and
projections listed in a shuffled order gives identical traces.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from snn_compile.backend import get_backend
from snn_compile.compare import traces_identical
from snn_compile.emulator import run_network
from snn_compile.ir.fixed import ConvGeometry, QInput, QNetwork, QPopulation, QProjection
from snn_compile.targets import load_target
from snn_compile.testing.networks import _weights, random_neuron, random_spikes


def skip_network(target_name: str, seed: int = 0) -> QNetwork:
    target = load_target(target_name)
    rng = np.random.default_rng(seed)
    sd = target.timing.synapse_delay

    def neuron(shape):
        return random_neuron(rng, target, shape, cuba=False, reset="zero")

    geo_in = ConvGeometry(in_shape=(1, 6, 6), padding=(1, 1))
    geo_c = ConvGeometry(in_shape=(2, 6, 6), padding=(1, 1))
    shortcut = np.full((2, 6, 6), 2 * (target.weights.type.max // 4))  # even: Lava's grid
    pops = [QPopulation(name=n, neuron=neuron(s)) for n, s in
            (("c1", (2, 6, 6)), ("c2", (2, 6, 6)), ("a", (8,)), ("b", (6,)), ("out", (4,)))]
    projs = [
        QProjection(name="conv1", source="input", target="c1", kind="conv", delay=sd,
                    weight=_weights(rng, target, (2, 1, 3, 3)), conv=geo_in),
        QProjection(name="conv2", source="c1", target="c2", kind="conv", delay=sd,
                    weight=_weights(rng, target, (2, 2, 3, 3)), conv=geo_c),
        QProjection(name="shortcut", source="c1", target="c2", kind="elementwise", delay=sd,
                    weight=shortcut),
        QProjection(name="fc_a", source="c2", target="a", kind="dense", delay=sd,
                    weight=_weights(rng, target, (8, 72))),
        QProjection(name="fc_b", source="c1", target="b", kind="dense", delay=sd,
                    weight=_weights(rng, target, (6, 72))),
        QProjection(name="a_out", source="a", target="out", kind="dense", delay=sd,
                    weight=_weights(rng, target, (4, 8))),
        QProjection(name="b_out", source="b", target="out", kind="dense", delay=sd,
                    weight=_weights(rng, target, (4, 6))),
    ]
    return QNetwork(input=QInput(shape=(1, 6, 6)), populations=tuple(pops),
                    projections=tuple(projs), output="out", target=target)


def shuffled(net: QNetwork, seed: int) -> QNetwork:
    rng = np.random.default_rng(seed)
    pops = [net.populations[i] for i in rng.permutation(len(net.populations))]
    projs = [net.projections[i] for i in rng.permutation(len(net.projections))]
    return net.replace(populations=tuple(pops), projections=tuple(projs))


SEEDS = {"loihi2": 6, "xc7z020": 0}  # draws in which every population spikes
CASES = [("loihi2", "lava"), ("loihi2", "onnx"), ("xc7z020", "hls"), ("xc7z020", "onnx")]


@functools.lru_cache(maxsize=None)
def case(target: str):
    net = skip_network(target, SEEDS[target])
    spikes = random_spikes(np.random.default_rng(1), net, steps=12, batch=3, rate=0.4)
    golden = run_network(net, spikes)
    assert all(golden.layers[p]["spikes"].any() for p in ("c1", "c2", "a", "b", "out")), \
        "every population spikes (else the test proves little)"
    return net, spikes, golden


@pytest.mark.parametrize("target", sorted(SEEDS))
def test_the_shortcut_and_the_merge_matter(target):
    """Removing the shortcut or one branch into ``out`` changes the output: the projections
    into one population are all summed."""
    net, spikes, golden = case(target)
    for drop in ("shortcut", "b_out"):
        cut = net.replace(projections=tuple(p for p in net.projections if p.name != drop))
        assert traces_identical(golden, run_network(cut, spikes)) is not None, drop


@pytest.mark.parametrize("target", sorted(SEEDS))
def test_shuffled_order_gives_identical_traces(target):
    net, spikes, golden = case(target)
    for seed in range(3):
        other = shuffled(net, seed)
        assert other.order == net.order
        assert traces_identical(golden, run_network(other, spikes)) is None


@pytest.mark.parametrize("target,backend", CASES)
def test_backend_matches_the_emulator_bit_for_bit(target, backend):
    net, spikes, golden = case(target)
    engine = get_backend(backend)
    if engine.available():
        pytest.skip(engine.available())
    for candidate in (net, shuffled(net, 7)):
        assert traces_identical(golden, engine.run(candidate, spikes)) is None
