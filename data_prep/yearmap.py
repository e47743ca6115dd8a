"""The year map: which denominator estimate serves each indicator's period.

Indicators come with period labels of several kinds (financial years ``2010/11``,
calendar years ``2011``, months ``August 2015``); denominators come as ONS mid-year
estimates (30 June of a year) and one Census count.  Before this map existed, a financial
year looked for an estimate labelled with its first year and burglary looked for
households of the period's year, so 3 of the 4 crime and burglary cells of the study got
no denominator.  Every join of denominators (police, DWP, NOMIS, ``nbdid build``) now
goes through :func:`join_denominators`, which uses this one table:

================  =========================  ==============================  =====================================================
denominator       period                     estimate used                   why
================  =========================  ==============================  =====================================================
population        financial year Y/Y+1       ONS mid-Y, all ages              30 June Y is the estimate nearest the middle of the
                                                                              financial year (1 October Y); mid-Y+1 is 9 months away
population        calendar year Y            ONS mid-Y, all ages              the estimate of the year itself (30 June = mid-year)
population        month (e.g. August Y)      ONS mid-Y, all ages              the estimate of the month's year
working_age       as population              ONS mid-Y, ages 16-64            as population
children_0_19     as population              ONS mid-Y, ages 0-19             as population
households        any period                 Census 2011 households           the only household count published for 2011 LSOAs;
                                                                              not scaled (``households_scaling="none"``), or
                                                                              scaled by the ward's population change since mid-2011
                                                                              (``"population"``, assumes constant household size)
================  =========================  ==============================  =====================================================

For the report's seven indicators this gives (:func:`study_year_map`):

* crime, criminal damage: 2010/11 -> mid-2010 population (``nbdid build``: mid-2011,
  below), 2020/21 -> mid-2020;
* burglary: 2010/11 and 2020/21 -> Census 2011 households (unscaled by default);
* children in low income: 2014/15 -> mid-2014 children 0-19, 2020/21 -> mid-2020;
* out-of-work benefits, business units: 2011 -> mid-2011 working age, 2021 -> mid-2021
  (mid-2021 small-area estimates are published for 2021 LSOAs: ingest them with a
  lookup of the same LSOAs, and check ``lsoas_not_in_lookup`` in the provenance;
  ``nbdid build``: mid-2020, below).

A missing estimate is refused with the fix: which file and year to add to
``nbdid ingest population``.  Composite wards (``A+B``, wards split between boundary
vintages) get the sum of their parts' denominators.

``nbdid build`` downloads the estimates from NOMIS, which serves small-area estimates for
2011 LSOAs for mid-2011 to mid-2020 only.  Four cells of the report's own periods ask for
a year outside that range, so the map has explicit entries for them
(:data:`REPORT_PERIOD_ESTIMATES`), used when the build asks for the report's periods:

====================  =====================  ====================  ====================
indicator             report's period        rule asks for         entry: estimate used
====================  =====================  ====================  ====================
crime                 2010/11                mid-2010 population   mid-2011 population
criminal damage       2010/11                mid-2010 population   mid-2011 population
out-of-work benefits  May 2021               mid-2021 working age  mid-2020 working age
business units        2021 (March snapshot)  mid-2021 working age  mid-2020 working age
====================  =====================  ====================  ====================

(the nearest published year in each case; the provenance and stderr state each one as the
year map's entry for the report's periods).  Any other estimate that is not published --
periods set in the build config's ``[periods]``, or ``households_scaling =
"population"``, which scales 2010/11 burglary by mid-2010 population -- stops the build
before any download, naming each indicator, period and estimate year and the fix;
``missing_estimates = "nearest"`` in the build config is the explicit opt-in that lets
the nearest published year serve them, stated in the provenance and on stderr.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from nbdid.errors import InputError
from nbdid.registry import INDICATORS, get_indicator

__all__ = [
    "HOUSEHOLDS_YEAR",
    "REPORT_PERIOD_ESTIMATES",
    "YEAR_MAP",
    "ReportPeriodEstimate",
    "YearMap",
    "YearRule",
    "denominator_estimate",
    "join_denominators",
    "period_kind",
    "study_year_map",
]

HOUSEHOLDS_YEAR = 2011
"""Year of the households denominator (Census 2011) in a denominators table."""

PeriodKind = Literal["financial year", "calendar year", "month"]
HouseholdsScaling = Literal["none", "population"]

_MONTHS = ("january february march april may june july august september october november "
           "december").split()


@dataclass(frozen=True)
class YearRule:
    """One row of the year map."""

    denominator: str
    period: str
    estimate: str
    why: str


YEAR_MAP: tuple[YearRule, ...] = (
    YearRule("population", "financial year Y/Y+1", "ONS mid-Y estimate, all ages",
             "30 June Y is the estimate nearest the middle of the financial year "
             "(1 October Y); mid-Y+1 is nine months away"),
    YearRule("population", "calendar year Y", "ONS mid-Y estimate, all ages",
             "the estimate of the year itself"),
    YearRule("population", "month of year Y", "ONS mid-Y estimate, all ages",
             "the estimate of the month's year"),
    YearRule("working_age", "as population", "ONS mid-Y estimate, ages 16-64", "as population"),
    YearRule("children_0_19", "as population", "ONS mid-Y estimate, ages 0-19", "as population"),
    YearRule("households", "any period", "Census 2011 households (year 2011)",
             "the only household count published for 2011 LSOAs; unscaled by default, or "
             "scaled by the ward's population change since mid-2011 "
             "(households_scaling='population', assumes constant household size)"),
)
"""The year map, one row per denominator and period kind (documented above)."""

MID_YEAR_DENOMINATORS: tuple[str, ...] = ("population", "working_age", "children_0_19")


@dataclass(frozen=True)
class ReportPeriodEstimate:
    """An entry of the year map for one of the report's own periods.

    Attributes
    ----------
    indicator
        Registry key.
    period
        The period as ``nbdid build`` asks the publisher for it (``BuildPeriods``:
        ``"2010/11"``, ``"2021-05"``, ``"2021"``).
    report_period
        The period as the report writes it.
    denominator
        Denominator key.
    estimate_year
        The mid-year the general rule (:data:`YEAR_MAP`) asks for.
    used_year
        The mid-year that serves instead.
    why
        The reason, for the provenance and the docs.
    """

    indicator: str
    period: str
    report_period: str
    denominator: str
    estimate_year: int
    used_year: int
    why: str


_NOT_PUBLISHED = ("not published for 2011 LSOAs (NOMIS serves mid-2011 to mid-2020; "
                  "mid-2021 onwards exist for 2021 LSOAs only)")

_POLICE_2010 = (f"mid-2010 is {_NOT_PUBLISHED}; mid-2011, nine months after the middle of "
                "the financial year, is the nearest published estimate")

REPORT_PERIOD_ESTIMATES: tuple[ReportPeriodEstimate, ...] = (
    *(ReportPeriodEstimate(key, "2010/11", "2010/11", "population", 2010, 2011, _POLICE_2010)
      for key in ("crime", "criminal_damage")),
    ReportPeriodEstimate(
        "out_of_work_benefits", "2021-05", "May 2021", "working_age", 2021, 2020,
        f"mid-2021 is {_NOT_PUBLISHED}; mid-2020 is the nearest published estimate "
        "(the latest)"),
    ReportPeriodEstimate(
        "business_units", "2021", "2021 (March snapshot)", "working_age", 2021, 2020,
        f"mid-2021 is {_NOT_PUBLISHED}; mid-2020, nine months before the March 2021 "
        "snapshot, is the nearest published estimate"),
)
"""The year map's explicit entries for the report's own periods whose estimate (by
:data:`YEAR_MAP`) is not published for 2011 LSOAs: the report chose periods (police
2010/11, May 2021, business units 2021) that ask for mid-2010 and mid-2021, and the
nearest published year serves each.  ``nbdid build`` uses an entry only when it asks for
the report's periods of the indicator's source (no ``[periods]`` entry for it, or the
same periods) and states each use in the provenance and on stderr; any other unpublished
estimate is refused unless ``missing_estimates = "nearest"``."""


@dataclass(frozen=True)
class YearMap:
    """Choices of the year map.

    Attributes
    ----------
    households_scaling
        ``"none"``: Census 2011 households serve every period; ``"population"``:
        Census 2011 households times the ward's population of the period's year over
        its mid-2011 population.
    """

    households_scaling: HouseholdsScaling = "none"

    def __post_init__(self) -> None:
        if self.households_scaling not in ("none", "population"):
            raise InputError(f"households_scaling must be 'none' or 'population', not "
                             f"'{self.households_scaling}'")


def period_kind(label: str) -> tuple[PeriodKind, int]:
    """Kind of a period label and the calendar year it starts in.

    >>> period_kind("2010/11"), period_kind("2011"), period_kind("August 2015")
    (('financial year', 2010), ('calendar year', 2011), ('month', 2015))

    Raises
    ------
    InputError
        For labels that are not a financial year, a calendar year or a month.
    """
    s = str(label).strip()
    m = re.fullmatch(r"((?:19|20)\d\d)\s*[/-]\s*(\d{2}|\d{4})", s)
    if m and int(m.group(2)[-2:]) == (int(m.group(1)) + 1) % 100:
        return "financial year", int(m.group(1))
    if re.fullmatch(r"(?:19|20)\d\d", s):
        return "calendar year", int(s)
    m = re.fullmatch(r"((?:19|20)\d\d)-(0[1-9]|1[0-2])", s)
    if m:
        return "month", int(m.group(1))
    m = re.fullmatch(r"([A-Za-z]+)\s+((?:19|20)\d\d)", s)
    if m and m.group(1).casefold() in _MONTHS:
        return "month", int(m.group(2))
    raise InputError(
        f"cannot tell which denominator estimate serves period '{label}' (the year map knows "
        "financial years '2010/11', calendar years '2011' and months 'August 2015')"
    )


def denominator_estimate(denominator: str, period_label: str) -> tuple[int, str]:
    """Year of the estimate that serves ``period_label`` and a description of it.

    >>> denominator_estimate("population", "2010/11")
    (2010, 'mid-2010 population')
    >>> denominator_estimate("households", "2020/21")
    (2011, 'Census 2011 households')
    """
    kind, year = period_kind(period_label)
    if denominator == "households":
        return HOUSEHOLDS_YEAR, "Census 2011 households"
    del kind  # every period kind maps to the mid-year estimate of the year it starts in
    return year, f"mid-{year} {denominator}"


def study_year_map() -> pd.DataFrame:
    """The year map applied to the report's indicators and periods (one row per cell)."""

    labels = {
        "out_of_work_benefits": ("2011", "2021"),
        "children_low_income": ("2014/15", "2020/21"),
        "crime": ("2010/11", "2020/21"),
        "burglary": ("2010/11", "2020/21"),
        "criminal_damage": ("2010/11", "2020/21"),
        "business_units": ("2011", "2021"),
    }
    rows = []
    for key, periods in labels.items():
        den = INDICATORS[key].denominator_key
        for lab in periods:
            year, what = denominator_estimate(den, lab)
            rows.append({"indicator": key, "period_label": lab, "denominator": den,
                         "estimate_year": year, "estimate": what})
    return pd.DataFrame(rows)


