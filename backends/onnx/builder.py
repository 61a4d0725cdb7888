"""A small, deterministic ONNX graph builder and the time-step graph description.

:class:`GraphBuilder` appends nodes and initializers with names derived from a scope and a
counter (no randomness, no ids), so building the same network twice gives the same bytes.
:class:`StepGraph` is what the step builders (:mod:`.step` for fixed point, :mod:`.float` for
the float IR) produce: one time step with explicit state inputs and outputs. :mod:`.window`
turns it into a whole-window model and :func:`step_model` into a one-step model.
"""

from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17          # every operator used here exists unchanged since opset 13-16
IR_VERSION = 8      # the IR version that goes with opset 17; loads in onnxruntime >= 1.11
PRODUCER = "snn-compile"
BATCH = "B"         # symbolic batch dimension
TIME = "T"          # symbolic time dimension of window models

INT64 = TensorProto.INT64
UINT8 = TensorProto.UINT8
FLOAT = TensorProto.FLOAT
BOOL = TensorProto.BOOL


@dataclass(frozen=True)
class Tensor:
    """Name, element type and dims (ints, or the strings ``"B"``/``"T"``) of a graph value."""

    name: str
    elem_type: int
    dims: tuple

    def value_info(self, name: str | None = None, lead: tuple = ()) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(name or self.name, self.elem_type,
                                             list(lead) + list(self.dims))


class GraphBuilder:
    """Collects nodes and (deduplicated) constant initializers of one ONNX graph."""

    def __init__(self, prefix: str = ""):
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._consts: dict[tuple, str] = {}
        self._counts: dict[str, int] = {}
        self._used: set[str] = set()
        self._scope = [prefix] if prefix else []

    @contextmanager
    def scope(self, name: str):
        """Prefix the names of everything created inside with ``name/``."""
        self._scope.append(name)
        try:
            yield
        finally:
            self._scope.pop()

    def fresh(self, hint: str) -> str:
        """A new unique value name ``scope/hint`` (``scope/hint_2`` on reuse)."""
        base = "/".join(self._scope + [hint])
        name, n = base, self._counts.get(base, 0)
        while name in self._used:
            n += 1
            name = f"{base}_{n}"
        self._counts[base] = n
        self._used.add(name)
        return name

    def _claim(self, name: str) -> str:
        """Reserve an explicit name; two values with one name would break SSA form."""
        if name in self._used:
            raise ValueError(f"ONNX value name '{name}' defined twice")
        self._used.add(name)
        return name

    def const(self, value, dtype=np.int64, hint: str = "const") -> str:
        """An initializer holding ``value`` (shared by every use of an identical constant)."""
        arr = np.array(value, dtype=dtype, order="C")  # (ascontiguousarray makes 0-d 1-d)
        key = (arr.dtype.str, arr.shape, arr.tobytes())
        if key not in self._consts:
            name = self.fresh(hint) if arr.ndim else self.fresh(f"{hint}_{arr.item()}")
            self.initializers.append(numpy_helper.from_array(arr, name))
            self._consts[key] = name
        return self._consts[key]

    def op(self, op_type: str, *inputs: str, out: str | None = None, **attrs) -> str:
        """Append one node with a single output; returns the output name."""
        name = self._claim(out) if out else self.fresh(op_type.lower())
        self.nodes.append(helper.make_node(op_type, list(inputs), [name],
                                           name=f"{name}:{op_type}", **attrs))
        return name

    def op_multi(self, op_type: str, inputs: list[str], outputs: list[str], **attrs) -> list[str]:
        """Append one node with several (named) outputs."""
        outputs = [self._claim(name) for name in outputs]
        self.nodes.append(helper.make_node(op_type, inputs, outputs,
                                           name=f"{outputs[-1]}:{op_type}", **attrs))
        return outputs

    def graph(self, name: str, inputs, outputs, doc: str = "") -> onnx.GraphProto:
        return helper.make_graph(self.nodes, name, inputs, outputs,
                                 initializer=self.initializers, doc_string=doc)


