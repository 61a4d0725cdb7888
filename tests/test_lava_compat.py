"""The Python 3.11 import fix for lava-nc 0.10: needed, and sufficient.

Both shims are tested: ``snn_compile.backends.loihi.compat`` (used in-process) and the
standalone ``lava_shim`` that bring-up bundles carry. Each check runs in a fresh interpreter,
since a module imported once stays imported.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

import snn_compile.backends.loihi as loihi_pkg

LAVA_SPEC = importlib.util.find_spec("lava")
requires_lava = pytest.mark.skipif(LAVA_SPEC is None, reason="lava-nc is not installed")

IMPORT = "import lava.magma.compiler.var_model as vm; print(vm.ByteEncoder.__hash__ is not None)"


def var_model_source() -> Path:
    return Path(LAVA_SPEC.submodule_search_locations[0]) / "magma" / "compiler" / "var_model.py"


def python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)


@requires_lava
@pytest.mark.skipif(sys.version_info < (3, 11), reason="the bug needs Python >= 3.11")
def test_lava_import_fails_without_shim():
    if "@dataclass\nclass ByteEncoder:" not in var_model_source().read_text():
        pytest.skip("this Lava installation is already fixed")
    done = python(IMPORT)
    assert done.returncode != 0
    assert "mutable default" in done.stderr and "ByteEncoder" in done.stderr


@requires_lava
def test_snn_compile_shim_fixes_the_import():
    done = python("from snn_compile.backends.loihi.compat import require_lava; require_lava(); "
                  + IMPORT + "; import lava.proc.lif.process")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


@requires_lava
def test_standalone_bundle_shim_fixes_the_import():
    shim_dir = Path(loihi_pkg.__file__).parent
    code = (f"import sys; sys.path.insert(0, {str(shim_dir)!r}); "
            "sys.modules['snn_compile'] = None; "
            "import lava_shim; lava_shim.install(); lava_shim.install(); " + IMPORT)
    done = python(code)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "True"


@requires_lava
def test_shim_does_not_edit_site_packages():
    before = var_model_source().read_bytes()
    done = python("from snn_compile.backends.loihi.compat import require_lava; require_lava(); "
                  + IMPORT)
    assert done.returncode == 0, done.stderr
    assert var_model_source().read_bytes() == before
