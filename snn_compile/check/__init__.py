"""Equivalence check: float reference vs quantized emulator over a data set, streamed.

``run_check(graph, net, data, ...)`` compares every spiking layer with the target's time
alignment and returns a :class:`CheckResult` whose ``report`` is the JSON report:

* per layer (:mod:`.metrics`): precision, recall and IoU of spikes at the aligned step and
  within a tolerance window, spike-count correlation, entry agreement, the silent baseline (what
  an all-silent layer would score), densities, first divergence, spike-count histograms;
* per network: class agreement, accuracies and their drop (with labels), per-class figures, the
  samples that differ most, the samples checked, throughput and the engine used;
* the verdict (:mod:`.verdict`): dead and saturated layers always fail; thresholds per metric.

``report["level"]`` says what was verified (DESIGN.md, "Equivalence, three levels"): ``"exact"``
when every neuron of the float model carries a :class:`~snn_compile.ir.nodes.StateGrid`
(quantization-aware training: every spike must match), ``"statistical"`` otherwise.

Data are read lazily in chunks aligned to global sample indices (:mod:`.data`, :mod:`.runner`):
memory does not grow with the number of samples, and the report does not depend on how the
samples are sharded over processes (``workers``), a cluster (``cluster``) or separate runs
(``shard`` + :func:`merge_partials`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._version import __version__
from ..errors import SnnCompileError
from ..ir.fixed import QNetwork
from ..ir.fixed_io import network_files
from ..ir.graph import Graph
from ..ir.nodes import LI, NeuronNode
from .data import ArraySource, DataSource, open_data
from .metrics import Tally
from .runner import Job, chunk_ranges, default_batch_size, run_chunks, shard_chunks
from .verdict import Thresholds, failures, parse_requirement

__all__ = ["run_check", "CheckResult", "Thresholds", "summary_lines", "write_outputs",
           "verification_level", "open_data", "merge_partials", "parse_requirement"]

PARTIAL_FORMAT = "snn-compile-check-partial"
DEFAULT_TOLERANCE = 1


@dataclass
class LayerFigures:
    """A layer's figures as attributes (``result.layers``; the report holds the same dicts)."""

    name: str
    figures: dict

    def __getattr__(self, key):
        try:
            return self.__dict__["figures"][key]
        except KeyError:
            raise AttributeError(key) from None


@dataclass
class CheckResult:
    report: dict
    tally: Tally
    kept: dict = field(default_factory=dict)   # sample -> layer -> {"float", "fixed"} spikes
    failures: list = field(default_factory=list)
    timing: dict = field(default_factory=dict)  # seconds, samples/s (kept out of the report)

    @property
    def passed(self) -> bool:
        return not self.failures

    @property
    def layers(self) -> list[LayerFigures]:
        return [LayerFigures(layer["name"], layer) for layer in self.report["layers"]]

    agreements = layers  # the name of the first version


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


def _source(data, labels) -> DataSource:
    if isinstance(data, DataSource):
        return data
    if isinstance(data, np.ndarray) or hasattr(data, "__array__"):
        return ArraySource(np.asarray(data), labels)
    return open_data(data)


