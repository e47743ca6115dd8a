"""The synthetic default ward panel: simulated wards calibrated to the report.

The report publishes only group-level figures (Tables 5A-11A), not ward data.  To
let nbdid run end to end without private data, this module simulates a ward x period
panel for the 58 study wards (29 matched pairs, real names and local authorities)
from a seeded hierarchical model, then calibrates it so that

* each group's pooled value in each period (``multiplier * sum(count) /
  sum(exposure)``; ``sum(n * mean_price) / sum(n)`` for prices) rounds to the
  published value, and
* each group's total denominator reproduces the published 95% CI half-width (to the
  report's rounding) under the report's pooled binomial / Poisson interval, and for
  prices the pooled transaction-level standard error of the mean.

Every row carries ``synthetic=True``.  The model, the measured heterogeneity defaults
and the calibration are documented in ``docs/synthetic_panel.md``; the settings are
:class:`nbdid.config.GeneratorConfig`.

Examples
--------
>>> from nbdid.data_prep.synthetic import load_default_panel
>>> panel = load_default_panel()
>>> sorted(panel["indicator"].unique())[:2]
['burglary', 'business_units']
>>> bool(panel["synthetic"].all())
True
"""

from __future__ import annotations

import dataclasses
import hashlib
from functools import cache
from importlib import resources

import numpy as np
import pandas as pd
from scipy import optimize, special

from nbdid.config import GeneratorConfig
from nbdid.data_prep.published import load_report_values, study_wards
from nbdid.data_prep.schema import COLUMN_NAMES, read_panel, validate_panel
from nbdid.families import get_family
from nbdid.registry import GROUPS, INDICATORS, Indicator

Z95 = 1.96
"""The normal quantile the report's 95% intervals use."""

DENOMINATOR_SHARES: dict[str, float] = {
    "population": 1.0,
    "working_age": 0.62,
    "households": 1 / 2.4,
    "children_0_19": 0.24,
}
"""Typical ward ratios of each denominator to the population (before calibration)."""

DENOMINATOR_SOURCE: dict[str, str] = {
    # business_units' half-width implies ~3-5 million working-age residents per 29 wards,
    # which no ward panel can match; it shares out_of_work_benefits' working-age counts.
    "working_age": "out_of_work_benefits",
}

_CODES = {"nbi": "NBI", "benchmark": "BEN"}


def make_config(**overrides) -> GeneratorConfig:
    """A :class:`GeneratorConfig` with ``overrides`` applied (validated)."""
    return dataclasses.replace(GeneratorConfig(), **overrides)


def synthetic_ward_id(pair: int, group: str) -> str:
    """Synthetic ward identifier, e.g. ``SYN-P01-NBI`` / ``SYN-P01-BEN``."""
    return f"SYN-P{int(pair):02d}-{_CODES[group]}"


def wards() -> pd.DataFrame:
    """The 58 study wards with synthetic ids: ``ward, ward_name, la, group, pair``."""
    w = study_wards()
    w = w.assign(ward=[synthetic_ward_id(p, g) for p, g in zip(w["pair"], w["group"], strict=True)])
    return w[["ward", "ward_name", "la", "group", "pair"]].reset_index(drop=True)


def component_rng(seed: int, *keys: str | int) -> np.random.Generator:
    """An independent, reproducible stream for one component (seed + names)."""
    words = [int(seed)]
    for k in keys:
        digest = hashlib.sha256(str(k).encode()).digest()
        words.append(int.from_bytes(digest[:4], "little"))
    return np.random.default_rng(np.random.SeedSequence(words))


# ----------------------------------------------------------------------------------------
# calibration targets
# ----------------------------------------------------------------------------------------


def implied_denominator(ind: Indicator, value: float, half_width: float) -> float:
    """Total denominator that gives ``half_width`` under the report's pooled interval.

    Binomial: ``n = p (1 - p) / (h / 1.96)^2`` with ``p = value / 100``.
    Poisson: ``N = 1.96^2 * value * multiplier / h^2``.
    """
    if not get_family(ind.family).is_count:
        raise ValueError(f"{ind.key} is a price indicator")
    return get_family(ind.family).implied_total(value, half_width, ind.multiplier)


def pooled_half_width(ind: Indicator, count: float, exposure: float) -> float:
    """The report's pooled 95% CI half-width of a group (binomial or Poisson)."""
    return get_family(ind.family).pooled_half_width(count, exposure, ind.multiplier)


