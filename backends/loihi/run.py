"""Running a lowered network on Lava in-process: encode the input, run, collect a Trace."""

from __future__ import annotations

import numpy as np

from snn_compile.datapath.step import spike_dtype
from snn_compile.errors import BackendError
from snn_compile.trace import Trace

from .compat import require_lava
from .lower import LavaNet


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


def encode(lowered: LavaNet, spikes: np.ndarray) -> np.ndarray:
    """Input ``[T, B, *input_shape]`` as the integers Lava receives, same shape (the input
    format's definition, :meth:`snn_compile.ir.fixed.QInput.encode`)."""
    inp = lowered.network.input
    x = inp.encode(spikes)
    return x.reshape(x.shape[0], x.shape[1], *inp.shape)


def run_lowered(lowered: LavaNet, spikes: np.ndarray, *, hw: bool = False) -> Trace:
    """Run ``spikes`` [T, B, *input_shape] through a lowered network; every population's
    spikes, u and v."""
    x = encode(lowered, spikes)
    try:
        flat = builder().run_batch(lowered.manifest, lowered.params, x, hw=hw)
    except RuntimeError as exc:
        raise BackendError(f"Lava run failed: {exc}") from exc
    net = lowered.network
    for pop in net.populations:
        key = f"layer/{pop.name}/spikes"
        flat[key] = flat[key].astype(spike_dtype(pop.neuron))
    out = net.output_population
    if out.neuron.spiking:
        flat["spikes"] = flat["spikes"].astype(spike_dtype(out.neuron))
    return Trace.from_npz_dict(flat)
