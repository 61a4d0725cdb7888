"""Importing lava-nc 0.10 on Python 3.11: the shim plus a clear error when Lava is missing.

The source fixes themselves live in ``backends/loihi/lava_shim.py`` (one implementation, which
bring-up bundles also carry); see its docstring for what they change and why.
"""

from __future__ import annotations

from .errors import BackendError


def install() -> None:
    """Install the import hook (idempotent)."""
    from .backends.loihi import lava_shim  # late: the loihi package imports this module

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
