"""Hierarchical model of ward-period mean log prices (price indicators).

For ward ``w`` in period ``t`` with ``n`` transactions, mean log price ``m`` and a
known within-ward-period SD of log prices ``s`` (the ward-period's own SD when it has
at least 10 transactions, else the pooled within SD)::

    m[w,t] ~ StudentT(nu, eta[w,t], sqrt(s[w,t]**2 / n[w,t] (+ sigma_wp**2)))   (or Normal)
    eta[w,t] = intercept + period_effect[t] + group_effect * nbi[w]
               + did * nbi[w] * post[t] + ward_effect[w] + ward_change[w] * post[t]
               (+ pair_effect[pair[w]])

``sigma_wp`` is ward x period variation beyond sampling error (left out by
``overdispersion = "auto"`` for two-period panels with ward changes, where every
ward-period already has its own effect); ``nu ~ Gamma(2, 0.1)``.
``did`` is on the log-price scale (``exp(did)`` is the price ratio for a typical ward).
In pounds, a ward-period's expected arithmetic mean price is ``exp(eta + s**2 / 2)``
(log-normal prices), pooled with transaction weights like the report.
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
RATIO_SCALE = "price_ratio"


def build_model(design: Design, cfg):
    """Build the PyMC model for ``design`` with the prior scales of ``cfg`` (ModelConfig)."""
    import pymc as pm

    cfg = resolve_model_config(design, cfg)
    with pm.Model(coords=design.coords) as model:
        eta, data = add_did_terms(design, cfg)
        var = data["sd_within"] ** 2 / data["n_obs_tx"]
        if cfg.overdispersion != "none":
            sigma_wp = pm.HalfNormal("sigma_wp", cfg.sigma_wp_scale)
            var = var + sigma_wp**2
        scale = pm.math.sqrt(var)
        if cfg.price_likelihood == "student_t":
            nu = pm.Gamma("nu", alpha=2.0, beta=0.1)
            pm.StudentT("y", nu=nu, mu=eta, sigma=scale, observed=data["y_obs"], dims="obs")
        else:
            pm.Normal("y", mu=eta, sigma=scale, observed=data["y_obs"], dims="obs")
    return model


def expected(posterior, design: Design, *, counterfactual: bool = False) -> np.ndarray:
    """Expected arithmetic mean price (pounds) per draw and observation."""
    eta = linear_predictor_draws(posterior, design, counterfactual=counterfactual)
    return np.exp(eta + design.sd_within**2 / 2.0)


def replicate(posterior, design: Design, rng: np.random.Generator) -> np.ndarray:
    """Replicated mean log prices ``(chain, draw, obs)``."""
    eta = linear_predictor_draws(posterior, design) + redraw_ward_change(posterior, design, rng)
    var = design.sd_within**2 / design.n
    if "sigma_wp" in posterior:
        var = var + posterior["sigma_wp"].values[..., None] ** 2
    scale = np.sqrt(var)
    if "nu" in posterior:
        eps = rng.standard_t(np.broadcast_to(posterior["nu"].values[..., None], eta.shape))
    else:
        eps = rng.standard_normal(eta.shape)
    return eta + scale * eps