def denominator_targets() -> pd.DataFrame:
    """Total denominators per group and period label, and their feasible ranges.

    For every count indicator, group and period the published half-width (printed
    with ``half_width_decimals``) allows a range of total denominators.  Indicators
    sharing a denominator (crime and criminal damage: population) must share it, so
    the ranges are intersected; within the intersection (shrunk by 10% of its log
    width at each end, for safety) the target is the geometric mean of the central
    implied values of that denominator over both periods, so that denominators change
    little between periods when the report allows it.

    Returns
    -------
    pandas.DataFrame
        ``denominator, group, period_label, lower, upper, target, indicators``.
    """
    rv = load_report_values()
    rows = []
    for r in rv.itertuples(index=False):
        ind = INDICATORS[r.indicator]
        if not get_family(ind.family).is_count:
            continue
        key = ind.denominator_key
        source = DENOMINATOR_SOURCE.get(key)
        if source is not None and source != ind.key:
            continue  # e.g. business_units: its half-width cannot be matched
        step = 0.5 * 10.0 ** (-ind.half_width_decimals)
        rows.append(
            {
                "denominator": key,
                "group": r.group,
                "period_label": str(r.period_label),
                "indicator": ind.key,
                "central": implied_denominator(ind, r.value, r.half_width),
                "lower": implied_denominator(ind, r.value, r.half_width + step),
                "upper": implied_denominator(ind, r.value, r.half_width - step),
            }
        )
    df = pd.DataFrame(rows)
    out = []
    for (key, grp), sub in df.groupby(["denominator", "group"], sort=True):
        centre = float(np.exp(np.log(sub["central"]).mean()))
        for label, s in sub.groupby("period_label", sort=True):
            lo, hi = float(s["lower"].max()), float(s["upper"].min())
            if lo > hi:  # pragma: no cover - does not happen with the report's numbers
                raise ValueError(f"no {key} total fits every half-width of {grp} {label}")
            llo, lhi = np.log(lo), np.log(hi)
            margin = 0.1 * (lhi - llo)
            target = float(np.exp(np.clip(np.log(centre), llo + margin, lhi - margin)))
            out.append(
                {
                    "denominator": key,
                    "group": grp,
                    "period_label": label,
                    "lower": lo,
                    "upper": hi,
                    "target": round(target),
                    "indicators": ",".join(s["indicator"]),
                }
            )
    return pd.DataFrame(out)


# ----------------------------------------------------------------------------------------
# integer allocation
# ----------------------------------------------------------------------------------------


def allocate(total: int, expected: np.ndarray) -> np.ndarray:
    """Round non-negative ``expected`` (summing to ``total``) to integers with that sum.

    Largest-remainder rounding; ties are broken by position, so the result is
    deterministic.  Each result is ``floor(expected)`` or ``floor(expected) + 1``.
    """
    expected = np.asarray(expected, dtype=float)
    base = np.floor(expected)
    short = int(total - base.sum())
    if short < 0 or short > len(expected):
        raise ValueError("expected values do not sum to total")
    frac = expected - base
    order = np.lexsort((np.arange(len(frac)), -frac))
    out = base.astype(np.int64)
    out[order[:short]] += 1
    return out


def _scale_to_total(total: int, weights: np.ndarray) -> np.ndarray:
    w = np.asarray(weights, dtype=float)
    return allocate(int(total), total * w / w.sum())


# ----------------------------------------------------------------------------------------
# generation
# ----------------------------------------------------------------------------------------


def _ward_effects(rng: np.random.Generator, w: pd.DataFrame, sd: float, corr: float) -> np.ndarray:
    """Pair-correlated ward effects: ``sd * (sqrt(corr) a_pair + sqrt(1 - corr) b_ward)``."""
    npairs = int(w["pair"].max())
    a = rng.standard_normal(npairs)
    b = rng.standard_normal(len(w))
    return sd * (np.sqrt(corr) * a[w["pair"].to_numpy() - 1] + np.sqrt(1 - corr) * b)


def _denominators(cfg: GeneratorConfig, w: pd.DataFrame) -> dict[tuple[str, str], np.ndarray]:
    """Integer ward denominators per (denominator key, period label), calibrated per group."""
    rng = component_rng(cfg.seed, "denominators")
    sigma = np.sqrt(np.log1p(cfg.population_cv**2))
    pop_base = np.exp(sigma * rng.standard_normal(len(w)) - sigma**2 / 2)
    growth = 0.05 * rng.standard_normal(len(w))  # ward-specific drift between periods
    ratio = {
        key: share * np.exp(cfg.share_sd * rng.standard_normal(len(w)))
        for key, share in DENOMINATOR_SHARES.items()
    }
    targets = denominator_targets()
    labels = sorted(targets["period_label"].unique())
    first, last = int(labels[0]), int(labels[-1])
    out: dict[tuple[str, str], np.ndarray] = {}
    for r in targets.itertuples(index=False):
        # population weight at this label: log-linear drift from the first to the last label
        frac = (int(r.period_label) - first) / (last - first) if last > first else 0.0
        weight = pop_base * np.exp(growth * frac) * ratio[r.denominator]
        arr = out.setdefault((r.denominator, r.period_label), np.zeros(len(w), dtype=np.int64))
        mask = (w["group"] == r.group).to_numpy()
        arr[mask] = _scale_to_total(int(r.target), weight[mask])
    return out


