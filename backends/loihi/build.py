"""Build and run a Lava process graph from a lowered network (manifest + parameter arrays).

Standalone module (numpy, scipy + lava only): snn-compile uses it in-process, and bring-up
bundles carry a verbatim copy, so the lab machine runs exactly the code that was tested here.
Install the Python 3.11 ByteEncoder shim before importing it.

The graph: a ``RingBuffer`` holding the input; one neuron process (``LIF`` or ``SnnLIF``) per
entry of ``neurons``; one synapse process (``Dense``, ``DelayDense``, ``Sparse``,
``DelaySparse``, ``Conv``) per entry of ``synapses``, reading its source's ``s_out`` (flattened
when the source is an ``(X, Y, C)`` map) and writing into its target's ``a_in`` (reshaped to
the target's map), where Lava adds all of a target's inputs in int32. All neuron processes exist
before any synapse, so recurrent and feedback loops close like any other connection. One
``Monitor`` per recorded quantity (``s_out``, ``u``, ``v`` of every neuron process; a Monitor
records a single Var or port). Monitor row ``t`` is Lava time step ``t + 1``, ``v`` is read
after the reset, which is the emulator's convention; each synapse process adds one step, which
the manifest's delays already count, so nothing needs shifting.
"""

from __future__ import annotations

import importlib.util

import numpy as np
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.proc.conv.process import Conv
from lava.proc.dense.process import Dense, DelayDense
from lava.proc.io.source import RingBuffer
from lava.proc.lif.process import LIF
from lava.proc.monitor.process import Monitor
from lava.proc.sparse.process import DelaySparse, Sparse
from lava.utils.weightutils import SignMode
from scipy.sparse import csr_matrix

from .lava_cleanup import stopping

RECORDED = {"spikes": "s_out", "u": "u", "v": "v"}
HARDWARE_MODULES = ("lava.magma.compiler.subcompilers.nc.ncproc_compiler", "nxcore")
CONV_GROUPS_MAX = 127  # Lava's Conv keeps groups in an int8 Var (lava/proc/conv/models.py:29)


def resolve(value, params):
    """A manifest value: an int (or None), or 'params:<key>' naming an array in params.npz."""
    if isinstance(value, str) and value.startswith("params:"):
        return np.asarray(params[value[len("params:"):]])
    return value


# ----------------------------------------------------------------------------- layouts

def lava_order(entry: dict, params) -> np.ndarray:
    """IR flat index of every element of a population's (or the input's) Lava order."""
    order = resolve(entry["order"], params)
    return np.arange(int(np.prod(entry["shape"]))) if order is None else order


def to_lava(arr: np.ndarray, entry: dict, params) -> np.ndarray:
    """``[..., *shape]`` (snn-compile layout) -> ``[..., n]`` in Lava order."""
    lead = arr.shape[:arr.ndim - len(entry["shape"])]
    return arr.reshape(*lead, -1)[..., lava_order(entry, params)]


def from_lava(arr: np.ndarray, entry: dict, params) -> np.ndarray:
    """``[..., n]`` in Lava order -> ``[..., *shape]`` (snn-compile layout)."""
    out = np.empty_like(arr)
    out[..., lava_order(entry, params)] = arr
    return out.reshape(*arr.shape[:-1], *entry["shape"])


# ----------------------------------------------------------------------------- processes

def make_neuron(entry: dict, params):
    shape = tuple(entry["lava_shape"])
    common = dict(shape=shape, du=entry["du"], dv=entry["dv"], vth=entry["vth"],
                  bias_mant=resolve(entry["bias_mant"], params),
                  bias_exp=resolve(entry["bias_exp"], params), name=entry["name"])
    if entry["process"] == "LIF":
        return LIF(**common)
    from .processes import SnnLIF  # only bundles whose network needs it carry this module
    return SnnLIF(**common, reset=entry["reset"], reset_timing=entry["reset_timing"],
                  spike_test=entry["spike_test"],
                  reset_discards_input=entry["reset_discards_input"],
                  spiking=entry["spiking"], max_spikes=entry["max_spikes"],
                  v_floor=resolve(entry["v_floor"], params))


