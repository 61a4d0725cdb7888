"""The verdict of a check: thresholds per metric, and rules no broken network can pass.

Always applied:

* **dead layer**: a layer that spikes in the float model but never in the fixed-point one;
* **saturated layer**: a fixed-point layer spiking in almost every entry (>= 95 %) where the
  float model does not (< 50 %);
* **exact level** (quantization-aware models): any differing spike.

Thresholds per layer metric (``Thresholds.layer``, ``{metric: minimum}``), defaulting to
:data:`DEFAULT_LAYER` (tolerant precision and recall of at least 0.5: half the spikes on each
side reproduced within the tolerance window) unless the user sets that metric; the entry
agreement (``min_agreement``, the share of equal (step, sample, neuron) entries, mostly silent
ones) only when asked. Network-level: ``min_class_agreement`` and ``max_accuracy_drop`` (points).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..errors import SnnCompileError

DEFAULT_LAYER = {"precision_tolerant": 0.5, "recall_tolerant": 0.5}
LAYER_METRICS = ("spike_agreement", "precision", "recall", "iou", "precision_tolerant",
                 "recall_tolerant", "count_correlation")
SATURATED, SATURATED_FLOAT = 0.95, 0.5


@dataclass
class Thresholds:
    min_agreement: float | None = None      # entry agreement of every layer (0..1)
    max_accuracy_drop: float | None = None  # accuracy points (percent)
    min_class_agreement: float | None = None
    layer: dict = field(default_factory=dict)  # metric -> minimum (see LAYER_METRICS)
    defaults: bool = True                   # apply DEFAULT_LAYER for metrics not set

    def __post_init__(self):
        for name in ("min_agreement", "min_class_agreement"):
            value = getattr(self, name)
            if value is not None and not _fraction(value):
                raise SnnCompileError(f"{name.replace('_', '-')} is a fraction in [0, 1]",
                                      value=value, hint="e.g. 0.99 for 99 %")
        if self.max_accuracy_drop is not None and not (
                isinstance(self.max_accuracy_drop, (int, float))
                and math.isfinite(self.max_accuracy_drop) and self.max_accuracy_drop >= 0):
            raise SnnCompileError("max-accuracy-drop is a non-negative number of points",
                                  value=self.max_accuracy_drop)
        for metric, value in self.layer.items():
            if metric not in LAYER_METRICS:
                raise SnnCompileError("unknown layer metric", value=metric,
                                      hint=f"use one of {', '.join(LAYER_METRICS)}")
            if not _fraction(value) and not (metric == "count_correlation"
                                              and isinstance(value, (int, float))
                                              and -1 <= value <= 1):
                raise SnnCompileError(f"the threshold of {metric} is a fraction in [0, 1]",
                                      value=value)

    def layer_minimums(self) -> dict:
        out = dict(DEFAULT_LAYER) if self.defaults else {}
        out.update(self.layer)
        if self.min_agreement is not None:
            out["spike_agreement"] = self.min_agreement
        return out

    def as_dict(self) -> dict:
        return {"min_agreement": self.min_agreement,
                "max_accuracy_drop": self.max_accuracy_drop,
                "min_class_agreement": self.min_class_agreement,
                "layer": self.layer_minimums()}


def _fraction(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and 0 <= value <= 1


def parse_requirement(text: str) -> tuple[str, float]:
    """``"recall_tolerant>=0.8"`` -> (metric, 0.8); SnnCompileError when malformed."""
    metric, sep, value = text.partition(">=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or metric.strip() not in LAYER_METRICS or number is None:
        raise SnnCompileError("--require takes METRIC>=VALUE", value=text,
                              hint=f"metrics: {', '.join(LAYER_METRICS)}")
    return metric.strip(), number


def failures(report: dict, th: Thresholds) -> list[dict]:
    """Every failed rule as ``{"case": <layer or network>, "rule": ..., "message": ...}``."""
    out = []

    def fail(case: str, rule: str, message: str):
        out.append({"case": case, "rule": rule, "message": message})

    exact = report["level"] == "exact"
    minimums = th.layer_minimums()
    for layer in report["layers"]:
        name = layer["name"]
        if layer["float_spikes"] > 0 and layer["fixed_spikes"] == 0:
            fail(name, "dead", f"layer {name}: dead in fixed point (0 spikes, float "
                               f"{layer['float_spikes']})")
        if layer["fixed_density"] >= SATURATED and layer["float_density"] < SATURATED_FLOAT:
            fail(name, "saturated", f"layer {name}: saturated in fixed point (spikes in "
                                    f"{100 * layer['fixed_density']:.1f}% of entries, float "
                                    f"{100 * layer['float_density']:.1f}%)")
        if exact and layer["spike_agreement"] < 1.0:
            fail(name, "exact", f"layer {name}: spike agreement "
                                f"{100 * layer['spike_agreement']:.3f}% < 100% (exact level)")
        for metric, minimum in minimums.items():
            value = layer.get(metric)
            if value is None:  # undefined (no spikes on either side): nothing to compare
                continue
            if value < minimum:
                fail(name, metric, f"layer {name}: {metric.replace('_', ' ')} {value:.4f} < "
                                   f"{minimum:.4f}")
    if th.min_class_agreement is not None and report["class_agreement"] < th.min_class_agreement:
        fail("classes", "class_agreement",
             f"class agreement {100 * report['class_agreement']:.2f}% < "
             f"{100 * th.min_class_agreement:.2f}%")
    if th.max_accuracy_drop is not None and "accuracy_drop" in report \
            and report["accuracy_drop"] > th.max_accuracy_drop:
        fail("accuracy", "accuracy_drop", f"accuracy drop {report['accuracy_drop']:.2f} "
                                          f"points > {th.max_accuracy_drop:.2f}")
    return out
