"""Poisson family: a count of events with an exposure (log link, exposure offset).

For ward ``w`` in period ``t`` with ``y`` events and exposure ``E`` (population,
households, working-age population)::

    y[w,t] ~ Poisson(E[w,t] * exp(eta[w,t]))                    ("none" / "ward_period")
    y[w,t] ~ NegativeBinomial(mu=E * exp(eta), alpha=1 / sigma_od**2)       ("negbin")

``exp(did)`` is the rate ratio for a typical ward.  ``sigma_od`` is the coefficient of
variation of the negative binomial's gamma mixing, so its prior (``sigma_obs``)
means the same as ``sigma_wp``'s.  The family name ``negbin``
(``nbdid fit --family negbin``) is this family with ``overdispersion = "negbin"``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nbdid.families.base import Z95, PooledStats
from nbdid.families.counts import CountFamily, log_gamma_ratio, log_gamma_ratio_np, observed_counts

if TYPE_CHECKING:
    import xarray as xr

    from nbdid.config import ModelConfig


class Poisson(CountFamily):
    """Poisson counts (rates): ``count`` events with ``exposure`` people or households."""

    name = "poisson"
    link = "log"
    ratio_scale = "rate_ratio"
    generator_sd_fields = ("ward_sd_rate", "change_sd_rate", "overdispersion_rate")
    description = "a count of events with an exposure (people or households); the value is a rate"
    default_multiplier = 1000.0
    default_unit = "per 1,000"
    default_base = 0.08
    value_label = "rate per unit of exposure (count / exposure)"

    def likelihood_text(self, model_cfg: ModelConfig = None) -> str:
        """The likelihood in words, for the methods section of a report."""
        return "a Poisson likelihood of the count with the log exposure as offset, log link"

    def link_fn(self, x):
        return np.log(x)

    def inverse_link(self, eta):
        return np.exp(eta)

    def counterfactual(self, level, effect):
        """``level * exp(-effect)``."""
        return level * np.exp(-np.asarray(effect, dtype=float))

    # ------------------------------------------------------------------ link-scale data
    def empirical_link(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        y = np.asarray(arrays["count"], dtype=float) + 0.5
        e = np.asarray(arrays["exposure"], dtype=float) + 1.0
        return np.log(y / e)

    def sampling_variance(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        return 1.0 / (np.asarray(arrays["count"], dtype=float) + 0.5)

    def link_centre(self, arrays, pre) -> float:
        c = arrays["count"][pre].sum() + 0.5
        e = arrays["exposure"][pre].sum() + 1.0
        return float(np.log(c / e))

    # ------------------------------------------------------------------ PyMC
    def add_likelihood(self, eta: Any, data: Mapping[str, Any], cfg: ModelConfig) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        if cfg.overdispersion == "ward_period":
            eta = self._ward_period_effect(eta, cfg, data)
        # the log densities below equal PyMC's Poisson and NegativeBinomial with
        # mu = exposure * exp(eta); y * log(exposure) - log(y!) is data (y_logc)
        logc = data["y_logc"]
        if cfg.overdispersion == "negbin":
            sigma_od = self._obs_sd("sigma_od", data, cfg)

            def nb_dist(eta, exposure, alpha, size):
                return pm.NegativeBinomial.dist(mu=exposure * pt.exp(eta), alpha=alpha, size=size)

            # written as y * eta - alpha * log1p(mu / alpha) - y * log1p(mu / alpha) + logc
            # + D(y, alpha), with D = log Gamma(y + alpha) - log Gamma(alpha) - y log(alpha):
            # as alpha grows (sigma_od -> 0, Poisson data) every term stays small, where
            # PyMC's form subtracts numbers of size alpha log(alpha) (at alpha = 1e9 that
            # is noise of about 1e-6 per observation, 0.1 on a national annual panel: the
            # sampler's step size collapsed).  D is evaluated once per *distinct* count and
            # gathered per observation: a national annual panel has 78,947 observations
            # and under 300 distinct counts
            distinct, level = data["y_distinct"], data["y_level"]

            def nb_logp(y, eta, exposure, alpha):
                mu = exposure * pt.exp(eta)
                shrink = pt.log1p(mu / alpha)
                return (log_gamma_ratio(distinct, alpha)[level] + y * eta
                        - (alpha + y) * shrink + logc)

            observed_counts((eta, data["exposure"], 1.0 / sigma_od**2), nb_dist, nb_logp, data)
        else:
            def poisson_dist(eta, exposure, size):
                return pm.Poisson.dist(mu=exposure * pt.exp(eta), size=size)

            def poisson_logp(y, eta, exposure):
                return y * eta - exposure * pt.exp(eta) + logc

            observed_counts((eta, data["exposure"]), poisson_dist, poisson_logp, data)

    def data_containers(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The count containers, and for the negative binomial the distinct counts
        (``y_distinct``, no dims: their number changes with the data) and each
        observation's position among them (``y_level``)."""
        distinct, level = np.unique(np.asarray(arrays["count"], dtype="int64"), return_inverse=True)
        return {**super().data_containers(arrays), "y_distinct": distinct.astype("float64"),
                "y_level": level.reshape(-1).astype("int64")}

    def logp_constant(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """``y * log(exposure) - log(y!)``."""
        # imported here: SciPy's special functions load only when a model is built
        from scipy.special import gammaln

        y = np.asarray(arrays["count"], dtype=float)
        return y * np.log(np.asarray(arrays["exposure"], dtype=float)) - gammaln(y + 1.0)

    # ------------------------------------------------------------------ NumPy draws
    def expected(self, eta, arrays):
        return np.exp(eta)

    def draw(self, eta, posterior: xr.Dataset, arrays, rng):
        mu = arrays["exposure"] * np.exp(eta)
        if "sigma_od" in posterior:
            alpha = 1.0 / posterior["sigma_od"].values[..., None] ** 2
            mu = rng.gamma(alpha, mu / alpha)
        return rng.poisson(mu)

    def log_likelihood(self, eta, posterior: xr.Dataset, arrays):
        from scipy import stats  # here: scipy.stats costs ~1 s, and reading a panel must not pay it

        y = arrays["count"]
        mu = arrays["exposure"] * np.exp(eta)
        if "sigma_od" in posterior:
            # the model's form (add_likelihood), not SciPy's nbinom, which loses its
            # digits as sigma_od -> 0 (log_gamma_ratio_np)
            from scipy.special import gammaln, xlogy

            alpha = 1.0 / posterior["sigma_od"].values[..., None] ** 2
            yf = np.asarray(y, dtype=float)
            out = log_gamma_ratio_np(yf, alpha)
            out += xlogy(yf, mu)
            mu /= alpha
            np.log1p(mu, out=mu)
            mu *= alpha + yf
            out -= mu
            out -= gammaln(yf + 1.0)
            return out
        return stats.poisson.logpmf(y, mu)

    # ------------------------------------------------------------------ frequentist
    def pooled(self, totals: pd.DataFrame, multiplier: float) -> PooledStats:
        c, e = float(totals["count"].sum()), float(totals["exposure"].sum())
        p = c / e
        se = multiplier * math.sqrt(c) / e
        log_se = 1 / math.sqrt(c) if c > 0 else np.inf
        lv = math.log(p) if c > 0 else np.nan
        return PooledStats(total=e, value=multiplier * p, se=se, log_value=lv, log_se=log_se, count=c)

    def glm(self, totals: pd.DataFrame, X: np.ndarray) -> Any:
        # imported here: statsmodels takes about a second to import; only the frequentist fits need it
        import statsmodels.api as sm

        y = totals["count"].to_numpy(float)
        n = totals["exposure"].to_numpy(float)
        return sm.GLM(y, X, family=sm.families.Poisson(), offset=np.log(n))

    def pair_link(self, totals: pd.DataFrame, corrected: bool) -> np.ndarray:
        c = totals["count"].to_numpy(float)
        e = totals["exposure"].to_numpy(float)
        if corrected:
            c = c + 0.5
        return np.log(c / e)

    def shift_totals(self, num, den, mask_remove, mask_add, tau):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = num / den
            p0 = np.where(mask_remove, p * np.exp(-tau), p)
            p1 = np.where(mask_add, p0 * np.exp(tau), p0)
        return p1 * den, p0 * den

    def implied_total(self, value: float, half_width: float, multiplier: float, *,
                      z: float = Z95) -> float:
        """``N = z^2 * value * multiplier / h^2``."""
        return z**2 * value * multiplier / half_width**2

    def pooled_half_width(self, count, exposure, multiplier: float):
        """The report's pooled 95% CI half-width of a group."""
        rate = multiplier * count / exposure
        return Z95 * np.sqrt(rate * multiplier / exposure)

    # ------------------------------------------------------------------ simulation
    def simulate(self, eta, size, rng, *, sd_within: float = 0.5) -> dict[str, Any]:
        """Poisson counts with exposure ``size``."""
        e = np.asarray(size, dtype=float)
        return {"count": rng.poisson(e * np.exp(eta)), "exposure": e}


POISSON = Poisson()