def _lookup_table(denominators: pd.DataFrame) -> pd.Series:
    d = denominators
    key = pd.MultiIndex.from_arrays([
        d["ward"].astype("string").str.strip().str.upper(),
        pd.to_numeric(d["year"]).astype("int64"),
        d["denominator"].astype("string").str.strip(),
    ], names=["ward", "year", "denominator"])
    s = pd.Series(pd.to_numeric(d["value"]).to_numpy(dtype=float), index=key)
    return s[~s.index.duplicated(keep="first")]


def _need_message(den: str, year: int, ward: str, ward_name: Any, indicator: str,
                  period: str, n: int) -> str:
    name = f" ({ward_name})" if isinstance(ward_name, str) and ward_name else ""
    if den == "households":
        fix = ("add the Census 2011 households table: 'nbdid ingest population ... "
               "--households KS105EW.csv'")
    else:
        fix = (f"add the mid-{year} small-area population estimates: 'nbdid ingest "
               f"population --sape ... sape_mid{year}.csv --year {year} ...'")
    what = "Census 2011 households" if den == "households" else f"mid-{year} {den}"
    return (f"no '{den}' for ward {ward}{name}: {indicator} {period} needs the {what} "
            f"(year map) and the denominators have none ({n} ward-period(s) lack one); {fix}")


