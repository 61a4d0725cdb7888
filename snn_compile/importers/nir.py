"""Import a NIR graph (``.nir``) into the discrete-time float IR.

NIR stores continuous-time equations and nothing about how to discretise them, so the same file
means different spike trains in different frameworks. :func:`load_nir` therefore requires the
*convention* of the framework whose behaviour the imported graph must reproduce, and never
guesses. Every convention is one entry of :data:`CONVENTIONS`.

NIR neurons (continuous time, ``S`` the input, ``z`` the output spikes)::

    LIF      tau dv/dt = (v_leak - v) + r S;          z = H(v - v_threshold); v <- v_reset
    IF           dv/dt = r S;                         (same spike and reset)
    LI       tau dv/dt = (v_leak - v) + r S;          output v
    CubaLIF  tau_syn dI/dt = -I + w_in S;  tau_mem dv/dt = (v_leak - v) + r I;   (spike, reset)

Each convention turns them into the IR's per-step form (``beta`` the membrane decay, ``g`` the
input gain, ``alpha`` the synaptic decay)::

    v[t] = beta * v[t-1] + g * S[t] + (1 - beta) * (v_leak - v_reset)     (LIF, LI)
    i[t] = alpha * i[t-1] + g_syn * g_mem * S[t]                          (CubaLIF current,
    v[t] = beta * v[t-1] + i[t] + (1 - beta) * (v_leak - v_reset)          scaled by g_mem)

with the membrane measured from ``v_reset`` (so a reset "to v_reset" is the IR's reset to zero and
the threshold becomes ``v_threshold - v_reset``; the IR starts every membrane at 0, i.e. at
``v_reset``: a framework that starts elsewhere with ``v_reset`` different raises
UnsupportedError). A gain other than 1 becomes a :class:`~snn_compile.ir.Scale` node named
``<neuron>.gain`` in front of the neuron. The decay is ``1 - dt/tau`` (forward Euler) or
``exp(-dt/tau)`` (exact exponential), per convention.

Conventions (what each framework's own simulation does with the parameters its exporter writes;
see :data:`CONVENTIONS` for the table). Spike, reset and count rules are the IR's (see
:mod:`snn_compile.ir.nodes`): ``immediate`` is the textbook reset right after each spike,
``same_step``/``next_step`` are snnTorch's ``reset_delay=False``/``True`` (with its re-test of the
stored membrane).

``snntorch`` (1.0.0; exporter hard-codes ``dt = 1e-4``, ``r = tau/dt``, ``w_in = tau_syn/dt``)
    ``beta = 1 - dt/tau``, ``g = r dt/tau``; CubaLIF ``g_syn = w_in dt/tau_syn``,
    ``g_mem = r dt/tau_mem``. Default ``Leaky``/``Synaptic``: subtract reset computed from the
    previous step's membrane (``reset_delay=True``: IR ``next_step``), spike ``v > thr``.
    snnTorch's exporter drops the reset mode and timing; the NIR paper's Braille networks were
    trained with ``reset_delay=False`` (``snntorch[reset=zero,reset_timing=same_step]`` and
    ``snntorch[reset=subtract,reset_timing=same_step]``).
``norse`` (dt is a module argument, default 1e-3, not stored; ``r = 1``)
    ``beta = 1 - dt/tau``, ``g = r dt/tau``; CubaLIF (``LIFCell``): the input *jumps* the
    current (``g_syn = w_in``), ``g_mem = r dt/tau_mem``. Spike ``v > thr`` on the updated
    membrane, reset to ``v_reset`` in the same step; the membrane starts at ``v_leak``.
``sinabs`` (tau in time steps, ``dt = 1``; ``r = 1``)
    ``beta = exp(-dt/tau)``, ``g = r`` (``norm_input=False``); ``SingleSpike``: spike
    ``v >= thr`` on the updated membrane, then ``v -= thr`` at once (``immediate``), no floor.
``sinabs-multispike`` (what ``sinabs.from_nir`` builds: Sinabs' defaults)
    As ``sinabs`` but ``MultiSpike``: ``s = (v > 0) * trunc(v / thr)`` spikes per step, uncapped
    (the IR's ``clip(floor(v / thr), 0, None)``), ``v -= s thr``; ``r`` is ignored (gain 1); IF
    nodes become ``IAF`` with the membrane floor ``min_v_mem = -v_threshold``
    (``v = relu(v + thr) - thr``), LIF nodes have none.
``rockpool`` (dt per module, default 1e-3; ``r = tau exp(-dt/tau)/dt``)
    ``beta = exp(-dt/tau)``, ``g = r dt exp(dt/tau)/tau`` (1 for Rockpool's own export);
    CubaLIF (``LIFTorch``: ``I = beta_syn (I + S)``) ``alpha = exp(-dt/tau_syn)``,
    ``g_syn = w_in exp(-dt/tau_syn)``, ``g_mem`` as ``g``; LI (``ExpSynTorch``) ``g = r dt/tau``.
    ``max_spikes_per_dt=1``: spike ``v >= thr``, ``v -= thr`` at once (``immediate``).
``rockpool-multispike`` (Rockpool's default ``max_spikes_per_dt = 2**16``)
    As ``rockpool`` with ``s = (v >= thr) * floor(v / thr)`` capped at 65536, ``v -= s thr``;
    another cap is the variant ``rockpool[max_spikes=N]``.
``spyx`` (1.0.0; ``dt = 1``, ``tau = dt/(1-beta)``, ``r = beta``, which Spyx ignores)
    ``beta = 1 - dt/tau``, gains 1. The spike is taken on the *pre-update* membrane,
    ``s[t] = H(V[t-1] - thr)``, then ``V = beta V + x - s thr``: the IR's next-step-subtract
    neuron whose spikes pass a one-step :class:`~snn_compile.ir.Delay` (``<neuron>.spike_delay``)
    before reaching feed-forward consumers; recurrent consumers read the undelayed spikes through
    the feedback edge, which already lags one step. ``CuBaLIF`` resets before the leak
    (``V = beta (V - s thr) + I``): an ``immediate`` subtract reset on the delayed spikes.
``lava`` (NIR's ``nir_to_lava`` scripts, ``dt = 1e-4``; not verified against Lava here)
    NIR Euler gains and decays, reset to zero in the same step, ``v > thr``, membrane starts at 0.
    The one-step delay of each Lava ``Dense`` is a property of the target, not of this graph.
``euler`` (canonical NIR semantics at a given ``dt``, required)
    ``beta = 1 - dt/tau``, ``g = r dt/tau``, CubaLIF ``g_syn = w_in dt/tau_syn``; spike
    ``v > thr`` on the updated membrane, reset to ``v_reset`` in the same step; the membrane
    starts at ``v_reset``.
``snn_compile``
    Graphs written by :func:`snn_compile.exporters.nir.export_nir`: the ``euler`` parameter
    mapping at the stored ``dt``, with the reset mode, timing, spike test, spike cap and floor
    stored per node.

**Variants.** A convention's discrete choices can be changed explicitly, never guessed:
``convention="snntorch[reset=zero,reset_timing=same_step]"`` (the same text works for
``--nir-convention``) or ``Convention.variant(reset="zero", ...)``. Keys: ``reset``
(``zero``/``subtract``/``none``), ``reset_timing`` (``same_step``/``next_step``/``immediate``),
``spike_test`` (``>``/``>=``), ``max_spikes`` (``1`` single spikes, an integer cap, or ``none``
for uncapped counts; counts need ``immediate``) and ``v_floor`` (``none`` or ``-threshold``).
The resolved semantics are recorded in ``graph.metadata["nir_convention"]``; when the graph's
parameters or file name suggest another framework or variant, a sentence is added to
``graph.metadata["hints"]`` (see :func:`variant_hints`).

Recurrent graphs: a NIR edge that closes a cycle carries the previous step's value (as in
nirtorch and snnTorch's ``RLeaky``). The IR needs every such feedback edge to start at a neuron,
so the evaluation order is chosen to make the last neuron before each cycle's closing edge the
source of the feedback (see :func:`_evaluation_order`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import numpy as np

from ..errors import GraphError, ModelFileError, SnnCompileError, UnsupportedError
from ..ir import (
    IF, LI, LIF, Affine, AvgPool2d, Conv2d, CubaLIF, Delay, Flatten, Graph, Input, Output, Scale,
    SumPool2d,
)
from ..ir.graph import from_ordered

__all__ = ["load_nir", "CONVENTIONS", "Convention"]

GAIN_TOLERANCE = 1e-6   # |g - 1| below this is float32 export noise: no Scale node
META_KEY = "snn_compile"  # node/graph metadata written by our exporter

# --------------------------------------------------------------------------- decay and gains


def euler_decay(tau, dt):
    """Forward Euler: ``beta = 1 - dt/tau`` (``tau = inf`` gives 1)."""
    return 1.0 - dt / tau


def exp_decay(tau, dt):
    """Exact exponential: ``beta = exp(-dt/tau)``."""
    return np.exp(-dt / tau)


def euler_gain(r, tau, dt):
    """NIR Euler input gain ``r dt / tau``."""
    return r * dt / tau


def unit_gain(r, tau, dt):
    """The framework ignores ``r``: gain 1."""
    return np.ones_like(r)


def r_gain(r, tau, dt):
    """``r`` multiplies the input directly (tau in steps, Sinabs)."""
    return r


def rockpool_gain(r, tau, dt):
    """Rockpool writes ``r = tau exp(-dt/tau)/dt`` for a unit gain: ``g = r dt exp(dt/tau)/tau``."""
    return r * dt * np.exp(dt / tau) / tau


def euler_syn_gain(w_in, tau_syn, dt):
    """Current driven by a piecewise-constant input: ``w_in dt / tau_syn``."""
    return w_in * dt / tau_syn


def jump_syn_gain(w_in, tau_syn, dt):
    """Each input jumps the current by ``w_in`` (Norse ``LIFCell``)."""
    return w_in


def unit_syn_gain(w_in, tau_syn, dt):
    """The framework ignores ``w_in``."""
    return np.ones_like(w_in)


def rockpool_syn_gain(w_in, tau_syn, dt):
    """Rockpool ``LIFTorch`` decays the current after adding the input: ``w_in exp(-dt/tau_syn)``."""
    return w_in * np.exp(-dt / tau_syn)


def start_at_zero(node):
    """Initial membrane potential 0 (snnTorch, Sinabs, Rockpool, Spyx, Lava)."""
    return 0.0


def start_at_leak(node):
    """Initial membrane potential ``v_leak`` (Norse)."""
    return getattr(node, "v_leak", 0.0)


def start_at_reset(node):
    """Initial membrane potential ``v_reset`` (our canonical Euler reading)."""
    return getattr(node, "v_reset", 0.0)


# --------------------------------------------------------------------------- conventions

RESETS = ("zero", "subtract", "none")
TIMINGS = ("same_step", "next_step", "immediate")
FLOORS = (None, "-threshold")
VARIANT_KEYS = ("reset", "reset_timing", "spike_test", "max_spikes", "v_floor")
NEURON_KINDS = ("LIF", "IF", "CubaLIF")


@dataclass(frozen=True)
class Convention:
    """How one framework discretises NIR's continuous-time neurons (see the module docstring).

    The discrete choices (``reset``, ``reset_timing``, ``spike_test``, ``max_spikes``,
    ``v_floor``) are the convention's *variant*; :meth:`variant` changes them explicitly."""

    name: str
    summary: str
    dt: float | None                  # default time step; None: the caller must give one
    decay: Callable = euler_decay
    gain: Callable = euler_gain       # LIF / CubaLIF membrane gain (r, tau, dt)
    li_gain: Callable | None = None   # LI gain when it differs from ``gain``
    if_gain: Callable | None = None   # IF gain (r, dt); default r * dt (r for unit-gain ones)
    syn_gain: Callable = euler_syn_gain
    initial_v: Callable = start_at_zero
    reset: str = "zero"               # "zero" (to v_reset), "subtract" or "none"
    reset_timing: str = "same_step"   # "same_step", "next_step" or "immediate"
    spike_test: str = ">"
    max_spikes: int | None = 1        # > 1 or None (uncapped): multi-spike counts
    v_floor: str | None = None        # "-threshold": membrane floor at minus the threshold
    floor_kinds: tuple = NEURON_KINDS  # NIR node kinds that get the floor
    spike_delay: int = 0              # spike taken on the pre-update membrane (Spyx)
    refuse_cuba: str | None = None    # the framework has no meaning for a CubaLIF
    cuba_timing: str | None = None    # CubaLIF reset timing when it differs (Spyx)
    per_node_semantics: bool = False  # read the variant from our exporter's metadata
    framework: str | None = None      # whose simulation this is (for hints)
    base: str | None = None           # the convention a variant was made from

    def __post_init__(self):
        checks = (("reset", RESETS), ("reset_timing", TIMINGS), ("spike_test", (">", ">=")),
                  ("v_floor", FLOORS))
        for key, allowed in checks:
            if getattr(self, key) not in allowed:
                raise SnnCompileError(f"unknown {key} in NIR convention '{self.name}'",
                                      value=repr(getattr(self, key)),
                                      hint=f"use one of {[a for a in allowed]}")
        cap = self.max_spikes
        if cap is not None and (isinstance(cap, bool) or int(cap) != cap or cap < 1):
            raise SnnCompileError(f"max_spikes of NIR convention '{self.name}' must be a "
                                  "positive integer or none", value=repr(cap))
        if self.multi_spike and self.reset_timing != "immediate":
            raise SnnCompileError(f"NIR convention '{self.name}': multi-spike neurons reset "
                                  "immediately", value=f"reset_timing={self.reset_timing}",
                                  hint="add reset_timing=immediate to the variant")

    @property
    def multi_spike(self) -> bool:
        return self.max_spikes is None or self.max_spikes > 1

    def variant(self, **changes) -> "Convention":
        """This convention with other discrete choices (keys :data:`VARIANT_KEYS`); its name
        records them, e.g. ``snntorch[reset=zero,reset_timing=same_step]``."""
        unknown = sorted(set(changes) - set(VARIANT_KEYS))
        if unknown:
            raise SnnCompileError("unknown NIR convention variant key", value=unknown[0],
                                  hint=f"variant keys: {', '.join(VARIANT_KEYS)}")
        base = self.base or self.name
        merged = {k: getattr(self, k) for k in VARIANT_KEYS} | changes
        original = CONVENTIONS.get(base, self)
        diff = {k: v for k, v in merged.items() if getattr(original, k) != v}
        name = base + ("[" + ",".join(f"{k}={_text(v)}" for k, v in diff.items()) + "]"
                       if diff else "")
        return replace(self, name=name, base=base, **changes)

    def semantics(self, dt: float) -> dict:
        """The resolved discretisation, as recorded in ``graph.metadata["nir_convention"]``."""
        return {"name": self.name, "base": self.base or self.name, "dt": dt,
                "decay": "exp" if self.decay is exp_decay else "euler",
                "reset": self.reset, "reset_timing": self.reset_timing,
                "spike_test": self.spike_test, "max_spikes": self.max_spikes,
                "v_floor": self.v_floor,
                "floor_kinds": list(self.floor_kinds) if self.v_floor else [],
                "spike_delay": self.spike_delay}


