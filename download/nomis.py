"""NOMIS API (``https://www.nomisweb.co.uk/api/v01/``): CSV tables, paged past the row cap.

A NOMIS data call returns at most 25,000 rows to a guest (100,000 with a key) and
says nothing when it cuts a table short: the response is HTTP 200 either way.
:func:`fetch_table` therefore always asks for the ``RECORD_OFFSET`` and
``RECORD_COUNT`` columns, reads the table's size from the first page, and requests
``RecordOffset=<rows so far>`` until it holds exactly ``RECORD_COUNT`` rows; a page
that starts at the wrong row, a page without rows before the end, or a ``RECORD_COUNT``
that changes between pages is an error.  Every page is a cache entry; the optional
key (``NOMIS_API_KEY``, sent as ``uid=``) is never part of the cache key or manifest.

Memory stays bounded by one page: each page is checked and appended, as it arrives, to
a temporary file under ``<cache>/tmp/`` (the table in the publisher's layout, removed
when the :class:`NomisTable` is closed or its writer dies); the presets then read that
file row by row (the population pivot keeps one compact row of 92 values per LSOA)
and write their output through a temporary file renamed into place.

Datasets the study needs (presets writing files the existing readers accept):

``business-counts``  (:func:`business_counts`)
    UK Business Counts, local units, ``NM_141_1``, by MSOA 2011 (``TYPE297``), all
    industries / size bands / legal statuses: API CSV read by
    :func:`nbdid.data_prep.nomis.read_business_counts`.
``population``  (:func:`population`)
    ONS small-area population estimates, ``NM_2010_1``, by LSOA 2011 (``TYPE298``),
    persons, all ages and single years 0 ... 90+ (``c_age`` 200, 101 ... 191), one file
    per year in the SAPE layout read by :func:`nbdid.data_prep.population.read_sape`
    (``sape_mid<YEAR>_lsoa_nomis.csv``).  About 3.2 million rows a year: 128 guest
    pages, 32 with a key.
``households``  (:func:`households`)
    Census 2011 KS105EW household composition, all households, by LSOA 2011.  The
    NOMIS id is found by searching the dataset list for ``KS105EW`` (falling back to
    ``NM_605_1``); the file is in the Census bulk layout read by
    :func:`nbdid.data_prep.population.read_census_households`.
``wacg``  (:func:`wacg`)
    DWP working-age client group (``NM_105_1``; last period November 2016) by LSOA 2011:
    every statistical group, the total of every other dimension (found from the
    dataset's code lists), as API CSV.  The dataset's title is checked first.

:func:`download_table` fetches any other NOMIS table.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import re
import shutil
import time
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from nbdid.download.client import Downloader, DownloadError, FetchRecord
from nbdid.download.outputs import install, out_dir, record_provenance
from nbdid.download.settings import DownloadSettings
from nbdid.errors import InputError
from nbdid.outputs import new_temp_file, remove_dead_temps

__all__ = [
    "API",
    "NomisTable",
    "business_counts",
    "data_url",
    "download_table",
    "fetch_table",
    "households",
    "population",
    "resolve_dataset",
    "wacg",
]

API = "https://www.nomisweb.co.uk/api/v01"
BUSINESS_COUNTS = "NM_141_1"
POPULATION = "NM_2010_1"
KS105EW_FALLBACK = "NM_605_1"
WACG = "NM_105_1"
TYPE_MSOA11 = "TYPE297"
TYPE_LSOA11 = "TYPE298"
PAGING_COLUMNS = ("RECORD_OFFSET", "RECORD_COUNT")
_DATASET_RE = re.compile(r"^NM_\d+_\d+$", re.IGNORECASE)


def data_url(dataset: str, params: Mapping[str, Any]) -> str:
    """URL of a NOMIS data call (``.data.csv``) with ``params`` in the given order."""
    if not _DATASET_RE.match(dataset):
        raise InputError(f"'{dataset}' is not a NOMIS dataset id (NM_<n>_<n>)",
                         column="--dataset")
    q = urlencode({k: str(v) for k, v in params.items()}, safe=",.")
    return f"{API}/dataset/{dataset.upper()}.data.csv" + (f"?{q}" if q else "")


def _unlink(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)


@dataclass
class NomisTable:
    """A NOMIS table assembled from its pages, spooled to a file on disk.

    Use it as a context manager (or call :meth:`close`): the spooled file is removed
    then (and, failing that, when the object is garbage-collected).

    Attributes
    ----------
    header
        Column names.
    path
        The spooled file, in the publisher's layout: the first page's header line and
        every page's data lines, byte for byte (a page without a final line break gets
        one).
    n_rows
        Number of data rows (blank lines not counted).
    record_count
        ``RECORD_COUNT`` reported by NOMIS.
    pages
        The cache records of the pages.
    """

    dataset: str
    params: dict[str, str]
    header: list[str]
    path: Path
    n_rows: int
    record_count: int | None
    pages: list[FetchRecord] = field(default_factory=list)
    _cleanup: weakref.finalize = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._cleanup = weakref.finalize(self, _unlink, Path(self.path))

    def close(self) -> None:
        """Remove the spooled file."""
        self._cleanup()

    def __enter__(self) -> NomisTable:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def iter_rows(self) -> Iterator[list[str]]:
        """The data rows (lists of strings), in order, read from the spooled file."""
        with open(self.path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            next(reader, None)
            for r in reader:
                if any(c.strip() for c in r):
                    yield r

    def column(self, name: str) -> list[str]:
        j = self.header.index(name)
        return [r[j] for r in self.iter_rows()]

    @property
    def rows(self) -> list[list[str]]:
        """Every data row in memory (small tables only; prefer :meth:`iter_rows`)."""
        return list(self.iter_rows())

    @property
    def raw(self) -> bytes:
        """The spooled file's bytes in memory (small tables only; prefer :attr:`path`)."""
        return Path(self.path).read_bytes()


