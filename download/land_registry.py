"""HM Land Registry Price Paid Data: the yearly files ``pp-YYYY.csv``.

Each year is fetched from the current host first and from the older S3 website host
when the first refuses or stays unreachable:

* ``https://price-paid-data.publicdata.landregistry.gov.uk/pp-YYYY.csv`` (documented
  from February 2026);
* ``http://prod.publicdata.landregistry.gov.uk.s3-website-eu-west-1.amazonaws.com/pp-YYYY.csv``
  (plain http: S3 website endpoints have no TLS).

HMLR publishes no checksum: the size (``Content-Length``) is checked and the sha256 is
recorded.  The files are written byte for byte as ``OUT/pp-YYYY.csv`` (no header,
16 quoted columns: what ``nbdid ingest land-registry --ppd`` reads).  The files of
the two latest years keep growing, so re-run with ``--refresh`` to update them.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nbdid.download.client import Downloader
from nbdid.download.outputs import install_copy, out_dir, record_provenance
from nbdid.download.settings import DownloadSettings
from nbdid.errors import InputError

__all__ = ["HOSTS", "FIRST_YEAR", "LandRegistryReport", "download", "year_urls"]

HOSTS: tuple[str, ...] = (
    "https://price-paid-data.publicdata.landregistry.gov.uk",
    "http://prod.publicdata.landregistry.gov.uk.s3-website-eu-west-1.amazonaws.com",
)
"""Hosts of the yearly files, tried in this order."""

FIRST_YEAR = 1995


def year_urls(year: int, hosts: Iterable[str] = HOSTS) -> list[str]:
    """The URLs of ``pp-YEAR.csv``, one per host in order."""
    return [f"{h.rstrip('/')}/pp-{year}.csv" for h in hosts]


def parse_years(spec: str | Iterable[int | str]) -> list[int]:
    """``"1995,2007-2013"`` (or a list) -> sorted distinct years; validated."""
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    years: set[int] = set()
    this = _dt.date.today().year
    for it in items:
        s = str(it).strip()
        if not s:
            continue
        try:
            if "-" in s:
                a, b = (int(x) for x in s.split("-", 1))
                rng = range(a, b + 1)
                if a > b:
                    raise ValueError
            else:
                rng = range(int(s), int(s) + 1)
        except ValueError:
            raise InputError(f"'{s}' is not a year or range of years (e.g. 1995,2007-2013)",
                             column="--years") from None
        for y in rng:
            if not FIRST_YEAR <= y <= this:
                raise InputError(f"Price Paid yearly files cover {FIRST_YEAR}-{this}, not {y}",
                                 column="--years")
            years.add(y)
    if not years:
        raise InputError("no year given (e.g. --years 2007-2013,2018-2024)", column="--years")
    return sorted(years)


@dataclass
class LandRegistryReport:
    """What :func:`download` did: one dict per file (``path``, ``year``, ``url`` ...)."""

    out: Path
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "files": self.files}


def download(
    years: str | Iterable[int | str],
    out: str | Path,
    *,
    settings: DownloadSettings | None = None,
    hosts: Iterable[str] = HOSTS,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> LandRegistryReport:
    """Download ``pp-YYYY.csv`` for ``years`` into ``out`` (byte for byte).

    Parameters
    ----------
    years
        Years (``[1995, 2007]``) or a spec such as ``"2007-2013,2018-2024"``.
    out
        Folder for ``pp-YYYY.csv``.
    hosts
        Hosts to try in order (default :data:`HOSTS`).
    settings
        Download settings (default: from the environment).
    force
        Replace files in ``out`` that differ from the download.
    log
        Called with one-line progress messages.
    downloader
        An open :class:`~nbdid.download.client.Downloader` to reuse.
    """
    ys = parse_years(years)
    hosts = tuple(hosts)
    folder = out_dir(out)
    report = LandRegistryReport(out=folder)
    own = downloader is None
    dl = downloader or Downloader(settings or DownloadSettings.from_env(), log=log)
    files: dict[str, dict] = {}
    try:
        for y in ys:
            urls = year_urls(y, hosts)
            rec = dl.fetch(urls[0], alternatives=urls[1:])
            path, sha, status = install_copy(rec.path, folder / f"pp-{y}.csv", force=force)
            entry = {"path": str(path), "year": y, "url": rec.url, "final_url": rec.final_url,
                     "bytes": rec.bytes, "sha256": sha, "retrieved_at": rec.retrieved_at,
                     "from_cache": rec.from_cache, "status": status}
            report.files.append(entry)
            files[path.name] = {k: v for k, v in entry.items() if k != "path"}
        record_provenance(folder, "land-registry", files, {"years": ys, "hosts": list(hosts)})
    finally:
        if own:
            dl.close()
    return report
