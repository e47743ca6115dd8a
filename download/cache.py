"""The download cache: verified files, their provenance, and nothing half-written.

Layout under ``cache_dir``::

    files/<host>/<path>                 a complete, verified file
    files/<host>/<path>.meta.json       its record: URL, final URL, bytes, sha256, md5, time
    files/<host>/<path>.part            an interrupted download (resumed, never used)
    files/<host>/<path>.part.json       what the .part belongs to (URL, ETag) for resuming
    files/<host>/<path>.lock            held while one process downloads the file
    manifest.json                       every record, keyed by cache key (for citations)

A URL with a query string or a POST body gets a short hash of them in its file name
(``NM_141_1.data--q3fa2c1d0e4b5a6f7.csv``).  The rules that make the cache
trustworthy:

* a file only ever reaches its final name by an atomic rename after its size and
  checksums were verified; the record (``.meta.json``) is written *before* that
  rename, so a file at its final name is always complete;
* a file placed at its final name by hand (the fix the error messages suggest when a
  host refuses) is accepted: its sha256 is computed and recorded as ``placed by hand``;
* one process at a time downloads a given file (:mod:`filelock`); others wait and
  then use the finished file.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from filelock import FileLock, Timeout

from nbdid.errors import DownloadError
from nbdid.outputs import new_temp_file, remove_dead_temps

__all__ = ["Cache", "cache_key", "file_hashes", "utc_now"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def utc_now() -> str:
    """Current UTC time, ISO 8601 to the second."""
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


def file_hashes(path: str | os.PathLike[str]) -> tuple[int, str, str]:
    """``(bytes, sha256, md5)`` of a file, read in 1 MiB blocks."""
    sha, md5 = hashlib.sha256(), hashlib.md5(usedforsecurity=False)
    n = 0
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            n += len(block)
            sha.update(block)
            md5.update(block)
    return n, sha.hexdigest(), md5.hexdigest()


def _segment(s: str) -> str:
    s = _SAFE.sub("_", s).strip("._") or "_"
    return s[:120]


def cache_key(url: str, body: bytes | None = None) -> str:
    """Relative cache path of ``url`` (plus a POST ``body``), with ``/`` separators.

    ``https://data.police.uk/data/archive/2014-04.zip`` ->
    ``data.police.uk/data/archive/2014-04.zip``; a query string or body adds
    ``--q<16 hex>`` before the file extension.
    """
    parts = urlsplit(url)
    host = _segment(parts.netloc.lower())
    segs = [_segment(s) for s in parts.path.split("/") if s and s not in (".", "..")]
    if not segs or parts.path.endswith("/"):
        segs.append("index")
    name = segs.pop()
    if parts.query or body:
        h = hashlib.sha256(parts.query.encode() + b"\0" + (body or b"")).hexdigest()[:16]
        stem, dot, ext = name.rpartition(".")
        name = f"{stem}--q{h}.{ext}" if dot and stem and len(ext) <= 5 else f"{name}--q{h}"
    return "/".join([host, *segs, name])


def _write_json_atomic(path: Path, obj: Any, *, compact: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_temps(path.parent, [path.name])  # left by a writer that was killed
    tmp = new_temp_file(path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            # compact: one entry per line through the C encoder (indent= forces the slow
            # pure-Python one, which made rewriting a large manifest dominate a build)
            if compact:
                fh.write(_compact_json(obj))
            else:
                json.dump(obj, fh, indent=1, sort_keys=True)
            fh.write("\n")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _compact_json(obj: Any) -> str:
    """JSON with one top-level key (and one manifest entry) per line, C-encoded."""
    if not isinstance(obj, dict):
        return json.dumps(obj, sort_keys=True)
    parts = []
    for k in sorted(obj):
        v = obj[k]
        if isinstance(v, dict) and v:
            inner = ",\n  ".join(f"{json.dumps(a)}: {json.dumps(v[a], sort_keys=True)}"
                                  for a in sorted(v))
            parts.append(f" {json.dumps(k)}: {{\n  {inner}\n }}")
        else:
            parts.append(f" {json.dumps(k)}: {json.dumps(v, sort_keys=True)}")
    return "{\n" + ",\n".join(parts) + "\n}"


class Cache:
    """A download cache folder (see the module docstring for its layout and rules).

    Parameters
    ----------
    root
        The cache folder; created when first written.
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)

    # -- paths ---------------------------------------------------------------------------
    def path(self, key: str) -> Path:
        """Final path of the entry ``key``."""
        return self.root / "files" / Path(*key.split("/"))

    def part_path(self, key: str) -> Path:
        p = self.path(key)
        return p.with_name(p.name + ".part")

    def meta_path(self, key: str) -> Path:
        p = self.path(key)
        return p.with_name(p.name + ".meta.json")

    def lock_path(self, key: str) -> Path:
        p = self.path(key)
        return p.with_name(p.name + ".lock")

    @property
    def manifest_path(self) -> Path:
        return self.root / "manifest.json"

    # -- locking -------------------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self, key: str, timeout: float) -> Iterator[None]:
        """Hold the lock of ``key`` (other processes wait up to ``timeout`` seconds)."""
        lp = self.lock_path(key)
        try:
            lp.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise DownloadError(f"cannot create cache folder {lp.parent}: "
                                f"{err.strerror or err} (use --cache DIR)") from None
        try:
            with FileLock(str(lp), timeout=timeout):
                yield
        except Timeout:
            raise DownloadError(
                f"another process has been downloading {self.path(key)} for more than "
                f"{timeout:.0f} s (lock {lp}); wait for it or remove the lock file"
            ) from None

    # -- entries -------------------------------------------------------------------------
    def lookup(self, key: str, *, url: str | None = None) -> dict[str, Any] | None:
        """The record of a complete entry, or ``None`` when the cache does not hold it.

        A file without a record (placed by hand) gets one now.  A record whose size
        disagrees with the file means the file was changed after it was verified:
        the entry is treated as missing.
        """
        p = self.path(key)
        if not p.is_file():
            return None
        mp = self.meta_path(key)
        meta = None
        if mp.is_file():
            try:
                meta = json.loads(mp.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                meta = None
        size = p.stat().st_size
        if meta is not None and meta.get("bytes") == size and meta.get("key") == key:
            meta["path"] = str(p)
            return meta
        if meta is not None and meta.get("origin") != "placed by hand":
            return None  # changed after verification: not trusted
        n, sha, md5 = file_hashes(p)
        meta = {
            "key": key, "url": url, "final_url": None, "bytes": n, "sha256": sha,
            "md5": md5, "md5_published": None, "retrieved_at": utc_now(),
            "origin": "placed by hand", "method": "GET",
        }
        self.write_meta(key, meta)
        self.record_manifest(key, meta)
        meta["path"] = str(p)
        return meta

    def write_meta(self, key: str, meta: dict[str, Any]) -> None:
        _write_json_atomic(self.meta_path(key), {k: v for k, v in meta.items() if k != "path"})

    def commit(self, key: str, part: Path, meta: dict[str, Any]) -> dict[str, Any]:
        """Move a verified ``part`` file to its final name with its record ``meta``."""
        meta = {**meta, "key": key}
        self.write_meta(key, meta)
        final = self.path(key)
        os.replace(part, final)
        with contextlib.suppress(OSError):
            self.part_state_path(key).unlink()
        self.record_manifest(key, meta)
        return {**meta, "path": str(final)}

    def discard(self, key: str) -> None:
        """Remove the ``.part`` of ``key`` (and its resume state)."""
        for p in (self.part_path(key), self.part_state_path(key)):
            with contextlib.suppress(OSError):
                p.unlink()

    def part_state_path(self, key: str) -> Path:
        p = self.path(key)
        return p.with_name(p.name + ".part.json")

    def read_part_state(self, key: str) -> dict[str, Any]:
        try:
            return json.loads(self.part_state_path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}

    def write_part_state(self, key: str, state: dict[str, Any]) -> None:
        _write_json_atomic(self.part_state_path(key), state)

    # -- manifest ------------------------------------------------------------------------
    def record_manifest(self, key: str, meta: dict[str, Any]) -> None:
        """Add or replace ``key`` in ``manifest.json`` (under a lock, atomically)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(str(self.manifest_path) + ".lock", timeout=600):
            try:
                man = json.loads(self.manifest_path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                man = {}
            entries = man.setdefault("entries", {})
            entries[key] = {k: v for k, v in meta.items() if k not in ("path", "key")}
            man["cache_dir"] = str(self.root)
            man["updated_at"] = utc_now()
            _write_json_atomic(self.manifest_path, man, compact=True)

    def manifest(self) -> dict[str, Any]:
        """The manifest as a dict (empty when none was written yet)."""
        try:
            return json.loads(self.manifest_path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"entries": {}}
