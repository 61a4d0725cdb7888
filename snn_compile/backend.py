"""The backend contract, and discovery through the ``snn_compile.backends`` entry-point group.

A backend is a class deriving from :class:`Backend`:

* ``name`` and ``description``; ``fixed_point`` (False only for the float reference);
* ``capabilities`` (:class:`Capabilities`): which projection kinds, neuron features, datapath
  rules and graph shapes it runs. :meth:`Backend.check` compares a network with them before
  anything is lowered and raises one :class:`~snn_compile.errors.UnsupportedError` naming the
  node and the missing capability;
* ``options`` (:class:`Option`): typed settings (``--backend-opt reuse_factor=4``), validated
  when the backend is made (``get_backend("hls", reuse_factor=4)``);
* :meth:`lower` (network -> whatever the backend executes; once per compile), then
  :meth:`run_lowered` (a :class:`~snn_compile.trace.Trace` of every population) and
  :meth:`emit` (a project or bundle in a folder, returning a JSON-able summary) on that result.

Built-in backends register exactly like third-party ones (see pyproject.toml): an entry point
``name = "package.module:Class"`` in the group ``snn_compile.backends``, loaded lazily, one at a
time, on first use. ``snn_compile.testing.conformance.check_backend(name)`` proves a backend.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from .datapath.rules import FEATURES, RULES
from .errors import BackendError, UnsupportedError
from .trace import Trace

GROUP = "snn_compile.backends"
ALL_PROJECTIONS = frozenset({"dense", "conv", "elementwise"})


@dataclass(frozen=True)
class Option:
    """A backend setting: ``name``, its type (bool, int, float, str), default and help;
    ``choices`` restricts the values, ``also`` allows extra literal values (e.g. "auto")."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple = ()
    also: tuple = ()

    def parse(self, value):
        """The typed value of ``value`` (text from the command line, or a Python value)."""
        if value in self.also:
            return value
        try:
            if self.type is bool:
                if isinstance(value, str):
                    if value.lower() not in ("true", "false", "1", "0", "yes", "no"):
                        raise ValueError(value)
                    value = value.lower() in ("true", "1", "yes")
                elif not isinstance(value, bool):
                    raise ValueError(value)
            else:
                value = self.type(value)
        except (TypeError, ValueError):
            raise BackendError(f"option '{self.name}' takes a {self.type.__name__}",
                               value=repr(value),
                               hint=self.help + (f" ({', '.join(map(str, self.also))} also "
                                                 "allowed)" if self.also else "")) from None
        if self.choices and value not in self.choices:
            raise BackendError(f"option '{self.name}' must be one of {list(self.choices)}",
                               value=repr(value))
        return value


@dataclass(frozen=True)
class Capabilities:
    """What a backend runs. ``rules``: allowed rule names per kind of the rule table (a kind
    missing from the dict: every rule); ``features``: allowed values per neuron feature (a
    feature missing: every value); ``max_fan_in``: projections into one population."""

    projections: frozenset = ALL_PROJECTIONS
    max_pool: bool = True
    rules: dict = field(default_factory=dict)
    features: dict = field(default_factory=dict)
    graded_input: bool = True
    recurrence: bool = True
    max_fan_in: int | None = None
    datapath: str | None = None  # a shipped target whose arithmetic the network must have
    notes: dict = field(default_factory=dict)  # capability -> why it is missing / what to do

    def allows_rule(self, kind: str, name: str) -> bool:
        return name in self.rules.get(kind, RULES[kind])

    def allows_feature(self, feature: str, value) -> bool:
        return value in self.features.get(feature, FEATURES[feature])


def neuron_features(pop) -> dict[str, Any]:
    """The rule-table feature values a population uses."""
    n = pop.neuron
    return {"reset": n.reset, "reset_timing": n.reset_timing,
            "reset_discards_input": bool(n.reset_discards_input),
            "has_current": bool(n.has_current), "spiking": bool(n.spiking),
            "input_bias": pop.input_bias is not None, "multi_spike": n.max_spikes > 1,
            "membrane_floor": n.v_floor is not None}


def target_gaps(target, caps: Capabilities) -> list[str]:
    """What of ``target``'s datapath ``caps`` does not allow (whatever the network)."""
    out = []
    if caps.datapath is not None:
        from .targets import load_target

        want, got = load_target(caps.datapath).datapath(), target.datapath()
        differ = sorted(f"{section}.{key}" for section in want
                        for key in set(want[section]) | set(got[section])
                        if want[section].get(key) != got[section].get(key))
        if differ:
            out.append(f"the {caps.datapath} datapath (differs in {', '.join(differ[:4])})")
    fmt = target.neuron
    for kind, name in (("overflow", fmt.u_overflow), ("overflow", fmt.v_overflow),
                       ("rounding", fmt.decay_rounding)):
        if not caps.allows_rule(kind, name):
            out.append(f"the {kind} rule '{name}'")
    return out


