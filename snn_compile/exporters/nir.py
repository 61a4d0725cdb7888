"""Write an IR :class:`~snn_compile.ir.Graph` as a NIR graph (``.nir``).

NIR has no time step, so the exporter picks continuous-time parameters that mean the IR's
per-step equations under NIR forward Euler at ``dt`` (snnTorch's encoding)::

    LIF      tau = dt / (1 - beta),  r = tau / dt,  v_leak = bias / (1 - beta),  v_reset = 0
    CubaLIF  tau_syn = dt / (1 - alpha),  w_in = tau_syn / dt,  tau_mem, r, v_leak as LIF
    IF       r = 1 / dt                      LI  as LIF without threshold
    Delay    delay = steps * dt

so ``load_nir(path, convention="euler", dt=dt)`` (and ``"snntorch"`` at its dt of 1e-4) gives the
same decays, gains and thresholds back. NIR cannot say how the spike and reset are discretised,
so every neuron also carries ``metadata["snn_compile"]`` with ``reset``, ``reset_timing``,
``reset_discards_input``, ``spike_test`` and ``dt`` (multi-spike neurons ``max_spikes``, 0 for
no cap; a membrane floor ``v_floor``) and the graph carries ``dt``;
``load_nir(path, convention="snn_compile")`` reads them and restores the graph exactly.
Other tools ignore this metadata (NIR says not to rely on it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import UnsupportedError
from ..ir import (
    IF, LI, LIF, Affine, AvgPool2d, Conv2d, CubaLIF, Delay, Flatten, Graph, Input, Output, Scale,
    Sum, SumPool2d,
)

__all__ = ["export_nir", "to_nir"]

DEFAULT_DT = 1e-4  # snnTorch's hard-coded time step, so snnTorch's importer reads it right
META_KEY = "snn_compile"


def export_nir(graph: Graph, path, *, dt: float | None = None) -> Path:
    """Write ``graph`` to ``path`` as NIR; ``dt`` defaults to ``graph.metadata["dt"]`` or 1e-4."""
    import nir

    nir.write(str(path), to_nir(graph, dt=dt))
    return Path(path)


def to_nir(graph: Graph, *, dt: float | None = None):
    """The ``nir.NIRGraph`` of ``graph`` (see the module docstring for the parameter mapping)."""
    import nir

    dt = float(dt if dt is not None else graph.metadata.get("dt", DEFAULT_DT))
    shapes = graph.shapes
    in_shapes = {n.name: _input_shape(graph, n.name, shapes) for n in graph.nodes}
    nodes = {}
    for node in graph.nodes:
        writer = _WRITERS.get(type(node))
        if writer is None:
            raise UnsupportedError(f"{type(node).__name__} has no NIR equivalent", node=node.name)
        nodes[node.name] = writer(node, dt, in_shapes[node.name])
    edges = []
    for e in graph.edges:
        if e.delay == 0 or (e.delay == 1 and graph.is_recurrent(e)):
            edges.append((e.src, e.dst))  # NIR cycles read the previous step
            continue
        name = f"{e.src}.delay{e.delay}.{e.dst}"
        nodes[name] = nir.Delay(delay=np.full(shapes[e.src], e.delay * dt))
        edges += [(e.src, name), (name, e.dst)]
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={META_KEY: {"dt": dt, "format": 1}})


def _input_shape(graph, name, shapes):
    preds = graph.predecessors(name)
    return shapes[preds[0]] if preds else None


def _f64(x, shape=None):
    arr = np.asarray(x, dtype=np.float64)
    return arr if shape is None else np.broadcast_to(arr, shape).copy()


def _semantics(node, dt):
    meta = {"reset": node.reset, "reset_timing": node.reset_timing,
            "reset_discards_input": bool(node.reset_discards_input),
            "spike_test": node.spike_test, "dt": dt}
    if node.multi_spike:
        meta["max_spikes"] = 0 if node.max_spikes is None else int(node.max_spikes)  # 0: no cap
    if node.v_floor is not None:
        meta["v_floor"] = _f64(node.v_floor, node.shape)
    return {META_KEY: meta}


def _tau(name, decay, dt, what):
    decay = _f64(decay)
    if np.any(decay <= 0) or np.any(decay >= 1):
        raise UnsupportedError(f"{what} must lie in (0, 1) to be written as a NIR time constant",
                               node=name, value=f"{what} range [{decay.min()}, {decay.max()}]",
                               hint="NIR has no exact form for a decay of 0 or 1 in a leaky "
                                    "node; use IF for no leak")
    return dt / (1.0 - decay)


def _leak(node, beta):
    return _f64(node.bias, node.shape) / (1.0 - beta)


def _write_input(node, dt, _):
    import nir
    return nir.Input(input_type={"input": np.array(node.shape)})


def _write_output(node, dt, in_shape):
    import nir
    return nir.Output(output_type={"output": np.array(in_shape)})


def _write_affine(node, dt, _):
    import nir
    if node.bias is None:
        return nir.Linear(weight=_f64(node.weight))
    return nir.Affine(weight=_f64(node.weight), bias=_f64(node.bias))


def _write_scale(node, dt, in_shape):
    import nir
    return nir.Scale(scale=_f64(node.scale, in_shape))


def _write_sum(node, dt, in_shape):
    import nir
    return nir.Scale(scale=np.ones(in_shape))  # NIR nodes sum their inputs; x * 1 is exact


def _write_conv(node, dt, in_shape):
    import nir
    bias = np.zeros(node.weight.shape[0]) if node.bias is None else _f64(node.bias)
    return nir.Conv2d(input_shape=tuple(in_shape[1:]), weight=_f64(node.weight),
                      stride=node.stride, padding=node.padding, dilation=node.dilation,
                      groups=node.groups, bias=bias)


def _write_pool(cls_name):
    def writer(node, dt, _):
        import nir
        cls = getattr(nir, cls_name)
        return cls(kernel_size=np.array(node.kernel_size), stride=np.array(node.stride),
                   padding=np.array(node.padding))
    return writer


def _write_flatten(node, dt, in_shape):
    import nir
    return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=0, end_dim=-1)


def _write_delay(node, dt, in_shape):
    import nir
    return nir.Delay(delay=np.full(in_shape, node.steps * dt))


def _write_lif(node, dt, _):
    import nir
    beta = _f64(node.beta, node.shape)
    tau = _tau(node.name, beta, dt, "beta")
    return nir.LIF(tau=tau, r=tau / dt, v_leak=_leak(node, beta),
                   v_threshold=_f64(node.threshold, node.shape),
                   v_reset=np.zeros(node.shape), metadata=_semantics(node, dt))


def _write_cubalif(node, dt, _):
    import nir
    alpha, beta = _f64(node.alpha, node.shape), _f64(node.beta, node.shape)
    tau_syn = _tau(node.name, alpha, dt, "alpha")
    tau_mem = _tau(node.name, beta, dt, "beta")
    return nir.CubaLIF(tau_syn=tau_syn, tau_mem=tau_mem, r=tau_mem / dt, w_in=tau_syn / dt,
                       v_leak=_leak(node, beta), v_threshold=_f64(node.threshold, node.shape),
                       v_reset=np.zeros(node.shape), metadata=_semantics(node, dt))


def _write_if(node, dt, _):
    import nir
    if np.any(_f64(node.bias) != 0):
        raise UnsupportedError("NIR IF has no bias (constant input current)", node=node.name,
                               value=f"bias {np.unique(node.bias)[:3]}")
    return nir.IF(r=np.full(node.shape, 1.0 / dt), v_threshold=_f64(node.threshold, node.shape),
                  v_reset=np.zeros(node.shape), metadata=_semantics(node, dt))


def _write_li(node, dt, _):
    import nir
    beta = _f64(node.beta, node.shape)
    tau = _tau(node.name, beta, dt, "beta")
    return nir.LI(tau=tau, r=tau / dt, v_leak=_leak(node, beta))


_WRITERS = {
    Input: _write_input, Output: _write_output, Affine: _write_affine, Scale: _write_scale,
    Sum: _write_sum,
    Conv2d: _write_conv, SumPool2d: _write_pool("SumPool2d"), AvgPool2d: _write_pool("AvgPool2d"),
    Flatten: _write_flatten, Delay: _write_delay, LIF: _write_lif, CubaLIF: _write_cubalif,
    IF: _write_if, LI: _write_li,
}