def _validate_page(path: Path) -> None:
    head = path.read_bytes()[:4096].decode("utf-8-sig", "replace")
    first = head.splitlines()[0] if head.strip() else ""
    if "OBS_VALUE" not in first.upper():
        snippet = " ".join(head.split())[:120]
        raise DownloadError(f"NOMIS did not send a data table (first line: '{snippet}'); "
                            "check the dataset id and parameters")


def _split_header(data: bytes) -> tuple[bytes, bytes]:
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    i = data.find(b"\n")
    if i < 0:
        return data, b""
    return data[: i + 1], data[i + 1:]


def fetch_table(
    dl: Downloader,
    dataset: str,
    params: Mapping[str, Any],
    *,
    select: Sequence[str] | None = None,
) -> NomisTable:
    """Fetch a whole NOMIS table through ``RecordOffset`` paging (see the module notes).

    Parameters
    ----------
    dl
        An open :class:`~nbdid.download.client.Downloader`.
    dataset
        NOMIS id such as ``NM_141_1``.
    params
        Query parameters (``geography``, ``date``, dimensions, ``measures``).
    select
        Columns to return (``RECORD_OFFSET`` and ``RECORD_COUNT`` are added).

    Returns
    -------
    NomisTable
        The table spooled page by page to a temporary file under ``<cache>/tmp/``
        (close it, or use it in a ``with`` block, to remove that file).

    Raises
    ------
    DownloadError
        A page is missing rows, starts at the wrong row, or the table changed
        between pages; or NOMIS sent something other than a CSV table.
    """
    params = {k: str(v) for k, v in params.items()}
    if select is not None:
        cols = [c.upper() for c in select]
        cols += [c for c in PAGING_COLUMNS if c not in cols]
        if "OBS_VALUE" not in cols:
            cols.insert(0, "OBS_VALUE")
        params["select"] = ",".join(cols)
    secret = {"uid": dl.settings.nomis_key} if dl.settings.nomis_key else None
    folder = dl.cache.root / "tmp"
    folder.mkdir(parents=True, exist_ok=True)
    remove_dead_temps(folder)  # left by a download that was killed
    spool = new_temp_file(folder, prefix=f".{dataset.upper()}.data.csv.", suffix=".tmp")
    try:
        with open(spool, "wb") as fh:
            header, n_rows, expected, pages = _spool_pages(dl, dataset, params, secret, fh)
    except BaseException:
        _unlink(spool)
        raise
    return NomisTable(dataset=dataset, params=params, header=header, path=spool,
                      n_rows=n_rows, record_count=expected, pages=pages)


