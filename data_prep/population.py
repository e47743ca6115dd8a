"""Ward denominators from ONS small-area population estimates and Census 2011 households.

Inputs
------
ONS SAPE (small area population estimates), single year of age by LSOA, saved as CSV
from the "Mid-20xx Persons" sheet.  The header row (found wherever it is, title lines
above it are skipped) has an LSOA code column (``LSOA Code``, ``Area Codes`` or
``LSOA11CD``), optional name / LA columns (``LSOA Name``, ``LA Code (2018
boundaries)`` ...), ``All Ages`` and one column per age ``0``, ``1``, ..., ``89``,
``90+``.  Formatted sheets may have thousands separators and LA subtotal rows (rows
without an LSOA code are skipped and counted).

Census 2011 households (KS105EW household composition or QS406EW household size, as
bulk CSV from Nomis/ONS): a ``geography code`` column (LSOA ``E01``/``W01`` or OA
``E00``/``W00`` codes) and a total column such as ``Household Composition: All
households; measures: Value`` or ``Household Size: All categories: Household size;
measures: Value``.

Outputs
-------
A long denominators table ``ward, ward_name, la, year, denominator, value`` with
denominators ``population`` (all ages), ``working_age`` (16-64), ``children_0_19``
(0-19) and ``households`` (Census 2011, year 2011).  LSOAs are placed in wards with
the ONS best-fit lookup given (:func:`nbdid.data_prep.lookups.read_lookup`).

This module also holds the MSOA -> ward apportioning shared by the DWP and Nomis
loaders (:func:`area_ward_weights`, :func:`apportion_counts`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nbdid.data_prep.guards import add_notice
from nbdid.data_prep.lookups import aggregate_to_wards, read_lookup
from nbdid.data_prep.schema import IngestResult
from nbdid.data_prep.statxplore import read_csv_rows
from nbdid.data_prep.wards import STUDY_VINTAGE, Boundaries, resolve_geography
from nbdid.errors import InputError

__all__ = [
    "AGE_BANDS",
    "DENOMINATOR_COLUMNS",
    "apportion_counts",
    "area_ward_weights",
    "denominators_to_wards",
    "ingest_population",
    "read_census_households",
    "read_sape",
    "sape_denominators",
]

AGE_BANDS: dict[str, tuple[int, int]] = {
    "working_age": (16, 64),
    "children_0_19": (0, 19),
}
"""Age bands (inclusive) of the denominators derived from single-year-of-age counts."""

DENOMINATOR_COLUMNS: tuple[str, ...] = ("ward", "ward_name", "la", "year", "denominator", "value")

_CODE_HEADERS = ("lsoa code", "area codes", "area code", "lsoa11cd", "lsoa21cd", "lsoa")
_AGE_RE = re.compile(r"^(?:age\s*)?(\d{1,2})(\+)?$", re.IGNORECASE)
_YEAR_RE = re.compile(r"(?:mid[-_ ]?)((?:19|20)\d\d)", re.IGNORECASE)
_LSOA_RE = re.compile(r"^[EW]01\d{6}$")
_OA_RE = re.compile(r"^[EW]00\d{6}$")


# ----------------------------------------------------------------------------------------
# apportioning small areas to wards (shared by dwp.py and nomis.py)
# ----------------------------------------------------------------------------------------


def _key(s: pd.Series) -> pd.Series:
    return s.astype("string").str.strip().str.replace(r"\s+", " ", regex=True).str.casefold()


def area_ward_weights(
    lookup: pd.DataFrame, lsoa_population: pd.Series | None = None
) -> pd.DataFrame:
    """Weights placing LSOAs and MSOAs (by code or name) in wards.

    Parameters
    ----------
    lookup
        Normalised lookup from :func:`nbdid.data_prep.lookups.read_lookup`.
    lsoa_population
        Optional population per LSOA code (index) used to apportion MSOAs; by default
        each LSOA of an MSOA counts equally.

    Returns
    -------
    pandas.DataFrame
        ``key`` (case-folded code or name), ``area_level`` (``lsoa``/``msoa``), ``msoa``
        (MSOA name, or code for MSOA lookups), ``ward``, ``ward_name``, ``la``,
        ``weight`` (sums to 1 per key) and ``method``.

    Notes
    -----
    With an LSOA lookup, an MSOA is apportioned to the wards of its LSOAs: its LSOAs
    are found by name (LSOA ``Hartlepool 001A`` lies in MSOA ``Hartlepool 001``), and the
    MSOA's weight on a ward is the share of its LSOAs (or of their population) in that
    ward.  With an MSOA lookup (one best-fit ward per MSOA) the whole MSOA goes to its
    best-fit ward (``method = "msoa_best_fit"``).
    """
    lk = lookup.copy()
    lk["la"] = lk["la_name"]
    level = str(lk["level"].iloc[0]) if "level" in lk and len(lk) else "lsoa"
    cols = ["key", "area_level", "msoa", "ward", "ward_name", "la", "weight", "method"]
    if level == "msoa":
        parts = []
        for src in ("area", "area_name"):
            sub = lk[lk[src].notna()]
            parts.append(pd.DataFrame({
                "key": _key(sub[src]), "area_level": "msoa", "msoa": sub["area_name"],
                "ward": sub["ward"], "ward_name": sub["ward_name"], "la": sub["la"],
                "weight": 1.0, "method": "msoa_best_fit",
            }))
        return pd.concat(parts, ignore_index=True)[cols].drop_duplicates("key")
    # LSOA lookup: LSOA keys (weight 1) + MSOA-name keys (apportioned)
    lsoa_parts = []
    for src in ("area", "area_name"):
        sub = lk[lk[src].notna()]
        lsoa_parts.append(pd.DataFrame({
            "key": _key(sub[src]), "area_level": "lsoa",
            "msoa": sub["area_name"].str.slice(0, -1).str.strip(),
            "ward": sub["ward"], "ward_name": sub["ward_name"], "la": sub["la"],
            "weight": 1.0, "method": "lsoa_best_fit",
        }))
    named = lk[lk["area_name"].notna()].copy()
    named["msoa"] = named["area_name"].str.slice(0, -1).str.strip()
    if lsoa_population is not None:
        pop = lsoa_population.copy()
        pop.index = pop.index.astype("string").str.upper()
        named["w"] = named["area"].map(pop).astype(float)
        method = "msoa_by_lsoa_population"
        miss = named["w"].isna()
        if miss.any():
            raise InputError(
                f"{int(miss.sum())} LSOAs of the lookup have no population (first "
                f"{named.loc[miss, 'area'].iloc[0]}); give a population file covering them"
            )
    else:
        named["w"] = 1.0
        method = "msoa_by_lsoa_share"
    g = named.groupby(["msoa", "ward", "ward_name", "la"], dropna=False)["w"].sum().reset_index()
    tot = g.groupby("msoa")["w"].transform("sum")
    g["weight"] = np.where(tot > 0, g["w"] / tot.where(tot > 0, 1.0), 0.0)
    # MSOAs with zero population: fall back to LSOA shares
    if (tot <= 0).any():
        n = named.groupby(["msoa", "ward"]).size()
        zero = tot <= 0
        g.loc[zero, "weight"] = [
            n[(m, w)] / n[m].sum() for m, w in zip(g.loc[zero, "msoa"], g.loc[zero, "ward"],
                                                   strict=True)
        ]
    msoa = pd.DataFrame({
        "key": _key(g["msoa"]), "area_level": "msoa", "msoa": g["msoa"], "ward": g["ward"],
        "ward_name": g["ward_name"], "la": g["la"], "weight": g["weight"], "method": method,
    })
    lsoa = pd.concat(lsoa_parts, ignore_index=True).drop_duplicates("key")
    # an MSOA name never equals an LSOA name (LSOA names end in a letter)
    return pd.concat([lsoa, msoa], ignore_index=True)[cols]


def apportion_counts(
    counts: pd.DataFrame, weights: pd.DataFrame, *, id_cols: Sequence[str] = ("key", "period")
) -> pd.DataFrame:
    """Split whole-number counts of areas over wards, keeping each area's total.

    Parameters
    ----------
    counts
        Rows with ``id_cols`` and ``value`` (non-negative whole numbers).
    weights
        From :func:`area_ward_weights` (``key``, ``ward``, ``ward_name``, ``la``,
        ``weight``).
    id_cols
        Columns identifying one area count (the first must be ``key``).

    Returns
    -------
    pandas.DataFrame
        ``*id_cols, ward, ward_name, la, value`` where ``value`` are whole numbers.

    Notes
    -----
    Largest-remainder rounding per area count: each ward gets ``floor(value x
    weight)`` and the units still missing from the area's total go, one each, to the
    wards with the largest fractional parts (ties to the ward listed first).  Ward
    sums therefore add up exactly to the published area totals.
    """
    id_cols = list(id_cols)
    m = counts[[*id_cols, "value"]].merge(
        weights[["key", "ward", "ward_name", "la", "weight"]], on="key", how="inner"
    )
    exact = m["value"].to_numpy(float) * m["weight"].to_numpy(float)
    base = np.floor(exact + 1e-9)
    m["frac"] = exact - base
    m["base"] = base
    m["order"] = np.arange(len(m))
    short = m.groupby(id_cols, sort=False)["value"].transform("first") - m.groupby(
        id_cols, sort=False
    )["base"].transform("sum")
    m = m.assign(short=short.round().astype(int))
    m = m.sort_values([*id_cols, "frac", "order"], ascending=[True] * len(id_cols) + [False, True])
    m["rank"] = m.groupby(id_cols, sort=False).cumcount()
    m["value"] = m["base"] + (m["rank"] < m["short"]).astype(float)
    m = m.sort_values("order")
    return m[[*id_cols, "ward", "ward_name", "la", "value"]].reset_index(drop=True)


# ----------------------------------------------------------------------------------------
# SAPE single year of age
# ----------------------------------------------------------------------------------------


def year_from_text(*texts: str) -> int | None:
    """First 'mid-YYYY' (or a lone 4-digit year) found in ``texts``, else None."""
    for t in texts:
        m = _YEAR_RE.search(t)
        if m:
            return int(m.group(1))
    for t in texts:
        m = re.search(r"(?<!\d)((?:19|20)\d\d)(?!\d)", t)
        if m:
            return int(m.group(1))
    return None


def _to_number(cell: str) -> float:
    c = cell.strip().replace(",", "")
    return float(c) if c else np.nan


def read_sape(path: str | PathLike[str], *, year: int | None = None) -> pd.DataFrame:
    """Read an ONS SAPE single-year-of-age LSOA file (CSV).

    Parameters
    ----------
    path
        CSV saved from the persons sheet of the SAPE workbook.
    year
        Mid-year of the estimates; by default read from the file name or title lines
        (``...mid2019...``, ``Mid-2019 Population Estimates ...``).

    Returns
    -------
    pandas.DataFrame
        One row per LSOA: ``area`` (code), ``year``, ``all_ages`` and one float column
        per age ``age_0`` ... ``age_90plus``.  ``df.attrs`` has ``skipped_rows`` (rows
        without an LSOA code, e.g. LA subtotals) and ``all_ages_mismatch`` (LSOAs whose
        ``All Ages`` differs from the sum over ages).

    Raises
    ------
    InputError
        No header with ``All Ages``, no LSOA code column, missing ages, non-numbers,
        duplicated LSOAs, or no year.
    """
    p = Path(path)
    rows, _enc = read_csv_rows(p)
    h = next(
        (i for i, r in enumerate(rows) if any(c.strip().casefold() == "all ages" for c in r)),
        None,
    )
    if h is None:
        raise InputError(
            "no header row with an 'All Ages' column: not an ONS SAPE single-year-of-age "
            "file (save the 'Mid-20xx Persons' sheet as CSV)",
            file=p,
        )
    header = [c.strip() for c in rows[h]]
    folded = [c.casefold() for c in header]
    code_j = next((folded.index(c) for c in _CODE_HEADERS if c in folded), None)
    if code_j is None:
        raise InputError(
            f"no LSOA code column (expected 'LSOA Code' or 'Area Codes'; found "
            f"{', '.join(header[:6])} ...)",
            file=p, row=h + 1,
        )
    all_j = folded.index("all ages")
    ages: dict[int, int] = {}
    top = None
    for j, c in enumerate(header):
        m = _AGE_RE.match(c)
        if m:
            a = int(m.group(1))
            ages[a] = j
            if m.group(2):
                top = a
    if top is None or sorted(ages) != list(range(top + 1)):
        missing = sorted(set(range((top or 90) + 1)) - set(ages))
        raise InputError(
            "single-year-of-age columns 0, 1, ..., 90+ are incomplete"
            + (f" (missing {', '.join(map(str, missing[:5]))})" if missing else
               " (no open-ended '90+' column)"),
            file=p, row=h + 1,
        )
    if year is None:
        year = year_from_text(p.name, *[" ".join(r) for r in rows[:h]])
    if year is None:
        raise InputError(
            "cannot tell the year of the estimates from the file name or title; pass --year",
            file=p,
        )
    codes: list[str] = []
    vals: list[list[float]] = []
    lines: list[int] = []
    skipped = 0
    order = [all_j] + [ages[a] for a in range(top + 1)]
    for i in range(h + 1, len(rows)):
        r = rows[i]
        if not any(c.strip() for c in r):
            continue
        code = r[code_j].strip().upper() if code_j < len(r) else ""
        if not _LSOA_RE.match(code):
            skipped += 1
            continue
        rec = []
        for j in order:
            cell = r[j] if j < len(r) else ""
            try:
                v = _to_number(cell)
            except ValueError:
                raise InputError(f"'{cell.strip()}' is not a number", file=p, row=i + 1,
                                 column=header[j]) from None
            if np.isnan(v) or v < 0:
                raise InputError("missing or negative population", file=p, row=i + 1,
                                 column=header[j])
            rec.append(v)
        if rec[0] <= 0:
            raise InputError("an LSOA population of zero cannot be right (every LSOA has "
                             "about 1,000-3,000 residents)", file=p, row=i + 1,
                             column=header[all_j])
        codes.append(code)
        vals.append(rec)
        lines.append(i + 1)
    if not codes:
        raise InputError("no rows with an LSOA code (E01/W01...)", file=p, row=h + 1)
    names = ["all_ages"] + [f"age_{a}" for a in range(top)] + [f"age_{top}plus"]
    df = pd.DataFrame(np.asarray(vals), columns=names)
    df.insert(0, "year", year)
    df.insert(0, "area", pd.array(codes, dtype="str"))
    dup = df["area"].duplicated()
    if dup.any():
        pos = int(dup.to_numpy().nonzero()[0][0])
        raise InputError(f"LSOA {codes[pos]} appears twice", file=p, row=lines[pos],
                         column=header[code_j])
    age_sum = df[names[1:]].sum(axis=1)
    mismatch = (age_sum - df["all_ages"]).abs() > 0.5
    df.attrs.update(skipped_rows=skipped, all_ages_mismatch=int(mismatch.sum()), top_age=top,
                    path=str(p))
    return df


def sape_denominators(sape: pd.DataFrame) -> pd.DataFrame:
    """LSOA denominators from :func:`read_sape`: long ``area, year, denominator, value``.

    ``population`` is the published ``All Ages``; ``working_age`` sums ages 16-64 and
    ``children_0_19`` ages 0-19 (:data:`AGE_BANDS`).
    """
    out = {"population": sape["all_ages"]}
    for name, (lo, hi) in AGE_BANDS.items():
        out[name] = sape[[f"age_{a}" for a in range(lo, hi + 1)]].sum(axis=1)
    wide = pd.DataFrame({"area": sape["area"], "year": sape["year"], **out})
    return wide.melt(id_vars=["area", "year"], var_name="denominator", value_name="value")


# ----------------------------------------------------------------------------------------
# Census 2011 households
# ----------------------------------------------------------------------------------------


def read_census_households(
    path: str | PathLike[str], *, column: str | None = None
) -> pd.DataFrame:
    """Read a Census 2011 households table (KS105EW / QS406EW-like bulk CSV).

    Parameters
    ----------
    path
        CSV with a ``geography code`` column and an all-households total column.
    column
        Name of the total column; by default the first column containing
        ``All households`` or ``All categories`` (case-insensitive).

    Returns
    -------
    pandas.DataFrame
        ``area`` (LSOA or OA code), ``households`` (float).
    """
    p = Path(path)
    rows, _enc = read_csv_rows(p)
    h = next((i for i, r in enumerate(rows)
              if any(c.strip().casefold() in ("geography code", "geography_code", "geogcode",
                                              "lsoa11cd", "oa11cd") for c in r)), None)
    if h is None:
        raise InputError("no 'geography code' column: not a Census 2011 bulk table", file=p)
    header = [c.strip() for c in rows[h]]
    folded = [c.casefold() for c in header]
    code_j = next(j for j, c in enumerate(folded)
                  if c in ("geography code", "geography_code", "geogcode", "lsoa11cd", "oa11cd"))
    if column is not None:
        if column not in header:
            raise InputError(f"no column '{column}'", file=p, row=h + 1, column=column)
        val_j = header.index(column)
    else:
        val_j = next((j for j, c in enumerate(folded)
                      if "all households" in c or "all categories" in c), None)
        if val_j is None:
            raise InputError(
                "no all-households column (expected e.g. 'Household Composition: All "
                "households; measures: Value'); pass --households-column",
                file=p, row=h + 1,
            )
    codes, vals = [], []
    for i in range(h + 1, len(rows)):
        r = rows[i]
        if not any(c.strip() for c in r):
            continue
        code = r[code_j].strip().upper() if code_j < len(r) else ""
        if not code:
            raise InputError("empty geography code", file=p, row=i + 1, column=header[code_j])
        cell = r[val_j] if val_j < len(r) else ""
        try:
            v = _to_number(cell)
        except ValueError:
            raise InputError(f"'{cell.strip()}' is not a number", file=p, row=i + 1,
                             column=header[val_j]) from None
        if np.isnan(v) or v < 0:
            raise InputError("missing or negative household count", file=p, row=i + 1,
                             column=header[val_j])
        codes.append(code)
        vals.append(v)
    if not codes:
        raise InputError("the table has no data rows", file=p, row=h + 1)
    df = pd.DataFrame({"area": pd.array(codes, dtype="str"), "households": vals})
    df.attrs.update(column=header[val_j], path=str(p))
    return df


# ----------------------------------------------------------------------------------------
# to wards + CLI
# ----------------------------------------------------------------------------------------


def denominators_to_wards(
    long: pd.DataFrame, lookup: pd.DataFrame, *, area_map: pd.DataFrame | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sum area-level ``area, year, denominator, value`` rows to wards.

    ``area_map`` (``area, ward, ward_name, la_name``) replaces the lookup's wards, e.g.
    for composite or study-era design wards.  Returns the ward table
    (:data:`DENOMINATOR_COLUMNS`) and the unmatched areas.
    """

    wide = long.pivot_table(index=["area", "year"], columns="denominator", values="value",
                            aggfunc="sum").reset_index()
    wide.columns.name = None
    dens = [c for c in wide.columns if c not in ("area", "year")]
    agg, unmatched = aggregate_to_wards(wide, lookup, "area", dens, by=["year"],
                                        area_map=area_map)
    out = agg.rename(columns={"la_name": "la"}).melt(
        id_vars=["ward", "ward_name", "la", "year"], value_vars=dens,
        var_name="denominator", value_name="value",
    )
    out["year"] = out["year"].astype(int)
    out = out.sort_values(["denominator", "year", "ward"], ignore_index=True)
    return out[list(DENOMINATOR_COLUMNS)], unmatched


