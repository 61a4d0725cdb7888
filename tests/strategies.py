"""Random fixed-point networks for property tests of the emulator and every backend.

``random_qnetwork(rng, target, ...)`` draws a valid :class:`QNetwork` whose every value is
representable on ``target`` (weights on the target's grid, thresholds and biases as mantissa <<
exponent, decays in range), so backends can be compared with the emulator bit for bit.
"""

from __future__ import annotations

import numpy as np

from snn_compile.ir.fixed import QConv, QDense, QLayer, QNetwork, QNeuron
from snn_compile.targets import Target


def _weights(rng, target: Target, shape, scale=1.0) -> np.ndarray:
    top = (1 << target.weights.bits) - 1
    w = rng.integers(-top - 1, top + 1, size=shape)
    w = np.where(rng.random(shape) < 0.3, 0, w)
    w = np.rint(w * scale).astype(np.int64)
    if target.weights.mixed_sign_even:
        w = w & ~1  # Lava keeps only even weights when both signs occur
    return w


def _threshold(rng, target: Target, shape, per_neuron: bool):
    """Thresholds of the order of a few input spikes' worth of weight."""
    fmt = target.neuron
    unit = 1 << (target.weights.bits + target.neuron.activation_shift - fmt.threshold_shift)
    top = min((1 << fmt.threshold_mant_bits) - 1, 3 * unit)
    mant = rng.integers(1, top + 1, size=shape if per_neuron else ())
    return mant << fmt.threshold_shift


def _bias(rng, target: Target, shape, per_neuron: bool):
    fmt = target.neuron
    top = min(1 << (fmt.bias_mant_bits - 1), 1 << 10)
    mant = rng.integers(-top, top, size=shape if per_neuron else ())
    exp = int(rng.integers(0, fmt.bias_exp_max + 1))
    return mant << exp


def _neuron(rng, target: Target, shape, *, cuba: bool, spiking=True, reset=None) -> QNeuron:
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
                             neuron=_neuron(rng, target, shape, cuba=cuba), source=None))
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
                             neuron=_neuron(rng, target, (n_out,), cuba=cuba)))
        source, n_in = name, n_out
    return QNetwork(input_shape=input_shape, layers=tuple(layers), target=target)


def random_spikes(rng: np.random.Generator, net: QNetwork, steps: int, batch: int,
                  rate: float = 0.3) -> np.ndarray:
    """Bernoulli input spikes [T, B, *input_shape] as float32 0/1."""
    shape = (steps, batch, *net.input_shape)
    return (rng.random(shape) < rate).astype(np.float32)
