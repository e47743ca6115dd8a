"""The tipping point: how much ward-to-ward variation would overturn each finding?

The report's intervals treat each group of 29 wards as one big pool of people, so
they only carry sampling noise.  Real wards differ: even with identical treatment, the
change in (say) the crime rate varies from ward to ward.  If the change varies between
wards with standard deviation ``tau`` (in the indicator's own unit), the mean change of
a group of ``n`` wards carries an extra variance ``tau^2 / n``, and the DiD (difference
of two such means) an extra ``2 tau^2 / n``.

With the report's pooled standard errors ``s_i = h_i / 1.96`` of the four published
values, the DiD ``D = (v1 - v0)_NBI - (v1 - v0)_benchmark`` has standard error

    SE(tau) = sqrt(s_NBI,0^2 + s_NBI,1^2 + s_B,0^2 + s_B,1^2 + 2 tau^2 / n)

and is significant at the 95% level while ``|D| > 1.96 SE(tau)``.  The tipping point
is the ``tau`` at which equality holds:

    tau* = sqrt(n / 2 * ((D / 1.96)^2 - SE(0)^2))

If ``|D| <= 1.96 SE(0)`` the DiD is not significant even with no ward variation, and
``tau* = 0``.  This uses a z-test on the pooled standard errors rather than the
report's overlap rule (which is stricter: two 95% intervals can overlap while the
difference is significant), so ``z_pooled`` is shown alongside.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from nbdid.analysis.replication import change_interval, intervals_overlap
from nbdid.data_prep import published
from nbdid.registry import INDICATORS, Indicator

Z95 = 1.959963984540054


def _amount(ind: Indicator, x: float, *, sign: bool = False) -> str:
    s = "+" if sign and x > 0 else ""
    if ind.unit == "£":
        return f"{'-' if x < 0 else s}£{abs(x):,.0f}"
    if ind.unit == "%":
        return f"{s}{x:.1f} percentage points"
    return f"{s}{x:,.1f} {ind.unit}"


def tipping_points(
    values: pd.DataFrame | None = None, *, n_per_group: int = 29, z: float = Z95
) -> pd.DataFrame:
    """Between-ward SD of change at which each published DiD stops being significant.

    Parameters
    ----------
    values
        Wide published values (:func:`nbdid.data_prep.published.report_wide`).
    n_per_group
        Wards per group (29 in the report).
    z
        Normal quantile of the test (1.96 for 95%).

    Returns
    -------
    pandas.DataFrame
        One row per indicator: ``did`` (NBI change minus benchmark change, indicator
        unit), ``se_pooled`` and ``z_pooled`` (the pooled z-test with no ward
        variation), ``p_pooled``, ``significant_pooled``, ``tau_star`` (the tipping
        point, indicator unit), ``tau_star_relative`` (as a share of the mean base
        level), and a plain-language ``interpretation``.
    """
    w = published.report_wide() if values is None else values
    rows = []
    for key, g in w.groupby("indicator", sort=False):
        ind = INDICATORS[key]
        n = g[g.group == "nbi"].iloc[0]
        b = g[g.group == "benchmark"].iloc[0]
        did = (n.v1 - n.v0) - (b.v1 - b.v0)
        se0 = np.sqrt(((np.array([n.h0, n.h1, b.h0, b.h1]) / z) ** 2).sum())
        z0 = did / se0
        p0 = 2 * stats.norm.sf(abs(z0))
        excess = (did / z) ** 2 - se0**2
        tau = float(np.sqrt(n_per_group / 2 * excess)) if excess > 0 else 0.0
        level = (n.v0 + b.v0) / 2
        fmt = ind.format_value
        if tau > 0:
            interp = (
                f"The DiD of {_amount(ind, did, sign=True)} stays significant only if the change "
                f"from {n.period0} to {n.period1} varies between wards with a standard deviation "
                f"below {_amount(ind, tau)} ({tau / abs(level):.0%} of the average base level "
                f"{fmt(level)})."
            )
        else:
            interp = (
                f"The DiD of {_amount(ind, did, sign=True)} is not significant even with no "
                "ward-to-ward variation at all (pooled z-test)."
            )
        report_sig = not intervals_overlap(
            *change_interval(n.v0, n.h0, n.v1, n.h1), *change_interval(b.v0, b.h0, b.v1, b.h1)
        )
        if report_sig != bool(abs(z0) > z):
            interp += (
                f" The report's overlap rule calls it {'' if report_sig else 'not '}significant; "
                f"a z-test on the same pooled standard errors gives p = {p0:.3f}."
            )
        rows.append(
            dict(
                indicator=key,
                unit=ind.unit,
                did=did,
                se_pooled=se0,
                z_pooled=z0,
                p_pooled=p0,
                significant_pooled=bool(abs(z0) > z),
                significant_report_rule=report_sig,
                n_per_group=n_per_group,
                tau_star=tau,
                tau_star_relative=tau / abs(level),
                interpretation=interp,
            )
        )
    return pd.DataFrame(rows)


def did_se_with_heterogeneity(
    tau: float | np.ndarray, se_pooled: float, n_per_group: int = 29
) -> np.ndarray:
    """Standard error of the DiD when the between-ward SD of change is ``tau``."""
    tau = np.asarray(tau, dtype=float)
    return np.sqrt(se_pooled**2 + 2 * tau**2 / n_per_group)
