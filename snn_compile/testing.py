"""Helpers for users' own test suites: "quantized and float spikes match" as one assertion."""

from __future__ import annotations

from pathlib import Path

from .check import CheckResult, run_check, summary_lines
from .data import check_thresholds
from .ir.graph import Graph
from .quantize import quantize
from .targets import load_target


def _graph(model, input_shape) -> Graph:
    if isinstance(model, Graph):
        return model
    if isinstance(model, (str, Path)):
        from .importers import load_model

        return load_model(model, input_shape=input_shape)
    from .importers.snntorch import from_snntorch

    if input_shape is None:
        raise TypeError("pass input_shape=... with an nn.Module")
    return from_snntorch(model, input_shape)


def _data(data, graph: Graph):
    """(spikes, labels) from a path, an array or a tuple, validated like the CLI's data."""
    from .data import check_data, load_data, output_classes

    shape, classes = graph.inputs[0].shape, output_classes(graph)
    if isinstance(data, (str, Path)):
        return load_data(data, shape, classes)
    spikes, labels = data if isinstance(data, tuple) else (data, None)
    return check_data(spikes, labels, input_shape=shape, classes=classes)


def check_model(model, data, *, target: str = "loihi2", input_shape=None,
                min_agreement: float | None = 1.0,
                max_accuracy_drop: float | None = None) -> CheckResult:
    """Quantize ``model`` for ``target`` (calibrated on ``data``) and compare with the float model.

    ``model``: a model file path, a float IR Graph, or an snnTorch nn.Module (+ ``input_shape``).
    ``data``: an .npz path, a spikes array [T, B, ...], or (spikes, labels).
    """
    graph = _graph(model, input_shape)
    spikes, labels = _data(data, graph)
    thresholds = check_thresholds(min_agreement, max_accuracy_drop, has_labels=labels is not None)
    net = quantize(graph, load_target(target), spikes[:, :128]).network
    return run_check(graph, net, spikes, labels, thresholds)


def assert_spikes_match(model, data, *, target: str = "loihi2", input_shape=None,
                        min_agreement: float = 1.0, max_accuracy_drop: float | None = None):
    """AssertionError with the per-layer summary unless every layer agrees enough."""
    result = check_model(model, data, target=target, input_shape=input_shape,
                         min_agreement=min_agreement, max_accuracy_drop=max_accuracy_drop)
    if not result.passed:
        raise AssertionError("\n".join(result.failures + summary_lines(result.report)))
    return result
