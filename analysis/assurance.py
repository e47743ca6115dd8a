"""Assurance and power of matched-area DiD designs: the computations behind ``nbdid design``.

A *design* is a number of matched sets (one NBI area and ``k`` benchmark areas each),
a number of periods and a true effect.  :mod:`nbdid.workflow.design` simulates panels
of a design, refits the Bayesian model and runs the frequentist twin on each; this
module holds everything around those fits that is pure computation:

* the heterogeneity that simulated panels are drawn from (:class:`Heterogeneity`):
  posterior draws of a fitted model (:func:`heterogeneity_from_posterior`), the
  posterior of the between-ward SD of change given the report's published numbers
  (:func:`heterogeneity_from_tipping`), or given values
  (:func:`heterogeneity_given`).  Each simulated panel uses its own draw, so the
  results integrate over the uncertainty in the heterogeneity (the "design prior" of
  assurance; O'Hagan & Stevens 2001);
* effects on the ratio scale or in the indicator's own unit (:class:`Effect`);
* seeds and the split of simulations into resumable tasks (:func:`task_chunks`);
* the per-simulation decisions (:func:`posterior_decision`) and their summaries with
  Monte Carlo standard errors (:func:`summarise_simulations`): Bayesian assurance,
  frequentist power, false-positive rates, type S and type M errors (Gelman & Carlin
  2014) and the minimum detectable effect (:func:`minimum_detectable_effect`);
* the plain-words summary (:func:`plain_summary`);
* closed forms for a normal outcome with known variances (:func:`normal_power`,
  :func:`normal_assurance`, :func:`normal_type_s_m`, :func:`paired_t_power`), against
  which the simulation machinery is validated.

Functions here return numbers and DataFrames; they never sample and never draw.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd
from scipy import optimize, stats

from nbdid.analysis.frequentist import METHOD_PROSE
from nbdid.analysis.sensitivity import derived_seed
from nbdid.analysis.tipping_bayes import default_prior_scales, tipping_bayes_curve
from nbdid.config import GeneratorConfig
from nbdid.data_prep import published
from nbdid.data_prep.synthetic import DENOMINATOR_SOURCE
from nbdid.errors import InputError
from nbdid.families import FAMILIES, Family, get_family
from nbdid.models.design import Design
from nbdid.provenance import SYNTHETIC_NOTICE
from nbdid.registry import INDICATORS

if TYPE_CHECKING:
    import xarray as xr

Source = Literal["run", "default", "tipping", "given"]

BAYES = "bayes"
"""Key of the Bayesian model in simulation and summary columns."""

FREQ_METHODS: tuple[str, ...] = ("report_pooled", "glm_cluster", "randomization", "paired_t")
"""The frequentist methods of :data:`nbdid.analysis.frequentist.METHOD_REGISTRY` that
the design simulations run (every method but the posterior)."""

TWIN_METHODS: tuple[str, ...] = ("glm_cluster", "randomization", "paired_t")
"""The frequentist twin proper (the report's pooled rule is :data:`POOLED_RULE`)."""

POOLED_RULE = "report_pooled"

HET_COLUMNS: tuple[str, ...] = (
    "sigma_ward", "sigma_change", "sigma_change_nbi", "sigma_pair", "sigma_wp", "intercept",
    "period_change", "group_diff",
)
"""Parameters of one heterogeneity draw (link scale).  ``sigma_change`` is the SD of
ward-specific change of the benchmark wards (of every ward when the model had one SD),
``sigma_change_nbi`` that of the NBI wards."""

SD_COLUMNS: tuple[str, ...] = ("sigma_ward", "sigma_change", "sigma_change_nbi", "sigma_pair",
                               "sigma_wp")

TASK_OBS = 1500
"""Ward-period observations simulated per task (tasks of equal cost: one simulation of
350 pairs, a dozen of 29 pairs), so that progress, ETA and load balancing are even."""

MAX_SIMS_PER_TASK = 25


# ----------------------------------------------------------------------------------------
# heterogeneity
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Heterogeneity:
    """What simulated panels of one indicator are drawn from, and where it came from.

    Attributes
    ----------
    indicator, family
        Indicator key and family name.
    draws
        One row per draw of :data:`HET_COLUMNS` (link scale): the SDs of ward levels
        within sets (``sigma_ward``), of ward-specific change of benchmark and NBI
        wards (``sigma_change``, ``sigma_change_nbi``; equal when the source has one), of
        set levels (``sigma_pair``) and of ward x period noise (``sigma_wp``), the
        benchmark group's baseline (``intercept``), the common change per period step
        (``period_change``) and the NBI-benchmark level difference (``group_diff``).
    exposures
        Baseline exposures (trials, population, households) that simulated wards
        resample theirs from; empty for prices.
    price_sd_within, mean_transactions
        Within-ward SD of log prices and mean transactions per ward-period (prices).
    source
        ``"run"`` (a fitted run's posterior), ``"default"`` (a fit of the synthetic
        default panel), ``"tipping"`` (the published numbers' tipping-point posterior)
        or ``"given"``.
    description
        Where the numbers come from, in words (printed and saved with the results).
    synthetic
        Whether they come from synthetic data.
    """

    indicator: str
    family: str
    draws: pd.DataFrame
    exposures: np.ndarray
    source: Source
    description: str
    synthetic: bool = False
    price_sd_within: float = 0.5
    mean_transactions: float = 40.0

    @property
    def n_draws(self) -> int:
        """Number of draws."""
        return len(self.draws)

    def summary(self) -> dict[str, Any]:
        """Median and 90% interval of each SD, with the source (one table row)."""
        out: dict[str, Any] = {"indicator": self.indicator, "family": self.family,
                               "source": self.source, "description": self.description,
                               "draws": self.n_draws}
        for c in SD_COLUMNS:
            x = self.draws[c].to_numpy(float)
            out[f"{c}_median"] = float(np.median(x))
            out[f"{c}_q5"] = float(np.quantile(x, 0.05))
            out[f"{c}_q95"] = float(np.quantile(x, 0.95))
        out["synthetic"] = self.synthetic
        out["notice"] = SYNTHETIC_NOTICE if self.synthetic else ""
        return out

    def statement(self) -> str:
        """One line: the source and the SD of ward changes (median and 90% interval)."""
        return f"{self.indicator}: {self.sentence()}"

    @property
    def group_specific(self) -> bool:
        """Whether NBI and benchmark wards have SDs of change of their own."""
        d = self.draws
        return not np.allclose(d["sigma_change"].to_numpy(float), d["sigma_change_nbi"].to_numpy(float))

    def sentence(self) -> str:
        """The source and the SD of ward changes, without the indicator's key."""
        s = self.summary()
        syn = " [SYNTHETIC DATA]" if self.synthetic else ""

        def spread(col: str) -> str:
            return (f"median {s[f'{col}_median']:.3g}, 90% [{s[f'{col}_q5']:.3g}, "
                    f"{s[f'{col}_q95']:.3g}]")

        if self.group_specific:
            sd = (f"SD of ward change (link scale) in benchmark wards {spread('sigma_change')}, in "
                  f"NBI wards {spread('sigma_change_nbi')}")
        else:
            sd = f"SD of ward change (link scale) {spread('sigma_change')}"
        how = (f"{sd} over {self.n_draws:,} draws" if self.n_draws > 1
               else f"SD of ward change {s['sigma_change_median']:.3g}"
               + (f" (NBI wards {s['sigma_change_nbi_median']:.3g})" if self.group_specific else "")
               + ", fixed values, no uncertainty integrated over")
        return f"{self.description}; {how}{syn}"

    def typical_level(self, post_steps: int = 1) -> float:
        """The NBI group's typical post-period value in the indicator's own unit
        (median draw): the level at which own-unit effects are converted to ratios."""
        fam = get_family(self.family)
        d = self.draws.median()
        eta = float(d["intercept"] + d["group_diff"] + post_steps * d["period_change"])
        return float(fam.truth_value(np.asarray(eta), sd_within=self.price_sd_within)) * _multiplier(
            self.indicator, fam)

    def fingerprint(self) -> str:
        """Hash of everything simulations use (part of every task id)."""
        h = hashlib.sha256()
        h.update(self.draws[list(HET_COLUMNS)].to_numpy(float).tobytes())
        h.update(np.asarray(self.exposures, dtype=float).tobytes())
        h.update(f"{self.family}:{self.price_sd_within:.9g}:{self.mean_transactions:.9g}".encode())
        return h.hexdigest()


def _multiplier(key: str, fam: Family) -> float:
    return INDICATORS[key].multiplier if key in INDICATORS else fam.default_multiplier


def _var(posterior: xr.Dataset, name: str, n: int) -> np.ndarray:
    """A scalar variable's draws, flattened over chains (zeros when the model lacks it)."""
    if name in posterior:
        return np.asarray(posterior[name].values, dtype=float).reshape(n)
    return np.zeros(n)


def heterogeneity_from_posterior(
    posterior: xr.Dataset,
    design: Design,
    *,
    source: Source = "run",
    description: str = "",
    synthetic: bool | None = None,
    change_sd: Literal["pooled", "groups"] = "pooled",
) -> Heterogeneity:
    """Heterogeneity draws from a fitted model's posterior.

    Parameters
    ----------
    posterior
        ``idata.posterior`` of a fit (:func:`nbdid.workflow.fit.fit`, or a saved
        ``KEY.nc``), with ``sigma_ward``, ``sigma_change`` (or one per group,
        ``sigma_change_nbi`` and ``sigma_change_benchmark``, the model's default: see
        ``change_sd``), ``sigma_pair``,
        ``intercept``, ``period_effect``, ``group_effect`` and, when the model had one,
        ``sigma_od`` or ``sigma_wp`` (taken as the ward x period SD: both are the
        coefficient of variation of observation-level noise).  Components the model
        lacked are zero.
    design
        The design it was fitted to (exposures, transactions and within SDs are taken
        from it).
    source, description
        Where the posterior came from.
    synthetic
        Whether the fitted panel was synthetic (default: ``design.synthetic``).
    change_sd
        With one SD of change per group: ``"pooled"`` (default) gives the wards of both
        simulated groups, draw by draw, the root mean square of the two SDs, so that
        "no effect" means NBI and benchmark wards alike; ``"groups"`` keeps each
        group's own SD.  A different spread of change in the NBI group is itself a
        difference between the groups: on the ratio scale it moves the pooled rates
        (``E[exp(change)] = exp(sd^2 / 2)``), so with ``"groups"`` the report's rule
        and the marginal frequentist estimates see an "effect" even at a zero DiD.

    Returns
    -------
    Heterogeneity
    """
    if change_sd not in ("pooled", "groups"):
        raise InputError(f"change_sd must be 'pooled' or 'groups', not {change_sd!r}")
    n = int(np.prod(posterior["intercept"].shape))
    pe = np.asarray(posterior["period_effect"].values, dtype=float).reshape(n, -1)
    steps = max(pe.shape[1] - 1, 1)
    od = "sigma_od" if "sigma_od" in posterior else "sigma_wp"
    note = ""
    if "sigma_change_nbi" in posterior:  # one SD per group, drawn jointly
        change = _var(posterior, "sigma_change_benchmark", n)
        change_nbi = _var(posterior, "sigma_change_nbi", n)
        if change_sd == "pooled":
            change = change_nbi = np.sqrt(0.5 * (change**2 + change_nbi**2))
            note = (f" (SD of ward change: the root mean square of the fitted benchmark and NBI "
                    f"groups' SDs, medians {np.median(_var(posterior, 'sigma_change_benchmark', n)):.3g}"
                    f" and {np.median(_var(posterior, 'sigma_change_nbi', n)):.3g}, draw by draw)")
    else:
        change = change_nbi = _var(posterior, "sigma_change", n)
    draws = pd.DataFrame({
        "sigma_ward": _var(posterior, "sigma_ward", n),
        "sigma_change": change,
        "sigma_change_nbi": change_nbi,
        "sigma_pair": _var(posterior, "sigma_pair", n),
        "sigma_wp": _var(posterior, od, n),
        "intercept": _var(posterior, "intercept", n),
        "period_change": (pe[:, -1] - pe[:, 0]) / steps,
        "group_diff": _var(posterior, "group_effect", n),
    })
    fam = design.family
    pre = np.asarray(design.post) == 0
    exposures = np.asarray(design.arrays.get("exposure", np.array([])), dtype=float)
    exposures = exposures[pre] if exposures.size else exposures
    sd_within, mean_tx = 0.5, 40.0
    if "n" in design.arrays and "sd_within" in design.arrays:
        n_tx = np.asarray(design.arrays["n"], dtype=float)
        sd_within = float(np.sqrt(np.average(np.asarray(design.arrays["sd_within"]) ** 2, weights=n_tx)))
        mean_tx = float(n_tx.mean())
    return Heterogeneity(
        indicator=design.indicator, family=fam.name, draws=draws, exposures=exposures,
        source=source, description=(description or f"posterior of a fit of {design.indicator}") + note,
        synthetic=design.synthetic if synthetic is None else bool(synthetic),
        price_sd_within=sd_within, mean_transactions=mean_tx,
    )


def _published_baseline(key: str, n_per_group: int = 29) -> dict[str, Any]:
    """Baseline levels and ward sizes implied by the report's published numbers."""
    if key not in INDICATORS:
        raise InputError(f"indicator '{key}' is not in the registry: heterogeneity from the "
                         "published numbers needs one of the report's indicators (use --from-run)")
    ind = INDICATORS[key]
    fam = get_family(ind.family)
    w = published.report_wide().set_index(["indicator", "group"])
    n, b = w.loc[(key, "nbi")], w.loc[(key, "benchmark")]
    m = ind.multiplier
    gen = GeneratorConfig()
    if not fam.is_count:  # a mean of sales (prices)
        s = gen.price_within_sd
        link = np.log
        # the report's half-width of a pooled mean price: 1.96 v sqrt(exp(s^2) - 1) / sqrt(N)
        tx = [(1.96 * float(r.v0) * math.sqrt(math.expm1(s**2)) / float(r.h0)) ** 2 / n_per_group
              for r in (n, b)]
        mean_log = {g: math.log(float(r.v0)) - s**2 / 2 for g, r in (("nbi", n), ("benchmark", b))}
        post_log = math.log(float(b.v1)) - s**2 / 2
        return {"intercept": mean_log["benchmark"], "group_diff": mean_log["nbi"] - mean_log["benchmark"],
                "period_change": post_log - mean_log["benchmark"], "exposures": np.array([]),
                "price_sd_within": s, "mean_transactions": float(np.mean(tx))}
    link = fam.link_fn
    src = DENOMINATOR_SOURCE.get(ind.denominator_key)
    size_key = src if src is not None else key
    sw = w.loc[(size_key, "nbi")], w.loc[(size_key, "benchmark")]
    si = INDICATORS[size_key]
    totals = [get_family(si.family).implied_total(float(r.v0), float(r.h0), si.multiplier) for r in sw]
    mean_ward = float(np.mean(totals)) / n_per_group
    # wards of 60% to 140% of the average size (the synthetic panel's spread)
    exposures = np.round(mean_ward * np.linspace(0.6, 1.4, 41))
    v = {g: float(r.v0) / m for g, r in (("nbi", n), ("benchmark", b))}
    return {"intercept": float(link(v["benchmark"])),
            "group_diff": float(link(v["nbi"]) - link(v["benchmark"])),
            "period_change": float(link(float(b.v1) / m) - link(v["benchmark"])),
            "exposures": exposures, "price_sd_within": gen.price_within_sd,
            "mean_transactions": 40.0}


def _level_sds(family: str) -> tuple[float, float]:
    """Within-set ward SD and set SD from the measured ward SD and pair correlation."""
    gen = GeneratorConfig()
    fields = FAMILIES[family].generator_sd_fields if family in FAMILIES else None
    sd = getattr(gen, fields[0]) if fields else gen.ward_sd_rate
    return sd * math.sqrt(1 - gen.pair_corr), sd * math.sqrt(gen.pair_corr)


def heterogeneity_from_tipping(key: str, *, n_draws: int = 4000, seed: int = 20250716) -> Heterogeneity:
    """Heterogeneity from the report's published numbers alone (no ward data).

    The SD of ward-specific change is drawn from its posterior given the published
    DiD and half-widths (:func:`nbdid.analysis.tipping_bayes.tipping_bayes_curve`,
    whose prior is the SD measured on real small-area data); baselines and ward sizes
    are those the published values and half-widths imply; the SDs of ward and set
    levels come from the measured ward SD and the assumed pair correlation of
    :class:`nbdid.config.GeneratorConfig` (levels cancel out of a DiD, so they matter
    little).  No ward x period noise is added: the measured SD of change includes the
    year-to-year noise of the two periods.
    """
    base = _published_baseline(key)
    ind = INDICATORS[key]
    scale = default_prior_scales()[key]
    top = 6.0 * scale.sigma
    grid = np.linspace(0.0, top, 3001)
    curve = tipping_bayes_curve(taus=grid)
    dens = curve.loc[curve["indicator"] == key, "posterior_density"].to_numpy(float)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (dens[1:] + dens[:-1]) * np.diff(grid))])
    cdf /= cdf[-1]
    rng = np.random.default_rng(derived_seed(seed, "tipping", key))
    u = (np.arange(n_draws) + rng.uniform()) / n_draws  # stratified: smooth with few draws
    tau = np.interp(u, cdf, grid)
    rng.shuffle(tau)
    sw, sp = _level_sds(ind.family)
    draws = pd.DataFrame({
        "sigma_ward": sw, "sigma_change": tau, "sigma_change_nbi": tau, "sigma_pair": sp,
        "sigma_wp": 0.0,
        "intercept": base["intercept"], "period_change": base["period_change"],
        "group_diff": base["group_diff"],
    })
    desc = (f"posterior of the between-ward SD of change given the report's published numbers "
            f"(tipping-point analysis; prior {scale.basis.split(':')[0]})")
    return Heterogeneity(key, ind.family, draws, base["exposures"], "tipping", desc, False,
                         base["price_sd_within"], base["mean_transactions"])


