"""First-order resource and latency estimate of a lowered project, checked before emitting.

The model is deliberately simple and documented term by term so that a user can see why a
design does or does not fit, and why one design was chosen over the other. It is computed from
shapes and widths alone (never from the weight values), so comparing many candidate designs is
cheap. The synthesis report is authoritative; these numbers are for choosing and sizing.

Memories (both designs). A memory of ``depth`` words of ``width`` bits goes to block RAM when
it is large (``lower.memory_storage``): 18 Kb blocks in the best of their aspect ratios
(16K x 1 ... 512 x 36, :data:`BRAM_ASPECTS`), one memory per partition bank (``ARRAY_PARTITION``)
or one wide memory (``ARRAY_RESHAPE``). LUTRAM costs one LUT per bit of width and 64 words of
depth; ``logic`` arrays are registers (one flip-flop per bit) or, for constants, folded away.

Parallel design. Per projection: one adder of the accumulator width per parallel product (a
binary spike selects its weight: a LUT per weight bit; graded values multiply on 25 x 18 DSP
blocks); dense and elementwise products take ``reuse`` cycles, a convolution
``POH * POW * reuse``. Per population: its lanes of neuron logic (decay multipliers on DSPs,
adders, saturation and comparisons in LUTs, a divider for spike counts) and ``ceil(n / lanes)``
cycles. Vivado refuses to unroll a loop or completely partition an array beyond 4096 elements.

Event design. Per projection: an accumulator memory, ``lanes`` adders, and per source event
``words`` cycles (on-chip rows; a read-modify-write of a block RAM needs :data:`RMW_CYCLES`
when a row is one word), ``words + memory_latency_cycles`` (rows in external memory, one burst
per event) or ``KH * KW * words`` (convolution scatter). Per population: one neuron per cycle
(``event_ii`` with pooled convolutions), the state, spike and event-list memories. Cycles per
step follow the number of events, so they are given for measured activity (mean events per
step of every source, e.g. from the golden run) and for the worst case (every neuron spikes).

Both designs: every m_axi port costs an adapter (:data:`AXI_ADAPTER`); a time step also reads
its inputs and writes its outputs one element per cycle.
"""

from __future__ import annotations

import math

from snn_compile.targets import Target

from .lower import memory_storage
from .project import ConvShape, Population, Project, Projection, Rom, Source

UNROLL_LIMIT = 4096
PIPELINE_DEPTH = 4
RMW_CYCLES = 2
DSP_PORTS = (25, 18)
RESOURCE_KEYS = ("lut", "ff", "dsp", "bram_18k")
#: (depth, width) configurations of an 18 Kb block RAM (UG473 7-series memory resources,
#: UG573 UltraScale: the same RAMB18 aspect ratios)
BRAM_ASPECTS = ((16384, 1), (8192, 2), (4096, 4), (2048, 9), (1024, 18), (512, 36))
#: one Vitis HLS m_axi adapter with default FIFO depths (first-order: read/write FIFOs in
#: block RAM, address and burst logic)
AXI_ADAPTER = {"lut": 1200, "ff": 1800, "bram_18k": 2}


def dsp_per_multiplier(a_bits: int, b_bits: int) -> int:
    """DSP slices of one a x b multiplier built from 25 x 18 blocks."""
    pa, pb = DSP_PORTS
    return min(math.ceil(a_bits / pa) * math.ceil(b_bits / pb),
               math.ceil(a_bits / pb) * math.ceil(b_bits / pa))


def bram_blocks(depth: int, width: int) -> int:
    """18 Kb blocks of one memory of ``depth`` x ``width`` bits."""
    if depth <= 0 or width <= 0:
        return 0
    return min(math.ceil(width / w) * math.ceil(depth / d) for d, w in BRAM_ASPECTS)


def memory_cost(storage: str, depth: int, width: int, banks: int = 1) -> dict[str, int]:
    """Cost of ``banks`` memories of ``depth`` x ``width`` (``logic``: registers)."""
    if storage == "bram":
        return {"bram_18k": banks * bram_blocks(depth, width)}
    if storage == "lutram":
        return {"lut": banks * width * math.ceil(depth / 64)}  # LUT6 = 64 x 1 distributed RAM
    if storage == "logic":
        return {"ff": banks * depth * width}
    return {}


