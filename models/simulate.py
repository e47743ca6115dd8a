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

import numpy as np
import pandas as pd

from nbdid.registry import INDICATORS

DEFAULT_KEYS = {"binomial": "out_of_work_benefits", "poisson": "crime", "price": "property_price"}
DEFAULT_BASE = {"binomial": 0.15, "poisson": 0.08, "price": 150_000.0}


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

    Returns
    -------
    tuple
        ``(panel, truth)``.
    """
    rng = np.random.default_rng(seed)
    key = indicator or DEFAULT_KEYS[family]
    mult = INDICATORS[key].multiplier if key in INDICATORS else (
        100.0 if family == "binomial" else 1000.0 if family == "poisson" else 1.0
    )
    if first_post is None:
        first_post = n_periods - 1
    base = DEFAULT_BASE[family] if base is None else base
    if family == "binomial":
        centre = np.log(base / (1 - base))
    else:
        centre = np.log(base)
    n_w = 2 * n_pairs
    pair = np.repeat(np.arange(1, n_pairs + 1), 2)
    treated = np.tile([1, 0], n_pairs)
    level = (
        centre
        + group_diff * treated
        + sigma_pair * rng.standard_normal(n_pairs)[pair - 1]
        + sigma_ward * rng.standard_normal(n_w)
    )
    exposure0 = rng.uniform(*exposure_range, size=n_w)
    rows = []
    eta_true = np.zeros((n_w, n_periods))
    eta_cf = np.zeros((n_w, n_periods))
    wander = np.zeros(n_w)
    for t in range(n_periods):
        if t > 0:
            wander = wander + sigma_change * rng.standard_normal(n_w)
        post = int(t >= first_post)
        eta_cf[:, t] = level + period_change * t + wander
        eta_true[:, t] = eta_cf[:, t] + did * treated * post
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
                "count": pd.NA,
                "exposure": np.nan,
                "n": pd.NA,
                "mean_price": np.nan,
                "mean_log_price": np.nan,
                "sd_log_price": np.nan,
                "synthetic": synthetic,
            }
            if family == "price":
                n = int(rng.poisson(mean_transactions - 1)) + 1
                mu = eta_true[w, t]
                logp = mu + price_sd_within * rng.standard_normal(n)
                row.update(
                    n=n,
                    mean_price=float(np.mean(np.exp(logp))),
                    mean_log_price=float(np.mean(logp)),
                    sd_log_price=float(np.std(logp, ddof=1)) if n > 1 else np.nan,
                )
                weight = n
                v1 = np.exp(mu + price_sd_within**2 / 2)
                v0 = np.exp(eta_cf[w, t] + price_sd_within**2 / 2)
            else:
                e = exposure0[w] * (1 + 0.05 * t * rng.standard_normal())
                if family == "binomial":
                    e = float(np.round(e))
                    p = 1 / (1 + np.exp(-eta_true[w, t]))
                    count = int(rng.binomial(int(e), p))
                    v1, v0 = p, 1 / (1 + np.exp(-eta_cf[w, t]))
                else:
                    count = int(rng.poisson(e * np.exp(eta_true[w, t])))
                    v1, v0 = np.exp(eta_true[w, t]), np.exp(eta_cf[w, t])
                row.update(count=count, exposure=float(e))
                weight = e
            if treated[w] and post:
                num += weight * (v1 - v0)
                den += weight
            rows.append(row)
    df = pd.DataFrame(rows)
    df["pair"] = df["pair"].astype("Int64")
    df["count"] = df["count"].astype("Int64")
    df["n"] = df["n"].astype("Int64")
    df["synthetic"] = df["synthetic"].astype(bool)
    return df, SimulationTruth(did=did, did_pa=float(mult * num / den), multiplier=mult)
