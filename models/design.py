"""Turn a tidy ward panel (one indicator) into model inputs: indices, data and coords.

The panel follows the schema in ``nbdid.data_prep.schema`` (one row per indicator x
ward x period).  :func:`build_design` checks that a difference-in-differences model
can be fitted (two groups, at least two periods, a post period, complete pairs when
pair effects are on) and raises :class:`~nbdid.errors.ModelError` otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from nbdid.errors import InputError, ModelError
from nbdid.registry import GROUPS

FamilyName = Literal["binomial", "poisson", "price"]

_COUNT_COLUMNS = ("count", "exposure")
_PRICE_COLUMNS = ("n", "mean_log_price")
_BASE_COLUMNS = ("indicator", "ward", "group", "period", "post")


@dataclass(frozen=True)
class Design:
    """Model inputs for one indicator (arrays aligned with the ``obs`` dimension).

    Attributes
    ----------
    indicator, family
        Indicator key and likelihood family.
    coords
        Named coordinates: ``ward``, ``pair`` (absent without pair effects), ``period``
        (period labels), ``obs``.
    ward_idx, pair_idx, period_idx
        Integer indices into the coords for each observation.
    ward_pair_idx
        Pair index of each ward (``coords["ward"]`` order).
    treated, post
        0/1 indicators (NBI ward; post-initiative period) per observation.
    ward_group
        Group of each ward (``"nbi"``/``"benchmark"``) in ``coords["ward"]`` order.
    period_post
        0/1 per period (``coords["period"]`` order).
    count, exposure
        Binomial / Poisson data (``None`` for prices).
    n, mean_log_price, sd_within, mean_price
        Price data (``None`` for counts); ``sd_within`` is the within-ward-period SD of
        log prices used as known (pooled where a ward-period has few transactions).
    event_study
        One treatment effect per period relative to ``reference_period``.
    reference_period
        Index (into ``coords["period"]``) of the event-study reference period.
    synthetic
        Whether the panel rows are synthetic.
    parameterization, change_parameterization, pair_parameterization
        ``"centred"`` or ``"non_centred"`` ward levels, ward changes and pair effects
        (resolved from ``"auto"`` by :func:`choose_parameterization`).
    frame
        The panel rows used, in ``obs`` order.
    """

    indicator: str
    family: FamilyName
    coords: dict[str, list]
    ward_idx: np.ndarray
    pair_idx: np.ndarray | None
    ward_pair_idx: np.ndarray | None
    period_idx: np.ndarray
    treated: np.ndarray
    post: np.ndarray
    ward_group: np.ndarray
    period_post: np.ndarray
    count: np.ndarray | None = None
    exposure: np.ndarray | None = None
    n: np.ndarray | None = None
    mean_log_price: np.ndarray | None = None
    sd_within: np.ndarray | None = None
    mean_price: np.ndarray | None = None
    event_study: bool = False
    reference_period: int | None = None
    synthetic: bool = False
    parameterization: Literal["centred", "non_centred"] = "centred"
    change_parameterization: Literal["centred", "non_centred"] = "centred"
    pair_parameterization: Literal["centred", "non_centred"] = "non_centred"
    frame: pd.DataFrame = field(default=None, repr=False)  # type: ignore[assignment]

    @property
    def n_obs(self) -> int:
        """Number of ward-period observations."""
        return len(self.ward_idx)

    @property
    def pair_effects(self) -> bool:
        """Whether the design has matched-pair effects."""
        return self.pair_idx is not None

    @property
    def forms(self) -> dict[str, str]:
        """The centred/non-centred form of each component, as ``build_design``'s
        ``parameterization`` takes it: ``{"level": ..., "change": ..., "pair": ...}``."""
        return {"level": self.parameterization, "change": self.change_parameterization,
                "pair": self.pair_parameterization}

    def shape_key(self) -> tuple[int, ...]:
        """Sizes of every dimension (a compiled model is reusable for equal keys)."""
        return (
            len(self.coords["ward"]),
            len(self.coords.get("pair", ())),
            len(self.coords["period"]),
            self.n_obs,
        )

    def data_arrays(self) -> dict[str, np.ndarray]:
        """The ``pm.Data`` containers' values, by name."""
        out: dict[str, np.ndarray] = {
            "ward_idx": self.ward_idx,
            "period_idx": self.period_idx,
            "treated": self.treated,
            "post": self.post,
        }
        out["ward_treated"] = (self.ward_group == "nbi").astype("int64")
        if self.pair_idx is not None:
            out["ward_pair_idx"] = self.ward_pair_idx
        if self.family == "price":
            out["n_obs_tx"] = self.n
            out["sd_within"] = self.sd_within
            out["y_obs"] = self.mean_log_price
        else:
            out["exposure"] = self.exposure
            out["y_obs"] = self.count
        return out