def missing_capabilities(net, caps: Capabilities) -> list[tuple[str, str]]:
    """``(node, what is missing)`` for everything in ``net`` that ``caps`` does not allow."""
    out = [(net.target.name, gap) for gap in target_gaps(net.target, caps)]
    if not net.input.binary and not caps.graded_input:
        out.append((net.input.name, "graded (non-binary) input"))
    for proj in net.projections:
        if proj.kind not in caps.projections:
            out.append((proj.name, f"{proj.kind} projections"))
        if proj.conv is not None and proj.conv.max_pool is not None and not caps.max_pool:
            out.append((proj.name, "max pooling of synaptic currents"))
    for pop in net.populations:
        if not caps.allows_rule("spike_test", pop.neuron.spike_test):
            out.append((pop.name, f"the spike test '{pop.neuron.spike_test}'"))
        for feature, value in neuron_features(pop).items():
            if not caps.allows_feature(feature, value):
                out.append((pop.name, f"{feature} = {value!r}"))
        if caps.max_fan_in is not None and len(net.incoming(pop.name)) > caps.max_fan_in:
            out.append((pop.name, f"more than {caps.max_fan_in} projections into one "
                                  "population"))
    if not caps.recurrence:
        for group in net.components:
            if net.is_cyclic(group):
                out.append((group[0], "recurrent connections"))
    return out


class Backend(ABC):
    """Runs (and optionally emits) a network on one executor; see the module docstring."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    fixed_point: ClassVar[bool] = True
    golden: ClassVar[bool] = False  # the reference others are checked against (the emulator)
    capabilities: ClassVar[Capabilities] = Capabilities()
    options: ClassVar[tuple[Option, ...]] = ()

    def __init__(self, **options):
        known = {opt.name: opt for opt in self.options}
        for key in options:
            if key not in known:
                raise BackendError(f"backend '{self.name}' has no option '{key}'",
                                   hint=f"options: {', '.join(known) or 'none'}")
        self.settings = {name: opt.parse(options[name]) if name in options else opt.default
                         for name, opt in known.items()}

    def available(self) -> str | None:
        """None when the backend can run here, else a sentence saying what is missing."""
        return None

    def check(self, network) -> None:
        """UnsupportedError naming the first node this backend cannot run, and why."""
        missing = missing_capabilities(network, self.capabilities)
        if missing:
            node, what = missing[0]
            more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
            note = self.capabilities.notes.get(what.split(" = ")[0], "")
            raise UnsupportedError(f"backend '{self.name}' cannot run {what}{more}", node=node,
                                   hint=note or "pick a target and backend that support it, "
                                                "or change the model")

    def lower(self, network):
        """What :meth:`run_lowered` and :meth:`emit` take (default: the network itself)."""
        return network

    @abstractmethod
    def run_lowered(self, lowered, spikes: np.ndarray) -> Trace:
        """Run a lowered network on ``spikes`` [T, B, *input_shape]; every population recorded."""

    def run(self, network, spikes: np.ndarray) -> Trace:
        """Check, lower and run ``network``."""
        if self.fixed_point:
            self.check(network)
        return self.run_lowered(self.lower(network), spikes)

    def emit(self, lowered, out_dir: Path, *, inputs: np.ndarray, golden: Trace | None,
             source_name: str, float_graph=None) -> dict:
        """Write the backend's project or bundle into ``out_dir`` (inside a temporary folder
        the main command moves into place atomically); return a JSON-able summary. The
        default writes nothing: the compiled network itself is always written."""
        return {}


def available_backends() -> list[str]:
    """Names of all discovered backends (nothing is imported)."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def backend_class(name: str) -> type[Backend]:
    """The class registered as ``name``; BackendError when unknown or broken."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise BackendError("unknown backend", value=name,
                           hint=f"available: {', '.join(available_backends())}")
    try:
        cls = matches[0].load()
    except ModuleNotFoundError as exc:  # an optional dependency (extra) is not installed
        if (exc.name or "").split(".")[0] == "snn_compile":  # our own module: a broken install
            raise BackendError(f"backend '{name}' failed to load: {exc}",
                               hint="reinstall snn-compile (make venv)") from exc
        raise BackendError(f"backend '{name}' needs the package '{exc.name}'",
                           hint="install the backends' dependencies: "
                                "pip install 'snn-compile[all]'") from exc
    except Exception as exc:  # report the real cause, never skip silently
        raise BackendError(f"backend '{name}' failed to load: {exc}",
                           hint="reinstall snn-compile (make venv)") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"entry point '{name}' is not a Backend subclass", value=cls)
    return cls


def get_backend(name: str, **options) -> Backend:
    """An instance of backend ``name`` with ``options``; BackendError when unknown or broken."""
    return backend_class(name)(**options)


def parse_options(pairs: list[str]) -> dict[str, str]:
    """``["key=value", ...]`` (``--backend-opt``) as a dict; BackendError when malformed."""
    out = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BackendError("--backend-opt needs KEY=VALUE", value=item)
        out[key.strip()] = value.strip()
    return out
