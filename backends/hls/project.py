"""Typed description of a generated Vitis HLS project.

``lower.py`` builds a :class:`Project` from a :class:`~snn_compile.ir.fixed.QNetwork`; the
templates in ``templates/`` render it into files and read nothing else. Everything here is
already decided: C identifiers (sanitized once, in lowering), every ``ap_int`` width, pragma
choices and the rule structs of ``include/snn_arith.h``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class IntType:
    """An ``ap_int<bits>`` (or ``ap_uint<bits>`` when unsigned)."""

    bits: int
    signed: bool = True

    @property
    def cpp(self) -> str:
        return f"ap_{'' if self.signed else 'u'}int<{self.bits}>"


@dataclass(frozen=True)
class Rom:
    """A constant array written to a weights header.

    ``storage``: ``"logic"`` (completely partitioned, constants folded into the datapath),
    ``"lutram"`` or ``"bram"`` (``bind_storage``); ``factor`` is the cyclic partition factor
    (ports read per cycle) for the memory kinds.
    """

    ident: str
    ctype: IntType
    values: tuple[int, ...]
    storage: str
    factor: int = 1

    @property
    def size(self) -> int:
        return len(self.values)

    @property
    def bits(self) -> int:
        return self.size * self.ctype.bits


@dataclass(frozen=True)
class Param:
    """A per-neuron parameter: one constant for the layer, or a ROM indexed by neuron."""

    name: str
    ctype: IntType
    scalar: int | None = None
    rom: Rom | None = None


@dataclass(frozen=True)
class DenseShape:
    n_in: int
    n_out: int


@dataclass(frozen=True)
class ConvShape:
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

    @property
    def cin_g(self) -> int:
        return self.c_in // self.groups


@dataclass(frozen=True)
class Synapse:
    """One synaptic product ``acc = W @ x`` plus exponent and accumulator wrap.

    ``kind`` selects the kernel of ``include/snn_synapse.h`` (``dense`` or ``conv2d``);
    ``reuse`` is the number of pipelined iterations per step and ``block`` the parallel products
    per iteration (dense) or the taps per output pixel (conv).
    """

    cfg: str
    kind: str
    shape: DenseShape | ConvShape
    in_type: IntType
    binary_input: bool
    weights: Rom
    acc: IntType
    exp: int
    out: IntType
    reuse: int
    block: int
    macs: int
    wraps: bool  # whether the wrap to the target accumulator width can change a value

    @property
    def n_in(self) -> int:
        s = self.shape
        return s.n_in if isinstance(s, DenseShape) else s.c_in * s.h * s.w

    @property
    def n_out(self) -> int:
        s = self.shape
        return s.n_out if isinstance(s, DenseShape) else s.c_out * s.oh * s.ow


@dataclass(frozen=True)
class Neuron:
    """Neuron population configuration (``CFG`` of ``snn::neuron_step``)."""

    cfg: str
    n: int
    lanes: int
    groups: int
    reset: str          # RESET_NONE | RESET_ZERO | RESET_SUBTRACT
    same_step: bool
    discard_input: bool
    spiking: bool
    has_current: bool
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
    v: IntType
    same: IntType
    pu: int
    pv: int
    thr: Param
    bias: Param
    m_u: Param
    m_v: Param
    u_multiplier: bool  # the current decay is a real multiplier (not 0 or a power of two)
    v_multiplier: bool  # the voltage decay is a real multiplier


@dataclass(frozen=True)
class Layer:
    """One neuron population and the stages that build its input current."""

    ident: str
    name: str                   # the name in the source network
    shape: tuple[int, ...]
    source: str | None          # ident of the source layer; None = network input
    synapse: Synapse
    delay: int                  # steps of synaptic delay (0 = same step)
    input_bias: Param | None
    biased: IntType | None      # wrap(a + input_bias, dense_bits)
    recurrent: Synapse | None
    rec_delay: int
    summed: IntType | None      # wrap(a + recurrent, dense_bits)
    neuron: Neuron

    @property
    def size(self) -> int:
        return self.neuron.n

    @property
    def roms(self) -> tuple[Rom, ...]:
        """Every constant array of the layer: weights, then per-neuron parameter ROMs."""
        out = [self.synapse.weights]
        if self.recurrent is not None:
            out.append(self.recurrent.weights)
        nr = self.neuron
        params = [nr.thr, nr.bias, nr.m_u, nr.m_v]
        if self.input_bias is not None:
            params.append(self.input_bias)
        out.extend(p.rom for p in params if p.rom is not None)
        return tuple(out)


@dataclass(frozen=True)
class Project:
    """A whole generated project."""

    name: str                   # sanitized project / IP name
    source_name: str
    target: str
    part: str
    clock_mhz: float
    reuse_factor: int
    input_shape: tuple[int, ...]
    input_size: int
    input_type: IntType
    binary_input: bool
    input_scale: float
    layers: tuple[Layer, ...]
    output_kind: str            # "spikes" or "v" (non-spiking readout)
    output_type: IntType
    max_steps: int

    @property
    def output_layer(self) -> Layer:
        return self.layers[-1]

    @property
    def roms(self) -> tuple[Rom, ...]:
        return tuple(rom for layer in self.layers for rom in layer.roms)
