"""The fixed-point IR: what the quantizer produces and every fixed-point backend consumes.

A :class:`QNetwork` is a directed graph of integer neuron populations (:class:`QPopulation`)
joined by typed projections (:class:`QProjection`: dense, convolution, elementwise), fed by one
encoded input (:class:`QInput`). Several projections may feed one population (their inputs sum in
the target's accumulator) and one population may feed several. Every projection carries its
delay in the target's time steps; cycles must have a delay (a projection with ``delay >= 1``).
All values are integers in the *effective* form the target datapath computes with (thresholds and
biases already shifted); backends turn them into register fields (e.g. Lava's ``vth``,
``bias_mant``/``bias_exp``) and must check that the conversion is exact.

Integer datapath of population ``P`` at step ``t`` (the rule names come from the target's
``[neuron]`` and ``[accumulator]`` tables; the rules are defined once in
:mod:`snn_compile.datapath.rules` and the step in :mod:`snn_compile.datapath.step`)::

    c_k   = wrap_k(acc_k << weight_exp_k)   acc_k = W_k (*) x_k[t - delay_k]   (each projection
            k into P; x: 0/1 spikes or graded ints; wrap_k at accumulator.conv for convolutions,
            accumulator.dense otherwise; a convolution may take a max over pooling windows)
    a     = wrap_dense(sum_k c_k + input_bias)
    r     = test(v[t-1], thr)  if reset != "none" and reset_timing != "immediate" else 0
    v0    = 0 where r (reset "zero" keeping the input) else v[t-1]
    u[t]  = ovf_u(wrap_ib(wrap_ib(rnd(u[t-1] * m_u >> decay_bits)) + wrap_ib(a << activation_shift)))
    v'    = ovf_v(wrap_ib(rnd(v0 * m_v >> decay_bits) + u[t] + bias - (r * thr if subtract)))
    v'    = 0 where r                          (reset "zero" with reset_discards_input)
    s[t]  = test(v', thr)                      # '>' or '>='; 0 for a non-spiking readout
          = clip(v' // thr, 0, max_spikes)     (a multi-spike population: a count)
    v[t]  = v'                                 (next_step)
          = ovf_v(wrap_ib(v' - (s - r) * thr)) (same_step and immediate, subtract)
          = v' - (s - r) * v'                  (same_step and immediate, zero; multi-spike:
                                                 0 where s > 0)
    v[t]  = max(v[t], v_floor)                 (with a membrane floor)

(``ib = accumulator.intermediate``; every intermediate is a 64-bit two's complement integer.)
Populations without current memory have ``m_u = 0``. The float value of a state is
``integer / scale`` (``QPopulation.scale``). ``lag`` is the population's time alignment: its step
``t + lag`` corresponds to the float model's step ``t`` (Loihi 2: one step per layer deep).

A network is saved and reloaded without re-quantizing by :mod:`snn_compile.ir.fixed_io`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import cached_property

import numpy as np

from ..datatypes import BINARY, IntType
from ..errors import GraphError, SnnCompileError
from ..targets import Target
from .topology import strongly_connected, toposort
from .nodes import RESET_TIMINGS, ResetMode, ResetTiming, Shape, SpikeTest

PROJECTION_KINDS = ("dense", "conv", "elementwise")


def _int_array(value) -> np.ndarray:
    arr = np.array(value, dtype=np.int64)
    arr.setflags(write=False)
    return arr


def _pair(value) -> tuple[int, int]:
    a, b = (value, value) if np.ndim(value) == 0 else tuple(value)
    return int(a), int(b)


# ----------------------------------------------------------------------------- the input


@dataclass(frozen=True, kw_only=True, eq=False)
class QInput:
    """The network input and its encoding: 0/1 spikes (``dtype`` uint1) or graded integers
    ``round(x * scale)`` of ``dtype`` (e.g. int8). With ``saturate`` the integers are clipped
    to ``dtype``'s range (the quantizer chose ``scale`` from the data's distribution, so rare
    large values saturate, and says how often); without it such values are an error."""

    name: str = "input"
    shape: Shape
    dtype: IntType = BINARY
    scale: float = 1.0
    saturate: bool = False

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        object.__setattr__(self, "dtype", IntType.parse(self.dtype))

    @property
    def binary(self) -> bool:
        return self.dtype == BINARY

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def value_range(self) -> tuple[int, int]:
        return (self.dtype.min, self.dtype.max)

    def encode(self, spikes, dtype=np.int64) -> np.ndarray:
        """Input ``[T, B, *shape]`` as integers ``[T, B, n]`` (int64, or ``dtype`` if it holds
        the input format), or SnnCompileError."""
        spikes = np.asarray(spikes)
        if spikes.ndim < 2 or tuple(spikes.shape[2:]) != self.shape:
            raise SnnCompileError("input shape mismatch", value=f"{tuple(spikes.shape)}",
                                  hint=f"expected [T, B, {', '.join(map(str, self.shape))}]")
        flat = spikes.reshape(spikes.shape[0], spikes.shape[1], self.size)
        if self.binary and np.issubdtype(flat.dtype, np.number) \
                and not np.iscomplexobj(flat):
            with np.errstate(invalid="ignore"):  # NaN and Inf fail the comparison below
                small = flat.astype(np.uint8)
            if small.size == 0 or (small.max() <= 1 and np.array_equal(small, flat)):
                return small.astype(dtype, copy=False)  # valid binary input: the quick way
        if np.iscomplexobj(spikes) or not np.issubdtype(spikes.dtype, np.number):
            raise SnnCompileError("input must hold real numbers", value=str(spikes.dtype))
        if not np.all(np.isfinite(spikes)):
            raise SnnCompileError("input contains NaN or Inf values")
        if self.binary:
            raise SnnCompileError("input is not binary spikes (0/1)",
                                  hint="quantize with graded sample input (--calibration "
                                       "or --data) to run real-valued input")
        scaled = np.rint(np.asarray(flat, np.float64) * self.scale)
        lo, hi = self.value_range
        if self.saturate:
            return np.clip(scaled, lo, hi).astype(dtype)
        if scaled.size and (scaled.min() < lo or scaled.max() > hi):
            bad = float(flat.reshape(-1)[np.argmax((scaled < lo) | (scaled > hi))])
            raise SnnCompileError("graded input exceeds the input format",
                                  value=f"{bad:g} -> {scaled.min():.0f}..{scaled.max():.0f}",
                                  hint=f"inputs must lie within "
                                       f"[{lo / self.scale:g}, {hi / self.scale:g}]")
        return scaled.astype(dtype)


# ----------------------------------------------------------------------------- populations


@dataclass(frozen=True, kw_only=True, eq=False)
class QNeuron:
    """Integer neuron parameters; arrays broadcast to ``shape`` (scalars for per-layer values).

    ``decay_u``/``decay_v`` are the multipliers ``m_u``/``m_v`` (``2**decay_bits`` = no decay),
    ``threshold`` and ``bias`` are in state units (already shifted), ``spiking=False`` marks a
    non-spiking readout whose output is ``v``. ``max_spikes > 1`` makes a multi-spike population
    (its output is the count ``clip(v' // thr, 0, max_spikes)``, reset immediately) and
    ``v_floor`` (state units, or None) bounds the membrane from below after the reset.
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
    max_spikes: int = 1
    v_floor: np.ndarray | None = None

    def __post_init__(self):
        object.__setattr__(self, "shape", tuple(int(d) for d in self.shape))
        if isinstance(self.max_spikes, bool) or int(self.max_spikes) != self.max_spikes \
                or self.max_spikes < 1:
            raise GraphError("max_spikes must be a positive integer", value=self.max_spikes)
        object.__setattr__(self, "max_spikes", int(self.max_spikes))
        if self.max_spikes > 1 and self.reset_timing != "immediate":
            raise GraphError("a multi-spike population resets immediately",
                             value=f"reset_timing {self.reset_timing!r}")
        if self.v_floor is not None:
            object.__setattr__(self, "v_floor", _int_array(self.v_floor))
            np.broadcast_to(self.v_floor, self.shape)
        for key in ("decay_u", "decay_v", "threshold", "bias"):
            value = _int_array(getattr(self, key))
            try:
                np.broadcast_to(value, self.shape)
            except ValueError:
                raise GraphError(f"neuron parameter '{key}' does not fit the population",
                                 value=f"{value.shape} vs {self.shape}") from None
            object.__setattr__(self, key, value)
        for key, allowed in (("reset", ("zero", "subtract", "none")),
                             ("reset_timing", RESET_TIMINGS),
                             ("spike_test", (">", ">="))):
            if getattr(self, key) not in allowed:
                raise GraphError(f"unknown {key}", value=getattr(self, key),
                                 hint=f"use one of {allowed}")

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))


