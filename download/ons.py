"""ONS Open Geography Portal lookups, IMD 2019 File 7 and ONS small-area population workbooks.

Lookups (:func:`lookup`)
    Each lookup is pinned by its ArcGIS Hub item id (service names change with every
    re-publication, item ids do not).  The item's metadata
    (``https://www.arcgis.com/sharing/rest/content/items/<id>?f=json``) gives the
    FeatureServer URL; the table is then read page by page with ``resultOffset``
    (page size = the layer's ``maxRecordCount``), falling back to ``OBJECTID > last``
    paging when the server refuses offsets.  The row count from
    ``returnCountOnly=true`` must be met exactly.  The CSV written has the service's
    columns in the service's order (``LSOA11CD, LSOA11NM, WD19CD, ...``), which
    :func:`nbdid.data_prep.lookups.read_lookup` reads.
IMD 2019 File 7 (:func:`imd`)
    MHCLG's CSV of all ranks, deciles, scores and denominators by LSOA 2011, from the
    gov.uk ``/media/`` URL or, failing that, the older ``attachment_data`` URL; written
    byte for byte (read by :func:`nbdid.data_prep.imd.read_imd`).
SAPE workbooks (:func:`sape`)
    ONS mid-year LSOA population estimates by single year of age (``.xlsx``, or a
    ``.zip`` holding one): the ``Mid-YYYY Persons`` sheet is read with python-calamine
    and written as CSV, cell for cell, title lines included
    (``OUT/sape_midYYYY_lsoa_syoa.csv``, read by
    :func:`nbdid.data_prep.population.read_sape`).  Edition file names are not
    templatable: :data:`SAPE_EDITIONS` lists them; ``url=`` takes any other.
"""

from __future__ import annotations

import csv
import io
import json
import re
import time
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

from nbdid.download.client import Downloader, DownloadError, FetchRecord
from nbdid.download.outputs import install, install_copy, out_dir, record_provenance
from nbdid.download.settings import DownloadSettings
from nbdid.errors import InputError

__all__ = [
    "IMD_URLS",
    "ITEM_URL",
    "LOOKUPS",
    "SAPE_BASE",
    "SAPE_EDITIONS",
    "NSPL_ITEM",
    "OnsReport",
    "arcgis_table",
    "imd",
    "lookup",
    "nspl",
    "sape",
    "sheet_to_csv",
]

ITEM_URL = "https://www.arcgis.com/sharing/rest/content/items/{item}?f=json"

LOOKUPS: dict[str, tuple[str, str]] = {
    "lsoa11-wd19": ("cbf3896924a74e58ac96b7ec66a34071",
                    "LSOA (2011) to Ward (2019) to LAD (2019) lookup, England and Wales"),
    "lsoa11-lsoa21": ("cbfe64cc03d74af982c1afec639bafd1",
                      "LSOA (2011) to LSOA (2021) to LAD (2022) exact-fit lookup (V3)"),
    "lsoa11-lsoa21-best-fit": ("b684a0dbf786473f9563ec0616da2f8b",
                               "LSOA (2011) to LSOA (2021) best-fit lookup (V2)"),
    "lsoa11-names": ("a5b7042782fe4ee99b8477ddf7bfe585", "LSOA (2011) names and codes"),
    # the two below: item id = the hash suffix of the service name seen in public code
    # (LSOA11_WD17_EW_LU_c65dfe9c..., OA11_LSOA11_MSOA11_LAD11_EW_LUv2_b3fe7c68...)
    "lsoa11-wd17": ("c65dfe9ca2fa4b0fa578b65a4d5c9856",
                    "LSOA (2011) to Ward (2017) lookup, England and Wales (study-era wards)"),
    "oa11-lsoa11-msoa11": ("b3fe7c68f4b2420185eaff6284d4c125",
                           "OA (2011) to LSOA (2011) to MSOA (2011) to LAD (2011) lookup"),
}
"""Pinned ONS Hub items: name -> (item id, description).  ``item=`` takes any other id."""

_IMD_FILE = "File_7_-_All_IoD2019_Scores__Ranks__Deciles_and_Population_Denominators_3.csv"
IMD_URLS: tuple[str, ...] = (
    f"https://assets.publishing.service.gov.uk/media/5dc407b440f0b6379a7acc8d/{_IMD_FILE}",
    "https://assets.publishing.service.gov.uk/government/uploads/system/uploads/"
    f"attachment_data/file/845345/{_IMD_FILE}",
)
"""IMD 2019 File 7, tried in this order."""

