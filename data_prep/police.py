"""Street-level crime from data.police.uk -> ward x year counts (crime, burglary, criminal damage).

``nbdid ingest police --crime-dir DIR --lookup LSOA_TO_WARD.csv --out PANEL.csv``

police.uk publishes one CSV per force and month, ``YYYY-MM-<force>-street.csv``, one
row per crime with its 2011 (or, from 2023, 2021) LSOA.  This module

* reads every street file of a folder (any line endings, including bare CR), and skips
  and reports other files (``-outcomes.csv``, ``-stop-and-search.csv``);
* classifies crimes: ``crime`` = every type except *Anti-social behaviour*;
  ``burglary`` = *Burglary*; ``criminal_damage`` = *Criminal damage and arson*;
* sums LSOA x month counts to wards through an ONS LSOA-to-ward lookup and to
  financial years (April-March, labelled ``"2010/11"``) or calendar years;
* reports rows without an LSOA, LSOAs outside the lookup, months missing within each
  year (police.uk has gaps, e.g. Greater Manchester from July 2019), and design wards
  without any data;
* joins exposures from ``--population`` (the long table of ``nbdid ingest population``:
  ``ward, year, denominator, value``; ``population`` for crime and criminal damage,
  ``households`` for burglary) when given.

``post`` is 1 for periods starting in or after ``--post-from`` (default ``2014-04``:
financial year 2014/15 or calendar year 2015 onwards).  The report compares 2010/11
with 2020/21, so a panel of those two years has ``post`` 0 and 1.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Sequence
from os import PathLike
from pathlib import Path

import pandas as pd

from nbdid.data_prep.lookups import read_csv_columns, read_header, read_lookup, read_text
from nbdid.errors import InputError

STREET_RE = re.compile(r"(\d{4})-(\d{2})-([a-z0-9-]+?)-street\.csv$", re.IGNORECASE)
STREET_COLUMNS: tuple[str, ...] = ("Month", "LSOA code", "Crime type")
ASB = "Anti-social behaviour"

INDICATOR_TYPES: dict[str, str] = {
    "crime": f"every crime type except '{ASB}'",
    "burglary": "'Burglary'",
    "criminal_damage": "'Criminal damage and arson'",
}
"""How each police indicator is counted from the ``Crime type`` column."""

DEFAULT_POST_FROM = "2014-04"


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
    header = [c.strip() for c in text.split("\n", 1)[0].split(",")]
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
    bad = ~df["month"].str.fullmatch(r"\d{4}-\d{2}").fillna(False)
    if bad.any():
        i = int(bad.to_numpy().nonzero()[0][0])
        raise InputError(
            f"Month must be YYYY-MM, got '{df['month'].iloc[i]}'", file=p, row=i + 2, column="Month"
        )
    df["lsoa"] = df["lsoa"].str.upper()
    return df


def count_street_crime(
    files: Sequence[tuple[Path, str]],
    indicators: Sequence[str] = tuple(INDICATOR_TYPES),
) -> tuple[pd.DataFrame, dict]:
    """Count crimes by LSOA x month x indicator over street files.

    Returns
    -------
    (counts, info)
        ``counts``: ``lsoa, month, indicator, count`` (rows without LSOA excluded);
        ``info``: rows read per file, rows without LSOA per month, crime types found,
        months present, and any file whose Month column disagrees with its name.
    """
    parts, per_file, mismatched = [], [], []
    for p, month in files:
        df = read_street_file(p)
        per_file.append({"file": str(p), "month": month, "rows": len(df)})
        months = set(df["month"].dropna())
        if months and months != {month}:
            mismatched.append({"file": str(p), "name_month": month, "data_months": sorted(months)})
        parts.append(df)
    rows = pd.concat(parts, ignore_index=True)
    flags = classify(rows["crime_type"])
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
    }
    long = []
    keep = rows.loc[~no_lsoa, ["lsoa", "month"]]
    any_rows = keep.groupby(["lsoa", "month"]).size().rename("count").reset_index()
    any_rows["indicator"] = "_any"
    long.append(any_rows)
    for ind in indicators:
        if ind not in INDICATOR_TYPES:
            raise InputError(
                f"unknown police indicator '{ind}' (choose from {', '.join(INDICATOR_TYPES)})",
                column="--indicators",
            )
        sub = keep[flags.loc[~no_lsoa, ind].to_numpy()]
        g = sub.groupby(["lsoa", "month"]).size().rename("count").reset_index()
        g["indicator"] = ind
        long.append(g)
    counts = pd.concat(long, ignore_index=True)[["lsoa", "month", "indicator", "count"]]
    return counts, info


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


def build_panel(
    counts: pd.DataFrame,
    info: dict,
    lookup: pd.DataFrame,
    design: pd.DataFrame,
    *,
    year_type: str = "financial",
    post_from: str = DEFAULT_POST_FROM,
    population: pd.DataFrame | None = None,
    indicators: Sequence[str] = tuple(INDICATOR_TYPES),
    complete_years_only: bool = False,
) -> tuple[pd.DataFrame, dict]:
    """Ward x period panel rows (schema of :mod:`nbdid.data_prep.schema`) and a report.

    Parameters
    ----------
    counts, info
        From :func:`count_street_crime`.
    lookup
        Normalised LSOA-to-ward lookup (:func:`nbdid.data_prep.lookups.read_lookup`).
    design
        ``ward, ward_name, la, group, pair`` (composite ids ``A+B`` allowed).
    year_type
        ``"financial"`` (April-March) or ``"calendar"``.
    post_from
        ``YYYY-MM``: periods starting in or after this month get ``post = 1``.
    indicators
        Police indicators to output (keys of :data:`INDICATOR_TYPES`).
    population
        Optional ``ward, year, denominator, value`` table; ``year`` is matched to the
        period label, or else to its first year (mid-year estimate of the year the
        financial year starts in).
    complete_years_only
        Drop periods with months missing from the files (they are reported either way).
    """
    from nbdid.data_prep.lookups import aggregate_to_wards
    from nbdid.data_prep.wards import design_area_map

    report: dict = {}
    # areas outside the lookup (e.g. 2021 LSOAs E01035xxx with a 2011 lookup)
    anyc = counts[counts["indicator"] == "_any"]
    _, unmatched = aggregate_to_wards(anyc, lookup, "lsoa", ["count"])
    report["lsoas_outside_lookup"] = {
        "n_lsoas": int(len(unmatched)),
        "rows": int(unmatched["rows"].sum()) if len(unmatched) else 0,
        "crimes": int(unmatched["count"].sum()) if len(unmatched) else 0,
        "examples": unmatched["area"].astype(str).head(20).tolist(),
    }
    amap = design_area_map(lookup, design)
    c = counts.assign(period_label=period_of_month(counts["month"], year_type))
    agg, _ = aggregate_to_wards(c, lookup, "lsoa", ["count"], by=["indicator", "period_label", "month"], area_map=amap)

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
            + (" -- dropped (--complete-years-only)" if complete_years_only else " -- kept; counts cover only the months present")
        )
    if complete_years_only:
        labels = [lab for lab in labels if lab not in incomplete]
    if not labels:
        raise InputError("no period with all twelve months in the files (--complete-years-only)")

    anyw = agg[agg["indicator"] == "_any"]
    covered = set(anyw["ward"])
    ward_cov = []
    for w in design.itertuples(index=False):
        for lab in labels:
            sub = anyw[(anyw["ward"] == w.ward) & (anyw["period_label"] == lab)]
            ward_cov.append(
                {
                    "ward": w.ward,
                    "ward_name": w.ward_name,
                    "period_label": lab,
                    "months_with_crimes": int(sub["month"].nunique()),
                    "months_missing_in_files": coverage[lab]["months_missing"],
                    "crimes_any_type": int(sub["count"].sum()),
                }
            )
    report["ward_coverage"] = ward_cov
    no_data = design[~design["ward"].isin(covered)]
    report["design_wards"] = int(len(design))
    report["wards_with_data"] = int(design["ward"].isin(covered).sum())
    report["wards_without_data"] = [
        f"{r.ward_name} ({r.la}, {r.ward})" for r in no_data.itertuples(index=False)
    ]

    tot = (
        agg[agg["indicator"] != "_any"]
        .groupby(["indicator", "ward", "period_label"])["count"]
        .sum()
    )
    d = design[design["ward"].isin(covered)]
    grid = pd.MultiIndex.from_product(
        [list(indicators), d["ward"].tolist(), labels], names=["indicator", "ward", "period_label"]
    )
    panel = tot.reindex(grid, fill_value=0).rename("count").reset_index()
    panel = panel.merge(d, on="ward", how="left")
    order = {lab: i for i, lab in enumerate(labels)}
    panel["period"] = panel["period_label"].map(order).astype("int64")
    start = panel["period_label"].map(lambda lab: period_months(lab, year_type)[0])
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
            panel["pair"] = pd.array([pd.NA] * len(panel), dtype="Int64")

    if population is not None:
        panel, exp_report = join_exposure(panel, population)
        report["exposure"] = exp_report
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
    return df


def join_exposure(panel: pd.DataFrame, population: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Fill ``exposure`` from a denominators table (see :func:`read_population`)."""
    from nbdid.registry import get_indicator

    pop = population.assign(
        ward=population["ward"].astype("string"),
        year=population["year"].astype("string"),
        denominator=population["denominator"].astype("string"),
    )
    pop = pop.drop_duplicates(["ward", "year", "denominator"])
    key = pop.set_index(["ward", "year", "denominator"])["value"]
    den = panel["indicator"].map(lambda k: get_indicator(k).denominator_key)
    exact = pd.MultiIndex.from_arrays([panel["ward"], panel["period_label"], den])
    first = pd.MultiIndex.from_arrays([panel["ward"], panel["period_label"].str.slice(0, 4), den])
    v = key.reindex(exact).to_numpy()
    v2 = key.reindex(first).to_numpy()
    exposure = pd.Series(v, index=panel.index).fillna(pd.Series(v2, index=panel.index))
    out = panel.assign(exposure=exposure.astype(float))
    miss = out[out["exposure"].isna()]
    rep = {
        "rows_with_exposure": int(out["exposure"].notna().sum()),
        "rows_without_exposure": int(len(miss)),
        "missing": [
            f"{r.indicator} {r.ward} {r.period_label}" for r in miss.head(30).itertuples(index=False)
        ],
        "denominators": {k: get_indicator(k).denominator_key for k in sorted(set(panel["indicator"]))},
    }
    return out, rep


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``nbdid ingest police``."""
    parser.add_argument("--crime-dir", required=True, metavar="DIR",
                        help="folder with police.uk YYYY-MM-<force>-street.csv files (searched recursively)")
    parser.add_argument("--lookup", required=True, metavar="LSOA_TO_WARD.csv",
                        help="ONS LSOA (2011) to ward lookup; other ward lookups in the same folder "
                             "are used to resolve re-warded study wards")
    parser.add_argument("--year-type", choices=("financial", "calendar"), default="financial",
                        help="financial years April-March ('2010/11', default) or calendar years")
    parser.add_argument("--population", metavar="DENOMS.csv",
                        help="ward x year denominators (nbdid ingest population) for the exposure")
    parser.add_argument("--design", metavar="DESIGN.csv",
                        help="wards to keep: group, pair and ward codes or ward_name + la "
                             "(default: the report's 58 wards)")
    parser.add_argument("--indicators", default="crime,burglary,criminal_damage",
                        help="comma-separated subset of crime,burglary,criminal_damage")
    parser.add_argument("--post-from", default=DEFAULT_POST_FROM, metavar="YYYY-MM",
                        help="periods starting in or after this month are post=1 (default 2014-04)")
    parser.add_argument("--complete-years-only", action="store_true",
                        help="drop years with months missing from the files (reported either way)")


def load_design(design_path, lookup_path, lookup: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Design table for an ingest: a user's design file or the resolved study wards."""
    from nbdid.data_prep.wards import load_lookups, read_design, sibling_lookups, study_design

    vintage = str(lookup["vintage"].iloc[0])
    if design_path:
        lookups = load_lookups([lookup, *sibling_lookups(lookup_path)[1:]])
        lookups[vintage] = lookup
        design = read_design(design_path, lookups, vintage)
        return design, {"design": str(design_path), "design_wards": int(len(design))}
    lookups = load_lookups([lookup, *sibling_lookups(lookup_path)[1:]])
    lookups[vintage] = lookup
    design, res = study_design(lookups, vintage)
    rep = {
        "design": f"the report's 58 study wards resolved to {vintage}",
        "ward_lookups_used": sorted(lookups),
        "ward_resolution": {str(k): int(v) for k, v in res["method"].value_counts().items()},
        "wards_not_resolved": [
            f"{r.ward_name} ({r.la}): {r.note}" for r in res[res["ward_code"].isna()].itertuples(index=False)
        ],
        "wards_mapped": [
            f"{r.ward_name} ({r.la}) -> {r.ward_code}: {r.method}; {r.note}"
            for r in res[res["method"].str.startswith("mapped")].itertuples(index=False)
        ],
    }
    return design, rep


