"""Small helpers shared by the command modules (parsing and printing only)."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from nbdid.errors import InputError
from nbdid.families import FAMILY_CHOICES


def progress(msg: str) -> None:
    """Print one progress line on stderr."""
    print(msg, file=sys.stderr, flush=True)


def quiet(_msg: str) -> None:
    """Swallow a progress line (``--quiet``)."""


def parse_families(items: Sequence[str]) -> dict[str, str]:
    """``KEY=FAMILY`` options (``--family``) as a dict; a one-line
    :class:`~nbdid.errors.InputError` when one is malformed or names no family."""
    out = {}
    for item in items:
        key, sep, fam = item.partition("=")
        if not sep or not key.strip() or fam.strip() not in FAMILY_CHOICES:
            raise InputError(f"--family must look like KEY={'|'.join(FAMILY_CHOICES)}, not {item!r}")
        out[key.strip()] = fam.strip()
    return out
