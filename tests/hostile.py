"""Hostile names for the emitter tests: each tries to break out of the place a name is pasted.

``names(sentinel)`` returns strings that, pasted raw, would create the file ``sentinel`` (Python,
shell, Tcl, C++), end a docstring, comment or string, inject markup, or print terminal escapes.
"""

from __future__ import annotations


def names(sentinel) -> list[str]:
    s = str(sentinel)
    return [
        f'x"""\nimport os; os.system("touch {s}")\n"""',
        f"x\"\"\" + __import__('os').system('touch {s}') + \"\"\"",
        f"y''' + __import__('os').system('touch {s}') + '''",
        f"$(touch {s})",
        f"`touch {s}`",
        f"x}} ; exec touch {s} ; set x {{",
        f"[exec touch {s}]",
        f'l;\nstatic int pwn = std::system("touch {s}");\n//',
        f'*/ static int pwn = std::system("touch {s}"); /*',
        "trailing backslash \\",
        "??/",
        "a;b",
        "tab\there",
        "\x1b[31mred\x1b[0m\x07",
        "\u202eevil\u200b",
        "x" * 300,
        "$\\alpha^$",
        "<script>alert(1)</script> | `code` | [a](b) *em* _u_ #h",
        "{{ 7 * 7 }} {% raw %}",
        "%s%n%x",
        "a/b",
        "../../etc/passwd",
        "{}[]",
        "ünïcödé 層",
    ]


def printable_names(sentinel) -> list[str]:
    """The names that pass snn-compile's import grammar (no control characters, <= 256)."""
    from snn_compile.names import name_problem

    return [n for n in names(sentinel) if name_problem(n) is None]
