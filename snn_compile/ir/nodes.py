"""Nodes of the float, discrete-time IR.

Every node is a small frozen dataclass. Parameters are numpy arrays (float32 for the float IR).
Shapes exclude batch and time: a layer of 10 neurons has shape ``(10,)``, a feature map
``(C, H, W)``.

Time is discrete. One call of a node's update is one time step ``t``; ``x[t]`` is the node's
(summed) input at step ``t``. The equations in each docstring are the definition that the float
reference simulator (:mod:`snn_compile.reference`) executes and that every backend reproduces.

Neuron conventions shared by :class:`LIF`, :class:`CubaLIF` and :class:`IF`
(``H(z) = 1 if z > 0 else 0`` for ``spike_test=">"``, ``z >= 0`` for ``">="``)::

    r[t] = H(v[t-1] - thr)          # the spike test applied to the *stored* membrane
                                    # (r = s[t-1] for next-step resets; 0 unless the
                                    #  stored v still exceeds thr for same-step resets;
                                    #  always 0 for immediate resets)
    v'   = <neuron-specific update>
    reset="subtract":  v' -= r * thr
    reset="zero":      v' = <update with v[t-1] replaced by (1 - r) * v[t-1]>, or, with
                       reset_discards_input, v' = (1 - r) * v'   (the whole step is lost)
    s[t] = H(v' - thr)
    reset_timing="next_step":  v[t] = v'
    reset_timing="same_step":  v[t] = v' - (s[t] - r) * thr        (subtract)
                               v[t] = v' - (s[t] - r) * v'         (zero)
    reset_timing="immediate":  v[t] = v' - s[t] * thr              (subtract)
                               v[t] = v' - s[t] * v'               (zero)

Multi-spike neurons (``max_spikes > 1``, Sinabs' ``MultiSpike``, Rockpool's
``max_spikes_per_dt``) emit a count instead of a single spike, with the immediate reset::

    s[t] = clip(floor(v' / thr), 0, max_spikes)     (max_spikes None: no cap)
    v[t] = v' - s[t] * thr  (subtract)   v[t] = 0 where s[t] > 0  (zero)

A membrane floor (``v_floor``, Sinabs' ``min_v_mem``) is applied last, after the reset:
``v[t] = relu(v[t] - v_floor) + v_floor`` (Sinabs' float32 formula; ``max(v, v_floor)``).

``next_step`` and ``same_step`` are snnTorch's update word for word (``reset_delay=True`` and
``False``): snnTorch re-tests the stored membrane, so a membrane left above the threshold after
a subtraction is reset again in the next step. ``immediate`` is the textbook reset right after
each spike, once per spike (Sinabs, Rockpool, Lava): with it the stored membrane is the decayed
one of the next step, ``v'[t+1] = beta * (v'[t] - s[t] * thr) + x[t+1]``. For the zero reset
with a positive threshold, ``same_step`` and ``immediate`` are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import numpy as np

from ..errors import GraphError
from ..targets import OVERFLOW_RULES, ROUNDING_RULES

Shape = tuple[int, ...]
ResetMode = Literal["zero", "subtract", "none"]
ResetTiming = Literal["same_step", "next_step", "immediate"]
RESET_TIMINGS = ("same_step", "next_step", "immediate")
SpikeTest = Literal[">", ">="]


def _array(value, dtype=np.float32) -> np.ndarray:
    arr = np.array(value, dtype=dtype)
    arr.setflags(write=False)
    return arr


def _finite(node: str, key: str, arr: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(arr)):
        raise GraphError(f"parameter '{key}' is not finite", node=node, value=_first_bad(arr),
                         hint="the model holds NaN/Inf values; retrain or fix it")
    return arr


def _pair(value) -> tuple[int, int]:
    if isinstance(value, (tuple, list)):
        a, b = value
        return int(a), int(b)
    return int(value), int(value)


@dataclass(frozen=True, kw_only=True, eq=False)
class Node:
    """Base class: a named operation of one time step."""

    name: str
    stateful: ClassVar[bool] = False  # holds state across time steps (may close a cycle)
    spiking: ClassVar[bool] = False   # emits spikes

    def output_shape(self, input_shape: Shape) -> Shape:
        """Shape of the output for an input of ``input_shape``; raise GraphError if invalid."""
        return tuple(input_shape)

    def declared_shape(self) -> Shape | None:
        """The output shape the node declares itself (neurons, Input), else None."""
        shape = getattr(self, "shape", None)
        return None if shape is None else tuple(shape)

    def _mismatch(self, expected, got) -> GraphError:
        return GraphError("input shape mismatch", node=self.name,
                          value=f"input shape {tuple(got)}, expected {tuple(expected)}",
                          hint="check the preceding layer's output size")


# --------------------------------------------------------------------------- graph ends


@dataclass(frozen=True, kw_only=True, eq=False)
class Input(Node):
    """Graph input: ``y[t] = input[t]`` with ``shape`` (spikes, or graded values)."""

    shape: Shape

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))


@dataclass(frozen=True, kw_only=True, eq=False)
class Output(Node):
    """Graph output: ``y[t] = x[t]``."""


@dataclass(frozen=True, kw_only=True, eq=False)
class Sum(Node):
    """Sum of the inputs as one value: ``y[t] = x_1[t] + x_2[t] + ...`` (PyTorch's ``a + b``).

    A neuron adds its inputs one by one after its leak term; a Sum in front of it adds them
    first, as a framework computes ``lif(fc1(a) + fc2(b))``."""


# --------------------------------------------------------------------------- synapses


@dataclass(frozen=True, kw_only=True, eq=False)
class Affine(Node):
    """Fully connected synapse: ``y[t] = W @ x[t] + b`` (``b`` is 0 when ``bias`` is None).

    ``weight`` has shape ``(n_out, n_in)``; the input must be a vector of ``n_in``.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "weight", _finite(self.name, "weight", _array(self.weight)))
        if self.weight.ndim != 2:
            raise GraphError("Affine weight must be 2-D (n_out, n_in)", node=self.name,
                             value=f"shape {self.weight.shape}")
        if self.bias is not None:
            object.__setattr__(self, "bias", _finite(self.name, "bias", _array(self.bias)))
            if self.bias.shape != (self.weight.shape[0],):
                raise GraphError("Affine bias must have one value per output", node=self.name,
                                 value=f"bias shape {self.bias.shape}, weight {self.weight.shape}")

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.weight.shape[1],):
            raise self._mismatch((self.weight.shape[1],), input_shape)
        return (self.weight.shape[0],)


