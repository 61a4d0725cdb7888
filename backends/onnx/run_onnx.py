#!/usr/bin/env python3
"""Run an exported snn-compile ONNX window model with onnxruntime (needs only numpy + onnxruntime).

    python run_onnx.py [model_window.onnx] [inputs.npz] [golden.npz] [-o trace.npz]

``inputs.npz`` holds ``spikes`` [T, B, *input_shape] (0/1 spikes or real graded values); they are
encoded as the model's metadata says (``input_bits``, ``input_scale``). Every record of the model
(``<layer>.spikes``, ``<layer>.u``, ``<layer>.v``) is written to ``-o`` as ``layer/<layer>/<key>``.
If ``golden.npz`` exists (same keys, e.g. the emulator's trace), every value is compared and the
exit status is 1 on the first difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort


def shown(text) -> str:
    """``text`` with control characters escaped: layer names come from the model file."""
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


def encode(spikes: np.ndarray, meta: dict[str, str]) -> np.ndarray:
    """Spikes [T, B, ...] -> int64 [T, B, n_in]: 0/1 as is, graded values rounded to the grid."""
    flat = spikes.reshape(*spikes.shape[:2], int(np.prod(spikes.shape[2:])))
    if int(meta["snn_compile.input_bits"]) == 1:
        return flat.astype(np.int64)
    return np.rint(flat * float(meta["snn_compile.input_scale"])).astype(np.int64)


def run(model_path: str, spikes: np.ndarray) -> dict[str, np.ndarray]:
    """Records of the window model on ``spikes``, reshaped to [T, B, *layer shape]."""
    session = ort.InferenceSession(model_path, providers=["CPUExecutionProvider"])
    meta = session.get_modelmeta().custom_metadata_map
    x = encode(np.asarray(spikes), meta)
    names = [o.name for o in session.get_outputs()]
    shapes = {layer["name"]: layer["shape"] for layer in json.loads(meta["snn_compile.layers"])}
    out = {}
    for name, value in zip(names, session.run(names, {"x": x})):
        layer, key = name.rsplit(".", 1)
        out[f"layer/{layer}/{key}"] = value.reshape(x.shape[0], x.shape[1], *shapes[layer])
    return out


def compare(trace: dict[str, np.ndarray], golden) -> list[str]:
    """Human-readable differences between ``trace`` and the arrays of ``golden``."""
    problems = []
    for key, value in trace.items():
        if key not in golden:
            continue
        ref = np.asarray(golden[key])
        if ref.shape != value.shape:
            problems.append(f"{key}: shape {value.shape} != golden {ref.shape}")
        elif not np.array_equal(ref.astype(np.int64), value.astype(np.int64)):
            idx = tuple(int(i) for i in np.argwhere(ref.astype(np.int64) != value)[0])
            problems.append(f"{key}: first difference at {idx}: {value[idx]} != {ref[idx]}")
    return problems


def main(argv=None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", nargs="?", default=str(here / "model_window.onnx"))
    parser.add_argument("inputs", nargs="?", default=str(here / "inputs.npz"))
    parser.add_argument("golden", nargs="?", default=str(here / "golden.npz"))
    parser.add_argument("-o", "--output", default=None, help="write the trace to this .npz")
    args = parser.parse_args(argv)
    with np.load(args.inputs) as data:
        spikes = data["spikes"]
    trace = run(args.model, spikes)
    if args.output:
        np.savez_compressed(args.output, **trace)
    if not Path(args.golden).exists():
        print(f"ran {shown(args.model)}: {len(trace)} records, T={spikes.shape[0]}, B={spikes.shape[1]}")
        return 0
    with np.load(args.golden) as golden:
        problems = compare(trace, golden)
        checked = sum(key in golden for key in trace)
    for line in problems:
        print("MISMATCH", shown(line))
    print(f"{checked} records compared with {shown(args.golden)}: "
          f"{'all equal' if not problems else f'{len(problems)} differ'}")
    return 1 if problems or not checked else 0


if __name__ == "__main__":
    sys.exit(main())
