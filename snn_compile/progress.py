"""Progress display for long runs (stderr, only on a terminal)."""

from __future__ import annotations

from tqdm import tqdm


def progress(iterable, *, desc: str, total: int | None = None):
    """Wrap ``iterable`` with a progress bar that is silent when stderr is not a terminal."""
    return tqdm(iterable, desc=desc, total=total, disable=None, leave=False, unit="batch")
