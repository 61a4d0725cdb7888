"""Saving and loading a compiled :class:`~snn_compile.ir.fixed.QNetwork` (JSON + npz).

A compiled network is a folder (or the two files) ``network.json`` + ``network.npz``::

    {"format": "snn-compile-network", "version": 1,
     "target": {...the effective target as data...}, "target_sha256": "...",
     "input": {"name": "input", "shape": [64], "dtype": "uint1", "scale": 1.0,
               "saturate": false},           # (files without "saturate": false)
     "populations": [{"name": "1", "lag": 1, "neuron": {"shape": [128], "reset": "zero", ...,
                      "threshold": "npz:1/threshold", ...}, "input_bias": null,
                      "scale": "npz:1/scale"}, ...],
     "projections": [{"name": "0", "source": "input", "target": "1", "kind": "dense",
                      "weight": "npz:0/weight", "weight_exp": 0, "delay": 1, "conv": null}, ...],
     "output": "3", "metadata": {...}}

Arrays live in ``network.npz`` under the keys the JSON names (``npz:<key>``); files are written
deterministically (sorted keys, fixed zip timestamps), so the same network gives the same bytes.
Loading re-validates everything (the target like a target file, the graph with its verifier) and
never runs code. Reading it needs neither torch nor the model the network came from.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import fields
from pathlib import Path

import numpy as np

from ..errors import ModelFileError, SnnCompileError
from ..targets import Target
from .fixed import ConvGeometry, QInput, QNetwork, QNeuron, QPopulation, QProjection

FORMAT = "snn-compile-network"
VERSION = 1
JSON_NAME, NPZ_NAME = "network.json", "network.npz"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)


def write_npz(fh, arrays: dict[str, np.ndarray], compress: bool = True) -> None:
    """Write an .npz archive (np.load reads it) to the binary file ``fh``: sorted members, a
    fixed timestamp and Unix attributes, so the same arrays give the same bytes on any machine;
    uncompressed members (``compress=False``) can be memory-mapped by readers. Each array is
    streamed into the archive (no copy of it in memory)."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    with zipfile.ZipFile(fh, "w", compression=method) as zf:
        for key in sorted(arrays):
            arr = np.ascontiguousarray(arrays[key])
            if arr.dtype.hasobject:
                raise ValueError(f"array '{key}' holds Python objects")
            header = io.BytesIO()
            np.lib.format.write_array_header_1_0(
                header, np.lib.format.header_data_from_array_1_0(arr))
            info = zipfile.ZipInfo(f"{key}.npy", date_time=_ZIP_TIME)
            info.compress_type = method
            info.external_attr = 0o644 << 16
            info.create_system = 3
            info.file_size = header.tell() + arr.nbytes  # decides ZIP64 as writestr would
            with zf.open(info, "w") as dest:
                dest.write(header.getvalue())
                dest.write(arr.reshape(-1).view(np.uint8))


def npz_bytes(arrays: dict[str, np.ndarray], compress: bool = True) -> bytes:
    """:func:`write_npz` into memory."""
    buf = io.BytesIO()
    write_npz(buf, arrays, compress)
    return buf.getvalue()


class _Arrays:
    """Collects arrays under unique keys while the JSON is built."""

    def __init__(self):
        self.data: dict[str, np.ndarray] = {}

    def put(self, key: str, value) -> str | int | float | None:
        if value is None:
            return None
        arr = np.asarray(value)
        if arr.ndim == 0 and arr.dtype.kind in "iu":
            return int(arr)
        if arr.ndim == 0 and arr.dtype.kind == "f":
            return float(arr)
        key = f"{len(self.data)}:{key}"
        self.data[key] = arr
        return f"npz:{key}"


def network_dict(net: QNetwork) -> tuple[dict, dict[str, np.ndarray]]:
    """The JSON document and the arrays of ``net``."""
    arrays = _Arrays()
    pops = []
    for pop in net.in_order():
        n = pop.neuron
        neuron = {"shape": list(n.shape)}
        for f in fields(QNeuron):
            if f.name == "shape":
                continue
            value = getattr(n, f.name)
            neuron[f.name] = arrays.put(f"{pop.name}/{f.name}", value) \
                if isinstance(value, np.ndarray) else value
        pops.append({"name": pop.name, "lag": pop.lag, "neuron": neuron,
                     "input_bias": arrays.put(f"{pop.name}/input_bias", pop.input_bias),
                     "scale": arrays.put(f"{pop.name}/scale", pop.scale)})
    projs = []
    for proj in sorted(net.projections, key=lambda p: p.name):
        conv = None
        if proj.conv is not None:
            g = proj.conv
            conv = {"in_shape": list(g.in_shape), "stride": list(g.stride),
                    "padding": list(g.padding), "dilation": list(g.dilation),
                    "groups": g.groups,
                    "max_pool": None if g.max_pool is None else [list(g.max_pool[0]),
                                                                 list(g.max_pool[1])]}
        projs.append({"name": proj.name, "source": proj.source, "target": proj.target,
                      "kind": proj.kind, "weight": arrays.put(f"{proj.name}/weight",
                                                              proj.weight),
                      "weight_exp": proj.weight_exp, "delay": proj.delay, "conv": conv})
    doc = {
        "format": FORMAT, "version": VERSION,
        "target": net.target.as_dict(), "target_sha256": net.target.sha256,
        "input": {"name": net.input.name, "shape": list(net.input.shape),
                  "dtype": str(net.input.dtype), "scale": float(net.input.scale),
                  "saturate": bool(net.input.saturate)},
        "populations": pops, "projections": projs, "output": net.output,
        "metadata": _plain(net.metadata),
    }
    return doc, arrays.data


