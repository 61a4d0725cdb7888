"""Local C simulation of a generated project with g++ and the ap_types headers.

Every project carries its own copy of the Xilinx ``ap_int`` headers in ``ap_types/`` (vendored
in this package from the hls4ml 1.3.0 wheel, Apache-2.0; see ``ap_types/NOTICE``), so g++ needs
nothing outside the project folder. The testbench binary depends only on the
project's sources (inputs and golden data are read at run time), so it is cached by a hash of
those sources: a network is compiled once and reused for every input and every emit.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from snn_compile.errors import BackendError

from .project import Project
from .render import AP_TYPES

CXX_FLAGS = ("-std=c++17", "-O2")
SOURCES = ("firmware/snn_top.cpp", "tb/snn_tb.cpp")
CACHE_ENV = "SNN_COMPILE_HLS_CACHE"
PCH_HEADERS = ("ap_int.h", "cstdio", "string", "vector")


def compiler() -> str | None:
    return shutil.which(os.environ.get("CXX", "g++"))


def missing() -> str | None:
    """None when C simulation can run here, else what is missing."""
    if compiler() is None:
        return "g++ not found on PATH (install g++ >= 9 or set CXX)"
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
    includes = [f"-I{prj / AP_TYPES}", f"-I{prj / 'firmware'}", f"-I{prj / 'firmware' / 'include'}"]
    includes = precompiled_header(prj / AP_TYPES) + includes
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


def precompiled_header(ap: Path) -> list[str]:
    """``-include`` flags of a precompiled ``ap_int.h`` (and the C++ headers the testbench
    uses) of the ap_types folder ``ap``, built once per compiler, flags and header content into
    the cache; ``[]`` when g++ cannot build one. It only saves compile time (parsing ap_int.h is
    about half of it): g++ ignores a header it cannot use, and the include guards keep the
    result identical either way."""
    digest = hashlib.sha256(" ".join((compiler() or "", *CXX_FLAGS)).encode())
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
