"""Threshold balancing: post-training quantization tuned for float/fixed spike agreement.

When quantization-aware training (:mod:`snn_compile.qat`) is not wanted, :func:`balance` improves
a post-training quantized network on sample data. The quantizer lands each threshold exactly on
its grid, but weight rounding and decay rounding shift the membrane slightly, and a neuron close
to its threshold then fires a step early or late. Balancing searches, layer by layer from the
input, the threshold mantissa ``m`` among ``m + d`` for ``|d| <= steps``, i.e. the ratio of the
quantized weights to the threshold::

    thr_int(d) = (m + d) << threshold_shift        (a relative weight scale of m / (m + d))

and keeps the ``d`` with the highest measured spike agreement between the float reference and
the emulator on the sample data (ties: the smallest ``|d|``). Each layer is judged on the input
that the already balanced layers before it produce on the target. Where the target has a
threshold per neuron (``weights.scale_granularity = "neuron"``) every neuron gets its own ``d``
(neurons of a feed-forward layer do not interact); otherwise the layer shares one.

The agreement is measured, not guaranteed: judge it on data not used for balancing.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .backends.emulator.engine import encode_input, feedforward_input, run_neurons
from .compare import layer_offsets, pad_for_latency
from .ir.fixed import QLayer
from .ir.graph import Graph
from .quantize import Quantized, quantize
from .reference import simulate
from .targets import Target


def balance(graph: Graph, target: Target, data: np.ndarray, *, steps: int = 8,
            calibration: np.ndarray | None = None) -> Quantized:
    """Quantize ``graph`` for ``target`` and balance its thresholds on ``data`` [T, B, ...].

    ``calibration`` (default: ``data``) is passed to the quantizer for the state ranges.
    Each layer's report gains a note with the chosen offsets and the agreement before/after.
    """
    quantized = quantize(graph, target, data if calibration is None else calibration)
    net = quantized.network
    float_trace = simulate(graph, data)
    offsets = layer_offsets(net)
    x = encode_input(net, pad_for_latency(data, net))
    layers = []
    for layer, report in zip(net.layers, quantized.report):
        a = feedforward_input(layer, x, target, target.timing.synapse_delay + layer.delay)
        if layer.neuron.spiking:
            wanted = np.asarray(float_trace.layers[layer.name]["spikes"]) > 0
            layer = _balance_layer(layer, a, target, wanted, offsets[layer.name], steps, report)
        layers.append(layer)
        x = run_neurons(layer, a, target)["spikes"].astype(np.int64)
    balanced = dataclasses.replace(net, layers=tuple(layers))
    return Quantized(network=balanced, report=quantized.report)


def _balance_layer(layer: QLayer, a: np.ndarray, target: Target, wanted: np.ndarray,
                   offset: int, steps: int, report) -> QLayer:
    """The layer with the threshold offsets that maximise agreement with ``wanted`` spikes."""
    shape, shift = layer.neuron.shape, target.neuron.threshold_shift
    mant = np.broadcast_to(layer.neuron.threshold, shape).reshape(-1) >> shift
    top = (1 << target.neuron.threshold_mant_bits) - 1
    offsets = np.array(sorted(range(-steps, steps + 1), key=abs))  # ties go to the smallest |d|
    scores = np.stack([_agreement(layer, np.clip(mant + d, 1, top) << shift, a, target, wanted,
                                  offset) for d in offsets])  # [candidates, neurons]
    if target.weights.scale_granularity == "neuron":
        best = offsets[scores.argmax(axis=0)]
        after = scores.max(axis=0).mean()
    else:
        pick = int(scores.mean(axis=1).argmax())
        best, after = np.full(mant.shape, offsets[pick]), scores[pick].mean()
    report.notes.append(f"thresholds balanced: mantissa offsets {best.min():+d}..{best.max():+d}, "
                        f"sample spike agreement {100 * scores[0].mean():.3f}% -> "
                        f"{100 * after:.3f}%")
    thr = (np.clip(mant + best, 1, top) << shift).reshape(shape)
    return _with_threshold(layer, thr)


def _agreement(layer: QLayer, thr: np.ndarray, a: np.ndarray, target: Target,
               wanted: np.ndarray, offset: int) -> np.ndarray:
    """Per-neuron share of (step, sample) spike entries equal to the float reference's."""
    spikes = run_neurons(_with_threshold(layer, thr.reshape(layer.neuron.shape)), a,
                         target)["spikes"]
    steps = wanted.shape[0]
    got = spikes[offset:offset + steps].reshape(wanted.shape) > 0
    return (got == wanted).reshape(steps * wanted.shape[1], -1).mean(axis=0)


def _with_threshold(layer: QLayer, thr: np.ndarray) -> QLayer:
    flat = thr.reshape(-1)
    value = np.array(flat[0]) if np.all(flat == flat[0]) else thr
    return dataclasses.replace(layer, neuron=dataclasses.replace(layer.neuron, threshold=value))
