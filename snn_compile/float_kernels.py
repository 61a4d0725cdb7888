"""Fused float32 neuron steps for the float reference simulator (:mod:`snn_compile.reference`).

One neuron layer's whole step (reset flag, leak, inputs, bias, resets, spike test, floor) is one
C loop instead of a dozen torch operations over the batch. The C performs *the same IEEE
float32 operations in the same order* as the torch code of ``reference._Neuron.step`` (and of
``_LI``, ``_LIF``, ``_IF``, ``_CubaLIF``), each rounded once: compiled without contraction into
fused multiply-adds (``-ffp-contract=off``) and without fast-math, so every value is
bit-identical to the torch path, which stays the definition (tests compare the two on random
graphs with every neuron feature).

A kernel's source holds only the layer's structure (neuron type, reset mode and timing, spike
test, whether it counts spikes, bias, floor, number of inputs); sizes, the spike cap and the
parameters (one value per neuron) come at run time, so a few kernels serve every model.
They are built and cached like the emulator's (:mod:`snn_compile.emulator.compiler`).
"""

from __future__ import annotations

import ctypes

import numpy as np
import torch

from .emulator import compiler
from .emulator.kernel_source import PRELUDE
from .ir.nodes import IF, LI, CubaLIF, NeuronNode

ENTRY = "snn_float_step"


def _param(node, name: str) -> np.ndarray | None:
    value = getattr(node, name, None)
    return None if value is None else np.asarray(value, np.float32)


def _params(node) -> dict[str, np.ndarray]:
    """The parameters the step reads (the same ones the torch path uses)."""
    params = {}
    for name in ("beta", "alpha", "threshold", "v_floor"):
        value = _param(node, name)
        if value is not None and not (name == "beta" and isinstance(node, IF)):
            params[name] = value
    bias = _param(node, "bias")
    if bias is not None and np.any(bias):
        params["bias"] = bias
    return params


def _fire(test: str, v: str, thr: str) -> str:
    op = ">" if test == ">" else ">="
    return f"(({v} - {thr}) {op} 0.0f ? 1.0f : 0.0f)"


def _body(node, n_inputs: int, p: dict[str, str]) -> list[str]:
    """The statements of one element's step, in reference._Neuron.step's order."""
    inputs = [f"in{k}[e]" for k in range(n_inputs)]
    if isinstance(node, LI):
        lines = ["float v = " + p["beta"] + " * v_prev[e];"]
        lines += [f"v = v + {x};" for x in inputs]
        if "bias" in p:
            lines.append(f"v = v + {p['bias']};")
        return lines + ["v_out[e] = v;"]
    thr = p["threshold"]
    reset, timing = node.reset, node.reset_timing
    flag = timing != "immediate" and reset != "none"
    lines = ["float v = v_prev[e];"]
    if flag:
        lines.append(f"const float r = {_fire(node.spike_test, 'v', thr)};")
        if reset == "zero" and not node.reset_discards_input:
            lines.append("v = (1.0f - r) * v;")
    if isinstance(node, CubaLIF):
        lines.append(f"float i = {p['alpha']} * i_prev[e];")
        lines += [f"i = i + {x};" for x in inputs]
        lines += ["i_out[e] = i;", f"v = {p['beta']} * v;", "v = v + i;"]
    else:
        if not isinstance(node, IF):
            lines.append(f"v = {p['beta']} * v;")
        lines += [f"v = v + {x};" for x in inputs]
    if "bias" in p:
        lines.append(f"v = v + {p['bias']};")
    if flag and reset == "subtract":
        lines.append(f"v = v - r * {thr};")
    elif flag and reset == "zero" and node.reset_discards_input:
        lines.append("v = v - r * v;")
    if node.multi_spike:
        lines += [f"float s = floorf(v / {thr});", "s = s < 0.0f ? 0.0f : s;"]
        if node.max_spikes is not None:
            lines.append("s = s > cap ? cap : s;")
    else:
        lines.append(f"const float s = {_fire(node.spike_test, 'v', thr)};")
    if timing != "next_step" and reset != "none":
        change = "(s - r)" if flag else "s"
        if reset == "subtract":
            lines.append(f"v = v - {change} * {thr};")
        elif node.multi_spike:
            lines.append("v = v * (s == 0.0f ? 1.0f : 0.0f);")
        else:
            lines.append(f"v = v - {change} * v;")
    if "v_floor" in p:
        floor = p["v_floor"]
        # torch.relu: negative to 0, NaN stays NaN
        lines += [f"float d = v - {floor};", "d = d > 0.0f ? d : (d != d ? d : 0.0f);",
                  f"v = d + {floor};"]
    return lines + ["v_out[e] = v;", "s_out[e] = s;"]


