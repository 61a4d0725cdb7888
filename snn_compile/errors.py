"""User-facing errors.

Every error that reaches a user is one line naming *where* (file, node), *what* (the offending
value) and *what to do*. The CLI prints ``str(error)`` and exits non-zero; tracebacks only with
``--debug``.
"""

from __future__ import annotations


class SnnCompileError(Exception):
    """Base class of all errors snn-compile raises on bad input."""

    def __init__(self, message: str, *, file=None, node=None, value=None, hint=None):
        self.message = message
        self.file = None if file is None else str(file)
        self.node = node
        self.value = value
        self.hint = hint
        super().__init__(self.__str__())

    def __str__(self) -> str:
        where = []
        if self.file:
            where.append(self.file)
        if self.node:
            where.append(f"node '{self.node}'")
        text = ": ".join(where + [self.message])
        if self.value is not None:
            text += f" (got {self.value})"
        if self.hint:
            text += f". {self.hint}"
        return text

    def at(self, *, file=None, node=None) -> "SnnCompileError":
        """Fill in location details that the raiser did not know (returns self)."""
        if file is not None and self.file is None:
            self.file = str(file)
        if node is not None and self.node is None:
            self.node = node
        self.args = (self.__str__(),)
        return self


class GraphError(SnnCompileError):
    """The graph is malformed: shape mismatch, dangling edge, algebraic loop."""


class UnsupportedError(SnnCompileError):
    """The model uses a layer, option or feature that snn-compile (or a target) cannot express."""


class ModelFileError(SnnCompileError):
    """The model file cannot be read: truncated, wrong format, untrusted pickle."""


class TargetError(SnnCompileError):
    """A target description is invalid, or a parameter does not fit the target."""


class QuantizationError(TargetError):
    """A parameter cannot be represented in the target's number formats."""


class BackendError(SnnCompileError):
    """A backend could not be loaded or run (missing toolchain, failed compilation)."""
