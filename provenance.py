"""Provenance stored in every result: config, data hash, seed and package versions.

Results (NetCDF attributes, CSV side files) carry :func:`provenance_attrs` so that a
number can always be traced back to the exact data, settings and software.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import importlib.metadata as _md
import platform
from pathlib import Path
from typing import Any

import pandas as pd

PACKAGES = ("nbdid", "pymc", "pytensor", "arviz", "nutpie", "numpy", "pandas", "xarray",
            "statsmodels", "matplotlib", "scipy")

SYNTHETIC_NOTICE = (
    "SYNTHETIC DATA: ward-level values are simulated (calibrated to the report's published "
    "group figures), not real ward data"
)
"""The marker every output made from the synthetic default panel repeats."""


def package_versions() -> dict[str, str]:
    """Installed versions of nbdid and the libraries its results depend on."""
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = "not installed"
    return out


def hash_frame(df: pd.DataFrame) -> str:
    """SHA-256 of a DataFrame's content (column names, order and values)."""
    h = hashlib.sha256()
    h.update("\x1f".join(map(str, df.columns)).encode())
    h.update(pd.util.hash_pandas_object(df, index=False).to_numpy().tobytes())
    return h.hexdigest()


def hash_file(path: str | Path) -> str:
    """SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def provenance_attrs(
    *, config_toml: str, data_hash: str, seed: int | None, synthetic: bool, **extra: Any
) -> dict[str, str]:
    """Flat string attributes for NetCDF files and CSV side files.

    Parameters
    ----------
    config_toml
        The full configuration used, as TOML text.
    data_hash
        SHA-256 of the input panel (see :func:`hash_frame`).
    seed
        Random seed used (``None`` for deterministic computations).
    synthetic
        Whether the input is (or contains) the synthetic default panel.
    **extra
        Further attributes (stringified).
    """
    attrs = {
        "nbdid_config": config_toml,
        "nbdid_data_sha256": data_hash,
        "nbdid_seed": "" if seed is None else str(seed),
        "nbdid_synthetic": "true" if synthetic else "false",
        "nbdid_created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }
    if synthetic:
        attrs["nbdid_data_notice"] = SYNTHETIC_NOTICE
    for k, v in package_versions().items():
        attrs[f"version_{k}"] = v
    for k, v in extra.items():
        attrs[f"nbdid_{k}"] = str(v)
    return attrs
