"""Run one atomic_dir() write of VERSION into OUT and die (os._exit, like SIGKILL) at POINT.

    python output_fault.py OUT VERSION POINT

POINT: none, block (half the files written), before_swap (complete, not yet moved),
after_exchange, during_discard (the old copy half deleted), fallback_after_first (OUT moved
aside, the new one not yet in place), fallback_after_second, fallback_eio (the second rename
fails with EIO). Imports snn_compile.output without the package's heavy __init__.
"""

import errno
import os
import sys
import types
from pathlib import Path

pkg = types.ModuleType("snn_compile")
pkg.__path__ = [str(Path(__file__).resolve().parent.parent / "snn_compile")]
sys.modules["snn_compile"] = pkg

import snn_compile.output as o  # noqa: E402

out, version, point = Path(sys.argv[1]), sys.argv[2], sys.argv[3]


def die():
    os._exit(9)


real_exchange, real_rename, real_remove = o.exchange, os.rename, o.remove_owned
renames = []

if point == "after_exchange":
    def exchange(a, b):
        assert real_exchange(a, b)
        die()
    o.exchange = exchange
elif point == "during_discard":
    def remove_owned(folder):
        next(p for p in Path(folder).rglob("*.txt")).unlink()
        die()
    o.remove_owned = remove_owned
elif point == "before_swap":
    def swap(new, dest):
        die()
    o.swap = swap
elif point.startswith("fallback"):
    o.exchange = lambda a, b: False

    def rename(a, b):
        renames.append((a, b))
        if point == "fallback_eio" and len(renames) == 2:
            raise OSError(errno.EIO, "Input/output error", str(a))
        real_rename(a, b)
        if (point, len(renames)) in (("fallback_after_first", 1), ("fallback_after_second", 2)):
            die()
    o.os.rename = rename

try:
    with o.atomic_dir(out) as tmp:
        for i in range(4):
            (tmp / f"f{i}.txt").write_text(version)
            if point == "block" and i == 1:
                die()
        (tmp / "sub").mkdir()
        (tmp / "sub" / "g.txt").write_text(version)
except o.SnnCompileError as exc:
    print(exc)
    sys.exit(2)
