"""State ranges from the float reference on calibration data, and the input encoding."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..datatypes import BINARY, IntType
from ..errors import SnnCompileError, UnsupportedError
from ..ir.fixed import QInput
from ..targets import Target
from ..passes.populations import PopulationGraph


def check_calibration(data, input_shape) -> np.ndarray:
    data = np.asarray(data)
    if np.iscomplexobj(data) or not np.issubdtype(data.dtype, np.number):
        raise SnnCompileError("calibration data must hold real numbers", value=str(data.dtype))
    if data.ndim < 2 or tuple(data.shape[2:]) != tuple(input_shape) or 0 in data.shape[:2]:
        raise SnnCompileError("calibration data do not fit the model's input",
                              value=f"shape {data.shape}",
                              hint=f"time-major [T, B, {', '.join(map(str, input_shape))}]")
    if not np.all(np.isfinite(data)):
        raise SnnCompileError("calibration data contain NaN or Inf")
    return data


INPUT_QUANTILE = 0.999  # of the non-zero |x|: the value the input format's largest integer means
INPUT_BITS = 8          # graded input integers (at most the target's input format)


@dataclass
class InputReport:
    """How the network input is encoded and what that costs (``Quantized.input``).

    ``kind``: ``binary`` (0/1 spikes), ``counts`` (integer values such as event counts, encoded
    as themselves: multi-spike input, scale 1) or ``graded`` (scaled by ``scale`` so that the
    ``INPUT_QUANTILE`` quantile of the non-zero magnitudes, ``reference``, reaches the format's
    largest integer). ``saturated`` is the fraction of calibration entries clipped to the format
    (of the non-zero ones: ``saturated_nonzero``), ``rms_error`` the RMS of the encoding error
    relative to the RMS of the input. When the encoding is not exact, the float reference is run
    on the calibration data as encoded: ``output_agreement`` is the fraction of output entries
    that stay the same and ``class_agreement`` the fraction of samples whose predicted class
    (most output spikes) stays the same (both 1.0 for an exact encoding). A check's verdict
    should fail when these cost accuracy (``costs_accuracy``)."""

    kind: str
    dtype: str
    scale: float
    peak: float
    reference: float
    saturated: float = 0.0
    saturated_nonzero: float = 0.0
    rms_error: float = 0.0
    exact: bool = True
    output_agreement: float | None = 1.0
    class_agreement: float | None = 1.0
    notes: list = field(default_factory=list)

    def costs_accuracy(self, max_class_loss: float = 0.01) -> bool:
        """True when the input encoding alone changes more than ``max_class_loss`` of the
        predicted classes on the calibration data."""
        return self.class_agreement is not None and self.class_agreement < 1 - max_class_loss


def input_encoding(pg: PopulationGraph, target: Target, calibration
                   ) -> tuple[QInput, InputReport]:
    """Binary spikes, integer counts as themselves, or graded values scaled from their
    distribution (see :class:`InputReport`); rare larger values saturate."""
    shape = pg.input.shape
    graded = calibration is not None and not np.isin(calibration, (0, 1)).all()
    if not graded:
        return (QInput(name=pg.input.name, shape=shape, dtype=BINARY),
                InputReport(kind="binary", dtype=str(BINARY), scale=1.0, peak=1.0,
                            reference=1.0))
    if not target.features.graded_input:
        raise UnsupportedError(f"target '{target.name}' takes binary spikes only",
                               hint="encode the input as 0/1 spikes")
    dtype = IntType(min(INPUT_BITS, target.features.input.bits))
    x = np.abs(np.asarray(calibration, np.float64))
    nonzero = x[x > 0]
    peak = float(nonzero.max(initial=0.0)) or 1.0
    reference = float(np.quantile(nonzero, INPUT_QUANTILE)) if nonzero.size else 1.0
    counts = bool(np.all(np.asarray(calibration) == np.rint(calibration)))
    if counts and reference <= dtype.max:
        kind, scale = "counts", 1.0
    else:
        kind, scale = "graded", dtype.max / reference
    encoding = QInput(name=pg.input.name, shape=shape, dtype=dtype, scale=scale, saturate=True)
    report = _encoding_report(encoding, kind, calibration, peak, reference)
    return encoding, report


def _encoding_report(encoding: QInput, kind: str, data, peak: float, reference: float
                     ) -> InputReport:
    x = np.asarray(data, np.float64)
    decoded = encoding.encode(x).reshape(x.shape) / encoding.scale
    lo, hi = encoding.value_range
    scaled = np.rint(x * encoding.scale)
    clipped = (scaled < lo) | (scaled > hi)
    nonzero = x != 0
    rms = float(np.sqrt(np.mean(x ** 2))) or 1.0
    report = InputReport(
        kind=kind, dtype=str(encoding.dtype), scale=float(encoding.scale), peak=peak,
        reference=reference, saturated=float(np.mean(clipped)),
        saturated_nonzero=float(clipped[nonzero].mean()) if nonzero.any() else 0.0,
        rms_error=float(np.sqrt(np.mean((decoded - x) ** 2)) / rms),
        exact=bool(np.array_equal(decoded, x)))
    fmt = f"{encoding.dtype} (largest {hi})"
    if kind == "counts":
        report.notes.append(f"integer input (event counts up to {peak:g}) encoded as itself in "
                            f"{fmt}: multi-spike input, scale 1")
    else:
        report.notes.append(f"graded input scaled by {encoding.scale:.4g}: the "
                            f"{INPUT_QUANTILE:.1%} quantile of the non-zero magnitudes "
                            f"({reference:.4g}, peak {peak:g}) maps to {hi} in {fmt}")
    if report.saturated:
        report.notes.append(f"{report.saturated:.3%} of the calibration entries "
                            f"({report.saturated_nonzero:.3%} of the non-zero ones) exceed "
                            f"{hi / encoding.scale:g} and saturate")
    if not report.exact:
        report.output_agreement = report.class_agreement = None  # filled by input_cost
    return report


def input_cost(graph, calibration, encoding: QInput, report: InputReport) -> None:
    """Fill ``report``'s agreements: the float reference on the calibration data as encoded
    versus as given (only run when the encoding is not exact)."""
    if report.exact:
        return
    from ..reference import simulate

    x = np.asarray(calibration, np.float32)
    decoded = (encoding.encode(x).reshape(x.shape) / encoding.scale).astype(np.float32)
    want, got = simulate(graph, x).output, simulate(graph, decoded).output
    report.output_agreement = float(np.mean(want == got)) if want.size else 1.0
    flat = lambda out: out.sum(axis=0).reshape(out.shape[1], -1)  # noqa: E731
    classes_want, classes_got = flat(want).argmax(axis=1), flat(got).argmax(axis=1)
    report.class_agreement = float(np.mean(classes_want == classes_got))
    report.notes.append(f"input encoding alone: {report.output_agreement:.3%} of the float "
                        f"model's output entries and {report.class_agreement:.1%} of its "
                        "predicted classes unchanged on the calibration data")
    if report.class_agreement < 1 and report.saturated:
        report.notes.append("the saturated values change predictions: normalise the input "
                            "(or train on it clipped) so that its large values are rare")


def float_input(proj, x: np.ndarray, shape) -> np.ndarray:
    """Float product of a float projection with ``x`` [N, *source shape] -> [N, n]."""
    import torch

    if proj.kind == "conv":
        geo = proj.conv
        y = torch.nn.functional.conv2d(torch.from_numpy(x.reshape(-1, *geo.in_shape)),
                                       torch.from_numpy(proj.weight), stride=geo.stride,
                                       padding=geo.padding, dilation=geo.dilation,
                                       groups=geo.groups)
        if geo.max_pool is not None:
            y = torch.nn.functional.max_pool2d(y, *geo.max_pool)
        return y.reshape(x.shape[0], -1).numpy()
    flat = x.reshape(x.shape[0], -1)
    if proj.kind == "dense":
        return flat @ proj.weight.T
    return flat * np.broadcast_to(proj.weight, shape).reshape(-1)


def state_ranges(graph, pg: PopulationGraph, data: np.ndarray) -> dict[str, dict]:
    """Max |synaptic input|, |v| and |i| per population from the float reference on ``data``."""
    from ..reference import simulate

    trace = simulate(graph, data)
    steps = data.shape[0]
    out = {}
    for pop in pg.populations:
        total = None
        for proj in pg.incoming(pop.name):
            src = np.asarray(data if proj.source == pg.input.name
                             else trace.layers[proj.source]["spikes"], np.float64)
            d = proj.float_delay
            shifted = np.zeros_like(src)
            if steps > d:
                shifted[d:] = src[:steps - d]
            flat = shifted.reshape(-1, *pg.shape_of(proj.source))
            part = float_input(proj, flat, pop.shape)
            total = part if total is None else total + part
        current = 0.0 if total is None else float(np.abs(total + pop.bias).max(initial=0.0))
        states = trace.layers.get(pop.name, {})
        out[pop.name] = {
            "current": current,
            "v": float(np.abs(states["v"]).max(initial=0.0)) if "v" in states else None,
            "i": float(np.abs(states["i"]).max(initial=0.0)) if "i" in states else None,
        }
    return out