def _text(value) -> str:
    return "none" if value is None else str(value)


_SINABS = dict(dt=1.0, decay=exp_decay, gain=r_gain, reset="subtract", reset_timing="immediate",
               spike_test=">=", framework="sinabs",
               refuse_cuba="Sinabs exports LIF without its synaptic current; a NIR CubaLIF has "
                           "no Sinabs meaning")
_ROCKPOOL = dict(dt=1e-3, decay=exp_decay, gain=rockpool_gain, li_gain=euler_gain,
                 syn_gain=rockpool_syn_gain, reset="subtract", reset_timing="immediate",
                 spike_test=">=", framework="rockpool")

CONVENTIONS: dict[str, Convention] = {c.name: c for c in (
    Convention("snntorch", "snnTorch 1.0.0 Leaky/Synaptic defaults (dt=1e-4, Euler, subtract "
               "reset from the previous membrane, '>')", dt=1e-4,
               reset="subtract", reset_timing="next_step", framework="snntorch"),
    Convention("norse", "Norse LIFBox/LIF (dt=1e-3 default, Euler, reset to v_reset, '>', "
               "membrane starts at v_leak; CubaLIF input jumps the current)", dt=1e-3,
               syn_gain=jump_syn_gain, initial_v=start_at_leak, framework="norse"),
    Convention("sinabs", "Sinabs LIF/IAF with SingleSpike (tau in steps, exp(-1/tau) decay, "
               "'>=', subtract at once, no floor)", **_SINABS),
    Convention("sinabs-multispike", "what sinabs.from_nir builds: MultiSpike (floor(v/thr) "
               "spikes, uncapped), subtract at once, gain 1, IAF floor min_v_mem = -threshold",
               **(_SINABS | dict(gain=unit_gain, if_gain=lambda r, dt: np.ones_like(r),
                                 max_spikes=None, v_floor="-threshold",
                                 floor_kinds=("IF",)))),
    Convention("rockpool", "Rockpool LIFNeuronTorch/LIFTorch with max_spikes_per_dt=1 (dt=1e-3 "
               "default, exp decay, '>=', subtract at once)", **_ROCKPOOL),
    Convention("rockpool-multispike", "Rockpool's default max_spikes_per_dt=2**16 (floor(v/thr) "
               "spikes capped at 65536, subtract at once)", **(_ROCKPOOL | dict(
                   max_spikes=1 << 16))),
    Convention("spyx", "Spyx 1.0.0 (dt=1, Euler, spike on the pre-update membrane, '>', "
               "subtract)", dt=1.0, gain=unit_gain, syn_gain=unit_syn_gain,
               reset="subtract", reset_timing="next_step", spike_delay=1,
               cuba_timing="immediate", framework="spyx"),
    Convention("lava", "NIR's nir_to_lava mapping (dt=1e-4, Euler, reset to 0 in the same "
               "step, '>')", dt=1e-4, framework="lava"),
    Convention("euler", "canonical NIR forward Euler at the given dt (reset to v_reset in the "
               "same step, '>')", dt=None, initial_v=start_at_reset),
    Convention("snn_compile", "graphs written by snn_compile's export_nir (Euler at the stored "
               "dt, per-node reset semantics from metadata)", dt=None,
               initial_v=start_at_reset, per_node_semantics=True, framework="snn_compile"),
)}


