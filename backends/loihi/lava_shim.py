"""Python 3.11 fixes for lava-nc 0.10, applied at import time (standalone: bundles carry it).

lava-nc 0.10 declares Python < 3.11. It runs on 3.11 after two source fixes:

* ``lava/magma/compiler/var_model.py`` uses instances of the dataclass ``ByteEncoder`` as field
  defaults, which Python 3.11 rejects ("mutable default ... use default_factory") because a plain
  ``@dataclass`` is unhashable. Declaring ``ByteEncoder`` frozen makes it hashable and changes
  nothing else (Lava never mutates those defaults).
* ``lava/magma/runtime/message_infrastructure/multiprocessing.py`` calls
  ``mp.set_start_method('fork')`` at import, which raises "context has already been set" once
  anything in the process has used multiprocessing (tqdm's lock does). ``force=True`` sets the
  same start method (fork, Linux's default) without raising.

:func:`install` puts an import hook in front of ``sys.meta_path`` that loads those modules from
their source with the pattern replaced. Nothing on disk is changed; when a pattern is absent (a
fixed Lava) the module loads unchanged. Call it before the first ``import lava``. This file
imports nothing from snn-compile: bring-up bundles copy it verbatim.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import sys

# module -> (text in lava 0.10, replacement)
PATCHES = {
    "lava.magma.compiler.var_model": (
        b"@dataclass\nclass ByteEncoder:", b"@dataclass(frozen=True)\nclass ByteEncoder:"),
    "lava.magma.runtime.message_infrastructure.multiprocessing": (
        b"mp.set_start_method('fork')", b"mp.set_start_method('fork', force=True)"),
}


class _Loader(importlib.machinery.SourceFileLoader):
    def get_data(self, path):
        data = super().get_data(path)
        if not path.endswith(".py"):
            return data
        before, after = PATCHES[self.name]
        return data.replace(before, after)

    def path_stats(self, path):
        raise OSError("no bytecode cache for a patched module")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname not in PATCHES:
            return None
        others = [f for f in sys.meta_path if f is not self and hasattr(f, "find_spec")]
        for finder in others:
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                return importlib.util.spec_from_file_location(
                    fullname, spec.origin, loader=_Loader(fullname, spec.origin))
        return None


def install():
    """Register the hook once; must run before lava is imported."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
