"""Model importers, and ``load_model``, which picks one by the file's content or suffix.

* ``.pt``/``.pth`` (a zip or pickle written by ``torch.save``): :mod:`.model_file` — our own
  model file, a state_dict with ``arch``, or a trusted pickled module.
* ``.nir`` (HDF5): :mod:`.nir`, which needs the discretisation convention of the framework
  that wrote the file.

Importers are imported on first use, so ``import snn_compile`` stays light.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ModelFileError
from ..ir import Graph
from ..names import check_graph_names

__all__ = ["load_model"]


def _load_torch_file(path: Path, options: dict) -> Graph:
    _refuse(path, "a PyTorch file", options, "nir_convention", "dt")
    from .model_file import load_model_file

    return load_model_file(path, arch=options["arch"], trust_pickle=options["trust_pickle"],
                           input_shape=options["input_shape"])


def _load_nir_file(path: Path, options: dict) -> Graph:
    _refuse(path, "a NIR file", options, "arch", "input_shape")
    from .nir import load_nir

    return load_nir(path, convention=options["nir_convention"], dt=options["dt"])


def _refuse(path: Path, kind: str, options: dict, *names: str) -> None:
    """Options that do not apply to this kind of file are an error, not silently ignored."""
    for name in names:
        if options[name] is not None:
            raise ModelFileError(f"option '{name}' does not apply to {kind}", file=path,
                                 value=options[name], hint=f"drop {name}")


_BY_MAGIC = (
    (b"\x89HDF\r\n\x1a\n", _load_nir_file),
    (b"PK\x03\x04", _load_torch_file),  # torch.save's zip container
    (b"\x80", _load_torch_file),        # a legacy torch.save / plain pickle
)
_BY_SUFFIX = {".nir": _load_nir_file, ".pt": _load_torch_file, ".pth": _load_torch_file}


def load_model(path, *, arch: str | None = None, trust_pickle: bool = False,
               nir_convention: str | None = None, dt: float | None = None,
               input_shape=None) -> Graph:
    """Read a model file into a float IR :class:`~snn_compile.ir.Graph`.

    ``arch`` ("package.module:callable") builds the network for a bare state_dict;
    ``trust_pickle`` allows a pickled module (this runs code from the file);
    ``input_shape`` is one sample's shape, needed for a state_dict or pickled module unless the
    network starts with nn.Linear; ``nir_convention`` and ``dt`` apply to ``.nir`` files.
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError("model file not found", file=path)
    with path.open("rb") as f:
        head = f.read(8)
    loader = next((fn for magic, fn in _BY_MAGIC if head.startswith(magic)),
                  _BY_SUFFIX.get(path.suffix.lower()))
    if loader is None:
        raise ModelFileError("unknown model file type", file=path,
                             hint="expected a .pt/.pth file (snn_compile.export, a state_dict) "
                                  "or a .nir file")
    options = {"arch": arch, "trust_pickle": trust_pickle, "nir_convention": nir_convention,
               "dt": dt, "input_shape": None if input_shape is None else tuple(input_shape)}
    return check_graph_names(loader(path, options), file=path)
