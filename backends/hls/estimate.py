"""First-order resource and latency estimate of a lowered project, checked before emitting.

The model is deliberately simple and documented term by term so that a user can see why a
design does not fit:

* Weights in ``bram`` ROMs: one memory of ``factor`` words side by side (width
  ``factor * bits``) and depth ``ceil(size / factor)``, packed into 18 Kb blocks as 1024 x 18 or
  512 x 36, whichever needs fewer. ``lutram`` ROMs cost one LUT per bit of width and 64 words of depth; ``logic`` ROMs
  (reuse factor 1) are constants folded into the adders.
* Synapses: one adder of the accumulator width per parallel product (LUTs = bits); binary spike
  inputs select weights (a LUT per weight bit, no DSP); graded inputs multiply on DSP slices
  (25 x 18 multipliers, the 7-series DSP48E1 and a safe bound for UltraScale).
* Neurons: per lane, the non-trivial decay multipliers on DSPs, the adders/saturation/compare in
  LUTs; states in flip-flops when fully parallel, else LUTRAM.
* Cycles per step: the layers run one after another inside a step; a dense synapse takes
  ``reuse`` cycles, a convolution ``OH * OW * reuse``, a population ``ceil(n / lanes)``, each
  plus a pipeline depth; the window adds reading and writing the step's inputs and outputs.

Vivado refuses to unroll a loop or completely partition an array beyond 4096 elements; those
limits and the part's LUT/FF/DSP/BRAM budgets raise :class:`TargetError` with a suggestion.
"""

from __future__ import annotations

import math

from snn_compile.errors import TargetError
from snn_compile.targets import Target

from .project import Project, Rom, Synapse

UNROLL_LIMIT = 4096
PIPELINE_DEPTH = 4
DSP_PORTS = (25, 18)
RESOURCE_KEYS = ("lut", "ff", "dsp", "bram_18k")


def dsp_per_multiplier(a_bits: int, b_bits: int) -> int:
    """DSP slices of one a x b multiplier built from 25 x 18 blocks."""
    pa, pb = DSP_PORTS
    return min(math.ceil(a_bits / pa) * math.ceil(b_bits / pb),
               math.ceil(a_bits / pb) * math.ceil(b_bits / pa))


def rom_cost(rom: Rom) -> dict[str, int]:
    depth, width = math.ceil(rom.size / rom.factor), rom.factor * rom.ctype.bits
    if rom.storage == "bram":
        blocks = min(math.ceil(width / 18) * math.ceil(depth / 1024),
                     math.ceil(width / 36) * math.ceil(depth / 512))
        return {"bram_18k": blocks}
    if rom.storage == "lutram":
        return {"lut": width * math.ceil(depth / 64)}  # LUT6 = 64 x 1 distributed ROM
    return {}


def _synapse_cost(syn: Synapse) -> tuple[dict[str, int], int, int]:
    """(resources, cycles per step, unrolled products per iteration)."""
    if syn.kind == "dense":
        lanes, cycles, unrolled = syn.block, syn.reuse + PIPELINE_DEPTH, syn.block
        acc_regs = syn.shape.n_out
    else:
        lanes = math.ceil(syn.block / syn.reuse)
        cycles = syn.shape.oh * syn.shape.ow * syn.reuse + PIPELINE_DEPTH
        unrolled, acc_regs = syn.block, syn.shape.c_out
    cost = {"lut": lanes * syn.acc.bits, "ff": acc_regs * syn.acc.bits + lanes * syn.acc.bits}
    if syn.binary_input:
        cost["lut"] += lanes * syn.weights.ctype.bits
    else:
        cost["dsp"] = lanes * dsp_per_multiplier(syn.in_type.bits, syn.weights.ctype.bits)
    _add(cost, rom_cost(syn.weights))
    return cost, cycles, unrolled


def _add(total: dict, more: dict) -> None:
    for key, value in more.items():
        total[key] = total.get(key, 0) + value


