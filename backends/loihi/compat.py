"""Importing lava-nc 0.10 on Python 3.11: the shim plus a clear error when Lava is missing.

The source fixes themselves live in :mod:`.lava_shim` (one implementation, which bring-up bundles
also carry verbatim); see its docstring for what they change and why. This module belongs to the
Loihi backend: the core never imports Lava.
"""

from __future__ import annotations

from snn_compile.errors import BackendError

from . import lava_shim


def install() -> None:
    """Install the import hook (idempotent)."""
    lava_shim.install()


def require_lava():
    """Install the shim and import lava; BackendError with install advice when it is missing."""
    install()
    try:
        import lava.magma.compiler.var_model  # noqa: F401  (the module the shim fixes)
        import lava.proc.lif.process  # noqa: F401
    except ImportError as exc:
        raise BackendError(f"Lava is not installed ({exc})",
                           hint="run `make venv` (installs lava-nc 0.10.0 with --no-deps)") from exc
    import lava
    return lava
