"""The native engine: the emulator as generated, compiled C kernels (one per group).

:class:`NativeProgram` holds a network prepared for one ``record`` choice. A run goes group by
group in dependency order (like the numpy engine): the group's sources are already complete
arrays ``[T, B, n]``, so the engine measures their density first and, for a dense or
convolution projection whose input is busier than :data:`DENSE_ABOVE`, computes its sums for
every step at once by an exact BLAS product (``"pre"`` mode); every other projection is
event-driven inside the kernel. The kernel (:mod:`.kernel_source`, planned by
:mod:`.kernel_plan`, built by :mod:`.compiler`) then steps all samples of the group in parallel.

Only what ``record`` asks for is stored; spikes that a later group reads are kept in internal
buffers that the program reuses from run to run. Recorded arrays are new on every run unless the
caller hands back an earlier trace (``out=``) whose arrays are then overwritten.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import warnings
import weakref

import numpy as np

from ..errors import UnsupportedError
from ..ir.fixed import QNetwork
from ..trace import Trace
from . import compiler
from .kernel_plan import NUMPY_TYPES, GroupPlan, group_plan, source_plan
from .kernel_source import PRELUDE, KernelSource, group_source, translation_unit
from .records import kept
from .synapse import product

#: Source density above which a projection's sums are precomputed by a dense exact product
#: instead of being accumulated event by event. Measured crossovers, one AVX-512 core: 784->1000
#: dense at about 0.37 (event 0.036 s vs dense 0.069 s at 0.25; 0.076 vs 0.071 at 0.4), the
#: 2x34x34 -> 12x15x15 convolution at about 0.7. Elementwise projections are always computed in
#: the neuron loop.
DENSE_ABOVE = {"dense": 0.4, "conv": 0.75}

#: ``engine="auto"`` takes the native engine from this many synaptic operations of a run on
#: (time steps x samples x synapses): below it the numpy engine finishes before a kernel compiles.
#: (The numpy engine's products run on torch: in a process that has not imported torch, its
#: import, 1-2 s, costs more than kernels from the cache, so every run there takes native.)
AUTO_MIN_WORK = 5e7

#: Why the native engine may not run a network here: no compiler, a failed build, or a network
#: outside what its kernels prove exact (sums beyond 64 bits).
NativeUnavailable = (compiler.CompilerError, UnsupportedError)

_programs: "weakref.WeakKeyDictionary[QNetwork, dict]" = weakref.WeakKeyDictionary()
_warned: set[str] = set()


def program(net: QNetwork, record="all") -> "NativeProgram":
    """The (cached) native program of ``net`` for ``record``."""
    key = record if isinstance(record, str) else frozenset(record)
    per_net = _programs.setdefault(net, {})
    if key not in per_net:
        per_net[key] = NativeProgram(net, record)
    return per_net[key]


def synapse_work(net: QNetwork, steps: int, batch: int) -> int:
    """Synaptic operations of a run if every input were active (the size of the job)."""
    total = 0
    for proj in net.projections:
        target = net.population(proj.target)
        if proj.kind == "conv":
            per_output = int(np.prod(proj.weight.shape[1:]))
            _, oh, ow = proj.conv.conv_shape(proj.weight.shape)
            total += proj.weight.shape[0] * oh * ow * per_output
        else:
            total += proj.weight.size if proj.kind == "dense" else target.size
    return total * steps * batch


def warn_fallback(reason: str) -> None:
    """Warn (once per reason and process) that the numpy engine runs instead."""
    if reason not in _warned:
        _warned.add(reason)
        warnings.warn(f"native emulator unavailable, running the numpy engine: {reason}",
                      RuntimeWarning, stacklevel=3)


def auto_engine(net: QNetwork, input_shape) -> str:
    """``"native"`` where a compiler works, for a run large enough to repay its kernels or in a
    process without torch (see :data:`AUTO_MIN_WORK`); ``"numpy"`` otherwise (warning once if
    the compiler is what is missing)."""
    steps, batch = (tuple(input_shape) + (0, 0))[:2]
    if synapse_work(net, steps, batch) < AUTO_MIN_WORK and "torch" in sys.modules:
        return "numpy"
    ok, why = compiler.available()
    if not ok:
        warn_fallback(why)
        return "numpy"
    return "native"


#: A group runs on one thread below this many neuron updates per run (T x B x neurons): there
#: a fork-join costs more than it saves, and on a busy machine a parallel region waits up to a
#: scheduler time slice for its second thread (measured 12 ms per region on the 2-core VM).
PARALLEL_MIN_WORK = 2_000_000


def group_threads(threads: int, steps: int, batch: int, plan: GroupPlan) -> int:
    """The threads a group gets: at most one per sample, one for a small run."""
    work = steps * batch * sum(p.pop.size for p in plan.populations)
    return 1 if work < PARALLEL_MIN_WORK else max(1, min(threads, batch))


def default_threads() -> int:
    """``$OMP_NUM_THREADS`` if set, else the CPUs this process may run on."""
    env = os.environ.get("OMP_NUM_THREADS", "").split(",")[0]
    if env.isdigit() and int(env) > 0:
        return int(env)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class _Kernel:
    """One compiled group kernel with its constant arrays."""

    def __init__(self, plan: GroupPlan, source: KernelSource, lib: ctypes.CDLL):
        self.plan = plan
        self.slots = source.slots
        self.constants = [aligned(arr) for arr in source.constants]
        fn = getattr(lib, source.entry)
        fn.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_int64, ctypes.c_void_p]
        fn.restype = ctypes.c_int
        self._fn = fn

    def __call__(self, T: int, B: int, threads: int, slots: dict) -> None:
        arrays = self.constants + [slots[key] for key in self.slots]
        for arr in arrays:
            assert arr.flags.c_contiguous
        bufs = (ctypes.c_void_p * max(len(arrays), 1))(*[a.ctypes.data for a in arrays])
        if self._fn(T, B, threads, bufs):
            raise MemoryError("the native emulator could not allocate its scratch memory")


class NativeProgram:
    """``net`` prepared for the native engine with one ``record`` choice (see the module
    docstring). Kernels are compiled on first use; a program may be run many times."""

    def __init__(self, net: QNetwork, record="all"):
        kept(net, net.output, record)  # validates record
        self.net, self.record = net, record
        self._kernels: dict[tuple, _Kernel] = {}
        self._buffers: dict[tuple, np.ndarray] = {}
        self._lock = threading.Lock()
        self.modes_used: dict[str, str] = {}  # projection -> mode of the last run (diagnostics)

    # ------------------------------------------------------------------ preparation
    def kernel(self, index: int, modes: dict[str, str]) -> _Kernel:
        """Group ``index``'s kernel for ``modes``: the all-event kernels of every group are
        built together, in one compiler run; other mode choices one group at a time."""
        key = (index, tuple(sorted(modes.items())))
        if key not in self._kernels:
            if modes:
                plan = group_plan(self.net, self.net.components[index], self.record, modes)
                source = group_source(plan, f"g{index}_")
                self._kernels[key] = _Kernel(plan, source, compiler.load(
                    translation_unit([source])))
            else:
                self.compile_all()
        return self._kernels[key]

    def compile_all(self) -> None:
        """Build every group's event-driven kernel now, in one compiler run."""
        if all((i, ()) in self._kernels for i in range(len(self.net.components))):
            return
        plans = [group_plan(self.net, group, self.record, {})
                 for group in self.net.components]
        sources = [group_source(plan, f"g{i}_") for i, plan in enumerate(plans)]
        lib = compiler.load(translation_unit(sources))
        for i, (plan, source) in enumerate(zip(plans, sources)):
            self._kernels[(i, ())] = _Kernel(plan, source, lib)

    def _modes(self, group: tuple[str, ...], arrays: dict) -> dict[str, str]:
        """"pre" for the dense and convolution projections from outside the group whose
        input over the window is busier than :data:`DENSE_ABOVE`."""
        modes = {}
        for name in group:
            for proj in self.net.incoming(name):
                src = arrays.get(proj.source)
                if proj.kind == "elementwise" or proj.source in group or src is None \
                        or src.size == 0:
                    continue
                if np.count_nonzero(src) > DENSE_ABOVE[proj.kind] * src.size:
                    modes[proj.name] = "pre"
        return modes

    def _buffer(self, key, shape, dtype) -> np.ndarray:
        """An internal array, reused between runs."""
        arr = self._buffers.get(key)
        if arr is None or arr.shape != shape or arr.dtype != dtype:
            arr = self._buffers[key] = np.empty(shape, dtype)
        return arr

    # ------------------------------------------------------------------ running
    def run(self, spikes, *, threads: int | None = None, out: Trace | None = None) -> Trace:
        """Run on ``spikes`` [T, B, *input_shape]; ``out`` (a trace of an earlier run of this
        program) lends its arrays to this run's records."""
        net = self.net
        threads = threads or default_threads()
        with self._lock:
            inp = source_plan(net, net.input.name)
            x = encode(net, spikes, NUMPY_TYPES[inp.ctype])
            T, B = x.shape[:2]
            arrays = {net.input.name: x}
            layers = {}
            for index, group in enumerate(net.components):
                modes = self._modes(group, arrays)
                self.modes_used.update({p.name: modes.get(p.name, "event")
                                        for name in group for p in net.incoming(name)})
                kernel = self.kernel(index, modes)
                slots = self._slots(kernel, arrays, T, B, out)
                kernel(T, B, group_threads(threads, T, B, kernel.plan), slots)
                for (key, name), arr in slots.items():
                    if key == "spikes":
                        arrays[name] = arr
                    if key in ("spikes", "u", "v") and key in kept(net, name, self.record):
                        layers.setdefault(name, {})[key] = arr.reshape(
                            T, B, *net.population(name).shape)
        out_pop = net.output_population
        return Trace(output=layers[out_pop.name]["spikes" if out_pop.neuron.spiking else "v"],
                     layers=layers)

    def _slots(self, kernel: _Kernel, arrays: dict, T: int, B: int, out: Trace | None) -> dict:
        plans = {p.pop.name: p for p in kernel.plan.populations}
        projections = {pr.proj.name: pr for p in kernel.plan.populations for pr in p.projections}
        slots = {}
        for key, name in kernel.slots:
            if key == "source":
                slots[(key, name)] = arrays[name]
            elif key == "pre":
                slots[(key, name)] = self._pre(projections[name], arrays, T, B)
            else:
                pp = plans[name]
                ctype = {"spikes": pp.spike_ctype, "u": pp.u_ctype, "v": pp.v_ctype}[key]
                shape, dtype = (T, B, pp.pop.size), NUMPY_TYPES[ctype]
                if key in kept(self.net, name, self.record):
                    slots[(key, name)] = _lend(out, name, key, shape, dtype)
                else:
                    slots[(key, name)] = self._buffer((key, name), shape, dtype)
        return slots

    def _pre(self, plan, arrays: dict, T: int, B: int) -> np.ndarray:
        """The exact sums of all steps of a "pre" projection, ``[T, B, n]``, zero before its
        delay."""
        proj = plan.proj
        src = arrays[proj.source]
        pre = self._buffer(("pre", proj.name), (T, B, plan.target_size),
                           NUMPY_TYPES[plan.acc_ctype])
        d = min(proj.delay, T)
        pre[:d] = 0
        if T > d:
            flat = src[:T - d].reshape((T - d) * B, -1)
            pre[d:] = product(proj, flat, self.net.shape_of(proj.source),
                              NUMPY_TYPES[plan.acc_ctype]).reshape(T - d, B, -1)
        return pre


