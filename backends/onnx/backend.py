"""``OnnxBackend``: run the exported model with onnxruntime, or emit a self-contained folder."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np

from snn_compile.backend import Backend
from snn_compile.ir.fixed import QNetwork
from snn_compile.ir.fixed_io import npz_bytes
from snn_compile.trace import Trace

from .builder import OPSET, save
from .export import export_onnx
from .float import export_float_onnx

STEP_FILE, WINDOW_FILE, RUNNER_FILE = "model_step.onnx", "model_window.onnx", "run_onnx.py"
FLOAT_STEP_FILE, FLOAT_WINDOW_FILE = "model_float_step.onnx", "model_float_window.onnx"
INPUTS_FILE, GOLDEN_FILE = "inputs.npz", "golden.npz"


def _session(model):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3  # unused-initializer notices are not our users' business
    return ort.InferenceSession(model.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def run_window(qnet: QNetwork, spikes: np.ndarray) -> Trace:
    """Export the window model of ``qnet`` to memory and run it on ``spikes`` [T, B, *in]."""
    spikes = np.asarray(spikes)
    shapes = {pop.name: pop.shape for pop in qnet.populations}
    layers = {pop.name: {} for pop in qnet.populations}
    if spikes.ndim >= 2 and spikes.shape[0] == 0:  # Scan needs one iteration to shape outputs
        for name, states in layers.items():
            for key, dtype in (("spikes", np.uint8), ("u", np.int64), ("v", np.int64)):
                states[key] = np.zeros((0, spikes.shape[1], *shapes[name]), dtype)
    else:
        x = qnet.input.encode(spikes)  # the input format's definition
        T, B = x.shape[:2]
        session = _session(export_onnx(qnet, mode="window"))
        names = [o.name for o in session.get_outputs()]
        for name, value in zip(names, session.run(names, {"x": x})):
            layer, key = name.rsplit(".", 1)
            layers[layer][key] = value.reshape(T, B, *shapes[layer])
    last = qnet.output_population
    return Trace(output=layers[last.name]["spikes" if last.neuron.spiking else "v"],
                 layers=layers)


def _file_summary(path: Path) -> dict:
    data = path.read_bytes()
    return {"bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


class OnnxBackend(Backend):
    """ONNX export of the fixed-point network, run bit-exactly by onnxruntime."""

    name = "onnx"
    description = "ONNX (opset 17, int64) model of the integer datapath, run by onnxruntime"

    def available(self) -> str | None:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            return "onnxruntime is not installed (pip install onnxruntime)"
        return None

    def run_lowered(self, network: QNetwork, spikes: np.ndarray) -> Trace:
        return run_window(network, spikes)

    def emit(self, qnet: QNetwork, out_dir, *, inputs: np.ndarray | None = None,
             golden: Trace | dict | None = None, source_name: str | None = None,
             float_graph=None) -> dict:
        """Write ``model_step.onnx``, ``model_window.onnx``, ``run_onnx.py`` into ``out_dir``.

        With ``float_graph`` (the float IR the network was quantized from) the float network is
        exported too, as ``model_float_step.onnx`` and ``model_float_window.onnx``.

        With ``inputs`` ([T, B, *input_shape] spikes) they are saved as ``inputs.npz``; with
        ``golden`` (the emulator's :class:`Trace` on those inputs) as ``golden.npz``, and the
        window model is run here and compared (``summary["verified"]``). Files are
        deterministic: the same network and arrays give the same bytes.
        """
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        extra = {"snn_compile.source_name": source_name} if source_name else None
        for mode, file in (("step", STEP_FILE), ("window", WINDOW_FILE)):
            save(export_onnx(qnet, mode=mode, extra_metadata=extra), out / file)
        runner = resources.files(__package__).joinpath(RUNNER_FILE).read_bytes()
        (out / RUNNER_FILE).write_bytes(runner)
        files = [STEP_FILE, WINDOW_FILE, RUNNER_FILE]
        if float_graph is not None:
            for mode, file in (("step", FLOAT_STEP_FILE), ("window", FLOAT_WINDOW_FILE)):
                save(export_float_onnx(float_graph, mode=mode), out / file)
            files += [FLOAT_STEP_FILE, FLOAT_WINDOW_FILE]
        verified = None
        if inputs is not None:
            (out / INPUTS_FILE).write_bytes(npz_bytes({"spikes": np.asarray(inputs)}))
            files.append(INPUTS_FILE)
        if golden is not None:
            arrays = golden.to_npz_dict() if isinstance(golden, Trace) else dict(golden)
            (out / GOLDEN_FILE).write_bytes(npz_bytes(arrays))
            files.append(GOLDEN_FILE)
            if inputs is not None:
                verified = _matches(run_window(qnet, inputs), arrays)
        return {
            "backend": self.name,
            "target": qnet.target.name,
            "source": source_name,
            "opset": OPSET,
            "files": {name: _file_summary(out / name) for name in files},
            "layers": [pop.name for pop in qnet.in_order()],
            "verified": verified,
            "run": f"python {RUNNER_FILE} {WINDOW_FILE} {INPUTS_FILE}"
                   + (f" {GOLDEN_FILE}" if golden is not None else ""),
        }


def _matches(trace: Trace, golden: dict[str, np.ndarray]) -> bool:
    """True when every record present in ``golden`` equals the ONNX run's."""
    ours = trace.to_npz_dict()
    common = [key for key in ours if key in golden]
    return bool(common) and all(
        np.array_equal(np.asarray(ours[k]).astype(np.int64), np.asarray(golden[k]).astype(np.int64))
        for k in common)