def heterogeneity_given(
    key: str,
    *,
    sigma_change: float,
    sigma_ward: float | None = None,
    sigma_pair: float | None = None,
    sigma_wp: float = 0.0,
    sigma_change_nbi: float | None = None,
) -> Heterogeneity:
    """Heterogeneity given as fixed values (one draw: no uncertainty is integrated over).

    Baselines and ward sizes are those the report's published numbers imply; SDs of
    ward and set levels not given come from :class:`nbdid.config.GeneratorConfig`.
    ``sigma_change_nbi`` gives the NBI wards an SD of change of their own (default:
    ``sigma_change``, as for the benchmark wards).
    """
    for name, v in (("sigma_change", sigma_change), ("sigma_change_nbi", sigma_change_nbi),
                    ("sigma_ward", sigma_ward),
                    ("sigma_pair", sigma_pair), ("sigma_wp", sigma_wp)):
        if v is not None and not (0 <= v <= 5):
            raise InputError(f"{name} must be between 0 and 5 (an SD on the link scale), not {v}")
    base = _published_baseline(key)
    ind = INDICATORS[key]
    sw, sp = _level_sds(ind.family)
    draws = pd.DataFrame([{
        "sigma_ward": sw if sigma_ward is None else sigma_ward, "sigma_change": sigma_change,
        "sigma_change_nbi": sigma_change if sigma_change_nbi is None else sigma_change_nbi,
        "sigma_pair": sp if sigma_pair is None else sigma_pair, "sigma_wp": sigma_wp,
        "intercept": base["intercept"], "period_change": base["period_change"],
        "group_diff": base["group_diff"],
    }])
    desc = (f"given: SD of ward change {sigma_change:g}"
            + ("" if sigma_change_nbi is None else f" (NBI wards {sigma_change_nbi:g})")
            + ("" if sigma_ward is None else f", ward SD {sigma_ward:g}")
            + ("" if sigma_pair is None else f", set SD {sigma_pair:g}")
            + (f", ward x period SD {sigma_wp:g}" if sigma_wp else "")
            + "; baselines from the report's published numbers")
    return Heterogeneity(key, ind.family, draws, base["exposures"], "given", desc, False,
                         base["price_sd_within"], base["mean_transactions"])


