"""Output folders: what snn-compile owns, and replacing a folder so one complete copy always exists.

Ownership. Every folder snn-compile writes (``-o OUT``, ``check --report DIR``) holds
:data:`MANIFEST` (``.snn-compile-manifest.json``), a format tag plus the list of the files it
wrote. Only a folder whose every file is listed in a valid manifest (or an empty folder) is an
earlier output that may be replaced; anything else is refused, naming a file snn-compile did not
write, and no file that is not in a manifest is ever deleted. ``OUT`` must not be a symbolic link
(nor a dangling one), a file, ``.``/``..``, ``/`` or a folder that holds the current folder;
symbolic links in the parent path are resolved once and used consistently.

Replacement (:func:`atomic_dir`). The new output is written into a hidden sibling
``.<name>.<hash>.partial-<pid>`` (short enough for a 250-character ``name``) and is complete,
manifest included, before ``OUT`` changes:

1. ``OUT`` absent: ``rename(partial, OUT)``.
2. ``OUT`` present, Linux: ``renameat2(partial, OUT, RENAME_EXCHANGE)`` swaps both names in one
   atomic step (through ctypes); the old output, now under the partial name, is then deleted
   file by file from its manifest.
3. Fallback, where the exchange is unsupported (another OS, or a file system that refuses it):
   ``rename(OUT, .<name>.<hash>.old-<pid>)``, ``rename(partial, OUT)``; if the second rename
   fails, the first is undone and the error says so. A kill between the two renames leaves
   ``OUT`` missing: the next run finds the ``.old-<pid>`` sibling of the dead process and renames
   it back before doing anything else (recovery).

So a kill at any point leaves either the old or the new complete ``OUT`` (case 3: after the
recovery of the next run). Siblings of dead runs (their pid is not alive on this host) are
removed at the next run: a complete one through its manifest, an unfinished ``.partial`` (its
manifest says ``"complete": false``) as a whole, since snn-compile created it and wrote all of
it. Parent folders created for ``OUT`` are removed again when the run fails.
"""

from __future__ import annotations

import ctypes
import errno
import hashlib
import json
import os
import re
import shutil
import socket
import warnings
from contextlib import contextmanager
from pathlib import Path

from .errors import SnnCompileError

MANIFEST = ".snn-compile-manifest.json"
FORMAT = "snn-compile-output"
VERSION = 1
_SIBLING = re.compile(r"\.(partial|old)-(\d+)$")
_HOST = socket.gethostname()


# ----------------------------------------------------------------------------- manifest

def read_manifest(folder: Path) -> dict | None:
    """The folder's manifest if it is a valid one written by snn-compile, else None."""
    path = Path(folder) / MANIFEST
    try:
        if path.is_symlink() or not path.is_file() or path.stat().st_size > 1 << 24:
            return None
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(data, dict) and data.get("format") == FORMAT
            and data.get("version") == VERSION and isinstance(data.get("files"), list)
            and all(isinstance(f, str) and _safe_relative(f) for f in data["files"])):
        return None
    return data


def _safe_relative(rel: str) -> bool:
    parts = rel.split("/")
    return bool(rel) and "\0" not in rel and not rel.startswith("/") and \
        all(p not in ("", ".", "..") for p in parts) and parts[0] != MANIFEST


def _write_manifest(folder: Path, files: list[str], *, complete: bool) -> None:
    data = {"format": FORMAT, "version": VERSION, "complete": complete, "files": files}
    if not complete:
        data["host"] = _HOST
    (folder / MANIFEST).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n",
                                   encoding="utf-8")


def _files_below(folder: Path) -> tuple[list[str], list[str]]:
    """(regular files, other entries: symlinks, fifos, ...) below ``folder``, as sorted
    '/'-joined relative paths, the manifest excluded; folders are not listed."""
    files, other = [], []
    for root, dirs, names in os.walk(folder):
        base = Path(root)
        for name in dirs:
            if (base / name).is_symlink():
                other.append((base / name).relative_to(folder).as_posix())
        for name in names:
            rel = (base / name).relative_to(folder).as_posix()
            if rel == MANIFEST:
                continue
            (files if (base / name).is_file() and not (base / name).is_symlink()
             else other).append(rel)
    return sorted(files), sorted(other)


def foreign_files(folder: Path) -> list[str]:
    """Entries below ``folder`` that no valid snn-compile manifest lists (sorted)."""
    files, other = _files_below(folder)
    manifest = read_manifest(folder)
    listed = set(manifest["files"]) if manifest else set()
    return sorted([f for f in files if f not in listed] + other)


