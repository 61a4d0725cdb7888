"""Lower a quantized network to the typed project description of :mod:`.project`.

All decisions live here: C identifiers, the width of every intermediate value, the rule structs
of ``include/snn_arith.h``, the layout of every weight array and, given a design and its
parameters, the parallelism and memory placement. Lowering has two stages so that searching
over designs never repeats work on the weights:

* :func:`analyze` (once per network): identifiers, value ranges, exact widths, neuron types;
* :func:`build` (per candidate design, cheap): reuse factors or lanes, storage, memory layout.
  Weight arrays are referenced (views), never copied; they are flattened only when rendered.

Widths follow one principle: each intermediate of the equation block in
:mod:`snn_compile.ir.fixed` gets ``min(W_target, W_needed)`` bits, where ``W_target`` is the
width at which the target (and so the emulator) wraps it and ``W_needed`` is the width its value
provably fits in. When ``W_needed <= W_target`` the wrap can never change the value, so the
narrower type is exact; otherwise the C++ type wraps at exactly ``W_target`` bits, like the
emulator's ``wrap()``. Widths are derived from the actual integer parameters, so an exactly
representable network is reproduced bit for bit even when its values exceed the target's
nominal formats.

Delays: a projection with delay ``d`` reads its source ``d`` steps back. Every source keeps a
ring of ``R`` steps (``include/snn_delay.h``), ``R = max(d + 1)`` over the projections evaluated
after their source and ``max(d)`` over those evaluated before it (feedback and self-recurrence
read the slot before the source overwrites it in the same step).
"""

from __future__ import annotations

import keyword
import math
from dataclasses import dataclass, replace

import numpy as np

from snn_compile.datapath.step import NeuronConfig
from snn_compile.datatypes import signed_bits
from snn_compile.emulator.synapse import row_sum_bound
from snn_compile.errors import UnsupportedError
from snn_compile.escape import CPP_KEYWORDS, cpp_identifier
from snn_compile.ir.fixed import QNetwork, QNeuron, QPopulation, QProjection
from snn_compile.targets import Target

from .project import (
    DESIGNS, ConvShape, DenseShape, ElementwiseShape, ExternalMemory, IntType, Neuron, Param,
    Population, Project, Projection, Rom, Source,
)

#: IR overflow rule -> rule struct of snn_arith.h (wrap_lava is refused: see HlsBackend).
OVERFLOW_STRUCTS = {
    "wrap": "snn::ovf_wrap",
    "saturate": "snn::ovf_saturate",
    "saturate_symmetric": "snn::ovf_saturate_symmetric",
}
#: decay rounding -> rule struct
ROUNDING_STRUCTS = {
    "floor": "snn::rnd_floor",
    "toward_zero": "snn::rnd_toward_zero",
    "nearest": "snn::rnd_nearest",
}
#: spike test -> rule struct
TEST_STRUCTS = {">": "snn::test_gt", ">=": "snn::test_ge"}
#: reset mode -> enum of snn_neuron.h
RESET_ENUMS = {"none": "snn::RESET_NONE", "zero": "snn::RESET_ZERO",
               "subtract": "snn::RESET_SUBTRACT"}

NUMPY_WIDTH = 64          # the emulator computes in int64: nothing wider is ever observable
BRAM_MIN_BITS = 4096      # memories below this size go to LUTRAM rather than a block RAM
BRAM_MIN_DEPTH = 32       # shallower ROMs (few reuse iterations) waste a block RAM's depth
CHIP_LANES = 16           # design choice: on-chip weights added per cycle in the event design
INPUT_IDENT = "snn_in"    # the network input's identifier (never taken from the input file)

# C++ keywords plus the names the generated code uses itself (every other generated name is an
# identifier plus a suffix such as "_u" or "_cfg": unique, since no identifier is an "_"-prefix
# of another, see snn_compile.escape.cpp_identifier)
CPP_RESERVED = CPP_KEYWORDS | frozenset(
    "main snn snn_net snn_top snn_step snn_reset std hls x y t input output wmem mem_t "
    f"{INPUT_IDENT} {INPUT_IDENT}_ring {INPUT_IDENT}_events".split())


# ------------------------------------------------------------------------------ identifiers

def c_identifier(name: str, taken: set[str]) -> str:
    """A C++ identifier for ``name``, unique within ``taken`` (which it is added to): short,
    and never an ``_``-prefix of another, so derived names cannot collide (snn_compile.escape)."""
    return cpp_identifier(name, taken, reserved=CPP_RESERVED | frozenset(keyword.kwlist))