def run_check(graph: Graph, net: QNetwork, data, labels=None,
              thresholds: Thresholds = Thresholds(), batch_size: int | None = None, *,
              tolerance: int = DEFAULT_TOLERANCE, workers: int = 1, cluster=None,
              shard: tuple[int, int] | None = None, keep_samples=(0,),
              threads: int | None = None, first_sample: int = 0,
              progress: bool = True) -> CheckResult:
    """Compare the float model and the emulator on ``data`` (an array [T, B, ...] with
    ``labels``, a path/folder/glob/list of data files, or a DataSource).

    ``batch_size`` samples per chunk (default from the network size); ``workers`` local
    processes or ``cluster`` (a Dask scheduler address or Client); ``shard=(i, n)`` checks the
    i-th of n parts (see :func:`partial_dict`); ``first_sample`` skips samples used for
    calibration; ``keep_samples`` are the samples whose rasters are drawn; ``threads`` sets
    torch's threads (None: unchanged)."""
    source = _source(data, labels)
    if tuple(source.sample_shape) != tuple(graph.inputs[0].shape):
        raise SnnCompileError("data do not fit the model's input", file=source.name,
                              value=f"sample shape {source.sample_shape}, model input "
                                    f"{tuple(graph.inputs[0].shape)}")
    classes = net.output_population.size
    all_labels = source.labels()
    if all_labels is not None and all_labels.size and (
            all_labels.min() < 0 or all_labels.max() >= classes):
        raise SnnCompileError("labels are not output neuron indices", file=source.name,
                              value=f"range [{all_labels.min()}, {all_labels.max()}], "
                                    f"{classes} output neurons")
    if batch_size is None:
        batch_size = default_batch_size(net, source.steps)
    if batch_size < 1:
        raise SnnCompileError("batch size must be at least 1", value=batch_size)
    chunks = shard_chunks(chunk_ranges(source.samples, batch_size, first_sample), shard)
    if not chunks:
        raise SnnCompileError("no samples to check", file=source.name,
                              hint="the shard is empty: use fewer shards than chunks")
    job = Job.make(graph, net, tolerance, keep_samples, threads)
    tally, kept, engine = run_chunks(job, source, chunks, workers=workers, cluster=cluster,
                                     progress=progress)
    config = _config(net, source, batch_size, tolerance, thresholds, first_sample,
                     digest=files_digest(job.network_files))
    timing = {k: engine.pop(k) for k in ("seconds", "samples_per_s") if k in engine}
    timing.update(engine)
    report = build_report(tally, config, graph, net, thresholds, engine)
    return CheckResult(report=report, tally=tally, kept=kept, failures=report["failures"],
                       timing=timing)


def network_digest(net: QNetwork) -> str:
    return files_digest(network_files(net))


def files_digest(files: dict) -> str:
    """The sha256 of a compiled network's serialised form (:func:`network_files`)."""
    import hashlib

    return hashlib.sha256(files["network.json"] + files["network.npz"]).hexdigest()


def _config(net: QNetwork, source, batch_size: int, tolerance: int, thresholds,
            first_sample: int = 0, digest: str | None = None) -> dict:
    return {"network_sha256": digest or network_digest(net), "target": net.target.name,
            "target_sha256": net.target.sha256, "samples_total": source.samples,
            "steps": source.steps, "batch_size": batch_size, "tolerance": tolerance,
            "first_sample": first_sample,
            "thresholds": thresholds.as_dict(), "tool_version": __version__}


def build_report(tally: Tally, config: dict, graph: Graph, net: QNetwork,
                 thresholds: Thresholds, engine: dict) -> dict:
    """The JSON report of a (merged) tally."""
    level, reason = verification_level(graph)
    layers = [tally.layers[p.name].figures() for p in net.in_order() if p.name in tally.layers]
    classes = tally.classes
    samples = classes.samples
    report = {
        "target": net.target.name, "samples": samples, "steps": config["steps"],
        "samples_total": config["samples_total"],
        "latency_steps": int(net.output_population.lag), "level": level,
        "level_reason": reason, "exact": all(layer["spike_agreement"] == 1.0
                                             for layer in layers),
        "layers": layers, "class_agreement": classes.agree / max(samples, 1),
        "confusion": classes.confusion, "worst_samples": tally.worst_samples(),
        "config": config, "engine": engine,
        "chunks": [list(c) for c in _coalesce(tally.chunks)],
    }
    if classes.labelled:
        report["float_accuracy"] = 100 * classes.float_correct / classes.labelled
        report["fixed_accuracy"] = 100 * classes.fixed_correct / classes.labelled
        report["accuracy_drop"] = report["float_accuracy"] - report["fixed_accuracy"]
        report["per_class"] = [{"class": c, "samples": n,
                                "float_accuracy": None if not n else 100 * fo / n,
                                "fixed_accuracy": None if not n else 100 * qo / n}
                               for c, (n, fo, qo) in enumerate(classes.per_label)]
    report["failed_rules"] = failures(report, thresholds)
    report["failures"] = [f["message"] for f in report["failed_rules"]]
    report["verdict"] = "pass" if not report["failures"] else "fail"
    return report


def _coalesce(chunks: list) -> list:
    out = []
    for a, b in sorted(chunks):
        if out and out[-1][1] == a:
            out[-1] = (out[-1][0], b)
        else:
            out.append((a, b))
    return out


# ----------------------------------------------------------------------------- partials

def partial_dict(result: CheckResult, shard: tuple[int, int] | None) -> dict:
    """A mergeable partial result (``check --shard i/N --partial FILE``)."""
    return {"format": PARTIAL_FORMAT, "version": 1, "shard": list(shard) if shard else None,
            "config": result.report["config"], "tally": result.tally.to_dict()}


