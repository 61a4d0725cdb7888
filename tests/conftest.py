"""Shared test fixtures (keep this file small; add fixtures used by several test files)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, settings

# Deterministic property tests: the same examples on every run and machine (no example
# database, no random draws); `--hypothesis-profile explore` draws afresh when hunting bugs.
settings.register_profile("deterministic", derandomize=True, database=None, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.load_profile("deterministic")


@pytest.fixture(autouse=True)
def _seeded():
    """Every test starts from the same global random state (torch, numpy, random)."""
    torch.manual_seed(0)
    np.random.seed(0)
    random.seed(0)


def _neuron_states(module) -> dict[str, torch.Tensor]:
    """The state tensors an snnTorch neuron keeps after a step, named like the IR trace."""
    states = {"v": module.mem}
    if hasattr(module, "syn"):
        states["i"] = module.syn
    return states


def run_snntorch_sequential(net: torch.nn.Sequential, spikes) -> dict[str, dict[str, np.ndarray]]:
    """Step an nn.Sequential of snnTorch layers (neurons with ``init_hidden=True``) time-major,
    as users do, from zero state. Returns ``{layer path: {"spikes", "v"[, "i"]}: [T, B, ...]}``
    for every neuron layer, keyed like :class:`snn_compile.trace.Trace` layers."""
    import snntorch as snn

    neurons = {path: m for path, m in net.named_modules() if isinstance(m, snn.SpikingNeuron)}
    for module in neurons.values():
        module.reset_mem()
    record = {path: {} for path in neurons}

    def hook(path):
        def store(module, args, output):
            spikes = output[0] if isinstance(output, tuple) else output
            for key, value in {"spikes": spikes, **_neuron_states(module)}.items():
                record[path].setdefault(key, []).append(value.detach().clone())
        return store

    handles = [m.register_forward_hook(hook(path)) for path, m in neurons.items()]
    try:
        with torch.no_grad():
            for x in torch.as_tensor(np.asarray(spikes), dtype=torch.float32):
                net(x)
    finally:
        for handle in handles:
            handle.remove()
    return {path: {k: torch.stack(v).numpy() for k, v in states.items()}
            for path, states in record.items()}


@pytest.fixture(scope="session")
def run_snntorch():
    """:func:`run_snntorch_sequential`, as a fixture."""
    return run_snntorch_sequential
