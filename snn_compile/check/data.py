"""Data sets read lazily, a chunk of samples at a time, with bounded memory.

A data source is one file or many (a folder, a glob pattern, or a list), each holding
``spikes`` shaped ``[T, B, *input_shape]`` (time-major, like snnTorch) and optionally integer
``labels`` ``[B]``; the files' samples follow each other in name order. Formats:

* ``.npz`` (``np.savez``): a member stored uncompressed is memory-mapped in place; a compressed
  member is decompressed once into a temporary ``.npy`` beside the system's temp folder and
  mapped from there (nothing is read whole into memory);
* ``.npy``: spikes only, memory-mapped;
* ``.h5`` / ``.hdf5``: datasets ``spikes`` and ``labels`` (h5py slices what is asked; external
  storage, virtual datasets and links are refused).

Headers are checked before anything is read (shapes, dtypes, label counts); values (NaN, Inf)
are checked chunk by chunk, naming the file and the sample. Event data sets (Tonic and the like)
are fed after binning them to frames: ``examples/events/bin_events.py`` shows how.
"""

from __future__ import annotations

import glob
import os
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..data import HINT, check_data
from ..errors import SnnCompileError

SUFFIXES = (".npz", ".npy", ".h5", ".hdf5")


@dataclass
class _Part:
    """One file: its spikes (a memmap or an h5py dataset), labels, and global sample offset."""

    path: str
    spikes: object
    labels: np.ndarray | None
    first: int
    keep: object = None  # objects that must stay open (h5py file, temp file)

    @property
    def samples(self) -> int:
        return int(self.spikes.shape[1])


class DataSource:
    """Samples of one or several files; :meth:`read` returns a chunk ``[start, stop)``."""

    def __init__(self, parts: list[_Part], name: str):
        self.parts, self.name = parts, name
        first = parts[0].spikes.shape
        self.steps = int(first[0])
        self.sample_shape = tuple(int(d) for d in first[2:])
        for part in parts[1:]:
            if int(part.spikes.shape[0]) != self.steps or \
                    tuple(part.spikes.shape[2:]) != self.sample_shape:
                raise SnnCompileError("data files disagree on steps or sample shape",
                                      file=part.path, value=f"{tuple(part.spikes.shape)} vs "
                                      f"[{self.steps}, B, {', '.join(map(str, self.sample_shape))}]")
        self.has_labels = all(p.labels is not None for p in parts)
        if not self.has_labels and any(p.labels is not None for p in parts):
            missing = next(p.path for p in parts if p.labels is None)
            raise SnnCompileError("some data files have labels and some do not", file=missing,
                                  hint="give every file labels, or none")

    @property
    def samples(self) -> int:
        return sum(p.samples for p in self.parts)

    def labels(self) -> np.ndarray | None:
        """All labels (small: one integer per sample)."""
        if not self.has_labels:
            return None
        return np.concatenate([p.labels for p in self.parts]).astype(np.int64)

    def read(self, start: int, stop: int) -> tuple[np.ndarray, np.ndarray | None]:
        """Spikes ``[T, stop - start, *shape]`` float32 and labels of samples ``start..stop``."""
        chunks, labels = [], []
        for part in self.parts:
            lo, hi = max(start, part.first), min(stop, part.first + part.samples)
            if lo >= hi:
                continue
            block = np.array(part.spikes[:, lo - part.first:hi - part.first])
            block, _ = check_data(block, source=f"{part.path} (samples {lo - part.first}.."
                                               f"{hi - part.first - 1})")
            chunks.append(block)
            if part.labels is not None:
                labels.append(part.labels[lo - part.first:hi - part.first])
        spikes = np.concatenate(chunks, axis=1) if len(chunks) > 1 else chunks[0]
        return spikes, (np.concatenate(labels).astype(np.int64) if self.has_labels else None)

    def close(self) -> None:
        for part in self.parts:
            if hasattr(part.keep, "close"):
                part.keep.close()


class ArraySource(DataSource):
    """An in-memory array ``[T, B, ...]`` (and labels) as a data source."""

    def __init__(self, spikes, labels=None, name: str = "<array>"):
        spikes = np.asarray(spikes)
        _check_spikes_header(name, spikes.shape, spikes.dtype)
        lab = None if labels is None else _check_labels(name, np.asarray(labels),
                                                         spikes.shape[1])
        super().__init__([_Part(name, spikes, lab, 0)], name)