def get_convention(convention) -> Convention:
    """A convention by name, with an optional variant ``name[key=value,...]``; anything else is
    an error listing the choices."""
    if isinstance(convention, Convention):
        return convention
    name, changes = _parse_variant(convention) if isinstance(convention, str) else (None, {})
    if name not in CONVENTIONS:
        choices = ", ".join(sorted(CONVENTIONS))
        raise SnnCompileError(
            "a NIR graph needs the discretisation convention of the framework it came from",
            value=repr(convention),
            hint=f"pass --nir-convention (convention= in Python), one of: {choices}; "
                 "'euler' also needs --dt; a variant is written e.g. "
                 "'snntorch[reset=zero,reset_timing=same_step]'")
    conv = CONVENTIONS[name]
    return conv.variant(**changes) if changes else conv


def _parse_variant(text: str) -> tuple[str, dict]:
    """``"name[key=value,...]"`` -> ``(name, {key: value})`` with typed values."""
    text = text.strip()
    if "[" not in text:
        return text, {}
    name, _, rest = text.partition("[")
    if not rest.endswith("]"):
        raise SnnCompileError("malformed NIR convention variant", value=text,
                              hint="write name[key=value,key=value]")
    changes = {}
    for item in filter(None, (p.strip() for p in rest[:-1].split(","))):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep:
            raise SnnCompileError("malformed NIR convention variant", value=item,
                                  hint="write key=value")
        changes[key] = _variant_value(key, value)
    return name.strip(), changes


