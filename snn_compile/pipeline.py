"""The main job: model -> verified float IR -> quantized network -> checks -> target bundle.

Steps, in order (each can fail with an actionable SnnCompileError):

1. import and verify the model (float IR);
2. load the target and quantize (calibrated on the sample data when given);
3. float reference vs emulator on the sample data (per-layer agreement, accuracy);
4. golden run of the emulator on a few inputs;
5. the target's backend writes its project/bundle and, where it can run here, is checked against
   the golden run bit for bit;
6. everything lands in the output folder atomically (written to a temporary sibling first).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .backend import get_backend
from .emulator import run_network
from .check import Thresholds, run_check, summary_lines, write_outputs
from .compare import pad_for_latency, traces_identical
from .errors import SnnCompileError
from .ir.fixed_io import save_network
from .ir.graph import Graph
from .quantize import quantize
from .targets import Target

GOLDEN_SAMPLES = 4
CALIBRATION_SAMPLES = 128


@dataclass
class CompileResult:
    summary: dict
    lines: list = field(default_factory=list)
    failed: bool = False


def file_sha256(path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_data(path, input_shape=None) -> tuple[np.ndarray, np.ndarray | None]:
    """``spikes`` [T, B, *input_shape] (and optional integer ``labels`` [B]) from an .npz file."""
    hint = "save it with np.savez(path, spikes=[T, B, *input_shape], labels=[B])"
    try:
        with np.load(path, allow_pickle=False) as data:
            if "spikes" not in data:
                raise SnnCompileError("data file has no 'spikes' array", file=path,
                                      value=f"arrays {sorted(data.keys())}", hint=hint)
            spikes = np.asarray(data["spikes"], np.float32)
            labels = np.asarray(data["labels"]) if "labels" in data else None
    except SnnCompileError:
        raise
    except Exception as exc:  # numpy raises OSError, ValueError, EOFError... for bad files
        raise SnnCompileError(f"not a readable .npz data file ({type(exc).__name__})",
                              file=path, hint=hint) from None
    if spikes.ndim < 3 or 0 in spikes.shape[:2]:
        raise SnnCompileError("'spikes' must be time-major [T, B, *input_shape] with T, B > 0",
                              file=path, value=f"shape {spikes.shape}", hint=hint)
    if input_shape is not None and tuple(spikes.shape[2:]) != tuple(input_shape):
        raise SnnCompileError("'spikes' do not fit the model's input", file=path,
                              value=f"sample shape {spikes.shape[2:]}, model input "
                                    f"{tuple(input_shape)}",
                              hint="arrays are time-major: [T, B, *input_shape]")
    if not np.all(np.isfinite(spikes)):
        raise SnnCompileError("'spikes' contain NaN or Inf", file=path,
                              value=f"{int(np.sum(~np.isfinite(spikes)))} entries")
    if labels is not None:
        if labels.shape != (spikes.shape[1],) or not np.issubdtype(labels.dtype, np.integer):
            raise SnnCompileError("'labels' must be one integer class per sample", file=path,
                                  value=f"labels {labels.dtype} {labels.shape}, "
                                        f"{spikes.shape[1]} samples", hint=hint)
    return spikes, labels


MARKER = "report.json"  # every output folder of snn-compile holds one


def _check_output(out: Path) -> None:
    """Refuse outputs that would destroy something snn-compile did not write."""
    if out.resolve() == Path.cwd().resolve() or out.resolve() == out.resolve().parent:
        raise SnnCompileError("the output folder cannot be the current or root folder",
                              file=out, hint="pass a new folder, e.g. -o out/model")
    if out.exists() and not out.is_dir():
        raise SnnCompileError("output exists and is not a folder", file=out,
                              hint="choose another -o path")
    if out.is_dir() and any(out.iterdir()) and not (out / MARKER).is_file():
        raise SnnCompileError("output folder exists and was not written by snn-compile",
                              file=out, hint="choose a new folder or empty this one")


@contextmanager
def atomic_dir(out: Path):
    """Yield a temporary sibling of ``out``; move it into place only if the block succeeds.

    An existing ``out`` is replaced only when it is empty or an earlier snn-compile output.
    """
    out = Path(out)
    _check_output(out)
    tmp = out.parent / f".{out.name}.partial-{os.getpid()}"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
    except OSError as exc:
        raise SnnCompileError(f"cannot create the output folder ({exc.strerror})",
                              file=out) from None
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}.old-{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    shutil.rmtree(old, ignore_errors=True)


def compile_model(graph: Graph, target: Target, out_dir: Path | None, *, source_name: str,
                  source_sha256: str | None = None, data: np.ndarray | None = None,
                  labels: np.ndarray | None = None, thresholds: Thresholds = Thresholds(),
                  plots: bool = True, backend: str | None = None,
                  backend_options: dict | None = None) -> CompileResult:
    """Run the main job; ``backend`` overrides the target's own backend (e.g. "onnx") and
    ``backend_options`` are its options (e.g. ``{"reuse_factor": "4"}``)."""
    graph.shapes  # verify
    calibration = None if data is None else data[:, :CALIBRATION_SAMPLES]
    quantized = quantize(graph, target, calibration, source_sha256=source_sha256)
    net = quantized.network
    lines = [f"{source_name}: {len(net.populations)} layers quantized for {target.name} "
             f"({target.description})"]
    for rep in quantized.report:
        lines.append(f"  {rep.name:<16} {rep.neuron:<8} scale {rep.scale:10.4g}  weights "
                     f"{rep.weight_range}  exp {rep.weight_exp:+d}  threshold {rep.threshold_int}")
        lines.extend(f"    note: {note}" for note in rep.notes)
    summary = {"source": source_name, "source_sha256": source_sha256, "target": target.name,
               "quantization": quantized.report_dict()}
    check = None
    if data is not None:
        check = run_check(quantized.float_graph, net, data, labels, thresholds)
        summary["check"] = check.report
        lines.extend(summary_lines(check.report))
    inputs = _golden_inputs(net, data)
    golden = run_network(net, inputs)
    backend_summary, backend_failed = _backend_stage(graph, net, backend or target.backend,
                                                     backend_options or {}, inputs, golden,
                                                     out_dir, source_name, lines)
    summary["backend"] = backend_summary
    if out_dir is not None:
        _write_common(out_dir, net, summary, inputs, golden, check, plots)
    failed = backend_failed or (check is not None and not check.passed)
    return CompileResult(summary=summary, lines=lines, failed=failed)


def _golden_inputs(net, data) -> np.ndarray:
    if data is not None:
        return pad_for_latency(data[:, :GOLDEN_SAMPLES], net)
    rng = np.random.default_rng(0)
    spikes = (rng.random((32, GOLDEN_SAMPLES, *net.input_shape)) < 0.2).astype(np.float32)
    return pad_for_latency(spikes, net)


def _backend_stage(graph, net, name, options, inputs, golden, out_dir, source_name, lines):
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
    missing = backend.available()
    if missing or backend.golden:
        info["run"] = "skipped: " + (missing or f"{name} is the golden model")
        lines.append(f"{name} vs emulator: {info['run']}")
        return info, False
    mismatch = traces_identical(golden, backend.run_lowered(lowered, inputs))
    info["run"] = "identical" if mismatch is None else mismatch
    lines.append(f"{name} vs emulator on {inputs.shape[1]} samples x {inputs.shape[0]} steps: "
                 + ("every spike, u and v identical" if mismatch is None else
                    f"MISMATCH: {mismatch}"))
    return info, mismatch is not None


def _write_common(out_dir: Path, net, summary, inputs, golden, check, plots):
    (out_dir / "report.json").write_text(
        json.dumps(_jsonable(summary), indent=2, sort_keys=True) + "\n")
    save_network(net, out_dir)
    np.savez_compressed(out_dir / "inputs.npz", spikes=inputs)
    np.savez_compressed(out_dir / "golden.npz", **golden.to_npz_dict())
    if check is not None:
        write_outputs(check, out_dir / "check", plots=plots)


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
    return obj