def estimate(project: Project, target: Target, steps: int | None = None) -> dict:
    """Resources, cycles, per-layer details and the part's budgets (no limits checked)."""
    steps = project.max_steps if steps is None else steps
    total = {key: 0 for key in RESOURCE_KEYS}
    layers, cycles = {}, project.input_size + project.output_layer.size + PIPELINE_DEPTH
    limits = []
    for layer in project.layers:
        nr = layer.neuron
        cost, syn_cycles, unrolled = _synapse_cost(layer.synapse)
        limits.append((layer.ident, "synapse products unrolled per iteration", unrolled))
        if layer.recurrent is not None:
            rec_cost, rec_cycles, rec_unrolled = _synapse_cost(layer.recurrent)
            _add(cost, rec_cost)
            syn_cycles += rec_cycles
            limits.append((layer.ident, "recurrent products unrolled per iteration", rec_unrolled))
        limits.append((layer.ident, "neurons in completely partitioned arrays", nr.n))
        dsp_lane = (nr.u_multiplier * dsp_per_multiplier(nr.u.bits, nr.m_u.ctype.bits)
                    + nr.v_multiplier * dsp_per_multiplier(nr.v.bits, nr.m_v.ctype.bits))
        lut_lane = nr.sum_u.bits + 2 * nr.sum_v.bits + nr.same.bits + 2 * nr.v.bits
        state_bits = nr.n * (nr.u.bits + nr.v.bits + 1)
        neuron_cost = {"dsp": nr.lanes * dsp_lane, "lut": nr.lanes * lut_lane,
                       "ff": nr.n * layer.summed.bits if layer.summed else nr.n * nr.cur.bits}
        if nr.lanes == nr.n:
            neuron_cost["ff"] += state_bits
        else:
            neuron_cost["lut"] += math.ceil(state_bits / 64)
        if layer.delay:
            neuron_cost["ff"] += nr.n * layer.delay * layer.synapse.out.bits
        if layer.recurrent is not None:
            neuron_cost["ff"] += nr.n * layer.rec_delay
        for rom in layer.roms[1 + (layer.recurrent is not None):]:
            _add(neuron_cost, rom_cost(rom))
        _add(cost, neuron_cost)
        layer_cycles = syn_cycles + nr.groups + PIPELINE_DEPTH
        cycles += layer_cycles
        layers[layer.ident] = {**{k: cost.get(k, 0) for k in RESOURCE_KEYS},
                               "cycles_per_step": layer_cycles,
                               "weight_bits": layer.synapse.weights.bits +
                               (layer.recurrent.weights.bits if layer.recurrent else 0)}
        _add(total, cost)
    per_inference = cycles * steps + PIPELINE_DEPTH
    available = {key: getattr(target.resources, key) for key in RESOURCE_KEYS}
    return {
        "part": project.part,
        "available": available,
        "utilization": {key: round(total[key] / available[key], 4)
                        for key in RESOURCE_KEYS if available[key]},
        "resources": total,
        "layers": layers,
        "reuse_factor": project.reuse_factor,
        "cycles_per_step": cycles,
        "steps": steps,
        "cycles_per_inference": per_inference,
        "clock_mhz": project.clock_mhz,
        "latency_us": per_inference / project.clock_mhz,
        "inferences_per_s": project.clock_mhz * 1e6 / per_inference,
        "limits": [{"layer": ident, "what": what, "count": count, "limit": UNROLL_LIMIT}
                   for ident, what, count in limits],
    }


def check_fits(report: dict, target: Target) -> dict:
    """Return ``report`` unchanged when the design fits ``target``; else TargetError."""
    res = target.resources
    available = report["available"]
    rf = report["reuse_factor"]
    for item in report["limits"]:
        if item["count"] > UNROLL_LIMIT:
            fix = ("raise the reuse factor to at least "
                   f"{rf * math.ceil(item['count'] / UNROLL_LIMIT)}"
                   if "unrolled" in item["what"] else
                   "split the layer: Vivado cannot partition more than 4096 elements completely")
            raise TargetError(f"layer does not fit Vivado's limit of {UNROLL_LIMIT} "
                              f"{item['what']}", node=item["layer"],
                              value=item["count"], hint=fix)
    over = {k: (report["resources"][k], available[k]) for k in RESOURCE_KEYS
            if available[k] is not None and report["resources"][k] > available[k]}
    if over:
        detail = ", ".join(f"{k.upper()} {used} > {avail}" for k, (used, avail) in over.items())
        hints = []
        if set(over) & {"lut", "ff", "dsp"}:
            ratio = max(used / avail for k, (used, avail) in over.items() if k != "bram_18k")
            hints.append(f"raise the reuse factor (try {rf * 2 ** math.ceil(math.log2(ratio + 1e-9) + 1)})")
        bigger = bigger_parts(report["resources"], exclude=target.name)
        hints.append(f"use a bigger part ({', '.join(bigger)})" if bigger else
                     "use a bigger part, or prune/quantize the weights further")
        raise TargetError(f"design does not fit {res.part or target.name}", value=detail,
                          hint="; or ".join(hints))
    return report


def bigger_parts(used: dict, exclude: str = "") -> list[str]:
    """Shipped FPGA targets whose budgets hold ``used``."""
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