@dataclass(frozen=True, kw_only=True, eq=False)
class QPopulation:
    """One population of integer neurons.

    ``input_bias`` (or None) is added to the summed synaptic input every step (a bias on the
    synaptic current). ``scale`` maps integer states to float: ``v_float = v_int / scale``
    (scalar or one per neuron). ``lag`` is the time alignment (see the module docstring).
    """

    name: str
    neuron: QNeuron
    input_bias: np.ndarray | None = None
    scale: np.ndarray = field(default_factory=lambda: np.array(1.0))
    lag: int = 0

    def __post_init__(self):
        if self.input_bias is not None:
            object.__setattr__(self, "input_bias", _int_array(self.input_bias))
        object.__setattr__(self, "scale", np.array(self.scale, dtype=np.float64))

    @property
    def shape(self) -> Shape:
        return self.neuron.shape

    @property
    def size(self) -> int:
        return self.neuron.size


# ----------------------------------------------------------------------------- projections


@dataclass(frozen=True)
class ConvGeometry:
    """PyTorch cross-correlation geometry (channels first, zero padding) of a convolution over
    ``in_shape`` ``(C, H, W)``; ``max_pool`` ``(kernel, stride)`` takes the maximum of the
    convolution's sums over each window before the exponent (a max pooling of currents)."""

    in_shape: Shape
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    max_pool: tuple[tuple[int, int], tuple[int, int]] | None = None

    def __post_init__(self):
        object.__setattr__(self, "in_shape", tuple(int(d) for d in self.in_shape))
        for key in ("stride", "padding", "dilation"):
            object.__setattr__(self, key, _pair(getattr(self, key)))
        if self.max_pool is not None:
            kernel, stride = self.max_pool
            object.__setattr__(self, "max_pool", (_pair(kernel), _pair(stride)))

    def conv_shape(self, weight_shape) -> Shape:
        """Output shape of the convolution itself (before any pooling)."""
        c, h, w = self.in_shape
        kh, kw = weight_shape[2:]
        oh = (h + 2 * self.padding[0] - self.dilation[0] * (kh - 1) - 1) // self.stride[0] + 1
        ow = (w + 2 * self.padding[1] - self.dilation[1] * (kw - 1) - 1) // self.stride[1] + 1
        return (int(weight_shape[0]), oh, ow)

    def out_shape(self, weight_shape) -> Shape:
        co, oh, ow = self.conv_shape(weight_shape)
        if self.max_pool is not None:
            (kh, kw), (sh, sw) = self.max_pool
            oh, ow = (oh - kh) // sh + 1, (ow - kw) // sw + 1
        return (co, oh, ow)


