"""Simulated ward panels with a known truth (for tests, calibration and benchmarks).

The generator mimics real ward data rather than the models' own assumptions: matched
pairs share part of their level, wards differ in level (log-scale SD ``sigma_ward``,
about 0.4 for crime rates) and in their own change between periods (SD
``sigma_change``, about 0.2), exposures are 5,000-15,000 and drift a little between
periods; the NBI wards' change is shifted by ``did`` on the link scale.  Prices are
simulated transaction by transaction (log-normal within a ward-period).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from nbdid.families import family_columns, get_family
from nbdid.registry import INDICATORS

DEFAULT_KEYS = {"binomial": "out_of_work_benefits", "poisson": "crime", "price": "property_price"}
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
    for name, (spec, _users) in family_columns().items():
        if spec.dtype == "Int64":
            df[name] = pd.array(df[name].to_numpy(float), dtype="Int64")
    df["synthetic"] = df["synthetic"].astype(bool)
    return df, SimulationTruth(did=did, did_pa=float(mult * num / den), multiplier=mult)