def remove_owned(folder: Path) -> list[str]:
    """Delete the files ``folder``'s manifest lists, then the manifest and the folders left
    empty; returns what is left (files snn-compile did not write), [] when all is gone."""
    folder = Path(folder)
    manifest = read_manifest(folder)
    if manifest is None:
        return foreign_files(folder)
    for rel in manifest["files"]:
        path = folder / rel
        if path.is_file() and not path.is_symlink() and _inside(path, folder):
            path.unlink()
    left = foreign_files(folder)
    if not left:
        (folder / MANIFEST).unlink(missing_ok=True)
    for root, _dirs, _files in sorted(os.walk(folder, topdown=False), reverse=True):
        with _suppress_oserror():
            os.rmdir(root)
    return left


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


class _suppress_oserror:
    def __enter__(self):
        return self

    def __exit__(self, kind, exc, tb):
        return kind is not None and issubclass(kind, OSError)


# ----------------------------------------------------------------------------- destination

def destination(out) -> Path:
    """The absolute path ``out`` names, its parent resolved once (symbolic links followed),
    after refusing the names that can never be an output folder."""
    out = Path(out)
    if out.name in ("", ".", ".."):
        raise SnnCompileError("the output folder cannot be '.', '..' or '/'", file=out or ".",
                              hint="pass a new folder, e.g. -o out/model")
    dest = out.absolute().parent.resolve() / out.name
    cwd = Path.cwd().resolve()
    if dest == cwd or dest in cwd.parents:
        raise SnnCompileError("the output folder holds the current folder", file=out,
                              hint="pass a new folder, e.g. -o out/model")
    return dest


def check_output(out) -> Path:
    """Refuse an ``out`` that is not absent, empty, or an earlier snn-compile output; returns
    :func:`destination`."""
    dest = destination(out)
    if dest.is_symlink():
        raise SnnCompileError("the output path is a symbolic link" +
                              ("" if dest.exists() else " to nothing"), file=out,
                              hint="pass the folder it should point to, or remove the link")
    if dest.exists() and not dest.is_dir():
        raise SnnCompileError("output exists and is not a folder", file=out,
                              hint="choose another output path")
    if dest.is_dir():
        foreign = foreign_files(dest)
        if foreign:
            raise SnnCompileError("output folder exists and was not written by snn-compile",
                                  file=out, value=f"{len(foreign)} files it did not write, "
                                                  f"e.g. {foreign[0]!r}",
                                  hint="choose a new folder, or empty this one")
    return dest


# ----------------------------------------------------------------------------- siblings

def _sibling_prefix(dest: Path) -> str:
    """``.<name, at most 100 characters>.<hash of the whole name>``."""
    return f".{dest.name[:100]}.{hashlib.sha256(os.fsencode(dest.name)).hexdigest()[:8]}"


def _sibling(dest: Path, kind: str) -> Path:
    return dest.parent / f"{_sibling_prefix(dest)}.{kind}-{os.getpid()}"


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False  # a leftover of a dead earlier process that had our pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stale_siblings(dest: Path) -> list[tuple[str, Path, bool]]:
    """``(kind, path, complete)`` of the partial/old siblings of ``dest`` whose process is
    gone; ``complete``: the folder holds a whole output, deleted through its manifest."""
    prefix = _sibling_prefix(dest)
    found = []
    try:
        entries = list(dest.parent.iterdir())
    except OSError:
        return []
    for path in sorted(entries):
        match = _SIBLING.search(path.name)
        if not (match and path.name[:match.start()] == prefix and path.is_dir()
                and not path.is_symlink()):
            continue
        manifest = read_manifest(path)
        if manifest is None and match.group(1) == "partial" and _only_marker(path):
            manifest = {"complete": False}  # killed before its marker was written
        if manifest is not None and manifest.get("host", _HOST) == _HOST \
                and not _alive(int(match.group(2))):
            found.append((match.group(1), path, manifest.get("complete", True) is not False))
    return found


def _only_marker(folder: Path) -> bool:
    try:
        return all(entry.name == MANIFEST for entry in folder.iterdir())
    except OSError:
        return False