def _require(df: pd.DataFrame, cols: tuple[str, ...], indicator: str) -> None:
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise InputError(
            f"panel for indicator '{indicator}' lacks column(s) {', '.join(missing)}",
            column=missing[0],
        )


def pooled_within_sd(n: np.ndarray, sd: np.ndarray) -> float:
    """Pooled within-ward-period SD of log prices, ``sqrt(sum((n-1) s^2) / sum(n-1))``."""
    ok = np.isfinite(sd) & (n >= 2)
    if not ok.any():
        raise ModelError(
            "price panel has no ward-period with two or more transactions and an SD of log "
            "prices; the within-ward SD cannot be estimated"
        )
    return float(np.sqrt(np.sum((n[ok] - 1) * sd[ok] ** 2) / np.sum(n[ok] - 1)))


def build_design(
    panel: pd.DataFrame,
    indicator: str,
    family: FamilyName,
    *,
    pair_effects: bool = True,
    event_study: bool = False,
    reference_period: str | None = None,
    min_n_own_sd: int = 10,
    parameterization: str | dict[str, str] = "auto",
) -> Design:
    """Build the model inputs for one indicator of a tidy panel.

    Parameters
    ----------
    panel
        Tidy long panel (may hold several indicators; rows of ``indicator`` are used).
    indicator
        Indicator key.
    family
        ``"binomial"``, ``"poisson"`` or ``"price"``.
    pair_effects
        Use matched-pair effects (every pair must have one NBI and one benchmark ward).
    event_study
        One treatment effect per period, relative to ``reference_period``.
    reference_period
        Period label of the event-study reference (default: the last pre period).
    min_n_own_sd
        Price ward-periods with fewer transactions than this use the pooled within SD.
    parameterization
        ``"centred"``, ``"non_centred"`` or ``"auto"`` (:func:`choose_parameterization`),
        or a dict with the form of each of ``"level"``, ``"change"`` and ``"pair"``.

    Returns
    -------
    Design

    Raises
    ------
    ModelError
        If a DiD model cannot be fitted to these rows.
    """
    if family not in ("binomial", "poisson", "price"):
        raise ModelError(f"unknown family '{family}' (use binomial, poisson or price)")
    _require(panel, _BASE_COLUMNS, indicator)
    df = panel.loc[panel["indicator"].astype(str) == indicator].copy()
    if df.empty:
        known = sorted(panel["indicator"].astype(str).unique())
        raise ModelError(
            f"panel has no rows for indicator '{indicator}' (it has: {', '.join(known)})"
        )
    _require(df, _PRICE_COLUMNS if family == "price" else _COUNT_COLUMNS, indicator)
    df["ward"] = df["ward"].astype(str)
    df["group"] = df["group"].astype(str)
    bad_groups = sorted(set(df["group"]) - set(GROUPS))
    if bad_groups:
        raise ModelError(f"{indicator}: unknown group(s) {', '.join(bad_groups)} (use nbi, benchmark)")
    groups = set(df["group"])
    if len(groups) < 2:
        raise ModelError(
            f"{indicator}: the panel has only one group ({next(iter(groups))}); a "
            "difference-in-differences needs NBI and benchmark wards"
        )
    if df.groupby("ward")["group"].nunique().max() > 1:
        raise ModelError(f"{indicator}: a ward is in both groups")
    df["period"] = df["period"].astype("int64")
    periods = np.sort(df["period"].unique())
    if len(periods) < 2:
        raise ModelError(
            f"{indicator}: the panel has only one period; a difference-in-differences needs "
            "a period before and after the initiative"
        )
    post_by_period = df.groupby("period")["post"].agg(["min", "max"])
    if (post_by_period["min"] != post_by_period["max"]).any():
        raise ModelError(f"{indicator}: 'post' differs between wards within a period")
    period_post = post_by_period["max"].reindex(periods).to_numpy().astype(int)
    if period_post.max() == 0:
        raise ModelError(f"{indicator}: the panel has no post period (post = 1)")
    if period_post.min() == 1:
        raise ModelError(f"{indicator}: the panel has no pre period (post = 0)")
    if df.duplicated(["ward", "period"]).any():
        raise ModelError(f"{indicator}: duplicate ward-period rows")

    if "period_label" in df.columns:
        lab = df.groupby("period")["period_label"].first().reindex(periods).astype(str)
        period_labels = lab.tolist()
    else:
        period_labels = [str(p) for p in periods]

    df = df.sort_values(["period", "group", "ward"], key=None).reset_index(drop=True)
    wards = sorted(df["ward"].unique())
    ward_pos = {w: i for i, w in enumerate(wards)}
    period_pos = {p: i for i, p in enumerate(periods)}
    ward_group = df.groupby("ward")["group"].first().reindex(wards).to_numpy().astype(str)

    pair_idx = ward_pair_idx = None
    coords: dict[str, list] = {"ward": wards}
    if pair_effects:
        if "pair" not in df.columns or df["pair"].isna().all():
            raise ModelError(
                f"{indicator}: the panel has no matched pairs; use --no-pairs "
                "(pair_effects = false)"
            )
        if df["pair"].isna().any():
            w = df.loc[df["pair"].isna(), "ward"].iloc[0]
            raise ModelError(f"{indicator}: ward {w} has no pair; use --no-pairs")
        wp = df.groupby("ward")["pair"].first()
        comp = pd.crosstab(wp.to_numpy(), ward_group[[ward_pos[w] for w in wp.index]])
        for g in GROUPS:
            if g not in comp.columns:
                comp[g] = 0
        # a pair is a matched set: one NBI ward and one benchmark ward (1:1), or k
        # benchmark wards (1:k matching)
        broken = comp.index[(comp["nbi"] != 1) | (comp["benchmark"] < 1)]
        if len(broken):
            raise ModelError(
                f"{indicator}: pair {broken[0]} does not have exactly one NBI ward and at least "
                "one benchmark ward (a pair is missing its partner); fix the pairs or use "
                "--no-pairs"
            )
        pairs = sorted(int(p) for p in comp.index)
        pair_pos = {p: i for i, p in enumerate(pairs)}
        coords["pair"] = pairs
        pair_idx = df["pair"].astype("int64").map(pair_pos).to_numpy().astype("int64")
        ward_pair_idx = wp.astype("int64").reindex(wards).map(pair_pos).to_numpy().astype("int64")
    coords["period"] = period_labels
    coords["obs"] = list(range(len(df)))

    ref = None
    if event_study:
        if reference_period is None:
            ref = int(np.flatnonzero(period_post == 0)[-1])
        else:
            if str(reference_period) not in period_labels:
                raise ModelError(
                    f"{indicator}: reference period '{reference_period}' is not one of "
                    f"{', '.join(period_labels)}"
                )
            ref = period_labels.index(str(reference_period))

    synthetic = bool(df["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in df else False
    kw: dict = {}
    if family == "price":
        n = df["n"].astype("int64").to_numpy()
        if (n < 1).any():
            raise ModelError(f"{indicator}: price rows need n >= 1 transactions")
        sd = (
            df["sd_log_price"].astype("float64").to_numpy()
            if "sd_log_price" in df.columns
            else np.full(len(df), np.nan)
        )
        pooled = pooled_within_sd(n, sd)
        own = np.isfinite(sd) & (n >= min_n_own_sd)
        kw["n"] = n
        kw["sd_within"] = np.where(own, sd, pooled)
        kw["mean_log_price"] = df["mean_log_price"].astype("float64").to_numpy()
        if "mean_price" in df.columns:
            kw["mean_price"] = df["mean_price"].astype("float64").to_numpy()
    else:
        count = df["count"].astype("int64").to_numpy()
        exposure = df["exposure"].astype("float64").to_numpy()
        if (exposure <= 0).any():
            raise ModelError(f"{indicator}: exposure must be > 0")
        if family == "binomial":
            if (np.abs(exposure - np.round(exposure)) > 1e-6).any() or (count > exposure).any():
                raise ModelError(
                    f"{indicator}: binomial rows need whole-number exposure >= count"
                )
        kw["count"] = count
        kw["exposure"] = exposure

    design = Design(
        indicator=indicator,
        family=family,
        coords=coords,
        ward_idx=df["ward"].map(ward_pos).to_numpy().astype("int64"),
        pair_idx=pair_idx,
        ward_pair_idx=ward_pair_idx,
        period_idx=df["period"].map(period_pos).to_numpy().astype("int64"),
        treated=(df["group"] == "nbi").to_numpy().astype("int64"),
        post=df["post"].astype("int64").to_numpy(),
        ward_group=ward_group,
        period_post=period_post,
        event_study=event_study,
        reference_period=ref,
        synthetic=synthetic,
        frame=df,
        **kw,
    )
    if isinstance(parameterization, dict):
        forms = {**choose_parameterization(design), **parameterization}
        bad = {v for v in forms.values()} - {"centred", "non_centred"}
        if bad:
            raise ModelError(f"unknown parameterization '{bad.pop()}'")
    elif parameterization == "auto":
        forms = choose_parameterization(design)
    elif parameterization in ("centred", "non_centred"):
        forms = dict.fromkeys(("level", "change", "pair"), parameterization)
    else:
        raise ModelError(f"unknown parameterization '{parameterization}'")
    return replace(
        design,
        parameterization=forms["level"],
        change_parameterization=forms["change"],
        pair_parameterization=forms["pair"],
    )


def sampling_variance(design: Design) -> np.ndarray:
    """Approximate sampling variance of each observation's empirical link value.

    Poisson: ``1 / (y + 0.5)`` (log rate); binomial: ``1 / (y + 0.5) + 1 / (N - y + 0.5)``
    (logit); price: ``s**2 / n`` (mean log price).
    """
    if design.family == "price":
        return design.sd_within.astype(float) ** 2 / design.n.astype(float)
    y = design.count.astype(float)
    if design.family == "poisson":
        return 1.0 / (y + 0.5)
    return 1.0 / (y + 0.5) + 1.0 / (design.exposure.astype(float) - y + 0.5)


def link_values(family: str, *, count=None, exposure=None, mean_log_price=None) -> np.ndarray:
    """Empirical link values: log rates, logits or mean log prices (smoothed for zeros)."""
    if family == "price":
        return np.asarray(mean_log_price, dtype=float)
    y = np.asarray(count, dtype=float) + 0.5
    e = np.asarray(exposure, dtype=float) + 1.0
    return np.log(y / e) if family == "poisson" else np.log(y / (e - y))


def empirical_link(design: Design) -> np.ndarray:
    """Each observation's empirical link value (log rate, logit, mean log price)."""
    return link_values(design.family, count=design.count, exposure=design.exposure,
                       mean_log_price=design.mean_log_price)


def variance_components(design: Design) -> dict[str, float]:
    """Moment estimates of the variance components on the link scale.

    Empirical link values (:func:`empirical_link`) are centred on their group x period
    means.  Per ward, the *level* is the mean residual over pre periods and the
    *change* the post mean minus the pre mean; their sampling variances come from
    :func:`sampling_variance`.  With pairs, the pair variance is the covariance of the
    NBI ward's level with the mean level of its benchmark ward(s), across pairs.

    Returns
    -------
    dict
        ``level``, ``level_noise``, ``change``, ``change_noise``, ``pair`` (NaN without
        pairs), ``pair_noise`` (the noise of a pair's mean level: ward variance plus
        sampling noise, divided by the wards per pair).
    """
    df = pd.DataFrame({
        "r": empirical_link(design), "v": sampling_variance(design), "w": design.ward_idx,
        "g": design.treated, "t": design.period_idx, "post": design.post,
    })
    df["res"] = df["r"] - df.groupby(["g", "t"])["r"].transform("mean")
    pre, post = df[df["post"] == 0].groupby("w"), df[df["post"] == 1].groupby("w")
    level = pre["res"].mean()
    level_noise = pre["v"].mean() / pre.size()
    change = post["res"].mean() - level
    change_noise = level_noise + post["v"].mean() / post.size()
    out = {
        "level": float(level.var(ddof=1) - level_noise.mean()),
        "level_noise": float(level_noise.mean()),
        "change": float(change.var(ddof=1) - change_noise.mean()),
        "change_noise": float(change_noise.mean()),
        "pair": float("nan"),
        "pair_noise": float("nan"),
    }
    if design.pair_effects:
        wards = pd.DataFrame({
            "level": level.reindex(range(len(design.ward_group))).to_numpy(),
            "pair": design.ward_pair_idx, "nbi": design.ward_group == "nbi",
        })
        nbi = wards[wards["nbi"]].groupby("pair")["level"].mean()
        ben = wards[~wards["nbi"]].groupby("pair")["level"].mean()
        both = pd.concat([nbi, ben], axis=1, keys=["n", "b"]).dropna()
        if len(both) >= 3:
            pair_var = max(float(np.cov(both["n"], both["b"], ddof=1)[0, 1]), 0.0)
            ward_var = max(out["level"] - pair_var, 0.0)
            per_pair = len(wards) / max(len(both), 1)
            out["pair"] = pair_var
            out["pair_noise"] = (ward_var + out["level_noise"]) / per_pair
    return out


def choose_parameterization(design: Design) -> dict[str, str]:
    """Centred or non-centred ward levels, ward changes and pair effects.

    Each component is centred when its moment-estimated variance
    (:func:`variance_components`) exceeds twice the noise variance of the data that
    inform it (the ward's own values for levels and changes, the pair's wards for pair
    effects): the data then pin each effect down and the centred form samples well,
    while the non-centred form would make a ridge with the component's SD.  Otherwise
    the non-centred form avoids the centred form's funnel.  Borderline cases go
    non-centred: its failure mode (low ESS) is visible and harmless, the centred
    form's (divergences) biases the posterior.

    Returns
    -------
    dict
        ``{"level": ..., "change": ..., "pair": ...}``, each ``"centred"`` or
        ``"non_centred"``.
    """
    v = variance_components(design)

    def form(var: float, noise: float) -> str:
        return "centred" if np.isfinite(var) and var > 2.0 * noise else "non_centred"

    # with pairs, a ward level varies around its pair's mean: only the within-pair
    # part of the level variance competes with the ward's own noise
    within = v["level"] - v["pair"] if design.pair_effects and np.isfinite(v["pair"]) else v["level"]
    return {
        "level": form(within, v["level_noise"]),
        "change": form(v["change"], v["change_noise"]),
        "pair": form(v["pair"], v["pair_noise"]),
    }


def resolve_model_config(design: Design, cfg):
    """``cfg`` (a ModelConfig) with ``overdispersion = "auto"`` resolved for ``design``.

    ``"auto"`` is ``"none"`` when ward changes are modelled and the panel has two
    periods (every ward-period then has its own effect), ``"negbin"`` otherwise.
    """
    import dataclasses

    if cfg.overdispersion != "auto":
        return cfg
    two = len(design.coords["period"]) <= 2
    return dataclasses.replace(cfg, overdispersion="none" if cfg.ward_change and two else "negbin")


def link_centre(design: Design) -> float:
    """Data-based centre of the intercept prior: the link of the pooled pre-period value.

    Centring the intercept prior on the observed pooled baseline (logit of the pooled
    proportion, log of the pooled rate, mean log price) keeps ``intercept_sd`` a
    statement about *deviations* from the data's scale, whatever the indicator's unit.
    """
    pre = design.post == 0
    if design.family == "price":
        w = design.n[pre].astype(float)
        return float(np.sum(w * design.mean_log_price[pre]) / np.sum(w))
    c = design.count[pre].sum() + 0.5
    e = design.exposure[pre].sum() + 1.0
    p = c / e
    if design.family == "binomial":
        return float(np.log(p) - np.log1p(-p))
    return float(np.log(p))


WARD_DIM_DATA = ("ward_treated", "ward_pair_idx")
"""``pm.Data`` containers with dims ``ward`` (all others are scalars or dims ``obs``)."""


def add_did_terms(design: Design, cfg):
    """Add the shared DiD linear predictor to the current PyMC model context.

    Ward levels are nested in groups and pairs, and (``cfg.ward_change``, the
    default) each ward has its own change after the initiative, correlated with its
    level::

        (ward_level[w], ward_change[w]) ~ MvNormal((mu[w], 0), Sigma)
        mu[w]     = intercept + group_effect * nbi[w] + pair_effect[pair[w]]
        Sigma     = diag(sigma_ward, sigma_change) R diag(sigma_ward, sigma_change),
        R ~ LKJ(lkj_eta)
        pair_effect[k] ~ Normal(0, sigma_pair)
        eta[w,t]  = ward_level[w] + ward_change[w] * post[t] + period_effect[t]
                    + did * nbi[w] * post[t]

    Without ``ward_change`` the ward level alone is normal with SD ``sigma_ward``.
    ``did`` is then the NBI group's mean change minus the benchmark group's, beyond
    the spread of ward changes (``sigma_change``).  An event study uses
    ``did_period[t] * nbi[w]`` instead.  Ward levels, ward changes and pair effects
    are each centred or non-centred (``sigma * z``) as ``design.parameterization``,
    ``design.change_parameterization`` and ``design.pair_parameterization`` say (see
    :func:`choose_parameterization`); the change is written given the level
    (Cholesky form), so any mix of forms is the same model.
    ``ward_effect`` (the ward's deviation from its group and pair mean),
    ``ward_level`` and ``ward_change`` are stored either way.

    Parameters
    ----------
    design
        The model inputs.
    cfg
        A :class:`nbdid.config.ModelConfig` (prior scales, parameterisation).

    Returns
    -------
    tuple
        ``(eta, data)``: the linear predictor (length ``obs``) and a dict of the
        ``pm.Data`` containers created.
    """
    import pymc as pm
    import pytensor.tensor as pt

    centred = design.parameterization == "centred"
    n_period = len(design.coords["period"])
    data = {
        name: pm.Data(name, arr, dims="ward" if name in WARD_DIM_DATA else "obs")
        for name, arr in design.data_arrays().items()
    }
    data["intercept_centre"] = pm.Data("intercept_centre", link_centre(design))
    intercept = pm.Normal("intercept", mu=data["intercept_centre"], sigma=cfg.intercept_sd)
    period_raw = pm.Normal("period_raw", 0.0, cfg.effect_sd, shape=n_period - 1)
    period_effect = pm.Deterministic(
        "period_effect", pt.concatenate([pt.zeros(1), period_raw]), dims="period"
    )
    group_effect = pm.Normal("group_effect", 0.0, cfg.effect_sd)
    mean_level = intercept + group_effect * data["ward_treated"]
    if design.pair_effects:
        sigma_pair = pm.HalfNormal("sigma_pair", cfg.sigma_pair_scale)
        if design.pair_parameterization == "centred":
            pair_effect = pm.Normal("pair_effect", 0.0, sigma_pair, dims="pair")
        else:
            pair_z = pm.Normal("pair_z", 0.0, 1.0, dims="pair")
            pair_effect = pm.Deterministic("pair_effect", sigma_pair * pair_z, dims="pair")
        mean_level = mean_level + pair_effect[data["ward_pair_idx"]]
    treated = data["treated"]
    if design.event_study:
        ref = design.reference_period
        did_raw = pm.Normal("did_raw", 0.0, cfg.did_sd, shape=n_period - 1)
        did_period = pm.Deterministic(
            "did_period",
            pt.concatenate([did_raw[:ref], pt.zeros(1), did_raw[ref:]]),
            dims="period",
        )
        post_w = design.period_post / design.period_post.sum()
        did = pm.Deterministic("did", pt.sum(did_period * post_w))
        did_term = did_period[data["period_idx"]] * treated
    else:
        did = pm.Normal("did", 0.0, cfg.did_sd)
        did_term = did * treated * data["post"]

    if not cfg.ward_change:
        sigma_ward = pm.HalfNormal("sigma_ward", cfg.sigma_ward_scale)
        if centred:
            ward_level = pm.Normal("ward_level", mean_level, sigma_ward, dims="ward")
            pm.Deterministic("ward_effect", ward_level - mean_level, dims="ward")
        else:
            ward_z = pm.Normal("ward_z", 0.0, 1.0, dims="ward")
            ward_effect = pm.Deterministic("ward_effect", sigma_ward * ward_z, dims="ward")
            ward_level = pm.Deterministic("ward_level", mean_level + ward_effect, dims="ward")
        eta = ward_level[data["ward_idx"]] + period_effect[data["period_idx"]] + did_term
        return eta, data

    # joint ward level and change, optionally correlated (LKJ prior)
    if cfg.ward_corr:
        sd_dist = pm.HalfNormal.dist(
            sigma=np.array([cfg.sigma_ward_scale, cfg.sigma_change_scale]), shape=2
        )
        chol, corr, stds = pm.LKJCholeskyCov(
            "ward_chol", n=2, eta=cfg.lkj_eta, sd_dist=sd_dist, compute_corr=True,
            store_in_trace=False,
        )
        sigma_ward = pm.Deterministic("sigma_ward", stds[0])
        pm.Deterministic("sigma_change", stds[1])
        pm.Deterministic("ward_corr", corr[0, 1])
        c10, c11 = chol[1, 0], chol[1, 1]
    else:
        sigma_ward = pm.HalfNormal("sigma_ward", cfg.sigma_ward_scale)
        c11 = pm.HalfNormal("sigma_change", cfg.sigma_change_scale)
        c10 = pt.zeros(())
    stds = (sigma_ward, c11)
    # sequential (Cholesky) form: level, then change given level, each centred or not
    if centred:
        ward_level_rv = pm.Normal("ward_level_c", mean_level, stds[0], dims="ward")
        z_level = (ward_level_rv - mean_level) / stds[0]
    else:
        z_level = pm.Normal("ward_level_z", 0.0, 1.0, dims="ward")
    dev_level = stds[0] * z_level
    if design.change_parameterization == "centred":
        # hierarchical centring: the common change (period effect of the first post
        # period) and the DiD are the *mean* of the ward changes instead of being
        # added in the likelihood; otherwise precise ward data leave a narrow ridge
        # between them and every ward change (R-hat 1.2 on the default crime panel)
        first_post = int(np.flatnonzero(design.period_post == 1)[0])
        common = period_effect[first_post]
        change_mean = common + c10 * z_level
        if not design.event_study:
            change_mean = change_mean + did * data["ward_treated"]
        total_change = pm.Normal("ward_change_c", change_mean, c11, dims="ward")
        dev_change = total_change - change_mean + c10 * z_level
        period_lik = period_effect - common * pt.as_tensor(design.period_post.astype("float64"))
        eta = (
            (mean_level + dev_level)[data["ward_idx"]]
            + total_change[data["ward_idx"]] * data["post"]
            + period_lik[data["period_idx"]]
        )
        if design.event_study:
            eta = eta + did_term
    else:
        z_change = pm.Normal("ward_change_z", 0.0, 1.0, dims="ward")
        dev_change = c10 * z_level + c11 * z_change
        eta = (
            (mean_level + dev_level)[data["ward_idx"]]
            + dev_change[data["ward_idx"]] * data["post"]
            + period_effect[data["period_idx"]]
            + did_term
        )
    dev = pt.stack([dev_level, dev_change], axis=1)
    pm.Deterministic("ward_effect", dev[:, 0], dims="ward")
    pm.Deterministic("ward_level", mean_level + dev[:, 0], dims="ward")
    pm.Deterministic("ward_change", dev[:, 1], dims="ward")
    return eta, data


def linear_predictor_draws(posterior, design: Design, *, counterfactual: bool = False):
    """The linear predictor per draw and observation, recomputed from a posterior.

    Parameters
    ----------
    posterior
        ``idata.posterior`` (xarray Dataset with the variables of :func:`add_did_terms`).
    design
        The design the posterior was fitted to.
    counterfactual
        Drop the treatment x period interaction (the "no initiative effect" world).

    Returns
    -------
    numpy.ndarray
        Shape ``(chain, draw, obs)``.
    """
    p = posterior
    eta = (
        p["ward_level"].values[..., design.ward_idx]
        + p["period_effect"].values[..., design.period_idx]
    )
    if "ward_change" in p:
        eta = eta + p["ward_change"].values[..., design.ward_idx] * design.post
    if "wp_effect" in p:
        eta = eta + p["wp_effect"].values
    if not counterfactual:
        if design.event_study:
            eta = eta + p["did_period"].values[..., design.period_idx] * design.treated
        else:
            eta = eta + p["did"].values[..., None] * design.treated * design.post
    return eta


def redraw_ward_change(posterior, design: Design, rng: np.random.Generator) -> np.ndarray:
    """Linear-predictor shift that swaps each ward's change for a fresh draw.

    Posterior predictive replicates are "mixed": a ward's level is kept, and its
    change is redrawn from its conditional population distribution given the level,
    ``N(rho * sigma_change / sigma_ward * ward_effect, sigma_change**2 * (1 - rho**2))``,
    just as observation-level effects are redrawn.  The between-ward variance check
    then tests the model's account of how ward spread evolves, rather than
    reproducing each ward's fitted change.

    Returns
    -------
    numpy.ndarray
        ``(chain, draw, obs)`` array to add to :func:`linear_predictor_draws`; zeros
        when the posterior has no ``ward_change``.
    """
    p = posterior
    shape = p["did"].shape + (design.n_obs,)
    if "ward_change" not in p:
        return np.zeros(shape)
    sw = p["sigma_ward"].values[..., None]
    sc = p["sigma_change"].values[..., None]
    rho = p["ward_corr"].values[..., None] if "ward_corr" in p else np.zeros_like(sw)
    dev = p["ward_effect"].values
    cond_mean = rho * sc / np.maximum(sw, 1e-12) * dev
    cond_sd = sc * np.sqrt(np.clip(1.0 - rho**2, 0.0, None))
    new = cond_mean + cond_sd * rng.standard_normal(dev.shape)
    old = p["ward_change"].values
    return (new - old)[..., design.ward_idx] * design.post


def design_to_dataset(design: Design):
    """The design as an xarray Dataset (stored as the ``constant_data`` group of a fit).

    With it a saved fit can be re-analysed without the panel:
    ``design_from_dataset(az.from_netcdf(path).constant_data)``.
    """
    import xarray as xr

    obs_vars = {
        "ward_idx": design.ward_idx, "period_idx": design.period_idx,
        "treated": design.treated, "post": design.post,
    }
    for name in ("count", "exposure", "n", "mean_log_price", "sd_within", "mean_price"):
        val = getattr(design, name)
        if val is not None:
            obs_vars[name] = val
    if design.pair_idx is not None:
        obs_vars["pair_idx"] = design.pair_idx
    data = {k: ("obs", np.asarray(v)) for k, v in obs_vars.items()}
    data["ward_group"] = ("ward", np.asarray(design.ward_group, dtype=str))
    data["period_post"] = ("period", np.asarray(design.period_post))
    if design.ward_pair_idx is not None:
        data["ward_pair_idx"] = ("ward", design.ward_pair_idx)
    coords = {k: np.asarray(v) for k, v in design.coords.items()}
    attrs = {
        "indicator": design.indicator,
        "family": design.family,
        "event_study": int(design.event_study),
        "reference_period": -1 if design.reference_period is None else design.reference_period,
        "synthetic": int(design.synthetic),
        "parameterization": design.parameterization,
        "change_parameterization": design.change_parameterization,
        "pair_parameterization": design.pair_parameterization,
    }
    return xr.Dataset(data, coords=coords, attrs=attrs)


def design_from_dataset(ds) -> Design:
    """Rebuild a :class:`Design` from :func:`design_to_dataset` output (no ``frame``)."""
    def get(name, dtype=None):
        if name not in ds:
            return None
        v = ds[name].values
        return v.astype(dtype) if dtype else v

    coords = {k: [x.item() if hasattr(x, "item") else x for x in ds[k].values]
              for k in ("ward", "pair", "period", "obs") if k in ds.coords}
    coords["ward"] = [str(w) for w in coords["ward"]]
    coords["period"] = [str(p) for p in coords["period"]]
    ref = int(ds.attrs.get("reference_period", -1))
    return Design(
        indicator=str(ds.attrs["indicator"]),
        family=str(ds.attrs["family"]),
        coords=coords,
        ward_idx=get("ward_idx", "int64"),
        pair_idx=get("pair_idx", "int64"),
        ward_pair_idx=get("ward_pair_idx", "int64"),
        period_idx=get("period_idx", "int64"),
        treated=get("treated", "int64"),
        post=get("post", "int64"),
        ward_group=get("ward_group", str),
        period_post=get("period_post", "int64"),
        count=get("count", "int64"),
        exposure=get("exposure", "float64"),
        n=get("n", "int64"),
        mean_log_price=get("mean_log_price", "float64"),
        sd_within=get("sd_within", "float64"),
        mean_price=get("mean_price", "float64"),
        event_study=bool(int(ds.attrs.get("event_study", 0))),
        reference_period=None if ref < 0 else ref,
        synthetic=bool(int(ds.attrs.get("synthetic", 0))),
        parameterization=str(ds.attrs.get("parameterization", "centred")),
        change_parameterization=str(ds.attrs.get("change_parameterization", "centred")),
        pair_parameterization=str(ds.attrs.get("pair_parameterization", "non_centred")),
        frame=None,
    )
