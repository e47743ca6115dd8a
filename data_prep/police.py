"""Street-level crime from data.police.uk -> ward x year counts (crime, burglary, criminal damage).

Python: :func:`ingest_police`; command line: ``nbdid ingest police --crime-dir DIR
--lookup LSOA_TO_WARD.csv --out PANEL.csv``.

police.uk publishes one CSV per force and month, ``YYYY-MM-<force>-street.csv``, one
row per crime with its 2011 (or, from 2023, 2021) LSOA.  This module

* reads every street file of a folder (any line endings, including bare CR), one file
  at a time, so that all forces for 132 months (about 80 million rows) are counted in
  bounded memory; other files (``-outcomes.csv``, ``-stop-and-search.csv``) are skipped
  and reported;
* classifies crimes: ``crime`` = every type except *Anti-social behaviour*;
  ``burglary`` = *Burglary*; ``criminal_damage`` = *Criminal damage and arson*;
* sums LSOA x month counts to wards through an ONS LSOA-to-ward lookup and to
  financial years (April-March, labelled ``"2010/11"``) or calendar years;
* reports rows without an LSOA, LSOAs outside the lookup, months missing per force and
  period, and design wards without any data;
* guards against partial periods: police.uk starts in December 2010 (financial year
  2010/11 holds 4 months) and Greater Manchester Police published nothing after
  July 2019.  A period in which a ward's force has months missing is refused unless a
  choice is made (``partial_periods``): drop the affected pairs, shorten each period to
  the months every force published (exposure scaled to those months), or keep the
  partial counts; calendar years (``year_type="calendar"``) avoid the 2010/11 gap;
* joins exposures from a denominators table (``nbdid ingest population``) through the
  year map (:mod:`nbdid.data_prep.yearmap`): ``population`` for crime and criminal
  damage, Census 2011 ``households`` for burglary.

``post`` is 1 for periods starting in or after ``post_from`` (default ``2014-04``:
financial year 2014/15 or calendar year 2015 onwards).  The report compares 2010/11
with 2020/21, so a panel of those two years has ``post`` 0 and 1.
"""

from __future__ import annotations

import csv
import re
from collections import Counter
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from nbdid.data_prep.guards import add_notice
from nbdid.data_prep.lookups import (
    aggregate_to_wards,
    read_csv_columns,
    read_header,
    read_lookup,
    read_text,
)
from nbdid.data_prep.schema import IngestResult
from nbdid.data_prep.streaming import (
    Engine,
    clean_strings,
    concat_raw,
    fullmatch,
    read_csv_raw,
    read_csv_strings,
    resolve_engine,
)
from nbdid.data_prep.wards import Boundaries, Geography, design_area_map, resolve_geography
from nbdid.data_prep.yearmap import YearMap, join_denominators
from nbdid.errors import InputError

__all__ = [
    "DEFAULT_POST_FROM",
    "INDICATOR_TYPES",
    "POLICE_UK_FIRST_MONTH",
    "build_panel",
    "classify",
    "count_street_crime",
    "ingest_police",
    "list_crime_files",
    "period_months",
    "period_of_month",
    "read_population",
    "read_street_file",
    "tally_street_crime",
]

STREET_RE = re.compile(r"(\d{4})-(\d{2})-([a-z0-9-]+?)-street\.csv$", re.IGNORECASE)
STREET_COLUMNS: tuple[str, ...] = ("Month", "LSOA code", "Crime type")
ASB = "Anti-social behaviour"
POLICE_UK_FIRST_MONTH = "2010-12"
"""The first month police.uk publishes street-level crime for."""

INDICATOR_TYPES: dict[str, str] = {
    "crime": f"every crime type except '{ASB}'",
    "burglary": "'Burglary'",
    "criminal_damage": "'Criminal damage and arson'",
}
"""How each police indicator is counted from the ``Crime type`` column."""

DEFAULT_POST_FROM = "2014-04"

PartialPeriods = Literal["refuse", "drop-pairs", "shorten", "keep"]
PARTIAL_CHOICES: tuple[str, ...] = ("refuse", "drop-pairs", "shorten", "keep")
YearType = Literal["financial", "calendar"]

_WARD_COUNT_COLUMNS = ["ward", "month", "force", "indicator", "count"]


def classify(crime_type: pd.Series) -> pd.DataFrame:
    """Boolean columns ``crime``, ``burglary``, ``criminal_damage`` for crime types."""
    t = crime_type.astype("string").str.strip().str.casefold()
    return pd.DataFrame(
        {
            "crime": (t != ASB.casefold()).fillna(True).to_numpy(dtype=bool),
            "burglary": (t == "burglary").fillna(False).to_numpy(dtype=bool),
            "criminal_damage": (t == "criminal damage and arson").fillna(False).to_numpy(dtype=bool),
        },
        index=crime_type.index,
    )


def force_of(path: str | PathLike[str]) -> str:
    """Force of a street file from its name (``2014-04-merseyside-street.csv`` -> ``merseyside``)."""
    m = STREET_RE.search(Path(path).name)
    return m.group(3).lower() if m else "unknown"


