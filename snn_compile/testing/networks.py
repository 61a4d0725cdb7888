"""Random fixed-point networks whose every value is representable on a target.

* :func:`random_qnetwork` draws a chain (dense/conv, self-recurrence, CUBA, large weights that
  drive states into wrap and saturation), the networks of the 108-network guard
  (``benchmarks/golden_traces.py``): the same seeds draw the same networks as before the graph IR.
* :func:`random_network` draws a graph with every feature of the rule table: several
  projections into one population (skip connections, merging branches), elementwise shortcuts,
  delays, a synaptic-current bias, graded input, a non-spiking readout, and wrap/saturation.

Weights lie on the target's grid, thresholds and biases are ``mantissa << exponent``, decays lie
in range; so a backend that runs a network at all must agree with the emulator bit for bit.
"""

from __future__ import annotations

import numpy as np

from ..datatypes import BINARY, IntType
from ..ir.chain import QConv, QDense, QLayer, chain
from ..ir.fixed import ConvGeometry, QInput, QNetwork, QNeuron, QPopulation, QProjection
from ..targets import Target


def _weights(rng, target: Target, shape, scale=1.0) -> np.ndarray:
    top = target.weights.type.max
    w = rng.integers(-top - 1, top + 1, size=shape)
    w = np.where(rng.random(shape) < 0.3, 0, w)
    w = np.rint(w * scale).astype(np.int64)
    if target.weights.mixed_sign_even:
        w = w & ~1  # Lava keeps only even weights when both signs occur
    return w


def _threshold(rng, target: Target, shape, per_neuron: bool):
    """Thresholds of the order of a few input spikes' worth of weight."""
    fmt = target.neuron
    unit = 1 << (target.weights.type.bits - 1 + fmt.activation_shift - fmt.threshold_shift)
    top = min(fmt.threshold.max, 3 * unit)
    mant = rng.integers(1, top + 1, size=shape if per_neuron else ())
    return mant << fmt.threshold_shift


def _bias(rng, target: Target, shape, per_neuron: bool):
    fmt = target.neuron
    top = min(1 << (fmt.bias.bits - 1), 1 << 10)
    mant = rng.integers(-top, top, size=shape if per_neuron else ())
    exp = int(rng.integers(0, fmt.bias_exp_max + 1))
    return mant << exp


def random_neuron(rng, target: Target, shape, *, cuba: bool, spiking=True,
                  reset=None) -> QNeuron:
    fmt, feats = target.neuron, target.features
    per_neuron = target.weights.scale_granularity == "neuron"
    lo_u, hi_u = fmt.u_decay_range
    lo_v, hi_v = fmt.v_decay_range
    resets = list(feats.reset_modes) + list(feats.custom_reset_modes)
    return QNeuron(
        shape=shape,
        decay_u=int(rng.integers(max(lo_u, 1), hi_u + 1)) if cuba else 0,
        decay_v=int(rng.integers(lo_v, hi_v + 1)),
        threshold=_threshold(rng, target, shape, per_neuron),
        bias=_bias(rng, target, shape, per_neuron) if rng.random() < 0.5 else 0,
        reset=reset or str(rng.choice(resets)),
        reset_timing=str(rng.choice(feats.reset_timings)),
        spike_test=str(rng.choice(feats.spike_tests)),
        spiking=spiking,
        has_current=cuba,
    )


def random_qnetwork(rng: np.random.Generator, target: Target, *, conv: bool = False,
                    recurrent: bool = False, cuba: bool = False, depth: int = 2,
                    weight_scale: float = 1.0) -> QNetwork:
    """A random chain network. ``weight_scale`` > 1 drives states into wrap/saturation."""
    layers = []
    source = None
    if conv:
        in_shape = (int(rng.integers(1, 3)), int(rng.integers(5, 9)), int(rng.integers(5, 9)))
        c_out = int(rng.integers(2, 4))
        k = int(rng.integers(2, 4))
        syn = QConv(weight=_weights(rng, target, (c_out, in_shape[0], k, k), weight_scale),
                    in_shape=in_shape, stride=(int(rng.integers(1, 3)),) * 2,
                    padding=(int(rng.integers(0, 2)),) * 2)
        shape = syn.out_shape
        layers.append(QLayer(name="conv1", synapse=syn,
                             neuron=random_neuron(rng, target, shape, cuba=cuba), source=None))
        source = "conv1"
        n_in = int(np.prod(shape))
        input_shape = in_shape
    else:
        n_in = int(rng.integers(3, 20))
        input_shape = (n_in,)
    for i in range(depth):
        n_out = int(rng.integers(2, 16))
        exp_lo, exp_hi = target.weights.exp_min, target.weights.exp_max
        syn = QDense(weight=_weights(rng, target, (n_out, n_in), weight_scale),
                     weight_exp=int(rng.integers(max(exp_lo, -2), min(exp_hi, 2) + 1)))
        rec = None
        if recurrent and i == 0:
            rec = QDense(weight=_weights(rng, target, (n_out, n_out), weight_scale),
                         weight_exp=syn.weight_exp)
        name = f"fc{i + 1}"
        layers.append(QLayer(name=name, synapse=syn, recurrent=rec, source=source,
                             neuron=random_neuron(rng, target, (n_out,), cuba=cuba)))
        source, n_in = name, n_out
    return chain(input_shape, layers, target)


