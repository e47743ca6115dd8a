"""Fitting indicators: panel in, posterior, estimands, diagnostics and figures out.

:func:`fit` fits one indicator and returns a :class:`FitResult`; :func:`fit_all` fits
several indicators of one panel with one compiled-model cache, validating the panel
once.  ``nbdid fit``, ``nbdid run``, ``nbdid compare`` and the sensitivity sweep all
fit through these two functions.

>>> import nbdid                                                    # doctest: +SKIP
>>> res = nbdid.fit(nbdid.default_panel(), "crime", draws=500)      # doctest: +SKIP
>>> res.summary[["estimand", "scale", "mean", "q2.5", "q97.5"]]     # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import arviz as az
import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.figure import Figure
from scipy.special import logsumexp

from nbdid.analysis.comparison import unit_did_row
from nbdid.analysis.diagnostics import diagnose, mark_gate, ppc_replicates
from nbdid.analysis.estimands import summarise_effects, trajectory_table
from nbdid.analysis.figure_tables import ppc_statistics, ppc_values
from nbdid.analysis.wards import group_change_table, pair_difference_table, ward_change_table
from nbdid.config import ModelConfig, Pointwise, RunConfig, SamplerConfig, from_dict, to_toml
from nbdid.data_prep.published import load_report_values
from nbdid.data_prep.schema import SPECS, validate_panel
from nbdid.errors import InputError, ModelError
from nbdid.families import Family, resolve_family
from nbdid.figures import (
    plot_pair_differences,
    plot_ppc,
    plot_ppc_arviz,
    plot_rank,
    plot_trajectories,
    plot_ward_changes,
)
from nbdid.models.design import (
    Design,
    build_design,
    design_to_dataset,
    forms_for,
    resolve_structure,
    structure_text,
)
from nbdid.models.model import log_likelihood, log_prior
from nbdid.models.priors import prior_table
from nbdid.models.sampling import CompiledModelCache, shared_cache, storage_precision
from nbdid.outputs import prepare_out_dir, write_csv, write_netcdf
from nbdid.provenance import SYNTHETIC_NOTICE, hash_frame, provenance_attrs

Progress = Callable[[str], None]
"""A function that shows one progress line (e.g. prints it on stderr)."""


@dataclass
class FitResult:
    """Everything one fit produces.

    Attributes
    ----------
    indicator
        Indicator key.
    family
        Name of the likelihood family (``negbin`` fits are family ``poisson`` with
        ``overdispersion = "negbin"`` in :attr:`config`).
    idata
        ArviZ InferenceData (``posterior``, ``sample_stats``, ``observed_data``,
        ``posterior_predictive``, and ``constant_data`` = the design, see
        :func:`nbdid.models.design.design_from_dataset`), with provenance attributes.
    design
        The model inputs (see :class:`nbdid.models.design.Design`).
    summary
        Tidy estimands (:func:`nbdid.analysis.estimands.summarise_effects`) with the
        diagnostics ``gate`` column, a ``synthetic`` column and, for synthetic data, a
        ``notice`` column repeating the synthetic-data marker (as do the other tables).
    diagnostics
        One-row diagnostics table (:func:`nbdid.analysis.diagnostics.diagnose`).
    trajectories
        Posterior of each group's pooled value per period, with ``gate``.
    config
        The :class:`nbdid.config.RunConfig` used (after overrides), its model config
        resolved for the panel (structure and concrete priors).
    seconds
        Wall time of the fit (compilation included when it compiled).
    structure
        One line describing the model structure fitted
        (:func:`nbdid.models.design.structure_text`).
    notes
        The structure decisions taken from the panel, one line each
        (:func:`nbdid.models.design.resolve_structure`), e.g. "no ward change: no ward
        is seen both before and after the initiative".
    loo_wards
        Leave-one-ward-out cross-validation (:func:`loo_wards`), when asked for.
    timing
        Seconds spent compiling (``compile_seconds``; 0 when the model was already
        compiled in this process, see ``compiled``: ``memory``, ``disk`` or ``fresh``)
        and sampling (``sampling_seconds``), from
        :attr:`nbdid.models.sampling.CompiledModelCache.last_timing`.
    """

    indicator: str
    family: str
    idata: Any
    design: Design
    summary: pd.DataFrame
    diagnostics: pd.DataFrame
    trajectories: pd.DataFrame
    config: RunConfig
    seconds: float = 0.0
    structure: str = ""
    notes: tuple[str, ...] = ()
    loo_wards: pd.DataFrame | None = None
    timing: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        """Whether the fit passed the diagnostics gate."""
        return bool(self.diagnostics["passed"].iloc[0])

    @property
    def gate(self) -> str:
        """The diagnostics gate: ``"passed"`` or ``"FAILED: <reasons>"``."""
        return str(self.diagnostics["gate"].iloc[0])

    @property
    def synthetic(self) -> bool:
        """Whether the fitted rows were synthetic."""
        return self.design.synthetic

    @property
    def did(self) -> pd.Series:
        """The population-averaged DiD in the indicator's own unit (one summary row)."""
        return unit_did_row(self.summary)

    @property
    def priors(self) -> dict[str, str]:
        """The priors fitted, as text by key (defaults resolved for the data)."""
        return prior_table(self.config.model.priors, self.idata.posterior)

    @property
    def prior_flags(self) -> str:
        """Prior-dominated or prior-data-conflicted quantities (empty when none)."""
        d = self.diagnostics
        return str(d["prior_flags"].iloc[0]) if "prior_flags" in d else ""

    def text(self) -> str:
        """A readable summary: the DiD, the structure and why, priors and diagnostics."""
        d = self.did
        lines = [f"{self.indicator} ({self.family}): DiD {d['mean']:.4g} {d['scale']} "
                 f"[{d['q2.5']:.4g}, {d['q97.5']:.4g}] (95%), P(benefit) {d['prob_benefit']:.2f}",
                 f"model: {self.structure}"]
        lines += [f"  - {n}" for n in self.notes]
        lines.append("priors: " + "; ".join(f"{k} ~ {v}" for k, v in self.priors.items()))
        diag = self.diagnostics.iloc[0]
        if "elpd_loo" in diag:
            lines.append(f"PSIS-LOO: elpd {diag['elpd_loo']:.1f} (se {diag['elpd_loo_se']:.1f}), "
                         f"Pareto k > 0.7 for {int(diag['pareto_k_high'])} of {self.design.n_obs} "
                         "observations")
        if self.loo_wards is not None:
            t = self.loo_wards
            lines.append(f"leave-one-ward-out: elpd {t['elpd'].sum():.1f} "
                         f"(se {np.sqrt(len(t) * t['elpd'].var(ddof=1)):.1f}, {len(t)} wards)")
        if self.prior_flags:
            lines.append(f"prior check: {self.prior_flags}")
        lines.append(f"diagnostics: {self.gate}")
        if self.synthetic:
            lines.append(f"NOTE: {SYNTHETIC_NOTICE}")
        return "\n".join(lines)

    def __repr__(self) -> str:
        d = self.did
        syn = " SYNTHETIC DATA" if self.synthetic else ""
        return (f"<FitResult {self.indicator} ({self.family}): DiD {d['mean']:.4g} {d['scale']} "
                f"[{d['q2.5']:.4g}, {d['q97.5']:.4g}], P(benefit) {d['prob_benefit']:.2f}; "
                f"diagnostics {self.gate}{syn}>")

    # ------------------------------------------------------------------ figures
    def plot_trajectories(self, *, ax=None) -> Figure:
        """Each group's pooled value per period (the report's chart, redone)."""
        t = self.trajectories.rename(columns={"q2.5": "lower", "q97.5": "upper"})
        vals = load_report_values()
        report = vals[vals.indicator == self.indicator] if self.indicator in set(vals.indicator) else None
        return plot_trajectories(t, report=report, gate=self.gate, synthetic=self.synthetic, ax=ax)

    def plot_ward_changes(self, *, ax=None) -> Figure:
        """Each ward's change with its 95% interval, and the groups' mean changes."""
        return plot_ward_changes(ward_change_table(self.idata, self.design),
                                 groups=group_change_table(self.idata, self.design), ax=ax,
                                 gate=self.gate, synthetic=self.synthetic)

    def plot_pair_differences(self, *, ax=None) -> Figure:
        """Per matched pair: the NBI ward's change minus its benchmark's."""
        row = self.summary[self.summary["estimand"] == "diff_in_change"].iloc[0]
        did = (float(row["mean"]), float(row["q2.5"]), float(row["q97.5"]))
        return plot_pair_differences(pair_difference_table(self.idata, self.design), did=did,
                                     ax=ax, gate=self.gate, synthetic=self.synthetic)

    def plot_ppc(self, *, ax=None) -> Figure:
        """Posterior predictive check: replicated statistics against the observed."""
        return plot_ppc(ppc_statistics(self.idata, self.design), ax=ax, gate=self.gate,
                        synthetic=self.synthetic)

    def plot_ppc_values(self, *, ax=None, kind: str = "cumulative") -> Figure:
        """ArviZ posterior predictive plot: observed against replicated ward-period
        values on the indicator's own scale, per group and period."""
        return plot_ppc_arviz(ppc_values(self.idata, self.design), ax=ax, gate=self.gate,
                              synthetic=self.synthetic, kind=kind)

    def plot_rank(self, *, ax=None) -> Figure:
        """ArviZ rank plots of the DiD and the variance components."""
        return plot_rank(self.idata, ax=ax, indicator=self.indicator, gate=self.gate,
                         synthetic=self.synthetic)

    def figures(self) -> dict[str, Figure]:
        """Every per-fit figure, keyed by file stem (``trajectory_KEY``, ``wards_KEY``,
        ``pairs_KEY``, ``ppc_KEY``, ``ppc_values_KEY``, ``rank_KEY``)."""
        k = self.indicator
        return {f"trajectory_{k}": self.plot_trajectories(), f"wards_{k}": self.plot_ward_changes(),
                f"pairs_{k}": self.plot_pair_differences(), f"ppc_{k}": self.plot_ppc(),
                f"ppc_values_{k}": self.plot_ppc_values(), f"rank_{k}": self.plot_rank()}

    def plot_posterior(self, var_names: Iterable[str] = ("did",), **kwargs: Any) -> Figure:
        """ArviZ posterior plot of ``var_names`` (default: the link-scale DiD)."""
        axes = az.plot_posterior(self.idata, var_names=list(var_names), show=False, **kwargs)
        return _figure_of(axes)

    def plot_trace(self, var_names: Iterable[str] = ("did",), **kwargs: Any) -> Figure:
        """ArviZ trace plot of ``var_names``."""
        axes = az.plot_trace(self.idata, var_names=list(var_names), show=False, **kwargs)
        return _figure_of(axes)