def list_crime_files(folder: str | PathLike[str]) -> tuple[list[tuple[Path, str]], list[dict]]:
    """Street files of ``folder`` (recursively) with their month, and skipped files.

    Returns
    -------
    (files, skipped)
        ``files``: ``(path, 'YYYY-MM')`` sorted by month; ``skipped``: ``{file, reason}``
        for CSVs that are not street files (outcomes, stop and search, ...).
    """
    d = Path(folder)
    if not d.is_dir():
        raise InputError("not a folder of police.uk CSV files", file=d)
    files, skipped = [], []
    for p in sorted(d.rglob("*.csv")):
        m = STREET_RE.search(p.name)
        if m:
            files.append((p, f"{m.group(1)}-{m.group(2)}"))
        else:
            kind = "outcomes" if "outcomes" in p.name.lower() else (
                "stop and search" if "stop-and-search" in p.name.lower() else "not a street file"
            )
            skipped.append({"file": str(p), "reason": f"{kind} (name not YYYY-MM-<force>-street.csv)"})
    if not files:
        raise InputError(
            "no police.uk street files (YYYY-MM-<force>-street.csv) in the folder", file=d
        )
    return sorted(files, key=lambda x: (x[1], str(x[0]))), skipped


def read_street_file(path: str | PathLike[str], month: str | None = None) -> pd.DataFrame:
    """Read one street file: ``month, lsoa, crime_type`` (strings; lsoa may be NA).

    Raises
    ------
    InputError
        Empty file, not UTF-8, missing columns, or a Month value not ``YYYY-MM``.
    """
    p = Path(path)
    text = read_text(p)
    header = [c.strip() for c in next(csv.reader([text.split("\n", 1)[0]]), [])]
    missing = [c for c in STREET_COLUMNS if c not in header]
    if missing:
        raise InputError(
            f"not a police.uk street file: missing column(s) {', '.join(missing)} "
            f"(found {', '.join(header[:12])})",
            file=p,
            row=1,
            column=missing[0],
        )
    df = read_csv_columns(p, STREET_COLUMNS, text=text)
    df.columns = ["month", "lsoa", "crime_type"]
    _check_months(df, p)
    df["lsoa"] = df["lsoa"].str.upper()
    return df


def _check_months(df: pd.DataFrame, p: Path, first_line: int = 2) -> None:
    bad = ~df["month"].str.fullmatch(r"\d{4}-\d{2}").fillna(False)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"Month must be YYYY-MM, got '{df['month'].iloc[i]}'", file=p, row=i + first_line,
            column="Month",
        )


def read_street_fast(path: str | PathLike[str], engine: Engine | str = "auto") -> pd.DataFrame:
    """:func:`read_street_file` with the streaming reader (same result, same errors)."""
    p = Path(path)
    try:
        df = read_csv_strings(p, STREET_COLUMNS, engine=engine)
        df.columns = ["month", "lsoa", "crime_type"]
        _check_months(df, p)
    except InputError:
        return read_street_file(p)  # raises the error with the exact line and column
    df["lsoa"] = df["lsoa"].str.upper()
    return df


# ----------------------------------------------------------------------------------------
# counting: in memory (all rows at once) and streamed (one file at a time)
# ----------------------------------------------------------------------------------------


def _check_indicators(indicators: Sequence[str]) -> list[str]:
    out = list(indicators)
    for ind in out:
        if ind not in INDICATOR_TYPES:
            raise InputError(
                f"unknown police indicator '{ind}' (choose from {', '.join(INDICATOR_TYPES)})",
                column="--indicators",
            )
    return out


def _lsoa_month_counts(rows: pd.DataFrame, indicators: Sequence[str], by: list[str]) -> pd.DataFrame:
    """``*by, indicator, count`` of rows with an LSOA (``_any`` = every row)."""
    flags = classify(rows["crime_type"])
    has = rows["lsoa"].notna().to_numpy()
    keep = rows.loc[has, by]
    long = []
    g = keep.groupby(by, sort=True).size().rename("count").reset_index()
    g["indicator"] = "_any"
    long.append(g)
    for ind in indicators:
        sub = keep[flags.loc[has, ind].to_numpy()]
        g = sub.groupby(by, sort=True).size().rename("count").reset_index()
        g["indicator"] = ind
        long.append(g)
    return pd.concat(long, ignore_index=True)[[*by, "indicator", "count"]]


def count_street_crime(
    files: Sequence[tuple[Path, str]],
    indicators: Sequence[str] = tuple(INDICATOR_TYPES),
) -> tuple[pd.DataFrame, dict]:
    """Count crimes by LSOA x month x force x indicator, holding every row in memory.

    The reference implementation (and the "in-memory path" of the memory benchmark);
    :func:`tally_street_crime` gives the same ward counts one file at a time.

    Returns
    -------
    (counts, info)
        ``counts``: ``lsoa, month, force, indicator, count`` (rows without LSOA
        excluded; ``indicator == "_any"`` counts every crime type); ``info``: rows read
        per file, rows without LSOA per month, crime types found, months present per
        force, and any file whose Month column disagrees with its name.
    """
    indicators = _check_indicators(indicators)
    parts, per_file, mismatched = [], [], []
    months_by_force: dict[str, set[str]] = {}
    for p, month in files:
        df = read_street_file(p)
        per_file.append({"file": str(p), "month": month, "rows": len(df)})
        months = set(df["month"].dropna())
        if months and months != {month}:
            mismatched.append({"file": str(p), "name_month": month, "data_months": sorted(months)})
        parts.append(df.assign(force=force_of(p)))
        months_by_force.setdefault(force_of(p), set()).add(month)
    rows = pd.concat(parts, ignore_index=True)
    no_lsoa = rows["lsoa"].isna()
    info = {
        "files_read": per_file,
        "rows_read": int(len(rows)),
        "month_mismatch": mismatched,
        "crime_types": {str(k): int(v) for k, v in rows["crime_type"].value_counts(dropna=False).items()},
        "rows_without_lsoa": {
            str(k): int(v) for k, v in rows.loc[no_lsoa, "month"].value_counts().sort_index().items()
        },
        "rows_without_lsoa_total": int(no_lsoa.sum()),
        "months_present": sorted(set(rows["month"]) | {m for _, m in files}),
        "months_by_force": {f: sorted(m) for f, m in sorted(months_by_force.items())},
    }
    counts = _lsoa_month_counts(rows, indicators, ["lsoa", "month", "force"])
    return counts[["lsoa", "month", "force", "indicator", "count"]], info


