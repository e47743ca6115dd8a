"""police.uk street-level crime: the monthly bulk archives, only the members needed.

``https://data.police.uk/data/archive/YYYY-MM.zip`` (redirected to S3) holds the
street, outcomes and stop-and-search CSVs of every force, as members
``YYYY-MM/YYYY-MM-<force>-street.csv``.  Which months an archive holds
(:func:`archive_window`):

* archives up to ``2017-04`` hold the whole history from ``2010-12`` (the first
  archive, ``2013-12``, holds 2010-12 ... 2013-12; ``2017-04`` is the largest, 2.6 GB);
* from ``2017-05`` on, an archive holds the 36 months ending at its own month.

:func:`plan_archives` picks the fewest archives covering the requested months (ties
go to the archive ending earliest) and assigns every month to exactly one archive,
because the same month differs between archives (outcome updates): the report records
which archive supplied each month.

Two ways of reading the members (``method``):

``range`` (default through ``auto``)
    HTTP Range requests read the archive's central directory and then only the
    wanted ``-street.csv`` members (a few MB per force and month instead of
    1.5-2.6 GB per archive).  Each member's CRC-32 from the archive is checked; the
    archive's published MD5 cannot be checked without the whole archive.
``whole``
    The whole archive is downloaded into the cache (resumable) and verified against
    the MD5 published on ``https://data.police.uk/data/archive/`` when that page
    lists one; members are then extracted locally.  ``auto`` falls back to this when
    a server (e.g. a mirror) does not answer Range requests.

Extracted members are kept in the cache too (``<archive>.zip.members/...``), so a
second run, or ``--offline``, needs no network.  The files written to ``OUT`` are the
members byte for byte, in the publisher's layout ``OUT/YYYY-MM/YYYY-MM-<force>-street.csv``
(what ``nbdid ingest police --crime-dir OUT`` reads).

Note: the archive page says that all but the latest archive are "out of date"; the
study needs the old months, which only old archives hold, so this is a deliberate
choice, recorded in the report.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from nbdid.download.cache import cache_key, file_hashes, utc_now
from nbdid.download.client import (
    Downloader,
    DownloadError,
    RangeNotSupported,
    open_remote,
)
from nbdid.download.outputs import install_copy, out_dir, record_provenance
from nbdid.download.settings import DownloadSettings
from nbdid.errors import InputError

__all__ = [
    "ARCHIVE_URL",
    "FIRST_ARCHIVE",
    "FIRST_MONTH",
    "INDEX_URL",
    "ArchivePlan",
    "PoliceReport",
    "archive_window",
    "download",
    "parse_archive_index",
    "plan_archives",
]

ARCHIVE_URL = "https://data.police.uk/data/archive/{archive}.zip"
INDEX_URL = "https://data.police.uk/data/archive/"
FIRST_MONTH = "2010-12"
"""The first month of police.uk street-level data."""
FIRST_ARCHIVE = "2013-12"
"""The first bulk archive ("These archives were not being generated before December 2013")."""
LAST_FULL_HISTORY = "2017-04"
"""The last archive holding the whole history from 2010-12."""
WINDOW = 36

Method = Literal["auto", "range", "whole"]
_MONTH_RE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")
_FORCE_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")


def _idx(month: str) -> int:
    m = _MONTH_RE.match(month)
    if not m:
        raise InputError(f"month '{month}' is not YYYY-MM", column="--from/--to")
    return int(m.group(1)) * 12 + int(m.group(2)) - 1


def _month(i: int) -> str:
    return f"{i // 12:04d}-{i % 12 + 1:02d}"


def month_range(first: str, last: str) -> list[str]:
    """The months ``first`` ... ``last`` (``YYYY-MM``, inclusive)."""
    a, b = _idx(first), _idx(last)
    if a > b:
        raise InputError(f"--from {first} is after --to {last}", column="--from")
    return [_month(i) for i in range(a, b + 1)]


def archive_window(archive: str) -> tuple[str, str]:
    """First and last month held by the archive ``YYYY-MM.zip``.

    >>> archive_window("2017-04"), archive_window("2017-05")
    (('2010-12', '2017-04'), ('2014-06', '2017-05'))
    """
    i = _idx(archive)
    if i < _idx(FIRST_ARCHIVE):
        raise InputError(f"there is no police.uk archive {archive}.zip (the first is "
                         f"{FIRST_ARCHIVE})")
    if i <= _idx(LAST_FULL_HISTORY):
        return FIRST_MONTH, archive
    return _month(i - WINDOW + 1), archive


def default_latest_archive(today: _dt.date | None = None) -> str:
    """The newest archive assumed to exist: two months before ``today``."""
    d = today or _dt.date.today()
    return _month(d.year * 12 + d.month - 1 - 2)


@dataclass(frozen=True)
class ArchivePlan:
    """One archive of a plan and the months it supplies."""

    archive: str
    months: tuple[str, ...]

    @property
    def url(self) -> str:
        return ARCHIVE_URL.format(archive=self.archive)


def plan_archives(months: Sequence[str], *, latest: str | None = None) -> list[ArchivePlan]:
    """The fewest archives covering ``months``, each month assigned to one archive.

    Greedy interval cover from the earliest month: among the archives holding it,
    take one that reaches the last requested month if any (the earliest such), else
    the one reaching furthest.  This is optimal for intervals.

    Parameters
    ----------
    months
        ``YYYY-MM`` months (any order; duplicates ignored).
    latest
        Newest archive that may be used (default: two months before today).

    Raises
    ------
    InputError
        A month before 2010-12, or after the latest archive.
    """
    want = sorted({_idx(m) for m in months})
    if not want:
        raise InputError("no months requested")
    latest_i = _idx(latest or default_latest_archive())
    first_i, full_i, arch0 = _idx(FIRST_MONTH), _idx(LAST_FULL_HISTORY), _idx(FIRST_ARCHIVE)
    if want[0] < first_i:
        raise InputError(f"police.uk street-level data start in {FIRST_MONTH}; "
                         f"{_month(want[0])} cannot be downloaded", column="--from")
    if want[-1] > latest_i:
        raise InputError(f"{_month(want[-1])} is after the latest archive assumed to exist "
                         f"({_month(latest_i)}); pass --latest-archive YYYY-MM if it is "
                         "published", column="--to")
    plan: list[ArchivePlan] = []
    pending = list(want)
    while pending:
        m = pending[0]
        # archives holding month m: full-history ones (a <= 2017-04, a >= m) and
        # rolling ones (a >= 2017-05, a - 35 <= m <= a)
        cands = [a for a in range(max(m, arch0), min(full_i, latest_i) + 1)]
        cands += [a for a in range(max(m, full_i + 1), min(m + WINDOW - 1, latest_i) + 1)]
        if not cands:
            raise InputError(f"no police.uk archive up to {_month(latest_i)} holds "
                             f"{_month(m)}")
        last = pending[-1]
        reaching = [a for a in cands if a >= last]
        a = min(reaching) if reaching else max(cands)
        lo = _idx(archive_window(_month(a))[0])
        got = tuple(_month(x) for x in pending if lo <= x <= a)
        plan.append(ArchivePlan(_month(a), got))
        pending = [x for x in pending if x > a]
    return plan


def parse_archive_index(html: str) -> dict[str, str | None]:
    """Archive -> published MD5 (``None`` when the entry has none) from the index page.

    The page lists each ``YYYY-MM.zip`` with its date range and an MD5.  The MD5 is the
    first 32-hex-digit string after the archive's name and before the next archive;
    anything else (e.g. a multipart ETag such as ``...-123``) is not taken as an MD5.
    """
    out: dict[str, str | None] = {}
    hits = list(re.finditer(r"(?<![\d-])(\d{4}-\d{2})\.zip", html))
    for k, h in enumerate(hits):
        name = h.group(1)
        end = hits[k + 1].start() if k + 1 < len(hits) else len(html)
        seg = html[h.end():end]
        m = re.search(r"(?<![0-9a-fA-F-])([0-9a-fA-F]{32})(?![0-9a-fA-F-])", seg)
        if name not in out or (out[name] is None and m):
            out[name] = m.group(1).lower() if m else None
    return out


@dataclass
class PoliceReport:
    """What :func:`download` did.

    Attributes
    ----------
    months
        Month -> archive that supplied it.
    archives
        One dict per archive: ``archive``, ``url``, ``months``, ``method`` (``range``,
        ``whole`` or ``cache``), ``md5_published``, ``bytes_transferred``, ``requests``.
    files
        One dict per file written: ``path``, ``month``, ``force``, ``member``,
        ``archive``, ``bytes``, ``sha256``, ``crc32``, ``status``.
    missing
        ``{month, force, archive}`` for requested files the archive does not have
        (e.g. Greater Manchester after July 2019).
    """

    out: Path
    forces: list[str]
    months: dict[str, str] = field(default_factory=dict)
    archives: list[dict[str, Any]] = field(default_factory=list)
    files: list[dict[str, Any]] = field(default_factory=list)
    missing: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "forces": self.forces, "months": self.months,
                "archives": self.archives, "files": self.files, "missing": self.missing,
                "notes": self.notes}


def _member_key(archive_url: str, member: str) -> str:
    return cache_key(archive_url) + ".members/" + member


def _forces(forces: Iterable[str]) -> list[str]:
    out: list[str] = []
    for f in [forces] if isinstance(forces, str) else forces:
        for g in str(f).split(","):
            g = g.strip().lower()
            if not g:
                continue
            if not _FORCE_RE.match(g):
                raise InputError(f"force '{g}' is not a police.uk force id (e.g. merseyside, "
                                 "west-yorkshire, metropolitan)", column="--forces")
            if g not in out:
                out.append(g)
    if not out:
        raise InputError("no force given (e.g. --forces merseyside,west-yorkshire)",
                         column="--forces")
    return out


class _Archive:
    """An open archive (local file or remote through Range requests)."""

    def __init__(self, zf: zipfile.ZipFile, method: str, closer: contextlib.ExitStack,
                 remote=None) -> None:
        self.zf = zf
        self.method = method
        self.closer = closer
        self.remote = remote
        self.names = set(zf.namelist())


def _open_archive(dl: Downloader, plan: ArchivePlan, method: Method,
                  md5_for: Callable[[str], str | None]) -> _Archive:
    stack = contextlib.ExitStack()
    cached = dl.cache.lookup(cache_key(plan.url), url=plan.url)
    if cached is not None or (method == "whole") or dl.settings.offline:
        md5 = None if (cached is not None or dl.settings.offline) else md5_for(plan.archive)
        rec = dl.fetch(plan.url, md5=md5)
        zf = stack.enter_context(zipfile.ZipFile(rec.path))
        return _Archive(zf, "cache" if rec.from_cache else "whole", stack)
    try:
        buf = stack.enter_context(open_remote(dl, plan.url))
    except RangeNotSupported:
        stack.close()
        if method == "range":
            raise DownloadError(f"{plan.url}: the server does not answer Range requests; use "
                                "--method whole") from None
        dl.log(f"{plan.url}: no Range support; downloading the whole archive")
        rec = dl.fetch(plan.url, md5=md5_for(plan.archive))
        zf = stack.enter_context(zipfile.ZipFile(rec.path))
        return _Archive(zf, "whole", stack)
    try:
        zf = stack.enter_context(zipfile.ZipFile(buf))
    except zipfile.BadZipFile as err:
        stack.close()
        raise DownloadError(f"{plan.url} is not a readable zip archive ({err})") from None
    return _Archive(zf, "range", stack, remote=buf.raw)


def _extract_member(dl: Downloader, arch: _Archive, plan: ArchivePlan, member: str) -> dict:
    key = _member_key(plan.url, member)
    info = arch.zf.getinfo(member)
    with dl.cache.lock(key, dl.settings.lock_timeout):
        meta = dl.cache.lookup(key)
        if meta is not None and not dl.settings.refresh:
            return meta
        part = dl.cache.part_path(key)
        part.parent.mkdir(parents=True, exist_ok=True)
        if arch.remote is not None:
            # local header (30 bytes + name + extra, the extra may differ from the central
            # directory's), the compressed data and a data descriptor: one Range request
            arch.remote.prefetch(info.header_offset, 30 + len(info.filename.encode("utf-8"))
                                 + len(info.extra) + 512 + info.compress_size + 24)
        try:
            with arch.zf.open(info) as src, open(part, "wb") as dst:
                for block in iter(lambda: src.read(1 << 20), b""):
                    dst.write(block)
        except (zipfile.BadZipFile, OSError, EOFError) as err:
            dl.cache.discard(key)
            if isinstance(err, DownloadError):
                raise
            raise DownloadError(f"{plan.url}: member {member} is damaged ({err}); nothing "
                                "was kept, run again") from None
        except BaseException:
            dl.cache.discard(key)
            raise
        n, sha, md5 = file_hashes(part)
        if n != info.file_size:
            dl.cache.discard(key)
            raise DownloadError(f"{plan.url}: member {member} has {n} bytes, the archive says "
                                f"{info.file_size}")
        remote = arch.remote
        meta = {
            "url": plan.url, "member": member, "archive": plan.archive,
            "final_url": getattr(remote, "final_url", None), "bytes": n, "sha256": sha,
            "md5": md5, "md5_published": None, "crc32": f"{info.CRC:08x}",
            "retrieved_at": utc_now(), "origin": f"archive member ({arch.method})",
            "archive_etag": getattr(remote, "etag", None),
            "archive_bytes": getattr(remote, "size", None),
        }
        return dl.cache.commit(key, part, meta)


def download(
    months_from: str,
    months_to: str,
    forces: Iterable[str],
    out: str | Path,
    *,
    settings: DownloadSettings | None = None,
    method: Method = "auto",
    latest_archive: str | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> PoliceReport:
    """Download the street files of ``forces`` for ``months_from`` ... ``months_to``.

    Parameters
    ----------
    months_from, months_to
        First and last month, ``YYYY-MM`` (from 2010-12).
    forces
        police.uk force ids (``merseyside``, ``west-yorkshire``, ``metropolitan`` ...),
        as a list or comma-separated strings.
    out
        Folder; files are written as ``OUT/YYYY-MM/YYYY-MM-<force>-street.csv``.
    settings
        Download settings (default: from the environment).
    method
        ``auto`` (Range reads, whole archive when unsupported), ``range`` or ``whole``.
    latest_archive
        Newest archive that may be used (default: two months before today).
    force
        Replace files in ``out`` that differ from the download.
    log
        One-line progress messages.
    downloader
        An open :class:`~nbdid.download.client.Downloader` to reuse.

    Returns
    -------
    PoliceReport
        Files written, the archive of each month, months missing per force.
    """
    if method not in ("auto", "range", "whole"):
        raise InputError(f"method must be auto, range or whole, not '{method}'",
                         column="--method")
    months = month_range(months_from, months_to)
    forces = _forces(forces)
    plan = plan_archives(months, latest=latest_archive)
    folder = out_dir(out)
    report = PoliceReport(out=folder, forces=forces)
    report.notes.append(
        "police.uk says all but the latest archive are out of date; months before the "
        "latest archive's window exist only in older archives, and each month is taken "
        "from one archive (listed per month)")
    own = downloader is None
    dl = downloader or Downloader(settings or DownloadSettings.from_env(), log=log)
    index: dict[str, str | None] | None = None

    def md5_for(archive: str) -> str | None:
        nonlocal index
        if index is None or archive not in index:
            try:
                rec = dl.fetch(INDEX_URL, refresh=index is not None)
                index = parse_archive_index(rec.path.read_text(encoding="utf-8",
                                                               errors="replace"))
            except DownloadError as err:
                dl.log(f"no published MD5 for {archive}.zip: {err}")
                index = {}
        md5 = index.get(archive)
        if md5 is None:
            dl.log(f"{INDEX_URL} lists no MD5 for {archive}.zip; verifying size and sha256 only")
        return md5

    try:
        opened: list[tuple[ArchivePlan, _Archive | None, dict[str, dict]]] = []
        with contextlib.ExitStack() as stack:
            seen_forces: set[str] = set()
            listed_forces: set[str] = set()
            for p in plan:
                wanted = [f"{m}/{m}-{f}-street.csv" for m in p.months for f in forces]
                have = {}
                for w in wanted:
                    meta = None if dl.settings.refresh else dl.cache.lookup(
                        _member_key(p.url, w))
                    if meta is not None:
                        have[w] = meta
                arch = None
                if len(have) < len(wanted):
                    dl.log(f"reading {p.url} ({len(p.months)} month(s) from it)")
                    arch = _open_archive(dl, p, method, md5_for)
                    stack.callback(arch.closer.close)
                    for n in arch.names:
                        mm = re.match(r"^\d{4}-\d{2}/\d{4}-\d{2}-(.+)-street\.csv$", n)
                        if mm:
                            listed_forces.add(mm.group(1))
                for w in have:
                    seen_forces.add(w.split("/", 1)[1][8:-len("-street.csv")])
                if arch is not None:
                    for w in wanted:
                        if w in arch.names:
                            seen_forces.add(w.split("/", 1)[1][8:-len("-street.csv")])
                opened.append((p, arch, have))
            unknown = [f for f in forces if f not in seen_forces]
            if unknown:
                known = ", ".join(sorted(listed_forces)) or "none listed"
                raise InputError(
                    f"force '{unknown[0]}' has no street file in the requested months of "
                    f"{', '.join(p.archive + '.zip' for p in plan)} (forces there: {known})",
                    column="--forces")
            files: dict[str, dict] = {}
            for p, arch, have in opened:
                entry = {"archive": p.archive, "url": p.url, "months": list(p.months),
                         "method": arch.method if arch else "cache",
                         "md5_published": None, "bytes_transferred": 0, "requests": 0}
                for m in p.months:
                    report.months[m] = p.archive
                    for f in forces:
                        member = f"{m}/{m}-{f}-street.csv"
                        meta = have.get(member)
                        if meta is None:
                            if arch is None or member not in arch.names:
                                report.missing.append({"month": m, "force": f,
                                                       "archive": p.archive})
                                continue
                            meta = _extract_member(dl, arch, p, member)
                        dest = folder / m / f"{m}-{f}-street.csv"
                        path, sha, status = install_copy(meta["path"], dest, force=force)
                        rec = {"path": str(path), "month": m, "force": f, "member": member,
                               "archive": p.archive, "url": p.url, "bytes": meta["bytes"],
                               "sha256": sha, "crc32": meta.get("crc32"), "status": status,
                               "retrieved_at": meta.get("retrieved_at"),
                               "final_url": meta.get("final_url")}
                        report.files.append(rec)
                        files[str(path.relative_to(folder))] = {
                            k: v for k, v in rec.items() if k != "path"}
                if arch is not None and arch.remote is not None:
                    entry["bytes_transferred"] = arch.remote.bytes_read
                    entry["requests"] = arch.remote.requests
                elif arch is not None:
                    rec = dl.cache.lookup(cache_key(p.url), url=p.url)
                    if rec is not None:
                        entry["md5_published"] = rec.get("md5_published")
                        entry["bytes_transferred"] = 0 if arch.method == "cache" else rec["bytes"]
                        entry["archive_sha256"] = rec.get("sha256")
                report.archives.append(entry)
        record_provenance(folder, "police", files, {
            "from": months[0], "to": months[-1], "forces": forces,
            "months": report.months, "archives": report.archives, "missing": report.missing,
            "notes": report.notes})
    finally:
        if own:
            dl.close()
    return report
