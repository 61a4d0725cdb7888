"""Rockpool graphs: linear LIF (LIFNeuronTorch) and linear CubaLIF (LIFTorch).

Run in the side venv /tmp/nirenv/rockpool (rockpool 3.1.0 with the [nir] extra, which pins
nir<=1.0.4; see README): ``/tmp/nirenv/rockpool/bin/python gen_rockpool.py``.

Rockpool has no conv export. Neurons use ``max_spikes_per_dt=1`` (the default emits up to 2**16
spikes per step, which the IR cannot express), ``dt = 1e-3``, exp decay: convention
``rockpool``. ``to_nir`` bakes the batch/time dimensions into Input/Output (``[1, 12]``,
``[1, 1, 4]``), which nir 1.0.8 rejects; this script rewrites those two nodes to the sample
shape, as the nir-ecosystem notes did.
"""

from __future__ import annotations

import nir
import numpy as np
import rockpool
import torch
from rockpool.nn.combinators import Sequential
from rockpool.nn.modules import LIFNeuronTorch, LIFTorch, LinearTorch
from rockpool.nn.modules.torch.nir import to_nir

from common import OUT_DIR, bernoulli_input, save

DT = 1e-3
NEURONS = (LIFNeuronTorch, LIFTorch)


def linear(n_in, n_out, gain):
    layer = LinearTorch((n_in, n_out), has_bias=False)
    with torch.no_grad():
        layer.weight.mul_(gain)
    return layer


def lif(n, tau=0.01, thr=1.0):
    return LIFNeuronTorch((n,), tau_mem=torch.full((n,), tau), threshold=torch.full((n,), thr),
                          dt=DT, max_spikes_per_dt=torch.tensor(1.0))


def cuba(n, tau_syn=0.005, tau_mem=0.01, thr=1.0):
    return LIFTorch((n,), tau_syn=torch.full((n,), tau_syn), tau_mem=torch.full((n,), tau_mem),
                    threshold=torch.full((n,), thr), dt=DT,
                    max_spikes_per_dt=torch.tensor(1.0))


def run(layers, x: np.ndarray):
    """Rockpool's own forward pass on batch-first (B, T, N) input, layer by layer."""
    h = torch.from_numpy(np.swapaxes(x, 0, 1).copy())
    hidden = {}
    with torch.no_grad():
        for idx, layer in enumerate(layers):
            layer.reset_state()
            h, _, _ = layer(h)
            if isinstance(layer, NEURONS):
                hidden[f"{idx}_{type(layer).__name__}"] = np.swapaxes(h.numpy(), 0, 1).copy()
    return np.swapaxes(h.numpy(), 0, 1).copy(), hidden


def export(name, layers, n_in, seed):
    x = bernoulli_input((n_in,), seed)
    out, hidden = run(layers, x)
    graph = to_nir(Sequential(*layers), torch.zeros(1, n_in))
    n_out = layers[-1].size_out
    graph.nodes["input"] = nir.Input(input_type=np.array([n_in]))
    graph.nodes["output"] = nir.Output(output_type=np.array([n_out]))
    graph = nir.NIRGraph(nodes=graph.nodes, edges=graph.edges)
    nir.write(OUT_DIR / f"{name}.nir", graph)
    assert np.max(out) <= 1
    save(name, x, out, hidden, framework="rockpool", version=rockpool.__version__,
         convention="rockpool", dt=DT, notes="max_spikes_per_dt=1")


def main():
    torch.manual_seed(0)
    export("rockpool_linear_lif",
           [linear(12, 16, 1.5), lif(16), linear(16, 4, 2.0), lif(4, tau=0.02)], 12, seed=1234)
    export("rockpool_linear_cubalif",
           [linear(12, 16, 1.5), cuba(16), linear(16, 4, 2.0), cuba(4, tau_syn=0.01)], 12,
           seed=1234)


if __name__ == "__main__":
    main()
