"""Lower a quantized network to the typed project description of :mod:`.project`.

All decisions live here: C identifiers, the width of every intermediate value, the rule structs
of ``include/snn_arith.h`` and the parallelism/storage pragmas implied by the reuse factor.

Widths follow one principle: each intermediate of the equation block in
:mod:`snn_compile.ir.fixed` gets ``min(W_target, W_needed)`` bits, where ``W_target`` is the
width at which the target (and so the emulator) wraps it and ``W_needed`` is the width its value
provably fits in. When ``W_needed <= W_target`` the wrap can never change the value, so the
narrower type is exact; otherwise the C++ type wraps at exactly ``W_target`` bits, like the
emulator's ``wrap()``. Widths are derived from the actual integer parameters, so an exactly
representable network is reproduced bit for bit even when its values exceed the target's
nominal formats.
"""

from __future__ import annotations

import keyword

import numpy as np

from snn_compile.errors import UnsupportedError
from snn_compile.escape import CPP_KEYWORDS, cpp_identifier
from snn_compile.ir.fixed import QConv, QDense, QLayer, QNetwork, QNeuron
from snn_compile.targets import Target

from .project import (ConvShape, DenseShape, IntType, Layer, Neuron, Param, Project, Rom,
                      Synapse)

#: IR overflow rule -> rule struct of snn_arith.h (wrap_lava needs a state one bit wider).
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
BRAM_MIN_BITS = 4096      # ROMs below this size go to LUTRAM rather than a block RAM
BRAM_MIN_DEPTH = 32       # shallower ROMs (few reuse iterations) waste a block RAM's depth

# C++ keywords plus the names the generated code uses itself
CPP_RESERVED = CPP_KEYWORDS | frozenset(
    "main snn snn_net snn_top snn_step snn_reset std hls x y t input output".split())


# ------------------------------------------------------------------------------ identifiers

def c_identifier(name: str, taken: set[str]) -> str:
    """A C++ identifier for ``name``, unique within ``taken`` (which it is added to): short,
    and never an ``_``-prefix of another, so derived names cannot collide (snn_compile.escape)."""
    return cpp_identifier(name, taken, reserved=CPP_RESERVED | frozenset(keyword.kwlist))


# ------------------------------------------------------------------------------ widths

def signed_bits(lo: int, hi: int) -> int:
    """Smallest two's complement width (>= 2) holding every integer in [lo, hi]."""
    lo, hi = int(lo), int(hi)
    need = max(hi.bit_length() if hi > 0 else 0, (-lo - 1).bit_length() if lo < 0 else 0)
    return max(2, need + 1)


def unsigned_bits(hi: int) -> int:
    return max(1, int(hi).bit_length())


def span_type(values: np.ndarray) -> IntType:
    values = np.asarray(values, dtype=np.int64)
    return IntType(signed_bits(values.min(initial=0), values.max(initial=0)))


def capped(target_bits: int, needed_bits: int) -> IntType:
    """``min(W_target, W_needed)`` (see the module docstring), never wider than int64."""
    return IntType(min(target_bits, needed_bits, NUMPY_WIDTH))


# ------------------------------------------------------------------------------ lowering

