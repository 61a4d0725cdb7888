"""Norse graphs: linear LIF (LIFBoxCell), conv LIF, CubaLIF (LIFCell).

Run in the side venv /tmp/nirenv/norse (norse 1.1.0 from PyPI, see README):
``/tmp/nirenv/norse/bin/python gen_norse.py``.

Norse 1.1.0's exporter writes ``tau = dt * (1/tau_mem_inv)`` (norse issue #411, fixed on Norse's
main branch by PR #413), so this script maps the modules itself with the corrected rule of
Norse main: ``tau = 1/tau_mem_inv`` (seconds), ``r = 1``, ``v_leak``, ``v_reset`` exported, and
for ``LIFCell`` a CubaLIF with ``w_in = 1``. The graph is extracted with nirtorch as Norse does.
Norse integrates with forward Euler at ``dt = 1e-3`` (not stored in the graph): convention
``norse``.
"""

from __future__ import annotations

import nir
import nirtorch
import numpy as np
import torch
from norse.torch import LIFBoxCell, LIFBoxParameters, LIFCell, LIFParameters, SequentialState

from common import OUT_DIR, bernoulli_input, save

DT = 1e-3


def norse_main_mapping(module):
    """Norse main's export rule (tau in seconds), for the module types used here."""
    if isinstance(module, LIFBoxCell):
        p = module.p
        return nir.LIF(tau=(1 / p.tau_mem_inv).detach().numpy(), r=np.ones(p.v_th.shape),
                       v_leak=p.v_leak.detach().numpy(), v_threshold=p.v_th.detach().numpy(),
                       v_reset=p.v_reset.detach().numpy())
    if isinstance(module, LIFCell):
        p = module.p
        shape = p.v_th.shape
        return nir.CubaLIF(tau_syn=(1 / p.tau_syn_inv).detach().numpy(),
                           tau_mem=(1 / p.tau_mem_inv).detach().numpy(), r=np.ones(shape),
                           v_leak=p.v_leak.detach().numpy(), v_threshold=p.v_th.detach().numpy(),
                           v_reset=p.v_reset.detach().numpy(), w_in=np.ones(shape))
    if isinstance(module, torch.nn.Linear):
        return nir.Affine(module.weight.detach().numpy(), module.bias.detach().numpy())
    if isinstance(module, torch.nn.Conv2d):
        return nir.Conv2d(input_shape=None, weight=module.weight.detach().numpy(),
                          bias=module.bias.detach().numpy(), stride=module.stride,
                          padding=module.padding, dilation=module.dilation, groups=module.groups)
    if isinstance(module, torch.nn.Flatten):
        return nir.Flatten(input_type=None, start_dim=module.start_dim - 1,
                           end_dim=module.end_dim)
    return None


def lif_box(shape, tau_inv=100.0, thr=1.0, v_rest=0.0):
    full = lambda v: torch.full(shape, float(v))  # noqa: E731
    return LIFBoxCell(LIFBoxParameters(tau_mem_inv=full(tau_inv), v_leak=full(v_rest),
                                       v_th=full(thr), v_reset=full(v_rest)), dt=DT)


def lif_cuba(shape, tau_syn_inv=200.0, tau_mem_inv=100.0, thr=1.0):
    full = lambda v: torch.full(shape, float(v))  # noqa: E731
    return LIFCell(LIFParameters(tau_syn_inv=full(tau_syn_inv), tau_mem_inv=full(tau_mem_inv),
                                 v_leak=full(0), v_th=full(thr), v_reset=full(0)), dt=DT)


def linear(n_in, n_out, gain):
    layer = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.mul_(gain)
    return layer


def conv(c_in, c_out, gain):
    layer = torch.nn.Conv2d(c_in, c_out, 3, padding=1)
    with torch.no_grad():
        layer.weight.mul_(gain)
    return layer


def run(layers, x: np.ndarray):
    """Norse's own forward pass, one step at a time, state carried per layer."""
    state = [None] * len(layers)
    outputs, hidden = [], {}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = torch.from_numpy(x[t])
            for idx, layer in enumerate(layers):
                if isinstance(layer, (LIFBoxCell, LIFCell)):
                    h, state[idx] = layer(h, state[idx])
                    hidden.setdefault(str(idx), []).append(h.numpy().copy())
                else:
                    h = layer(h)
            outputs.append(h.numpy().copy())
    return np.stack(outputs), {k: np.stack(v) for k, v in hidden.items()}


def export(name, layers, sample_shape, seed):
    x = bernoulli_input(sample_shape, seed)
    model = SequentialState(*layers)
    graph = nirtorch.extract_nir_graph(model, norse_main_mapping, torch.zeros(1, *sample_shape),
                                       ignore_dims=[0])
    graph.infer_types()
    nir.write(OUT_DIR / f"{name}.nir", graph)
    out, hidden = run(layers, x)
    save(name, x, out, hidden, framework="norse", version="1.1.0 (export rule of main)",
         convention="norse", dt=DT)


def main():
    torch.manual_seed(0)
    export("norse_linear_lif",
           [linear(12, 16, 30.0), lif_box((16,), v_rest=-0.25), linear(16, 4, 25.0),
            lif_box((4,), tau_inv=150.0)],
           (12,), seed=1234)
    export("norse_conv_lif",
           [conv(2, 4, 15.0), lif_box((4, 8, 8), tau_inv=200.0),
            torch.nn.Flatten(), linear(256, 5, 20.0), lif_box((5,))],
           (2, 8, 8), seed=99)
    export("norse_linear_cubalif",
           [linear(12, 16, 3.0), lif_cuba((16,)), linear(16, 4, 3.0),
            lif_cuba((4,), tau_syn_inv=100.0)],
           (12,), seed=1234)


if __name__ == "__main__":
    main()