# ----------------------------------------------------------------------------------------
# effects
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Effect:
    """A true effect of a design.

    Attributes
    ----------
    ratio
        The effect on the ratio scale (rate ratio, odds ratio, price ratio); 1 = none.
    unit
        The effect in the indicator's own unit when it was given that way (``None``
        otherwise).
    """

    ratio: float
    unit: float | None = None

    def __post_init__(self) -> None:
        if not (self.ratio > 0 and math.isfinite(self.ratio)):
            raise InputError(f"an effect ratio must be a positive number, not {self.ratio}")

    @property
    def link(self) -> float:
        """The effect on the link scale (``log(ratio)``)."""
        return math.log(self.ratio)

    @property
    def percent(self) -> float:
        """The ratio as a percentage change (``-10`` for 0.9)."""
        return 100.0 * (self.ratio - 1.0)


def effect_from_unit(value: float, het: Heterogeneity, *, post_steps: int = 1) -> Effect:
    """The ratio-scale effect that changes the NBI group's typical post-period value by
    ``value`` (own unit), at :meth:`Heterogeneity.typical_level`.

    Raises
    ------
    InputError
        If no ratio gives that change (e.g. a fall larger than the level itself).
    """
    fam = get_family(het.family)
    mult = _multiplier(het.indicator, fam)
    level = het.typical_level(post_steps) / mult
    if value == 0:
        return Effect(1.0, 0.0)

    def gap(d: float) -> float:
        return float(fam.unit_effect(np.asarray(d), level, mult)) - value

    try:
        d = optimize.brentq(gap, -15.0, 15.0, xtol=1e-12)
    except ValueError:
        raise InputError(f"an effect of {value:g} in {het.indicator}'s unit is impossible at its "
                         f"typical level ({level * mult:.4g})") from None
    return Effect(math.exp(d), value)


