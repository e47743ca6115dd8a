"""The tipping point, Bayesian version: what do the published numbers support?

:mod:`nbdid.analysis.tipping` asks *how much* ward-to-ward variation in change would
overturn each finding.  This module answers the follow-up question with a prior on
that variation measured from real small-area data, using nothing but the report's
published group values and 95% half-widths (Tables 5A-11A).

Model (per indicator)
---------------------
Write ``D = (v1 - v0)_NBI - (v1 - v0)_benchmark`` for the published difference in
differences and ``S0^2`` for the sum of the four squared pooled standard errors
``(h / 1.96)^2``.  Each ward's change deviates from its group's expected change by a
ward-specific amount with standard deviation ``tau`` on a *relative* scale (the log of
a rate or price, the logit of a percentage).  In the indicator's own unit that is
``k_g tau`` for group ``g``, where ``k_g`` is the derivative of the unit with respect
to the relative scale at the group's *final* level ``v1`` (a ward-specific change moves
the final value given the base value):

* log scale (rates, prices): ``k_g = v1_g``;
* logit scale (percentages): ``k_g = m p (1 - p)`` with ``p = v1_g / m``, ``m = 100``.

A group's pooled change is an exposure-weighted mean over its wards; with ``n``
equally sized wards (29 in the report) the ward-specific changes add ``k_g^2 tau^2 / n``
to its variance (with unequal wards pass the effective number ``1 / sum(w_i^2)``).  With
a correlation ``rho`` between the ward-specific changes of matched partners,

    D | delta, tau  ~  Normal(delta, V(tau)),
    V(tau) = S0^2 + (k_NBI^2 + k_B^2 - 2 rho k_NBI k_B) tau^2 / n,

where ``delta`` is the DiD the published numbers estimate.  Priors:

* ``delta ~ Normal(0, s^2)`` with ``s`` = half the average published level of the
  indicator (weakly informative: a DiD as large as half the level is one prior SD);
* ``tau ~ HalfNormal(sigma)`` with ``sigma`` measured from real data
  (:data:`PRIOR_SCALES`), or a log-normal with median ``sigma`` as a sensitivity option.

Given ``tau`` the model is normal-normal conjugate, so ``delta | D, tau`` is normal with
variance ``1 / (1/s^2 + 1/V)`` and mean ``variance * D / V``; and ``tau | D`` has density
proportional to ``p(tau) Normal(D; 0, s^2 + V(tau))``.  The marginal posterior of
``delta`` is therefore a one-dimensional mixture of normals, computed exactly up to
quadrature error by integrating over ``tau`` on a fine grid of prior quantiles (midpoint
rule on the probability scale; 4,000 nodes give errors far below the rounding of the
published numbers).  No MCMC is needed.

The prior scales
----------------
Measured with :func:`measure_prior_scales` from the public extracts in
``../shared/data`` (see :class:`MeasuredHeterogeneity` for the numbers and
``docs/tipping_point.md`` for the argument); the package carries the numbers so that
nothing here needs those files.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from nbdid.analysis.tipping import tipping_points
from nbdid.data_prep import heterogeneity as het
from nbdid.data_prep import published
from nbdid.errors import InputError
from nbdid.registry import INDICATORS, Indicator

Z95 = 1.959963984540054
PriorFamily = Literal["halfnormal", "lognormal"]
PRIOR_FAMILIES: tuple[str, ...] = ("halfnormal", "lognormal")
LOGNORMAL_SDLOG = 0.5
"""Log-SD of the log-normal sensitivity prior (its median is the measured scale)."""
BENEFIT_THRESHOLD = 0.975
"""P(benefit) needed to call a benefit 'significant' (the one-sided half of a 95% interval)."""


@dataclass(frozen=True)
class MeasuredHeterogeneity:
    """Between-area SD of change, measured on real small-area data (relative scales).

    Each number is the SD, across areas, of the change in an indicator between two
    periods *beyond* the Poisson sampling noise of the counts, by the method of moments
    of :mod:`nbdid.data_prep.heterogeneity`:
    ``var(log c_late - log c_base) - mean(1/c_base + 1/c_late)``.  It includes both the
    persistent area-specific change and the year-to-year noise of each period, since both
    make a ward's change differ from its group's expected change.  Measured with
    :func:`measure_prior_scales` on ``../shared/data``;
    ``tests/test_tipping_bayes.py`` re-measures them when the extracts are present.

    Attributes
    ----------
    children_low_income_logit
        DWP Stat-Xplore, children in relative low-income families, 8,480 GB MSOAs
        (about 8,000 residents, close to a ward's 10,000), financial years 2014/15 and
        2020/21, the report's own two periods.  Log-count SD of change 0.211, turned into
        the logit scale by dividing by ``1 - 0.30`` (0.30 = the study wards' typical
        share, the convention of :func:`nbdid.data_prep.heterogeneity.measure_children_low_income`).
        It includes changes in the number of children per MSOA (the extract has no
        denominators), so it overstates the variation of the rate somewhat.
    children_low_income_areas
        MSOAs used (at least 5 children in low income in each year used).
    burglary_log
        police.uk street-level burglaries of the Metropolitan Police, LSOAs aggregated
        to 733 London MSOAs, Dec 2010 + Jan 2011 against Jun 2021 + Jun 2022 (around the
        report's 2010/11 and 2020/21).  The persistent change SD (0.394) plus the
        year-to-year noise of two annual totals (single-month noise SD 0.111, divided
        over 12 independent months: ``0.394^2 + 2 * 0.111^2 / 12``).
    burglary_areas
        MSOAs used (at least 5 burglaries in both two-month windows).
    property_price_log
        NOT measured: no extract has prices of the same areas in two periods.  The
        assumed ``price_change_sd`` of :class:`nbdid.config.GeneratorConfig` (0.10 on
        the log scale, i.e. ward price growth over a decade differing by about 10%).
    """

    children_low_income_logit: float = 0.302
    children_low_income_areas: int = 8480
    burglary_log: float = 0.397
    burglary_areas: int = 733
    property_price_log: float = 0.10


MEASURED = MeasuredHeterogeneity()
"""The measured numbers the package carries."""


@dataclass(frozen=True)
class PriorScale:
    """The prior scale of the between-ward SD of change of one indicator.

    Attributes
    ----------
    scale
        ``"logit"`` (percentages) or ``"log"`` (rates and prices).
    sigma
        Scale of the prior on ``tau`` on that relative scale.
    source
        ``"measured"``, ``"borrowed"`` or ``"assumed"``.
    basis
        Where the number comes from and why it applies, in words.
    """

    scale: Literal["log", "logit"]
    sigma: float
    source: Literal["measured", "borrowed", "assumed"]
    basis: str = field(default="")


def default_prior_scales(measured: MeasuredHeterogeneity = MEASURED) -> dict[str, PriorScale]:
    """Prior scale per indicator: measured, or borrowed from the nearest measurement."""
    cil = measured.children_low_income_logit
    bur = measured.burglary_log
    return {
        "out_of_work_benefits": PriorScale(
            "logit", cil, "borrowed",
            "borrowed from children in low-income families (DWP, MSOAs, 2014/15-2020/21): the "
            "nearest measured indicator - also a DWP benefit-based share of residents, over the "
            "same Universal Credit decade; no MSOA out-of-work benefit series is available",
        ),
        "children_low_income": PriorScale(
            "logit", cil, "measured",
            f"measured: {measured.children_low_income_areas:,} GB MSOAs, children in relative "
            "low-income families, 2014/15 to 2020/21 (DWP Stat-Xplore)",
        ),
        "crime": PriorScale(
            "log", bur, "borrowed",
            "borrowed from burglary (police.uk, London MSOAs): same recording system and periods; "
            "all crime pools many offence types and probably varies less, so the prior is generous",
        ),
        "burglary": PriorScale(
            "log", bur, "measured",
            f"measured: {measured.burglary_areas} London MSOAs, police.uk burglaries, "
            "Dec 2010-Jan 2011 to Jun 2021-Jun 2022",
        ),
        "criminal_damage": PriorScale(
            "log", bur, "borrowed",
            "borrowed from burglary (police.uk, London MSOAs): another single offence type of "
            "similar frequency, same recording system and periods",
        ),
        "property_price": PriorScale(
            "log", measured.property_price_log, "assumed",
            "assumed (not measured: no two-period price extract): ward price growth differing "
            "by about 10% over the decade, the synthetic panel's price_change_sd",
        ),
        "business_units": PriorScale(
            "log", bur, "borrowed",
            "borrowed from burglary: the only measured change of a count rate on the log scale; "
            "no business-count extract is available (ward counts are apportioned from MSOAs)",
        ),
    }


def measure_prior_scales(shared: str | Path | None = None) -> MeasuredHeterogeneity:
    """Re-measure :class:`MeasuredHeterogeneity` from the extracts in ``../shared/data``.

    Parameters
    ----------
    shared
        The ``shared/data`` folder (default: the sibling of the repository).

    Raises
    ------
    FileNotFoundError
        If the extracts are absent.
    """
    base = Path(shared) if shared is not None else het.SHARED_DATA
    cil = het.measure_children_low_income(
        base / "dwp_statxplore" / "children_relative_low_income_msoa_14-22_headerstripped.csv"
    )
    bur = het.measure_burglary(base / "police_uk_met_burglary_only")
    # total variation of the change: persistent part + year-to-year noise at both ends
    cil_tau = float(np.hypot(cil["change_sd_logit"], np.sqrt(2) * cil["overdispersion_logit"]))
    # burglary's short-run noise was measured on single months; annual totals carry 1/12
    bur_tau = float(np.sqrt(bur["change_sd_log"] ** 2 + 2 * bur["overdispersion_log"] ** 2 / 12))
    return MeasuredHeterogeneity(
        children_low_income_logit=cil_tau,
        children_low_income_areas=int(cil["areas"]),
        burglary_log=bur_tau,
        burglary_areas=int(bur["areas"]),
        property_price_log=MEASURED.property_price_log,
    )


# ----------------------------------------------------------------------------------------
# the per-indicator problem
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Problem:
    ind: Indicator
    did: float
    se0: float
    k_nbi: float
    k_benchmark: float
    coef: float  # V(tau) = se0^2 + coef * tau^2
    unit_per_tau: float  # tau in the unit, in the sense of tipping_points.csv
    did_prior_sd: float
    prior: PriorScale
    family: str
    level: float

    def variance(self, tau: np.ndarray) -> np.ndarray:
        return self.se0**2 + self.coef * np.asarray(tau, dtype=float) ** 2

    def given_tau(self, tau: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Posterior mean and SD of the DiD for fixed ``tau`` (normal-normal conjugacy)."""
        v = self.variance(tau)
        s2 = self.did_prior_sd**2
        if np.isinf(s2):
            return np.full_like(v, self.did), np.sqrt(v)
        post_var = 1.0 / (1.0 / s2 + 1.0 / v)
        return post_var * self.did / v, np.sqrt(post_var)

    def evidence(self, tau: np.ndarray) -> np.ndarray:
        """Density of the published DiD given ``tau``, the DiD integrated out (1 if flat)."""
        v = self.variance(tau)
        if np.isinf(self.did_prior_sd):
            return np.ones_like(v)
        return stats.norm.pdf(self.did, 0.0, np.sqrt(self.did_prior_sd**2 + v))

    def benefit(self, mean: np.ndarray, sd: np.ndarray) -> np.ndarray:
        z = np.asarray(mean) / np.asarray(sd)
        return stats.norm.cdf(-z) if self.ind.lower_is_better else stats.norm.cdf(z)

    # prior of tau
    def prior_dist(self):
        sigma = self.prior.sigma
        if self.family == "halfnormal":
            return stats.halfnorm(scale=sigma)
        return stats.lognorm(s=LOGNORMAL_SDLOG, scale=sigma)


def _problems(
    values: pd.DataFrame | None,
    *,
    n_per_group: float,
    pair_correlation: float,
    prior: str,
    prior_scales: dict[str, PriorScale] | None,
    scale_factor: float,
    did_prior_sd_rel: float,
    z: float = Z95,
) -> list[_Problem]:
    if n_per_group < 2:
        raise InputError(f"wards per group must be at least 2, not {n_per_group}")
    if not -1.0 <= pair_correlation <= 1.0:
        raise InputError(f"the pair correlation must lie in [-1, 1], not {pair_correlation}")
    if prior not in PRIOR_FAMILIES:
        raise InputError(f"unknown prior '{prior}' for tau; use one of {', '.join(PRIOR_FAMILIES)}")
    if not scale_factor > 0:
        raise InputError(f"the prior scale factor must be positive, not {scale_factor}")
    if not did_prior_sd_rel > 0:
        raise InputError(f"the DiD prior SD must be positive, not {did_prior_sd_rel}")
    scales = default_prior_scales() if prior_scales is None else prior_scales
    w = published.report_wide() if values is None else values
    out = []
    for key, g in w.groupby("indicator", sort=False):
        ind = INDICATORS[key]
        n = g[g.group == "nbi"].iloc[0]
        b = g[g.group == "benchmark"].iloc[0]
        did = float((n.v1 - n.v0) - (b.v1 - b.v0))
        se0 = float(np.sqrt(((np.array([n.h0, n.h1, b.h0, b.h1], dtype=float) / z) ** 2).sum()))
        ps = scales[key]
        if ps.scale == "logit":
            m = ind.multiplier

            def k(v: float, m: float = m) -> float:
                return m * (v / m) * (1 - v / m)
        else:

            def k(v: float) -> float:
                return abs(v)
        kn, kb = k(float(n.v1)), k(float(b.v1))
        coef = (kn**2 + kb**2 - 2 * pair_correlation * kn * kb) / n_per_group
        level = float(np.mean([n.v0, n.v1, b.v0, b.v1]))
        out.append(
            _Problem(
                ind=ind, did=did, se0=se0, k_nbi=kn, k_benchmark=kb, coef=coef,
                unit_per_tau=float(np.sqrt(coef * n_per_group / 2)),
                did_prior_sd=did_prior_sd_rel * abs(level),
                prior=PriorScale(ps.scale, ps.sigma * scale_factor, ps.source, ps.basis),
                family=prior, level=level,
            )
        )
    return out


def _fmt(ind: Indicator, x: float, *, sign: bool = False) -> str:
    s = "+" if sign and x > 0 else ""
    if ind.unit == "£":
        return f"{'-' if x < 0 else s}£{abs(x):,.0f}"
    if ind.unit == "%":
        return f"{s}{x:.1f} pp"
    return f"{s}{x:,.1f}"


def _claim(ind: Indicator, better: bool, significant: bool) -> str:
    if better and significant:
        return "significantly better change than the benchmark"
    if better:
        return "better change than the benchmark, not significant"
    if significant:
        return "significantly worse change than the benchmark"
    return "worse change than the benchmark, not significant"


def _verdict(claim_better: bool, claim_sig: bool, prob: float) -> tuple[str, bool]:
    """Verdict on the report's claim given the posterior probability of benefit."""
    p_claim = prob if claim_better else 1 - prob
    if claim_sig:
        return ("supported", True) if p_claim >= BENEFIT_THRESHOLD else ("not supported", False)
    if prob >= BENEFIT_THRESHOLD or prob <= 1 - BENEFIT_THRESHOLD:
        return "stronger than claimed", False
    return "consistent", True


class _Marginal:
    """Posterior of the DiD averaged over the posterior of tau (a normal mixture)."""

    def __init__(self, pb: _Problem, grid_size: int):
        u = (np.arange(grid_size) + 0.5) / grid_size
        self.tau = pb.prior_dist().ppf(u)
        w = pb.evidence(self.tau)
        self.w = w / w.sum()
        self.m, self.s = pb.given_tau(self.tau)
        self.pb = pb

    def mean(self) -> float:
        return float(np.sum(self.w * self.m))

    def sd(self) -> float:
        mu = self.mean()
        return float(np.sqrt(np.sum(self.w * (self.s**2 + (self.m - mu) ** 2))))

    def cdf(self, x: float) -> float:
        return float(np.sum(self.w * stats.norm.cdf((x - self.m) / self.s)))

    def quantile(self, q: float) -> float:
        lo = float(np.min(self.m - 12 * self.s))
        hi = float(np.max(self.m + 12 * self.s))
        return float(optimize.brentq(lambda x: self.cdf(x) - q, lo, hi, xtol=1e-10 * (hi - lo)))

    def prob_benefit(self) -> float:
        return float(np.sum(self.w * self.pb.benefit(self.m, self.s)))

    def tau_quantile(self, q: float) -> float:
        cw = np.cumsum(self.w) - self.w / 2
        return float(np.interp(q, cw, self.tau))

    def prob_tau_above(self, t: float) -> float:
        return float(np.sum(self.w[self.tau > t]))


def tipping_bayes(
    values: pd.DataFrame | None = None,
    *,
    n_per_group: float = 29,
    pair_correlation: float = 0.0,
    prior: PriorFamily = "halfnormal",
    prior_scales: dict[str, PriorScale] | None = None,
    scale_factor: float = 1.0,
    did_prior_sd_rel: float = 0.5,
    grid_size: int = 4000,
) -> pd.DataFrame:
    """Posterior DiD per indicator from the published aggregates alone.

    Parameters
    ----------
    values
        Published values in wide form (:func:`nbdid.data_prep.published.report_wide`,
        the report's by default): ``indicator, group, v0, h0, v1, h1``.
    n_per_group
        Effective number of wards per group (29; ``1 / sum(w_i^2)`` with unequal wards).
    pair_correlation
        Correlation of the ward-specific changes of matched partners (0 by default: 28
        of the 29 pairs lie in different local authorities).
    prior
        ``"halfnormal"`` (scale = the measured SD) or ``"lognormal"`` (median = the
        measured SD, log-SD :data:`LOGNORMAL_SDLOG`).
    prior_scales
        Prior scale per indicator (default :func:`default_prior_scales`).
    scale_factor
        Multiplies every prior scale (sensitivity: 0.5 = the study wards vary half as
        much as all MSOAs).
    did_prior_sd_rel
        SD of the normal prior of the DiD as a multiple of the indicator's average
        published level (``numpy.inf`` for a flat prior).
    grid_size
        Quadrature nodes over the prior of ``tau``.

    Returns
    -------
    pandas.DataFrame
        One row per indicator: the report's DiD (``report_did``) and its pooled normal
        interval (``report_did_lower/upper`` = ``D -/+ 1.96 S0``), the report's claim
        (Table 1 as printed: ``report_better``, ``report_significant``, ``report_claim``),
        the prior (``tau_scale, tau_prior, tau_prior_sigma, tau_prior_source,
        tau_prior_basis``), the posterior DiD (``posterior_did, posterior_sd,
        posterior_q2.5, posterior_q97.5, prob_benefit``), ``verdict`` and ``supported``,
        the posterior median of ``tau`` (relative and in the unit), the tipping point of
        :func:`nbdid.analysis.tipping.tipping_points` (``tipping_tau_unit``) and on the
        relative scale (``tipping_tau``), the prior and posterior probabilities that
        ``tau`` exceeds it, and a plain-language ``interpretation``.
    """
    problems = _problems(
        values, n_per_group=n_per_group, pair_correlation=pair_correlation, prior=prior,
        prior_scales=prior_scales, scale_factor=scale_factor, did_prior_sd_rel=did_prior_sd_rel,
    )
    tp = tipping_points(values, n_per_group=int(round(n_per_group))).set_index("indicator")
    t1 = published.load_table1().set_index("indicator")
    rows = []
    for pb in problems:
        ind, key = pb.ind, pb.ind.key
        mg = _Marginal(pb, grid_size)
        prob = mg.prob_benefit()
        better = bool(t1.loc[key, "better_relative"])
        sig = bool(t1.loc[key, "relative_significant"])
        verdict, supported = _verdict(better, sig, prob)
        # tipping point on the relative scale, for this model's variance
        excess = (pb.did / Z95) ** 2 - pb.se0**2
        tip = float(np.sqrt(excess / pb.coef)) if excess > 0 else 0.0
        tau_med = mg.tau_quantile(0.5)
        lo, hi = mg.quantile(0.025), mg.quantile(0.975)
        mean = mg.mean()
        pr = pb.prior_dist()
        prior_text = (
            f"half-normal({pb.prior.sigma:.3g})" if prior == "halfnormal"
            else f"log-normal(median {pb.prior.sigma:.3g}, sdlog {LOGNORMAL_SDLOG})"
        )
        interp = (
            f"The report claims a {_claim(ind, better, sig)} (DiD {_fmt(ind, pb.did, sign=True)}). "
            f"Allowing for ward-to-ward variation in change ({pb.prior.scale}-scale SD with a "
            f"{prior_text} prior, {pb.prior.source}), its published numbers give a DiD of "
            f"{_fmt(ind, mean, sign=True)} [{_fmt(ind, lo)}, {_fmt(ind, hi)}] with "
            f"P(benefit) = {prob:.2f}: {verdict}."
        )
        rows.append(
            dict(
                indicator=key, title=ind.title, unit=ind.unit,
                report_did=pb.did, report_se=pb.se0,
                report_did_lower=pb.did - Z95 * pb.se0, report_did_upper=pb.did + Z95 * pb.se0,
                report_better=better, report_significant=sig,
                report_claim=_claim(ind, better, sig),
                n_per_group=n_per_group, pair_correlation=pair_correlation,
                tau_scale=pb.prior.scale, tau_prior=prior, tau_prior_sigma=pb.prior.sigma,
                tau_prior_source=pb.prior.source, tau_prior_basis=pb.prior.basis,
                k_nbi=pb.k_nbi, k_benchmark=pb.k_benchmark, unit_per_tau=pb.unit_per_tau,
                did_prior_sd=pb.did_prior_sd,
                posterior_did=mean, posterior_sd=mg.sd(),
                **{"posterior_q2.5": lo, "posterior_q97.5": hi},
                prob_benefit=prob, verdict=verdict, supported=supported,
                tau_posterior_median=tau_med,
                tau_posterior_median_unit=tau_med * pb.unit_per_tau,
                tipping_tau=tip, tipping_tau_unit=float(tp.loc[key, "tau_star"]),
                prob_tau_above_tipping_prior=float(pr.sf(tip)),
                prob_tau_above_tipping_posterior=mg.prob_tau_above(tip),
                interpretation=interp,
            )
        )
    return pd.DataFrame(rows)


def tipping_bayes_curve(
    values: pd.DataFrame | None = None,
    *,
    taus: np.ndarray | None = None,
    n_tau: int = 121,
    summary: pd.DataFrame | None = None,
    n_per_group: float = 29,
    pair_correlation: float = 0.0,
    prior: PriorFamily = "halfnormal",
    prior_scales: dict[str, PriorScale] | None = None,
    scale_factor: float = 1.0,
    did_prior_sd_rel: float = 0.5,
) -> pd.DataFrame:
    """Posterior DiD as a function of a fixed between-ward SD of change ``tau``.

    Parameters
    ----------
    values, n_per_group, pair_correlation, prior, prior_scales, scale_factor, did_prior_sd_rel
        As in :func:`tipping_bayes`.
    taus
        Values of ``tau`` (relative scale) to evaluate; by default ``n_tau`` points from 0
        to the larger of the prior's 99.7% quantile and 1.15 times the tipping point.
    n_tau
        Number of default ``tau`` values.
    summary
        The output of :func:`tipping_bayes` with the same settings (computed when
        ``None``); its per-indicator results are repeated on every row so that the table
        alone draws :func:`nbdid.figures.plot_tipping_bayes`.

    Returns
    -------
    pandas.DataFrame
        One row per indicator and ``tau``: ``tau`` (relative), ``tau_unit`` (in the
        indicator's unit, comparable with ``tipping_points.csv``), ``posterior_did,
        posterior_sd, posterior_q2.5, posterior_q97.5, prob_benefit`` given that ``tau``,
        ``prior_density`` and ``posterior_density`` of ``tau``, and the indicator's
        summary columns (``title, unit, tau_scale, tau_prior_sigma, report_did,
        report_did_lower, report_did_upper, report_claim, report_significant,
        marginal_did, marginal_q2.5, marginal_q97.5, marginal_prob_benefit, verdict,
        tipping_tau``).
    """
    kw = dict(
        n_per_group=n_per_group, pair_correlation=pair_correlation, prior=prior,
        prior_scales=prior_scales, scale_factor=scale_factor, did_prior_sd_rel=did_prior_sd_rel,
    )
    problems = _problems(values, **kw)
    summ = (tipping_bayes(values, **kw) if summary is None else summary).set_index("indicator")
    frames = []
    for pb in problems:
        key = pb.ind.key
        s = summ.loc[key]
        pr = pb.prior_dist()
        if taus is None:
            top = max(float(pr.ppf(0.997)), 1.15 * float(s.tipping_tau))
            t = np.linspace(0.0, top, n_tau)
        else:
            t = np.asarray(taus, dtype=float)
            if (t < 0).any():
                raise InputError("tau must be non-negative")
        mean, sd = pb.given_tau(t)
        # posterior density of tau: prior x marginal likelihood of D, normalised
        u = (np.arange(4000) + 0.5) / 4000
        norm = float(np.mean(pb.evidence(pr.ppf(u))))
        lik = pb.evidence(t)
        prior_d = pr.pdf(t)
        frames.append(
            pd.DataFrame(
                {
                    "indicator": key,
                    "tau": t,
                    "tau_unit": t * pb.unit_per_tau,
                    "posterior_did": mean,
                    "posterior_sd": sd,
                    "posterior_q2.5": mean - Z95 * sd,
                    "posterior_q97.5": mean + Z95 * sd,
                    "prob_benefit": pb.benefit(mean, sd),
                    "prior_density": prior_d,
                    "posterior_density": prior_d * lik / norm,
                    "title": pb.ind.title,
                    "unit": pb.ind.unit,
                    "tau_scale": pb.prior.scale,
                    "tau_prior_sigma": pb.prior.sigma,
                    "unit_per_tau": pb.unit_per_tau,
                    "report_did": s.report_did,
                    "report_did_lower": s.report_did_lower,
                    "report_did_upper": s.report_did_upper,
                    "report_claim": s.report_claim,
                    "report_significant": bool(s.report_significant),
                    "marginal_did": s.posterior_did,
                    "marginal_q2.5": s["posterior_q2.5"],
                    "marginal_q97.5": s["posterior_q97.5"],
                    "marginal_prob_benefit": s.prob_benefit,
                    "verdict": s.verdict,
                    "tipping_tau": s.tipping_tau,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def format_tipping_bayes(summary: pd.DataFrame) -> str:
    """One line per indicator for the terminal."""
    lines = [
        "Judging the report without ward data (Bayesian tipping point; prior on the between-ward "
        "SD of change measured from real MSOA data):"
    ]
    for _, r in summary.iterrows():
        ind = INDICATORS[r.indicator]
        lines.append(
            f"  {r.indicator:<22} DiD {_fmt(ind, r.posterior_did, sign=True)} "
            f"[{_fmt(ind, r['posterior_q2.5'])}, {_fmt(ind, r['posterior_q97.5'])}], "
            f"P(benefit) {r.prob_benefit:.2f}; report: {r.report_claim} -> {r.verdict}"
        )
    return "\n".join(lines)


SENSITIVITY_SETTINGS: dict[str, dict[str, object]] = {
    "default": {},
    "prior scale x 0.5": {"scale_factor": 0.5},
    "prior scale x 0.25": {"scale_factor": 0.25},
    "log-normal prior": {"prior": "lognormal"},
    "pair correlation 0.5": {"pair_correlation": 0.5},
    "flat DiD prior": {"did_prior_sd_rel": np.inf},
    "20 effective wards": {"n_per_group": 20},
}
"""Settings of :func:`tipping_bayes_sensitivity` (keyword arguments of :func:`tipping_bayes`)."""


def tipping_bayes_sensitivity(
    values: pd.DataFrame | None = None,
    settings: dict[str, dict[str, object]] | None = None,
) -> pd.DataFrame:
    """:func:`tipping_bayes` under several settings, stacked.

    Parameters
    ----------
    values
        Published values in wide form (the report's by default).
    settings
        Label -> keyword arguments of :func:`tipping_bayes` (default
        :data:`SENSITIVITY_SETTINGS`).

    Returns
    -------
    pandas.DataFrame
        ``setting, indicator, posterior_did, posterior_q2.5, posterior_q97.5,
        prob_benefit, verdict, supported``.
    """
    settings = SENSITIVITY_SETTINGS if settings is None else settings
    cols = ["indicator", "posterior_did", "posterior_q2.5", "posterior_q97.5", "prob_benefit",
            "verdict", "supported"]
    frames = [
        tipping_bayes(values, **kw)[cols].assign(setting=label)  # type: ignore[arg-type]
        for label, kw in settings.items()
    ]
    out = pd.concat(frames, ignore_index=True)
    return out[["setting", *cols]]
