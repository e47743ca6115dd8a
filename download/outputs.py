"""Writing downloaded files into a user's ``--out`` folder, with their provenance.

Every file reaches the folder by an atomic rename.  A file that is already there with
the same bytes is left alone; one with different bytes is an error unless ``force``
(never overwrite a user's files silently).  ``OUT/nbdid-download.json`` lists every
file the download layer wrote to the folder, with its source and the cache records it
was made from (URL, final URL, bytes, sha256, retrieval time): provenance reports cite
it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from nbdid.download.cache import utc_now
from nbdid.errors import OutputError
from nbdid.outputs import new_temp_file, remove_dead_temps

__all__ = ["PROVENANCE_NAME", "install", "install_copy", "record_provenance"]

PROVENANCE_NAME = "nbdid-download.json"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def out_dir(path: str | os.PathLike[str]) -> Path:
    """Create the output folder if needed; :class:`OutputError` if that is impossible."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise OutputError(f"output folder {p} exists and is not a folder")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"cannot create output folder {p}: {err.strerror or err}") from None
    return p


def install(
    dest: str | os.PathLike[str], write: Callable[[Path], None], *, force: bool
) -> tuple[Path, str, str]:
    """Write ``dest`` through ``write(tmp_path)`` and an atomic rename.

    Returns
    -------
    path, sha256, status
        ``status`` is ``"written"``, ``"replaced"`` or ``"unchanged"`` (same bytes were
        already there).

    Raises
    ------
    OutputError
        ``dest`` exists with other content and ``force`` is false, or cannot be written.
    """
    dest = Path(dest)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        # a download killed by SIGKILL left its hidden temporary file: removed now
        # (any of nbdid's whose writer is dead; never a live writer's, never the user's)
        remove_dead_temps(dest.parent)
        tmp = new_temp_file(dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    except OSError as err:
        raise OutputError(f"cannot write to {dest.parent}: {err.strerror or err}") from None
    tmp_path = Path(tmp)
    try:
        write(tmp_path)
        sha = _sha256(tmp_path)
        if dest.exists():
            if dest.is_file() and _sha256(dest) == sha:
                tmp_path.unlink()
                return dest, sha, "unchanged"
            if not force:
                raise OutputError(
                    f"{dest} already exists with other content; use --force to replace it "
                    "or choose another --out"
                )
            status = "replaced"
        else:
            status = "written"
        os.replace(tmp_path, dest)
        return dest, sha, status
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def install_copy(src: str | os.PathLike[str], dest: str | os.PathLike[str], *,
                 force: bool) -> tuple[Path, str, str]:
    """Copy ``src`` (byte for byte) to ``dest`` with :func:`install`."""
    return install(dest, lambda tmp: shutil.copyfile(src, tmp), force=force)


def record_provenance(folder: str | os.PathLike[str], source: str,
                      files: Mapping[str, Mapping[str, Any]], run: Mapping[str, Any]) -> Path:
    """Merge ``files`` (relative path -> record) into ``folder/nbdid-download.json``."""
    # imported here: filelock loads only when a folder is locked (keeps `import nbdid` light)
    from filelock import FileLock

    folder = Path(folder)
    target = folder / PROVENANCE_NAME
    with FileLock(str(folder / f".{PROVENANCE_NAME}.lock"), timeout=600):
        try:
            doc = json.loads(target.read_text(encoding="utf-8"))
            if not isinstance(doc, dict):
                raise ValueError
        except FileNotFoundError:
            doc = {}
        except (OSError, ValueError):
            raise OutputError(f"{target} is not a valid nbdid download record; move it "
                              "away and run again") from None
        doc.setdefault("description", (
            "Files written by 'nbdid download': for each file its source, the publisher's "
            "URL(s) it came from and the cache records (sha256, bytes, retrieval time)."))
        entries = doc.setdefault("files", {})
        for rel, rec in files.items():
            entries[rel] = {"source": source, **rec}
        doc.setdefault("runs", []).append({"source": source, "finished_at": utc_now(), **run})
        remove_dead_temps(folder, [PROVENANCE_NAME])
        tmp = new_temp_file(folder, prefix=f".{PROVENANCE_NAME}.", suffix=".tmp")
        try:
            with open(tmp, "w", encoding="utf-8") as fh:
                json.dump(doc, fh, indent=1, sort_keys=True, default=str)
                fh.write("\n")
            os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return target
