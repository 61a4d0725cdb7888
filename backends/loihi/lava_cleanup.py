"""Stop Lava's runtime however the run ends (standalone: bring-up bundles carry it verbatim).

Lava runs every process model in a child process. If the parent dies without ``stop()``, the
children live on (gigabytes of memory, holding the terminal's output open). :func:`stopping`
wraps a run so that ``stop()`` is called when the block ends, by any exception, by Ctrl-C
(KeyboardInterrupt), by SIGTERM (turned into ``SystemExit(143)`` while the block runs, unless
the program already handles SIGTERM itself), and at interpreter exit (``atexit``).
"""

import atexit
import signal
import threading
from contextlib import contextmanager

_running = []


def _stop(proc) -> None:
    try:
        proc.stop()
    except Exception:  # noqa: BLE001  (already stopped, or the runtime is gone)
        pass


@atexit.register
def stop_all() -> None:
    """Stop every runtime still running (called at interpreter exit)."""
    while _running:
        _stop(_running.pop())


def _terminate(signum, frame):
    raise SystemExit(128 + signum)


@contextmanager
def stopping(proc):
    """Run the block, then ``proc.stop()``: on success, on any exception, on SIGTERM."""
    previous = None
    if threading.current_thread() is threading.main_thread() and \
            signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        previous = signal.signal(signal.SIGTERM, _terminate)
    _running.append(proc)
    try:
        yield proc
    finally:
        if proc in _running:
            _running.remove(proc)
        _stop(proc)
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