def sparse_weights(entry: dict, params) -> csr_matrix:
    rows, cols = resolve(entry["rows"], params), resolve(entry["cols"], params)
    values = resolve(entry["weights"], params)
    return csr_matrix((values.astype(np.int32), (rows, cols)),
                      shape=tuple(entry["matrix_shape"]))


def make_synapse(entry: dict, params):
    kind, name = entry["process"], entry["name"]
    if kind == "Conv":
        return Conv(weight=resolve(entry["weights"], params), weight_exp=0,
                    input_shape=tuple(entry["input_shape"]), padding=tuple(entry["padding"]),
                    stride=tuple(entry["stride"]), dilation=tuple(entry["dilation"]),
                    groups=entry["groups"], num_message_bits=entry["num_message_bits"],
                    name=name)
    common = dict(weight_exp=entry["weight_exp"], num_weight_bits=entry["num_weight_bits"],
                  sign_mode=SignMode[entry["sign_mode"]],
                  num_message_bits=entry["num_message_bits"], name=name)
    if kind in ("Sparse", "DelaySparse"):
        w = sparse_weights(entry, params)
        if kind == "Sparse":
            return Sparse(weights=w, **common)
        delays = csr_matrix((np.full(w.nnz, entry["delay"], np.int64), w.indices, w.indptr),
                            shape=w.shape)
        return DelaySparse(weights=w, delays=delays, max_delay=entry["delay"], **common)
    w = resolve(entry["weights"], params)
    if kind == "Dense":
        return Dense(weights=w, **common)
    return DelayDense(weights=w, delays=entry["delay"], **common)


def build(manifest: dict, params, data: np.ndarray, steps: int) -> tuple[list, dict]:
    """The process graph of ``manifest`` fed with ``data`` [*input lava_shape, T] (integers).

    Returns (all processes, {(unit, state): (monitor, process name, var name)}).
    """
    source = RingBuffer(data=data.astype(np.int32))
    neurons = {entry["name"]: make_neuron(entry, params) for entry in manifest["neurons"]}
    outs = {manifest["input"]["unit"]: source.s_out}
    outs.update({name: proc.s_out for name, proc in neurons.items()})
    procs, probes = [source, *neurons.values()], {}
    for entry in manifest["synapses"]:
        synapse = make_synapse(entry, params)
        port = outs[entry["source"]]
        (port.flatten() if entry["flatten_input"] else port).connect(synapse.s_in)
        out = synapse.a_out
        if entry["reshape_output"] is not None:
            out = out.reshape(tuple(entry["reshape_output"]))
        out.connect(neurons[entry["target"]].a_in)
        procs.append(synapse)
    for name, neuron in neurons.items():
        for state, var in RECORDED.items():
            monitor = Monitor()
            monitor.probe(getattr(neuron, var), steps)
            probes[(name, state)] = (monitor, neuron.name, var)
            procs.append(monitor)
    return procs, probes


# ----------------------------------------------------------------------------- batching
#
# Lava pays a process start-up (fork) per process and run, so B samples run as one network of
# B independent copies: every unit gets B copies concatenated along its last Lava axis (flat
# vectors: sample-major; (X, Y, C) maps: channels b*C + c), dense weights become
# block-diagonal, sparse weights get one copy per sample and convolutions B times the groups.
# Each neuron still sums exactly the same terms (plus zeros), so every value is unchanged.

def batched_shape(lava_shape, batch: int) -> list:
    *head, last = lava_shape
    return [*head, last * batch]


def batch_index(lava_shape, batch: int) -> np.ndarray:
    """``[B, n]``: the batched flat position of sample ``b``'s element ``i`` (flat, C order)."""
    n = int(np.prod(lava_shape))
    local = np.arange(n).reshape(lava_shape)
    where = np.empty((batch, n), np.int64)
    positions = np.arange(n * batch).reshape(batched_shape(lava_shape, batch))
    last = lava_shape[-1]
    for b in range(batch):
        where[b, local.reshape(-1)] = positions[..., b * last:(b + 1) * last].reshape(-1)
    return where


