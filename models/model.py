"""The hierarchical DiD model of a design: PyMC graph, expected values, replicates.

One model for every family: :func:`nbdid.models.design.add_did_terms` writes the
shared linear predictor (ward levels and changes, pair effects, period and group
effects, the DiD) and the design's family adds its likelihood
(:meth:`nbdid.families.Family.add_likelihood`).  The NumPy functions here recompute the
linear predictor from posterior draws and pass it through the family.

>>> model = build_model(design, ModelConfig())      # doctest: +SKIP
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pymc as pm

from nbdid.models.design import (
    Design,
    add_did_terms,
    linear_predictor_draws,
    redraw_ward_change,
    resolve_model_config,
)
from nbdid.models.priors import log_prior as _log_prior

if TYPE_CHECKING:
    import xarray as xr

    from nbdid.config import ModelConfig, Pointwise


def build_model(design: Design, cfg: ModelConfig) -> pm.Model:
    """The PyMC model of ``design`` with the structure and priors of ``cfg``.

    Parameters
    ----------
    design
        Model inputs.  With ``design.obs_weight`` (0/1 per observation) the model has a
        potential that removes the log-likelihood of observations of weight 0: refits of
        one compiled model then leave out one ward at a time (leave-one-ward-out
        cross-validation, :func:`nbdid.workflow.fit.loo_wards_table`).
    cfg
        :class:`nbdid.config.ModelConfig` (resolved here: :func:`resolve_model_config`).

    Returns
    -------
    pymc.Model
        With ``pm.Data`` containers named as in :func:`nbdid.models.design.model_data`
        and the observed variable ``y`` (dims ``obs``).
    """
    cfg = resolve_model_config(design, cfg)
    with pm.Model(coords=design.coords) as model:
        eta, data = add_did_terms(design, cfg)
        design.family.add_likelihood(eta, data, cfg)
        if design.obs_weight is not None:
            y = model["y"]
            pm.Potential("held_out", pm.math.sum((data["obs_weight"] - 1.0)
                                                 * pm.logp(y, model.rvs_to_values[y])))
    return model


def expected(posterior: xr.Dataset, design: Design, *, counterfactual: bool = False) -> np.ndarray:
    """Expected value per unit of weight, per draw and observation ``(chain, draw, obs)``:
    a proportion, a rate per unit exposure or an arithmetic mean price.

    ``counterfactual`` drops the treatment x period interaction.
    """
    eta = linear_predictor_draws(posterior, design, counterfactual=counterfactual)
    return design.family.expected(eta, design.arrays)


def replicate(posterior: xr.Dataset, design: Design, rng: np.random.Generator) -> np.ndarray:
    """Replicated observations ``(chain, draw, obs)``.

    Replicates are "mixed": each ward's change is redrawn from its conditional
    population distribution (:func:`nbdid.models.design.redraw_ward_change`) and
    observation-level effects (``wp_effect``) from theirs, so the check is as strict for
    ``ward_period`` as for the beta-binomial or negative binomial, whose mixing is
    redrawn by construction.
    """
    eta = linear_predictor_draws(posterior, design) + redraw_ward_change(posterior, design, rng)
    if "wp_effect" in posterior:
        sig = posterior["sigma_wp"].values[..., None]
        eta = eta - posterior["wp_effect"].values + sig * rng.standard_normal(eta.shape)
    return design.family.draw(eta, posterior, design.arrays, rng)


def log_likelihood(posterior: xr.Dataset, design: Design, *, by: Pointwise = "obs") -> np.ndarray:
    """Pointwise log-likelihood of the observed values ``(chain, draw, obs)``.

    Conditional on every parameter of the model (observation-level effects included),
    as PyMC's ``compute_log_likelihood`` computes it, but with NumPy/SciPy from the
    posterior draws: no compilation, so refits stay fast.  ArviZ's ``loo``/``waic``
    read it from the ``log_likelihood`` group.

    ``by="ward"`` sums each ward's observations: ``(chain, draw, ward)``, the unit of
    leave-one-ward-out PSIS-LOO.  Large posteriors are processed a block of draws at a
    time (:func:`draw_chunks`).
    """
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    if by == "ward":
        order = np.argsort(design.ward_idx, kind="stable")
        n_ward = len(design.coords["ward"])
        starts = np.searchsorted(design.ward_idx[order], np.arange(n_ward))
        out = np.empty((n_chain, n_draw, n_ward))
    else:
        out = np.empty((n_chain, n_draw, design.n_obs))
    for sl in draw_chunks(posterior, design.n_obs):
        part = posterior.isel(draw=sl)
        ll = design.family.log_likelihood(linear_predictor_draws(part, design), part, design.arrays)
        out[:, sl] = np.add.reduceat(ll[..., order], starts, axis=-1) if by == "ward" else ll
    return out


CHUNK_ELEMENTS = 1 << 24
"""Largest block of draws x observations (16.8 million values, 134 MB of float64) the
NumPy post-processing of a fit (log-likelihood, replicates, pooled estimands)
materialises at once.  A study panel (116 observations x 8,000 draws) is one block; a
national one (79,000 observations x 4,000 draws) is done in blocks of draws, so its
memory stays bounded."""


def draw_chunks(posterior: xr.Dataset, n_obs: int, *, elements: int | None = None) -> list[slice]:
    """Slices of the ``draw`` dimension of ``posterior``, each covering at most
    ``elements`` (default :data:`CHUNK_ELEMENTS`) chain x draw x observation values (at
    least one draw each)."""
    elements = CHUNK_ELEMENTS if elements is None else elements
    n_chain, n_draw = posterior.sizes["chain"], posterior.sizes["draw"]
    per = max(1, elements // max(1, n_chain * n_obs))
    return [slice(i, min(i + per, n_draw)) for i in range(0, n_draw, per)]


def log_prior(posterior: xr.Dataset, cfg: ModelConfig) -> dict[str, np.ndarray]:
    """Log prior density of each draw per prior-carrying variable ``{name: (chain, draw)}``
    (:func:`nbdid.models.priors.log_prior`; ``cfg`` a resolved ModelConfig).  ArviZ's
    ``psens`` reads it from the ``log_prior`` group."""
    return _log_prior(posterior, cfg.priors)