def _count_target(ind: Indicator, value: float, exposure_total: float) -> int:
    """Whole-number group total whose pooled value rounds to the published ``value``."""
    t = round(value * exposure_total / ind.multiplier)
    for cand in sorted(range(t - 3, t + 4), key=lambda c: (abs(c - t), c)):
        v = ind.multiplier * cand / exposure_total
        if round(v, ind.decimals) == round(value, ind.decimals) and cand >= 0:
            return cand
    raise ValueError(f"no whole count reproduces {ind.key} = {value}")  # pragma: no cover


def _calibrate_counts(ind: Indicator, raw: np.ndarray, exposure: np.ndarray, total: int) -> np.ndarray:
    """Shift the raw counts on the link scale so that they sum to ``total``, then round.

    Binomial: a common logit shift of the smoothed ward proportions (counts stay below
    their trials).  Poisson: a common log shift (a rescaling).
    """
    if get_family(ind.family).count_within_exposure:  # people out of trials
        logit = special.logit((raw + 0.5) / (exposure + 1.0))

        def gap(delta: float) -> float:
            return float((exposure * special.expit(logit + delta)).sum() - total)

        delta = optimize.brentq(gap, -20.0, 20.0, xtol=1e-13)
        expected = exposure * special.expit(logit + delta)
        expected *= total / expected.sum()  # remove brentq's last ulp of error
        expected = np.minimum(expected, exposure - 1e-9)
        return allocate(total, expected)
    w = raw.astype(float) + 1e-9  # an all-zero ward stays (almost) zero
    return allocate(total, total * w / w.sum())


def _count_rows(cfg: GeneratorConfig, ind: Indicator, w: pd.DataFrame, denoms, rv) -> list[dict]:
    rng = component_rng(cfg.seed, ind.key)
    sd, change_sd, od = (getattr(cfg, f) for f in get_family(ind.family).generator_sd_fields)
    u = _ward_effects(rng, w, sd, cfg.pair_corr)
    change = _ward_effects(rng, w, change_sd, cfg.pair_corr)
    rows = []
    for period, label in enumerate(ind.periods):
        exposure = denoms[(ind.denominator_key, label)]
        noise = od * rng.standard_normal(len(w))
        eta = u + change * period + noise
        counts = np.zeros(len(w), dtype=np.int64)
        for grp in GROUPS:
            mask = (w["group"] == grp).to_numpy()
            value = float(rv.loc[(ind.key, grp, period), "value"])
            e = exposure[mask]
            if get_family(ind.family).count_within_exposure:  # people out of trials
                p = special.expit(special.logit(value / ind.multiplier) + eta[mask])
                raw = rng.binomial(e, p)
            else:
                rate = value / ind.multiplier * np.exp(eta[mask] - (sd**2 + od**2) / 2)
                raw = rng.poisson(e * rate)
            total = _count_target(ind, value, float(e.sum()))
            counts[mask] = _calibrate_counts(ind, raw, e, total)
        for i in range(len(w)):
            rows.append({"indicator": ind.key, "i": i, "period": period, "period_label": label,
                         "count": int(counts[i]), "exposure": float(exposure[i])})
    return rows