def block_diagonal(w: np.ndarray, rows: list, cols: list, batch: int) -> np.ndarray:
    r, c = batch_index(rows, batch), batch_index(cols, batch)
    out = np.zeros((r.size, c.size), w.dtype)
    for b in range(batch):
        out[np.ix_(r[b], c[b])] = w
    return out


def batch_network(manifest: dict, params, batch: int) -> tuple[dict, dict]:
    """The manifest and params of ``batch`` independent copies of the network."""
    if batch == 1:
        return manifest, params
    shapes = {manifest["input"]["unit"]: manifest["input"]["lava_shape"]}
    shapes.update({n["name"]: n["lava_shape"] for n in manifest["neurons"]})
    new_params = dict(params)

    def per_neuron(value):
        if isinstance(value, str):  # an array per neuron: one copy per sample
            key = value[len("params:"):]
            new_params[key] = np.concatenate([params[key]] * batch, axis=-1)

    neurons = []
    for entry in manifest["neurons"]:
        for key in ("bias_mant", "bias_exp", "v_floor"):
            per_neuron(entry[key])
        neurons.append(dict(entry, lava_shape=batched_shape(entry["lava_shape"], batch)))
    synapses = []
    for entry in manifest["synapses"]:
        rows, cols = shapes[entry["target"]], shapes[entry["source"]]
        key = entry["weights"][len("params:"):]
        entry = dict(entry)
        if entry["process"] == "Conv":
            new_params[key] = np.concatenate([params[key]] * batch, axis=0)
            entry.update(groups=entry["groups"] * batch,
                         input_shape=batched_shape(entry["input_shape"], batch))
        elif entry["process"] in ("Sparse", "DelaySparse"):
            r_at, c_at = batch_index(rows, batch), batch_index(cols, batch)
            r, c = (resolve(entry[k], params) for k in ("rows", "cols"))
            for k, value in (("rows", r_at[:, r]), ("cols", c_at[:, c]),
                             ("weights", np.tile(params[key], (batch, 1)))):
                new_params[entry[k][len("params:"):]] = value.reshape(-1)
            entry["matrix_shape"] = [r_at.size, c_at.size]
        else:
            new_params[key] = block_diagonal(np.asarray(params[key]), rows, cols, batch)
        if entry["reshape_output"] is not None:
            entry["reshape_output"] = batched_shape(entry["reshape_output"], batch)
        synapses.append(entry)
    inp = dict(manifest["input"], lava_shape=batched_shape(manifest["input"]["lava_shape"],
                                                          batch))
    return dict(manifest, input=inp, neurons=neurons, synapses=synapses), new_params