def random_spikes(rng: np.random.Generator, net: QNetwork, steps: int, batch: int,
                  rate: float = 0.3) -> np.ndarray:
    """Bernoulli input spikes [T, B, *input_shape] as float32 0/1 (graded values for a graded
    input: spikes times uniform values within the input range)."""
    shape = (steps, batch, *net.input_shape)
    spikes = (rng.random(shape) < rate).astype(np.float32)
    if not net.input.binary:
        lo, hi = net.input.value_range
        values = rng.integers(lo, hi + 1, size=shape) / net.input.scale
        spikes = (spikes * values).astype(np.float32)
    return spikes


# ----------------------------------------------------------------------------- graphs

FEATURES = ("skip", "merge", "elementwise", "delay", "input_bias", "graded_input",
            "readout", "recurrent", "feedback", "cuba", "conv", "overload", "multi_spike",
            "membrane_floor", "discards_input")


def _extras(rng, target: Target, neuron: QNeuron, want: dict, spiking: bool) -> QNeuron:
    """Multi-spike output and a membrane floor, where drawn and the target has them."""
    from dataclasses import replace

    feats = target.features
    if spiking and want.get("multi_spike") and feats.max_spikes > 1 and rng.random() < 0.6:
        reset = str(rng.choice([r for r in ("subtract", "zero")
                                if r in feats.reset_modes + feats.custom_reset_modes]))
        neuron = replace(neuron, max_spikes=int(rng.integers(2, min(feats.max_spikes, 9) + 1)),
                         reset=reset, reset_timing="immediate", spike_test=">=")
    if want.get("discards_input") and neuron.reset == "zero" and neuron.max_spikes == 1 \
            and neuron.reset_timing != "immediate":
        neuron = replace(neuron, reset_discards_input=True)  # snnTorch Synaptic's zero reset
    if spiking and want.get("membrane_floor") and feats.membrane_floor and rng.random() < 0.6:
        neuron = replace(neuron, v_floor=-np.asarray(neuron.threshold))
    return neuron


