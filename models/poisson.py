"""Hierarchical Poisson difference-in-differences model (log link, exposure offset).

For ward ``w`` in period ``t`` with ``y`` events and exposure ``E`` (population,
households, working-age population)::

    y[w,t] ~ Poisson(E[w,t] * exp(eta[w,t]))            (overdispersion "none" / "ward_period")
    y[w,t] ~ NegativeBinomial(mu=E[w,t] * exp(eta[w,t]), alpha=1 / sigma_od**2)   ("negbin")
    eta[w,t] = intercept + period_effect[t] + group_effect * nbi[w]
               + did * nbi[w] * post[t] + ward_effect[w] + ward_change[w] * post[t]
               (+ pair_effect[pair[w]])
               (+ wp_effect[w,t] = sigma_wp * wp_z[w,t]   for "ward_period")

``did`` is the interaction on the log-rate scale (``exp(did)`` is the rate ratio for a
typical ward).  ``ward_change`` (on by default) is each ward's own change after the
initiative (see :func:`nbdid.models.design.add_did_terms`); with two periods it already
gives every ward-period its own effect, so ``overdispersion = "auto"`` is ``"none"``
there and ``"negbin"`` for longer panels.  ``sigma_od`` is the coefficient of variation of the negative binomial's
gamma mixing, so its prior scale (``sigma_wp_scale``) means the same as ``sigma_wp``'s.
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

LINK = "log"
RATIO_SCALE = "rate_ratio"


def build_model(design: Design, cfg):
    """Build the PyMC model for ``design`` with the prior scales of ``cfg`` (ModelConfig)."""
    import pymc as pm

    cfg = resolve_model_config(design, cfg)
    with pm.Model(coords=design.coords) as model:
        eta, data = add_did_terms(design, cfg)
        if cfg.overdispersion == "ward_period":
            sigma_wp = pm.HalfNormal("sigma_wp", cfg.sigma_wp_scale)
            wp_z = pm.Normal("wp_z", 0.0, 1.0, dims="obs")
            eta = eta + pm.Deterministic("wp_effect", sigma_wp * wp_z, dims="obs")
        mu = data["exposure"] * pm.math.exp(eta)
        if cfg.overdispersion == "negbin":
            sigma_od = pm.HalfNormal("sigma_od", cfg.sigma_wp_scale)
            pm.NegativeBinomial(
                "y", mu=mu, alpha=1.0 / sigma_od**2, observed=data["y_obs"], dims="obs"
            )
        else:
            pm.Poisson("y", mu=mu, observed=data["y_obs"], dims="obs")
    return model


def expected(posterior, design: Design, *, counterfactual: bool = False) -> np.ndarray:
    """Expected rate per unit exposure, per draw and observation ``(chain, draw, obs)``."""
    return np.exp(linear_predictor_draws(posterior, design, counterfactual=counterfactual))


def replicate(posterior, design: Design, rng: np.random.Generator) -> np.ndarray:
    """Replicated counts ``(chain, draw, obs)`` (observation-level effects redrawn)."""
    eta = linear_predictor_draws(posterior, design) + redraw_ward_change(posterior, design, rng)
    if "wp_effect" in posterior:
        sig = posterior["sigma_wp"].values[..., None]
        eta = eta - posterior["wp_effect"].values + sig * rng.standard_normal(eta.shape)
    mu = design.exposure * np.exp(eta)
    if "sigma_od" in posterior:
        alpha = 1.0 / posterior["sigma_od"].values[..., None] ** 2
        mu = rng.gamma(alpha, mu / alpha)
    return rng.poisson(mu)
