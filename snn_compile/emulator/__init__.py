"""The bit-accurate CPU emulator: the golden model every other fixed-point backend matches.

It lives in the core (not among the plugin backends) because the core's checks run it; it is
still registered as the backend ``emulator`` for ``snn-compile run``.
"""

from __future__ import annotations

from .engine import run_network

__all__ = ["run_network", "EmulatorBackend"]


def __getattr__(name):
    if name == "EmulatorBackend":  # the backend class pulls in the backend machinery lazily
        from .backend import EmulatorBackend
        return EmulatorBackend
    raise AttributeError(name)