def _spool_pages(dl: Downloader, dataset: str, params: dict[str, str],
                 secret: dict[str, str] | None,
                 fh: Any) -> tuple[list[str], int, int | None, list[FetchRecord]]:
    """Fetch and check every page, appending the table to ``fh`` page by page."""
    header: list[str] | None = None
    n_rows = 0
    expected: int | None = None
    pages: list[FetchRecord] = []
    while True:
        offset = n_rows
        url = data_url(dataset, {**params, "RecordOffset": offset})
        rec = dl.fetch(url, secret_params=secret, validate=_validate_page)
        pages.append(rec)
        data = rec.path.read_bytes()
        hraw, rest = _split_header(data)
        parsed = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline="")))
        hdr = [c.strip().upper() for c in parsed[0]]
        page_rows = [r for r in parsed[1:] if any(c.strip() for c in r)]
        if header is None:
            header = hdr
            fh.write(hraw)
        elif hdr != header:
            raise DownloadError(f"{url}: the columns differ from the first page's; run with "
                                "--refresh")
        if "RECORD_COUNT" not in header:
            raise DownloadError(f"{url}: NOMIS did not report RECORD_COUNT, so a cut table "
                                "could not be told from a whole one; add RECORD_COUNT to "
                                "select")
        j = header.index("RECORD_COUNT")
        counts = {r[j].strip() for r in page_rows if j < len(r)}
        if len(counts) > 1 or (expected is not None and counts and
                               int(next(iter(counts))) != expected):
            raise DownloadError(f"{url}: RECORD_COUNT changed between pages (the table "
                                "changed on the server); run again with --refresh")
        if counts:
            expected = int(next(iter(counts)))
        if "RECORD_OFFSET" in header and page_rows:
            k = header.index("RECORD_OFFSET")
            if page_rows[0][k].strip() != str(offset):
                raise DownloadError(f"{url}: NOMIS returned rows from offset "
                                    f"{page_rows[0][k].strip()}, not {offset}")
        if not page_rows:
            if expected is not None and offset < expected:
                raise DownloadError(f"{url}: NOMIS returned no rows after {offset:,} of "
                                    f"{expected:,}; run again (or with --refresh)")
            break
        n_rows += len(page_rows)
        if rest and not rest.endswith(b"\n"):
            rest += b"\r\n" if b"\r\n" in hraw else b"\n"
        fh.write(rest)
        del data, rest, parsed, page_rows  # hold one page at a time
        if expected is not None:
            if n_rows > expected:
                raise DownloadError(f"{url}: NOMIS returned {n_rows:,} rows for a table of "
                                    f"{expected:,}")
            if n_rows == expected:
                break
            dl.log(f"NOMIS {dataset}: {n_rows:,} of {expected:,} rows; next page")
        if not rec.from_cache and dl.settings.pause:
            time.sleep(dl.settings.pause)
    assert header is not None
    return header, n_rows, expected, pages


def _fetch_json(dl: Downloader, url: str) -> Any:
    def check(path: Path) -> None:
        try:
            json.loads(path.read_text(encoding="utf-8-sig"))
        except ValueError:
            raise DownloadError(f"{url}: the answer is not JSON") from None

    rec = dl.fetch(url, validate=check)
    return json.loads(rec.path.read_text(encoding="utf-8-sig"))


def _keyfamilies(doc: Any) -> list[dict]:
    try:
        kf = doc["structure"]["keyfamilies"]
    except (KeyError, TypeError):
        return []
    if not kf:
        return []
    kf = kf.get("keyfamily", []) if isinstance(kf, dict) else kf
    return kf if isinstance(kf, list) else [kf]