def _variant_value(key: str, value: str):
    if key == "max_spikes":
        if value.lower() in ("none", "inf", "uncapped"):
            return None
        try:
            return int(value)
        except ValueError:
            raise SnnCompileError("max_spikes must be an integer or none", value=value) from None
    if key == "v_floor":
        return None if value.lower() == "none" else value
    return value


# --------------------------------------------------------------------------- entry point


def load_nir(path, *, convention: str | Convention | None = None, dt: float | None = None,
             variant: dict | None = None) -> Graph:
    """Read a ``.nir`` file and return the equivalent IR :class:`~snn_compile.ir.Graph`.

    ``convention`` (required) names the framework whose discretisation the graph follows (see
    the module docstring), optionally with a variant (``"snntorch[reset=zero]"``); ``variant``
    changes its discrete choices from Python; ``dt`` overrides the convention's time step and is
    required for ``euler``. The resolved semantics land in ``graph.metadata["nir_convention"]``
    and hints about other likely variants in ``graph.metadata["hints"]``. Raises ModelFileError
    for an unreadable file, UnsupportedError for a node or behaviour the IR cannot express and
    GraphError for a malformed graph, each naming the file and node.
    """
    conv = get_convention(convention)
    if variant:
        conv = conv.variant(**variant)
    nir_graph = _read(path)
    dt = _resolve_dt(conv, dt, nir_graph, path)
    hints = variant_hints(nir_graph, conv, dt, path)
    try:
        try:
            graph = _convert(nir_graph, conv, dt)
        except SnnCompileError as err:
            framework = [h for h in hints if h.startswith("the neuron parameters look like")]
            if framework:  # a wrong convention often fails first: say what the graph looks like
                err.hint = f"{err.hint + '; ' if err.hint else ''}{framework[0]}"
                err.args = (str(err),)
            raise
        graph = graph.replace(metadata={"source": "nir", "file": str(path),
                                        "convention": conv.name, "dt": dt,
                                        "nir_convention": conv.semantics(dt),
                                        "hints": hints})
        graph.shapes  # verify now, while the file name is known
    except SnnCompileError as err:
        raise err.at(file=path)
    return graph


def _read(path):
    """Read the NIR graph: the file's own bytes only (no external storage or links, sizes
    within the memory budget: :mod:`snn_compile.hdf5_safety`), real, non-empty arrays."""
    import nir

    from ..hdf5_safety import check_hdf5, read_bytes

    path = Path(path)
    if not path.is_file():
        raise ModelFileError("NIR file not found", file=path)
    data = read_bytes(path)
    check_hdf5(data, file=path)
    try:
        graph = nir.read(data)
    except Exception as err:  # h5py/nir raise OSError, KeyError, ValueError, AssertionError...
        raise ModelFileError("cannot read the NIR graph (truncated or not a NIR file)",
                             file=path, value=f"{type(err).__name__}: {err}"[:300],
                             hint="re-export the model with nir.write") from None
    _check_arrays(graph, path)
    return graph


_SHAPE_FIELDS = ("input_type", "output_type")  # {port: shape array}; a 0-d shape is empty


def _check_arrays(nir_graph, path, prefix="") -> None:
    """Every numeric parameter is a real, finite-or-infinite, non-empty array (NIR writes
    parameters as arrays; strings, complex numbers or empty arrays are no parameters)."""
    import nir

    for name, node in nir_graph.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            _check_arrays(node, path, f"{full}.")
            continue
        for key, value in vars(node).items():
            if key in _SHAPE_FIELDS or key == "metadata" or not isinstance(value, np.ndarray):
                continue
            if value.dtype.kind not in "biuf":
                raise ModelFileError(f"parameter '{key}' is not an array of real numbers",
                                     file=path, node=full, value=f"dtype {value.dtype}",
                                     hint="re-export the model with nir.write")
            if value.size == 0 or (value.dtype.kind == "f" and np.isnan(value).any()):
                raise ModelFileError(f"parameter '{key}' is empty or holds NaN", file=path,
                                     node=full, value=f"shape {value.shape}",
                                     hint="re-export the model with nir.write")
        for key in _SHAPE_FIELDS:
            for port, shape in (getattr(node, key, None) or {}).items():
                dims = np.asarray(shape).reshape(-1)
                if dims.dtype.kind not in "iuf" or not dims.size or (dims < 1).any():
                    raise ModelFileError(f"{key} '{port}' is not a shape of positive sizes",
                                         file=path, node=full, value=f"{dims.tolist()}",
                                         hint="a NIR port carries at least one element")


def _resolve_dt(conv: Convention, dt, nir_graph, path) -> float:
    if dt is None and conv.per_node_semantics:
        dt = _meta(nir_graph).get("dt")
    if dt is None:
        dt = conv.dt
    if dt is None:
        raise SnnCompileError(f"convention '{conv.name}' needs a time step", file=path,
                              hint="pass --dt (dt= in Python) in the graph's time unit, "
                                   "e.g. 1e-3 for 1 ms")
    dt = float(dt)
    if not (dt > 0 and math.isfinite(dt)):
        raise SnnCompileError("dt must be a positive number", file=path, value=dt)
    return dt


