"""High-level fitting of one indicator: panel in, posterior + tables out.

>>> from nbdid.models.fit import fit_indicator                     # doctest: +SKIP
>>> res = fit_indicator(panel, "crime")                            # doctest: +SKIP
>>> res.summary[["estimand", "scale", "mean", "q2.5", "q97.5"]]    # doctest: +SKIP
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pandas as pd

from nbdid.errors import ModelError
from nbdid.models.design import Design, build_design, design_to_dataset, resolve_model_config
from nbdid.models.sampling import CompiledModelCache, shared_cache
from nbdid.registry import INDICATORS

FAMILY_CHOICES = ("binomial", "poisson", "negbin", "price")


@dataclass
class FitResult:
    """Everything one fit produces.

    Attributes
    ----------
    indicator, family
        Indicator key and likelihood family (``negbin`` fits are family ``poisson`` with
        ``overdispersion = "negbin"``).
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
        The :class:`nbdid.config.RunConfig` used (after overrides).
    """

    indicator: str
    family: str
    idata: Any
    design: Design
    summary: pd.DataFrame
    diagnostics: pd.DataFrame
    trajectories: pd.DataFrame
    config: Any

    @property
    def passed(self) -> bool:
        """Whether the fit passed the diagnostics gate."""
        return bool(self.diagnostics["passed"].iloc[0])

    @property
    def synthetic(self) -> bool:
        """Whether the fitted rows were synthetic."""
        return self.design.synthetic


def resolve_family(indicator: str, family: str | None) -> tuple[str, str | None]:
    """``(model family, overdispersion override)`` for an indicator and ``--family``."""
    if family is None:
        if indicator not in INDICATORS:
            raise ModelError(
                f"indicator '{indicator}' is not in the registry; give its family with "
                "--family binomial|poisson|negbin|price"
            )
        return INDICATORS[indicator].family, None
    if family not in FAMILY_CHOICES:
        raise ModelError(f"unknown family '{family}' (use {', '.join(FAMILY_CHOICES)})")
    if family == "negbin":
        return "poisson", "negbin"
    return family, None


def fit_indicator(
    panel: pd.DataFrame,
    indicator: str,
    *,
    config=None,
    family: str | None = None,
    pair_effects: bool | None = None,
    compiled_cache: CompiledModelCache | None = None,
    lower_is_better: bool | None = None,
    validate: bool = True,
    quiet: bool = True,
    parameterization: str | dict[str, str] | None = None,
) -> FitResult:
    """Fit the hierarchical DiD model of one indicator.

    Parameters
    ----------
    panel
        Tidy ward panel (see ``nbdid.data_prep.schema``); may hold other indicators.
    indicator
        Indicator key.
    config
        :class:`nbdid.config.RunConfig` (defaults when ``None``).
    family
        ``binomial``, ``poisson``, ``negbin`` or ``price``; default from the registry
        (required for keys not in the registry).
    pair_effects
        Override ``config.model.pair_effects``.
    compiled_cache
        Reuse compiled models across fits (nutpie); the process-wide
        :func:`nbdid.models.sampling.shared_cache` when ``None``.
    lower_is_better
        Direction of benefit for ``prob_benefit`` (default: registry, else False).
    validate
        Check ``panel`` with :func:`nbdid.data_prep.schema.validate_panel` first.
    quiet
        Suppress progress lines on stderr.
    parameterization
        Override ``config.model.parameterization``: ``"auto"``, ``"centred"``,
        ``"non_centred"`` or a dict of forms per component (``level``, ``change``,
        ``pair``), as :func:`nbdid.models.design.build_design` takes.  Sensitivity
        sweeps pass the forms chosen for a specification here.

    Returns
    -------
    FitResult

    Raises
    ------
    ModelError
        If the model cannot be fitted to the panel (one group, one period, ...).
    InputError
        If the panel breaks the schema.
    """
    from nbdid.analysis.diagnostics import diagnose, mark_gate, ppc_replicates
    from nbdid.analysis.estimands import summarise_effects, trajectory_table
    from nbdid.config import RunConfig, to_toml
    from nbdid.provenance import hash_frame, provenance_attrs

    cfg = config or RunConfig()
    fam, od = resolve_family(indicator, family)
    model_cfg = cfg.model
    if od is not None:
        model_cfg = dataclasses.replace(model_cfg, overdispersion=od)
    if pair_effects is not None:
        model_cfg = dataclasses.replace(model_cfg, pair_effects=pair_effects)
    if validate:
        from nbdid.data_prep.schema import validate_panel

        panel = validate_panel(panel, families={indicator: fam})
    design = build_design(
        panel,
        indicator,
        fam,
        pair_effects=model_cfg.pair_effects,
        event_study=model_cfg.event_study,
        reference_period=model_cfg.reference_period,
        parameterization=model_cfg.parameterization if parameterization is None else parameterization,
    )
    model_cfg = resolve_model_config(design, model_cfg)
    cache = compiled_cache if compiled_cache is not None else shared_cache()
    was_quiet, cache.quiet = cache.quiet, quiet
    try:
        idata = cache.sample(design, model_cfg, cfg.sampler)
    finally:
        cache.quiet = was_quiet
    used = dataclasses.replace(cfg, model=model_cfg, indicators=())
    attrs = provenance_attrs(
        config_toml=to_toml(used),
        data_hash=hash_frame(design.frame),
        seed=cfg.sampler.seed,
        synthetic=design.synthetic,
        indicator=indicator,
        family=fam,
        overdispersion=model_cfg.overdispersion,
        ward_change=int(model_cfg.ward_change),
        parameterization=design.parameterization,
        change_parameterization=design.change_parameterization,
        pair_parameterization=design.pair_parameterization,
        backend=cfg.sampler.backend,
    )
    idata = ppc_replicates(idata, design, seed=cfg.sampler.seed)
    idata.add_groups(constant_data=design_to_dataset(design))
    idata.posterior.attrs.update(attrs)
    idata.attrs = {**(getattr(idata, "attrs", None) or {}), **attrs}
    diag = diagnose(idata, design, cfg.diagnostics)
    summary = mark_gate(summarise_effects(idata, design, lower_is_better=lower_is_better), diag)
    traj = mark_gate(trajectory_table(idata, design), diag)
    for t in (summary, traj, diag):
        t["synthetic"] = design.synthetic
        if design.synthetic:
            from nbdid.provenance import SYNTHETIC_NOTICE

            t["notice"] = SYNTHETIC_NOTICE
    return FitResult(indicator, fam, idata, design, summary, diag, traj, used)