def rom_cost(rom: Rom) -> dict[str, int]:
    """A constant array: folded constants (``logic``), LUTRAM or block RAM (``external``: 0)."""
    if rom.storage in ("logic", "external"):
        return {}
    banks = 1 if rom.reshape else rom.factor
    depth = math.ceil(rom.size / rom.factor)
    width = rom.ctype.bits * (rom.factor if rom.reshape else 1)
    return memory_cost(rom.storage, depth, width, banks)


def _add(total: dict, more: dict) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0) + value


def _products(p: Projection, lanes: int) -> dict[str, int]:
    """``lanes`` parallel products and adders of projection ``p``."""
    cost = {"lut": lanes * p.acc.bits}
    if p.source.binary:
        cost["lut"] += lanes * p.weight.bits
    else:
        cost["dsp"] = lanes * dsp_per_multiplier(p.source.value.bits + 1, p.weight.bits)
    return cost


def _neuron_logic(pop: Population) -> dict[str, int]:
    """One lane of neuron logic, times the population's lanes."""
    nr = pop.neuron
    dsp = (nr.u_multiplier * dsp_per_multiplier(nr.u.bits, nr.m_u.ctype.bits)
           + nr.v_multiplier * dsp_per_multiplier(nr.v_state.bits, nr.m_v.ctype.bits))
    lut = nr.sum_u.bits + 2 * nr.sum_v.bits + nr.same.bits + 2 * nr.v.bits + pop.total.bits
    if nr.max_spikes > 1:
        lut += nr.v.bits * nr.thr.ctype.bits  # a combinational divider for the count
    if nr.has_floor:
        lut += nr.v_state.bits
    return {"dsp": nr.lanes * dsp, "lut": nr.lanes * lut}


def _params(pop: Population) -> dict[str, int]:
    cost: dict[str, int] = {}
    for rom in pop.param_roms:
        _add(cost, rom_cost(rom))
    return cost


# ------------------------------------------------------------------------------ parallel

def _parallel_projection(p: Projection) -> tuple[dict, int, int]:
    """(resources, cycles per step, products unrolled per iteration)."""
    if isinstance(p.shape, ConvShape):
        unrolled = p.shape.taps * p.shape.window
        lanes = math.ceil(unrolled / p.reuse)
        cycles = p.shape.poh * p.shape.pow * p.reuse + PIPELINE_DEPTH
        regs = p.shape.c_out
    else:
        unrolled = lanes = p.block
        cycles = p.reuse + PIPELINE_DEPTH
        regs = p.n_out
    cost = _products(p, lanes)
    cost["ff"] = regs * p.acc.bits + lanes * p.acc.bits
    _add(cost, rom_cost(p.weights))
    return cost, cycles, unrolled


def _parallel(project: Project) -> tuple[dict, dict, int, list]:
    total = {key: 0 for key in RESOURCE_KEYS}
    pops, limits = {}, []
    cycles = project.input_size + project.output.size + 1 + PIPELINE_DEPTH  # READ, WRITE, copy
    _add(total, {"ff": project.input.ring * project.input.size * project.input.value.bits})
    for pop in project.populations:
        nr = pop.neuron
        cost: dict[str, int] = {}
        pop_cycles = nr.groups + PIPELINE_DEPTH
        for p in pop.incoming:
            c, cyc, unrolled = _parallel_projection(p)
            _add(cost, c)
            pop_cycles += cyc
            limits.append((p.ident, "products unrolled per pipeline iteration", unrolled,
                           "the products of one output position are unrolled whatever the "
                           "reuse factor: use the event design (design=event)"
                           if p.kind == "conv2d" else "raise the reuse factor"))
        limits.append((pop.ident, "neurons in completely partitioned arrays", nr.n,
                       "use the event design (design=event)"))
        _add(cost, _neuron_logic(pop))
        state_bits = nr.n * (nr.u.bits + nr.v_state.bits)
        _add(cost, {"ff": nr.n * nr.cur.bits + pop.source.ring * nr.n * nr.spike.bits})
        if nr.lanes == nr.n:
            _add(cost, {"ff": state_bits})
        else:
            _add(cost, {"lut": math.ceil(state_bits / 64)})
        _add(cost, _params(pop))
        pops[pop.ident] = _row(cost, pop_cycles, pop)
        cycles += pop_cycles
        _add(total, cost)
    return total, pops, cycles, limits


