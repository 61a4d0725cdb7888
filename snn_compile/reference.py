"""Float reference simulator: executes the IR equations of :mod:`snn_compile.ir.nodes` in torch.

``simulate(graph, spikes)`` runs a float :class:`~snn_compile.ir.Graph` on time-major input
``[T, B, *input_shape]`` (float32, CPU, batched) and records every neuron layer. It is the
float ground truth that quantized backends are compared with, and it reproduces snnTorch spike
for spike: every operation is done in the order snnTorch does it, so float rounding agrees too.
In particular a neuron adds its inputs one by one, in the graph's summation order
(:meth:`~snn_compile.ir.graph.Graph.incoming`), after the leak term
(``v' = (beta * v + x_fc) + x_rec`` for a recurrent layer), exactly like snnTorch's ``RLeaky``.

The simulator loops over time steps in the graph's evaluation order; each node operates on the
whole batch at once, and an edge with delay ``d`` reads its source's output of ``d`` steps ago.
States are recorded into arrays ``[T, B, *shape]`` allocated once (each step's slab is a
contiguous batch-first ``[B, *shape]``). Where a C compiler works, each float32 neuron layer
takes its step as one fused call (:mod:`snn_compile.float_kernels`: the same operations in the
same order, so the same rounding, written straight into the record arrays); the torch code of
the neuron classes below is the definition, and runs where no compiler is available.

``threads`` sets torch's intra-op threads for a run (:func:`torch_threads`); one thread is
usually fastest for the small per-step operations of a check (torch's default spends its time
spinning up OpenMP teams).

Neurons that carry a :class:`~snn_compile.ir.nodes.StateGrid` (quantization-aware trained
models) are computed on their integer grid by :class:`snn_compile.grid.GridNeuron`, the target's
datapath; a graph with such neurons runs in float64 throughout, so the synaptic sums feeding them
recover their integer accumulators exactly (``round(x * weight_scale)``). Such a graph is run
on a window with ``L = max(grid.lead)`` leading silent steps, each grid population switched on
``grid.lead`` steps before ``t = 0`` (the target's time alignment); the trace starts at ``t = 0``.
"""

from __future__ import annotations

from collections import deque
from contextlib import contextmanager
from functools import reduce
from operator import add

import numpy as np
import torch
import torch.nn.functional as F

from .backend import Backend
from .errors import BackendError, GraphError
from .grid import GridNeuron
from .ir.graph import Graph
from .ir.nodes import (
    IF, LI, LIF, Affine, Alpha, AvgPool2d, BatchNorm, Conv2d, CubaLIF, Delay, Flatten, Identity,
    Input, MaxPool2d, NeuronNode, Node, Output, ReLU, Scale, Sum, SumPool2d,
)
from .trace import Trace

_DTYPE = torch.float32


def _tensor(array: np.ndarray | None, dtype=_DTYPE) -> torch.Tensor | None:
    """A torch copy of an IR parameter (None stays None)."""
    return None if array is None else torch.tensor(np.array(array), dtype=dtype)


def _sum(inputs: list[torch.Tensor]) -> torch.Tensor:
    """Sum of a node's inputs in edge order."""
    return reduce(add, inputs)


# --------------------------------------------------------------------------- stateless ops


class _Stateless:
    """A node without state: ``y[t] = f(sum of inputs)``."""

    def __init__(self, fn):
        self._fn = fn

    def step(self, inputs):
        return self._fn(_sum(inputs))


def _identity(node: Node, batch: int, dtype) -> _Stateless:
    return _Stateless(lambda x: x)


def _affine(node: Affine, batch: int, dtype) -> _Stateless:
    weight, bias = _tensor(node.weight, dtype), _tensor(node.bias, dtype)
    return _Stateless(lambda x: F.linear(x, weight, bias))


def _conv2d(node: Conv2d, batch: int, dtype) -> _Stateless:
    weight, bias = _tensor(node.weight, dtype), _tensor(node.bias, dtype)
    return _Stateless(lambda x: F.conv2d(x, weight, bias, node.stride, node.padding,
                                         node.dilation, node.groups))


