"""Escaping of untrusted text for every language snn-compile writes.

Names of layers, the model file's name, a target's name, description and part all come from
input files. They reach generated code, documents and the terminal only through the functions
below, one per output language; each returns text that the language reads back as inert data
(never as code, markup, a command or a control sequence). Templates use them as jinja2 filters
(:func:`filters`).

``printable(text)`` is the base: every character that is not printable (control characters
such as NUL, newline and ESC, format characters such as bidi overrides, unassigned code
points) becomes a visible escape (``\\n``, ``\\x1b``, ``\\u202e``) and a backslash becomes
``\\\\``, so the result is one line, shows no escape sequence, and still tells different names
apart.

==================  ==========================================================================
function            output
==================  ==========================================================================
``py_literal``      a Python literal (``repr``) of a str/int/float/bool/None
``py_docstring``    text for inside a ``\"\"\"`` docstring (no quote or backslash escapes it)
``py_comment``      text for after ``#``
``cpp_identifier``  a C++ identifier, unique, short, not reserved (see its docstring)
``cpp_string``      a C++ string literal, quotes included (exact bytes, octal escapes)
``cpp_comment``     a quoted name for inside a ``//`` or ``/* */`` comment
``tcl_word``        a double-quoted Tcl word with no substitution left in it
``sh_word``         a POSIX shell word (single-quoted when needed)
``md_text``         Markdown/HTML text (every ASCII punctuation backslash-escaped)
``terminal``        text for a terminal (== ``printable``)
``mpl_text``        a matplotlib label; pass it with ``parse_math=False`` (no mathtext)
==================  ==========================================================================
"""

from __future__ import annotations

import hashlib
import itertools
import re
import shlex
import string
import unicodedata

__all__ = ["printable", "py_literal", "py_docstring", "py_comment", "cpp_identifier",
           "cpp_string", "cpp_comment", "tcl_word", "sh_word", "md_text", "terminal",
           "mpl_text", "filters"]

_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t", "\\": "\\\\"}


def _visible(ch: str) -> bool:
    return ch == " " or (ch.isprintable() and unicodedata.category(ch)[0] not in "CZ")


def printable(text) -> str:
    """``text`` as one line of visible characters; the mapping is one-to-one."""
    out = []
    for ch in str(text):
        if ch in _NAMED:
            out.append(_NAMED[ch])
        elif _visible(ch):
            out.append(ch)
        else:
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else
                       f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
    return "".join(out)


terminal = printable


# ----------------------------------------------------------------------------- Python

def py_literal(value) -> str:
    """A Python expression that evaluates to ``value`` (plain values only)."""
    if value is None or isinstance(value, (bool, int, str)):
        return repr(value)
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else \
            f"float({str(value)!r})"
    raise TypeError(f"py_literal takes plain values, not {type(value).__name__}")


def py_docstring(text) -> str:
    """Text that can stand anywhere inside a triple-quoted (non-raw) docstring.

    The docstring's value is ``printable(text)``: quotes are escaped, so ``\"\"\"`` cannot end it,
    and every backslash is doubled, so no escape sequence is formed.
    """
    return printable(text).replace("\\", "\\\\").replace('"', '\\"').replace("'", "\\'")


def py_comment(text) -> str:
    """Text for a ``#`` comment: one line."""
    return printable(text)


# ----------------------------------------------------------------------------- C++

CPP_KEYWORDS = frozenset("""
alignas alignof and and_eq asm auto bitand bitor bool break case catch char char8_t char16_t
char32_t class compl concept const consteval constexpr constinit const_cast continue co_await
co_return co_yield decltype default delete do double dynamic_cast else enum explicit export
extern false float for friend goto if inline int long mutable namespace new noexcept not not_eq
nullptr operator or or_eq private protected public register reinterpret_cast requires return
short signed sizeof static static_assert static_cast struct switch template this thread_local
throw true try typedef typeid typename union unsigned using virtual void volatile wchar_t while
xor xor_eq
""".split())
CPP_IDENT_MAX = 40  # leaves room for derived names and file names (NAME_MAX is 255 bytes)


def _conflicts(ident: str, taken) -> bool:
    """Equal to, or an underscore-prefix of (or extended by), a taken identifier, ignoring case.

    Generated code derives names as ``<ident>_<suffix>`` and file names from identifiers; with no
    identifier an ``_``-prefix of another, no two derived names can coincide, and case-folding
    keeps file names distinct on case-insensitive file systems.
    """
    low = ident.lower()
    return any(t == low or t.startswith(low + "_") or low.startswith(t + "_")
               for t in (x.lower() for x in taken))


