"""The fixed-point IR: what the quantizer produces and every fixed-point backend consumes.

A :class:`QNetwork` is a chain of :class:`QLayer` s. Each layer is one population of integer
neurons fed by one synapse (dense matrix or convolution, pooling already folded in) from the
previous layer (or the network input), plus an optional recurrent dense synapse from itself.
All values are integers in the *effective* form the target datapath computes with (thresholds
and biases already shifted); backends turn them into register fields (e.g. Lava's ``vth``,
``bias_mant``/``bias_exp``, ``du``/``dv``) and must check that the conversion is exact.

Integer datapath of one layer at step ``t`` (parameters from the target's ``[neuron]`` and
``[accumulator]`` tables; ``ovf_*`` is the overflow rule, ``rnd`` the decay rounding)::

    acc   = W @ x[t - d]                      # x: spikes (0/1) or graded ints of the source
    a     = wrap_acc(acc << weight_exp)       # floor shift when weight_exp < 0
          (+ wrap_acc(W_rec @ s[t - max(1, d_syn)] << rec_exp) for recurrent layers, summed in
          wrap_acc; d_syn is the target's synapse_delay: a layer's extra delay is feed-forward only)
          (+ input_bias when the target has a synaptic bias)
    r     = test(v[t-1], thr)  if reset != "none" else 0
    v0    = 0 where r (reset "zero" keeping the input) else v[t-1]
    u[t]  = ovf_u(wrap(rnd(u[t-1] * m_u >> decay_bits) + wrap(a << activation_shift)))
    v'    = ovf_v(wrap(rnd(v0 * m_v >> decay_bits) + u[t] + bias - (r * thr if subtract)))
    v'    = 0 where r                          (reset "zero" with reset_discards_input)
    s[t]  = test(v', thr)                      # '>' or '>='
    v[t]  = v'                                 (next_step)
          = ovf_v(v' - (s - r) * thr)          (same_step, subtract)
          = v' - (s - r) * v'                  (same_step, zero)

``d`` is the target's ``timing.synapse_delay`` plus the layer's extra ``delay``. Layers without
current memory have ``m_u = 0`` so that ``u[t] = a << activation_shift``. The float value of a
state is ``integer / scale`` (``QLayer.scale``), which the quantizer chose.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..targets import Target
from .nodes import ResetMode, ResetTiming, Shape, SpikeTest


def _int_array(value) -> np.ndarray:
    arr = np.array(value, dtype=np.int64)
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, kw_only=True, eq=False)
class QDense:
    """Dense synapse: ``a = (W @ x) << weight_exp``; ``weight`` is ``(n_out, n_in)`` int."""

    weight: np.ndarray
    weight_exp: int = 0

    def __post_init__(self):
        object.__setattr__(self, "weight", _int_array(self.weight))

    @property
    def in_size(self) -> int:
        return self.weight.shape[1]


@dataclass(frozen=True, kw_only=True, eq=False)
class QConv:
    """Convolution synapse (PyTorch cross-correlation, channels first, zero padding).

    ``weight`` is ``(C_out, C_in / groups, kH, kW)`` int; ``in_shape`` is ``(C, H, W)``.
    """

    weight: np.ndarray
    in_shape: Shape
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    weight_exp: int = 0

    def __post_init__(self):
        object.__setattr__(self, "weight", _int_array(self.weight))
        object.__setattr__(self, "in_shape", tuple(int(d) for d in self.in_shape))

    @property
    def in_size(self) -> int:
        return int(np.prod(self.in_shape))

    @property
    def out_shape(self) -> Shape:
        c, h, w = self.in_shape
        kh, kw = self.weight.shape[2:]
        oh = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        return (self.weight.shape[0], oh, ow)


@dataclass(frozen=True, kw_only=True, eq=False)
class QNeuron:
    """Integer neuron population; arrays broadcast to ``shape`` (scalars for per-layer values).

    ``decay_u``/``decay_v`` are the multipliers ``m_u``/``m_v`` (``2**decay_bits`` = no decay),
    ``threshold`` and ``bias`` are in state units (already shifted), ``spiking=False`` marks a
    non-spiking readout whose output is ``v``.
    """

    shape: Shape
    decay_u: np.ndarray
    decay_v: np.ndarray
    threshold: np.ndarray
    bias: np.ndarray
    reset: ResetMode = "zero"
    reset_timing: ResetTiming = "same_step"
    reset_discards_input: bool = False
    spike_test: SpikeTest = ">"
    spiking: bool = True
    has_current: bool = False  # CUBA: the current u has memory (m_u > 0)

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        for key in ("decay_u", "decay_v", "threshold", "bias"):
            object.__setattr__(self, key, _int_array(getattr(self, key)))

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, kw_only=True, eq=False)
class QLayer:
    """One neuron population with its incoming synapses.

    ``scale`` maps integer states to float: ``v_float = v_int / scale`` (scalar, or one value per
    neuron when the target allows per-neuron scales). ``source`` is the previous layer's name or
    None for the network input.
    """

    name: str
    synapse: QDense | QConv
    neuron: QNeuron
    recurrent: QDense | None = None
    input_bias: np.ndarray | None = None
    delay: int = 0
    source: str | None = None
    scale: np.ndarray = field(default_factory=lambda: np.array(1.0))


@dataclass(frozen=True, kw_only=True, eq=False)
class QNetwork:
    """A quantized network for one target.

    ``input_bits`` is 1 for binary spike input, else the graded input width; graded input values
    are ``round(x * input_scale)``.
    """

    input_shape: Shape
    layers: tuple[QLayer, ...]
    target: Target
    input_bits: int = 1
    input_scale: float = 1.0
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "input_shape", tuple(int(d) for d in self.input_shape))
        object.__setattr__(self, "layers", tuple(self.layers))

    @property
    def output_layer(self) -> QLayer:
        return self.layers[-1]

    def layer(self, name: str) -> QLayer:
        return next(layer for layer in self.layers if layer.name == name)