def _avgpool2d(node: AvgPool2d, batch: int, dtype) -> _Stateless:
    return _Stateless(lambda x: F.avg_pool2d(x, node.kernel_size, node.stride, node.padding,
                                             ceil_mode=False, count_include_pad=True))


def _sumpool2d(node: SumPool2d, batch: int, dtype) -> _Stateless:
    return _Stateless(lambda x: F.avg_pool2d(x, node.kernel_size, node.stride, node.padding,
                                             ceil_mode=False, count_include_pad=True,
                                             divisor_override=1))


def _maxpool2d(node: MaxPool2d, batch: int, dtype) -> _Stateless:
    return _Stateless(lambda x: F.max_pool2d(x, node.kernel_size, node.stride, node.padding))


def _batchnorm(node: BatchNorm, batch: int, dtype) -> _Stateless:
    """torch's eval-mode batch norm, the same call BatchNorm1d/2d make."""
    mean, var = _tensor(node.mean, dtype), _tensor(node.var, dtype)
    weight, bias = _tensor(node.weight, dtype), _tensor(node.bias, dtype)
    return _Stateless(lambda x: F.batch_norm(x, mean, var, weight, bias, False, 0.0, node.eps))


def _relu(node: ReLU, batch: int, dtype) -> _Stateless:
    return _Stateless(torch.relu)


def _flatten(node: Flatten, batch: int, dtype) -> _Stateless:
    return _Stateless(lambda x: x.flatten(1))


def _scale(node: Scale, batch: int, dtype) -> _Stateless:
    scale = _tensor(node.scale, dtype)
    return _Stateless(lambda x: x * scale)


# --------------------------------------------------------------------------- stateful ops


class _Delay:
    """``y[t] = x[t - steps]``, zero before the first input arrives."""

    def __init__(self, node: Delay, batch: int, dtype):
        self._steps = node.steps
        self._queue: deque[torch.Tensor] = deque()

    def step(self, inputs):
        self._queue.append(_sum(inputs))
        if len(self._queue) > self._steps:
            return self._queue.popleft()
        return torch.zeros_like(self._queue[0])


class _LI:
    """Leaky integrator readout: ``v = beta * v + x + bias``; the output is ``v``."""

    def __init__(self, node: LI, batch: int, dtype):
        self._beta = _tensor(node.beta, dtype)
        self._bias = _tensor(node.bias, dtype) if np.any(node.bias) else None
        self.v = torch.zeros(batch, *node.shape, dtype=dtype)
        self.record = {"v": []}

    def step(self, inputs):
        v = reduce(add, inputs, self._beta * self.v)
        self.v = v if self._bias is None else v + self._bias
        self.record["v"].append(self.v)
        return self.v


class _Neuron:
    """Spiking neuron: the reset and spike rules shared by LIF, CubaLIF and IF.

    Subclasses define ``_integrate(v, inputs)``, the neuron-specific update of the membrane
    ``v`` (already zeroed for a zero reset that keeps the input).
    """

    def __init__(self, node: NeuronNode, batch: int, dtype):
        self.node, self._dtype = node, dtype
        self._threshold = _tensor(node.threshold, dtype)
        self._bias = _tensor(node.bias, dtype) if np.any(node.bias) else None
        self._above = torch.gt if node.spike_test == ">" else torch.ge
        self._floor = _tensor(node.v_floor, dtype)
        self._cap = None if node.max_spikes is None else float(node.max_spikes)
        self.v = torch.zeros(batch, *node.shape, dtype=dtype)
        self.record = {"spikes": [], "v": []}

    def _fire(self, v: torch.Tensor) -> torch.Tensor:
        return self._above(v - self._threshold, 0).to(self._dtype)

    def _count(self, v: torch.Tensor) -> torch.Tensor:
        """Multi-spike output: ``clip(floor(v / thr), 0, max_spikes)``."""
        return torch.clamp(torch.floor(v / self._threshold), min=0, max=self._cap)

    def _integrate(self, v, inputs):
        raise NotImplementedError

    def step(self, inputs):
        node, v = self.node, self.v
        reset = node.reset
        if node.reset_timing == "immediate" or reset == "none":
            r = None  # no reset from the stored membrane
        else:
            r = self._fire(v)
        if r is not None and reset == "zero" and not node.reset_discards_input:
            v = (1 - r) * v
        v = self._integrate(v, inputs)
        if self._bias is not None:
            v = v + self._bias
        if r is not None and reset == "subtract":
            v = v - r * self._threshold
        elif r is not None and reset == "zero" and node.reset_discards_input:
            v = v - r * v
        s = self._count(v) if node.multi_spike else self._fire(v)
        if node.reset_timing != "next_step" and reset != "none":
            if reset == "subtract":
                v = v - (s if r is None else s - r) * self._threshold
            elif node.multi_spike:
                v = v * (s == 0).to(self._dtype)
            else:
                v = v - (s if r is None else s - r) * v
        if self._floor is not None:
            v = torch.relu(v - self._floor) + self._floor
        self.v = v
        self.record["spikes"].append(s)
        self.record["v"].append(v)
        return s


