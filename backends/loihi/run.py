"""Running a QNetwork on Lava: lower, build the process graph per sample, collect a Trace."""

from __future__ import annotations

import numpy as np

from snn_compile.backends.emulator.engine import encode_input
from snn_compile.errors import BackendError
from snn_compile.ir.fixed import QNetwork
from .compat import require_lava
from snn_compile.trace import Trace

from .lower import LavaNet, lower


def lava_status() -> str | None:
    """None when Lava imports (through the 3.11 shim), else what is missing."""
    try:
        require_lava()
    except BackendError as exc:
        return str(exc)
    return None


def builder():
    """The standalone graph builder, imported after the Lava shim is installed."""
    require_lava()
    from . import build
    return build


def hardware_status() -> str | None:
    """None when Loihi 2 hardware can be used (lava-loihi installed), else why not."""
    return lava_status() or builder().hardware_status()


def run_lowered(lowered: LavaNet, x: np.ndarray, *, hw: bool = False) -> Trace:
    """Run integer inputs ``x`` [T, B, *input_shape] through a lowered network."""
    try:
        flat = builder().run_batch(lowered.manifest, lowered.params, x, hw=hw)
    except RuntimeError as exc:
        raise BackendError(f"Lava run failed: {exc}") from exc
    for key in [k for k in flat if k.endswith("/spikes")]:
        flat[key] = flat[key].astype(np.uint8)
    if lowered.manifest["output"]["state"] == "spikes":
        flat["spikes"] = flat["spikes"].astype(np.uint8)
    return Trace.from_npz_dict(flat)


def run_network(net: QNetwork, spikes: np.ndarray, *, hw: bool = False) -> Trace:
    """Run ``net`` on ``spikes`` [T, B, *input_shape] in Lava; every layer's spikes, u, v."""
    lowered = lower(net)
    x = encode_input(net, spikes)
    return run_lowered(lowered, x.reshape(x.shape[0], x.shape[1], *net.input_shape), hw=hw)