def unit_of_effect(effect: Effect, het: Heterogeneity, *, post_steps: int = 1) -> float:
    """The own-unit change of the NBI group's typical post-period value for ``effect``."""
    if effect.unit is not None:
        return float(effect.unit)
    if effect.ratio == 1.0:
        return 0.0
    fam = get_family(het.family)
    mult = _multiplier(het.indicator, fam)
    level = het.typical_level(post_steps) / mult
    return float(fam.unit_effect(np.asarray(effect.link), level, mult))


# ----------------------------------------------------------------------------------------
# simulation plan
# ----------------------------------------------------------------------------------------


def sims_per_task(areas: int, *, controls_per_set: int = 1, periods: int = 2) -> int:
    """Simulations per task for a design size (about :data:`TASK_OBS` observations)."""
    obs = areas * (1 + controls_per_set) * periods
    return int(np.clip(round(TASK_OBS / max(obs, 1)), 1, MAX_SIMS_PER_TASK))


def task_chunks(sims: int, per_task: int) -> list[tuple[int, int]]:
    """``[start, stop)`` ranges of simulation indices, ``per_task`` at a time."""
    return [(s, min(s + per_task, sims)) for s in range(0, sims, per_task)]


def sim_seed(seed: int, indicator: str, areas: int, sim: int) -> int:
    """The seed of one simulated panel.

    It does not depend on the effect: the panels of one simulation index share their
    random numbers across effects (common random numbers make the assurance curves
    smooth in the effect), and on nothing about execution order or executor.
    """
    return derived_seed(seed, "design", indicator, str(areas), str(sim))


def draw_indices(het: Heterogeneity, sims: int, seed: int) -> np.ndarray:
    """Which heterogeneity draw each simulation index uses (without replacement while
    draws last, the same for every design size)."""
    rng = np.random.default_rng(derived_seed(seed, "draws", het.indicator))
    n = het.n_draws
    reps = int(np.ceil(sims / n))
    return np.concatenate([rng.permutation(n) for _ in range(reps)])[:sims]


# ----------------------------------------------------------------------------------------
# per-simulation decisions
# ----------------------------------------------------------------------------------------


def posterior_decision(did: np.ndarray, *, lower_is_better: bool) -> dict[str, float]:
    """What one simulated study's posterior says about the DiD (link scale).

    Returns
    -------
    dict
        ``bayes_estimate`` (posterior mean), ``bayes_sd``, ``bayes_lower`` and
        ``bayes_upper`` (95% equal-tailed interval) and ``prob_benefit``.
    """
    x = np.asarray(did, dtype=float).ravel()
    lo, hi = np.quantile(x, [0.025, 0.975])
    benefit = np.mean(x < 0) if lower_is_better else np.mean(x > 0)
    return {"bayes_estimate": float(x.mean()), "bayes_sd": float(x.std(ddof=1)),
            "bayes_lower": float(lo), "bayes_upper": float(hi), "prob_benefit": float(benefit)}


# ----------------------------------------------------------------------------------------
# summaries with Monte Carlo standard errors
# ----------------------------------------------------------------------------------------


def proportion(x: Iterable[float]) -> tuple[float, float, int]:
    """Share of true values among the non-missing ones, its Monte Carlo SE and count.

    The SE is ``sqrt(p (1 - p) / n)`` with half a success added to both counts
    (``p = (k + 0.5) / (n + 1)``), so that a share of 0 or 1 does not claim no error.
    """
    a = np.asarray(list(x) if not isinstance(x, (np.ndarray, pd.Series)) else x, dtype=float)
    a = a[np.isfinite(a)]
    n = len(a)
    if n == 0:
        return math.nan, math.nan, 0
    k = float(a.sum())
    pt = (k + 0.5) / (n + 1)
    return k / n, math.sqrt(pt * (1 - pt) / n), n


