"""The C source of one group's kernel, written from its :class:`~.kernel_plan.GroupPlan`.

The kernel runs the group over the whole window: samples in parallel (OpenMP), and for each
sample every time step, every population of the group in evaluation order, fused:

1. per projection, the step's synaptic sums ``acc``: the events of the source row (its non-zero
   inputs) add their weight columns into the narrowest exact accumulator the step's bound allows
   (``"event"``), or a precomputed row is read (``"pre"``), or ``w * x`` (``"elementwise"``);
2. one loop over the neurons that computes the generic step of :mod:`snn_compile.datapath.step`
   (contributions, synaptic input, current, membrane), written as C by the C family of the rule
   table (:mod:`snn_compile.datapath.c_ops`), and stores the state once: the spikes (and ``u``,
   ``v`` only where recorded).

The kernel's signature is ``int <entry>(int64_t T, int64_t B, int64_t threads, void *const
*bufs)``: ``bufs`` holds the constant arrays (:attr:`KernelSource.constants`), then the run-time
arrays named by :attr:`KernelSource.slots`, all C-contiguous. It returns 0, or 1 if scratch memory
could not be allocated. Several kernels (distinct ``prefix``) go into one translation unit
(:func:`translation_unit`), so a network is built by one compiler run.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..datapath.c_ops import CFamily
from ..datapath.step import NeuronParams, contribution, current, membrane, synaptic_input
from .kernel_plan import GroupPlan, PopulationPlan, ProjectionPlan

PRELUDE = (Path(__file__).with_name("kernel_prelude.h")).read_text()
UNSIGNED = {"int16_t": "uint16_t", "int32_t": "uint32_t", "int64_t": "uint64_t"}
AHEAD = 2  # steps ahead that a sample's input rows are prefetched
STREAM_RECORDS = True  # recorded u, v rows go out through non-temporal stores
SIZEOF = {"uint8_t": 1, "int8_t": 1, "int16_t": 2, "int32_t": 4, "int64_t": 8}


@dataclass
class KernelSource:
    """A kernel's C text and the arrays it reads, in ``bufs`` order."""

    text: str
    entry: str
    constants: list[np.ndarray] = field(default_factory=list)
    slots: list[tuple[str, str]] = field(default_factory=list)  # ("source"|"pre"|state, name)


class _Buffers:
    """Numbers the entries of ``bufs`` and writes their declarations."""

    def __init__(self):
        self.constants: list[tuple[str, str, np.ndarray]] = []
        self.slots: list[tuple[str, str, tuple[str, str]]] = []
        self._slot_names: dict[tuple[str, str], str] = {}

    def constant(self, cname: str, ctype: str, array: np.ndarray) -> str:
        self.constants.append((cname, ctype, np.ascontiguousarray(array)))
        return cname

    def slot(self, key: tuple[str, str], cname: str, ctype: str) -> str:
        if key not in self._slot_names:
            self._slot_names[key] = cname
            self.slots.append((cname, ctype, key))
        return self._slot_names[key]

    def declarations(self) -> list[str]:
        lines = []
        for i, (cname, ctype, _) in enumerate(self.constants):
            lines.append(f"const {ctype} *restrict {cname} = (const {ctype} *)bufs[{i}];")
        base = len(self.constants)
        for i, (cname, ctype, key) in enumerate(self.slots):
            const = "const " if key[0] in ("source", "pre") else ""
            lines.append(f"{const}{ctype} *{cname} = ({const}{ctype} *)bufs[{base + i}];"
                         f"  /* {key[0]} {key[1]} */")
        return lines


def _indent(lines: list[str], depth: int = 1) -> list[str]:
    pad = "    " * depth
    return [pad + line if line else line for line in lines]


# ----------------------------------------------------------------------------- accumulation

def _term(plan: ProjectionPlan, ctype: str, m: int, at: str) -> str:
    """One event's share, modulo the accumulation type: ``w`` (binary) or ``x * w``."""
    u = UNSIGNED[ctype]
    return f"({u})w{m}[{at}]" if plan.source.binary else f"({u})(x{m} * (int64_t)w{m}[{at}])"


