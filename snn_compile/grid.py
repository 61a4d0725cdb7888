"""The integer datapath of a :class:`~snn_compile.ir.nodes.StateGrid`, in torch.

One implementation serves two callers, which is what makes them agree bit for bit:

* the float reference simulator (:mod:`snn_compile.reference`) steps grid neurons with it,
  without gradients;
* quantization-aware training (:mod:`snn_compile.qat`) steps the same neurons with gradients.

It is the torch family of the one datapath description: :class:`TorchOps` implements the
primitives of :mod:`snn_compile.datapath.rules` on float64 tensors, and the step is
:mod:`snn_compile.datapath.step`, the same code the emulator runs. Every value of a target's
datapath (at most 2**40 for a 24-bit state times a 16-bit decay multiplier) is exact below 2**53,
so rounding, shifts, wraps and saturation are exact. Each rule is *straight-through*, derived
from the rule table: the forward value is exact, the gradient is that of the real-valued
operation it rounds (``d wrap(x)/dx := 1`` for value-preserving rules, ``d (p >> k)/dp :=
2**-k`` for shifts). Output spikes are exact Heaviside steps forward and a surrogate's derivative
backward; the reset flag has no gradient.
"""

from __future__ import annotations

import numpy as np
import torch

from .datapath.rules import RULES
from .datapath.step import (
    NeuronConfig, NeuronParams, contribution, neuron_step, synaptic_input,
)
from .ir.nodes import CubaLIF, NeuronNode

DTYPE = torch.float64


class _Straight(torch.autograd.Function):
    """Forward ``exact`` (a tensor computed without gradient), backward the gradient of ``x``."""

    @staticmethod
    def forward(ctx, x, exact):
        return exact.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad, None


def straight(x: torch.Tensor, exact: torch.Tensor) -> torch.Tensor:
    """``exact`` with the gradient of ``x`` (``exact`` itself when no gradient is needed)."""
    return _Straight.apply(x, exact.to(x.dtype)) if x.requires_grad else exact


def _plain_ops():
    return _TorchPrimitives()


class _TorchPrimitives:
    """The primitives on float64 tensors, without straight-through rules (exact values).

    Booleans are 0/1 float tensors, so ``where`` and ``as_int`` are products (gradients flow
    through them like through the old ``v * (1 - r)``)."""

    def const(self, value):
        return torch.as_tensor(np.asarray(value), dtype=DTYPE)

    def add(self, a, b):
        return a + b

    def sub(self, a, b):
        return a - b

    def mul(self, a, b):
        return a * b

    def shl(self, x, k: int):
        return x * 2.0 ** k

    def shr(self, x, k: int):
        return torch.floor(x / 2.0 ** k)

    def gt(self, a, b):
        return (torch.as_tensor(a) > b).to(DTYPE)

    def ge(self, a, b):
        return (torch.as_tensor(a) >= b).to(DTYPE)

    def where(self, cond, a, b):
        return cond * a + (1 - cond) * b

    def minimum(self, a, b):
        return torch.minimum(torch.as_tensor(a, dtype=DTYPE), torch.as_tensor(b, dtype=DTYPE))

    def maximum(self, a, b):
        return torch.maximum(torch.as_tensor(a, dtype=DTYPE), torch.as_tensor(b, dtype=DTYPE))

    def as_int(self, cond):
        return cond

    def count(self, v, thr, cap: int):
        return torch.clamp(torch.floor(v / thr), 0, cap)


def _straight_rule(rule):
    """The rule's exact value with a straight-through gradient (see the module docstring)."""
    plain = _plain_ops()

    def run(x, param):
        exact = rule.apply(plain, x.detach() if torch.is_tensor(x) else x, param)
        if not (torch.is_tensor(x) and x.requires_grad):
            return exact
        if rule.kind == "rounding":
            return straight(x / 2.0 ** param, exact)
        return straight(x, exact) if rule.value_preserving else exact
    return run