def lower(net: QNetwork, *, source_name: str, reuse_factor: int = 1,
          max_steps: int = 1) -> Project:
    """Build the project description of ``net`` (no file is written)."""
    if reuse_factor < 1:
        raise UnsupportedError("reuse factor must be at least 1", value=reuse_factor)
    target = net.target
    _check_target(target)
    taken: set[str] = set()
    binary = net.input_bits == 1
    in_type = IntType(1, signed=False) if binary else IntType(net.input_bits)
    x_lo, x_hi = (0, 1) if binary else (-(1 << (net.input_bits - 1)), (1 << (net.input_bits - 1)) - 1)
    layers, n_prev, prev = [], int(np.prod(net.input_shape)), None
    for qlayer in net.layers:
        ident = c_identifier(qlayer.name, taken)
        try:
            layer = _lower_layer(qlayer, ident, target, reuse_factor, prev, n_prev,
                                 in_type, (x_lo, x_hi))
        except UnsupportedError as err:
            raise err.at(node=qlayer.name)
        layers.append(layer)
        prev, n_prev = ident, layer.size
        in_type, x_lo, x_hi = IntType(1, signed=False), 0, 1
    last = layers[-1]
    spiking = last.neuron.spiking
    res = target.resources
    return Project(
        name=c_identifier(source_name or "snn", set()), source_name=source_name,
        target=target.name, part=res.part or "", clock_mhz=float(res.clock_mhz or 100.0),
        reuse_factor=reuse_factor, input_shape=net.input_shape,
        input_size=int(np.prod(net.input_shape)),
        input_type=IntType(1, signed=False) if binary else IntType(net.input_bits),
        binary_input=binary, input_scale=float(net.input_scale), layers=tuple(layers),
        output_kind="spikes" if spiking else "v",
        output_type=IntType(1, signed=False) if spiking else last.neuron.v,
        max_steps=max(1, int(max_steps)),
    )


def _check_target(target: Target) -> None:
    fmt = target.neuron
    for key in ("u_overflow", "v_overflow"):
        rule = getattr(fmt, key)
        if rule not in OVERFLOW_STRUCTS:
            raise UnsupportedError(f"the HLS backend has no '{rule}' overflow rule",
                                   value=f"neuron.{key} = {rule!r}",
                                   hint=f"use one of {sorted(OVERFLOW_STRUCTS)}")
    if fmt.decay_rounding not in ROUNDING_STRUCTS:
        raise UnsupportedError("unknown decay rounding", value=fmt.decay_rounding)