def _short(ident: str, name: str, limit: int) -> str:
    if len(ident) <= limit:
        return ident
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{ident[:limit - 9].rstrip('_')}_{digest}"


def cpp_identifier(name, taken: set, *, reserved=CPP_KEYWORDS,
                   max_len: int = CPP_IDENT_MAX) -> str:
    """A C++ identifier for ``name``, added to ``taken``.

    ``[A-Za-z0-9_]`` only (runs of anything else become one ``_``; no leading digit, no leading,
    trailing or double underscore), at most ``max_len`` characters (longer names keep a prefix
    and gain a hash of the full name), never in ``reserved``, and never equal to, or an
    ``_``-prefix of, another identifier in ``taken`` (case-insensitively; see
    :func:`_conflicts`). Clashes are resolved deterministically: a number is appended, or a
    prefix ``n<k>_`` is put in front when ``name`` extends a taken identifier.
    """
    text = str(name)
    ident = re.sub(r"[^0-9A-Za-z]+", "_", text).strip("_") or "layer"
    if ident[0].isdigit():
        ident = f"l{ident}"
    if ident in reserved:
        ident = f"{ident}_l"
    base = _short(ident, text, max_len - 8)
    numbered = (f"{base}{k}" for k in range(2, 100))
    prefixed = (f"n{k}_{base}" for k in itertools.count(2))
    for candidate in itertools.chain([base], numbered, prefixed):
        if candidate not in reserved and not _conflicts(candidate, taken):
            taken.add(candidate)
            return candidate
    raise AssertionError("unreachable")  # pragma: no cover


def cpp_string(text) -> str:
    """A C++ string literal holding the UTF-8 bytes of ``text`` exactly."""
    out = []
    for byte in str(text).encode("utf-8", "backslashreplace"):
        ch = chr(byte)
        if ch in '"\\?':
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7F:
            out.append(ch)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


def cpp_comment(text) -> str:
    """``text`` quoted, for inside a C++ comment.

    One line, no ``*/``, ``/*`` or ``//`` (a ``/`` next to ``*`` or ``/`` is escaped), no ``?``
    (trigraphs exist before C++17) and never a backslash at the end (line splicing): the result
    always ends with ``"``.
    """
    body = printable(text).replace('"', '\\"').replace("?", "\\?")
    body = re.sub(r"(?<=[*/])/|/(?=[*/])", "\\\\x2f", body)
    return f'"{body}"'


# ----------------------------------------------------------------------------- Tcl, shell

_TCL_SAFE = frozenset(string.ascii_letters + string.digits + " _.,:/+=@%-")


def tcl_word(text) -> str:
    """A double-quoted Tcl word whose value is ``text``.

    Every character outside ``[A-Za-z0-9 _.,:/+=@%-]`` is written as ``\\uXXXX``; Tcl
    substitutes backslashes, variables and commands in a single pass, so the ``$``, ``[``,
    ``]``, ``;``, braces and quotes this yields are never substituted again.
    """
    out = []
    for ch in str(text):
        code = ord(ch)
        if ch in _TCL_SAFE:
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            out.append(f"\\U{code:08x}")
    return '"' + "".join(out) + '"'


def sh_word(text) -> str:
    """A POSIX shell word whose value is ``printable(text)``."""
    return shlex.quote(printable(text))


# ----------------------------------------------------------------------------- documents

_MD_SPECIAL = frozenset(string.punctuation)


def md_text(text) -> str:
    """Markdown (CommonMark/GFM, incl. table cells) and HTML-safe text: printable, with every
    ASCII punctuation character backslash-escaped, so no emphasis, link, code span, table
    separator or HTML tag can form."""
    return "".join("\\" + ch if ch in _MD_SPECIAL else ch for ch in printable(text))


def mpl_text(text) -> str:
    """A matplotlib label: printable; draw it with ``parse_math=False`` so ``$`` stays text."""
    return printable(text)


def filters() -> dict:
    """The jinja2 filters of generated files: ``{{ name | cpp_comment }}`` and so on."""
    return {"py_literal": py_literal, "py_docstring": py_docstring, "py_comment": py_comment,
            "cpp_string": cpp_string, "cpp_comment": cpp_comment, "tcl_word": tcl_word,
            "sh_word": sh_word, "md_text": md_text, "terminal": terminal}