@dataclass(frozen=True, kw_only=True, eq=False)
class QProjection:
    """Synapses from ``source`` (the input or a population) to the population ``target``.

    ``kind``: ``"dense"`` (``weight`` ``(n_out, n_in)`` from the flattened source to the
    flattened target),
    ``"conv"`` (``weight`` ``(C_out, C_in / groups, kH, kW)`` with ``conv`` geometry) or
    ``"elementwise"`` (``weight`` broadcasting to the source shape, which equals the target's:
    skip connections and one-to-one recurrence). ``acc = W (*) x`` is shifted by ``weight_exp``
    (a floor shift when negative) and arrives ``delay`` target steps after ``x``.
    """

    name: str
    source: str
    target: str
    kind: str
    weight: np.ndarray
    weight_exp: int = 0
    delay: int = 0
    conv: ConvGeometry | None = None

    def __post_init__(self):
        if self.kind not in PROJECTION_KINDS:
            raise GraphError("unknown projection kind", node=self.name, value=self.kind,
                             hint=f"use one of {PROJECTION_KINDS}")
        object.__setattr__(self, "weight", _int_array(self.weight))
        if isinstance(self.delay, bool) or int(self.delay) != self.delay or self.delay < 0:
            raise GraphError("projection delay must be a non-negative integer", node=self.name,
                             value=self.delay)
        object.__setattr__(self, "delay", int(self.delay))
        object.__setattr__(self, "weight_exp", int(self.weight_exp))
        if (self.kind == "conv") != (self.conv is not None):
            raise GraphError("a conv projection needs its geometry (and only it has one)",
                             node=self.name)
        if self.kind == "dense" and self.weight.ndim != 2:
            raise GraphError("dense weight must be 2-D (n_out, n_in)", node=self.name,
                             value=self.weight.shape)
        if self.kind == "conv" and self.weight.ndim != 4:
            raise GraphError("conv weight must be 4-D (C_out, C_in/groups, kH, kW)",
                             node=self.name, value=self.weight.shape)

    def out_shape(self, source_shape: Shape) -> Shape:
        """The target shape this projection produces from a source of ``source_shape``."""
        if self.kind == "dense":
            n_in = int(np.prod(source_shape))
            if self.weight.shape[1] != n_in:
                raise GraphError("dense projection does not fit its source", node=self.name,
                                 value=f"weight {self.weight.shape}, source {source_shape}")
            return (self.weight.shape[0],)
        if self.kind == "conv":
            if tuple(source_shape) != self.conv.in_shape \
                    and int(np.prod(source_shape)) != int(np.prod(self.conv.in_shape)):
                raise GraphError("convolution does not fit its source", node=self.name,
                                 value=f"in_shape {self.conv.in_shape}, source {source_shape}")
            cin = self.weight.shape[1] * self.conv.groups
            if cin != self.conv.in_shape[0]:
                raise GraphError("convolution channels do not fit", node=self.name,
                                 value=f"{cin} vs {self.conv.in_shape[0]}")
            return self.conv.out_shape(self.weight.shape)
        try:
            np.broadcast_to(self.weight, source_shape)
        except ValueError:
            raise GraphError("elementwise weight does not fit its source", node=self.name,
                             value=f"{self.weight.shape} vs {source_shape}") from None
        return tuple(source_shape)

    def accumulator(self, target: Target) -> IntType:
        """The format this projection's sum wraps to before it joins the population's sum."""
        return target.accumulator.conv if self.kind == "conv" else target.accumulator.dense