def log_likelihood_dataset(posterior: xr.Dataset, design: Design, *, by: Pointwise = "obs") -> xr.Dataset:
    """The ``log_likelihood`` group of a fit (variable ``y``, dims ``chain, draw, obs``,
    or ``chain, draw, ward`` with ``by="ward"``: each ward's observations summed)."""
    ll = log_likelihood(posterior, design, by=by)
    unit = "ward" if by == "ward" else "obs"
    coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values,
              unit: np.asarray(design.coords[unit])}
    return xr.Dataset({"y": (("chain", "draw", unit), ll)}, coords=coords)


def _figure_of(axes: Any) -> Figure:
    first = np.asarray(axes).ravel()[0]
    return first.figure


def _sampler_config(cfg: RunConfig, overrides: Mapping[str, Any]) -> RunConfig:
    """``cfg`` with sampler settings replaced (checked like a config file's)."""
    if not overrides:
        return cfg
    names = {f.name for f in dataclasses.fields(SamplerConfig)}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise InputError(f"unknown sampler setting '{unknown[0]}' (use {', '.join(sorted(names))})")
    merged = {**dataclasses.asdict(cfg.sampler), **overrides}
    return dataclasses.replace(cfg, sampler=from_dict(SamplerConfig, merged, prefix="sampler."))


