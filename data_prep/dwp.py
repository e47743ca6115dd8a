"""DWP Stat-Xplore counts by MSOA/LSOA -> ward panel rows.

Covers children in relative low-income families (CiLIF, financial years such as
``2014/15``) and benefit claimant counts such as households on Universal Credit
(months such as ``August 2015``); whatever measure the export counts is taken as the
count of ``--indicator``.

Stat-Xplore names areas (``Hartlepool 001``), it does not give codes.  Names are
matched, case- and space-insensitively, to the lookup: with an LSOA lookup, LSOA
names (``Hartlepool 001A``) and the MSOA names derived from them; with an MSOA lookup,
MSOA names and codes.  An MSOA spanning several wards is apportioned to them by the
share of its LSOAs in each ward (or their population with ``--apportion-population``),
and its count is split with largest-remainder rounding so that ward counts are whole
numbers that add up to the published MSOA count.  ``..`` cells (nil or negligible) count
as 0 unless ``--missing error``.

Exposure comes from a ward denominators table (``nbdid ingest population``) through the
year map (:mod:`nbdid.data_prep.yearmap`: the mid-year estimate of the year a period
starts in, ``2014/15`` -> mid-2014, ``August 2015`` -> mid-2015); a binomial indicator
counting more people than its denominator stops the ingest.  Negative counts stop it too.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from os import PathLike
from typing import Any, Literal

import numpy as np
import pandas as pd

from nbdid.data_prep.guards import add_notice, check_binomial_rates, check_counts
from nbdid.data_prep.lookups import read_lookup
from nbdid.data_prep.population import (
    _key,
    apportion_counts,
    area_ward_weights,
    read_denominators,
    read_sape,
)
from nbdid.data_prep.schema import IngestResult
from nbdid.data_prep.statxplore import read_statxplore
from nbdid.data_prep.wards import Boundaries, resolve_geography
from nbdid.data_prep.yearmap import YearMap, denominator_estimate, join_denominators
from nbdid.errors import InputError
from nbdid.families import get_family
from nbdid.registry import INDICATORS

__all__ = [
    "attach_exposure",
    "build_ward_counts",
    "ingest_dwp",
    "match_areas",
    "panel_rows",
    "period_year",
    "statxplore_to_wards",
    "to_design",
]

_MONTHS = ("january february march april may june july august september october november "
           "december").split()


def period_year(label: str) -> int:
    """Calendar year a period label starts in.

    >>> period_year("2014/15"), period_year("August 2015"), period_year("2011")
    (2014, 2015, 2011)
    """
    s = str(label).strip()
    m = re.match(r"^((?:19|20)\d\d)\s*[/-]\s*\d{2,4}$", s)  # financial year
    if m:
        return int(m.group(1))
    m = re.search(r"(?<!\d)((?:19|20)\d\d)(?!\d)", s)
    if m:
        return int(m.group(1))
    raise InputError(f"cannot tell the year of period '{label}'")


def match_areas(
    names: pd.Series, weights: pd.DataFrame
) -> tuple[pd.Series, dict[str, Any]]:
    """Match Stat-Xplore area names (or codes) to the keys of :func:`area_ward_weights`.

    Returns
    -------
    keys, report
        ``keys``: the matching key per name (``<NA>`` when unmatched or ambiguous).
        ``report``: counts and examples of unmatched and ambiguous (duplicated) names.
    """
    k = _key(names)
    known = set(weights["key"])
    matched = k.isin(known)
    dup = k.duplicated(keep=False)
    ambiguous = sorted(set(names[dup & matched].astype(str)))
    keys = k.where(matched & ~dup)
    unmatched = names[~matched].astype(str)
    levels = weights.drop_duplicates("key").set_index("key")["area_level"]
    lv = keys.dropna().map(levels).value_counts().to_dict()
    report = {
        "areas_in_file": len(names),
        "areas_matched": int(keys.notna().sum()),
        "matched_by_level": {str(a): int(b) for a, b in lv.items()},
        "areas_unmatched": len(unmatched),
        "unmatched_examples": unmatched.head(15).tolist(),
        "ambiguous_names": ambiguous,
        "duplicated_names_in_file": int(names[dup].nunique()),
    }
    return keys, report


def statxplore_to_wards(
    data: pd.DataFrame,
    weights: pd.DataFrame,
    *,
    periods: Sequence[str] | None = None,
    missing: str = "zero",
    file: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Ward counts from a tidy Stat-Xplore table.

    Parameters
    ----------
    data
        From :func:`nbdid.data_prep.statxplore.read_statxplore`.
    weights
        From :func:`nbdid.data_prep.population.area_ward_weights`.
    periods
        Periods to keep, in the order given (default: all, in file order).
    missing
        ``"zero"``: ``..`` cells count as 0; ``"error"``: raise for a missing cell of a
        matched area.
    file
        File name for error messages.

    Returns
    -------
    ward_counts, report
        ``ward, ward_name, la, period_label, count`` (whole numbers) and a report.
    """
    all_periods = list(dict.fromkeys(data["period"]))
    if periods:
        unknown = [p for p in periods if p not in all_periods]
        if unknown:
            raise InputError(
                f"period '{unknown[0]}' is not in the file (it has {all_periods[0]} ... "
                f"{all_periods[-1]})", file=file,
            )
        periods = list(periods)
    else:
        periods = all_periods
    areas = data.drop_duplicates("line")[["area_name", "line"]].reset_index(drop=True)
    keys, report = match_areas(areas["area_name"], weights)
    if report["areas_matched"] == 0:
        raise InputError(
            "no area name of the file is in the lookup (e.g. "
            f"'{areas['area_name'].iloc[0]}'); is the lookup for the same geography "
            "(LSOA/MSOA 2011, England and Wales)?", file=file,
        )
    name_to_key = dict(zip(areas["area_name"], keys, strict=True))  # duplicates -> <NA>
    d = data[data["period"].isin(periods)].copy()
    d["key"] = d["area_name"].map(name_to_key)
    d = d[d["key"].notna()]
    miss = d["value"].isna()
    if miss.any() and missing == "error":
        r = d[miss].iloc[0]
        raise InputError(
            f"missing value ('..') for {r['area_name']}, period {r['period']}; "
            "use --missing zero to count it as 0", file=file, row=int(r["line"]),
            column=str(r["period"]),
        )
    check_counts(d["value"], file=file, lines=d["line"], column=d["period"].astype(str))
    d["value"] = d["value"].fillna(0.0)
    frac = d["value"] != np.round(d["value"])
    if frac.any():
        r = d[frac].iloc[0]
        raise InputError(f"count {r['value']} is not a whole number", file=file,
                         row=int(r["line"]), column=str(r["period"]))
    split = apportion_counts(d[["key", "period", "value"]], weights)
    multi = weights.groupby("key")["ward"].nunique()
    split_keys = set(multi[multi > 1].index) & set(d["key"])
    wards = (
        split.groupby(["ward", "ward_name", "la", "period"], sort=False)["value"].sum()
        .reset_index().rename(columns={"period": "period_label", "value": "count"})
    )
    wards.attrs["first_line"] = first_lines(d[["key", "line"]], weights)
    report.update(
        periods=periods,
        missing_cells_in_matched_areas=int(miss.sum()),
        missing_cells_treated_as=missing,
        areas_split_over_several_wards=len(split_keys),
        apportioning=str(weights.loc[weights["area_level"] == "msoa", "method"].iloc[0])
        if (weights["area_level"] == "msoa").any() else "none",
        rounding="largest remainder per area and period (ward counts add up to the "
                 "published area counts)",
        wards=int(wards["ward"].nunique()),
    )
    return wards, report


