"""Sample data: ``.npz`` files of spikes and labels read safely, and the one validation of
spikes, labels and check thresholds that the command line and the Python API share.

A data file holds ``spikes`` ``[T, B, *input_shape]`` (time-major, real numbers) and optionally
``labels`` ``[B]`` (integer class = output neuron index). :func:`load_data` reads each member's
128-byte ``.npy`` header first and refuses a wrong dtype, shape or an array over the memory
budget (:mod:`snn_compile.budget`) before reading any data; pickled members are never loaded.
"""

from __future__ import annotations

import math
import zipfile

import numpy as np

from . import budget
from .errors import SnnCompileError

HINT = "save it with np.savez(path, spikes=[T, B, *input_shape], labels=[B])"
REAL_KINDS = "biuf"  # bool, signed, unsigned, float: no complex, object, string or record
MAX_ABS_INPUT = 1e6  # graded input beyond this cannot be meant as spikes or currents


def _header(member) -> tuple[tuple, np.dtype]:
    version = np.lib.format.read_magic(member)
    if version == (1, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_1_0(member)
    elif version == (2, 0):
        shape, _fortran, dtype = np.lib.format.read_array_header_2_0(member)
    else:
        raise ValueError(f"unsupported .npy format version {version}")
    return tuple(shape), np.dtype(dtype)


def read_npz_headers(path) -> dict[str, tuple[tuple, np.dtype]]:
    """``{array name: (shape, dtype)}`` of an .npz archive, from the headers alone."""
    try:
        with zipfile.ZipFile(path) as archive:
            out = {}
            for info in archive.infolist():
                if info.filename.endswith(".npy"):
                    with archive.open(info) as member:
                        out[info.filename[:-4]] = _header(member)
            return out
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _unreadable(path, exc) from None


def _unreadable(path, exc) -> SnnCompileError:
    return SnnCompileError(f"not a readable .npz data file ({type(exc).__name__}: {exc})"[:300],
                           file=path, hint=HINT)


def _read_member(path, name: str) -> np.ndarray:
    try:
        with zipfile.ZipFile(path) as archive, archive.open(f"{name}.npy") as member:
            return np.lib.format.read_array(member, allow_pickle=False)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        raise _unreadable(path, exc) from None


def load_data(path, input_shape=None, classes: int | None = None
              ) -> tuple[np.ndarray, np.ndarray | None]:
    """``spikes`` as float32 [T, B, *input_shape] and ``labels`` [B] (or None) from ``path``,
    validated by :func:`check_data`."""
    headers = read_npz_headers(path)
    if "spikes" not in headers:
        raise SnnCompileError("data file has no 'spikes' array", file=path,
                              value=f"arrays {sorted(headers)}", hint=HINT)
    for name in ("spikes", "labels"):
        if name in headers:
            shape, dtype = headers[name]
            _check_dtype(dtype, name, path)
            if name == "spikes":
                _check_shape(shape, input_shape, path)
                budget.check(budget.array_bytes(shape, dtype)
                             + budget.array_bytes(shape, np.float32), f"'{name}'", file=path,
                             detail=f"shape {shape} {dtype.name}, read and converted to float32")
            else:
                budget.check_array(shape, dtype, f"'{name}'", file=path)
    spikes = _read_member(path, "spikes")
    labels = _read_member(path, "labels") if "labels" in headers else None
    return check_data(spikes, labels, input_shape=input_shape, classes=classes, source=path)


def _check_dtype(dtype: np.dtype, name: str, source) -> None:
    if dtype.kind not in REAL_KINDS or dtype.hasobject or dtype.fields is not None:
        raise SnnCompileError(f"'{name}' must hold real numbers", file=source,
                              value=f"dtype {dtype}", hint=HINT)


def _check_shape(shape: tuple, input_shape, source) -> None:
    if len(shape) < 3 or 0 in shape[:2]:
        raise SnnCompileError("'spikes' must be time-major [T, B, *input_shape] with T, B > 0",
                              file=source, value=f"shape {shape}", hint=HINT)
    if input_shape is not None and tuple(shape[2:]) != tuple(input_shape):
        raise SnnCompileError("'spikes' do not fit the model's input", file=source,
                              value=f"sample shape {tuple(shape[2:])}, model input "
                                    f"{tuple(input_shape)}",
                              hint="arrays are time-major: [T, B, *input_shape]")


def check_data(spikes, labels=None, *, input_shape=None, classes: int | None = None,
               source=None) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate sample data (from a file or from Python) and return ``(float32 spikes, labels)``.

    ``spikes``: real, finite, ``|x| <=`` :data:`MAX_ABS_INPUT`, [T, B, *input_shape] with
    T, B > 0. ``labels``: integers [B] in ``[0, classes)``. ``source`` names the data in errors.
    """
    source = source if source is not None else "data"
    raw = np.asarray(spikes)
    _check_dtype(raw.dtype, "spikes", source)
    _check_shape(raw.shape, input_shape, source)
    values = raw.astype(np.float32, copy=False)
    if not np.all(np.isfinite(values)):
        raise SnnCompileError("'spikes' contain NaN or Inf (or values beyond float32)",
                              file=source, value=f"{int(np.sum(~np.isfinite(values)))} entries")
    peak = float(np.max(np.abs(values), initial=0))
    if peak > MAX_ABS_INPUT:
        raise SnnCompileError("'spikes' hold values too large for spikes or input currents",
                              file=source, value=f"max |x| = {peak:g}",
                              hint=f"scale the input to |x| <= {MAX_ABS_INPUT:g} (spikes are 0/1)")
    if labels is None:
        return values, None
    labels = np.asarray(labels)
    if labels.dtype.kind not in "iu" or labels.shape != (values.shape[1],):
        raise SnnCompileError("'labels' must be one integer class per sample", file=source,
                              value=f"labels {labels.dtype} {labels.shape}, "
                                    f"{values.shape[1]} samples", hint=HINT)
    if classes is not None and labels.size and (labels.min() < 0 or labels.max() >= classes):
        raise SnnCompileError("labels are not output neuron indices", file=source,
                              value=f"range [{labels.min()}, {labels.max()}], "
                                    f"{classes} output neurons")
    return values, labels


def output_classes(graph) -> int:
    """The number of output neurons of a float IR graph (the classes labels index)."""
    return int(np.prod(graph.shapes[graph.outputs[0].name]))


def check_thresholds(min_agreement=None, max_accuracy_drop=None, *, has_labels: bool = True):
    """The check's :class:`~snn_compile.check.Thresholds`, validated.

    ``min_agreement`` is a fraction in [0, 1]; ``max_accuracy_drop`` a finite number of
    accuracy points in [-100, 100] and needs labels. NaN is refused (it would disable the check).
    """
    from .check import Thresholds

    if min_agreement is not None and not (_number(min_agreement) and 0 <= min_agreement <= 1):
        raise SnnCompileError("the minimum agreement is a fraction in [0, 1]",
                              value=min_agreement, hint="e.g. 0.99 for 99 %")
    if max_accuracy_drop is not None:
        if not (_number(max_accuracy_drop) and -100 <= max_accuracy_drop <= 100):
            raise SnnCompileError("the maximum accuracy drop is a number of points in "
                                  "[-100, 100]", value=max_accuracy_drop, hint="e.g. 1 for 1 %")
        if not has_labels:
            raise SnnCompileError("--max-accuracy-drop needs labels in the data file",
                                  hint="save labels=[B] next to spikes")
    return Thresholds(min_agreement=None if min_agreement is None else float(min_agreement),
                      max_accuracy_drop=None if max_accuracy_drop is None
                      else float(max_accuracy_drop))


def _number(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) \
        and not isinstance(value, bool) and math.isfinite(value)
