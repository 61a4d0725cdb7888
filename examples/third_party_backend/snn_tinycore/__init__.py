"""snn-compile backend for TinyCore, a hypothetical small spiking accelerator (an example of a
third-party backend; see README.md). Registered as ``tinycore`` in the entry-point group
``snn_compile.backends``."""

from .backend import TinyCoreBackend
from .engine import run_program
from .program import Program, lower_network

__all__ = ["Program", "TinyCoreBackend", "lower_network", "run_program"]