def first_lines(keyed: pd.DataFrame, weights: pd.DataFrame) -> dict[str, int]:
    """First file line of the areas feeding each ward (``key, line`` rows; for messages)."""
    m = keyed.merge(weights[["key", "ward"]], on="key", how="inner")
    if m.empty:
        return {}
    return {str(k): int(v) for k, v in m.groupby("ward")["line"].min().items()}


def attach_exposure(
    wards: pd.DataFrame, denominators: pd.DataFrame, denominator: str, *, file: str | None,
    indicator: str | None = None, year_map: YearMap | None = None,
) -> pd.DataFrame:
    """Add ``exposure`` from a ward denominators table through the year map.

    Composite ward ids (``A+B``) get the sum of their parts' denominators.
    """
    den = denominators[denominators["denominator"] == denominator]
    if den.empty:
        have = ", ".join(sorted(denominators["denominator"].unique()))
        raise InputError(f"no '{denominator}' rows (it has {have})", file=file,
                         column="denominator")
    rows = wards if indicator is None or "indicator" in wards else wards.assign(indicator=indicator)
    out, _ = join_denominators(rows, den, denominator=denominator, year_map=year_map, file=file)
    return out if indicator is None or "indicator" in wards else out.drop(columns="indicator")


def _read_dens(population: str | PathLike[str] | pd.DataFrame) -> tuple[pd.DataFrame, str | None]:
    if isinstance(population, pd.DataFrame):
        return population, None
    return read_denominators(population), str(population)