class _LIF(_Neuron):
    def __init__(self, node: LIF, batch: int, dtype):
        super().__init__(node, batch, dtype)
        self._beta = _tensor(node.beta, dtype)

    def _integrate(self, v, inputs):
        return reduce(add, inputs, self._beta * v)


class _IF(_Neuron):
    def _integrate(self, v, inputs):
        return reduce(add, inputs, v)


class _CubaLIF(_Neuron):
    def __init__(self, node: CubaLIF, batch: int, dtype):
        super().__init__(node, batch, dtype)
        self._alpha, self._beta = _tensor(node.alpha, dtype), _tensor(node.beta, dtype)
        self.i = torch.zeros(batch, *node.shape, dtype=dtype)
        self.record["i"] = []

    def _integrate(self, v, inputs):
        self.i = reduce(add, inputs, self._alpha * self.i)
        self.record["i"].append(self.i)
        return self._beta * v + self.i


class _Alpha:
    """snnTorch ``Alpha`` (see :class:`~snn_compile.ir.nodes.Alpha`), in snnTorch's order of
    operations; records ``spikes``, ``v`` and the currents ``e`` and ``i``."""

    def __init__(self, node: Alpha, batch: int, dtype):
        self.node = node
        self._threshold = _tensor(node.threshold, dtype)
        self._alpha, self._beta = _tensor(node.alpha, dtype), _tensor(node.beta, dtype)
        self._tau = torch.log(self._alpha) / (torch.log(self._beta) - torch.log(self._alpha)) + 1
        self._above = torch.gt if node.spike_test == ">" else torch.ge
        self.e, self.i, self.v = (torch.zeros(batch, *node.shape, dtype=dtype) for _ in range(3))
        self.record = {"spikes": [], "v": [], "e": [], "i": []}

    def _fire(self, v):
        return self._above(v - self._threshold, 0).to(v.dtype)

    def step(self, inputs):
        x = _sum(inputs)
        r = self._fire(self.v)
        e = self._alpha * self.e + x
        i = self._beta * self.i - x
        v = self._tau * (e + i)
        if self.node.reset == "zero":
            e, i, v = e - e * r, i - i * r, v - v * r
        elif self.node.reset == "subtract":
            e, v, i = e - self._threshold * r, v - (-self.i) * r, i - i * r
        s = self._fire(v)
        self.e, self.i, self.v = e, i, v
        for key, value in (("spikes", s), ("v", v), ("e", e), ("i", i)):
            self.record[key].append(value)
        return s