def _event_head(plan: ProjectionPlan, m: int, column: str) -> list[str]:
    lines = [f"const {plan.weight_ctype} *w{m} = w + {column};"]
    if not plan.source.binary:
        lines.append(f"const int64_t x{m} = val[k + {m}];")
    return lines


def _dense_add(name: str, plan: ProjectionPlan, ctype: str) -> list[str]:
    """Sets the accumulator to the events' weight columns summed, four columns per pass; the
    first pass writes without reading (a zeroing store right before the first read stalls)."""
    n, u = plan.stride, UNSIGNED[ctype]
    lines = [f"static void {name}({ctype} *restrict acc, const {plan.weight_ctype} *restrict w,",
             "        const int32_t *restrict idx, const int64_t *restrict val, int64_t nnz) {",
             "    if (nnz == 0) {", f"        memset(acc, 0, sizeof(*acc) * {n});",
             "        return;", "    }",
             "    int64_t k = 0;"]

    def block(width: int, first: bool) -> list[str]:
        body = []
        for m in range(width):
            body += _event_head(plan, m, f"(int64_t)idx[k + {m}] * {n}")
        terms = " + ".join(_term(plan, ctype, m, "j") for m in range(width))
        start = "" if first else f"({u})acc[j] + "
        return body + [f"for (int64_t j = 0; j < {n}; j++)",
                       f"    acc[j] = ({ctype})({start}{terms});"]

    lines += ["    if (nnz >= 4) {"] + _indent(block(4, True), 2) + ["        k = 4;",
              "    } else {"] + _indent(block(1, True), 2) + ["        k = 1;", "    }"]
    for width, step in ((4, "k + 4 <= nnz; k += 4"), (1, "k < nnz; k++")):
        lines += [f"    for (; {step}) {{"] + _indent(block(width, False), 2) + ["    }"]
    return lines + ["}"]


def _conv_add(name: str, plan: ProjectionPlan, ctype: str) -> list[str]:
    """Scatters each event into the outputs it reaches (:class:`~.kernel_plan.ConvLayout`)."""
    cv = plan.conv
    return [
        f"static void {name}({ctype} *restrict acc, const {plan.weight_ctype} *restrict w_all,",
        "        const int32_t *restrict idx, const int64_t *restrict val, int64_t nnz,",
        "        const int32_t *restrict start, const int32_t *restrict pairs) {",
        "    for (int64_t k = 0; k < nnz; k++) {",
        f"        const int64_t i = idx[k], c = i / {cv.in_hw}, s = i % {cv.in_hw};",
        *([] if plan.source.binary else ["        const int64_t x0 = val[k];"]),
        f"        const {plan.weight_ctype} *wc = w_all + c * {cv.taps * cv.lanes};",
        f"        {ctype} *ag = acc + (c / {cv.in_per_group}) * {cv.lanes};",
        "        for (int64_t e = start[s]; e < start[s + 1]; e++) {",
        f"            const {plan.weight_ctype} *restrict w0 = wc + pairs[2 * e + 1];",
        f"            {ctype} *restrict a = ag + pairs[2 * e];",
        f"            for (int64_t o = 0; o < {cv.lanes}; o += 16)",
        f"                snn_add16_{ctype}_{plan.weight_ctype}(a + o, w0 + o, "
        f"{'1' if plan.source.binary else 'x0'});",
        "        }",
        "    }",
        "}",
    ]