SAPE_BASE = (
    "https://www.ons.gov.uk/file?uri=/peoplepopulationandcommunity/populationandmigration/"
    "populationestimates/datasets/lowersuperoutputareamidyearpopulationestimates/"
)
SAPE_EDITIONS: dict[int, str] = {
    **{y: "mid2011tomid2014/sapelsoasyoa20112014.xlsx" for y in range(2011, 2015)},
    **{y: f"mid{y}/sape20dt1mid{y}lsoasyoaestimatesformatted.zip" for y in (2015, 2016, 2017)},
    2018: "mid2018sape21dt1a/sape21dt1amid2018on2019lalsoasyoaestimatesformatted.zip",
    2019: "mid2019sape22dt2/sape22dt2mid2019lsoasyoaestimatesunformatted.zip",
    2020: "mid2020sape23dt2/sape23dt2mid2020lsoasyoaestimatesunformatted.xlsx",
}
"""Mid-year -> edition path under :data:`SAPE_BASE` (LSOA 2011, single year of age).

2011-2014 come from the workbook rebased on the 2011 Census (one sheet per year)."""


@dataclass
class OnsReport:
    """What an ONS download wrote (one dict per file)."""

    out: Path
    files: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "files": self.files, "notes": self.notes}


def _open(settings, log, downloader):
    own = downloader is None
    return own, downloader or Downloader(settings or DownloadSettings.from_env(), log=log)


def _rec(r: FetchRecord) -> dict[str, Any]:
    return {"url": r.url, "final_url": r.final_url, "bytes": r.bytes, "sha256": r.sha256,
            "retrieved_at": r.retrieved_at}


# ------------------------------------------------------------------------------------------
# ArcGIS FeatureServer tables
# ------------------------------------------------------------------------------------------


def _json_checker(what: str) -> Callable[[Path], None]:
    def check(path: Path) -> None:
        try:
            doc = json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError:
            raise DownloadError(f"{what}: the answer is not JSON") from None
        if isinstance(doc, dict) and "error" in doc:
            e = doc["error"] or {}
            msg = e.get("message") if isinstance(e, dict) else e
            err = DownloadError(f"{what}: ArcGIS error {e.get('code', '') if isinstance(e, dict) else ''} "
                                f"{msg}")
            err.arcgis = True  # type: ignore[attr-defined]
            raise err
    return check


def _get_json(dl: Downloader, url: str, what: str) -> tuple[Any, FetchRecord]:
    rec = dl.fetch(url, validate=_json_checker(what))
    return json.loads(rec.path.read_text(encoding="utf-8-sig")), rec


def _layer_url(service: str) -> str:
    s = service.rstrip("/")
    if re.search(r"/(FeatureServer|MapServer)/\d+$", s):
        return s
    if re.search(r"/(FeatureServer|MapServer)$", s):
        return s + "/0"
    raise DownloadError(f"'{service}' is not an ArcGIS FeatureServer URL")


@dataclass
class ArcgisTable:
    """A FeatureServer table: columns, rows (dicts), the service URL and the pages read."""

    service_url: str
    name: str
    columns: list[str]
    rows: list[dict[str, Any]]
    count: int | None
    paging: str
    records: list[FetchRecord]


