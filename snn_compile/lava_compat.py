"""Import-time compatibility shim for lava-nc 0.10 on Python 3.11.

lava-nc 0.10 declares Python < 3.11. It runs on 3.11 after two source fixes, applied at import:

* ``lava/magma/compiler/var_model.py`` uses instances of the dataclass ``ByteEncoder`` as field
  defaults, which Python 3.11 rejects ("mutable default ... use default_factory") because a plain
  ``@dataclass`` is unhashable. Declaring ``ByteEncoder`` frozen makes it hashable and changes
  nothing else (Lava never mutates those defaults).
* ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
  ``mp.set_start_method('fork')`` at import, which raises "context has already been set" once
  anything in the process has used multiprocessing (tqdm's lock does). ``force=True`` sets the
  same start method (fork, Linux's default) without raising.

:func:`install` registers a meta-path finder that loads those modules from their source with the
pattern replaced. Site-packages is never edited. When a pattern is absent (a fixed Lava), the
module loads unchanged.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import sys

from .errors import BackendError

# module -> (text in lava 0.10, replacement)
PATCHES = {
    "lava.magma.compiler.var_model": (
        "@dataclass\nclass ByteEncoder:", "@dataclass(frozen=True)\nclass ByteEncoder:"),
    "lava.magma.runtime.message_infrastructure.multiprocessing": (
        "mp.set_start_method('fork')", "mp.set_start_method('fork', force=True)"),
}


class _PatchedLoader(importlib.machinery.SourceFileLoader):
    def get_data(self, path):
        data = super().get_data(path)
        if path.endswith(".py"):
            old, new = PATCHES[self.name]
            return data.replace(old.encode(), new.encode())
        return data

    def path_stats(self, path):  # no bytecode cache: the patched code must not be cached
        raise OSError


class _VarModelFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in PATCHES:
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
