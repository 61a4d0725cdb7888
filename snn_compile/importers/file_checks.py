"""Checks on the content of PyTorch model files, before and after ``torch.load``.

* :func:`check_archive`: the sizes a ``torch.save`` zip declares (or the file's size) fit the
  memory budget, before anything is decompressed;
* :func:`check_tensors`: every tensor loaded is real (no complex, quantized or sparse tensor) and
  the sizes they declare (``numel``: a stride-0 tensor declares far more than it stores) fit the
  budget before any is turned into an array;
* :func:`conform_fields`: a node dict of our model file holds, for each field of its IR class,
  a value of the annotated type (arrays as real tensors or numbers, tuples as lists of ints,
  options as strings, flags as booleans, a grid as a dict), converted to the IR's types;
* :func:`pickle_globals`: the callables a pickle would import, read with :mod:`pickletools`
  (nothing is executed), to say why a file needs ``--trust-pickle``.
"""

from __future__ import annotations

import dataclasses
import io
import pickletools
import re
import types
import typing
import zipfile
from pathlib import Path

import numpy as np
import torch

from .. import budget
from ..errors import ModelFileError

# what torch.save itself writes for tensors (the weights_only loader accepts these)
SAFE_GLOBALS = re.compile(r"torch\._utils\._rebuild_\w+|torch\.\w*Storage|torch\.Size|torch\.device"
                          r"|torch\.(float|int|uint|bool|bfloat|half|double|long)\w*"
                          r"|collections\.OrderedDict|_codecs\.encode|(__builtin__|builtins)\.set")
POSITIVE = ("shape", "stride", "dilation", "kernel_size", "groups")  # sizes and divisors


def check_archive(path) -> None:
    """The uncompressed sizes a zip archive declares (else the file size) fit the budget."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        total = path.stat().st_size
    budget.check(total, "the model file's contents", file=path)


def _tensors(value, depth=0):
    if depth > 50:
        raise ModelFileError("the model file nests containers too deeply")
    if isinstance(value, torch.Tensor):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _tensors(item, depth + 1)
    elif isinstance(value, (list, tuple)):
        for item in value:
            yield from _tensors(item, depth + 1)


def check_tensors(content, *, file=None) -> int:
    """Refuse non-real tensors and declared sizes over the budget; returns the declared bytes."""
    total = 0
    for tensor in _tensors(content):
        if tensor.is_complex() or tensor.is_quantized or tensor.layout != torch.strided:
            raise ModelFileError("the model file holds a tensor that is not a real dense array",
                                 file=file, value=f"{tensor.dtype}, {tensor.layout}",
                                 hint="store real float or integer tensors")
        total += tensor.numel() * tensor.element_size()
    budget.check(total, "the tensors of the model file", file=file,
                 detail="as declared by their shapes")
    return total


# ----------------------------------------------------------------------------- node fields

def _to_array(value, key: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        if value.is_complex() or value.dtype == torch.bool:
            raise ValueError(f"field '{key}' must be a real tensor (got {value.dtype})")
        return value.detach().cpu().numpy()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return np.asarray(value, dtype=np.float64)
    raise ValueError(f"field '{key}' must be a tensor (got {type(value).__name__} "
                     f"{str(value)[:40]!r})")


def _conform(hint, value, key: str):
    """``value`` as the annotated type ``hint`` (ValueError naming ``key`` otherwise)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        return _conform(options[0], value, key) if len(options) == 1 else value
    if hint is np.ndarray:
        return _to_array(value, key)
    if origin is tuple:
        low = 1 if key in POSITIVE else 0
        if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, int) and not isinstance(v, bool) and v >= low for v in value):
            raise ValueError(f"field '{key}' must be a list of integers >= {low} "
                             f"(got {str(value)[:40]})")
        if args and args[-1] is not Ellipsis and len(value) != len(args):
            raise ValueError(f"field '{key}' must hold {len(args)} integers (got {len(value)})")
        return tuple(value)
    if origin is typing.Literal or hint is str:
        if not isinstance(value, str):
            raise ValueError(f"field '{key}' must be a string (got {type(value).__name__})")
        return value
    if hint is bool or hint is int:
        if not isinstance(value, hint) or (hint is int and isinstance(value, bool)):
            raise ValueError(f"field '{key}' must be {hint.__name__} (got "
                             f"{type(value).__name__})")
        if hint is int and value < (1 if key in POSITIVE else 0):
            raise ValueError(f"field '{key}' is out of range (got {value})")
        return value
    if dataclasses.is_dataclass(hint):
        if not isinstance(value, dict):
            raise ValueError(f"field '{key}' must be a dict of {hint.__name__} fields")
        return hint(**conform_fields(hint, value))
    return value


def conform_fields(cls, fields: dict) -> dict:
    """The fields of a node dict converted to ``cls``'s annotated types (ValueError otherwise;
    unknown fields are left for ``cls(**fields)`` to refuse)."""
    hints = typing.get_type_hints(cls)
    return {key: _conform(hints[key], value, key) if key in hints else value
            for key, value in fields.items()}


# ----------------------------------------------------------------------------- pickles

def _pickle_streams(path: Path):
    try:
        with zipfile.ZipFile(path) as archive:
            for name in archive.namelist():
                if name.endswith(".pkl"):
                    yield io.BytesIO(archive.read(name))
            return
    except (zipfile.BadZipFile, OSError):
        pass
    yield io.BytesIO(path.read_bytes())


def pickle_globals(path) -> list[str]:
    """Callables (``module.name``) the pickles in ``path`` import, other than PyTorch's own
    tensor-rebuilding functions; read with pickletools, nothing runs."""
    found = []
    for stream in _pickle_streams(Path(path)):
        while stream.tell() < len(stream.getbuffer()):  # legacy files hold several pickles
            strings = []
            try:
                for op, arg, _pos in pickletools.genops(stream):
                    if op.name in ("GLOBAL", "INST"):
                        found.append(str(arg).replace(" ", "."))
                    elif op.name == "STACK_GLOBAL" and len(strings) >= 2:
                        found.append(f"{strings[-2]}.{strings[-1]}")
                    if isinstance(arg, str):
                        strings.append(arg)
            except Exception:  # noqa: BLE001  (not a pickle, or truncated: nothing more to read)
                break
    return [name for name in dict.fromkeys(found) if not SAFE_GLOBALS.fullmatch(name)]