def _meta(node) -> dict:
    meta = getattr(node, "metadata", None) or {}
    return dict(meta.get(META_KEY, {}) or {})


# --------------------------------------------------------------------------- hints

_FP_TOL = 1e-4


def _close(a, b) -> bool:
    a, b = np.broadcast_arrays(_arr(a), _arr(b))
    return a.size > 0 and bool(np.all(np.abs(a - b) <= _FP_TOL * np.maximum(np.abs(b), 1e-12)))


def fingerprint(nir_graph) -> dict[str, str]:
    """Exporters whose parameter encoding every neuron of ``nir_graph`` matches, each with the
    evidence (see the NIR ecosystem notes: each exporter writes ``r``/``tau`` its own way)."""
    import nir

    nodes, _ = _flatten_subgraphs(nir_graph)
    neurons = [v for v in nodes.values() if isinstance(v, (nir.LIF, nir.CubaLIF, nir.IF))]
    if not neurons:
        return {}
    tests = {
        "snntorch": ("r = tau/dt at dt = 1e-4", lambda v: _close(v.r * 1e-4 / _tau_mem(v), 1)
                     and (not isinstance(v, nir.CubaLIF) or _close(v.w_in * 1e-4 / v.tau_syn, 1))),
        "sinabs": ("r = 1 with tau in time steps",
                   lambda v: _close(v.r, 1) and (isinstance(v, nir.IF) or np.all(_tau_mem(v) >= 1))),
        "norse": ("r = 1 with tau in seconds",
                  lambda v: not isinstance(v, nir.IF) and _close(v.r, 1)
                  and np.all(_tau_mem(v) < 1)),
        "rockpool": ("r = tau exp(-dt/tau)/dt at dt = 1e-3",
                     lambda v: not isinstance(v, nir.IF)
                     and _close(v.r, _tau_mem(v) * np.exp(-1e-3 / _tau_mem(v)) / 1e-3)),
        "spyx": ("r = 1 - 1/tau (r = beta at dt = 1)",
                 lambda v: not isinstance(v, nir.IF) and _close(v.r, 1 - 1 / _tau_mem(v))),
    }
    out = {}
    for fw, (evidence, test) in tests.items():
        try:
            with np.errstate(all="raise"):  # tau = 0 and the like: no evidence, no warning
                if all(test(v) for v in neurons):
                    out[fw] = evidence
        except (AttributeError, FloatingPointError, ValueError, ZeroDivisionError):
            continue
    return out


def _tau_mem(node):
    return _arr(node.tau_mem if hasattr(node, "tau_mem") else node.tau)


def variant_hints(nir_graph, conv: Convention, dt: float, path=None) -> list[str]:
    """Sentences for the report when the graph suggests another framework or variant than
    ``conv``: the exporter's parameter fingerprint, reset words in the file name, node
    metadata, and the framework's usual variant where NIR cannot say which one ran."""
    hints = []
    fw = conv.framework
    meta = _meta(nir_graph)
    if meta and not conv.per_node_semantics:
        hints.append("the graph was written by snn_compile's export_nir, which stores the "
                     "discrete semantics per node: convention 'snn_compile' restores them")
    prints = fingerprint(nir_graph)
    if fw in CONVENTIONS and fw not in ("snn_compile", "lava") and prints and fw not in prints:
        others = "; ".join(f"{k} ({v})" for k, v in prints.items())
        hints.append(f"the neuron parameters look like an export from {others}, not from "
                     f"{fw}: check that convention '{conv.name}' is the framework that runs "
                     "this graph")
    stem = Path(str(path)).stem.lower() if path is not None else ""
    for word, reset in (("zero", "zero"), ("subtract", "subtract")):
        if word in stem and conv.reset != reset and not conv.per_node_semantics:
            hints.append(f"the file name says '{word}' but convention '{conv.name}' resets "
                         f"{'to zero' if conv.reset == 'zero' else 'by ' + conv.reset}: if the "
                         f"network was trained with reset '{reset}', add the variant "
                         f"reset={reset}")
    if "nodelay" in stem.replace("_", "") and conv.reset_timing == "next_step":
        hints.append("the file name says 'noDelay': snnTorch's reset_delay=False is the variant "
                     "reset_timing=same_step")
    for name, node in _flatten_subgraphs(nir_graph)[0].items():
        for key, value in (getattr(node, "metadata", None) or {}).items():
            text = str(_py(value)).lower()
            if "reset" in str(key).lower() and any(w in text for w in ("zero", "subtract")):
                wanted = "zero" if "zero" in text else "subtract"
                if wanted != conv.reset and not conv.per_node_semantics:
                    hints.append(f"node '{name}' metadata says {key}={text!r} but convention "
                                 f"'{conv.name}' resets '{conv.reset}': add the variant "
                                 f"reset={wanted} if the metadata is right")
    if conv.base is None:
        if fw == "snntorch":
            hints.append("snnTorch's NIR export drops the reset mode and timing; this assumes "
                         "snnTorch's defaults (subtract, reset_delay=True). snnTorch's own NIR "
                         "import and the NIR paper's Braille training use reset_delay=False: "
                         "variant reset_timing=same_step (with reset=zero or reset=subtract)")
        elif conv.name == "sinabs":
            hints.append("sinabs.from_nir builds MultiSpike neurons (floor(v/thr) spikes per "
                         "step) and IAF layers with a membrane floor of -threshold; if the graph "
                         "ran there, use convention 'sinabs-multispike'")
        elif conv.name == "rockpool":
            hints.append("Rockpool's default max_spikes_per_dt is 2**16; if the network was "
                         "trained with it use 'rockpool-multispike' (or rockpool[max_spikes=N])")
    return hints


# --------------------------------------------------------------------------- graph flattening


