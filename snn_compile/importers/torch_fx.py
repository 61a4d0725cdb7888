"""Read the data flow of a custom ``forward`` with ``torch.fx`` (for :mod:`.snntorch`).

The module is traced symbolically for one time step (``forward(x)`` with ``x`` one step of
input ``[batch, *input_shape]``), with every layer the importer converts and every snnTorch
neuron as a leaf. Each fx node becomes IR nodes:

==========================================  ===============================================
``forward`` code                            IR
==========================================  ===============================================
``self.layer(x)`` (a supported layer)       the layer's nodes (its converter), named by path
``a + b``, ``torch.add(a, b)``              :class:`~snn_compile.ir.Sum` (``a + a``: Scale 2)
``a - b``                                   Sum of ``a`` and a Scale of -1 on ``b``
``x * c``, ``c * x``, ``x / 2**k``, ``-x``  Scale (``c`` a number or a constant tensor)
``x.flatten(1)``, ``x.view(x.size(0), -1)`` Flatten
``torch.relu``, ``F.relu``                  ReLU (a pass proves it acts on spikes)
``F.max_pool2d``, ``F.avg_pool2d``          MaxPool2d, AvgPool2d
``spk, mem = self.lif(x)``                  the neuron; ``spk`` feeds on, ``mem`` only as a
                                            returned extra (the IR passes spikes)
==========================================  ===============================================

The first tensor ``forward`` returns is the network output (more returned tensors are
recordings and ignored). Everything else (products of two tensors, concatenation, indexing,
membranes used as data, a layer called twice in one step, explicit neuron states) raises
:class:`~snn_compile.errors.UnsupportedError` naming the line of ``forward`` that used it. A
``forward`` that fx cannot trace at all (a Python loop over time, data-dependent control flow),
or that indexes its input (a loop over a time-major input, unrolled by fx), raises
:class:`NotTraceable`, and the importer falls back to its hook-based chain reader.
"""

from __future__ import annotations

import copy
import math
import operator
import re
from dataclasses import dataclass

import numpy as np
import snntorch as snn
import torch
import torch.fx as fx
import torch.nn.functional as F
from torch import nn

from ..errors import SnnCompileError, UnsupportedError
from ..ir.nodes import AvgPool2d, Flatten, Identity, MaxPool2d, ReLU, Scale, Sum

__all__ = ["NotTraceable", "read_forward"]


class NotTraceable(Exception):
    """torch.fx could not trace the forward (the caller falls back to hook tracing)."""


# --------------------------------------------------------------------------- values

@dataclass(frozen=True)
class _Tensor:
    name: str                 # the IR node whose output this is


@dataclass(frozen=True)
class _NeuronOut:
    name: str                 # the neuron's IR node (its spikes)
    tuple_: bool              # the module returned (spk, state...) rather than spk


@dataclass(frozen=True)
class _State:
    neuron: str               # a neuron's membrane or current: not data in the IR


@dataclass(frozen=True)
class _Const:
    value: object


@dataclass(frozen=True)
class _Size:
    of: _Tensor               # x.shape / x.size()


@dataclass(frozen=True)
class _Batch:
    """x.shape[0] / x.size(0)"""


# --------------------------------------------------------------------------- tracing

class _Tracer(fx.Tracer):
    def __init__(self, is_layer):
        super().__init__()
        self.record_stack_traces = True
        self._is_layer = is_layer

    def is_leaf_module(self, m: nn.Module, qualname: str) -> bool:
        return (isinstance(m, snn.SpikingNeuron) or self._is_layer(m)
                or super().is_leaf_module(m, qualname))


def read_forward(module: nn.Module, builder) -> str:
    """Add the nodes of ``module.forward`` to ``builder``; return the output node's name."""
    from .snntorch import _is_layer

    model = copy.deepcopy(module).eval()
    try:
        graph = _Tracer(_is_layer).trace(model)
    except Exception as exc:  # fx raises TraceError, TypeError, ... on untraceable code
        raise NotTraceable(str(exc)) from exc
    return _Reader(model, builder, graph).run()


