"""snn-compile's model file, and loading of the PyTorch files users already have.

Our file is an IR graph as plain data, written with ``torch.save`` and read back with
``torch.load(weights_only=True)``, so loading never runs code and never needs the Python class
the network was trained with::

    {"format": "snn-compile-model", "version": 2,
     "nodes": [{"kind": "Affine", "name": "fc1", "weight": <tensor>, "bias": <tensor>}, ...,
               {"kind": "LIF", "name": "lif1", "beta": <tensor>, "reset": "zero", ...}],
     "edges": [["input", "fc1", 0], ["lif1", "rec1", 1], ...],   # source, target, delay
     "metadata": {...}}

Each node dict holds the fields of the IR node class named by ``kind``: arrays as tensors,
tuples as lists, options as str/int/float/bool/None. A neuron's optional ``grid`` (the frozen
fixed-point arithmetic of a quantization-aware trained layer,
:class:`~snn_compile.ir.nodes.StateGrid`) is a nested dict of its fields in the same form; files
without it (all files written before it existed) load with ``grid=None``. Version 1 files
stored edges as pairs whose meaning depended on the node order (an edge from a node at or after
its target's position read the previous step); they load through
:func:`~snn_compile.ir.graph.from_ordered`, which turns those edges into delay-1 edges.

``load_model_file`` also reads a plain ``state_dict`` (given ``arch="package.module:callable"``
that builds the network) and, only with ``trust_pickle=True``, a fully pickled module.
"""

from __future__ import annotations

import dataclasses
import importlib
import pickle
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ModelFileError, SnnCompileError
from ..ir import (
    IF, LI, LIF, Affine, Alpha, AvgPool2d, BatchNorm, Conv2d, CubaLIF, Delay, Flatten, Graph,
    Identity, Input, MaxPool2d, Node, Output, ReLU, Scale, Sum, SumPool2d,
)
from ..ir.graph import from_ordered
from ..ir.nodes import StateGrid
from ..names import check_name
from .file_checks import check_archive, check_tensors, conform_fields, pickle_globals

FORMAT = "snn-compile-model"
VERSION = 2
_KINDS = {cls.__name__: cls for cls in (Input, Output, Sum, Affine, Conv2d, SumPool2d, AvgPool2d,
                                        Flatten, Scale, Delay, LIF, CubaLIF, IF, LI, Alpha,
                                        BatchNorm, MaxPool2d, Identity, ReLU)}
_PLAIN = (str, int, float, bool, type(None))
PICKLE_MESSAGE = ("this file is a pickle that carries code: reading it runs that code. Pass "
                  "--trust-pickle (trust_pickle=True) only if you trust the file, since it runs "
                  "the code, or re-save the model with snn_compile.export")


# --------------------------------------------------------------------------- writing


def export(net, path, *, input_shape=None, example_input: torch.Tensor | None = None) -> Path:
    """Write ``net`` (an snnTorch ``nn.Module`` or an IR ``Graph``) to ``path`` in our format.

    ``input_shape`` (one sample at one time step, e.g. ``(64,)``) is required for a module;
    ``example_input`` is passed on to :func:`~snn_compile.importers.snntorch.from_snntorch`.
    """
    if isinstance(net, Graph):
        graph = net
    else:
        if input_shape is None:
            raise ModelFileError("export needs the input shape of an nn.Module",
                                 hint="pass input_shape=(features,) or (C, H, W)")
        from .snntorch import from_snntorch
        graph = from_snntorch(net, input_shape, example_input=example_input)
    path = Path(path)
    torch.save(graph_to_dict(graph), path)
    return path


def graph_to_dict(graph: Graph) -> dict:
    """The file layout of ``graph`` (see the module docstring)."""
    graph.shapes  # only valid graphs are written
    return {
        "format": FORMAT,
        "version": VERSION,
        "nodes": [_node_to_dict(node) for node in graph.nodes],
        "edges": [[e.src, e.dst, e.delay] for e in graph.edges],
        "metadata": _plain_metadata(graph.metadata),
    }


def _node_to_dict(node: Node) -> dict:
    return {"kind": type(node).__name__} | _fields_to_dict(node)


