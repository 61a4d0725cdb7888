"""Helpers shared by the gen_<framework>.py scripts (numpy only: every side venv has it)."""

from __future__ import annotations

import json
import pathlib

import numpy as np

T, B = 40, 2
OUT_DIR = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "nir"


def bernoulli_input(shape, seed: int, p: float = 0.3) -> np.ndarray:
    """Fixed-seed Bernoulli spikes, time-major ``[T, B, *shape]`` float32."""
    rng = np.random.default_rng(seed)
    return (rng.random((T, B, *shape)) < p).astype(np.float32)


def save(name: str, x: np.ndarray, output: np.ndarray, hidden: dict | None = None,
         **meta) -> pathlib.Path:
    """Write ``<name>.npz`` with ``input``, ``output``, ``hidden/<layer>`` and ``meta_json``."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    arrays = {"input": x.astype(np.float32), "output": np.asarray(output, np.float32)}
    for key, value in (hidden or {}).items():
        arrays[f"hidden/{key}"] = np.asarray(value, np.float32)
    arrays["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
    path = OUT_DIR / f"{name}.npz"
    np.savez_compressed(path, **arrays)
    rate = float(np.mean(arrays["output"]))
    print(f"wrote {path.name}: output {arrays['output'].shape}, rate {rate:.3f}")
    return path


PAPER_DIR = pathlib.Path(__file__).resolve().parents[2] / "tests" / "data" / "nir-paper"


def save_npz(path, x, output, hidden, *, labels=None, state=None, alt=None, dtype=np.float32,
             **meta) -> pathlib.Path:
    """Write a recording: ``input``, ``output``, ``hidden/<node>``, optional ``labels``,
    ``state/<node>/<var>`` (float32), ``alt/<variant>/...`` and ``meta_json``.

    Spike arrays are stored as ``dtype`` (counts of multi-spike neurons included); states keep
    float32 so that they are the framework's values bit for bit.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    arrays = {"input": np.asarray(x, dtype), "output": np.asarray(output, dtype)}
    for key, value in (hidden or {}).items():
        arrays[f"hidden/{key}"] = np.asarray(value, dtype)
    if labels is not None:
        arrays["labels"] = np.asarray(labels, np.int64)
    for key, value in (state or {}).items():
        arrays[f"state/{key}"] = np.asarray(value, np.float32)
    for key, value in (alt or {}).items():
        arrays[f"alt/{key}"] = np.asarray(value, dtype)
    arrays["meta_json"] = np.array(json.dumps(meta, sort_keys=True))
    np.savez_compressed(path, **arrays)
    size = path.stat().st_size
    print(f"wrote {path.name}: output {arrays['output'].shape}, {size / 1e6:.2f} MB")
    return path