def _plain(value):
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def network_files(net: QNetwork) -> dict[str, bytes]:
    """``{"network.json": ..., "network.npz": ...}`` as bytes."""
    doc, arrays = network_dict(net)
    return {JSON_NAME: (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode(),
            NPZ_NAME: npz_bytes(arrays)}


def save_network(net: QNetwork, folder) -> Path:
    """Write ``network.json`` and ``network.npz`` into ``folder`` (created if needed)."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in network_files(net).items():
        (folder / name).write_bytes(data)
    return folder


def is_network(path) -> bool:
    """True when ``path`` is a compiled network (a folder with network.json, or that file)."""
    path = Path(path)
    return (path / JSON_NAME).is_file() or (path.name == JSON_NAME and path.is_file())


def load_network(path) -> QNetwork:
    """Read a compiled network (its folder or its ``network.json``); ModelFileError if bad."""
    path = Path(path)
    json_path = path / JSON_NAME if path.is_dir() else path
    npz_path = json_path.with_name(NPZ_NAME)
    try:
        doc = json.loads(json_path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"cannot read the compiled network ({type(exc).__name__})",
                             file=json_path, hint="compile the model again with -o") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ModelFileError("not a compiled snn-compile network", file=json_path,
                             value=repr(doc.get("format") if isinstance(doc, dict) else doc)[:60])
    if not isinstance(doc.get("version"), int) or doc["version"] > VERSION:
        raise ModelFileError("unsupported compiled-network version", file=json_path,
                             value=doc.get("version"),
                             hint=f"this snn-compile reads versions up to {VERSION}; upgrade it")
    try:
        with np.load(npz_path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"cannot read the network's arrays ({type(exc).__name__})",
                             file=npz_path) from None
    try:
        return _build(doc, arrays, str(json_path))
    except SnnCompileError as err:
        raise err.at(file=json_path)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"malformed compiled network ({type(exc).__name__}: {exc})",
                             file=json_path, hint="compile the model again with -o") from None


def network_from_files(files: dict[str, bytes], origin: str = "<compiled network>") -> QNetwork:
    """The network of :func:`network_files` output (bytes in memory)."""
    try:
        doc = json.loads(files[JSON_NAME])
        with np.load(io.BytesIO(files[NPZ_NAME]), allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (KeyError, ValueError, json.JSONDecodeError, zipfile.BadZipFile) as exc:
        raise ModelFileError(f"malformed compiled network ({type(exc).__name__})",
                             file=origin) from None
    return _build(doc, arrays, origin)


def _get(value, arrays: dict):
    if isinstance(value, str) and value.startswith("npz:"):
        return arrays[value[4:]]
    return value


def _build(doc: dict, arrays: dict, origin: str) -> QNetwork:
    target = Target.from_dict(doc["target"], origin=f"{origin} (embedded target)")
    if doc.get("target_sha256") not in (None, target.sha256):
        raise ModelFileError("the embedded target does not match its hash", file=origin,
                             hint="the file was edited; compile the model again")
    inp = doc["input"]
    net_input = QInput(name=str(inp["name"]), shape=tuple(inp["shape"]), dtype=inp["dtype"],
                       scale=float(inp["scale"]), saturate=bool(inp.get("saturate", False)))
    pops = []
    for p in doc["populations"]:
        n = dict(p["neuron"])
        n = {k: _get(v, arrays) for k, v in n.items()}
        n["shape"] = tuple(n["shape"])
        pops.append(QPopulation(name=str(p["name"]), neuron=QNeuron(**n), lag=int(p["lag"]),
                                input_bias=_get(p["input_bias"], arrays),
                                scale=_get(p["scale"], arrays)))
    projs = []
    for q in doc["projections"]:
        conv = None
        if q["conv"] is not None:
            c = q["conv"]
            conv = ConvGeometry(in_shape=tuple(c["in_shape"]), stride=tuple(c["stride"]),
                                padding=tuple(c["padding"]), dilation=tuple(c["dilation"]),
                                groups=int(c["groups"]),
                                max_pool=None if c["max_pool"] is None else
                                (tuple(c["max_pool"][0]), tuple(c["max_pool"][1])))
        projs.append(QProjection(name=str(q["name"]), source=str(q["source"]),
                                 target=str(q["target"]), kind=str(q["kind"]),
                                 weight=_get(q["weight"], arrays), weight_exp=int(q["weight_exp"]),
                                 delay=int(q["delay"]), conv=conv))
    return QNetwork(input=net_input, populations=tuple(pops), projections=tuple(projs),
                    output=str(doc["output"]), target=target,
                    metadata=dict(doc.get("metadata") or {}))
