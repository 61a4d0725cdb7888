"""snn-compile: trained spiking neural networks -> fixed-point IR -> hardware backends.

``import snn_compile`` stays light (no torch): :func:`load_model` imports its importer on first
use, and :func:`export` (which needs torch) is resolved on first access.
"""

from ._version import __version__
from .importers import load_model

__all__ = ["__version__", "export", "load_model"]


def __getattr__(name: str):
    if name == "export":  # importing the model-file writer imports torch
        from .importers.model_file import export

        return export
    raise AttributeError(f"module 'snn_compile' has no attribute {name!r}")
