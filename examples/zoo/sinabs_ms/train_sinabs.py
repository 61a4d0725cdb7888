"""The zoo's multi-spike model: trained in Sinabs, shipped as NIR, recorded by Sinabs.

Run in the Sinabs side venv (scripts/make_nir_testdata/README.md: Sinabs 3.1.3 with nir 1.0.4;
add scikit-learn), from the repository root::

    /tmp/nirenv/sinabs/bin/python examples/zoo/sinabs_ms/train_sinabs.py

Network (Sinabs layers, squeezed batch*time): Conv2d(1, 8, 3, pad 1) - IAF - SumPool2d(2) -
Conv2d(8, 16, 3, pad 1) - IAF - SumPool2d(2) - Flatten - Linear(64, 10) - IAF, every IAF with
Sinabs' default ``MultiSpike`` (``floor(v / thr)`` spikes per step, uncapped), subtract reset
and the membrane floor ``min_v_mem = -1`` that ``sinabs.from_nir`` gives IF layers, so that the
trained network is the one ``from_nir`` rebuilds. Input: event counts of the zoo's ``counts``
encoding (Poisson, mean 1.5 x pixel intensity, counts above 1 common), 20 steps.
Training: BPTT with Sinabs' surrogate gradient, Adam, deterministic (seeded, one thread).

Writes beside this file:

``sinabs_ms.nir``
    ``sinabs.to_nir`` of the trained model (IF nodes, SumPool2d, Affine, Conv2d);
``sinabs_ms.npz``
    ``input`` [T, B, 1, 8, 8] (uint8 counts, the first 64 test digits), ``labels``,
    ``output`` and ``hidden/<IF node>`` (uint8 spike counts) of
    ``sinabs.from_nir(graph, batch_size=B)`` on that input, and ``meta_json``.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nir
import numpy as np
import sinabs
import sinabs.layers as sl
import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
from data import SEED, digits, encode  # noqa: E402

STEPS, BATCH, EPOCHS, LR, RECORDED = 20, 64, 15, 2e-3, 64


def build(batch: int) -> nn.Sequential:
    iaf = dict(batch_size=batch, min_v_mem=-1.0)  # MultiSpike and MembraneSubtract: defaults
    return nn.Sequential(
        nn.Conv2d(1, 8, 3, padding=1), sl.IAFSqueeze(**iaf), sl.SumPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), sl.IAFSqueeze(**iaf), sl.SumPool2d(2),
        nn.Flatten(), nn.Linear(16 * 2 * 2, 10), sl.IAFSqueeze(**iaf))


def squeeze(x: np.ndarray) -> torch.Tensor:
    """Time-major [T, B, ...] -> Sinabs' batch-major squeezed (B*T, ...)."""
    return torch.from_numpy(np.ascontiguousarray(np.swapaxes(x, 0, 1))).flatten(0, 1)


def unsqueeze(y: torch.Tensor, steps: int) -> np.ndarray:
    """(B*T, ...) -> time-major [T, B, ...]."""
    y = y.detach().reshape(-1, steps, *y.shape[1:])
    return np.swapaxes(y.numpy(), 0, 1)


def train():
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(SEED)
    x_tr, y_tr, _, _ = digits(8)
    net = build(BATCH)
    optimiser = torch.optim.Adam(net.parameters(), lr=LR)
    start = time.time()
    for epoch in range(EPOCHS):
        order = rng.permutation(len(x_tr))
        for i in range(0, len(order) - BATCH + 1, BATCH):  # IAFSqueeze needs full batches
            idx = order[i:i + BATCH]
            x = encode("counts", x_tr[idx], STEPS, rng)
            for layer in net:
                if isinstance(layer, sl.StatefulLayer):
                    layer.reset_states()
            out = net(squeeze(x)).reshape(BATCH, STEPS, 10)  # batch-major (B*T) rows
            loss = nn.functional.cross_entropy(out.sum(1), torch.from_numpy(y_tr[idx]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        print(f"epoch {epoch + 1}/{EPOCHS} loss {float(loss.detach()):.3f} ({time.time() - start:.0f} s)",
              flush=True)
    return net


def record(graph, x: np.ndarray) -> dict:
    """``sinabs.from_nir`` on ``x`` [T, B, ...]: output and hidden spike counts."""
    batch = x.shape[1]
    model = sinabs.from_nir(graph, batch_size=batch)
    hidden = {}
    names = [name for name, m in model.named_modules() if isinstance(m, sl.IAFSqueeze)]
    mods = dict(model.named_modules())
    for name in names:
        layer = mods[name]
        assert layer.min_v_mem is not None and layer.spike_fn is sinabs.activation.MultiSpike
        layer.register_forward_hook(
            lambda m, args, out, name=name: hidden.__setitem__(name, out.detach().clone()))
    with torch.no_grad():
        model(squeeze(x))
    return {name: unsqueeze(value, x.shape[0]) for name, value in hidden.items()}


def main():
    net = train()
    _, _, x_te, y_te = digits(8)
    rng = np.random.default_rng(1)
    x = encode("counts", x_te[:RECORDED], STEPS, rng)
    assert x.max() <= 255
    sample = squeeze(x[:, :BATCH])
    with torch.no_grad():
        net(sample)  # the IAF states take their shapes, which the export reads
    graph = sinabs.to_nir(net.eval(), torch.zeros(BATCH, *x.shape[2:]))
    for node in graph.nodes.values():  # one threshold per neuron, as nir 1.0.8 requires
        if isinstance(node, nir.IF):
            node.v_threshold = np.broadcast_to(node.v_threshold, np.shape(node.r)).copy()
    graph.infer_types()
    path = HERE / "sinabs_ms.nir"
    nir.write(str(path), graph)
    hidden = record(nir.read(str(path)), x)
    output_name = sorted(hidden, key=lambda k: int(k) if k.isdigit() else k)[-1]
    output = hidden[output_name]
    acc = float(np.mean(output.sum(0).argmax(1) == y_te[:RECORDED]))
    multi = {k: int((v > 1).sum()) for k, v in hidden.items()}
    arrays = {"input": x.astype(np.uint8), "labels": y_te[:RECORDED],
              "output": output.astype(np.uint8)}
    arrays.update({f"hidden/{k}": v.astype(np.uint8) for k, v in hidden.items()})
    arrays["meta_json"] = np.array(json.dumps(dict(
        framework="sinabs", version=sinabs.__version__, nir=nir.__version__,
        torch=torch.__version__, loader=f"sinabs.from_nir(graph, batch_size={x.shape[1]})",
        convention="sinabs-multispike", output_node=output_name, accuracy=acc,
        entries_with_2_or_more_spikes=multi, steps=STEPS, input="counts (zoo data.encode)"),
        sort_keys=True))
    np.savez_compressed(HERE / "sinabs_ms.npz", **arrays)
    print(f"accuracy {acc:.2%} on {RECORDED} test digits; multi-spike entries {multi}; wrote "
          f"{path.name} and sinabs_ms.npz")


if __name__ == "__main__":
    main()