@dataclass(frozen=True, kw_only=True, eq=False)
class Conv2d(Node):
    """2-D cross-correlation (PyTorch semantics), channels first::

        y[t][co, i, j] = b[co] + sum_{ci, p, q} W[co, ci, p, q]
                         * x_padded[t][g*Ci + ci, i*sh + p*dh, j*sw + q*dw]

    with zero padding; ``weight`` is ``(C_out, C_in / groups, kH, kW)``.
    """

    weight: np.ndarray
    bias: np.ndarray | None = None
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1

    def __post_init__(self):
        object.__setattr__(self, "weight", _finite(self.name, "weight", _array(self.weight)))
        if self.weight.ndim != 4:
            raise GraphError("Conv2d weight must be 4-D (C_out, C_in/groups, kH, kW)",
                             node=self.name, value=f"shape {self.weight.shape}")
        if self.bias is not None:
            object.__setattr__(self, "bias", _finite(self.name, "bias", _array(self.bias)))
            if self.bias.shape != (self.weight.shape[0],):
                raise GraphError("Conv2d bias must have one value per output channel",
                                 node=self.name, value=f"bias shape {self.bias.shape}")
        for key in ("stride", "padding", "dilation"):
            object.__setattr__(self, key, _pair(getattr(self, key)))

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise GraphError("Conv2d needs a (C, H, W) input", node=self.name,
                             value=f"input shape {tuple(input_shape)}")
        c, h, w = input_shape
        cin = self.weight.shape[1] * self.groups
        if c != cin:
            raise self._mismatch((cin, h, w), input_shape)
        kh, kw = self.weight.shape[2:]
        oh = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        if oh <= 0 or ow <= 0:
            raise GraphError("Conv2d kernel larger than its (padded) input", node=self.name,
                             value=f"input {tuple(input_shape)}, kernel {(kh, kw)}")
        return (self.weight.shape[0], oh, ow)


