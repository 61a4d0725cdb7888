"""Import snnTorch modules directly (not through NIR) into the float, discrete-time IR.

``from_snntorch(module, input_shape)`` recovers the data flow, converts each layer with the
converter registered for its exact type in ``_CONVERTERS``, and returns a verified
:class:`~snn_compile.ir.Graph` whose float simulation reproduces snnTorch spike for spike.

Data flow, in this order:

1. a tree of ``nn.Sequential`` containers is read as written (a chain);
2. any other module is read with ``torch.fx`` (:mod:`.torch_fx`): its ``forward`` for one time
   step, with layers and snnTorch neurons as leaves. Branches and merges become IR edges: a
   skip connection, spike-element-wise addition (SEW), several inputs to one population through
   :class:`~snn_compile.ir.Sum` nodes (PyTorch's ``a + b``, so float rounding is torch's),
   constant gains as Scale nodes; anything else is refused naming the line of ``forward``;
3. a ``forward`` that fx cannot read (typically a loop over a time-major input) is run once on
   a dummy input with forward hooks on its layers: the layers called in the first time step, in
   call order, form the chain, and the hooks check that each layer consumes the previous
   layer's spikes (or a flattened view of them).

snnTorch semantics mapped here (snnTorch 1.0.0, ``_neurons/*.py``):

* ``beta``/``alpha`` are clamped to ``[0, 1]`` in snnTorch's forward; the IR holds the
  clamped value. ``threshold`` and the one-to-one recurrent weight ``V`` are used as they are.
* The reset mechanism is read from the update function snnTorch actually calls
  (``state_function``); ``reset_delay=True`` is ``reset_timing="next_step"``.
* A zero reset of ``Synaptic``, ``RLeaky`` and ``RSynaptic`` computes the full update and then
  zeroes it (``mem - reset * mem``): the step's input is lost, ``reset_discards_input=True``.
  ``Leaky`` zeroes the stored membrane first and keeps the input.
* Recurrent layers become edges ``fc->lif``, ``lif->rec`` (delay 1) and ``rec->lif``: the
  recurrent synapse reads the previous step's spikes, as ``recurrent(self.spk)`` does.
* ``Lapicque`` is a LIF: ``mem = x * R * (1 / (R C)) * T + (1 - T / (R C)) * mem`` (its own
  ``beta`` is not used by the update), always reset from the previous membrane (next step); the
  factors of the input term become one Scale node each (``<layer>.R``, ``.RC``, ``.T``), in
  snnTorch's order, skipping factors of exactly 1.
* ``Alpha`` becomes the IR's :class:`~snn_compile.ir.nodes.Alpha` (two currents).
* Inference-time layers are imported as what they are and rewritten by passes: BatchNorm
  (eval mode: running statistics), Dropout/Identity (:class:`~snn_compile.ir.Identity`), ReLU,
  MaxPool2d.
"""

from __future__ import annotations

import copy
import warnings
from dataclasses import dataclass, field

import numpy as np
import snntorch as snn
import torch
from snntorch._neurons import rleaky as _rleaky, rsynaptic as _rsynaptic
from torch import nn

from ..errors import GraphError, UnsupportedError
from ..ir.graph import Graph, verify
from ..ir.nodes import (
    LIF, Affine, Alpha, AvgPool2d, BatchNorm, Conv2d, CubaLIF, Flatten, Identity, Input,
    MaxPool2d, Node, Output, ReLU, Scale, Shape,
)
from ..names import check_graph_names

__all__ = ["from_snntorch"]


def from_snntorch(module: nn.Module, input_shape, *, example_input: torch.Tensor | None = None
                  ) -> Graph:
    """Convert an snnTorch network into a float IR graph.

    ``input_shape`` is one sample at one time step, without batch or time (``(64,)``,
    ``(1, 28, 28)``). ``example_input`` is only needed for a custom ``forward`` that does not
    accept a ``[batch, *input_shape]`` tensor (e.g. one that loops over a time-major input):
    pass a tensor it accepts. The module is not modified.
    """
    input_shape = tuple(int(d) for d in input_shape)
    builder = _Builder(input_shape)
    metadata = {"source": "snntorch", "snntorch_version": snn.__version__,
                "input_shape": list(input_shape)}
    if _is_layer(module) or (example_input is None and _is_sequential_tree(module)):
        return _chain(builder, _layers(module, input_shape, example_input), metadata)
    from .torch_fx import NotTraceable, read_forward

    try:
        output = read_forward(module, builder)
    except NotTraceable:
        return _chain(_Builder(input_shape), _traced_layers(module, input_shape, example_input),
                      metadata)
    return builder.finish(output, metadata | {"data_flow": "torch.fx"})