def _fields_to_dict(obj) -> dict:
    """A dataclass's fields as file values (a nested StateGrid becomes a nested dict)."""
    out = {}
    for f in dataclasses.fields(obj):
        value = getattr(obj, f.name)
        if isinstance(value, np.ndarray):
            value = torch.from_numpy(np.array(value))
        elif isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, StateGrid):
            value = _fields_to_dict(value)
        out[f.name] = value
    return out


def _plain_metadata(value, key="metadata"):
    """``value`` if it is plain data that ``weights_only`` loading accepts, else ModelFileError."""
    if isinstance(value, dict):
        return {str(k): _plain_metadata(v, f"{key}.{k}") for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain_metadata(v, key) for v in value]
    if isinstance(value, _PLAIN):
        return value
    raise ModelFileError("graph metadata can hold only plain values", value=f"{key}: "
                         f"{type(value).__name__}", hint="store numbers, strings or lists")


# --------------------------------------------------------------------------- reading


def load_model_file(path, *, arch: str | None = None, trust_pickle: bool = False,
                    input_shape=None) -> Graph:
    """Read a ``.pt``/``.pth`` file: our format, a state_dict with ``arch``, or (trusted) a
    pickled module. Errors name the file: ModelFileError, UnsupportedError, GraphError."""
    path = Path(path)
    content = _read(path, trust_pickle)
    try:
        if isinstance(content, dict) and content.get("format") == FORMAT:
            _no_arch(path, arch, "it is an snn-compile model file")
            return graph_from_dict(content)
        if isinstance(content, nn.Module):
            _no_arch(path, arch, "it holds a whole module")
            return _import_module(content, input_shape)
        if _is_state_dict(content):
            return _import_module(_build(path, arch, content), input_shape)
    except SnnCompileError as err:
        raise err.at(file=path)
    raise ModelFileError("the file holds no model", file=path, value=_describe(content),
                         hint="expected a file written by snn_compile.export, a state_dict, or "
                              "a pickled module")


def graph_from_dict(data: dict) -> Graph:
    """Rebuild the graph written by :func:`graph_to_dict` (raises ModelFileError/GraphError)."""
    version = data.get("version")
    if not isinstance(version, int) or version > VERSION:
        raise ModelFileError("unsupported snn-compile model file version", value=version,
                             hint=f"this snn-compile reads versions up to {VERSION}; upgrade it")
    nodes, edges = data.get("nodes"), data.get("edges")
    if not isinstance(nodes, list) or not isinstance(edges, list):
        raise ModelFileError("malformed snn-compile model file: 'nodes' or 'edges' missing",
                             hint="re-export it with snn_compile.export")
    metadata = data.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise ModelFileError("malformed snn-compile model file: 'metadata' is not a dict",
                             value=type(metadata).__name__, hint="re-export it with "
                                                                 "snn_compile.export")
    build = from_ordered if version == 1 else Graph
    graph = build(tuple(_node_from_dict(d) for d in nodes), tuple(_edge(e) for e in edges),
                  dict(metadata))
    graph.shapes  # verify now, while the file name can still be added
    return graph


def _edge(value) -> tuple:
    ok = isinstance(value, (list, tuple)) and 2 <= len(value) <= 3 \
        and all(isinstance(end, str) for end in value[:2]) \
        and (len(value) == 2 or (isinstance(value[2], int) and not isinstance(value[2], bool)
                                 and value[2] >= 0))
    if not ok:
        raise ModelFileError("malformed edge in the model file", value=repr(value)[:80],
                             hint="edges are [source name, target name, delay]")
    return tuple(value)


def _node_from_dict(data) -> Node:
    fields = dict(data) if isinstance(data, dict) else {}
    kind, name = fields.pop("kind", None), fields.get("name")
    cls = _KINDS.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ModelFileError("unknown layer kind in the model file",
                             node=name if isinstance(name, str) else None, value=repr(kind)[:80],
                             hint=f"known kinds: {', '.join(_KINDS)}; upgrade snn-compile")
    check_name(name)
    try:
        values = conform_fields(cls, fields)
        return cls(**values)
    except (TypeError, ValueError) as exc:
        raise ModelFileError(f"malformed {kind} layer in the model file", node=name,
                             value=str(exc)[:200],
                             hint="re-export it with snn_compile.export") from None


