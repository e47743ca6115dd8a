"""DWP Stat-Xplore Open Data API: table queries, and their JSON cubes as CSV exports.

``POST https://stat-xplore.dwp.gov.uk/webapi/rest/v1/table`` with the header
``APIKey: <key>`` and a JSON query (``database``, ``measures``, ``dimensions``,
``recodes``).  The key is free: register at https://stat-xplore.dwp.gov.uk, open the
Account page and copy the "Open Data API Access" key into ``STATXPLORE_API_KEY``.
The key is sent only in the header; it is never part of the cache key, the manifest
or a message.  The API allows a limited number of requests per hour per key
(2,000 when last documented): a 429 answer is retried after ``Retry-After``.

The answer is a cube: ``fields[i].items[j]`` (labels and value URIs; a *Total*
item has no URI) and ``cubes[<measure>].values``, an array nested in the order of
the fields.  :func:`write_export_csv` turns a cube with one area field and one date
field (every other field reduced to one value, e.g. by a recode) into the layout of
Stat-Xplore's own "Download as CSV" export, which
:func:`nbdid.data_prep.statxplore.read_statxplore` and ``nbdid ingest dwp`` read:
title block, ``Filters:``, the header row of periods, the area rows and a ``Total``
row.

Presets build the queries the study needs:

``cilif``  (:func:`cilif`)
    Children in relative low income families (``CILIF_REL``), one row per area
    (MSOA by default, or wards), one column per financial year.
``benefit-combinations``  (:func:`benefit_combinations`)
    People on out-of-work benefits (``Ben_Com`` up to 2018, ``Ben_Com_New`` from
    May 2019), one row per area, one column per quarter.

Field and value-set ids not confirmed by two independent sources are marked in
:data:`PRESETS` and can be overridden; a query saved from Stat-Xplore's web interface
("Open Data API Query (.json)") runs unchanged with :func:`run_query`.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import product
from pathlib import Path
from typing import Any

from nbdid.download.client import Downloader, DownloadError, FetchRecord
from nbdid.download.outputs import install, out_dir, record_provenance
from nbdid.download.settings import ENV_STATXPLORE_KEY, DownloadSettings
from nbdid.errors import InputError

__all__ = [
    "PRESETS",
    "REGISTER_HINT",
    "TABLE_URL",
    "StatXploreReport",
    "benefit_combinations",
    "cilif",
    "cube_to_rows",
    "query_table",
    "run_query",
    "write_export_csv",
]

TABLE_URL = "https://stat-xplore.dwp.gov.uk/webapi/rest/v1/table"
REGISTER_HINT = (
    f"Stat-Xplore needs a free API key: register at https://stat-xplore.dwp.gov.uk, open "
    f"the Account page, copy the 'Open Data API Access' key and set {ENV_STATXPLORE_KEY}"
)

PRESETS: dict[str, dict[str, Any]] = {
    "cilif": {
        "database": "str:database:CILIF_REL",
        "measure": "str:count:CILIF_REL:V_F_CILIF_REL",
        "date_field": "str:field:CILIF_REL:F_CILIF_DATE:DATE_NAME",
        "date_value": "str:value:CILIF_REL:F_CILIF_DATE:DATE_NAME:C_CILIF_YEAR:{period}",
        "levels": {
            # field (GB_COA: "National - Regional - LA - OAs (GB)") and value set
            "msoa": ("str:field:CILIF_REL:V_F_CILIF_REL:GB_COA",
                     "V_C_MASTERGEOG11_MSOA_TO_LA"),  # value set inferred
            "ward": ("str:field:CILIF_REL:V_F_CILIF_REL:WARD_CODE",
                     "V_C_MASTERGEOG11_WARD_TO_LA_NI"),
        },
    },
    "Ben_Com": {
        "database": "str:database:Ben_Com",
        "measure": "str:count:Ben_Com:V_F_BENCOM",
        "date_field": "str:field:Ben_Com:F_BENCOM_QTR:DATE_NAME",
        "date_value": "str:value:Ben_Com:F_BENCOM_QTR:DATE_NAME:C_BENCOM_QTR:{period}",
        "oow_field": "str:field:Ben_Com:V_F_BENCOM:OOW",
        "oow_value": "str:value:Ben_Com:V_F_BENCOM:OOW:C_BENCOM_OOW:{k}",
        "levels": {"msoa": ("str:field:Ben_Com:V_F_BENCOM:COA_2011",
                            "V_C_MASTERGEOG11_MSOA_TO_LA")},  # value set inferred
    },
    "Ben_Com_New": {
        "database": "str:database:Ben_Com_New",
        "measure": "str:count:Ben_Com_New:V_F_BENCOM_NEW",
        "date_field": "str:field:Ben_Com_New:F_BENCOM_QTR_NEW:DATE_NAME",
        "date_value": "str:value:Ben_Com_New:F_BENCOM_QTR_NEW:DATE_NAME:C_BENCOM_QTR_NEW:{period}",
        "oow_field": "str:field:Ben_Com_New:V_F_BENCOM_NEW:OOW",
        "oow_value": "str:value:Ben_Com_New:V_F_BENCOM_NEW:OOW:C_BENCOM_OOW:{k}",
        "levels": {"msoa": ("str:field:Ben_Com_New:V_F_BENCOM_NEW:COA_2011",
                            "V_C_MASTERGEOG11_MSOA_TO_LA")},  # value set inferred
    },
}
"""Database, measure, field and value-set ids of the presets (see the module notes)."""

BENCOM_NEW_FROM = 201905
"""First quarter (YYYYMM) served by ``Ben_Com_New``; earlier ones come from ``Ben_Com``."""
OOW_CATEGORIES = range(1, 8)
_DATE_HINT = re.compile(r"date|year|month|quarter|qtr|time", re.IGNORECASE)


def _validate_cube(path: Path) -> None:
    try:
        doc = json.loads(path.read_text(encoding="utf-8-sig"))
    except ValueError:
        raise DownloadError("Stat-Xplore's answer is not JSON") from None
    if not isinstance(doc, dict) or "cubes" not in doc or "fields" not in doc:
        msg = doc.get("message") if isinstance(doc, dict) else None
        raise DownloadError(f"Stat-Xplore's answer has no table ({msg or 'no cubes/fields'})")


def query_table(dl: Downloader, query: dict[str, Any]) -> tuple[dict[str, Any], FetchRecord]:
    """POST ``query`` to the table endpoint; return the cube and its cache record.

    Raises
    ------
    InputError
        No API key (the message says where to register, for free).
    DownloadError
        The key is refused, the query is invalid, or the service keeps failing.
    """
    key = dl.settings.statxplore_key
    if not key and not dl.settings.offline:
        raise InputError(REGISTER_HINT)
    body = json.dumps(query, sort_keys=True, separators=(",", ":")).encode("utf-8")
    try:
        rec = dl.fetch(TABLE_URL, method="POST", body=body,
                       headers={"Content-Type": "application/json",
                                "Accept": "application/json"},
                       secret_headers={"APIKey": key} if key else None,
                       validate=_validate_cube)
    except DownloadError as err:
        status = getattr(err, "status", None)
        if status in (401, 403):
            raise DownloadError(f"Stat-Xplore refused the API key (HTTP {status}); check "
                                f"{ENV_STATXPLORE_KEY} (the key on your Stat-Xplore Account "
                                "page)") from None
        if status in (400, 404, 422):
            raise DownloadError(f"Stat-Xplore rejected the query (HTTP {status}): a database, "
                                "field or value id is wrong; check it with Stat-Xplore's "
                                "/schema endpoint or save the query from the web interface "
                                "and run it with --query") from None
        raise
    return json.loads(rec.path.read_text(encoding="utf-8-sig")), rec


def _item_label(item: dict[str, Any]) -> str:
    labels = item.get("labels") or [""]
    return str(labels[0])


def _item_code(item: dict[str, Any]) -> str | None:
    uris = item.get("uris") or []
    return str(uris[0]).rsplit(":", 1)[-1] if uris else None


def cube_to_rows(cube: dict[str, Any], measure: str | None = None
                 ) -> tuple[list[dict[str, Any]], list[list[tuple[str, str | None]]], str]:
    """The cube's fields, their items and a flat list of cells.

    Returns
    -------
    fields, items, measure_label
        ``fields``: ``{uri, label}`` per field; ``items``: per field a list of
        ``(label, code)`` (``code`` is ``None`` for a Total item); the cells are
        read with :func:`cell_values`.
    """
    fields = [{"uri": f.get("uri"), "label": f.get("label", "")} for f in cube["fields"]]
    items = [[(_item_label(i), _item_code(i)) for i in f.get("items", [])]
             for f in cube["fields"]]
    meas = cube.get("measures") or [{}]
    mlabel = str(meas[0].get("label", ""))
    if measure is not None:
        mlabel = next((str(m.get("label", "")) for m in meas if m.get("uri") == measure), mlabel)
    return fields, items, mlabel


def cell_values(cube: dict[str, Any], measure: str | None = None) -> dict[tuple[int, ...], Any]:
    """``{(i0, i1, ...): value}`` of the cube (one index per field, row-major)."""
    cubes = cube["cubes"]
    if measure is None:
        if len(cubes) != 1:
            raise DownloadError(f"the cube has {len(cubes)} measures; choose one")
        measure = next(iter(cubes))
    if measure not in cubes:
        raise DownloadError(f"measure {measure} is not in the cube")
    values = cubes[measure]["values"]
    shape = [len(f.get("items", [])) for f in cube["fields"]]
    out = {}
    for idx in product(*[range(n) for n in shape]):
        v = values
        try:
            for k in idx:
                v = v[k]
        except (IndexError, TypeError):
            raise DownloadError(f"the cube's values do not match its fields {shape}") from None
        out[idx] = v
    return out


def _fmt(v: Any) -> str:
    if v is None:
        return ".."
    if isinstance(v, float) and v.is_integer():
        return str(int(v))
    return str(v)


def write_export_csv(
    cube: dict[str, Any],
    target: Path,
    *,
    measure: str | None = None,
    database_label: str | None = None,
) -> dict[str, Any]:
    """Write ``cube`` in the layout of a Stat-Xplore CSV export (area rows x period columns).

    The cube must have exactly one field with several items besides the date field
    (fields with one item are written as filters).  A Total item of the date field
    is dropped (it is not a period); a Total item of the area field becomes the
    ``Total`` row.  Missing cells are written as ``..``.

    Returns a summary: ``row_field``, ``column_field``, ``areas``, ``periods``, ``filters``.
    """
    fields, items, mlabel = cube_to_rows(cube, measure)
    cells = cell_values(cube, measure)
    varying = [k for k, it in enumerate(items) if len(it) > 1]
    single = [k for k, it in enumerate(items) if len(it) == 1]
    if any(len(it) == 0 for it in items):
        raise DownloadError("the cube has a field without items")
    datey = [k for k in range(len(fields))
             if _DATE_HINT.search(str(fields[k]["uri"])) or _DATE_HINT.search(fields[k]["label"])]
    if len(varying) == 2:
        col = next((k for k in varying if k in datey), varying[1])
        row = next(k for k in varying if k != col)
    elif len(varying) == 1:
        row = varying[0]
        col = next((k for k in single if k in datey), None)
        if col is None:
            raise DownloadError("the cube has no date field; add one to the query")
    else:
        raise DownloadError(
            f"the cube has {len(varying)} fields with several values; keep one area field "
            "and one date field (reduce the others to one value or a total)")
    filters = [k for k in range(len(fields)) if k not in (row, col)]
    col_items = [(j, lab) for j, (lab, code) in enumerate(items[col])
                 if not (code is None and lab.strip().lower() == "total")]
    dbl = database_label or str((cube.get("database") or {}).get("label", "")) or "Stat-Xplore"
    rows_out = 0
    with open(target, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh, quoting=csv.QUOTE_MINIMAL)
        w.writerow(["Stat-Xplore"])
        w.writerow([])
        w.writerow([dbl])
        w.writerow([f"{fields[row]['label']} by {fields[col]['label']}"])
        w.writerow([f"Counting: {mlabel}"])
        w.writerow([])
        w.writerow(["Filters:"])
        w.writerow(["Default Summation", mlabel])
        for k in filters:
            w.writerow([fields[k]["label"], items[k][0][0]])
        w.writerow([])
        w.writerow([fields[col]["label"], *[lab for _, lab in col_items]])
        w.writerow([fields[row]["label"], ""])
        total_row = None
        for i, (lab, code) in enumerate(items[row]):
            idx = [0] * len(fields)
            idx[row] = i
            vals = []
            for j, _ in col_items:
                idx[col] = j
                vals.append(_fmt(cells[tuple(idx)]))
            if code is None and lab.strip().lower() == "total":
                total_row = ["Total", *vals]
                continue
            w.writerow([lab, *vals])
            rows_out += 1
        if total_row is not None:
            w.writerow(total_row)
        w.writerow([])
        w.writerow(["Source: Department for Work and Pensions (Stat-Xplore Open Data API)"])
    return {"row_field": fields[row]["label"], "column_field": fields[col]["label"],
            "areas": rows_out, "periods": [lab for _, lab in col_items],
            "filters": {fields[k]["label"]: items[k][0][0] for k in filters}}


@dataclass
class StatXploreReport:
    """What a Stat-Xplore download wrote (one dict per file)."""

    out: Path
    files: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"out": str(self.out), "files": self.files}


def _areas(areas: str | Iterable[str]) -> list[str]:
    if isinstance(areas, str):
        if areas.startswith("@"):
            p = Path(areas[1:])
            try:
                text = p.read_text(encoding="utf-8-sig")
            except OSError as err:
                raise InputError(f"cannot read the area list: {err.strerror or err}",
                                 file=p) from None
            items = re.split(r"[\s,;]+", text)
        else:
            items = areas.split(",")
    else:
        items = list(areas)
    out = [s.strip().upper() for s in items if s and s.strip()]
    bad = [s for s in out if not re.fullmatch(r"[EWSN]\d{8}", s)]
    if bad:
        raise InputError(f"'{bad[0]}' is not an ONS area code (e.g. E02001234)",
                         column="--areas")
    if not out:
        raise InputError("no area code given (e.g. --areas E02001234,E02001235 or "
                         "--areas @codes.txt)", column="--areas")
    return list(dict.fromkeys(out))


def _area_recode(field_id: str, valueset: str, codes: Sequence[str]) -> dict[str, Any]:
    value = field_id.replace("str:field:", "str:value:", 1)
    return {"map": [[f"{value}:{valueset}:{c}"] for c in codes], "total": False}


def _run(dl: Downloader, query: dict[str, Any], folder: Path, name: str, *, force: bool,
         report: StatXploreReport, files: dict, extra: dict | None = None) -> None:
    cube, rec = query_table(dl, query)
    summary: dict[str, Any] = {}

    def write(tmp: Path) -> None:
        summary.update(write_export_csv(cube, tmp, measure=(query.get("measures") or [None])[0]))

    path, sha, status = install(folder / name, write, force=force)
    entry = {"path": str(path), "database": query.get("database"), "url": TABLE_URL,
             "final_url": rec.final_url, "cube_sha256": rec.sha256, "query": query,
             "retrieved_at": rec.retrieved_at, "from_cache": rec.from_cache, "sha256": sha,
             "status": status, **summary, **(extra or {})}
    report.files.append(entry)
    files[name] = {k: v for k, v in entry.items() if k != "path"}


def _open(settings, log, downloader):
    own = downloader is None
    return own, downloader or Downloader(settings or DownloadSettings.from_env(), log=log)


def run_query(
    query: dict[str, Any] | str | Path,
    out_file: str | Path,
    *,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> StatXploreReport:
    """Run a Stat-Xplore query (a dict or a JSON file) and write the CSV export ``out_file``."""
    if not isinstance(query, dict):
        p = Path(query)
        try:
            query = json.loads(p.read_text(encoding="utf-8-sig"))
        except OSError as err:
            raise InputError(f"cannot read the query: {err.strerror or err}", file=p) from None
        except ValueError as err:
            raise InputError(f"the query is not JSON ({err})", file=p) from None
    if not isinstance(query, dict) or "database" not in query or "measures" not in query:
        raise InputError("a Stat-Xplore query needs 'database' and 'measures' (and "
                         "'dimensions')")
    out_file = Path(out_file)
    folder = out_dir(out_file.parent)
    report = StatXploreReport(out=folder)
    own, dl = _open(settings, log, downloader)
    files: dict = {}
    try:
        _run(dl, query, folder, out_file.name, force=force, report=report, files=files)
        record_provenance(folder, "statxplore", files, {"database": query.get("database")})
    finally:
        if own:
            dl.close()
    return report


def cilif_query(codes: Sequence[str], years: Sequence[int], *, level: str = "msoa",
                geography_field: str | None = None, valueset: str | None = None
                ) -> dict[str, Any]:
    """The CILIF_REL query: ``codes`` (areas) x financial years starting in ``years``."""
    p = PRESETS["cilif"]
    if level not in p["levels"]:
        raise InputError(f"level must be one of {', '.join(p['levels'])}, not '{level}'",
                         column="--level")
    gf, vs = p["levels"][level]
    gf, vs = geography_field or gf, valueset or vs
    return {
        "database": p["database"],
        "measures": [p["measure"]],
        "recodes": {
            gf: _area_recode(gf, vs, codes),
            p["date_field"]: {"map": [[p["date_value"].format(period=y)] for y in years],
                              "total": False},
        },
        "dimensions": [[gf], [p["date_field"]]],
    }


def _int_list(spec: str | Iterable[int | str], what: str, pattern: str) -> list[int]:
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = []
    for it in items:
        s = str(it).strip()
        if not s:
            continue
        if not re.fullmatch(pattern, s):
            raise InputError(f"'{s}' is not a {what}", column=f"--{what.split()[0]}s")
        out.append(int(s))
    if not out:
        raise InputError(f"no {what} given", column=f"--{what.split()[0]}s")
    return sorted(dict.fromkeys(out))


def cilif(
    areas: str | Iterable[str],
    years: str | Iterable[int | str],
    out: str | Path,
    *,
    level: str = "msoa",
    geography_field: str | None = None,
    valueset: str | None = None,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> StatXploreReport:
    """Children in relative low income families by area and financial year.

    Parameters
    ----------
    areas
        ONS codes (MSOA ``E02...`` or ward ``E05...`` by ``level``), a comma list or
        ``@FILE`` with one code per line.
    years
        Financial years by their first calendar year (``2014`` = 2014/15).
    level
        ``msoa`` or ``ward``.
    geography_field, valueset
        Override the preset's ids (see :data:`PRESETS`).
    out
        Folder for the CSV file.
    settings
        Download settings (default: from the environment).
    force
        Replace files in ``out`` that differ from the download.
    log
        Called with one-line progress messages.
    downloader
        An open :class:`~nbdid.download.client.Downloader` to reuse.

    Writes ``OUT/cilif_<level>_<first>-<last>.csv`` in the Stat-Xplore export layout.
    """
    codes = _areas(areas)
    ys = _int_list(years, "year", r"(19|20)\d\d")
    q = cilif_query(codes, ys, level=level, geography_field=geography_field,
                    valueset=valueset)
    folder = out_dir(out)
    report = StatXploreReport(out=folder)
    own, dl = _open(settings, log, downloader)
    files: dict = {}
    try:
        _run(dl, q, folder, f"cilif_{level}_{ys[0]}-{ys[-1]}.csv", force=force, report=report,
             files=files, extra={"areas_requested": len(codes)})
        record_provenance(folder, "statxplore cilif", files, {"years": ys, "level": level})
    finally:
        if own:
            dl.close()
    return report


def bencom_query(database: str, codes: Sequence[str], quarters: Sequence[int], *,
                 geography_field: str | None = None, valueset: str | None = None
                 ) -> dict[str, Any]:
    """Out-of-work benefit claimants (categories 1-7 combined) by area and quarter."""
    p = PRESETS[database]
    gf, vs = p["levels"]["msoa"]
    gf, vs = geography_field or gf, valueset or vs
    return {
        "database": p["database"],
        "measures": [p["measure"]],
        "recodes": {
            gf: _area_recode(gf, vs, codes),
            p["date_field"]: {"map": [[p["date_value"].format(period=q)] for q in quarters],
                              "total": False},
            p["oow_field"]: {"map": [[p["oow_value"].format(k=k) for k in OOW_CATEGORIES]],
                             "total": False},
        },
        "dimensions": [[gf], [p["date_field"]], [p["oow_field"]]],
    }


def benefit_combinations(
    areas: str | Iterable[str],
    quarters: str | Iterable[int | str],
    out: str | Path,
    *,
    geography_field: str | None = None,
    valueset: str | None = None,
    settings: DownloadSettings | None = None,
    force: bool = False,
    log: Callable[[str], None] | None = None,
    downloader: Downloader | None = None,
) -> StatXploreReport:
    """People on out-of-work benefits by MSOA and quarter (``YYYYMM``, e.g. ``201305``).

    Quarters before May 2019 come from ``Ben_Com``, later ones from ``Ben_Com_New``
    (one file per database: ``OUT/benefit_combinations_<db>_<first>-<last>.csv``).
    The out-of-work categories 1-7 are combined into one value (a filter).
    """
    codes = _areas(areas)
    qs = _int_list(quarters, "quarter (YYYYMM)", r"20\d\d(0[1-9]|1[0-2])")
    folder = out_dir(out)
    report = StatXploreReport(out=folder)
    own, dl = _open(settings, log, downloader)
    files: dict = {}
    try:
        for db, part in (("Ben_Com", [q for q in qs if q < BENCOM_NEW_FROM]),
                         ("Ben_Com_New", [q for q in qs if q >= BENCOM_NEW_FROM])):
            if not part:
                continue
            q = bencom_query(db, codes, part, geography_field=geography_field,
                             valueset=valueset)
            _run(dl, q, folder, f"benefit_combinations_{db}_{part[0]}-{part[-1]}.csv",
                 force=force, report=report, files=files,
                 extra={"areas_requested": len(codes)})
        record_provenance(folder, "statxplore benefit-combinations", files, {"quarters": qs})
    finally:
        if own:
            dl.close()
    return report
