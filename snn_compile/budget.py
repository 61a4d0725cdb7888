"""A memory budget for what input files and settings declare, checked before anything is allocated.

A small file can declare a huge array: an HDF5 dataset or an npz member names its shape in a
header, a model file's tensor can have stride 0, a target's ``timing.synapse_delay`` pads every
run by that many steps. Readers ask :func:`check` (or :func:`check_array`) with the size the
input *declares* before they read or allocate it, and get a
:class:`~snn_compile.errors.SnnCompileError` with the numbers when it exceeds the budget.

The budget is :data:`DEFAULT` (1 GiB) unless the environment variable ``SNN_COMPILE_MEMORY_BUDGET``
says otherwise (bytes, or with a suffix ``K``, ``M``, ``G``, ``T``: ``512M``, ``16G``); in Python,
``with budget.limit_to(nbytes):`` sets it for a block.
"""

from __future__ import annotations

import contextvars
import os
import re
from contextlib import contextmanager

import numpy as np

from .errors import SnnCompileError

ENV = "SNN_COMPILE_MEMORY_BUDGET"
DEFAULT = 1 << 30
_UNITS = {"": 1, "K": 1 << 10, "M": 1 << 20, "G": 1 << 30, "T": 1 << 40}
_override: contextvars.ContextVar[int | None] = contextvars.ContextVar("budget", default=None)


class BudgetError(SnnCompileError):
    """An input declares more memory than the budget allows."""


def parse(text: str) -> int:
    """``"512M"`` -> 536870912 (suffixes K, M, G, T are powers of 1024; an optional ``B``)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", str(text), re.IGNORECASE)
    if not match:
        raise SnnCompileError(f"invalid {ENV}", value=repr(text),
                              hint="give bytes or a size like 512M, 4G")
    return int(float(match.group(1)) * _UNITS[match.group(2).upper()])


def limit() -> int:
    """The budget in bytes now in force."""
    value = _override.get()
    if value is not None:
        return value
    env = os.environ.get(ENV)
    return DEFAULT if env is None or not env.strip() else parse(env)


@contextmanager
def limit_to(nbytes: int):
    """Use a budget of ``nbytes`` inside the block (this thread/context only)."""
    token = _override.set(int(nbytes))
    try:
        yield
    finally:
        _override.reset(token)


def human(nbytes: int) -> str:
    """``1536`` -> ``"1.5 KiB"``."""
    size = float(nbytes)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if size < 1024 or unit == "PiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} PiB"  # pragma: no cover


def check(nbytes: int, what: str, *, file=None, node=None, detail: str | None = None) -> int:
    """``nbytes`` if it fits the budget, else BudgetError naming ``what`` and the numbers."""
    nbytes = int(nbytes)
    budget = limit()
    if nbytes > budget:
        value = f"{human(nbytes)}" + (f", {detail}" if detail else "") + \
                f"; the memory budget is {human(budget)}"
        raise BudgetError(f"{what} would need more memory than the budget allows", file=file,
                          node=node, value=value,
                          hint=f"use a smaller input, or raise the budget with {ENV}=<size>, "
                               f"e.g. {ENV}={max(1, -(-nbytes // (1 << 30)) * 2)}G")
    return nbytes


def array_bytes(shape, dtype) -> int:
    """Bytes of an array of ``shape`` and ``dtype`` (exact Python integers: no overflow)."""
    total = np.dtype(dtype).itemsize
    for dim in shape:
        dim = int(dim)
        if dim < 0:
            raise SnnCompileError("negative array dimension", value=f"shape {tuple(shape)}")
        total *= dim
    return total


def check_array(shape, dtype, what: str, *, file=None, node=None) -> int:
    """:func:`check` for an array that ``shape`` and ``dtype`` declare."""
    shape = tuple(int(d) for d in shape)
    return check(array_bytes(shape, dtype), what, file=file, node=node,
                 detail=f"shape {shape} {np.dtype(dtype).name}")


# Bytes the emulator keeps per neuron and step: the int64 synaptic input, u, v, and the spikes.
RUN_BYTES_PER_NEURON_STEP = 8 + 8 + 8 + 1


def check_run(net, steps: int, batch: int, what: str = "the emulator run") -> int:
    """Refuse a run of ``net`` on ``steps`` x ``batch`` samples whose recorded states would
    exceed the budget; the steps include the target's latency padding (``timing``)."""
    padded = int(steps) + net.max_lag
    neurons = sum(pop.size for pop in net.populations)
    inputs = int(np.prod(net.input_shape))
    nbytes = padded * int(batch) * (neurons * RUN_BYTES_PER_NEURON_STEP + inputs * 8)
    return check(nbytes, what, detail=f"{padded} steps (incl. the target's latency) x {batch} "
                                      f"samples x {neurons} neurons")


#: The address space that loading torch needs here: under ``prlimit --as`` / ``ulimit -v`` of
#: 400-550 MB torch's own start-up aborts the process (C++ std::bad_alloc, or the loader's
#: "cannot allocate memory for thread-local data") where Python cannot catch it;
#: ``benchmarks/oom_limits.py`` measures the edge (650 MB imported).
TORCH_ADDRESS_SPACE = 700 << 20


def check_address_space(need: int = TORCH_ADDRESS_SPACE) -> None:
    """SnnCompileError when the process's address-space limit (``ulimit -v``) is below
    ``need``: called before torch is first imported, so a low limit is one clear line instead
    of an abort inside a library."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY and soft < need:
        raise SnnCompileError("the address-space limit is too low to load torch",
                              value=f"{soft / (1 << 20):.0f} MB",
                              hint=f"raise it to at least {need >> 20} MB (ulimit -v "
                                   f"{need >> 10}), or run a compiled network (snn-compile run "
                                   "OUT/), which needs no torch")

