"""Frequentist difference-in-differences analyses of a ward panel.

Four analyses of one indicator, each giving an estimate in the indicator's own unit and
on the ratio scale, a 95% interval and a p-value (see ``docs/frequentist.md``):

``report_pooled``
    The report's method recomputed from the panel's group totals: pooled binomial /
    Poisson / transaction-level intervals per group and period, change intervals by
    interval arithmetic, "significant" when the two groups' change intervals do not
    overlap.  :func:`pooled_group_values` checks the pooled values against the
    published Tables 5A-11A.
``glm_cluster``
    A GLM of the indicator's family on ward x period rows (binomial with trials,
    Poisson with a log-exposure offset, or weighted least squares of ward mean log
    prices weighted by transactions) with ``nbi``, ``post`` and ``nbi:post``, fitted
    by statsmodels with standard errors clustered by ward: CR1 (the
    ``G/(G-1) * (N-1)/(N-K)`` correction of Stata, fixest and R's
    ``sandwich::vcovCL(type = "HC1")``) with Student-t(G - 1) reference quantiles.
``randomization``
    Randomization inference that swaps the group labels within matched pairs (all
    ``2^P`` swap patterns when ``P <= RI_EXACT_MAX_PAIRS``, else ``RI_DRAWS`` seeded
    draws plus the observed pattern).  The statistic is the GLM's interaction
    coefficient computed from the group totals (log ratio of ratios of pooled rates,
    log odds ratio of pooled proportions, difference in differences of
    transaction-weighted mean log prices); the interval inverts the test under a
    constant-effect sharp null on that scale.
``paired_t``
    Paired analysis of the pair differences in change (NBI change minus its
    benchmark's change), a one-sample t-test with scipy.

The Bayesian posterior is carried as one more row by :func:`bayes_row`.

Analyses use two time points: ward totals over the ``post == 0`` periods and over the
``post == 1`` periods (for the report's two-period panels, the two periods).
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

from nbdid.analysis.estimands import indicator_unit
from nbdid.analysis.replication import change_interval, intervals_overlap
from nbdid.config import FrequentistConfig
from nbdid.data_prep.feasibility import check_did
from nbdid.data_prep.published import load_report_values
from nbdid.errors import InputError
from nbdid.families import FAMILIES, Family, resolve_family
from nbdid.registry import INDICATORS

Z95 = 1.96
"""The normal quantile of the report's 95% intervals."""

_DEFAULTS = FrequentistConfig()

ALPHA = _DEFAULTS.alpha
"""Two-sided level of every interval and significance call (``FrequentistConfig.alpha``)."""

RI_DRAWS = _DEFAULTS.ri_draws
"""Random swap patterns drawn when the pairs are too many to enumerate (``FrequentistConfig``)."""

RI_SEED = _DEFAULTS.ri_seed
"""Seed of the randomization-inference draws (``FrequentistConfig.ri_seed``)."""

RI_EXACT_MAX_PAIRS = _DEFAULTS.ri_exact_max_pairs
"""Enumerate all ``2^P`` swap patterns up to this many pairs (``FrequentistConfig``)."""

RATIO_SCALES = {name: fam.ratio_scale for name, fam in FAMILIES.items()}
"""The ratio scale of each family, as the Bayesian models name it."""

ESTIMANDS = {
    "additive": "difference in pooled changes (NBI change minus benchmark change)",
    "population_averaged": (
        "population-averaged DiD: NBI post-period pooled value minus its counterfactual "
        "under multiplicative parallel trends"
    ),
    "paired": "mean over pairs of (NBI ward change minus benchmark ward change)",
}

RESULT_COLUMNS: tuple[str, ...] = (
    "indicator", "method", "family", "unit", "estimand", "estimate", "lower", "upper",
    "ratio_scale", "ratio", "ratio_lower", "ratio_upper", "p_value", "significant",
    "better", "test", "n_wards", "n_pairs", "note",
)


@dataclass
class MethodResult:
    """One method's DiD for one indicator (a row of :data:`RESULT_COLUMNS`).

    Estimates and intervals are in the indicator's own unit (``estimate, lower,
    upper``) and on the ratio scale (``ratio, ratio_lower, ratio_upper``);
    ``significant`` and ``better`` are ``pd.NA`` when not computed, with ``note``
    saying why.  Items can be read as ``result["estimate"]`` too.
    """

    indicator: str
    method: str
    family: str
    unit: str
    estimand: str
    estimate: float = math.nan
    lower: float = math.nan
    upper: float = math.nan
    ratio_scale: str | None = None
    ratio: float = math.nan
    ratio_lower: float = math.nan
    ratio_upper: float = math.nan
    p_value: float = math.nan
    significant: Any = pd.NA
    better: Any = pd.NA
    test: str = ""
    n_wards: int = 0
    n_pairs: int = 0
    note: str = ""
    gate: str = ""
    prob_benefit: float = math.nan

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    def as_dict(self) -> dict[str, Any]:
        """The result as a flat dict (one table row)."""
        return asdict(self)


