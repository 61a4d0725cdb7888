"""Train a small spiking classifier on scikit-learn's 8x8 digits and ship it as an example.

Network: 64 inputs -> Linear(128) -> Leaky -> Linear(10) -> Leaky (snnTorch), beta 0.9.
Input: each pixel (scaled to [0, 1]) is a Bernoulli spike probability per step, T = 25 steps.
Class = argmax of the output layer's spike counts. Everything is seeded; CPU, well under a minute.

Writes, next to this file:
  digits_snn.pt    the trained network in snn-compile's model file (snn_compile.export)
  digits_test.npz  spikes [T, B, 64] float32 (the rate-coded test set) and labels [B] int64

Usage:  python examples/digits/train.py [--reset zero|subtract] [--epochs N] [--out DIR]
The default reset is "zero" (Loihi's standard neuron resets to zero); "subtract" is snnTorch's
default.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import snntorch as snn
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from snntorch import functional as SF
from torch import nn

import snn_compile
from snn_compile.reference import simulate

STEPS = 25
BETA = 0.9
SEED = 0
BATCH = 128
HERE = Path(__file__).resolve().parent


def build(reset: str) -> nn.Sequential:
    """The 64-128-10 spiking network (neurons hold their state: init_hidden=True)."""
    return nn.Sequential(
        nn.Linear(64, 128), snn.Leaky(beta=BETA, reset_mechanism=reset, init_hidden=True),
        nn.Linear(128, 10), snn.Leaky(beta=BETA, reset_mechanism=reset, init_hidden=True),
    )


def rate_code(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Bernoulli spikes ``[STEPS, B, 64]`` with the pixel intensity as probability."""
    return (rng.random((STEPS, *images.shape)) < images).astype(np.float32)


def run(net: nn.Sequential, spikes: torch.Tensor) -> torch.Tensor:
    """Output spikes ``[T, B, 10]`` of a time-major pass from zero state."""
    for module in net.modules():
        if isinstance(module, snn.SpikingNeuron):
            module.reset_mem()
    return torch.stack([net(x) for x in spikes])


def train(net, images, labels, epochs: int, rng: np.random.Generator) -> None:
    optimizer = torch.optim.Adam(net.parameters(), lr=5e-3)
    loss_fn = SF.ce_count_loss()
    targets = torch.as_tensor(labels)
    for epoch in range(epochs):
        order = rng.permutation(len(images))
        total = 0.0
        for start in range(0, len(order), BATCH):
            batch = order[start:start + BATCH]
            spikes = torch.as_tensor(rate_code(images[batch], rng))
            loss = loss_fn(run(net, spikes), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        print(f"epoch {epoch + 1:2d}  loss {total / len(images):.4f}")


def accuracy(output_spikes: np.ndarray, labels: np.ndarray) -> float:
    """Share of samples whose most-spiking output neuron is the label."""
    return float(np.mean(output_spikes.sum(axis=0).argmax(axis=1) == labels))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reset", choices=["zero", "subtract"], default="zero")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()

    torch.set_num_threads(1)  # tiny layers: threads only add overhead
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    digits = load_digits()
    x_train, x_test, y_train, y_test = train_test_split(
        (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64),
        test_size=0.2, random_state=SEED, stratify=digits.target)

    net = build(args.reset)
    started = time.perf_counter()
    train(net, x_train, y_train, args.epochs, rng)
    print(f"trained in {time.perf_counter() - started:.0f} s")

    net.eval()
    test_spikes = rate_code(x_test, np.random.default_rng(SEED + 1))
    with torch.no_grad():
        snntorch_acc = accuracy(run(net, torch.as_tensor(test_spikes)).numpy(), y_test)
    args.out.mkdir(parents=True, exist_ok=True)
    model_path = snn_compile.export(net, args.out / "digits_snn.pt", input_shape=(64,))
    np.savez_compressed(args.out / "digits_test.npz", spikes=test_spikes, labels=y_test)
    graph = snn_compile.load_model(model_path)
    reference_acc = accuracy(simulate(graph, test_spikes).output, y_test)
    print(f"test accuracy ({len(y_test)} samples): snnTorch {snntorch_acc:.4f}, "
          f"snn-compile float reference {reference_acc:.4f}")
    print(f"wrote {model_path} and {args.out / 'digits_test.npz'}")


if __name__ == "__main__":
    main()