def type_s_m(estimate: np.ndarray, significant: np.ndarray, truth: float) -> dict[str, float]:
    """Type S and type M errors of the significant estimates (Gelman & Carlin 2014).

    Parameters
    ----------
    estimate
        Estimates (link scale), one per simulation.
    significant
        1/0 (NaN: not computed) per simulation.
    truth
        The true effect (link scale); both errors are undefined at zero.

    Returns
    -------
    dict
        ``type_s`` (share of significant estimates with the wrong sign) and ``type_m``
        (mean of ``|estimate| / |truth|`` over significant estimates), their Monte Carlo
        SEs ``type_s_se``, ``type_m_se`` and ``n_significant``.
    """
    est = np.asarray(estimate, dtype=float)
    sig = np.asarray(significant, dtype=float)
    ok = np.isfinite(est) & np.isfinite(sig) & (sig > 0)
    n = int(ok.sum())
    out = {"type_s": math.nan, "type_s_se": math.nan, "type_m": math.nan, "type_m_se": math.nan,
           "n_significant": n}
    if truth == 0 or n == 0:
        return out
    e = est[ok]
    s, s_se, _ = proportion(np.sign(e) != np.sign(truth))
    ratio = np.abs(e) / abs(truth)
    out.update(type_s=s, type_s_se=s_se, type_m=float(ratio.mean()),
               type_m_se=float(ratio.std(ddof=1) / math.sqrt(n)) if n > 1 else math.nan)
    return out


def bayes_significant(sims: pd.DataFrame) -> np.ndarray:
    """1 where a simulation's 95% posterior interval excludes zero, 0 where not, NaN
    where it has no posterior."""
    lo, hi = sims["bayes_lower"].to_numpy(float), sims["bayes_upper"].to_numpy(float)
    out = ((lo > 0) | (hi < 0)).astype(float)
    out[~(np.isfinite(lo) & np.isfinite(hi))] = np.nan
    return out


def assured(sims: pd.DataFrame, threshold: float) -> np.ndarray:
    """1 where a simulation's posterior P(benefit) exceeds ``threshold`` (NaN: no posterior)."""
    p = sims["prob_benefit"].to_numpy(float)
    out = (p > threshold).astype(float)
    out[~np.isfinite(p)] = np.nan
    return out


def _benefit_sign(lower_is_better: bool) -> float:
    return -1.0 if lower_is_better else 1.0


def _shift_assurance(d: np.ndarray, m: np.ndarray, s: np.ndarray, e: np.ndarray, b: float,
                     threshold: float) -> float:
    """Assurance at effect ``d`` from simulations at effects ``e`` (location shift)."""
    z = b * (m + d - e) / s
    return float(np.mean(stats.norm.cdf(z) > threshold))


def _mde_once(e: np.ndarray, pb: np.ndarray, m: np.ndarray, s: np.ndarray, *, threshold: float,
              target: float, b: float) -> tuple[float, str]:
    """MDE (link scale, benefit direction) from one set of simulations: their effects,
    P(benefit), posterior means and SDs (see :func:`minimum_detectable_effect`)."""
    ok = np.isfinite(pb)
    e, pb, m, s = e[ok], pb[ok], m[ok], s[ok]
    if not len(e):
        return math.nan, ""
    size = b * e
    sizes = np.unique(size[size >= 0])
    a = np.array([np.mean(pb[size == x] > threshold) for x in sizes])
    for i in range(len(sizes) - 1):
        if a[i] < target <= a[i + 1]:
            x = sizes[i] + (target - a[i]) * (sizes[i + 1] - sizes[i]) / (a[i + 1] - a[i])
            return b * float(x), "interpolated"
    use = size > 0
    if not use.any():
        return math.nan, ""
    m, s, e = m[use], np.maximum(s[use], 1e-12), e[use]

    def gap(x: float) -> float:
        return _shift_assurance(b * x, m, s, e, b, threshold) - target

    hi = 1.0
    while gap(hi) < 0 and hi < 64:
        hi *= 2
    if gap(hi) < 0:
        return math.nan, "extrapolated"
    lo = 0.0
    if gap(lo) >= 0:
        return 0.0, "extrapolated"
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        if gap(mid) >= 0:
            hi = mid
        else:
            lo = mid
    return b * hi, "extrapolated"


def minimum_detectable_effect(
    sims: pd.DataFrame,
    *,
    lower_is_better: bool,
    threshold: float = 0.95,
    target: float = 0.8,
    bootstrap: int = 200,
    seed: int = 0,
) -> dict[str, Any]:
    """The smallest effect (in the direction of benefit) with ``target`` assurance.

    ``sims`` are one design size's simulations with posteriors.  Where the simulated
    effects bracket the target, the assurance is interpolated linearly in the effect
    between them (``method = "interpolated"``).  Otherwise each posterior is shifted
    by the difference between a candidate effect and its simulated one, as a normal
    posterior with its own SD (a location-shift extrapolation, ``"extrapolated"``),
    and the effect whose shifted assurance reaches ``target`` is found by bisection.
    The Monte Carlo SE is the SD over ``bootstrap`` resamples of the simulation
    indices (the same indices at every effect).

    Returns
    -------
    dict
        ``mde_link``, ``mde_ratio``, ``mde_ratio_se`` and ``mde_method``.
    """
    b = _benefit_sign(lower_is_better)
    cols = [sims[c].to_numpy(float) for c in ("effect_link", "prob_benefit", "bayes_estimate",
                                                 "bayes_sd")]
    val, method = _mde_once(*cols, threshold=threshold, target=target, b=b)
    out = {"mde_link": val, "mde_ratio": math.exp(val) if np.isfinite(val) else math.nan,
           "mde_ratio_se": math.nan, "mde_method": method}
    if not np.isfinite(val) or bootstrap <= 1:
        return out
    rng = np.random.default_rng(seed)
    codes, ids = pd.factorize(sims["sim"])
    rows_of = [np.flatnonzero(codes == k) for k in range(len(ids))]
    boots = []
    for _ in range(bootstrap):
        pick = np.concatenate([rows_of[k] for k in rng.integers(0, len(ids), size=len(ids))])
        v, _m = _mde_once(*(c[pick] for c in cols), threshold=threshold, target=target, b=b)
        if np.isfinite(v):
            boots.append(math.exp(v))
    if len(boots) > 1:
        out["mde_ratio_se"] = float(np.std(boots, ddof=1))
    return out


