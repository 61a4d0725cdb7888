"""Local C simulation of a generated project with g++ and the ap_types headers.

The Xilinx ``ap_int`` headers come from the hls4ml wheel
(``hls4ml/templates/vivado/ap_types``, Apache-2.0). The testbench binary depends only on the
project's sources (inputs and golden data are read at run time), so it is cached by a hash of
those sources: a network is compiled once and reused for every input and every emit.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from snn_compile.errors import BackendError

from .project import Project

CXX_FLAGS = ("-std=c++17", "-O2")
SOURCES = ("firmware/snn_top.cpp", "tb/snn_tb.cpp")
CACHE_ENV = "SNN_COMPILE_HLS_CACHE"
PCH_HEADERS = ("ap_int.h", "cstdio", "string", "vector")


def ap_types_dir() -> Path | None:
    """The ap_types include directory of the installed hls4ml wheel (hls4ml is not imported)."""
    spec = importlib.util.find_spec("hls4ml")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / "templates" / "vivado" / "ap_types"
    return path if (path / "ap_int.h").is_file() else None


def compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def missing() -> str | None:
    """None when C simulation can run here, else what is missing."""
    if compiler() is None:
        return "g++ not found on PATH (install g++ >= 9 or set CXX)"
    if ap_types_dir() is None:
        return "ap_types headers not found (install hls4ml==1.3.0, which ships them)"
    return None


def _cache_root() -> Path:
    env = os.environ.get(CACHE_ENV)
    if env:
        return Path(env)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "snn-compile" / "hls"


def source_hash(prj: Path) -> str:
    """Hash of everything the testbench binary is built from."""
    digest = hashlib.sha256(" ".join((compiler() or "",) + CXX_FLAGS).encode())
    for path in sorted(p for p in prj.rglob("*") if p.suffix in (".h", ".cpp") and p.is_file()):
        digest.update(str(path.relative_to(prj)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:24]


def build(prj: Path) -> Path:
    """Compile the testbench of project ``prj`` (or reuse the cached binary); return its path."""
    why = missing()
    if why:
        raise BackendError("cannot run the HLS C simulation", hint=why)
    binary = _cache_root() / source_hash(prj) / "snn_tb"
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    includes = [f"-I{ap_types_dir()}", f"-I{prj / 'firmware'}", f"-I{prj / 'firmware' / 'include'}"]
    includes = precompiled_header() + includes
    with tempfile.TemporaryDirectory(prefix="snn-hls-build-") as tmp:
        objects = [Path(tmp) / f"{Path(src).stem}.o" for src in SOURCES]

        def compile_one(pair):
            src, obj = pair
            return _call([compiler(), *CXX_FLAGS, *includes, "-c", str(prj / src), "-o", str(obj)])

        with ThreadPoolExecutor(max_workers=len(SOURCES)) as pool:
            list(pool.map(compile_one, zip(SOURCES, objects)))
        staged = Path(tmp) / "snn_tb"
        _call([compiler(), *map(str, objects), "-o", str(staged)])
        os.replace(shutil.copy2(staged, binary.parent / f".snn_tb.{os.getpid()}"), binary)
    return binary


def precompiled_header() -> list[str]:
    """``-include`` flags of a precompiled ``ap_int.h`` (and the C++ headers the testbench
    uses), built once per compiler, flags and ap_types folder into the cache; ``[]`` when g++
    cannot build one. It only saves compile time (parsing ap_int.h is about half of it): g++
    ignores a header it cannot use and the include guards keep the result identical."""
    ap = ap_types_dir()
    digest = hashlib.sha256(" ".join((compiler() or "", *CXX_FLAGS, str(ap))).encode())
    for path in sorted(ap.rglob("*.h")):
        digest.update(str(path.relative_to(ap)).encode() + b"\0" + path.read_bytes())
    root = _cache_root() / f"pch-{digest.hexdigest()[:16]}"
    header, gch = root / "snn_pch.h", root / "snn_pch.h.gch"
    if not gch.is_file():
        root.mkdir(parents=True, exist_ok=True)
        text = "".join(f"#include <{name}>\n" for name in PCH_HEADERS)
        if not header.is_file():
            staged = root / f".snn_pch.h.{os.getpid()}"
            staged.write_text(text)
            os.replace(staged, header)
        staged = root / f".snn_pch.gch.{os.getpid()}"
        proc = subprocess.run([compiler(), *CXX_FLAGS, f"-I{ap}", "-x", "c++-header",
                               str(header), "-o", str(staged)], capture_output=True)
        if proc.returncode != 0:
            staged.unlink(missing_ok=True)
            return []
        os.replace(staged, gch)
    return ["-include", str(header)]


def _first_line(text: str, marker: str) -> str:
    """The first line containing ``marker`` (else the first non-empty line): errors stay one line."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return next((line for line in lines if marker in line), lines[0] if lines else "")


def _call(cmd: list[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BackendError("g++ failed on the generated HLS project",
                           value=_first_line(proc.stderr, "error:"),
                           hint="this is a bug in snn-compile's HLS backend; please report it")


def run_testbench(binary: Path, data_dir: Path, *args: str) -> str:
    """Run the testbench on ``data_dir`` (``args``: e.g. the external weight image); returns
    its output, BackendError on failure."""
    proc = subprocess.run([str(binary), str(data_dir), *map(str, args)], capture_output=True,
                          text=True)
    if proc.returncode != 0:
        raise BackendError("HLS C simulation failed",
                           value=_first_line(proc.stdout + proc.stderr, "MISMATCH"),
                           hint="the generated C++ differs from the emulator; report it")
    return proc.stdout


def read_states(project: Project, data_dir: Path, steps: int, batch: int) -> dict[str, dict]:
    """The dumped ``csim_<pop>_<s|u|v>.dat`` files as [T, B, *shape] int64 arrays by
    population name."""
    layers = {}
    for pop in project.populations:
        states = {}
        for suffix, key in (("s", "spikes"), ("u", "u"), ("v", "v")):
            text = (data_dir / f"csim_{pop.ident}_{suffix}.dat").read_text()
            flat = np.array(text.split(), dtype=np.int64)
            states[key] = np.ascontiguousarray(
                flat.reshape(batch, steps, *pop.shape).swapaxes(0, 1))
        layers[pop.name] = states
    return layers
