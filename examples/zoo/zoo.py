"""The model zoo: small networks in the shapes people train, on data that ships with a package.

Every model is trained here in minutes on scikit-learn's 8x8 digits (``load_digits``, part of
the scikit-learn wheel: no download), deterministically (``train.py``), and shipped as weights
in ``weights/<name>.npz``. This module builds each architecture, loads its weights and makes
its input encoding, so that tests, ``train.py`` and ``evaluate.py`` agree on one definition.

==================  =========================================================================
name                network
==================  =========================================================================
``tut5_fc``         snnTorch tutorial 5: 784-1000-10 ``Leaky`` (beta 0.95, subtract reset) on
                    the digits upsampled to 28x28, the image fed directly every step
``tut6_csnn``       snnTorch tutorial 6: Conv(12,5)-MaxPool(2)-Leaky-Conv(64,5)-MaxPool(2)-
                    Leaky-Linear(10)-Leaky on 28x28, direct input (max pooling of currents)
``bn_conv``         Conv-BatchNorm-Leaky-MaxPool (pooling spikes)-Conv-BatchNorm-Dropout-Leaky-
                    AvgPool-Linear-Leaky, zero resets, rate-coded 28x28 spikes
``rsynaptic_bias``  Linear(64, bias)-RSynaptic(64)-Linear(10, bias)-Synaptic, rate-coded 8x8
``sew_residual``    a spiking residual block with a custom ``forward`` (SEW: the block's spikes
                    plus its input spikes), read through torch.fx, rate-coded 8x8
``sinabs_ms``       Sinabs IAF network with multi-spike neurons, trained in Sinabs and shipped
                    as NIR (``sinabs_ms/``; convention ``sinabs-multispike``), event counts
==================  =========================================================================

Weights: every tensor of the state_dict; Linear/Conv weights of more than 100k entries are
rounded to float16 after training (the shipped model *is* the rounded one: snnTorch and
snn-compile both read the same float32 values), so that tutorial 5 stays about 1.5 MB.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import snntorch as snn
import torch
from snntorch import surrogate
from torch import nn

from data import SEED, digits, encode  # noqa: F401  (beside this file)

HERE = Path(__file__).resolve().parent
WEIGHTS = HERE / "weights"
FP16_ABOVE = 100_000  # weight tensors larger than this are stored as float16


# --------------------------------------------------------------------------- architectures


def _leaky(beta, **kw):
    return snn.Leaky(beta=beta, init_hidden=True, spike_grad=surrogate.fast_sigmoid(slope=25),
                     **kw)


def build_tut5_fc() -> nn.Module:
    """snnTorch tutorial 5 (784-1000-10, beta 0.95, snnTorch's default subtract reset)."""
    return nn.Sequential(nn.Flatten(), nn.Linear(784, 1000), _leaky(0.95),
                         nn.Linear(1000, 10), _leaky(0.95))


def build_tut6_csnn() -> nn.Module:
    """snnTorch tutorial 6 (12C5-MP2-64C5-MP2-1024FC10, beta 0.5)."""
    return nn.Sequential(nn.Conv2d(1, 12, 5), nn.MaxPool2d(2), _leaky(0.5),
                         nn.Conv2d(12, 64, 5), nn.MaxPool2d(2), _leaky(0.5),
                         nn.Flatten(), nn.Linear(64 * 4 * 4, 10), _leaky(0.5))


def build_bn_conv() -> nn.Module:
    """Convolutions with batch norm, max pooling of spikes, dropout; zero resets."""
    zero = {"reset_mechanism": "zero"}
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.BatchNorm2d(8), _leaky(0.7, **zero),
                         nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.BatchNorm2d(16), nn.Dropout(0.2),
                         _leaky(0.7, **zero), nn.AvgPool2d(2),
                         nn.Flatten(), nn.Linear(16 * 7 * 7, 10), _leaky(0.7, **zero))


def build_rsynaptic_bias() -> nn.Module:
    """A recurrent Synaptic layer fed by a Linear with bias (PyTorch's default)."""
    grad = surrogate.fast_sigmoid(slope=25)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64),
                         snn.RSynaptic(alpha=0.6, beta=0.85, linear_features=64,
                                       init_hidden=True, spike_grad=grad),
                         nn.Linear(64, 10),
                         snn.Synaptic(alpha=0.6, beta=0.85, init_hidden=True, spike_grad=grad))