# ------------------------------------------------------------------------------ event

def events_per_step(src: Source, activity: dict | None) -> float:
    """Mean nonzero entries per step of ``src``: measured, else every entry (worst case)."""
    if activity is None or src.name not in activity:
        return float(src.size)
    return float(activity[src.name])


def _event_projection(p: Projection, events: float, latency: int) -> tuple[dict, float]:
    """(resources, cycles per step) of one event-driven projection."""
    banks = min(p.lanes, p.shape.c_out) if isinstance(p.shape, ConvShape) else p.lanes
    cost = _products(p, p.lanes)
    _add(cost, memory_cost(p.acc_storage, math.ceil(p.n_acc / banks), p.acc.bits, banks))
    _add(cost, rom_cost(p.weights))
    if p.kind == "conv2d":
        per_event = p.shape.kh * p.shape.kw * p.words
    elif p.kind == "elementwise":
        per_event = 1
    elif p.external:
        per_event = p.words + latency
    else:
        per_event = max(p.words, 1 if p.acc_storage == "logic" else RMW_CYCLES)
    return cost, events * per_event + PIPELINE_DEPTH


def _event_ring(src: Source) -> dict[str, int]:
    width = src.idx_bits + src.value.bits
    depth = src.ring * src.size
    return memory_cost(memory_storage(depth * width, depth), src.size, width, src.ring)


def _event(project: Project, activity: dict | None,
           latency: int) -> tuple[dict, dict, float, list]:
    total = {key: 0 for key in RESOURCE_KEYS}
    pops, limits = {}, []
    cycles = 2 * project.input_size + project.output.size + 2 * PIPELINE_DEPTH
    _add(total, _event_ring(project.input))
    for pop in project.populations:
        nr = pop.neuron
        cost: dict[str, int] = {}
        pop_cycles = nr.n * pop.event_ii + PIPELINE_DEPTH
        for p in pop.incoming:
            c, cyc = _event_projection(p, events_per_step(p.source, activity), latency)
            _add(cost, c)
            pop_cycles += cyc
            if isinstance(p.shape, ConvShape) and p.shape.pooled:
                banks = min(p.lanes, p.shape.c_out)
                pop_cycles += math.ceil(p.shape.c_out / banks) * p.shape.oh * p.shape.ow
        _add(cost, _neuron_logic(pop))
        for bits in (nr.u.bits, nr.v_state.bits, nr.spike.bits):
            _add(cost, memory_cost(memory_storage(nr.n * bits, nr.n), nr.n, bits))
        _add(cost, _event_ring(pop.source))
        _add(cost, _params(pop))
        pops[pop.ident] = _row(cost, pop_cycles, pop)
        cycles += pop_cycles
        _add(total, cost)
    return total, pops, cycles, limits


def _row(cost: dict, cycles: float, pop: Population) -> dict:
    return {**{k: cost.get(k, 0) for k in RESOURCE_KEYS}, "cycles_per_step": round(cycles, 1),
            "weight_bits": sum(p.weight_bits for p in pop.incoming),
            "external_weight_bits": sum(p.weight_bits for p in pop.incoming if p.external)}


# ------------------------------------------------------------------------------ report

