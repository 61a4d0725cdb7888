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


class Backend(ABC):
    """Runs a network on one executor.

    ``fixed_point`` backends take a quantized :class:`~snn_compile.ir.fixed.QNetwork`; the float
    backend takes a float :class:`~snn_compile.ir.Graph`. ``run`` takes input spikes
    ``[T, B, *input_shape]`` and returns a :class:`Trace` with every neuron layer recorded.

    A backend that writes a project or bundle for the main command also defines
    ``emit(network, out_dir, *, inputs, golden, source_name, float_graph) -> dict`` (a JSON-able
    summary); ``out_dir`` is inside a temporary folder that is moved into place atomically.
    """

    name: ClassVar[str]
    fixed_point: ClassVar[bool] = True
    golden: ClassVar[bool] = False  # the reference others are checked against (the emulator)
    description: ClassVar[str] = ""

    @abstractmethod
    def run(self, network, spikes: np.ndarray) -> Trace:
        """Run ``network`` on ``spikes`` and record every layer."""

    def available(self) -> str | None:
        """None when the backend can run here, else a sentence saying what is missing."""
        return None


def available_backends() -> list[str]:
    """Names of all discovered backends (nothing is imported)."""
    return sorted({ep.name for ep in entry_points(group=GROUP)})


def get_backend(name: str) -> Backend:
    """Load the backend ``name`` and return an instance; BackendError when unknown or broken."""
    matches = [ep for ep in entry_points(group=GROUP) if ep.name == name]
    if not matches:
        raise BackendError("unknown backend", value=name,
                           hint=f"available: {', '.join(available_backends())}")
    try:
        cls = matches[0].load()
    except ModuleNotFoundError as exc:  # an optional dependency (extra) is not installed
        if (exc.name or "").split(".")[0] == "snn_compile":  # our own module: a broken install
            raise BackendError(f"backend '{name}' failed to load: {exc}",
                               hint="reinstall snn-compile (make venv)") from exc
        raise BackendError(f"backend '{name}' needs the package '{exc.name}'",
                           hint="install the backends' dependencies: "
                                "pip install 'snn-compile[all]'") from exc
    except Exception as exc:  # report the real cause, never skip silently
        raise BackendError(f"backend '{name}' failed to load: {exc}",
                           hint="reinstall snn-compile (make venv)") from exc
    if not (isinstance(cls, type) and issubclass(cls, Backend)):
        raise BackendError(f"entry point '{name}' is not a Backend subclass", value=cls)
    return cls()
