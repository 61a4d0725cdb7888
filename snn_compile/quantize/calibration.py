"""State ranges from the float reference on calibration data, and the input encoding."""

from __future__ import annotations

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


def input_encoding(pg: PopulationGraph, target: Target, calibration) -> QInput:
    """Binary spikes, or graded values scaled so the calibration peak fits the input format."""
    shape = pg.input.shape
    graded = calibration is not None and not np.isin(calibration, (0, 1)).all()
    if not graded:
        return QInput(name=pg.input.name, shape=shape, dtype=BINARY)
    if not target.features.graded_input:
        raise UnsupportedError(f"target '{target.name}' takes binary spikes only",
                               hint="encode the input as 0/1 spikes")
    bits = min(8, target.features.input.bits)
    dtype = IntType(bits)
    peak = float(np.abs(calibration).max()) or 1.0
    return QInput(name=pg.input.name, shape=shape, dtype=dtype, scale=dtype.max / peak)


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
