"""``export_float_onnx``: the float IR (:mod:`snn_compile.ir`) as a float32 ONNX model.

One step of the graph follows :mod:`snn_compile.ir.graph` and the node docstrings, in the order
the float reference simulator (:mod:`snn_compile.reference`) evaluates them: the graph's
evaluation order, a node's inputs summed in the graph's summation order, a neuron adding its
inputs one by one after the leak term, an edge with delay ``d`` reading its source's output of
``d`` steps ago.

States (float32): ``<neuron>.v`` [B, *shape] (and ``<neuron>.i`` for CubaLIF), ``<LI>.v``,
``<delay>.queue`` [steps, B, *shape], and ``<node>.history`` [D, B, *shape] (oldest first) for
every source of a delayed edge, ``D`` its longest delay. Records: ``<neuron>.spikes``/``.v``
(/``.i``), ``<LI>.v`` and ``<Output node>``.
"""

from __future__ import annotations

from functools import reduce

import numpy as np
import onnx

from snn_compile.errors import GraphError
from snn_compile.ir.graph import Graph
from snn_compile.ir.nodes import (
    IF, LI, LIF, Affine, AvgPool2d, Conv2d, CubaLIF, Delay, Flatten, Input, NeuronNode, Output,
    Scale, Sum, SumPool2d,
)

from .builder import BATCH, FLOAT, GraphBuilder, StepGraph, Tensor, fifo_push, fifo_read, save, \
    step_model
from .window import window_model


def _f32(b: GraphBuilder, value, hint: str) -> str:
    return b.const(value, dtype=np.float32, hint=hint)


def _add_all(b: GraphBuilder, first: str, inputs: list[str]) -> str:
    """``((first + in_1) + in_2) + ...``: the simulator's summation order."""
    return reduce(lambda acc, x: b.op("Add", acc, x), inputs, first)


def _sum(b: GraphBuilder, inputs: list[str]) -> str:
    return _add_all(b, inputs[0], inputs[1:])


# --------------------------------------------------------------------------- stateless nodes


def _affine(step, node: Affine, inputs, in_shape):
    b = step.builder
    y = b.op("MatMul", _sum(b, inputs), _f32(b, node.weight.T, "weight_t"))
    return y if node.bias is None else b.op("Add", y, _f32(b, node.bias, "bias"))


def _conv_attrs(kernel, stride, padding, dilation=(1, 1), group=1) -> dict:
    return {"kernel_shape": list(kernel), "strides": list(stride), "dilations": list(dilation),
            "pads": [padding[0], padding[1], padding[0], padding[1]], "group": group}


def _conv2d(step, node: Conv2d, inputs, in_shape):
    b = step.builder
    args = [_sum(b, inputs), _f32(b, node.weight, "weight")]
    if node.bias is not None:
        args.append(_f32(b, node.bias, "bias"))
    return b.op("Conv", *args, **_conv_attrs(node.weight.shape[2:], node.stride, node.padding,
                                             node.dilation, node.groups))


def _sumpool2d(step, node: SumPool2d, inputs, in_shape):
    """Window sum as a depthwise convolution with a kernel of ones."""
    b, channels = step.builder, in_shape[0]
    ones = _f32(b, np.ones((channels, 1, *node.kernel_size)), "ones")
    return b.op("Conv", _sum(b, inputs), ones,
                **_conv_attrs(node.kernel_size, node.stride, node.padding, group=channels))


def _avgpool2d(step, node: AvgPool2d, inputs, in_shape):
    attrs = _conv_attrs(node.kernel_size, node.stride, node.padding)
    return step.builder.op("AveragePool", _sum(step.builder, inputs), count_include_pad=1,
                           kernel_shape=attrs["kernel_shape"], strides=attrs["strides"],
                           pads=attrs["pads"])


def _flatten(step, node: Flatten, inputs, in_shape):
    return step.builder.op("Flatten", _sum(step.builder, inputs), axis=1)


def _scale(step, node: Scale, inputs, in_shape):
    b = step.builder
    return b.op("Mul", _sum(b, inputs), _f32(b, node.scale, "scale"))