def _name(obj: Mapping[str, Any]) -> str:
    n = obj.get("name", "")
    return str(n.get("value", "")) if isinstance(n, Mapping) else str(n)


def resolve_dataset(dl: Downloader, table: str, *, fallback: str | None = None) -> tuple[str, str]:
    """NOMIS id of a census table name such as ``KS105EW`` (search of the dataset list).

    Returns ``(id, how)``; ``how`` says whether it was found by search or is the
    fallback.  Raises :class:`DownloadError` when neither works.
    """
    url = f"{API}/dataset/def.sdmx.json?" + urlencode({"search": f"*{table}*"})
    try:
        fams = _keyfamilies(_fetch_json(dl, url))
    except DownloadError as err:
        if fallback:
            dl.log(f"NOMIS search for {table} failed ({err}); using {fallback}")
            return fallback, f"fallback {fallback} (search failed)"
        raise
    pat = re.compile(rf"\b{re.escape(table)}\b", re.IGNORECASE)
    hits = [f for f in fams if pat.search(_name(f)) or pat.search(str(f.get("id", "")))]
    hits = hits or fams
    if hits:
        return str(hits[0]["id"]), f"search '{table}': {_name(hits[0])}"
    if fallback:
        dl.log(f"NOMIS search for {table} found nothing; using {fallback}")
        return fallback, f"fallback {fallback} (search found nothing)"
    raise DownloadError(f"NOMIS has no dataset matching {table}")


def _codelist(dl: Downloader, dataset: str, dim: str) -> list[tuple[str, str]]:
    doc = _fetch_json(dl, f"{API}/dataset/{dataset}/{dim.lower()}.def.sdmx.json")
    try:
        cl = doc["structure"]["codelists"]["codelist"]
        cl = cl[0] if isinstance(cl, list) else cl
        codes = cl["code"]
    except (KeyError, TypeError, IndexError):
        raise DownloadError(f"NOMIS code list of {dataset} {dim} is not readable") from None
    codes = codes if isinstance(codes, list) else [codes]
    out = []
    for c in codes:
        d = c.get("description", "")
        out.append((str(c.get("value")), str(d.get("value", "")) if isinstance(d, Mapping)
                    else str(d)))
    return out


@dataclass
class NomisReport:
    """What a NOMIS download wrote: one dict per file, and how the query was made."""

    out: Path
    files: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "files": self.files, "notes": self.notes}


def _page_records(t: NomisTable) -> list[dict[str, Any]]:
    return [{"url": p.url, "final_url": p.final_url, "bytes": p.bytes, "sha256": p.sha256,
             "retrieved_at": p.retrieved_at} for p in t.pages]


def _write(report: NomisReport, folder: Path, name: str, write: Callable[[Path], None],
           t: NomisTable, *, force: bool, files: dict, extra: dict | None = None) -> None:
    path, sha, status = install(folder / name, write, force=force)
    entry = {"path": str(path), "dataset": t.dataset, "params": t.params,
             "rows": t.n_rows, "record_count": t.record_count, "sha256": sha,
             "status": status, "pages": _page_records(t), **(extra or {})}
    report.files.append(entry)
    files[name] = {k: v for k, v in entry.items() if k != "path"}


def _copy(t: NomisTable) -> Callable[[Path], None]:
    """Writer of the table in the publisher's layout (the spooled file, byte for byte)."""
    return lambda tmp: shutil.copyfile(t.path, tmp)


def _open(settings, log, downloader):
    own = downloader is None
    return own, downloader or Downloader(settings or DownloadSettings.from_env(), log=log)