class SewResidual(nn.Module):
    """A spiking residual block, SEW-ResNet style: ``out = SN(conv(SN(conv(s)))) + s``."""

    def __init__(self, channels: int = 8):
        super().__init__()
        self.stem, self.sn0 = nn.Conv2d(1, channels, 3, padding=1), _leaky(0.8)
        self.conv1, self.sn1 = nn.Conv2d(channels, channels, 3, padding=1), _leaky(0.8)
        self.conv2, self.sn2 = nn.Conv2d(channels, channels, 3, padding=1), _leaky(0.8)
        self.pool = nn.AvgPool2d(2)
        self.fc, self.out = nn.Linear(channels * 4 * 4, 10), _leaky(0.8)

    def forward(self, x):
        s = self.sn0(self.stem(x))
        h = self.sn2(self.conv2(self.sn1(self.conv1(s))))
        y = self.pool(h + s)                    # spike-element-wise addition, then pooling
        return self.out(self.fc(y.flatten(1)))


def build_sew_residual() -> nn.Module:
    return SewResidual()


# --------------------------------------------------------------------------- the zoo


@dataclass(frozen=True)
class Spec:
    name: str
    build: Callable[[], nn.Module] | None   # None: not an snnTorch model (sinabs_ms)
    input_shape: tuple
    size: int             # digit image size
    encoding: str
    steps: int
    epochs: int
    lr: float
    batch: int = 128

    @property
    def weights(self) -> Path:
        return WEIGHTS / f"{self.name}.npz"


MODELS: dict[str, Spec] = {s.name: s for s in (
    Spec("tut5_fc", build_tut5_fc, (1, 28, 28), 28, "direct", 25, 8, 5e-4),
    Spec("tut6_csnn", build_tut6_csnn, (1, 28, 28), 28, "direct", 25, 8, 1e-2),
    Spec("bn_conv", build_bn_conv, (1, 28, 28), 28, "rate", 20, 4, 2e-3),
    Spec("rsynaptic_bias", build_rsynaptic_bias, (1, 8, 8), 8, "rate", 25, 30, 2e-3),
    Spec("sew_residual", build_sew_residual, (1, 8, 8), 8, "rate", 20, 12, 2e-3),
    Spec("sinabs_ms", None, (1, 8, 8), 8, "counts", 20, 0, 0.0),
)}


def load(name: str) -> nn.Module:
    """The trained snnTorch network ``name`` (eval mode, weights from ``weights/``)."""
    spec = MODELS[name]
    net = spec.build()
    with np.load(spec.weights) as data:
        state = {k: torch.from_numpy(data[k].astype(np.float32) if data[k].dtype == np.float16
                                     else data[k]) for k in data.files}
    net.load_state_dict(state, strict=True)
    return net.eval()


def save(name: str, net: nn.Module, directory: Path | None = None) -> Path:
    """Write ``net``'s state_dict (to ``weights/`` or ``directory``), large weights rounded to
    float16 in place first."""
    spec = MODELS[name]
    path = spec.weights if directory is None else Path(directory) / spec.weights.name
    arrays = {}
    with torch.no_grad():
        for key, tensor in net.state_dict().items():
            value = tensor.detach().cpu().numpy()
            if value.dtype == np.float32 and value.size > FP16_ABOVE:
                value = value.astype(np.float16)
                tensor.copy_(torch.from_numpy(value.astype(np.float32)))
            arrays[key] = value
    path.parent.mkdir(exist_ok=True)
    np.savez_compressed(path, **arrays)
    return path


def test_set(name: str, n: int | None = None, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Encoded test inputs ``[T, B, *input_shape]`` and labels for model ``name`` (the first
    ``n`` test digits), the same every call."""
    spec = MODELS[name]
    _, _, x, y = digits(spec.size)
    if n is not None:
        x, y = x[:n], y[:n]
    rng = np.random.default_rng(seed)
    return encode(spec.encoding, x, spec.steps, rng), y


def run_snntorch(net: nn.Module, x: np.ndarray) -> np.ndarray:
    """snnTorch's output spikes ``[T, B, 10]`` from zero state, one call per step."""
    for module in net.modules():
        if isinstance(module, snn.SpikingNeuron):
            module.reset_mem()
    with torch.no_grad():
        out = [net(torch.from_numpy(np.ascontiguousarray(step))) for step in x]
    return torch.stack([o[0] if isinstance(o, tuple) else o for o in out]).numpy()


def accuracy(output: np.ndarray, labels: np.ndarray) -> float:
    """Class = most output spikes over the window (ties: the lowest class)."""
    return float(np.mean(output.sum(axis=0).argmax(axis=1) == labels))