def _sum_node(step, node: Sum, inputs, in_shape):
    return _sum(step.builder, inputs)


def _output(step, node: Output, inputs, in_shape):
    b = step.builder
    value = b.op("Identity", _sum(b, inputs), out=node.name)
    step.records[node.name] = Tensor(value, FLOAT, (BATCH, *in_shape))
    return value


# --------------------------------------------------------------------------- stateful nodes


def _delay(step, node: Delay, inputs, in_shape):
    b = step.builder
    x = _sum(b, inputs)
    if node.steps == 0:
        return x
    name = f"{node.name}.queue"
    fifo_push(step, name, x)
    return fifo_read(step, name, FLOAT, (node.steps, BATCH, *in_shape),
                     doc=f"pure delay of {node.steps} steps")


def _state(step, node, key: str, doc: str) -> str:
    return step.add_state(f"{node.name}.{key}", FLOAT, (BATCH, *node.shape), doc=doc)


def _record(step, node, key: str, value: str) -> None:
    """Route ``value`` to the state output ``<node>.<key>.next`` and record it as ``key``."""
    step.set_next(f"{node.name}.{key}", value)
    step.records[f"{node.name}.{key}"] = Tensor(f"{node.name}.{key}.next", FLOAT,
                                                (BATCH, *node.shape))


def _li(step, node: LI, inputs, in_shape):
    b = step.builder
    v_prev = _state(step, node, "v", "leaky integrator state")
    v = _add_all(b, b.op("Mul", _f32(b, node.beta, "beta"), v_prev), inputs)
    if np.any(node.bias):
        v = b.op("Add", v, _f32(b, node.bias, "bias"))
    _record(step, node, "v", v)
    return v


def _integrate_lif(step, node: LIF, v, inputs):
    b = step.builder
    return _add_all(b, b.op("Mul", _f32(b, node.beta, "beta"), v), inputs)


def _integrate_if(step, node: IF, v, inputs):
    return _add_all(step.builder, v, inputs)


def _integrate_cuba(step, node: CubaLIF, v, inputs):
    b = step.builder
    i_prev = _state(step, node, "i", "synaptic current")
    i = _add_all(b, b.op("Mul", _f32(b, node.alpha, "alpha"), i_prev), inputs)
    _record(step, node, "i", i)
    return b.op("Add", b.op("Mul", _f32(b, node.beta, "beta"), v), i)


INTEGRATE = {LIF: _integrate_lif, IF: _integrate_if, CubaLIF: _integrate_cuba}


def _neuron(step, node: NeuronNode, inputs, in_shape):
    """Reset rules and spike test shared by LIF, CubaLIF and IF (see ``ir/nodes.py``)."""
    b = step.builder
    thr = _f32(b, node.threshold, "threshold")
    zero, one = _f32(b, 0.0, "zero"), _f32(b, 1.0, "one")
    test = "Greater" if node.spike_test == ">" else "GreaterOrEqual"

    def fire(v):
        return b.op("Cast", b.op(test, b.op("Sub", v, thr), zero), to=FLOAT)

    v = _state(step, node, "v", "membrane")
    r = None if node.reset_timing == "immediate" or node.reset == "none" else fire(v)
    if r is not None and node.reset == "zero" and not node.reset_discards_input:
        v = b.op("Mul", b.op("Sub", one, r), v)
    v = INTEGRATE[type(node)](step, node, v, inputs)
    if np.any(node.bias):
        v = b.op("Add", v, _f32(b, node.bias, "bias"))
    if r is not None and node.reset == "subtract":
        v = b.op("Sub", v, b.op("Mul", r, thr))
    elif r is not None and node.reset == "zero" and node.reset_discards_input:
        v = b.op("Sub", v, b.op("Mul", r, v))
    if node.multi_spike:
        count = b.op("Floor", b.op("Div", v, thr))
        cap = _f32(b, np.inf if node.max_spikes is None else node.max_spikes, "cap")
        s = b.op("Min", b.op("Max", count, zero), cap, out=f"{node.name}.spikes")
    else:
        s = b.op("Identity", fire(v), out=f"{node.name}.spikes")
    if node.reset_timing != "next_step" and node.reset != "none":
        change = s if r is None else b.op("Sub", s, r)
        if node.reset == "subtract":
            v = b.op("Sub", v, b.op("Mul", change, thr))
        elif node.multi_spike:
            v = b.op("Mul", v, b.op("Cast", b.op("Equal", s, zero), to=FLOAT))
        else:
            v = b.op("Sub", v, b.op("Mul", change, v))
    if node.v_floor is not None:
        floor = _f32(b, node.v_floor, "v_floor")
        v = b.op("Add", b.op("Relu", b.op("Sub", v, floor)), floor)
    _record(step, node, "v", v)
    step.records[f"{node.name}.spikes"] = Tensor(s, FLOAT, (BATCH, *node.shape))
    return s