def join_denominators(
    rows: pd.DataFrame,
    denominators: pd.DataFrame,
    *,
    denominator: str | None = None,
    year_map: YearMap | None = None,
    file: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Fill ``exposure`` of ward-period rows from a denominators table via the year map.

    Parameters
    ----------
    rows
        ``ward`` (codes, composite ``A+B`` allowed), ``period_label``, and ``indicator``
        (a registry key) unless ``denominator`` is given.
    denominators
        ``ward, year, denominator, value`` (``nbdid ingest population``).
    denominator
        Denominator key for every row (default: each row's indicator's).
    year_map
        :class:`YearMap` choices (default: Census 2011 households unscaled).
    file
        Name of the denominators file for error messages.

    Returns
    -------
    (rows, report)
        ``rows`` with ``exposure`` (float); the report lists the estimate used for each
        indicator and period.

    Raises
    ------
    InputError
        When a needed estimate is missing (naming the ward, the period, the estimate
        and which file to add) or a denominator is zero or negative.
    """

    ym = year_map or YearMap()
    table = _lookup_table(denominators)
    bad = table[~(table > 0)]
    if len(bad):
        (w, y, d), v = bad.index[0], bad.iloc[0]
        raise InputError(f"the '{d}' of ward {w} in {y} is {v:g}: a population or household "
                         "count of zero (or less) cannot be right", file=file, column="value")
    out = rows.copy()
    if denominator is not None:
        dens = pd.Series(denominator, index=out.index, dtype="object")
    else:
        dens = out["indicator"].map(lambda k: get_indicator(k).denominator_key)
    labels = out["period_label"].astype(str)
    est = [denominator_estimate(d, lab) for d, lab in zip(dens, labels, strict=True)]
    years = np.array([e[0] for e in est], dtype="int64")
    wards = out["ward"].astype("string").str.upper()
    parts = pd.DataFrame({"row": np.arange(len(out)), "part": wards.str.split("+").to_numpy(),
                          "year": years, "den": dens.to_numpy()}).explode("part")
    key = pd.MultiIndex.from_arrays([parts["part"].astype("string"),
                                     parts["year"].astype("int64"), parts["den"].astype("string")])
    vals = table.reindex(key).to_numpy(dtype=float)
    if ym.households_scaling == "population":
        hh = (parts["den"] == "households").to_numpy()
        lab_years = np.array([period_kind(x)[1] for x in labels], dtype="int64")
        part_years = lab_years[parts["row"].to_numpy(dtype="int64")]
        pop = "population"
        now = table.reindex(pd.MultiIndex.from_arrays([
            parts["part"].astype("string"), part_years, pd.Series(pop, index=parts.index)])).to_numpy()
        then = table.reindex(pd.MultiIndex.from_arrays([
            parts["part"].astype("string"), np.full(len(parts), HOUSEHOLDS_YEAR),
            pd.Series(pop, index=parts.index)])).to_numpy()
        vals = np.where(hh, vals * now / then, vals)
    row = parts["row"].to_numpy(dtype="int64")
    sums = np.bincount(row, weights=np.nan_to_num(vals), minlength=len(out))
    holes = np.bincount(row, weights=np.isnan(vals).astype(float), minlength=len(out))
    exposure = np.where(holes > 0, np.nan, sums)
    miss = np.isnan(exposure)
    if miss.any():
        i = int(np.flatnonzero(miss)[0])
        r = out.iloc[i]
        d, y = dens.iloc[i], int(years[i])
        ind = str(r["indicator"]) if "indicator" in out else "the indicator"
        if d == "households" and ym.households_scaling == "population":
            ly = period_kind(labels.iloc[i])[1]
            msg = (f"ward {r['ward']}: scaling Census 2011 households to {labels.iloc[i]} "
                   f"needs 'households' 2011 and 'population' for {HOUSEHOLDS_YEAR} and {ly}; "
                   "add them with 'nbdid ingest population', or use households_scaling='none'")
            raise InputError(msg, file=file)
        raise InputError(_need_message(d, y, str(r["ward"]), r.get("ward_name"), ind,
                                       labels.iloc[i], int(miss.sum())), file=file)
    out["exposure"] = exposure
    used = (pd.DataFrame({"indicator": out["indicator"] if "indicator" in out else "",
                          "period_label": labels, "denominator": dens, "estimate_year": years,
                          "estimate": [e[1] for e in est]})
            .drop_duplicates().sort_values(["indicator", "period_label"]))
    if ym.households_scaling == "population":
        used.loc[used["denominator"] == "households", "estimate"] += (
            " x population(period year) / population(mid-2011)")
    report = {
        "year_map": [f"{r.indicator} {r.period_label}: {r.estimate}" for r in used.itertuples()],
        "households_scaling": ym.households_scaling,
        "rows_with_exposure": int(len(out)),
    }
    return out, report


def year_map_rows(rules: Sequence[YearRule] = YEAR_MAP) -> list[dict[str, str]]:
    """The year map as plain dicts (for provenance reports and docs)."""
    return [{"denominator": r.denominator, "period": r.period, "estimate": r.estimate,
             "why": r.why} for r in rules]
