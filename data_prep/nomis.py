"""NOMIS UK Business Counts (local units, VAT and/or PAYE) by MSOA -> ward panel rows.

Two layouts are read:

API CSV (``https://www.nomisweb.co.uk/api/v01/dataset/NM_141_1.data.csv?...``)
    one observation per line with upper-case columns ``DATE``/``DATE_NAME``,
    ``GEOGRAPHY``, ``GEOGRAPHY_NAME``, ``GEOGRAPHY_CODE``, ``INDUSTRY_NAME``,
    ``EMPLOYMENT_SIZEBAND_NAME``, ``LEGAL_STATUS_NAME``, ``MEASURES_NAME``,
    ``OBS_VALUE``, ``OBS_STATUS`` ... (any ``select=`` subset holding a geography, a date
    and ``OBS_VALUE``).  Dimensions with several categories are reduced to their
    ``Total`` category; a dimension with several categories and no total is an error.
Web download (the "Download data" CSV of a Nomis table query)
    title lines (dataset name, copyright, the fixed dimensions such as
    ``"Industry","Total"``), a header row ``"<geography type>","mnemonic","2019",...``
    (area name, area code, one column per year) and footnotes after a blank line.

Counts (rounded to the nearest 5 by ONS at small-area level) are apportioned from MSOAs
to wards by the share of each MSOA's LSOAs in the ward (or their population) and rounded
with the largest-remainder rule per MSOA, so ward counts add up to the published MSOA
counts (see :func:`nbdid.data_prep.population.apportion_counts`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nbdid.data_prep.dwp import (
    _apportion_weights,
    _read_dens,
    _split,
    attach_exposure,
    match_areas,
    panel_rows,
    to_design,
)
from nbdid.data_prep.guards import add_notice, check_counts
from nbdid.data_prep.population import apportion_counts
from nbdid.data_prep.schema import IngestResult
from nbdid.data_prep.statxplore import MISSING_MARKERS, read_csv_rows
from nbdid.data_prep.wards import Boundaries, resolve_geography
from nbdid.data_prep.yearmap import YearMap, denominator_estimate
from nbdid.errors import InputError
from nbdid.registry import INDICATORS

__all__ = ["ingest_nomis", "read_business_counts"]

_DIMENSIONS = ("INDUSTRY", "EMPLOYMENT_SIZEBAND", "LEGAL_STATUS", "MEASURES", "MEASURE",
               "FREQ", "SEX", "ITEM")
_YEAR_RE = re.compile(r"^(?:March\s+)?((?:19|20)\d\d)$", re.IGNORECASE)


def _number(cell: str, path: Path, line: int, column: str) -> float:
    c = cell.strip().replace(",", "")
    if c in MISSING_MARKERS:
        return np.nan
    try:
        return float(c)
    except ValueError:
        raise InputError(f"'{cell.strip()}' is not a number", file=path, row=line,
                         column=column) from None


def _read_api(path: Path, rows: list[list[str]]) -> tuple[pd.DataFrame, dict[str, Any]]:
    header = [c.strip().upper() for c in rows[0]]
    raw_header = [c.strip() for c in rows[0]]
    geo = next((c for c in ("GEOGRAPHY_CODE", "GEOGRAPHY_NAME") if c in header), None)
    date = next((c for c in ("DATE_NAME", "DATE", "DATE_CODE") if c in header), None)
    for need, have in (("GEOGRAPHY_CODE or GEOGRAPHY_NAME", geo), ("DATE_NAME or DATE", date),
                       ("OBS_VALUE", "OBS_VALUE" if "OBS_VALUE" in header else None)):
        if have is None:
            raise InputError(f"missing column {need} (Nomis API CSV)", file=path, row=1,
                             column=need.split(" ")[0])
    body = [r for r in rows[1:] if any(c.strip() for c in r)]
    if not body:
        raise InputError("the file has a header but no rows", file=path)
    width = len(header)
    short = next((i for i, r in enumerate(rows[1:], start=2) if r and len(r) < width
                  and any(c.strip() for c in r)), None)
    if short is not None:
        raise InputError(f"row has {len(rows[short - 1])} cells, the header {width}",
                         file=path, row=short)
    df = pd.DataFrame([r[:width] for r in body], columns=header, dtype="str")
    df["_line"] = [i for i, r in enumerate(rows[1:], start=2) if any(c.strip() for c in r)]
    meta: dict[str, Any] = {"layout": "nomis_api", "dimensions_reduced": {}}
    for dim in _DIMENSIONS:
        col = f"{dim}_NAME" if f"{dim}_NAME" in df else (dim if dim in df else None)
        if col is None:
            continue
        cats = list(dict.fromkeys(df[col].str.strip()))
        if len(cats) <= 1:
            meta["dimensions_reduced"][dim] = cats[0] if cats else ""
            continue
        if dim in ("MEASURES", "MEASURE"):
            keep = next((c for c in cats if c.casefold() in ("value", "count")), None)
        else:
            keep = next((c for c in cats if c.casefold().startswith("total")
                         or c.casefold() in ("all", "all industries")), None)
        if keep is None:
            raise InputError(
                f"{col} has {len(cats)} categories ({', '.join(cats[:4])} ...) and no "
                "total; download the Total category (or filter the file)",
                file=path, column=col,
            )
        df = df[df[col].str.strip() == keep]
        meta["dimensions_reduced"][dim] = keep
    out = pd.DataFrame({
        "area": df[geo].str.strip(),
        "period": df[date].str.strip(),
        "value": [_number(v, path, int(ln), raw_header[header.index("OBS_VALUE")])
                  for v, ln in zip(df["OBS_VALUE"], df["_line"], strict=True)],
        "line": df["_line"].astype(int),
    })
    if "GEOGRAPHY_NAME" in df and geo == "GEOGRAPHY_CODE":
        out["area_name"] = df["GEOGRAPHY_NAME"].str.strip()
    return out.reset_index(drop=True), meta


def _read_web(path: Path, rows: list[list[str]], h: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    header = [c.strip() for c in rows[h]]
    folded = [c.casefold() for c in header]
    code_j = folded.index("mnemonic")
    name_j = 0 if code_j != 0 else None
    title = [" ".join(c.strip() for c in r if c.strip()) for r in rows[:h] if any(
        c.strip() for c in r)]
    fixed = {r[0].strip(): r[1].strip() for r in rows[:h] if len([c for c in r if c.strip()]) == 2}
    val_cols = [(j, c) for j, c in enumerate(header) if j not in (code_j, name_j) and c]
    if not val_cols:
        raise InputError("no value columns after 'mnemonic'", file=path, row=h + 1)
    periods = {}
    for j, c in val_cols:
        m = _YEAR_RE.match(c)
        if m:
            periods[j] = m.group(1)
    if len(periods) != len(val_cols):
        date = next((v for k, v in fixed.items() if k.casefold() in ("date", "year")), None)
        if len(val_cols) == 1 and date:
            periods = {val_cols[0][0]: _YEAR_RE.match(date).group(1)
                       if _YEAR_RE.match(date) else date}
        else:
            bad = next(c for j, c in val_cols if j not in periods)
            raise InputError(
                f"column '{bad}' is not a year; download with the date in the columns "
                "(and totals for the other dimensions)", file=path, row=h + 1, column=bad,
            )
    recs = []
    for i in range(h + 1, len(rows)):
        r = rows[i]
        if not any(c.strip() for c in r):
            break  # footnotes follow a blank line
        if len([c for c in r if c.strip()]) == 1 and i > h + 1:
            break
        code = r[code_j].strip() if code_j < len(r) else ""
        if not code:
            raise InputError("empty area code", file=path, row=i + 1, column="mnemonic")
        for j, per in periods.items():
            cell = r[j] if j < len(r) else ""
            recs.append({"area": code, "area_name": r[name_j].strip() if name_j is not None
                         else code, "period": per,
                         "value": _number(cell, path, i + 1, header[j]), "line": i + 1})
    if not recs:
        raise InputError("the table has no data rows", file=path, row=h + 1)
    return pd.DataFrame(recs), {"layout": "nomis_web", "title": title[:2], "fixed": fixed}


def read_business_counts(path: str | PathLike[str]) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Read UK Business Counts from a Nomis API CSV or a Nomis web download.

    Returns
    -------
    data, metadata
        ``data``: ``area`` (code or name), optional ``area_name``, ``period`` (str,
        e.g. ``"2019"``), ``value`` (float, NaN for suppressed cells) and ``line``.
        ``metadata``: ``layout`` (``nomis_api``/``nomis_web``) and what was read.
    """
    p = Path(path)
    rows, enc = read_csv_rows(p)
    first = next((r for r in rows if any(c.strip() for c in r)), [])
    if any(c.strip().upper() == "OBS_VALUE" for c in first):
        while rows and not any(c.strip() for c in rows[0]):
            rows = rows[1:]
        data, meta = _read_api(p, rows)
    else:
        h = next((i for i, r in enumerate(rows)
                  if any(c.strip().casefold() == "mnemonic" for c in r)), None)
        if h is None:
            raise InputError(
                "not a Nomis business counts file: expected an API CSV (with OBS_VALUE) or "
                "a web download with a 'mnemonic' column", file=p,
            )
        data, meta = _read_web(p, rows, h)
    meta["encoding"] = enc
    dup = data.duplicated(["area", "period"])
    if dup.any():
        r = data[dup].iloc[0]
        raise InputError(f"area {r['area']} has two values for {r['period']}", file=p,
                         row=int(r["line"]))
    meta["missing_cells"] = int(data["value"].isna().sum())
    return data, meta