def merge_partials(parts: list[dict], graph: Graph, net: QNetwork,
                   thresholds: Thresholds) -> CheckResult:
    """Merge partial results of one check; refuses overlaps, gaps and foreign partials."""
    if not parts:
        raise SnnCompileError("no partial results to merge")
    for part in parts:
        if not isinstance(part, dict) or part.get("format") != PARTIAL_FORMAT:
            raise SnnCompileError("not a partial check result", value=repr(part)[:60])
    first = parts[0]["config"]
    keys = ("network_sha256", "target_sha256", "tool_version", "batch_size", "tolerance",
            "samples_total", "steps", "first_sample")
    for part in parts[1:]:
        differ = [k for k in keys if part["config"].get(k) != first.get(k)]
        if differ:
            raise SnnCompileError("partial results come from different checks",
                                  value=f"{', '.join(differ)} differ",
                                  hint="merge partials of one network, target, version and "
                                       "batch size")
    tallies = [Tally.from_dict(p["tally"]) for p in parts]
    covered = sorted(c for t in tallies for c in t.chunks)
    for (a0, b0), (a1, b1) in zip(covered, covered[1:]):
        if a1 < b0:
            raise SnnCompileError("partial results overlap", value=f"samples {a1}..{b0 - 1} "
                                                                   "are in two partials")
    expected = chunk_ranges(first["samples_total"], first["batch_size"],
                            first.get("first_sample", 0))
    if covered != [tuple(c) for c in expected]:
        missing = sorted(set(map(tuple, expected)) - set(covered))
        raise SnnCompileError("partial results are missing samples",
                              value=f"{len(missing)} chunks, from samples {missing[0][0]}",
                              hint="run the missing shards")
    total = tallies[0]
    for t in tallies[1:]:
        total = total.merge(t)
    if first.get("network_sha256") != network_digest(net):
        raise SnnCompileError("the partial results were made with another compiled network",
                              hint="merge with the network the shards ran")
    config = dict(first, thresholds=thresholds.as_dict())
    report = build_report(total, config, graph, net, thresholds, {"engine": "merged",
                                                                  "partials": len(parts)})
    return CheckResult(report=report, tally=total, failures=report["failures"])


# ----------------------------------------------------------------------------- output

def summary_lines(report: dict) -> list[str]:
    lines = [f"float vs {report['target']} emulator on {report['samples']} samples x "
             f"{report['steps']} steps (fixed point runs {report['latency_steps']} steps later):"]
    for layer in report["layers"]:
        lines.append(
            f"  {layer['name']:<16} precision {_pct(layer['precision'])} recall "
            f"{_pct(layer['recall'])} IoU {_pct(layer['iou'])} (+-{report['config']['tolerance']}"
            f" steps: {_pct(layer['precision_tolerant'])} / {_pct(layer['recall_tolerant'])})  "
            f"spikes float {layer['float_spikes']} fixed {layer['fixed_spikes']}")
    lines.append(f"  predicted class agreement {100 * report['class_agreement']:.2f}%")
    if "float_accuracy" in report:
        lines.append(f"  accuracy float {report['float_accuracy']:.2f}%  fixed "
                     f"{report['fixed_accuracy']:.2f}%  (drop {report['accuracy_drop']:.2f})")
    equal = "every spike equal" if report["exact"] else "spikes differ"
    lines.append(f"  level: {report['level']} ({report['level_reason']}); {equal}; "
                 f"verdict: {report['verdict']}")
    lines.extend(f"  FAILED: {failure}" for failure in report["failures"])
    return lines


def _pct(value) -> str:
    return "   n/a " if value is None else f"{100 * value:6.2f}%"


def write_outputs(result: CheckResult, out_dir: Path, *, junit: Path | None = None,
                  plots: bool = True, name: str = "model") -> list[Path]:
    """Write check.json (+ plots, + JUnit XML) into ``out_dir``; returns the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = [out_dir / "check.json"]
    paths[0].write_text(json.dumps(_jsonable(result.report), indent=2, sort_keys=True) + "\n")
    if plots and result.report["layers"]:
        from . import plots as figures

        paths += figures.write_all(result, out_dir)
    if junit is not None:
        from ..junit import check_suite, write_junit

        seconds = result.timing.get("seconds")
        paths.append(write_junit([check_suite(result.report, model=name, seconds=seconds)],
                                 junit))
    return paths


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, float) and obj != obj:
        return None
    return obj