@dataclass(frozen=True)
class AnalysisSettings:
    """Settings shared by the methods (from :class:`nbdid.config.FrequentistConfig`)."""

    alpha: float = ALPHA
    draws: int = RI_DRAWS
    seed: int = RI_SEED
    exact_max: int = RI_EXACT_MAX_PAIRS
    summary: pd.DataFrame | None = field(default=None, repr=False)
    posterior_note: str = ""
    interval: bool = True
    """Invert the randomization test for an interval (``False``: p-value only, as the
    design simulations of :mod:`nbdid.workflow.design` need)."""


@dataclass(frozen=True)
class Method:
    """A method of the concordance table.

    Attributes
    ----------
    name
        Key used in tables (``method`` column).
    label
        Full description (``method_label`` column).
    short
        Column heading in the terminal summary.
    figure_label
        Label in figures (row labels of the concordance figure, legends).
    prose
        Name in a sentence ("the paired t-test needs about 150 pairs").
    run
        ``run(data, settings) -> MethodResult``.
    """

    name: str
    label: str
    short: str
    figure_label: str
    prose: str
    run: Callable[[IndicatorData, AnalysisSettings], MethodResult]



# ----------------------------------------------------------------------------------------
# data
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IndicatorData:
    """One indicator's ward totals before (``post = 0``) and after (``post = 1``).

    Attributes
    ----------
    key, family
        Indicator key and family (:class:`nbdid.families.Family`).
    multiplier, unit
        Factor from a count/exposure ratio to the own unit, and the unit's label.
    lower_is_better
        Direction of benefit.
    wards
        One row per ward and ``post``: ``ward, group, pair, nbi, post``, the family's
        additive totals (:meth:`nbdid.families.Family.ward_totals`: ``num`` and ``den``,
        whose ratio the statistics take the link of, plus ``count, exposure`` for
        count families or ``n, sum_price, sum_log, sum_sq`` for prices) and ``value``
        (the ward's own-unit value).
    notes
        Remarks on rows dropped while preparing the data.
    """

    key: str
    family: Family
    multiplier: float
    unit: str
    lower_is_better: bool
    wards: pd.DataFrame
    notes: tuple[str, ...] = ()

    @property
    def ratio_scale(self) -> str | None:
        return self.family.ratio_scale


def panel_family(panel: pd.DataFrame, key: str, family: str | Family | None = None) -> Family:
    """The family of an indicator of ``panel``: :func:`nbdid.families.resolve_family`
    (``family``, else the registry's) given the columns its rows fill."""
    rows = panel[panel["indicator"].astype(str) == key]
    if rows.empty:
        raise InputError(f"the panel has no rows for indicator '{key}'")
    present = [c for c in rows.columns if rows[c].notna().any()]
    return resolve_family(key, family, columns_present=present).family


def unit_of(key: str, family: str | Family) -> tuple[float, str]:
    """Multiplier and unit label (the same as the Bayesian summaries use)."""
    return indicator_unit(key, family)


def _aggregate(rows: pd.DataFrame, family: Family, by: str, multiplier: float) -> pd.DataFrame:
    keys = ["ward", by]
    first = rows.groupby(keys, sort=True)[["group", "pair"]].first()
    tot = family.ward_totals(rows)
    tot.insert(0, by, rows[by].to_numpy())
    tot.insert(0, "ward", rows["ward"].to_numpy())
    agg = tot.groupby(keys, sort=True)[[c for c in tot.columns if c not in keys]].sum()
    agg["value"] = family.unit_value(agg, multiplier)
    out = first.join(agg).reset_index()
    out["group"] = out["group"].astype(str)
    out["nbi"] = (out["group"] == "nbi").astype("int64")
    return out


def prepare(panel: pd.DataFrame, key: str, *, family: str | Family | None = None) -> IndicatorData:
    """Ward totals of one indicator before and after (see :class:`IndicatorData`).

    Raises
    ------
    InputError
        If the panel has no rows for ``key``, cannot support a DiD
        (:func:`nbdid.data_prep.feasibility.check_did`: one group, no period before or
        after, ...), or a row lacks a value its family needs.
    """
    fam = panel_family(panel, key, family)
    rows = check_did(panel, key, columns=fam.required).rows
    notes: list[str] = []
    missing = rows[list(fam.required)].isna().any(axis=1).to_numpy()
    if missing.all():
        raise InputError(f"indicator '{key}' has no rows with {', '.join(fam.required)}")
    if missing.any():
        cols = [c for c in fam.required if rows[c].isna().any()]
        raise InputError(f"indicator '{key}' has rows without {', '.join(cols)}")
    weight = fam.row_weights(rows)
    zero = weight <= 0
    if zero.any():
        notes.append(f"{int(zero.sum())} ward-period(s) with zero {fam.weight_column} left out")
        rows = rows[~zero]
    mult, unit = unit_of(key, fam)
    wards = _aggregate(rows, fam, "post", mult)
    lower = INDICATORS[key].lower_is_better if key in INDICATORS else False
    return IndicatorData(key, fam, float(mult), unit, lower, wards, tuple(notes))


# ----------------------------------------------------------------------------------------
# the report's pooled method
# ----------------------------------------------------------------------------------------


def _group_stats(w: pd.DataFrame, family: Family, multiplier: float, by: str) -> pd.DataFrame:
    """Pooled value, half-width and totals per group and ``by`` (report's formulas,
    :meth:`nbdid.families.Family.pooled`)."""
    rows = []
    for (grp, t), sub in w.groupby(["group", by], sort=True):
        ps = family.pooled(sub, multiplier)
        row = {"group": grp, by: int(t), "wards": len(sub), "count": ps.count, "total": ps.total,
               "value": ps.value, "se": ps.se, "log_se": ps.log_se, "log_value": ps.log_value,
               "pooled": ps}
        row["half_width"] = Z95 * row["se"]
        rows.append(row)
    return pd.DataFrame(rows)


