"""Canonical layers: the float graph regrouped as "synapse -> neuron population" steps.

Hardware runs populations of neurons fed by one synapse each. :func:`extract_layers` walks a
verified float :class:`~snn_compile.ir.Graph` that is a chain and folds every run of linear
nodes between two neuron populations (Affine, Conv2d, pooling, Flatten, Scale, Delay) into one
synapse: a convolution when the run is convolution/pooling only (pooling folded into the kernel,
a lone pooling becomes a depthwise convolution), otherwise a dense matrix obtained by applying
the run to the identity basis. The fold is exact in float64; biases that the run carries become
a per-neuron synaptic bias.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .errors import UnsupportedError
from .ir import nodes as n
from .ir.graph import Graph


@dataclass(frozen=True)
class ConvSpec:
    """A folded convolution (float64 kernel), PyTorch semantics."""

    weight: np.ndarray
    in_shape: tuple
    stride: tuple
    padding: tuple
    dilation: tuple = (1, 1)
    groups: int = 1


@dataclass(frozen=True)
class LayerSpec:
    """One population and its folded synapses (float64)."""

    neuron: n.Node                     # LIF, CubaLIF, IF or LI
    synapse: np.ndarray | ConvSpec     # dense matrix [n_out, n_in] or convolution
    synapse_bias: np.ndarray           # [n_out], added to the neuron input every step
    recurrent: np.ndarray | None       # dense [n, n] from the population to itself
    delay: int                         # extra synaptic delay in steps
    source: str | None                 # previous population, None for the graph input
    in_shape: tuple


def extract_layers(graph: Graph) -> list[LayerSpec]:
    """Group a chain graph into :class:`LayerSpec` s; UnsupportedError for other topologies."""
    shapes = graph.shapes
    inputs = graph.inputs
    if len(inputs) != 1 or len(graph.outputs) != 1:
        raise UnsupportedError("hardware lowering needs exactly one Input and one Output",
                               value=f"{len(inputs)} inputs, {len(graph.outputs)} outputs")
    layers: list[LayerSpec] = []
    current, source = inputs[0].name, None
    while True:
        chain, recurrent, delay = [], None, 0
        node = _next(graph, current)
        while node is not None and not _is_population(node):
            if isinstance(node, n.Output):
                break
            if isinstance(node, n.Delay):
                delay += node.steps
            else:
                chain.append(node)
            node = _next(graph, node.name)
        if node is None or isinstance(node, n.Output):
            if delay and not chain:
                raise UnsupportedError("a delay after the last neuron layer cannot be lowered",
                                       value=f"{delay} step(s)",
                                       hint="NIR graphs from Spyx carry one (its spike is taken "
                                            "before the update); shift the output in time instead")
            if chain:
                raise UnsupportedError("linear layers after the last neuron layer",
                                       node=chain[0].name if chain else None,
                                       hint="end the network with a neuron layer (e.g. a "
                                            "Leaky readout with reset_mechanism='none')")
            break
        if layers and not isinstance(layers[-1].neuron, n.NeuronNode):
            raise UnsupportedError("a non-spiking layer can only be the last layer",
                                   node=layers[-1].neuron.name,
                                   hint="hardware passes spikes between layers")
        recurrent = _recurrent_matrix(graph, node, shapes)
        in_shape = shapes[current]
        synapse, bias = fold_linear(chain, in_shape, node.name)
        bias = bias + _recurrent_bias(graph, node)
        layers.append(LayerSpec(neuron=node, synapse=synapse, synapse_bias=bias,
                                recurrent=recurrent, delay=delay, source=source,
                                in_shape=in_shape))
        current, source = node.name, node.name
    if not layers:
        raise UnsupportedError("the network has no neuron layer")
    return layers


def _is_population(node) -> bool:
    return isinstance(node, (n.NeuronNode, n.LI))


def _next(graph: Graph, name: str):
    """The single forward successor of ``name`` (recurrent synapses excluded)."""
    succ = [s for s in graph.successors(name) if not graph.is_feedback((name, s))]
    if len(succ) > 1:
        raise UnsupportedError("branching graphs cannot be lowered to hardware yet", node=name,
                               value=f"feeds {succ}", hint="use a chain of layers")
    if not succ:
        return None
    target = graph[succ[0]]
    forward_preds = [p for p in graph.predecessors(target.name)
                     if not graph.is_feedback((p, target.name)) and not _is_recurrent_syn(graph, p)]
    if len(forward_preds) > 1:
        raise UnsupportedError("merging branches cannot be lowered to hardware yet",
                               node=target.name, value=f"inputs {forward_preds}")
    return target


def _is_recurrent_syn(graph: Graph, name: str) -> bool:
    """An Affine or Scale fed only by a feedback edge (the recurrent synapse of a population)."""
    preds = graph.predecessors(name)
    return (isinstance(graph[name], (n.Affine, n.Scale)) and len(preds) == 1
            and graph.is_feedback((preds[0], name)))


def _recurrent_matrix(graph: Graph, neuron, shapes) -> np.ndarray | None:
    recs = [p for p in graph.predecessors(neuron.name) if _is_recurrent_syn(graph, p)]
    direct = [p for p in graph.predecessors(neuron.name) if graph.is_feedback((p, neuron.name))]
    if direct:
        if direct != [neuron.name]:
            raise UnsupportedError("feedback from another layer cannot be lowered",
                                   node=neuron.name, value=f"from {direct}")
        return np.eye(int(np.prod(neuron.shape)))
    if not recs:
        return None
    if len(recs) > 1 or graph.predecessors(recs[0]) != [neuron.name]:
        raise UnsupportedError("only self-recurrence (a population feeding itself) is supported",
                               node=neuron.name, value=f"recurrent inputs {recs}")
    rec = graph[recs[0]]
    size = int(np.prod(neuron.shape))
    if isinstance(rec, n.Scale):  # elementwise recurrence, e.g. a decayed subtractive reset
        return np.diag(np.broadcast_to(rec.scale, neuron.shape).reshape(size).astype(np.float64))
    return rec.weight.astype(np.float64)


def _recurrent_bias(graph: Graph, neuron) -> np.ndarray:
    """A recurrent Affine's bias is added every step (its input is last step's spikes, zero
    at t = 0, but the bias is not): it is a constant input bias of the population."""
    total = np.zeros(int(np.prod(neuron.shape)))
    for p in graph.predecessors(neuron.name):
        if _is_recurrent_syn(graph, p) and getattr(graph[p], "bias", None) is not None:
            total += graph[p].bias
    return total


# ----------------------------------------------------------------------------- folding

def fold_linear(chain, in_shape, owner: str):
    """Fold a run of linear nodes into a synapse (conv when possible) and a bias vector."""
    zero = _apply(chain, np.zeros((1, *in_shape)))
    conv = _fold_conv(chain, in_shape)
    if conv is not None and conv_output_shape(conv) == zero.shape[1:]:
        return conv, zero.reshape(-1)
    size = int(np.prod(in_shape))
    basis = _apply(chain, np.eye(size).reshape(size, *in_shape)) - zero
    matrix = basis.reshape(size, -1).T
    if matrix.shape[0] == 0:
        raise UnsupportedError("synapse produces no output", node=owner)
    return matrix, zero.reshape(-1)


def _apply(chain, x: np.ndarray) -> np.ndarray:
    """Run the linear chain in float64 on a batch ``x`` [N, *shape]."""
    t = torch.from_numpy(x).to(torch.float64)
    for node in chain:
        t = APPLY[type(node)](node, t)
    return t.numpy()


def _affine(node, t):
    y = t.reshape(t.shape[0], -1) @ torch.from_numpy(np.array(node.weight)).double().T
    return y + torch.from_numpy(np.array(node.bias)).double() if node.bias is not None else y


def _conv(node, t):
    bias = None if node.bias is None else torch.from_numpy(np.array(node.bias)).double()
    return torch.nn.functional.conv2d(t, torch.from_numpy(np.array(node.weight)).double(), bias,
                                      node.stride, node.padding, node.dilation, node.groups)


def _sumpool(node, t):
    return _avgpool(node, t) * (node.kernel_size[0] * node.kernel_size[1])


def _avgpool(node, t):
    return torch.nn.functional.avg_pool2d(t, node.kernel_size, node.stride, node.padding,
                                          count_include_pad=True)


APPLY = {
    n.Affine: _affine,
    n.Conv2d: _conv,
    n.SumPool2d: _sumpool,
    n.AvgPool2d: _avgpool,
    n.Flatten: lambda node, t: t.reshape(t.shape[0], -1),
    n.Scale: lambda node, t: t * torch.from_numpy(np.array(node.scale)).double(),
}


def conv_output_shape(spec: ConvSpec) -> tuple:
    c, h, w = spec.in_shape
    kh, kw = spec.weight.shape[2:]
    oh = (h + 2 * spec.padding[0] - spec.dilation[0] * (kh - 1) - 1) // spec.stride[0] + 1
    ow = (w + 2 * spec.padding[1] - spec.dilation[1] * (kw - 1) - 1) // spec.stride[1] + 1
    return (spec.weight.shape[0], oh, ow)


def _fold_conv(chain, in_shape) -> ConvSpec | None:
    """Conv (+ pooling), or a lone pooling, as one convolution; None when not possible."""
    if len(in_shape) != 3 or not chain:
        return None
    first, rest = chain[0], chain[1:]
    pools = [p for p in rest if isinstance(p, (n.SumPool2d, n.AvgPool2d))]
    if len(pools) != len(rest) or len(rest) > 1:
        return None
    if isinstance(first, (n.SumPool2d, n.AvgPool2d)) and not rest:
        c = in_shape[0]
        kh, kw = first.kernel_size
        gain = 1.0 / (kh * kw) if isinstance(first, n.AvgPool2d) else 1.0
        return ConvSpec(weight=np.full((c, 1, kh, kw), gain), in_shape=tuple(in_shape),
                        stride=first.stride, padding=first.padding, groups=c)
    if not isinstance(first, n.Conv2d):
        return None
    w = first.weight.astype(np.float64)
    if not rest:
        return ConvSpec(weight=w, in_shape=tuple(in_shape), stride=first.stride,
                        padding=first.padding, dilation=first.dilation, groups=first.groups)
    pool = rest[0]
    if first.dilation != (1, 1) or first.groups != 1 or pool.padding != (0, 0):
        return None
    (s1h, s1w), (ph, pw) = first.stride, pool.kernel_size
    gain = 1.0 / (ph * pw) if isinstance(pool, n.AvgPool2d) else 1.0
    kh, kw = w.shape[2:]
    folded = np.zeros((*w.shape[:2], kh + (ph - 1) * s1h, kw + (pw - 1) * s1w))
    for a in range(ph):
        for b in range(pw):
            folded[:, :, a * s1h:a * s1h + kh, b * s1w:b * s1w + kw] += w * gain
    stride = (s1h * pool.stride[0], s1w * pool.stride[1])
    return ConvSpec(weight=folded, in_shape=tuple(in_shape), stride=stride,
                    padding=first.padding)
