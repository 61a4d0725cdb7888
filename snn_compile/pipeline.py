"""The main job: model -> verified float IR -> quantized network -> checks -> target bundle.

Steps, in order (each can fail with an actionable SnnCompileError; each prints its result as
soon as it is known):

1. import and verify the model (float IR);
2. load the target and quantize, calibrated on calibration samples that are not scored: a
   separate file (``calibration``), or the first samples of the data (the split is reported);
   optionally balance the thresholds on them;
3. float reference vs emulator on the scored samples, streamed (:mod:`snn_compile.check`);
4. golden run of the emulator on a few inputs;
5. the backend is checked against the network, lowered once, writes its project or bundle, and,
   where it can run here, is compared with the golden run bit for bit;
6. everything lands in the output folder atomically: ``report.json`` (what was built, with
   which tool version, options, target file and hash), ``timing.json`` (what varies from run to
   run), the compiled network (``network.json`` + ``network.npz``: ``snn-compile run OUT/``
   runs it again without quantizing), golden data, the check's JSON and plots.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from . import budget
from .backend import get_backend
from .check import Thresholds, run_check, summary_lines, write_outputs
from .compare import pad_for_latency, traces_identical
from .emulator import run_network
from .data import load_data  # noqa: F401  (moved to snn_compile.data)
from .errors import SnnCompileError
from .ir.fixed import QNetwork
from .ir.fixed_io import save_network
from .ir.graph import Graph
from .output import atomic_dir  # noqa: F401  (moved to snn_compile.output)
from .targets import Target

GOLDEN_SAMPLES = 4
CALIBRATION_SAMPLES = 128


@dataclass
class CheckOptions:
    """How the float-vs-fixed check runs (the options ``compile`` and ``check`` share)."""

    data: object = None              # data spec: path(s), folder, glob, or an array
    labels: np.ndarray | None = None  # with an array
    calibration: object = None       # separate calibration data (spec or array)
    calibration_samples: int | None = None  # else: this many first samples (default 128 or 1/4)
    balance: bool = False
    thresholds: Thresholds = field(default_factory=Thresholds)
    tolerance: int = 1
    batch_size: int | None = None
    workers: int = 1
    cluster: object = None
    threads: int | None = 1
    plot_samples: tuple | None = None  # data indices drawn as rasters (None: the first scored)
    plots: bool = True
    junit: Path | None = None


@dataclass
class CompileResult:
    summary: dict
    lines: list = field(default_factory=list)
    failed: bool = False
    timing: dict = field(default_factory=dict)


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# ----------------------------------------------------------------------------- calibration

def open_check_data(graph: Graph, options: CheckOptions, *, calibrate: bool = True):
    """The scored data source, the calibration samples (None unless ``calibrate``), the first
    scored sample and a record of the split."""
    from .check.data import ArraySource, open_data
    from .data import check_data, output_classes

    shape = graph.inputs[0].shape
    if isinstance(options.data, np.ndarray):
        spikes, labels = check_data(options.data, options.labels, input_shape=shape,
                                    classes=output_classes(graph))
        source = ArraySource(spikes, labels)
    else:
        source = open_data(options.data, shape)
    if options.thresholds.max_accuracy_drop is not None and source.labels() is None:
        raise SnnCompileError("--max-accuracy-drop needs labels in the data file",
                              file=source.name, hint="save labels=[B] next to spikes")
    if not calibrate:
        first = options.calibration_samples or 0
        if first >= source.samples:
            raise SnnCompileError("the calibration split leaves no samples to score",
                                  file=source.name, value=f"{first} of {source.samples}")
        return source, None, first, None
    if options.calibration is not None:
        calib = _calibration_samples(options.calibration, graph)
        return source, calib, 0, {"source": _describe(options.calibration),
                                  "samples": int(calib.shape[1]), "scored_from": 0}
    n = options.calibration_samples
    if n is None:
        n = min(CALIBRATION_SAMPLES, source.samples // 4)
    if not 0 <= n < source.samples:
        raise SnnCompileError("the calibration split leaves no samples to score",
                              value=f"{n} of {source.samples} samples",
                              hint="pass fewer --calibration-samples or a --calibration file")
    calib = source.read(0, n)[0] if n else source.read(0, min(source.samples,
                                                              CALIBRATION_SAMPLES))[0]
    note = {"source": "split of the data" if n else "the scored data (no split: --calibration-"
                                                   "samples 0)",
            "samples": int(calib.shape[1]), "scored_from": int(n)}
    return source, calib, int(n), note


def _calibration_samples(spec, graph: Graph) -> np.ndarray:
    from .check.data import open_data
    from .data import check_data

    if isinstance(spec, np.ndarray):
        return check_data(spec, input_shape=graph.inputs[0].shape)[0]
    source = open_data(spec, graph.inputs[0].shape)
    return source.read(0, min(source.samples, CALIBRATION_SAMPLES))[0]


def _describe(spec) -> str:
    if isinstance(spec, np.ndarray):
        return "array"
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    return ", ".join(Path(str(i)).name for i in items)


def quantize_for_target(graph: Graph, target: Target, calibration: np.ndarray | None, *,
                        balance: bool = False, source_sha256: str | None = None):
    """Post-training quantization (optionally with balanced thresholds) on ``calibration``."""
    from .quantize import quantize

    if balance:
        if calibration is None:
            raise SnnCompileError("--balance needs calibration data",
                                  hint="pass --data (split) or --calibration")
        from .calibrate import balance as balance_thresholds

        quantized = balance_thresholds(graph, target, calibration)
        if source_sha256:
            quantized.network = quantized.network.replace(
                metadata={**quantized.network.metadata, "source_sha256": source_sha256})
        return quantized
    return quantize(graph, target, calibration, source_sha256=source_sha256)


def check_network(graph: Graph, net: QNetwork, source, first_sample: int,
                  options: CheckOptions, shard=None):
    """The streamed check of ``net`` on the scored samples of ``source``."""
    return run_check(graph, net, source, thresholds=options.thresholds,
                     batch_size=options.batch_size, tolerance=options.tolerance,
                     workers=options.workers, cluster=options.cluster, shard=shard,
                     keep_samples=_plot_samples(options.plot_samples, source, first_sample),
                     threads=options.threads, first_sample=first_sample)


def _plot_samples(samples, source, first: int) -> tuple[int, ...]:
    if samples is None:
        return (first,)
    outside = [s for s in samples if not first <= s < source.samples]
    if outside:
        raise SnnCompileError("--plot-samples names samples that are not scored",
                              file=source.name, value=outside[0],
                              hint=f"scored samples are {first}..{source.samples - 1} (the "
                                   "first ones calibrate)")
    return tuple(samples)


# ----------------------------------------------------------------------------- main job

def compile_model(graph: Graph, target: Target, out_dir: Path | None, *, source_name: str,
                  source_sha256: str | None = None, check: CheckOptions | None = None,
                  backend: str | None = None, backend_options: dict | None = None,
                  command: dict | None = None, say: Callable[[str], None] | None = None
                  ) -> CompileResult:
    """Run the main job (see the module docstring); ``backend`` overrides the target's own
    backend (e.g. "onnx") with ``backend_options``; ``say`` prints each line when it is known;
    ``command`` (the options as plain data) is recorded in the report."""
    lines: list[str] = []

    def emit(text: str) -> None:
        lines.append(text)
        if say is not None:
            say(text)

    timing: dict = {}
    started = time.perf_counter()
    graph.shapes  # verify
    source = calibration = None
    first, split = 0, None
    if check is not None and check.data is not None:
        source, calibration, first, split = open_check_data(graph, check)
    elif check is not None and check.calibration is not None:
        calibration = _calibration_samples(check.calibration, graph)
        split = {"source": _describe(check.calibration), "samples": int(calibration.shape[1]),
                 "scored_from": 0}
    quantized = quantize_for_target(graph, target, calibration,
                                    balance=check is not None and check.balance,
                                    source_sha256=source_sha256)
    net = quantized.network
    budget.check_run(net, 32, GOLDEN_SAMPLES)
    emit(f"{source_name}: {len(net.populations)} layers quantized for {target.name} "
         f"({target.description})" + (f", calibrated on {split['samples']} samples "
                                      f"({split['source']})" if split else ""))
    for rep in quantized.report:
        emit(f"  {rep.name:<16} {rep.neuron:<8} scale {rep.scale:10.4g}  weights "
             f"{rep.weight_range}  exp {rep.weight_exp:+d}  threshold {rep.threshold_int}")
        for note in rep.notes:
            emit(f"    note: {note}")
    for line in _input_lines(quantized.input):
        emit(line)
    for note in quantized.notes:
        emit(f"  note: {note}")
    timing["quantize_s"] = time.perf_counter() - started
    summary = {"tool": tool_info(), "command": command or {}, "source": source_name,
               "source_sha256": source_sha256, "target": target_info(target),
               "calibration": split, "quantization": quantized.report_dict(),
               "input": None if quantized.input is None else asdict(quantized.input),
               "notes": list(quantized.notes)}
    result = None
    if source is not None:
        result = check_network(quantized.float_graph, net, source, first, check)
        summary["check"] = result.report
        timing["check"] = dict(result.timing)
        for line in summary_lines(result.report):
            emit(line)
    inputs = _golden_inputs(net, source, first)
    golden = run_network(net, inputs)
    stage = time.perf_counter()
    backend_summary, backend_failed = _backend_stage(quantized.float_graph, net,
                                                     backend or target.backend,
                                                     backend_options or {}, inputs, golden,
                                                     out_dir, source_name, emit)
    timing["backend_s"] = time.perf_counter() - stage
    summary["backend"] = backend_summary
    timing["total_s"] = time.perf_counter() - started
    if out_dir is not None:
        _write_common(out_dir, net, summary, timing, inputs, golden, result, check,
                      source_name)
    failed = backend_failed or (result is not None and not result.passed)
    return CompileResult(summary=summary, lines=lines, failed=failed, timing=timing)


def _input_lines(report) -> list[str]:
    """What the input encoding costs, when the input is not 0/1 spikes."""
    if report is None or report.kind == "binary":
        return []
    lines = [f"  input: {report.kind} {report.dtype}, scale {report.scale:g}"
             + ("" if report.exact else
                f", {100 * report.saturated_nonzero:.2f}% of non-zero values saturated, RMS "
                f"error {100 * report.rms_error:.2f}%, float output on the encoded input "
                f"agrees on {100 * (report.class_agreement or 0):.1f}% of classes")]
    if report.costs_accuracy():
        lines.append("    note: the input encoding alone changes predicted classes: widen "
                     "features.input or rescale the input")
    lines.extend(f"    note: {note}" for note in report.notes)
    return lines


def tool_info() -> dict:
    from ._version import __version__

    return {"name": "snn-compile", "version": __version__}


def target_info(target: Target) -> dict:
    overrides = {k: v for k, v in target.get_overrides().items()}
    return {"name": target.name, "file": Path(target.path).name if target.path else None,
            "file_sha256": file_sha256(target.path) if target.path and Path(
                target.path).is_file() else None,
            "sha256": target.sha256, "overrides": overrides}


def _golden_inputs(net, source, first: int) -> np.ndarray:
    if source is not None:
        stop = min(first + GOLDEN_SAMPLES, source.samples)
        return pad_for_latency(source.read(first, stop)[0], net)
    rng = np.random.default_rng(0)
    spikes = (rng.random((32, GOLDEN_SAMPLES, *net.input_shape)) < 0.2).astype(np.float32)
    return pad_for_latency(spikes, net)


def _backend_stage(graph, net, name, options, inputs, golden, out_dir, source_name, emit):
    """Check, lower once, emit the backend's bundle and run it against the golden trace."""
    backend = get_backend(name, **options)  # an unknown name or option is an error (exit 2)
    if not backend.fixed_point:
        raise SnnCompileError(f"backend '{name}' runs the float model, not a target",
                              hint="use `snn-compile run --backend float` for float runs")
    backend.check(net)
    lowered = backend.lower(net)
    info = {"name": name, "options": backend.settings}
    if out_dir is not None:
        info["emit"] = backend.emit(lowered, out_dir / name, inputs=inputs, golden=golden,
                                    source_name=source_name, float_graph=graph)
        if (out_dir / name).is_dir():
            emit(f"{name}: wrote {name}/")
    missing = backend.available()
    if missing or backend.golden:
        info["run"] = "skipped: " + (missing or f"{name} is the golden model")
        emit(f"{name} vs emulator: {info['run']}")
        return info, False
    emit(f"{name} vs emulator on {inputs.shape[1]} samples x {inputs.shape[0]} steps: "
         "running ...")
    mismatch = traces_identical(golden, backend.run_lowered(lowered, inputs))
    info["run"] = "identical" if mismatch is None else mismatch
    emit(f"{name} vs emulator: " + ("every spike, u and v identical" if mismatch is None else
                                    f"MISMATCH: {mismatch}"))
    return info, mismatch is not None


def _write_common(out_dir: Path, net, summary, timing, inputs, golden, result, check,
                  source_name):
    (out_dir / "report.json").write_text(
        json.dumps(_jsonable(summary), indent=2, sort_keys=True) + "\n")
    (out_dir / "timing.json").write_text(
        json.dumps(_jsonable(timing), indent=2, sort_keys=True) + "\n")
    save_network(net, out_dir)
    from .ir.fixed_io import npz_bytes

    (out_dir / "inputs.npz").write_bytes(npz_bytes({"spikes": inputs}))
    (out_dir / "golden.npz").write_bytes(npz_bytes(golden.to_npz_dict()))
    if result is not None:
        junit = check.junit if check is not None else None
        write_outputs(result, out_dir / "check", junit=junit, plots=check.plots,
                      name=source_name)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, Path):
        return obj.name
    if isinstance(obj, float) and obj != obj:
        return None
    return obj