def clean_stale(dest: Path) -> None:
    """Recover and remove what dead earlier runs left beside ``dest`` (see the module doc)."""
    stale = stale_siblings(dest)
    if not dest.exists() and not dest.is_symlink():
        for entry in stale:
            if entry[0] == "old":
                os.rename(entry[1], dest)  # an interrupted fallback swap: restore the old copy
                stale.remove(entry)
                break
    for _kind, path, complete in stale:
        if complete:
            left = remove_owned(path)
            if left:
                warnings.warn(f"kept {path}: it holds files snn-compile did not write "
                              f"({left[0]!r})", stacklevel=2)
        else:
            shutil.rmtree(path, ignore_errors=True)


# ----------------------------------------------------------------------------- swapping

_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def exchange(a: Path, b: Path) -> bool:
    """Atomically swap the names ``a`` and ``b`` (Linux renameat2 RENAME_EXCHANGE).

    False when the system or file system does not offer it; OSError for any other failure.
    """
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(a), None, str(b))


def _swap_by_renames(new: Path, dest: Path) -> Path:
    """The fallback: old out of the way, new in; undone on failure. Returns the old copy."""
    old = _sibling(dest, "old")
    os.rename(dest, old)
    try:
        os.rename(new, dest)
    except OSError as exc:
        try:
            os.rename(old, dest)
        except OSError:
            raise SnnCompileError(f"could not move the new output into place ({exc.strerror})",
                                  file=dest, value=f"the earlier output is kept as {old}",
                                  hint="the next run of snn-compile puts it back") from None
        raise SnnCompileError(f"could not move the new output into place ({exc.strerror}); "
                              "the earlier output is unchanged", file=dest,
                              hint="check the folder's file system and permissions") from None
    return old


def swap(new: Path, dest: Path) -> Path | None:
    """Put the complete folder ``new`` at ``dest``; returns where the earlier output went (to
    be removed by :func:`discard`), or None when there was none."""
    if not dest.exists():
        os.rename(new, dest)
        return None
    return new if exchange(new, dest) else _swap_by_renames(new, dest)


def discard(old: Path) -> None:
    """Delete an earlier output moved aside by :func:`swap`, keeping files that are not ours."""
    try:
        left = remove_owned(old)
    except OSError as exc:
        left = [f"{exc.filename}: {exc.strerror}"]
    if left:  # someone wrote into the old output while we ran, or it could not be deleted
        warnings.warn(f"kept the earlier output as {old} ({left[0]!r}); the next run removes "
                      "what snn-compile wrote there", stacklevel=3)


# ----------------------------------------------------------------------------- the context

def _make_parents(folder: Path) -> list[Path]:
    """Create ``folder`` and its missing ancestors; returns those created, deepest first."""
    missing = []
    for path in (folder, *folder.parents):
        if path.exists() or path.is_symlink():
            break
        missing.append(path)
    folder.mkdir(parents=True, exist_ok=True)
    return missing


def _remove_created(folders: list[Path]) -> None:
    for path in folders:
        with _suppress_oserror():
            path.rmdir()


@contextmanager
def atomic_dir(out):
    """Yield an empty temporary folder; when the block succeeds it becomes ``out`` (see the
    module docstring); when it fails, nothing is left behind."""
    dest = check_output(out)
    clean_stale(dest)
    created = _make_parents(dest.parent)
    tmp = _sibling(dest, "partial")
    try:
        tmp.mkdir()
        _write_manifest(tmp, [], complete=False)
        yield tmp
        files, other = _files_below(tmp)
        if other:
            raise SnnCompileError("the output may only hold regular files", file=tmp,
                                  value=other[0])
        _write_manifest(tmp, files, complete=True)
        check_output(out)  # nothing foreign appeared in OUT while we were writing
        old = swap(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)  # still our unfinished folder: nothing swapped
        _remove_created(created)
        raise
    if old is not None:
        discard(old)


def write_file(path, data) -> Path:
    """Write one file atomically: a hidden sibling, then a rename over ``path``. An existing
    regular file is replaced (as ``-o`` of a compiler); a folder or symbolic link is refused.
    ``data``: bytes, or a function that writes the content to the binary file it is given."""
    path = Path(path)
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise SnnCompileError("the output file exists and is not a regular file", file=path,
                              hint="choose another output path")
    tmp = path.with_name(f"{_sibling_prefix(path)}.partial-{os.getpid()}")
    try:
        with open(tmp, "xb") as fh:
            if callable(data):
                data(fh)
            else:
                fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        with _suppress_oserror():
            tmp.unlink()
        raise
    return path