def random_network(rng: np.random.Generator, target: Target, *, features=FEATURES,
                   size: int = 3) -> QNetwork:
    """A random graph network drawing each feature in ``features`` with probability 1/2.

    Structure: an input, ``size`` dense populations each fed by the previous one; a skip
    projection from an earlier population (``skip``), a second branch merging into the last
    population (``merge``), an elementwise shortcut between equal-size populations
    (``elementwise``), extra delays on some projections (``delay``), a bias on the synaptic
    current (``input_bias``, where the target has one), graded input (``graded_input``), a
    non-spiking readout at the end (``readout``), self-recurrence (``recurrent``), CUBA neurons
    (``cuba``), a convolution first (``conv``) and large weights (``overload``).
    """
    want = {f: bool(rng.random() < 0.5) for f in features}
    scale = float(rng.choice([8.0, 60.0])) if want.get("overload") else 1.0
    feats = target.features
    sd = target.timing.synapse_delay
    graded = want.get("graded_input") and feats.graded_input
    in_dtype = IntType(8) if graded else BINARY
    pops, projs = [], []
    exp_lo, exp_hi = target.weights.exp_min, target.weights.exp_max

    def exp():
        return int(rng.integers(max(exp_lo, -2), min(exp_hi, 2) + 1))

    def delay(extra_ok=True):
        extra = int(rng.integers(0, 3)) if want.get("delay") and extra_ok else 0
        return sd + min(extra, feats.max_synapse_delay)

    cuba = bool(want.get("cuba"))
    if want.get("conv"):
        in_shape = (int(rng.integers(1, 3)), int(rng.integers(5, 8)), int(rng.integers(5, 8)))
        c_out, k = int(rng.integers(2, 4)), int(rng.integers(2, 4))
        geo = ConvGeometry(in_shape=in_shape, stride=(int(rng.integers(1, 3)),) * 2,
                           padding=(int(rng.integers(0, 2)),) * 2)
        w = _weights(rng, target, (c_out, in_shape[0], k, k), scale)
        shape = geo.out_shape(w.shape)
        pops.append(QPopulation(name="p0", neuron=random_neuron(rng, target, shape, cuba=cuba)))
        projs.append(QProjection(name="input->p0", source="input", target="p0", kind="conv",
                                 weight=w, delay=sd, conv=geo))
        prev, prev_shape = "p0", shape
    else:
        prev, prev_shape = "input", (int(rng.integers(3, 16)),)
        in_shape = prev_shape
    n_prev = int(np.prod(prev_shape))
    sizes = {"input": n_prev} if prev == "input" else {"p0": n_prev}
    chain_names = [prev]
    for i in range(1, size + 1):
        name = f"p{i}"
        same = want.get("elementwise") and i >= 2 and rng.random() < 0.5
        n_out = sizes[chain_names[-1]] if same else int(rng.integers(2, 12))
        last = i == size
        spiking = not (last and want.get("readout"))
        neuron = random_neuron(rng, target, (n_out,), cuba=cuba, spiking=spiking,
                               reset="none" if not spiking else None)
        neuron = _extras(rng, target, neuron, want, spiking)
        bias = None
        if want.get("input_bias") and feats.synapse_bias and cuba and rng.random() < 0.5:
            bias = rng.integers(-64, 64, size=(n_out,))
        pops.append(QPopulation(name=name, neuron=neuron, input_bias=bias))
        e = exp()
        projs.append(QProjection(name=f"{prev}->{name}", source=prev, target=name,
                                 kind="dense", weight=_weights(rng, target,
                                                               (n_out, sizes[prev]), scale),
                                 weight_exp=e, delay=delay()))
        if same and rng.random() < 0.7:
            src = chain_names[-1]
            projs.append(QProjection(name=f"{src}=>{name}", source=src, target=name,
                                     kind="elementwise",
                                     weight=_weights(rng, target, (n_out,), scale) | 2,
                                     weight_exp=e, delay=delay()))
        if want.get("skip") and len(chain_names) >= 2 and rng.random() < 0.6:
            src = chain_names[-2]
            projs.append(QProjection(name=f"{src}~>{name}", source=src, target=name,
                                     kind="dense",
                                     weight=_weights(rng, target, (n_out, sizes[src]), scale),
                                     weight_exp=e, delay=delay()))
        if want.get("recurrent") and feats.recurrent and spiking and rng.random() < 0.5:
            projs.append(QProjection(name=f"{name}.recurrent", source=name, target=name,
                                     kind="dense",
                                     weight=_weights(rng, target, (n_out, n_out), scale),
                                     weight_exp=e, delay=max(1, sd)))
        sizes[name] = n_out
        chain_names.append(name)
        prev = name
    if want.get("merge") and size >= 2:
        name = "branch"
        n_b = int(rng.integers(2, 8))
        pops.append(QPopulation(name=name, neuron=random_neuron(rng, target, (n_b,), cuba=cuba)))
        first = chain_names[1] if len(chain_names) > 1 else chain_names[0]
        projs.append(QProjection(name=f"{first}->{name}", source=first, target=name,
                                 kind="dense", weight=_weights(rng, target, (n_b, sizes[first]),
                                                               scale), delay=delay()))
        last = chain_names[-1]
        projs.append(QProjection(name=f"{name}->{last}", source=name, target=last,
                                 kind="dense", weight=_weights(rng, target, (sizes[last], n_b),
                                                               scale), delay=delay()))
    last = chain_names[-1]
    if want.get("feedback") and feats.recurrent and len(chain_names) >= 3 \
            and not want.get("readout"):
        early = chain_names[1]
        projs.append(QProjection(name=f"{last}<-{early}", source=last, target=early,
                                 kind="dense", weight=_weights(rng, target, (sizes[early],
                                                                            sizes[last]), scale),
                                 delay=max(1, sd) + int(rng.integers(0, 2))))
    inp = QInput(shape=in_shape, dtype=in_dtype, scale=100.0 if graded else 1.0)
    return QNetwork(input=inp, populations=tuple(pops), projections=tuple(projs),
                    output=chain_names[-1], target=target, metadata={"features": sorted(
                        f for f, on in want.items() if on)})