def _chain(builder: "_Builder", layers, metadata: dict) -> Graph:
    tail = builder.input
    for path, layer in layers:
        tail = convert_layer(builder, path, layer, tail)
    return builder.finish(tail, metadata)


def convert_layer(b: "_Builder", path: str, layer: nn.Module, source: str) -> str:
    """Add ``layer`` (named ``path``) fed by node ``source``; return its output node's name."""
    converter = _CONVERTERS.get(type(layer))
    if converter is None:
        raise _unsupported_layer(path, layer)
    return converter(b, path, layer, source)


# --------------------------------------------------------------------------- graph building


@dataclass
class _Builder:
    """Collects IR nodes and edges, tracking every node's output shape."""

    input_shape: Shape
    nodes: list[Node] = field(default_factory=list)
    edges: list[tuple] = field(default_factory=list)
    shapes: dict = field(default_factory=dict)
    input: str = "input"

    def __post_init__(self):
        self.nodes.append(Input(name=self.input, shape=self.input_shape))
        self.shapes[self.input] = self.input_shape

    def taken(self, name: str) -> bool:
        return name in self.shapes

    def unique(self, name: str) -> str:
        """``name``, or ``name_2``, ``name_3``... if it is taken."""
        if not self.taken(name):
            return name
        k = 2
        while self.taken(f"{name}_{k}"):
            k += 1
        return f"{name}_{k}"

    def add(self, node: Node, *sources: str) -> str:
        """Append ``node`` fed by ``sources`` (summed, as any IR node sums its inputs)."""
        shapes = {self.shapes[src] for src in sources}
        if len(shapes) != 1:
            raise GraphError("inputs of different shapes are added", node=node.name,
                             value=", ".join(f"{s}: {self.shapes[s]}" for s in sources))
        self.shapes[node.name] = self._shape_after(node, shapes.pop())
        self.nodes.append(node)
        self.edges += [(src, node.name) for src in sources]
        return node.name

    def recurrent(self, neuron: Node, synapse: Node, source: str) -> str:
        """Append a neuron with a recurrent synapse: ``source->neuron``, ``neuron->syn`` (delay
        1: last step's spikes), ``syn->neuron``."""
        self.shapes[neuron.name] = self._shape_after(neuron, self.shapes[source])
        self.shapes[synapse.name] = self.shapes[neuron.name]
        self.nodes += [synapse, neuron]
        self.edges += [(source, neuron.name), (neuron.name, synapse.name, 1),
                       (synapse.name, neuron.name)]
        return neuron.name

    @staticmethod
    def _shape_after(node: Node, shape) -> Shape:
        try:
            return tuple(node.output_shape(shape))
        except GraphError as err:
            raise err.at(node=node.name)

    def finish(self, tail: str, metadata: dict) -> Graph:
        """Close the graph with an Output node reading ``tail`` and verify it."""
        name = next(n for n in ("output", "output_", "output__") if not self.taken(n))
        used = {e[0] for e in self.edges} | {tail}
        unused = [n.name for n in self.nodes if n.name not in used]
        if unused:
            raise UnsupportedError("a layer's output is never used", node=unused[0],
                                   hint="forward must pass every layer it calls on to the "
                                        "network's output")
        graph = Graph(tuple(self.nodes) + (Output(name=name),),
                      tuple(self.edges) + ((tail, name),), metadata)
        verify(graph)
        return check_graph_names(graph)


# --------------------------------------------------------------------------- parameters


