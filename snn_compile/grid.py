"""The integer datapath of a :class:`~snn_compile.ir.nodes.StateGrid`, in torch.

One implementation serves two callers, which is what makes them agree bit for bit:

* the float reference simulator (:mod:`snn_compile.reference`) steps grid neurons with it,
  without gradients;
* quantization-aware training (:mod:`snn_compile.qat`) steps the same neurons with gradients.

Integers are held in float64 tensors: every value of a target's datapath (at most 2**40 for a
24-bit state times a 16-bit decay multiplier) is exact below 2**53, so rounding, shifts, wraps
and saturation are exact. Each integer operation is *straight-through*: the forward value is
exact, the gradient is that of the real-valued operation it rounds (``d wrap(x)/dx := 1``,
``d (p >> k)/dp := 2**-k``). Spikes are exact Heaviside steps forward and a surrogate's
derivative backward.

The equations are those of the :class:`~snn_compile.ir.nodes.StateGrid` docstring (and of the
emulator, :mod:`snn_compile.ir.fixed`), in the same order.
"""

from __future__ import annotations

import numpy as np
import torch

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


def _pure(fn):
    """Lift an exact value-preserving integer function (wrap, clip) to a straight-through one."""
    def op(x, bits: int):
        return straight(x, fn(x.detach(), bits))
    op.__doc__ = fn.__doc__
    return op


def _shift(fn):
    """Lift an exact right shift ``p >> k`` to a straight-through one (gradient of p / 2^k)."""
    def op(p, k: int):
        return straight(p / 2.0 ** k, fn(p.detach(), k))
    op.__doc__ = fn.__doc__
    return op


@_pure
def wrap(x, bits: int):
    """Two's complement wrap into [-2^(bits-1), 2^(bits-1)):
    ``x - 2^bits * floor((x + 2^(bits-1)) / 2^bits)``."""
    if bits >= 64:
        return x
    half, full = 2.0 ** (bits - 1), 2.0 ** bits
    return x - full * torch.floor((x + half) / full)


@_pure
def wrap_lava(x, bits: int):
    """Lava's single-pass wrap into (-2^(bits-1), 2^(bits-1)]."""
    half, full = 2.0 ** (bits - 1), 2.0 ** bits
    return torch.where(x > half, x - full, torch.where(x <= -half, x + full, x))


@_pure
def saturate(x, bits: int):
    """Clip into [-2^(bits-1), 2^(bits-1) - 1]."""
    half = 2.0 ** (bits - 1)
    return x.clamp(-half, half - 1)


@_pure
def saturate_symmetric(x, bits: int):
    """Clip into [-(2^(bits-1) - 1), 2^(bits-1) - 1]."""
    half = 2.0 ** (bits - 1)
    return x.clamp(1 - half, half - 1)


OVERFLOW = {"wrap": wrap, "wrap_lava": wrap_lava, "saturate": saturate,
            "saturate_symmetric": saturate_symmetric}


@_shift
def shift_toward_zero(p, k: int):
    """``sign(p) * (|p| >> k)`` = trunc(p / 2^k)."""
    return torch.trunc(p / 2.0 ** k)


@_shift
def shift_floor(p, k: int):
    """``p >> k`` = floor(p / 2^k)."""
    return torch.floor(p / 2.0 ** k)


@_shift
def shift_nearest(p, k: int):
    """``(p + 2^(k-1)) >> k`` = floor(p / 2^k + 1/2)."""
    return torch.floor(p / 2.0 ** k + 0.5) if k > 0 else p


ROUNDING = {"toward_zero": shift_toward_zero, "floor": shift_floor, "nearest": shift_nearest}


def shift_left(x, exp: int):
    """``x << exp``, or the floor shift ``x >> -exp`` for a negative exponent."""
    return x * 2.0 ** exp if exp >= 0 else shift_floor(x, -exp)


def heaviside(v: torch.Tensor, thr: torch.Tensor, test: str) -> torch.Tensor:
    """The exact spike test ``v > thr`` (or ``>=``) as 0/1."""
    return (v > thr if test == ">" else v >= thr).to(v.dtype)


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
        self.node, self.grid, self.surrogate = node, grid, surrogate
        self.scale = _per_neuron(grid.scale, shape)
        self.weight_scale = _per_neuron(grid.weight_scale, shape)
        self.m_u, self.m_v = _per_neuron(grid.decay_u, shape), _per_neuron(grid.decay_v, shape)
        self.thr, self.bias = _per_neuron(grid.threshold, shape), _per_neuron(grid.bias, shape)
        self.rnd = ROUNDING[grid.rounding]
        self.ovf_u, self.ovf_v = OVERFLOW[grid.u_overflow], OVERFLOW[grid.v_overflow]
        self.has_current = isinstance(node, CubaLIF)
        self.u = torch.zeros(batch, *shape, dtype=DTYPE)
        self.v = torch.zeros(batch, *shape, dtype=DTYPE)
        self.off_steps = start

    def accumulators(self, inputs: list[torch.Tensor]) -> list[torch.Tensor]:
        """Integer accumulators ``round(x * weight_scale)`` of float synaptic inputs."""
        return [straight(x * self.weight_scale, torch.round(x.detach() * self.weight_scale))
                for x in inputs]

    def _input(self, accs: list[torch.Tensor]) -> torch.Tensor:
        """``a``: the feed-forward accumulator, then each recurrent one, shifted and wrapped."""
        g = self.grid
        a = wrap(shift_left(accs[0], g.weight_exp), g.synapse_bits)
        for acc in accs[1:]:
            a = wrap(a + wrap(shift_left(acc, g.weight_exp), g.recurrent_bits), g.recurrent_bits)
        return a

    def _spike(self, v: torch.Tensor) -> torch.Tensor:
        exact = heaviside(v.detach(), self.thr, self.node.spike_test)
        if self.surrogate is None or not v.requires_grad:
            return exact
        return straight(self.surrogate((v - self.thr) / self.scale).to(DTYPE), exact)

    def step(self, accs: list[torch.Tensor]) -> torch.Tensor:
        """One time step from integer accumulators (feed-forward first); returns the spikes."""
        if self.off_steps > 0:
            self.off_steps -= 1
            return torch.zeros_like(self.v)
        g, node = self.grid, self.node
        ib, k = g.intermediate_bits, g.decay_bits
        reset, v = node.reset, self.v
        zero_keeps_input = reset == "zero" and not node.reset_discards_input
        r = heaviside(v, self.thr, node.spike_test) if reset != "none" else torch.zeros_like(v)
        if zero_keeps_input:
            v = v * (1 - r)
        act = wrap(shift_left(self._input(accs), g.activation_shift), ib)
        if self.has_current:
            act = wrap(wrap(self.rnd(self.u * self.m_u, k), ib) + act, ib)
        self.u = self.ovf_u(act, g.u_bits)
        y = wrap(self.rnd(v * self.m_v, k), ib) + self.u + self.bias
        if reset == "subtract":
            y = y - r * self.thr
        v = self.ovf_v(wrap(y, ib), g.v_bits)
        if reset == "zero" and node.reset_discards_input:
            v = v * (1 - r)
        s = self._spike(v)
        if node.reset_timing == "same_step" and reset == "subtract":
            v = self.ovf_v(wrap(v - (s - r) * self.thr, ib), g.v_bits)
        elif node.reset_timing == "same_step" and reset == "zero":
            v = v - (s - r) * v
        self.v = v
        return s
