"""Simulated ward panels with a known truth (for tests, calibration and benchmarks).

The generator mimics real ward data rather than the models' own assumptions: matched
pairs share part of their level, wards differ in level (log-scale SD ``sigma_ward``,
about 0.4 for crime rates) and in their own change between periods (SD
``sigma_change``, about 0.2), exposures are 5,000-15,000 and drift a little between
periods; the NBI wards' change is shifted by ``did`` on the link scale.  Prices are
simulated transaction by transaction (log-normal within a ward-period).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from nbdid.families import FAMILIES, family_columns, get_family
from nbdid.registry import INDICATORS

DEFAULT_KEYS: dict[str, str] = {ind.family: key for key, ind in reversed(INDICATORS.items())}
"""Indicator key of simulated panels of each family: its first indicator in the registry
(crime for Poisson, out-of-work benefits for binomial, property price for prices);
a family without one uses its own name."""
"""Registry indicator written to simulated panels of each family (other families: the
family's name)."""


@dataclass(frozen=True)
class SimulationTruth:
    """The true values behind a simulated panel.

    Attributes
    ----------
    did
        Link-scale interaction used to generate the data.
    did_pa
        Population-averaged DiD in the indicator's unit for the simulated wards: the NBI
        group's post-period pooled value minus its value without the interaction,
        weighted by exposure (transactions for prices), from the *true* latent values.
    multiplier
        Unit multiplier used for ``did_pa`` (100 for %, 1,000 for rates, 1 for pounds).
    """

    did: float
    did_pa: float
    multiplier: float


def simulate_panel(
    family: str = "poisson",
    *,
    indicator: str | None = None,
    n_pairs: int = 29,
    n_periods: int = 2,
    first_post: int | None = None,
    did: float = 0.0,
    base: float | None = None,
    period_change: float = -0.2,
    group_diff: float = 0.3,
    sigma_pair: float = 0.3,
    sigma_ward: float = 0.4,
    sigma_change: float = 0.2,
    exposure_range: tuple[float, float] = (5_000.0, 15_000.0),
    price_sd_within: float = 0.5,
    mean_transactions: float = 40.0,
    seed: int | None = None,
    synthetic: bool = True,
    controls_per_set: int = 1,
    exposures: np.ndarray | None = None,
    sigma_wp: float = 0.0,
    change_form: Literal["walk", "step"] = "walk",
    sigma_change_nbi: float | None = None,
    covariate: str | None = None,
    covariate_shift: float = 0.0,
    covariate_level: float = 0.0,
    covariate_change: float = 0.0,
) -> tuple[pd.DataFrame, SimulationTruth]:
    """Simulate a tidy ward panel for one indicator.

    Parameters
    ----------
    family
        ``"binomial"``, ``"poisson"`` or ``"price"``.
    indicator
        Indicator key written to the panel (default: a registry indicator of the family).
    n_pairs
        Number of matched NBI/benchmark pairs (wards = 2 x pairs).
    n_periods, first_post
        Number of periods and the index of the first post period (default: the last).
    did
        True treatment x post interaction on the link scale (logit, log rate, log price).
    base
        Typical baseline value (proportion, rate per unit exposure, or price in pounds).
    period_change, group_diff
        Common change per period step and NBI-benchmark level difference (link scale).
    sigma_pair, sigma_ward, sigma_change
        SDs (link scale) of pair levels, ward levels within pairs and ward-specific
        change per period.
    exposure_range
        Range of the uniform baseline exposure (trials for binomial).
    price_sd_within, mean_transactions
        Within-ward-period SD of log prices and mean number of transactions.
    seed
        Random seed.
    synthetic
        Value of the ``synthetic`` column.
    controls_per_set
        Benchmark wards per matched set (1: pairs; ``k``: sets of one NBI ward and ``k``
        benchmarks, ``n_pairs`` sets of ``1 + k`` wards).
    exposures
        Baseline exposures (trials for binomial) to resample each ward's from, with
        replacement (e.g. a fitted panel's); default: uniform on ``exposure_range``.
    sigma_wp
        SD of independent ward x period noise on the link scale (year-to-year
        variation beyond the family's own sampling noise; 0: none).
    change_form
        ``"walk"``: each ward's level wanders by ``N(0, sigma_change)`` at every period
        step; ``"step"``: each ward changes once, by ``N(0, sigma_change)``, at
        ``first_post`` (the models' ward-specific change).  The same for two periods.
    sigma_change_nbi
        SD of the NBI wards' own changes when it differs from the benchmark wards'
        (``sigma_change``); default: the same.
    covariate, covariate_shift, covariate_level, covariate_change
        Name of a ward-level covariate column to add: ``x = covariate_shift * nbi +
        N(0, 1)`` per ward.  It shifts the ward's level by ``covariate_level * x`` and its
        change after the initiative by ``covariate_change * x`` (link scale): with both a
        shift and a change effect it is a confounder of the unadjusted DiD (parallel
        trends hold only conditionally on it).

    Returns
    -------
    tuple
        ``(panel, truth)``.
    """
    rng = np.random.default_rng(seed)
    fam = get_family(family)
    key = indicator or DEFAULT_KEYS.get(fam.name, fam.name)
    mult = INDICATORS[key].multiplier if key in INDICATORS else fam.default_multiplier
    if first_post is None:
        first_post = n_periods - 1
    base = fam.default_base if base is None else base
    centre = fam.link_of_base(base)
    if controls_per_set < 1:
        raise ValueError(f"controls_per_set must be at least 1, not {controls_per_set}")
    if change_form not in ("walk", "step"):
        raise ValueError(f"change_form must be 'walk' or 'step', not {change_form!r}")
    per_set = 1 + controls_per_set
    n_w = per_set * n_pairs
    pair = np.repeat(np.arange(1, n_pairs + 1), per_set)
    treated = np.tile([1] + [0] * controls_per_set, n_pairs)
    level = (
        centre
        + group_diff * treated
        + sigma_pair * rng.standard_normal(n_pairs)[pair - 1]
        + sigma_ward * rng.standard_normal(n_w)
    )
    if exposures is None:
        exposure0 = rng.uniform(*exposure_range, size=n_w)
    else:
        exposure0 = rng.choice(np.asarray(exposures, dtype=float), size=n_w)
    rows = []
    eta_true = np.zeros((n_w, n_periods))
    eta_cf = np.zeros((n_w, n_periods))
    wander = np.zeros(n_w)
    change_sd = np.where(treated == 1, sigma_change if sigma_change_nbi is None else sigma_change_nbi,
                         sigma_change)
    x = covariate_shift * treated + rng.standard_normal(n_w) if covariate else np.zeros(n_w)
    level = level + covariate_level * x
    step = change_sd * rng.standard_normal(n_w) if change_form == "step" else None
    for t in range(n_periods):
        post = int(t >= first_post)
        if step is not None:
            wander = step * post
        elif t > 0:
            wander = wander + change_sd * rng.standard_normal(n_w)
        eta_cf[:, t] = level + period_change * t + wander + covariate_change * x * post
        eta_true[:, t] = eta_cf[:, t] + did * treated * post
    if sigma_wp > 0:
        noise = sigma_wp * rng.standard_normal((n_w, n_periods))
        eta_cf += noise
        eta_true += noise
    empty = dict.fromkeys(family_columns(), np.nan)
    num = den = 0.0
    for t in range(n_periods):
        post = int(t >= first_post)
        for w in range(n_w):
            row = {
                "indicator": key,
                "ward": f"SIM{w + 1:04d}",
                "ward_name": f"Simulated ward {w + 1}",
                "la": f"Simulated LA {pair[w] % 7 + 1}",
                "group": "nbi" if treated[w] else "benchmark",
                "pair": int(pair[w]),
                "period": t,
                "period_label": str(2011 + 5 * t) if n_periods > 2 else ("2011", "2021")[t],
                "post": post,
                **empty,
                "synthetic": synthetic,
            }
            size = fam.simulate_size(exposure0[w], t, rng, mean_transactions=mean_transactions)
            values = fam.simulate(eta_true[w, t], size, rng, sd_within=price_sd_within)
            row.update({k: (v.item() if isinstance(v, np.ndarray) else v) for k, v in values.items()})
            if covariate:
                row[covariate] = float(x[w])
            if treated[w] and post:
                weight = float(values[fam.weight_column])
                v1 = fam.truth_value(eta_true[w, t], sd_within=price_sd_within)
                v0 = fam.truth_value(eta_cf[w, t], sd_within=price_sd_within)
                num += weight * (v1 - v0)
                den += weight
            rows.append(row)
    df = pd.DataFrame(rows)
    df["pair"] = df["pair"].astype("Int64")
    _family_value_columns(df)
    df["synthetic"] = df["synthetic"].astype(bool)
    return df, SimulationTruth(did=did, did_pa=float(mult * num / den), multiplier=mult)


def _family_value_columns(df: pd.DataFrame) -> None:
    """Every family's value column in ``df`` (missing ones empty), integer ones as Int64."""
    for name, (spec, _users) in family_columns().items():
        if name not in df.columns:
            df[name] = np.nan
        if spec.dtype == "Int64":
            df[name] = pd.array(df[name].to_numpy(float), dtype="Int64")


NATIONAL_COVARIATES: tuple[str, ...] = ("mean_rank", "share_most_deprived_decile")
"""Ward covariates a synthetic national panel carries (IMD 2019, from the real LSOA ranks)."""


def simulate_national_panel(
    wards: pd.DataFrame,
    treated: Sequence[str],
    *,
    family: str = "poisson",
    indicator: str | None = None,
    n_periods: int = 2,
    first_post: int | None = None,
    did: float = 0.0,
    base: float | None = None,
    treated_base: float | None = None,
    period_change: float = -0.05,
    group_diff: float = 0.0,
    sigma_ward: float = 0.3,
    sigma_change: float = 0.2,
    sigma_change_nbi: float | None = None,
    deprivation_level: float = 0.4,
    deprivation_change: float = 0.05,
    residents_per_lsoa: float = 1_600.0,
    covariates: Sequence[str] = NATIONAL_COVARIATES,
    seed: int | None = None,
) -> tuple[pd.DataFrame, SimulationTruth]:
    """Simulate an unpaired national panel on a real ward list: the initiative wards
    against every other ward as one hierarchical comparison population.

    Each ward's deprivation ``z`` is its standardised IMD 2019 mean LSOA rank (signed so
    that more deprived is positive).  Its link-scale value in period ``t`` is ::

        centre + group_diff * nbi + deprivation_level * z + sigma_ward * e_ward
               + period_change * t
               + post * (sigma_change * e_change + deprivation_change * z + did * nbi)

    so deprived wards have higher rates *and* change differently after the start:
    parallel trends hold only conditionally on the covariates (fit with
    ``covariates=NATIONAL_COVARIATES``).  Exposures (residents, or trials) are the ward's
    number of LSOAs times ``residents_per_lsoa``, drifting a little each period.  Every
    row is marked ``synthetic``.

    Parameters
    ----------
    wards
        One row per ward: ``ward``, ``ward_name``, ``la_name`` (or ``la``), ``n_lsoa``
        and the ``covariates`` (e.g. :func:`nbdid.data_prep.covariates.study_covariates`).
    treated
        Ward codes of the initiative wards (group ``nbi``); the others are ``benchmark``.
    family, indicator
        A count family (``"poisson"`` or ``"binomial"``) and the indicator key written.
    n_periods, first_post
        Periods (2: before/after; 11: an annual panel) and the first post period
        (default: the middle one, ``n_periods // 2``, for more than two periods).
    did
        True treatment x post effect on the link scale.
    base, period_change, group_diff, sigma_ward, sigma_change, sigma_change_nbi
        As in :func:`simulate_panel` (the change is a step at ``first_post``); ``base``
        is the typical value of a ward of average deprivation.
    treated_base
        Instead of ``base``: the typical value of the initiative wards before the start
        (e.g. the report's published figure); the national centre is set so that their
        mean link-scale level equals its link.
    deprivation_level, deprivation_change
        Effects of one SD of deprivation on the level and on the change after the start.
    residents_per_lsoa
        Exposure per LSOA (an LSOA has about 1,500 residents).
    covariates
        Ward covariate columns copied into every row.
    seed
        Random seed.

    Returns
    -------
    tuple
        ``(panel, truth)``: the tidy panel (``pair`` empty) and the true effect.
    """
    fam = get_family(family)
    if not fam.is_count:
        counts = ", ".join(n for n, f in FAMILIES.items() if f.is_count)
        raise ValueError(f"national panels are simulated for count families ({counts}), "
                         f"not {fam.name}")
    missing = [c for c in ("ward", "n_lsoa", *covariates) if c not in wards.columns]
    if missing:
        raise ValueError(f"the ward table lacks column(s) {', '.join(missing)}")
    if n_periods < 2:
        raise ValueError(f"n_periods must be at least 2, not {n_periods}")
    first_post = (1 if n_periods == 2 else n_periods // 2) if first_post is None else first_post
    if not 1 <= first_post < n_periods:
        raise ValueError(f"first_post must be between 1 and {n_periods - 1}, not {first_post}")
    rng = np.random.default_rng(seed)
    key = indicator or DEFAULT_KEYS.get(fam.name, fam.name)
    mult = INDICATORS[key].multiplier if key in INDICATORS else fam.default_multiplier
    w = wards.reset_index(drop=True)
    n_w = len(w)
    codes = w["ward"].astype(str).to_numpy()
    nbi = np.isin(codes, np.asarray(list(treated), dtype=str)).astype(float)
    rank = w["mean_rank"].to_numpy(float) if "mean_rank" in w.columns else np.zeros(n_w)
    rank = np.where(np.isfinite(rank), rank, np.nanmean(rank))
    z = -(rank - rank.mean()) / (rank.std() or 1.0)
    if treated_base is not None and nbi.any():
        centre = (fam.link_of_base(treated_base) - group_diff
                  - deprivation_level * float(z[nbi == 1].mean()))
    else:
        centre = fam.link_of_base(fam.default_base if base is None else base)
    level = centre + group_diff * nbi + deprivation_level * z + sigma_ward * rng.standard_normal(n_w)
    change_sd = np.where(nbi == 1, sigma_change if sigma_change_nbi is None else sigma_change_nbi,
                         sigma_change)
    step = change_sd * rng.standard_normal(n_w) + deprivation_change * z
    exposure0 = np.maximum(w["n_lsoa"].to_numpy(float), 1.0) * residents_per_lsoa
    la = (w["la_name"] if "la_name" in w.columns else w.get("la", pd.Series([""] * n_w))).astype(str)
    names = w["ward_name"].astype(str) if "ward_name" in w.columns else pd.Series(codes)
    frames, num, den = [], 0.0, 0.0
    for t in range(n_periods):
        post = int(t >= first_post)
        eta_cf = level + period_change * t + post * step
        eta = eta_cf + did * nbi * post
        size = np.array([fam.simulate_size(e, t, rng) for e in exposure0])
        values = fam.simulate(eta, size, rng)
        if post:
            weight = np.asarray(values[fam.weight_column], dtype=float) * nbi
            num += float(np.sum(weight * (fam.truth_value(eta) - fam.truth_value(eta_cf))))
            den += float(weight.sum())
        frame = pd.DataFrame({
            "indicator": key, "ward": codes, "ward_name": names.to_numpy(), "la": la.to_numpy(),
            "group": np.where(nbi == 1, "nbi", "benchmark"), "pair": pd.array([pd.NA] * n_w, "Int64"),
            "period": t, "period_label": str(2010 + t) if n_periods > 2 else ("2011", "2021")[t],
            "post": post})
        for name, value in values.items():
            frame[name] = np.asarray(value)
        frames.append(frame)
    df = pd.concat(frames, ignore_index=True)
    _family_value_columns(df)
    cov = w[["ward", *covariates]].astype({"ward": str})
    df = df.merge(cov, on="ward", how="left", validate="many_to_one")
    df["synthetic"] = True
    return df, SimulationTruth(did=did, did_pa=float(mult * num / den) if den else 0.0,
                               multiplier=mult)
