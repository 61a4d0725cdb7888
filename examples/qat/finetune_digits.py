"""Fine-tune the shipped digits model with quantization-aware training (QAT) for a target.

Starts from examples/digits/digits_snn.pt (float, 96.94 % test accuracy) and measures, on the
shipped test spikes (examples/digits/digits_test.npz, 360 samples x 25 steps):

1. the float model (snn-compile float reference);
2. post-training quantization (PTQ): accuracy and per-layer float/emulator spike agreement;
3. PTQ with balanced thresholds (snn_compile.calibrate.balance, on training spikes);
4. QAT: a few epochs of fine-tuning with the target's arithmetic (snn_compile.qat), exported as
   an snn-compile model file; its float reference and the emulator must agree on every spike.

Usage:  python examples/qat/finetune_digits.py [--target loihi2] [--epochs 3] [--out DIR]
Writes DIR/digits_qat_<target>.pt and DIR/results_<target>.json (DIR defaults to this folder).
CPU, single thread, seeded.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from snntorch import functional as SF

import snn_compile
from snn_compile.calibrate import balance
from snn_compile.check import run_check
from snn_compile.qat import export, prepare_qat
from snn_compile.quantize import quantize
from snn_compile.reference import simulate
from snn_compile.targets import load_target

HERE = Path(__file__).resolve().parent
DIGITS = HERE.parent / "digits"
sys.path.insert(0, str(DIGITS))
from train import BATCH, SEED, accuracy, rate_code  # noqa: E402  (the digits example's coding)

CALIBRATION = 128  # training samples for the quantizer's state ranges


def training_images() -> tuple[np.ndarray, np.ndarray]:
    """The training split of examples/digits/train.py (same seed and split)."""
    digits = load_digits()
    x_train, _, y_train, _ = train_test_split(
        (digits.data / 16.0).astype(np.float32), digits.target.astype(np.int64),
        test_size=0.2, random_state=SEED, stratify=digits.target)
    return x_train, y_train


def measure(graph, net, spikes, labels) -> dict:
    """Accuracy and per-layer spike agreement of float reference vs emulator."""
    report = run_check(graph, net, spikes, labels).report
    return {"level": report["level"], "exact": report["exact"],
            "float_accuracy": round(report["float_accuracy"], 2),
            "fixed_accuracy": round(report["fixed_accuracy"], 2),
            "agreement": {layer["name"]: round(100 * layer["spike_agreement"], 3)
                          for layer in report["layers"]},
            "class_agreement": round(100 * report["class_agreement"], 2)}


def fine_tune(qat, images, labels, epochs: int, lr: float, rng) -> list[float]:
    """Adam on snnTorch's spike-count cross entropy; returns the mean loss per epoch."""
    optimizer = torch.optim.Adam(qat.parameters(), lr=lr)
    loss_fn = SF.ce_count_loss()
    targets = torch.as_tensor(labels)
    losses = []
    for epoch in range(epochs):
        order, total = rng.permutation(len(images)), 0.0
        for start in range(0, len(order), BATCH):
            batch = order[start:start + BATCH]
            loss = loss_fn(qat(rate_code(images[batch], rng)), targets[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total += loss.item() * len(batch)
        losses.append(total / len(images))
        print(f"  epoch {epoch + 1}: loss {losses[-1]:.4f}")
    return losses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", default="loihi2")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(SEED)
    rng = np.random.default_rng(SEED)
    started = time.perf_counter()

    args.out.mkdir(parents=True, exist_ok=True)
    target = load_target(args.target)
    graph = snn_compile.load_model(DIGITS / "digits_snn.pt")
    test = np.load(DIGITS / "digits_test.npz")
    spikes, labels = test["spikes"], test["labels"]
    images, train_labels = training_images()
    train_spikes = rate_code(images, np.random.default_rng(SEED + 2))
    calibration = train_spikes[:, :CALIBRATION]

    results = {"target": target.name, "test_samples": int(spikes.shape[1]),
               "float_accuracy": round(100 * accuracy(simulate(graph, spikes).output, labels), 2)}
    print(f"float model: test accuracy {results['float_accuracy']:.2f}%")
    results["ptq"] = measure(graph, quantize(graph, target, calibration).network, spikes, labels)
    print(f"PTQ: {results['ptq']}")
    balanced = balance(graph, target, train_spikes, calibration=calibration).network
    results["ptq_balanced"] = measure(graph, balanced, spikes, labels)
    print(f"PTQ, balanced thresholds: {results['ptq_balanced']}")

    qat = prepare_qat(graph, target, calibration=calibration)
    print(f"QAT fine-tuning for {target.name}, {args.epochs} epochs:")
    results["qat_losses"] = fine_tune(qat, images, train_labels, args.epochs, args.lr, rng)
    path = export(qat, args.out / f"digits_qat_{target.name}.pt")
    qat_graph = snn_compile.load_model(path)
    results["qat"] = measure(qat_graph, quantize(qat_graph, target).network, spikes, labels)
    with torch.no_grad():
        same = np.array_equal(qat(spikes).numpy(), simulate(qat_graph, spikes).output)
    results["qat"]["torch_equals_reference"] = bool(same)
    print(f"QAT: {results['qat']}")
    results["seconds"] = round(time.perf_counter() - started, 1)
    out = args.out / f"results_{target.name}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"wrote {path} and {out} ({results['seconds']} s)")
    if not results["qat"]["exact"]:
        sys.exit("QAT model: float reference and emulator differ")


if __name__ == "__main__":
    main()
