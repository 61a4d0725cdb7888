"""Target files and ``--set`` values that the datapath can actually run: structure and ranges.

:func:`check_tables` runs on each parsed TOML file (before inheritance): ``inherits`` is a
name, every section is a table, ``[sources]`` maps keys to strings. :func:`check_limits` runs
on the built :class:`~snn_compile.targets.Target` (after overrides): every width, shift and
delay lies in the range of :data:`INT_RANGES` (the emulator computes in int64, so no width
exceeds 64 bits; a signed mantissa needs 2), decay ranges are ``[lo, hi]`` integers within
``2 ** decay_bits``, and the FPGA part is a plain part number (it is pasted into Tcl). Errors
name the file, the key and the value.
"""

from __future__ import annotations

import math
import re

from .errors import TargetError

MAX_DELAY = 1 << 16
INT_RANGES = {
    "timing.synapse_delay": (0, MAX_DELAY),
    "weights.exp_min": (-62, 62),
    "weights.exp_max": (-62, 62),
    "accumulator.dense_bits": (2, 64),
    "accumulator.conv_bits": (2, 64),
    "accumulator.intermediate_bits": (2, 64),
    "neuron.activation_shift": (0, 62),
    "neuron.decay_bits": (1, 62),
    "neuron.threshold_mant_bits": (1, 62),
    "neuron.threshold_shift": (0, 62),
    "neuron.bias_mant_bits": (2, 62),
    "neuron.bias_exp_max": (0, 62),
    "features.input_bits": (1, 62),
    "features.max_synapse_delay": (0, MAX_DELAY),
}
PART = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}")
TABLES = ("target", "timing", "weights", "accumulator", "neuron", "features", "resources",
          "sources")


def check_tables(raw: dict, path) -> None:
    """The shape of one parsed target file."""
    inherits = raw.get("inherits")
    if inherits is not None and not isinstance(inherits, str):
        raise TargetError("'inherits' must be a target name or file", file=path,
                          value=f"inherits = {inherits!r}", hint='e.g. inherits = "fpga"')
    for section, table in raw.items():
        if section != "inherits" and not isinstance(table, dict):
            raise TargetError(f"[{section}] must be a table", file=path,
                              value=f"{section} = {table!r}"[:80],
                              hint=f"write [{section}] with key = value lines")
    for key, source in raw.get("sources", {}).items():
        if not isinstance(source, str):
            raise TargetError("a source must be a sentence saying where the value comes from",
                              file=path, value=f"sources.{key} = {source!r}"[:80])


def check_limits(target, path) -> None:
    """The ranges described in the module docstring."""
    for dotted, (lo, hi) in INT_RANGES.items():
        value = target.get(dotted)
        if not lo <= value <= hi:
            raise TargetError("value out of range", file=path, value=f"{dotted} = {value}",
                              hint=f"use {lo}..{hi}")
    if target.weights.exp_min > target.weights.exp_max:
        raise TargetError("weights.exp_min is above weights.exp_max", file=path,
                          value=f"{target.weights.exp_min} > {target.weights.exp_max}")
    top = 1 << target.neuron.decay_bits
    for key in ("u_decay_range", "v_decay_range"):
        pair = getattr(target.neuron, key)
        if not (len(pair) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                       for v in pair) and 0 <= pair[0] <= pair[1] <= top):
            raise TargetError("a decay range is [lowest, highest] integer multiplier",
                              file=path, value=f"neuron.{key} = {pair!r}"[:80],
                              hint=f"integers with 0 <= lowest <= highest <= {top} "
                                   "(2 ** decay_bits)")
    res = target.resources
    if res.part is not None and not PART.fullmatch(res.part):
        raise TargetError("resources.part is not a part number", file=path,
                          value=repr(res.part)[:80], hint="e.g. part = \"xc7z020clg400-1\"")
    if res.clock_mhz is not None and not (math.isfinite(res.clock_mhz) and res.clock_mhz > 0):
        raise TargetError("resources.clock_mhz must be a positive number", file=path,
                          value=res.clock_mhz)
    for key in ("lut", "ff", "dsp", "bram_18k", "uram", "cores", "neurons_per_core",
                "synaptic_memory_bits_per_core", "fan_in_per_core", "fan_out_per_core"):
        value = getattr(res, key)
        if value is not None and value < 0:
            raise TargetError("a resource count cannot be negative", file=path,
                              value=f"resources.{key} = {value}")