def _model_config(cfg: RunConfig, *, covariates: Iterable[str] | str | None = None,
                  interact: Iterable[str] | str | None = None,
                  priors: Mapping[str, Any] | None = None) -> RunConfig:
    """``cfg`` with covariates, interactions and priors replaced (checked like a config
    file's ``[model]`` section)."""
    if covariates is None and interact is None and not priors:
        return cfg

    def names(v):
        return [c.strip() for c in v.split(",") if c.strip()] if isinstance(v, str) else list(v)

    m = cfg.model
    data: dict[str, Any] = {}
    data["covariates"] = names(covariates) if covariates is not None else list(m.covariates)
    data["interact"] = names(interact) if interact is not None else list(m.interact)
    given = {k: str(v) for k, v in m.priors.given().items()}
    given.update({k: (v if isinstance(v, str) else str(v)) for k, v in (priors or {}).items()})
    data["priors"] = given
    checked = from_dict(ModelConfig, data, prefix="model.")
    model = dataclasses.replace(m, covariates=checked.covariates, interact=checked.interact,
                                priors=checked.priors)
    return dataclasses.replace(cfg, model=model)


def fit(
    panel: pd.DataFrame,
    indicator: str,
    *,
    family: str | Family | None = None,
    config: RunConfig | None = None,
    pair_effects: bool | None = None,
    parameterization: str | dict[str, str] | None = None,
    covariates: Iterable[str] | str | None = None,
    interact: Iterable[str] | str | None = None,
    priors: Mapping[str, Any] | None = None,
    lower_is_better: bool | None = None,
    compiled_cache: CompiledModelCache | None = None,
    validate: bool = True,
    quiet: bool = True,
    loo_wards: bool = False,
    **sampler: Any,
) -> FitResult:
    """Fit the hierarchical DiD model of one indicator.

    Parameters
    ----------
    panel
        Tidy ward panel (see ``nbdid.data_prep.schema``); may hold other indicators
        and covariate columns this fit does not use (they are ignored).
    indicator
        Indicator key.
    family
        ``binomial``, ``poisson``, ``negbin`` or ``price`` (or a family object); default
        from the registry (required for keys not in the registry).
    config
        :class:`nbdid.config.RunConfig` (defaults when ``None``).
    pair_effects
        Override ``config.model.pair_effects``.
    parameterization
        Override ``config.model.parameterization``: ``"auto"``, ``"centred"``,
        ``"non_centred"`` or a dict of forms per component (``level``, ``change``,
        ``pair``), as :func:`nbdid.models.design.build_design` takes.
    covariates
        Override ``config.model.covariates``: panel columns (a list or ``"a,b"``).
    interact
        Override ``config.model.interact``: covariates with effect modification.
    priors
        Priors replacing the config's, by key (``{"did": "normal(0, 1)"}``; see
        :data:`nbdid.config.PRIOR_KEYS`), checked like a config file's.
    lower_is_better
        Direction of benefit for ``prob_benefit`` (default: registry, else False).
    compiled_cache
        Reuse compiled models across fits (nutpie); the process-wide
        :func:`nbdid.models.sampling.shared_cache` when ``None``.
    validate
        Check ``panel`` with :func:`nbdid.data_prep.schema.validate_panel` first.
    quiet
        Suppress progress lines on stderr.
    loo_wards
        Also run leave-one-ward-out cross-validation (one warm refit per ward,
        :func:`loo_wards_table`) and store it in :attr:`FitResult.loo_wards`; also on
        when ``config.diagnostics.loo_wards`` is.
    **sampler
        Sampler settings overriding ``config.sampler`` (``draws``, ``tune``, ``chains``,
        ``seed``, ``target_accept``, ``backend``), checked like a config file's.

    Returns
    -------
    FitResult

    Raises
    ------
    ModelError
        If the model cannot be fitted to the panel (one group, one period, ...).
    InputError
        If the panel breaks the schema or a setting is out of range.
    """
    t0 = time.perf_counter()
    cfg = _sampler_config(config or RunConfig(), sampler)
    cfg = _model_config(cfg, covariates=covariates, interact=interact, priors=priors)
    loo_wards = loo_wards or cfg.diagnostics.loo_wards
    choice = resolve_family(indicator, family if family is not None else cfg.families.get(indicator))
    model_cfg = cfg.model
    if choice.overdispersion is not None:
        model_cfg = dataclasses.replace(model_cfg, overdispersion=choice.overdispersion)
    if pair_effects is not None:
        model_cfg = dataclasses.replace(model_cfg, pair_effects=pair_effects)
    if validate:
        # a panel may carry covariate columns that this fit does not use
        keep = [c for c in panel.columns if c in SPECS or c in model_cfg.covariates]
        panel = validate_panel(panel[keep], families={indicator: choice.name},
                               covariates=model_cfg.covariates)
    design = build_design(
        panel,
        indicator,
        choice.family,
        pair_effects=model_cfg.pair_effects,
        event_study=model_cfg.event_study,
        reference_period=model_cfg.reference_period,
        parameterization=model_cfg.parameterization if parameterization is None else parameterization,
        covariates=model_cfg.covariates,
        interact=model_cfg.interact,
    )
    model_cfg, notes = resolve_structure(design, model_cfg)
    design = forms_for(design, model_cfg)
    structure = structure_text(design, model_cfg)
    cache = compiled_cache if compiled_cache is not None else shared_cache()
    was_quiet, cache.quiet = cache.quiet, quiet
    try:
        idata = cache.sample(design, model_cfg, cfg.sampler)
    finally:
        cache.quiet = was_quiet
    timing = {k: (round(v, 3) if isinstance(v, float) else v)
              for k, v in (getattr(cache, "last_timing", None) or {}).items()}
    used = dataclasses.replace(cfg, model=model_cfg, indicators=())
    attrs = provenance_attrs(
        config_toml=to_toml(used),
        data_hash=hash_frame(design.frame),
        seed=cfg.sampler.seed,
        synthetic=design.synthetic,
        indicator=indicator,
        family=choice.name,
        overdispersion=model_cfg.overdispersion,
        ward_change=int(model_cfg.ward_change),
        group_change_sd=int(model_cfg.group_change_sd),
        parameterization=design.parameterization,
        change_parameterization=design.change_parameterization,
        pair_parameterization=design.pair_parameterization,
        structure=structure,
        structure_notes="\n".join(notes),
        priors="; ".join(f"{k} ~ {v}" for k, v in prior_table(model_cfg.priors, idata.posterior).items()),
        covariates=",".join(design.covariates),
        backend=cfg.sampler.backend,
    )
    idata = ppc_replicates(idata, design, seed=cfg.sampler.seed, draws=cfg.diagnostics.ppc_draws)
    idata.add_groups(constant_data=design_to_dataset(design),
                     log_likelihood=log_likelihood_dataset(idata.posterior, design,
                                                           by=cfg.diagnostics.pointwise),
                     log_prior=log_prior_dataset(idata.posterior, model_cfg))
    storage_precision(idata, groups=("log_likelihood", "log_prior", "posterior_predictive"))  # as saved
    idata.posterior.attrs.update(attrs)
    idata.attrs = {**(getattr(idata, "attrs", None) or {}), **attrs}
    diag = diagnose(idata, design, cfg.diagnostics, priors=model_cfg.priors)
    lowo = None
    if loo_wards:
        lowo = loo_wards_table(design, model_cfg, cfg.sampler, cache=cache, quiet=quiet)
        diag["elpd_loo_wards"] = float(lowo["elpd"].sum())
        diag["elpd_loo_wards_se"] = float(np.sqrt(len(lowo) * lowo["elpd"].var(ddof=1)))
    diag["structure"] = structure
    diag["notes"] = "; ".join(notes)
    summary = mark_gate(summarise_effects(idata, design, lower_is_better=lower_is_better), diag)
    summary["structure"] = structure
    summary["notes"] = "; ".join(notes)
    summary["prior_flags"] = str(diag["prior_flags"].iloc[0]) if "prior_flags" in diag else ""
    summary["prior_gate"] = str(diag["prior_gate"].iloc[0]) if "prior_gate" in diag else ""
    traj = mark_gate(trajectory_table(idata, design), diag)
    for t in (summary, traj, diag):
        t["synthetic"] = design.synthetic
        if design.synthetic:
            t["notice"] = SYNTHETIC_NOTICE
    return FitResult(indicator, choice.name, idata, design, summary, diag, traj, used,
                     seconds=time.perf_counter() - t0, structure=structure, notes=notes,
                     loo_wards=lowo, timing=timing)


