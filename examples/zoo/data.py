"""The zoo's data: scikit-learn's 8x8 digits (shipped in the wheel) and their input encodings.

numpy, torch and scikit-learn only, so that the framework side venvs (Sinabs) can use it too.
"""

from __future__ import annotations

import numpy as np
import torch

SEED = 0


def digits(size: int = 8):
    """``(x_train, y_train, x_test, y_test)``: images ``[N, 1, size, size]`` in [0, 1]
    (bilinear upsampling for size > 8), the same 80/20 split every time."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    data = load_digits()
    x = data.images.astype(np.float32)[:, None] / 16.0
    if size != 8:
        x = torch.nn.functional.interpolate(torch.from_numpy(x), size=(size, size),
                                            mode="bilinear", align_corners=False).numpy()
        x = np.clip(x, 0.0, 1.0)
    x_tr, x_te, y_tr, y_te = train_test_split(x, data.target, test_size=0.2,
                                              random_state=SEED, stratify=data.target)
    return x_tr, y_tr.astype(np.int64), x_te, y_te.astype(np.int64)


def encode(kind: str, images: np.ndarray, steps: int, rng: np.random.Generator,
           flat: bool = False) -> np.ndarray:
    """Time-major input ``[steps, B, *shape]`` float32: ``direct`` (the image every step),
    ``rate`` (Bernoulli spikes, the intensity as probability) or ``counts`` (Poisson event
    counts with mean 1.5 x intensity, like binned event-camera frames)."""
    if flat:
        images = images.reshape(len(images), -1)
    if kind == "direct":
        return np.broadcast_to(images, (steps, *images.shape)).astype(np.float32)
    if kind == "rate":
        return (rng.random((steps, *images.shape)) < images).astype(np.float32)
    if kind == "counts":
        return rng.poisson(1.5 * images, (steps, *images.shape)).astype(np.float32)
    raise ValueError(kind)