def arcgis_table(dl: Downloader, item: str) -> ArcgisTable:
    """Read the whole table of the ArcGIS Hub item ``item`` (see the module notes).

    Raises
    ------
    DownloadError
        The item has no service URL, the server errors, or the rows read differ from
        the server's count.
    """
    if not re.fullmatch(r"[0-9a-f]{32}", item):
        raise InputError(f"'{item}' is not an ArcGIS item id (32 hex digits)", column="--item")
    records: list[FetchRecord] = []
    meta, rec = _get_json(dl, ITEM_URL.format(item=item), f"ArcGIS item {item}")
    records.append(rec)
    service = meta.get("url") if isinstance(meta, dict) else None
    if not service:
        raise DownloadError(f"ArcGIS item {item} has no service URL (is it a file item?)")
    layer = _layer_url(service)
    info, rec = _get_json(dl, f"{layer}?f=json", f"{layer}")
    records.append(rec)
    columns = [f["name"] for f in info.get("fields", []) if f.get("type") != "esriFieldTypeGeometry"]
    oid = info.get("objectIdField") or next(
        (f["name"] for f in info.get("fields", []) if f.get("type") == "esriFieldTypeOID"),
        "OBJECTID")
    page = int(info.get("maxRecordCount") or 1000)
    supports = (info.get("advancedQueryCapabilities") or {}).get("supportsPagination", True)
    q = f"{layer}/query?"
    cnt, rec = _get_json(dl, q + urlencode({"where": "1=1", "returnCountOnly": "true",
                                             "f": "json"}), f"{layer} count")
    records.append(rec)
    count = cnt.get("count") if isinstance(cnt, dict) else None
    rows: list[dict[str, Any]] = []
    paging = "offset" if supports else "objectid"
    if supports:
        try:
            while count is None or len(rows) < count:
                doc, rec = _get_json(dl, q + urlencode({
                    "where": "1=1", "outFields": "*", "returnGeometry": "false",
                    "orderByFields": oid, "resultOffset": len(rows),
                    "resultRecordCount": page, "f": "json"}), f"{layer} page {len(rows)}")
                records.append(rec)
                feats = doc.get("features") or []
                rows.extend(f.get("attributes", {}) for f in feats)
                if not feats or (count is None and not doc.get("exceededTransferLimit")):
                    break
                dl.log(f"{layer}: {len(rows):,} of {count if count is not None else '?'} rows")
                if not rec.from_cache and dl.settings.pause:
                    time.sleep(dl.settings.pause)
        except DownloadError as err:
            if not getattr(err, "arcgis", False):
                raise
            dl.log(f"{layer}: offset paging refused ({err}); paging by {oid}")
            rows, paging = [], "objectid"
    if paging == "objectid":
        last = -1
        while True:
            doc, rec = _get_json(dl, q + urlencode({
                "where": f"{oid}>{last}", "outFields": "*", "returnGeometry": "false",
                "orderByFields": f"{oid} ASC", "f": "json"}), f"{layer} {oid}>{last}")
            records.append(rec)
            feats = doc.get("features") or []
            if not feats:
                break
            rows.extend(f.get("attributes", {}) for f in feats)
            nxt = max(int(f["attributes"][oid]) for f in feats)
            if nxt <= last:
                raise DownloadError(f"{layer}: {oid} paging does not advance")
            last = nxt
            if count is not None and len(rows) >= count:
                break
            if not rec.from_cache and dl.settings.pause:
                time.sleep(dl.settings.pause)
    if count is not None and len(rows) != count:
        raise DownloadError(f"{layer}: read {len(rows):,} rows but the server counts "
                            f"{count:,}; run again with --refresh")
    ids = [r.get(oid) for r in rows if oid in r]
    if len(ids) != len(set(ids)):
        raise DownloadError(f"{layer}: the pages overlap (duplicate {oid}); run again with "
                            "--refresh")
    if not columns and rows:
        columns = list(rows[0])
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", urlsplit(service).path.rstrip("/").split(
        "/services/")[-1].split("/")[0]) or item
    return ArcgisTable(service_url=service, name=name, columns=columns, rows=rows, count=count,
                       paging=paging, records=records)


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def lookup(
    name: str | None,
    out: str | Path,
    *,
    item: str | None = None,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> OnsReport:
    """Download an ONS lookup table (a pinned ``name`` of :data:`LOOKUPS`, or ``item``).

    Writes ``OUT/<service name>.csv`` (e.g. ``LSOA11_WD19_LAD19_EW_LU.csv``).
    """
    if item is None:
        if name not in LOOKUPS:
            raise InputError(f"unknown lookup '{name}' (known: {', '.join(LOOKUPS)}; or pass "
                             "--item with an ArcGIS Hub item id)", column="--lookup")
        item = LOOKUPS[name][0]
    folder = out_dir(out)
    report = OnsReport(out=folder)
    own, dl = _open(settings, log, downloader)
    try:
        t = arcgis_table(dl, item)

        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as fh:
                w = csv.writer(fh)
                w.writerow(t.columns)
                for r in t.rows:
                    w.writerow([_cell(r.get(c)) for c in t.columns])

        fname = f"{t.name}.csv"
        path, sha, status = install(folder / fname, write, force=force)
        entry = {"path": str(path), "item": item, "lookup": name, "service": t.service_url,
                 "rows": len(t.rows), "count": t.count, "paging": t.paging, "sha256": sha,
                 "status": status, "requests": [_rec(r) for r in t.records]}
        report.files.append(entry)
        record_provenance(folder, "ons lookup", {fname: {k: v for k, v in entry.items()
                                                         if k != "path"}},
                          {"item": item, "lookup": name})
    finally:
        if own:
            dl.close()
    return report


# ------------------------------------------------------------------------------------------
# IMD 2019 File 7
# ------------------------------------------------------------------------------------------


def _check_imd(path: Path) -> None:
    head = path.read_bytes()[:2048].decode("utf-8-sig", "replace")
    first = head.splitlines()[0] if head.strip() else ""
    if "LSOA code (2011)" not in first:
        raise DownloadError("the IMD 2019 File 7 download does not start with the "
                            "'LSOA code (2011)' header (an error page?)")


def imd(
    out: str | Path,
    *,
    urls: Iterable[str] = IMD_URLS,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> OnsReport:
    """Download IMD 2019 File 7 into ``OUT`` byte for byte (``File_7_..._3.csv``)."""
    urls = list(urls)
    folder = out_dir(out)
    report = OnsReport(out=folder)
    own, dl = _open(settings, log, downloader)
    try:
        rec = dl.fetch(urls[0], alternatives=urls[1:], validate=_check_imd)
        name = urls[0].rsplit("/", 1)[-1]
        path, sha, status = install_copy(rec.path, folder / name, force=force)
        entry = {"path": str(path), **_rec(rec), "status": status}
        report.files.append(entry)
        record_provenance(folder, "imd", {name: {k: v for k, v in entry.items() if k != "path"}},
                          {"urls": urls})
    finally:
        if own:
            dl.close()
    return report


# ------------------------------------------------------------------------------------------
# SAPE workbooks
# ------------------------------------------------------------------------------------------


def _workbook_bytes(path: Path) -> tuple[bytes, str]:
    """The workbook inside ``path`` (itself, or the one ``.xlsx``/``.xls`` of a zip)."""
    data = path.read_bytes()
    if not zipfile.is_zipfile(io.BytesIO(data)):
        return data, path.name
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        names = zf.namelist()
        if "[Content_Types].xml" in names:  # an .xlsx is itself a zip
            return data, path.name
        books = [n for n in names if n.lower().endswith((".xlsx", ".xls", ".xlsm"))
                 and not n.startswith("__MACOSX")]
        if not books:
            raise DownloadError(f"{path.name} holds no workbook ({', '.join(names[:5])})")
        persons = [n for n in books if "person" in n.lower()]
        pick = (persons or books)[0]
        return zf.read(pick), pick


def sheet_to_csv(book: bytes, year: int, target: Path, *, sheet: str | None = None) -> str:
    """Write the ``Mid-<year> Persons`` sheet of a workbook as CSV; return the sheet name."""
    # imported here: python-calamine loads only when an ONS workbook is read
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_filelike(io.BytesIO(book))
    names = list(wb.sheet_names)
    if sheet is None:
        pat = re.compile(rf"mid[-_ ]?{year}.*persons", re.IGNORECASE)
        cands = [n for n in names if pat.search(n)]
        if not cands:
            cands = [n for n in names if "persons" in n.lower() and str(year) in n]
        if not cands:
            raise DownloadError(f"no 'Mid-{year} Persons' sheet (sheets: {', '.join(names)})")
        sheet = cands[0]
    elif sheet not in names:
        raise DownloadError(f"no sheet '{sheet}' (sheets: {', '.join(names)})")
    rows = wb.get_sheet_by_name(sheet).to_python(skip_empty_area=False)
    found = False
    with open(target, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        if not any(f"mid-{year}" in str(c).lower() or f"mid {year}" in str(c).lower()
                   for r in rows[:6] for c in r):
            w.writerow([f"Mid-{year} population estimates ({sheet})"])
        for r in rows:
            cells = []
            for v in r:
                if isinstance(v, float) and v.is_integer():
                    cells.append(str(int(v)))
                elif isinstance(v, datetime | date):
                    cells.append(v.isoformat())
                else:
                    cells.append("" if v is None else str(v))
            while cells and cells[-1] == "":
                cells.pop()
            if any(c.strip().lower() == "all ages" for c in cells):
                found = True
            w.writerow(cells)
    if not found:
        raise DownloadError(f"sheet '{sheet}' has no 'All Ages' header: not a single year "
                            "of age SAPE sheet")
    return sheet


def sape(
    years: str | Iterable[int | str],
    out: str | Path,
    *,
    url: str | None = None,
    sheet: str | None = None,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> OnsReport:
    """ONS SAPE LSOA single-year-of-age estimates for ``years``, one CSV per year.

    Parameters
    ----------
    years
        Mid-years (``2011,2020`` or a list); :data:`SAPE_EDITIONS` gives their files.
    url
        Use this workbook (``.xlsx``/``.xls`` or a ``.zip`` holding one) instead, e.g.
        for an edition not listed (then give one year).
    sheet
        Sheet name (default: the ``Mid-YYYY Persons`` sheet).
    out
        Folder for the CSV files.
    settings
        Download settings (default: from the environment).
    force
        Replace files in ``out`` that differ from the download.
    log
        Called with one-line progress messages.
    downloader
        An open :class:`~nbdid.download.client.Downloader` to reuse.
    """
    items = years.split(",") if isinstance(years, str) else list(years)
    ys = []
    for it in items:
        s = str(it).strip()
        if not s:
            continue
        if not re.fullmatch(r"(19|20)\d\d", s):
            raise InputError(f"'{s}' is not a year", column="--years")
        ys.append(int(s))
    ys = sorted(dict.fromkeys(ys))
    if not ys:
        raise InputError("no year given (e.g. --years 2011,2020)", column="--years")
    if url is None:
        missing = [y for y in ys if y not in SAPE_EDITIONS]
        if missing:
            raise InputError(
                f"no known SAPE workbook for mid-{missing[0]} (known: "
                f"{min(SAPE_EDITIONS)}-{max(SAPE_EDITIONS)}); pass --url with the workbook's "
                "address from the ONS page", column="--years")
    elif len(ys) != 1 and sheet is not None:
        raise InputError("--sheet works with one year only", column="--sheet")
    folder = out_dir(out)
    report = OnsReport(out=folder)
    own, dl = _open(settings, log, downloader)
    files: dict = {}
    try:
        books: dict[str, tuple[bytes, str, FetchRecord]] = {}
        for y in ys:
            u = url or SAPE_BASE + SAPE_EDITIONS[y]
            if u not in books:
                rec = dl.fetch(u)
                data, member = _workbook_bytes(rec.path)
                books[u] = (data, member, rec)
            data, member, rec = books[u]
            used: dict[str, str] = {}

            def write(tmp: Path, data=data, y=y, used=used) -> None:
                used["sheet"] = sheet_to_csv(data, y, tmp, sheet=sheet)

            name = f"sape_mid{y}_lsoa_syoa.csv"
            path, sha, status = install(folder / name, write, force=force)
            entry = {"path": str(path), "year": y, **_rec(rec), "workbook": member,
                     "sheet": used.get("sheet"), "sha256": sha, "status": status}
            report.files.append(entry)
            files[name] = {k: v for k, v in entry.items() if k != "path"}
        record_provenance(folder, "ons sape", files, {"years": ys})
    finally:
        if own:
            dl.close()
    return report


# ------------------------------------------------------------------------------------------
# National Statistics Postcode Lookup (NSPL)
# ------------------------------------------------------------------------------------------

DATA_URL = "https://www.arcgis.com/sharing/rest/content/items/{item}/data"
NSPL_ITEM = "1951e70c3cc3483c9e643902d858355b"
"""ArcGIS item of the NSPL of February 2020 (2011 Census geographies: ``lsoa11`` for every
postcode, terminated ones included), as seen in public code that downloads it.  Each
quarterly release is a new item: pass ``item=`` for another one."""
NSPL_COLUMNS: tuple[str, ...] = ("pcds", "doterm", "lsoa11")
"""Columns kept: the postcode, its date of termination and its 2011 LSOA."""


def _check_zip(path: Path) -> None:
    if not zipfile.is_zipfile(path):
        head = path.read_bytes()[:200].decode("utf-8", "replace")
        raise DownloadError(f"the postcode directory download is not a zip archive (starts "
                            f"'{' '.join(head.split())[:80]}')")


def _nspl_member(names: list[str]) -> str:
    """The whole-UK CSV of an NSPL/ONSPD zip (not the per-area ``multi_csv`` files)."""
    cands = [n for n in names if re.search(r"(?:^|/)Data/(?:NSPL|ONSPD)[^/]*\.csv$", n,
                                           re.IGNORECASE)]
    if not cands:
        cands = [n for n in names if re.search(r"(NSPL|ONSPD)[^/]*_UK\.csv$", n, re.IGNORECASE)
                 and "multi_csv" not in n.lower()]
    if len(cands) != 1:
        shown = ", ".join(n for n in names if n.lower().endswith(".csv"))[:300]
        raise DownloadError(f"cannot tell the UK postcode file of the archive (CSV members: "
                            f"{shown or 'none'})")
    return cands[0]


def nspl(
    out: str | Path,
    *,
    item: str = NSPL_ITEM,
    columns: Iterable[str] = NSPL_COLUMNS,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> OnsReport:
    """The ONS postcode directory (NSPL), reduced to the columns the study needs.

    The pinned ArcGIS ``item`` is resolved at run time: its metadata
    (``ITEM_URL``) must describe a postcode directory, and its file
    (``.../items/<item>/data``, a zip of about 200 MB) is downloaded into the cache
    (resumable, verified).  The whole-UK CSV inside is read as a stream and
    ``columns`` (default ``pcds, doterm, lsoa11``) are written to
    ``OUT/<member stem>_<columns>.csv`` (read by
    :func:`nbdid.data_prep.land_registry.read_postcodes`).

    Parameters
    ----------
    out
        Folder for the CSV file.
    item
        ArcGIS item id of the release (default :data:`NSPL_ITEM`).
    columns
        Columns to keep (``pcds`` and ``lsoa11`` are needed by the Land Registry loader).
    settings, force, log, downloader
        As for the other downloads.
    """
    if not re.fullmatch(r"[0-9a-f]{32}", item):
        raise InputError(f"'{item}' is not an ArcGIS item id (32 hex digits)", column="--item")
    cols = [c.strip().lower() for c in columns if c.strip()]
    if not cols:
        raise InputError("no column given", column="--columns")
    folder = out_dir(out)
    report = OnsReport(out=folder)
    own, dl = _open(settings, log, downloader)
    try:
        meta, mrec = _get_json(dl, ITEM_URL.format(item=item), f"ArcGIS item {item}")
        title = str(meta.get("title", "")) if isinstance(meta, dict) else ""
        if "postcode" not in title.lower():
            raise DownloadError(f"ArcGIS item {item} is '{title or '?'}', not a postcode "
                                "directory; pass the item id of an NSPL release")
        rec = dl.fetch(DATA_URL.format(item=item), validate=_check_zip)
        with zipfile.ZipFile(rec.path) as zf:
            member = _nspl_member(zf.namelist())
            rows = [0]

            def write(tmp: Path) -> None:
                with zf.open(member) as raw, open(tmp, "w", newline="", encoding="utf-8") as fh:
                    text = io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace", newline="")
                    reader = csv.reader(text)
                    header = next(reader, None)
                    if header is None:
                        raise DownloadError(f"{member} is empty")
                    low = [h.strip().lower() for h in header]
                    missing = [c for c in cols if c not in low]
                    if missing:
                        raise DownloadError(f"{member} has no column {missing[0]} (columns: "
                                            f"{', '.join(low[:20])} ...)")
                    idx = [low.index(c) for c in cols]
                    w = csv.writer(fh, lineterminator="\n")
                    w.writerow(cols)
                    n = 0
                    for r in reader:
                        if not r:
                            continue
                        w.writerow([r[j].strip() if j < len(r) else "" for j in idx])
                        n += 1
                    rows[0] = n

            name = f"{Path(member).stem}_{'_'.join(cols)}.csv"
            path, sha, status = install(folder / name, write, force=force)
        entry = {"path": str(path), "item": item, "title": title, "member": member,
                 "columns": cols, "rows": rows[0], "sha256": sha, "status": status,
                 **{k: v for k, v in _rec(rec).items() if k != "sha256"},
                 "archive_sha256": rec.sha256, "metadata": _rec(mrec)}
        report.files.append(entry)
        record_provenance(folder, "ons nspl", {name: {k: v for k, v in entry.items()
                                                      if k != "path"}}, {"item": item})
    finally:
        if own:
            dl.close()
    return report