def read_denominators(path: str | PathLike[str]) -> pd.DataFrame:
    """Read a ward denominators table (``ward, year, denominator, value`` at least)."""
    p = Path(path)
    rows, _ = read_csv_rows(p)
    if not rows:
        raise InputError("file is empty", file=p)
    header = [c.strip() for c in rows[0]]
    for need in ("ward", "year", "denominator", "value"):
        if need not in header:
            raise InputError(
                f"missing column '{need}' (a denominators table has columns "
                "ward, ward_name, la, year, denominator, value)", file=p, row=1, column=need,
            )
    idx = {c: header.index(c) for c in ("ward", "year", "denominator", "value")}
    recs = []
    for i, r in enumerate(rows[1:], start=2):
        if not any(c.strip() for c in r):
            continue
        try:
            rec = {c: r[j].strip() for c, j in idx.items()}
        except IndexError:
            raise InputError("row has too few cells", file=p, row=i) from None
        try:
            rec["year"] = int(float(rec["year"]))
        except ValueError:
            raise InputError(f"year '{rec['year']}' is not a year", file=p, row=i,
                             column="year") from None
        try:
            rec["value"] = float(rec["value"])
        except ValueError:
            raise InputError(f"'{rec['value']}' is not a number", file=p, row=i,
                             column="value") from None
        if not rec["value"] > 0:
            raise InputError(f"a '{rec['denominator']}' of {rec['value']:g} cannot be right "
                             "(populations and households are above zero)", file=p, row=i,
                             column="value")
        recs.append(rec)
    if not recs:
        raise InputError("the denominators table has no rows", file=p)
    df = pd.DataFrame(recs)
    df["ward"] = df["ward"].str.upper()
    dup = df.duplicated(["ward", "year", "denominator"])
    if dup.any():
        pos = int(dup.to_numpy().nonzero()[0][0])
        raise InputError("duplicate ward/year/denominator row", file=p, row=pos + 2)
    return df