def run_ingest(args: argparse.Namespace):
    """Run ``nbdid ingest police``; returns an :class:`~nbdid.data_prep.schema.IngestResult`."""
    from nbdid.data_prep.schema import IngestResult

    if not re.fullmatch(r"\d{4}-\d{2}", args.post_from or ""):
        raise InputError(f"--post-from must be YYYY-MM, not '{args.post_from}'", column="--post-from")
    indicators = [s.strip() for s in str(args.indicators).split(",") if s.strip()]
    lookup = read_lookup(args.lookup)
    if lookup["level"].iloc[0] != "lsoa":
        raise InputError("police data need an LSOA-level lookup (got MSOA)", file=args.lookup)
    design, design_rep = load_design(args.design, args.lookup, lookup)
    files, skipped = list_crime_files(args.crime_dir)
    counts, info = count_street_crime(files, indicators)
    population = read_population(args.population) if args.population else None
    panel, rep = build_panel(
        counts, info, lookup, design,
        year_type=args.year_type, post_from=args.post_from, population=population,
        indicators=indicators, complete_years_only=args.complete_years_only,
    )
    types = set(info["crime_types"])
    report = {
        "crime_dir": str(args.crime_dir),
        "lookup": str(args.lookup),
        "lookup_vintage": str(lookup["vintage"].iloc[0]),
        "year_type": args.year_type,
        "indicator_definitions": {k: INDICATOR_TYPES[k] for k in indicators},
        "files_skipped": skipped,
        **design_rep,
        **info,
        **rep,
    }
    if len(types) <= 2 and ASB not in types:
        report["warning_crime_types"] = (
            f"the files contain only the crime type(s) {sorted(types)}: they look filtered, so "
            "'crime' and other totals count only these types"
        )
    require = population is not None and bool(panel["exposure"].notna().all())
    return IngestResult(table=panel, kind="panel", report=report, require_exposure=require)
