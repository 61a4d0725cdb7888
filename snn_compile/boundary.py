"""The command line's one error boundary: every expected failure becomes one line and a status.

:func:`guarded` runs a command and turns what it raises into one line on stderr,
``snn-compile: error: ...`` (control characters escaped), and an exit status:

* 0, or 1 when a check failed: what the command returned;
* 2: bad arguments (argparse's message, see :func:`parse_args`), an
  :class:`~snn_compile.errors.SnnCompileError` (file, node, value, what to do), an ``OSError``
  (the file, the system's reason and a hint: ENOSPC, ENAMETOOLONG, EACCES, ...) or running
  out of memory (``MemoryError``, or a library's own allocation error: how to need less);
* 130: ``KeyboardInterrupt`` (Ctrl-C, SIGINT), "interrupted"; 143: SIGTERM, "terminated";
* 3: anything else, a bug in snn-compile: "internal error", with the advice to rerun with
  ``--debug`` and report it.

``--debug`` re-raises instead, so the traceback shows. SIGTERM is turned into an exception while
a command runs, so ``finally`` blocks (the output folder's cleanup, stopping Lava's processes)
run as they do for Ctrl-C. Python warnings are printed as one ``snn-compile: warning:`` line.
"""

from __future__ import annotations

import contextlib
import errno
import io
import signal
import sys
import threading
import warnings

from .errors import SnnCompileError
from .escape import printable

PROG = "snn-compile"
EXIT_ERROR, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_TERMINATED = 2, 3, 130, 143

_OS_HINTS = {
    errno.ENOSPC: "free some disk space or write to another folder",
    errno.EDQUOT: "free some disk space or write to another folder",
    errno.ENAMETOOLONG: "use a shorter file or folder name",
    errno.EACCES: "check the permissions, or write to another folder",
    errno.EPERM: "check the permissions, or write to another folder",
    errno.EROFS: "the file system is read-only; write to another folder",
    errno.ENOENT: "check the path",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "the path is a folder; give a file name",
    errno.ELOOP: "the path has a symbolic link loop",
}


class Terminated(BaseException):
    """Raised in the main thread when the process receives SIGTERM during a command."""


def message(exc: BaseException) -> tuple[str, int]:
    """The one line (without the program name) and exit status for ``exc``."""
    if isinstance(exc, SnnCompileError):
        return f"error: {exc}", EXIT_ERROR
    if isinstance(exc, Terminated):
        return "terminated", EXIT_TERMINATED
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted", EXIT_INTERRUPTED
    if isinstance(exc, OSError):
        return f"error: {_os_error(exc)}", EXIT_ERROR
    if isinstance(exc, MemoryError) or _out_of_memory(exc):
        return ("error: out of memory" + (f" ({exc})" if str(exc) else "")
                + ". Use fewer samples or a smaller model, or lower SNN_COMPILE_MEMORY_BUDGET so "
                  "that oversized inputs are refused before they are read", EXIT_ERROR)
    return (f"internal error: {type(exc).__name__}: {exc}. This is a bug in snn-compile; "
            "rerun with --debug for the traceback and report it", EXIT_INTERNAL)


#: How libraries say they ran out of memory without raising MemoryError: torch's allocator
#: (RuntimeError "DefaultCPUAllocator: can't allocate memory"), the dynamic loader when a
#: library cannot be mapped (ImportError "failed to map segment from shared object").
_OOM_TEXTS = ("can't allocate memory", "cannot allocate memory", "failed to map segment")


def _out_of_memory(exc: BaseException) -> bool:
    return isinstance(exc, (RuntimeError, ImportError)) and any(
        text in str(exc).lower() for text in _OOM_TEXTS)


def _os_error(exc: OSError) -> str:
    files = [f for f in (exc.filename, exc.filename2) if f is not None]
    where = " -> ".join(map(str, files))
    reason = exc.strerror or str(exc) or type(exc).__name__
    text = f"{where}: {reason}" if where else f"cannot read or write a file: {reason}"
    hint = _OS_HINTS.get(exc.errno)
    return f"{text}. {hint}" if hint else text


def print_line(text: str, stream=None) -> None:
    """``snn-compile: <text>`` as one line on stderr (control characters escaped)."""
    stream = sys.stderr if stream is None else stream
    with contextlib.suppress(OSError, ValueError):  # a closed stderr must not mask the status
        print(f"{PROG}: {printable(text)}", file=stream, flush=True)


def _show_warning(msg, category, filename, lineno, file=None, line=None) -> None:
    print_line(f"warning: {msg}", file)


@contextlib.contextmanager
def _sigterm_raises():
    """While the block runs in the main thread, SIGTERM raises :class:`Terminated`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def guarded(command, *, debug: bool = False) -> int:
    """Run ``command()`` (returning an exit status) inside the boundary described above."""
    with warnings.catch_warnings():
        if not debug:
            warnings.showwarning = _show_warning
        try:
            with _sigterm_raises():
                return command()
        except SystemExit:
            raise
        except BaseException as exc:  # noqa: BLE001  (the boundary: everything becomes a line)
            if debug:
                raise
            text, status = message(exc)
            print_line(text)
            return status


def parse_args(parser, argv):
    """``parser.parse_args(argv)``; a usage error becomes one line and :class:`SystemExit` 2.

    argparse prints its usage and the message; only the message line (``prog: error: ...``)
    is kept. ``--help`` (status 0) passes through unchanged.
    """
    captured = io.StringIO()
    try:
        with contextlib.redirect_stderr(captured):
            return parser.parse_args(argv)
    except SystemExit as exit_:
        text = captured.getvalue()
        if not exit_.code:
            sys.stderr.write(text)
            raise
        lines = [line for line in text.splitlines() if line.strip()]
        last = lines[-1] if lines else f"{PROG}: error: invalid arguments"
        with contextlib.suppress(OSError, ValueError):
            print(printable(last), file=sys.stderr, flush=True)
        raise SystemExit(EXIT_ERROR) from None