def summarise_simulations(
    sims: pd.DataFrame,
    *,
    lower_is_better: Mapping[str, bool],
    threshold: float = 0.95,
    target: float = 0.8,
    bootstrap: int = 200,
) -> pd.DataFrame:
    """One row per indicator x design size x effect: assurance, power, false-positive
    rates, type S/M and the minimum detectable effect, each with its Monte Carlo SE.

    Parameters
    ----------
    sims
        Per-simulation rows (:data:`nbdid.workflow.design.SIM_COLUMNS`): at least
        ``indicator, areas, sim, effect_link, effect_ratio``, the posterior summary
        (``bayes_estimate, bayes_sd, bayes_lower, bayes_upper, prob_benefit``; NaN where
        no posterior was fitted) and per frequentist method ``<m>_estimate`` (link
        scale) and ``<m>_significant`` (1/0/NaN).
    lower_is_better
        Direction of benefit per indicator.
    threshold
        Posterior P(benefit) that counts as detecting a benefit.
    target
        Assurance at which the minimum detectable effect is read off.
    bootstrap
        Resamples for the Monte Carlo SE of the minimum detectable effect.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`SUMMARY_COLUMNS` (descriptive columns such as the heterogeneity
        source are added by the workflow).
    """
    rows = []
    keys = ["indicator", "areas"]
    for (key, areas), g in sims.groupby(keys, sort=False):
        lib = bool(lower_is_better[key])
        null = g[np.isclose(g["effect_link"], 0.0)]
        fpr = {}
        for m in FREQ_METHODS:
            col = f"{m}_significant"
            p, se, n = proportion(null[col]) if len(null) and col in null else (math.nan, math.nan, 0)
            fpr[m] = (p, se)
        bayes_sims = g[np.isfinite(g["prob_benefit"].to_numpy(float))]
        mde = minimum_detectable_effect(
            bayes_sims[~np.isclose(bayes_sims["effect_link"], 0.0)] if len(bayes_sims) else bayes_sims,
            lower_is_better=lib, threshold=threshold, target=target, bootstrap=bootstrap,
            seed=derived_seed(0, "mde", str(key), str(areas)),
        ) if len(bayes_sims) else {"mde_link": math.nan, "mde_ratio": math.nan,
                                   "mde_ratio_se": math.nan, "mde_method": ""}
        for eff, e in g.groupby("effect_link", sort=True):
            truth = float(eff)
            row: dict[str, Any] = {
                "indicator": key, "areas": int(areas), "effect_ratio": math.exp(truth),
                "effect_link": truth, "sims": int(e["sim"].nunique()),
            }
            a, a_se, n_b = proportion(assured(e, threshold))
            ai, ai_se, _ = proportion(bayes_significant(e))
            row.update(n_bayes=n_b, assurance=a, assurance_se=a_se, assurance_interval=ai,
                       assurance_interval_se=ai_se)
            ts = type_s_m(e["bayes_estimate"].to_numpy(float), bayes_significant(e), truth)
            row.update(type_s_bayes=ts["type_s"], type_s_bayes_se=ts["type_s_se"],
                       type_m_bayes=ts["type_m"], type_m_bayes_se=ts["type_m_se"])
            for m in FREQ_METHODS:
                p, se, n = proportion(e[f"{m}_significant"])
                row[f"power_{m}"], row[f"power_{m}_se"], row[f"n_{m}"] = p, se, n
                ts = type_s_m(e[f"{m}_estimate"].to_numpy(float), e[f"{m}_significant"].to_numpy(float),
                              truth)
                row.update({f"type_s_{m}": ts["type_s"], f"type_s_{m}_se": ts["type_s_se"],
                            f"type_m_{m}": ts["type_m"], f"type_m_{m}_se": ts["type_m_se"]})
            row["pooled_rule_fpr"], row["pooled_rule_fpr_se"] = fpr[POOLED_RULE]
            for m in TWIN_METHODS:
                row[f"fpr_{m}"], row[f"fpr_{m}_se"] = fpr[m]
            row.update(mde)
            div = e["divergences"].to_numpy(float) if "divergences" in e else np.array([])
            div = div[np.isfinite(div)]
            row["divergent_share"] = float(np.mean(div > 0)) if len(div) else math.nan
            rows.append(row)
    out = pd.DataFrame(rows)
    if out.empty:
        return pd.DataFrame(columns=list(SUMMARY_COLUMNS))
    out["threshold"] = threshold
    out["target"] = target
    return out[[c for c in SUMMARY_COLUMNS if c in out.columns]]


SUMMARY_COLUMNS: tuple[str, ...] = (
    "indicator", "areas", "effect_ratio", "effect_link", "sims", "n_bayes",
    "assurance", "assurance_se", "assurance_interval", "assurance_interval_se",
    *[c for m in FREQ_METHODS for c in (f"power_{m}", f"power_{m}_se", f"n_{m}")],
    "pooled_rule_fpr", "pooled_rule_fpr_se",
    *[c for m in TWIN_METHODS for c in (f"fpr_{m}", f"fpr_{m}_se")],
    "type_s_bayes", "type_s_bayes_se", "type_m_bayes", "type_m_bayes_se",
    *[c for m in FREQ_METHODS for c in (f"type_s_{m}", f"type_s_{m}_se", f"type_m_{m}",
                                        f"type_m_{m}_se")],
    "mde_link", "mde_ratio", "mde_ratio_se", "mde_method", "divergent_share", "threshold", "target",
)
"""Columns of :func:`summarise_simulations`."""


# ----------------------------------------------------------------------------------------
# how many areas
# ----------------------------------------------------------------------------------------