def _apportion_weights(lookup: pd.DataFrame,
                       apportion_population: str | PathLike[str] | None) -> pd.DataFrame:
    pop = None
    if apportion_population:
        s = read_sape(apportion_population)
        pop = s.set_index("area")["all_ages"]
    return area_ward_weights(lookup, pop)


def panel_rows(wards: pd.DataFrame, indicator: str, periods: Sequence[str]) -> pd.DataFrame:
    """Order ward counts as panel rows (``period`` = position in ``periods``)."""
    order = {p: i for i, p in enumerate(periods)}
    out = wards.assign(indicator=indicator, period=wards["period_label"].map(order))
    out["count"] = out["count"].round().astype("Int64")
    cols = ["indicator", "ward", "ward_name", "la"]
    cols += [c for c in ("group", "pair") if c in out]
    cols += ["period", "period_label", "count"]
    if "exposure" in out:
        cols.append("exposure")
    else:
        out["exposure"] = np.nan
        cols.append("exposure")
    return out[cols].sort_values(["period", "ward"], ignore_index=True)


def to_design(wards: pd.DataFrame, design: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Keep the design's wards (composite ``A+B`` ids sum their parts); add group/pair.

    Returns the design-ward counts (and exposures, when present) and a report listing
    design wards without data; pair numbers are removed when a pair lost a ward.
    """
    parts = design[["ward", "ward_name", "la", "group", "pair"]].assign(
        part=design["ward"].str.split("+")).explode("part")
    val_cols = [c for c in ("count", "exposure") if c in wards]
    m = parts.merge(
        wards.rename(columns={"ward": "part"}).drop(columns=["ward_name", "la"]),
        on="part", how="inner",
    )
    out = (m.groupby(["ward", "ward_name", "la", "group", "pair", "period_label"],
                     dropna=False, sort=False)[val_cols].sum().reset_index())
    covered = set(out["ward"])
    missing = design[~design["ward"].isin(covered)]
    rep: dict[str, Any] = {
        "design_wards": int(len(design)),
        "wards_with_data": int(design["ward"].isin(covered).sum()),
        "wards_without_data": [f"{r.ward_name} ({r.la}, {r.ward})"
                               for r in missing.itertuples(index=False)],
    }
    if out["pair"].notna().any():
        per_pair = out.drop_duplicates("ward").groupby("pair")["group"].nunique()
        broken = sorted(int(x) for x in per_pair[per_pair < 2].index)
        if broken:
            rep["pairs_dropped"] = (f"pair numbers removed: pair(s) {broken} have only one "
                                    "ward with data")
            out["pair"] = pd.array([pd.NA] * len(out), dtype="Int64")
    return out, rep


def build_ward_counts(
    file: str | PathLike[str],
    lookup: str | PathLike[str] | pd.DataFrame,
    *,
    periods: Sequence[str] | str | None = None,
    missing: Literal["zero", "error"] = "zero",
    apportion_population: str | PathLike[str] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any], pd.DataFrame]:
    """Read a Stat-Xplore export and a lookup; ward counts for every ward of the lookup.

    Returns
    -------
    (wards, report, metadata, lookup)
        From :func:`statxplore_to_wards`, :func:`~nbdid.data_prep.statxplore.read_statxplore`
        and the normalised lookup.
    """

    if missing not in ("zero", "error"):
        raise InputError(f"missing must be 'zero' or 'error', not '{missing}'", column="--missing")
    data, meta = read_statxplore(file)
    lk = lookup if isinstance(lookup, pd.DataFrame) else read_lookup(lookup)
    weights = _apportion_weights(lk, apportion_population)
    wards, rep = statxplore_to_wards(data, weights, periods=_split(periods), missing=missing,
                                     file=str(file))
    return wards, rep, meta, lk


def _split(periods: Sequence[str] | str | None) -> list[str] | None:
    if periods is None:
        return None
    items = periods.split(",") if isinstance(periods, str) else list(periods)
    return [p.strip() for p in items if p.strip()] or None


def ingest_dwp(
    file: str | PathLike[str],
    indicator: str,
    lookup: str | PathLike[str] | pd.DataFrame,
    *,
    population: str | PathLike[str] | pd.DataFrame | None = None,
    denominator: str | None = None,
    periods: Sequence[str] | str | None = None,
    missing: Literal["zero", "error"] = "zero",
    apportion_population: str | PathLike[str] | None = None,
    design: str | PathLike[str] | pd.DataFrame | None = None,
    boundaries: Boundaries = "study",
    year_map: YearMap | None = None,
) -> Any:
    """Ward panel rows from a DWP Stat-Xplore export (areas in rows, periods in columns).

    Parameters
    ----------
    file
        Stat-Xplore CSV export.
    indicator
        Indicator key of the counts (e.g. ``children_low_income``).
    lookup
        ONS LSOA11 (MSOAs apportioned) or MSOA11 (best fit) to ward lookup.
    population
        Ward denominators (``nbdid ingest population``; path or table), joined through
        the year map.
    denominator
        Denominator key (default: the indicator's, e.g. ``children_0_19``).
    periods
        Periods to keep, in this order (list or comma-separated; default all).
    missing
        ``".."`` cells: ``"zero"`` (count as 0) or ``"error"``.
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

    geo = resolve_geography(lookup, design, boundaries=boundaries)
    data, meta = read_statxplore(file)
    area_lookup = geo.lookup  # the study-era LSOA lookup for the report's wards
    weights = _apportion_weights(area_lookup, apportion_population)
    if missing not in ("zero", "error"):
        raise InputError(f"missing must be 'zero' or 'error', not '{missing}'", column="--missing")
    wards, rep = statxplore_to_wards(data, weights, periods=_split(periods), missing=missing,
                                     file=str(file))
    denominator = denominator or (
        INDICATORS[indicator].denominator_key if indicator in INDICATORS else None)
    dwards, crep = to_design(wards, geo.design)
    require = False
    exp_rep: dict[str, Any] = {}
    if population is not None:
        if denominator is None:
            raise InputError(f"indicator '{indicator}' is not in the registry; "
                             "pass --denominator")
        dens, dens_file = _read_dens(population)
        dwards = attach_exposure(dwards, dens, denominator, file=dens_file, indicator=indicator,
                                 year_map=year_map)
        _check_rate(dwards, indicator, wards.attrs.get("first_line", {}), geo.design,
                    counts_file=str(file), denominators_file=dens_file)
        exp_rep = {"year_map": [f"{indicator} {p}: {denominator_estimate(denominator, p)[1]}"
                                for p in rep["periods"]]}
        require = True
    table = panel_rows(dwards, indicator, rep["periods"])
    lookup_name = "lookup table" if isinstance(lookup, pd.DataFrame) else str(lookup)
    report = {
        "source": "DWP Stat-Xplore",
        "file": str(file),
        "title": meta["title"], "measure": meta["measure"], "filters": meta["filters"],
        "row_field": meta["row_field"], "column_field": meta["column_field"],
        "encoding": meta["encoding"],
        "missing_cells_in_file": meta["n_missing"],
        "provisional_periods": meta["provisional_periods"],
        "total_row": {p: meta["totals"].get(p) for p in rep["periods"]},
        "lookup": lookup_name, "lookup_level": area_lookup.attrs.get("level"),
        "lookup_vintage": area_lookup.attrs.get("vintage"),
        "indicator": indicator,
        "exposure": (f"'{denominator}' from {population if isinstance(population, (str, PathLike)) else 'table'}"
                     if population is not None else "none"),
        **exp_rep, **rep, **geo.report, **crep,
    }
    if exp_rep:
        add_notice(report, "year map", "denominators: " + "; ".join(exp_rep["year_map"]))
    return IngestResult(table=table, kind="panel", report=report, require_exposure=require)


def _check_rate(rows: pd.DataFrame, indicator: str, lines: dict[str, int], design: pd.DataFrame,
                *, counts_file: str | None, denominators_file: str | None) -> None:
    """Stop when a binomial indicator's count exceeds its denominator (rate above 1)."""

    if indicator not in INDICATORS or not get_family(INDICATORS[indicator].family).count_within_exposure:
        return
    first = {}
    for w in design["ward"]:
        ls = [lines[p] for p in str(w).split("+") if p in lines]
        if ls:
            first[w] = min(ls)
    check_binomial_rates(
        rows, indicator=indicator, counts_file=counts_file, denominators_file=denominators_file,
        first_line={(w, str(p)): first[w] for w, p in zip(rows["ward"], rows["period_label"],
                                                           strict=True) if w in first},
    )
