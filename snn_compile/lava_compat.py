"""Import-time compatibility shim for lava-nc 0.10 on Python 3.11.

lava-nc 0.10 declares Python < 3.11. It runs on 3.11 except for one module:
``lava/magma/compiler/var_model.py`` uses instances of the dataclass ``ByteEncoder`` as field
defaults, which Python 3.11 rejects ("mutable default ... use default_factory") because a plain
``@dataclass`` is unhashable. Declaring ``ByteEncoder`` frozen makes it hashable and changes
nothing else (Lava never mutates those defaults).

:func:`install` registers a meta-path finder that loads that one module from its source with the
decorator replaced. Site-packages is never edited. When the pattern is absent (a fixed Lava),
the module loads unchanged.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys

from .errors import BackendError

MODULE = "lava.magma.compiler.var_model"
BROKEN = "@dataclass\nclass ByteEncoder:"
FIXED = "@dataclass(frozen=True)\nclass ByteEncoder:"


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def get_data(self, path):
        data = super().get_data(path)
        if path.endswith(".py"):
            return data.replace(BROKEN.encode(), FIXED.encode())
        return data

    def path_stats(self, path):  # no bytecode cache: the patched code must not be cached
        raise OSError


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != MODULE:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                loader = _PatchedLoader(fullname, spec.origin)
                return importlib.util.spec_from_file_location(fullname, spec.origin,
                                                              loader=loader)
        return None


_FINDER = _VarModelFinder()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` (idempotent)."""
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)


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
