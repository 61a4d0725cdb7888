"""HDF5 files (``.nir``) that stay inside themselves and within the memory budget.

HDF5 can make a dataset read its bytes from another file (*external storage*), assemble it from
other datasets and files (*virtual datasets*), and link names to other objects or files (*soft*
and *external links*). A model file must carry its own numbers, so :func:`check_hdf5` refuses
all four, and it adds up the bytes every dataset and attribute declares (compression lets a tiny
file declare gigabytes) against :mod:`snn_compile.budget` before anything is read.
:func:`read_bytes` reads the file once, so the checked bytes are the bytes that get parsed.
"""

from __future__ import annotations

import io
from pathlib import Path

import h5py

from . import budget
from .errors import ModelFileError

HINT = "re-export the model so that every array is stored in the file itself"


def read_bytes(path) -> io.BytesIO:
    """The file's bytes, after checking its size against the budget."""
    path = Path(path)
    budget.check(path.stat().st_size, "the file", file=path)
    return io.BytesIO(path.read_bytes())


def _declared(shape, dtype) -> int:
    return budget.array_bytes(shape or (), dtype) if shape is not None else 0


def check_hdf5(source, *, file=None) -> int:
    """Refuse external storage, virtual datasets, soft and external links, and declared sizes
    over the budget; returns the declared bytes. ``source`` is a path or a file object."""
    total = 0
    problems = []
    try:
        with h5py.File(source, "r") as root:
            def visit(name, link):
                nonlocal total
                if isinstance(link, h5py.SoftLink):
                    problems.append((name, f"a soft link to {link.path!r}"))
                    return None
                if isinstance(link, h5py.ExternalLink):
                    problems.append((name, f"an external link to {link.filename!r}"))
                    return None
                obj = root[name]
                total += _attributes(obj)
                if isinstance(obj, h5py.Dataset):
                    if obj.external:
                        problems.append((name, f"stored in the external file "
                                               f"{obj.external[0][0]!r}"))
                    elif obj.is_virtual:
                        problems.append((name, "a virtual dataset (data from other sources)"))
                    total += _declared(obj.shape, obj.dtype)
                return None

            total += _attributes(root)
            root.visititems_links(visit)
    except (OSError, ValueError, KeyError, RuntimeError) as exc:
        raise ModelFileError("cannot read the HDF5 file (truncated or not HDF5)", file=file,
                             value=f"{type(exc).__name__}: {exc}"[:200]) from None
    if problems:
        name, what = problems[0]
        raise ModelFileError(f"the HDF5 file refers outside itself: '{name}' is {what}",
                             file=file, hint=HINT)
    budget.check(total, "the arrays the file declares", file=file)
    return total


def _attributes(obj) -> int:
    total = 0
    for key in obj.attrs:
        attr = obj.attrs.get_id(key)
        total += _declared(attr.shape, attr.dtype)
    return total
