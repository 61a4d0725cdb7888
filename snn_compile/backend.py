"""Backend interface and discovery through the ``snn_compile.backends`` entry-point group.

Built-in backends register exactly like third-party ones (see pyproject.toml): an entry point
``name = "package.module:Class"`` in the group ``snn_compile.backends``. Entry points are loaded
lazily, one at a time, on first use.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from importlib.metadata import entry_points
from typing import ClassVar

import numpy as np

from .errors import BackendError
from .trace import Trace

GROUP = "snn_compile.backends"
_registered: dict[str, type["Backend"]] = {}


class Backend(ABC):
    """Runs a network on one executor.

    ``fixed_point`` backends take a quantized :class:`~snn_compile.ir.fixed.QNetwork`; the float
    backend takes a float :class:`~snn_compile.ir.Graph`. ``run`` takes input spikes
    ``[T, B, *input_shape]`` and returns a :class:`Trace` with every neuron layer recorded.
    """

    name: ClassVar[str]
    fixed_point: ClassVar[bool] = True
    description: ClassVar[str] = ""

    @abstractmethod
    def run(self, network, spikes: np.ndarray) -> Trace:
        """Run ``network`` on ``spikes`` and record every layer."""

    def available(self) -> str | None:
        """None when the backend can run here, else a sentence saying what is missing."""
        return None


def available_backends() -> list[str]:
    """Names of all discovered backends (nothing is imported)."""
    return sorted({ep.name for ep in entry_points(group=GROUP)} | set(_registered))


def get_backend(name: str) -> Backend:
    """Load the backend ``name`` and return an instance; BackendError when unknown or broken."""
    if name in _registered:
        return _registered[name]()
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise BackendError("unknown backend", value=name,
                           hint=f"available: {', '.join(available_backends())}")
    try:
        cls = matches[0].load()
    except Exception as exc:  # report the real cause, never skip silently
        raise BackendError(f"backend '{name}' failed to load: {exc}",
                           hint="reinstall snn-compile (make venv)") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"entry point '{name}' is not a Backend subclass", value=cls)
    return cls()


def register_backend(cls: type[Backend]) -> type[Backend]:
    """Register an in-process backend (tests and notebooks only)."""
    _registered[cls.name] = cls
    return cls
