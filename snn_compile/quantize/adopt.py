"""Adoption of quantization-aware trained populations: a neuron with a
:class:`~snn_compile.ir.nodes.StateGrid` is not quantized but taken as it is, after checking that
the target computes exactly what the grid describes and that every incoming weight
``W * weight_scale`` is an integer of the target's weight grid."""

from __future__ import annotations

import numpy as np

from ..errors import QuantizationError
from ..ir.fixed import QNeuron, QPopulation
from ..targets import Target
from . import registers as reg
from .neuron import FloatNeuron, check_model, map_features
from .population import LayerReport, quantize_projection
from .scales import exponent_range, weight_grid


def grid_datapath(target: Target, is_conv: bool) -> dict:
    """The target's datapath as :class:`~snn_compile.ir.nodes.StateGrid` fields."""
    fmt, acc = target.neuron, target.accumulator
    return {"activation_shift": fmt.activation_shift,
            "synapse_bits": acc.conv.bits if is_conv else acc.dense.bits,
            "recurrent_bits": acc.dense.bits, "intermediate_bits": acc.intermediate.bits,
            "decay_bits": fmt.decay_bits, "rounding": fmt.decay_rounding,
            "u_bits": fmt.u.bits, "u_overflow": fmt.u_overflow,
            "v_bits": fmt.v.bits, "v_overflow": fmt.v_overflow}


def adopt_population(pg, pop, target: Target):
    """``(QPopulation, [QProjection], LayerReport)`` of a grid population, unchanged."""
    node, grid = pop.node, pop.node.grid
    neuron = FloatNeuron.of(node)
    name = neuron.name
    check_model(neuron, target)
    neuron, custom = map_features(neuron, target)
    notes = [f"quantization-aware grid (trained for '{grid.target}') adopted as is: every "
             "spike equals the float reference's"] + neuron.notes
    projections = pg.incoming(pop.name)
    if len(projections) != 1 or projections[0].float_delay != 0:
        raise QuantizationError("a quantization-aware layer must have exactly one feed-forward "
                                "synapse", node=name,
                                value=f"{len(projections)} projections")
    proj = projections[0]
    is_conv = proj.kind == "conv"
    _check_datapath(grid, target, is_conv, pop.lag, name)
    if np.any(pop.bias):
        raise QuantizationError("a grid layer's synapse carries a bias", node=name,
                                value=f"max |bias| = {np.abs(pop.bias).max():.4g}",
                                hint="fold it into the grid's bias (snn_compile.qat.convert does)")
    even, top = weight_grid(target, [proj.weight])
    s_w = np.broadcast_to(grid.weight_scale, neuron.shape)
    s_rows = s_w.reshape(neuron.shape[0], -1)[:, 0] if is_conv else s_w.reshape(-1)
    _check_on_grid(proj.weight, s_rows, even, top, name, "weight")
    qproj, _, w_range = quantize_projection(proj, s_w, grid.weight_exp, even, top, neuron.shape)
    _check_values(grid, target, name)
    qneuron = QNeuron(
        shape=neuron.shape, decay_u=grid.decay_u, decay_v=grid.decay_v,
        threshold=grid.threshold, bias=grid.bias, reset=neuron.reset,
        reset_timing=neuron.reset_timing, reset_discards_input=neuron.reset_discards_input,
        spike_test=neuron.spike_test, spiking=True, has_current=neuron.cuba)
    scale = grid.scale
    qpop = QPopulation(name=name, neuron=qneuron, lag=pop.lag,
                       scale=np.array(scale if np.ndim(scale) == 0
                                      else np.broadcast_to(scale, neuron.shape)))
    k = 1 << grid.decay_bits
    report = LayerReport(
        name=name, neuron=neuron.kind, scale=float(np.max(scale)), weight_exp=grid.weight_exp,
        weight_range=w_range, weight_rms_error=0.0, threshold=float(np.max(neuron.threshold)),
        threshold_int=int(grid.threshold.max()), threshold_rel_error=0.0,
        decay_v=(float(neuron.beta.max()), float(grid.decay_v.max()) / k),
        decay_u=(float(neuron.alpha.max()), float(grid.decay_u.max()) / k),
        bias_max_abs_error=0.0, headroom_v=None, headroom_u=None, custom_neuron=custom,
        notes=notes)
    return qpop, [qproj], report


def _check_datapath(grid, target: Target, is_conv: bool, lead: int, name: str) -> None:
    """The target must compute exactly what the grid describes."""
    expected = grid_datapath(target, is_conv) | {"lead": lead}
    differ = [f"{key} {getattr(grid, key)} vs {value}" for key, value in expected.items()
              if getattr(grid, key) != value]
    lo, hi = exponent_range(target, is_conv)
    if not lo <= grid.weight_exp <= hi:
        differ.append(f"weight_exp {grid.weight_exp} outside {lo}..{hi}")
    if differ:
        raise QuantizationError(f"the layer was trained for target '{grid.target}', whose "
                                f"arithmetic differs from '{target.name}'", node=name,
                                value="; ".join(differ),
                                hint=f"prepare the model for '{target.name}' "
                                     "(snn_compile.qat.prepare_qat) and fine-tune it again")


def _check_on_grid(w: np.ndarray, s_rows: np.ndarray, even: bool, top: int, name: str,
                   what: str) -> None:
    """Every ``W * s_w`` must be an integer of the target's weight range (and even if needed)."""
    exact = w.reshape(len(s_rows), -1) * s_rows.reshape(-1, 1)
    ints = np.rint(exact)
    off = np.abs(exact - ints).max(initial=0.0)
    low = -top - (2 if even else 1)
    if off > 1e-3 or ints.min(initial=0) < low or ints.max(initial=0) > top or (
            even and np.any(ints % 2)):
        raise QuantizationError(f"a {what} is off the layer's fixed-point grid", node=name,
                                value=f"max |W*s_w - round| = {off:.3g}, range "
                                      f"[{ints.min(initial=0):.0f}, {ints.max(initial=0):.0f}] "
                                      f"vs [{low}, {top}]{', even' if even else ''}",
                                hint="export the model with snn_compile.qat.export, which puts "
                                     "the weights on the grid")


def _check_values(grid, target: Target, name: str) -> None:
    """Threshold, bias and decays must be register values of the target."""
    fmt = target.neuron
    problems = []
    if reg.threshold_mantissa(grid.threshold, fmt) is None:
        problems.append(f"threshold {grid.threshold.min()}..{grid.threshold.max()}")
    if not reg.bias_fits(grid.bias, fmt):
        problems.append(f"bias {grid.bias.min()}..{grid.bias.max()}")
    for key, (lo, hi) in (("decay_u", fmt.u_decay_range), ("decay_v", fmt.v_decay_range)):
        value = getattr(grid, key)
        if value.min() < lo or value.max() > hi:
            problems.append(f"{key} {value.min()}..{value.max()} outside {lo}..{hi}")
    if problems:
        raise QuantizationError(f"grid values do not fit target '{target.name}'", node=name,
                                value="; ".join(problems))
