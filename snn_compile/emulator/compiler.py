"""Compiling generated C with the system compiler, cached on disk, loaded with ctypes.

A kernel is compiled once per machine: the shared library is stored under the hash of its source,
the compiler's identity and the flags, in ``$SNN_COMPILE_CACHE`` (default
``$XDG_CACHE_HOME/snn-compile/kernels``, i.e. ``~/.cache/snn-compile/kernels``; the least
recently used beyond :data:`MAX_KERNELS` are deleted). Writes are
atomic (compile to a temporary file in the cache folder, then rename), so concurrent processes
that build the same kernel both end up loading a complete library. The compiler is ``$CC`` or the
first of ``cc``, ``gcc``, ``clang`` that builds a test kernel; flags are ``-O3 -march=native
-fopenmp -fwrapv`` (each optional flag is dropped where the compiler refuses it: without
``-fopenmp`` a kernel runs on one thread).

:func:`available` says whether native kernels can be built here (and why not).
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import platform
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from ..errors import SnnCompileError

CACHE_ENV = "SNN_COMPILE_CACHE"
# -ffp-contract=off: float kernels (snn_compile.float_kernels) round every operation on its own,
# like torch; GCC would otherwise fuse a * b + c into one rounding.
BASE_FLAGS = ("-O3", "-fwrapv", "-fPIC", "-shared", "-fno-math-errno", "-ffp-contract=off")
# GCC's unroll-and-jam fuses the column loop of the event-driven sums into eight columns that
# it then fails to vectorise (measured 5x slower); compilers without the flag skip it.
# 512-bit vectors: the int8 weight columns widen to 32 int16 sums per instruction (measured
# 1.4x on AVX-512; a no-op without it).
OPTIONAL_FLAGS = (("-march=native",), ("-fopenmp",), ("-fno-loop-unroll-and-jam",),
                  ("-mprefer-vector-width=512",))
MAX_KERNELS = 2000
TOOLCHAIN_FILE = "toolchain.json"  # probe results per compiler binary
_PROBE = "#include <stdint.h>\nint snn_probe(int64_t x) { return (int)(x + 1); }\n"
_lock = threading.RLock()
_loaded: dict[str, ctypes.CDLL] = {}


class CompilerError(SnnCompileError):
    """No working C compiler, or a kernel failed to build."""


def cache_dir() -> Path:
    """The kernel cache folder (created on first use, private to the user)."""
    env = os.environ.get(CACHE_ENV)
    if env:
        path = Path(env)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "snn-compile" / "kernels"
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    return path


@dataclass(frozen=True)
class Toolchain:
    compiler: str
    flags: tuple[str, ...]
    identity: str          # the compiler's version text: part of every kernel's hash

    @property
    def openmp(self) -> bool:
        return "-fopenmp" in self.flags


def _build(compiler: str, flags, source: str, out: Path) -> subprocess.CompletedProcess:
    src = out.with_suffix(".c")
    src.write_text(source)
    try:
        return subprocess.run([compiler, *flags, str(src), "-o", str(out)],
                              capture_output=True, text=True, timeout=300)
    finally:
        src.unlink(missing_ok=True)


@lru_cache(maxsize=1)
def toolchain() -> Toolchain:
    """The compiler and flags to use, found once per process (and remembered in the cache
    folder per compiler binary, so a process does not probe again); CompilerError if none
    works."""
    env = os.environ.get("CC")
    problems = []
    for cc in [env] if env else ["cc", "gcc", "clang"]:
        path = shutil.which(cc)
        if path is None:
            problems.append(f"{cc}: not found")
            continue
        try:
            return _known_toolchain(path) or _probe(path)
        except CompilerError as exc:
            problems.append(f"{cc}: {exc.value}")
    raise CompilerError("no working C compiler for the native emulator",
                        value="; ".join(problems),
                        hint="install gcc (or set CC), or run with engine='numpy'")


def _binary_key(path: str) -> str:
    """The compiler binary and the flags asked for (a changed flag list probes again)."""
    real = os.path.realpath(path)
    st = os.stat(real)
    wanted = hashlib.sha256(repr((BASE_FLAGS, OPTIONAL_FLAGS)).encode()).hexdigest()[:12]
    return f"{path}|{real}|{st.st_size}|{st.st_mtime_ns}|{wanted}"


def _known_toolchain(path: str) -> Toolchain | None:
    try:
        entry = json.loads((cache_dir() / TOOLCHAIN_FILE).read_text()).get(_binary_key(path))
    except (OSError, ValueError):
        return None
    return None if entry is None else Toolchain(path, tuple(entry["flags"]), entry["identity"])


def _probe(path: str) -> Toolchain:
    """Build a test kernel with every optional flag at once, else flag by flag."""
    with tempfile.TemporaryDirectory(prefix="snn-probe-") as tmp:
        out = Path(tmp) / "probe.so"
        flags = list(BASE_FLAGS)
        every = [flag for extra in OPTIONAL_FLAGS for flag in extra]
        if not _build(path, flags + every, _PROBE, out).returncode:
            flags += every
        else:
            probe = _build(path, flags, _PROBE, out)
            if probe.returncode:
                raise CompilerError("cannot build", value=probe.stderr.strip()[-300:])
            for extra in OPTIONAL_FLAGS:
                if not _build(path, flags + list(extra), _PROBE, out).returncode:
                    flags += extra
    version = subprocess.run([path, "--version"], capture_output=True, text=True)
    found = Toolchain(path, tuple(flags), version.stdout.strip())
    _remember(path, found)
    return found


def _remember(path: str, tc: Toolchain) -> None:
    file = cache_dir() / TOOLCHAIN_FILE
    try:
        known = json.loads(file.read_text())
    except (OSError, ValueError):
        known = {}
    known[_binary_key(path)] = {"flags": list(tc.flags), "identity": tc.identity}
    _write_atomic(file, json.dumps(known, indent=1))


def forget_toolchain() -> None:
    """Probe the compiler again (next :func:`toolchain` call)."""
    (cache_dir() / TOOLCHAIN_FILE).unlink(missing_ok=True)
    toolchain.cache_clear()


def _write_atomic(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=path.suffix)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def available() -> tuple[bool, str]:
    """(True, description) if kernels can be built here, else (False, the reason)."""
    try:
        tc = toolchain()
    except CompilerError as exc:
        return False, str(exc)
    return True, f"{tc.compiler} {' '.join(tc.flags)}"


@lru_cache(maxsize=1)
def _machine() -> str:
    """The CPU's identity (``-march=native`` code is only valid on the same kind of CPU)."""
    text = platform.machine()
    try:
        info = Path("/proc/cpuinfo").read_text().splitlines()
        text += "".join(line for line in info if line.startswith(("model name", "flags")))[:4096]
    except OSError:
        text += platform.processor()
    return text