class FusedNeuron:
    """A neuron layer's fused step; ``step(inputs, v_prev, v_out, s_out, i_prev, i_out)``
    takes data pointers of contiguous float32 ``[B, n]`` buffers (``s_out``, ``i_*`` may be 0
    where the node has none)."""

    def __init__(self, node: NeuronNode, n_inputs: int, batch: int):
        self.node, self.batch = node, batch
        self.n = int(np.prod(node.shape))
        params = _params(node)  # every parameter as one value per neuron (fewer kernels)
        refs = {key: f"{key}_of[j]" for key in params}
        self._params = [torch.from_numpy(np.array(np.broadcast_to(value, node.shape).reshape(-1)))
                        for value in params.values()]
        slots = [f"in{k}" for k in range(n_inputs)] + ["v_prev", "v_out", "s_out",
                                                        "i_prev", "i_out"]
        args = [f"const float *restrict {s}" if not s.endswith("out") else
                f"float *restrict {s}" for s in slots]
        args += [f"const float *restrict {key}_of" for key in params]
        calls = [f"(const float *)p[{k}]" if not s.endswith("out") else f"(float *)p[{k}]"
                 for k, s in enumerate(slots)]
        calls += [f"(const float *)p[{len(slots) + k}]" for k in range(len(params))]
        body = _body(node, n_inputs, refs)
        # restrict parameters (not locals) let the compiler vectorise without alias checks
        text = "\n".join([
            "#include <math.h>", PRELUDE,
            f"/* fused float32 step of a {type(node).__name__} layer */",
            f"static void step_body(int64_t B, int64_t N, float cap, {', '.join(args)}) {{",
            "    for (int64_t b = 0; b < B; b++)",
            "        for (int64_t j = 0; j < N; j++) {",
            "            const int64_t e = b * N + j;",
            *["            " + line for line in body], "        }", "}", "",
            f"void {ENTRY}(int64_t B, int64_t N, float cap, void *const *p) {{",
            f"    step_body(B, N, cap, {', '.join(calls)});", "}", ""])
        fn = getattr(compiler.load(text), ENTRY)
        fn.argtypes = [ctypes.c_int64, ctypes.c_int64, ctypes.c_float, ctypes.c_void_p]
        fn.restype = None
        self._fn = fn
        self._ptrs = (ctypes.c_void_p * (len(slots) + len(params)))()
        for k, tensor in enumerate(self._params):
            self._ptrs[len(slots) + k] = tensor.data_ptr()
        self._n_inputs = n_inputs
        self._cap = float(getattr(node, "max_spikes", None) or 0.0)

    def step(self, inputs: list[torch.Tensor], v_prev: int, v_out: int, s_out: int = 0,
             i_prev: int = 0, i_out: int = 0) -> None:
        ptrs = self._ptrs
        for k, x in enumerate(inputs):
            ptrs[k] = x.data_ptr()
        k = self._n_inputs
        ptrs[k], ptrs[k + 1], ptrs[k + 2], ptrs[k + 3], ptrs[k + 4] = (
            v_prev, v_out, s_out or None, i_prev or None, i_out or None)
        self._fn(self.batch, self.n, self._cap, ptrs)


def available() -> bool:
    """Whether fused steps can be built here (a C compiler works)."""
    return compiler.available()[0]
