"""Lava imports even after the process has fixed multiprocessing's start method (tqdm does)."""

import subprocess
import sys

import pytest

pytest.importorskip("lava")


def test_lava_imports_after_multiprocessing_was_used():
    code = ("import multiprocessing as mp; mp.set_start_method('fork'); "
            "from snn_compile.backends.loihi.compat import require_lava; require_lava(); "
            "import lava.magma.runtime.runtime; print('imported')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "imported"
