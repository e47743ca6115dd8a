"""Turn a tidy ward panel (one indicator) into model inputs: indices, data and coords.

The panel follows the schema in ``nbdid.data_prep.schema`` (one row per indicator x
ward x period).  :func:`build_design` checks that a difference-in-differences model
can be fitted (two groups, at least two periods, a post period, complete pairs when
pair effects are on) and raises :class:`~nbdid.errors.ModelError` otherwise.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from nbdid.config import PRIOR_PARAMS
from nbdid.data_prep.feasibility import check_did
from nbdid.errors import DesignError, ModelError
from nbdid.families import Family, get_family
from nbdid.families.price import pooled_within_sd
from nbdid.families.priors import add_prior, data_name
from nbdid.models.priors import prior_data, resolve_priors

if TYPE_CHECKING:
    import xarray as xr

    from nbdid.config import ModelConfig

Form = Literal["centred", "non_centred"]
ChangeForm = Literal["centred", "non_centred", "mixed"]

MIN_WARDS_GROUP_SD = 3
"""Wards seen before and after needed in *each* group for group-specific change SDs."""

MIN_PAIRS = 2
"""Matched sets needed for pair effects (one set's effect is the intercept's)."""

__all__ = [
    "Design", "add_did_terms", "build_design", "choose_parameterization", "design_from_dataset",
    "design_to_dataset", "empirical_link", "forms_for", "level_weights", "link_centre",
    "linear_predictor_draws",
    "model_data",
    "pooled_within_sd", "redraw_ward_change", "resolve_model_config", "resolve_structure",
    "sampling_variance", "structure_text", "variance_components",
]


@dataclass(frozen=True)
class Design:
    """Model inputs for one indicator (arrays aligned with the ``obs`` dimension).

    Attributes
    ----------
    indicator
        Indicator key.
    family
        The likelihood family (:class:`nbdid.families.Family`).
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
    arrays
        The family's observation arrays (:meth:`nbdid.families.Family.design_arrays`):
        ``count`` and ``exposure`` for count families; ``n``, ``mean_log_price``,
        ``sd_within`` (the within-ward-period SD of log prices used as known, pooled
        where a ward-period has few transactions) and ``mean_price`` for prices.  They
        can also be read as attributes (``design.count``).
    event_study
        One treatment effect per period relative to ``reference_period``.
    reference_period
        Index (into ``coords["period"]``) of the event-study reference period.
    synthetic
        Whether the panel rows are synthetic.
    parameterization, change_parameterization, pair_parameterization
        ``"centred"`` or ``"non_centred"`` ward levels, ward changes and pair effects
        (resolved from ``"auto"`` by :func:`choose_parameterization`); ward changes may
        also be ``"mixed"`` (each group in its own form, :attr:`change_centred`).
    change_centred
        With ``change_parameterization = "mixed"``: 1 for wards whose change is written
        centred, 0 for non-centred ones (each group in its own form).
    ward_has_change
        1 for wards seen both before and after the initiative (they can have a change of
        their own), 0 for wards seen only before or only after (``coords["ward"]`` order).
    covariates
        Names of the covariates (``coords["covariate"]``), each standardised.
    covariate_kind
        ``"ward"`` (constant within every ward) or ``"ward_period"`` per covariate.
    cov_ward, cov_tv
        Standardised covariate values: ``(ward, covariate)`` for ward-level covariates
        and ``(obs, covariate)`` for ward-period ones (zeros in the other kind's columns).
    cov_centre, cov_scale
        Mean and SD used to standardise each covariate (over wards for ward-level
        covariates, over observations for ward-period ones).
    interact
        Covariates with a covariate x treatment x post term (``coords["interaction"]``).
    notes
        Structure decisions taken while building the design (e.g. pair effects left
        out), repeated by :func:`resolve_structure`.
    obs_weight
        ``None``, or 0/1 per observation: observations of weight 0 are left out of the
        likelihood (held out for cross-validation, :func:`nbdid.models.model.build_model`).
    frame
        The panel rows used, in ``obs`` order.
    """

    indicator: str
    family: Family
    coords: dict[str, list]
    ward_idx: np.ndarray
    pair_idx: np.ndarray | None
    ward_pair_idx: np.ndarray | None
    period_idx: np.ndarray
    treated: np.ndarray
    post: np.ndarray
    ward_group: np.ndarray
    period_post: np.ndarray
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    event_study: bool = False
    reference_period: int | None = None
    synthetic: bool = False
    parameterization: Form = "centred"
    change_parameterization: ChangeForm = "centred"
    pair_parameterization: Form = "non_centred"
    ward_has_change: np.ndarray = field(default=None, repr=False)  # type: ignore[assignment]
    change_centred: np.ndarray | None = field(default=None, repr=False)
    covariates: tuple[str, ...] = ()
    covariate_kind: tuple[str, ...] = ()
    cov_ward: np.ndarray | None = field(default=None, repr=False)
    cov_tv: np.ndarray | None = field(default=None, repr=False)
    cov_centre: np.ndarray | None = field(default=None, repr=False)
    cov_scale: np.ndarray | None = field(default=None, repr=False)
    interact: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    obs_weight: np.ndarray | None = field(default=None, repr=False)
    frame: pd.DataFrame = field(default=None, repr=False)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.ward_has_change is None:
            n_ward = len(self.coords["ward"])
            seen = np.zeros((n_ward, 2), dtype=bool)
            seen[self.ward_idx, np.asarray(self.post, dtype=int)] = True
            object.__setattr__(self, "ward_has_change", seen.all(axis=1).astype("int64"))

    def __getattr__(self, name: str) -> np.ndarray:
        # the family's arrays read as attributes: design.count, design.exposure, design.n
        arrays = self.__dict__.get("arrays")
        if arrays is not None and name in arrays:
            return arrays[name]
        raise AttributeError(f"{type(self).__name__!s} has no attribute {name!r}")

    @property
    def n_obs(self) -> int:
        """Number of ward-period observations."""
        return len(self.ward_idx)

    @property
    def grid(self) -> bool:
        """Whether the observations are the complete ward x period grid in period-major
        blocks with the wards in the same order in every period (observation
        ``t * wards + i`` is ward ``ward_idx[i]`` in period ``t``), as :func:`build_design`
        orders a panel without missing rows.  The model then broadcasts ward and period
        terms to the observations instead of gathering them by index
        (:func:`add_did_terms`): the same model, a cheaper gradient."""
        n_ward, n_period = len(self.coords["ward"]), len(self.coords["period"])
        if self.n_obs != n_ward * n_period:
            return False
        blocks = np.asarray(self.ward_idx).reshape(n_period, n_ward)
        return bool(np.array_equal(np.sort(blocks[0]), np.arange(n_ward))
                    and (blocks == blocks[0]).all()
                    and np.array_equal(self.period_idx, np.repeat(np.arange(n_period), n_ward)))

    @property
    def pair_effects(self) -> bool:
        """Whether the design has matched-pair effects."""
        return self.pair_idx is not None

    @property
    def y(self) -> np.ndarray:
        """The observed values (counts, mean log prices, ...)."""
        return self.family.observed(self.arrays)

    @property
    def weights(self) -> np.ndarray:
        """Weights of pooled group values (exposure, transactions)."""
        return self.family.weights(self.arrays)

    @property
    def forms(self) -> dict[str, str]:
        """The centred/non-centred form of each component, as ``build_design``'s
        ``parameterization`` takes it: ``{"level": ..., "change": ..., "pair": ...}``."""
        return {"level": self.parameterization, "change": self.change_parameterization,
                "pair": self.pair_parameterization}

    @property
    def ward_treated(self) -> np.ndarray:
        """1 for NBI wards, 0 for benchmark wards (``coords["ward"]`` order)."""
        return (np.asarray(self.ward_group) == "nbi").astype("int64")

    @property
    def partial_wards(self) -> bool:
        """Whether some ward is seen only before or only after the initiative."""
        return bool((self.ward_has_change == 0).any())

    @property
    def interact_idx(self) -> np.ndarray:
        """Column of each interacted covariate among :attr:`covariates`."""
        return np.asarray([self.covariates.index(c) for c in self.interact], dtype="int64")

    def shape_key(self) -> tuple[int, ...]:
        """Sizes of every dimension (a compiled model is reusable for equal keys)."""
        return (
            len(self.coords["ward"]),
            len(self.coords.get("pair", ())),
            len(self.coords["period"]),
            self.n_obs,
            len(self.covariates),
            len(self.interact),
        )

    def structure_key(self) -> tuple:
        """What the design contributes to a model's structure beyond its shapes."""
        mixed = tuple(int(x) for x in self.change_centred) if self.change_centred is not None else ()
        return (self.partial_wards, self.covariate_kind, self.interact, self.obs_weight is not None,
                self.family.structure(self.arrays), mixed, self.grid)

    def data_arrays(self) -> dict[str, np.ndarray]:
        """The ``pm.Data`` containers' values, by name."""
        out: dict[str, np.ndarray] = {
            "ward_idx": self.ward_idx,
            "period_idx": self.period_idx,
            "treated": self.treated,
            "post": self.post,
        }
        out["ward_treated"] = self.ward_treated
        if self.pair_idx is not None:
            out["ward_pair_idx"] = self.ward_pair_idx
        if self.partial_wards:
            out["ward_has_change"] = self.ward_has_change
        if self.covariates:
            out["cov_ward"] = self.cov_ward
            out["cov_tv"] = self.cov_tv
        if self.obs_weight is not None:
            out["obs_weight"] = np.asarray(self.obs_weight, dtype="float64")
        out.update(self.family.data_containers(self.arrays))
        return out


def build_design(
    panel: pd.DataFrame,
    indicator: str,
    family: str | Family,
    *,
    pair_effects: bool = True,
    event_study: bool = False,
    reference_period: str | None = None,
    parameterization: str | dict[str, str] = "auto",
    covariates: tuple[str, ...] | list[str] = (),
    interact: tuple[str, ...] | list[str] = (),
) -> Design:
    """Build the model inputs for one indicator of a tidy panel.

    Parameters
    ----------
    panel
        Tidy long panel (may hold several indicators; rows of ``indicator`` are used).
    indicator
        Indicator key.
    family
        A family name (``"binomial"``, ``"poisson"``, ``"price"``) or object.
    pair_effects
        Use matched-pair effects (every pair must have one NBI and one benchmark ward).
    event_study
        One treatment effect per period, relative to ``reference_period``.
    reference_period
        Period label of the event-study reference (default: the last pre period).
    parameterization
        ``"centred"``, ``"non_centred"`` or ``"auto"`` (:func:`choose_parameterization`),
        or a dict with the form of each of ``"level"``, ``"change"`` and ``"pair"``.
        Ward changes are non-centred whenever some ward is seen only before or only
        after the initiative (its change is then left out, see :attr:`Design.ward_has_change`).
    covariates
        Panel columns used as covariates (standardised; see :func:`covariate_arrays`).
    interact
        Covariates (among ``covariates``) with a covariate x treatment x post term.

    Returns
    -------
    Design

    Raises
    ------
    ModelError
        If a DiD model cannot be fitted to these rows (a
        :class:`~nbdid.errors.DesignError` from
        :func:`nbdid.data_prep.feasibility.check_did`, or bad family values).
    """
    try:
        fam = get_family(family)
    except Exception as err:  # an unknown family name is a model error here
        raise ModelError(str(err)) from None
    covariates, interact = tuple(covariates), tuple(interact)
    extra = [c for c in interact if c not in covariates]
    if extra:
        raise ModelError(f"{indicator}: --interact {extra[0]} is not one of the covariates "
                         f"({', '.join(covariates) or 'none'})")
    notes: list[str] = []
    if pair_effects and "indicator" in panel.columns:
        rows = panel["indicator"].astype(str) == indicator
        if rows.any() and ("pair" not in panel.columns or panel.loc[rows, "pair"].isna().all()):
            pair_effects = False
            notes.append("no pair effects: the panel has no matched pairs (column pair is empty)")
    st = check_did(panel, indicator, pair_effects=pair_effects, columns=(*fam.required, *covariates))
    periods, period_post, period_labels = st.periods, st.period_post, st.period_labels
    df = st.rows.sort_values(["period", "group", "ward"], key=None).reset_index(drop=True)
    wards = st.wards
    ward_pos = {w: i for i, w in enumerate(wards)}
    period_pos = {p: i for i, p in enumerate(periods)}

    pair_idx = ward_pair_idx = None
    coords: dict[str, list] = {"ward": wards}
    if st.pairs is not None and len(st.pairs) < MIN_PAIRS:
        notes.append(f"no pair effects: the panel has {len(st.pairs)} matched set(s); the SD "
                     f"of pair effects needs at least {MIN_PAIRS}")
        st = replace(st, pairs=None)
    if st.pairs is not None:
        pair_pos = {p: i for i, p in enumerate(st.pairs)}
        coords["pair"] = list(st.pairs)
        pair_idx = df["pair"].astype("int64").map(pair_pos).to_numpy().astype("int64")
        wp = df.groupby("ward")["pair"].first()
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
    ward_idx = df["ward"].map(ward_pos).to_numpy().astype("int64")
    cov = covariate_arrays(df, indicator, covariates, ward_idx, len(wards)) if covariates else {}
    if cov:
        coords["covariate"] = list(covariates)
        if interact:
            coords["interaction"] = list(interact)
    design = Design(
        indicator=indicator,
        family=fam,
        coords=coords,
        ward_idx=ward_idx,
        pair_idx=pair_idx,
        ward_pair_idx=ward_pair_idx,
        period_idx=df["period"].map(period_pos).to_numpy().astype("int64"),
        treated=(df["group"] == "nbi").to_numpy().astype("int64"),
        post=df["post"].astype("int64").to_numpy(),
        ward_group=st.ward_group,
        period_post=period_post,
        arrays=fam.design_arrays(df, indicator),
        event_study=event_study,
        reference_period=ref,
        synthetic=synthetic,
        covariates=covariates if cov else (),
        interact=interact if cov else (),
        **cov,
        notes=tuple(notes),
        frame=df,
    )
    if isinstance(parameterization, dict):
        forms = {**choose_parameterization(design), **parameterization}
        bad = {v for k, v in forms.items() if not (k == "change" and v == "mixed")} - {"centred", "non_centred"}
        if bad:
            raise ModelError(f"unknown parameterization '{bad.pop()}'")
    elif parameterization == "auto":
        forms = choose_parameterization(design)
    elif parameterization in ("centred", "non_centred"):
        forms = dict.fromkeys(("level", "change", "pair"), parameterization)
    else:
        raise ModelError(f"unknown parameterization '{parameterization}'")
    if design.partial_wards:
        # the change of a ward seen in one period only is left out (multiplied by 0):
        # centred, it would be a free parameter with nothing but its prior (a funnel)
        forms["change"] = "non_centred"
    design = replace(
        design,
        parameterization=forms["level"],
        change_parameterization=forms["change"],
        pair_parameterization=forms["pair"],
    )
    if forms["change"] == "mixed":
        design = replace(design, change_centred=change_centred_wards(design))
    return design


def covariate_arrays(df: pd.DataFrame, indicator: str, names: tuple[str, ...], ward_idx: np.ndarray,
                     n_ward: int) -> dict[str, object]:
    """Standardised covariates of an indicator's rows (``df`` in ``obs`` order).

    A covariate constant within every ward is *ward-level*: it is standardised over
    wards (mean 0, SD 1 with ``n - 1``) and enters the model per ward.  Otherwise it is
    *ward-period* (time-varying), standardised over observations and entering per
    observation.

    Raises
    ------
    DesignError
        If a covariate is missing for some row, or has the same value everywhere.
    """
    k = len(names)
    n_obs = len(df)
    cov_ward = np.zeros((n_ward, k))
    cov_tv = np.zeros((n_obs, k))
    centre, scale, kind = np.zeros(k), np.ones(k), []
    for j, name in enumerate(names):
        x = pd.to_numeric(df[name], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(x)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise DesignError(f"{indicator}: covariate '{name}' is empty or not a number for ward "
                              f"{df['ward'].iloc[i]}, period {df['period'].iloc[i]}", column=name)
        per_ward = pd.Series(x).groupby(ward_idx)
        constant = bool((per_ward.max() - per_ward.min() <= 1e-12 * (1 + np.abs(per_ward.max()))).all())
        vals = per_ward.first().reindex(range(n_ward)).to_numpy() if constant else x
        sd = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
        if not sd > 0:
            raise DesignError(f"{indicator}: covariate '{name}' has the same value for every "
                              f"{'ward' if constant else 'observation'}; it cannot be used", column=name)
        centre[j], scale[j] = float(np.mean(vals)), sd
        z = (vals - centre[j]) / sd
        if constant:
            cov_ward[:, j] = np.nan_to_num(z)
            kind.append("ward")
        else:
            cov_tv[:, j] = z
            kind.append("ward_period")
    return {"covariate_kind": tuple(kind), "cov_ward": cov_ward, "cov_tv": cov_tv,
            "cov_centre": centre, "cov_scale": scale}


def sampling_variance(design: Design) -> np.ndarray:
    """Approximate sampling variance of each observation's empirical link value.

    Poisson: ``1 / (y + 0.5)`` (log rate); binomial: ``1 / (y + 0.5) + 1 / (N - y + 0.5)``
    (logit); price: ``s**2 / n`` (mean log price).  See the families'
    ``sampling_variance``.
    """
    return design.family.sampling_variance(design.arrays)


def empirical_link(design: Design) -> np.ndarray:
    """Each observation's empirical link value (log rate, logit, mean log price)."""
    return design.family.empirical_link(design.arrays)


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
    nbi_ward = pd.Series(design.ward_treated.astype(bool))
    for g, is_g in (("nbi", True), ("benchmark", False)):
        wards = nbi_ward.index[nbi_ward == is_g]
        c, cn = change.reindex(wards).dropna(), change_noise.reindex(wards).dropna()
        out[f"change_{g}"] = float(c.var(ddof=1) - cn.mean()) if len(c) > 1 else float("nan")
        out[f"change_noise_{g}"] = float(cn.mean()) if len(cn) else float("nan")
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

    Ward changes are centred when all wards' changes pass this test together *and* each
    group's pass it on their own: groups can differ in how much their wards change
    (``group_change_sd``; e.g. 20 NBI wards that change little beside 309 benchmarks
    that change a lot), and a group whose changes are small next to their noise would
    sit in the centred form's funnel (56 divergences on such a panel).  When only one
    group passes, the change is ``"mixed"``: each ward's change is written in its
    group's form (:func:`change_centred_wards`).

    Returns
    -------
    dict
        ``{"level": ..., "change": ..., "pair": ...}``, each ``"centred"`` or
        ``"non_centred"`` (the change also ``"mixed"``).
    """
    v = variance_components(design)

    def form(var: float, noise: float) -> str:
        return "centred" if np.isfinite(var) and var > 2.0 * noise else "non_centred"

    change = form(v["change"], v["change_noise"])
    if change == "centred":  # unless a group's own wards would sit in the centred funnel
        by_group = {g: form(v[f"change_{g}"], v[f"change_noise_{g}"]) for g in ("nbi", "benchmark")}
        if "non_centred" in by_group.values():
            change = "mixed" if "centred" in by_group.values() else "non_centred"

    # with pairs, a ward level varies around its pair's mean: only the within-pair
    # part of the level variance competes with the ward's own noise
    within = v["level"] - v["pair"] if design.pair_effects and np.isfinite(v["pair"]) else v["level"]
    return {
        "level": form(within, v["level_noise"]),
        "change": change,
        "pair": form(v["pair"], v["pair_noise"]),
    }


def change_centred_wards(design: Design) -> np.ndarray:
    """1 for wards whose change is written centred, 0 non-centred (``coords["ward"]``
    order): all of one kind unless ``design.change_parameterization`` is ``"mixed"``,
    when each group takes the form its own variance components call for."""
    form = design.change_parameterization
    if form != "mixed":
        return np.full(len(design.coords["ward"]), int(form == "centred"), dtype="int64")
    if design.change_centred is not None:
        return np.asarray(design.change_centred, dtype="int64")
    v = variance_components(design)
    out = np.zeros(len(design.coords["ward"]), dtype="int64")
    for g in ("nbi", "benchmark"):
        var, noise = v[f"change_{g}"], v[f"change_noise_{g}"]
        if np.isfinite(var) and var > 2.0 * noise:
            out[np.asarray(design.ward_group) == g] = 1
    return out


@dataclass(frozen=True)
class _ResidualDf:
    """What the mean of a model structure leaves of the observations (:func:`_residual_df`)."""

    n_obs: int
    n_mean: int
    """Mean effects the observations can tell apart (the rank of the mean's design matrix)."""
    by_group: dict[str, float]
    """Residual degrees of freedom of each group's observations (they sum to the total)."""

    @property
    def total(self) -> int:
        return self.n_obs - self.n_mean


def _residual_df(design: Design, *, levels: bool, change: bool) -> _ResidualDf:
    """Residual degrees of freedom of the linear predictor of :func:`add_did_terms`.

    The mean of a structure is linear in its effects: intercept, period effects, group
    effect, DiD (or event-study effects), covariate terms, and the pair effects, ward
    levels (``levels``) and ward changes (``change``) it keeps.  The observations it
    leaves to an observation-level term (an overdispersion term, a residual SD) are
    ``n_obs`` minus the rank of that design matrix; when none is left, the mean can fit
    every observation exactly and the term is told apart from it only by the prior or its
    distribution's shape.  Random effects count as free here, as in the ward-level rule.

    Cheap for any panel size: the ward (ward x post with ``change``) or pair indicators
    are absorbed by demeaning the few other columns within them; each observation's
    leverage ``h`` (``1 / cell size`` plus that of the demeaned columns) splits the
    residual degrees of freedom, ``sum(1 - h)``, between the groups.
    """
    n = design.n_obs
    ward_idx = np.asarray(design.ward_idx, dtype="int64")
    post = np.asarray(design.post, dtype=float)
    treated = np.asarray(design.treated, dtype=float)
    period_idx = np.asarray(design.period_idx, dtype="int64")
    if levels:
        has_change = np.asarray(design.ward_has_change, dtype="int64")[ward_idx] if change else 0
        cell = ward_idx * 2 + has_change * post.astype("int64")
    elif design.pair_idx is not None:
        cell = np.asarray(design.pair_idx, dtype="int64")
    else:
        cell = np.zeros(n, dtype="int64")
    cell = np.unique(cell, return_inverse=True)[1].ravel()
    size = np.bincount(cell).astype(float)

    cols = [(period_idx == t).astype(float) for t in range(1, len(design.coords["period"]))]
    cols.append(treated)
    if design.event_study:
        cols += [treated * (period_idx == t) for t in range(len(design.coords["period"]))
                 if t != design.reference_period]
    else:
        cols.append(treated * post)
    Z = np.column_stack(cols)
    if design.covariates:
        x = np.asarray(design.cov_ward, dtype=float)[ward_idx] + np.asarray(design.cov_tv, dtype=float)
        Z = np.column_stack([Z, x, post[:, None] * x])
        if design.interact:
            Z = np.column_stack([Z, (treated * post)[:, None] * x[:, design.interact_idx]])
    # absorb the cell indicators: demean every column within its cell
    means = np.stack([np.bincount(cell, weights=z) for z in Z.T], axis=1) / size[:, None]
    Zd = Z - means[cell]
    u, s, _ = np.linalg.svd(Zd, full_matrices=False)
    tol = s.max(initial=0.0) * max(Zd.shape) * np.finfo(float).eps
    keep = s > max(tol, 1e-9)
    rank = len(size) + int(keep.sum())
    leverage = 1.0 / size[cell] + np.sum(u[:, keep] ** 2, axis=1)
    group = np.asarray(design.ward_group)[ward_idx]
    by_group = {g: float(np.sum(1.0 - leverage[group == g])) for g in ("nbi", "benchmark")}
    return _ResidualDf(n_obs=n, n_mean=rank, by_group=by_group)


def resolve_structure(design: Design, cfg: ModelConfig) -> tuple:
    """The model structure the panel can identify, the resolved config and why.

    Decided from the panel, in this order (each rule is stated in the returned notes,
    which every fit stores and ``nbdid fit`` prints):

    1. **One ward per group**: a ward's own level and change cannot be told apart from
       the group effect and the DiD, so the model has fixed effects only (no random
       ward levels, no ward change).
    2. **Pairs**: pair effects need at least :data:`MIN_PAIRS` matched sets.
    3. **Ward change**: only wards seen both before and after the initiative can have
       a change of their own; with none (a repeated cross-section) the ward change is
       off.  Group-specific change SDs need :data:`MIN_WARDS_GROUP_SD` such wards in
       each group (else one shared SD).
    4. **Observation-level term** (``overdispersion``): identified when at least half
       the wards have more observations than ward-level effects (a level, and a change
       when modelled) *and* the panel has more observations than the mean has effects
       it can tell apart (intercept, period, group, DiD or event-study effects,
       covariate terms, and the pair effects, ward levels and ward changes kept:
       :func:`_residual_df`).  So one ward per group over two periods (4 observations,
       4 fixed effects) gets none, whatever ``ward_change`` says.  ``"auto"`` uses
       ``"negbin"`` when identified and ``"none"`` otherwise.  A family whose likelihood
       needs an estimated SD (a Gaussian outcome without a known SD,
       :meth:`~nbdid.families.Family.needs_obs_term`) keeps its residual and drops the
       ward change instead (then, if still needed, the random ward levels); when even
       the fixed effects use every observation the panel is refused
       (:class:`~nbdid.errors.DesignError`), and a residual SD per group
       (``group_change_sd`` without a ward change) becomes one shared SD unless each
       group's observations leave at least one residual degree of freedom.  An explicit
       choice the panel cannot identify is kept (the user asked for it) with a note
       saying so.
    5. **Priors**: unset priors take the data-based defaults and ``prior_scale`` is
       applied (:func:`nbdid.models.priors.resolve_priors`).

    Parameters
    ----------
    design
        The model inputs.
    cfg
        A :class:`nbdid.config.ModelConfig`.

    Returns
    -------
    tuple
        ``(resolved ModelConfig, notes)`` (``notes`` a tuple of one-line strings).
        Resolving a resolved config returns it unchanged.
    """
    notes: list[str] = list(design.notes)
    sizes = {g: int(np.sum(design.ward_group == g)) for g in ("nbi", "benchmark")}
    has_change = np.asarray(design.ward_has_change, dtype=bool)
    ward_effects, ward_change = cfg.ward_effects, cfg.ward_change
    if ward_effects and sizes["nbi"] == 1 and sizes["benchmark"] == 1:
        ward_effects = False
        notes.append("fixed effects only: each group has one ward, whose own level and change "
                     "cannot be told apart from the group effect and the DiD")
    if not ward_effects and ward_change:
        ward_change = False  # a ward change needs ward effects (said above, or asked for)
    if ward_change and not has_change.any():
        ward_change = False
        notes.append("no ward change: no ward is seen both before and after the initiative "
                     "(repeated cross-section); the DiD compares group x period means")
    elif ward_change and not has_change.all():
        n = int((~has_change).sum())
        notes.append(f"{n} ward(s) seen only before or only after the initiative have no "
                     "ward change of their own")
    group_sd = cfg.group_change_sd
    if ward_change and group_sd:
        per_group = {g: int(np.sum(has_change & (design.ward_group == g))) for g in sizes}
        small = [g for g, n in per_group.items() if n < MIN_WARDS_GROUP_SD]
        if small:
            group_sd = False
            notes.append(f"one ward-change SD for both groups: the {small[0]} group has "
                         f"{per_group[small[0]]} ward(s) seen before and after (group-specific "
                         f"SDs need {MIN_WARDS_GROUP_SD})")

    # observation-level term: each ward needs more observations than its own effects,
    # and the panel more observations than all the mean's effects together
    fam = design.family
    n_obs = np.bincount(design.ward_idx, minlength=len(design.coords["ward"]))

    def per_ward(change: bool, levels: bool) -> bool:
        effects = (1 if levels else 0) + (has_change.astype(int) if change else 0)
        return bool(np.mean(n_obs > effects) >= 0.5)

    def unidentified(change: bool, levels: bool) -> str | None:
        """Why the panel cannot identify an observation-level term (None: it can)."""
        if not per_ward(False, levels):
            return "each ward is seen once"
        if not per_ward(change, levels):
            return "with a ward change, each ward-period already has its own effect"
        df = _residual_df(design, levels=levels, change=change)
        if df.total < 1:
            return f"the {df.n_obs} observations are all used by the model's {df.n_mean} mean effects"
        return None

    def identified(change: bool, levels: bool) -> bool:
        return unidentified(change, levels) is None

    od = cfg.overdispersion
    if fam.needs_obs_term(design.arrays):
        if not identified(ward_change, ward_effects) and ward_change:
            ward_change = False
            notes.append(f"no ward change: the {fam.name} likelihood has no known SD, so each "
                         "ward-period needs a residual, and with a ward change each ward-period "
                         "would already have its own effect; the residual SD takes the ward "
                         "change's place" + (" (one per group)" if group_sd else ""))
        why = unidentified(ward_change, ward_effects)
        if why is not None and ward_effects:
            ward_effects = False
            notes.append(f"no random ward levels: each ward is seen once and the {fam.name} "
                         "residual already is a ward-level term" if why == "each ward is seen once"
                         else f"no random ward levels: the {fam.name} likelihood has no known SD, "
                         f"and with ward levels {why}; the residual SD takes their place")
        why = unidentified(ward_change, ward_effects)
        if why is not None:
            raise DesignError(f"{design.indicator}: a {fam.name} outcome without a known sd needs "
                              f"an estimated residual SD, but {why}, leaving none to estimate it; "
                              "give the sd column, or more wards or periods")
        if group_sd and not ward_change:  # one residual SD per group: each needs residuals
            by_group = _residual_df(design, levels=ward_effects, change=False).by_group
            short = [g for g in ("nbi", "benchmark") if by_group[g] < 1.0 - 1e-9]
            if short:
                group_sd = False
                notes.append(f"one residual SD for both groups: the {short[0]} group's "
                             "observations leave less than one degree of freedom beyond the "
                             "mean effects, too few for an SD of its own")
        od = "none"  # the family's residual is its observation-level term
    elif od == "auto":
        why = unidentified(ward_change, ward_effects)
        od = "negbin" if why is None else "none"
        if why is not None and not why.startswith("with a ward change"):
            notes.append(f"no observation-level term: {why}, so a ward's level already is its "
                         "observation's own effect" if why == "each ward is seen once"
                         else f"no observation-level term: {why}, leaving none to identify it")
    elif od != "none" and not identified(ward_change, ward_effects):
        why = unidentified(ward_change, ward_effects)
        notes.append(f"overdispersion = '{od}' as asked, but the panel cannot identify it ({why}): "
                     "it is told apart from the ward effects only by its distribution's shape; "
                     "'auto' would use none")
    unit = fam.prior_unit(design.arrays)
    priors = resolve_priors(cfg.priors, centre=link_centre(design), unit=unit,
                            prior_scale=cfg.prior_scale)
    out = dataclasses.replace(cfg, ward_effects=ward_effects, ward_change=ward_change,
                              group_change_sd=group_sd, overdispersion=od, priors=priors,
                              prior_scale=1.0)
    return out, tuple(notes)


def forms_for(design: Design, cfg: ModelConfig) -> Design:
    """``design`` with its change form adapted to the resolved ``cfg``: a ``"mixed"``
    change (each group in its own form, chosen from each group's own spread of change)
    is only right with group-specific change SDs; with one shared SD every ward's change
    has the shared spread, and the pooled choice (centred) applies."""
    if design.change_parameterization == "mixed" and not (cfg.ward_change and cfg.group_change_sd):
        return replace(design, change_parameterization="centred", change_centred=None)
    return design


def resolve_model_config(design: Design, cfg: ModelConfig):
    """``cfg`` (a ModelConfig) resolved for ``design`` (:func:`resolve_structure`)."""
    return resolve_structure(design, cfg)[0]


def structure_text(design: Design, cfg: ModelConfig) -> str:
    """One line describing the resolved model structure of ``cfg`` for ``design``.

    E.g. ``"ward levels (centred), ward change (centred; SD per group), pair effects
    (non-centred); no observation-level term; covariates: imd (ward, x post)"``.
    """
    parts = []
    if cfg.ward_effects:
        parts.append(f"ward levels ({design.parameterization.replace('_', '-')})")
    else:
        parts.append("fixed effects only (no random ward levels)")
    if cfg.ward_change:
        sd = "SD per group" if cfg.group_change_sd else "one SD"
        corr = "; correlated with level" if cfg.ward_corr else ""
        parts.append(f"ward change ({design.change_parameterization.replace('_', '-')}; {sd}{corr})")
    if design.pair_effects:
        parts.append(f"pair effects ({design.pair_parameterization.replace('_', '-')})")
    text = ", ".join(parts)
    od = cfg.overdispersion
    if design.family.needs_obs_term(design.arrays):
        per = " per group" if (cfg.group_change_sd and not cfg.ward_change) else ""
        text += f"; residual SD estimated{per}"
    else:
        text += "; no observation-level term" if od == "none" else f"; observation-level term {od}"
    if design.covariates:
        cov = ", ".join(
            f"{c} ({k.replace('_', '-')}{', x treatment x post' if c in design.interact else ''})"
            for c, k in zip(design.covariates, design.covariate_kind, strict=True))
        text += f"; covariates (main effect and x post): {cov}"
    if design.event_study:
        text += "; event study"
    return text


def link_centre(design: Design) -> float:
    """Data-based centre of the intercept prior: the link of the pooled pre-period value.

    Centring the intercept prior on the observed pooled baseline (logit of the pooled
    proportion, log of the pooled rate, mean log price) keeps ``intercept_sd`` a
    statement about *deviations* from the data's scale, whatever the indicator's unit.
    """
    return design.family.link_centre(design.arrays, design.post == 0)


WARD_DIM_DATA = ("ward_treated", "ward_pair_idx", "ward_has_change")
"""``pm.Data`` containers with dims ``ward`` (all others are scalars or dims ``obs``)."""

FREE_DIM_DATA = ("y_distinct",)
"""``pm.Data`` containers without a dim: lookup tables whose length changes with the data
(the distinct counts of :meth:`nbdid.families.poisson.Poisson.data_containers`)."""

DATA_DIMS: dict[str, tuple[str, ...]] = {"cov_ward": ("ward", "covariate"), "cov_tv": ("obs", "covariate")}
"""``pm.Data`` containers with two dims."""


def model_data(design: Design, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Values of every ``pm.Data`` container of the model of ``design`` under the
    resolved ``cfg``: the design's arrays and the priors' parameters
    (:func:`nbdid.models.priors.prior_data`).  A compiled model is refitted on new data
    or other prior scales by setting these."""
    out = {**design.data_arrays(), **prior_data(cfg.priors)}
    weight = level_weights(design, cfg)
    if weight is not None:
        out["level_weight"] = weight
    return out


def level_weights(design: Design, cfg: ModelConfig) -> np.ndarray | None:
    """Each observation's weight in its ward's mean level, or ``None`` (levels as before).

    Each of a ward's observations pins down its level *plus* that observation's other
    terms: counts after the start pin level + change, those of period ``t`` level +
    ``period_effect[t]``.  The level alone is then correlated with the ward's change
    (about -0.7 with equal counts before and after) and, through all wards at once,
    with the period effects.  A diagonal mass matrix absorbs neither (hundreds of
    leapfrog steps a draw; docs/scale.md).  With ward changes and centred ward levels,
    :func:`add_did_terms` therefore samples each ward's *mean level* ::

        ward_mean_c[w] = ward_level[w] + sum_i weight[i] * (eta[i] - ward_level[w])

    (the sum over the ward's observations ``i``, ``eta`` the linear predictor) instead of
    its level, given the change and everything else: ``ward_mean_c ~ Normal(mean_level
    + sum_i weight[i] * (eta[i] - ward_level[w]), sigma_ward)``, the level's own
    distribution shifted by terms that do not depend on it (the Jacobian is 1), so the
    model is the same.  The weight is the observation's share of the ward level's
    precision in the normal approximation of the posterior,

        weight[i] = (1 / v[i]) / (sum_{j in ward} 1 / v[j] + 1 / sigma_ward**2)

    with ``v`` the sampling variances (:func:`sampling_variance`) and ``sigma_ward**2``
    the moment estimate of the level variance (within pairs; :func:`variance_components`);
    the mean level is then uncorrelated with the ward's change and with the period
    effects.  Any weights give the same model, so estimates are enough.  Held-out
    observations (``obs_weight`` 0) weigh nothing.

    Returns ``None`` unless ``cfg.mean_level`` (national fits; off by default), and
    without ward changes, with non-centred levels, or with a
    level-change correlation (``cfg.ward_corr``: its Cholesky form writes the change
    given the level).
    """
    if not (cfg.mean_level and cfg.ward_effects and cfg.ward_change) or cfg.ward_corr \
            or design.parameterization != "centred":
        return None
    v = np.asarray(sampling_variance(design), dtype=float)
    ok = np.isfinite(v) & (v > 0)
    prec = np.where(ok, 1.0 / np.where(ok, v, 1.0), 0.0)
    if design.obs_weight is not None:
        prec = prec * np.asarray(design.obs_weight, dtype=float)
    vc = variance_components(design)
    var = vc["level"] - vc["pair"] if design.pair_effects and np.isfinite(vc["pair"]) else vc["level"]
    if not (np.isfinite(var) and var > 0):
        return np.zeros(design.n_obs)
    p_ward = np.bincount(design.ward_idx, weights=prec, minlength=len(design.coords["ward"]))
    return (prec / (p_ward[design.ward_idx] + 1.0 / var)).astype("float64")


def _dims(name: str, arr: np.ndarray) -> tuple[str, ...] | str | None:
    if name in DATA_DIMS:
        return DATA_DIMS[name]
    if name in WARD_DIM_DATA:
        return "ward"
    if name in FREE_DIM_DATA or name.startswith("prior_") or np.ndim(arr) == 0:
        return None
    return "obs"


def add_did_terms(design: Design, cfg: ModelConfig):
    """Add the shared DiD linear predictor to the current PyMC model context.

    Ward levels are nested in groups and pairs, and (``cfg.ward_change``, the
    default) each ward has its own change after the initiative::

        ward_level[w]  ~ Normal(mu[w], sigma_ward)
        mu[w]          = intercept + group_effect * nbi[w] + pair_effect[pair[w]]
                         + sum_k beta_cov[k] * x[w,k]                 (ward-level covariates)
        ward_change[w] ~ Normal(rho * s[w] / sigma_ward * ward_effect[w], s[w]^2 (1 - rho^2))
        s[w]           = sigma_change_nbi or sigma_change_benchmark   (group_change_sd)
                         or sigma_change
        pair_effect[k] ~ Normal(0, sigma_pair)
        eta[w,t]       = ward_level[w] + period_effect[t]
                         + (ward_change[w] + sum_k beta_cov_post[k] x[w,k]) * post[t]
                         + (did + sum_j beta_mod[j] x[w,j]) * nbi[w] * post[t]
                         + (ward-period covariates: the same three terms per observation)

    ``rho`` (``ward_corr``) is 0 unless ``cfg.ward_corr``: then ``(rho + 1) / 2 ~
    Beta(lkj_eta, lkj_eta)``, the LKJ(``lkj_eta``) prior of a 2 x 2 correlation.  Without
    ``ward_change`` the ward level alone varies; without ``ward_effects`` the model has
    fixed effects only.  A ward seen in one period only has no change of its own
    (``design.ward_has_change``).  An event study uses ``did_period[t] * nbi[w]``
    instead of ``did * nbi[w] * post[t]``.  Every prior is :func:`nbdid.families.priors.add_prior`
    with its parameters in a ``pm.Data`` container (``prior_<key>``).

    Ward levels, ward changes and pair effects are each centred or non-centred
    (``sigma * z``) as ``design.parameterization``, ``design.change_parameterization``
    and ``design.pair_parameterization`` say (see :func:`choose_parameterization`); the
    change is written given the level (Cholesky form), so any mix of forms is the same
    model.  ``ward_effect`` (the ward's deviation from its group, pair and covariate
    mean), ``ward_level`` and ``ward_change`` (the deviation of the ward's change from
    its group's mean change) are stored either way.

    Parameters
    ----------
    design
        The model inputs.
    cfg
        A resolved :class:`nbdid.config.ModelConfig` (:func:`resolve_model_config`).

    Returns
    -------
    tuple
        ``(eta, data)``: the linear predictor (length ``obs``) and a dict of the
        ``pm.Data`` containers created.
    """
    # imported here: PyMC takes seconds to import; only building a model needs it;
    # PyTensor loads with PyMC, on first use only
    import pymc as pm
    import pytensor.tensor as pt

    P = cfg.priors
    centred = design.parameterization == "centred"
    n_period = len(design.coords["period"])
    data = {name: pm.Data(name, arr, dims=_dims(name, arr)) for name, arr in model_data(design, cfg).items()}
    n_ward = len(design.coords["ward"])
    ward_idx, period_idx = data["ward_idx"], data["period_idx"]
    if design.grid:
        # the complete grid in period-major blocks (Design.grid): ward terms put in the
        # blocks' ward order (an index of one block) and tiled, period terms repeated, a
        # ward's sum a reshaped sum; their gradients are sums and broadcasts, where an
        # index of every observation costs a scatter (on a 7,177 x 11 panel 0.6 against
        # 1.2 ms an evaluation, measured in PyTensor's Numba mode)
        block = ward_idx[:n_ward]

        def by_ward(v):
            return pt.tile(v[block], n_period)

        def by_period(v):
            return pt.repeat(v, n_ward)

        def ward_sum(a):
            return pt.inc_subtensor(pt.zeros(n_ward)[block], a.reshape((n_period, n_ward)).sum(axis=0))
    else:
        def by_ward(v):
            return v[ward_idx]

        def by_period(v):
            return v[period_idx]

        def ward_sum(a):
            return pt.inc_subtensor(pt.zeros(n_ward)[ward_idx], a)

    def prior(name: str, key: str, **kw):
        return add_prior(name, getattr(P, key), data[data_name(key)], **kw)

    intercept = prior("intercept", "intercept")
    later = np.flatnonzero(design.period_post == 1)[1:]  # post periods after the first
    if (len(later) and cfg.ward_effects and cfg.ward_change
            and design.change_parameterization in ("centred", "mixed")):
        period_raw = _period_steps(design, P.period, data[data_name("period")])
    else:
        period_raw = prior("period_raw", "period", shape=n_period - 1)
    period_effect = pm.Deterministic(
        "period_effect", pt.concatenate([pt.zeros(1), period_raw]), dims="period"
    )
    group_effect = prior("group_effect", "group")
    ward_treated = data["ward_treated"]
    mean_level = intercept + group_effect * ward_treated
    treated, post = data["treated"], data["post"]

    # covariates: ward-level ones per ward (inside the level and change means, so the
    # centred forms keep their hierarchical centring), ward-period ones per observation
    change_extra = pt.zeros(n_ward)  # covariate part of each ward's mean change
    obs_extra = pt.zeros(design.n_obs)
    if design.covariates:
        beta = prior("beta_cov", "covariate", dims="covariate")
        beta_post = prior("beta_cov_post", "covariate", dims="covariate")
        xw, xt = data["cov_ward"], data["cov_tv"]
        mean_level = mean_level + pt.dot(xw, beta)
        change_extra = change_extra + pt.dot(xw, beta_post)
        obs_extra = obs_extra + pt.dot(xt, beta) + post * pt.dot(xt, beta_post)
        if design.interact:
            idx = design.interact_idx
            beta_mod = prior("beta_mod", "modification", dims="interaction")
            change_extra = change_extra + ward_treated * pt.dot(xw[:, idx], beta_mod)
            obs_extra = obs_extra + treated * post * pt.dot(xt[:, idx], beta_mod)

    if design.pair_effects:
        sigma_pair = prior("sigma_pair", "sigma_pair")
        if design.pair_parameterization == "centred":
            pair_effect = pm.Normal("pair_effect", 0.0, sigma_pair, dims="pair")
        else:
            pair_z = pm.Normal("pair_z", 0.0, 1.0, dims="pair")
            pair_effect = pm.Deterministic("pair_effect", sigma_pair * pair_z, dims="pair")
        mean_level = mean_level + pair_effect[data["ward_pair_idx"]]
    if design.event_study:
        ref = design.reference_period
        did_raw = prior("did_raw", "did", shape=n_period - 1)
        did_period = pm.Deterministic(
            "did_period",
            pt.concatenate([did_raw[:ref], pt.zeros(1), did_raw[ref:]]),
            dims="period",
        )
        post_w = design.period_post / design.period_post.sum()
        did = pm.Deterministic("did", pt.sum(did_period * post_w))
        did_term = by_period(did_period) * treated
    else:
        did = prior("did", "did")
        did_term = did * treated * post
    if not cfg.ward_effects:
        ward_level = pm.Deterministic("ward_level", mean_level, dims="ward")
        pm.Deterministic("ward_effect", pt.zeros_like(mean_level), dims="ward")
        eta = (by_ward(ward_level) + by_period(period_effect) + did_term
               + by_ward(change_extra) * post + obs_extra)
        return eta, data

    sigma_ward = prior("sigma_ward", "sigma_ward")
    if not cfg.ward_change:
        if centred:
            ward_level = pm.Normal("ward_level", mean_level, sigma_ward, dims="ward")
            pm.Deterministic("ward_effect", ward_level - mean_level, dims="ward")
        else:
            ward_z = pm.Normal("ward_z", 0.0, 1.0, dims="ward")
            ward_effect = pm.Deterministic("ward_effect", sigma_ward * ward_z, dims="ward")
            ward_level = pm.Deterministic("ward_level", mean_level + ward_effect, dims="ward")
        eta = (by_ward(ward_level) + by_period(period_effect) + did_term
               + by_ward(change_extra) * post + obs_extra)
        return eta, data

    # each ward's change SD, and the level-change correlation
    if cfg.group_change_sd:
        sc_b = prior("sigma_change_benchmark", "sigma_change")
        sc_n = prior("sigma_change_nbi", "sigma_change")
        sc = sc_b + (sc_n - sc_b) * ward_treated
    else:
        sc = prior("sigma_change", "sigma_change") * pt.ones(len(design.coords["ward"]))
    if cfg.ward_corr:
        corr_beta = pm.Beta("ward_corr_beta", alpha=cfg.lkj_eta, beta=cfg.lkj_eta)
        rho = pm.Deterministic("ward_corr", 2.0 * corr_beta - 1.0)
        c10, c11 = rho * sc, sc * pt.sqrt(1.0 - rho**2)
    else:
        c10, c11 = pt.zeros(()), sc
    # sequential (Cholesky) form: level, then change given level, each centred or not;
    # with level weights (:func:`level_weights`) the change comes first and the centred
    # level is written through each ward's precision-weighted mean level
    weight = data.get("level_weight")
    if weight is not None:
        z_level = None
        level_term = pt.zeros(())
    else:
        if centred:
            ward_level_rv = pm.Normal("ward_level_c", mean_level, sigma_ward, dims="ward")
            z_level = (ward_level_rv - mean_level) / sigma_ward
        else:
            z_level = pm.Normal("ward_level_z", 0.0, 1.0, dims="ward")
        level_term = c10 * z_level
    post_share = design.period_post / design.period_post.sum()
    if design.change_parameterization in ("centred", "mixed"):
        # hierarchical centring: the common change (the mean period effect of the post
        # periods), the DiD and the covariate terms are the *mean* of the ward changes
        # instead of being added in the likelihood; otherwise precise ward data leave a
        # narrow ridge between them and every ward change (R-hat 1.2 on the crime panel).
        # With several post periods, the first one's effect alone would leave that ridge
        # between the later ones and every ward change (period effects' bulk ESS 40 of
        # 600 draws on a 580-ward x 11-period panel)
        # with level weights, the mean period effect of the pre periods likewise goes
        # into the level's mean (with one pre period it is period_effect[0] = 0)
        pre_mean = pt.zeros(())
        if weight is not None:
            pre_mean = pt.dot(period_effect, pt.as_tensor((1 - design.period_post) / (1 - design.period_post).sum()))
        common = pt.dot(period_effect, pt.as_tensor(post_share)) - pre_mean
        change_mean = common + level_term + change_extra
        if not design.event_study:
            change_mean = change_mean + did * ward_treated
        if design.change_parameterization == "centred":
            total_change = pm.Normal("ward_change_c", change_mean, c11, dims="ward")
        else:
            # each group in its own form: a centred ward's change is ward_change_c, a
            # non-centred ward's is change_mean + sd * ward_change_z; the other
            # variable of each ward is an independent standard normal the data never see
            m = pt.as_tensor(change_centred_wards(design).astype("float64"))
            c = pm.Normal("ward_change_c", m * change_mean, m * c11 + (1.0 - m), dims="ward")
            z = pm.Normal("ward_change_z", 0.0, 1.0, dims="ward")
            total_change = m * c + (1.0 - m) * (change_mean + c11 * z)
        dev_change = total_change - change_mean + level_term
        # the ward's own change as the likelihood sees it, and the other terms
        lik_change = total_change
        period_lik = period_effect - pre_mean - common * pt.as_tensor(design.period_post.astype("float64"))
        rest = by_period(period_lik) + obs_extra
        if design.event_study:
            rest = rest + did_term
    else:
        z_change = pm.Normal("ward_change_z", 0.0, 1.0, dims="ward")
        dev_change = level_term + c11 * z_change
        if design.partial_wards:
            dev_change = dev_change * data["ward_has_change"]
        lik_change = dev_change + change_extra
        pre_mean = pt.zeros(())
        rest = by_period(period_effect) + did_term + obs_extra
    other = by_ward(lik_change) * post + rest  # each observation's terms beside its level
    if weight is not None:
        # each ward's mean level (level_weights): what its observations pin down, where
        # the level alone moves against its change and the period effects
        shift = ward_sum(weight * other)
        ward_mean = pm.Normal("ward_mean_c", mean_level + pre_mean + shift, sigma_ward, dims="ward")
        dev_level = ward_mean - shift - pre_mean - mean_level
    else:
        dev_level = sigma_ward * z_level
    eta = by_ward(mean_level + pre_mean + dev_level) + other
    pm.Deterministic("ward_effect", dev_level, dims="ward")
    pm.Deterministic("ward_level", mean_level + dev_level, dims="ward")
    pm.Deterministic("ward_change", dev_change, dims="ward")
    return eta, data


def _period_steps(design: Design, period_prior, params):
    """``period_raw`` (the effects of periods 1, 2, ...) with the post periods after the
    first sampled as steps from the first post period's effect.

    With the ward changes centred on the common change, the mean effect of the post
    periods is pinned down only as the mean of hundreds of ward changes, while the
    differences between post periods are pinned down by every ward's counts: sampled
    one by one, the post periods' effects are correlated 0.96 (bulk ESS of 11 % of the
    draws on a 580-ward x 11-period panel).  Each later post period's effect is
    therefore written as ``period_step = effect - effect of the first post period``,
    whose prior is the period prior moved by minus that effect (a location prior, so
    this is the same prior: the Jacobian is 1).  ``period_raw`` keeps its values.
    """
    # imported here: PyMC takes seconds to import; only building a model needs it;
    # PyTensor loads with PyMC, on first use only
    import pymc as pm
    import pytensor.tensor as pt

    post = np.flatnonzero(design.period_post == 1)
    base_t = [t for t in range(1, len(design.period_post)) if t not in set(post[1:])]
    base = add_prior("period_base", period_prior, params, shape=len(base_t))
    first = base[base_t.index(int(post[0]))]
    loc = PRIOR_PARAMS[period_prior.dist].index("mu")
    moved = pt.set_subtensor(params[loc], params[loc] - first)
    step = add_prior("period_step", period_prior, moved, shape=len(post) - 1)
    # period_raw[j] is the effect of period j + 1
    order = np.argsort(np.concatenate([np.asarray(base_t), post[1:]]))
    return pm.Deterministic("period_raw", pt.concatenate([base, first + step])[order])


def _covariate_terms(p, design: Design, *, treatment: bool) -> np.ndarray | float:
    """NumPy covariate terms of the linear predictor outside ``ward_level``."""
    if not design.covariates:
        return 0.0
    xw = np.asarray(design.cov_ward, dtype=float)
    xt = np.asarray(design.cov_tv, dtype=float)
    post = design.post
    bp = p["beta_cov_post"].values
    out = (bp @ xw.T)[..., design.ward_idx] * post + p["beta_cov"].values @ xt.T + (bp @ xt.T) * post
    if treatment and design.interact:
        idx = design.interact_idx
        bm = p["beta_mod"].values
        mod = (bm @ xw[:, idx].T)[..., design.ward_idx] + bm @ xt[:, idx].T
        out = out + mod * design.treated * post
    return out


def linear_predictor_draws(posterior: xr.Dataset, design: Design, *, counterfactual: bool = False):
    """The linear predictor per draw and observation, recomputed from a posterior.

    Parameters
    ----------
    posterior
        ``idata.posterior`` (xarray Dataset with the variables of :func:`add_did_terms`).
    design
        The design the posterior was fitted to.
    counterfactual
        Drop the treatment terms: the DiD (or event-study effects) and any covariate x
        treatment x post effect modification (the "no initiative effect" world).

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
    eta = eta + _covariate_terms(p, design, treatment=not counterfactual)
    if not counterfactual:
        if design.event_study:
            eta = eta + p["did_period"].values[..., design.period_idx] * design.treated
        else:
            eta = eta + p["did"].values[..., None] * design.treated * design.post
    return eta


def change_sd_draws(posterior: xr.Dataset, design: Design) -> np.ndarray:
    """Each ward's change SD per draw, ``(chain, draw, ward)`` (group-specific or shared)."""
    p = posterior
    nbi = design.ward_treated.astype(bool)
    if "sigma_change_nbi" in p:
        return np.where(nbi, p["sigma_change_nbi"].values[..., None],
                        p["sigma_change_benchmark"].values[..., None])
    return np.broadcast_to(p["sigma_change"].values[..., None], p["sigma_change"].shape + (len(nbi),))


def redraw_ward_change(posterior: xr.Dataset, design: Design, rng: np.random.Generator) -> np.ndarray:
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
    sc = change_sd_draws(p, design)
    old = p["ward_change"].values
    if "ward_corr" in p:  # the change given the ward's level deviation (kept for this)
        rho = p["ward_corr"].values[..., None]
        cond_mean = rho * sc / np.maximum(sw, 1e-12) * p["ward_effect"].values
    else:
        rho, cond_mean = np.zeros_like(sw), 0.0
    cond_sd = sc * np.sqrt(np.clip(1.0 - rho**2, 0.0, None))
    new = (cond_mean + cond_sd * rng.standard_normal(old.shape)) * design.ward_has_change
    return (new - old)[..., design.ward_idx] * design.post


_INDEX_VARS = ("ward_idx", "period_idx", "treated", "post", "pair_idx")


def design_to_dataset(design: Design):
    """The design as an xarray Dataset (stored as the ``constant_data`` group of a fit).

    With it a saved fit can be re-analysed without the panel:
    ``design_from_dataset(az.from_netcdf(path).constant_data)``.
    """
    # imported here: xarray loads only when results are built or written (table-only commands skip it)
    import xarray as xr

    obs_vars = {
        "ward_idx": design.ward_idx, "period_idx": design.period_idx,
        "treated": design.treated, "post": design.post,
    }
    obs_vars.update(design.arrays)
    if design.pair_idx is not None:
        obs_vars["pair_idx"] = design.pair_idx
    data = {k: ("obs", np.asarray(v)) for k, v in obs_vars.items()}
    data["ward_group"] = ("ward", np.asarray(design.ward_group, dtype=str))
    data["period_post"] = ("period", np.asarray(design.period_post))
    if design.ward_pair_idx is not None:
        data["ward_pair_idx"] = ("ward", design.ward_pair_idx)
    data["ward_has_change"] = ("ward", np.asarray(design.ward_has_change))
    if design.change_centred is not None:
        data["change_centred"] = ("ward", np.asarray(design.change_centred))
    if design.covariates:
        data["cov_ward"] = (("ward", "covariate"), np.asarray(design.cov_ward))
        data["cov_tv"] = (("obs", "covariate"), np.asarray(design.cov_tv))
        data["cov_centre"] = ("covariate", np.asarray(design.cov_centre))
        data["cov_scale"] = ("covariate", np.asarray(design.cov_scale))
        data["covariate_kind"] = ("covariate", np.asarray(design.covariate_kind, dtype=str))
    coords = {k: np.asarray(v) for k, v in design.coords.items()}
    attrs = {
        "indicator": design.indicator,
        "family": design.family.name,
        "event_study": int(design.event_study),
        "reference_period": -1 if design.reference_period is None else design.reference_period,
        "synthetic": int(design.synthetic),
        "parameterization": design.parameterization,
        "change_parameterization": design.change_parameterization,
        "pair_parameterization": design.pair_parameterization,
        "interact": ",".join(design.interact),
        "notes": "\n".join(design.notes),
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
              for k in ("ward", "pair", "period", "obs", "covariate", "interaction") if k in ds.coords}
    for k in ("covariate", "interaction"):
        if k in coords:
            coords[k] = [str(c) for c in coords[k]]
    coords["ward"] = [str(w) for w in coords["ward"]]
    coords["period"] = [str(p) for p in coords["period"]]
    ref = int(ds.attrs.get("reference_period", -1))
    arrays = {str(k): ds[k].values for k in ds.data_vars
              if ds[k].dims == ("obs",) and k not in _INDEX_VARS}
    covs = tuple(coords.get("covariate", ()))
    interact = tuple(c for c in str(ds.attrs.get("interact", "")).split(",") if c)
    cov = {}
    if covs:
        cov = {"covariate_kind": tuple(str(k) for k in ds["covariate_kind"].values),
               "cov_ward": ds["cov_ward"].values, "cov_tv": ds["cov_tv"].values,
               "cov_centre": ds["cov_centre"].values, "cov_scale": ds["cov_scale"].values}
    notes = tuple(n for n in str(ds.attrs.get("notes", "")).split("\n") if n)
    return Design(
        indicator=str(ds.attrs["indicator"]),
        family=get_family(str(ds.attrs["family"])),
        coords=coords,
        ward_idx=get("ward_idx", "int64"),
        pair_idx=get("pair_idx", "int64"),
        ward_pair_idx=get("ward_pair_idx", "int64"),
        period_idx=get("period_idx", "int64"),
        treated=get("treated", "int64"),
        post=get("post", "int64"),
        ward_group=get("ward_group", str),
        period_post=get("period_post", "int64"),
        arrays=arrays,
        event_study=bool(int(ds.attrs.get("event_study", 0))),
        reference_period=None if ref < 0 else ref,
        synthetic=bool(int(ds.attrs.get("synthetic", 0))),
        parameterization=str(ds.attrs.get("parameterization", "centred")),
        change_parameterization=str(ds.attrs.get("change_parameterization", "centred")),
        pair_parameterization=str(ds.attrs.get("pair_parameterization", "non_centred")),
        ward_has_change=get("ward_has_change", "int64"),
        change_centred=get("change_centred", "int64"),
        covariates=covs,
        interact=interact,
        **cov,
        notes=notes,
        frame=None,
    )