def log_prior_dataset(posterior: xr.Dataset, model_cfg: ModelConfig) -> xr.Dataset:
    """The ``log_prior`` group of a fit: the log prior density of each draw per
    prior-carrying variable (:func:`nbdid.models.model.log_prior`)."""
    lp = log_prior(posterior, model_cfg)
    coords = {"chain": posterior["chain"].values, "draw": posterior["draw"].values}
    return xr.Dataset({k: (("chain", "draw"), v) for k, v in lp.items()}, coords=coords)


LOO_WARDS_COLUMNS = ("indicator", "ward", "group", "n_obs", "elpd", "divergences", "rhat_max")
"""Columns of :func:`loo_wards_table`."""


def loo_wards_table(design: Design, model_cfg: ModelConfig, sampler: SamplerConfig, *,
                    cache: CompiledModelCache | None = None, quiet: bool = True) -> pd.DataFrame:
    """Leave-one-ward-out (grouped) cross-validation by warm refits of one compiled model.

    For each ward, the model is refitted with that ward's observations left out of the
    likelihood (weight 0 through a ``pm.Data`` container, so every refit reuses one
    compiled model: :func:`nbdid.models.model.build_model`).  The held-out ward's own
    effects are then draws from their population distribution, and its expected log
    predictive density is ``log mean_s p(y_ward | theta_s)``.  Unlike PSIS-LOO of
    single observations, this compares model structures when each ward-period has its
    own effect (Pareto k high for most observations).

    Parameters
    ----------
    design
        The design fitted (all wards).
    model_cfg
        The resolved model config of the fit.
    sampler
        Sampler settings of each refit.
    cache
        Compiled-model cache (the leave-one-out model is compiled once and kept there).
    quiet
        Suppress progress lines.

    Returns
    -------
    pandas.DataFrame
        One row per ward: :data:`LOO_WARDS_COLUMNS` (``elpd`` the held-out ward's log
        predictive density; divergences and largest R-hat of its refit).
    """
    cache = cache if cache is not None else shared_cache()
    rows = []
    wards = design.coords["ward"]
    for w, ward in enumerate(wards):
        held = design.ward_idx == w
        d = dataclasses.replace(design, obs_weight=(~held).astype("float64"))
        idata = cache.sample(d, model_cfg, sampler)
        ll = log_likelihood(idata.posterior, design)[..., held].sum(axis=-1).ravel()
        stats = idata.sample_stats
        div = int(stats["diverging"].values.sum()) if "diverging" in stats else 0
        rhat = az.rhat(idata, var_names=["did"])["did"].values
        rows.append({"indicator": design.indicator, "ward": ward, "group": design.ward_group[w],
                     "n_obs": int(held.sum()), "elpd": float(logsumexp(ll) - np.log(ll.size)),
                     "divergences": div, "rhat_max": float(np.max(rhat))})
        if not quiet:
            print(f"nbdid: leave-one-ward-out {w + 1}/{len(wards)} ({ward})", file=sys.stderr, flush=True)
    return pd.DataFrame(rows, columns=list(LOO_WARDS_COLUMNS))


