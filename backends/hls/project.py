"""Typed description of a generated Vitis HLS project.

``lower.py`` builds a :class:`Project` from a :class:`~snn_compile.ir.fixed.QNetwork`; the
templates in ``templates/`` render it into files and read nothing else. Everything here is
already decided: C identifiers (mangled once, in lowering), every ``ap_int`` width, the design
(``parallel`` or ``event``), pragma choices, memory placement and the rule structs of
``include/snn_arith.h``.

Two designs share this model (see ``estimate.py`` for their costs):

* ``parallel``: every weight in on-chip ROM, each projection a fully unrolled (``reuse`` = 1)
  or folded (``reuse`` > 1) product over the whole source vector every step, neurons updated
  ``lanes`` at a time;
* ``event``: each projection walks the event list of its source (the indices and values of the
  nonzero spikes of one step) and adds one weight row per event into an accumulator memory;
  dense rows live on chip or in external memory (read over AXI in bursts); neurons are updated
  one per cycle (time-multiplexed), producing the next event list.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

DESIGNS = ("parallel", "event")


@dataclass(frozen=True)
class IntType:
    """An ``ap_int<bits>`` (or ``ap_uint<bits>`` when unsigned)."""

    bits: int
    signed: bool = True

    @property
    def cpp(self) -> str:
        return f"ap_{'' if self.signed else 'u'}int<{self.bits}>"

    @property
    def native(self) -> str:
        """The smallest C integer type holding every value (C simulation ROMs)."""
        name = next(n for bits, n in ((8, "char"), (16, "short"), (32, "int"),
                                      (64, "long long")) if self.bits <= bits)
        return ("signed " if name == "char" else "") + name if self.signed else f"unsigned {name}"


@dataclass(frozen=True, eq=False)
class Rom:
    """A constant array written to a weights header.

    ``values`` holds the integers in the C array's element order (any numpy shape; flattened in
    C order when rendered), ``dims`` the C array dimensions. ``storage``: ``"logic"`` (completely
    partitioned, constants folded into the datapath), ``"lutram"`` or ``"bram"``
    (``bind_storage``), ``"external"`` (packed into the external weight image, no array). The
    element type ``<ident>_t`` is ``ctype`` for synthesis and the same integers in a plain C
    type (:attr:`IntType.native`) for C simulation: g++ would otherwise compile one ap_int
    constructor call per element. ``factor`` is the number of words read per cycle: a cyclic partition
    (parallel design) or reshape (event design) of dimension ``dim`` (1-based).
    """

    ident: str
    ctype: IntType
    values: np.ndarray
    dims: tuple[int, ...]
    storage: str
    factor: int = 1
    dim: int = 1
    reshape: bool = False

    @property
    def size(self) -> int:
        return int(np.prod(self.dims))

    @property
    def bits(self) -> int:
        return self.size * self.ctype.bits

    @property
    def cdims(self) -> str:
        return "".join(f"[{d}]" for d in self.dims)

    def flat(self) -> np.ndarray:
        """The values in C order (one copy, at render time)."""
        return np.ascontiguousarray(self.values, dtype=np.int64).reshape(-1)


@dataclass(frozen=True, eq=False)
class Param:
    """A per-neuron parameter: one constant for the population, or a ROM indexed by neuron."""

    name: str
    ctype: IntType
    scalar: int | None = None
    rom: Rom | None = None


@dataclass(frozen=True)
class DenseShape:
    n_in: int
    n_out: int


@dataclass(frozen=True)
class ElementwiseShape:
    n: int

    @property
    def n_in(self) -> int:
        return self.n

    @property
    def n_out(self) -> int:
        return self.n


@dataclass(frozen=True)
class ConvShape:
    """Convolution geometry; ``pkh, pkw, psh, psw`` the max pooling of the sums (1, 1, 1, 1 and
    ``poh, pow == oh, ow`` without pooling)."""

    c_in: int
    h: int
    w: int
    c_out: int
    oh: int
    ow: int
    kh: int
    kw: int
    sh: int
    sw: int
    ph: int
    pw: int
    dh: int
    dw: int
    groups: int
    pkh: int = 1
    pkw: int = 1
    psh: int = 1
    psw: int = 1
    poh: int = 0
    pow: int = 0

    @property
    def cin_g(self) -> int:
        return self.c_in // self.groups

    @property
    def cout_g(self) -> int:
        return self.c_out // self.groups

    @property
    def pooled(self) -> bool:
        return (self.pkh, self.pkw, self.psh, self.psw) != (1, 1, 1, 1)

    @property
    def window(self) -> int:
        return self.pkh * self.pkw

    @property
    def taps(self) -> int:
        """Products of one output position over all output channels."""
        return self.c_out * self.cin_g * self.kh * self.kw

    @property
    def n_in(self) -> int:
        return self.c_in * self.h * self.w

    @property
    def n_out(self) -> int:
        return self.c_out * self.poh * self.pow

    @property
    def n_sums(self) -> int:
        """Convolution sums before pooling."""
        return self.c_out * self.oh * self.ow


@dataclass(frozen=True, eq=False)
class Source:
    """What projections read: the network input or a population's spikes.

    ``value`` is the element type (``ap_uint<1>`` spikes, ``ap_uint<k>`` spike counts, ``ap_int<k>``
    graded input) with range ``[lo, hi]``; ``ring`` the number of steps kept (delays: a
    projection with delay ``d`` reads the slot ``d`` steps back, see ``include/snn_delay.h``).
    """

    ident: str
    name: str
    size: int
    value: IntType
    lo: int
    hi: int
    ring: int
    idx_bits: int  # width of an event index (event design)

    @property
    def binary(self) -> bool:
        return self.value.bits == 1 and not self.value.signed


@dataclass(frozen=True, eq=False)
class Projection:
    """One projection ``acc = W (*) x[t - delay]``, its exponent and accumulator wrap.

    Common: ``cfg`` (the configuration struct), ``kind`` (``dense``, ``conv2d``,
    ``elementwise``), ``delay`` (the ring slot it reads), ``acc`` (exact: wide enough
    for ``max|x| * max row sum |W|``), ``out = wrap(acc << exp)`` at the target's accumulator
    width (``wraps``: whether that can change a value), ``weight`` (the weight element type).

    Parallel design: ``reuse`` pipelined iterations of ``block`` products per step.
    Event design: ``lanes`` weights added per cycle, ``words`` cycles per event (a row of
    ``lanes``-wide words); ``placement`` ``"chip"`` (``weights`` ROM) or ``"external"`` (rows at
    word offset ``base`` of the external weight image).
    """

    ident: str
    name: str
    cfg: str
    kind: str
    source: Source
    target: str
    delay: int
    shape: DenseShape | ConvShape | ElementwiseShape
    weight: IntType
    weights: Rom             # storage "external": packed into the external weight image
    acc: IntType
    exp: int
    out: IntType
    wraps: bool
    macs: int
    reuse: int = 1
    block: int = 1
    lanes: int = 1
    words: int = 1
    placement: str = "chip"
    base: int = 0
    acc_storage: str = "logic"

    @property
    def n_in(self) -> int:
        return self.shape.n_in

    @property
    def n_out(self) -> int:
        return self.shape.n_out

    @property
    def external(self) -> bool:
        return self.placement == "external"

    @property
    def n_acc(self) -> int:
        """Accumulators this projection keeps (convolution sums before pooling)."""
        return self.shape.n_sums if isinstance(self.shape, ConvShape) else self.n_out

    @property
    def weight_bits(self) -> int:
        return self.weights.size * self.weight.bits


@dataclass(frozen=True, eq=False)
class Neuron:
    """Neuron population configuration (``CFG`` of ``snn::neuron_update``)."""

    cfg: str
    n: int
    lanes: int
    groups: int
    reset: str          # RESET_NONE | RESET_ZERO | RESET_SUBTRACT
    same_step: bool     # same_step or immediate
    immediate: bool
    uses_reset_flag: bool
    discard_input: bool
    spiking: bool
    has_current: bool
    leak_free: bool
    max_spikes: int
    has_floor: bool
    act_shift: int
    decay_bits: int
    ovf_u: str          # rule structs of snn_arith.h
    ovf_v: str
    rnd: str
    test: str
    cur: IntType
    act: IntType
    dec_u: IntType
    sum_u: IntType
    u: IntType
    dec_v: IntType
    sum_v: IntType
    v: IntType          # ovf_v's output (the target's voltage register)
    v_state: IntType    # the stored voltage (wider for a doubled zero reset or a floor)
    same: IntType
    moved: IntType
    spike: IntType
    pu: int
    pv: int
    thr: Param
    bias: Param
    m_u: Param
    m_v: Param
    floor: Param | None
    u_multiplier: bool  # the current decay is a real multiplier (not 0 or a power of two)
    v_multiplier: bool  # the voltage decay is a real multiplier

    @property
    def params(self) -> tuple[Param, ...]:
        out = [self.thr, self.bias, self.m_u, self.m_v]
        if self.floor is not None:
            out.append(self.floor)
        return tuple(out)


@dataclass(frozen=True, eq=False)
class Population:
    """One neuron population and the projections that build its input.

    ``total`` is the exact type of ``sum_k out_k + input_bias`` (at most 64 bits, like the
    emulator's int64 sum) and ``neuron.cur`` that sum wrapped at the target's dense width.
    """

    ident: str
    name: str
    shape: tuple[int, ...]
    source: Source          # what this population's spikes look like to its projections
    incoming: tuple[Projection, ...]
    input_bias: Param | None
    total: IntType
    neuron: Neuron

    @property
    def size(self) -> int:
        return self.neuron.n

    @property
    def event_ii(self) -> int:
        """Initiation interval of the event design's neuron loop: a pooled convolution reads
        its window of sums through the two ports of its accumulator memory."""
        windows = [p.shape.window for p in self.incoming
                   if isinstance(p.shape, ConvShape) and p.shape.pooled]
        return max([1] + [-(-w // 2) for w in windows])

    @property
    def param_roms(self) -> tuple[Rom, ...]:
        """Per-neuron parameter ROMs (thresholds, biases, decays, floors, input bias)."""
        params = list(self.neuron.params)
        if self.input_bias is not None:
            params.append(self.input_bias)
        return tuple(p.rom for p in params if p.rom is not None)

    @property
    def roms(self) -> tuple[Rom, ...]:
        """Every on-chip constant array: weights, then per-neuron parameter ROMs."""
        return tuple(p.weights for p in self.incoming if not p.external) + self.param_roms


@dataclass(frozen=True)
class ExternalMemory:
    """The weight image in external memory: ``words`` words of ``word_bits`` bits (stored as
    little-endian bytes per word); the rows of each external projection start at its ``base``."""

    word_bits: int
    words: int
    burst_beats: int = 16  # the longest burst of the memory port (m_axi max_read_burst_length)

    @property
    def bytes(self) -> int:
        return self.words * self.word_bits // 8


@dataclass(frozen=True, eq=False)
class Project:
    """A whole generated project (``design`` is one of :data:`DESIGNS`)."""

    name: str                   # mangled project / IP name
    source_name: str
    target: str
    part: str
    clock_mhz: float
    design: str
    reuse_factor: int | None    # the parallel design's reuse factor
    input: Source
    input_shape: tuple[int, ...]
    input_scale: float
    populations: tuple[Population, ...]   # evaluation order
    output: Population
    output_kind: str            # "spikes" or "v" (non-spiking readout)
    output_type: IntType
    memory: ExternalMemory | None

    @property
    def input_size(self) -> int:
        return self.input.size

    @property
    def projections(self) -> tuple[Projection, ...]:
        return tuple(p for pop in self.populations for p in pop.incoming)

    @property
    def sources(self) -> tuple[Source, ...]:
        return (self.input,) + tuple(pop.source for pop in self.populations)

    @property
    def roms(self) -> tuple[Rom, ...]:
        return tuple(rom for pop in self.populations for rom in pop.roms)

    @property
    def external(self) -> tuple[Projection, ...]:
        return tuple(p for p in self.projections if p.external)
