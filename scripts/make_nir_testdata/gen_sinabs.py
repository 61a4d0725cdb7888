"""Sinabs graphs: linear LIF, conv LIF, conv IAF + SumPool (Speck style).

Run in the side venv /tmp/nirenv/sinabs (sinabs 3.1.3, which pins nir<=1.0.4; see README):
``/tmp/nirenv/sinabs/bin/python gen_sinabs.py``.

Neurons use ``spike_fn=SingleSpike`` (spike when ``v >= thr``), ``MembraneSubtract`` and
``norm_input=False``: the behaviour Sinabs' exporter describes (it writes ``r = 1`` whatever
``norm_input`` is, and the IR emits at most one spike per step, so the default MultiSpike is not
reproducible). Time constants are in steps: convention ``sinabs``.
"""

from __future__ import annotations

import nir
import numpy as np
import sinabs
import sinabs.layers as sl
import torch
from sinabs.activation import MembraneSubtract, SingleSpike

from common import OUT_DIR, B, bernoulli_input, save

NEURONS = (sl.LIFSqueeze, sl.IAFSqueeze)


def lif(shape, tau=8.0, thr=1.0):
    return sl.LIFSqueeze(tau_mem=torch.full(shape, tau), spike_threshold=torch.full(shape, thr),
                         spike_fn=SingleSpike, reset_fn=MembraneSubtract(), norm_input=False,
                         batch_size=B)


def iaf(thr=1.0):
    return sl.IAFSqueeze(spike_threshold=thr, spike_fn=SingleSpike,
                         reset_fn=MembraneSubtract(), batch_size=B)


def scaled(layer, gain):
    with torch.no_grad():
        layer.weight.mul_(gain)
    return layer


def run(net, x: np.ndarray):
    """Sinabs' own forward pass on the squeezed (B*T, ...) layout."""
    for m in net.modules():
        if isinstance(m, NEURONS):
            m.reset_states()
    T = x.shape[0]
    squeezed = torch.from_numpy(np.swapaxes(x, 0, 1).reshape(B * T, *x.shape[2:]).copy())
    hidden = {}
    h = squeezed
    with torch.no_grad():
        for idx, layer in enumerate(net):
            h = layer(h)
            if isinstance(layer, NEURONS):
                hidden[str(idx)] = _unsqueeze(h, T)
    return _unsqueeze(h, T), hidden


def _unsqueeze(h, T):
    arr = h.detach().numpy().reshape(B, T, *h.shape[1:])
    return np.swapaxes(arr, 0, 1).copy()


def export(name, net, sample_shape, seed):
    x = bernoulli_input(sample_shape, seed)
    out, hidden = run(net, x)           # also initialises the state shapes the export reads
    graph = sinabs.to_nir(net, torch.zeros(B, *sample_shape))
    for node in graph.nodes.values():   # shape per neuron, as nir 1.0.8 requires
        if isinstance(node, (nir.LIF, nir.IF)):
            shape = np.shape(node.r)
            node.v_threshold = np.broadcast_to(node.v_threshold, shape).copy()
    graph.infer_types()
    nir.write(OUT_DIR / f"{name}.nir", graph)
    assert np.max(out) <= 1
    save(name, x, out, hidden, framework="sinabs", version=sinabs.__version__,
         convention="sinabs", dt=1.0, notes="SingleSpike, MembraneSubtract, norm_input=False")


def main():
    torch.manual_seed(0)
    export("sinabs_linear_lif",
           torch.nn.Sequential(scaled(torch.nn.Linear(12, 16), 2.0), lif((16,)),
                               scaled(torch.nn.Linear(16, 4), 2.5), lif((4,), tau=5.0)),
           (12,), seed=1234)
    export("sinabs_conv_lif",
           torch.nn.Sequential(scaled(torch.nn.Conv2d(2, 4, 3, padding=1), 2.0),
                               lif((4, 8, 8)), torch.nn.Flatten(),
                               scaled(torch.nn.Linear(256, 5), 3.0), lif((5,))),
           (2, 8, 8), seed=99)
    export("sinabs_conv_iaf_sumpool",
           torch.nn.Sequential(scaled(torch.nn.Conv2d(2, 4, 3, padding=1), 2.0), iaf(),
                               sl.SumPool2d(2), torch.nn.Flatten(),
                               scaled(torch.nn.Linear(64, 5), 2.0), iaf()),
           (2, 8, 8), seed=99)


if __name__ == "__main__":
    main()