def report_round(x: float, decimals: int) -> float:
    """Round half up to ``decimals`` places, as a printed table does."""
    if not np.isfinite(x):
        return float("nan")
    q = Decimal(1).scaleb(-decimals)
    return float(Decimal(repr(float(x))).quantize(q, rounding=ROUND_HALF_UP))


def pooled_group_values(panel: pd.DataFrame, key: str, *, family: str | None = None) -> pd.DataFrame:
    """The report's pooled value and 95% half-width per group and period of a panel.

    For registry indicators whose periods match the report's, the published values
    (:func:`nbdid.data_prep.published.load_report_values`) are set beside them and
    ``value_matches`` says whether the recomputed value, rounded as the report prints
    it, equals the published one (``half_width_matches`` likewise).

    Returns
    -------
    pandas.DataFrame
        ``indicator, group, period, period_label, wards, total, value, half_width,
        published_value, published_half_width, value_matches, half_width_matches``.
    """
    fam = panel_family(panel, key, family)
    rows = panel[panel["indicator"].astype(str) == key]
    rows = rows[fam.row_weights(rows) > 0]
    mult, _ = unit_of(key, fam)
    w = _aggregate(rows, fam, "period", mult)
    g = _group_stats(w, fam, mult, "period")
    labels = rows.drop_duplicates("period").set_index("period")["period_label"].astype(str)
    g["period_label"] = g["period"].map(labels)
    g.insert(0, "indicator", key)
    g = g[["indicator", "group", "period", "period_label", "wards", "total", "value", "half_width"]]
    g["published_value"] = np.nan
    g["published_half_width"] = np.nan
    g["value_matches"] = pd.array([pd.NA] * len(g), dtype="boolean")
    g["half_width_matches"] = pd.array([pd.NA] * len(g), dtype="boolean")
    if key in INDICATORS:
        rv = load_report_values()
        rv = rv[rv["indicator"] == key].set_index(["group", "period_label"])
        ind = INDICATORS[key]
        for i, r in g.iterrows():
            k = (r["group"], r["period_label"])
            if k not in rv.index:
                continue
            pub = rv.loc[k]
            g.loc[i, "published_value"] = float(pub["value"])
            g.loc[i, "published_half_width"] = float(pub["half_width"])
            g.loc[i, "value_matches"] = report_round(r["value"], ind.decimals) == float(pub["value"])
            g.loc[i, "half_width_matches"] = (
                report_round(r["half_width"], ind.half_width_decimals) == float(pub["half_width"])
            )
    return g


def reproduces_published(groups: pd.DataFrame) -> bool | None:
    """Whether every pooled group value matches its published value (None: nothing to check)."""
    m = groups["value_matches"]
    if m.isna().all() or m.isna().any():
        return None
    return bool(m.all())


def _base_row(data: IndicatorData, method: str, estimand: str) -> dict:
    return {
        "indicator": data.key, "method": method, "family": data.family.name, "unit": data.unit,
        "estimand": ESTIMANDS[estimand], "estimate": np.nan, "lower": np.nan, "upper": np.nan,
        "ratio_scale": data.ratio_scale, "ratio": np.nan, "ratio_lower": np.nan,
        "ratio_upper": np.nan, "p_value": np.nan, "significant": pd.NA, "better": pd.NA,
        "test": "", "n_wards": int(data.wards["ward"].nunique()), "n_pairs": _n_pairs(data),
        "note": "; ".join(data.notes),
    }


def _n_pairs(data: IndicatorData) -> int:
    return len(complete_pairs(data)[0])


def _better(data: IndicatorData, x: float):
    if not np.isfinite(x):
        return pd.NA
    return bool(x < 0) if data.lower_is_better else bool(x > 0)


def _add_note(row: dict, note: str) -> dict:
    row["note"] = "; ".join(x for x in (row["note"], note) if x)
    return row


