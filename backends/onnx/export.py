"""``export_onnx``: the fixed-point network as an ONNX model (one step, or a whole window)."""

from __future__ import annotations

import numpy as np
import onnx

from snn_compile.errors import SnnCompileError
from snn_compile.ir.fixed import QNetwork

from .builder import OPSET, save, step_model
from .step import build_step
from .window import window_model

MODES = ("step", "window")


def metadata(net: QNetwork, mode: str) -> dict:
    """metadata_props of an exported model (values become JSON strings)."""
    props = {
        "snn_compile.kind": "fixed_point",
        "snn_compile.mode": mode,
        "snn_compile.opset": OPSET,
        "snn_compile.target": net.target.name,
        "snn_compile.input_shape": list(net.input_shape),
        "snn_compile.input_bits": 1 if net.input.binary else net.input.dtype.bits,
        "snn_compile.input_scale": float(net.input.scale),
        "snn_compile.scales": {pop.name: np.asarray(pop.scale, float).tolist()
                               for pop in net.in_order()},
        "snn_compile.layers": [{"name": pop.name, "shape": list(pop.shape),
                                "spiking": pop.neuron.spiking} for pop in net.in_order()],
    }
    source = net.metadata.get("source_sha256")
    if source is not None:
        props["snn_compile.source_sha256"] = str(source)
    return props


def export_onnx(qnet: QNetwork, path=None, *, mode: str = "step", steps: int | None = None,
                extra_metadata: dict | None = None) -> onnx.ModelProto:
    """Build (and write to ``path``, if given) the ONNX model of ``qnet``.

    ``mode="step"``: one time step with explicit state inputs/outputs (see README.md);
    ``mode="window"``: a ``Scan`` over input ``x`` [T, B, n_in]; ``steps`` fixes T.
    The model uses opset 17 standard operators on int64 and runs bit-exactly like the emulator.
    ``extra_metadata`` is added to the model's metadata_props.
    """
    if mode not in MODES:
        raise SnnCompileError("unknown ONNX export mode", value=mode, hint=f"use one of {MODES}")
    step = build_step(qnet)
    props = {**metadata(qnet, mode), **(extra_metadata or {})}
    model = step_model(step, props) if mode == "step" else window_model(step, props, steps)
    if path is not None:
        save(model, path)
    return model
