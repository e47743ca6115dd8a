"""``nbdid download SOURCE``: fetch public source files into a folder (and the cache).

Only parses arguments, calls :mod:`nbdid.download` and prints.  Every source takes
``--out DIR`` and the cache/network options (``--cache``, ``--mirror``, ``--offline``,
``--refresh``, ``--retries``, ``--timeout``, ``--force``, ``--quiet``).  See
``docs/download.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from nbdid.errors import InputError

_EPILOG = (
    "Environment: NBDID_CACHE (cache folder), NBDID_MIRROR (mirror URL), NBDID_OFFLINE, "
    "NOMIS_API_KEY (optional), STATXPLORE_API_KEY (free registration at "
    "https://stat-xplore.dwp.gov.uk). Each OUT folder gets nbdid-download.json, the "
    "provenance of its files."
)


def _common() -> argparse.ArgumentParser:
    c = argparse.ArgumentParser(add_help=False)
    g = c.add_argument_group("cache and network")
    g.add_argument("--out", required=True, metavar="DIR", help="folder to write the files to")
    g.add_argument("--cache", metavar="DIR",
                   help="download cache folder (default: $NBDID_CACHE or the per-user cache)")
    g.add_argument("--mirror", metavar="URL",
                   help="fetch http(s)://HOST/PATH from URL/HOST/PATH (default: $NBDID_MIRROR)")
    g.add_argument("--offline", action="store_true", default=None,
                   help="use the cache only, never the network")
    g.add_argument("--refresh", action="store_true", default=None,
                   help="download again even when cached")
    g.add_argument("--retries", type=int, metavar="N", help="retries after a failure (4)")
    g.add_argument("--timeout", type=float, metavar="S", help="network time-out in seconds (60)")
    g.add_argument("--pause", type=float, metavar="S",
                   help="seconds between API pages downloaded (NOMIS, ArcGIS; default 1)")
    g.add_argument("--force", action="store_true", help="replace files in --out that differ")
    g.add_argument("--json", action="store_true", help="print the report as JSON")
    g.add_argument("--quiet", action="store_true", help="no progress lines")
    return c


def register(subparsers: Any) -> None:
    """Add the ``download`` sub-command."""
    from nbdid.download import SOURCES

    p = subparsers.add_parser(
        "download",
        help="download public source files (police.uk, Land Registry, NOMIS, Stat-Xplore, ONS)",
        description=("Download the public files the indicators and their denominators need "
                     "into --out, through a verified cache. " + _EPILOG),
    )
    sub = p.add_subparsers(dest="source", metavar="SOURCE", parser_class=type(p))
    sub.required = True
    common = [_common()]

    def add(name: str, **kw) -> argparse.ArgumentParser:
        s = sub.add_parser(name, parents=common, help=SOURCES[name].description,
                           description=SOURCES[name].description + ". " + _EPILOG, **kw)
        s.set_defaults(func=run_download)
        return s

    s = add("police")
    s.add_argument("--from", dest="months_from", required=True, metavar="YYYY-MM",
                   help="first month (from 2010-12)")
    s.add_argument("--to", dest="months_to", required=True, metavar="YYYY-MM", help="last month")
    s.add_argument("--forces", required=True, action="append", metavar="IDS",
                   help="police.uk force ids, comma-separated (e.g. merseyside,west-yorkshire)")
    s.add_argument("--method", choices=("auto", "range", "whole"), default="auto",
                   help="read archive members by HTTP Range (auto/range) or download whole "
                        "archives (whole); default auto")
    s.add_argument("--latest-archive", metavar="YYYY-MM",
                   help="newest archive that may be used (default: two months ago)")

    s = add("land-registry")
    s.add_argument("--years", required=True, help="years, e.g. 1995 or 2007-2013,2018-2024")

    s = add("business-counts")
    s.add_argument("--years", required=True, help="years, e.g. 2011,2021")
    s.add_argument("--geography", default="TYPE297", help="NOMIS geography (TYPE297 = MSOA 2011)")

    s = add("population")
    s.add_argument("--years", required=True, help="mid-years, e.g. 2011,2020 (NM_2010_1: 2011-2020)")
    s.add_argument("--geography", default="TYPE298", help="NOMIS geography (TYPE298 = LSOA 2011)")

    s = add("households")
    s.add_argument("--geography", default="TYPE298", help="NOMIS geography (TYPE298 = LSOA 2011)")

    s = add("wacg")
    s.add_argument("--dates", required=True, help="NOMIS dates, e.g. 2011-05,2016-11")
    s.add_argument("--geography", default="TYPE298", help="NOMIS geography (TYPE298 = LSOA 2011)")
    s.add_argument("--dataset", default="NM_105_1", help="NOMIS dataset id (NM_105_1)")

    for name, periods in (("cilif", "--years"), ("benefit-combinations", "--quarters")):
        s = add(name)
        s.add_argument("--areas", required=True,
                       help="ONS area codes, comma-separated, or @FILE with one per line")
        if periods == "--years":
            s.add_argument("--years", required=True,
                           help="financial years by their first year, e.g. 2014,2020")
            s.add_argument("--level", choices=("msoa", "ward"), default="msoa")
        else:
            s.add_argument("--quarters", required=True, help="quarters YYYYMM, e.g. 201305,202105")
        s.add_argument("--geography-field", help="override the Stat-Xplore area field id")
        s.add_argument("--valueset", help="override the Stat-Xplore area value set id")

    s = add("statxplore")
    s.add_argument("--query", required=True, metavar="FILE",
                   help="query JSON (e.g. saved from Stat-Xplore as 'Open Data API Query')")
    s.add_argument("--name", metavar="FILE.csv", help="output file name (default: from --query)")

    s = add("nomis")
    s.add_argument("--dataset", required=True, help="NOMIS dataset id, e.g. NM_141_1")
    s.add_argument("--param", action="append", default=[], metavar="KEY=VALUE",
                   help="query parameter (repeat), e.g. geography=TYPE297")
    s.add_argument("--select", help="columns, comma-separated")
    s.add_argument("--name", metavar="FILE.csv", help="output file name (default: DATASET.csv)")

    s = add("lookup")
    s.add_argument("lookup", nargs="?", metavar="NAME",
                   help="pinned lookup: " + ", ".join(
                       ["lsoa11-wd19", "lsoa11-wd17", "lsoa11-lsoa21", "lsoa11-lsoa21-best-fit",
                        "lsoa11-names", "oa11-lsoa11-msoa11"]))
    s.add_argument("--item", help="any ArcGIS Hub item id instead of NAME")

    add("imd")

    s = add("postcodes")
    s.add_argument("--item", help="ArcGIS item id of an NSPL release (default: the pinned one)")

    s = add("sape")
    s.add_argument("--years", required=True, help="mid-years, e.g. 2011,2020")
    s.add_argument("--url", help="workbook URL for an edition not listed")
    s.add_argument("--sheet", help="sheet name (default: 'Mid-YYYY Persons')")


def _settings(args: argparse.Namespace):
    from nbdid.download import DownloadSettings

    if args.retries is not None and args.retries < 0:
        raise InputError(f"--retries must be >= 0, not {args.retries}", column="--retries")
    return DownloadSettings.from_env(
        cache_dir=args.cache, mirror=args.mirror, offline=args.offline, refresh=args.refresh,
        retries=args.retries, timeout=args.timeout, pause=args.pause)


def _kwargs(args: argparse.Namespace) -> tuple[list, dict]:
    s = args.source
    if s == "police":
        return [args.months_from, args.months_to, args.forces, args.out], {
            "method": args.method, "latest_archive": args.latest_archive}
    if s == "land-registry":
        return [args.years, args.out], {}
    if s in ("business-counts", "population"):
        return [args.years, args.out], {"geography": args.geography}
    if s == "households":
        return [args.out], {"geography": args.geography}
    if s == "wacg":
        return [args.dates, args.out], {"geography": args.geography, "dataset": args.dataset}
    if s == "cilif":
        return [args.areas, args.years, args.out], {
            "level": args.level, "geography_field": args.geography_field,
            "valueset": args.valueset}
    if s == "benefit-combinations":
        return [args.areas, args.quarters, args.out], {
            "geography_field": args.geography_field, "valueset": args.valueset}
    if s == "statxplore":
        from pathlib import Path

        name = args.name or f"statxplore_{Path(args.query).stem}.csv"
        return [args.query, Path(args.out) / name], {}
    if s == "nomis":
        from pathlib import Path

        params = {}
        for kv in args.param:
            k, eq, v = kv.partition("=")
            if not eq or not k.strip():
                raise InputError(f"--param '{kv}' is not KEY=VALUE", column="--param")
            params[k.strip()] = v.strip()
        select = [c for c in (args.select or "").split(",") if c.strip()] or None
        name = args.name or f"{args.dataset.upper()}.csv"
        return [args.dataset, params, Path(args.out) / name], {"select": select}
    if s == "lookup":
        if not args.lookup and not args.item:
            raise InputError("give a lookup NAME or --item ID", column="NAME")
        return [args.lookup, args.out], {"item": args.item}
    if s == "imd":
        return [args.out], {}
    if s == "postcodes":
        return [args.out], {"item": args.item} if args.item else {}
    if s == "sape":
        return [args.years, args.out], {"url": args.url, "sheet": args.sheet}
    raise InputError(f"unknown source '{s}'")  # pragma: no cover - argparse checks


def run_download(args: argparse.Namespace) -> int:
    """Handler of ``nbdid download SOURCE``."""
    from nbdid.download import SOURCES, Downloader

    settings = _settings(args)
    quiet = args.quiet

    def log(msg: str) -> None:
        if not quiet:
            print(f"nbdid download {args.source}: {msg}", file=sys.stderr, flush=True)

    pos, kw = _kwargs(args)
    with Downloader(settings, log=log) as dl:
        report = SOURCES[args.source].func(*pos, **kw, force=args.force, downloader=dl)
    rep = report.to_dict()
    if args.json:
        print(json.dumps(rep, indent=1, default=str))
        return 0
    for f in rep.get("files", []):
        print(f"{f.get('status', 'written')}: {f['path']}")
    for m in rep.get("missing", []):
        print(f"nbdid download {args.source}: warning: {m['month']} {m['force']}: no street "
              f"file in {m['archive']}.zip", file=sys.stderr)
    for a in rep.get("archives", []):
        log(f"{a['archive']}.zip ({a['method']}): months {a['months'][0]}..{a['months'][-1]}")
    log(f"provenance: {rep['out']}/nbdid-download.json; cache: {settings.cache_dir}")
    return 0