class _FusedOp:
    """A float32 neuron layer stepped by its fused kernel into preallocated records."""

    def __init__(self, node: NeuronNode, batch: int, steps: int, n_inputs: int):
        from .float_kernels import FusedNeuron

        self._kernel = FusedNeuron(node, n_inputs, batch)
        shape = (steps, batch, *node.shape)
        self._spiking = not isinstance(node, LI)
        self.record = {"spikes": torch.empty(shape), "v": torch.empty(shape)} \
            if self._spiking else {"v": torch.empty(shape)}
        if isinstance(node, CubaLIF):
            self.record["i"] = torch.empty(shape)
        self._zero = torch.zeros(batch, *node.shape)
        self._bytes = batch * self._kernel.n * 4  # one step's slab
        self._t = 0

    def _at(self, key: str, t: int) -> int:
        if t < 0:
            return self._zero.data_ptr()
        return self.record[key].data_ptr() + t * self._bytes

    def step(self, inputs):
        t = self._t
        self._t += 1
        inputs = [x.contiguous() for x in inputs]
        cuba = "i" in self.record
        self._kernel.step(inputs, self._at("v", t - 1), self._at("v", t),
                          self._at("spikes", t) if self._spiking else 0,
                          self._at("i", t - 1) if cuba else 0, self._at("i", t) if cuba else 0)
        return self.record["spikes" if self._spiking else "v"][t]


class _GridOp:
    """A neuron on its :class:`~snn_compile.ir.nodes.StateGrid`; records float views
    ``v / S`` (and ``i = u / S`` for CubaLIF)."""

    def __init__(self, node: NeuronNode, batch: int, lead_steps: int):
        self._neuron = GridNeuron(node, batch, start=lead_steps - node.grid.lead)
        self.record = {"spikes": [], "v": []} | ({"i": []} if isinstance(node, CubaLIF) else {})

    def step(self, inputs):
        neuron = self._neuron
        s = neuron.step(neuron.accumulators(inputs))
        self.record["spikes"].append(s)
        self.record["v"].append(neuron.v / neuron.scale)
        if "i" in self.record:
            self.record["i"].append(neuron.u / neuron.scale)
        return s


_OPS = {
    Output: _identity,
    Sum: _identity,
    Identity: _identity,
    ReLU: _relu,
    BatchNorm: _batchnorm,
    MaxPool2d: _maxpool2d,
    Alpha: _Alpha,
    Affine: _affine,
    Conv2d: _conv2d,
    AvgPool2d: _avgpool2d,
    SumPool2d: _sumpool2d,
    Flatten: _flatten,
    Scale: _scale,
    Delay: _Delay,
    LI: _LI,
    LIF: _LIF,
    IF: _IF,
    CubaLIF: _CubaLIF,
}


_FUSABLE = (LI, LIF, IF, CubaLIF)


def _make_op(node: Node, batch: int, dtype, lead_steps: int, fused_steps: int | None = None,
             n_inputs: int = 1):
    """The op of ``node``; ``fused_steps`` (the window length) asks for a fused neuron step."""
    if getattr(node, "grid", None) is not None:
        return _GridOp(node, batch, lead_steps)
    if fused_steps is not None and dtype == torch.float32 and type(node) in _FUSABLE:
        return _FusedOp(node, batch, fused_steps, n_inputs)
    try:
        factory = _OPS[type(node)]
    except KeyError:
        raise GraphError("the float simulator has no kernel for this node type", node=node.name,
                         value=type(node).__name__) from None
    return factory(node, batch, dtype)


# --------------------------------------------------------------------------- driver


def _input_tensor(graph: Graph, spikes, dtype) -> tuple[Input, torch.Tensor]:
    inputs = graph.inputs
    if len(inputs) != 1:
        raise GraphError("the float simulator needs exactly one Input node",
                         value=[n.name for n in inputs])
    node = inputs[0]
    x = torch.as_tensor(np.asarray(spikes), dtype=dtype)
    if x.ndim < 2 or tuple(x.shape[2:]) != node.shape:
        raise GraphError("input spikes have the wrong shape", node=node.name,
                         value=f"{tuple(x.shape)}, expected [T, B, {', '.join(map(str, node.shape))}]",
                         hint="pass time-major input [time, batch, *input_shape]")
    return node, x