def _read(path: Path, trust_pickle: bool):
    """``torch.load`` safely; a pickle with code only when trusted (with a warning). Sizes the
    archive declares are checked against the memory budget first."""
    check_archive(path)
    try:
        with warnings.catch_warnings():  # torch's note on the pickle protocol is not ours
            warnings.filterwarnings("ignore", message="Detected pickle protocol")
            content = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if trust_pickle:
            return _read_trusted(path)
        code = pickle_globals(path)
        if code:
            raise ModelFileError(PICKLE_MESSAGE, file=path,
                                 value=f"it imports {', '.join(code[:3])}") from None
        raise _corrupt(path, exc) from None
    except Exception as exc:  # torch raises RuntimeError, KeyError, EOFError... for bad bytes
        raise _corrupt(path, exc) from None
    check_tensors(content, file=path)
    return content


def _read_trusted(path: Path):
    warnings.warn(f"{path}: loading a pickled module runs code from the file "
                  "(trust_pickle=True); re-save it with snn_compile.export to avoid this",
                  stacklevel=4)
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:
        raise _corrupt(path, exc) from None


def _corrupt(path: Path, exc: Exception) -> ModelFileError:
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return ModelFileError("cannot read the model file: truncated, corrupt, or not a PyTorch "
                          "file", file=path, value=reason[:200],
                          hint="re-export it with snn_compile.export")


def _no_arch(path: Path, arch, why: str) -> None:
    if arch is not None:
        raise ModelFileError(f"arch is only used with a bare state_dict, and {why}", file=path,
                             value=arch, hint="drop --arch")


def _is_state_dict(content) -> bool:
    return (isinstance(content, dict) and bool(content)
            and all(isinstance(k, str) and isinstance(v, torch.Tensor)
                    for k, v in content.items()))


def _describe(content) -> str:
    if isinstance(content, dict):
        return f"a dict with keys {sorted(map(str, content))[:6]}"
    return f"a {type(content).__name__}"


# --------------------------------------------------------------------------- modules


def _build(path: Path, arch: str | None, state: dict) -> nn.Module:
    """Build ``arch`` ("package.module:callable") and load the state_dict into it strictly."""
    if arch is None:
        raise ModelFileError("the file holds a bare state_dict (weights without architecture)",
                             hint="pass arch='package.module:build_function' (--arch) naming a "
                                  "callable that builds the network, or re-save it with "
                                  "snn_compile.export")
    module = _call_arch(arch)
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        raise ModelFileError("the state_dict does not fit the architecture",
                             value=(lines[1:] or lines)[0],
                             hint=f"check that {arch} builds the network these weights were "
                                  "trained with") from None
    return module


def _call_arch(arch: str) -> nn.Module:
    module_name, sep, attr = arch.partition(":")
    if not sep or not module_name or not attr:
        raise ModelFileError("arch must look like 'package.module:callable'", value=arch)
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except Exception as exc:  # ImportError, AttributeError, SyntaxError... from user code
        raise ModelFileError(f"cannot import the architecture: {type(exc).__name__}: {exc}",
                             value=arch,
                             hint="check the name and that its package is importable") from None
    try:
        module = target()
    except Exception as exc:  # user code: any failure is the architecture's, said in one line
        raise ModelFileError(f"calling the architecture failed: {type(exc).__name__}: {exc}",
                             value=arch, hint="--arch must name a callable that takes no "
                                              "arguments and returns the nn.Module") from None
    if not isinstance(module, nn.Module):
        raise ModelFileError("the architecture callable did not return an nn.Module", value=arch)
    return module


def _import_module(module: nn.Module, input_shape) -> Graph:
    from .snntorch import from_snntorch

    return from_snntorch(module, _input_shape(module, input_shape))


def _input_shape(module: nn.Module, input_shape):
    """The given input shape, or the input size of a Sequential starting with nn.Linear."""
    if input_shape is not None:
        return tuple(input_shape)
    first = next((m for m in module.modules() if not any(True for _ in m.children())), None)
    if isinstance(module, nn.Sequential) and isinstance(first, nn.Linear):
        return (first.in_features,)
    raise ModelFileError("the input shape cannot be read from the model",
                         hint="pass input_shape=(C, H, W) (--input-shape C,H,W)")
