"""The native engine's decisions for one group of populations: number types and data layouts.

Everything the generated C (:mod:`.kernel_source`) needs to know and may not get wrong is decided
here, each choice with the bound that proves it exact:

* **Accumulators.** A projection's sum ``acc = W (*) x`` is accumulated, every step, in the
  narrowest type that is exact for that step: int16 while the step's bound
  ``sum over events |x| * max|w of the event's column|`` stays below ``2**15``, int32 below
  ``2**31``, and otherwise the projection's own type: int32 when ``max|x| * max_row sum|w|``
  proves every sum fits, or when the sum is only ever used modulo ``2**32`` (the contribution
  ``wrap_bits(acc << exp)`` with ``bits + max(-exp, 0) <= 32`` depends on ``acc mod 2**32``
  alone; never under a max pooling, which needs the true sums); int64 (modular at ``2**64``,
  like the datapath) otherwise.
* **Modes.** ``"event"``: the kernel adds the weight columns of the step's non-zero inputs;
  ``"pre"``: the sums of all steps come precomputed from a dense exact product (BLAS), chosen
  by the engine where the measured input density is high; ``"elementwise"``: ``w * x`` in the
  neuron loop.
* **Layouts.** Dense weights transposed (one contiguous column per input, padded to whole
  cache lines), convolution weights ``[C_in, kH * kW, C_out / groups]`` (the output channels an
  input touches are contiguous, padded to whole vectors) accumulated over ``[oH * oW, C_out]``
  (:class:`ConvLayout`). Event-driven weights are stored as ``w >> s`` in the
  narrowest type (from int8), ``s`` the trailing zero bits all weights share (Loihi's even
  weights: ``s = 1``, int8), and the sum shifted back, ``acc = acc' << s``, in the neuron
  loop: exact, and half the memory traffic of int16 columns.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..datapath.step import NeuronConfig, spike_dtype
from ..errors import UnsupportedError
from ..ir.fixed import QNetwork, QPopulation, QProjection
from .records import kept, state_dtypes
from .synapse import row_sum_bound

NUMPY_TYPES = {"uint8_t": np.uint8, "int8_t": np.int8, "int16_t": np.int16,
               "int32_t": np.int32, "int64_t": np.int64}
SIGNED = ("int8_t", "int16_t", "int32_t", "int64_t")
COLMAX_CLIP = 1 << 31  # the step bound only asks "below 2**31?": larger maxima count as 2**31


def ctype_of(dtype) -> str:
    """The C name of a numpy integer type."""
    return {np.dtype(v): k for k, v in NUMPY_TYPES.items()}[np.dtype(dtype)]


def signed_ctype(lo: int, hi: int, narrowest: str = "int8_t") -> str:
    """The narrowest signed C integer type (not narrower than ``narrowest``) holding
    ``[lo, hi]``."""
    for name in SIGNED[SIGNED.index(narrowest):]:
        info = np.iinfo(NUMPY_TYPES[name])
        if info.min <= lo and hi <= info.max:
            return name
    raise UnsupportedError("a value exceeds 64 bits", value=f"[{lo}, {hi}]")


def limit(ctype: str) -> int:
    """``2**(bits-1)``: a sum below it in magnitude is exact in ``ctype``."""
    return int(np.iinfo(NUMPY_TYPES[ctype]).max) + 1


@dataclass(frozen=True)
class SourcePlan:
    """What a projection reads: the network input or a population's spikes, ``[T, B, size]``."""

    name: str
    ctype: str
    size: int
    max_abs: int     # the largest |value| it can hold
    binary: bool     # values are 0/1


