"""Lowering: a :class:`QNetwork` becomes a Lava network description (registers and arrays).

The result, :class:`LavaNet`, is plain data: a JSON-able manifest and a dict of integer arrays.
The standalone builder (:mod:`.build`) turns exactly this data into Lava processes, in-process
(:mod:`.run`) and in the generated bring-up bundle, so the two cannot drift apart. The manifest
(format 2, fields in BUNDLE.md) lists

* ``populations`` in evaluation order, each one or more neuron processes (``units``, see
  :mod:`.layout`), and ``neurons``: the units' process types and registers (:mod:`.registers`);
* ``synapses``: for every projection (by name) and every pair of source and target units with a
  non-zero block, one synapse process feeding the target unit's ``a_in``, where Lava adds the
  processes' int32 outputs (``lava/magma/core/model/py/ports.py:333-351``).

Per projection of delay ``d`` (the IR's total steps from a spike to its effect):

* ``dense`` -> ``Dense`` (``d = 1``) or ``DelayDense`` (delays ``d - 1``);
* ``elementwise`` -> ``Sparse`` / ``DelaySparse`` (the diagonal in the two Lava orders);
* ``conv`` -> ``Conv`` (``d = 1`` only; weights transposed to ``(C_out, kW, kH, C_in)`` and
  flipped: Lava convolves, PyTorch correlates; ``weight_exp`` must be 0, Lava ignores it).

A graded source (graded input, or a multi-spike population whose spikes are counts) sets
``num_message_bits``. Every value is checked to be exactly what Lava computes; anything Lava
would clip, truncate, wrap differently or ignore raises :class:`UnsupportedError` naming the
node and the value. Facts: ``/work/shared/reference/lava-fixed-point.md`` and the installed
``lava/proc/{lif,dense,sparse,conv}/models.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from snn_compile.backend import ALL_PROJECTIONS, Capabilities, missing_capabilities
from snn_compile.emulator.synapse import row_sum_bound
from snn_compile.errors import UnsupportedError
from snn_compile.ir.fixed import QNetwork, QPopulation, QProjection

from . import registers as reg
from .layout import Layout, Unit, layouts

FORMAT_VERSION = 2
CUSTOM_PROCESS = "SnnLIF"
CUSTOM_NOTE = ("SnnLIF is a Lava fixed_pt process model written by snn-compile; on real Loihi 2 "
               "hardware it needs a custom neuron microcode program (no standard Loihi 2 "
               "compartment has this behaviour).")
BIAS_NOTE = ("a bias on the synaptic current enters as the spikes of a one-neuron LIF that "
             "spikes every step, through projections whose weights are the bias; it arrives "
             "at each population's first aligned step")

CAPABILITIES = Capabilities(
    projections=ALL_PROJECTIONS,
    max_pool=False,
    # every kind listed: a rule added to the table is refused until processes.py has it
    rules={"overflow": ("wrap", "wrap_lava", "saturate_symmetric"),
           "rounding": ("toward_zero",), "spike_test": (">", ">=")},  # processes.SPIKE_TESTS
    features={"input_bias": (False,)},
    graded_input=True,
    recurrence=True,
    datapath="loihi2",
    notes={"input_bias": "Loihi 2 adds biases to v only; quantize for the loihi2 target, which "
                         "adds a synaptic-current bias through a bias-source population "
                         "(features.bias_source)",
           "max pooling of synaptic currents": "Lava has no max over synaptic sums; pool the "
                                               "spikes with an average or sum pool instead"},
)

# The standard Lava LIF computes exactly this neuron; anything else runs on SnnLIF. A zero
# reset in the same step (or immediately, one spike at most) never sets the reset flag r: the
# stored v is 0 or failed the test, so reset_discards_input does not matter here.
STANDARD = {"reset": ("zero",), "reset_timing": ("same_step", "immediate"),
            "spike_test": (">",), "spiking": (True,), "max_spikes": (1,)}


@dataclass
class LavaNet:
    """A lowered network: ``manifest`` (JSON-able), ``params`` (key -> int array) and the
    ``network`` it came from (for the input encoding and the core mapping)."""

    manifest: dict
    params: dict[str, np.ndarray] = field(default_factory=dict)
    network: QNetwork | None = None

    @property
    def custom_populations(self) -> list[str]:
        return [p["name"] for p in self.manifest["populations"]
                if p["process"] == CUSTOM_PROCESS]

    @property
    def custom_models(self) -> list[str]:
        return [CUSTOM_PROCESS] if self.custom_populations else []


class _Params:
    """Arrays for params.npz under unique keys ``<n>:<label>``, referenced as ``params:<key>``."""

    def __init__(self):
        self.data: dict[str, np.ndarray] = {}

    def put(self, label: str, value, dtype=np.int32):
        if value is None or not isinstance(value, np.ndarray):
            return None if value is None else int(value)
        key = f"{len(self.data)}:{label}"
        self.data[key] = np.ascontiguousarray(value.astype(dtype))
        return f"params:{key}"


def check_network(net: QNetwork) -> None:
    """UnsupportedError for the first thing :data:`CAPABILITIES` lacks (the Backend's check)."""
    missing = missing_capabilities(net, CAPABILITIES)
    if missing:
        node, what = missing[0]
        raise UnsupportedError(f"Lava cannot run {what}", node=node,
                               hint=CAPABILITIES.notes.get(what.split(" = ")[0],
                                                           "quantize for the loihi2 target"))


# ----------------------------------------------------------------------------- neurons

def neuron_entry(pop: QPopulation, layout: Layout, unit: Unit, fmt, params: _Params) -> dict:
    """The process and registers of one unit of ``pop`` (its neurons share du, dv and vth)."""
    n, idx, node = pop.neuron, layout.indices(unit), unit.name

    def values(arr):
        return np.broadcast_to(arr, pop.shape).reshape(-1)[idx]

    du, dv = reg.decay_registers(node, int(values(n.decay_u)[0]), int(values(n.decay_v)[0]),
                                 n.has_current, fmt)
    vth = reg.threshold_register(node, int(values(n.threshold)[0]), fmt)
    mant, exp = reg.bias_registers(node, values(n.bias).reshape(unit.lava_shape), fmt)
    floor = None
    if n.v_floor is not None:
        floor = values(n.v_floor)
        if not fmt.v.holds(floor):
            raise UnsupportedError("membrane floor outside the voltage register", node=node,
                                   value=int(floor.min()), hint=f"v is {fmt.v}")
        floor = int(floor[0]) if np.all(floor == floor[0]) else floor.reshape(unit.lava_shape)
    return {
        "name": unit.name, "population": pop.name, "lava_shape": list(unit.lava_shape),
        "process": CUSTOM_PROCESS if custom_reasons(pop) else "LIF",
        "du": du, "dv": dv, "vth": vth,
        "bias_mant": params.put(f"{node}/bias_mant", mant),
        "bias_exp": params.put(f"{node}/bias_exp", exp),
        "reset": n.reset, "reset_timing": n.reset_timing, "spike_test": n.spike_test,
        "reset_discards_input": bool(n.reset_discards_input), "spiking": bool(n.spiking),
        "max_spikes": int(n.max_spikes),
        "v_floor": None if floor is None else params.put(f"{node}/v_floor", floor),
    }


def custom_reasons(pop: QPopulation) -> list[str]:
    """Why ``pop`` needs SnnLIF (empty: Lava's standard LIF computes it exactly)."""
    n = pop.neuron
    out = [f"{key}={getattr(n, key)!r}" for key, allowed in STANDARD.items()
           if getattr(n, key) not in allowed]
    if n.v_floor is not None:
        out.append("membrane floor")
    return out


# ----------------------------------------------------------------------------- synapses

def message_bits(net: QNetwork, source: str) -> int:
    """``num_message_bits`` of a source: 0 for 0/1 spikes, else the payload's width."""
    if source == net.input.name:
        return 0 if net.input.binary else net.input.dtype.bits
    cap = net.population(source).neuron.max_spikes
    return 0 if cap == 1 else cap.bit_length()


def largest_input(net: QNetwork, source: str) -> int:
    if source == net.input.name:
        return max(abs(net.input.dtype.min), abs(net.input.dtype.max))
    return net.population(source).neuron.max_spikes


def _blocks(net, proj, src: Layout, tgt: Layout):
    """``(source unit, target unit, block)`` with the block in the units' Lava orders."""
    if proj.kind == "elementwise":
        yield from _diagonal_blocks(net, proj, src, tgt)
        return
    w = np.asarray(proj.weight, np.int64)
    for tu in tgt.units:
        rows = w[tgt.indices(tu)]
        for su in src.units:
            yield su, tu, rows[:, src.indices(su)]


def _diagonal_blocks(net, proj, src: Layout, tgt: Layout):
    """Elementwise blocks as (rows, cols, values) triples: neuron i of the source feeds neuron i
    of the target, wherever each sits in its own Lava order."""
    w = np.broadcast_to(proj.weight, net.shape_of(proj.source)).reshape(-1).astype(np.int64)
    s_pos, t_pos = src.position(), tgt.position()
    s_starts = np.array([u.start for u in src.units])
    t_starts = np.array([u.start for u in tgt.units])
    for tu_i, tu in enumerate(tgt.units):
        for su_i, su in enumerate(src.units):
            members = np.flatnonzero((np.searchsorted(t_starts, t_pos, "right") - 1 == tu_i)
                                     & (np.searchsorted(s_starts, s_pos, "right") - 1 == su_i))
            yield su, tu, (t_pos[members] - tu.start, s_pos[members] - su.start, w[members])


def synapse_entries(net: QNetwork, proj: QProjection, lay: dict, params: _Params) -> list[dict]:
    """The synapse processes of one projection (one per non-zero unit block)."""
    src, tgt = lay[proj.source], lay[proj.target]
    target = net.target
    delay = reg.extra_delay(proj.name, proj.delay, target)
    bits = message_bits(net, proj.source)
    if proj.kind == "conv":
        return [conv_entry(net, proj, src, tgt, bits, delay, params)]
    exp = reg.weight_exponent(proj.name, proj.weight_exp, target)
    if exp < 0 and len(src.units) > 1:
        raise UnsupportedError("a negative weight_exp from a population split into several "
                               "LIF processes: Lava floors each part's sum, not the total",
                               node=proj.name, value=f"weight_exp {exp}, "
                                                     f"{len(src.units)} source processes",
                               hint="quantize with one decay/threshold per layer")
    sparse = proj.kind == "elementwise"
    out = []
    for su, tu, block in _kept_blocks(list(_blocks(net, proj, src, tgt)), sparse):
        values = block[2] if sparse else block
        name = proj.name if len(src.units) == len(tgt.units) == 1 else \
            f"{proj.name}[{su.name}->{tu.name}]"
        mode = reg.sign_mode(proj.name, values, target)
        row_sum = _row_sum(block, tu.size, sparse)
        reg.check_pre_shift_sum(proj.name, largest_input(net, proj.source), row_sum, exp)
        entry = {
            "name": name, "projection": proj.name, "source": su.name, "target": tu.name,
            "process": ("DelaySparse" if delay else "Sparse") if sparse else
                       ("DelayDense" if delay else "Dense"),
            "weight_exp": exp, "sign_mode": mode,
            "num_weight_bits": target.weights.type.bits - 1, "num_message_bits": bits,
            "delay": delay, "flatten_input": len(su.lava_shape) > 1,
            "reshape_output": list(tu.lava_shape) if len(tu.lava_shape) > 1 else None,
        }
        if sparse:
            rows, cols, vals = block
            entry.update(weights=params.put(f"{name}/values", vals),
                         rows=params.put(f"{name}/rows", rows),
                         cols=params.put(f"{name}/cols", cols),
                         matrix_shape=[tu.size, su.size])
        else:
            entry["weights"] = params.put(f"{name}/weights", block)
        out.append(entry)
    return out


def _kept_blocks(blocks: list, sparse: bool) -> list:
    """The blocks with a non-zero weight; a target unit whose blocks are all zero keeps its
    first one (every neuron process needs a connected input, and a zero block adds 0)."""
    def nonzero(block):
        return bool(np.any(block[2] if sparse else block))
    kept = [b for b in blocks if nonzero(b[2])]
    fed = {tu.name for _, tu, _ in kept}
    for b in blocks:
        if b[1].name not in fed:
            kept.append(b)
            fed.add(b[1].name)
    order = {id(b): i for i, b in enumerate(blocks)}
    return sorted(kept, key=lambda b: order[id(b)])


def _row_sum(block, rows: int, sparse: bool) -> int:
    if sparse:
        r, _, v = block
        return int(np.bincount(r, np.abs(v), minlength=rows).max(initial=0))
    return int(np.abs(block).sum(axis=1).max(initial=0))


def conv_entry(net, proj, src: Layout, tgt: Layout, bits: int, delay: int,
               params: _Params) -> dict:
    geo = proj.conv
    if delay:
        raise UnsupportedError("Lava's Conv has no synaptic delay", node=proj.name,
                               value=f"delay {proj.delay}",
                               hint="a convolution delivers in one step on Loihi 2")
    if proj.weight_exp != 0:
        raise UnsupportedError("Lava's Conv ignores weight_exp (lava issue #803)",
                               node=proj.name, value=proj.weight_exp,
                               hint="quantize with weights.conv_exp = false (loihi2 does)")
    if geo.max_pool is not None:
        raise UnsupportedError("Lava's Conv has no max pooling", node=proj.name)
    w = np.asarray(proj.weight, np.int64)
    wt = net.target.weights.type
    if w.min(initial=0) < wt.min or w.max(initial=0) > wt.max:
        raise UnsupportedError(f"conv weight outside {wt}", node=proj.name,
                               value=int(w.flat[np.argmax(np.abs(w))]))
    bound = largest_input(net, proj.source) * row_sum_bound(proj)
    if bound >= reg.INT32_LIMIT:
        raise UnsupportedError("convolution sum can exceed int32 in Lava's Conv (float64 -> "
                               "int32)", node=proj.name, value=bound, hint="use fewer input bits")
    (su,), (tu,) = src.units, tgt.units
    # IR (C_out, C_in/g, kH, kW) correlation -> Lava (C_out, kW, kH, C_in/g) convolution.
    lava_w = w.transpose(0, 3, 2, 1)[:, ::-1, ::-1, :]
    return {
        "name": proj.name, "projection": proj.name, "source": su.name, "target": tu.name,
        "process": "Conv", "weights": params.put(f"{proj.name}/weights", lava_w),
        "weight_exp": 0, "sign_mode": None, "num_weight_bits": wt.bits - 1,
        "num_message_bits": bits, "delay": 0, "flatten_input": False, "reshape_output": None,
        "input_shape": list(su.lava_shape),
        "kernel_layout": "(C_out, kW, kH, C_in/groups), flipped: Lava convolves",
        "stride": list(geo.stride[::-1]), "padding": list(geo.padding[::-1]),
        "dilation": list(geo.dilation[::-1]), "groups": int(geo.groups),
    }


# ----------------------------------------------------------------------------- network

def lower(net: QNetwork) -> LavaNet:
    """Lower ``net`` to a :class:`LavaNet`; UnsupportedError when Lava cannot run it exactly."""
    check_network(net)
    target, fmt = net.target, net.target.neuron
    if not net.input.binary and net.input.dtype.bits > target.features.input.bits:
        raise UnsupportedError("graded input wider than Lava's spike payload",
                               node=net.input.name, value=str(net.input.dtype),
                               hint=f"at most {target.features.input}")
    lay = layouts(net, target.features.neuron_groups)
    params = _Params()
    populations, neurons = [], []
    for pop in net.in_order():
        layout = lay[pop.name]
        reasons = custom_reasons(pop)
        populations.append({
            "name": pop.name, **layout.manifest(),
            "order": params.put(f"{pop.name}/order", layout.order),
            "units": [u.name for u in layout.units], "groups": len(layout.units),
            "process": CUSTOM_PROCESS if reasons else "LIF", "custom_reasons": reasons,
            "spiking": bool(pop.neuron.spiking), "max_spikes": int(pop.neuron.max_spikes),
        })
        neurons += [neuron_entry(pop, layout, unit, fmt, params) for unit in layout.units]
    synapses = [entry for proj in sorted(net.projections, key=lambda p: p.name)
                for entry in synapse_entries(net, proj, lay, params)]
    inp = lay[net.input.name]
    out = net.output_population
    manifest = {
        "format": "snn-compile-lava-network",
        "format_version": FORMAT_VERSION,
        "target": target.name,
        "run_config": {"simulation": "Loihi2SimCfg(select_tag='fixed_pt')",
                       "hardware": "Loihi2HwCfg()"},
        "timing": {"synapse_delay": target.timing.synapse_delay,
                   "monitor_rows": "row t = Lava time step t+1; v is read after the reset"},
        "input": {"name": net.input.name, **inp.manifest(),
                  "order": params.put("input/order", inp.order),
                  "unit": inp.units[0].name, "dtype": str(net.input.dtype),
                  "scale": float(net.input.scale), "binary": net.input.binary,
                  "range": [int(v) for v in net.input.value_range],
                  "saturate": bool(net.input.saturate),
                  "num_message_bits": message_bits(net, net.input.name),
                  "process": "RingBuffer"},
        "output": {"population": out.name, "state": "spikes" if out.neuron.spiking else "v"},
        "populations": populations,
        "neurons": neurons,
        "synapses": synapses,
    }
    lowered = LavaNet(manifest=manifest, params=params.data, network=net)
    custom = lowered.custom_populations
    manifest["custom_neuron"] = {"process": CUSTOM_PROCESS, "populations": custom,
                                 "note": CUSTOM_NOTE} if custom else None
    bias = net.metadata.get("bias_source")
    manifest["bias_source"] = None if bias is None else {
        "population": bias, "note": BIAS_NOTE,
        "projections": [p.name for p in net.outgoing(bias) if p.target != bias]}
    return lowered


__all__ = ["LavaNet", "lower", "check_network", "CAPABILITIES", "FORMAT_VERSION",
           "CUSTOM_PROCESS"]