def download_table(
    dataset: str,
    params: Mapping[str, Any],
    out_file: str | Path,
    *,
    select: Sequence[str] | None = None,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> NomisReport:
    """Fetch any NOMIS table and write it as one API CSV file ``out_file``."""
    out_file = Path(out_file)
    folder = out_dir(out_file.parent)
    report = NomisReport(out=folder)
    own, dl = _open(settings, log, downloader)
    files: dict = {}
    try:
        with fetch_table(dl, dataset, params, select=select) as t:
            _write(report, folder, out_file.name, _copy(t), t, force=force, files=files)
        record_provenance(folder, "nomis", files, {"dataset": dataset})
    finally:
        if own:
            dl.close()
    return report


def _years(years: str | Iterable[int | str]) -> list[str]:
    items = years.split(",") if isinstance(years, str) else list(years)
    out = []
    for y in items:
        s = str(y).strip()
        if not s:
            continue
        if "-" in s and re.fullmatch(r"\d{4}-\d{4}", s):
            a, b = map(int, s.split("-"))
            out += [str(v) for v in range(a, b + 1)]
        elif re.fullmatch(r"(19|20)\d\d", s):
            out.append(s)
        else:
            raise InputError(f"'{s}' is not a year (e.g. 2011 or 2011-2020)", column="--years")
    if not out:
        raise InputError("no year given", column="--years")
    return sorted(dict.fromkeys(out))


def business_counts(
    years: str | Iterable[int | str],
    out: str | Path,
    *,
    geography: str = TYPE_MSOA11,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> NomisReport:
    """UK Business Counts (local units, all industries and sizes) by MSOA for ``years``.

    Writes ``OUT/business_counts_msoa_<years>.csv`` (NOMIS API CSV).
    """
    ys = _years(years)
    folder = out_dir(out)
    report = NomisReport(out=folder)
    own, dl = _open(settings, log, downloader)
    files: dict = {}
    params = {"geography": geography, "date": ",".join(ys), "industry": "37748736",
              "employment_sizeband": "0", "legal_status": "0", "measures": "20100"}
    select = ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "INDUSTRY_NAME",
              "EMPLOYMENT_SIZEBAND_NAME", "LEGAL_STATUS_NAME", "MEASURES_NAME", "OBS_VALUE",
              "OBS_STATUS_NAME"]
    try:
        name = f"business_counts_msoa_{ys[0]}" + (f"-{ys[-1]}" if len(ys) > 1 else "") + ".csv"
        with fetch_table(dl, BUSINESS_COUNTS, params, select=select) as t:
            _write(report, folder, name, _copy(t), t, force=force, files=files)
        record_provenance(folder, "nomis business-counts", files, {"years": ys})
    finally:
        if own:
            dl.close()
    return report


SINGLE_AGES = "101...191"
"""``c_age`` codes of single years of age 0 ... 90+ in ``NM_2010_1``."""


def _sape_csv(t: NomisTable, year: str) -> Callable[[Path], None]:
    h = t.header
    for need in ("GEOGRAPHY_CODE", "C_AGE", "OBS_VALUE"):
        if need not in h:
            raise DownloadError(f"NOMIS {t.dataset}: column {need} missing from the answer")
    jg, ja, jv = h.index("GEOGRAPHY_CODE"), h.index("C_AGE"), h.index("OBS_VALUE")
    jn = h.index("GEOGRAPHY_NAME") if "GEOGRAPHY_NAME" in h else None
    ages = ["200"] + [str(101 + k) for k in range(91)]
    pos = {a: i for i, a in enumerate(ages)}
    # one row of 92 values per LSOA, streamed from the spooled file; the values are
    # shared (a national year has 3.2 million values but few distinct ones)
    table: dict[str, list[str | None]] = {}
    names: dict[str, str] = {}
    shared: dict[str, str] = {}
    for r in t.iter_rows():
        code, age = r[jg].strip(), r[ja].strip()
        if age not in pos:
            raise DownloadError(f"NOMIS {t.dataset}: unexpected c_age code {age}")
        row = table.get(code)
        if row is None:
            row = table[code] = [None] * len(ages)
        if row[pos[age]] is not None:
            raise DownloadError(f"NOMIS {t.dataset}: {code} has two values for c_age {age}")
        v = r[jv].strip()
        row[pos[age]] = shared.setdefault(v, v)
        if jn is not None:
            names[code] = r[jn].strip()
    del shared
    for code, row in table.items():
        if any(v is None or v == "" for v in row):
            k = next(i for i, v in enumerate(row) if v is None or v == "")
            raise DownloadError(f"NOMIS {t.dataset}: {code} has no value for c_age {ages[k]} "
                                f"in {year}")

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow([f"Mid-{year} population estimates, persons by single year of age, "
                        f"LSOA 2011 (ONS small area population estimates via NOMIS "
                        f"{t.dataset})"])
            w.writerow(["LSOA Code", "LSOA Name", "All Ages",
                        *[str(a) for a in range(90)], "90+"])
            for code in sorted(table):
                w.writerow([code, names.get(code, ""), *table[code]])
    return write


def population(
    years: str | Iterable[int | str],
    out: str | Path,
    *,
    geography: str = TYPE_LSOA11,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> NomisReport:
    """LSOA population by single year of age (``NM_2010_1``), one SAPE-layout file a year.

    Writes ``OUT/sape_mid<YEAR>_lsoa_nomis.csv`` for each year: a title line, then
    ``LSOA Code, LSOA Name, All Ages, 0, ..., 89, 90+`` (read by
    :func:`nbdid.data_prep.population.read_sape`).
    """
    ys = _years(years)
    folder = out_dir(out)
    report = NomisReport(out=folder)
    own, dl = _open(settings, log, downloader)
    files: dict = {}
    try:
        for y in ys:
            params = {"geography": geography, "date": y, "gender": "0",
                      "c_age": f"200,{SINGLE_AGES}", "measures": "20100"}
            with fetch_table(dl, POPULATION, params, select=[
                    "DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "C_AGE",
                    "OBS_VALUE"]) as t:
                _write(report, folder, f"sape_mid{y}_lsoa_nomis.csv", _sape_csv(t, y), t,
                       force=force, files=files, extra={"year": int(y)})
        record_provenance(folder, "nomis population", files, {"years": ys})
    finally:
        if own:
            dl.close()
    return report


def _households_csv(t: NomisTable) -> Callable[[Path], None]:
    h = t.header
    for need in ("GEOGRAPHY_CODE", "OBS_VALUE"):
        if need not in h:
            raise DownloadError(f"NOMIS {t.dataset}: column {need} missing from the answer")
    jc, jv = h.index("GEOGRAPHY_CODE"), h.index("OBS_VALUE")
    jn = h.index("GEOGRAPHY_NAME") if "GEOGRAPHY_NAME" in h else None
    jd = h.index("DATE_NAME") if "DATE_NAME" in h else None
    if "CELL_NAME" in h:
        j = h.index("CELL_NAME")
        cells = {r[j] for r in t.iter_rows()}
    else:
        cells = {"All households"}
    if len(cells) != 1:
        raise DownloadError(f"NOMIS {t.dataset}: expected one household category, got "
                            f"{len(cells)}")
    cell = next(iter(cells)).strip() or "All households"
    if not re.search(r"all (households|categories)", cell, re.IGNORECASE):
        cell = f"All households ({cell})"

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(["date", "geography", "geography code",
                        f"Household Composition: {cell}; measures: Value"])
            for r in t.iter_rows():
                w.writerow([r[jd] if jd is not None else "2011",
                            r[jn] if jn is not None else "", r[jc], r[jv]])
    return write


def households(
    out: str | Path,
    *,
    geography: str = TYPE_LSOA11,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> NomisReport:
    """Census 2011 households (KS105EW, all households) by LSOA, in the Census bulk layout.

    Writes ``OUT/ks105ew_households_lsoa.csv``: ``date, geography, geography code,
    Household Composition: All categories: Household composition; measures: Value``.
    """
    folder = out_dir(out)
    report = NomisReport(out=folder)
    own, dl = _open(settings, log, downloader)
    files: dict = {}
    try:
        ds, how = resolve_dataset(dl, "KS105EW", fallback=KS105EW_FALLBACK)
        report.notes.append(f"KS105EW dataset: {ds} ({how})")
        params = {"geography": geography, "date": "latest", "rural_urban": "0", "cell": "0",
                  "measures": "20100"}
        with fetch_table(dl, ds, params, select=[
                "DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "RURAL_URBAN_NAME",
                "CELL_NAME", "MEASURES_NAME", "OBS_VALUE"]) as t:
            _write(report, folder, "ks105ew_households_lsoa.csv", _households_csv(t), t,
                   force=force, files=files, extra={"dataset_resolution": how})
        record_provenance(folder, "nomis households", files, {"dataset": ds, "how": how})
    finally:
        if own:
            dl.close()
    return report


_SKIP_DIMS = frozenset({"GEOGRAPHY", "TIME", "DATE", "MEASURES", "FREQ", "ITEM"})


def wacg(
    dates: str | Iterable[str],
    out: str | Path,
    *,
    geography: str = TYPE_LSOA11,
    dataset: str = WACG,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> NomisReport:
    """DWP working-age client group by LSOA: every statistical group, totals of the rest.

    Parameters
    ----------
    dates
        NOMIS dates (``2011-05,2016-11`` or ``latest``); the series ends in November 2016.
    out
        Folder for the file.
    geography
        NOMIS geography (``TYPE298`` = LSOA 2011).
    dataset
        NOMIS id of the working-age client group dataset (its title is checked).
    settings
        Download settings (default: from the environment).
    force
        Replace files in ``out`` that differ from the download.
    log
        Called with one-line progress messages.
    downloader
        An open :class:`~nbdid.download.client.Downloader` to reuse.

    Writes ``OUT/wacg_lsoa_<dates>.csv`` (NOMIS API CSV with ``ITEM_NAME``).
    """
    ds = [d.strip() for d in (dates.split(",") if isinstance(dates, str) else dates)
          if str(d).strip()]
    if not ds:
        raise InputError("no date given (e.g. --dates 2011-05,2016-11)", column="--dates")
    folder = out_dir(out)
    report = NomisReport(out=folder)
    own, dl = _open(settings, log, downloader)
    files: dict = {}
    try:
        doc = _fetch_json(dl, f"{API}/dataset/{dataset}.def.sdmx.json")
        fams = _keyfamilies(doc)
        if not fams:
            raise DownloadError(f"NOMIS has no dataset {dataset}")
        title = _name(fams[0])
        if "client group" not in title.lower():
            raise DownloadError(f"NOMIS {dataset} is '{title}', not the working-age client "
                                "group; pass the right --dataset")
        dims = fams[0].get("components", {}).get("dimension", [])
        dims = dims if isinstance(dims, list) else [dims]
        params: dict[str, str] = {"geography": geography, "date": ",".join(ds),
                                  "measures": "20100"}
        select = ["DATE_NAME", "GEOGRAPHY_NAME", "GEOGRAPHY_CODE", "ITEM", "ITEM_NAME"]
        for d in dims:
            ref = str(d.get("conceptref", "")).upper()
            if not ref or ref in _SKIP_DIMS:
                continue
            codes = _codelist(dl, dataset, ref)
            if len(codes) <= 1:
                continue
            total = next((c for c, desc in codes
                          if re.match(r"^\s*(total|all)\b", desc, re.IGNORECASE)), None)
            if total is None:
                raise DownloadError(f"NOMIS {dataset}: dimension {ref} has no total category "
                                    f"({', '.join(desc for _, desc in codes[:4])} ...)")
            params[ref.lower()] = total
            select.append(f"{ref}_NAME")
            report.notes.append(f"{ref} = {total} ({dict(codes)[total]})")
        select += ["MEASURES_NAME", "OBS_VALUE", "OBS_STATUS_NAME"]
        name = "wacg_lsoa_" + "_".join(re.sub(r"[^0-9A-Za-z-]", "", d) for d in ds) + ".csv"
        with fetch_table(dl, dataset, params, select=select) as t:
            _write(report, folder, name, _copy(t), t, force=force, files=files,
                   extra={"title": title})
        record_provenance(folder, "nomis wacg", files, {"dataset": dataset, "title": title,
                                                        "notes": report.notes})
    finally:
        if own:
            dl.close()
    return report
