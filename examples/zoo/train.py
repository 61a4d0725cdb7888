"""Train the zoo's snnTorch models (deterministic, CPU, minutes) and write ``weights/``.

Usage (from the repository root, in the project venv)::

    python examples/zoo/train.py                 # every snnTorch model
    python examples/zoo/train.py tut6_csnn ...   # some of them

Each model: Adam, the spike-count cross-entropy of snnTorch (``ce_rate_loss``) over
``spec.steps`` steps, ``spec.epochs`` epochs on the 80 % training split of scikit-learn's
digits, with the input encoding of ``zoo.MODELS``. Everything is seeded and run on one thread
with deterministic algorithms, so the same machine writes the same weights every time. The
Sinabs model is trained in Sinabs: ``sinabs_ms/train_sinabs.py`` (a side venv, see there).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import snntorch as snn
import torch
from snntorch import functional as SF

sys.path.insert(0, str(Path(__file__).resolve().parent))
import zoo  # noqa: E402


def _steps(net, x):
    for module in net.modules():
        if isinstance(module, snn.SpikingNeuron):
            module.reset_mem()
    return torch.stack([net(step) for step in x])


def train(name: str, directory: Path | None = None) -> dict:
    """Train model ``name``, write its weights (to ``weights/`` or ``directory``)."""
    spec = zoo.MODELS[name]
    torch.manual_seed(zoo.SEED)
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    rng = np.random.default_rng(zoo.SEED)
    x_tr, y_tr, _, _ = zoo.digits(spec.size)
    net = spec.build()
    optimiser = torch.optim.Adam(net.parameters(), lr=spec.lr, betas=(0.9, 0.999))
    loss_fn = SF.ce_rate_loss()
    start = time.time()
    for epoch in range(spec.epochs):
        net.train()
        order = rng.permutation(len(x_tr))
        for i in range(0, len(order), spec.batch):
            idx = order[i:i + spec.batch]
            x = torch.from_numpy(zoo.encode(spec.encoding, x_tr[idx], spec.steps, rng))
            out = _steps(net, x)
            loss = loss_fn(out, torch.from_numpy(y_tr[idx]))
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        print(f"{name}: epoch {epoch + 1}/{spec.epochs} loss {float(loss.detach()):.3f} "
              f"({time.time() - start:.0f} s)", flush=True)
    net.eval()
    path = zoo.save(name, net, directory)
    x_te, y_te = zoo.test_set(name)
    acc = zoo.accuracy(zoo.run_snntorch(net, x_te), y_te)
    print(f"{name}: test accuracy {acc:.2%} ({len(y_te)} digits), wrote {path.name} "
          f"({path.stat().st_size / 1e3:.0f} kB)")
    return {"accuracy": acc, "seconds": time.time() - start, "path": path}


def main(names):
    for name in names or [n for n, s in zoo.MODELS.items() if s.build is not None]:
        train(name)


if __name__ == "__main__":
    main(sys.argv[1:])