def _crime_type_counts(counter: Counter) -> dict[str, int]:
    """``value_counts(dropna=False)`` order: by count descending, then first seen."""
    items = sorted(counter.items(), key=lambda kv: -kv[1])
    return {("<NA>" if k is None else str(k)): int(v) for k, v in items}


GROUP_ROWS = 1_000_000
"""Street files are read in groups of about this many rows (bounded memory, few pandas calls)."""


def tally_street_crime(
    files: Sequence[tuple[Path, str]],
    area_map: pd.DataFrame,
    lookup_areas: Sequence[str] | pd.Index,
    indicators: Sequence[str] = tuple(INDICATOR_TYPES),
    *,
    engine: Engine | str = "auto",
    group_rows: int = GROUP_ROWS,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Count crimes into the design's wards, a group of files at a time (bounded memory).

    Parameters
    ----------
    files
        From :func:`list_crime_files`.
    area_map
        ``area, ward`` of the design's wards (:func:`nbdid.data_prep.wards.design_area_map`).
    lookup_areas
        Every LSOA code of the lookup (areas outside it are reported).
    indicators
        Police indicators to count.
    engine
        CSV reader (:mod:`nbdid.data_prep.streaming`).
    group_rows
        Files are read until about this many rows are held, then counted and dropped.

    Returns
    -------
    (ward_counts, unmatched, info)
        ``ward_counts``: ``ward, month, force, indicator, count`` (``_any`` included);
        ``unmatched``: ``area, rows, count`` for LSOAs outside the lookup; ``info`` as
        from :func:`count_street_crime`.
    """
    indicators = _check_indicators(indicators)
    engine = resolve_engine(engine)
    known = pd.Index(pd.Series(lookup_areas, dtype="string").str.upper().unique())
    amap = area_map[["area", "ward"]].assign(area=area_map["area"].astype("string").str.upper())
    acc = _Tally(files, indicators, known, amap)
    group: list[Any] = []
    idx: list[int] = []
    held = 0

    def flush() -> None:
        df = concat_raw(group)
        df.columns = ["month", "lsoa", "crime_type"]
        acc.add(df, np.repeat(np.array([k for k, _ in idx], dtype="int64"),
                              [n for _, n in idx]))

    for k, (p, _month) in enumerate(files):
        try:
            t = read_csv_raw(p, STREET_COLUMNS, engine=engine, as_arrow=True)
        except InputError:
            read_street_file(p)  # raises with the exact line and column
            raise
        group.append(t)
        idx.append((k, len(t)))
        held += len(t)
        if held >= group_rows:
            flush()
            group, idx, held = [], [], 0
    if group:
        flush()
    wc, unmatched, info = acc.result()
    info["engine"] = engine
    return wc, unmatched, info


class _Tally:
    """Running counts of :func:`tally_street_crime`."""

    def __init__(self, files, indicators, known, amap) -> None:
        self.files = files
        self.indicators = indicators
        self.known = known
        self.amap = amap
        self.rows = np.zeros(len(files), dtype="int64")
        self.name_month = np.array([m for _, m in files], dtype=object)
        self.force = np.array([force_of(p) for p, _ in files], dtype=object)
        self.force_names = sorted(set(self.force))
        fpos = {f: i for i, f in enumerate(self.force_names)}
        self.force_code = np.array([fpos[f] for f in self.force], dtype="int64")
        self.mismatch: dict[int, set[str]] = {}
        self.types: Counter = Counter()
        self.no_lsoa: Counter = Counter()
        self.months_seen: set[str] = set()
        self.ward_parts: list[pd.DataFrame] = []
        self.outside_parts: list[pd.DataFrame] = []
        self.ward_cats = pd.Index(pd.unique(amap["ward"].astype("string")))
        self.ind_cats = pd.Index(["_any", *indicators])

    def add(self, g: pd.DataFrame, fidx: np.ndarray) -> None:
        g = clean_strings(g)
        bad = ~fullmatch(g["month"], r"\d{4}-\d{2}")
        if bad.any():
            read_street_file(self.files[int(fidx[np.flatnonzero(bad)[0]])][0])  # raises
        g["lsoa"] = g["lsoa"].str.upper()
        self.rows += np.bincount(fidx, minlength=len(self.rows))
        mcode, muniq = pd.factorize(g["month"])  # -1 for <NA>
        muniq = [str(m) for m in muniq]
        self.months_seen |= set(muniq)
        pos = {m: i for i, m in enumerate(muniq)}
        name_code = np.array([pos.get(m, -2) for m in self.name_month], dtype="int64")
        off = np.flatnonzero((mcode >= 0) & (mcode != name_code[fidx]))
        for i in np.unique(fidx[off]):
            sel = fidx == i
            self.mismatch.setdefault(int(i), set()).update(g.loc[sel, "month"].dropna())
        for k, v in g["crime_type"].value_counts(dropna=False).items():
            self.types[None if k is pd.NA or (isinstance(k, float) and k != k) else k] += int(v)
        miss = g["lsoa"].isna()
        if miss.any():
            for k, v in g.loc[miss, "month"].value_counts().items():
                self.no_lsoa[str(k)] += int(v)
        g["force"] = pd.Categorical.from_codes(self.force_code[fidx], categories=self.force_names)
        c = _lsoa_month_counts(g, self.indicators, ["lsoa", "month", "force"])
        inside = c["lsoa"].isin(self.known)
        out = c[~inside & (c["indicator"] == "_any")]
        if len(out):
            self.outside_parts.append(out[["lsoa", "month", "count"]])
        w = c[inside].merge(self.amap, left_on="lsoa", right_on="area", how="inner")
        if len(w):
            # compact keys: categorical wards/indicators, months as yyyymm integers
            m = w["month"].astype("string")
            w = pd.DataFrame({
                "ward": pd.Categorical(w["ward"], categories=self.ward_cats),
                "month": (m.str.slice(0, 4).astype("int32") * 100
                          + m.str.slice(5, 7).astype("int32")).to_numpy(dtype="int32"),
                "force": w["force"],
                "indicator": pd.Categorical(w["indicator"], categories=self.ind_cats),
                "count": w["count"].to_numpy(dtype="int64"),
            })
            self.ward_parts.append(_fold([w]))
        if len(self.ward_parts) >= 20:
            self.ward_parts = [_fold(self.ward_parts)]

    def result(self) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
        if self.ward_parts:
            wc = _fold(self.ward_parts)
            months = np.unique(wc["month"].to_numpy())
            names = pd.Index([f"{v // 100:04d}-{v % 100:02d}" for v in months], dtype="string")
            wc["month"] = pd.Categorical.from_codes(np.searchsorted(months, wc["month"].to_numpy()),
                                                    categories=names)
        else:
            wc = pd.DataFrame({c: pd.Series(dtype="int64" if c == "count" else "string")
                               for c in _WARD_COUNT_COLUMNS})
        if self.outside_parts:
            o = pd.concat(self.outside_parts, ignore_index=True)
            o = o.groupby(["lsoa", "month"])["count"].sum().reset_index()
            unmatched = (o.groupby("lsoa").agg(rows=("lsoa", "size"), count=("count", "sum"))
                         .reset_index().rename(columns={"lsoa": "area"})
                         .sort_values("rows", ascending=False, ignore_index=True, kind="stable"))
        else:
            unmatched = pd.DataFrame({"area": pd.Series(dtype="string"),
                                      "rows": pd.Series(dtype="int64"),
                                      "count": pd.Series(dtype="int64")})
        by_force: dict[str, set[str]] = {}
        for f, m in zip(self.force, self.name_month, strict=True):
            by_force.setdefault(f, set()).add(m)
        info = {
            "files_read": [{"file": str(p), "month": m, "rows": int(n)}
                           for (p, m), n in zip(self.files, self.rows, strict=True)],
            "rows_read": int(self.rows.sum()),
            "month_mismatch": [{"file": str(self.files[i][0]), "name_month": self.files[i][1],
                                "data_months": sorted(ms)} for i, ms in sorted(self.mismatch.items())],
            "crime_types": _crime_type_counts(self.types),
            "rows_without_lsoa": {k: self.no_lsoa[k] for k in sorted(self.no_lsoa)},
            "rows_without_lsoa_total": int(sum(self.no_lsoa.values())),
            "months_present": sorted(self.months_seen | {m for _, m in self.files}),
            "months_by_force": {f: sorted(m) for f, m in sorted(by_force.items())},
        }
        return wc[_WARD_COUNT_COLUMNS], unmatched, info


def _fold(parts: list[pd.DataFrame]) -> pd.DataFrame:
    d = pd.concat(parts, ignore_index=True) if len(parts) > 1 else parts[0]
    return (d.groupby(["ward", "month", "force", "indicator"], sort=False, observed=True)["count"]
            .sum().reset_index())


def _ward_counts_from_lsoa(counts: pd.DataFrame, lookup: pd.DataFrame,
                           amap: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """In-memory path: LSOA counts -> ward counts and LSOAs outside the lookup."""

    anyc = counts[counts["indicator"] == "_any"]
    _, unmatched = aggregate_to_wards(anyc, lookup, "lsoa", ["count"])
    agg, _ = aggregate_to_wards(counts, lookup, "lsoa", ["count"],
                                by=["indicator", "month", "force"], area_map=amap)
    return agg[_WARD_COUNT_COLUMNS], unmatched


# ----------------------------------------------------------------------------------------
# periods
# ----------------------------------------------------------------------------------------


def period_of_month(month: pd.Series, year_type: str = "financial") -> pd.Series:
    """Period label of ``YYYY-MM`` months: ``"2010/11"`` (April-March) or ``"2010"``."""
    y = month.str.slice(0, 4).astype(int)
    m = month.str.slice(5, 7).astype(int)
    if year_type == "calendar":
        return y.astype(str).astype("string")
    if year_type != "financial":
        raise InputError(f"year type must be 'financial' or 'calendar', not '{year_type}'")
    start = y.where(m >= 4, y - 1)
    return (start.astype(str) + "/" + ((start + 1) % 100).map("{:02d}".format)).astype("string")


def period_months(label: str, year_type: str = "financial") -> list[str]:
    """The twelve ``YYYY-MM`` months of a period label."""
    y = int(label[:4])
    if year_type == "calendar":
        return [f"{y}-{m:02d}" for m in range(1, 13)]
    return [f"{y}-{m:02d}" for m in range(4, 13)] + [f"{y + 1}-{m:02d}" for m in range(1, 4)]


# ----------------------------------------------------------------------------------------
# the panel
# ----------------------------------------------------------------------------------------


def build_panel(
    counts: pd.DataFrame,
    info: dict,
    lookup: pd.DataFrame,
    design: pd.DataFrame,
    *,
    year_type: YearType = "financial",
    post_from: str = DEFAULT_POST_FROM,
    population: pd.DataFrame | None = None,
    indicators: Sequence[str] = tuple(INDICATOR_TYPES),
    complete_years_only: bool = False,
    partial_periods: PartialPeriods = "keep",
    year_map: YearMap | None = None,
    population_file: str | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Ward x period panel rows from LSOA counts (:func:`count_street_crime`) and a report.

    Parameters
    ----------
    counts, info
        From :func:`count_street_crime` (a ``force`` column is optional).
    lookup
        Normalised LSOA-to-ward lookup (:func:`nbdid.data_prep.lookups.read_lookup`).
    design
        ``ward, ward_name, la, group, pair`` (composite ids ``A+B`` allowed).
    year_type, post_from, population, indicators, complete_years_only, partial_periods, year_map, population_file
        As for :func:`ingest_police`.
    """
    if "force" not in counts:
        counts = counts.assign(force="unknown")
    info = dict(info)
    if "months_by_force" not in info:
        info["months_by_force"] = {"unknown": sorted(info["months_present"])}
    amap = design_area_map(lookup, design)
    wc, unmatched = _ward_counts_from_lsoa(counts, lookup, amap)
    return panel_from_ward_counts(
        wc, unmatched, info, design, year_type=year_type, post_from=post_from,
        population=population, indicators=indicators, complete_years_only=complete_years_only,
        partial_periods=partial_periods, year_map=year_map, population_file=population_file,
    )


def _coverage_by_force(months_by_force: dict[str, list[str]], labels: list[str],
                       year_type: str) -> dict[str, dict[str, list[str]]]:
    """``{force: {label: missing months}}`` for the periods with months missing."""
    out: dict[str, dict[str, list[str]]] = {}
    for force, months in months_by_force.items():
        have = set(months)
        for lab in labels:
            missing = [m for m in period_months(lab, year_type) if m not in have]
            if missing:
                out.setdefault(force, {})[lab] = missing
    return out


def _ranges(months: list[str]) -> str:
    """``2010-04..2010-11`` style ranges of a sorted month list."""
    if not months:
        return ""
    idx = [int(m[:4]) * 12 + int(m[5:7]) - 1 for m in months]
    out, start, prev = [], idx[0], idx[0]
    for v in idx[1:] + [None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        a = f"{start // 12}-{start % 12 + 1:02d}"
        b = f"{prev // 12}-{prev % 12 + 1:02d}"
        out.append(a if a == b else f"{a}..{b}")
        if v is not None:
            start = prev = v
    return ", ".join(out)


def _why_missing(months: list[str]) -> str:
    early = [m for m in months if m < POLICE_UK_FIRST_MONTH]
    return " (police.uk starts in 2010-12)" if early and len(early) == len(months) else ""


def panel_from_ward_counts(
    wc: pd.DataFrame,
    unmatched: pd.DataFrame,
    info: dict,
    design: pd.DataFrame,
    *,
    year_type: YearType = "financial",
    post_from: str = DEFAULT_POST_FROM,
    population: pd.DataFrame | None = None,
    indicators: Sequence[str] = tuple(INDICATOR_TYPES),
    complete_years_only: bool = False,
    partial_periods: PartialPeriods = "keep",
    year_map: YearMap | None = None,
    population_file: str | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Panel rows and report from ward counts (``ward, month, force, indicator, count``)."""
    if partial_periods not in PARTIAL_CHOICES:
        raise InputError(f"partial periods must be one of {', '.join(PARTIAL_CHOICES)}, not "
                         f"'{partial_periods}'", column="--partial-periods")
    indicators = _check_indicators(indicators)
    report: dict[str, Any] = {}
    report["lsoas_outside_lookup"] = {
        "n_lsoas": int(len(unmatched)),
        "rows": int(unmatched["rows"].sum()) if len(unmatched) else 0,
        "crimes": int(unmatched["count"].sum()) if len(unmatched) else 0,
        "examples": unmatched["area"].astype(str).head(20).tolist(),
    }
    month_values = pd.Series(pd.unique(wc["month"].astype("string")), dtype="string").dropna()
    label_of = dict(zip(month_values, period_of_month(month_values, year_type), strict=True))
    wc = wc.assign(period_label=wc["month"].astype("category").map(label_of))

    months_present = sorted(info["months_present"])
    labels = sorted(set(period_of_month(pd.Series(months_present, dtype="string"), year_type)))
    coverage = {}
    for lab in labels:
        want = period_months(lab, year_type)
        have = [m for m in want if m in months_present]
        coverage[lab] = {
            "months_present": len(have),
            "months_missing": [m for m in want if m not in months_present],
        }
    report["period_coverage"] = coverage
    incomplete = [lab for lab, v in coverage.items() if v["months_missing"]]
    if incomplete:
        report["warning_incomplete_periods"] = (
            f"{len(incomplete)} period(s) have months missing from the files: "
            + ", ".join(f"{lab} ({12 - len(coverage[lab]['months_missing'])}/12 months)" for lab in incomplete)
            + (" -- dropped (--complete-years-only)" if complete_years_only
               else f" -- partial periods: {partial_periods}")
        )
    if complete_years_only:
        labels = [lab for lab in labels if lab not in incomplete]
    if not labels:
        raise InputError("no period with all twelve months in the files (--complete-years-only)")

    # ward coverage and each ward's force (the force that recorded most of its crimes)
    anyw = wc[wc["indicator"] == "_any"]
    covered = set(anyw["ward"])
    by_force = anyw.groupby(["ward", "force"], sort=True, observed=True)["count"].sum().reset_index()
    by_force = by_force.astype({"ward": "string", "force": "string"})
    by_force = by_force.sort_values(["ward", "count"], ascending=[True, False], kind="stable")
    ward_force = by_force.drop_duplicates("ward").set_index("ward")["force"].to_dict()
    months_w = anyw.groupby(["ward", "period_label"], observed=True)["month"].nunique().to_dict()
    crimes_w = anyw.groupby(["ward", "period_label"], observed=True)["count"].sum().to_dict()
    ward_cov = []
    for w in design.itertuples(index=False):
        for lab in labels:
            ward_cov.append(
                {
                    "ward": w.ward,
                    "ward_name": w.ward_name,
                    "period_label": lab,
                    "months_with_crimes": int(months_w.get((w.ward, lab), 0)),
                    "months_missing_in_files": coverage[lab]["months_missing"],
                    "crimes_any_type": int(crimes_w.get((w.ward, lab), 0)),
                }
            )
    report["ward_coverage"] = ward_cov
    no_data = design[~design["ward"].isin(covered)]
    report["design_wards"] = int(len(design))
    report["wards_with_data"] = int(design["ward"].isin(covered).sum())
    report["wards_without_data"] = [
        f"{r.ward_name} ({r.la}, {r.ward})" for r in no_data.itertuples(index=False)
    ]
    d = design[design["ward"].isin(covered)].reset_index(drop=True)

    # --- guard: periods with months missing for a ward's force ---------------------------
    mbf = info.get("months_by_force") or {"unknown": months_present}
    force_missing = _coverage_by_force(mbf, labels, year_type)
    report["months_missing_by_force"] = {
        f: {lab: _ranges(ms) for lab, ms in v.items()} for f, v in force_missing.items()
    }
    dwards = d["ward"].tolist()
    n_by_force = Counter(ward_force[w] for w in dwards if w in ward_force)
    design_forces = sorted(n_by_force)
    report["ward_forces"] = {f: int(n_by_force[f]) for f in design_forces}
    affected: dict[str, list[str]] = {}  # label -> wards with months missing
    for w in dwards:
        f = ward_force.get(w)
        for lab in labels:
            if lab in force_missing.get(f, {}):
                affected.setdefault(lab, []).append(w)
    months_used = {lab: 12 for lab in labels}
    month_filter: dict[str, set[str]] | None = None
    if affected:
        summary = "; ".join(
            f"{lab}: " + ", ".join(
                f"{f} {12 - len(force_missing[f][lab])}/12 months (missing "
                f"{_ranges(force_missing[f][lab])}{_why_missing(force_missing[f][lab])})"
                for f in design_forces if lab in force_missing.get(f, {}))
            for lab in labels if lab in affected)
        if partial_periods == "refuse":
            raise InputError(
                "periods with months missing for the forces of the wards -- " + summary
                + ". Choose --partial-periods drop-pairs (drop the affected pairs), shorten "
                "(each period cut to the months every force published, exposure scaled), or "
                "keep (partial counts), or use --year-type calendar",
                column="--partial-periods",
            )
        if partial_periods == "keep":
            add_notice(report, "partial periods",
                       "kept partial counts: rates of these periods are too low by the "
                       f"share of months missing -- {summary}")
        elif partial_periods == "drop-pairs":
            drop = _pairs_to_drop(d, {w for ws in affected.values() for w in ws})
            d = d[~d["ward"].isin(drop["wards"])].reset_index(drop=True)
            add_notice(report, "partial periods",
                       f"dropped {drop['what']} whose force has months missing -- {summary}",
                       pairs_dropped=drop["pairs"], wards_dropped=sorted(drop["wards"]))
            if d.empty:
                raise InputError("every ward has a period with months missing (--partial-periods "
                                 "drop-pairs leaves nothing); use --year-type calendar or "
                                 "--partial-periods shorten", column="--partial-periods")
        else:  # shorten
            month_filter, no_months = {}, set()
            for lab in labels:
                sets = []
                for f in design_forces:
                    have = [m for m in period_months(lab, year_type) if m in set(mbf.get(f, []))]
                    if have:
                        sets.append(set(have))
                    else:
                        no_months |= {w for w in d["ward"] if ward_force.get(w) == f}
                common = set.intersection(*sets) if sets else set()
                if not common:
                    raise InputError(f"no month of {lab} is published by every force of the "
                                     "study wards; use --partial-periods drop-pairs",
                                     column="--partial-periods")
                month_filter[lab] = common
                months_used[lab] = len(common)
            msg = ("periods cut to the months every force published, exposure scaled to "
                   "them: " + ", ".join(f"{lab} {months_used[lab]}/12 months "
                                         f"({_ranges(sorted(month_filter[lab]))})" for lab in labels))
            extra: dict[str, Any] = {"months_used": months_used}
            if no_months:
                drop = _pairs_to_drop(d, no_months)
                d = d[~d["ward"].isin(drop["wards"])].reset_index(drop=True)
                msg += f"; dropped {drop['what']} whose force published no month of a period"
                extra.update(pairs_dropped=drop["pairs"], wards_dropped=sorted(drop["wards"]))
            add_notice(report, "partial periods", msg + " -- " + summary, **extra)
    report["partial_periods"] = partial_periods
    report["months_used"] = months_used

    counted = wc[wc["indicator"] != "_any"]
    if month_filter is not None:
        allowed = {m: m in month_filter.get(lab, ()) for m, lab in label_of.items()}
        keep = counted["month"].astype("category").map(allowed).astype(bool).to_numpy()
        counted = counted[keep]
    tot = counted.groupby(["indicator", "ward", "period_label"], observed=True)["count"].sum()
    tot.index = pd.MultiIndex.from_arrays(
        [tot.index.get_level_values(i).astype(str) for i in range(3)], names=tot.index.names)
    grid = pd.MultiIndex.from_product(
        [list(indicators), d["ward"].tolist(), labels], names=["indicator", "ward", "period_label"]
    )
    panel = tot.reindex(grid, fill_value=0).rename("count").reset_index()
    panel = panel.merge(d, on="ward", how="left")
    order = {lab: i for i, lab in enumerate(labels)}
    panel["period"] = panel["period_label"].map(order).astype("int64")
    start = panel["period_label"].map({lab: period_months(lab, year_type)[0] for lab in labels})
    panel["post"] = (start >= post_from).astype("int64")
    panel["count"] = panel["count"].astype("Int64")
    panel["exposure"] = float("nan")
    report["post_from"] = post_from
    report["post_periods"] = sorted({lab for lab in labels if period_months(lab, year_type)[0] >= post_from})

    # pairs must be complete (one nbi and one benchmark ward each) in a panel
    if panel["pair"].notna().any():
        wards = panel.drop_duplicates("ward")
        per_pair = wards.groupby("pair")["group"].nunique()
        broken = sorted(int(p) for p in per_pair[per_pair < 2].index)
        if broken:
            report["pairs_dropped"] = (
                f"pair numbers removed from the panel because pair(s) {broken} have only one "
                "ward with data in these files (combine all forces' files to keep the pairs)"
            )
            add_notice(report, "pairs", report["pairs_dropped"])
            panel["pair"] = pd.array([pd.NA] * len(panel), dtype="Int64")

    if population is not None:
        panel, exp_report = join_denominators(panel, population, year_map=year_map,
                                              file=population_file)
        if any(v < 12 for v in months_used.values()):
            scale = panel["period_label"].map(months_used).astype(float) / 12.0
            panel["exposure"] = panel["exposure"] * scale
            exp_report["exposure_scaled_to_months"] = {k: f"{v}/12" for k, v in months_used.items()}
        report["exposure"] = exp_report
        add_notice(report, "year map", "denominators: " + "; ".join(exp_report["year_map"]))
    else:
        report["exposure"] = (
            "no --population given: exposure is empty; join denominators (nbdid ingest "
            "population) with --population before the panel can be fitted"
        )
    panel["n"] = pd.array([pd.NA] * len(panel), dtype="Int64")
    for col in ("mean_price", "mean_log_price", "sd_log_price"):
        panel[col] = float("nan")
    panel["synthetic"] = False
    cols = ["indicator", "ward", "ward_name", "la", "group", "pair", "period", "period_label",
            "post", "count", "exposure", "n", "mean_price", "mean_log_price", "sd_log_price",
            "synthetic"]
    return panel[cols].sort_values(["indicator", "period", "ward"], ignore_index=True), report


def _pairs_to_drop(design: pd.DataFrame, wards: set[str]) -> dict[str, Any]:
    """Pairs (or, without pairs, wards) that hold one of ``wards``."""
    hit = design[design["ward"].isin(wards)]
    if design["pair"].notna().any():
        pairs = sorted(int(p) for p in hit["pair"].dropna().unique())
        drop = set(design.loc[design["pair"].isin(pairs), "ward"]) | set(
            hit.loc[hit["pair"].isna(), "ward"])
        return {"pairs": pairs, "wards": drop,
                "what": f"pair(s) {pairs} ({len(drop)} wards)"}
    return {"pairs": [], "wards": set(hit["ward"]), "what": f"{len(hit)} ward(s)"}


# ----------------------------------------------------------------------------------------
# denominators and the loader
# ----------------------------------------------------------------------------------------


def read_population(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a ``ward, year, denominator, value`` table (``nbdid ingest population``)."""
    p = Path(path)
    cols = ["ward", "year", "denominator", "value"]
    header = read_header(p)
    missing = [c for c in cols if c not in header]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)} (found {', '.join(header)}); expected the "
            "output of 'nbdid ingest population'",
            file=p,
            row=1,
            column=missing[0],
        )
    df = read_csv_columns(p, cols)
    val = pd.to_numeric(df["value"], errors="coerce")
    bad = val.isna() | (val <= 0)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"value must be a positive number, got '{df['value'].iloc[i]}'",
            file=p, row=i + 2, column="value",
        )
    df["value"] = val.astype(float)
    year = pd.to_numeric(df["year"], errors="coerce")
    bad = year.isna() | (year != year.round())
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(f"year must be a year such as 2011, got '{df['year'].iloc[i]}'",
                         file=p, row=i + 2, column="year")
    df["year"] = year.astype("int64")
    return df


