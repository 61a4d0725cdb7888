"""Choosing the design: parallel (every weight on chip) or event-driven (weights on chip or in
external memory), with the reuse factor or the weight placement that makes it fit the part.

The choice is made once per network, from the resource estimate alone (deterministic, no data
needed), and explained in one sentence:

1. Parallel: the smallest power-of-two reuse factor (1, 2, 4, ... up to the largest number of
   products of one projection, beyond which nothing changes) whose design fits, or the given
   reuse factor.
2. Event: all weights on chip if that fits, else the largest dense weight matrices move to
   external memory one by one until it fits (``weights="auto"``); or all on chip / all dense
   matrices external as asked.
3. ``design="auto"`` takes the parallel design when it fits and its cycles per step are at most
   the event design's worst case (every neuron spiking every step), so it is never the slower
   one; otherwise the event design. The event design's cycles at the measured spike rates are
   added to the report when the golden run is known (:meth:`HlsBackend.emit`).

Every candidate is built from one :func:`~.lower.analyze` of the network (no weight is copied
while searching) and estimated analytically, so the search over reuse factors costs
milliseconds even for networks with millions of weights.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from snn_compile.errors import TargetError

from .estimate import bigger_parts, estimate, problems
from .lower import Analysis, build
from .project import Project


@dataclass(frozen=True, eq=False)
class Candidate:
    """One design with its estimate; ``problems`` empty when it fits."""

    project: Project | None
    report: dict | None
    problems: tuple[str, ...]
    label: str

    @property
    def fits(self) -> bool:
        return self.project is not None and not self.problems


@dataclass(frozen=True, eq=False)
class Lowered:
    """What :meth:`HlsBackend.lower` returns: the chosen project, its estimate (worst-case
    activity), why it was chosen and the candidates considered (design -> Candidate)."""

    net: object
    project: Project
    report: dict
    decision: str
    candidates: dict = field(default_factory=dict)

    def alternatives(self, activity: dict | None = None) -> dict:
        """A JSON-able summary of every candidate; with ``activity`` (mean events per step by
        source) also the event design's cycles per step at those rates."""
        out = {}
        for design, c in self.candidates.items():
            out[design] = summary(c)
            if activity is not None and design == "event" and c.project is not None:
                out[design]["cycles_per_step_measured"] = estimate(
                    c.project, self.net.target, activity=activity)["cycles_per_step"]
        return out


def _candidate(a: Analysis, design: str, label: str, **kw) -> Candidate:
    res = a.net.target.resources
    project = build(a, design, axi_bits=res.axi_data_bits, burst_beats=res.axi_burst_beats, **kw)
    report = estimate(project, a.net.target)
    return Candidate(project, report, tuple(problems(report)), label)


def parallel_candidate(a: Analysis, reuse_factor) -> Candidate:
    """The parallel design with ``reuse_factor`` (an int), or with the smallest power of two
    that fits (``"auto"``; the largest useful one when none fits)."""
    if reuse_factor != "auto":
        return _candidate(a, "parallel", f"reuse factor {reuse_factor}",
                          reuse_factor=int(reuse_factor))
    rf = 1
    while True:
        c = _candidate(a, "parallel", f"reuse factor {rf}", reuse_factor=rf)
        if c.fits or rf >= a.max_macs:
            return c
        rf *= 2


def smallest_fitting_reuse(a: Analysis) -> int | None:
    """The smallest power-of-two reuse factor whose parallel design fits, or None."""
    c = parallel_candidate(a, "auto")
    return c.project.reuse_factor if c.fits else None


def event_candidate(a: Analysis, weights: str) -> Candidate:
    """The event design with weights on chip (``"chip"``), every dense matrix external
    (``"external"``) or as few external as make it fit (``"auto"``)."""
    dense = sorted((f for f in a.projections.values() if f.kind == "dense"),
                   key=lambda f: (-f.proj.weight.size * f.weight.bits, f.proj.name))
    has_port = a.net.target.resources.axi_data_bits is not None
    if weights == "external" and not has_port:
        return Candidate(None, None, (f"target {a.net.target.name} has no "
                                      "resources.axi_data_bits (the external memory port)",),
                         "external weights")
    external: list[str] = [f.proj.name for f in dense] if weights == "external" else []
    c = _candidate(a, "event", _placement(external, dense), external=frozenset(external))
    if weights != "auto":
        return c
    for f in dense:
        if c.fits or not has_port:
            break
        external.append(f.proj.name)
        c = _candidate(a, "event", _placement(external, dense), external=frozenset(external))
    return c


