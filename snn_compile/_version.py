"""The one place the version of snn-compile is written (pyproject.toml reads it from here)."""

__version__ = "0.1.0"