def open_data(spec, input_shape=None) -> DataSource:
    """A :class:`DataSource` from a path, folder, glob pattern, list of them, or an array."""
    if isinstance(spec, DataSource):
        source = spec
    elif isinstance(spec, np.ndarray):
        source = ArraySource(spec)
    else:
        paths = _expand(spec)
        parts, first = [], 0
        for path in paths:
            part = _open_file(path, first)
            parts.append(part)
            first += part.samples
        source = DataSource(parts, ", ".join(paths[:3]) + (" ..." if len(paths) > 3 else ""))
    if input_shape is not None and source.sample_shape != tuple(input_shape):
        raise SnnCompileError("'spikes' do not fit the model's input", file=source.name,
                              value=f"sample shape {source.sample_shape}, model input "
                                    f"{tuple(input_shape)}",
                              hint="arrays are time-major: [T, B, *input_shape]")
    return source


def _expand(spec) -> list[str]:
    items = spec if isinstance(spec, (list, tuple)) else [spec]
    paths: list[str] = []
    for item in items:
        text = os.fspath(item)
        if os.path.isdir(text):
            found = sorted(str(p) for p in Path(text).iterdir() if p.suffix in SUFFIXES)
            if not found:
                raise SnnCompileError("data folder holds no .npz/.npy/.h5 files", file=text)
            paths += found
        elif any(ch in text for ch in "*?[") and not os.path.exists(text):
            found = sorted(p for p in glob.glob(text) if Path(p).suffix in SUFFIXES)
            if not found:
                raise SnnCompileError("no data files match the pattern", file=text)
            paths += found
        elif not os.path.isfile(text):
            raise SnnCompileError("data file not found", file=text)
        else:
            paths.append(text)
    return paths


def _open_file(path: str, first: int) -> _Part:
    suffix = Path(path).suffix.lower()
    try:
        if suffix in (".h5", ".hdf5"):
            return _open_hdf5(path, first)
        if suffix == ".npy":
            with open(path, "rb") as fh:
                shape, fortran, dtype = _npy_header(fh)
                offset = fh.tell()
            spikes = _on_disk(path, dtype, shape, fortran, offset)
            _check_spikes_header(path, spikes.shape, spikes.dtype)
            return _Part(path, spikes, None, first)
        return _open_npz(path, first)
    except SnnCompileError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, KeyError) as exc:
        kind = {".h5": "HDF5", ".hdf5": "HDF5", ".npy": ".npy"}.get(suffix, ".npz")
        raise SnnCompileError(f"not a readable {kind} data file ({type(exc).__name__})",
                              file=path, hint=HINT) from None


def _open_npz(path: str, first: int) -> _Part:
    with zipfile.ZipFile(path) as zf:
        names = {Path(n).stem: n for n in zf.namelist() if n.endswith(".npy")}
    if "spikes" not in names:
        raise SnnCompileError("data file has no 'spikes' array", file=path,
                              value=f"arrays {sorted(names)}", hint=HINT)
    spikes, keep = _npz_member(path, names["spikes"])
    _check_spikes_header(path, spikes.shape, spikes.dtype)
    labels = None
    if "labels" in names:
        with np.load(path, allow_pickle=False) as data:
            labels = _check_labels(path, np.asarray(data["labels"]), spikes.shape[1])
    return _Part(path, spikes, labels, first, keep)