def _placement(external: list, dense: list) -> str:
    if not external:
        return "all weights on chip"
    return f"{len(external)} of {len(dense)} dense weight matrices in external memory"


def _cycles(c: Candidate) -> str:
    return f"{c.report['cycles_per_step']:,.0f} cycles per step"


def choose(a: Analysis, *, design: str = "auto", reuse_factor="auto", weights: str = "auto",
           check_fit: bool = True) -> Lowered:
    """The design of the network of ``a`` (see the module docstring); TargetError naming what
    does not fit and what to change when nothing fits (unless ``check_fit`` is False)."""
    part = a.net.target.resources.part or a.net.target.name
    if design == "auto" and reuse_factor != "auto":
        design = "parallel"  # a reuse factor asks for the parallel design
    par = parallel_candidate(a, reuse_factor) if design in ("auto", "parallel") else None
    ev = event_candidate(a, weights) if design in ("auto", "event") else None
    candidates = {name: c for name, c in (("parallel", par), ("event", ev)) if c is not None}

    if design == "parallel":
        chosen = par
        why = f"parallel design as requested, {par.label}: {_cycles(par)}"
        if not par.fits:
            _refuse_parallel(a, par, part, check_fit)
    elif design == "event":
        chosen = ev
        if ev.project is None:
            raise TargetError(f"the event design ({ev.label}) cannot be built for {part}",
                              value="; ".join(ev.problems),
                              hint="add the memory port to the target file")
        why = f"event design as requested, {ev.label}: {_cycles(ev)} at full activity"
        if not ev.fits:
            _refuse(a, f"the event design ({ev.label}) does not fit {part}", ev, check_fit)
    elif par.fits and (not ev.fits or par.report["cycles_per_step"]
                       <= ev.report["cycles_per_step_worst"]):
        chosen = par
        why = (f"parallel design: every weight on chip fits {part} with {par.label}, "
               f"{_cycles(par)}" + (f", no slower than the event design at full activity "
                                    f"({_cycles(ev)})" if ev.fits else ""))
    elif ev.fits:
        chosen = ev
        reason = (f"the parallel design does not fit {part} with any reuse factor (at "
                  f"{par.label}: {'; '.join(par.problems)})" if not par.fits else
                  f"the parallel design needs {par.label} ({_cycles(par)}), slower than the "
                  f"event design even at full activity ({_cycles(ev)})")
        why = f"event design with {ev.label}: {reason}"
    else:
        detail = (f"parallel ({par.label}): {'; '.join(par.problems)}; "
                  f"event ({ev.label}): {'; '.join(ev.problems)}")
        if check_fit:
            used = ev.report["resources"] if ev.report else par.report["resources"]
            raise TargetError(f"no design fits {part}", value=detail,
                              hint=_bigger(used, a.net.target.name))
        chosen = ev if ev.project is not None else par  # the event design is the smaller one
        why = f"{chosen.project.design} design although nothing fits {part} (check_fit=false)"
    return Lowered(net=a.net, project=chosen.project, report=chosen.report, decision=why,
                   candidates=candidates)


def summary(c: Candidate) -> dict:
    if c.report is None:
        return {"label": c.label, "fits": False, "problems": list(c.problems)}
    return {"label": c.label, "fits": c.fits, "problems": list(c.problems),
            "cycles_per_step_worst": c.report["cycles_per_step_worst"],
            "resources": c.report["resources"]}


def _bigger(used: dict, exclude: str) -> str:
    parts = bigger_parts(used, exclude=exclude)
    return (f"use a bigger part ({', '.join(parts)})" if parts else
            "use a bigger part, or prune/quantize the weights further")


def _refuse_parallel(a: Analysis, par: Candidate, part: str, check_fit: bool) -> None:
    if not check_fit:
        return
    rf = smallest_fitting_reuse(a)
    hint = (f"the smallest reuse factor that fits is {rf} (--backend-opt reuse_factor={rf})"
            if rf is not None else
            "no reuse factor makes the parallel design fit; use the event design "
            "(--backend-opt design=event), or " + _bigger(par.report["resources"],
                                                          a.net.target.name))
    raise TargetError(f"the parallel design with {par.label} does not fit {part}",
                      value="; ".join(par.problems), hint=hint)


def _refuse(a: Analysis, message: str, c: Candidate, check_fit: bool) -> None:
    if check_fit:
        raise TargetError(message, value="; ".join(c.problems),
                          hint=_bigger(c.report["resources"], a.net.target.name))