FIT_SUMMARY = "summary.csv"
"""The summary file of ``nbdid fit`` (beside ``KEY.nc``)."""

DIAG_COLUMNS = ("rhat_max", "ess_bulk_min", "ess_tail_min", "divergences", "bfmi_min",
                "ppp_min", "ppp_max", "did_prior_sensitivity", "did_likelihood_sensitivity",
                "did_sd_ratio", "elpd_loo", "elpd_loo_se", "pareto_k_high", "elpd_loo_wards",
                "elpd_loo_wards_se")
"""Diagnostics repeated on every row of ``nbdid fit``'s summary."""


def fit_outputs(indicator: str, *, loo_wards: bool = False) -> list[str]:
    """The files :func:`save_fit` writes (``KEY_loo_wards.csv`` with leave-one-ward-out)."""
    return [f"{indicator}.nc", FIT_SUMMARY] + ([f"{indicator}_loo_wards.csv"] if loo_wards else [])


def save_fit(res: FitResult, out: str | os.PathLike[str], *, force: bool = False) -> Path:
    """Write ``OUT/KEY.nc`` (the InferenceData) and ``OUT/summary.csv`` (estimands with
    the diagnostics), as ``nbdid fit`` does, and ``OUT/KEY_loo_wards.csv`` when the fit
    has leave-one-ward-out cross-validation."""
    lowo = res.loo_wards is not None
    folder = prepare_out_dir(out, fit_outputs(res.indicator, loo_wards=lowo), force=force)
    summary = res.summary.copy()
    diag = res.diagnostics.iloc[0]
    for c in DIAG_COLUMNS:
        if c in diag:
            summary[c] = diag[c]
    write_netcdf(res.idata, folder / f"{res.indicator}.nc")
    write_csv(summary, folder / FIT_SUMMARY)
    if lowo:
        write_csv(res.loo_wards, folder / f"{res.indicator}_loo_wards.csv")
    return folder


