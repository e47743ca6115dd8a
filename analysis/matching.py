"""Nearest-neighbour matching of treated wards to candidate wards, and covariate balance.

:func:`match_wards` picks, for every treated ward, ``k`` control wards from a table of
candidates on a chosen distance; :func:`balance_table` measures how alike the treated
and control wards are before and after matching (standardised mean differences and
variance ratios, as MatchIt/cobalt report them).  Both work on any tables with an id
column and numeric covariate columns, e.g. the ward covariates of
:mod:`nbdid.data_prep.covariates`.

Distances
---------
``"euclidean"``
    Standardised Euclidean distance: each covariate is divided by its pooled
    within-group standard deviation (treated and candidates), so a distance of 1 is one
    SD (:func:`scipy.spatial.distance.cdist`, ``metric="seuclidean"``).
``"mahalanobis"`` (default)
    Mahalanobis distance with the pooled within-group covariance matrix of the
    covariates (as MatchIt's ``mahalanobis_dist``); a (pseudo-)inverse is used so that
    collinear covariates do not fail.  Differs from ``"euclidean"`` when covariates are
    correlated: two correlated covariates count about once, not twice.
``"propensity"``
    Absolute difference of the linear propensity score (the logit of the probability of
    being treated), from a logistic regression of treatment on the covariates
    (:class:`statsmodels.discrete.discrete_model.Logit`).

Caliper
-------
``caliper`` is measured in standard deviations.  The standardised Euclidean and
Mahalanobis distances are already in SD units, so a pair is allowed when its distance is
at most ``caliper``.  For ``"propensity"`` a pair is allowed when the logits differ by at
most ``caliper`` times the pooled SD of the logit, ``sqrt((var_treated + var_cand)/2)``
(MatchIt's ``std.caliper = TRUE``).

Greedy and optimal
------------------
``method="greedy"`` (MatchIt's ``method="nearest"`` with ``m.order="data"``) matches in
``ratio`` rounds; in each round the treated wards are visited in their input order and
each takes its nearest still-available candidate (ties go to the candidate that comes
first in the input).  The result is deterministic and depends on the input order.
``method="optimal"`` (``scipy.optimize.linear_sum_assignment``, each treated ward
repeated ``ratio`` times) minimises the total distance over all matches, first
maximising the number of pairs allowed by the caliper and exact constraints.  With
``replace=True`` candidates are not used up, every treated ward simply gets its ``k``
nearest allowed candidates, and the two methods coincide.

A treated ward keeps the controls it could get: with a caliper, exact matching or too
few free candidates it may get fewer than ``ratio`` (listed in ``attrs["partial"]``) or
none (absent from the result and listed in ``attrs["unmatched"]``).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import get_args

import numpy as np
import pandas as pd
from scipy.linalg import pinvh
from scipy.optimize import linear_sum_assignment
from scipy.spatial.distance import cdist

from nbdid.config import MatchDistance as Distance
from nbdid.config import MatchMethod as Method
from nbdid.errors import InputError

MATCH_COLUMNS: tuple[str, ...] = ("set", "treated_ward", "control_ward", "rank", "distance")
"""Columns of :func:`match_wards`' result."""

BALANCE_COLUMNS: tuple[str, ...] = (
    "covariate",
    "mean_treated",
    "mean_control_before",
    "mean_control_after",
    "smd_before",
    "smd_after",
    "var_ratio_before",
    "var_ratio_after",
    "mean_treated_matched",
)
"""Columns of :func:`balance_table`'s result."""

DISTANCES: tuple[str, ...] = get_args(Distance)
METHODS: tuple[str, ...] = get_args(Method)

DEFAULT_STUDY_COVARIATES: tuple[str, ...] = (
    "mean_rank",
    "median_rank",
    "share_most_deprived_decile",
    "share_most_deprived_quintile",
)
"""Matching covariates of ``nbdid match --study`` by default."""


