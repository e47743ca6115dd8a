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

Exposure comes from a ward denominators table (``nbdid ingest population``) for the year
a period starts in (``2014/15`` -> 2014, ``August 2015`` -> 2015).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from nbdid.data_prep.population import (
    _key,
    apportion_counts,
    area_ward_weights,
    read_denominators,
    read_sape,
)
from nbdid.data_prep.statxplore import read_statxplore
from nbdid.errors import InputError

__all__ = [
    "add_arguments",
    "attach_exposure",
    "match_areas",
    "period_year",
    "run_ingest",
    "statxplore_to_wards",
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


def attach_exposure(
    wards: pd.DataFrame, denominators: pd.DataFrame, denominator: str, *, file: str | None
) -> pd.DataFrame:
    """Add ``exposure`` from a ward denominators table for the year each period starts in."""
    den = denominators[denominators["denominator"] == denominator]
    if den.empty:
        have = ", ".join(sorted(denominators["denominator"].unique()))
        raise InputError(f"no '{denominator}' rows (it has {have})", file=file,
                         column="denominator")
    out = wards.copy()
    out["year"] = [period_year(p) for p in out["period_label"]]
    out = out.merge(den[["ward", "year", "value"]].rename(columns={"value": "exposure"}),
                    on=["ward", "year"], how="left")
    miss = out["exposure"].isna()
    if miss.any():
        r = out[miss].iloc[0]
        raise InputError(
            f"no '{denominator}' for ward {r['ward']} ({r['ward_name']}) in {r['year']} "
            f"({int(miss.sum())} ward-periods lack one)", file=file, column="value",
        )
    return out.drop(columns="year")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nbdid ingest dwp``."""
    parser.add_argument("--file", required=True, metavar="EXPORT.csv",
                        help="Stat-Xplore CSV export (areas in rows, periods in columns)")
    parser.add_argument("--indicator", required=True,
                        help="indicator key of the counts, e.g. children_low_income or "
                             "out_of_work_benefits")
    parser.add_argument("--lookup", required=True, metavar="LOOKUP.csv",
                        help="ONS LSOA11 (recommended: MSOAs are apportioned) or MSOA11 "
                             "to ward lookup")
    parser.add_argument("--population", metavar="DENOMS.csv",
                        help="ward denominators table (nbdid ingest population) for exposure")
    parser.add_argument("--denominator",
                        help="denominator to use (default: the indicator's, e.g. "
                             "children_0_19)")
    parser.add_argument("--periods",
                        help="comma-separated periods to keep, e.g. '2014/15,2020/21' "
                             "(default: all)")
    parser.add_argument("--missing", choices=("zero", "error"), default="zero",
                        help="'..' cells: count as 0 (default) or stop with an error")
    parser.add_argument("--apportion-population", metavar="SAPE.csv",
                        help="ONS SAPE LSOA file: apportion MSOAs by LSOA population "
                             "instead of by LSOA count")
    parser.add_argument("--design", metavar="DESIGN.csv",
                        help="wards to keep: group, pair and ward codes or ward_name + la "
                             "(default: the report's 58 wards)")


def _apportion_weights(args: argparse.Namespace, lookup: pd.DataFrame) -> pd.DataFrame:
    pop = None
    if getattr(args, "apportion_population", None):
        s = read_sape(args.apportion_population)
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
    args: argparse.Namespace,
) -> tuple[pd.DataFrame, dict[str, Any], dict[str, Any], pd.DataFrame]:
    """Read the export and the lookup; ward counts for every ward of the lookup."""
    from nbdid.data_prep.lookups import read_lookup

    data, meta = read_statxplore(args.file)
    lookup = read_lookup(args.lookup)
    weights = _apportion_weights(args, lookup)
    periods = [p.strip() for p in args.periods.split(",")] if args.periods else None
    wards, rep = statxplore_to_wards(data, weights, periods=periods, missing=args.missing,
                                     file=str(args.file))
    return wards, rep, meta, lookup


def run_ingest(args: argparse.Namespace) -> Any:
    """Build panel rows for ``nbdid ingest dwp``."""
    from nbdid.data_prep.police import load_design
    from nbdid.data_prep.schema import IngestResult
    from nbdid.registry import INDICATORS

    wards, rep, meta, lookup = build_ward_counts(args)
    denominator = args.denominator or (
        INDICATORS[args.indicator].denominator_key if args.indicator in INDICATORS else None)
    require = False
    if args.population:
        if denominator is None:
            raise InputError(f"indicator '{args.indicator}' is not in the registry; "
                             "pass --denominator")
        dens = read_denominators(args.population)
        wards = attach_exposure(wards, dens, denominator, file=str(args.population))
        require = True
    design, drep = load_design(getattr(args, "design", None), args.lookup, lookup)
    dwards, crep = to_design(wards, design)
    table = panel_rows(dwards, args.indicator, rep["periods"])
    report = {
        "source": "DWP Stat-Xplore",
        "file": str(args.file),
        "title": meta["title"], "measure": meta["measure"], "filters": meta["filters"],
        "row_field": meta["row_field"], "column_field": meta["column_field"],
        "encoding": meta["encoding"],
        "missing_cells_in_file": meta["n_missing"],
        "provisional_periods": meta["provisional_periods"],
        "total_row": {p: meta["totals"].get(p) for p in rep["periods"]},
        "lookup": str(args.lookup), "lookup_level": lookup.attrs.get("level"),
        "lookup_vintage": lookup.attrs.get("vintage"),
        "indicator": args.indicator,
        "exposure": f"'{denominator}' from {args.population}" if args.population else "none",
        **rep, **drep, **crep,
    }
    return IngestResult(table=table, kind="panel", report=report, require_exposure=require)
