"""snnTorch 1.0.0 graphs: linear LIF, conv LIF, CubaLIF (Synaptic), RLeaky.

Run in the side venv /tmp/nirenv/snntorch (see README; the project venv lacks nirtorch):
``/tmp/nirenv/snntorch/bin/python gen_snntorch.py``.

snnTorch's exporter needs per-neuron tensors for beta/alpha/threshold and ``ignore_dims=[0]``
(it fails on scalars and keeps the batch dimension otherwise). Neurons use snnTorch's defaults:
subtract reset with ``reset_delay=True``, i.e. convention ``snntorch``.
"""

from __future__ import annotations

import nir
import numpy as np
import snntorch as snn
import torch
from snntorch import utils
from snntorch.export_nir import export_to_nir

from common import OUT_DIR, bernoulli_input, save


def per_neuron(value, shape):
    return torch.full(shape, float(value))


def leaky(shape, beta=0.9, thr=1.0):
    return snn.Leaky(beta=per_neuron(beta, shape), threshold=per_neuron(thr, shape),
                     init_hidden=True)


def synaptic(shape, alpha=0.8, beta=0.9, thr=1.0):
    return snn.Synaptic(alpha=per_neuron(alpha, shape), beta=per_neuron(beta, shape),
                        threshold=per_neuron(thr, shape), init_hidden=True)


def linear(n_in, n_out, gain):
    layer = torch.nn.Linear(n_in, n_out)
    with torch.no_grad():
        layer.weight.mul_(gain)
    return layer


NEURONS = (snn.Leaky, snn.Synaptic, snn.RLeaky)


def run(net, x: np.ndarray):
    """snnTorch's own forward pass, step by step; returns output and hidden-layer spikes."""
    utils.reset(net)
    outputs, hidden = [], {}
    with torch.no_grad():
        for t in range(x.shape[0]):
            h = torch.from_numpy(x[t])
            for idx, module in enumerate(net):
                h = module(h)
                if isinstance(h, tuple):
                    h = h[0]
                if isinstance(module, NEURONS):
                    hidden.setdefault(str(idx), []).append(h.numpy().copy())
            outputs.append(h.numpy().copy())
    return np.stack(outputs), {k: np.stack(v) for k, v in hidden.items()}


def export(name, net, sample_shape, seed):
    x = bernoulli_input(sample_shape, seed)
    graph = export_to_nir(net, torch.zeros(1, *sample_shape), ignore_dims=[0])
    nir.write(OUT_DIR / f"{name}.nir", graph)
    out, hidden = run(net, x)
    save(name, x, out, hidden, framework="snntorch", version=snn.__version__,
         convention="snntorch", dt=1e-4, notes="Leaky/Synaptic defaults: subtract, reset_delay=True")


def main():
    torch.manual_seed(0)
    export("snntorch_linear_lif",
           torch.nn.Sequential(linear(12, 16, 2.0), leaky((16,)),
                               linear(16, 4, 4.0), leaky((4,), beta=0.85)),
           (12,), seed=1234)
    export("snntorch_conv_lif",
           torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), leaky((4, 8, 8)),
                               torch.nn.AvgPool2d(2), torch.nn.Flatten(),
                               linear(64, 5, 3.0), leaky((5,))),
           (2, 8, 8), seed=99)
    export("snntorch_linear_cubalif",
           torch.nn.Sequential(linear(12, 16, 1.0), synaptic((16,)),
                               linear(16, 4, 1.0), synaptic((4,), alpha=0.7, beta=0.8)),
           (12,), seed=1234)
    export("snntorch_rleaky",
           torch.nn.Sequential(linear(12, 16, 2.0),
                               snn.RLeaky(beta=0.9, linear_features=16, init_hidden=True),
                               linear(16, 4, 2.0), leaky((4,))),
           (12,), seed=7)


if __name__ == "__main__":
    main()
