"""Sampler settings of the example scripts.

The examples use the defaults a real analysis needs.  The test suite runs them with
tiny settings (``NBDID_EXAMPLE_DRAWS=50`` etc.) to check that they work; numbers
from such a run mean nothing.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def sampler(**defaults: int) -> dict[str, int]:
    """Sampler keyword arguments: ``defaults`` overridden by ``NBDID_EXAMPLE_*`` variables."""
    out = dict(defaults)
    for key in ("draws", "tune", "chains"):
        env = os.environ.get(f"NBDID_EXAMPLE_{key.upper()}")
        if env:
            out[key] = int(env)
    return out


def out_dir(name: str) -> Path:
    """Where an example writes its files (``NBDID_EXAMPLE_OUT``, else a temporary folder)."""
    base = os.environ.get("NBDID_EXAMPLE_OUT") or tempfile.mkdtemp(prefix="nbdid-example-")
    path = Path(base) / name
    path.mkdir(parents=True, exist_ok=True)
    return path