@dataclass(frozen=True)
class State:
    """A state carried from one step to the next: graph input ``name``, output ``name.next``."""

    name: str
    elem_type: int
    dims: tuple
    doc: str = ""

    @property
    def next(self) -> str:
        return f"{self.name}.next"

    @property
    def tensor(self) -> Tensor:
        return Tensor(self.name, self.elem_type, self.dims)


@dataclass
class StepGraph:
    """One time step: input ``x``, states in -> states out, and per-step records.

    ``records`` maps a record name (``"fc1.spikes"``, ``"fc1.v"``) to the value holding it;
    a record may be a state's ``.next`` value. ``doc`` describes the model for doc_string.
    """

    builder: GraphBuilder
    x: Tensor
    states: list[State] = field(default_factory=list)
    records: dict[str, Tensor] = field(default_factory=dict)
    doc: str = ""

    def add_state(self, name: str, elem_type: int, dims: tuple, doc: str = "") -> str:
        self.states.append(State(name, elem_type, tuple(dims), doc))
        return name

    def set_next(self, state: str, value: str) -> None:
        """Route ``value`` to the output ``state.next``."""
        self.builder.op("Identity", value, out=f"{state}.next")


def fifo_read(step: StepGraph, name: str, elem_type: int, dims: tuple, doc: str) -> str:
    """Declare the FIFO state ``name`` [depth, B, ...] and return its oldest slot [B, ...]."""
    b = step.builder
    step.add_state(name, elem_type, dims, doc=doc)
    return b.op("Gather", name, b.const(0), axis=0)


def fifo_push(step: StepGraph, name: str, value: str) -> None:
    """``name.next``: the FIFO without its oldest slot, with ``value`` [B, ...] appended."""
    b = step.builder
    rest = b.op("Slice", name, b.const([1]), b.const([np.iinfo(np.int64).max]), b.const([0]))
    step.set_next(name, b.op("Concat", rest, b.op("Unsqueeze", value, b.const([0])), axis=0))


def rename(graph: onnx.GraphProto, mapping: dict[str, str]) -> onnx.GraphProto:
    """Rename values of a (subgraph-free) graph: inputs, outputs, node inputs and outputs."""
    for node in graph.node:
        node.input[:] = [mapping.get(n, n) for n in node.input]
        node.output[:] = [mapping.get(n, n) for n in node.output]
    for info in list(graph.input) + list(graph.output):
        info.name = mapping.get(info.name, info.name)
    return graph


def make_model(graph: onnx.GraphProto, metadata: dict[str, object]) -> onnx.ModelProto:
    """Wrap ``graph`` into a model with our opset, producer and metadata_props (JSON values)."""
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name=PRODUCER, producer_version="1",
                              ir_version=IR_VERSION)
    props = {k: v if isinstance(v, str) else json.dumps(v, sort_keys=True)
             for k, v in metadata.items()}
    helper.set_model_props(model, dict(sorted(props.items())))
    return model


def step_model(step: StepGraph, metadata: dict) -> onnx.ModelProto:
    """The one-step model: inputs ``x`` + states, outputs ``<state>.next`` + other records."""
    state_nexts = {s.next for s in step.states}
    inputs = [step.x.value_info()] + [s.tensor.value_info() for s in step.states]
    outputs = [s.tensor.value_info(s.next) for s in step.states]
    outputs += [rec.value_info() for rec in step.records.values() if rec.name not in state_nexts]
    graph = step.builder.graph("step", inputs, outputs, doc=step.doc)
    return make_model(graph, metadata)


def save(model: onnx.ModelProto, path) -> None:
    """Write ``model`` deterministically (same model -> same bytes)."""
    with open(path, "wb") as fh:
        fh.write(model.SerializeToString(deterministic=True))
