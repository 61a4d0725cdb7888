"""Build and run a Lava process graph from a lowered network (manifest + parameter arrays).

Standalone module (numpy + lava only): snn-compile uses it in-process, and bring-up bundles carry
a verbatim copy, so the lab machine runs exactly the code that was tested here. Install the
Python 3.11 ByteEncoder shim before importing it.

Graph per layer: ``source -> Dense | DelayDense | Conv -> LIF | SnnLIF`` (plus ``LIF -> Dense ->
LIF`` for recurrent layers), fed by a ``RingBuffer`` holding the input, with one
``Monitor`` per recorded quantity (``s_out``, ``u``, ``v`` of every neuron process; a Monitor
records a single Var or port). Monitor row ``t`` is Lava time step ``t + 1``, ``v`` is read after
the reset, which is the emulator's convention; each connection process adds the one step of
``timing.synapse_delay``, so nothing needs shifting.
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
from lava.utils.weightutils import SignMode

from .lava_cleanup import stopping

RECORDED = {"spikes": "s_out", "u": "u", "v": "v"}
HARDWARE_MODULES = ("lava.magma.compiler.subcompilers.nc.ncproc_compiler", "nxcore")


# ----------------------------------------------------------------------------- layouts

def to_lava(arr: np.ndarray, layout: dict) -> np.ndarray:
    """Array [..., *shape] (snn-compile layout) -> [..., *lava_shape]."""
    lead = arr.shape[:arr.ndim - len(layout["shape"])]
    if layout["lava_axes"] is None:
        return arr.reshape(*lead, *layout["lava_shape"])
    axes = list(range(len(lead))) + [len(lead) + a for a in layout["lava_axes"]]
    return arr.transpose(axes)


def from_lava(arr: np.ndarray, layout: dict) -> np.ndarray:
    """Array [..., *lava_shape] -> [..., *shape] (snn-compile layout)."""
    lead = arr.shape[:arr.ndim - len(layout["lava_shape"])]
    if layout["lava_axes"] is None:
        return arr.reshape(*lead, *layout["shape"])
    inverse = np.argsort(layout["lava_axes"])
    axes = list(range(len(lead))) + [len(lead) + int(a) for a in inverse]
    return arr.transpose(axes)


def resolve(value, params):
    """A manifest register: an int, or 'params:<key>' naming an array in params.npz."""
    if isinstance(value, str) and value.startswith("params:"):
        return np.asarray(params[value[len("params:"):]])
    return value


# ----------------------------------------------------------------------------- processes

def make_lif(entry: dict, params, name: str):
    return LIF(shape=tuple(entry["lava_shape"]), du=entry["du"], dv=entry["dv"],
               vth=entry["vth"], bias_mant=resolve(entry["bias_mant"], params),
               bias_exp=resolve(entry["bias_exp"], params), name=name)


def make_snn_lif(entry: dict, params, name: str):
    from .processes import SnnLIF  # only bundles whose network needs it carry this module
    return SnnLIF(shape=tuple(entry["lava_shape"]), du=entry["du"], dv=entry["dv"],
                  vth=entry["vth"], bias_mant=resolve(entry["bias_mant"], params),
                  bias_exp=resolve(entry["bias_exp"], params), reset=entry["reset"],
                  reset_timing=entry["reset_timing"], spike_test=entry["spike_test"],
                  reset_discards_input=entry["reset_discards_input"],
                  spiking=entry["spiking"], name=name)


def _dense_kwargs(entry: dict, params, name: str) -> dict:
    return dict(weights=resolve(entry["weights"], params), weight_exp=entry["weight_exp"],
                num_weight_bits=entry["num_weight_bits"],
                sign_mode=SignMode[entry["sign_mode"]],
                num_message_bits=entry["num_message_bits"], name=name)


def make_dense(entry: dict, params, name: str):
    return Dense(**_dense_kwargs(entry, params, name))


def make_delay_dense(entry: dict, params, name: str):
    return DelayDense(delays=entry["delay"], **_dense_kwargs(entry, params, name))


def make_conv(entry: dict, params, name: str):
    return Conv(weight=resolve(entry["weights"], params), weight_exp=0,
                input_shape=tuple(entry["input_shape"]), padding=tuple(entry["padding"]),
                stride=tuple(entry["stride"]), dilation=tuple(entry["dilation"]),
                groups=entry["groups"], num_message_bits=entry["num_message_bits"], name=name)


def _snn_lif_model():
    from .processes import PySnnLIFModelFixed
    return PySnnLIFModelFixed


NEURONS = {"LIF": make_lif, "SnnLIF": make_snn_lif}
CUSTOM_MODELS = {"SnnLIF": _snn_lif_model}
SYNAPSES = {"Dense": make_dense, "DelayDense": make_delay_dense, "Conv": make_conv}


def _connect(out_port, synapse_entry: dict, synapse) -> None:
    port = out_port.flatten() if synapse_entry["flatten_input"] else out_port
    port.connect(synapse.s_in)


def build(manifest: dict, params, data: np.ndarray, steps: int) -> tuple[list, dict]:
    """The process graph of ``manifest`` fed with ``data`` [*input lava_shape, T] (integers).

    Returns (all processes, {(layer, state): (monitor, process name, var name)}).
    """
    source = RingBuffer(data=data.astype(np.int32))
    outs = {None: source.s_out}
    procs, probes = [source], {}
    for layer in manifest["layers"]:
        name = layer["name"]
        neuron = NEURONS[layer["neuron"]["process"]](layer["neuron"], params, name)
        syn_entry = layer["synapse"]
        synapse = SYNAPSES[syn_entry["process"]](syn_entry, params, f"{name}.synapse")
        _connect(outs[layer["source"]], syn_entry, synapse)
        synapse.a_out.connect(neuron.a_in)
        procs += [synapse, neuron]
        if layer["recurrent"] is not None:
            rec = SYNAPSES[layer["recurrent"]["process"]](layer["recurrent"], params,
                                                          f"{name}.recurrent")
            _connect(neuron.s_out, layer["recurrent"], rec)
            rec.a_out.connect(neuron.a_in)
            procs.append(rec)
        for state, var in RECORDED.items():
            monitor = Monitor()
            monitor.probe(getattr(neuron, var), steps)
            probes[(name, state)] = (monitor, neuron.name, var)
            procs.append(monitor)
        outs[name] = neuron.s_out
    return procs, probes


# ----------------------------------------------------------------------------- batching
#
# Lava pays a process start-up (fork) per process and run, so B samples run as one network of
# B independent copies: every population gets B copies concatenated along its last Lava axis
# (flat vectors: sample-major; (W, H, C) maps: channels b*C + c), Dense/Recurrent weights become
# block-diagonal and convolutions get B times the groups. Each output neuron still sums exactly
# the same terms (plus zeros), so every value is unchanged.

def batched_shape(layout: dict, batch: int) -> list:
    *head, last = layout["lava_shape"]
    return [*head, last * batch]


def batch_to_lava(arr: np.ndarray, layout: dict) -> np.ndarray:
    """[B, ..., *shape] -> [..., *batched lava_shape] (samples along the last axis)."""
    return np.concatenate([to_lava(a, layout) for a in arr], axis=-1)


def batch_from_lava(arr: np.ndarray, layout: dict, batch: int) -> np.ndarray:
    """[T, *batched lava_shape] -> [T, B, *shape]."""
    parts = np.split(arr, batch, axis=-1)
    return np.stack([from_lava(p, layout) for p in parts], axis=1)


def _sample_index(layout: dict, batch: int) -> tuple[np.ndarray, np.ndarray]:
    """For each element of the batched, flattened population: (sample, per-sample flat index)."""
    local = np.arange(int(np.prod(layout["lava_shape"]))).reshape(layout["lava_shape"])
    both = [(np.full(local.shape, b), local) for b in range(batch)]
    return (np.concatenate([b for b, _ in both], axis=-1).reshape(-1),
            np.concatenate([i for _, i in both], axis=-1).reshape(-1))


def block_diagonal(w: np.ndarray, rows: dict, cols: dict, batch: int) -> np.ndarray:
    r_b, r_i = _sample_index(rows, batch)
    c_b, c_i = _sample_index(cols, batch)
    out = np.zeros((r_b.size, c_b.size), w.dtype)
    for b in range(batch):
        rs, cs = np.flatnonzero(r_b == b), np.flatnonzero(c_b == b)
        out[np.ix_(rs, cs)] = w[np.ix_(r_i[rs], c_i[cs])]
    return out


def batch_network(manifest: dict, params, batch: int) -> tuple[dict, dict]:
    """The manifest and params of ``batch`` independent copies of the network."""
    if batch == 1:
        return manifest, params
    layouts = {None: manifest["input"]}
    new_params = dict(params)
    layers = []

    for layer in manifest["layers"]:
        neuron = dict(layer["neuron"], lava_shape=batched_shape(layer["neuron"], batch))
        for value in (neuron["bias_mant"], neuron["bias_exp"]):
            if isinstance(value, str):  # per-neuron array: one copy per sample
                key = value[len("params:"):]
                new_params[key] = np.concatenate([params[key]] * batch, axis=-1)
        syn = dict(layer["synapse"])
        source = layouts[layer["source"]]
        key = syn["weights"][len("params:"):]
        if syn["process"] == "Conv":
            new_params[key] = np.concatenate([params[key]] * batch, axis=0)
            syn.update(groups=syn["groups"] * batch, input_shape=batched_shape(source, batch))
        else:
            new_params[key] = block_diagonal(np.asarray(params[key]), layer["neuron"], source,
                                             batch)
        rec = layer["recurrent"]
        if rec is not None:
            rkey = rec["weights"][len("params:"):]
            new_params[rkey] = block_diagonal(np.asarray(params[rkey]), layer["neuron"],
                                              layer["neuron"], batch)
        layers.append(dict(layer, neuron=neuron, synapse=syn))
        layouts[layer["name"]] = layer["neuron"]
    return dict(manifest, layers=layers), new_params


def batch_size_limit(manifest: dict, params, budget: int = 1 << 22) -> int:
    """Samples per Lava run so that no block-diagonal matrix exceeds ``budget`` entries."""
    largest = max((np.asarray(resolve(entry["weights"], params)).size
                   for layer in manifest["layers"]
                   for entry in (layer["synapse"], layer["recurrent"])
                   if entry is not None and entry["process"] != "Conv"), default=1)
    return max(1, int(np.sqrt(budget / max(largest, 1))))


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
        model = CUSTOM_MODELS.get(type(proc).__name__)
        if model is not None:
            custom[proc] = custom[type(proc)] = model()
    return Loihi2SimCfg(select_tag="fixed_pt", exception_proc_model_map=custom)


def run_samples(manifest: dict, params, inputs: np.ndarray, hw: bool = False) -> dict:
    """Run ``inputs`` [T, B, *input shape] as one Lava network of B copies;
    {layer: {state: [T, B, *shape]}} in snn-compile layout."""
    steps, batch = inputs.shape[:2]
    manifest_b, params_b = batch_network(manifest, params, batch)
    data = batch_to_lava(np.moveaxis(np.asarray(inputs, np.int64), 1, 0), manifest["input"])
    procs, probes = build(manifest_b, params_b, np.moveaxis(data, 0, -1), steps)
    cfg = run_config(hw, procs)
    with stopping(procs[0]):  # also on SIGTERM and at exit: no orphaned Lava processes
        procs[0].run(condition=RunSteps(num_steps=steps), run_cfg=cfg)
        records = {key: np.asarray(monitor.get_data()[proc][var]).astype(np.int64)
                   for key, (monitor, proc, var) in probes.items()}
    return {layer["name"]: {state: batch_from_lava(records[(layer["name"], state)],
                                                   layer["neuron"], batch)
                            for state in RECORDED}
            for layer in manifest["layers"]}


def empty(manifest: dict, steps: int, batch: int) -> dict:
    """The records of an empty window (Lava cannot run zero steps)."""
    return {layer["name"]: {state: np.zeros((steps, batch, *layer["neuron"]["shape"]), np.int64)
                            for state in RECORDED}
            for layer in manifest["layers"]}


def run_batch(manifest: dict, params, inputs: np.ndarray, hw: bool = False) -> dict:
    """Run every sample of ``inputs`` [T, B, *input shape] (several per Lava run); a flat dict
    like the golden npz: ``spikes`` (the output layer's spikes, or v for a non-spiking readout)
    and ``layer/<name>/<state>`` arrays [T, B, *shape]."""
    if hw:
        custom = [layer["name"] for layer in manifest["layers"]
                  if layer["neuron"]["process"] != "LIF"]
        if custom:
            raise RuntimeError(f"layers {custom} use the SnnLIF process, which has no Loihi 2 "
                               "process model: real Loihi 2 needs a custom neuron microcode "
                               "program for them")
    steps, batch = inputs.shape[:2]
    chunk = batch_size_limit(manifest, params)
    parts = [run_samples(manifest, params, inputs[:, b:b + chunk], hw)
             for b in range(0, batch, chunk)] if steps and batch else [empty(manifest, steps,
                                                                              batch)]
    flat = {f"layer/{layer['name']}/{state}":
            np.concatenate([p[layer["name"]][state] for p in parts], axis=1)
            for layer in manifest["layers"] for state in RECORDED}
    flat["spikes"] = flat[f"layer/{manifest['output']['layer']}/{manifest['output']['state']}"]
    return flat