@dataclass(frozen=True, kw_only=True, eq=False)
class _Pool2d(Node):
    kernel_size: tuple[int, int]
    stride: tuple[int, int] | None = None
    padding: tuple[int, int] = (0, 0)

    def __post_init__(self):
        object.__setattr__(self, "kernel_size", _pair(self.kernel_size))
        stride = self.kernel_size if self.stride is None else self.stride
        object.__setattr__(self, "stride", _pair(stride))
        object.__setattr__(self, "padding", _pair(self.padding))

    def output_shape(self, input_shape):
        if len(input_shape) != 3:
            raise GraphError(f"{type(self).__name__} needs a (C, H, W) input", node=self.name,
                             value=f"input shape {tuple(input_shape)}")
        c, h, w = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        oh, ow = (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1
        if oh <= 0 or ow <= 0:
            raise GraphError("pooling window larger than its input", node=self.name,
                             value=f"input {tuple(input_shape)}, kernel {(kh, kw)}")
        return (c, oh, ow)


@dataclass(frozen=True, kw_only=True, eq=False)
class SumPool2d(_Pool2d):
    """Window sum per channel: ``y[t][c, i, j] = sum_{p<kH, q<kW} x_padded[t][c, i*sh+p, j*sw+q]``."""


@dataclass(frozen=True, kw_only=True, eq=False)
class AvgPool2d(_Pool2d):
    """Window mean per channel (zero padding counted): ``y = SumPool2d(x) / (kH * kW)``."""


@dataclass(frozen=True, kw_only=True, eq=False)
class MaxPool2d(_Pool2d):
    """Window maximum per channel (PyTorch ``max_pool2d``; padding counts as ``-inf``)::

        y[t][c, i, j] = max_{p<kH, q<kW} x_padded[t][c, i*sh+p, j*sw+q]

    Not linear: on 0/1 spikes it is an OR over the window (the pass ``pool_spikes`` makes it a
    memoryless OR population), after a convolution it pools the synaptic sums (a convolution
    projection with ``max_pool``, see :mod:`snn_compile.passes.fold`)."""


@dataclass(frozen=True, kw_only=True, eq=False)
class BatchNorm(Node):
    """Batch normalisation at inference (PyTorch ``BatchNorm1d``/``BatchNorm2d`` in eval mode),
    per channel ``c`` (the sample's first dimension)::

        y[t][c, ...] = (x[t][c, ...] - mean[c]) / sqrt(var[c] + eps) * weight[c] + bias[c]

    computed exactly as ``torch.nn.functional.batch_norm(training=False)`` computes it
    (``weight``/``bias`` None: 1 and 0). The pass ``fold_batch_norm`` folds it into the Linear
    or Conv2d before it."""

    mean: np.ndarray
    var: np.ndarray
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    eps: float = 1e-5

    def __post_init__(self):
        for key in ("mean", "var", "weight", "bias"):
            value = getattr(self, key)
            if value is None:
                continue
            value = _finite(self.name, key, _array(value))
            if value.ndim != 1:
                raise GraphError(f"BatchNorm {key} must hold one value per channel",
                                 node=self.name, value=f"shape {value.shape}")
            object.__setattr__(self, key, value)
        if np.any(self.var < 0):
            raise GraphError("BatchNorm running variance is negative", node=self.name,
                             value=float(self.var.min()))
        object.__setattr__(self, "eps", float(self.eps))

    @property
    def channels(self) -> int:
        return int(self.mean.shape[0])

    def output_shape(self, input_shape):
        if not input_shape or input_shape[0] != self.channels:
            raise self._mismatch((self.channels,) + tuple(input_shape[1:]), input_shape)
        return tuple(input_shape)


@dataclass(frozen=True, kw_only=True, eq=False)
class Identity(Node):
    """``y[t] = x[t]``: a layer that does nothing at inference (``nn.Identity``, dropout);
    ``origin`` says which. The pass ``drop_identities`` removes it."""

    origin: str = "Identity"


@dataclass(frozen=True, kw_only=True, eq=False)
class ReLU(Node):
    """``y[t] = max(x[t], 0)``. On spikes (never negative) it is the identity, which the pass
    ``drop_identities`` proves and removes; anywhere else it has no spiking equivalent."""


@dataclass(frozen=True, kw_only=True, eq=False)
class Flatten(Node):
    """Row-major (C, H, W order) flatten of everything but batch: ``y[t] = x[t].reshape(-1)``."""

    def output_shape(self, input_shape):
        return (int(np.prod(input_shape)),)


@dataclass(frozen=True, kw_only=True, eq=False)
class Scale(Node):
    """Elementwise gain: ``y[t] = scale * x[t]`` (``scale`` broadcasts over the input)."""

    scale: np.ndarray

    def __post_init__(self):
        object.__setattr__(self, "scale", _finite(self.name, "scale", _array(self.scale)))

    def output_shape(self, input_shape):
        try:
            return tuple(np.broadcast_shapes(tuple(input_shape), self.scale.shape))
        except ValueError:
            raise self._mismatch(self.scale.shape, input_shape) from None


@dataclass(frozen=True, kw_only=True, eq=False)
class Delay(Node):
    """Pure delay of ``steps`` time steps: ``y[t] = x[t - steps]`` (0 for ``t < steps``)."""

    steps: int
    stateful: ClassVar[bool] = True

    def __post_init__(self):
        if int(self.steps) != self.steps or self.steps < 0:
            raise GraphError("Delay steps must be a non-negative integer", node=self.name,
                             value=self.steps)
        object.__setattr__(self, "steps", int(self.steps))


# --------------------------------------------------------------------------- neurons


@dataclass(frozen=True, kw_only=True, eq=False)
class StateGrid:
    """The frozen integer arithmetic of one neuron population (a quantization-aware model).

    A neuron node with a grid *is* its target's fixed-point neuron: the float reference
    simulator computes it with these integers (in float64, exact below 2**53) and the quantizer
    adopts them unchanged, so float reference and emulator agree spike for spike. The node's
    float fields are only the float view of the integers: ``threshold = grid.threshold / S``,
    ``bias = grid.bias / S``, ``beta = decay_v / 2**decay_bits`` (``alpha`` likewise), with the
    state scale ``S = weight_scale * 2**(weight_exp + activation_shift)`` (state units per float
    unit). The weights of the synapses feeding the node lie on the grid: ``W * weight_scale`` is
    an integer ``W_int`` in the target's weight range (the quantizer verifies it).

    One step, ``x_0`` the feed-forward input and ``x_1..`` recurrent inputs (float, in edge
    order), ``rnd`` the ``rounding`` of ``>> decay_bits``, ``ovf_*`` the overflow rules, ``wrap_b``
    a two's complement wrap to ``b`` bits and ``ib = intermediate_bits``::

        acc_k = W_int,k @ s_k = round(x_k * weight_scale)           (exact: weights on the grid)
        a     = wrap_sb(acc_0 << weight_exp)                         (floor shift if negative)
        a     = wrap_rb(a + wrap_rb(acc_k << weight_exp))            for each recurrent input k
        u[t]  = ovf_u(wrap_ib(rnd(u[t-1] * decay_u) + wrap_ib(a << activation_shift)))
        v'    = ovf_v(wrap_ib(rnd(v0 * decay_v) + u[t] + bias - r * threshold (subtract)))
        s[t]  = H(v' - threshold)       (then the node's reset rules, in state units)

    (``sb = synapse_bits``, ``rb = recurrent_bits``; ``r``, ``v0`` and the resets as in the
    module docstring and :mod:`snn_compile.ir.fixed`, whose equation block this is). Without
    current memory ``decay_u = 0``, so ``u[t] = ovf_u(wrap_ib(a << activation_shift))``.
    ``lead`` is the target's time alignment: the number of steps the population runs (bias
    only, zero input) before the network's first input step reaches it, i.e. the synaptic delays
    up to it (Loihi 2: one per layer deep; FPGA: 0). The simulators start the population
    ``lead`` steps before ``t = 0``, so a bias integrates exactly as on the target.
    ``target`` names the target the grid was chosen for (the quantizer checks that a target's
    datapath matches the grid, not the name).
    """

    target: str
    weight_scale: np.ndarray       # s_w: scalar or one per neuron
    weight_exp: int
    activation_shift: int
    synapse_bits: int
    recurrent_bits: int
    intermediate_bits: int
    decay_bits: int
    rounding: str
    decay_u: np.ndarray            # multipliers (int)
    decay_v: np.ndarray
    u_bits: int
    u_overflow: str
    v_bits: int
    v_overflow: str
    threshold: np.ndarray          # state units (int)
    bias: np.ndarray               # state units (int)
    lead: int = 0

    INTS: ClassVar[tuple[str, ...]] = ("decay_u", "decay_v", "threshold", "bias")

    def __post_init__(self):
        object.__setattr__(self, "weight_scale", _array(self.weight_scale, np.float64))
        for key in self.INTS:
            value = np.asarray(getattr(self, key))
            if not np.all(value == np.rint(value)):
                raise GraphError(f"grid field '{key}' must hold integers", value=value)
            object.__setattr__(self, key, _array(value, np.int64))
        for key, allowed in (("rounding", ROUNDING_RULES), ("u_overflow", OVERFLOW_RULES),
                             ("v_overflow", OVERFLOW_RULES)):
            if getattr(self, key) not in allowed:
                raise GraphError(f"unknown grid {key}", value=getattr(self, key),
                                 hint=f"use one of {allowed}")

    @property
    def scale(self) -> np.ndarray:
        """State units per float unit: ``S = weight_scale * 2**(weight_exp + activation_shift)``."""
        return self.weight_scale * 2.0 ** (self.weight_exp + self.activation_shift)


@dataclass(frozen=True, kw_only=True, eq=False)
class NeuronNode(Node):
    """Common fields of spiking neurons (see the module docstring for the reset rules).

    ``shape`` is the population shape. ``threshold`` and ``bias`` broadcast to it. ``grid``
    (optional) freezes the population's fixed-point arithmetic (see :class:`StateGrid`).
    ``max_spikes`` > 1 (or None: unbounded) makes it a multi-spike neuron and ``v_floor`` (or
    None) bounds its membrane from below (see the module docstring).
    """

    shape: Shape
    threshold: np.ndarray = field(default_factory=lambda: _array(1.0))
    bias: np.ndarray = field(default_factory=lambda: _array(0.0))
    reset: ResetMode = "subtract"
    reset_timing: ResetTiming = "next_step"
    reset_discards_input: bool = False
    spike_test: SpikeTest = ">"
    max_spikes: int | None = 1
    v_floor: np.ndarray | None = None
    grid: StateGrid | None = None

    stateful: ClassVar[bool] = True
    spiking: ClassVar[bool] = True
    decays: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        for key in ("threshold", "bias") + self.decays:
            value = _finite(self.name, key, _array(getattr(self, key)))
            try:
                np.broadcast_to(value, self.shape)
            except ValueError:
                raise GraphError(f"parameter '{key}' does not fit the neuron shape",
                                 node=self.name,
                                 value=f"{key} shape {value.shape}, neurons {self.shape}") from None
            object.__setattr__(self, key, value)
        for key, allowed in (("reset", ("zero", "subtract", "none")),
                             ("reset_timing", RESET_TIMINGS),
                             ("spike_test", (">", ">="))):
            if getattr(self, key) not in allowed:
                raise GraphError(f"unknown {key}", node=self.name, value=getattr(self, key),
                                 hint=f"use one of {allowed}")
        if self.max_spikes is not None and (isinstance(self.max_spikes, bool) or int(
                self.max_spikes) != self.max_spikes or self.max_spikes < 1):
            raise GraphError("max_spikes must be a positive integer or None", node=self.name,
                             value=self.max_spikes)
        if self.multi_spike and self.reset_timing != "immediate":
            raise GraphError("a multi-spike neuron resets immediately", node=self.name,
                             value=f"reset_timing {self.reset_timing!r}",
                             hint="use reset_timing='immediate'")
        if self.v_floor is not None:
            floor = _finite(self.name, "v_floor", _array(self.v_floor))
            try:
                np.broadcast_to(floor, self.shape)
            except ValueError:
                raise GraphError("v_floor does not fit the neuron shape", node=self.name,
                                 value=f"{floor.shape} vs {self.shape}") from None
            object.__setattr__(self, "v_floor", floor)
        if self.grid is not None:
            self._check_grid()

    @property
    def multi_spike(self) -> bool:
        return self.max_spikes is None or self.max_spikes > 1

    def _check_grid(self):
        for key in ("weight_scale",) + StateGrid.INTS:
            try:
                np.broadcast_to(getattr(self.grid, key), self.shape)
            except ValueError:
                raise GraphError(f"grid field '{key}' does not fit the neuron shape",
                                 node=self.name, value=np.shape(getattr(self.grid, key))) from None

    def output_shape(self, input_shape):
        if tuple(input_shape) != self.shape:
            raise self._mismatch(self.shape, input_shape)
        return self.shape

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, kw_only=True, eq=False)
class LIF(NeuronNode):
    """Leaky integrate-and-fire (snnTorch ``Leaky``)::

        v' = beta * v[t-1] + x[t] + bias        (+ the reset rules of the module docstring)
        s[t] = H(v' - thr)
    """

    beta: np.ndarray
    decays: ClassVar[tuple[str, ...]] = ("beta",)


