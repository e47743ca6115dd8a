"""Forensics on the published intervals: what denominators do the half-widths imply?

A pooled 95% interval ``v ± h`` fixes the size of the sample it was computed from:

* binomial (a percentage ``v`` of ``n`` people): ``h = 1.96 sqrt(p(1-p)/n)`` with
  ``p = v/100``, so ``n = p(1-p) / (h/100/1.96)^2``;
* Poisson (a rate ``v`` per ``m`` of a denominator ``N``): the count is ``vN/m`` and
  ``h = 1.96 sqrt(v m / N)``, so ``N = 1.96^2 v m / h^2``;
* a mean price ``v`` over ``n`` sales with coefficient of variation ``cv``:
  ``h = 1.96 cv v / sqrt(n)``, so ``n = (1.96 cv v / h)^2``.

Because the report rounds ``v`` and ``h``, each implied denominator is a range; we
give the central value and the range over all rounding corners.  The implied sizes are
then compared with what 29 wards can hold, and across indicators that share a
denominator (crime and criminal damage share the population; out-of-work benefits and
business units the working-age population; burglary uses households).
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from nbdid.data_prep import published
from nbdid.families import get_family
from nbdid.registry import INDICATORS

Z95 = 1.959963984540054

WARDS_PER_GROUP = 29

# Plausible size of one English ward (2011 Census / mid-year estimates): the typical
# range and the largest credible value.  Wards range from about 1,000 residents (rural)
# to about 30,000 (Birmingham's pre-2018 wards, the largest in England).  Shares follow
# England's 2011 age structure (working age 16-64 about 64%, children 0-19 about 24%,
# 2.4 people per household).
WARD_SIZE: dict[str, tuple[float, float, float]] = {
    # denominator_key: (typical_low, typical_high, largest credible)
    "population": (4_000, 20_000, 35_000),
    "working_age": (2_500, 13_000, 25_000),
    "children_0_19": (900, 5_500, 10_000),
    "households": (1_600, 8_500, 15_000),
}

# House sales: a ward of 2,000-8,000 dwellings turning over 2-5% a year sells roughly
# 40-400 homes a year.
SALES_PER_WARD_YEAR: tuple[float, float] = (40, 400)
PRICE_CV_ASSUMED: tuple[float, float, float] = (0.6, 0.4, 0.8)  # central, low, high
PRICE_PERIOD_YEARS = 6


def _corners(v: float, h: float, dv: float, dh: float) -> list[tuple[float, float]]:
    return [(v + a, h + b) for a, b in itertools.product((-dv, dv), (-dh, dh)) if h + b > 0]


def _implied(family: str, v: float, h: float, multiplier: float, z: float = Z95) -> float:
    return get_family(family).implied_total(v, h, multiplier, z=z)


def implied_denominators(values: pd.DataFrame | None = None, *, z: float = Z95) -> pd.DataFrame:
    """The pooled denominator each published half-width implies.

    Parameters
    ----------
    values
        Long published values (:func:`nbdid.data_prep.published.load_report_values`).
    z
        Normal quantile the report used (1.96 for 95%).

    Returns
    -------
    pandas.DataFrame
        One row per indicator, group and period: ``value, half_width, denominator,
        implied, implied_low, implied_high`` (the range over the report's rounding),
        ``per_ward`` (and low/high) for 29 wards, ``flag`` (``ok``, ``implausible`` or
        ``impossible``) and a plain-language ``explanation``.  For property prices the
        implied number of sales assumes a coefficient of variation of prices of 0.6
        (range 0.4-0.8), and ``per_ward`` is sales per ward per year.
    """
    vals = published.load_report_values() if values is None else values
    rows = []
    for r in vals.itertuples():
        ind = INDICATORS[r.indicator]
        dv = 0.5 * 10 ** (-ind.decimals)
        dh = 0.5 * 10 ** (-ind.half_width_decimals)
        if not get_family(ind.family).is_count:  # a mean of sales (prices)
            cv, cv_lo, cv_hi = PRICE_CV_ASSUMED
            implied = (z * cv * r.value / r.half_width) ** 2
            corners = [
                (z * c * v / h) ** 2
                for c in (cv_lo, cv_hi)
                for v, h in _corners(r.value, r.half_width, dv, dh)
            ]
            per = PRICE_PERIOD_YEARS * WARDS_PER_GROUP
            lo, hi = min(corners), max(corners)
            typ_lo, typ_hi = SALES_PER_WARD_YEAR
            per_ward, pw_lo, pw_hi = implied / per, lo / per, hi / per
            sd_if_wards = r.half_width * np.sqrt(WARDS_PER_GROUP) / z
            if pw_hi < typ_lo:
                flag = "implausible"
                expl = (
                    f"a pooled interval over individual sales this wide needs only about "
                    f"{implied:,.0f} sales ({per_ward:.1f} per ward per year) if prices vary by "
                    f"{cv:.0%} around the mean; 29 deprived wards sell roughly "
                    f"{typ_lo * per:,.0f}-{typ_hi * per:,.0f} homes in six years. The interval "
                    "was therefore not computed from all the sales: it matches an interval over "
                    f"29 ward averages whose standard deviation is about £{sd_if_wards:,.0f} "
                    f"({sd_if_wards / r.value:.0%} of the mean), or a small subsample"
                )
            else:
                flag = "ok"
                expl = (
                    f"about {implied:,.0f} sales ({per_ward:.1f} per ward per year) at a "
                    f"{cv:.0%} coefficient of variation"
                )
            rows.append(
                dict(
                    indicator=r.indicator, group=r.group, period=r.period,
                    period_label=r.period_label, value=r.value, half_width=r.half_width,
                    family=ind.family, denominator="sales (transactions)",
                    denominator_key="transactions", implied=implied, implied_low=lo,
                    implied_high=hi, per_ward=per_ward, per_ward_low=pw_lo,
                    per_ward_high=pw_hi, per_ward_unit="sales per ward per year",
                    flag=flag, explanation=expl,
                )
            )
            continue
        implied = _implied(ind.family, r.value, r.half_width, ind.multiplier, z)
        corners = [
            _implied(ind.family, v, h, ind.multiplier, z)
            for v, h in _corners(r.value, r.half_width, dv, dh)
        ]
        lo, hi = min(corners), max(corners)
        typ_lo, typ_hi, largest = WARD_SIZE[ind.denominator_key]
        per_ward, pw_lo, pw_hi = (x / WARDS_PER_GROUP for x in (implied, lo, hi))
        if pw_lo > largest:
            flag = "impossible"
            expl = (
                f"the ±{r.half_width:.{ind.half_width_decimals}f} interval implies a pooled {ind.denominator} of about "
                f"{implied:,.0f} ({per_ward:,.0f} per ward; at least {pw_lo:,.0f} allowing for "
                f"rounding), but no English ward has more than about {largest:,.0f}. An interval "
                "this narrow cannot come from a binomial or Poisson model of 29 wards' counts: it "
                "was computed on a far larger base (for example the larger areas the data were "
                "apportioned from, or with the wrong denominator), so it understates the "
                "uncertainty even before ward-to-ward variation is considered"
            )
        elif pw_hi < typ_lo or pw_lo > typ_hi:
            flag = "implausible"
            expl = (
                f"implies {per_ward:,.0f} per ward (range {pw_lo:,.0f}-{pw_hi:,.0f}); typical wards "
                f"have {typ_lo:,.0f}-{typ_hi:,.0f}"
            )
        else:
            flag = "ok"
            expl = (
                f"implies {implied:,.0f} ({per_ward:,.0f} per ward), a plausible size for 29 wards"
            )
        rows.append(
            dict(
                indicator=r.indicator, group=r.group, period=r.period,
                period_label=r.period_label, value=r.value, half_width=r.half_width,
                family=ind.family, denominator=ind.denominator,
                denominator_key=ind.denominator_key, implied=implied, implied_low=lo,
                implied_high=hi, per_ward=per_ward, per_ward_low=pw_lo, per_ward_high=pw_hi,
                per_ward_unit=f"{ind.denominator} per ward", flag=flag, explanation=expl,
            )
        )
    return pd.DataFrame(rows)


# (name, indicator a, indicator b, kind, expected ratio b/a range)
_CHECKS: tuple[tuple[str, str, str, str, tuple[float, float]], ...] = (
    ("same population", "crime", "criminal_damage", "same", (1.0, 1.0)),
    ("same working-age population", "out_of_work_benefits", "business_units", "same", (1.0, 1.0)),
    ("people per household", "burglary", "crime", "ratio", (1.8, 3.2)),
    ("working-age share of population", "crime", "out_of_work_benefits", "ratio", (0.50, 0.75)),
    ("children 0-19 share of population", "crime", "children_low_income", "ratio", (0.15, 0.35)),
)


def denominator_consistency(implied: pd.DataFrame | None = None) -> pd.DataFrame:
    """Check implied denominators across indicators that share or relate them.

    Indicators measured on the same people (crime and criminal damage: population;
    out-of-work benefits and business units: working-age population) must imply the
    same denominator within rounding; related denominators must stand in plausible
    ratios (people per household, working-age and child shares of the population).

    Returns
    -------
    pandas.DataFrame
        One row per check, group and period index: ``check, group, period, indicator_a,
        implied_a, range_a, indicator_b, implied_b, range_b, ratio, expected,
        consistent, explanation``.
    """
    imp = implied_denominators() if implied is None else implied
    key = imp.set_index(["indicator", "group", "period"])
    rows = []
    for name, a, b, kind, (elo, ehi) in _CHECKS:
        for group in ("nbi", "benchmark"):
            for period in (0, 1):
                ra, rb = key.loc[(a, group, period)], key.loc[(b, group, period)]
                ratio = rb.implied / ra.implied
                rlo, rhi = rb.implied_low / ra.implied_high, rb.implied_high / ra.implied_low
                if kind == "same":
                    ok = rlo <= 1.0 <= rhi
                    expected = "1 (same people)"
                else:
                    ok = rhi >= elo and rlo <= ehi
                    expected = f"{elo:g}-{ehi:g}"
                pa, pb = ra.period_label, rb.period_label
                if ok:
                    expl = f"consistent: ratio {ratio:.2f} (rounding range {rlo:.2f}-{rhi:.2f})"
                elif kind == "same":
                    expl = (
                        f"{b} ({pb}) implies {rb.implied:,.0f} but {a} ({pa}) implies "
                        f"{ra.implied:,.0f} for the same {ra.denominator}: {ratio:.1f} times as "
                        "many, beyond what rounding allows, so the two intervals cannot both be "
                        "pooled intervals over the same 29 wards"
                    )
                else:
                    expl = (
                        f"ratio {ratio:.2f} (rounding range {rlo:.2f}-{rhi:.2f}) is outside the "
                        f"plausible {expected}"
                    )
                rows.append(
                    dict(
                        check=name, group=group, period=period, indicator_a=a,
                        period_a=pa, implied_a=ra.implied,
                        range_a=f"{ra.implied_low:,.0f}-{ra.implied_high:,.0f}",
                        indicator_b=b, period_b=pb, implied_b=rb.implied,
                        range_b=f"{rb.implied_low:,.0f}-{rb.implied_high:,.0f}",
                        ratio=ratio, expected=expected, consistent=bool(ok),
                        explanation=expl,
                    )
                )
    return pd.DataFrame(rows)