def ingest_nomis(
    file: str | PathLike[str],
    lookup: str | PathLike[str] | pd.DataFrame,
    *,
    indicator: str = "business_units",
    population: str | PathLike[str] | pd.DataFrame | None = None,
    denominator: str | None = None,
    periods: Sequence[str] | str | None = None,
    apportion_population: str | PathLike[str] | None = None,
    design: str | PathLike[str] | pd.DataFrame | None = None,
    boundaries: Boundaries = "study",
    year_map: YearMap | None = None,
) -> Any:
    """Ward panel rows from UK Business Counts by MSOA (Nomis API CSV or web download).

    Parameters
    ----------
    file
        Nomis API CSV or web download CSV.
    lookup
        ONS LSOA11 (MSOAs apportioned) or MSOA11 (best fit) to ward lookup.
    indicator
        Indicator key (default ``business_units``).
    population
        Ward denominators (path or table), joined through the year map.
    denominator
        Denominator key (default: the indicator's, ``working_age``).
    periods
        Years to keep (list or comma-separated; default all).
    apportion_population
        ONS SAPE LSOA file: apportion MSOAs by LSOA population.
    design
        Wards to keep (file or table); default the report's 58 wards.
    boundaries
        ``"study"`` (default) or ``"lookup"`` areas for the report's wards.
    year_map
        Year map choices.

    Returns
    -------
    IngestResult
        ``kind="panel"``.
    """

    data, meta = read_business_counts(file)
    geo = resolve_geography(lookup, design, boundaries=boundaries)
    lk = geo.lookup
    weights = _apportion_weights(lk, apportion_population)
    lines = data.drop_duplicates("area")
    keys, rep = match_areas(lines["area"].reset_index(drop=True), weights)
    if rep["areas_matched"] == 0 and "area_name" in data:
        keys, rep = match_areas(lines["area_name"].reset_index(drop=True), weights)
        data = data.assign(area=data["area_name"])
        lines = data.drop_duplicates("area")
    if rep["areas_matched"] == 0:
        raise InputError(f"no area of the file is in the lookup (e.g. "
                         f"'{lines['area'].iloc[0]}')", file=file)
    k = dict(zip(lines["area"], keys, strict=True))
    all_periods = sorted(data["period"].unique(), key=str)
    wanted = _split(periods)
    periods = wanted if wanted else all_periods
    bad = [p for p in periods if p not in all_periods]
    if bad:
        raise InputError(f"period '{bad[0]}' is not in the file ({', '.join(all_periods)})",
                         file=file)
    d = data[data["period"].isin(periods)].assign(key=data["area"].map(k))
    d = d[d["key"].notna()]
    n_missing = int(d["value"].isna().sum())
    if n_missing:
        r = d[d["value"].isna()].iloc[0]
        raise InputError(f"suppressed/missing count for {r['area']} in {r['period']}",
                         file=file, row=int(r["line"]))
    check_counts(d["value"], file=file, lines=d["line"], column=d["period"].astype(str))
    split = apportion_counts(d[["key", "period", "value"]], weights)
    wards = (split.groupby(["ward", "ward_name", "la", "period"], sort=False)["value"].sum()
             .reset_index().rename(columns={"period": "period_label", "value": "count"}))
    denominator = denominator or (
        INDICATORS[indicator].denominator_key if indicator in INDICATORS else None)
    n_wards = int(wards["ward"].nunique())
    dwards, crep = to_design(wards, geo.design)
    require = False
    exp_rep: dict[str, Any] = {}
    if population is not None:
        if denominator is None:
            raise InputError("pass --denominator for an indicator not in the registry")
        dens, dens_file = _read_dens(population)
        dwards = attach_exposure(dwards, dens, denominator, file=dens_file, indicator=indicator,
                                 year_map=year_map)
        exp_rep = {"year_map": [f"{indicator} {p}: {denominator_estimate(denominator, p)[1]}"
                                for p in periods]}
        require = True
    table = panel_rows(dwards, indicator, periods)
    multi = weights.groupby("key")["ward"].nunique()
    report = {
        "source": "ONS/Nomis UK Business Counts (local units)",
        "file": str(file), **meta,
        "lookup": "lookup table" if isinstance(lookup, pd.DataFrame) else str(lookup),
        "lookup_level": lk.attrs.get("level"),
        "lookup_vintage": lk.attrs.get("vintage"),
        "indicator": indicator, "periods": periods, **rep,
        "areas_split_over_several_wards": int(len(set(multi[multi > 1].index) & set(d["key"]))),
        "apportioning": str(weights.loc[weights["key"].isin(set(d["key"])), "method"].iloc[0]),
        "rounding": "apportioned counts rounded to whole numbers by the largest-remainder "
                    "rule per MSOA and year: ward counts add up exactly to the published "
                    "MSOA counts",
        "exposure": (f"'{denominator}' from {population if isinstance(population, (str, PathLike)) else 'table'}"
                     if population is not None else "none"),
        **exp_rep,
        "wards": n_wards, **geo.report, **crep,
    }
    if exp_rep:
        add_notice(report, "year map", "denominators: " + "; ".join(exp_rep["year_map"]))
    return IngestResult(table=table, kind="panel", report=report, require_exposure=require)
