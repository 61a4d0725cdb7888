"""The bit-accurate CPU emulator: the golden model every other fixed-point backend matches.

It lives in the core (not among the plugin backends) because the core's checks run it; it is
still registered as the backend ``emulator`` for ``snn-compile run``.

Two engines compute the same values in the same types (``run_network(engine=...)``):

* ``native`` (:mod:`.native`): one C kernel per group of populations, generated from the rule
  table through the C family (:mod:`snn_compile.datapath.c_ops`; decisions in
  :mod:`.kernel_plan`, text in :mod:`.kernel_source`), compiled by the system compiler and cached
  (:mod:`.compiler`);
* ``numpy`` (:mod:`.engine`): exact BLAS products and the generic step on int64 arrays.

``auto`` (the default) takes the native engine for runs large enough to repay its kernels where a
C compiler works, and the numpy engine otherwise (with a warning when the compiler is missing).
"""

from __future__ import annotations

from .engine import run_network

__all__ = ["run_network", "EmulatorBackend"]


def __getattr__(name):
    if name == "EmulatorBackend":  # the backend class pulls in the backend machinery lazily
        from .backend import EmulatorBackend
        return EmulatorBackend
    raise AttributeError(name)
