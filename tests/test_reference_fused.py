"""The float reference's fused neuron steps (C) equal its torch definition bit for bit."""

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from snn_compile.ir.graph import Graph
from snn_compile.ir.nodes import IF, LI, LIF, Affine, Conv2d, CubaLIF, Flatten, Input, Output
from snn_compile.reference import fused_available, simulate, torch_threads

pytestmark = pytest.mark.skipif(not fused_available(), reason="no C compiler")


def _value(rng, shape, per_neuron, low, high):
    return rng.uniform(low, high, size=shape if per_neuron else ()).astype(np.float32)


def random_neuron(rng, name, shape):
    """Any neuron type with any reset rule, spike test, bias, multi-spike count and floor."""
    kind = rng.choice(["LIF", "IF", "CubaLIF", "LI"])
    per = bool(rng.random() < 0.5)
    bias = _value(rng, shape, per, -0.3, 0.3) if rng.random() < 0.5 else 0.0
    if kind == "LI":
        return LI(name=name, shape=shape, beta=_value(rng, shape, per, 0.5, 1.0), bias=bias)
    multi = rng.random() < 0.25
    fields = dict(name=name, shape=shape, threshold=_value(rng, shape, per, 0.2, 1.5), bias=bias,
                  reset=str(rng.choice(["zero", "subtract", "none"])),
                  reset_timing="immediate" if multi else str(
                      rng.choice(["same_step", "next_step", "immediate"])),
                  spike_test=str(rng.choice([">", ">="])),
                  max_spikes=(int(rng.integers(2, 6)) if rng.random() < 0.7 else None)
                  if multi else 1,
                  v_floor=-_value(rng, shape, per, 0.0, 1.0) if rng.random() < 0.3 else None)
    if fields["reset"] == "zero" and not multi and fields["reset_timing"] != "immediate":
        fields["reset_discards_input"] = bool(rng.random() < 0.5)
    if kind == "LIF":
        return LIF(beta=_value(rng, shape, per, 0.3, 1.0), **fields)
    if kind == "IF":
        return IF(**fields)
    return CubaLIF(alpha=_value(rng, shape, per, 0.2, 0.9), beta=_value(rng, shape, per, 0.3, 1.0),
                   **fields)


def random_graph(rng) -> Graph:
    """input -> (conv ->) dense layers of random neurons, a recurrent edge and a skip edge."""
    nodes, edges = [], []
    conv = rng.random() < 0.3
    if conv:
        in_shape = (2, 6, 6)
        nodes += [Input(name="input", shape=in_shape),
                  Conv2d(name="conv", weight=rng.normal(0, 0.6, (3, 2, 3, 3)).astype(np.float32),
                         bias=rng.normal(0, 0.1, 3).astype(np.float32)),
                  random_neuron(rng, "n0", (3, 4, 4)), Flatten(name="flat")]
        edges += [("input", "conv"), ("conv", "n0"), ("n0", "flat")]
        prev, n_prev = "flat", 48
    else:
        n_prev = int(rng.integers(3, 12))
        nodes.append(Input(name="input", shape=(n_prev,)))
        prev = "input"
    layers = int(rng.integers(1, 4))
    for i in range(1, layers + 1):
        n = int(rng.integers(2, 9))
        w = rng.normal(0, 1.2 / np.sqrt(n_prev), (n, n_prev)).astype(np.float32)
        nodes += [Affine(name=f"fc{i}", weight=w, bias=rng.normal(0, 0.2, n).astype(np.float32)),
                  random_neuron(rng, f"n{i}", (n,))]
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"n{i}")]
        spiking = not isinstance(nodes[-1], LI)
        if i == 1 and spiking and rng.random() < 0.5:  # recurrence through a delayed edge
            nodes.append(Affine(name="rec", weight=rng.normal(0, 0.5, (n, n)).astype(np.float32)))
            edges += [(f"n{i}", "rec", 1), ("rec", f"n{i}")]
        if i == layers and i > 1 and rng.random() < 0.5:  # two inputs into one neuron
            nodes.append(Affine(name="skip", weight=rng.normal(0, 0.5, (n, n_first)).astype(
                np.float32)))
            edges += [(first, "skip"), ("skip", f"n{i}")]
        if i == 1:
            first, n_first = f"n{i}", n
        if not spiking and i < layers:  # LI only as the readout
            nodes[-1] = LIF(name=f"n{i}", shape=(n,), beta=np.float32(0.9))
        prev, n_prev = f"n{i}", n
    nodes.append(Output(name="output"))
    edges.append((prev, "output"))
    return Graph(tuple(nodes), tuple(edges))


def _inputs(rng, graph, steps, batch):
    shape = graph.inputs[0].shape
    x = (rng.random((steps, batch, *shape)) < 0.4).astype(np.float32)
    return x * rng.uniform(0.5, 2.0, size=x.shape).astype(np.float32)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1))
def test_fused_steps_equal_the_torch_definition(seed):
    rng = np.random.default_rng(seed)
    graph = random_graph(rng)
    x = _inputs(rng, graph, int(rng.integers(3, 20)), int(rng.integers(1, 5)))
    fused, plain = simulate(graph, x, fused=True), simulate(graph, x, fused=False)
    assert fused.layers.keys() == plain.layers.keys()
    for name, states in plain.layers.items():
        for key, want in states.items():
            got = fused.layers[name][key]
            assert got.dtype == want.dtype == np.float32
            assert got.tobytes() == want.tobytes(), f"{name}.{key}"  # bit for bit (signed 0s)
    assert fused.output.tobytes() == plain.output.tobytes()


def test_threads_are_set_for_the_run_only():
    import torch

    before = torch.get_num_threads()
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