_FRAME = re.compile(r'File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>\S+)\n\s*(?P<code>[^\n]*)')


def where(node: fx.Node) -> str:
    """``forward line N (file.py): <code>`` of the user code that created ``node``."""
    for m in _FRAME.finditer(node.stack_trace or ""):
        path = m["file"].replace("\\", "/")
        if "/torch/" in path or "/snn_compile/" in path:
            continue
        return f"{m['func']} line {m['line']} ({path.rsplit('/', 1)[-1]}): {m['code'].strip()}"
    return f"fx node '{node.name}'"


class _Reader:
    def __init__(self, model: nn.Module, builder, graph: fx.Graph):
        self.model, self.b, self.graph = model, builder, graph
        self.values: dict[fx.Node, object] = {}
        self.called: list[str] = []

    # ------------------------------------------------------------------ errors
    def refuse(self, node: fx.Node, message: str, hint: str, ir_node: str | None = None):
        return UnsupportedError(f"{message} at {where(node)}", node=ir_node or node.name,
                                hint=hint)

    # ------------------------------------------------------------------ driver
    def run(self) -> str:
        placeholders = [n for n in self.graph.nodes if n.op == "placeholder"]
        if not placeholders:
            raise UnsupportedError("forward takes no input")
        for node in self.graph.nodes:
            try:
                self.values[node] = self.visit(node, placeholders[0])
            except SnnCompileError as err:
                if "line" not in err.message and node.op != "placeholder":
                    err.message += f" at {where(node)}"
                    err.args = (str(err),)
                raise
            if node.op == "output":
                return self.values[node]
        raise UnsupportedError("forward returns nothing")

    def visit(self, node: fx.Node, first_input: fx.Node):
        if node.op == "placeholder":
            if node is first_input:
                return _Tensor(self.b.input)
            default = node.args[0] if node.args else None
            if node.users and not isinstance(default, (int, float, type(None))):
                raise self.refuse(node, f"forward uses a second input '{node.target}'",
                                  "the network takes one input tensor per time step")
            return _Const(default)
        if node.op == "get_attr":
            value = self.model
            for part in str(node.target).split("."):
                value = getattr(value, part)
            return _Const(value.detach() if isinstance(value, torch.Tensor) else value)
        if node.op == "call_module":
            return self.call_module(node)
        if node.op in ("call_function", "call_method"):
            return self.call_op(node)
        if node.op == "output":
            return self.output(node)
        raise self.refuse(node, f"unsupported fx operation {node.op}", "simplify forward")

    # ------------------------------------------------------------------ modules
    def call_module(self, node: fx.Node):
        from .snntorch import convert_layer

        path = str(node.target)
        layer = self.model.get_submodule(path)
        if path in self.called:
            raise UnsupportedError(f"layer called twice in one time step at {where(node)}",
                                   node=path,
                                   value=" -> ".join(self.called[self.called.index(path):]
                                                     + [path]),
                                   hint="use a separate layer instance for each use")
        self.called.append(path)
        args = [self.value(a) for a in node.args]
        if node.kwargs or not args:
            raise self.refuse(node, "a layer must be called with one tensor",
                              "pass the layer its input only", ir_node=path)
        args[0] = self.tensor(node, args[0], f"layer '{path}'")
        if isinstance(layer, snn.SpikingNeuron):
            extra = [a for a in args[1:] if not (isinstance(a, _Const) and a.value is None)]
            if extra:
                raise self.refuse(node, "neuron called with an explicit state",
                                  "build the neuron with init_hidden=True (its state then "
                                  "persists across the calls of forward, one per time step)",
                                  ir_node=path)
        elif len(args) > 1:
            raise self.refuse(node, "a layer must be called with one tensor",
                              "pass the layer its input only", ir_node=path)
        name = convert_layer(self.b, path, layer, args[0].name)
        if isinstance(layer, snn.SpikingNeuron):
            return _NeuronOut(name, tuple_=not (layer.init_hidden and not layer.output))
        return _Tensor(name)

    # ------------------------------------------------------------------ operations
    def call_op(self, node: fx.Node):
        target = node.target
        args = [self.value(a) for a in node.args]
        kwargs = {k: self.value(v) for k, v in node.kwargs.items()}
        op = target if node.op == "call_method" else _FUNCTIONS.get(target)
        if op is None:
            name = getattr(target, "__name__", str(target))
            raise self.refuse(node, f"operation {name}() has no IR equivalent",
                              "express it with supported layers (Linear, Conv2d, pooling, "
                              "neurons), additions and constant gains")
        handler = getattr(self, f"op_{op}", None)
        if handler is None:
            raise self.refuse(node, f"operation {op}() has no IR equivalent",
                              "express it with supported layers, additions and constant gains")
        return handler(node, *args, **kwargs)

    def tensor(self, node, value, what="this operation") -> _Tensor:
        if isinstance(value, _Tensor):
            return value
        if isinstance(value, _NeuronOut):
            if value.tuple_:
                raise self.refuse(node, "a neuron's (spikes, state) tuple used as a tensor",
                                  "unpack it: spk, mem = self.lif(x)")
            return _Tensor(value.name)
        if isinstance(value, _State):
            raise self.refuse(node, f"the membrane/current of neuron '{value.neuron}' is used "
                              f"as data by {what}",
                              "the IR passes spikes between layers; feed the spikes on, or use "
                              "a non-spiking readout (reset_mechanism='none') as the last "
                              "layer")
        raise self.refuse(node, f"{what} needs a tensor from the network",
                          "constants can only scale tensors")

    def new_name(self, node, suggestion=None) -> str:
        return self.b.unique(suggestion or node.name)

    def op_add(self, node, a, b, *, alpha=None):
        if alpha is not None:
            raise self.refuse(node, "add(..., alpha=) is not supported", "write a + c * b")
        if isinstance(a, _Const) or isinstance(b, _Const):
            const = a.value if isinstance(a, _Const) else b.value
            if isinstance(const, (int, float)) and const == 0:
                return b if isinstance(a, _Const) else a
            raise self.refuse(node, "adding a constant to a tensor",
                              "put constant inputs into a layer's bias")
        a, b = self.tensor(node, a, "an addition"), self.tensor(node, b, "an addition")
        if a.name == b.name:  # x + x == 2 * x exactly
            return _Tensor(self.b.add(Scale(name=self.new_name(node), scale=2.0), a.name))
        return _Tensor(self.b.add(Sum(name=self.new_name(node)), a.name, b.name))

    def op_sub(self, node, a, b):
        a = self.tensor(node, a, "a subtraction")
        b = self.tensor(node, b, "a subtraction")
        if a.name == b.name:
            raise self.refuse(node, "x - x is zero", "remove it")
        name = self.new_name(node)
        negated = self.b.add(Scale(name=self.b.unique(f"{name}.neg"), scale=-1.0), b.name)
        return _Tensor(self.b.add(Sum(name=name), a.name, negated))  # a + (-b) == a - b

    def op_neg(self, node, a):
        a = self.tensor(node, a, "a negation")
        return _Tensor(self.b.add(Scale(name=self.new_name(node), scale=-1.0), a.name))

    def op_mul(self, node, a, b):
        if isinstance(a, _Const):
            a, b = b, a
        if not isinstance(b, _Const):
            raise self.refuse(node, "a product of two tensors (gating) has no IR equivalent",
                              "multiply by constants only")
        a = self.tensor(node, a, "a product")
        return _Tensor(self.b.add(Scale(name=self.new_name(node), scale=_gain(self, node, b)),
                                  a.name))

    def op_truediv(self, node, a, b):
        if not isinstance(b, _Const):
            raise self.refuse(node, "division by a tensor has no IR equivalent",
                              "divide by constants only")
        gain = _gain(self, node, b)
        inverse = np.float32(1.0) / gain
        if not np.all(np.frexp(np.abs(gain))[0] == 0.5):
            raise self.refuse(node, "division by a constant that is not a power of two",
                              "x / c and x * (1/c) round differently in float32; multiply by "
                              "the constant you mean instead")
        a = self.tensor(node, a, "a division")
        return _Tensor(self.b.add(Scale(name=self.new_name(node), scale=inverse), a.name))

    def op_flatten(self, node, a, start_dim=_Const(0), end_dim=_Const(-1)):
        start = start_dim.value if isinstance(start_dim, _Const) else None
        end = end_dim.value if isinstance(end_dim, _Const) else None
        if (start, end) != (1, -1):
            raise self.refuse(node, f"flatten(start_dim={start}, end_dim={end})",
                              "flatten every dimension but the batch: x.flatten(1)")
        return self.flatten(node, self.tensor(node, a, "flatten"))

    def op_view(self, node, a, *shape):
        a = self.tensor(node, a, "a reshape")
        if len(shape) == 1 and isinstance(shape[0], _Const) and isinstance(shape[0].value,
                                                                          (tuple, list)):
            shape = tuple(_Const(v) for v in shape[0].value)
        size = math.prod(self.b.shapes[a.name])
        dims = [s.value if isinstance(s, _Const) else s for s in shape]
        if len(dims) == 2 and isinstance(dims[0], _Batch) and dims[1] in (-1, size):
            return self.flatten(node, a)
        if len(dims) == 1 + len(self.b.shapes[a.name]) and isinstance(dims[0], _Batch) \
                and tuple(dims[1:]) == self.b.shapes[a.name]:
            return a  # the same shape
        raise self.refuse(node, "reshape other than flattening all but the batch",
                          "use x.flatten(1) or x.view(x.size(0), -1)")

    op_reshape = op_view

    def flatten(self, node, a: _Tensor) -> _Tensor:
        users = [u for u in node.users if u.op == "call_module"]
        suggestion = f"{users[0].target}.flatten_input" if len(node.users) == 1 and users \
            else node.name
        if len(self.b.shapes[a.name]) == 1:
            return a
        return _Tensor(self.b.add(Flatten(name=self.new_name(node, suggestion)), a.name))

    def op_relu(self, node, a, inplace=None):
        a = self.tensor(node, a, "relu")
        return _Tensor(self.b.add(ReLU(name=self.new_name(node)), a.name))

    def op_dropout(self, node, a, *args, **kwargs):
        a = self.tensor(node, a, "dropout")
        return _Tensor(self.b.add(Identity(name=self.new_name(node), origin="dropout"), a.name))

    _POOL_DEFAULTS = {"ceil_mode": False, "return_indices": False, "dilation": 1,
                      "count_include_pad": True, "divisor_override": None}

    def _pool(self, node, cls, a, kernel_size, stride=None, padding=_Const(0), *rest, **extra):
        options = {k: (v.value if isinstance(v, _Const) else v) for k, v in extra.items()}
        bad = {k: v for k, v in options.items()
               if k not in self._POOL_DEFAULTS or v != self._POOL_DEFAULTS[k]}
        if rest or bad:
            raise self.refuse(node, f"{cls.__name__} options {bad or 'beyond padding'}",
                              "use kernel_size, stride and padding only")
        a = self.tensor(node, a, cls.__name__)
        stride = None if stride is None or stride.value in (None, ()) else stride.value
        return _Tensor(self.b.add(cls(name=self.new_name(node), kernel_size=kernel_size.value,
                                      stride=stride, padding=padding.value), a.name))

    def op_max_pool2d(self, node, a, kernel_size, stride=None, padding=_Const(0), **extra):
        return self._pool(node, MaxPool2d, a, kernel_size, stride, padding, **extra)

    def op_avg_pool2d(self, node, a, kernel_size, stride=None, padding=_Const(0), **extra):
        return self._pool(node, AvgPool2d, a, kernel_size, stride, padding, **extra)

    def op_getitem(self, node, a, index):
        index = index.value if isinstance(index, _Const) else None
        if isinstance(a, _Tensor) and a.name == self.b.input:
            raise NotTraceable("forward indexes its input: a loop over a time-major input")
        if isinstance(a, _NeuronOut) and a.tuple_ and isinstance(index, int):
            return _Tensor(a.name) if index == 0 else _State(a.name)
        if isinstance(a, _Size) and index == 0:
            return _Batch()
        if isinstance(a, _Size) and isinstance(index, int):
            return _Const(self.b.shapes[a.of.name][index - 1])
        raise self.refuse(node, "indexing or slicing a tensor has no IR equivalent",
                          "select data with layers")

    def op_getattr(self, node, a, attr):
        if attr.value == "shape":
            return _Size(self.tensor(node, a, "shape"))
        raise self.refuse(node, f"attribute .{attr.value} of a tensor", "use .shape only")

    def op_size(self, node, a, dim=None):
        a = self.tensor(node, a, "size")
        if dim is None:
            return _Size(a)
        if dim.value == 0:
            return _Batch()
        return _Const(self.b.shapes[a.name][dim.value - 1])

    def op_identity(self, node, a, *args, **kwargs):
        return self.tensor(node, a, "this operation")

    op_contiguous = op_clone = op_detach = op_float = op_identity

    def op_cat(self, node, *args, **kwargs):
        raise self.refuse(node, "concatenation has no IR equivalent",
                          "add the branches (a + b) instead of concatenating them")

    op_stack = op_cat

    # ------------------------------------------------------------------ output
    def output(self, node: fx.Node) -> str:
        result = node.args[0]
        first = result[0] if isinstance(result, (tuple, list)) else result
        if isinstance(first, (tuple, list)):
            first = first[0]
        value = self.value(first)
        if isinstance(value, _NeuronOut):
            return value.name
        return self.tensor(node, value, "the output").name

    def value(self, arg):
        if isinstance(arg, fx.Node):
            return self.values[arg]
        if isinstance(arg, (tuple, list)):
            if all(not isinstance(a, fx.Node) for a in arg):
                return _Const(tuple(arg))
            return tuple(self.value(a) for a in arg)
        return _Const(arg)


