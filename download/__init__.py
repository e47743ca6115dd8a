"""nbdid.download: fetch the public files the seven indicators and their denominators need.

The only package of nbdid that touches the network.  Library first:

>>> from nbdid.download import DownloadSettings, police                # doctest: +SKIP
>>> settings = DownloadSettings.from_env(cache_dir="~/nbdid-cache")    # doctest: +SKIP
>>> report = police.download("2014-04", "2014-04", ["merseyside"], "crime",
...                          settings=settings)                        # doctest: +SKIP

Modules
-------
``settings``      :class:`DownloadSettings` (cache, mirror, offline, retries, keys)
``cache``         the trustworthy cache (atomic, verified, manifest, locks)
``client``        :class:`Downloader`: HTTP with retries, resume, mirror, Range reads
``police``        police.uk street-level archives (minimal archive set, members only)
``land_registry`` HM Land Registry Price Paid yearly files
``nomis``         NOMIS API tables (business counts, population, households, WACG)
``statxplore``    DWP Stat-Xplore Open Data API (CiLIF, benefit combinations)
``ons``           ONS lookups (ArcGIS), IMD 2019 File 7, SAPE workbooks
``outputs``       writing into ``--out`` folders with ``nbdid-download.json``

:data:`SOURCES` names one entry point per source for ``nbdid download`` and a later
``nbdid build``.  See ``docs/download.md``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from nbdid.download.cache import Cache
from nbdid.download.client import Downloader, DownloadError, FetchRecord, mirror_url
from nbdid.download.settings import DownloadSettings, default_cache_dir

__all__ = [
    "SOURCES",
    "Cache",
    "DownloadError",
    "DownloadSettings",
    "Downloader",
    "FetchRecord",
    "Source",
    "default_cache_dir",
    "mirror_url",
]


@dataclass(frozen=True)
class Source:
    """A downloadable source: the function to call and what it fetches.

    ``func`` is imported on first use (``module:function``); every function takes its
    source-specific arguments, ``out`` and the keywords ``settings``, ``force``,
    ``log`` and ``downloader``, and returns a report with ``to_dict()``.
    """

    name: str
    target: str
    description: str
    keys: tuple[str, ...] = ()

    @property
    def func(self) -> Callable[..., Any]:
        # imported here: the source's module loads only when its download runs (the CLI lists sources without importing them)
        import importlib

        mod, fn = self.target.split(":")
        return getattr(importlib.import_module(mod), fn)


SOURCES: dict[str, Source] = {s.name: s for s in (
    Source("police", "nbdid.download.police:download",
           "police.uk street-level crime: the street files of chosen forces and months"),
    Source("land-registry", "nbdid.download.land_registry:download",
           "HM Land Registry Price Paid yearly files pp-YYYY.csv"),
    Source("business-counts", "nbdid.download.nomis:business_counts",
           "NOMIS UK Business Counts (local units) by MSOA"),
    Source("population", "nbdid.download.nomis:population",
           "NOMIS small-area population estimates by LSOA and single year of age",
           ("NOMIS_API_KEY (optional)",)),
    Source("households", "nbdid.download.nomis:households",
           "NOMIS Census 2011 households (KS105EW) by LSOA"),
    Source("wacg", "nbdid.download.nomis:wacg",
           "NOMIS DWP working-age client group by LSOA (to Nov 2016)"),
    Source("cilif", "nbdid.download.statxplore:cilif",
           "Stat-Xplore children in relative low income families", ("STATXPLORE_API_KEY",)),
    Source("benefit-combinations", "nbdid.download.statxplore:benefit_combinations",
           "Stat-Xplore people on out-of-work benefits", ("STATXPLORE_API_KEY",)),
    Source("statxplore", "nbdid.download.statxplore:run_query",
           "any Stat-Xplore query saved as JSON", ("STATXPLORE_API_KEY",)),
    Source("nomis", "nbdid.download.nomis:download_table", "any NOMIS table"),
    Source("lookup", "nbdid.download.ons:lookup",
           "ONS Open Geography Portal lookups (pinned ArcGIS Hub items)"),
    Source("imd", "nbdid.download.ons:imd", "IMD 2019 File 7 (scores, ranks, deciles)"),
    Source("postcodes", "nbdid.download.ons:nspl",
           "ONS postcode directory (NSPL): postcode -> 2011 LSOA, for Price Paid sales"),
    Source("sape", "nbdid.download.ons:sape",
           "ONS small-area population estimates workbooks (LSOA, single year of age)"),
)}
"""Source name -> :class:`Source` (the names of ``nbdid download SOURCE``)."""