def join_exposure(panel: pd.DataFrame, population: pd.DataFrame,
                  *, year_map: YearMap | None = None) -> tuple[pd.DataFrame, dict]:
    """Fill ``exposure`` from a denominators table through the year map."""
    return join_denominators(panel, population, year_map=year_map)


def _as_population(population: str | PathLike[str] | pd.DataFrame | None) -> tuple[
        pd.DataFrame | None, str | None]:
    if population is None:
        return None, None
    if isinstance(population, pd.DataFrame):
        return population, None
    return read_population(population), str(population)


def ingest_police(
    crime_dir: str | PathLike[str],
    lookup: str | PathLike[str] | pd.DataFrame,
    *,
    year_type: YearType = "financial",
    population: str | PathLike[str] | pd.DataFrame | None = None,
    design: str | PathLike[str] | pd.DataFrame | None = None,
    indicators: Sequence[str] = tuple(INDICATOR_TYPES),
    post_from: str = DEFAULT_POST_FROM,
    complete_years_only: bool = False,
    partial_periods: PartialPeriods = "refuse",
    boundaries: Boundaries = "study",
    year_map: YearMap | None = None,
    engine: Engine | str = "auto",
):
    """Ward x period crime counts (and exposures) from a folder of police.uk street files.

    Parameters
    ----------
    crime_dir
        Folder with ``YYYY-MM-<force>-street.csv`` files (searched recursively).
    lookup
        ONS LSOA (2011) to ward lookup (path: other LSOA lookups in its folder are used
        to resolve re-warded study wards), or a normalised lookup table.
    year_type
        ``"financial"`` (April-March, ``"2010/11"``) or ``"calendar"``.
    population
        Ward denominators (``nbdid ingest population`` output, path or table) for the
        exposure; joined through the year map.
    design
        Wards to keep (file or table, see :func:`nbdid.data_prep.wards.resolve_geography`);
        default the report's 58 wards.
    indicators
        Subset of :data:`INDICATOR_TYPES`.
    post_from
        ``YYYY-MM``: periods starting in or after this month get ``post = 1``.
    complete_years_only
        Drop periods with months missing from the files altogether.
    partial_periods
        What to do when a ward's force has months missing in a period: ``"refuse"``
        (default), ``"drop-pairs"``, ``"shorten"`` or ``"keep"``.
    boundaries
        ``"study"`` (default) or ``"lookup"`` ward areas for the report's wards.
    year_map
        Year map choices (:class:`nbdid.data_prep.yearmap.YearMap`).
    engine
        CSV reader: ``"auto"``, ``"pyarrow"`` or ``"pandas"``.

    Returns
    -------
    IngestResult
        ``kind="panel"``; the report holds coverage, boundary and year-map notices.
    """

    if not re.fullmatch(r"\d{4}-\d{2}", post_from or ""):
        raise InputError(f"--post-from must be YYYY-MM, not '{post_from}'", column="--post-from")
    if year_type not in ("financial", "calendar"):
        raise InputError(f"year type must be 'financial' or 'calendar', not '{year_type}'")
    indicators = _check_indicators([s.strip() for s in indicators if s.strip()])
    lk = lookup if isinstance(lookup, pd.DataFrame) else read_lookup(lookup)
    if lk["level"].iloc[0] != "lsoa":
        raise InputError("police data need an LSOA-level lookup (got MSOA)",
                         file=None if isinstance(lookup, pd.DataFrame) else lookup)
    geo: Geography = resolve_geography(lookup, design, boundaries=boundaries)
    files, skipped = list_crime_files(crime_dir)
    pop, pop_file = _as_population(population)
    wc, unmatched, info = tally_street_crime(files, geo.area_map(), lk["area"], indicators,
                                             engine=engine)
    panel, rep = panel_from_ward_counts(
        wc, unmatched, info, geo.design,
        year_type=year_type, post_from=post_from, population=pop,
        indicators=indicators, complete_years_only=complete_years_only,
        partial_periods=partial_periods, year_map=year_map, population_file=pop_file,
    )
    types = set(info["crime_types"])
    design_rep = dict(geo.report)
    guards = design_rep.pop("guards", []) + rep.pop("guards", [])
    report = {
        "crime_dir": str(crime_dir),
        "lookup": str(lookup) if not isinstance(lookup, pd.DataFrame) else "lookup table",
        "lookup_vintage": str(lk["vintage"].iloc[0]),
        "year_type": year_type,
        "indicator_definitions": {k: INDICATOR_TYPES[k] for k in indicators},
        "files_skipped": skipped,
        **design_rep,
        **info,
        **rep,
        "guards": guards,
    }
    if len(types) <= 2 and ASB not in types:
        report["warning_crime_types"] = (
            f"the files contain only the crime type(s) {sorted(types)}: they look filtered, so "
            "'crime' and other totals count only these types"
        )
    require = pop is not None and bool(panel["exposure"].notna().all())
    return IngestResult(table=panel, kind="panel", report=report, require_exposure=require)
