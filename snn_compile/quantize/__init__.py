"""Post-training quantization: float IR + target (+ calibration data) -> fixed-point QNetwork.

:func:`quantize` runs the lowering pipeline of :mod:`snn_compile.passes` (group populations,
assign delays, quantize). Per population (:mod:`.population`): a weight scale over all incoming
projections, an exponent and a threshold landed on its grid (:mod:`.scales`), registers in the
target's formats (:mod:`.registers`), features mapped onto the target (:mod:`.neuron`). A neuron
that carries a :class:`~snn_compile.ir.nodes.StateGrid` (quantization-aware training) is adopted
unchanged instead (:mod:`.adopt`). Everything that cannot be represented is an error naming the
layer and the value; nothing is clipped silently. :class:`~.population.LayerReport` records
scale, weight error, threshold and decay rounding, and the headroom on the calibration data.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from ..errors import UnsupportedError
from ..ir.fixed import QNetwork
from ..ir.graph import Graph
from ..passes import Context, run_pipeline
from ..targets import Target
from .adopt import adopt_population, grid_datapath
from .calibration import (
    InputReport, check_calibration, input_cost, input_encoding, state_ranges,
)
from .population import LayerReport, quantize_population
from .scales import round_grid, weight_grid

__all__ = ["quantize", "Quantized", "LayerReport", "InputReport", "grid_datapath", "round_grid",
           "weight_grid"]


@dataclass
class Quantized:
    """The quantized network, one :class:`LayerReport` per population, the input encoding's
    :class:`~.calibration.InputReport` (``input.costs_accuracy()`` is the verdict hook), the
    notes of the passes and the importer (NIR convention variant, hints, folds) and the float
    graph as the float passes left it: same spikes as the imported one, and a float layer for
    every population (e.g. the OR layers of max pooling of spikes), so compare with it."""

    network: QNetwork
    report: list[LayerReport]
    input: InputReport | None = None
    notes: list = field(default_factory=list)
    float_graph: Graph | None = None  # after the float passes: every population has its layer

    def report_dict(self) -> list[dict]:
        return [asdict(r) for r in self.report]


def quantize(graph: Graph, target: Target, calibration: np.ndarray | None = None,
             *, source_sha256: str | None = None) -> Quantized:
    """Quantize ``graph`` for ``target``; ``calibration`` is sample input [T, B, *input_shape]."""
    graph.shapes  # verify
    if calibration is not None:
        calibration = check_calibration(calibration, graph.inputs[0].shape)
    ctx = Context(target=target, calibration=calibration, float_graph=graph)
    network = run_pipeline(graph, ctx)
    if source_sha256:
        network = network.replace(metadata={**network.metadata, "source_sha256": source_sha256})
    if ctx.input_report is not None and calibration is not None:
        input_cost(ctx.float_graph, calibration, network.input, ctx.input_report)
    return Quantized(network=network, report=ctx.report, input=ctx.input_report,
                     notes=_import_notes(graph) + ctx.notes, float_graph=ctx.float_graph)


def _import_notes(graph: Graph) -> list[str]:
    """What the importer decided that a report must show (NIR convention variant, hints)."""
    meta, out = graph.metadata, []
    sem = meta.get("nir_convention")
    if sem:
        out.append(f"NIR convention {sem['name']}: dt {sem['dt']:g}, {sem['decay']} decay, "
                   f"reset {sem['reset']} ({sem['reset_timing']}), spike test "
                   f"'{sem['spike_test']}', max spikes {sem['max_spikes'] or 'uncapped'}"
                   + (f", membrane floor {sem['v_floor']} on {sem['floor_kinds']}"
                      if sem.get("v_floor") else ""))
    out += [f"hint: {h}" for h in meta.get("hints", ())]
    return out


def quantize_populations(pg, ctx: Context) -> QNetwork:
    """The lowering pipeline's last pass: population graph -> QNetwork (reports into ctx)."""
    target, calibration = ctx.target, ctx.calibration
    encoding, ctx.input_report = input_encoding(pg, target, calibration)
    fed_by_input = {p.target for p in pg.projections if p.source == pg.input.name}
    if not encoding.binary:
        gridded = [p.name for p in pg.populations
                   if p.name in fed_by_input and getattr(p.node, "grid", None) is not None]
        if gridded:
            raise UnsupportedError("a quantization-aware (grid) input layer takes 0/1 spikes "
                                   "only", node=gridded[0], hint="encode the input as spikes")
    ranges = state_ranges(ctx.float_graph, pg, calibration) if calibration is not None else {}
    unit = 1.0 / encoding.scale
    populations, projections = [], []
    for pop in pg.populations:
        if getattr(pop.node, "grid", None) is not None:
            qpop, qprojs, report = adopt_population(pg, pop, target)
        else:
            qpop, qprojs, report = quantize_population(pg, pop, target, unit,
                                                       ranges.get(pop.name))
        populations.append(qpop)
        projections += qprojs
        ctx.report.append(report)
    meta = {k: v for k, v in pg.metadata.items() if k == "output_delay"}
    return QNetwork(input=encoding, populations=tuple(populations),
                    projections=tuple(projections), output=pg.output, target=target,
                    metadata=meta)
