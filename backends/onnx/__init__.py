"""ONNX backend: the fixed-point network (and the float IR) as standard ONNX models.

``export_onnx(qnet, path, mode="step"|"window")`` writes an int64 model that onnxruntime runs
bit-exactly like the emulator; ``export_float_onnx(graph, path)`` the float32 IR. See README.md
for inputs, outputs, shapes and the choices made.
"""

from .backend import OnnxBackend, run_window
from .export import export_onnx
from .float import export_float_onnx

__all__ = ["OnnxBackend", "export_float_onnx", "export_onnx", "run_window"]
