"""Conformance kit: prove that a backend computes what the emulator computes, bit for bit.

    from snn_compile.testing.conformance import check_backend
    report = check_backend("mybackend")          # AssertionError on any mismatch
    print(report.summary())

:func:`check_backend` draws random fixed-point networks covering every feature of the rule
table (:func:`~snn_compile.testing.networks.random_network`: delays, a synaptic-current bias,
graded input, recurrent, feedback and skip projections, elementwise shortcuts, multi-spike
output, membrane floors, non-spiking readouts, wrap and saturation) on every target variant the
backend may run, plus one target variant per datapath rule (each overflow and rounding rule of
:data:`~snn_compile.datapath.rules.RULES`). For each network the backend must either

* run it and return a :class:`~snn_compile.trace.Trace` whose every spike, ``u`` and ``v``
  equals the emulator's, or
* refuse it cleanly: ``backend.check(network)`` raises
  :class:`~snn_compile.errors.UnsupportedError` because its declared
  :class:`~snn_compile.backend.Capabilities` lack something the network uses.

The report lists what ran, what was refused and why, and which rules and features the backend
exercised; a rule or feature value the backend neither ran nor declared unsupported is a failure
(``require_coverage``).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import numpy as np

from ..backend import Backend, get_backend, missing_capabilities, neuron_features
from ..compare import traces_identical
from ..datapath.rules import FEATURES, RULES
from ..emulator import run_network
from ..errors import SnnCompileError, UnsupportedError
from ..targets import load_target
from .networks import random_network, random_spikes

BASE_TARGETS = ("loihi2", "cpu", "xc7z020")


def rule_variants(base: str) -> list[tuple[str, dict]]:
    """``(label, overrides)``: the base target, one variant per overflow/rounding rule, and one
    per reset timing or spike test the base's standard neuron lacks (a backend may run those
    through a custom neuron program, as Lava does on loihi2; the datapath stays the base's)."""
    out = [(base, {})]
    for name in RULES["overflow"]:
        out.append((f"{base}+overflow={name}", {"neuron.u_overflow": name,
                                                 "neuron.v_overflow": name}))
    for name in RULES["rounding"]:
        out.append((f"{base}+rounding={name}", {"neuron.decay_rounding": name}))
    feats = load_target(base).features
    for key, have, values in (("reset_timings", feats.reset_timings, FEATURES["reset_timing"]),
                              ("spike_tests", feats.spike_tests, RULES["spike_test"])):
        for name in values:
            if name not in have:
                out.append((f"{base}+{key}={name}", {f"features.{key}": [name]}))
    return out


@dataclass
class ConformanceReport:
    backend: str
    ran: int = 0
    refused: Counter = field(default_factory=Counter)
    failures: list = field(default_factory=list)
    covered: set = field(default_factory=set)      # (kind, name) run bit-exactly
    declined: set = field(default_factory=set)     # (kind, name) the capabilities refuse

    def summary(self) -> str:
        lines = [f"backend '{self.backend}': {self.ran} networks identical to the emulator, "
                 f"{sum(self.refused.values())} refused, {len(self.failures)} failed"]
        lines += [f"  refused ({count}x): {why}" for why, count in self.refused.most_common()]
        lines += [f"  FAILED: {f}" for f in self.failures]
        return "\n".join(lines)

    def uncovered(self) -> list[tuple[str, str]]:
        """Rules and feature values neither run nor declared unsupported."""
        wanted = {(k, n) for k, table in RULES.items() for n in table}
        wanted |= {(f, repr(v)) for f, values in FEATURES.items() for v in values}
        return sorted(wanted - self.covered - self.declined)


def _uses(net) -> set[tuple[str, str]]:
    """The rule-table entries a network exercises."""
    fmt = net.target.neuron
    used = {("overflow", fmt.u_overflow), ("overflow", fmt.v_overflow),
            ("rounding", fmt.decay_rounding), ("overflow", "wrap")}
    for pop in net.populations:
        used.add(("spike_test", pop.neuron.spike_test))
        used |= {(f, repr(v)) for f, v in neuron_features(pop).items()}
    return used


def _declined(backend: Backend) -> set[tuple[str, str]]:
    caps = backend.capabilities
    out = set()
    for kind, table in RULES.items():
        out |= {(kind, n) for n in table if not caps.allows_rule(kind, n)}
    for feature, values in FEATURES.items():
        out |= {(feature, repr(v)) for v in values if not caps.allows_feature(feature, v)}
    return out


def check_backend(backend: str | Backend, *, targets=BASE_TARGETS, networks: int = 12,
                  seed: int = 0, steps: int = 10, batch: int = 2, options: dict | None = None,
                  require_coverage: bool = True, raise_on_failure: bool = True
                  ) -> ConformanceReport:
    """Run the conformance suite on ``backend`` (a name or an instance); see the module doc."""
    if isinstance(backend, str):
        backend = get_backend(backend, **(options or {}))
    report = ConformanceReport(backend=backend.name)
    report.declined = _declined(backend)
    rng = np.random.default_rng(seed)
    for base in targets:
        for label, overrides in rule_variants(base):
            try:
                target = load_target(base, overrides)
            except SnnCompileError:
                continue  # a variant the base's other fields make invalid
            for i in range(networks if not overrides else max(2, networks // 4)):
                net = random_network(rng, target)
                spikes = random_spikes(rng, net, steps=steps, batch=batch)
                _one(backend, net, spikes, f"{label} #{i} {net.metadata['features']}", report)
    if require_coverage and report.uncovered():
        report.failures.append(f"neither run nor declared unsupported: {report.uncovered()}")
    if raise_on_failure and report.failures:
        raise AssertionError(report.summary())
    return report


def _one(backend: Backend, net, spikes, label: str, report: ConformanceReport) -> None:
    missing = missing_capabilities(net, backend.capabilities)
    try:
        backend.check(net)
    except UnsupportedError as exc:
        if missing:
            report.refused[missing[0][1]] += 1
        else:
            report.refused[str(exc).split(":", 1)[-1].strip()[:80]] += 1
        return
    if missing:
        report.failures.append(f"{label}: check() passed a network using {missing[0][1]}")
        return
    try:
        got = backend.run_lowered(backend.lower(net), spikes)
    except UnsupportedError as exc:  # a refusal found while lowering (e.g. a register range)
        report.refused[f"lowering: {str(exc)[:80]}"] += 1
        return
    except Exception as exc:  # noqa: BLE001 - any crash is a conformance failure
        report.failures.append(f"{label}: {type(exc).__name__}: {exc}")
        return
    want = run_network(net, spikes)
    mismatch = traces_identical(want, got)
    if mismatch is not None:
        report.failures.append(f"{label}: {mismatch}")
        return
    report.ran += 1
    report.covered |= _uses(net)