def _conv_finish(name: str, plan: ProjectionPlan, ctype: str) -> list[str]:
    """``[oH * oW, groups, lanes]`` sums to the population's ``[C_out, H, W]`` order, taking
    the maximum over each pooling window first where the convolution has one."""
    cv, geo = plan.conv, plan.proj.conv
    co, row = cv.groups * cv.per_group, cv.groups * cv.lanes
    head = [f"static void {name}(const {ctype} *restrict s, {plan.acc_ctype} *restrict out) {{",
            f"    for (int64_t c = 0; c < {co}; c++) {{",
            f"        const {ctype} *sc = s + (c / {cv.per_group}) * {cv.lanes} + c % {cv.per_group};"]
    if geo.max_pool is None:
        return head + [f"        for (int64_t i = 0; i < {cv.out_hw}; i++)",
                       f"            out[c * {cv.out_hw} + i] = ({plan.acc_ctype})sc[i * {row}];",
                       "    }", "}"]
    (pkh, pkw), (psh, psw) = geo.max_pool
    _, poh, pow_ = geo.out_shape(plan.proj.weight.shape)
    ow = cv.out_w
    return head + [
        f"        for (int64_t py = 0; py < {poh}; py++)",
        f"            for (int64_t px = 0; px < {pow_}; px++) {{",
        f"                {ctype} m = sc[((py * {psh}) * {ow} + px * {psw}) * {row}];",
        f"                for (int64_t p = 0; p < {pkh}; p++)",
        f"                    for (int64_t q = 0; q < {pkw}; q++) {{",
        f"                        const {ctype} v = sc[((py * {psh} + p) * {ow} + px * {psw} + q)"
        f" * {row}];",
        "                        m = v > m ? v : m;",
        "                    }",
        f"                out[(c * {poh} + py) * {pow_} + px] = ({plan.acc_ctype})m;",
        "            }",
        "    }",
        "}",
    ]


def _scratch_size(plan: ProjectionPlan) -> int:
    return plan.conv.size if plan.conv is not None else plan.stride


# ----------------------------------------------------------------------------- the kernel

