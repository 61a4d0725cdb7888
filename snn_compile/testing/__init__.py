"""Helpers for users' own test suites: "quantized and float spikes match" as one assertion.

    from snn_compile.testing import assert_spikes_match
    assert_spikes_match("model.pt", "data.npz", target="loihi2")          # the default verdict
    assert_spikes_match("model.pt", "data.npz", target="cpu", min_recall=0.95,
                        max_accuracy_drop=1.0)

The default verdict fails dead and saturated layers and layers that reproduce less than half
of the spikes within one step (:mod:`snn_compile.check.verdict`); every threshold of the command
line is a keyword here, validated the same way. ``snn_compile.testing.conformance`` proves a
backend; ``snn_compile.testing.networks`` draws random fixed-point networks.
"""

from __future__ import annotations

from pathlib import Path

from ..check import CheckResult, Thresholds, run_check, summary_lines
from ..ir.graph import Graph

CALIBRATION_SAMPLES = 128


def _graph(model, input_shape) -> Graph:
    if isinstance(model, Graph):
        return model
    if isinstance(model, (str, Path)):
        from ..importers import load_model

        return load_model(model, input_shape=input_shape)
    from ..importers.snntorch import from_snntorch

    if input_shape is None:
        raise TypeError("pass input_shape=... with an nn.Module")
    return from_snntorch(model, input_shape)


def _data(data, graph: Graph):
    """(spikes, labels) from a path, an array or a tuple, validated like the CLI's data."""
    from ..data import check_data, load_data, output_classes

    shape, classes = graph.inputs[0].shape, output_classes(graph)
    if isinstance(data, (str, Path)):
        return load_data(data, shape, classes)
    spikes, labels = data if isinstance(data, tuple) else (data, None)
    return check_data(spikes, labels, input_shape=shape, classes=classes)


def check_model(model, data, *, target: str = "loihi2", input_shape=None,
                calibration=None, min_agreement: float | None = None,
                min_precision: float | None = None, min_recall: float | None = None,
                min_iou: float | None = None, min_class_agreement: float | None = None,
                max_accuracy_drop: float | None = None, require: dict | None = None,
                **options) -> CheckResult:
    """Quantize ``model`` for ``target`` and compare the emulator with the float model.

    ``model``: a model file path, a float IR Graph, or an snnTorch nn.Module (+ ``input_shape``).
    ``data``: an .npz path, a spikes array [T, B, ...], or (spikes, labels). ``calibration``
    (same forms) calibrates the quantizer; without it the first samples of ``data`` do and are
    not scored. ``require`` maps any layer metric to its minimum (as ``--require``, e.g.
    ``{"recall_tolerant": 0.9}``). ``options`` go to :func:`snn_compile.check.run_check` (``tolerance``,
    ``batch_size``, ``workers``, ...).
    """
    from ..data import check_thresholds
    from ..quantize import quantize
    from ..targets import load_target

    graph = _graph(model, input_shape)
    spikes, labels = _data(data, graph)
    base = check_thresholds(min_agreement, max_accuracy_drop, has_labels=labels is not None)
    layer = {k: v for k, v in (("precision", min_precision), ("recall", min_recall),
                               ("iou", min_iou)) if v is not None}
    layer.update(require or {})
    thresholds = Thresholds(min_agreement=base.min_agreement,
                            max_accuracy_drop=base.max_accuracy_drop,
                            min_class_agreement=min_class_agreement, layer=layer)
    first = 0
    if calibration is None:
        first = min(CALIBRATION_SAMPLES, spikes.shape[1] // 4)
        calib = spikes[:, :first] if first else spikes
    else:
        calib = _data(calibration, graph)[0]
    quantized = quantize(graph, load_target(target), calib)
    # the float graph after the float passes, as the command line checks against
    return run_check(quantized.float_graph, quantized.network, spikes, labels, thresholds,
                     first_sample=first, progress=False, **options)


def assert_spikes_match(model, data, **kwargs) -> CheckResult:
    """AssertionError with the per-layer summary unless the check passes (see
    :func:`check_model` for the arguments)."""
    result = check_model(model, data, **kwargs)
    if not result.passed:
        raise AssertionError("\n".join(result.failures + summary_lines(result.report)))
    return result
