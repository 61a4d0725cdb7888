"""Passes: graph in, graph out, with a written contract; the pipeline is one literal list.

Guide to writing a pass:

* A pass is a function ``run(ir, ctx) -> ir`` that never modifies its input (IR objects are
  frozen; build new ones). ``ctx`` (:class:`Context`) carries the target and the calibration
  data, and collects notes for the report.
* Its module docstring says what it **requires** of its input and what it **guarantees** of its
  output, and whether it keeps the float semantics exactly, up to float rounding, or (for the
  quantizer) within the quantization error it reports.
* :func:`run_pipeline` runs the verifier of the output's IR after every pass and names the pass
  (and the passes before it) in any error.
* Add a pass by writing it in its own module, adding one line to :data:`PIPELINE` with a comment
  on why it sits where it does, and a test that checks its structural effect and that the float
  reference's spikes are unchanged.

Import-time rewrites that need the source format (NIR subgraph flattening, a framework's
discretisation) happen in the importers; everything here works on the IR alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

from ..errors import SnnCompileError
from ..ir.fixed import QNetwork
from ..ir.graph import Graph, verify
from .bias_source import add_bias_sources
from .batchnorm import fold_batch_norm
from .cleanup import drop_output_delays
from .delays import assign_delays
from .group import group_populations
from .identities import drop_identities
from .maxpool import pool_spikes
from .populations import PopulationGraph


@dataclass
class Context:
    """What passes may read (target, calibration data, the float graph) and write (notes).

    ``float_graph`` starts as the imported graph; :func:`run_pipeline` replaces it by each float
    pass's output (same spikes by the passes' contracts), so that later passes and calibration
    see the neuron layers the population graph has (e.g. the OR layers of ``pool_spikes``)."""

    target: Any = None
    calibration: Any = None
    float_graph: Graph | None = None
    notes: list = field(default_factory=list)
    report: list = field(default_factory=list)
    input_report: Any = None  # the quantizer's InputReport


@dataclass(frozen=True)
class Pass:
    name: str
    run: Callable[[Any, Context], Any]


def _quantize(pg, ctx: Context):
    from ..quantize import quantize_populations
    return quantize_populations(pg, ctx)


PIPELINE: tuple[Pass, ...] = (
    # float graph -> float graph
    Pass("drop_identities", lambda g, ctx: drop_identities(g, ctx.notes)),  # first: dropout,
    #   identities and ReLUs on spikes must not hide a batch norm's or max pool's neighbour
    Pass("fold_batch_norm", lambda g, ctx: fold_batch_norm(g, ctx.notes)),  # before grouping:
    #   the folded Linear/Conv2d then folds into a projection like any other
    Pass("pool_spikes", lambda g, ctx: pool_spikes(g, ctx.notes)),  # before grouping: it adds
    #   an OR population, which grouping and the delays must see
    Pass("drop_output_delays", lambda g, ctx: drop_output_delays(g)),  # before grouping: a
    #   delay after the last layer is an output latency, not a projection
    # float graph -> population graph: linear chains folded into projections
    Pass("group_populations", lambda g, ctx: group_populations(g)),
    # the target's timing: lags and hardware delays (needs the folded float delays)
    Pass("assign_delays", lambda pg, ctx: assign_delays(pg, ctx.target)),
    # population graph -> QNetwork (needs the delays for QAT grids' time alignment)
    Pass("quantize", _quantize),
    # a synaptic-current bias as spikes of a constant source, where the target has no such
    # bias (Loihi 2); after quantizing: it needs the integer biases and every population's lag
    Pass("bias_sources", lambda net, ctx: add_bias_sources(net)),
)

#: The passes that rewrite the float graph (the float reference the check runs).
FLOAT_PASSES: tuple[Pass, ...] = PIPELINE[:[p.name for p in PIPELINE].index("group_populations")]

VERIFIERS = {
    Graph: verify,
    PopulationGraph: PopulationGraph.verify,
    QNetwork: QNetwork.verify,
}


def run_pipeline(ir, ctx: Context, passes=PIPELINE):
    """Run ``passes`` in order, verifying after each; errors name the pass and its history."""
    done: list[str] = []
    for p in passes:
        try:
            ir = p.run(ir, ctx)
            VERIFIERS[type(ir)](ir)
            if isinstance(ir, Graph):
                ctx.float_graph = ir
        except SnnCompileError as err:
            if getattr(err, "passes", None) is None:
                err.passes = done + [p.name]
            raise
        done.append(p.name)
    return ir


def float_reference(graph: Graph, target=None) -> Graph:
    """The imported graph after :data:`FLOAT_PASSES`: the float model whose populations a
    compiled network has (what ``check --network`` compares a saved network with)."""
    return run_pipeline(graph, Context(target=target, float_graph=graph), FLOAT_PASSES)


__all__ = ["PIPELINE", "FLOAT_PASSES", "Pass", "Context", "run_pipeline", "float_reference"]