class _GroupWriter:
    def __init__(self, plan: GroupPlan, prefix: str):
        self.plan, self.prefix = plan, prefix
        self.buffers = _Buffers()
        self.functions: list[str] = []
        self.scratch: list[tuple[str, str, int]] = []  # (name, ctype, elements) per thread
        self.states: list[str] = []                      # per-sample state (zeroed per sample)
        self.in_group = {p.pop.name: f"p{i}" for i, p in enumerate(plan.populations)}
        self.max_source = 1                              # elements of the largest source row
        self.zero_bytes = 8

    def _scratch(self, name: str, ctype: str, n: int) -> str:
        self.scratch.append((name, ctype, max(int(n), 1)))
        return name

    def _source(self, plan: ProjectionPlan) -> str:
        name = plan.source.name
        if name in self.in_group:
            return f"{self.in_group[name]}_out_spikes"
        ident = f"src{len([s for s in self.buffers.slots if s[2][0] == 'source'])}"
        return self.buffers.slot(("source", name), ident, plan.source.ctype)

    def _row(self, plan: ProjectionPlan, k: str) -> list[str]:
        src = plan.source
        self.max_source = max(self.max_source, src.size)
        self.zero_bytes = max(self.zero_bytes, src.size * SIZEOF[src.ctype])
        d, base = plan.proj.delay, self._source(plan)
        row = f"{src.size * SIZEOF[src.ctype]}"
        return [f"const {src.ctype} *{k}_x = t >= {d} ? {base} + ((t - {d}) * B + b)"
                f" * {src.size} : (const {src.ctype} *)zero;",
                f"if (t + {AHEAD} >= {d} && t + {AHEAD} < T) snn_prefetch({base} + "
                f"((t + {AHEAD} - {d}) * B + b) * {src.size}, {row}, 0);"]

    def projection(self, plan: ProjectionPlan, k: str) -> tuple[list[str], str]:
        """The statements computing one projection's ``acc`` this step, and the neuron loop's
        expression of ``acc[j]``."""
        if plan.mode == "elementwise":
            w = self.buffers.constant(f"{k}_w", "int64_t", plan.weights)
            return self._row(plan, k), f"snn_mul({w}[j], (int64_t){k}_x[j])"
        if plan.mode == "pre":
            pre = self.buffers.slot(("pre", plan.proj.name), f"{k}_pre", plan.acc_ctype)
            n = plan.target_size
            return ([f"const {plan.acc_ctype} *{k}_row = {pre} + (t * B + b) * {n};",
                     f"if (t + {AHEAD} < T) snn_prefetch({k}_row + {AHEAD} * B * {n}, "
                     f"{n * SIZEOF[plan.acc_ctype]}, 0);"], f"(int64_t){k}_row[j]")
        acc = f"(int64_t){k}_acc[j]"
        if plan.weight_shift:  # the sums are of w >> shift (kernel_plan): shift them back
            acc = f"snn_shl({acc}, {plan.weight_shift})"
        return self._event(plan, k), acc

    def _event(self, plan: ProjectionPlan, k: str) -> list[str]:
        w = self.buffers.constant(f"{k}_w", plan.weight_ctype, plan.weights)
        acc = self._scratch(f"{k}_acc", plan.acc_ctype, plan.stride)
        conv = plan.proj.kind == "conv"
        src = plan.source
        lines = [f"/* projection '{plan.proj.name}': {plan.proj.kind}, delay {plan.proj.delay} */"]
        lines += self._row(plan, k)
        lines.append(f"const int64_t {k}_nnz = snn_collect_{src.ctype}({k}_x, {src.size}, idx,"
                     " val);")
        bounds = [b for _, b in plan.paths if b]
        if bounds:
            colmax = self.buffers.constant(f"{k}_colmax", "int64_t", plan.colmax)
            lines.append(f"const int64_t {k}_bound = snn_event_bound(idx, val, {k}_nnz, "
                         f"{colmax}, {max(bounds)});")
        geometry = ""
        if conv:
            start = self.buffers.constant(f"{k}_start", "int32_t", plan.conv.start)
            pairs = self.buffers.constant(f"{k}_pairs", "int32_t", plan.conv.pairs)
            geometry = f", {start}, {pairs}"
        branches = []
        for ctype, bound in plan.paths:
            add = f"{self.prefix}{k}_add_{ctype}"
            self.functions += (_conv_add if conv else _dense_add)(add, plan, ctype) + [""]
            if not conv and ctype == plan.acc_ctype:
                body = [f"{add}({acc}, {w}, idx, val, {k}_nnz);"]
            else:
                n = _scratch_size(plan)
                s = self._scratch(f"{k}_s_{ctype}", ctype, n)
                body = [f"{add}({s}, {w}, idx, val, {k}_nnz{geometry});"]
                if conv:  # a scatter adds into every output it reaches: start from zero
                    body.insert(0, f"memset({s}, 0, sizeof(*{s}) * {n});")
                if conv:
                    finish = f"{self.prefix}{k}_finish_{ctype}"
                    self.functions += _conv_finish(finish, plan, ctype) + [""]
                    body.append(f"{finish}({s}, {acc});")
                else:
                    body.append(f"for (int64_t j = 0; j < {n}; j++) {acc}[j] = "
                                f"({plan.acc_ctype}){s}[j];")
            branches.append((f"{k}_bound < {bound}" if bound else None, body))
        if len(branches) == 1:
            return lines + ["{"] + _indent(branches[0][1]) + ["}"]
        for i, (cond, body) in enumerate(branches):
            head = f"if ({cond}) {{" if i == 0 else (f"}} else if ({cond}) {{" if cond
                                                     else "} else {")
            lines += [head] + _indent(body)
        return lines + ["}"]

    def population(self, pp: PopulationPlan, i: int) -> list[str]:
        p = f"p{i}"
        pop, cfg = pp.pop, pp.cfg
        n = pop.size
        lines = [f"/* population '{pop.name}': {n} neurons */"]
        accs = []
        for k_i, proj in enumerate(pp.projections):
            block, expr = self.projection(proj, f"{p}k{k_i}")
            lines += block
            accs.append((proj, expr))
        o = CFamily(index="j", prefix=f"{p}_t", array_prefix=f"{p}_P")
        parts = [contribution(o, expr, proj.proj.weight_exp, proj.bits) for proj, expr in accs]
        bias = None
        if pop.input_bias is not None:
            bias = o.const(np.broadcast_to(pop.input_bias, pop.shape).reshape(-1)
                           if np.ndim(pop.input_bias) else pop.input_bias)
        a = synaptic_input(o, parts, bias, self.plan.dense_bits)
        params = NeuronParams.of(o, pop.neuron, n)
        u_prev = None
        if cfg.has_current:
            u_prev = self._state(f"{p}_u", n) + "[j]"
        v_prev = self._state(f"{p}_v", n) + "[j]"
        u = current(o, cfg, params, u_prev, a)
        s, v = membrane(o, cfg, params, v_prev, u)
        for idx, arr in enumerate(o.arrays):
            self.buffers.constant(f"{p}_P{idx}", "int64_t", arr)
        stores = [f"{p}_u[j] = {u};"] if cfg.has_current else []
        stores.append(f"{p}_v[j] = {v};")
        rows, after = [], []
        for key, ctype, value in (("spikes", pp.spike_ctype, s if s is not None else "0"),
                                  ("u", pp.u_ctype, u), ("v", pp.v_ctype, v)):
            if ctype is None:
                continue
            buf = self.buffers.slot((key, pop.name), f"{p}_out_{key}", ctype)
            target = f"{buf} + (t * B + b) * {n}"
            if key == "spikes" or not STREAM_RECORDS:
                rows.append(f"{ctype} *restrict {buf}_row = {target};")
            else:  # a recorded state: no one reads it here, stream it past the caches
                self._scratch(f"{buf}_row", ctype, n)
                after.append(f"snn_stream({target}, {buf}_row, {n * SIZEOF[ctype]});")
            stores.append(f"{buf}_row[j] = ({ctype}){value};")
        loop = [f"for (int64_t j = 0; j < {n}; j++) {{"] + _indent(o.lines + stores) + ["}"]
        return ["{"] + _indent(lines + rows + loop + after) + ["}"]

    def _state(self, name: str, n: int) -> str:
        self.states.append(name)
        return self._scratch(name, "int64_t", n)

    def write(self) -> KernelSource:
        body = []
        for i, pp in enumerate(self.plan.populations):
            body += self.population(pp, i)
        self._scratch("idx", "int32_t", self.max_source)
        self._scratch("val", "int64_t", self.max_source)
        names = ", ".join(p.pop.name for p in self.plan.populations)
        alloc = [f"{ctype} *{name} = ({ctype} *)snn_alloc(sizeof({ctype}) * {n});"
                 for name, ctype, n in self.scratch]
        alloc.append(f"void *zero = calloc({self.zero_bytes}, 1);")
        ok = " && ".join(["zero"] + [name for name, _, _ in self.scratch])
        sizes = {name: n for name, _, n in self.scratch}
        reset = [f"memset({name}, 0, sizeof(*{name}) * {sizes[name]});" for name in self.states]
        sample = (["if (!ok) {", "#pragma omp atomic write", "    failed = 1;", "    continue;",
                   "}"] + reset
                  + ["for (int64_t t = 0; t < T; t++) {"] + _indent(body) + ["}",
                     "snn_stream_fence();"])
        region = (alloc + [f"const int ok = {ok};", "#pragma omp for schedule(static)",
                           "for (int64_t b = 0; b < B; b++) {"] + _indent(sample) + ["}"]
                  + [f"free({name});" for name, _, _ in self.scratch] + ["free(zero);"])
        entry = ([f"/* group: {names} */",
                  f"int {self.prefix}run(int64_t T, int64_t B, int64_t threads, "
                  "void *const *bufs) {"]
                 + _indent(self.buffers.declarations() + ["int failed = 0;",
                           "#pragma omp parallel num_threads((int)threads) if(threads > 1)",
                           "{"] + _indent(region) + ["}", "return failed;"]) + ["}"])
        text = "\n".join(self.functions + entry) + "\n"
        return KernelSource(text=text, entry=f"{self.prefix}run",
                            constants=[arr for _, _, arr in self.buffers.constants],
                            slots=[key for _, _, key in self.buffers.slots])


def group_source(plan: GroupPlan, prefix: str = "g_") -> KernelSource:
    """The kernel of ``plan`` (see the module docstring); its C names start with ``prefix``."""
    return _GroupWriter(plan, prefix).write()


def translation_unit(kernels: list[KernelSource]) -> str:
    """One C file defining ``kernels`` (distinct prefixes)."""
    return "\n".join([PRELUDE] + [k.text for k in kernels])
