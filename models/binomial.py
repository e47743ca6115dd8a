"""Hierarchical binomial difference-in-differences model (logit link).

For ward ``w`` in period ``t`` with ``y`` people with the outcome out of ``N`` trials::

    y[w,t] ~ Binomial(N[w,t], p[w,t])
    logit p[w,t] = intercept + period_effect[t] + group_effect * nbi[w]
                   + did * nbi[w] * post[t] + ward_effect[w] + ward_change[w] * post[t]
                   (+ pair_effect[pair[w]])
                   (+ wp_effect[w,t])

``did`` is the interaction on the logit scale (``exp(did)`` is the odds ratio for a
typical ward).  Overdispersion (``ModelConfig.overdispersion``): ``"ward_period"`` adds
a non-centred normal ward x period effect (``sigma_wp * wp_z``); ``"negbin"`` uses the
beta-binomial, with ``sigma_od`` the coefficient of variation of the beta mixing
distribution; ``"none"`` is the plain binomial.  See ``docs/models.md``.
"""

from __future__ import annotations

import numpy as np

from nbdid.models.design import (
    Design,
    add_did_terms,
    linear_predictor_draws,
    redraw_ward_change,
    resolve_model_config,
)

LINK = "logit"
RATIO_SCALE = "odds_ratio"


def build_model(design: Design, cfg):
    """Build the PyMC model for ``design`` with the prior scales of ``cfg`` (ModelConfig)."""
    import pymc as pm
    import pytensor.tensor as pt

    cfg = resolve_model_config(design, cfg)
    with pm.Model(coords=design.coords) as model:
        eta, data = add_did_terms(design, cfg)
        trials = pt.cast(pt.round(data["exposure"]), "int64")
        if cfg.overdispersion == "ward_period":
            sigma_wp = pm.HalfNormal("sigma_wp", cfg.sigma_wp_scale)
            wp_z = pm.Normal("wp_z", 0.0, 1.0, dims="obs")
            eta = eta + pm.Deterministic("wp_effect", sigma_wp * wp_z, dims="obs")
        p = pm.math.invlogit(eta)
        if cfg.overdispersion == "negbin":
            sigma_od = pm.HalfNormal("sigma_od", cfg.sigma_wp_scale)
            kappa = pt.maximum((1 - p) / (p * sigma_od**2) - 1.0, 1e-3)
            pm.BetaBinomial(
                "y", n=trials, alpha=p * kappa, beta=(1 - p) * kappa,
                observed=data["y_obs"], dims="obs",
            )
        else:
            pm.Binomial("y", n=trials, p=p, observed=data["y_obs"], dims="obs")
    return model


def expected(posterior, design: Design, *, counterfactual: bool = False) -> np.ndarray:
    """Expected proportion per draw and observation ``(chain, draw, obs)``."""
    eta = linear_predictor_draws(posterior, design, counterfactual=counterfactual)
    return 1.0 / (1.0 + np.exp(-eta))


def replicate(posterior, design: Design, rng: np.random.Generator) -> np.ndarray:
    """Replicated counts ``(chain, draw, obs)``.

    Observation-level effects (``wp_effect``) are redrawn from their population
    distribution ("mixed" replication), so the check is as strict for ``ward_period``
    as for the beta-binomial, whose mixing is redrawn by construction.
    """
    eta = linear_predictor_draws(posterior, design) + redraw_ward_change(posterior, design, rng)
    if "wp_effect" in posterior:
        sig = posterior["sigma_wp"].values[..., None]
        eta = eta - posterior["wp_effect"].values + sig * rng.standard_normal(eta.shape)
    p = 1.0 / (1.0 + np.exp(-eta))
    trials = np.round(design.exposure).astype(np.int64)
    if "sigma_od" in posterior:
        cv = posterior["sigma_od"].values[..., None]
        kappa = np.maximum((1 - p) / (p * cv**2) - 1.0, 1e-3)
        p = rng.beta(p * kappa, (1 - p) * kappa)
    return rng.binomial(np.broadcast_to(trials, p.shape), p)
