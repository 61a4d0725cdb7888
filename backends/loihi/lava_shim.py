"""Python 3.11 fix for lava-nc 0.10, for machines without snn-compile (bring-up bundles).

lava-nc 0.10 declares Python < 3.11; on 3.11 one module fails to import because the dataclass
``ByteEncoder`` in ``lava/magma/compiler/var_model.py`` is used as a field default, which 3.11
refuses for unhashable (non-frozen) dataclasses. :func:`install` puts an import hook in front of
``sys.meta_path`` that loads that single module from its source with ``@dataclass(frozen=True)``
on ``ByteEncoder``. Nothing on disk is changed; on Python < 3.11 or with a fixed Lava the hook
does nothing. Call it before the first ``import lava``.
"""

import importlib.abc
import importlib.machinery
import importlib.util
import sys

TARGET = "lava.magma.compiler.var_model"
BEFORE = b"@dataclass\nclass ByteEncoder:"
AFTER = b"@dataclass(frozen=True)\nclass ByteEncoder:"


class _Loader(importlib.machinery.SourceFileLoader):
    def get_data(self, path):
        data = super().get_data(path)
        return data.replace(BEFORE, AFTER) if path.endswith(".py") else data

    def path_stats(self, path):
        raise OSError("no bytecode cache for the patched module")


class _Finder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != TARGET:
            return None
        others = [f for f in sys.meta_path if f is not self and hasattr(f, "find_spec")]
        for finder in others:
            spec = finder.find_spec(fullname, path, target)
            if spec is not None and spec.origin and spec.origin.endswith(".py"):
                return importlib.util.spec_from_file_location(
                    fullname, spec.origin, loader=_Loader(fullname, spec.origin))
        return None


def install():
    """Register the hook once; must run before lava.magma.compiler is imported."""
    if not any(isinstance(f, _Finder) for f in sys.meta_path):
        sys.meta_path.insert(0, _Finder())