def kernel_hash(source: str) -> str:
    tc = toolchain()
    text = "\0".join([tc.identity, " ".join(tc.flags), _machine(), source])
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def load(source: str, *, retry: bool = True) -> ctypes.CDLL:
    """The library of ``source``: from this process, from the cache, or compiled now (a build
    that fails with a remembered toolchain probes the compiler again, once)."""
    key = kernel_hash(source)
    with _lock:
        lib = _loaded.get(key)
        if lib is None:
            path = cache_dir() / f"{key}.so"
            if path.exists():
                os.utime(path)  # recently used: kept by the pruning below
            else:
                try:
                    _compile(source, path)
                except CompilerError:
                    if not retry:
                        raise
                    forget_toolchain()
                    return load(source, retry=False)
                _prune(path.parent)
            lib = _loaded[key] = ctypes.CDLL(str(path))
    return lib


def _prune(folder: Path, keep: int = MAX_KERNELS) -> None:
    """Delete the least recently used kernels beyond ``keep`` (random test networks would
    otherwise grow the cache without end)."""
    libs = []
    for lib in folder.glob("*.so"):
        try:
            libs.append((lib.stat().st_mtime, lib))
        except FileNotFoundError:  # removed by another process meanwhile
            pass
    for _, lib in sorted(libs, reverse=True)[keep:]:
        lib.unlink(missing_ok=True)
        lib.with_suffix(".c").unlink(missing_ok=True)


def _compile(source: str, path: Path) -> None:
    tc = toolchain()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}-", suffix=".so")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        result = _build(tc.compiler, tc.flags, source, tmp_path)
        if result.returncode:
            raise CompilerError("a native emulator kernel failed to compile",
                                value=result.stderr.strip()[-2000:],
                                hint="please report this; engine='numpy' runs meanwhile")
        os.replace(tmp_path, path)  # atomic: other processes see no file or a complete one
        if not path.with_suffix(".c").exists():  # kept for reading
            _write_atomic(path.with_suffix(".c"), source)
    finally:
        tmp_path.unlink(missing_ok=True)
