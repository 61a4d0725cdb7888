"""The name grammar of graph nodes (layers), checked once when a model is imported.

A name is a ``str`` of 1 to :data:`MAX_LENGTH` characters with no control or format character:
no NUL, newline, tab, ESC or other C0/C1 control, no bidi override or zero-width character, no
surrogate, private-use or unassigned code point (Unicode categories C* and Zl/Zp). Everything
else is allowed, quotes, ``$``, ``/``, braces and backticks included: every emitter writes names
through :mod:`snn_compile.escape`, and archives key them so that they stay unique
(:class:`~snn_compile.trace.Trace`). Refusing control characters here keeps names one line on
the terminal and unique as npz/zip member names, which end at a NUL.
"""

from __future__ import annotations

import unicodedata

from .errors import ModelFileError
from .escape import printable

MAX_LENGTH = 256


def name_problem(name) -> str | None:
    """Why ``name`` breaks the grammar, or None."""
    if not isinstance(name, str):
        return f"a {type(name).__name__}, not a string"
    if not name:
        return "empty"
    if len(name) > MAX_LENGTH:
        return f"{len(name)} characters, more than {MAX_LENGTH}"
    for i, ch in enumerate(name):
        category = unicodedata.category(ch)
        if category[0] == "C" or category in ("Zl", "Zp"):
            return f"character {i} is {printable(ch)} ({unicodedata.name(ch, category)})"
    return None


def check_name(name, *, file=None, what: str = "node name") -> str:
    """``name`` if it fits the grammar, else ModelFileError naming the file and the name."""
    problem = name_problem(name)
    if problem is not None:
        shown = printable(name) if isinstance(name, str) else repr(name)
        if len(shown) > 80:
            shown = shown[:77] + "..."
        raise ModelFileError(f"invalid {what}: {problem}", file=file, value=f"'{shown}'",
                             hint=f"names are 1..{MAX_LENGTH} printable characters; rename "
                                  "the layer and re-export the model")
    return name


def check_graph_names(graph, *, file=None):
    """Check every node name of ``graph``; returns the graph."""
    for node in graph.nodes:
        check_name(node.name, file=file)
    return graph