_BINARY_SOURCE = "\n".join([PRELUDE] + [f"""
/* x as 0/1 bytes; returns how many values are neither 0 nor 1 (NaN included) */
int64_t snn_binary_{name}(const {ctype} *restrict x, uint8_t *restrict out, int64_t n) {{
    int64_t bad = 0;
    for (int64_t i = 0; i < n; i++) {{
        bad += (x[i] != 0) & (x[i] != 1);
        out[i] = (uint8_t)(x[i] == 1);
    }}
    return bad;
}}""" for name, ctype in (("f32", "float"), ("f64", "double"), ("u8", "uint8_t"))])
_BINARY_TYPES = {np.dtype(np.float32): "f32", np.dtype(np.float64): "f64",
                 np.dtype(np.uint8): "u8"}


def encode(net: QNetwork, spikes, dtype) -> np.ndarray:
    """``net.input.encode(spikes, dtype)``, with binary float input converted and checked in one
    compiled pass (any value other than 0 and 1 goes back to ``encode`` for its error)."""
    arr = np.asarray(spikes)
    kind = _BINARY_TYPES.get(arr.dtype)
    if not (net.input.binary and kind and arr.flags.c_contiguous and arr.ndim >= 2
            and tuple(arr.shape[2:]) == net.input.shape):
        return np.ascontiguousarray(net.input.encode(spikes, dtype), dtype)
    out = np.empty((arr.shape[0], arr.shape[1], net.input.size), np.uint8)
    fn = getattr(compiler.load(_BINARY_SOURCE), f"snn_binary_{kind}")
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    fn.restype = ctypes.c_int64
    if fn(arr.ctypes.data, out.ctypes.data, arr.size):
        return net.input.encode(spikes, dtype)  # raises the input format's error
    return out.astype(dtype, copy=False)


def aligned(arr: np.ndarray, alignment: int = 64) -> np.ndarray:
    """A C-contiguous copy of ``arr`` starting on a cache line."""
    raw = np.empty(arr.nbytes + alignment, np.uint8)
    start = -raw.ctypes.data % alignment
    out = raw[start:start + arr.nbytes].view(arr.dtype).reshape(arr.shape)
    out[...] = arr
    return out


def _lend(out: Trace | None, name: str, key: str, shape, dtype) -> np.ndarray:
    """The array of ``out`` for this record if it fits (flattened view), else a new one."""
    arr = None if out is None else out.layers.get(name, {}).get(key)
    if arr is not None and arr.dtype == dtype and arr.flags.c_contiguous \
            and arr.size == int(np.prod(shape)) and arr.shape[:2] == shape[:2]:
        return arr.reshape(shape)
    return np.empty(shape, dtype)
