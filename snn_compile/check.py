"""Equivalence check: float reference vs quantized emulator on the same data.

Spike agreement with the target's time alignment, spike-count error, first divergence,
predicted-class agreement and accuracies. The result is a plain dict (the JSON report), optional
JUnit XML for CI systems (:mod:`snn_compile.junit`), and plots.

``report["level"]`` says what was verified (DESIGN.md, "Equivalence, three levels"):

* ``"exact"`` (level 2) when every neuron of the float model carries a
  :class:`~snn_compile.ir.nodes.StateGrid` (a quantization-aware trained model): float reference
  and emulator compute the same integers, so every spike must match and any difference fails;
* ``"statistical"`` (level 3) otherwise: post-training quantization, agreement is measured and
  held to the thresholds given.

``report["level_reason"]`` says why; ``report["exact"]`` whether every spike matched.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .backends.emulator import run_network
from .compare import compare_layers, layer_offsets, pad_for_latency, predictions
from .ir.fixed import QNetwork
from .ir.graph import Graph
from .ir.nodes import LI, NeuronNode
from .progress import progress
from .reference import simulate
from .trace import Trace


@dataclass
class Thresholds:
    min_agreement: float | None = None      # minimum spike agreement of every layer (0..1)
    max_accuracy_drop: float | None = None  # in accuracy points (percent)


@dataclass
class CheckResult:
    report: dict
    float_trace: Trace
    fixed_trace: Trace
    agreements: list = field(default_factory=list)
    failures: list = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures


def run_check(graph: Graph, net: QNetwork, spikes: np.ndarray, labels: np.ndarray | None = None,
              thresholds: Thresholds = Thresholds(), batch_size: int = 64) -> CheckResult:
    """Run float and emulator on ``spikes`` [T, B, ...] in batches and compare every layer."""
    steps, total = spikes.shape[0], spikes.shape[1]
    padded = pad_for_latency(spikes, net)
    float_parts, fixed_parts = [], []
    for start in progress(range(0, total, batch_size), desc="float vs emulator"):
        chunk = slice(start, start + batch_size)
        float_parts.append(simulate(graph, spikes[:, chunk]))
        fixed_parts.append(run_network(net, padded[:, chunk]))
    float_trace, fixed_trace = _concat(float_parts), _concat(fixed_parts)
    agreements = compare_layers(float_trace, fixed_trace, net, steps)
    out_offset = layer_offsets(net)[net.output_layer.name]
    pred_f = predictions(float_trace)
    last = net.output_layer
    pred_q = predictions(fixed_trace, steps, out_offset,
                         scale=1.0 if last.neuron.spiking else last.scale)
    report = {
        "target": net.target.name,
        "samples": int(total),
        "steps": int(steps),
        "latency_steps": int(out_offset),
        "exact": all(a.spike_agreement == 1.0 for a in agreements),
        **dict(zip(("level", "level_reason"), verification_level(graph))),
        "layers": [a.as_dict() for a in agreements],
        "class_agreement": float((pred_f == pred_q).mean()),
    }
    if labels is not None:
        labels = np.asarray(labels).reshape(-1)
        report["float_accuracy"] = 100 * float((pred_f == labels).mean())
        report["fixed_accuracy"] = 100 * float((pred_q == labels).mean())
        report["accuracy_drop"] = report["float_accuracy"] - report["fixed_accuracy"]
    failures = _failures(report, thresholds)
    report["verdict"] = "pass" if not failures else "fail"
    report["failures"] = failures
    return CheckResult(report=report, float_trace=float_trace, fixed_trace=fixed_trace,
                       agreements=agreements, failures=failures)


def verification_level(graph: Graph) -> tuple[str, str]:
    """``("exact" | "statistical", reason)`` for a float model (see the module docstring)."""
    populations = [node for node in graph.nodes if isinstance(node, (NeuronNode, LI))]
    gridded = [node for node in populations if getattr(node, "grid", None) is not None]
    if populations and len(gridded) == len(populations):
        return "exact", ("QAT model: the float model carries the target's fixed-point "
                         "arithmetic; every spike must match")
    if gridded:
        return "statistical", (f"partly quantization-aware ({len(gridded)} of "
                               f"{len(populations)} layers carry a grid); agreement measured")
    return "statistical", "post-training quantization; agreement measured"


def _failures(report: dict, th: Thresholds) -> list[str]:
    failures = []
    if report["level"] == "exact":
        failures += [f"layer {layer['name']}: spike agreement "
                     f"{100 * layer['spike_agreement']:.3f}% < 100% (exact level)"
                     for layer in report["layers"] if layer["spike_agreement"] < 1.0]
    if th.min_agreement is not None:
        for layer in report["layers"]:
            if layer["spike_agreement"] < th.min_agreement:
                failures.append(f"layer {layer['name']}: spike agreement "
                                f"{100 * layer['spike_agreement']:.3f}% < "
                                f"{100 * th.min_agreement:.3f}%")
    if th.max_accuracy_drop is not None and "accuracy_drop" in report:
        if report["accuracy_drop"] > th.max_accuracy_drop:
            failures.append(f"accuracy drop {report['accuracy_drop']:.2f} points > "
                            f"{th.max_accuracy_drop:.2f}")
    return failures


def _concat(parts: list[Trace]) -> Trace:
    layers = {name: {key: np.concatenate([p.layers[name][key] for p in parts], axis=1)
                     for key in parts[0].layers[name]} for name in parts[0].layers}
    return Trace(output=np.concatenate([p.output for p in parts], axis=1), layers=layers)


def write_outputs(result: CheckResult, out_dir: Path, *, junit: Path | None = None,
                  plots: bool = True, model: str = "model",
                  seconds: float | None = None) -> list[Path]:
    """Write check.json (+ plots, + JUnit XML of ``model``'s check taking ``seconds``) into
    ``out_dir``; returns the paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "check.json"]
    paths[0].write_text(json.dumps(result.report, indent=2, sort_keys=True) + "\n")
    if plots and result.agreements:
        from .plots import agreement_bars, raster

        paths.append(raster(result.float_trace, result.fixed_trace, result.agreements,
                            out_dir / "raster.png"))
        paths.append(agreement_bars(result.agreements, out_dir / "agreement.png"))
    if junit is not None:
        from .junit import check_suite, write_junit

        paths.append(write_junit([check_suite(result.report, model=model, seconds=seconds)],
                                 junit))
    return paths


def summary_lines(report: dict) -> list[str]:
    lines = [f"float vs {report['target']} emulator on {report['samples']} samples x "
             f"{report['steps']} steps (fixed point runs {report['latency_steps']} steps later):"]
    for layer in report["layers"]:
        lines.append(f"  {layer['name']:<16} spike agreement {100 * layer['spike_agreement']:8.3f}%"
                     f"   spikes float {layer['float_spikes']:>8} fixed {layer['fixed_spikes']:>8}")
    lines.append(f"  predicted class agreement {100 * report['class_agreement']:.2f}%")
    if "float_accuracy" in report:
        lines.append(f"  accuracy float {report['float_accuracy']:.2f}%  fixed "
                     f"{report['fixed_accuracy']:.2f}%  (drop {report['accuracy_drop']:.2f})")
    equal = "every spike equal" if report["exact"] else "spikes differ"
    lines.append(f"  level: {report['level']} ({report['level_reason']}); {equal}; "
                 f"verdict: {report['verdict']}")
    lines.extend(f"  FAILED: {failure}" for failure in report["failures"])
    return lines