# ------------------------------------------------------------------------------ widths

def unsigned_bits(hi: int) -> int:
    return max(1, int(hi).bit_length())


def span_type(values) -> IntType:
    values = np.asarray(values, dtype=np.int64)
    return IntType(signed_bits(values.min(initial=0), values.max(initial=0)))


def capped(target_bits: int, needed_bits: int) -> IntType:
    """``min(W_target, W_needed)`` (see the module docstring), never wider than int64."""
    return IntType(min(target_bits, needed_bits, NUMPY_WIDTH))


def sum_bits(widths: list[int]) -> int:
    """Width that holds the sum of values of the given widths."""
    return max(widths) + math.ceil(math.log2(len(widths))) if len(widths) > 1 else widths[0]


# ------------------------------------------------------------------------------ analysis

@dataclass(frozen=True, eq=False)
class ProjectionFacts:
    """Design-independent facts of one projection."""

    proj: QProjection
    ident: str
    target: str            # target population identifier
    kind: str
    shape: DenseShape | ConvShape | ElementwiseShape
    weight: IntType
    acc: IntType
    out: IntType
    wraps: bool
    macs: int
    elementwise: np.ndarray | None = None  # an elementwise weight broadcast over its source


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything about a network that does not depend on the design (see :func:`analyze`)."""

    net: QNetwork
    name: str
    source_name: str
    sources: dict          # network node name -> Source
    projections: dict      # projection name -> ProjectionFacts
    neurons: dict          # population name -> Neuron (lanes = n, storage "logic")
    bias: dict             # population name -> input bias Param or None
    totals: dict           # population name -> IntType of the exact sum
    idents: dict           # population name -> identifier

    @property
    def max_macs(self) -> int:
        return max(f.macs for f in self.projections.values())


def analyze(net: QNetwork, *, source_name: str = "model") -> Analysis:
    """Identifiers, exact widths and neuron types of ``net`` (no design chosen yet)."""
    target = net.target
    check_target(target)
    taken: set[str] = {INPUT_IDENT}  # no identifier may extend the input's
    order = {name: i for i, name in enumerate(net.order)}
    idents = {name: c_identifier(name, taken) for name in net.order}
    proj_idents = {p.name: c_identifier(p.name, taken)
                   for p in sorted(net.projections, key=lambda p: p.name)}

    def position(name: str) -> int:
        return -1 if name == net.input.name else order[name]

    rings: dict[str, int] = {net.input.name: 1, **{name: 1 for name in net.order}}
    for p in net.projections:
        forward = position(p.source) < position(p.target)
        rings[p.source] = max(rings[p.source], p.delay + 1 if forward else p.delay)

    inp = net.input
    sources = {inp.name: Source(
        ident=INPUT_IDENT, name=inp.name, size=inp.size,
        value=IntType(inp.dtype.bits, inp.dtype.signed), lo=inp.dtype.min, hi=inp.dtype.max,
        ring=rings[inp.name], idx_bits=unsigned_bits(max(inp.size - 1, 1)))}
    for pop in net.in_order():
        top = pop.neuron.max_spikes if pop.neuron.spiking else 1
        sources[pop.name] = Source(
            ident=idents[pop.name], name=pop.name, size=pop.size,
            value=IntType(unsigned_bits(top), signed=False), lo=0, hi=top,
            ring=rings[pop.name], idx_bits=unsigned_bits(max(pop.size - 1, 1)))

    facts = {}
    for p in net.projections:
        try:
            facts[p.name] = _projection_facts(net, p, proj_idents[p.name], sources,
                                              idents[p.target])
        except UnsupportedError as err:
            raise err.at(node=p.name) from None

    neurons, bias, totals = {}, {}, {}
    dense_bits = target.accumulator.dense.bits
    for pop in net.in_order():
        incoming = [facts[p.name] for p in net.incoming(pop.name)]
        widths = [f.out.bits for f in incoming]
        bias[pop.name] = None
        if pop.input_bias is not None:
            bias[pop.name] = _param(f"{idents[pop.name]}_in_bias", pop.input_bias, pop.shape)
            widths.append(bias[pop.name].ctype.bits)
        needed = sum_bits(widths)
        totals[pop.name] = IntType(min(NUMPY_WIDTH, needed))
        try:
            neurons[pop.name] = _neuron(pop, idents[pop.name],
                                        capped(dense_bits, needed), target)
        except UnsupportedError as err:
            raise err.at(node=pop.name) from None
    name = c_identifier(source_name or "model", set())
    return Analysis(net=net, name=name, source_name=source_name, sources=sources,
                    projections=facts, neurons=neurons, bias=bias, totals=totals,
                    idents=idents)


def check_target(target: Target) -> None:
    """UnsupportedError for a rule the headers do not implement (the capabilities say so too)."""
    fmt = target.neuron
    for key in ("u_overflow", "v_overflow"):
        rule = getattr(fmt, key)
        if rule not in OVERFLOW_STRUCTS:
            raise UnsupportedError(f"the HLS backend has no '{rule}' overflow rule",
                                   node=target.name, value=f"neuron.{key} = {rule!r}",
                                   hint=f"use one of {sorted(OVERFLOW_STRUCTS)}")
    if fmt.decay_rounding not in ROUNDING_STRUCTS:
        raise UnsupportedError("unknown decay rounding", node=target.name,
                               value=fmt.decay_rounding)


def _projection_facts(net: QNetwork, p: QProjection, ident: str, sources: dict,
                      target_ident: str) -> ProjectionFacts:
    src = sources[p.source]
    x_max = max(abs(src.lo), abs(src.hi))
    w = p.weight
    elementwise = None
    if p.kind == "dense":
        n_out, n_in = w.shape
        shape = DenseShape(n_in, n_out)
        macs, kind = n_in * n_out, "dense"
    elif p.kind == "elementwise":
        n = src.size
        shape = ElementwiseShape(n)
        macs, kind = n, "elementwise"
        elementwise = np.broadcast_to(w, net.shape_of(p.source)).reshape(-1)
    else:
        shape = _conv_shape(p)
        macs, kind = shape.taps * shape.oh * shape.ow, "conv2d"
    bound = x_max * row_sum_bound(p)
    acc = IntType(signed_bits(-bound, bound))
    scaled = acc.bits + max(p.weight_exp, 0)
    out = capped(p.accumulator(net.target).bits, scaled)
    return ProjectionFacts(
        proj=p, ident=ident, target=target_ident, kind=kind,
        shape=shape, weight=span_type(w), acc=acc, out=out,
        wraps=min(scaled, NUMPY_WIDTH) > out.bits, macs=macs, elementwise=elementwise)


def _conv_shape(p: QProjection) -> ConvShape:
    geo = p.conv
    c_out, cin_g, kh, kw = p.weight.shape
    c_in, h, wd = geo.in_shape
    if c_in % geo.groups or c_out % geo.groups or cin_g * geo.groups != c_in:
        raise UnsupportedError("convolution groups do not divide the channels",
                               value=f"groups={geo.groups}, C_in={c_in}, C_out={c_out}")
    _, oh, ow = geo.conv_shape(p.weight.shape)
    _, poh, pow_ = geo.out_shape(p.weight.shape)
    (pkh, pkw), (psh, psw) = geo.max_pool if geo.max_pool is not None else ((1, 1), (1, 1))
    if min(poh, pow_, oh, ow) < 1:
        raise UnsupportedError("convolution output is empty", value=f"{oh}x{ow} -> {poh}x{pow_}")
    return ConvShape(c_in=c_in, h=h, w=wd, c_out=c_out, oh=oh, ow=ow, kh=kh, kw=kw,
                     sh=geo.stride[0], sw=geo.stride[1], ph=geo.padding[0], pw=geo.padding[1],
                     dh=geo.dilation[0], dw=geo.dilation[1], groups=geo.groups,
                     pkh=pkh, pkw=pkw, psh=psh, psw=psw, poh=poh, pow=pow_)


def _param(ident: str, value, shape, ctype: IntType | None = None) -> Param:
    """A per-neuron parameter as a constant (all equal) or a ROM (storage decided in build)."""
    values = np.broadcast_to(np.asarray(value, dtype=np.int64), shape).reshape(-1)
    ctype = ctype or span_type(values)
    if values.size == 0 or np.all(values == values[0]):
        return Param(name=ident, ctype=ctype, scalar=int(values[0]) if values.size else 0)
    rom = Rom(ident=ident, ctype=ctype, values=values, dims=(values.size,), storage="logic")
    return Param(name=ident, ctype=ctype, rom=rom)


def _neuron(pop: QPopulation, ident: str, cur: IntType, target: Target) -> Neuron:
    q: QNeuron = pop.neuron
    fmt = target.neuron
    cfg = NeuronConfig.of(target, q)  # the emulator's static datapath, incl. proven shortcuts
    n, k = q.size, fmt.decay_bits
    ib = min(target.accumulator.intermediate.bits, NUMPY_WIDTH)
    thr_values = np.broadcast_to(q.threshold, q.shape)
    if cfg.max_spikes > 1 and cfg.spiking and thr_values.min(initial=1) <= 0:
        raise UnsupportedError("a multi-spike population needs positive thresholds (its count "
                               "is v // threshold)",
                               value=f"min threshold {int(thr_values.min())}",
                               hint="quantize with positive thresholds")
    m_u_values = np.broadcast_to(q.decay_u, q.shape) if q.has_current else np.zeros(1, np.int64)
    m_v_values = np.broadcast_to(q.decay_v, q.shape)
    for key, vals in (("decay_u", m_u_values), ("decay_v", m_v_values)):
        if vals.min(initial=0) < 0:
            raise UnsupportedError("negative decay multiplier", value=f"{key} min {vals.min()}")
    mu = IntType(unsigned_bits(int(m_u_values.max(initial=0))), signed=False)
    mv = IntType(unsigned_bits(int(m_v_values.max(initial=0))), signed=False)
    thr = _param(f"{ident}_thr", q.threshold, q.shape)
    bias = _param(f"{ident}_bias", q.bias, q.shape)
    m_u = _param(f"{ident}_m_u", q.decay_u if q.has_current else 0, q.shape, mu)
    m_v = _param(f"{ident}_m_v", q.decay_v, q.shape, mv)

    u = IntType(fmt.u.bits)
    v = IntType(fmt.v.bits)
    # a same-step zero reset with a live reset flag stores v' - (s - r) * v' = 2 v' when r = 1
    doubled = cfg.reset == "zero" and cfg.same_step and cfg.uses_reset_flag
    v_lo, v_hi = -(1 << (v.bits - 1 + doubled)), (1 << (v.bits - 1 + doubled)) - 1
    floor = None
    if q.v_floor is not None:
        floor = _param(f"{ident}_floor", q.v_floor, q.shape)
        f_values = np.broadcast_to(q.v_floor, q.shape)
        v_hi = max(v_hi, int(f_values.max(initial=0)))
    v_state = IntType(min(NUMPY_WIDTH, signed_bits(v_lo, v_hi)))
    act = capped(ib, cur.bits + fmt.activation_shift)
    pu = min(NUMPY_WIDTH, u.bits + mu.bits)
    pv = min(NUMPY_WIDTH, v_state.bits + mv.bits)
    dec_u = capped(ib, max(2, pu - k + 1))
    dec_v = capped(ib, v_state.bits if cfg.leak_free else max(2, pv - k + 1))
    sum_u = capped(ib, max(dec_u.bits, act.bits) + 1) if q.has_current else act
    sum_v = capped(ib, max(dec_v.bits, u.bits, bias.ctype.bits, thr.ctype.bits) + 2)
    same = capped(ib, max(v.bits, thr.ctype.bits) + 1)
    moved = capped(ib, v.bits + 1)
    spike = IntType(unsigned_bits(cfg.max_spikes if cfg.spiking else 1), signed=False)

    def trivial(values) -> bool:  # multiplier 0 or a power of two: wiring, no DSP
        vals = np.unique(values)
        return len(vals) == 1 and (vals[0] == 0 or (vals[0] & (vals[0] - 1)) == 0)

    return Neuron(
        cfg=f"{ident}_neu", n=n, lanes=n, groups=1, reset=RESET_ENUMS[cfg.reset],
        same_step=cfg.same_step, immediate=cfg.immediate, uses_reset_flag=cfg.uses_reset_flag,
        discard_input=cfg.discards_input, spiking=cfg.spiking, has_current=cfg.has_current,
        leak_free=cfg.leak_free, max_spikes=cfg.max_spikes if cfg.spiking else 1,
        has_floor=cfg.has_floor, act_shift=fmt.activation_shift, decay_bits=k,
        ovf_u=OVERFLOW_STRUCTS[fmt.u_overflow], ovf_v=OVERFLOW_STRUCTS[fmt.v_overflow],
        rnd=ROUNDING_STRUCTS[fmt.decay_rounding], test=TEST_STRUCTS[q.spike_test],
        cur=cur, act=act, dec_u=dec_u, sum_u=sum_u, u=u, dec_v=dec_v, sum_v=sum_v, v=v,
        v_state=v_state, same=same, moved=moved, spike=spike, pu=pu, pv=pv, thr=thr,
        bias=bias, m_u=m_u, m_v=m_v, floor=floor,
        u_multiplier=bool(q.has_current) and not trivial(m_u_values),
        v_multiplier=not cfg.leak_free and not trivial(m_v_values))


# ------------------------------------------------------------------------------ building

def memory_storage(bits: int, depth: int) -> str:
    """Where a memory of ``bits`` bits and ``depth`` words goes (BRAM only when it is big and
    deep enough to use a block well)."""
    return "bram" if bits >= BRAM_MIN_BITS and depth >= BRAM_MIN_DEPTH else "lutram"


def build(a: Analysis, design: str, *, reuse_factor: int = 1, external=frozenset(),
          axi_bits: int | None = None, burst_beats: int | None = None) -> Project:
    """The project of ``design`` (see :data:`~.project.DESIGNS`): ``reuse_factor`` for the
    parallel design; for the event design the names of the projections whose weights go to
    external memory (``axi_bits`` wide words)."""
    if design not in DESIGNS:
        raise UnsupportedError("unknown HLS design", value=design, hint=f"use one of {DESIGNS}")
    if design == "parallel" and (isinstance(reuse_factor, bool) or int(reuse_factor) < 1):
        raise UnsupportedError("reuse factor must be at least 1", value=reuse_factor)
    net = a.net
    base, pops = 0, []
    for qpop in net.in_order():
        nr = a.neurons[qpop.name]
        incoming = []
        for qp in net.incoming(qpop.name):
            facts = a.projections[qp.name]
            if design == "parallel":
                incoming.append(_parallel_projection(facts, a.sources, reuse_factor))
            else:
                proj = _event_projection(facts, a.sources, qp.name in external, axi_bits, base)
                if proj.external:
                    base += proj.n_in * proj.words
                incoming.append(proj)
        if design == "parallel":
            lanes = -(-nr.n // min(reuse_factor, nr.n))
            storage = "logic" if lanes >= nr.n else "lutram"
        else:
            lanes, storage = 1, None
        nr = _place_neuron(nr, lanes, storage)
        in_bias = a.bias[qpop.name]
        if in_bias is not None:
            in_bias = _place_param(in_bias, lanes, storage)
        pops.append(Population(
            ident=a.idents[qpop.name], name=qpop.name, shape=tuple(qpop.shape),
            source=a.sources[qpop.name], incoming=tuple(incoming),
            input_bias=in_bias, total=a.totals[qpop.name], neuron=nr))
    out = next(p for p in pops if p.name == net.output)
    spiking = out.neuron.spiking
    res = net.target.resources
    memory = ExternalMemory(word_bits=axi_bits, words=base,
                            burst_beats=burst_beats or 16) if base else None
    return Project(
        name=a.name, source_name=a.source_name, target=net.target.name, part=res.part or "",
        clock_mhz=float(res.clock_mhz or 100.0), design=design,
        reuse_factor=int(reuse_factor) if design == "parallel" else None,
        input=a.sources[net.input.name], input_shape=tuple(net.input.shape),
        input_scale=float(net.input.scale), populations=tuple(pops), output=out,
        output_kind="spikes" if spiking else "v",
        output_type=out.neuron.spike if spiking else out.neuron.v_state, memory=memory)


def _place_param(p: Param, lanes: int, storage: str | None) -> Param:
    if p.rom is None:
        return p
    n = p.rom.size
    if storage is None:  # event design: one neuron per cycle
        storage = memory_storage(p.rom.bits, n)
    return replace(p, rom=replace(p.rom, storage=storage, factor=lanes))


def _place_neuron(nr: Neuron, lanes: int, storage: str | None) -> Neuron:
    placed = {key: _place_param(getattr(nr, key), lanes, storage)
              for key in ("thr", "bias", "m_u", "m_v")}
    if nr.floor is not None:
        placed["floor"] = _place_param(nr.floor, lanes, storage)
    return replace(nr, lanes=lanes, groups=-(-nr.n // lanes), **placed)


def _common(f: ProjectionFacts, sources: dict) -> dict:
    """The design-independent fields of a :class:`~.project.Projection`."""
    p = f.proj
    return dict(ident=f.ident, name=p.name, cfg=f"{f.ident}_cfg", kind=f.kind,
                source=sources[p.source], target=f.target, delay=p.delay,
                shape=f.shape, weight=f.weight, acc=f.acc, exp=p.weight_exp, out=f.out,
                wraps=f.wraps, macs=f.macs)


def _parallel_projection(f: ProjectionFacts, sources: dict, rf: int) -> Projection:
    p = f.proj
    common = _common(f, sources)
    if f.kind == "conv2d":
        taps = f.shape.taps
        rom = Rom(ident=f"{f.ident}_w", ctype=f.weight, values=p.weight, dims=(p.weight.size,),
                  storage="logic", factor=p.weight.size)  # every tap is read in one iteration
        return Projection(**common, weights=rom, reuse=min(rf, taps), block=taps)
    # dense: input-major, so one reuse iteration reads a contiguous block
    values = p.weight.T if f.kind == "dense" else f.elementwise
    block = -(-f.macs // min(rf, f.macs))
    reuse = -(-f.macs // block)
    storage = "logic" if reuse == 1 else memory_storage(f.macs * f.weight.bits, reuse)
    rom = Rom(ident=f"{f.ident}_w", ctype=f.weight, values=values, dims=(f.macs,),
              storage=storage, factor=block)
    return Projection(**common, weights=rom, reuse=reuse, block=block)


def _largest_divisor(n: int, cap: int) -> int:
    return max(d for d in range(1, min(n, cap) + 1) if n % d == 0)


def _event_projection(f: ProjectionFacts, sources: dict, external: bool,
                      axi_bits: int | None, base: int) -> Projection:
    p = f.proj
    common = _common(f, sources)
    if external and f.kind != "dense":
        raise UnsupportedError("only dense weights can live in external memory",
                               node=p.name, value=f.kind,
                               hint="convolution and elementwise weights stay on chip")
    if f.kind == "dense":
        n_in, n_out = f.shape.n_in, f.shape.n_out
        if external:
            if not axi_bits:
                raise UnsupportedError("external weights need the memory port width",
                                       node=p.name, hint="set resources.axi_data_bits in the "
                                                         "target file")
            if f.weight.bits > axi_bits:
                raise UnsupportedError("a weight is wider than the memory port", node=p.name,
                                       value=f"{f.weight.bits} > {axi_bits} bits")
            lanes = min(n_out, axi_bits // f.weight.bits)
        else:
            lanes = min(n_out, CHIP_LANES)
        words = -(-n_out // lanes)
        rom = Rom(ident=f"{f.ident}_w", ctype=f.weight, values=p.weight.T, dims=(n_in, n_out),
                  storage="external" if external else memory_storage(
                      p.weight.size * f.weight.bits, n_in * words),
                  factor=lanes, dim=2, reshape=True)
        n_acc = n_out
    elif f.kind == "elementwise":
        n = f.shape.n
        values = f.elementwise
        rom = Rom(ident=f"{f.ident}_w", ctype=f.weight, values=values, dims=(n,),
                  storage=memory_storage(n * f.weight.bits, n))
        lanes, words, n_acc = 1, 1, n
    else:
        s = f.shape
        lanes = _largest_divisor(s.cout_g, CHIP_LANES)
        words = -(-s.cout_g // lanes)
        # rows by input channel: W[c][ky * KW + kx][co - group * COUT_G]
        w = p.weight.reshape(s.groups, s.cout_g, s.cin_g, s.kh * s.kw)
        values = w.transpose(0, 2, 3, 1).reshape(s.c_in, s.kh * s.kw, s.cout_g)
        rom = Rom(ident=f"{f.ident}_w", ctype=f.weight, values=values,
                  dims=(s.c_in, s.kh * s.kw, s.cout_g),
                  storage=memory_storage(values.size * f.weight.bits,
                                         s.c_in * s.kh * s.kw * words),
                  factor=lanes, dim=3, reshape=True)
        n_acc = s.n_sums
    banks = lanes if f.kind != "elementwise" else 1
    if n_acc <= lanes:
        acc_storage = "logic"
    else:
        acc_storage = memory_storage(n_acc * f.acc.bits // banks, n_acc // banks)
    return Projection(**common, weights=rom, lanes=lanes, words=words,
                      placement="external" if external else "chip", base=base,
                      acc_storage=acc_storage)