@dataclass(frozen=True)
class MatchSpec:
    """How to match treated wards to candidates.

    Parameters
    ----------
    covariates
        Numeric columns that define the distance.
    distance
        ``"euclidean"`` (standardised), ``"mahalanobis"`` or ``"propensity"``.
    ratio
        Number of controls per treated ward (1:k matching).
    replace
        Allow a candidate to be the control of several treated wards.
    caliper
        Maximum distance in SDs (see the module docstring); ``None`` for no caliper.
    exact
        Columns whose values must be equal within a matched pair (e.g. region or
        authority type).
    method
        ``"greedy"`` nearest neighbour or ``"optimal"`` (minimum total distance).
    """

    covariates: tuple[str, ...]
    distance: Distance = "mahalanobis"
    ratio: int = 1
    replace: bool = False
    caliper: float | None = None
    exact: tuple[str, ...] = ()
    method: Method = "greedy"

    def __post_init__(self) -> None:
        if isinstance(self.covariates, str):
            object.__setattr__(self, "covariates", (self.covariates,))
        else:
            object.__setattr__(self, "covariates", tuple(self.covariates))
        if isinstance(self.exact, str):
            object.__setattr__(self, "exact", (self.exact,))
        else:
            object.__setattr__(self, "exact", tuple(self.exact))
        if not self.covariates:
            raise InputError("matching needs at least one covariate")
        if len(set(self.covariates)) != len(self.covariates):
            raise InputError(f"covariates listed twice: {', '.join(self.covariates)}")
        if self.distance not in DISTANCES:
            raise InputError(f"distance must be one of {', '.join(DISTANCES)}, not {self.distance!r}")
        if self.method not in METHODS:
            raise InputError(f"method must be one of {', '.join(METHODS)}, not {self.method!r}")
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, np.integer)) or self.ratio < 1:
            raise InputError(f"ratio must be a whole number >= 1, not {self.ratio!r}")
        if self.caliper is not None and not (np.isfinite(self.caliper) and self.caliper > 0):
            raise InputError(f"caliper must be a positive number of SDs, not {self.caliper!r}")


# ----------------------------------------------------------------------------------------
# validation
# ----------------------------------------------------------------------------------------