def _gain(reader: _Reader, node: fx.Node, const: _Const) -> np.ndarray:
    value = const.value
    if isinstance(value, torch.Tensor):
        if value.ndim > 0 and value.dtype != torch.float32:
            raise reader.refuse(node, f"a {value.dtype} constant changes the dtype",
                                "use float32 constants")
        value = value.to(torch.float32).numpy()
    if not isinstance(value, (int, float, np.ndarray)) or isinstance(value, bool):
        raise reader.refuse(node, f"constant {value!r} is not a number",
                            "multiply by numbers only")
    return np.asarray(value, np.float32)


_FUNCTIONS = {
    operator.add: "add", torch.add: "add", operator.iadd: "add",
    operator.sub: "sub", torch.sub: "sub", operator.isub: "sub",
    operator.mul: "mul", torch.mul: "mul", operator.imul: "mul",
    operator.truediv: "truediv", torch.div: "truediv", torch.true_divide: "truediv",
    operator.neg: "neg", torch.neg: "neg",
    operator.getitem: "getitem", getattr: "getattr",
    torch.flatten: "flatten", torch.reshape: "reshape",
    torch.relu: "relu", F.relu: "relu",
    F.dropout: "dropout",
    F.max_pool2d: "max_pool2d", F.avg_pool2d: "avg_pool2d",
    torch.cat: "cat", torch.stack: "stack", torch.concat: "cat",
}