def areas_needed(table: pd.DataFrame, *, column: str = "assurance", target: float = 0.8,
                 sd_column: str | None = None) -> tuple[float, str]:
    """Number of matched sets at which ``column`` reaches ``target``, for one indicator
    and effect (rows = design sizes).

    Interpolated linearly in ``log(areas)`` between the simulated sizes that bracket
    the target (``"about"``); ``"at most"`` the smallest size when it already reaches
    it; beyond the largest size, ``"more than"`` it, or, when ``sd_column`` names the
    median posterior SD at each size, extrapolated with the SD's ``1 / sqrt(areas)``
    law from the largest size (``"about (extrapolated)"``).

    Returns
    -------
    tuple
        ``(areas, how)``; NaN and ``""`` when nothing was computed.
    """
    t = table[np.isfinite(table[column].to_numpy(float))].sort_values("areas")
    if t.empty:
        return math.nan, ""
    n = t["areas"].to_numpy(float)
    a = t[column].to_numpy(float)
    if a[0] >= target:
        return float(n[0]), "at most"
    for i in range(len(n) - 1):
        if a[i] < target <= a[i + 1]:
            x = np.log(n[i]) + (target - a[i]) * (np.log(n[i + 1]) - np.log(n[i])) / (a[i + 1] - a[i])
            return float(np.exp(x)), "about"
    return float(n[-1]), "more than"


# ----------------------------------------------------------------------------------------
# plain words
# ----------------------------------------------------------------------------------------


RATIO_WORDS: dict[str, str] = {name: f.ratio_label for name, f in FAMILIES.items()}
"""The ratio scale of each family in words (from the family objects)."""


def _what(key: str, family: str, ratio: float) -> str:
    title = INDICATORS[key].title if key in INDICATORS else key
    pct = abs(100.0 * (ratio - 1.0))
    direction = "fall" if ratio < 1 else "rise"
    # a ratio on the logit scale is a ratio of odds
    subject = f"the odds of {title}" if family in FAMILIES and FAMILIES[family].link == "logit" else title
    return f"a {pct:.0f}% {direction} in {subject} ({RATIO_WORDS.get(family, 'ratio')} {ratio:.2f})"


def _count(n: float, how: str, sets: str) -> str:
    if not np.isfinite(n):
        return "an unknown number of"
    r = int(round(n))
    if how == "at most":
        return f"{r} {sets} or fewer"
    if how == "more than":
        return f"more than {r} {sets}"
    return f"about {r:,} {sets}"


def plain_summary(table: pd.DataFrame, *, families: Mapping[str, str],
                  heterogeneity: Mapping[str, Heterogeneity] | None = None,
                  controls_per_set: int = 1, synthetic: bool = False) -> str:
    """The findings in plain words (Markdown), one paragraph per indicator and effect.

    "To detect a 10% fall in the Overall Crime Rate (rate ratio 0.90) with 80%
    assurance you need about N matched pairs", with the twin methods' sizes for 80%
    power beside it, the report's pooled rule's false-positive rate and the minimum
    detectable effects, all read off ``table`` (:func:`summarise_simulations` plus the
    workflow's descriptive columns).
    """
    sets = "matched pairs" if controls_per_set == 1 else f"matched sets (1 NBI area and {controls_per_set} benchmarks each)"
    lines = ["# How big must the next evaluation be?", ""]
    if synthetic:
        lines += [f"**{SYNTHETIC_NOTICE}.** The heterogeneity below was measured on synthetic "
                  "data; treat the numbers as an illustration of the method.", ""]
    target = float(table["target"].iloc[0]) if len(table) else 0.8
    thr = float(table["threshold"].iloc[0]) if len(table) else 0.95
    for key, t in table.groupby("indicator", sort=False):
        fam = families.get(key, "poisson")
        title = INDICATORS[key].title if key in INDICATORS else key
        lines.append(f"## {title}")
        lines.append("")
        if heterogeneity and key in heterogeneity:
            lines.append(f"Heterogeneity: {heterogeneity[key].sentence()}.")
            lines.append("")
        for eff, e in t.groupby("effect_ratio", sort=True):
            if np.isclose(eff, 1.0):
                continue
            n_a, how = areas_needed(e, column="assurance", target=target)
            sentence = (f"- To detect {_what(key, fam, float(eff))} with {100 * target:.0f}% "
                        f"assurance (posterior P(benefit) > {thr:.2f}) you need "
                        f"{_count(n_a, how, sets)}.")
            twin = []
            for m in TWIN_METHODS:
                n_m, how_m = areas_needed(e, column=f"power_{m}", target=target)
                if how_m:
                    twin.append(f"{METHOD_PROSE[m]} needs {_count(n_m, how_m, '').strip()}")
            if twin:
                body = ", ".join(twin[:-1]) + (" and " if len(twin) > 1 else "") + twin[-1]
                sentence += f" For {100 * target:.0f}% power (5% two-sided), {body}."
            lines.append(sentence)
        null = t[np.isclose(t["effect_ratio"], 1.0)].sort_values("areas")
        null = null[np.isfinite(null["pooled_rule_fpr"].to_numpy(float))]
        if len(null):
            fprs = [f"{100 * r.pooled_rule_fpr:.0f}% of simulated studies with {int(r.areas)} "
                    f"{sets.split(' (')[0]}" if i == 0 else f"{100 * r.pooled_rule_fpr:.0f}% with "
                    f"{int(r.areas)}" for i, r in enumerate(null.itertuples())]
            twin = null[[f"fpr_{m}" for m in TWIN_METHODS]].to_numpy(float)
            twin = twin[np.isfinite(twin)]
            lo, hi = (f"{100 * twin.min():.0f}", f"{100 * twin.max():.0f}") if len(twin) else ("", "")
            nominal = 100 * float(t["alpha"].iloc[0]) if "alpha" in t else 5.0
            rng_txt = (f"; the twin methods {lo if lo == hi else f'{lo}-{hi}'}%, nominal {nominal:.0f}%"
                       if len(twin) else "")
            lines.append("- With no effect at all, the report's pooled non-overlap rule calls the "
                         "difference 'significant' in " + ", ".join(fprs) + rng_txt + ".")
        mde = t.drop_duplicates("areas").sort_values("areas")
        parts = [f"{r.mde_ratio:.2f} at {int(r.areas)}" + (" (extrapolated)" if r.mde_method == "extrapolated" else "")
                 for r in mde.itertuples() if np.isfinite(r.mde_ratio)]
        if parts:
            lines.append(f"- Smallest effect with {100 * target:.0f}% assurance "
                         f"({RATIO_WORDS.get(fam, 'ratio')}): " + "; ".join(parts) + ".")
        lines += ["", *summary_table(t), ""]
    lines.append("Assurance integrates over the uncertainty in the heterogeneity (each simulated "
                 "study draws its own variance components); Monte Carlo standard errors are in "
                 "assurance.csv.")
    return "\n".join(lines) + "\n"


def _pct(x: float, se: float | None = None) -> str:
    if not np.isfinite(x):
        return "-"
    return f"{100 * x:.0f}%" + (f" ± {100 * se:.0f}" if se is not None and np.isfinite(se) else "")