def _check_table(df: pd.DataFrame, what: str, cols: Sequence[str], exact: Sequence[str], id_col: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise InputError(f"{what} must be a table (DataFrame), not {type(df).__name__}")
    if len(df) == 0:
        raise InputError(f"the {what} table has no rows")
    missing = [c for c in (id_col, *cols, *exact) if c not in df.columns]
    if missing:
        raise InputError(
            f"the {what} table has no column(s) {', '.join(repr(c) for c in missing)} "
            f"(found {', '.join(map(str, df.columns[:12]))})"
        )
    ids = df[id_col]
    if ids.isna().any():
        i = int(ids.isna().to_numpy().nonzero()[0][0])
        raise InputError(f"the {what} table has an empty {id_col!r} in row {i + 1}")
    dup = ids.astype(str).duplicated()
    if dup.any():
        raise InputError(f"{what} {id_col} {ids[dup].iloc[0]!r} is listed more than once")
    for c in cols:
        s = df[c]
        if not (pd.api.types.is_numeric_dtype(s) or pd.api.types.is_bool_dtype(s)):
            raise InputError(f"covariate {c!r} of the {what} table is not numeric (dtype {s.dtype})")
        vals = pd.to_numeric(s, errors="coerce").astype("float64")
        bad = ~np.isfinite(vals.to_numpy())
        if bad.any():
            i = int(bad.nonzero()[0][0])
            raise InputError(
                f"covariate {c!r} is missing (NaN) for {what} {id_col} {ids.iloc[i]!r}; drop or "
                "impute such wards before matching"
            )
    for c in exact:
        if df[c].isna().any():
            i = int(df[c].isna().to_numpy().nonzero()[0][0])
            raise InputError(f"exact-matching column {c!r} is empty for {what} {id_col} {ids.iloc[i]!r}")


def _matrix(df: pd.DataFrame, cols: Sequence[str]) -> np.ndarray:
    return np.column_stack([pd.to_numeric(df[c]).astype("float64").to_numpy() for c in cols])


def _pooled_within_cov(xt: np.ndarray, xc: np.ndarray) -> np.ndarray:
    """Pooled within-group covariance ``((nt-1) St + (nc-1) Sc) / (nt + nc - 2)``."""
    nt, nc = len(xt), len(xc)
    dt = xt - xt.mean(axis=0)
    dc = xc - xc.mean(axis=0)
    return (dt.T @ dt + dc.T @ dc) / max(nt + nc - 2, 1)


# ----------------------------------------------------------------------------------------
# distances
# ----------------------------------------------------------------------------------------


def _propensity_logit(xt: np.ndarray, xc: np.ndarray, names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    # imported here: statsmodels takes about a second to import; only the frequentist fits need it
    import statsmodels.api as sm
    from statsmodels.tools.sm_exceptions import ConvergenceWarning, PerfectSeparationWarning

    x = np.vstack([xt, xc])
    # standardise for numerical stability (the fitted logits do not change)
    sd = x.std(axis=0)
    if np.any(sd == 0):
        c = names[int(np.nonzero(sd == 0)[0][0])]
        raise InputError(f"covariate {c!r} has the same value for every ward; it cannot enter the propensity model")
    z = sm.add_constant((x - x.mean(axis=0)) / sd, has_constant="add")
    y = np.r_[np.ones(len(xt)), np.zeros(len(xc))]
    with warnings.catch_warnings():
        warnings.simplefilter("error", PerfectSeparationWarning)
        warnings.simplefilter("error", ConvergenceWarning)
        warnings.simplefilter("error", RuntimeWarning)
        try:
            res = sm.Logit(y, z).fit(disp=0, maxiter=200)
        except (PerfectSeparationWarning, np.linalg.LinAlgError) as err:
            raise InputError(
                "the propensity model separates treated and candidate wards perfectly "
                f"({type(err).__name__}); use fewer covariates or distance='mahalanobis'"
            ) from None
        except (ConvergenceWarning, RuntimeWarning) as err:
            raise InputError(
                f"the propensity model did not converge ({type(err).__name__}); use fewer "
                "covariates or distance='mahalanobis'"
            ) from None
    lin = z @ np.asarray(res.params)
    return lin[: len(xt)], lin[len(xt):]


def distance_matrix(
    treated: pd.DataFrame, candidates: pd.DataFrame, spec: MatchSpec
) -> tuple[np.ndarray, float]:
    """Treated x candidate distance matrix and the caliper in distance units.

    Returns
    -------
    (dist, caliper_abs)
        ``dist[i, j]`` is the distance between treated row ``i`` and candidate row ``j``;
        ``caliper_abs`` is ``spec.caliper`` converted to distance units (``inf`` when
        there is no caliper).
    """
    cols = list(spec.covariates)
    xt, xc = _matrix(treated, cols), _matrix(candidates, cols)
    caliper = np.inf if spec.caliper is None else float(spec.caliper)
    if spec.distance == "propensity":
        lt, lc = _propensity_logit(xt, xc, cols)
        dist = np.abs(lt[:, None] - lc[None, :])
        if spec.caliper is not None:
            vt = lt.var(ddof=1) if len(lt) > 1 else np.nan
            vc = lc.var(ddof=1) if len(lc) > 1 else np.nan
            sd = np.sqrt(np.nanmean([vt, vc]))
            caliper = float(spec.caliper) * sd
        return dist, caliper
    cov = _pooled_within_cov(xt, xc)
    var = np.diag(cov)
    if np.any(var <= 0):
        c = cols[int(np.nonzero(var <= 0)[0][0])]
        raise InputError(f"covariate {c!r} does not vary within the treated or candidate wards; drop it")
    if spec.distance == "euclidean":
        dist = cdist(xt, xc, metric="seuclidean", V=var)
    else:
        dist = cdist(xt, xc, metric="mahalanobis", VI=pinvh(cov))
    return dist, caliper


def _allowed(treated: pd.DataFrame, candidates: pd.DataFrame, spec: MatchSpec,
             dist: np.ndarray, caliper: float) -> np.ndarray:
    ok = dist <= caliper * (1 + 1e-12)
    for c in spec.exact:
        t = treated[c].astype(str).to_numpy()
        k = candidates[c].astype(str).to_numpy()
        ok &= t[:, None] == k[None, :]
    return ok


# ----------------------------------------------------------------------------------------
# matching
# ----------------------------------------------------------------------------------------


def _greedy(dist: np.ndarray, ok: np.ndarray, ratio: int, replace: bool) -> list[list[int]]:
    n_t, n_c = dist.shape
    got: list[list[int]] = [[] for _ in range(n_t)]
    if replace:
        for i in range(n_t):
            cand = np.nonzero(ok[i])[0]
            order = cand[np.argsort(dist[i, cand], kind="stable")]
            got[i] = [int(j) for j in order[:ratio]]
        return got
    free = np.ones(n_c, dtype=bool)
    for _ in range(ratio):
        for i in range(n_t):
            cand = np.nonzero(ok[i] & free)[0]
            if cand.size == 0:
                continue
            j = int(cand[np.argmin(dist[i, cand])])  # argmin returns the first minimum
            got[i].append(j)
            free[j] = False
    return got


def _optimal(dist: np.ndarray, ok: np.ndarray, ratio: int) -> list[list[int]]:
    n_t, n_c = dist.shape
    finite = dist[ok]
    big = (float(finite.max()) + 1.0) * (n_t * ratio + 1) if finite.size else 1.0
    cost = np.where(ok, dist, big)
    rows = np.repeat(np.arange(n_t), ratio)
    cost = cost[rows]
    if cost.shape[0] > n_c:  # more slots than candidates: some slots stay empty
        pad = np.full((cost.shape[0], cost.shape[0] - n_c), big * 2)
        cost = np.hstack([cost, pad])
    r, c = linear_sum_assignment(cost)
    got: list[list[int]] = [[] for _ in range(n_t)]
    for slot, j in zip(r, c, strict=True):
        i = int(rows[slot])
        if j < n_c and ok[i, j]:
            got[i].append(int(j))
    return got


def match_wards(
    treated: pd.DataFrame,
    candidates: pd.DataFrame,
    spec: MatchSpec,
    *,
    id_col: str = "ward",
) -> pd.DataFrame:
    """Match each treated ward to ``spec.ratio`` candidate wards.

    Parameters
    ----------
    treated, candidates
        Tables with ``id_col``, the covariates and the ``exact`` columns; one row per
        ward.  A ward may not be both treated and a candidate.
    spec
        :class:`MatchSpec`.
    id_col
        Column holding the ward id.

    Returns
    -------
    pandas.DataFrame
        One row per (treated ward, control): ``set`` (1..n numbering the treated wards
        in input order), ``treated_ward``, ``control_ward``, ``rank`` (1..k, nearest
        first) and ``distance`` (in the units of the distance: SDs for
        ``euclidean``/``mahalanobis``, logit difference for ``propensity``).  Treated
        wards without any allowed control are absent and listed in
        ``attrs["unmatched"]``; those with fewer than ``ratio`` controls in
        ``attrs["partial"]``.  ``attrs["spec"]`` holds the spec as a dict and
        ``attrs["caliper_distance"]`` the caliper in distance units.

    Raises
    ------
    InputError
        Missing covariate or id columns, non-numeric or NaN covariates, duplicate ids,
        a ward both treated and candidate, or too few candidates (fewer than ``ratio``;
        without replacement fewer than ``ratio`` x number of treated wards).
    """
    if not isinstance(spec, MatchSpec):
        raise InputError(f"spec must be a MatchSpec, not {type(spec).__name__}")
    _check_table(treated, "treated", spec.covariates, spec.exact, id_col)
    _check_table(candidates, "candidate", spec.covariates, spec.exact, id_col)
    t_ids = treated[id_col].astype(str).to_numpy()
    c_ids = candidates[id_col].astype(str).to_numpy()
    both = sorted(set(t_ids) & set(c_ids))
    if both:
        raise InputError(
            f"ward(s) {', '.join(both[:5])} are both treated and candidates; remove the treated "
            "wards from the candidates"
        )
    n_t, n_c = len(treated), len(candidates)
    need = spec.ratio if spec.replace else spec.ratio * n_t
    if n_c < need:
        how = "" if spec.replace else f" without replacement for {n_t} treated wards"
        raise InputError(
            f"too few candidates: {n_c} for 1:{spec.ratio} matching{how} (need at least {need})"
        )
    dist, caliper = distance_matrix(treated, candidates, spec)
    ok = _allowed(treated, candidates, spec, dist, caliper)
    if spec.method == "optimal" and not spec.replace:
        got = _optimal(dist, ok, spec.ratio)
    else:
        got = _greedy(dist, ok, spec.ratio, spec.replace)
    rows = []
    for i, js in enumerate(got):
        js = sorted(js, key=lambda j: (dist[i, j], j))
        for r, j in enumerate(js, start=1):
            rows.append((i + 1, t_ids[i], c_ids[j], r, float(dist[i, j])))
    out = pd.DataFrame(rows, columns=list(MATCH_COLUMNS))
    out = out.astype({"set": "int64", "rank": "int64", "distance": "float64",
                      "treated_ward": "string", "control_ward": "string"})
    out.attrs["unmatched"] = [str(t_ids[i]) for i, js in enumerate(got) if not js]
    out.attrs["partial"] = [str(t_ids[i]) for i, js in enumerate(got) if 0 < len(js) < spec.ratio]
    out.attrs["spec"] = {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(spec).items()}
    out.attrs["caliper_distance"] = None if not np.isfinite(caliper) else float(caliper)
    return out


# ----------------------------------------------------------------------------------------
# balance
# ----------------------------------------------------------------------------------------


def match_weights(matches: pd.DataFrame) -> pd.Series:
    """Control weights of a matching: ``1/k_set`` summed over every use of a control.

    A control matched once in a 1:2 set weighs 1/2; a control reused by three 1:1 sets
    weighs 3.  Indexed by control ward id.
    """
    if len(matches) == 0:
        return pd.Series(dtype="float64", name="weight")
    k = matches.groupby("set")["control_ward"].transform("size")
    w = (1.0 / k).groupby(matches["control_ward"].astype(str)).sum()
    return w.rename("weight")


def _wmean_var(x: np.ndarray, w: np.ndarray) -> tuple[float, float]:
    """Weighted mean and (reliability-weights, unbiased) variance as in cobalt."""
    sw = w.sum()
    if sw <= 0:
        return np.nan, np.nan
    m = float(np.sum(w * x) / sw)
    denom = sw**2 - np.sum(w**2)
    v = float(sw / denom * np.sum(w * (x - m) ** 2)) if denom > 0 else np.nan
    return m, v


def _smd(diff: float, sd: float) -> float:
    if not np.isfinite(diff):
        return np.nan
    if sd > 0:
        return diff / sd
    return 0.0 if diff == 0 else np.nan


def _ratio(a: float, b: float) -> float:
    if not (np.isfinite(a) and np.isfinite(b)):
        return np.nan
    if b > 0:
        return a / b
    return 1.0 if a == 0 else np.inf


def balance_table(
    treated: pd.DataFrame,
    candidates: pd.DataFrame,
    matches: pd.DataFrame,
    covariates: Sequence[str],
    *,
    id_col: str = "ward",
) -> pd.DataFrame:
    """Covariate balance before and after matching.

    Parameters
    ----------
    treated, candidates
        The tables given to :func:`match_wards` (or any tables with ``id_col`` and the
        covariates).
    matches
        Result of :func:`match_wards` (or any table with ``set``, ``treated_ward`` and
        ``control_ward``, e.g. the report's published pairs).
    covariates
        Columns to summarise.
    id_col
        Column holding the ward id.

    Returns
    -------
    pandas.DataFrame
        One row per covariate: ``covariate, mean_treated, mean_control_before,
        mean_control_after, smd_before, smd_after, var_ratio_before, var_ratio_after,
        mean_treated_matched``.

    Notes
    -----
    *Before*: all treated wards against all candidates.  *After*: the treated wards that
    got a control against the matched controls, each control weighted by ``1/k`` within
    its set and summed over its reuses (:func:`match_weights`).  Both SMDs divide by the
    same pooled SD of the *before* samples, ``sqrt((s_t^2 + s_c^2)/2)`` (so that a
    change in the SMD is a change in the mean difference, as in MatchIt/cobalt; note
    that their default for the ATT is the treated SD).  The variance ratio is
    ``var(treated) / var(control)`` (weighted, unbiased weighted variance after).
    ``attrs`` hold ``n_treated``, ``n_treated_matched``, ``n_candidates``,
    ``n_controls_matched`` (distinct controls) and ``ess_controls`` (Kish effective
    sample size of the weighted controls).
    """
    covariates = list(covariates)
    _check_table(treated, "treated", covariates, (), id_col)
    _check_table(candidates, "candidate", covariates, (), id_col)
    need = [c for c in ("set", "treated_ward", "control_ward") if c not in matches.columns]
    if need:
        raise InputError(f"the matches table has no column(s) {', '.join(need)}")
    t = treated.assign(_id=treated[id_col].astype(str)).set_index("_id")
    c = candidates.assign(_id=candidates[id_col].astype(str)).set_index("_id")
    m_t = matches["treated_ward"].astype(str)
    m_c = matches["control_ward"].astype(str)
    unknown = sorted(set(m_t) - set(t.index))
    if unknown:
        raise InputError(f"matched treated ward(s) {', '.join(unknown[:5])} are not in the treated table")
    unknown = sorted(set(m_c) - set(c.index))
    if unknown:
        raise InputError(f"matched control ward(s) {', '.join(unknown[:5])} are not in the candidate table")
    w = match_weights(matches.assign(control_ward=m_c))
    matched_t = pd.unique(m_t)
    rows = []
    for cov in covariates:
        xt = pd.to_numeric(t[cov]).astype("float64").to_numpy()
        xc = pd.to_numeric(c[cov]).astype("float64").to_numpy()
        mt, vt = float(xt.mean()), float(xt.var(ddof=1)) if len(xt) > 1 else np.nan
        mc, vc = float(xc.mean()), float(xc.var(ddof=1)) if len(xc) > 1 else np.nan
        pooled = float(np.sqrt(np.nanmean([vt, vc]))) if np.isfinite([vt, vc]).any() else np.nan
        xta = pd.to_numeric(t.loc[matched_t, cov]).astype("float64").to_numpy()
        xca = pd.to_numeric(c.loc[w.index, cov]).astype("float64").to_numpy()
        mta = float(xta.mean()) if len(xta) else np.nan
        vta = float(xta.var(ddof=1)) if len(xta) > 1 else np.nan
        mca, vca = _wmean_var(xca, w.to_numpy()) if len(xca) else (np.nan, np.nan)
        rows.append({
            "covariate": cov,
            "mean_treated": mt,
            "mean_control_before": mc,
            "mean_control_after": mca,
            "smd_before": _smd(mt - mc, pooled),
            "smd_after": _smd(mta - mca, pooled),
            "var_ratio_before": _ratio(vt, vc),
            "var_ratio_after": _ratio(vta, vca),
            "mean_treated_matched": mta,
        })
    out = pd.DataFrame(rows, columns=list(BALANCE_COLUMNS))
    wv = w.to_numpy()
    out.attrs.update(
        n_treated=len(t),
        n_treated_matched=len(matched_t),
        n_candidates=len(c),
        n_controls_matched=len(w),
        ess_controls=float(wv.sum() ** 2 / np.sum(wv**2)) if len(wv) else 0.0,
    )
    return out


# ----------------------------------------------------------------------------------------
# the study's pairs and any tables
# ----------------------------------------------------------------------------------------


def _rank_among(dist_row: np.ndarray, allowed: np.ndarray, j: int) -> int:
    """1 + number of allowed candidates strictly nearer than candidate ``j``."""
    return int(1 + np.sum(allowed & (dist_row < dist_row[j] - 1e-12)))


def study_match(
    wards: pd.DataFrame,
    study: pd.DataFrame,
    spec: MatchSpec,
    *,
    balance_covariates: list[str] | None = None,
) -> dict[str, pd.DataFrame]:
    """Balance of the published pairs and the engine's alternative benchmarks.

    Parameters
    ----------
    wards
        Covariates of every English ward (:func:`nbdid.data_prep.covariates.ward_covariates`).
    study
        Covariates of the 58 study wards with ``group`` and ``pair``.
    spec
        How the engine matches (its covariates also define the distances reported for
        the published pairs).
    balance_covariates
        Covariates of the balance table (default: those of ``spec`` plus every other
        numeric covariate computed).

    Returns
    -------
    dict
        ``"balance"``: :func:`~nbdid.analysis.matching.balance_table` rows for the
        published pairs and for the engine's matches (column ``matched_by``);
        ``"alternatives"``: one row per NBI ward and engine pick with the published
        benchmark, both distances, the published benchmark's rank by distance among the
        candidates that satisfy the exact constraints (``published_rank`` of
        ``n_allowed_candidates``) and whether it satisfies the exact constraints and the
        caliper (``published_allowed``); ``"treated"``, ``"candidates"``: the tables that were matched.

    Notes
    -----
    Candidates are every English ward that is not (part of) an NBI study ward, plus the
    published benchmark wards as the report defined them (a benchmark that councils have
    since split is the union of its successor wards, so it can be picked as a whole).
    """
    nbi = study[study["group"] == "nbi"].sort_values("pair", kind="stable").reset_index(drop=True)
    ben = study[study["group"] == "benchmark"].sort_values("pair", kind="stable").reset_index(drop=True)
    nbi_parts = set(nbi["ward"].str.split("+").explode())
    cand = wards[~wards["ward"].isin(nbi_parts)]
    extra = ben[~ben["ward"].isin(cand["ward"])].drop(columns=["group", "pair"])
    cand = pd.concat([cand, extra], ignore_index=True)
    cols = list(spec.covariates)
    bal_cols = list(dict.fromkeys(balance_covariates or
                                  [*cols, *wards.attrs.get("covariates", [])]))
    published = pd.DataFrame({
        "set": nbi["pair"].astype("int64").to_numpy(),
        "treated_ward": nbi["ward"].astype("string").to_numpy(),
        "control_ward": ben.set_index("pair").loc[nbi["pair"], "ward"].astype("string").to_numpy(),
        "rank": 1,
    })
    engine = match_wards(nbi, cand, spec)
    dist, caliper = distance_matrix(nbi, cand, spec)
    # ranks are among the candidates that satisfy the exact constraints (not the caliper)
    allowed = np.ones(dist.shape, dtype=bool)
    for c in spec.exact:
        allowed &= nbi[c].astype(str).to_numpy()[:, None] == cand[c].astype(str).to_numpy()[None, :]
    within = dist <= caliper * (1 + 1e-12)
    pos = {w: j for j, w in enumerate(cand["ward"].astype(str))}
    pub_j = np.array([pos[w] for w in published["control_ward"]])
    published["distance"] = dist[np.arange(len(nbi)), pub_j]
    b_pub = balance_table(nbi, cand, published, bal_cols)
    b_eng = balance_table(nbi, cand, engine, bal_cols)
    balance = pd.concat([b_pub.assign(matched_by="published"), b_eng.assign(matched_by="engine")],
                        ignore_index=True)
    balance = balance[["matched_by", *[c for c in balance.columns if c != "matched_by"]]]
    info = cand.set_index("ward")[["ward_name", "la_name"]]
    rows = []
    eng_by_set = {s: g for s, g in engine.groupby("set")}
    for i, r in nbi.iterrows():
        pj = int(pub_j[i])
        pw = str(published["control_ward"].iloc[i])
        base = {
            "pair": int(r["pair"]),
            "nbi_ward": r["ward"], "nbi_name": r["ward_name"], "nbi_la": r["la_name"],
            "published_ward": pw, "published_name": info.loc[pw, "ward_name"],
            "published_la": info.loc[pw, "la_name"],
            "published_distance": float(dist[i, pj]),
            "published_allowed": bool(allowed[i, pj] and within[i, pj]),
            "published_rank": _rank_among(dist[i], allowed[i], pj),
            "n_allowed_candidates": int(allowed[i].sum()),
        }
        g = eng_by_set.get(int(r["pair"]))
        if g is None:
            rows.append({**base, "engine_rank": pd.NA, "engine_ward": pd.NA, "engine_name": pd.NA,
                         "engine_la": pd.NA, "engine_distance": np.nan, "same_as_published": "unmatched"})
            continue
        for e in g.itertuples():
            ew = str(e.control_ward)
            same = ("yes" if ew == pw else "part" if ew in pw.split("+") or pw in ew.split("+")
                    else "no")
            rows.append({**base, "engine_rank": int(e.rank), "engine_ward": ew,
                         "engine_name": info.loc[ew, "ward_name"], "engine_la": info.loc[ew, "la_name"],
                         "engine_distance": float(e.distance), "same_as_published": same})
    alt = pd.DataFrame(rows)
    alt["engine_rank"] = alt["engine_rank"].astype("Int64")
    alt.attrs["unmatched"] = engine.attrs.get("unmatched", [])
    return {"balance": balance, "alternatives": alt, "treated": nbi, "candidates": cand,
            "published": published, "engine": engine}


def general_match(
    treated: pd.DataFrame, candidates: pd.DataFrame, spec: MatchSpec, *, id_col: str = "ward"
) -> dict[str, pd.DataFrame]:
    """Match any tables: ``{"matches": ..., "balance": ...}``."""
    m = match_wards(treated, candidates, spec, id_col=id_col)
    b = balance_table(treated, candidates, m, list(spec.covariates), id_col=id_col)
    return {"matches": m, "balance": b}