# ----------------------------------------------------------------------------- network


@dataclass(frozen=True, kw_only=True, eq=False)
class QNetwork:
    """A quantized network for one target (see the module docstring).

    ``populations`` and ``projections`` may be given in any order: the network's meaning comes
    from the projections alone; :attr:`order` is the canonical evaluation order.
    """

    input: QInput
    populations: tuple[QPopulation, ...]
    projections: tuple[QProjection, ...]
    output: str
    target: Target
    metadata: dict = field(default_factory=dict)

    def __post_init__(self):
        object.__setattr__(self, "populations", tuple(self.populations))
        object.__setattr__(self, "projections", tuple(self.projections))
        self.verify()

    # ------------------------------------------------------------------ lookups
    @cached_property
    def by_name(self) -> dict[str, QPopulation]:
        return {p.name: p for p in self.populations}

    def population(self, name: str) -> QPopulation:
        return self.by_name[name]

    @property
    def output_population(self) -> QPopulation:
        return self.by_name[self.output]

    @property
    def input_shape(self) -> Shape:
        return self.input.shape

    def shape_of(self, name: str) -> Shape:
        return self.input.shape if name == self.input.name else self.by_name[name].shape

    @cached_property
    def _by_end(self) -> tuple[dict, dict]:
        """Projections by target and by source, each tuple sorted by name."""
        into, out = {}, {}
        for p in sorted(self.projections, key=lambda p: p.name):
            into.setdefault(p.target, []).append(p)
            out.setdefault(p.source, []).append(p)
        return ({k: tuple(v) for k, v in into.items()}, {k: tuple(v) for k, v in out.items()})

    def incoming(self, name: str) -> tuple[QProjection, ...]:
        """Projections into population ``name``, by name (their sum is exact: any order)."""
        return self._by_end[0].get(name, ())

    def outgoing(self, name: str) -> tuple[QProjection, ...]:
        return self._by_end[1].get(name, ())

    @cached_property
    def order(self) -> tuple[str, ...]:
        """Populations in evaluation order: topological over delay-0 projections, by name."""
        names = sorted(p.name for p in self.populations)
        return tuple(toposort(names, [(p.source, p.target) for p in self.projections
                                       if p.delay == 0 and p.source != self.input.name]))

    def float_counterparts(self) -> list[QPopulation]:
        """The populations of :meth:`in_order` the float model has too (not those a pass
        added, such as a bias source, ``metadata["bias_source"]``)."""
        added = {self.metadata.get("bias_source")}
        return [pop for pop in self.in_order() if pop.name not in added]

    def in_order(self) -> list[QPopulation]:
        return [self.by_name[name] for name in self.order]

    @cached_property
    def components(self) -> tuple[tuple[str, ...], ...]:
        """Strongly connected groups of populations (recurrence), in dependency order; each
        group lists its populations in evaluation order. A population without a cycle through
        it is a group of one."""
        index = {name: i for i, name in enumerate(self.order)}
        succ: dict[str, set] = {name: set() for name in self.order}
        for p in self.projections:
            if p.source in succ:
                succ[p.source].add(p.target)
        # Tarjan emits components in reverse topological order of the (deterministic) search
        groups = reversed(strongly_connected(list(self.order), succ))
        return tuple(tuple(sorted(g, key=index.get)) for g in groups)

    def is_cyclic(self, group: tuple[str, ...]) -> bool:
        names = set(group)
        return any(p.source in names and p.target in names for p in self.projections)

    @property
    def max_lag(self) -> int:
        return max((p.lag for p in self.populations), default=0)

    def replace(self, **changes) -> "QNetwork":
        return replace(self, **changes)

    def renamed(self, mapping: dict[str, str]) -> "QNetwork":
        """The same network with populations (and the input) renamed by ``mapping``; a
        projection named like its target population follows it."""
        def new(name):
            return mapping.get(name, name)

        from dataclasses import replace

        pops = [replace(p, name=new(p.name)) for p in self.populations]
        projs = [replace(p, name=new(p.name) if p.name == p.target else p.name,
                         source=new(p.source), target=new(p.target)) for p in self.projections]
        metadata = dict(self.metadata)
        if "bias_source" in metadata:
            metadata["bias_source"] = new(metadata["bias_source"])
        return self.replace(input=replace(self.input, name=new(self.input.name)),
                            populations=tuple(pops), projections=tuple(projs),
                            output=new(self.output), metadata=metadata)

    def with_population(self, pop: QPopulation) -> "QNetwork":
        return replace(self, populations=tuple(pop if p.name == pop.name else p
                                               for p in self.populations))

    # ------------------------------------------------------------------ checks
    def verify(self) -> None:
        """Names unique, projections between known nodes with fitting shapes, no cycle without
        a delay, an output population; GraphError naming the projection or population."""
        names = [self.input.name] + [p.name for p in self.populations]
        if len(set(names)) != len(names):
            dup = next(n for n in names if names.count(n) > 1)
            raise GraphError("duplicate population name", node=dup)
        proj_names = [p.name for p in self.projections]
        if len(set(proj_names)) != len(proj_names):
            dup = next(n for n in proj_names if proj_names.count(n) > 1)
            raise GraphError("duplicate projection name", node=dup)
        pops = {p.name: p for p in self.populations}
        if self.output not in pops:
            raise GraphError("the output is not a population", node=self.output)
        for proj in self.projections:
            if proj.source != self.input.name and proj.source not in pops:
                raise GraphError("projection from an unknown population", node=proj.name,
                                 value=proj.source)
            if proj.target not in pops:
                raise GraphError("projection into an unknown population", node=proj.name,
                                 value=proj.target)
            shape = proj.out_shape(self.shape_of(proj.source))
            fits = tuple(shape) == pops[proj.target].shape or (
                proj.kind == "dense" and int(np.prod(shape)) == pops[proj.target].size)
            if not fits:
                raise GraphError("projection does not fit its target population",
                                 node=proj.name, value=f"{shape} vs {pops[proj.target].shape}")
            if proj.source != self.input.name and not pops[proj.source].neuron.spiking:
                raise GraphError("a non-spiking readout cannot feed another population",
                                 node=proj.name, value=proj.source,
                                 hint="hardware passes spikes between populations")
        for pop in self.populations:
            if not self.incoming(pop.name):
                raise GraphError("population has no input", node=pop.name)
        _ = self.order  # raises on a cycle without delay
