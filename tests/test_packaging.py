"""The built distribution: a wheel built from a clean copy of the tree (through the sdist, as
``python -m build`` does) holds every file of the three package trees and nothing else, with
SPDX licence metadata, the version and working entry points; and light commands stay light
(importing the package, listing targets or backends, --help and --version never import torch).
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

import snn_compile

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
PACKAGE_DIR = PYPROJECT["tool"]["setuptools"]["package-dir"]  # import name -> folder
NOT_SOURCE = ("__pycache__", ".pytest_cache", ".hypothesis")


def tree_files() -> dict[str, Path]:
    """Install path (``snn_compile/backends/hls/templates/x.j2``) -> source file, for every file
    in the mapped trees except caches."""
    files = {}
    for name, folder in PACKAGE_DIR.items():
        base = ROOT / folder
        for path in base.rglob("*"):
            rel = path.relative_to(base)
            if path.is_file() and not any(part in NOT_SOURCE or part.endswith(".egg-info")
                                          for part in rel.parts):
                files["/".join((*name.split("."), *rel.parts))] = path
    return files


def _ignore(folder, names):
    return [n for n in names if n in {".venv", ".git", "build", "dist", "out", *NOT_SOURCE}
            or n.endswith(".egg-info")]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """sdist + wheel (from the sdist) of a clean copy of the tree, so that nothing stale or
    untracked in the working tree can hide a packaging bug."""
    tmp = tmp_path_factory.mktemp("dist")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=_ignore)
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir",
                           str(tmp / "dist"), str(src)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (path,) = (tmp / "dist").glob("*.whl")
    return path


def _members(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def _metadata(wheel: Path):
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(zf.read(name))


def test_every_file_of_the_package_trees_is_in_the_wheel(wheel):
    expected = tree_files()
    assert "snn_compile/backends/loihi/templates/run_lava.py.j2" in expected  # mapping sanity
    assert "snn_compile/_targets/loihi2.toml" in expected
    missing = sorted(set(expected) - _members(wheel))
    assert not missing, f"not in the wheel: {missing}"
    with zipfile.ZipFile(wheel) as zf:
        for member, path in expected.items():
            assert zf.read(member) == path.read_bytes(), member


def test_wheel_holds_nothing_else(wheel):
    extra = sorted(m for m in _members(wheel) - set(tree_files()) if ".dist-info/" not in m)
    assert not extra, f"unexpected files in the wheel: {extra}"


def test_new_folder_in_a_tree_is_discovered(tmp_path):
    """setup.py names every folder of a mapped tree, with or without __init__.py."""
    tree = tmp_path / "tree"
    (tree / "pkg" / "sub" / "data").mkdir(parents=True)
    (tree / "pkg" / "__init__.py").write_text("")
    (tree / "pkg" / "sub" / "data" / "table.toml").write_text("")
    code = ("import runpy, sys; sys.argv = ['setup.py', '--name']; import setuptools; "
            "setuptools.setup = lambda **kw: print(kw['packages']); "
            f"ns = runpy.run_path({str(ROOT / 'setup.py')!r}); "
            f"print(ns['discover']({{'x.y': {str(tree)!r}}}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=ROOT).stdout.splitlines()
    assert out[-1] == str(["x.y", "x.y.pkg", "x.y.pkg.sub", "x.y.pkg.sub.data"])


def test_metadata_licence_version_and_extras(wheel):
    meta = _metadata(wheel)
    assert meta["License-Expression"] == "Apache-2.0"
    assert meta["License"] is None  # the legacy free-text field is gone
    assert meta["Version"] == snn_compile.__version__
    assert {"loihi", "onnx", "all", "test"} <= set(meta.get_all("Provides-Extra"))
    requires = meta.get_all("Requires-Dist")
    assert not [r for r in requires if "==" in r.split(";")[0]], "pins belong in constraints.txt"
    core = [r for r in requires if "extra ==" not in r]
    assert not [r for r in core if r.split("<")[0].split(">")[0].strip()
                in ("onnx", "onnxruntime", "scipy", "networkx", "asteval", "hls4ml")]
    with zipfile.ZipFile(wheel) as zf:
        licences = [n for n in zf.namelist() if "/licenses/" in n]
    assert any(n.endswith("/licenses/LICENSE") for n in licences)
    assert any(n.endswith("ap_types/NOTICE") for n in licences)


def test_entry_points_name_modules_in_the_wheel(wheel):
    members = _members(wheel)
    with zipfile.ZipFile(wheel) as zf:
        name = next(n for n in zf.namelist() if n.endswith(".dist-info/entry_points.txt"))
        text = zf.read(name).decode()
    targets = [line.split("=", 1)[1].strip() for line in text.splitlines() if "=" in line]
    assert len(targets) == 6  # snn-compile script + five backends
    for target in targets:
        module = target.split(":")[0].replace(".", "/")
        assert f"{module}.py" in members or f"{module}/__init__.py" in members, target


def test_constraints_pin_every_declared_dependency():
    pins = {line.split("==")[0].lower().replace("_", "-")
            for line in (ROOT / "constraints.txt").read_text().splitlines()
            if line and not line.startswith("#")}
    declared = PYPROJECT["project"]["dependencies"] + [
        r for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items()
        if extra != "all" for r in reqs]
    names = {r.split(";")[0].split("[")[0].split("<")[0].split(">")[0].split("=")[0]
             .strip().lower().replace("_", "-") for r in declared}
    assert names <= pins, f"not pinned in constraints.txt: {sorted(names - pins)}"
    assert {"torch", "lava-nc"} <= pins


LIGHT = [
    "import snn_compile",
    "from snn_compile.cli import main; main(['targets'])",
    "from snn_compile.cli import main; main(['backends'])",
    "from snn_compile.cli import main\ntry: main(['--help'])\nexcept SystemExit: pass",
    "from snn_compile.cli import main\ntry: main(['--version'])\nexcept SystemExit: pass",
]


@pytest.mark.parametrize("code", LIGHT)
def test_light_commands_do_not_import_torch(code):
    check = code + "\nimport sys\nassert 'torch' not in sys.modules, 'torch was imported'"
    proc = subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]


def test_backend_of_a_missing_extra_names_the_package(monkeypatch):
    """Without the onnx extra, loading the onnx backend says what to install."""
    from importlib.metadata import EntryPoint

    from snn_compile import backend
    from snn_compile.errors import BackendError

    def fake(group):
        return [EntryPoint("onnx", "snn_compile_missing_extra_module:X", group)]

    monkeypatch.setattr(backend, "entry_points", fake)
    with pytest.raises(BackendError) as exc:
        backend.get_backend("onnx")
    text = str(exc.value)
    assert "needs the package 'snn_compile_missing_extra_module'" in text
    assert "pip install 'snn-compile[all]'" in text


def test_running_a_compiled_network_does_not_import_torch(tmp_path):
    """`snn-compile run OUT/` on a compiled network (the emulator, issue 13's fast start): no
    torch, and the written trace equals the emulator run in process."""
    import numpy as np

    from snn_compile.compare import traces_identical
    from snn_compile.emulator import run_network
    from snn_compile.ir.fixed_io import save_network
    from snn_compile.targets import load_target
    from snn_compile.testing.networks import random_network, random_spikes

    rng = np.random.default_rng(11)
    net = random_network(rng, load_target("loihi2"))
    folder = save_network(net, tmp_path / "net")
    x = random_spikes(rng, net, steps=6, batch=3)
    np.savez(tmp_path / "in.npz", spikes=x)
    code = (f"import sys\nfrom snn_compile.cli import main\n"
            f"main(['run', {str(folder)!r}, '--input', {str(tmp_path / 'in.npz')!r}, "
            f"'--output', {str(tmp_path / 'out.npz')!r}])\n"
            "assert 'torch' not in sys.modules, 'torch was imported'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    from snn_compile.trace import Trace

    with np.load(tmp_path / "out.npz") as got:
        assert traces_identical(Trace.from_npz_dict(got), run_network(net, x)) is None