@dataclass(frozen=True, kw_only=True, eq=False)
class CubaLIF(NeuronNode):
    """Current-based LIF (snnTorch ``Synaptic``): a leaky synaptic current feeds a LIF::

        i[t] = alpha * i[t-1] + x[t]
        v'   = beta * v[t-1] + i[t] + bias      (+ the reset rules; the current is never reset)
        s[t] = H(v' - thr)
    """

    alpha: np.ndarray
    beta: np.ndarray
    decays: ClassVar[tuple[str, ...]] = ("alpha", "beta")


@dataclass(frozen=True, kw_only=True, eq=False)
class IF(NeuronNode):
    """Integrate-and-fire, no leak::

        v' = v[t-1] + x[t] + bias               (+ the reset rules)
        s[t] = H(v' - thr)
    """


@dataclass(frozen=True, kw_only=True, eq=False)
class Alpha(NeuronNode):
    """snnTorch ``Alpha``: an excitatory and an inhibitory current of opposite sign, whose
    weighted sum is the membrane (no membrane memory of its own)::

        e'   = alpha * e[t-1] + x[t]                  (excitatory current)
        i'   = beta * i[t-1] - x[t]                   (inhibitory current)
        tau  = log(alpha) / (log(beta) - log(alpha)) + 1
        v'   = tau * (e' + i')
        r    = H(v[t-1] - thr)                        (next-step reset, snnTorch's only one)
        reset "zero":      e, i, v = (1 - r) * (e', i', v')
        reset "subtract":  e = e' - r * thr;  i = (1 - r) * i';  v = v' + r * i[t-1]
        reset "none":      e, i, v = e', i', v'
        s[t] = H(v[t] - thr)

    word for word as snnTorch 1.0.0 computes it (``0 <= beta < alpha <= 1``). No hardware
    target has two synaptic currents: the quantizer refuses it.
    """

    alpha: np.ndarray
    beta: np.ndarray
    decays: ClassVar[tuple[str, ...]] = ("alpha", "beta")

    def __post_init__(self):
        super().__post_init__()
        if self.reset_timing != "next_step" or self.multi_spike or self.v_floor is not None:
            raise GraphError("an Alpha neuron resets in the next step, with single spikes and "
                             "no floor (snnTorch's only form)", node=self.name,
                             value=f"reset_timing {self.reset_timing!r}")
        alpha, beta = np.broadcast_arrays(self.alpha, self.beta)
        if np.any(alpha <= beta) or np.any(beta < 0) or np.any(alpha > 1):
            raise GraphError("an Alpha neuron needs 0 <= beta < alpha <= 1", node=self.name,
                             value=f"alpha {np.min(alpha):.4g}..{np.max(alpha):.4g}, beta "
                                   f"{np.min(beta):.4g}..{np.max(beta):.4g}")


@dataclass(frozen=True, kw_only=True, eq=False)
class LI(Node):
    """Leaky integrator readout, no spikes: ``v[t] = beta * v[t-1] + x[t] + bias``; ``y[t] = v[t]``."""

    shape: Shape
    beta: np.ndarray
    bias: np.ndarray = field(default_factory=lambda: _array(0.0))
    stateful: ClassVar[bool] = True

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        for key in ("beta", "bias"):
            object.__setattr__(self, key, _finite(self.name, key, _array(getattr(self, key))))

    def output_shape(self, input_shape):
        if tuple(input_shape) != self.shape:
            raise self._mismatch(self.shape, input_shape)
        return self.shape


NEURON_TYPES = (LIF, CubaLIF, IF, Alpha)
SYNAPSE_TYPES = (Affine, Conv2d, SumPool2d, AvgPool2d, Flatten, Scale)
INFERENCE_TYPES = (BatchNorm, Identity, ReLU, MaxPool2d)  # rewritten or removed by passes


def _first_bad(arr: np.ndarray) -> str:
    idx = np.argwhere(~np.isfinite(arr))[0]
    return f"{arr[tuple(idx)]} at index {tuple(int(i) for i in idx)}"
