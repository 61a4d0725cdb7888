"""Target files and ``--set`` values that the datapath can actually run: structure and ranges.

:func:`check_tables` runs on each parsed TOML file (before inheritance): ``inherits`` is a
name, every section is a table, ``[sources]`` maps keys to strings. :func:`check_limits` runs
on the built :class:`~snn_compile.targets.Target` (after overrides): decay ranges are
``[lo, hi]`` integers within ``2 ** decay_bits``, the FPGA part is a plain part number (it is
pasted into Tcl) and resource budgets are non-negative. Widths, shifts and delays are range-
checked field by field when the target is built (the ranges are declared on the dataclasses in
:mod:`snn_compile.targets`; formats are :class:`~snn_compile.datatypes.IntType`, at most 64
bits). Errors name the file, the key and the value.
"""

from __future__ import annotations

import math
import re

from .errors import TargetError

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