def ingest_population(
    sape: Sequence[str | PathLike[str]],
    lookup: str | PathLike[str] | pd.DataFrame,
    *,
    years: Sequence[int] | None = None,
    households: str | PathLike[str] | None = None,
    households_column: str | None = None,
    households_lookup: str | PathLike[str] | None = None,
    boundaries: Boundaries = "study",
) -> Any:
    """Ward denominators (population, working age, children 0-19, households).

    Parameters
    ----------
    sape
        ONS SAPE single-year-of-age LSOA CSV files, one per mid-year.
    lookup
        ONS LSOA-to-ward lookup (path or normalised table).
    years
        Mid-year of each file (default: from the file name or title).
    households
        Census 2011 households table (KS105EW/QS406EW bulk CSV), year 2011.
    households_column
        Total column of ``households`` (default: the 'All households' column).
    households_lookup
        Lookup for ``households`` when it is by OA (default: ``lookup``).
    boundaries
        ``"study"`` (default): also write the report's study wards on their study-era
        boundaries (:data:`nbdid.data_prep.wards.STUDY_VINTAGE`) when the lookup is of
        another vintage, so that loaders building the study wards find their
        denominators; ``"lookup"``: only the lookup's wards.

    Returns
    -------
    IngestResult
        ``kind="denominators"``: ``ward, ward_name, la, year, denominator, value``.
    """

    lk = lookup if isinstance(lookup, pd.DataFrame) else read_lookup(lookup)
    lookup_name = "lookup table" if isinstance(lookup, pd.DataFrame) else str(lookup)
    sape = [sape] if isinstance(sape, (str, PathLike)) else list(sape)
    years = list(years or [])
    if years and len(years) != len(sape):
        raise InputError(f"give --year once per --sape file ({len(sape)} files, "
                         f"{len(years)} years)")
    parts, files, sapes = [], [], []
    for k, f in enumerate(sape):
        s = read_sape(f, year=years[k] if years else None)
        sapes.append(s)
        parts.append(sape_denominators(s))
        files.append({"file": str(f), "year": int(s["year"].iloc[0]), "lsoas": len(s),
                      "rows_skipped_without_lsoa_code": s.attrs["skipped_rows"],
                      "all_ages_differs_from_sum_of_ages": s.attrs["all_ages_mismatch"]})
    long = pd.concat(parts, ignore_index=True)
    dup = long.duplicated(["area", "year", "denominator"])
    if dup.any():
        raise InputError(f"two --sape files give year {int(long.loc[dup, 'year'].iloc[0])}")
    table, unmatched = denominators_to_wards(long, lk)
    report: dict[str, Any] = {
        "source": "ONS small area population estimates (single year of age, LSOA)",
        "lookup": lookup_name, "lookup_vintage": lk.attrs.get("vintage"),
        "sape_files": files,
        "denominators": {"population": "All Ages", **{k: f"ages {a}-{b}" for k, (a, b)
                                                       in AGE_BANDS.items()}},
        "lsoas_not_in_lookup": int(unmatched["area"].nunique()),
        "lsoas_not_in_lookup_examples": unmatched["area"].astype(str).head(10).tolist(),
        "lookup_lsoas_without_estimates": int(
            (~lk["area"].isin(long["area"].unique())).sum()),
        "wards": int(table["ward"].nunique()),
    }
    for f, s in zip(files, sapes, strict=True):
        out = int((~s["area"].isin(lk["area"])).sum())
        if out:
            add_notice(report, "population geography",
                       f"{out} LSOAs of {f['file']} (mid-{f['year']}) are not in the "
                       f"{lk.attrs.get('vintage')} lookup (2021 LSOA codes?): their people are "
                       "missing from the ward totals; use estimates on the lookup's LSOAs")
    hlong = None
    if households:
        hh = read_census_households(households, column=households_column)
        hlk = read_lookup(households_lookup) if households_lookup else lk
        hlong = pd.DataFrame({"area": hh["area"], "year": 2011, "denominator": "households",
                              "value": hh["households"]})
        htab, hun = denominators_to_wards(hlong, hlk)
        table = pd.concat([table, htab], ignore_index=True)
        report["households"] = {
            "file": str(households), "column": hh.attrs["column"], "areas": len(hh),
            "areas_not_in_lookup": int(hun["area"].nunique()),
            "areas_not_in_lookup_examples": hun["area"].astype(str).head(10).tolist(),
        }
        if hun["area"].nunique() == len(hh):
            raise InputError(
                "no area of the households table is in the lookup (OA codes need an "
                "OA-to-ward lookup: --households-lookup)", file=households,
            )
        if households_lookup:
            hlong = None  # OA-level: not placed in the study-era wards below
    if report["lsoas_not_in_lookup"] == long["area"].nunique():
        raise InputError("no LSOA of the population files is in the lookup", file=sape[0])
    if boundaries == "study" and not isinstance(lookup, pd.DataFrame):
        table = _add_study_wards(table, long, hlong, lookup, lk, sapes, report)
    return IngestResult(table=table[list(DENOMINATOR_COLUMNS)], kind="denominators",
                        report=report, require_exposure=False)