def _array(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().cpu().to(torch.float32).numpy()


def _per_neuron(path: str, key: str, tensor: torch.Tensor, shape: Shape) -> np.ndarray:
    """A neuron parameter as an array that broadcasts to the population ``shape``."""
    if tensor.ndim > 0 and tensor.dtype != torch.float32:
        raise UnsupportedError(f"parameter '{key}' is {tensor.dtype}, not float32", node=path,
                               hint="convert the model with .float() before importing")
    value = _array(tensor)
    while value.ndim > len(shape) and value.shape[0] == 1:
        value = value[0]
    if value.ndim > len(shape):
        raise UnsupportedError(f"parameter '{key}' has more dimensions than the layer",
                               node=path, value=f"shape {tuple(tensor.shape)}, neurons {shape}",
                               hint="use a scalar or one value per neuron")
    return value


def _decay(path: str, key: str, tensor: torch.Tensor, shape: Shape) -> np.ndarray:
    """``beta``/``alpha`` as snnTorch uses them: clamped to [0, 1]."""
    return _per_neuron(path, key, tensor.detach().clamp(0, 1), shape)


# --------------------------------------------------------------------------- neurons

_RESET_OF_STATE_FUNCTION = {"_base_sub": "subtract", "_base_zero": "zero", "_base_int": "none"}
_SPIKE_PROBE = torch.tensor([-1.0, -1e-30, 0.0, 1e-30, 1.0, 1e30])
_SPIKE_TESTS = {(0, 0, 0, 1, 1, 1): ">", (0, 0, 1, 1, 1, 1): ">="}


def _spike_test(path: str, layer: nn.Module) -> str:
    """The spike comparison of the layer's spike function, found by probing it around 0."""
    with torch.no_grad():
        out = layer.spike_grad(_SPIKE_PROBE.clone())
    test = _SPIKE_TESTS.get(tuple(float(v) for v in out))
    if test is None:
        raise UnsupportedError("the spike function is not a Heaviside step", node=path,
                               value=f"spike_grad({_SPIKE_PROBE.tolist()}) = {out.tolist()}",
                               hint="use one of snntorch.surrogate's functions")
    return test


def _reset_mode(path: str, layer: nn.Module) -> str:
    """The reset snnTorch applies: its update function must agree with reset_mechanism_val."""
    mode = _RESET_OF_STATE_FUNCTION[layer.state_function.__func__.__name__]
    stored = list(snn.SpikingNeuron.reset_dict)[int(layer.reset_mechanism_val)]
    if stored != mode:
        raise UnsupportedError("inconsistent reset mechanism", node=path,
                               value=f"the layer was built with '{mode}' but its "
                                     f"reset_mechanism_val says '{stored}'",
                               hint="construct the layer with the reset_mechanism you want "
                                    "instead of changing it afterwards")
    return mode


def _check_plain_neuron(path: str, layer: nn.Module) -> None:
    """Refuse neuron options that the IR cannot express."""
    if layer.inhibition:
        raise UnsupportedError("inhibition=True (winner-take-all spiking) is not supported",
                               node=path, hint="build the layer with inhibition=False")
    if layer.state_quant:
        raise UnsupportedError("state_quant is not supported in the float import", node=path,
                               hint="import the float model and let snn-compile quantize it")
    factor = layer.graded_spikes_factor.detach()
    if not torch.all(factor == 1):
        raise UnsupportedError("graded spikes are not supported", node=path,
                               value=f"graded_spikes_factor={factor.tolist()}",
                               hint="use graded_spikes_factor=1.0 or fold it into the next "
                                    "layer's weights")


def _neuron_fields(path: str, layer: nn.Module, shape: Shape, *, discards_input: bool,
                   reset_delay: bool) -> dict:
    """IR fields common to all snnTorch neurons (threshold, reset, timing, spike test)."""
    _check_plain_neuron(path, layer)
    reset = _reset_mode(path, layer)
    return {
        "name": path,
        "shape": shape,
        "threshold": _per_neuron(path, "threshold", layer.threshold, shape),
        "reset": reset,
        "reset_timing": "next_step" if reset_delay else "same_step",
        "reset_discards_input": reset == "zero" and discards_input,
        "spike_test": _spike_test(path, layer),
    }


def _lif(path: str, layer: nn.Module, shape: Shape, *, discards_input: bool) -> LIF:
    return LIF(beta=_decay(path, "beta", layer.beta, shape),
               **_neuron_fields(path, layer, shape, discards_input=discards_input,
                                reset_delay=layer.reset_delay))


def _cuba(path: str, layer: nn.Module, shape: Shape, *, reset_delay: bool) -> CubaLIF:
    return CubaLIF(alpha=_decay(path, "alpha", layer.alpha, shape),
                   beta=_decay(path, "beta", layer.beta, shape),
                   **_neuron_fields(path, layer, shape, discards_input=True,
                                    reset_delay=reset_delay))


def _rsynaptic_reset_delay(path: str, layer: nn.Module) -> bool:
    """The reset_delay RSynaptic's forward really has: always True in snnTorch 1.0.0, which
    ignores reset_delay=False (warn when the layer asks for it)."""
    if not layer.reset_delay:
        warnings.warn(f"{path}: snnTorch 1.0.0 RSynaptic applies its reset_delay=False reset to "
                      "the forward() arguments, not to its state: when the forward runs at all "
                      "it behaves as reset_delay=True, so the layer is imported with "
                      "next-step resets", stacklevel=3)
    return True


# --------------------------------------------------------------------------- converters
# Each converter adds a layer fed by node ``source`` and returns its output node's name.


def _convert_linear(b: _Builder, path: str, layer: nn.Linear, source: str) -> str:
    return b.add(_affine(path, layer), source)


def _affine(name: str, layer: nn.Linear) -> Affine:
    bias = None if layer.bias is None else _array(layer.bias)
    return Affine(name=name, weight=_array(layer.weight), bias=bias)


def _convert_conv2d(b: _Builder, path: str, layer: nn.Conv2d, source: str) -> str:
    return b.add(_conv(path, layer), source)


def _conv(name: str, layer: nn.Conv2d) -> Conv2d:
    if layer.padding_mode != "zeros":
        raise UnsupportedError(f"Conv2d padding_mode='{layer.padding_mode}' is not supported",
                               node=name, hint="use padding_mode='zeros'")
    padding = layer.padding
    if isinstance(padding, str):  # 'valid' or 'same': torch stores the amounts per side
        left, right, top, bottom = layer._reversed_padding_repeated_twice
        if left != right or top != bottom:
            raise UnsupportedError("Conv2d padding='same' with an even kernel pads unevenly",
                                   node=name, value=layer.kernel_size,
                                   hint="use an odd kernel or explicit integer padding")
        padding = (top, left)
    bias = None if layer.bias is None else _array(layer.bias)
    return Conv2d(name=name, weight=_array(layer.weight), bias=bias, stride=layer.stride,
                  padding=padding, dilation=layer.dilation, groups=layer.groups)


def _convert_flatten(b: _Builder, path: str, layer: nn.Flatten, source: str) -> str:
    if (layer.start_dim, layer.end_dim) != (1, -1):
        raise UnsupportedError("only nn.Flatten(start_dim=1, end_dim=-1) is supported",
                               node=path, value=f"start_dim={layer.start_dim}, "
                                                f"end_dim={layer.end_dim}")
    return b.add(Flatten(name=path), source)


def _convert_avgpool2d(b: _Builder, path: str, layer: nn.AvgPool2d, source: str) -> str:
    if layer.ceil_mode or not layer.count_include_pad or layer.divisor_override is not None:
        raise UnsupportedError("AvgPool2d needs ceil_mode=False, count_include_pad=True and no "
                               "divisor_override", node=path,
                               value=f"ceil_mode={layer.ceil_mode}, count_include_pad="
                                     f"{layer.count_include_pad}, divisor_override="
                                     f"{layer.divisor_override}")
    return b.add(AvgPool2d(name=path, kernel_size=layer.kernel_size, stride=layer.stride,
                           padding=layer.padding), source)


def _convert_maxpool2d(b: _Builder, path: str, layer: nn.MaxPool2d, source: str) -> str:
    dilation = layer.dilation if isinstance(layer.dilation, tuple) else (layer.dilation,) * 2
    if layer.ceil_mode or layer.return_indices or tuple(dilation) != (1, 1):
        raise UnsupportedError("MaxPool2d needs ceil_mode=False, dilation=1 and no "
                               "return_indices", node=path,
                               value=f"ceil_mode={layer.ceil_mode}, dilation={layer.dilation}, "
                                     f"return_indices={layer.return_indices}")
    return b.add(MaxPool2d(name=path, kernel_size=layer.kernel_size, stride=layer.stride,
                           padding=layer.padding), source)


def _convert_batchnorm(b: _Builder, path: str, layer: nn.modules.batchnorm._BatchNorm,
                       source: str) -> str:
    """Eval-mode batch norm (running statistics), whatever mode the module is in."""
    if layer.running_mean is None or layer.running_var is None:
        raise UnsupportedError(f"{type(layer).__name__}(track_running_stats=False) normalises "
                               "with each batch's own statistics, also at inference",
                               node=path, hint="train with track_running_stats=True")
    weight = None if layer.weight is None else _array(layer.weight)
    bias = None if layer.bias is None else _array(layer.bias)
    return b.add(BatchNorm(name=path, mean=_array(layer.running_mean),
                           var=_array(layer.running_var), weight=weight, bias=bias,
                           eps=float(layer.eps)), source)


def _convert_identity(b: _Builder, path: str, layer: nn.Module, source: str) -> str:
    """nn.Identity, and dropout, which is the identity at inference."""
    origin = type(layer).__name__ + (f"(p={layer.p})" if hasattr(layer, "p") else "")
    return b.add(Identity(name=path, origin=origin), source)


def _convert_relu(b: _Builder, path: str, layer: nn.ReLU, source: str) -> str:
    return b.add(ReLU(name=path), source)


def _convert_leaky(b: _Builder, path: str, layer: snn.Leaky, source: str) -> str:
    return b.add(_lif(path, layer, b.shapes[source], discards_input=False), source)


def _convert_synaptic(b: _Builder, path: str, layer: snn.Synaptic, source: str) -> str:
    return b.add(_cuba(path, layer, b.shapes[source], reset_delay=layer.reset_delay), source)


def _convert_rleaky(b: _Builder, path: str, layer: snn.RLeaky, source: str) -> str:
    return b.recurrent(_lif(path, layer, b.shapes[source], discards_input=True),
                       _recurrent_synapse(path, layer), source)


def _convert_rsynaptic(b: _Builder, path: str, layer: snn.RSynaptic, source: str) -> str:
    reset_delay = _rsynaptic_reset_delay(path, layer)
    return b.recurrent(_cuba(path, layer, b.shapes[source], reset_delay=reset_delay),
                       _recurrent_synapse(path, layer), source)


def _convert_lapicque(b: _Builder, path: str, layer: snn.Lapicque, source: str) -> str:
    """``x * R * (1 / (R C)) * T + (1 - T / (R C)) * mem`` with next-step resets: Scales for
    the input factors (each multiplication as snnTorch does it) and a LIF of that decay."""
    shape = b.shapes[source]
    with torch.no_grad():
        r, c, t = layer.R, layer.C, layer.time_step
        factors = {"R": r, "RC": 1 / (r * c), "T": t}
        decay = 1 - (t / (r * c))
    tail = source
    for key, factor in factors.items():
        value = _per_neuron(path, key, torch.as_tensor(factor).to(torch.float32)
                            if torch.as_tensor(factor).ndim == 0 else factor, shape)
        if np.all(value == 1):
            continue  # x * 1 is x exactly
        tail = b.add(Scale(name=f"{path}.{key}", scale=value), tail)
    beta = _per_neuron(path, "1 - T/(RC)", torch.as_tensor(decay).to(torch.float32)
                       if torch.as_tensor(decay).ndim == 0 else decay, shape)
    if np.any(beta < 0) or np.any(beta > 1):
        raise UnsupportedError("Lapicque's decay 1 - T/(RC) lies outside [0, 1]", node=path,
                               value=f"{float(beta.min()):.4g}..{float(beta.max()):.4g}",
                               hint="choose R, C and time_step with T <= R*C")
    fields = _neuron_fields(path, layer, shape, discards_input=True, reset_delay=True)
    return b.add(LIF(beta=beta, **fields), tail)


def _convert_alpha(b: _Builder, path: str, layer: snn.Alpha, source: str) -> str:
    shape = b.shapes[source]
    fields = _neuron_fields(path, layer, shape, discards_input=True, reset_delay=True)
    fields.pop("reset_discards_input")
    return b.add(Alpha(alpha=_decay(path, "alpha", layer.alpha, shape),
                       beta=_decay(path, "beta", layer.beta, shape), **fields), source)


def _recurrent_synapse(path: str, layer: nn.Module) -> Node:
    """The IR synapse of ``layer.recurrent`` (all-to-all linear or conv, or one-to-one V)."""
    name, recurrent = f"{path}.recurrent", layer.recurrent
    convert = _RECURRENT.get(type(recurrent))
    if convert is None:
        raise _unsupported_layer(name, recurrent)
    return convert(name, recurrent)


def _one_to_one(name: str, recurrent: nn.Module) -> Scale:
    return Scale(name=name, scale=_array(torch.as_tensor(recurrent.V)))


_RECURRENT = {
    nn.Linear: _affine,
    nn.Conv2d: _conv,
    _rleaky.RecurrentOneToOne: _one_to_one,
    _rsynaptic.RecurrentOneToOne: _one_to_one,
}

_CONVERTERS = {
    nn.Linear: _convert_linear,
    nn.Conv2d: _convert_conv2d,
    nn.Flatten: _convert_flatten,
    nn.AvgPool2d: _convert_avgpool2d,
    nn.MaxPool2d: _convert_maxpool2d,
    nn.BatchNorm1d: _convert_batchnorm,
    nn.BatchNorm2d: _convert_batchnorm,
    nn.Identity: _convert_identity,
    nn.Dropout: _convert_identity,
    nn.Dropout1d: _convert_identity,
    nn.Dropout2d: _convert_identity,
    nn.ReLU: _convert_relu,
    snn.Leaky: _convert_leaky,
    snn.Synaptic: _convert_synaptic,
    snn.RLeaky: _convert_rleaky,
    snn.RSynaptic: _convert_rsynaptic,
    snn.Lapicque: _convert_lapicque,
    snn.Alpha: _convert_alpha,
}

_ADVICE = {
    nn.MaxPool1d: "1-D pooling is not supported; use nn.MaxPool2d or nn.AvgPool2d on (C, H, W)",
    nn.AvgPool1d: "1-D pooling is not supported; use nn.AvgPool2d on (C, H, W)",
}


def _unsupported_layer(path: str, layer: nn.Module) -> UnsupportedError:
    kind = type(layer)
    supported = ", ".join(sorted({t.__name__ for t in _CONVERTERS}))
    return UnsupportedError(f"unsupported layer type {kind.__module__}.{kind.__qualname__}",
                            node=path, hint=_ADVICE.get(kind, f"supported layers: {supported}"))


# --------------------------------------------------------------------------- layer order


def _is_layer(module: nn.Module) -> bool:
    """A module converted as a whole (a supported type, or a leaf we cannot look into)."""
    return type(module) in _CONVERTERS or not any(True for _ in module.children())


def _layers(module: nn.Module, input_shape: Shape, example_input) -> list[tuple[str, nn.Module]]:
    """The network's layers as ``(path, module)`` in execution order."""
    if _is_layer(module):
        return [(type(module).__name__.lower(), module)]
    if example_input is None and _is_sequential_tree(module):
        return list(_layer_modules(module))
    return _traced_layers(module, input_shape, example_input)


def _is_sequential_tree(module: nn.Module) -> bool:
    return isinstance(module, nn.Sequential) and all(
        _is_layer(child) or _is_sequential_tree(child) for child in module.children())


def _layer_modules(module: nn.Module, prefix: str = ""):
    """``(path, layer)`` for every layer, without descending into layers."""
    for name, child in module.named_children():
        path = f"{prefix}{name}"
        if _is_layer(child):
            yield path, child
        else:
            yield from _layer_modules(child, path + ".")


@dataclass
class _Call:
    path: str
    input: torch.Tensor | None
    output: torch.Tensor  # the spikes, for neurons


def _traced_layers(module: nn.Module, input_shape: Shape, example_input
                   ) -> list[tuple[str, nn.Module]]:
    """Recover the layer chain of a custom ``forward`` by running it once with hooks."""
    model = copy.deepcopy(module).eval()  # the user's module keeps its state
    paths = {id(layer): path for path, layer in _layer_modules(model)}
    originals = {path: layer for path, layer in _layer_modules(module)}
    calls: list[_Call] = []

    def record(layer, args, output):
        first = output[0] if isinstance(output, tuple) else output
        calls.append(_Call(paths[id(layer)], args[0] if args else None, first))

    x = torch.rand(2, *input_shape) if example_input is None else example_input
    hooks = [layer.register_forward_hook(record) for _, layer in _layer_modules(model)]
    try:
        with torch.no_grad():
            model(x)
    except Exception as exc:
        raise UnsupportedError(f"could not trace {type(module).__name__}.forward on an input of "
                               f"shape {tuple(x.shape)}: {exc}",
                               hint="pass example_input= with a tensor its forward accepts, "
                                    "or build the network as nn.Sequential") from exc
    finally:
        for hook in hooks:
            hook.remove()
    step = _first_step(module, calls, x)
    return _follow_data(step, x, input_shape, originals)


def _first_step(module: nn.Module, calls: list[_Call], model_input: torch.Tensor
                ) -> list[_Call]:
    """The calls of one time step: the sequence up to the first repeated layer.

    The remaining calls must repeat that sequence, each repetition starting from the model
    input (a layer reused within one step would otherwise look like a second time step).
    """
    if not calls:
        raise UnsupportedError(f"{type(module).__name__}.forward called no layer",
                               hint="the network must be built from nn.Module layers")
    order = [c.path for c in calls]
    length = next((i for i, p in enumerate(order) if p in order[:i]), len(order))
    if order != order[:length] * (len(order) // length):
        raise UnsupportedError(f"{type(module).__name__}.forward does not call its layers in "
                               f"a fixed order every time step", value=" -> ".join(order),
                               hint="call each layer exactly once per step, in the same order")
    for call in calls[length::length]:
        if not _same_storage(call.input, model_input):
            raise UnsupportedError("layer called twice in one time step", node=call.path,
                                   value=" -> ".join(order[:length + 1]),
                                   hint="use a separate layer instance for each use")
    return calls[:length]


def _follow_data(step: list[_Call], model_input: torch.Tensor, input_shape: Shape,
                 originals: dict[str, nn.Module]) -> list[tuple[str, nn.Module]]:
    """The step's layers as a chain, with an nn.Flatten wherever forward flattened by view."""
    chain, previous, previous_shape = [], model_input, input_shape
    for i, call in enumerate(step):
        if not _same_data(call.input, previous, whole=i > 0):
            source = "the model input" if i == 0 else f"the output of '{step[i - 1].path}'"
            raise UnsupportedError(f"cannot follow the data flow: the input of this layer is "
                                   f"not {source}", node=call.path,
                                   hint="forward may only pass each layer's spikes to the "
                                        "next layer (reshaping with view/flatten is fine); "
                                        "express other operations as layers")
        got = tuple(call.input.shape[1:])
        if got != previous_shape:
            if got != (int(np.prod(previous_shape)),):
                raise UnsupportedError("forward reshapes a tensor other than by flattening it",
                                       node=call.path, value=f"{previous_shape} -> {got}",
                                       hint="use nn.Flatten() or x.flatten(1); if forward "
                                            "loops over a time-major input, pass "
                                            "example_input=[time, batch, *input_shape]")
            chain.append((f"{call.path}.flatten_input", nn.Flatten()))
        chain.append((call.path, originals[call.path]))
        previous, previous_shape = call.output, tuple(call.output.shape[1:])
    return chain


def _same_storage(view, base: torch.Tensor) -> bool:
    """True when ``view`` is a tensor on the same memory as ``base`` (itself or a view)."""
    return (isinstance(view, torch.Tensor)
            and view.untyped_storage().data_ptr() == base.untyped_storage().data_ptr())


def _same_data(view, base: torch.Tensor, *, whole: bool) -> bool:
    """True when ``view`` is a view of ``base`` from its first element (of all of it if
    ``whole``): the same numbers, perhaps reshaped or, for the model input, one time step."""
    return (_same_storage(view, base)
            and view.storage_offset() == base.storage_offset()
            and view.is_contiguous()
            and (not whole or view.numel() == base.numel()))