def price_transactions(cfg: GeneratorConfig, w: pd.DataFrame, denoms, rv,
                       ind: Indicator) -> pd.DataFrame:
    """Simulated transactions (``i`` = ward position, ``period``, ``price``), calibrated.

    Per group and period: the number of transactions ``N`` is chosen so that the
    transaction-level standard error of the mean price, ``sd(price) / sqrt(N)``,
    equals the published half-width / 1.96; ward means of log price are pair-correlated
    normal effects plus a ward-specific change; prices within a ward are lognormal.
    Calibration keeps the log prices' ordering and shape: ``log p' = m + k (log p - m)
    + c`` with ``k`` (close to 1) matching the standard deviation and ``c`` the mean.
    """
    rng = component_rng(cfg.seed, ind.key)
    u = _ward_effects(rng, w, cfg.price_ward_sd, cfg.pair_corr)
    change = _ward_effects(rng, w, cfg.price_change_sd, cfg.pair_corr)
    households = denoms[("households", sorted({lab for _, lab in denoms if _ == "households"})[0])]
    out = []
    for period, label in enumerate(ind.periods):
        for grp in GROUPS:
            mask = np.flatnonzero((w["group"] == grp).to_numpy())
            value = float(rv.loc[(ind.key, grp, period), "value"])
            se = float(rv.loc[(ind.key, grp, period), "half_width"]) / Z95
            mu = u[mask] + change[mask] * period
            # activity: transactions roughly proportional to households, with ward noise
            act = households[mask] * np.exp(0.3 * rng.standard_normal(len(mask)))
            s2 = cfg.price_ward_sd**2 + cfg.price_within_sd**2
            n_total = max(len(mask), round((value * np.sqrt(np.expm1(s2)) / se) ** 2))
            # N from the theoretical SD, then once more from the SD of the draws; the
            # final SD is matched exactly by the shape-preserving rescaling below
            for attempt in range(2):
                sub = component_rng(cfg.seed, ind.key, grp, period, attempt)
                n_w = 1 + sub.multinomial(n_total - len(mask), act / act.sum())
                ward_of = np.repeat(np.arange(len(mask)), n_w)
                lp = mu[ward_of] + cfg.price_within_sd * sub.standard_normal(n_total)
                price = np.exp(lp)
                price *= value / price.mean()
                n_new = max(len(mask), round((price.std(ddof=1) / se) ** 2))
                if n_new == n_total or attempt == 1:
                    break
                n_total = n_new
            lp = np.log(price)
            centre = lp.mean()
            target_sd = se * np.sqrt(len(price))

            def scaled(k: float, lp=lp, centre=centre, value=value) -> np.ndarray:
                p = np.exp(centre + k * (lp - centre))
                return p * (value / p.mean())

            def gap(k: float, scaled=scaled, target_sd=target_sd) -> float:
                return float(scaled(k).std(ddof=1) - target_sd)

            k = optimize.brentq(gap, 0.05, 5.0, xtol=1e-12)
            price = scaled(k)
            out.append(pd.DataFrame({"i": mask[ward_of], "period": period,
                                     "period_label": label, "price": price}))
    return pd.concat(out, ignore_index=True)


def _price_rows(tx: pd.DataFrame, ind: Indicator) -> list[dict]:
    tx = tx.assign(lp=np.log(tx["price"]))
    g = tx.groupby(["i", "period", "period_label"], sort=True)
    stats = g.agg(n=("price", "size"), mean_price=("price", "mean"),
                  mean_log_price=("lp", "mean"), sd_log_price=("lp", "std")).reset_index()
    return [
        {"indicator": ind.key, "i": int(r.i), "period": int(r.period), "period_label": r.period_label,
         "n": int(r.n), "mean_price": float(r.mean_price), "mean_log_price": float(r.mean_log_price),
         "sd_log_price": float(r.sd_log_price) if r.n > 1 else np.nan}
        for r in stats.itertuples(index=False)
    ]


def generate_panel(config: GeneratorConfig | None = None) -> pd.DataFrame:
    """Generate the synthetic calibrated ward panel.

    Parameters
    ----------
    config
        Generator settings (default :class:`GeneratorConfig`, which reproduces the
        shipped default panel exactly).

    Returns
    -------
    pandas.DataFrame
        A validated panel (see :data:`nbdid.data_prep.schema.PANEL_COLUMNS`) with
        every row marked ``synthetic=True``.
    """
    cfg = config or GeneratorConfig()
    w = wards()
    rv = load_report_values().set_index(["indicator", "group", "period"]).sort_index()
    denoms = _denominators(cfg, w)
    rows: list[dict] = []
    for ind in INDICATORS.values():
        if get_family(ind.family).is_count:
            rows += _count_rows(cfg, ind, w, denoms, rv)
        else:
            rows += _price_rows(price_transactions(cfg, w, denoms, rv, ind), ind)
    df = pd.DataFrame(rows)
    df = df.join(w, on="i").drop(columns="i")
    df["post"] = (df["period"] > 0).astype("int64")
    df["synthetic"] = True
    # readable, stable CSV values (rounding keeps every pooled value to the report's rounding)
    df["mean_price"] = df["mean_price"].round(2)
    df["mean_log_price"] = df["mean_log_price"].round(6)
    df["sd_log_price"] = df["sd_log_price"].round(6)
    for col in COLUMN_NAMES:
        if col not in df.columns:
            df[col] = np.nan
    return validate_panel(df[list(COLUMN_NAMES)], file="<synthetic panel>")


DEFAULT_PANEL = "panel.csv"


@cache
def _default_panel() -> pd.DataFrame:
    ref = resources.files("nbdid.data_prep") / "default" / DEFAULT_PANEL
    with resources.as_file(ref) as path:
        return read_panel(path)


def load_default_panel() -> pd.DataFrame:
    """The shipped synthetic default panel (``data_prep/default/panel.csv``).

    SYNTHETIC DATA: ward values are simulated and calibrated to the report's group
    figures; every row has ``synthetic=True``.
    """
    return _default_panel().copy()


def default_panel_path():
    """A traversable of the shipped default panel CSV (``importlib.resources``)."""
    return resources.files("nbdid.data_prep") / "default" / DEFAULT_PANEL
