"""Quantization-aware training (QAT): train a spiking network with its target's integer arithmetic.

    qat = prepare_qat(net, "loihi2", input_shape=(64,), calibration=spikes)  # spikes [T, B, 64]
    optimizer = torch.optim.Adam(qat.parameters(), lr=1e-3)
    loss = loss_fn(qat(spikes), labels)        # qat(x): output spikes [T, B, n_out]
    loss.backward(); optimizer.step()
    export(qat, "model_qat.pt")                # then: snn-compile model_qat.pt --target loihi2

:func:`prepare_qat` imports ``net`` (an snnTorch module, or a float IR graph) and quantizes it
post-training with :func:`snn_compile.quantize.quantize` (calibrated on ``calibration``). What the
quantizer chose for each layer is frozen as a :class:`~snn_compile.ir.nodes.StateGrid`: the
weight scale ``s_w`` and exponent, the threshold and bias integers, the decay multipliers
``m = round(beta * 2**decay_bits)``, and the target's rounding, widths and overflow rules.
The float weights stay trainable; every forward pass puts them on the grid with the quantizer's
own rounding, ``W_int = round_grid(W * s_w)`` (even steps and clipping as the target needs), and
runs the neurons with :class:`snn_compile.grid.GridNeuron`, the target's datapath::

    acc[t] = W_int @ x[t]                                  (exact integers, float64)
    u, v, s = the StateGrid step (decay rounding toward zero on Loihi 2, floor on FPGAs, ...)

Gradients are straight-through for every rounding, wrap and saturation (``d round(x)/dx := 1``,
so ``dacc/dW = s_w * x``) and a surrogate's derivative for spikes, taken at
``z = (v - threshold) / S`` in float units (default: snnTorch's ``atan``, its neurons' default).
Thresholds, biases and decays stay frozen at the quantizer's integers. The target's time
alignment is part of the grid (``lead``): on Loihi 2 a layer runs, and integrates its bias, one
step per layer before its input arrives, and the QAT forward pass does the same.

:func:`convert` gives the float IR graph of the trained model (weights ``W_int / s_w`` and the
grids); :func:`export` writes it as a model file. Its float reference and the emulator agree spike
for spike (``snn-compile check`` reports level "exact"), and both equal the QAT forward pass.

Supported: chains of (Flatten) Linear/Conv2d (+ pooling, folded into the trained kernel) ->
Leaky/Synaptic layers with spike input. Recurrent layers, synaptic delays, non-spiking readouts and a bias on a Synaptic
current are refused with an UnsupportedError.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .errors import UnsupportedError
from .grid import DTYPE, GridNeuron, straight
from .importers.model_file import export as export_graph
from .ir.graph import Graph, sequential
from .ir.nodes import LIF, Affine, Conv2d, CubaLIF, Flatten, Input, NeuronNode, StateGrid
from .passes.group import group_populations
from .quantize import grid_datapath, quantize, round_grid, weight_grid
from .targets import Target, load_target

__all__ = ["prepare_qat", "QATNetwork", "QATLayer", "convert", "export", "attach_grids"]


def prepare_qat(net, target, input_shape=None, calibration=None, *, surrogate=None
                ) -> "QATNetwork":
    """A trainable copy of ``net`` that computes with ``target``'s fixed-point arithmetic.

    ``net`` is an snnTorch ``nn.Module`` (``input_shape`` needed, one sample at one step) or a
    float IR :class:`Graph`; ``target`` a name or :class:`Target`; ``calibration`` sample spikes
    ``[T, B, *input_shape]`` for the quantizer's state-range estimate (optional, recommended).
    ``surrogate`` maps ``(v - threshold) / S`` to spikes with a surrogate gradient (default
    ``snntorch.surrogate.atan()``). ``net`` is not modified.
    """
    graph = _as_graph(net, input_shape)
    target = target if isinstance(target, Target) else load_target(target)
    if calibration is not None and not np.isin(np.asarray(calibration), (0, 1)).all():
        raise UnsupportedError("QAT takes 0/1 spike input", value="graded calibration data",
                               hint="rate-code the input as spikes")
    if surrogate is None:
        from snntorch import surrogate as snn_surrogate
        surrogate = snn_surrogate.atan()
    pg = group_populations(graph)
    quantized = quantize(graph, target, calibration).network
    layers = []
    for pop in pg.populations:
        qpop = quantized.population(pop.name)
        _check_supported(quantized, qpop, pg.incoming(pop.name))
        proj = pg.incoming(pop.name)[0]
        qproj = quantized.incoming(pop.name)[0]
        grid = _grid(qpop, qproj, target, proj.kind == "conv")
        layers.append(QATLayer(pop.node, proj, pg.shape_of(proj.source), grid, target,
                               surrogate, _synapse_name(graph, pop.node)))
    return QATNetwork(layers, graph.inputs[0], target, graph.metadata)


def attach_grids(graph: Graph, target, calibration=None) -> Graph:
    """``graph`` with the post-training grids of ``target``: :func:`convert` of an untrained
    :func:`prepare_qat` model (weights rounded onto the grid, float reference == emulator)."""
    return convert(prepare_qat(graph, target, calibration=calibration))


def convert(qat: "QATNetwork") -> Graph:
    """The float IR graph of a QAT model: grid weights ``W_int / s_w`` and neurons with grids."""
    nodes = [qat.input_node]
    for layer in qat.layers:
        nodes += layer.ir_nodes()
    return sequential(nodes, {**qat.metadata, "qat_target": qat.target.name})


def export(qat: "QATNetwork", path):
    """Write the converted QAT model as an snn-compile model file (see :func:`convert`)."""
    return export_graph(convert(qat), path)


# --------------------------------------------------------------------------- modules


class QATLayer(nn.Module):
    """One synapse -> neuron population on a frozen grid; the synapse weights train."""

    def __init__(self, node: NeuronNode, proj, in_shape, grid: StateGrid, target: Target,
                 surrogate, synapse_name: str):
        super().__init__()
        conv = proj.conv if proj.kind == "conv" else None
        self.conv, self.in_shape, self.synapse_name = conv, tuple(in_shape), synapse_name
        self.neuron = dataclasses.replace(node, grid=grid)
        self.target, self.surrogate = target, surrogate
        weight = proj.weight
        self.weight = nn.Parameter(torch.tensor(weight, dtype=DTYPE))
        shape = node.shape
        rows = np.broadcast_to(grid.weight_scale, shape).reshape(shape[0], -1)[:, 0] \
            if conv is not None else np.broadcast_to(grid.weight_scale, shape).reshape(-1)
        self.register_buffer("row_scale", torch.tensor(rows, dtype=DTYPE).reshape(
            -1, *([1] * (weight.ndim - 1))))

    def integer_weight(self) -> torch.Tensor:
        """``W_int = round_grid(W * s_w)`` (the quantizer's rounding), gradient of ``W * s_w``."""
        w = self.weight.detach().numpy()
        even, top = weight_grid(self.target, [w])
        exact = torch.from_numpy(round_grid(w * self.row_scale.numpy(), even, top).astype(float))
        return straight(self.weight * self.row_scale, exact)

    def forward(self, x: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Spikes ``[T, B, *shape]`` for input spikes ``x`` ``[T, B, *in_shape]``; the population
        is off for the first ``start`` steps (see :class:`~snn_compile.grid.GridNeuron`)."""
        steps, batch = x.shape[:2]
        flat = x.to(DTYPE).reshape(steps * batch, *self.in_shape)
        w = self.integer_weight()
        if self.conv is None:
            acc = flat.reshape(steps * batch, -1) @ w.T
        else:
            c = self.conv
            acc = F.conv2d(flat, w, None, c.stride, c.padding, c.dilation, c.groups)
        acc = acc.reshape(steps, batch, *self.neuron.shape)
        neuron = GridNeuron(self.neuron, batch, self.surrogate, start)
        return torch.stack([neuron.step([acc[t]]) for t in range(steps)])

    def ir_nodes(self) -> list:
        """Float IR nodes of the layer: (Flatten,) Affine or Conv2d, and the grid neuron."""
        grid = self.neuron.grid
        w = (self.integer_weight().detach() / self.row_scale).numpy()
        if self.conv is not None:
            c = self.conv
            synapse = Conv2d(name=self.synapse_name, weight=w, stride=c.stride, padding=c.padding,
                             dilation=c.dilation, groups=c.groups)
            return [synapse, self._float_view(grid)]
        flatten = [Flatten(name=f"{self.synapse_name}.flatten")] if len(self.in_shape) > 1 else []
        return flatten + [Affine(name=self.synapse_name, weight=w), self._float_view(grid)]

    def _float_view(self, grid: StateGrid) -> NeuronNode:
        """The neuron with float fields ``integer / S`` (informative; the grid is what runs)."""
        k, scale, node = 1 << grid.decay_bits, grid.scale, self.neuron
        view = {"threshold": grid.threshold / scale, "bias": grid.bias / scale}
        if isinstance(node, (LIF, CubaLIF)):
            view["beta"] = grid.decay_v / k
        if isinstance(node, CubaLIF):
            view["alpha"] = grid.decay_u / k
        return dataclasses.replace(node, **view)


class QATNetwork(nn.Module):
    """A chain of :class:`QATLayer`; ``forward(x)`` maps time-major input spikes
    ``[T, B, *input_shape]`` to output spikes ``[T, B, n_out]`` (float32, from zero state).

    Like the reference simulator, it prepends ``L = max(lead)`` silent steps and switches each
    layer on ``lead`` steps before the input arrives (the target's time alignment)."""

    def __init__(self, layers: list[QATLayer], input_node: Input, target: Target,
                 metadata: dict):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.input_node, self.target, self.metadata = input_node, target, dict(metadata)

    def forward(self, x) -> torch.Tensor:
        x = torch.as_tensor(x)
        steps = max(layer.neuron.grid.lead for layer in self.layers)
        x = torch.cat([x.new_zeros(steps, *x.shape[1:]), x])
        for layer in self.layers:
            x = layer(x, start=steps - layer.neuron.grid.lead)
        return x[steps:].to(torch.float32)


# --------------------------------------------------------------------------- helpers


def _as_graph(net, input_shape) -> Graph:
    if isinstance(net, Graph):
        return net
    if input_shape is None:
        raise UnsupportedError("prepare_qat needs the input shape of an nn.Module",
                               hint="pass input_shape=(features,) or (C, H, W)")
    from .importers.snntorch import from_snntorch
    return from_snntorch(net, input_shape)


def _grid(qpop, qproj, target: Target, is_conv: bool) -> StateGrid:
    """The quantizer's choice for one layer, frozen: ``s_w = scale / 2**(weight_exp + shift)``."""
    n, wexp = qpop.neuron, qproj.weight_exp
    shift = wexp + target.neuron.activation_shift
    return StateGrid(target=target.name, weight_scale=np.asarray(qpop.scale) / 2.0 ** shift,
                     weight_exp=wexp, decay_u=n.decay_u, decay_v=n.decay_v,
                     threshold=n.threshold, bias=n.bias, lead=qpop.lag,
                     **grid_datapath(target, is_conv))


def _check_supported(net, qpop, projections) -> None:
    feeds = [p for p in projections if p.source != qpop.name]
    reasons = {"recurrent synapses": any(p.source == qpop.name for p in projections),
               "several synapses into one layer (skip connections)": len(feeds) > 1,
               "synaptic delays": any(p.float_delay for p in projections),
               "projections that are not dense or convolutions":
                   any(p.kind == "elementwise" for p in projections),
               "a bias on the synaptic current": qpop.input_bias is not None or any(
                   p.source == net.metadata.get("bias_source") for p in net.incoming(qpop.name)),
               "non-spiking readouts": not qpop.neuron.spiking}
    found = [what for what, present in reasons.items() if present]
    if found:
        raise UnsupportedError(f"QAT does not support {', '.join(found)} yet", node=qpop.name,
                               hint="use feed-forward Leaky/Synaptic layers (Synaptic layers "
                                    "fed by bias-free synapses)")


def _synapse_name(graph: Graph, node) -> str:
    """The name of the single Affine/Conv2d feeding the neuron, else ``<neuron>.synapse``."""
    name = node.name
    preds = graph.predecessors(name)
    if len(preds) == 1 and isinstance(graph[preds[0]], (Affine, Conv2d)):
        return preds[0]
    return f"{name}.synapse"
