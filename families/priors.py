"""PyMC and NumPy forms of the prior specifications (:class:`nbdid.config.Prior`).

The model's priors are written once here and used by the shared linear predictor
(:func:`nbdid.models.design.add_did_terms`) and by the families' observation-level
terms (``sigma_od``, ``sigma_wp``).  A prior's *parameters* are ``pm.Data``
containers (``prior_<key>``, a vector in the order of
:data:`nbdid.config.PRIOR_PARAMS`), so that a compiled model can be refitted under
another prior scale by swapping data; only the prior's *distribution* is part of the
model's structure.

:func:`log_density` is the NumPy twin (SciPy), used for the ``log_prior`` group of a
fit (power-scaling prior sensitivity), and :func:`prior_sd` gives a prior's standard
deviation (the posterior/prior SD ratio of the diagnostics).

A standard deviation with an ``inverse_gamma_precision(shape, rate)`` prior is
written as BUGS does: its precision ``<name>_precision ~ Gamma(shape, rate)`` is the
free parameter and the SD ``<name> = precision ** -0.5`` a deterministic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from nbdid.config import Prior

__all__ = ["add_prior", "data_name", "log_density", "prior_sd", "prior_variable"]


def data_name(key: str) -> str:
    """Name of the ``pm.Data`` container holding the parameters of prior ``key``."""
    return f"prior_{key}"


def prior_variable(name: str, prior: Prior) -> str:
    """The free variable that carries the prior density of ``name`` (the precision for
    ``inverse_gamma_precision``, else ``name`` itself)."""
    return f"{name}_precision" if prior.dist == "inverse_gamma_precision" else name


def add_prior(name: str, prior: Prior, params: Any, **kwargs: Any) -> Any:
    """Add the random variable ``name`` with ``prior`` to the current PyMC model.

    Parameters
    ----------
    name
        Variable name.
    prior
        Its prior (only ``prior.dist`` is used: the values come from ``params``).
    params
        A tensor (``pm.Data``) of the prior's parameters in :data:`PRIOR_PARAMS` order.
    **kwargs
        ``dims`` or ``shape`` of the variable.
    """
    # imported here: PyMC takes seconds to import; only building a model needs it
    import pymc as pm

    d = prior.dist
    if d == "normal":
        return pm.Normal(name, mu=params[0], sigma=params[1], **kwargs)
    if d == "student_t":
        return pm.StudentT(name, nu=params[0], mu=params[1], sigma=params[2], **kwargs)
    if d == "halfnormal":
        return pm.HalfNormal(name, sigma=params[0], **kwargs)
    if d == "half_student_t":
        return pm.HalfStudentT(name, nu=params[0], sigma=params[1], **kwargs)
    if d == "exponential":
        return pm.Exponential(name, lam=params[0], **kwargs)
    if d == "inverse_gamma_precision":
        tau = pm.Gamma(prior_variable(name, prior), alpha=params[0], beta=params[1], **kwargs)
        return pm.Deterministic(name, tau**-0.5, dims=kwargs.get("dims"))
    raise ValueError(f"unknown prior distribution {d!r}")


def log_density(prior: Prior, x: np.ndarray) -> np.ndarray:
    """Log prior density of draws ``x`` of the variable that carries it (see
    :func:`prior_variable`), elementwise, exactly as :func:`add_prior`'s PyMC
    distribution computes it."""
    # imported here: scipy loads only where a prior density is evaluated (not at CLI start-up)
    from scipy import (
        stats,  # here: scipy.stats costs ~1 s at import (reading a panel must not pay it)
    )

    p = prior.params
    x = np.asarray(x, dtype=float)
    d = prior.dist
    if d == "normal":
        return stats.norm.logpdf(x, p[0], p[1])
    if d == "student_t":
        return stats.t.logpdf(x, p[0], p[1], p[2])
    if d == "halfnormal":
        return stats.halfnorm.logpdf(x, 0.0, p[0])
    if d == "half_student_t":
        return np.where(x >= 0, math.log(2.0) + stats.t.logpdf(x, p[0], 0.0, p[1]), -np.inf)
    if d == "exponential":
        return stats.expon.logpdf(x, 0.0, 1.0 / p[0])
    if d == "inverse_gamma_precision":
        return stats.gamma.logpdf(x, p[0], 0.0, 1.0 / p[1])
    raise ValueError(f"unknown prior distribution {d!r}")


def prior_sd(prior: Prior) -> float:
    """Standard deviation of the quantity a prior describes (of the SD itself for
    standard deviations); ``inf`` when it has none (heavy tails)."""
    # imported here: scipy loads only where a prior density is evaluated (not at CLI start-up)
    from scipy import special

    p = prior.params
    d = prior.dist
    if d == "normal":
        return p[1]
    if d == "student_t":
        return p[2] * math.sqrt(p[0] / (p[0] - 2)) if p[0] > 2 else math.inf
    if d == "halfnormal":
        return p[0] * math.sqrt(1 - 2 / math.pi)
    if d == "half_student_t":
        nu, s = p
        if nu <= 2:
            return math.inf
        m = 2 * s * math.sqrt(nu / math.pi) * math.exp(special.gammaln((nu + 1) / 2) - special.gammaln(nu / 2)) / (nu - 1)
        return math.sqrt(s**2 * nu / (nu - 2) - m**2)
    if d == "exponential":
        return 1.0 / p[0]
    if d == "inverse_gamma_precision":
        a, b = p  # sigma = tau^-1/2, tau ~ Gamma(a, rate b): E sigma^k = b^(k/2) G(a - k/2) / G(a)
        if a <= 1:
            return math.inf
        m1 = math.exp(0.5 * math.log(b) + special.gammaln(a - 0.5) - special.gammaln(a))
        return math.sqrt(max(b / (a - 1) - m1**2, 0.0))
    raise ValueError(f"unknown prior distribution {d!r}")