def _npz_member(path: str, member: str):
    """A read-only memmap of one ``.npy`` member (decompressed to a temp file if needed)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(member)
        if info.compress_type == zipfile.ZIP_STORED:
            with open(path, "rb") as fh:
                fh.seek(info.header_offset)
                local = fh.read(30)
                name_len = int.from_bytes(local[26:28], "little")
                extra_len = int.from_bytes(local[28:30], "little")
                start = info.header_offset + 30 + name_len + extra_len
                fh.seek(start)
                shape, fortran, dtype = _npy_header(fh)
                offset = fh.tell()
            return _on_disk(path, dtype, shape, fortran, offset), None
        tmp = tempfile.NamedTemporaryFile(prefix="snn-data-", suffix=".npy")
        with zf.open(member) as src:
            shutil.copyfileobj(src, tmp, length=1 << 22)
        tmp.flush()
        tmp.seek(0)
        shape, fortran, dtype = _npy_header(tmp)
        return _on_disk(tmp.name, dtype, shape, fortran, tmp.tell()), tmp


def _npy_header(fh):
    version = np.lib.format.read_magic(fh)
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(fh)
    return np.lib.format.read_array_header_2_0(fh)


def _on_disk(path, dtype, shape, fortran: bool, offset: int):
    """The array stored at ``offset`` of ``path``, read a block of samples at a time."""
    if dtype.hasobject:
        raise SnnCompileError("data arrays must be numbers, not objects", file=path)
    if not shape or int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    if fortran or len(shape) < 2:  # rare layouts: a map (its pages count as resident memory)
        return np.memmap(path, dtype=dtype, mode="r", shape=shape,
                         order="F" if fortran else "C", offset=offset)
    return _SampleReader(path, dtype, tuple(shape), offset)


class _SampleReader:
    """A C-order ``[T, B, ...]`` array in a file; ``reader[:, lo:hi]`` reads those samples with
    one positional read per time step. (A memory map would do, but every page it has read
    stays in the process's resident memory until unmapped: the peak would grow with the file.)"""

    def __init__(self, path, dtype: np.dtype, shape: tuple, offset: int):
        self.path, self.dtype, self.shape, self.offset = str(path), np.dtype(dtype), shape, offset
        self._sample = int(np.prod(shape[2:], dtype=np.int64)) * self.dtype.itemsize
        need = offset + int(np.prod(shape, dtype=np.int64)) * self.dtype.itemsize
        if os.path.getsize(self.path) < need:
            raise SnnCompileError("data file is truncated", file=self.path,
                                  value=f"{os.path.getsize(self.path)} bytes, the header "
                                        f"declares {need}", hint=HINT)

    def __getitem__(self, index) -> np.ndarray:
        steps, samples = index
        if steps != slice(None) or not isinstance(samples, slice) or samples.step not in (None, 1):
            raise TypeError("reads take [:, lo:hi]")
        lo, hi, _ = samples.indices(self.shape[1])
        hi = max(hi, lo)
        out = np.empty((self.shape[0], hi - lo, *self.shape[2:]), self.dtype)
        if out.size == 0:
            return out
        view, size = memoryview(out.reshape(-1).view(np.uint8)), (hi - lo) * self._sample
        with open(self.path, "rb", buffering=0) as fh:
            fd = fh.fileno()
            for t in range(self.shape[0]):
                at = self.offset + (t * self.shape[1] + lo) * self._sample
                if os.preadv(fd, [view[t * size:(t + 1) * size]], at) != size:
                    raise SnnCompileError("data file is truncated", file=self.path, hint=HINT)
        return out


def _open_hdf5(path: str, first: int) -> _Part:
    import h5py

    handle = h5py.File(path, "r")
    if "spikes" not in handle:
        handle.close()
        raise SnnCompileError("HDF5 data file has no 'spikes' dataset", file=path, hint=HINT)
    for name in ("spikes", "labels"):
        _refuse_links(path, handle, name)
    spikes = handle["spikes"]
    _refuse_foreign_storage(path, spikes)
    _check_spikes_header(path, spikes.shape, spikes.dtype)
    labels = None
    if "labels" in handle:
        _refuse_foreign_storage(path, handle["labels"])
        labels = _check_labels(path, np.asarray(handle["labels"][()]), spikes.shape[1])
    return _Part(path, spikes, labels, first, handle)


def _refuse_links(path: str, handle, name: str) -> None:
    """Refuse a soft or external link in place of the dataset ``name`` (an external link opens
    another file; a soft link may lead anywhere in this one)."""
    import h5py

    link = handle.get(name, getlink=True)
    if link is not None and not isinstance(link, h5py.HardLink):
        raise SnnCompileError("HDF5 data file links its dataset elsewhere", file=path,
                              value=f"'{name}' is a {type(link).__name__}",
                              hint="store the arrays in the file itself")


def _refuse_foreign_storage(path: str, dataset) -> None:
    """Refuse datasets whose bytes live outside this file (external storage, virtual)."""
    plist = dataset.id.get_create_plist()
    if dataset.is_virtual or plist.get_external_count() > 0:
        raise SnnCompileError("HDF5 dataset refers to data outside the file", file=path,
                              value=dataset.name,
                              hint="store the arrays in the file itself")


def _check_spikes_header(path, shape, dtype) -> None:
    from ..data import _check_dtype, _check_shape

    _check_dtype(np.dtype(dtype), "spikes", path)
    _check_shape(tuple(shape), None, path)


def _check_labels(path, labels: np.ndarray, samples: int) -> np.ndarray:
    if labels.shape != (samples,) or not np.issubdtype(labels.dtype, np.integer):
        raise SnnCompileError("'labels' must be one integer class per sample", file=path,
                              value=f"labels {labels.dtype} {labels.shape}, {samples} samples",
                              hint=HINT)
    return labels
