"""TinyCore's program format: what ``lower`` makes, ``emit`` writes and the engine runs.

TinyCore is a hypothetical small spiking accelerator. It has up to :data:`MAX_CORES` cores;
each holds whole populations (up to :data:`NEURONS_PER_CORE` neurons and
:data:`SYNAPSES_PER_CORE` synapses of the projections into them). A population has
:data:`MAX_FAN_IN` input ports (projections into it), a 1-bit spike register (one spike per step
at most), and mode registers for the datapath rules it implements (:data:`OVERFLOW_MODES`,
:data:`ROUNDING_MODES`, :data:`SPIKE_TESTS`). Synapses are weight tables in CSR form (one row per
target neuron); delays are ring buffers of past spikes. It has no convolution engine.

A :class:`Program` is two parts, the same in memory and on disk:

* ``header`` (``program.json``): plain JSON data. The input format (every field of
  :class:`snn_compile.ir.fixed.QInput`), the populations in
  evaluation order (name, shape, core, ring depth, the neuron configuration of
  :class:`snn_compile.datapath.step.NeuronConfig`, the projections feeding it), the projections
  (source and target by position, ``-1`` for the input; kind, delay, exponent, accumulator
  width), the placement on cores. Names are stored as JSON strings and never used as keys.
* ``tables`` (``program.npz``): flat int64 arrays keyed by position: ``pop<i>/<register>``
  (one value per neuron: ``decay_u``, ``decay_v``, ``threshold``, ``bias``, and
  ``input_bias`` / ``v_floor`` where the population has them) and ``proj<j>/indptr``,
  ``proj<j>/indices``, ``proj<j>/weights`` (CSR).

Files are deterministic: sorted JSON keys, and the npz written by
:func:`snn_compile.ir.fixed_io.npz_bytes` (sorted members, fixed timestamps).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from snn_compile.datapath.step import NeuronConfig
from snn_compile.datatypes import IntType
from snn_compile.errors import BackendError, SnnCompileError, UnsupportedError
from snn_compile.ir.fixed import QInput, QNetwork, QProjection
from snn_compile.ir.fixed_io import npz_bytes

FORMAT, VERSION = "tinycore-program", 1
JSON_NAME, NPZ_NAME = "program.json", "program.npz"

MAX_CORES = 16
NEURONS_PER_CORE = 1024
SYNAPSES_PER_CORE = 1 << 16
MAX_FAN_IN = 3
OVERFLOW_MODES = ("wrap", "saturate", "saturate_symmetric")  # no Lava-style single-pass wrap
ROUNDING_MODES = ("toward_zero", "floor", "nearest")
SPIKE_TESTS = (">", ">=")


@dataclass
class Program:
    """A lowered network: JSON-able ``header`` and flat integer ``tables`` (module docstring)."""

    header: dict
    tables: dict[str, np.ndarray]

    def files(self) -> dict[str, bytes]:
        """The bytes of ``program.json`` and ``program.npz``."""
        text = json.dumps(self.header, indent=1, sort_keys=True, ensure_ascii=True) + "\n"
        return {JSON_NAME: text.encode("ascii"), NPZ_NAME: npz_bytes(self.tables)}

    def save(self, folder: Path) -> dict[str, bytes]:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        files = self.files()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        return files

    @classmethod
    def load(cls, folder: Path) -> "Program":
        """Read a program written by :meth:`save`; BackendError when it is not one."""
        folder = Path(folder)
        try:
            header = json.loads((folder / JSON_NAME).read_text(encoding="ascii"))
            with np.load(folder / NPZ_NAME, allow_pickle=False) as data:
                tables = {key: data[key] for key in data.files}
        except (OSError, ValueError) as exc:
            raise BackendError("not a TinyCore program", file=folder, value=str(exc)) from None
        if not isinstance(header, dict) or header.get("format") != FORMAT \
                or header.get("version") != VERSION:
            raise BackendError("not a TinyCore program", file=folder / JSON_NAME,
                               hint=f"expected format {FORMAT!r} version {VERSION}")
        program = cls(header, tables)
        program.validate()
        return program

    def validate(self) -> None:
        """The input format and neuron configurations are snn-compile's, every mode is one
        TinyCore has, every table the header names exists with its size; else BackendError."""
        def build(cls, data, where):
            try:
                return cls(**data)
            except (TypeError, ValueError, SnnCompileError) as exc:
                raise BackendError(f"the program's {cls.__name__} is not one this snn-compile "
                                   "reads", node=where, value=str(exc)) from None

        build(QInput, self.header["input"]["format"], "input")
        for i, pop in enumerate(self.header["populations"]):
            cfg = build(NeuronConfig, pop["neuron"], pop["name"])
            for key, allowed in (("u_overflow", OVERFLOW_MODES), ("v_overflow", OVERFLOW_MODES),
                                 ("rounding", ROUNDING_MODES), ("spike_test", SPIKE_TESTS)):
                if getattr(cfg, key) not in allowed:
                    raise BackendError(f"TinyCore has no {key} mode {getattr(cfg, key)!r}",
                                       node=pop["name"])
            for key in pop["registers"]:
                self._table(f"pop{i}/{key}", (pop["size"],))
        for j, proj in enumerate(self.header["projections"]):
            n_out = self.header["populations"][proj["target"]]["size"]
            self._table(f"proj{j}/indptr", (n_out + 1,))
            for key in ("indices", "weights"):
                self._table(f"proj{j}/{key}", (proj["synapses"],))

    def _table(self, key: str, shape: tuple) -> None:
        table = self.tables.get(key)
        if table is None or table.shape != shape or table.dtype != np.int64:
            raise BackendError(f"table {key} is missing or not int64 of shape {shape}",
                               value=None if table is None else f"{table.dtype} {table.shape}")


def input_format(inp: QInput) -> dict:
    """Every field of the input's format as JSON data; ``QInput(**input_format(inp))`` rebuilds
    it (so a field snn-compile adds later is carried along, not silently dropped)."""
    out = {}
    for f in fields(inp):
        value = getattr(inp, f.name)
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, IntType):  # e.g. "uint1" (spikes) or "int8"
            value = value.name
        elif isinstance(value, np.generic):
            value = value.item()
        out[f.name] = value
    return out


def _per_neuron(value, shape) -> np.ndarray:
    return np.ascontiguousarray(np.broadcast_to(np.asarray(value, np.int64), shape).reshape(-1))


def csr_table(proj: QProjection, source_shape, prune_zeros: bool):
    """``(indptr, indices, weights)``: one row per target neuron, columns = source neurons."""
    if proj.kind == "dense":
        dense = np.asarray(proj.weight, np.int64)
    elif proj.kind == "elementwise":
        dense = np.diag(_per_neuron(proj.weight, source_shape))
    else:
        raise UnsupportedError(f"TinyCore cannot run {proj.kind} projections", node=proj.name)
    keep = dense != 0 if prune_zeros else np.ones(dense.shape, bool)
    if proj.kind == "elementwise":  # one synapse per neuron, never the off-diagonal zeros
        keep &= np.eye(dense.shape[0], dtype=bool)
    rows, cols = np.nonzero(keep)  # row-major: sorted by row, then column
    indptr = np.zeros(dense.shape[0] + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=dense.shape[0]), out=indptr[1:])
    return indptr, cols.astype(np.int64), dense[rows, cols]


def place(populations: list[dict], cores: int) -> list[dict]:
    """Put each population on a core: largest first, onto the least-filled core with room.
    Sets ``pop["core"]``; UnsupportedError naming the population that fits nowhere."""
    load = [{"core": k, "populations": [], "neurons": 0, "synapses": 0} for k in range(cores)]
    by_size = sorted(range(len(populations)),
                     key=lambda i: (-populations[i]["size"], -populations[i]["synapses"], i))
    for i in by_size:
        pop = populations[i]
        room = [c for c in load if c["neurons"] + pop["size"] <= NEURONS_PER_CORE
                and c["synapses"] + pop["synapses"] <= SYNAPSES_PER_CORE]
        if not room:
            whole = pop["size"] > NEURONS_PER_CORE or pop["synapses"] > SYNAPSES_PER_CORE
            raise UnsupportedError(
                f"population does not fit on {cores} TinyCore core(s)", node=pop["name"],
                value=f"{pop['size']} neurons, {pop['synapses']} synapses; a core holds "
                      f"{NEURONS_PER_CORE} neurons and {SYNAPSES_PER_CORE} synapses",
                hint="TinyCore cannot split a population over cores" if whole else
                     f"use more cores (--backend-opt cores=N, at most {MAX_CORES})")
        core = min(room, key=lambda c: (c["neurons"], c["core"]))
        core["populations"].append(i)
        core["neurons"] += pop["size"]
        core["synapses"] += pop["synapses"]
        pop["core"] = core["core"]
    for core in load:
        core["populations"].sort()
    return load


def lower_network(net: QNetwork, *, cores: int = 1, prune_zeros: bool = True) -> Program:
    """The TinyCore program of ``net`` (which the backend's capabilities have accepted)."""
    order = list(net.order)
    position = {net.input.name: -1, **{name: i for i, name in enumerate(order)}}
    ring = dict.fromkeys(position, 1)  # a ring slot per step of the longest outgoing delay
    for proj in net.projections:
        ring[proj.source] = max(ring[proj.source], proj.delay + 1)
    tables: dict[str, np.ndarray] = {}
    populations, projections = [], []
    for i, name in enumerate(order):
        pop = net.population(name)
        neuron = pop.neuron
        registers = {"decay_u": neuron.decay_u, "decay_v": neuron.decay_v,
                     "threshold": neuron.threshold, "bias": neuron.bias}
        if pop.input_bias is not None:
            registers["input_bias"] = pop.input_bias
        if neuron.v_floor is not None:
            registers["v_floor"] = neuron.v_floor
        for key, value in registers.items():
            tables[f"pop{i}/{key}"] = _per_neuron(value, pop.shape)
        inputs = []
        for proj in net.incoming(name):
            j = len(projections)
            indptr, indices, weights = csr_table(proj, net.shape_of(proj.source), prune_zeros)
            tables.update({f"proj{j}/indptr": indptr, f"proj{j}/indices": indices,
                           f"proj{j}/weights": weights})
            projections.append({"name": proj.name, "kind": proj.kind,
                                "source": position[proj.source], "target": i,
                                "delay": proj.delay, "weight_exp": proj.weight_exp,
                                "acc_bits": proj.accumulator(net.target).bits,
                                "synapses": int(weights.size)})
            inputs.append(j)
        populations.append({"name": name, "shape": list(pop.shape), "size": pop.size,
                            "ring": ring[name], "inputs": inputs, "registers": sorted(registers),
                            "synapses": sum(projections[j]["synapses"] for j in inputs),
                            "neuron": asdict(NeuronConfig.of(net.target, neuron))})
    inp = net.input
    header = {
        "format": FORMAT, "version": VERSION, "target": net.target.name,
        "input": {"format": input_format(inp), "size": inp.size, "ring": ring[inp.name]},
        "dense_bits": net.target.accumulator.dense.bits,
        "populations": populations, "projections": projections,
        "output": position[net.output],
        "cores": place(populations, cores),
    }
    return Program(header, tables)