@contextmanager
def torch_threads(threads: int | None):
    """Run the block with ``threads`` torch intra-op threads (None: as they are)."""
    if threads is None:
        yield
        return
    previous = torch.get_num_threads()
    set_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads for this process (what ``--threads`` of the CLI means for
    the float model)."""
    torch.set_num_threads(max(1, int(threads)))


def fused_available() -> bool:
    """Whether neuron layers can take fused steps here (a C compiler works)."""
    from .float_kernels import available

    return available()


def simulate(graph: Graph, spikes, *, threads: int | None = None,
             fused: bool | None = None) -> Trace:
    """Run ``graph`` on ``spikes`` ``[T, B, *input_shape]`` and record every neuron layer.

    ``Trace.layers[name]`` holds ``spikes`` and ``v`` for each LIF/CubaLIF/IF node (plus ``i``
    for CubaLIF) and ``v`` for each LI node, all ``[T, B, *shape]`` float32. ``Trace.output`` is
    the value of the (first) Output node at every step. Graphs with grid neurons are computed in
    float64 (see the module docstring) and recorded in float32 like the others.

    ``threads``: torch threads for this run (None: unchanged); ``fused``: step float32 neuron
    layers by their fused kernels (None: where a C compiler works; the values are the same).
    """
    with torch_threads(threads):
        return _simulate(graph, spikes, fused_available() if fused is None else fused)


def _simulate(graph: Graph, spikes, fused: bool) -> Trace:
    shapes = graph.shapes  # verifies the graph
    grids = [n.grid for n in graph.neurons if n.grid is not None]
    dtype = torch.float64 if grids else _DTYPE
    lead = max((g.lead for g in grids), default=0)
    input_node, x = _input_tensor(graph, spikes, dtype)
    x = torch.cat([x.new_zeros(lead, *x.shape[1:]), x])
    steps, batch = x.shape[:2]
    order = [name for name in graph.order if name != input_node.name]
    sources = {name: graph.incoming(name) for name in order}
    ops = {name: _make_op(graph[name], batch, dtype, lead, steps if fused else None,
                          len(sources[name])) for name in order}
    depth = {}  # node -> steps of its past outputs that delayed edges read
    for edges in sources.values():
        for e in edges:
            if e.delay:
                depth[e.src] = max(depth.get(e.src, 0), e.delay)
    history = {src: deque(maxlen=d) for src, d in depth.items()}
    zeros = {src: torch.zeros(batch, *shapes[src], dtype=dtype) for src in depth}
    plan = [(name, ops[name], [(e.src, e.delay) for e in sources[name]]) for name in order]
    output_name = graph.outputs[0].name
    outputs = []
    with torch.no_grad():
        for t in range(steps):
            current = {input_node.name: x[t]}
            for name, op, edges in plan:
                current[name] = op.step([current[src] if d == 0 else
                                         _past(history[src], d, zeros[src])
                                         for src, d in edges])
            for src, past in history.items():
                past.append(current[src])
            outputs.append(current[output_name])
    return Trace(output=_stack(outputs[lead:], x, shapes[output_name]),
                 layers={name: {key: _stack(values[lead:], x, shapes[name])
                                for key, values in op.record.items()}
                         for name, op in ops.items() if hasattr(op, "record")})


def _past(history: deque, delay: int, zero: torch.Tensor) -> torch.Tensor:
    """The output of ``delay`` steps ago (zero before the first step)."""
    return history[-delay] if len(history) >= delay else zero


def _stack(values, x: torch.Tensor, shape) -> np.ndarray:
    """A record as float32 ``[T, B, *shape]``: a list of steps, or a preallocated tensor."""
    if isinstance(values, torch.Tensor):
        return values.numpy()
    if not values:  # zero time steps
        return np.zeros((0, x.shape[1], *shape), dtype=np.float32)
    return torch.stack(values).to(_DTYPE).numpy()


class FloatBackend(Backend):
    """The float reference simulator as a backend (runs a float IR graph)."""

    name = "float"
    fixed_point = False
    description = "float32 reference simulator (torch, CPU); matches snnTorch spike for spike"

    def run_lowered(self, network, spikes) -> Trace:
        if not isinstance(network, Graph):
            raise BackendError("the float backend runs a float IR Graph",
                               value=type(network).__name__,
                               hint="pass the graph from an importer, not a quantized network")
        return simulate(network, spikes)
