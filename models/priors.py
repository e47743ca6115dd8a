"""The model's priors for one design: data-based defaults, prior data and log prior.

:func:`resolve_priors` turns a :class:`nbdid.config.ModelConfig`'s priors into concrete
ones for a design: unset priors take :data:`nbdid.config.DEFAULT_PRIORS` in data units
(the intercept's location is added to the data's pooled pre-period link value, and
every default is multiplied by the family's prior unit), and ``prior_scale`` widens
every prior except the intercept's.  :func:`prior_data` gives the values of the
``pm.Data`` containers that hold their parameters, and :func:`log_prior` the log prior
density of each posterior draw (the ``log_prior`` group of a fit, read by power-scaling
sensitivity).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nbdid.config import DEFAULT_PRIORS, PRIOR_KEYS, SD_PRIOR_KEYS, Prior, Priors
from nbdid.families.priors import data_name, log_density, prior_variable

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["PRIOR_VARIABLES", "log_prior", "prior_data", "prior_table", "prior_variables", "resolve_priors"]

PRIOR_VARIABLES: dict[str, tuple[str, ...]] = {
    "intercept": ("intercept",),
    "period": ("period_raw",),
    "group": ("group_effect",),
    "did": ("did", "did_raw"),
    "covariate": ("beta_cov", "beta_cov_post"),
    "modification": ("beta_mod",),
    "sigma_ward": ("sigma_ward",),
    "sigma_change": ("sigma_change", "sigma_change_nbi", "sigma_change_benchmark"),
    "sigma_pair": ("sigma_pair",),
    "sigma_obs": ("sigma_od", "sigma_wp", "sigma_wp_nbi", "sigma_wp_benchmark"),
}
"""Model variables that carry each prior (those present in a given model)."""


def resolve_priors(priors: Priors, *, centre: float, unit: float, prior_scale: float = 1.0) -> Priors:
    """Concrete priors for a design.

    Parameters
    ----------
    priors
        The configured priors (``None`` entries take the defaults).
    centre
        The data's pooled pre-period value on the link scale
        (:func:`nbdid.models.design.link_centre`): the default intercept's location.
    unit
        The family's prior unit (:meth:`nbdid.families.Family.prior_unit`).
    prior_scale
        Widens every prior except the intercept's (1: as they are).

    Returns
    -------
    Priors
        Every entry set.
    """
    out: dict[str, Prior] = {}
    for key in PRIOR_KEYS:
        p = getattr(priors, key)
        if p is None:
            p = getattr(DEFAULT_PRIORS, key).scaled(unit)
            if key == "intercept":
                p = Prior(p.dist, (p.params[0] + centre, *p.params[1:])) if p.dist == "normal" else \
                    Prior(p.dist, (p.params[0], p.params[1] + centre, p.params[2]))
        if key != "intercept" and prior_scale != 1.0:
            p = p.widened(prior_scale)
        out[key] = p
    return Priors(**out)


def prior_data(priors: Priors) -> dict[str, np.ndarray]:
    """Values of the ``pm.Data`` containers of the priors' parameters (``prior_<key>``)."""
    return {data_name(k): np.asarray(getattr(priors, k).params, dtype="float64") for k in PRIOR_KEYS}


def prior_variables(posterior: xr.Dataset, priors: Priors) -> dict[str, tuple[str, Prior]]:
    """The free variables of ``posterior`` that carry a prior: ``{variable: (key, prior)}``."""
    out = {}
    for key, names in PRIOR_VARIABLES.items():
        prior = getattr(priors, key)
        for name in names:
            var = prior_variable(name, prior)
            if var in posterior and not (key == "did" and name == "did" and "did_raw" in posterior):
                out[var] = (key, prior)
    return out


def log_prior(posterior: xr.Dataset, priors: Priors) -> dict[str, np.ndarray]:
    """Log prior density of every posterior draw, per prior-carrying variable.

    Only the priors of the model's top-level parameters (:data:`PRIOR_VARIABLES`) are
    included, not the hierarchical distributions of ward and pair effects: as in
    priorsense and brms, power-scaling the prior means power-scaling these.  Vector
    parameters are summed over their elements.

    Returns
    -------
    dict
        ``{variable: array (chain, draw)}``.
    """
    out = {}
    for var, (_key, prior) in prior_variables(posterior, priors).items():
        x = posterior[var].values
        lp = log_density(prior, x)
        out[var] = lp.reshape(lp.shape[:2] + (-1,)).sum(axis=-1)
    return out


def prior_table(priors: Priors, posterior: xr.Dataset = None) -> dict[str, str]:
    """The priors as text by key (``{"did": "normal(0, 2.5)", ...}``), SD priors last;
    with ``posterior``, only those of variables in it (the priors the model used)."""
    keys = [k for k in PRIOR_KEYS if k not in SD_PRIOR_KEYS] + list(SD_PRIOR_KEYS)
    if posterior is not None:
        used = {k for k, _ in prior_variables(posterior, priors).values()}
        keys = [k for k in keys if k in used]
    return {k: str(getattr(priors, k)) for k in keys}