KERNELS = {
    Affine: _affine, Conv2d: _conv2d, SumPool2d: _sumpool2d, AvgPool2d: _avgpool2d,
    Flatten: _flatten, Scale: _scale, Sum: _sum_node, Output: _output, Delay: _delay, LI: _li,
    LIF: _neuron, IF: _neuron, CubaLIF: _neuron,
}


# --------------------------------------------------------------------------- driver


def build_float_step(graph: Graph) -> StepGraph:
    """The one-step graph of a float IR graph (input ``x``: float32 [B, *input_shape])."""
    shapes = graph.shapes  # verifies the graph
    if len(graph.inputs) != 1:
        raise GraphError("ONNX export needs exactly one Input node",
                         value=[n.name for n in graph.inputs])
    b = GraphBuilder()
    source = graph.inputs[0]
    step = StepGraph(builder=b, x=Tensor("x", FLOAT, (BATCH, *source.shape)),
                     doc="one time step of a float SNN graph")
    depth: dict[str, int] = {}
    for e in graph.edges:
        if e.delay:
            depth[e.src] = max(depth.get(e.src, 0), e.delay)
    history = {src: step.add_state(f"{src}.history", FLOAT, (d, BATCH, *shapes[src]),
                                   doc=f"outputs of the last {d} steps, oldest first")
               for src, d in sorted(depth.items())}
    current = {source.name: step.x.name}
    for node in graph.in_order():
        if isinstance(node, Input):
            continue
        kernel = KERNELS.get(type(node))
        if kernel is None:
            raise GraphError("the ONNX exporter has no kernel for this node type",
                             node=node.name, value=type(node).__name__)
        edges = graph.incoming(node.name)
        inputs = [current[e.src] if e.delay == 0 else
                  b.op("Gather", history[e.src], b.const(depth[e.src] - e.delay), axis=0)
                  for e in edges]
        in_shape = shapes[edges[0].src]
        with b.scope(node.name):
            current[node.name] = kernel(step, node, inputs, in_shape)
    for src, state in history.items():
        with b.scope(state):
            fifo_push(step, state, current[src])
    return step


def float_metadata(graph: Graph, mode: str) -> dict:
    props = {
        "snn_compile.kind": "float",
        "snn_compile.mode": mode,
        "snn_compile.input_shape": list(graph.inputs[0].shape),
        "snn_compile.layers": [{"name": n.name, "shape": list(n.shape), "type": type(n).__name__}
                               for n in graph.nodes if isinstance(n, (NeuronNode, LI))],
    }
    source = graph.metadata.get("source_sha256")
    if source is not None:
        props["snn_compile.source_sha256"] = str(source)
    return props


def export_float_onnx(graph: Graph, path=None, steps: int | None = None, *,
                      mode: str = "step") -> onnx.ModelProto:
    """Build (and write to ``path``) the float32 ONNX model of the float IR ``graph``.

    ``mode="step"``: one step, states as inputs/outputs; ``mode="window"``: ``Scan`` over
    ``x`` [T, B, *input_shape] from zero states (``steps`` fixes T in the declared shapes).
    """
    if mode not in ("step", "window"):
        raise GraphError("unknown ONNX export mode", value=mode, hint="use 'step' or 'window'")
    step = build_float_step(graph)
    props = float_metadata(graph, mode)
    model = step_model(step, props) if mode == "step" else window_model(step, props, steps)
    if path is not None:
        save(model, path)
    return model
