"""Safe result writing: never overwrite a user's results silently, never leave a
half-written file behind.

Every command that writes results first calls :func:`prepare_out_dir` with the file
names it is going to write (so that a clash is reported *before* any work is done),
then writes each file with one of the ``write_*`` helpers, which write to a
temporary file in the same folder and atomically rename it into place.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nbdid.errors import OutputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd
    from matplotlib.figure import Figure


def prepare_out_dir(out: str | os.PathLike[str], names: Iterable[str], *, force: bool) -> Path:
    """Create ``out`` if needed and check that ``names`` can be written there.

    Parameters
    ----------
    out
        Output folder.
    names
        Files (relative to ``out``) the command will write.
    force
        Allow overwriting existing files.

    Returns
    -------
    Path
        The output folder.

    Raises
    ------
    OutputError
        If the folder cannot be created or written, or a file exists and ``force`` is false.
    """
    path = Path(out)
    if path.exists() and not path.is_dir():
        raise OutputError(f"output folder {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create output folder {path}: {err.strerror or err}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {path} is not writable")
    # probe: permissions can lie (e.g. read-only mounts)
    try:
        fd, probe = tempfile.mkstemp(dir=path, prefix=".nbdid-probe-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputError(f"output folder {path} is not writable: {err.strerror or err}") from None
    if not force:
        existing = sorted(n for n in names if (path / n).exists())
        if existing:
            shown = ", ".join(existing[:3]) + (" ..." if len(existing) > 3 else "")
            raise OutputError(
                f"{path} already holds results ({shown}); use --force to overwrite "
                "or choose another --out"
            )
    return path


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` on success.

    On any exception the temporary file is removed and ``target`` is left untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def write_csv(df: pd.DataFrame, target: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Write a DataFrame as CSV atomically (``index=False`` unless given)."""
    kwargs.setdefault("index", False)
    with atomic_path(target) as tmp:
        df.to_csv(tmp, **kwargs)
    return Path(target)


def write_text(text: str, target: str | os.PathLike[str]) -> Path:
    """Write UTF-8 text atomically."""
    with atomic_path(target) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(target)


def write_figure(fig: Figure, target: str | os.PathLike[str], **kwargs: Any) -> Path:
    """Save a matplotlib figure atomically; the format follows the target's suffix."""
    target = Path(target)
    kwargs.setdefault("dpi", 150)
    kwargs.setdefault("bbox_inches", "tight")
    with atomic_path(target) as tmp:
        fig.savefig(tmp, format=target.suffix.lstrip(".") or "png", **kwargs)
    return target


def write_netcdf(idata: Any, target: str | os.PathLike[str]) -> Path:
    """Write an ArviZ InferenceData (or xarray Dataset) to NetCDF atomically."""
    with atomic_path(target) as tmp:
        idata.to_netcdf(str(tmp), engine="h5netcdf")
    return Path(target)
