"""A whole time window: the step graph as the body of one ONNX ``Scan`` over time.

``Scan`` iterates the unchanged step graph over axis 0 of ``x`` [T, B, ...], carrying the
states and stacking the per-step records to ``[T, B, ...]``. Compared with unrolling T copies
of the step, the file does not grow with T, any T runs with the same model, and the body is
byte-for-byte the step model's graph, so what is verified for one is verified for the other.
Initial states are zeros built from the runtime batch size (``Shape(x)[1]``).
"""

from __future__ import annotations

import onnx
from onnx import helper

from .builder import BATCH, TIME, GraphBuilder, StepGraph, Tensor, make_model, rename

_ZERO = {onnx.TensorProto.INT64: 0, onnx.TensorProto.FLOAT: 0.0}


def _body(step: StepGraph) -> onnx.GraphProto:
    """The step graph with Scan's signature: (states, x_t) -> (states', records_t).

    Values whose names the outer graph uses (``x``, the record names) get a ``.t`` suffix:
    a subgraph must not shadow names of its enclosing graph.
    """
    b = step.builder
    outputs = [s.tensor.value_info(s.next) for s in step.states]
    for name, rec in step.records.items():
        out = b.op("Identity", rec.name, out=f"{name}.record")
        outputs.append(Tensor(out, rec.elem_type, rec.dims).value_info())
    inputs = [s.tensor.value_info() for s in step.states] + [step.x.value_info()]
    graph = b.graph("step", inputs, outputs, doc=step.doc)
    outer = [step.x.name] + list(step.records)
    return rename(graph, {name: f"{name}.t" for name in outer})


def _zeros(b: GraphBuilder, batch: str, tensor: Tensor) -> str:
    """A zero tensor of ``tensor``'s type and dims, the batch dimension taken from ``batch``."""
    pieces = [batch if d == BATCH else b.const([d]) for d in tensor.dims]
    shape = b.op("Concat", *pieces, axis=0)
    value = helper.make_tensor("zero", tensor.elem_type, [1], [_ZERO[tensor.elem_type]])
    return b.op("ConstantOfShape", shape, value=value, out=f"init/{tensor.name}")


def window_model(step: StepGraph, metadata: dict, steps: int | None = None) -> onnx.ModelProto:
    """Input ``x`` [T, B, ...]; outputs every record stacked over time, ``[T, B, ...]``.

    ``steps`` fixes T in the declared shapes (the model still accepts only that T then).
    """
    records = list(step.records.items())
    body = _body(step)
    time = TIME if steps is None else int(steps)
    b = GraphBuilder()
    x = step.x.value_info("x", lead=(time,))
    batch = b.op("Slice", b.op("Shape", "x"), b.const([1]), b.const([2]), out="init/batch")
    inits = [_zeros(b, batch, s.tensor) for s in step.states]
    finals = [f"final/{s.name}" for s in step.states]
    b.op_multi("Scan", inits + ["x"], finals + [name for name, _ in records], body=body,
               num_scan_inputs=1)
    outputs = [Tensor(name, rec.elem_type, rec.dims).value_info(lead=(time,))
               for name, rec in records]
    graph = b.graph("window", [x], outputs, doc=f"{step.doc}, scanned over T steps")
    return make_model(graph, metadata)