def estimate(project: Project, target: Target, *, steps: int = 1,
             activity: dict | None = None) -> dict:
    """Resources, cycles, per-population details and the part's budgets (nothing checked).

    ``activity`` (event design): mean events per step by source name (the input's and every
    population's name), e.g. :func:`measured_activity` of the golden run; without it the cycles
    are the worst case (every neuron spikes every step).
    """
    ports = 2 + (project.memory is not None)
    res = target.resources
    if project.design == "parallel":
        total, pops, cycles, limits = _parallel(project)
        worst = cycles
    else:
        latency = res.memory_latency_cycles or 0
        total, pops, cycles, limits = _event(project, activity, latency)
        worst = _event(project, None, latency)[2] if activity is not None else cycles
    for _ in range(ports):
        _add(total, AXI_ADAPTER)
    per_inference = cycles * steps + PIPELINE_DEPTH
    available = {key: getattr(res, key) for key in RESOURCE_KEYS}
    report = {
        "design": project.design,
        "part": project.part,
        "available": available,
        "utilization": {key: round(total[key] / available[key], 4)
                        for key in RESOURCE_KEYS if available[key]},
        "resources": total,
        "populations": pops,
        "reuse_factor": project.reuse_factor,
        "cycles_per_step": round(cycles, 1),
        "cycles_per_step_worst": round(worst, 1),
        "activity": ("measured" if activity is not None and project.design == "event" else
                     "not used (the parallel design's cycles do not depend on it)"
                     if project.design == "parallel" else
                     "worst case (every neuron spikes every step)"),
        "steps": steps,
        "cycles_per_inference": round(per_inference, 1),
        "clock_mhz": project.clock_mhz,
        "latency_us": round(per_inference / project.clock_mhz, 3),
        "inferences_per_s": round(project.clock_mhz * 1e6 / per_inference, 3),
        "limits": [{"node": node, "what": what, "count": count, "limit": UNROLL_LIMIT,
                    "fix": fix} for node, what, count, fix in limits],
        "external_memory": None if project.memory is None else {
            "words": project.memory.words, "word_bits": project.memory.word_bits,
            "bytes": project.memory.bytes, "available_mb": res.external_memory_mb},
    }
    if activity is not None:
        report["events_per_step"] = {k: round(float(v), 2) for k, v in sorted(activity.items())}
    return report


def problems(report: dict) -> list[str]:
    """Why a design does not fit its part (empty when it fits)."""
    out = []
    for item in report["limits"]:
        if item["count"] > item["limit"]:
            out.append(f"{item['node']}: {item['count']} {item['what']}, more than Vivado's "
                       f"{item['limit']}: {item['fix']}")
    over = [f"{k.upper()} {report['resources'][k]} > {report['available'][k]}"
            for k in RESOURCE_KEYS if report["available"][k] is not None
            and report["resources"][k] > report["available"][k]]
    if over:
        out.append(", ".join(over))
    mem = report["external_memory"]
    if mem and mem["available_mb"] is not None and mem["bytes"] > mem["available_mb"] << 20:
        out.append(f"external weights {mem['bytes']} bytes > {mem['available_mb']} MB")
    return out


def measured_activity(project: Project, x, golden) -> dict[str, float]:
    """Mean nonzero entries per step of the input (encoded ``x`` [T, B, n]) and of every
    population's spikes in the ``golden`` trace: what the event design's cycles depend on."""
    import numpy as np

    out = {project.input.name: float(np.count_nonzero(x)) / max(1, x.shape[0] * x.shape[1])}
    for pop in project.populations:
        s = np.asarray(golden.layers[pop.name]["spikes"])
        out[pop.name] = float(np.count_nonzero(s)) / max(1, s.shape[0] * s.shape[1])
    return out


def bigger_parts(used: dict, exclude: str = "") -> list[str]:
    """Shipped FPGA targets whose budgets hold ``used``."""
    from snn_compile.errors import TargetError
    from snn_compile.targets import load_target, target_files

    names = []
    for stem in sorted(target_files()):
        try:
            t = load_target(stem)
        except TargetError:
            continue
        if t.kind != "fpga" or t.name == exclude or t.resources.lut is None:
            continue
        if all(getattr(t.resources, k) is not None and used[k] <= getattr(t.resources, k)
               for k in RESOURCE_KEYS):
            names.append(t.name)
    return names