def _add_study_wards(table, long, hlong, lookup, lk, sapes, report) -> pd.DataFrame:
    """Append the study wards on study-era boundaries that the lookup's vintage lacks."""

    if str(lk["vintage"].iloc[0]) == STUDY_VINTAGE:
        return table
    latest = max(sapes, key=lambda s: int(s["year"].iloc[0]))
    try:
        geo = resolve_geography(lookup, None, boundaries="study",
                                lsoa_population=latest.set_index("area")["all_ages"])
    except InputError as err:
        add_notice(report, "ward boundaries", f"study-era wards not added: {err}")
        return table
    amap = geo.area_map()
    new = geo.design[~geo.design["ward"].isin(set(table["ward"]))]
    report["study_era_wards_added"] = {
        "vintage": geo.vintage, "wards": [f"{r.ward_name} ({r.la}, {r.ward})"
                                          for r in new.itertuples(index=False)]}
    if "boundary_changes" in geo.report:
        report["boundary_changes"] = geo.report["boundary_changes"]
    for g in geo.report.get("guards", []):
        report.setdefault("guards", []).append(g)
    if new.empty:
        return table
    sub = amap[amap["ward"].isin(set(new["ward"]))]
    extra = [denominators_to_wards(long, geo.lookup, area_map=sub)[0]]
    if hlong is not None:
        extra.append(denominators_to_wards(hlong, geo.lookup, area_map=sub)[0])
    if hlong is None and "households" in set(table["denominator"]):
        add_notice(report, "ward boundaries", "households of the study-era wards are missing: "
                   "the households table is by OA (give an LSOA-level table)")
    return pd.concat([table, *extra], ignore_index=True)