class TorchOps(_TorchPrimitives):
    """The torch family: primitives plus straight-through rules from the rule table; spikes of
    a population get ``surrogate``'s gradient at ``z = (v - threshold) / scale``."""

    special = {(rule.kind, rule.name): _straight_rule(rule)
               for table in RULES.values() for rule in table.values()}

    def __init__(self, surrogate=None, scale=None):
        self.surrogate, self.scale = surrogate, scale

    def shr(self, x, k: int):
        exact = torch.floor((x.detach() if x.requires_grad else x) / 2.0 ** k)
        return straight(x / 2.0 ** k, exact) if x.requires_grad else exact

    def spikes(self, exact, v, thr):
        """Output spikes: exact forward, surrogate gradient backward (QAT)."""
        if self.surrogate is None or not v.requires_grad:
            return exact
        return straight(self.surrogate((v - thr) / self.scale).to(DTYPE), exact)


def _per_neuron(value, shape) -> torch.Tensor:
    return torch.as_tensor(np.broadcast_to(value, shape).copy(), dtype=DTYPE)


class GridNeuron:
    """State and step of a population on its grid; tensors ``[B, *shape]`` float64.

    ``surrogate`` (QAT) maps ``z = (v - threshold) / S`` (float units) to a spike whose
    derivative is used backward; None steps without gradients of the spike (the reference).
    The first ``start`` steps leave the population off (zero state, no spikes): a window padded
    with ``L`` leading steps starts each population at ``start = L - grid.lead``.
    """

    def __init__(self, node: NeuronNode, batch: int, surrogate=None, start: int = 0):
        grid, shape = node.grid, node.shape
        self.node, self.grid = node, grid
        self.scale = _per_neuron(grid.scale, shape)
        self.weight_scale = _per_neuron(grid.weight_scale, shape)
        self.ops = TorchOps(surrogate, self.scale)
        self.cfg = grid_config(node)
        self.params = NeuronParams(
            m_u=_per_neuron(grid.decay_u, shape), m_v=_per_neuron(grid.decay_v, shape),
            threshold=_per_neuron(grid.threshold, shape), bias=_per_neuron(grid.bias, shape))
        self.u = torch.zeros(batch, *shape, dtype=DTYPE)
        self.v = torch.zeros(batch, *shape, dtype=DTYPE)
        self.off_steps = start

    @property
    def thr(self) -> torch.Tensor:
        return self.params.threshold

    def accumulators(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Integer accumulators ``round(x * weight_scale)`` of float synaptic inputs."""
        return [straight(x * self.weight_scale, torch.round(x.detach() * self.weight_scale))
                for x in inputs]

    def _input(self, accs: list[torch.Tensor]) -> torch.Tensor:
        """``a``: every accumulator shifted and wrapped (feed-forward first), summed, wrapped."""
        g, o = self.grid, self.ops
        parts = [contribution(o, accs[0], g.weight_exp, g.synapse_bits)]
        parts += [contribution(o, acc, g.weight_exp, g.recurrent_bits) for acc in accs[1:]]
        return parts[0] if len(parts) == 1 else synaptic_input(o, parts, None, g.recurrent_bits)

    def step(self, accs: list[torch.Tensor]) -> torch.Tensor:
        """One time step from integer accumulators (feed-forward first); returns the spikes."""
        if self.off_steps > 0:
            self.off_steps -= 1
            return torch.zeros_like(self.v)
        s, self.u, self.v = neuron_step(self.ops, self.cfg, self.params, self.u, self.v,
                                        self._input(accs))
        return torch.zeros_like(self.v) if s is None else s


def grid_config(node: NeuronNode) -> NeuronConfig:
    """The :class:`NeuronConfig` of a grid neuron (its datapath is in the grid)."""
    g = node.grid
    return NeuronConfig(
        u_overflow=g.u_overflow, v_overflow=g.v_overflow, rounding=g.rounding,
        spike_test=node.spike_test, u_bits=g.u_bits, v_bits=g.v_bits,
        intermediate_bits=g.intermediate_bits, decay_bits=g.decay_bits,
        activation_shift=g.activation_shift, reset=node.reset,
        same_step=node.reset_timing in ("same_step", "immediate"),
        immediate=node.reset_timing == "immediate",
        discards_input=bool(node.reset_discards_input), spiking=True,
        has_current=isinstance(node, CubaLIF))
