"""Small helpers shared by the command modules (printing only)."""

from __future__ import annotations

import sys


def progress(msg: str) -> None:
    """Print one progress line on stderr."""
    print(msg, file=sys.stderr, flush=True)


def quiet(_msg: str) -> None:
    """Swallow a progress line (``--quiet``)."""