@dataclass
class FitBatch:
    """The fits of :func:`fit_all`: results by indicator, and why others failed."""

    fits: dict[str, FitResult] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    """Wall time of each indicator's fit (or of the attempt that failed)."""


def fit_all(
    panel: pd.DataFrame,
    indicators: Iterable[str],
    *,
    config: RunConfig | None = None,
    families: Mapping[str, str] | None = None,
    compiled_cache: CompiledModelCache | None = None,
    validate: bool = True,
    progress: Progress | None = None,
    on_fit: Callable[[FitResult], None] | None = None,
    seeds: Mapping[str, int] | None = None,
    parameterizations: Mapping[str, str | None] | None = None,
    failures_from: tuple[type[Exception], ...] = (ModelError,),
    quiet: bool = True,
) -> FitBatch:
    """Fit several indicators of one panel, validating it once and compiling each model
    structure once.

    Parameters
    ----------
    panel
        Tidy ward panel.
    indicators
        Indicator keys, fitted in this order.
    config
        Run configuration.
    families
        Families of keys that are not in the registry (``{"fly_tipping": "poisson"}``).
    compiled_cache
        Compiled-model cache (default: the process-wide one).
    validate
        Validate the panel first (skip when the caller already did).
    progress
        Called with one line per step (``"[2/7] fitting crime ..."``).
    on_fit
        Called with each finished fit (e.g. to write it at once).
    seeds
        A sampler seed per indicator (default: the config's for every one); the sweep
        derives one from the specification and the indicator.
    parameterizations
        A parameterisation per indicator overriding the config's (see :func:`fit`).
    failures_from
        Errors that make an indicator a failure (recorded in ``failures``) instead of
        stopping the batch: :class:`~nbdid.errors.ModelError` by default; the sweep
        records any :class:`~nbdid.errors.NbdidError` of a specification.
    quiet
        Suppress each fit's own progress lines (compiling, sampling).

    Returns
    -------
    FitBatch
        An indicator that cannot be fitted (:class:`~nbdid.errors.ModelError`) is in
        ``failures`` with the reason; the others are fitted.
    """
    keys = list(indicators)
    cfg = config or RunConfig()
    families = {**cfg.families, **(families or {})}
    say = progress or (lambda _msg: None)
    if validate:
        panel = validate_panel(panel, families={k: v for k, v in families.items()} or None,
                               covariates=cfg.model.covariates)
    cache = compiled_cache if compiled_cache is not None else shared_cache()
    batch = FitBatch()
    for i, key in enumerate(keys, 1):
        t0 = time.perf_counter()
        say(f"[{i}/{len(keys)}] fitting {key} ...")
        cfg_k = cfg if seeds is None or key not in seeds else dataclasses.replace(
            cfg, sampler=dataclasses.replace(cfg.sampler, seed=int(seeds[key])))
        try:
            res = fit(panel, key, config=cfg_k, family=families.get(key), compiled_cache=cache,
                      validate=False, quiet=quiet,
                      parameterization=(parameterizations or {}).get(key))
        except failures_from as err:
            batch.failures[key] = str(err)
            batch.seconds[key] = time.perf_counter() - t0
            say(f"[{i}/{len(keys)}] {key}: cannot be fitted: {err}")
            continue
        batch.seconds[key] = time.perf_counter() - t0
        batch.fits[key] = res
        if on_fit is not None:
            on_fit(res)
        say(f"[{i}/{len(keys)}] {key}: done in {time.perf_counter() - t0:.1f} s, diagnostics {res.gate}")
    return batch
