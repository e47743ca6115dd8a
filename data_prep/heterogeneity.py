"""Measure ward-level heterogeneity in real small-area extracts.

The synthetic default panel (:mod:`nbdid.data_prep.synthetic`) needs realistic
between-ward variation: how much areas differ in their level (``ward_sd``), how much
their change between two periods varies (``change_sd``), how noisy a single
area-period is beyond Poisson/binomial noise (``overdispersion``) and how prices vary
within and between areas.  The defaults in :class:`nbdid.config.GeneratorConfig` were
measured with the functions below on the public extracts in ``../shared/data``
(see ``docs/synthetic_panel.md``); ``tests/test_synthetic.py`` re-measures them when
the extracts are present.

Method (method of moments on the log / logit scale)
----------------------------------------------------
For counts :math:`c_{a,t}` of area :math:`a` in period :math:`t` with
:math:`\\log \\mu_{a,t} = \\alpha_t + u_a + v_{a,t}`, the sampling variance of
:math:`\\log c` is about :math:`1/c`, so

* level SD: :math:`\\operatorname{var}_a(\\log c_{a,t}) - \\overline{1/c_{a,t}} - od^2`;
* short-run noise (overdispersion, ``od``): adjacent periods share everything but
  :math:`v`, so :math:`\\operatorname{var}(\\log c_{a,t+1}/c_{a,t}) - \\overline{1/c_{a,t}
  + 1/c_{a,t+1}} = 2\\,od^2`;
* long-run change SD: the same for periods far apart gives
  :math:`\\text{change}^2 + 2\\,od^2`; the change SD is what remains.

Counts are aggregated to MSOAs (about 8,000 residents), the closest available unit to
a ward (about 10,000 residents).  Binomial rates of about 30% turn log-scale SDs into
logit-scale SDs by dividing by :math:`1 - p`.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
"""Where the shared real extracts live (the repo is a sibling of ``shared/``)."""


@dataclass(frozen=True)
class CountHeterogeneity:
    """Heterogeneity measured from area counts (log scale unless stated).

    Attributes
    ----------
    areas
        Number of areas used.
    level_sd
        Between-area SD of the log count beyond sampling noise.
    overdispersion
        SD of short-run (adjacent-period) area noise beyond sampling noise.
    change_sd
        SD of the long-run area-specific change beyond short-run noise.
    mean_count
        Mean count per area-period in the base period.
    """

    areas: int
    level_sd: float
    overdispersion: float
    change_sd: float
    mean_count: float


def _moment_sd(var: float) -> float:
    return float(np.sqrt(max(var, 0.0)))


def count_heterogeneity(
    base: pd.Series, adjacent: pd.Series, late: pd.Series, *, min_count: int = 5
) -> CountHeterogeneity:
    """Method-of-moments heterogeneity of area counts in three periods.

    Parameters
    ----------
    base, adjacent, late
        Counts per area (index = area) in a base period, a period adjacent to it and a
        period far from it.
    min_count
        Areas with a count below this in any period are dropped (log of small counts).
    """
    df = pd.concat({"b": base, "a": adjacent, "l": late}, axis=1, join="inner").astype(float)
    df = df[(df >= min_count).all(axis=1)]
    lb, la, ll = np.log(df["b"]), np.log(df["a"]), np.log(df["l"])
    short = (la - lb)
    short = short - short.mean()
    od2 = (short.var(ddof=1) - (1 / df["a"] + 1 / df["b"]).mean()) / 2
    level_var = lb.var(ddof=1) - (1 / df["b"]).mean() - max(od2, 0.0)
    long = (ll - lb)
    long = long - long.mean()
    change_var = long.var(ddof=1) - (1 / df["l"] + 1 / df["b"]).mean() - 2 * max(od2, 0.0)
    return CountHeterogeneity(
        areas=len(df),
        level_sd=_moment_sd(level_var),
        overdispersion=_moment_sd(od2),
        change_sd=_moment_sd(change_var),
        mean_count=float(df["b"].mean()),
    )


# ----------------------------------------------------------------------------------------
# DWP children in relative low income (MSOA)
# ----------------------------------------------------------------------------------------


def read_children_low_income_msoa(path: str | Path | None = None) -> pd.DataFrame:
    """Read the Stat-Xplore MSOA extract of children in relative low income.

    Returns a table with one row per MSOA (name) and one column per financial year
    (``"2014/15"`` ...), dropping annotation columns and the geography header,
    ``Unknown`` and ``Total`` rows.
    """
    path = Path(path) if path is not None else (
        SHARED_DATA / "dwp_statxplore" / "children_relative_low_income_msoa_14-22_headerstripped.csv"
    )
    df = pd.read_csv(path, encoding="utf-8", dtype=str, keep_default_na=False)
    area_col = df.columns[0]
    years = [c for c in df.columns if c[:4].isdigit() and "Annotations" not in c]
    df = df[[area_col, *years]].rename(columns={area_col: "area"})
    for y in years:
        df[y] = pd.to_numeric(df[y].str.replace(",", ""), errors="coerce")
    df = df.dropna(subset=years)
    df = df[~df["area"].isin(["Unknown", "Total"])]
    return df.set_index("area")


def measure_children_low_income(path: str | Path | None = None, *, p: float = 0.30) -> dict[str, float]:
    """Heterogeneity of children in relative low income across MSOAs (logit scale).

    Base 2014/15, adjacent 2015/16, late 2020/21 (the report's two periods).  Log-scale
    SDs of counts are turned into logit-scale SDs by dividing by ``1 - p`` (``p`` = a
    typical low-income share of the study wards).  The level SD includes variation
    in the number of children per MSOA and so overstates the rate SD somewhat.
    """
    df = read_children_low_income_msoa(path)
    h = count_heterogeneity(df["2014/15"], df["2015/16"], df["2020/21"])
    k = 1.0 / (1.0 - p)
    return {
        "areas": h.areas,
        "level_sd_logit": h.level_sd * k,
        "overdispersion_logit": h.overdispersion * k,
        "change_sd_logit": h.change_sd * k,
        "mean_count": h.mean_count,
    }


# ----------------------------------------------------------------------------------------
# Police UK burglary (Metropolitan Police, LSOA -> MSOA)
# ----------------------------------------------------------------------------------------


def read_police_msoa_counts(path: str | Path) -> pd.Series:
    """Count street-level crimes per MSOA (LSOA name minus its final letter)."""
    df = pd.read_csv(path, encoding="utf-8", dtype=str, usecols=["LSOA name", "Crime type"])
    df = df.dropna(subset=["LSOA name"])
    msoa = df["LSOA name"].str.strip().str[:-1].str.strip()
    return msoa.value_counts().rename("count")


def measure_burglary(folder: str | Path | None = None) -> dict[str, float]:
    """Heterogeneity of burglary counts across London MSOAs (log scale).

    Base = Dec 2010 + Jan 2011 (the report's 2010/11), adjacent = Jun 2015 is too far,
    so the short-run noise compares Dec 2010 with Jan 2011 (each month doubled);
    late = Jun 2021 + Jun 2022 (around the report's 2020/21).
    """
    folder = Path(folder) if folder is not None else SHARED_DATA / "police_uk_met_burglary_only"

    def month(tag: str) -> pd.Series:
        return read_police_msoa_counts(folder / f"{tag}-metropolitan-street.csv")

    dec, jan = month("2010-12"), month("2011-01")
    base = dec.add(jan, fill_value=0)
    late = month("2021-06").add(month("2022-06"), fill_value=0)
    # short-run noise from two single months; the base level/change use two months
    both = pd.concat({"d": dec, "j": jan}, axis=1, join="inner").astype(float)
    both = both[(both >= 3).all(axis=1)]
    short = np.log(both["j"]) - np.log(both["d"])
    od2 = (short.var(ddof=1) - (1 / both["d"] + 1 / both["j"]).mean()) / 2
    df = pd.concat({"b": base, "l": late}, axis=1, join="inner").astype(float)
    df = df[(df >= 5).all(axis=1)]
    # a two-month sum carries half the single-month short-run variance
    level_var = np.log(df["b"]).var(ddof=1) - (1 / df["b"]).mean() - max(od2, 0.0) / 2
    long = np.log(df["l"]) - np.log(df["b"])
    change_var = long.var(ddof=1) - (1 / df["l"] + 1 / df["b"]).mean() - 2 * max(od2, 0.0) / 2
    return {
        "areas": len(df),
        "level_sd_log": _moment_sd(level_var),
        "overdispersion_log": _moment_sd(od2),
        "change_sd_log": _moment_sd(change_var),
        "mean_count": float(df["b"].mean()),
    }


# ----------------------------------------------------------------------------------------
# Land Registry prices
# ----------------------------------------------------------------------------------------

PPD_COLUMNS = (
    "transaction_id", "price", "date", "postcode", "property_type", "new_build", "tenure",
    "paon", "saon", "street", "locality", "town", "district", "county", "ppd_category",
    "record_status",
)


def read_price_paid(path: str | Path | None = None) -> pd.DataFrame:
    """Read a headerless HM Land Registry Price Paid extract (16 quoted fields)."""
    path = Path(path) if path is not None else SHARED_DATA / "land_registry_ppd" / "pp-complete_head10297.csv"
    text = Path(path).read_text(encoding="utf-8")
    rows = [r for r in csv.reader(io.StringIO(text)) if len(r) == len(PPD_COLUMNS)]
    df = pd.DataFrame(rows, columns=list(PPD_COLUMNS))
    df["price"] = pd.to_numeric(df["price"], errors="coerce")
    return df.dropna(subset=["price"])


def measure_prices(path: str | Path | None = None, *, min_sales: int = 8) -> dict[str, float]:
    """Within- and between-area SD of log prices, areas = postcode districts (outcodes).

    Uses standard ('A') price-paid records with a postcode.  The within-area SD is the
    pooled SD of log prices around their outcode mean; the between-area SD is the SD
    of outcode mean log prices minus their sampling variance.
    """
    df = read_price_paid(path)
    df = df[(df["ppd_category"] == "A") & (df["postcode"].str.len() > 4) & (df["price"] > 0)]
    df = df.assign(outcode=df["postcode"].str.split(" ").str[0], lp=np.log(df["price"]))
    g = df.groupby("outcode")["lp"]
    stats = g.agg(["count", "mean", "var"])
    stats = stats[stats["count"] >= min_sales]
    within_var = float(((stats["count"] - 1) * stats["var"]).sum() / (stats["count"] - 1).sum())
    between_var = float(stats["mean"].var(ddof=1) - (within_var / stats["count"]).mean())
    return {
        "areas": len(stats),
        "sales": int(stats["count"].sum()),
        "within_sd_log": float(np.sqrt(within_var)),
        "between_sd_log": _moment_sd(between_var),
    }


def measure_all(shared: str | Path | None = None) -> dict[str, dict[str, float]]:
    """Run every measurement on the shared extracts (raises ``FileNotFoundError`` if absent)."""
    base = Path(shared) if shared is not None else SHARED_DATA
    return {
        "children_low_income": measure_children_low_income(
            base / "dwp_statxplore" / "children_relative_low_income_msoa_14-22_headerstripped.csv"
        ),
        "burglary": measure_burglary(base / "police_uk_met_burglary_only"),
        "prices": measure_prices(base / "land_registry_ppd" / "pp-complete_head10297.csv"),
    }