def batch_size_limit(manifest: dict, params, budget: int = 1 << 22) -> int:
    """Samples per Lava run: no block-diagonal matrix above ``budget`` entries, and no
    convolution above Lava's 127 groups."""
    largest = max((np.asarray(resolve(e["weights"], params)).size
                   for e in manifest["synapses"] if e["process"] in ("Dense", "DelayDense")),
                  default=1)
    limit = max(1, int(np.sqrt(budget / max(largest, 1))))
    for e in manifest["synapses"]:
        if e["process"] == "Conv":
            limit = min(limit, max(1, CONV_GROUPS_MAX // e["groups"]))
    return limit


# ----------------------------------------------------------------------------- running

def hardware_status() -> str | None:
    """None when Intel's lava-loihi extension (Loihi 2 compiler + NxCore) is importable, else
    a sentence saying what is missing."""
    missing = [m for m in HARDWARE_MODULES if _find(m) is None]
    if not missing:
        return None
    return ("Loihi 2 hardware is not available here: Intel's lava-loihi extension is not "
            f"installed (cannot import {', '.join(missing)}); only Loihi2SimCfg simulation runs")


def _find(module: str):
    try:
        return importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None


def run_config(hw: bool, procs=()):
    """Loihi2SimCfg(select_tag="fixed_pt"), or Loihi2HwCfg when ``hw``.

    Custom processes are mapped to their model explicitly, so Lava does not import every module
    beside the process's file while searching for models (it keys that map by instance).
    """
    if hw:
        problem = hardware_status()
        if problem:
            raise RuntimeError(problem)
        from lava.magma.core.run_configs import Loihi2HwCfg
        return Loihi2HwCfg()
    custom = {}
    for proc in procs:
        if type(proc).__name__ == "SnnLIF":
            from .processes import PySnnLIFModelFixed
            custom[proc] = custom[type(proc)] = PySnnLIFModelFixed
    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=custom)


def run_samples(manifest: dict, params, inputs: np.ndarray, hw: bool = False) -> dict:
    """Run integer ``inputs`` [T, B, *input shape] as one Lava network of B copies;
    {unit: {state: [T, B, n_unit]}} (units' flat C order)."""
    steps, batch = inputs.shape[:2]
    manifest_b, params_b = batch_network(manifest, params, batch)
    inp = manifest["input"]
    per_sample = to_lava(np.asarray(inputs, np.int64), inp, params)  # [T, B, n]
    where = batch_index(inp["lava_shape"], batch)
    data = np.zeros((steps, where.size), np.int64)
    for b in range(batch):
        data[:, where[b]] = per_sample[:, b]
    data = data.reshape(steps, *manifest_b["input"]["lava_shape"])
    procs, probes = build(manifest_b, params_b, np.moveaxis(data, 0, -1), steps)
    cfg = run_config(hw, procs)
    with stopping(procs[0]):  # also on SIGTERM and at exit: no orphaned Lava processes
        procs[0].run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        records = {key: np.asarray(monitor.get_data()[proc][var]).astype(np.int64)
                   for key, (monitor, proc, var) in probes.items()}
    out = {}
    for entry in manifest["neurons"]:
        where = batch_index(entry["lava_shape"], batch)
        out[entry["name"]] = {
            state: records[(entry["name"], state)].reshape(steps, -1)[:, where]
            for state in RECORDED}
    return out


def assemble(manifest: dict, params, units: dict, steps: int, batch: int) -> dict:
    """Per-unit records -> the golden npz's flat dict: ``layer/<population>/<state>``
    [T, B, *shape] in snn-compile layout, and ``spikes`` (the output population's spikes, or
    v for a non-spiking readout)."""
    flat = {}
    for pop in manifest["populations"]:
        for state in RECORDED:
            if units:
                lava = np.concatenate([units[u][state] for u in pop["units"]], axis=-1)
            else:
                lava = np.zeros((steps, batch, int(np.prod(pop["shape"]))), np.int64)
            flat[f"layer/{pop['name']}/{state}"] = from_lava(lava, pop, params)
    out = manifest["output"]
    flat["spikes"] = flat[f"layer/{out['population']}/{out['state']}"]
    return flat


def run_batch(manifest: dict, params, inputs: np.ndarray, hw: bool = False) -> dict:
    """Run every sample of ``inputs`` [T, B, *input shape] (several per Lava run); the flat
    dict of :func:`assemble`."""
    if hw:
        custom = [p["name"] for p in manifest["populations"] if p["process"] != "LIF"]
        if custom:
            raise RuntimeError(f"populations {custom} use the SnnLIF process, which has no "
                               "Loihi 2 process model: real Loihi 2 needs a custom neuron "
                               "microcode program for them")
    steps, batch = inputs.shape[:2]
    if not (steps and batch):  # Lava cannot run zero steps
        return assemble(manifest, params, {}, steps, batch)
    chunk = batch_size_limit(manifest, params)
    parts = [run_samples(manifest, params, inputs[:, b:b + chunk], hw)
             for b in range(0, batch, chunk)]
    units = {name: {state: np.concatenate([p[name][state] for p in parts], axis=1)
                    for state in RECORDED} for name in parts[0]}
    return assemble(manifest, params, units, steps, batch)