def _flatten_subgraphs(nir_graph, prefix=""):
    """Inline nested NIRGraphs: returns ``(nodes, edges)`` with dotted names.

    An edge into a subgraph goes to the successors of its Input node; an edge out of it leaves
    from the predecessors of its Output node.
    """
    import nir

    nodes, edges, entries, exits = {}, [], {}, {}
    for name, node in nir_graph.nodes.items():
        full = f"{prefix}{name}"
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges = _flatten_subgraphs(node, prefix=f"{full}.")
            ins = [n for n, v in sub_nodes.items() if isinstance(v, nir.Input)]
            outs = [n for n, v in sub_nodes.items() if isinstance(v, nir.Output)]
            if len(ins) != 1 or len(outs) != 1:
                raise UnsupportedError("subgraph needs exactly one Input and one Output",
                                       node=full, value=f"{len(ins)} inputs, {len(outs)} outputs")
            entries[full] = [b for a, b in sub_edges if a == ins[0]]
            exits[full] = [a for a, b in sub_edges if b == outs[0]]
            inner = {k: v for k, v in sub_nodes.items() if k not in (ins[0], outs[0])}
            edges += [(a, b) for a, b in sub_edges if a != ins[0] and b != outs[0]]
        else:
            inner = {full: node}
        for key in inner:  # "s.fc" beside a subgraph "s" holding "fc" would merge silently
            if key in nodes:
                raise GraphError("two nodes get the same name when subgraphs are inlined",
                                 node=key, hint="rename the node or the subgraph")
        nodes.update(inner)
    for src, dst in nir_graph.edges:
        src, dst = f"{prefix}{src}", f"{prefix}{dst}"
        for a in exits.get(src, [src]):
            for b in entries.get(dst, [dst]):
                edges.append((a, b))
    return nodes, list(dict.fromkeys(edges))


# --------------------------------------------------------------------------- evaluation order


def _state_holders(nodes) -> set[str]:
    import nir

    kinds = (nir.LIF, nir.CubaLIF, nir.IF, nir.LI, nir.Threshold)
    return {name for name, node in nodes.items() if isinstance(node, kinds)}


def _evaluation_order(nodes, edges, holders) -> list[str]:
    """Order nodes so that every edge closing a cycle starts at a neuron (a state holder).

    A depth-first search from the inputs finds each cycle's closing (back) edge. If it starts at
    a neuron, it is the feedback edge. Otherwise the feedback moves to the out-edge of the last
    neuron on the cycle's DFS path before the closing edge (a recurrent synapse ``lif -> rec ->
    lif`` becomes ``rec`` before ``lif`` with ``lif -> rec`` the feedback edge), so the
    feed-forward path of the cycle stays instantaneous. The order is then a topological sort
    without the feedback edges, ties broken by DFS discovery.
    """
    succ = {n: [] for n in nodes}
    for a, b in edges:
        succ[a].append(b)
    discovery, parent, back = {}, {}, []
    on_stack = set()

    def visit(root):
        stack = [(root, iter(succ[root]))]
        discovery[root] = len(discovery)
        on_stack.add(root)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                on_stack.discard(node)
                stack.pop()
            elif child in on_stack:
                back.append((node, child))
            elif child not in discovery:
                parent[child] = node
                discovery[child] = len(discovery)
                on_stack.add(child)
                stack.append((child, iter(succ[child])))

    inputs = [n for n, v in nodes.items() if type(v).__name__ == "Input"]
    for root in inputs + list(nodes):
        if root not in discovery:
            visit(root)

    cut = set()
    for src, dst in back:
        cut.add(_feedback_edge(src, dst, parent, holders))
    return _toposort(nodes, [e for e in edges if e not in cut], discovery)


def _feedback_edge(src, dst, parent, holders):
    """The edge that carries the delay of the cycle closed by the back edge ``src -> dst``."""
    if src in holders:
        return (src, dst)
    child, node = src, src
    while node != dst:
        child, node = node, parent[node]
        if node in holders:
            return (node, child)
    raise GraphError("cycle without a neuron: a recurrent loop must pass through a neuron",
                     node=src, value=f"edge {src} -> {dst}",
                     hint="NIR cycles are only supported through LIF/CubaLIF/IF/LI nodes")


def _toposort(nodes, edges, rank) -> list[str]:
    indeg = {n: 0 for n in nodes}
    succ = {n: [] for n in nodes}
    for a, b in edges:
        indeg[b] += 1
        succ[a].append(b)
    ready = sorted((n for n in nodes if indeg[n] == 0), key=rank.get)
    order = []
    while ready:
        node = ready.pop(0)
        order.append(node)
        for b in succ[node]:
            indeg[b] -= 1
            if indeg[b] == 0:
                ready.append(b)
                ready.sort(key=rank.get)
    if len(order) != len(nodes):
        stuck = next(n for n in nodes if n not in order)
        raise GraphError("cycle without a neuron", node=stuck,
                         hint="NIR cycles are only supported through neuron nodes")
    return order


# --------------------------------------------------------------------------- conversion


@dataclass
class _Mapped:
    """The IR nodes of one NIR node: edges enter ``entry`` and leave ``exit``/``feedback``."""

    nodes: list
    entry: str
    exit: str
    feedback: str | None = None  # source for consumers reached through a feedback edge
    edges: list = field(default_factory=list)  # internal edges


def _convert(nir_graph, conv: Convention, dt: float) -> Graph:
    nodes, edges = _flatten_subgraphs(nir_graph)
    order = _evaluation_order(nodes, edges, _state_holders(nodes))
    mapped = {}
    for name in order:
        try:
            mapped[name] = _map_node(name, nodes[name], conv, dt)
        except SnnCompileError as err:
            raise err.at(node=name)
    position = {name: i for i, name in enumerate(order)}
    ir_nodes, ir_edges = [], []
    for name in order:
        ir_nodes += mapped[name].nodes
        ir_edges += mapped[name].edges
    for src, dst in edges:
        feedback = position[src] >= position[dst]
        m = mapped[src]
        ir_edges.append(((m.feedback or m.exit) if feedback else m.exit, mapped[dst].entry))
    return _drop_unused_delays(ir_nodes, ir_edges)


def _drop_unused_delays(nodes, edges) -> Graph:
    """Remove spike-delay nodes whose neuron has only feedback consumers."""
    sources = {a for a, _ in edges}
    keep = [n for n in nodes if not (isinstance(n, Delay) and n.name.endswith(".spike_delay")
                                     and n.name not in sources)]
    names = {n.name for n in keep}
    return from_ordered(tuple(keep), tuple((a, b) for a, b in edges if a in names and b in names))