def _result(fn: Callable[..., dict]) -> Callable[..., MethodResult]:
    """Turn a method's row dict into a :class:`MethodResult`."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> MethodResult:
        row = fn(*args, **kwargs)
        return row if isinstance(row, MethodResult) else MethodResult(**row)

    return wrapper


@_result
def report_pooled(data: IndicatorData) -> dict:
    """The report's pooled method recomputed from the group totals.

    Estimate: the difference of the two groups' pooled changes (own unit).  Interval:
    the report's overlap rule, ``[lower_NBI - upper_B, upper_NBI - lower_B]`` from the
    interval-arithmetic change intervals; ``significant`` when the change intervals
    do not overlap (the report's rule).  The report gives no p-value: ``p_value`` is a
    pooled Wald z-test of the same DiD (standard errors = half-width / 1.96), and the
    ratio interval is the pooled Wald interval of the log ratio of ratios.
    """
    row = _base_row(data, "report_pooled", "additive")
    g = _group_stats(data.wards, data.family, data.multiplier, "post").set_index(["group", "post"])
    ch = {}
    for grp in ("nbi", "benchmark"):
        a, b = g.loc[(grp, 0)], g.loc[(grp, 1)]
        lo, hi = change_interval(a.value, a.half_width, b.value, b.half_width)
        ch[grp] = (b.value - a.value, lo, hi)
    did = ch["nbi"][0] - ch["benchmark"][0]
    se = math.sqrt(float((g["se"] ** 2).sum()))
    sig = not intervals_overlap(ch["nbi"][1], ch["nbi"][2], ch["benchmark"][1], ch["benchmark"][2])
    log_ratio = data.family.pooled_log_ratio(g["pooled"].to_dict())
    log_se = math.sqrt(float((g["log_se"] ** 2).sum()))
    row.update(
        estimate=did, lower=ch["nbi"][1] - ch["benchmark"][2], upper=ch["nbi"][2] - ch["benchmark"][1],
        p_value=float(2 * stats.norm.sf(abs(did) / se)) if se > 0 else np.nan,
        significant=sig, better=_better(data, did),
        test=("significant = the groups' change intervals do not overlap (the report's rule); "
              "p-value: pooled Wald z-test of the same DiD"),
    )
    if np.isfinite(log_ratio) and np.isfinite(log_se):
        row.update(ratio=math.exp(log_ratio), ratio_lower=math.exp(log_ratio - Z95 * log_se),
                   ratio_upper=math.exp(log_ratio + Z95 * log_se))
    else:
        _add_note(row, "ratio undefined: a group has no events (or only events) in a period")
    return row


# ----------------------------------------------------------------------------------------
# GLM with ward-clustered standard errors
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterFit:
    """The interaction coefficient of a ward-clustered GLM.

    Attributes
    ----------
    coef, se, t, p_value, lower, upper
        The ``nbi:post`` coefficient (link scale), its CR1 standard error, t statistic,
        two-sided p-value and 95% interval from t(``df``).
    df
        Degrees of freedom of the t reference (number of wards minus one).
    params, cov
        All coefficients (``const, nbi, post, nbi:post``) and their CR1 covariance.
    nobs, n_clusters
        Ward-period rows and wards.
    """

    coef: float
    se: float
    t: float
    p_value: float
    lower: float
    upper: float
    df: int
    params: np.ndarray
    cov: np.ndarray
    nobs: int
    n_clusters: int


GLM_TERMS = ("const", "nbi", "post", "nbi:post")


def _design(w: pd.DataFrame) -> np.ndarray:
    nbi = w["nbi"].to_numpy(dtype=float)
    post = w["post"].to_numpy(dtype=float)
    return np.column_stack([np.ones(len(w)), nbi, post, nbi * post])


def fit_cluster_glm(data: IndicatorData, *, alpha: float = ALPHA) -> ClusterFit:
    """Fit the family's GLM with ``nbi * post`` and ward-clustered CR1 standard errors.

    The model is the family's (:meth:`nbdid.families.Family.glm`). Binomial:
    ``GLM(cbind(count, exposure - count))`` with a logit link; Poisson: log link with
    offset ``log(exposure)``; price: WLS of ward mean log prices weighted by
    transactions.  Covariance: statsmodels ``cov_type="cluster"`` (CR1, correction
    ``G/(G-1) * (N-1)/(N-K)``) with t(G - 1) inference (``use_t=True``).

    Raises
    ------
    ValueError
        If a group has no events (or only events) in a period, so that the ratio of
        ratios is undefined, or the fit does not converge.
    """
    w = data.wards
    X = _design(w)
    groups = pd.factorize(w["ward"])[0]
    cells = w.groupby(["nbi", "post"])
    if not data.family.glm_defined(cells["num"].sum(), cells["den"].sum()):
        raise ValueError("a group has no events (or only events) in a period; the ratio is undefined")
    model = data.family.glm(w, X)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = model.fit(cov_type="cluster", cov_kwds={"groups": groups}, use_t=True)
    bad = [w for w in caught if issubclass(w.category, (ConvergenceWarning, PerfectSeparationWarning))]
    if bad:  # a fit that did not converge is reported, not used
        raise ValueError(f"the GLM fit failed ({bad[0].category.__name__}: {bad[0].message})")
    for w in caught:  # anything else goes on to the caller's warning filters
        warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    ci = np.asarray(res.conf_int(alpha=alpha))
    k = 3
    return ClusterFit(
        coef=float(res.params[k]), se=float(res.bse[k]), t=float(res.tvalues[k]),
        p_value=float(res.pvalues[k]), lower=float(ci[k, 0]), upper=float(ci[k, 1]),
        df=int(res.df_resid_inference) if getattr(res, "df_resid_inference", None) else len(set(groups)) - 1,
        params=np.asarray(res.params, dtype=float), cov=np.asarray(res.cov_params(), dtype=float),
        nobs=int(res.nobs), n_clusters=int(len(np.unique(groups))),
    )


def _nbi_post_level(data: IndicatorData) -> float:
    """The NBI group's observed pooled post-period value (as a proportion, rate or price)."""
    w = data.wards
    return data.family.level(w[(w["nbi"] == 1) & (w["post"] == 1)])


def unit_effect(data: IndicatorData, link_effect: float | np.ndarray, level: float | None = None):
    """Population-averaged DiD in the own unit for a link-scale effect.

    ``multiplier * (A - A_cf)`` where ``A`` is the NBI group's pooled post-period value
    and ``A_cf`` the same without the effect (:meth:`nbdid.families.Family.counterfactual`:
    ``A exp(-effect)`` for rates and prices, ``expit(logit(A) - effect)`` for
    proportions).  Increasing in the effect, so an interval of the effect maps onto an
    interval of the DiD.
    """
    a = _nbi_post_level(data) if level is None else level
    out = data.family.unit_effect(np.asarray(link_effect, dtype=float), a, data.multiplier)
    return float(out) if np.ndim(out) == 0 else out


@_result
def glm_cluster(data: IndicatorData, *, alpha: float = ALPHA) -> dict:
    """Concordance row of the ward-clustered GLM (see :func:`fit_cluster_glm`).

    The own-unit estimate and interval map the coefficient and its interval through
    :func:`unit_effect` at the NBI group's observed pooled post-period value (that
    level's own uncertainty is not propagated, so the own-unit and ratio intervals give
    the same verdict).
    """
    row = _base_row(data, "glm_cluster", "population_averaged")
    try:
        f = fit_cluster_glm(data, alpha=alpha)
    except ValueError as err:
        return _add_note(row, f"not computed: {err}")
    lo, hi = unit_effect(data, [f.lower, f.upper])
    est = unit_effect(data, f.coef)
    row.update(
        estimate=est, lower=float(lo), upper=float(hi), ratio=math.exp(f.coef),
        ratio_lower=math.exp(f.lower), ratio_upper=math.exp(f.upper), p_value=f.p_value,
        significant=bool(f.p_value < alpha), better=_better(data, est),
        test=f"t-test of nbi:post, CR1 ward-clustered SE, t({f.df}) reference",
    )
    return row


# ----------------------------------------------------------------------------------------
# matched pairs: randomization inference and paired t-test
# ----------------------------------------------------------------------------------------


def complete_pairs(data: IndicatorData) -> tuple[np.ndarray, pd.DataFrame]:
    """Pairs with one NBI and one benchmark ward, each observed before and after.

    Returns ``(pair ids, rows)`` where rows are the wards' before/after totals sorted by
    pair, ``nbi`` (benchmark first) and ``post``.  Computed once per
    :class:`IndicatorData` (every method asks; the design simulations ask millions of
    times); treat the rows as read-only.
    """
    cached = data.__dict__.get("_complete_pairs")
    if cached is None:
        # a frozen dataclass: the cache goes into the instance dict, as cached_property does
        cached = data.__dict__["_complete_pairs"] = _complete_pairs(data)
    return cached


def _complete_pairs(data: IndicatorData) -> tuple[np.ndarray, pd.DataFrame]:
    w = data.wards
    if w["pair"].isna().all():
        return np.array([], dtype=int), w.iloc[:0]
    w = w[w["pair"].notna()]
    per_ward = w.groupby("ward")["post"].nunique()
    w = w[w["ward"].map(per_ward).to_numpy() == 2]
    shape = w.groupby("pair")["nbi"].agg(["sum", "size"])
    ok = shape.index[(shape["sum"] == 2) & (shape["size"] == 4)]
    w = w[w["pair"].isin(ok)].sort_values(["pair", "nbi", "post"])
    return np.asarray(ok, dtype=int), w.reset_index(drop=True)


def incomplete_pairs(data: IndicatorData) -> list[int]:
    """Pairs in the panel that :func:`complete_pairs` leaves out.

    A pair is incomplete when a ward lacks the pre or the post period, or the pair
    lacks its NBI or its benchmark ward (or has more than one of either).
    """
    w = data.wards
    if w["pair"].isna().all():
        return []
    present = {int(x) for x in w["pair"].dropna().unique()}
    return sorted(present - {int(x) for x in complete_pairs(data)[0]})


def _note_incomplete(row: dict, data: IndicatorData) -> dict:
    left_out = incomplete_pairs(data)
    if left_out:
        shown = ", ".join(str(p) for p in left_out[:10]) + (" ..." if len(left_out) > 10 else "")
        _add_note(row, f"{len(left_out)} incomplete pair(s) left out (pair {shown}): a ward "
                       "lacks a period or the pair lacks one of its wards")
    return row


def _pair_arrays(data: IndicatorData, rows: pd.DataFrame) -> dict[str, np.ndarray]:
    """Arrays of shape (P, 2 wards [benchmark, nbi], 2 posts) of ``num`` and ``den``."""
    p = len(rows) // 4
    return {c: rows[c].to_numpy(float).reshape(p, 2, 2) for c in ("num", "den")}


def _stat_from_totals(family: Family, num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """DiD statistic from group totals ``(..., group [benchmark, nbi], post)``."""
    lv = family.totals_link(num, den)
    return (lv[..., 1, 1] - lv[..., 1, 0]) - (lv[..., 0, 1] - lv[..., 0, 0])


def swap_patterns(n_pairs: int, *, draws: int = RI_DRAWS, seed: int = RI_SEED,
                  exact_max: int = RI_EXACT_MAX_PAIRS) -> tuple[np.ndarray, bool]:
    """Swap patterns (rows of 0/1 per pair): all ``2^P``, or the observed one plus draws."""
    if n_pairs <= exact_max:
        z = (np.arange(2**n_pairs)[:, None] >> np.arange(n_pairs)[None, :]) & 1
        return z.astype(bool), True
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, size=(draws, n_pairs)).astype(bool)
    return np.vstack([np.zeros((1, n_pairs), dtype=bool), z]), False


class _RandomizationTest:
    """p-value of the sharp null "effect = tau on the link scale" for every ward."""

    def __init__(self, data: IndicatorData, rows: pd.DataFrame, z: np.ndarray):
        self.family = data.family
        a = _pair_arrays(data, rows)
        self.num, self.den = a["num"], a["den"]
        self.z = z.astype(float)  # (B, P): 1 = the pair's labels are swapped
        self.den_totals = self._totals(self.den, self.den, self.z)
        self.observed = float(_stat_from_totals(self.family, self._totals(self.num, self.num)[None],
                                                self._totals(self.den, self.den)[None])[0])

    @staticmethod
    def _totals(as_nbi: np.ndarray, as_ben: np.ndarray, z: np.ndarray | None = None) -> np.ndarray:
        """Group totals ``(..., group [benchmark, nbi], post)`` under swap patterns ``z``.

        ``as_nbi`` / ``as_ben`` (P, ward [benchmark, nbi], post) hold each ward's total
        if it is labelled NBI / benchmark; a swapped pair labels its benchmark ward NBI.
        """
        nbi = as_nbi[:, 1].sum(0)
        ben = as_ben[:, 0].sum(0)
        if z is None:
            return np.stack([ben, nbi])
        nbi = nbi + z @ (as_nbi[:, 0] - as_nbi[:, 1])
        ben = ben + z @ (as_ben[:, 1] - as_ben[:, 0])
        return np.stack([ben, nbi], axis=1)  # (B, group, post)

    def _shift(self, tau: float) -> tuple[np.ndarray, np.ndarray]:
        """Each ward's post totals if it were NBI / benchmark, under the sharp null."""
        num, den = self.num, self.den
        nbi = np.zeros(num.shape[:2], dtype=bool)
        nbi[:, 1] = True
        post = np.zeros(num.shape, dtype=bool)
        post[..., 1] = True
        return self.family.shift_totals(num, den, nbi[..., None] & post, post, tau)

    def pvalue(self, tau: float) -> float:
        treated, control = self._shift(tau)
        num = self._totals(treated, control, self.z)
        t = _stat_from_totals(self.family, num, self.den_totals)
        t = t[np.isfinite(t)]
        obs = self.observed
        hi = np.mean(t >= obs - 1e-12)
        lo = np.mean(t <= obs + 1e-12)
        return float(min(1.0, 2 * min(hi, lo)))

    def spread(self) -> float:
        num = self._totals(self.num, self.num, self.z)
        t = _stat_from_totals(self.family, num, self.den_totals)
        t = t[np.isfinite(t)]
        return float(np.std(t)) if len(t) > 1 else 0.0


def _invert(test: _RandomizationTest, centre: float, step: float, alpha: float,
            direction: int, limit: float = 20.0) -> float:
    """Furthest tau from ``centre`` (one direction) whose p-value exceeds ``alpha``."""
    inside = centre
    d = step
    while True:
        probe = centre + direction * d
        if test.pvalue(probe) <= alpha:
            outside = probe
            break
        inside = probe
        d *= 2
        if d > limit:
            return direction * np.inf
    for _ in range(60):
        mid = 0.5 * (inside + outside)
        if test.pvalue(mid) > alpha:
            inside = mid
        else:
            outside = mid
        if abs(outside - inside) < 1e-6 * max(step, 1e-12):
            break
    return 0.5 * (inside + outside)


@_result
def randomization(
    data: IndicatorData,
    *,
    draws: int = RI_DRAWS,
    seed: int = RI_SEED,
    exact_max: int = RI_EXACT_MAX_PAIRS,
    alpha: float = ALPHA,
    interval: bool = True,
) -> dict:
    """Randomization inference swapping the group labels within matched pairs.

    Statistic: the saturated GLM's ``nbi:post`` coefficient from the group totals (log
    ratio of ratios of pooled rates, log odds ratio of pooled proportions, or
    difference in differences of transaction-weighted mean log prices).  Two-sided
    p-value: twice the smaller tail of its randomization distribution (the observed
    pattern included).  The 95% interval collects every constant effect ``tau`` (same
    scale, every NBI ward in the post period) that the test does not reject at 5%; the
    own-unit interval maps it through :func:`unit_effect`.  ``interval=False`` skips
    the inversion (the p-value and estimate only; much faster for many pairs).
    """
    row = _note_incomplete(_base_row(data, "randomization", "population_averaged"), data)
    pairs, rows = complete_pairs(data)
    if len(pairs) == 0:
        return _add_note(row, "not computed: the panel has no complete matched pairs")
    z, exact = swap_patterns(len(pairs), draws=draws, seed=seed, exact_max=exact_max)
    test = _RandomizationTest(data, rows, z)
    est = test.observed
    if not np.isfinite(est):
        return _add_note(row, "not computed: a group has no events (or only events) in a period")
    p0 = test.pvalue(0.0)
    kind = f"exact, all {len(z):,} swap patterns" if exact else f"{draws:,} seeded random swap patterns (seed {seed}) + observed"
    row.update(
        p_value=p0, significant=bool(p0 <= alpha), ratio=math.exp(est),
        estimate=unit_effect(data, est), better=_better(data, est),
        test=(f"randomization test, {kind}; statistic = nbi:post coefficient from group totals; "
              "interval by test inversion under a constant-effect sharp null"),
    )
    if not interval:
        return _add_note(row, "interval not computed (p-value only)")
    smallest = 2.0 / len(z)  # twice the smallest tail: the observed pattern alone
    if smallest > alpha:
        return _add_note(row, f"too few pairs ({len(pairs)}) for a 95% interval: the smallest "
                              f"attainable p-value is {smallest:.3f}")
    step = max(test.spread(), 1e-6)
    lo = _invert(test, est, step, alpha, -1)
    hi = _invert(test, est, step, alpha, +1)
    row.update(
        lower=float(unit_effect(data, lo)) if np.isfinite(lo) else -np.inf,
        upper=float(unit_effect(data, hi)) if np.isfinite(hi) else np.inf,
        ratio_lower=math.exp(lo) if np.isfinite(lo) else 0.0,
        ratio_upper=math.exp(hi) if np.isfinite(hi) else np.inf,
    )
    if not (np.isfinite(lo) and np.isfinite(hi)):
        _add_note(row, "the interval is unbounded on one side (the test never rejects there)")
    return row


def pair_differences(data: IndicatorData) -> pd.DataFrame:
    """Per complete pair: each ward's change and the NBI-minus-benchmark difference.

    Own unit: ward values ``multiplier * count / exposure`` (mean price for prices).
    Log scale: log rate, empirical logit or mean log price; when a ward has no events
    (or only events) in a period, 0.5 is added to every count (and 1 to every number
    of trials) of the indicator so that every log is defined (``corrected`` is True).

    Returns
    -------
    pandas.DataFrame
        ``pair, nbi_change, benchmark_change, diff, log_diff, corrected``.
    """
    pairs, rows = complete_pairs(data)
    if len(pairs) == 0:
        return pd.DataFrame(columns=["pair", "nbi_change", "benchmark_change", "diff", "log_diff", "corrected"])
    v = rows["value"].to_numpy(float).reshape(-1, 2, 2)
    corrected = data.family.needs_correction(rows)
    lv = data.family.pair_link(rows, corrected).reshape(-1, 2, 2)
    change = v[..., 1] - v[..., 0]
    lchange = lv[..., 1] - lv[..., 0]
    return pd.DataFrame({
        "pair": pairs, "nbi_change": change[:, 1], "benchmark_change": change[:, 0],
        "diff": change[:, 1] - change[:, 0], "log_diff": lchange[:, 1] - lchange[:, 0],
        "corrected": corrected,
    })


def _t_interval(x: np.ndarray, alpha: float) -> tuple[float, float, float]:
    res = stats.ttest_1samp(x, 0.0)
    ci = res.confidence_interval(1 - alpha)
    return float(res.pvalue), float(ci.low), float(ci.high)


@_result
def paired_t(data: IndicatorData, *, alpha: float = ALPHA) -> dict:
    """Paired t-test of the pair differences in change (scipy ``ttest_1samp``).

    The own-unit row is the test of the mean pair difference in change (NBI ward change
    minus its benchmark's change, unweighted over pairs); the ratio is ``exp`` of the
    mean pair difference in log change with its own t interval.
    """
    row = _note_incomplete(_base_row(data, "paired_t", "paired"), data)
    d = pair_differences(data)
    if len(d) == 0:
        return _add_note(row, "not computed: the panel has no complete matched pairs")
    x = d["diff"].to_numpy(float)
    row["estimate"] = float(x.mean())
    row["better"] = _better(data, row["estimate"])
    if len(d) < 2:
        return _add_note(row, "not computed: a t-test needs at least 2 pairs")
    lx = d["log_diff"].to_numpy(float)
    row["ratio"] = math.exp(lx.mean())
    if np.ptp(x) == 0:
        return _add_note(row, "not computed: every pair has the same difference in change; "
                              "a t-test needs variation")
    p, lo, hi = _t_interval(x, alpha)
    row.update(p_value=p, lower=lo, upper=hi, significant=bool(p < alpha),
               test=f"paired t-test of the pair differences in change, t({len(d) - 1})")
    if np.ptp(lx) > 0:
        _, llo, lhi = _t_interval(lx, alpha)
        row.update(ratio_lower=math.exp(llo), ratio_upper=math.exp(lhi))
    if bool(d["corrected"].iloc[0]):
        _add_note(row, "log scale: 0.5 added to counts (a ward has no events or only events in a period)")
    return row


# ----------------------------------------------------------------------------------------
# Bayesian posterior as one more row
# ----------------------------------------------------------------------------------------


@_result
def bayes_row(data: IndicatorData, summary: pd.DataFrame | None, *, note: str = "") -> dict:
    """The posterior DiD from a fit summary (:attr:`nbdid.models.fit.FitResult.summary`).

    Own unit: estimand ``did`` at the own-unit scale (population averaged; posterior
    mean and 95% equal-tailed interval); ratio: estimand ``did`` at the ratio scale
    (``exp(did)``, ward-conditional).  ``significant`` when the own-unit 95% interval
    excludes zero; no p-value (``prob_benefit`` is given instead).  ``gate`` carries
    the fit's diagnostics gate.
    """
    row = _base_row(data, "bayes", "population_averaged")
    row["test"] = "posterior 95% equal-tailed interval excludes zero"
    row["gate"] = ""
    row["prob_benefit"] = np.nan
    if summary is None or len(summary) == 0:
        return _add_note(row, note or "not computed: no posterior")
    s = summary[summary["indicator"].astype(str) == data.key] if "indicator" in summary else summary
    did = s[s["estimand"].astype(str) == "did"]
    own = did[~did["scale"].astype(str).isin(["link", "percent", *RATIO_SCALES.values()])]
    ratio = did[did["scale"].astype(str).isin(RATIO_SCALES.values())]
    if len(own) != 1:
        return _add_note(row, f"not computed: the summary has {len(own)} own-unit 'did' rows for {data.key}")
    o = own.iloc[0]
    lo, hi = float(o["q2.5"]), float(o["q97.5"])
    row.update(estimate=float(o["mean"]), lower=lo, upper=hi, significant=bool(lo > 0 or hi < 0),
               better=_better(data, float(o["mean"])), prob_benefit=float(o.get("prob_benefit", np.nan)))
    if "gate" in s.columns:
        row["gate"] = str(o["gate"])
        if not row["gate"].startswith("passed"):
            _add_note(row, "diagnostics gate FAILED: do not report")
    if len(ratio) == 1:
        r = ratio.iloc[0]
        row.update(ratio_scale=str(r["scale"]), ratio=float(r["mean"]),
                   ratio_lower=float(r["q2.5"]), ratio_upper=float(r["q97.5"]))
    if note:
        _add_note(row, note)
    return row


def analyse(
    panel: pd.DataFrame,
    key: str,
    *,
    family: str | None = None,
    summary: pd.DataFrame | None = None,
    posterior_note: str = "",
    draws: int = RI_DRAWS,
    seed: int = RI_SEED,
    exact_max: int = RI_EXACT_MAX_PAIRS,
) -> pd.DataFrame:
    """Every method's row for one indicator (:data:`METHODS` order).

    Parameters
    ----------
    panel
        Tidy ward panel.
    key
        Indicator key.
    family
        Family of a key that is not in the registry.
    summary
        Fit summary of the Bayesian model (``None``: the ``bayes`` row is NaN with
        ``posterior_note`` or "no posterior" as its note).
    posterior_note
        Why there is no posterior (or a remark on it), for the ``bayes`` row's note.
    draws, seed, exact_max
        Randomization-inference settings.

    Returns
    -------
    pandas.DataFrame
        :data:`RESULT_COLUMNS` plus ``gate`` and ``prob_benefit``.
    """
    data = prepare(panel, key, family=family)
    settings = AnalysisSettings(draws=draws, seed=seed, exact_max=exact_max, summary=summary,
                                posterior_note=posterior_note)
    out = pd.DataFrame([m.run(data, settings).as_dict() for m in METHOD_REGISTRY.values()])
    if data.ratio_scale is None:  # an identity link (Gaussian family) has no ratio scale
        out[["ratio", "ratio_lower", "ratio_upper"]] = np.nan
    for c in ("gate",):
        out[c] = out[c].fillna("").astype(str)
    out["significant"] = out["significant"].astype("boolean")
    out["better"] = out["better"].astype("boolean")
    return out[[*RESULT_COLUMNS, "gate", "prob_benefit"]]


METHOD_REGISTRY: dict[str, Method] = {m.name: m for m in (
    Method("report_pooled", "report's pooled method (recomputed)", "pooled", "report's method",
           "the report's pooled non-overlap rule", lambda d, s: report_pooled(d)),
    Method("glm_cluster", "GLM, ward-clustered CR1, t(G-1)", "GLM-CR1", "GLM, clustered",
           "the ward-clustered GLM", lambda d, s: glm_cluster(d, alpha=s.alpha)),
    Method("randomization", "randomization inference (pair swaps)", "RI", "randomization",
           "randomization inference",
           lambda d, s: randomization(d, draws=s.draws, seed=s.seed, exact_max=s.exact_max, alpha=s.alpha,
                                       interval=s.interval)),
    Method("paired_t", "paired t-test of pair differences", "paired-t", "paired t-test",
           "the paired t-test", lambda d, s: paired_t(d, alpha=s.alpha)),
    Method("bayes", "Bayesian hierarchical model", "Bayes", "Bayesian", "the Bayesian model",
           lambda d, s: bayes_row(d, s.summary, note=s.posterior_note)),
)}
"""The methods of the concordance table, in display order.  A new method is one
:class:`Method` entry here (its ``run`` returns a :class:`MethodResult`)."""

METHODS: tuple[str, ...] = tuple(METHOD_REGISTRY)
"""Method keys, in display order."""

METHOD_LABELS: dict[str, str] = {k: m.label for k, m in METHOD_REGISTRY.items()}
"""Full label of each method (the ``method_label`` column)."""

FIGURE_LABELS: dict[str, str] = {k: m.figure_label for k, m in METHOD_REGISTRY.items()}
"""Label of each method in figures."""

METHOD_PROSE: dict[str, str] = {k: m.prose for k, m in METHOD_REGISTRY.items()}
"""Name of each method in a sentence."""