def summary_table(t: pd.DataFrame) -> list[str]:
    """A compact Markdown table of one indicator's rows: assurance, power of each
    method, the pooled rule's false-positive rate and the Bayesian type S/M errors
    (percentages ± one Monte Carlo SE)."""
    head = ["matched sets", "effect", "assurance", "GLM", "RI", "paired t", "pooled rule",
            "type S", "type M"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in t.sort_values(["effect_ratio", "areas"]).itertuples(index=False):
        d = r._asdict()
        eff = "none" if np.isclose(d["effect_ratio"], 1.0) else f"{d['effect_ratio']:.2f}"
        tm = d["type_m_bayes"]
        cells = [f"{int(d['areas'])}", eff, _pct(d["assurance"], d["assurance_se"]),
                 *[_pct(d[f"power_{m}"], d[f"power_{m}_se"]) for m in TWIN_METHODS],
                 _pct(d["power_report_pooled"], d["power_report_pooled_se"]),
                 _pct(d["type_s_bayes"], d["type_s_bayes_se"]),
                 "-" if not np.isfinite(tm) else f"{tm:.2f}"]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    lines.append("*Assurance: share of simulated studies with posterior P(benefit) above the "
                 "threshold; GLM, RI, paired t, pooled rule: share called significant (with no "
                 "effect: the false-positive rate); type S/M: Bayesian, among studies whose 95% "
                 "interval excludes zero.*")
    return lines


# ----------------------------------------------------------------------------------------
# closed forms (normal outcome, known variances): the validation targets
# ----------------------------------------------------------------------------------------


def normal_power(delta: float, se: float, *, alpha: float = 0.05) -> float:
    """Power of the two-sided z-test of an estimate ``N(delta, se^2)``."""
    z = stats.norm.ppf(1 - alpha / 2)
    r = delta / se
    return float(stats.norm.cdf(r - z) + stats.norm.cdf(-r - z))


def _shrink(se: float, prior_sd: float) -> float:
    return 1.0 if not np.isfinite(prior_sd) else prior_sd**2 / (prior_sd**2 + se**2)


def normal_assurance(delta: float, se: float, *, prior_sd: float = math.inf,
                     threshold: float = 0.95, lower_is_better: bool = False) -> float:
    """Assurance of a conjugate normal analysis with known variance.

    The estimate is ``y ~ N(delta, se^2)``, the prior ``N(0, prior_sd^2)``; with
    ``w = prior_sd^2 / (prior_sd^2 + se^2)`` the posterior is ``N(w y, w se^2)``, so
    ``P(benefit) > threshold`` exactly when ``b y > z_threshold se / sqrt(w)`` (``b`` the
    direction of benefit), which has probability
    ``Phi(b delta / se - z_threshold / sqrt(w))``.
    """
    w = _shrink(se, prior_sd)
    b = _benefit_sign(lower_is_better)
    return float(stats.norm.cdf(b * delta / se - stats.norm.ppf(threshold) / math.sqrt(w)))


def normal_interval_assurance(delta: float, se: float, *, prior_sd: float = math.inf,
                              level: float = 0.95) -> float:
    """P(the conjugate normal posterior's central interval excludes zero)."""
    w = _shrink(se, prior_sd)
    z = stats.norm.ppf(0.5 + level / 2) / math.sqrt(w)
    r = delta / se
    return float(stats.norm.cdf(r - z) + stats.norm.cdf(-r - z))


def normal_type_s_m(delta: float, se: float, *, alpha: float = 0.05,
                    z: float | None = None) -> tuple[float, float]:
    """Type S and type M errors of a two-sided test of ``N(delta, se^2)`` (Gelman &
    Carlin 2014, "retrodesign"), in closed form.

    ``z`` overrides the critical value (e.g. ``1.96 / sqrt(w)`` for the conjugate
    posterior's interval).  Type M is ``E(|y| | significant) / |delta|``, from the means
    of the two truncated normal tails.
    """
    c = (stats.norm.ppf(1 - alpha / 2) if z is None else z) * se
    a, b = (c - delta) / se, (-c - delta) / se
    upper, lower = stats.norm.sf(a), stats.norm.cdf(b)
    power = upper + lower
    wrong = lower if delta > 0 else upper
    abs_mean = (delta * upper + se * stats.norm.pdf(a)) + (-delta * lower + se * stats.norm.pdf(b))
    return float(wrong / power), float(abs_mean / power / abs(delta))


def paired_t_power(delta: float, sd: float, n: int, *, alpha: float = 0.05) -> float:
    """Power of the two-sided one-sample t-test of ``n`` differences ``N(delta, sd^2)``
    (noncentral t)."""
    df = n - 1
    nc = delta * math.sqrt(n) / sd
    t = stats.t.ppf(1 - alpha / 2, df)
    return float(stats.nct.sf(t, df, nc) + stats.nct.cdf(-t, df, nc))


def validation_table(deltas: Sequence[float], se: float, *, prior_sd: float = math.inf,
                     threshold: float = 0.95, alpha: float = 0.05,
                     lower_is_better: bool = False) -> pd.DataFrame:
    """The closed forms at several effects (for docs and validation reports)."""
    rows = []
    for d in deltas:
        s, m = normal_type_s_m(d, se, alpha=alpha) if d != 0 else (math.nan, math.nan)
        rows.append({"effect_link": d, "power": normal_power(d, se, alpha=alpha),
                     "assurance": normal_assurance(d, se, prior_sd=prior_sd, threshold=threshold,
                                                   lower_is_better=lower_is_better),
                     "assurance_interval": normal_interval_assurance(d, se, prior_sd=prior_sd),
                     "type_s": s, "type_m": m})
    return pd.DataFrame(rows)


__all__ = [
    "BAYES", "FREQ_METHODS", "HET_COLUMNS", "SUMMARY_COLUMNS", "TWIN_METHODS", "Effect",
    "Heterogeneity", "areas_needed", "assured", "bayes_significant", "draw_indices",
    "effect_from_unit", "heterogeneity_from_posterior", "heterogeneity_from_tipping",
    "heterogeneity_given", "minimum_detectable_effect", "normal_assurance",
    "normal_interval_assurance", "normal_power", "normal_type_s_m", "paired_t_power",
    "plain_summary", "posterior_decision", "proportion", "sim_seed", "sims_per_task",
    "summarise_simulations", "task_chunks", "type_s_m", "unit_of_effect", "validation_table",
]