def _lower_layer(q: QLayer, ident: str, target: Target, rf: int, prev: str | None, n_in: int,
                 in_type: IntType, x_range: tuple[int, int]) -> Layer:
    acc_fmt = target.accumulator
    syn = q.synapse
    if syn.in_size != n_in:
        raise UnsupportedError("synapse input size does not match the previous layer",
                               value=f"{syn.in_size} != {n_in}")
    is_conv = isinstance(syn, QConv)
    syn_bits = acc_fmt.conv_bits if is_conv else acc_fmt.dense_bits
    synapse = LOWER_SYNAPSE[type(syn)](syn, f"{ident}_syn", f"{ident}_w", in_type, x_range,
                                       syn_bits, rf)
    if synapse.n_out != q.neuron.size:
        raise UnsupportedError("synapse output size does not match the neuron population",
                               value=f"{synapse.n_out} != {q.neuron.size}")
    n = q.neuron.size
    lanes = -(-n // min(rf, n))
    stage = synapse.out

    input_bias = biased = None
    if q.input_bias is not None:
        input_bias = _param(f"{ident}_in_bias", q.input_bias, q.neuron.shape, n, lanes)
        biased = capped(acc_fmt.dense_bits, max(stage.bits, input_bias.ctype.bits) + 1)
        stage = biased

    recurrent = summed = None
    rec_delay = max(1, target.timing.synapse_delay)
    if q.recurrent is not None:
        recurrent = _lower_dense(q.recurrent, f"{ident}_rec", f"{ident}_w_rec",
                                 IntType(1, signed=False), (0, 1), acc_fmt.dense_bits, rf)
        summed = capped(acc_fmt.dense_bits, max(stage.bits, recurrent.out.bits) + 1)
        stage = summed

    neuron = _lower_neuron(q.neuron, f"{ident}_neu", ident, stage, target, lanes)
    return Layer(ident=ident, name=q.name, shape=tuple(q.neuron.shape), source=prev,
                 synapse=synapse, delay=target.timing.synapse_delay + q.delay,
                 input_bias=input_bias, biased=biased, recurrent=recurrent,
                 rec_delay=rec_delay, summed=summed, neuron=neuron)


def _acc_types(weight2d: np.ndarray, x_range, exp: int, target_bits: int):
    """Exact accumulator type and the type after ``wrap(acc << exp, target_bits)``."""
    x_max = max(abs(x_range[0]), abs(x_range[1]))
    bound = x_max * int(np.abs(weight2d).sum(axis=1).max(initial=0))
    acc = IntType(signed_bits(-bound, bound))
    scaled = acc.bits + max(exp, 0)
    out = capped(target_bits, scaled)
    return acc, out, min(scaled, NUMPY_WIDTH) > out.bits


def _weight_rom(ident: str, values: np.ndarray, reuse: int, block: int) -> Rom:
    ctype = span_type(values)
    flat = tuple(np.asarray(values, dtype=np.int64).tolist())
    if reuse == 1:
        storage = "logic"
    elif reuse >= BRAM_MIN_DEPTH and len(flat) * ctype.bits >= BRAM_MIN_BITS:
        storage = "bram"
    else:
        storage = "lutram"
    return Rom(ident=ident, ctype=ctype, values=flat, storage=storage, factor=block)


def _lower_dense(syn: QDense, cfg: str, rom: str, in_type: IntType, x_range, target_bits: int,
                 rf: int) -> Synapse:
    w = syn.weight
    n_out, n_in = w.shape
    macs = n_in * n_out
    block = -(-macs // min(rf, macs))
    reuse = -(-macs // block)
    acc, out, wraps = _acc_types(w, x_range, syn.weight_exp, target_bits)
    return Synapse(cfg=cfg, kind="dense", shape=DenseShape(n_in, n_out), in_type=in_type,
                   binary_input=not in_type.signed,
                   weights=_weight_rom(rom, w.T.reshape(-1), reuse, block),  # input-major
                   acc=acc, exp=syn.weight_exp, out=out, reuse=reuse, block=block, macs=macs,
                   wraps=wraps)


def _lower_conv(syn: QConv, cfg: str, rom: str, in_type: IntType, x_range, target_bits: int,
                rf: int) -> Synapse:
    w = syn.weight
    c_out, cin_g, kh, kw = w.shape
    c_in, h, wd = syn.in_shape
    if c_in % syn.groups or c_out % syn.groups or cin_g * syn.groups != c_in:
        raise UnsupportedError("convolution groups do not divide the channels",
                               value=f"groups={syn.groups}, C_in={c_in}, C_out={c_out}")
    _, oh, ow = syn.out_shape
    shape = ConvShape(c_in=c_in, h=h, w=wd, c_out=c_out, oh=oh, ow=ow, kh=kh, kw=kw,
                      sh=syn.stride[0], sw=syn.stride[1], ph=syn.padding[0], pw=syn.padding[1],
                      dh=syn.dilation[0], dw=syn.dilation[1], groups=syn.groups)
    taps = c_out * cin_g * kh * kw
    reuse = min(rf, taps)
    acc, out, wraps = _acc_types(w.reshape(c_out, -1), x_range, syn.weight_exp, target_bits)
    weights = _weight_rom(rom, w.reshape(-1), 1, taps)  # every tap is read in one iteration
    return Synapse(cfg=cfg, kind="conv2d", shape=shape, in_type=in_type,
                   binary_input=not in_type.signed, weights=weights, acc=acc,
                   exp=syn.weight_exp, out=out, reuse=reuse, block=taps,
                   macs=taps * oh * ow, wraps=wraps)


LOWER_SYNAPSE = {QDense: _lower_dense, QConv: _lower_conv}


def _param(ident: str, value, shape, n: int, lanes: int, ctype: IntType | None = None) -> Param:
    values = np.broadcast_to(np.asarray(value, dtype=np.int64), shape).reshape(-1)
    ctype = ctype or span_type(values)
    if n == 0 or np.all(values == values[0]):
        return Param(name=ident, ctype=ctype, scalar=int(values[0]) if n else 0)
    storage = "logic" if lanes >= n else "lutram"
    rom = Rom(ident=ident, ctype=ctype, values=tuple(values.tolist()),
              storage=storage, factor=lanes)
    return Param(name=ident, ctype=ctype, rom=rom)


def _lower_neuron(q: QNeuron, cfg: str, ident: str, cur: IntType, target: Target,
                  lanes: int) -> Neuron:
    fmt = target.neuron
    n = q.size
    ib = min(target.accumulator.intermediate_bits, NUMPY_WIDTH)
    k = fmt.decay_bits
    thr = _param(f"{ident}_thr", q.threshold, q.shape, n, lanes)
    bias = _param(f"{ident}_bias", q.bias, q.shape, n, lanes)
    thr_values = np.broadcast_to(q.threshold, q.shape)
    if q.reset == "zero" and q.reset_timing == "same_step" and (
            not q.spiking or thr_values.min(initial=1) <= 0):
        raise UnsupportedError(
            "reset 'zero' in the same step needs a spiking layer with positive thresholds",
            value=f"spiking={q.spiking}, min threshold={int(thr_values.min(initial=1))}",
            hint="use reset 'none' for a non-spiking readout (the emulator would double v)")
    m_u_values = np.broadcast_to(q.decay_u, q.shape) if q.has_current else np.zeros(1, np.int64)
    m_v_values = np.broadcast_to(q.decay_v, q.shape)
    for key, vals in (("decay_u", m_u_values), ("decay_v", m_v_values)):
        if vals.min(initial=0) < 0:
            raise UnsupportedError("negative decay multiplier", value=f"{key} min {vals.min()}")
    mu = IntType(unsigned_bits(int(m_u_values.max(initial=0))), signed=False)
    mv = IntType(unsigned_bits(int(m_v_values.max(initial=0))), signed=False)
    m_u = _param(f"{ident}_m_u", q.decay_u if q.has_current else 0, q.shape, n, lanes, mu)
    m_v = _param(f"{ident}_m_v", q.decay_v, q.shape, n, lanes, mv)

    u = IntType(fmt.u_bits)
    v = IntType(fmt.v_bits)
    act = capped(ib, cur.bits + fmt.activation_shift)
    pu = min(NUMPY_WIDTH, u.bits + mu.bits)
    pv = min(NUMPY_WIDTH, v.bits + mv.bits)
    dec_u = capped(ib, max(2, pu - k + 1))
    dec_v = capped(ib, max(2, pv - k + 1))
    sum_u = capped(ib, max(dec_u.bits, act.bits) + 1) if q.has_current else act
    sum_v = capped(ib, max(dec_v.bits, u.bits, bias.ctype.bits, thr.ctype.bits) + 2)
    same = capped(ib, max(v.bits, thr.ctype.bits) + 1)

    def trivial(values) -> bool:  # multiplier 0 or a power of two: wiring, no DSP
        vals = np.unique(values)
        return len(vals) == 1 and (vals[0] == 0 or (vals[0] & (vals[0] - 1)) == 0)

    return Neuron(
        cfg=cfg, n=n, lanes=lanes, groups=-(-n // lanes), reset=RESET_ENUMS[q.reset],
        same_step=q.reset_timing == "same_step", discard_input=bool(q.reset_discards_input),
        spiking=bool(q.spiking), has_current=bool(q.has_current),
        act_shift=fmt.activation_shift, decay_bits=k,
        ovf_u=OVERFLOW_STRUCTS[fmt.u_overflow], ovf_v=OVERFLOW_STRUCTS[fmt.v_overflow],
        rnd=ROUNDING_STRUCTS[fmt.decay_rounding], test=TEST_STRUCTS[q.spike_test],
        cur=cur, act=act, dec_u=dec_u, sum_u=sum_u, u=u, dec_v=dec_v, sum_v=sum_v, v=v,
        same=same, pu=pu, pv=pv, thr=thr, bias=bias, m_u=m_u, m_v=m_v,
        u_multiplier=bool(q.has_current) and not trivial(m_u_values),
        v_multiplier=not trivial(m_v_values),
    )
