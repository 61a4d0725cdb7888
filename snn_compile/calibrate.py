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

from .compare import pad_for_latency
from .emulator.engine import population_input, run_cycle, run_population
from .ir.fixed import QNetwork, QPopulation
from .ir.graph import Graph
from .quantize import Quantized, quantize
from .reference import simulate
from .targets import Target


def balance(graph: Graph, target: Target, data: np.ndarray, *, steps: int = 8,
            calibration: np.ndarray | None = None) -> Quantized:
    """Quantize ``graph`` for ``target`` and balance its thresholds on ``data`` [T, B, ...].

    ``calibration`` (default: ``data``) is passed to the quantizer for the state ranges.
    Each layer's report gains a note with the chosen offsets and the agreement before/after.
    Populations on a cycle (recurrence) keep their thresholds.
    """
    quantized = quantize(graph, target, data if calibration is None else calibration)
    net = quantized.network
    float_trace = simulate(quantized.float_graph or graph, data)
    outputs = {net.input.name: net.input.encode(pad_for_latency(data, net))}
    T, B = outputs[net.input.name].shape[:2]
    reports = {r.name: r for r in quantized.report}
    for group in net.components:
        if len(group) > 1 or net.is_cyclic(group):
            for name in group:
                reports[name].notes.append("thresholds not balanced: the layer is recurrent")
            for name, states in run_cycle(net, group, outputs, T, B, "spikes").items():
                outputs[name] = states["spikes"]
            continue
        pop = net.population(group[0])
        a = population_input(net, pop, outputs, T, B)
        if pop.neuron.spiking:
            wanted = np.asarray(float_trace.layers[pop.name]["spikes"]) > 0
            pop = _balance_layer(net, pop, a, wanted, steps, reports[pop.name])
            net = net.with_population(pop)
        outputs[pop.name] = run_population(net, pop, a, "spikes")["spikes"]
    return dataclasses.replace(quantized, network=net)


def _balance_layer(net: QNetwork, pop: QPopulation, a: np.ndarray, wanted: np.ndarray,
                   steps: int, report) -> QPopulation:
    """The population with the threshold offsets that maximise agreement with ``wanted``."""
    fmt = net.target.neuron
    shape, shift = pop.shape, fmt.threshold_shift
    mant = np.broadcast_to(pop.neuron.threshold, shape).reshape(-1) >> shift
    top = fmt.threshold.max
    offsets = np.array(sorted(range(-steps, steps + 1), key=abs))  # ties go to the smallest |d|
    scores = np.stack([_agreement(net, pop, np.clip(mant + d, 1, top) << shift, a, wanted)
                       for d in offsets])  # [candidates, neurons]
    if net.target.weights.scale_granularity == "neuron":
        best = offsets[scores.argmax(axis=0)]
        after = scores.max(axis=0).mean()
    else:
        pick = int(scores.mean(axis=1).argmax())
        best, after = np.full(mant.shape, offsets[pick]), scores[pick].mean()
    report.notes.append(f"thresholds balanced: mantissa offsets {best.min():+d}..{best.max():+d}, "
                        f"sample spike agreement {100 * scores[0].mean():.3f}% -> "
                        f"{100 * after:.3f}%")
    return _with_threshold(pop, (np.clip(mant + best, 1, top) << shift).reshape(shape))


def _agreement(net: QNetwork, pop: QPopulation, thr: np.ndarray, a: np.ndarray,
               wanted: np.ndarray) -> np.ndarray:
    """Per-neuron share of (step, sample) spike entries equal to the float reference's."""
    spikes = run_population(net, _with_threshold(pop, thr.reshape(pop.shape)), a,
                            "spikes")["spikes"]
    steps = wanted.shape[0]
    got = spikes[pop.lag:pop.lag + steps].reshape(wanted.shape) > 0
    return (got == wanted).reshape(steps * wanted.shape[1], -1).mean(axis=0)


def _with_threshold(pop: QPopulation, thr: np.ndarray) -> QPopulation:
    flat = thr.reshape(-1)
    value = np.array(flat[0]) if np.all(flat == flat[0]) else thr
    return dataclasses.replace(pop, neuron=dataclasses.replace(pop.neuron, threshold=value))
