"""Hardware targets: number formats, timing, features and resources, loaded from TOML data.

Target files live in ``targets/`` (installed as the package ``snn_compile._targets``); a user adds a
board by adding a file, putting it on the search path ``SNN_COMPILE_TARGET_PATH`` (folders separated
by ``:``) or passing its path. A file may say ``inherits = "<target name or path>"``: a name is a
shipped or search-path target, a path is read relative to the inheriting file. Tables are merged key
by key; ``target.name``, ``aliases`` and ``description`` are never inherited. Every value must have an
entry in ``[sources]`` saying where the number comes from; unknown keys are rejected.

Number formats are :class:`~snn_compile.datatypes.IntType` values written as text (``"int24"``,
``"uint17"``); the meaning of every field is documented on the dataclasses below and in
``targets/README.md``. Keys of the first file format (``weights.bits``, ``neuron.v_bits``, ...) are
read with a warning and translated (:data:`LEGACY_KEYS`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tomllib
import warnings
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, get_type_hints

from .datapath.rules import RULES
from .datatypes import IntType
from .errors import TargetError
from .target_checks import check_limits, check_tables

OVERFLOW_RULES = tuple(RULES["overflow"])
ROUNDING_RULES = tuple(RULES["rounding"])
PATH_ENV = "SNN_COMPILE_TARGET_PATH"


def _range(lo, hi):
    return {"range": (lo, hi)}


def _choices(*values):
    return {"choices": values}


@dataclass(frozen=True)
class Timing:
    synapse_delay: int = field(metadata=_range(0, 64))  # steps each connection adds (Lava: 1)


@dataclass(frozen=True)
class Weights:
    type: IntType                        # weight integers, e.g. int9 = 8 magnitude bits + sign
    mixed_sign_even: bool                # a matrix with both signs keeps only even weights (Lava)
    exp_min: int = field(metadata=_range(-32, 32))  # per-connection exponent on the summed input
    exp_max: int = field(metadata=_range(-32, 32))
    conv_exp: bool                       # whether convolutions honour the exponent
    scale_granularity: str = field(metadata=_choices("layer", "neuron"))  # one scale per ...


@dataclass(frozen=True)
class Accumulator:
    dense: IntType         # the summed synaptic input of a population wraps at this width
    conv: IntType          # a convolution's sum wraps at this width before that
    intermediate: IntType  # width of the neuron's internal sums (wrap)


@dataclass(frozen=True)
class NeuronFormat:
    activation_shift: int = field(metadata=_range(0, 32))  # input enters the current as a << shift
    decay_mode: str = field(metadata=_choices("multiply"))  # state * m >> decay_bits
    decay_bits: int = field(metadata=_range(0, 32))
    decay_rounding: str = field(metadata=_choices(*ROUNDING_RULES))  # rounding of >> decay_bits
    u_decay_range: list = field(metadata={"int_pair": True})  # allowed multipliers m for u
    v_decay_range: list = field(metadata={"int_pair": True})  # allowed multipliers m for v
    u: IntType                                                  # current register
    u_overflow: str = field(metadata=_choices(*OVERFLOW_RULES))
    v: IntType                                                  # voltage register
    v_overflow: str = field(metadata=_choices(*OVERFLOW_RULES))
    threshold: IntType     # unsigned threshold mantissa; threshold = mant << threshold_shift
    threshold_shift: int = field(metadata=_range(0, 32))
    bias: IntType          # signed bias mantissa; bias = mant << exp, 0 <= exp <= bias_exp_max
    bias_exp_max: int = field(metadata=_range(0, 32))


@dataclass(frozen=True)
class Features:
    neuron_models: list
    reset_modes: list         # natively supported reset modes
    custom_reset_modes: list  # supported only through a custom neuron program
    reset_timings: list
    spike_tests: list
    graded_input: bool
    input: IntType            # graded input values (binary spikes are always accepted)
    recurrent: bool
    synapse_bias: bool        # a bias can be added to the synaptic current u
    max_synapse_delay: int = field(metadata=_range(0, 1 << 16))
    zero_reset_discards_input: bool = False  # snnTorch Synaptic's zero reset (loses the step)
    max_spikes: int = field(default=1, metadata=_range(1, 1 << 16))  # > 1: multi-spike output
    membrane_floor: bool = False  # a lower bound on the membrane (Sinabs' min_v_mem)
    custom_features: list = field(default_factory=list)  # only through a custom neuron program
    # a synaptic-current bias as spikes of a constant one-neuron source through a projection
    # (passes/bias_source.py), where synapse_bias is false
    bias_source: bool = False
    # a population may hold up to this many decay/threshold register sets (split into one
    # neuron process per set by the backend); 1: one set per population
    neuron_groups: int = field(default=1, metadata=_range(1, 1 << 16))
    max_pool: bool = False  # a projection may take the maximum of its sums over windows


@dataclass(frozen=True)
class Resources:
    part: str | None = None
    clock_mhz: float | None = None
    lut: int | None = None
    ff: int | None = None
    dsp: int | None = None
    bram_18k: int | None = None
    uram: int | None = None
    axi_data_bits: int | None = field(default=None, metadata=_range(8, 1024))  # memory port
    axi_burst_beats: int | None = field(default=None, metadata=_range(1, 256))  # longest burst
    memory_latency_cycles: int | None = field(default=None, metadata=_range(0, 10000))
    external_memory_mb: int | None = None  # memory the FPGA fabric can read weights from
    cores: int | None = None
    neurons_per_core: int | None = None
    synaptic_memory_bits_per_core: int | None = None
    fan_in_per_core: int | None = None
    fan_out_per_core: int | None = None


SECTIONS = {
    "timing": Timing, "weights": Weights, "accumulator": Accumulator, "neuron": NeuronFormat,
    "features": Features, "resources": Resources,
}
#: sections that define the arithmetic (what a backend must compute exactly)
DATAPATH_SECTIONS = ("timing", "weights", "accumulator", "neuron")
HEAD_FIELDS = {"name": str, "kind": str, "backend": str, "description": str, "aliases": list}
NOT_INHERITED = ("name", "aliases", "description")


def _signed(bits):
    return f"int{int(bits)}"


#: keys of the first target format -> (new key, converter of the old value)
LEGACY_KEYS = {
    "weights.bits": ("weights.type", lambda b: f"int{int(b) + 1}"),  # it meant magnitude bits
    "accumulator.dense_bits": ("accumulator.dense", _signed),
    "accumulator.conv_bits": ("accumulator.conv", _signed),
    "accumulator.intermediate_bits": ("accumulator.intermediate", _signed),
    "neuron.u_bits": ("neuron.u", _signed),
    "neuron.v_bits": ("neuron.v", _signed),
    "neuron.threshold_mant_bits": ("neuron.threshold", lambda b: f"uint{int(b)}"),
    "neuron.bias_mant_bits": ("neuron.bias", _signed),
    "features.input_bits": ("features.input", _signed),
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
        """The target as TOML-like plain data (formats as text), without its file path."""
        out = {"target": {k: getattr(self, k) for k in HEAD_FIELDS}}
        for section in SECTIONS:
            table = {}
            for f in dataclasses.fields(SECTIONS[section]):
                value = getattr(getattr(self, section), f.name)
                given = f"{section}.{f.name}" in self.sources
                if value is None or (not given and value == _default(f)):
                    continue  # a default the file did not state
                table[f.name] = str(value) if isinstance(value, IntType) else value
            out[section] = table
        out["sources"] = dict(self.sources)
        return out

    def get_overrides(self) -> dict:
        """The values set on the command line (``--set``), as given."""
        return {dotted: self.get(dotted) if not isinstance(self.get(dotted), IntType)
                else str(self.get(dotted)) for dotted, src in self.sources.items()
                if src == "command-line override"}

    def datapath(self) -> dict:
        """The arithmetic-defining sections as plain data (for comparing two targets)."""
        full = self.as_dict()
        return {section: full[section] for section in DATAPATH_SECTIONS}

    @property
    def sha256(self) -> str:
        """Hash of the effective target (after inheritance and overrides)."""
        text = json.dumps(self.as_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def from_dict(cls, raw: dict, origin: str = "<embedded target>") -> "Target":
        """Rebuild a target from :meth:`as_dict` data (validated like a file)."""
        return _build(json.loads(json.dumps(raw)), origin)


def _default(f: dataclasses.Field):
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return dataclasses.MISSING


# ----------------------------------------------------------------------------- locating files

def target_files() -> dict[str, Path]:
    """Shipped target files by file stem."""
    root = resources.files("snn_compile._targets")
    return {Path(p.name).stem: Path(str(p)) for p in root.iterdir() if p.name.endswith(".toml")}


def search_path() -> list[Path]:
    """Folders of ``SNN_COMPILE_TARGET_PATH``, in order."""
    return [Path(p) for p in os.environ.get(PATH_ENV, "").split(os.pathsep) if p]


def user_target_files() -> dict[str, Path]:
    """Target files on the search path by file stem (the first folder wins)."""
    found: dict[str, Path] = {}
    for folder in search_path():
        if folder.is_dir():
            for path in sorted(folder.glob("*.toml")):
                found.setdefault(path.stem, path)
    return found


def _all_files() -> dict[str, Path]:
    return {**user_target_files(), **target_files()}  # shipped names win


def available_targets() -> dict[str, str]:
    """Name -> description of every shipped and search-path target (files are parsed only)."""
    out = {}
    for stem, path in sorted(_all_files().items()):
        head = _parse(path).get("target", {})
        name = head.get("name", stem) if isinstance(head, dict) else stem
        out.setdefault(str(name), str(head.get("description", "")) if isinstance(head, dict)
                       else "")
    return out


def _looks_like_path(name: str) -> bool:
    return name.endswith(".toml") or os.sep in name or "/" in name


def _resolve(name, relative_to: Path | None = None) -> Path:
    """A target file from a name, alias or path (paths relative to ``relative_to``'s folder)."""
    if not isinstance(name, (str, os.PathLike)):
        raise TargetError("a target is named by a string", value=repr(name),
                          file=relative_to, hint="write e.g. inherits = \"fpga\"")
    text = os.fspath(name)
    if _looks_like_path(text):
        path = Path(text)
        if relative_to is not None and not path.is_absolute():
            path = relative_to.parent / path
        if not path.is_file():
            raise TargetError("target file not found", file=path)
        return path
    files = _all_files()
    if text in files:
        return files[text]
    for path in files.values():
        head = _parse(path).get("target", {})
        if isinstance(head, dict) and (text == head.get("name")
                                       or text in (head.get("aliases") or [])):
            return path
    raise TargetError("unknown target", value=text,
                      hint=f"choose one of {sorted(files)} or pass a .toml file "
                           f"(or add its folder to {PATH_ENV})")


def _parse(path: Path) -> dict:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except tomllib.TOMLDecodeError as exc:
        raise TargetError(f"invalid TOML: {exc}", file=path) from None
    except OSError as exc:
        raise TargetError(f"cannot read the target file ({exc.strerror})", file=path) from None


# ----------------------------------------------------------------------------- loading

def load_target(name_or_path, overrides: dict[str, Any] | None = None) -> Target:
    """Load a target by name, alias or path, apply ``overrides`` ({"neuron.v": "int16"}), validate."""
    raw, path = _read_with_inheritance(name_or_path, seen=(), relative_to=None)
    for dotted, value in (overrides or {}).items():
        section, _, key = str(dotted).partition(".")
        if section not in SECTIONS or not key:
            raise TargetError("unknown target setting", value=dotted,
                              hint=f"use <section>.<key> with section in {sorted(SECTIONS)}")
        dotted, value = _translate(dotted, value, "override", "--set")
        section, _, key = dotted.partition(".")
        raw.setdefault(section, {})[key] = value
        raw.setdefault("sources", {})[dotted] = "command-line override"
    return _build(raw, path)


def _translate(dotted: str, value, path, where: str):
    """A legacy key and its value in the current form (warning once per use)."""
    if dotted not in LEGACY_KEYS:
        return dotted, value
    new, convert = LEGACY_KEYS[dotted]
    try:
        converted = convert(value)
    except (TypeError, ValueError):
        raise TargetError("wrong type", file=path, value=f"{dotted} = {value!r}",
                          hint="expected an integer width") from None
    warnings.warn(f"{path}: {where} {dotted} = {value!r} is the old form of {new} = "
                  f"{converted!r}; write {new} (bits count every bit, the sign included)",
                  DeprecationWarning, stacklevel=4)
    return new, converted


def _legacy_tables(raw: dict, path) -> dict:
    """Translate legacy keys of every section (values and their [sources] entries)."""
    sources = raw.get("sources")
    for section, table in list(raw.items()):
        if section not in SECTIONS or not isinstance(table, dict):
            continue
        for key in list(table):
            dotted = f"{section}.{key}"
            if dotted in LEGACY_KEYS:
                new, value = _translate(dotted, table.pop(key), path, "key")
                table[new.partition(".")[2]] = value
                if isinstance(sources, dict) and dotted in sources:
                    sources[new] = sources.pop(dotted)
    return raw


def _read_with_inheritance(name, seen: tuple, relative_to: Path | None) -> tuple[dict, Path]:
    path = _resolve(name, relative_to)
    if path.resolve() in seen:
        raise TargetError("target inherits from itself", file=path)
    raw = _parse(path)
    check_tables(raw, path)
    raw = _legacy_tables(raw, path)
    if "inherits" not in raw:
        return raw, path
    base_name = raw.pop("inherits")
    base, _ = _read_with_inheritance(base_name, seen + (path.resolve(),), path)
    for key in NOT_INHERITED:
        base.get("target", {}).pop(key, None)
    for section, table in raw.items():
        if isinstance(table, dict) and isinstance(base.get(section), dict):
            base[section].update(table)
        else:
            base[section] = table
    return base, path


def _build(raw: dict, path) -> Target:
    allowed = set(SECTIONS) | {"target", "sources", "inherits"}
    for section, table in raw.items():
        if section not in allowed:
            raise TargetError("unknown section", file=path, value=section,
                              hint=f"allowed: {sorted(allowed - {'inherits'})}")
        if section != "inherits" and not isinstance(table, dict):
            raise TargetError(f"[{section}] must be a table", file=path,
                              value=f"{section} = {table!r}")
    head = dict(raw.get("target", {}))
    _check_head(head, path)
    sources = raw.get("sources", {})
    if not all(isinstance(v, str) for v in sources.values()):
        raise TargetError("[sources] values must be strings", file=path)
    built = {}
    for section, cls in SECTIONS.items():
        table = raw.get(section, {})
        built[section] = cls(**_section_values(table, cls, section, path))
        for key in table:
            if f"{section}.{key}" not in sources:
                raise TargetError("value has no source", file=path, value=f"{section}.{key}",
                                  hint="add it to [sources] with where the number comes from")
    target = Target(name=head["name"], kind=head["kind"], backend=head["backend"],
                    description=head.get("description", ""), aliases=head.get("aliases", []),
                    sources=dict(sources), path=str(path), **built)
    _check_rules(target, path)
    check_limits(target, path)
    return target


def _check_head(head: dict, path) -> None:
    for key, value in head.items():
        if key not in HEAD_FIELDS:
            raise TargetError("unknown key", file=path, value=f"target.{key}",
                              hint=f"allowed keys: {sorted(HEAD_FIELDS)}")
        if not isinstance(value, HEAD_FIELDS[key]) or (
                key == "aliases" and not all(isinstance(a, str) for a in value)):
            raise TargetError("wrong type", file=path, value=f"target.{key} = {value!r}",
                              hint=f"expected {HEAD_FIELDS[key].__name__}")
    for key in ("name", "kind", "backend"):
        if key not in head:
            raise TargetError("missing key", file=path, value=f"target.{key}")


def _section_values(table: dict, cls, section: str, path) -> dict:
    """Checked and converted values of one section (unknown keys, types, ranges, choices)."""
    hints = get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    out = {}
    for key, value in table.items():
        if key not in fields:
            raise TargetError("unknown key", file=path, value=f"{section}.{key}",
                              hint=f"allowed keys: {sorted(fields)}")
        out[key] = _convert(value, hints[key], fields[key].metadata, f"{section}.{key}", path)
    for key, f in fields.items():
        if key not in out and f.default is dataclasses.MISSING \
                and f.default_factory is dataclasses.MISSING:
            raise TargetError("missing key", file=path, value=f"{section}.{key}")
    return out


def _convert(value, hint, meta, dotted: str, path):
    def bad(expected: str):
        return TargetError("wrong type" if "range" not in expected else "value out of range",
                           file=path, value=f"{dotted} = {value!r}", hint=f"expected {expected}")

    base = getattr(hint, "__args__", (hint,))
    if IntType in base:
        try:
            return IntType.parse(value)
        except ValueError as exc:
            raise bad(f"an integer format such as 'int24' ({exc})") from None
    if value is None and type(None) in base:
        return None
    if isinstance(value, bool):
        if bool not in base:
            raise bad(" or ".join(t.__name__ for t in base if isinstance(t, type)))
        return value
    if int in base and isinstance(value, int):
        lo, hi = meta.get("range", (-(1 << 62), 1 << 62))
        if not lo <= value <= hi:
            raise bad(f"an integer in the range {lo}..{hi}")
        return value
    if float in base and isinstance(value, (int, float)):
        if value != value or value in (float("inf"), float("-inf")) or value < 0:
            raise bad("a finite, non-negative number")
        return float(value)
    if str in base and isinstance(value, str):
        if "choices" in meta and value not in meta["choices"]:
            raise bad(f"one of {list(meta['choices'])}")
        return value
    if list in base and isinstance(value, list):
        if meta.get("int_pair"):
            if len(value) != 2 or not all(isinstance(v, int) and not isinstance(v, bool)
                                          and v >= 0 for v in value) or value[0] > value[1]:
                raise bad("[lo, hi], two non-negative integers with lo <= hi")
        elif not all(isinstance(v, str) for v in value):
            raise bad("a list of strings")
        return list(value)
    raise bad(" or ".join(t.__name__ for t in base if isinstance(t, type)))


def _check_rules(t: Target, path) -> None:
    n = t.neuron
    if n.threshold.signed or n.threshold.shift or n.bias.shift or t.weights.type.shift:
        raise TargetError("threshold is an unsigned mantissa, bias and weights plain integers "
                          "(their shifts are separate keys)", file=path,
                          value=f"threshold {n.threshold}, bias {n.bias}, weights "
                                f"{t.weights.type}",
                          hint="write e.g. threshold = 'uint17' with threshold_shift = 6")
    if not t.weights.type.signed or t.weights.type.bits > 31:
        raise TargetError("weights must be a signed format of at most 31 bits", file=path,
                          value=f"weights.type = {t.weights.type}")
    for key in ("dense", "conv", "intermediate"):
        if not getattr(t.accumulator, key).signed:
            raise TargetError("accumulators are signed", file=path,
                              value=f"accumulator.{key} = {getattr(t.accumulator, key)}")
    for key in ("u", "v"):
        if not getattr(n, key).signed:
            raise TargetError("state registers are signed", file=path,
                              value=f"neuron.{key} = {getattr(n, key)}")
