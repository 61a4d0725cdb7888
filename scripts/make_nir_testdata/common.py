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