@dataclass(frozen=True, eq=False)
class ProjectionPlan:
    proj: QProjection
    source: SourcePlan
    mode: str                       # "event", "pre" or "elementwise"
    target_size: int
    bits: int                       # the accumulator format the contribution wraps to
    acc_ctype: str                  # what the neuron loop reads (event and pre modes)
    paths: tuple[tuple[str, int], ...]  # event mode: (type, exclusive step bound or 0 = any)
    weight_ctype: str
    weights: np.ndarray             # the kernel's layout of w >> weight_shift
    colmax: np.ndarray | None       # per source element: max |w >> shift| of the weights it meets
    weight_shift: int = 0           # event mode: the sums are of w >> shift (see above)
    conv: ConvLayout | None = None  # convolutions: the scatter layout

    @property
    def stride(self) -> int:
        """Dense: the length of a weight column (and the accumulator), padded to whole cache
        lines with zero weights; others: the target size."""
        if self.proj.kind != "dense":
            return self.target_size
        per_line = 64 // self.weights.itemsize
        return -(-self.target_size // per_line) * per_line


@dataclass(frozen=True, eq=False)
class PopulationPlan:
    pop: QPopulation
    cfg: NeuronConfig
    projections: tuple[ProjectionPlan, ...]
    spike_ctype: str | None         # None: spikes neither recorded nor read by anyone
    u_ctype: str | None             # recorded u (None: not recorded)
    v_ctype: str | None


@dataclass(frozen=True, eq=False)
class GroupPlan:
    populations: tuple[PopulationPlan, ...]
    dense_bits: int


def source_plan(net: QNetwork, name: str) -> SourcePlan:
    """How the engine stores ``name``'s values for the kernels that read them."""
    if name == net.input.name:
        inp = net.input
        if inp.binary:
            return SourcePlan(name, "uint8_t", inp.size, 1, True)
        lo, hi = inp.value_range
        return SourcePlan(name, signed_ctype(lo, hi), inp.size, max(abs(lo), abs(hi)), False)
    neuron = net.population(name).neuron
    return SourcePlan(name, ctype_of(spike_dtype(neuron)), neuron.size, neuron.max_spikes,
                      neuron.max_spikes == 1)


def common_shift(w: np.ndarray) -> int:
    """The trailing zero bits every non-zero weight has (0 if none is non-zero)."""
    nz = np.abs(w[w != 0]).astype(np.uint64)
    if nz.size == 0:
        return 0
    lowest = int(np.bitwise_and(nz, ~nz + np.uint64(1)).min())  # the lowest set bit of each
    return lowest.bit_length() - 1


def _dense_layout(w: np.ndarray, ctype: str) -> tuple[np.ndarray, np.ndarray]:
    dtype = NUMPY_TYPES[ctype]
    per_line = 64 // np.dtype(dtype).itemsize
    stride = -(-w.shape[0] // per_line) * per_line
    columns = np.zeros((w.shape[1], stride), dtype)
    columns[:, :w.shape[0]] = w.T
    return columns, np.minimum(np.abs(w).max(axis=0, initial=0), COLMAX_CLIP).astype(np.int64)


@dataclass(frozen=True, eq=False)
class ConvLayout:
    """How the kernel scatters a convolution's events. The accumulator is ``[oH * oW, groups,
    lanes]`` (``lanes``: the outputs per group padded to whole vectors), the weights
    ``[C_in, kH * kW, lanes]``. ``start``/``pairs`` list, for every input position, the
    (accumulator offset, weight offset) of each output position it reaches (CSR form), so the
    geometry (stride, padding, dilation) costs nothing per event."""

    c_in: int
    in_hw: int            # H * W of the input
    groups: int
    per_group: int        # output channels per group (C_in / groups input channels each)
    in_per_group: int
    lanes: int
    taps: int             # kH * kW
    out_hw: int           # oH * oW of the convolution (before pooling)
    out_w: int
    start: np.ndarray     # int32 [H * W + 1]
    pairs: np.ndarray     # int32 [2 * reaches]: (accumulator offset, weight offset)

    @property
    def size(self) -> int:
        return self.out_hw * self.groups * self.lanes


def _conv_layout(proj: QProjection, w: np.ndarray, ctype: str):
    geo = proj.conv
    co, cg, kh, kw = w.shape
    c, h, wd = geo.in_shape
    _, oh, ow = geo.conv_shape(w.shape)
    (sh, sw), (ph, pw), (dh, dw) = geo.stride, geo.padding, geo.dilation
    per_group = co // geo.groups
    lanes = -(-per_group // 16) * 16
    # [C_in, kH * kW, lanes]: input channel c of group g meets outputs g * per_group + o
    grouped = w.reshape(geo.groups, per_group, cg, kh * kw).transpose(0, 2, 3, 1)
    layout = np.zeros((geo.groups * cg, kh * kw, lanes), NUMPY_TYPES[ctype])
    layout[..., :per_group] = grouped.reshape(geo.groups * cg, kh * kw, per_group)
    chan = np.abs(layout).reshape(layout.shape[0], -1).max(axis=1, initial=0)
    colmax = np.repeat(np.minimum(chan, COLMAX_CLIP).astype(np.int64), h * wd)
    starts, pairs = [0], []
    for y in range(h):
        for x in range(wd):
            for p in range(kh):
                ny = y + ph - p * dh
                if ny < 0 or ny % sh or ny // sh >= oh:
                    continue
                for q in range(kw):
                    nx = x + pw - q * dw
                    if nx < 0 or nx % sw or nx // sw >= ow:
                        continue
                    pos = (ny // sh) * ow + nx // sw
                    pairs += [pos * geo.groups * lanes, (p * kw + q) * lanes]
            starts.append(len(pairs) // 2)
    conv = ConvLayout(c_in=c, in_hw=h * wd, groups=geo.groups, per_group=per_group,
                      in_per_group=cg, lanes=lanes, taps=kh * kw, out_hw=oh * ow, out_w=ow,
                      start=np.array(starts, np.int32), pairs=np.array(pairs, np.int32))
    return layout, colmax, conv


def _paths(static: int, acc_ctype: str) -> tuple[tuple[str, int], ...]:
    """Accumulation types a step may take, narrowest first, each with the step bound below
    which it is exact; the last one (bound 0) takes any step. (Each weight enters the sum
    modulo the accumulation type's width, so a sum that fits is exact whatever the weights'
    storage type.)"""
    paths = []
    for ctype in ("int16_t", "int32_t"):
        if limit(ctype) >= limit(acc_ctype):
            break
        if static < limit(ctype):
            return (*paths, (ctype, 0))
        paths.append((ctype, limit(ctype)))
    return (*paths, (acc_ctype, 0))


def projection_plan(net: QNetwork, proj: QProjection, mode: str) -> ProjectionPlan:
    """The plan of ``proj`` in ``mode`` ("event" or "pre"; elementwise projections ignore it)."""
    source = source_plan(net, proj.source)
    target = net.population(proj.target)
    bits = proj.accumulator(net.target).bits
    w = proj.weight
    if proj.kind == "elementwise":
        flat = np.broadcast_to(w, net.shape_of(proj.source)).reshape(-1)
        return ProjectionPlan(proj, source, "elementwise", target.size, bits, "int64_t", (),
                              "int64_t", np.ascontiguousarray(flat, dtype=np.int64), None)
    static = source.max_abs * row_sum_bound(proj)
    if static >= 1 << 63:
        raise UnsupportedError("a synaptic sum may exceed 64 bits", node=proj.name,
                               value=f"bound {static}")
    shift = common_shift(w) if mode == "event" else 0
    stored = w >> shift
    top = int(np.abs(stored).max(initial=0))
    weight_ctype = signed_ctype(-top, top)
    static >>= shift  # every row sum of |w| is a multiple of 2**shift
    pooled = proj.kind == "conv" and proj.conv.max_pool is not None
    # the contribution wrap_bits(acc << exp) depends on acc mod 2**(bits + max(-exp, 0)) only
    modular32 = not pooled and bits + max(-proj.weight_exp, 0) <= 32
    acc_ctype = "int32_t" if static < 1 << 31 or (modular32 and mode == "event") else "int64_t"
    conv = None
    if proj.kind == "dense":
        weights, colmax = _dense_layout(stored, weight_ctype)
    else:
        weights, colmax, conv = _conv_layout(proj, stored, weight_ctype)
    paths = _paths(static, acc_ctype) if mode == "event" else ()
    return ProjectionPlan(proj, source, mode, target.size, bits, acc_ctype, paths,
                          weight_ctype, weights, colmax, shift, conv)


def needed_spikes(net: QNetwork, record) -> set[str]:
    """Populations whose spikes must be stored: recorded, or read by a projection."""
    read = {p.source for p in net.projections}
    return {p.name for p in net.populations
            if p.name in read or "spikes" in kept(net, p.name, record)}


def group_plan(net: QNetwork, group: tuple[str, ...], record, modes: dict[str, str]) -> GroupPlan:
    """The plan of ``group`` (populations in evaluation order); ``modes`` maps projection names
    to "pre" where the engine precomputes their sums (default "event")."""
    spikes = needed_spikes(net, record)
    pops = []
    for name in group:
        pop = net.population(name)
        keep = kept(net, name, record)
        u_type, v_type = state_dtypes(net, pop)
        projs = tuple(projection_plan(net, p, modes.get(p.name, "event"))
                      for p in net.incoming(name))
        pops.append(PopulationPlan(
            pop=pop, cfg=NeuronConfig.of(net.target, pop.neuron), projections=projs,
            spike_ctype=ctype_of(spike_dtype(pop.neuron)) if name in spikes else None,
            u_ctype=ctype_of(u_type) if "u" in keep else None,
            v_ctype=ctype_of(v_type) if "v" in keep else None))
    return GroupPlan(tuple(pops), net.target.accumulator.dense.bits)
