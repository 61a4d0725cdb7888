"""Rockpool graphs: linear LIF (LIFNeuronTorch) and linear CubaLIF (LIFTorch).

Run in the side venv /tmp/nirenv/rockpool (rockpool 3.1.0 with the [nir] extra, which pins
nir<=1.0.4; see README): ``/tmp/nirenv/rockpool/bin/python gen_rockpool.py``.

Rockpool has no conv export. The single-spike graphs use ``max_spikes_per_dt=1``, ``dt = 1e-3``,
exp decay: convention ``rockpool``. The ``*_multispike`` graphs keep Rockpool's multi-spike
output (``(v >= thr) * floor(v / thr)`` spikes per step, capped at ``max_spikes_per_dt``): the
LIF one with Rockpool's default cap 2**16 (convention ``rockpool-multispike``), the CubaLIF one
with a cap of 3 (``rockpool[max_spikes=3]``); weights are larger so that many steps carry 2+
spikes. ``python gen_rockpool.py multispike`` writes only those two. ``to_nir`` bakes the batch/time dimensions into Input/Output (``[1, 12]``,
``[1, 1, 4]``), which nir 1.0.8 rejects; this script rewrites those two nodes to the sample
shape, as the nir-ecosystem notes did.
"""

from __future__ import annotations

import sys

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


def lif(n, tau=0.01, thr=1.0, max_spikes=1.0):
    return LIFNeuronTorch((n,), tau_mem=torch.full((n,), tau), threshold=torch.full((n,), thr),
                          dt=DT, max_spikes_per_dt=torch.tensor(max_spikes))


def cuba(n, tau_syn=0.005, tau_mem=0.01, thr=1.0, max_spikes=1.0):
    return LIFTorch((n,), tau_syn=torch.full((n,), tau_syn), tau_mem=torch.full((n,), tau_mem),
                    threshold=torch.full((n,), thr), dt=DT,
                    max_spikes_per_dt=torch.tensor(max_spikes))


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


def export(name, layers, n_in, seed, convention="rockpool", notes="max_spikes_per_dt=1"):
    x = bernoulli_input((n_in,), seed)
    out, hidden = run(layers, x)
    graph = to_nir(Sequential(*layers), torch.zeros(1, n_in))
    n_out = layers[-1].size_out
    graph.nodes["input"] = nir.Input(input_type=np.array([n_in]))
    graph.nodes["output"] = nir.Output(output_type=np.array([n_out]))
    graph = nir.NIRGraph(nodes=graph.nodes, edges=graph.edges)
    nir.write(OUT_DIR / f"{name}.nir", graph)
    if convention == "rockpool":
        assert np.max(out) <= 1
    else:
        multi = {k: int(np.sum(v > 1)) for k, v in hidden.items()}
        assert all(multi.values()), f"every layer must have steps with 2+ spikes: {multi}"
        notes += f"; entries with 2+ spikes per layer: {multi}"
    save(name, x, out, hidden, framework="rockpool", version=rockpool.__version__,
         convention=convention, dt=DT, notes=notes)


def multispike():
    torch.manual_seed(5)
    big = 2.0 ** 16
    export("rockpool_linear_lif_multispike",
           [linear(12, 16, 3.0), lif(16, max_spikes=big), linear(16, 4, 1.5),
            lif(4, tau=0.02, max_spikes=big)], 12, seed=4321,
           convention="rockpool-multispike", notes="max_spikes_per_dt=2**16 (Rockpool default)")
    export("rockpool_linear_cubalif_multispike",
           [linear(12, 16, 4.0), cuba(16, max_spikes=3.0), linear(16, 4, 2.0),
            cuba(4, tau_syn=0.01, max_spikes=3.0)], 12, seed=4321,
           convention="rockpool[max_spikes=3]", notes="max_spikes_per_dt=3")


def main():
    if sys.argv[1:] == ["multispike"]:
        multispike()
        return
    torch.manual_seed(0)
    export("rockpool_linear_lif",
           [linear(12, 16, 1.5), lif(16), linear(16, 4, 2.0), lif(4, tau=0.02)], 12, seed=1234)
    export("rockpool_linear_cubalif",
           [linear(12, 16, 1.5), cuba(16), linear(16, 4, 2.0), cuba(4, tau_syn=0.01)], 12,
           seed=1234)
    multispike()


if __name__ == "__main__":
    main()