def _map_node(name, node, conv: Convention, dt: float) -> _Mapped:
    kind = type(node).__name__
    mapper = _MAPPERS.get(kind)
    if mapper is None:
        raise UnsupportedError(f"NIR node type {kind} is not supported", node=name,
                               hint=f"supported: {', '.join(sorted(_MAPPERS))}")
    result = mapper(name, node, conv, dt)
    return result if isinstance(result, _Mapped) else _Mapped([result], name, name)


def _arr(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _shape_of(types: dict, port: str):
    shape = (types or {}).get(port)
    return None if shape is None else tuple(int(d) for d in np.ravel(shape))


# ----- graph ends and synapses


def _input(name, node, conv, dt):
    return Input(name=name, shape=_shape_of(node.input_type, "input"))


def _output(name, node, conv, dt):
    return Output(name=name)


def _affine(name, node, conv, dt):
    weight = np.asarray(node.weight)
    if weight.ndim != 2:
        raise UnsupportedError("only 2-D (n_out, n_in) weights are supported", node=name,
                               value=f"weight shape {weight.shape}")
    bias = getattr(node, "bias", None)
    return Affine(name=name, weight=weight, bias=None if bias is None else np.asarray(bias))


def _scale(name, node, conv, dt):
    return Scale(name=name, scale=np.asarray(node.scale))


def _conv1d(name, node, conv, dt):
    raise UnsupportedError("Conv1d is not supported (the IR has 2-D convolutions only)",
                           node=name, hint="export the layer as a Conv2d with a height of 1")


def _conv2d(name, node, conv, dt):
    weight = np.asarray(node.weight)
    return Conv2d(name=name, weight=weight, bias=np.asarray(node.bias),
                  stride=_pair(node.stride), dilation=_pair(node.dilation),
                  padding=_conv_padding(name, node.padding, weight.shape[2:],
                                        _pair(node.stride), _pair(node.dilation)),
                  groups=int(node.groups))


def _pair(value):
    values = [int(v) for v in np.ravel(value)]
    return (values[0], values[0]) if len(values) == 1 else (values[0], values[1])


def _conv_padding(name, padding, kernel, stride, dilation):
    if isinstance(padding, bytes):
        padding = padding.decode()
    if not isinstance(padding, str):
        return _pair(padding)
    if padding == "valid":
        return (0, 0)
    span = [d * (k - 1) for d, k in zip(dilation, kernel)]
    if padding == "same" and stride == (1, 1) and all(s % 2 == 0 for s in span):
        return (span[0] // 2, span[1] // 2)
    raise UnsupportedError("convolution padding is not expressible as symmetric zero padding",
                           node=name, value=f"padding={padding!r}, kernel={tuple(kernel)}, "
                                            f"stride={stride}",
                           hint="use explicit integer padding")


def _pool(cls):
    def mapper(name, node, conv, dt):
        return cls(name=name, kernel_size=_pair(node.kernel_size), stride=_pair(node.stride),
                   padding=_pair(node.padding))
    return mapper


def _flatten(name, node, conv, dt):
    shape = _shape_of(node.input_type, "input")
    if shape is None:
        raise UnsupportedError("Flatten without a known input shape", node=name,
                               hint="re-export the graph with type information")
    ndim = len(shape)
    start, end = int(node.start_dim) % ndim, int(node.end_dim) % ndim
    if (start, end) != (0, ndim - 1):
        raise UnsupportedError("only whole-sample Flatten is supported", node=name,
                               value=f"start_dim={node.start_dim}, end_dim={node.end_dim} "
                                     f"for input shape {shape}",
                               hint="flatten every non-batch dimension (start_dim=0, "
                                    "end_dim=-1)")
    return Flatten(name=name)


def _delay(name, node, conv, dt):
    steps = _arr(node.delay) / dt
    rounded = np.round(steps)
    if steps.size == 0 or not np.allclose(steps, rounded, rtol=0, atol=1e-6) \
            or np.any(rounded != rounded.flat[0]):
        raise UnsupportedError("Delay must be one whole number of time steps for all elements",
                               node=name, value=f"delay/dt = {np.unique(steps)[:4]}",
                               hint=f"dt is {dt}; use uniform delays that are multiples of dt")
    return Delay(name=name, steps=int(rounded.flat[0]))


# ----- neurons


def _semantics(node, conv: Convention, kind: str, shape, threshold) -> dict:
    """Reset mode, timing, spike test, spike cap and floor: the convention's, or the node's
    stored ones (``snn_compile``)."""
    sem = {"reset": conv.reset, "reset_timing": conv.reset_timing,
           "spike_test": conv.spike_test, "reset_discards_input": False,
           "max_spikes": conv.max_spikes}
    if kind == "CubaLIF" and conv.cuba_timing:
        sem["reset_timing"] = conv.cuba_timing
    floor = None
    if conv.v_floor == "-threshold" and kind in conv.floor_kinds:
        floor = -np.broadcast_to(threshold, shape)
    if conv.per_node_semantics:
        meta = _meta(node)
        missing = [k for k in ("reset", "reset_timing", "spike_test", "reset_discards_input")
                   if k not in meta]
        if missing:
            raise UnsupportedError("node lacks snn_compile metadata", value=f"missing {missing}",
                                   hint="this graph was not written by export_nir; choose the "
                                        "exporting framework's convention")
        sem = {k: _py(meta[k]) for k in sem if k in meta} | {"max_spikes": 1}
        if "max_spikes" in meta:  # files written before multi-spike support have none
            cap = int(_py(meta["max_spikes"]))
            sem["max_spikes"] = None if cap == 0 else cap
        floor = _arr(meta["v_floor"]) if "v_floor" in meta else None
    sem["v_floor"] = floor
    return sem


def _py(value):
    value = value.item() if isinstance(value, np.generic) else value
    return value.decode() if isinstance(value, bytes) else value


def _membrane_offset(name, node, conv) -> np.ndarray:
    """``v_reset``: the IR measures the membrane from it; the framework must start there."""
    v_reset = _arr(getattr(node, "v_reset", 0.0))
    start = _arr(conv.initial_v(node))
    if np.any(start != v_reset):
        raise UnsupportedError(
            f"convention '{conv.name}' starts the membrane at {_few(start)} but the IR starts "
            f"it at the reset potential", node=name, value=f"v_reset={_few(v_reset)}",
            hint="use v_reset equal to the initial potential (usually 0), or convention "
                 "'euler'")
    return v_reset


def _few(arr) -> str:
    values = np.unique(np.asarray(arr))
    return str(values[0]) if values.size == 1 else f"{values[:3]}..."


def _decay(name, tau, conv, dt, what="tau") -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):  # tau = 0: error below
        beta = conv.decay(_arr(tau), dt)
    if np.any(beta < 0) or np.any(beta > 1) or not np.all(np.isfinite(beta)):
        raise UnsupportedError(f"{what} gives a decay outside [0, 1] at dt={dt}",
                               node=name, value=f"{what} min {np.min(tau)}",
                               hint="use a smaller dt or check the convention")
    return beta


def _assemble(name, neuron, conv, gain) -> _Mapped:
    """Wire ``neuron`` with its input gain and spike delay.

    * gain != 1: ``<name>.gain`` Scale in front;
    * ``spike_delay``: ``<name>.spike_delay`` Delay after the neuron (Spyx).
    """
    nodes = []
    gain = np.broadcast_to(_arr(gain), neuron.shape)
    if not np.allclose(gain, 1.0, rtol=0, atol=GAIN_TOLERANCE):
        nodes.append(Scale(name=f"{name}.gain", scale=gain))
    nodes.append(neuron)
    edges = [(a.name, b.name) for a, b in zip(nodes, nodes[1:])]
    exit_ = name
    if conv.spike_delay and getattr(neuron, "spiking", False):
        nodes.append(Delay(name=f"{name}.spike_delay", steps=conv.spike_delay))
        edges.append((name, nodes[-1].name))
        exit_ = nodes[-1].name
    return _Mapped(nodes, nodes[0].name, exit_, feedback=name, edges=edges)


def _population(node, *keys):
    params = [_arr(getattr(node, k)) for k in keys]
    return tuple(np.broadcast_shapes(*(p.shape for p in params)))


def _lif(name, node, conv, dt):
    shape = _population(node, "tau", "r", "v_leak", "v_threshold")
    offset = _membrane_offset(name, node, conv)
    beta = _decay(name, node.tau, conv, dt)
    threshold = np.broadcast_to(_arr(node.v_threshold) - offset, shape)
    neuron = LIF(name=name, shape=shape, beta=np.broadcast_to(beta, shape), threshold=threshold,
                 bias=np.broadcast_to((1 - beta) * (_arr(node.v_leak) - offset), shape),
                 **_semantics(node, conv, "LIF", shape, threshold))
    gain = conv.gain(_arr(node.r), _arr(node.tau), dt)
    return _assemble(name, neuron, conv, gain)


def _if(name, node, conv, dt):
    shape = _population(node, "r", "v_threshold")
    offset = _membrane_offset(name, node, conv)
    threshold = np.broadcast_to(_arr(node.v_threshold) - offset, shape)
    neuron = IF(name=name, shape=shape, threshold=threshold,
                **_semantics(node, conv, "IF", shape, threshold))
    if conv.if_gain is not None:
        gain = conv.if_gain(_arr(node.r), dt)
    else:  # dv/dt = r S: with no leak the Euler step is r*dt (Sinabs/Spyx: dt = 1)
        gain = _arr(node.r) * (1.0 if conv.gain is unit_gain else dt)
    return _assemble(name, neuron, conv, gain)


def _cubalif(name, node, conv, dt):
    if conv.refuse_cuba:
        raise UnsupportedError(conv.refuse_cuba, node=name)
    shape = _population(node, "tau_syn", "tau_mem", "r", "v_leak", "v_threshold", "w_in")
    offset = _membrane_offset(name, node, conv)
    alpha = np.broadcast_to(_decay(name, node.tau_syn, conv, dt, "tau_syn"), shape)
    beta = np.broadcast_to(_decay(name, node.tau_mem, conv, dt, "tau_mem"), shape)
    threshold = np.broadcast_to(_arr(node.v_threshold) - offset, shape)
    neuron = CubaLIF(name=name, shape=shape, alpha=alpha, beta=beta, threshold=threshold,
                     bias=np.broadcast_to((1 - beta) * (_arr(node.v_leak) - offset), shape),
                     **_semantics(node, conv, "CubaLIF", shape, threshold))
    # the current is carried in membrane units (scaled by g_mem), so both gains act on the input
    gain = (conv.syn_gain(_arr(node.w_in), _arr(node.tau_syn), dt)
            * conv.gain(_arr(node.r), _arr(node.tau_mem), dt))
    return _assemble(name, neuron, conv, gain)


def _li(name, node, conv, dt):
    shape = _population(node, "tau", "r", "v_leak")
    start = _arr(conv.initial_v(node)) if conv.initial_v is start_at_leak else 0.0
    if np.any(start != 0):
        raise UnsupportedError(f"convention '{conv.name}' starts the LI readout at v_leak, "
                               "but the IR starts it at 0", node=name,
                               value=f"v_leak={_few(node.v_leak)}")
    beta = _decay(name, node.tau, conv, dt)
    readout = LI(name=name, shape=shape, beta=np.broadcast_to(beta, shape),
                 bias=np.broadcast_to((1 - beta) * _arr(node.v_leak), shape))
    gain = (conv.li_gain or conv.gain)(_arr(node.r), _arr(node.tau), dt)
    return _assemble(name, readout, conv, gain)


def _threshold(name, node, conv, dt):
    """NIR Threshold ``z = H(x - theta)`` (stateless): a LIF with no memory and no reset."""
    shape = tuple(np.shape(node.threshold))
    return LIF(name=name, shape=shape, beta=np.zeros(shape), threshold=_arr(node.threshold),
               reset="none", reset_timing="same_step", spike_test=">")


def _integrator(name, node, conv, dt):
    shape = tuple(np.shape(node.r))
    readout = LI(name=name, shape=shape, beta=np.ones(shape))
    return _assemble(name, readout, conv, _arr(node.r) * dt)


_MAPPERS: dict[str, Callable] = {
    "Input": _input, "Output": _output, "Affine": _affine, "Linear": _affine,
    "Scale": _scale, "Conv1d": _conv1d, "Conv2d": _conv2d, "Flatten": _flatten,
    "SumPool2d": _pool(SumPool2d), "AvgPool2d": _pool(AvgPool2d), "Delay": _delay,
    "LIF": _lif, "IF": _if, "CubaLIF": _cubalif, "LI": _li, "Threshold": _threshold,
    "I": _integrator,
}
