"""Hardware targets: number formats, timing, features and resources, loaded from TOML data.

Target files live in ``targets/`` (installed as the package ``snn_compile._targets``); a user adds a
board by adding a file, or passes a path. A file may ``inherits = "<other target>"`` and override
tables. Every value must have an entry in ``[sources]`` saying where the number comes from; unknown
keys are rejected. The meaning of every field is documented on the dataclasses below and in
``targets/README.md``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from .errors import TargetError
from .target_checks import check_limits, check_tables

OVERFLOW_RULES = ("wrap", "wrap_lava", "saturate", "saturate_symmetric")
ROUNDING_RULES = ("toward_zero", "floor", "nearest")


@dataclass(frozen=True)
class Timing:
    synapse_delay: int  # steps each synaptic connection adds (Lava: 1; snnTorch: 0)


@dataclass(frozen=True)
class Weights:
    bits: int               # magnitude bits; weights lie in [-(2^bits), 2^bits - 1]
    mixed_sign_even: bool   # a matrix with both signs keeps only even weights (Lava)
    exp_min: int            # range of the per-connection exponent applied to the summed input
    exp_max: int
    conv_exp: bool          # whether convolutions honour the exponent
    scale_granularity: str  # "layer": one scale per layer; "neuron": one per output neuron


@dataclass(frozen=True)
class Accumulator:
    dense_bits: int         # the summed synaptic input wraps at this width (two's complement)
    conv_bits: int          # same for convolutions
    intermediate_bits: int  # width of the neuron's internal sums (wrap)


@dataclass(frozen=True)
class NeuronFormat:
    activation_shift: int   # synaptic input enters the current as a << shift
    decay_mode: str         # "multiply": state * m >> decay_bits
    decay_bits: int
    decay_rounding: str     # rounding of the >> decay_bits: toward_zero | floor | nearest
    u_decay_range: list     # allowed multipliers m for the current u
    v_decay_range: list     # allowed multipliers m for the voltage v
    u_bits: int
    u_overflow: str         # wrap | wrap_lava | saturate | saturate_symmetric
    v_bits: int
    v_overflow: str
    threshold_mant_bits: int  # threshold = mant << threshold_shift, mant unsigned
    threshold_shift: int
    bias_mant_bits: int     # bias = mant << exp, mant signed with this many bits
    bias_exp_max: int


@dataclass(frozen=True)
class Features:
    neuron_models: list
    reset_modes: list         # natively supported reset modes
    custom_reset_modes: list  # supported only through a custom neuron program
    reset_timings: list
    spike_tests: list
    graded_input: bool
    input_bits: int
    recurrent: bool
    synapse_bias: bool        # a bias can be added to the synaptic current u
    max_synapse_delay: int
    zero_reset_discards_input: bool = False  # snnTorch Synaptic's zero reset (loses the step)


@dataclass(frozen=True)
class Resources:
    part: str | None = None
    clock_mhz: float | None = None
    lut: int | None = None
    ff: int | None = None
    dsp: int | None = None
    bram_18k: int | None = None
    uram: int | None = None
    cores: int | None = None
    neurons_per_core: int | None = None
    synaptic_memory_bits_per_core: int | None = None
    fan_in_per_core: int | None = None
    fan_out_per_core: int | None = None


SECTIONS = {
    "timing": Timing, "weights": Weights, "accumulator": Accumulator, "neuron": NeuronFormat,
    "features": Features, "resources": Resources,
}


@dataclass(frozen=True)
class Target:
    name: str
    kind: str          # neuromorphic | fpga | cpu
    backend: str       # the backend the main command lowers to
    description: str
    aliases: list
    timing: Timing
    weights: Weights
    accumulator: Accumulator
    neuron: NeuronFormat
    features: Features
    resources: Resources
    sources: dict = field(default_factory=dict)
    path: str = ""

    def get(self, dotted: str) -> Any:
        section, key = dotted.split(".", 1)
        return getattr(getattr(self, section), key)

    def as_dict(self) -> dict:
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in ("path",)}


# ----------------------------------------------------------------------------- loading

def target_files() -> dict[str, Path]:
    """Shipped target files by file stem."""
    root = resources.files("snn_compile._targets")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml")}


def available_targets() -> dict[str, str]:
    """Name -> description of every shipped target."""
    return {t.name: t.description for t in (load_target(s) for s in sorted(target_files()))}


def load_target(name_or_path, overrides: dict[str, Any] | None = None) -> Target:
    """Load a target by name, alias or path, apply ``overrides`` ({"neuron.v_bits": 16}), validate."""
    raw, path = _read_with_inheritance(str(name_or_path), seen=())
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if section not in SECTIONS or not key:
            raise TargetError("unknown target setting", value=dotted,
                              hint=f"use <section>.<key> with section in {sorted(SECTIONS)}")
        raw.setdefault(section, {})[key] = value
        raw.setdefault("sources", {})[dotted] = "command-line override"
    return _build(raw, path)


def _resolve(name: str) -> Path:
    candidate = Path(name)
    if candidate.suffix == ".toml" or candidate.exists():
        if not candidate.is_file():
            raise TargetError("target file not found", file=name)
        return candidate
    files = target_files()
    if name in files:
        return files[name]
    for path in files.values():
        head = _parse(path).get("target", {})
        if name == head.get("name") or name in head.get("aliases", []):
            return path
    raise TargetError("unknown target", value=name,
                      hint=f"choose one of {sorted(files)} or pass a .toml file")


def _parse(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"invalid TOML: {exc}", file=path) from None


def _read_with_inheritance(name: str, seen: tuple) -> tuple[dict, Path]:
    path = _resolve(name)
    if path in seen:
        raise TargetError("target inherits from itself", file=path)
    raw = _parse(path)
    check_tables(raw, path)
    base_name = raw.pop("inherits", None)
    if base_name is None:
        return raw, path
    base, _ = _read_with_inheritance(base_name, seen + (path,))
    for section, table in raw.items():
        if isinstance(table, dict) and section != "target":
            base.setdefault(section, {}).update(table)
        else:
            base[section] = table
    return base, path


def _build(raw: dict, path: Path) -> Target:
    allowed = set(SECTIONS) | {"target", "sources"}
    for section in raw:
        if section not in allowed:
            raise TargetError("unknown section", file=path, value=section,
                              hint=f"allowed: {sorted(allowed)}")
    head = dict(raw.get("target", {}))
    head_fields = {"name": str, "kind": str, "backend": str, "description": str, "aliases": list}
    _check_keys(head, head_fields, "target", path, required=("name", "kind", "backend"))
    sources = raw.get("sources", {})
    built = {}
    for section, cls in SECTIONS.items():
        table = raw.get(section, {})
        hints = get_type_hints(cls)
        required = tuple(f.name for f in dataclasses.fields(cls)
                         if f.default is dataclasses.MISSING)
        _check_keys(table, hints, section, path, required)
        for key in table:
            if f"{section}.{key}" not in sources:
                raise TargetError("value has no source", file=path, value=f"{section}.{key}",
                                  hint="add it to [sources] with where the number comes from")
        built[section] = cls(**table)
    target = Target(name=head["name"], kind=head["kind"], backend=head["backend"],
                    description=head.get("description", ""), aliases=head.get("aliases", []),
                    sources=dict(sources), path=str(path), **built)
    _check_rules(target, path)
    check_limits(target, path)
    return target


def _check_keys(table: dict, hints: dict, section: str, path, required) -> None:
    for key, value in table.items():
        if key not in hints:
            raise TargetError("unknown key", file=path, value=f"{section}.{key}",
                              hint=f"allowed keys: {sorted(hints)}")
        expected = hints[key]
        base = getattr(expected, "__args__", (expected,))
        ok = any(isinstance(value, t) or (t is float and isinstance(value, int))
                 for t in base if isinstance(t, type))
        if isinstance(value, bool) and bool not in base:
            ok = False
        if not ok:
            raise TargetError("wrong type", file=path, value=f"{section}.{key} = {value!r}",
                              hint=f"expected {expected}")
    for key in required:
        if key not in table:
            raise TargetError("missing key", file=path, value=f"{section}.{key}")


def _check_rules(t: Target, path) -> None:
    n = t.neuron
    for key, value, allowed in (("neuron.u_overflow", n.u_overflow, OVERFLOW_RULES),
                                ("neuron.v_overflow", n.v_overflow, OVERFLOW_RULES),
                                ("neuron.decay_rounding", n.decay_rounding, ROUNDING_RULES),
                                ("neuron.decay_mode", n.decay_mode, ("multiply",)),
                                ("weights.scale_granularity", t.weights.scale_granularity,
                                 ("layer", "neuron"))):
        if value not in allowed:
            raise TargetError("invalid value", file=path, value=f"{key} = {value!r}",
                              hint=f"choose one of {allowed}")
    for key in ("u_bits", "v_bits"):
        if not 2 <= getattr(n, key) <= 62:
            raise TargetError("state width out of range", file=path,
                              value=f"neuron.{key} = {getattr(n, key)}", hint="use 2..62 bits")
    if not 1 <= t.weights.bits <= 30:
        raise TargetError("weight width out of range", file=path,
                          value=f"weights.bits = {t.weights.bits}", hint="use 1..30 bits")
