"""Binomial family: people with an outcome out of a number of people (logit link).

For ward ``w`` in period ``t`` with ``y`` people with the outcome out of ``N`` trials::

    y[w,t] ~ Binomial(N[w,t], p[w,t]),   logit p[w,t] = eta[w,t]

``exp(did)`` is the odds ratio for a typical ward.  Overdispersion
(``ModelConfig.overdispersion``): ``"ward_period"`` adds a non-centred normal
ward x period effect (``sigma_wp * wp_z``); ``"negbin"`` uses the beta-binomial, with
``sigma_od`` the standard deviation of the beta mixing distribution on the logit scale
(:func:`beta_shapes`); ``"none"`` is the plain binomial.  See ``docs/models.md``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from nbdid.errors import ModelError
from nbdid.families.base import Z95, Fail, PooledStats, expit, logit
from nbdid.families.counts import CountFamily, log_gamma_ratio, log_gamma_ratio_np, observed_counts

if TYPE_CHECKING:
    import xarray as xr

    from nbdid.config import ModelConfig


_KAPPA_MIN = 1e-3
"""Smallest beta concentration ``a + b`` (only reached with ``sigma_od`` above 2)."""

_ETA_MAX = 700.0
"""``|eta|`` beyond which ``exp(eta)`` would overflow (a probability of 1 - 1e-304)."""


def beta_shapes(eta: np.ndarray, sigma_od: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Shapes ``a, b`` of the beta-binomial's mixing distribution for logit ``eta``.

    The success probability ``q`` of an observation is ``Beta(a, b)`` with mean
    ``p = invlogit(eta)`` and variance ``(sigma_od p (1 - p))^2``: what a normal
    observation-level effect of SD ``sigma_od`` on the logit scale gives to first order,
    so ``sigma_od`` means what ``sigma_wp`` (``overdispersion = "ward_period"``) means,
    and for small ``p`` it is the coefficient of variation of ``q``.  The concentration
    is ``kappa = a + b = 1 / (sigma_od^2 p (1 - p)) - 1`` (at least ``_KAPPA_MIN``).

    The concentration grows as ``p`` nears 0 or 1.  With a constant coefficient of
    variation instead (``kappa = (1 - p) / (p sigma_od^2) - 1``, nbdid before 2026-12)
    it fell to 0 as ``p`` neared 1, where the likelihood goes flat: on an annual
    national panel some chains parked a few wards' post-period logits near +8 (data:
    -1.6) and stayed there, 1,600 log-density units below the others (docs/scale.md).
    """
    eta = np.asarray(np.clip(np.asarray(eta, dtype=float), -_ETA_MAX, _ETA_MAX))
    s2 = np.asarray(np.asarray(sigma_od, dtype=float) ** 2)
    p = expit(eta)
    # a = (1 + e^eta) / s^2 - p and b = (1 + e^-eta) / s^2 - (1 - p), computed in place
    # (the arrays of a national fit's log-likelihood are draws x observations)
    shape = np.broadcast_shapes(eta.shape, s2.shape)
    a = np.empty(shape)
    np.exp(eta, out=a)
    a += 1.0
    a /= s2
    a -= p
    b = np.empty(shape)
    np.negative(eta, out=b)
    np.exp(b, out=b)
    b += 1.0
    b /= s2
    b += p
    b -= 1.0
    if np.any(s2 >= 4.0 / (1.0 + _KAPPA_MIN)):  # kappa >= 4 / s^2 - 1: below the floor only here
        small = 2.0 + 2.0 * np.cosh(eta) <= (1.0 + _KAPPA_MIN) * s2
        np.copyto(a, _KAPPA_MIN * p, where=small)
        np.copyto(b, _KAPPA_MIN * (1.0 - p), where=small)
    return a, b


class Binomial(CountFamily):
    """Binomial counts (percentages): ``count`` people out of ``exposure`` trials."""

    name = "binomial"
    link = "logit"
    ratio_scale = "odds_ratio"
    description = "a count out of a known number of trials (people); the value is a percentage"
    default_multiplier = 100.0
    default_unit = "pp"
    default_base = 0.15
    value_label = "share of the trials (count / exposure)"
    count_within_exposure = True
    generator_sd_fields = ("ward_sd_logit", "change_sd_logit", "overdispersion_logit")

    def likelihood_text(self, model_cfg: ModelConfig = None) -> str:
        """The likelihood in words, for the methods section of a report."""
        return "a binomial likelihood of the count out of its trials (people), logit link"

    def link_fn(self, x):
        return logit(x)

    def inverse_link(self, eta):
        return expit(eta)

    def counterfactual(self, level, effect):
        """``expit(logit(level) - effect)``."""
        return expit(logit(level) - np.asarray(effect, dtype=float))

    # ------------------------------------------------------------------ panel rows
    def _check_counts(self, c, e, rows, fail: Fail) -> None:
        fail("exposure (number of trials) of a binomial indicator must be a whole number, "
             "not {exposure}", rows & (e != np.round(e)), "exposure")
        fail("count {count} is larger than its exposure {exposure} (number of trials) of "
             "binomial indicator '{indicator}'", rows & (c > e), "count")

    def degenerate(self, cols, rows):
        found = super().degenerate(cols, rows)
        if found is not None:
            return found
        c, e = cols["count"][rows], cols["exposure"][rows]
        ok = ~np.isnan(c) & ~np.isnan(e)
        if ok.any() and np.all(c[ok] == e[ok]):
            return ("every count of indicator '{indicator}' equals its exposure (everyone has "
                    "the outcome): there is no variation to model", "count")
        return None

    def design_arrays(self, frame: pd.DataFrame, indicator: str) -> dict[str, np.ndarray]:
        arrays = super().design_arrays(frame, indicator)
        count, exposure = arrays["count"], arrays["exposure"]
        if (np.abs(exposure - np.round(exposure)) > 1e-6).any() or (count > exposure).any():
            raise ModelError(f"{indicator}: binomial rows need whole-number exposure >= count")
        return arrays

    # ------------------------------------------------------------------ link-scale data
    def empirical_link(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        y = np.asarray(arrays["count"], dtype=float) + 0.5
        e = np.asarray(arrays["exposure"], dtype=float) + 1.0
        return np.log(y / (e - y))

    def sampling_variance(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        y = np.asarray(arrays["count"], dtype=float)
        return 1.0 / (y + 0.5) + 1.0 / (np.asarray(arrays["exposure"], dtype=float) - y + 0.5)

    def link_centre(self, arrays, pre) -> float:
        c = arrays["count"][pre].sum() + 0.5
        e = arrays["exposure"][pre].sum() + 1.0
        p = c / e
        return float(np.log(p) - np.log1p(-p))

    # ------------------------------------------------------------------ PyMC
    def add_likelihood(self, eta: Any, data: Mapping[str, Any], cfg: ModelConfig) -> None:
        import pymc as pm
        import pytensor.tensor as pt

        trials = pt.cast(pt.round(data["exposure"]), "int64")
        if cfg.overdispersion == "ward_period":
            eta = self._ward_period_effect(eta, cfg, data)
        # the log densities below equal PyMC's Binomial and BetaBinomial; the binomial
        # coefficient log C(n, y) is data (y_logc)
        logc = data["y_logc"]
        if cfg.overdispersion == "negbin":
            sigma_od = self._obs_sd("sigma_od", data, cfg)

            def shapes(eta, sigma_od):
                # beta_shapes (above) in PyTensor: a = p kappa = (1 + e^eta) / s^2 - p
                # and b = (1 - p) kappa = (1 + e^-eta) / s^2 - (1 - p), exact and
                # finite where kappa itself overflows (|eta| large)
                eta = pt.clip(eta, -_ETA_MAX, _ETA_MAX)
                p = pm.math.invlogit(eta)
                s2 = sigma_od**2
                big = 2.0 + 2.0 * pt.cosh(eta) > (1.0 + _KAPPA_MIN) * s2  # kappa > _KAPPA_MIN
                a = pt.switch(big, (1.0 + pt.exp(eta)) / s2 - p, _KAPPA_MIN * p)
                b = pt.switch(big, (1.0 + pt.exp(-eta)) / s2 - (1.0 - p), _KAPPA_MIN * (1.0 - p))
                return a, b

            def bb_dist(eta, n, sigma_od, size):
                a, b = shapes(eta, sigma_od)
                return pm.BetaBinomial.dist(n=n, alpha=a, beta=b, size=size)

            # log B(y + a, n - y + b) - log B(a, b) written as
            # D(y, a) + D(n - y, b) - D(n, a + b) + y log p + (n - y) log(1 - p), with
            # D(k, x) = log Gamma(k + x) - log Gamma(x) - k log(x) (log_gamma_ratio) and
            # p = a / (a + b): as sigma_od -> 0 (binomial data) the D terms go to 0 and
            # the density to the binomial's, where the six log-gamma values of size
            # (a + b) log(a + b) of the textbook form cancel to rounding noise
            def bb_logp(y, eta, n, sigma_od):
                a, b = shapes(eta, sigma_od)
                return (log_gamma_ratio(y, a) + log_gamma_ratio(n - y, b) - log_gamma_ratio(n, a + b)
                        + y * eta - n * pt.softplus(eta) + logc)

            observed_counts((eta, trials, sigma_od), bb_dist, bb_logp, data)
        else:
            def binomial_dist(eta, n, size):
                return pm.Binomial.dist(n=n, p=pm.math.invlogit(eta), size=size)

            def binomial_logp(y, eta, n):
                # y log p + (n - y) log(1 - p) with p = invlogit(eta)
                return y * eta - n * pt.softplus(eta) + logc

            observed_counts((eta, trials), binomial_dist, binomial_logp, data)

    def logp_constant(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """``log C(n, y)`` with ``n`` the trials (the exposure, rounded)."""
        # imported here: SciPy's special functions load only when a model is built
        from scipy.special import gammaln

        y = np.asarray(arrays["count"], dtype=float)
        n = np.round(np.asarray(arrays["exposure"], dtype=float))
        return gammaln(n + 1.0) - gammaln(y + 1.0) - gammaln(n - y + 1.0)

    # ------------------------------------------------------------------ NumPy draws
    def expected(self, eta, arrays):
        return 1.0 / (1.0 + np.exp(-eta))

    def draw(self, eta, posterior: xr.Dataset, arrays, rng):
        p = 1.0 / (1.0 + np.exp(-eta))
        trials = np.round(arrays["exposure"]).astype(np.int64)
        if "sigma_od" in posterior:
            a, b = beta_shapes(eta, posterior["sigma_od"].values[..., None])
            p = rng.beta(a, b)
        return rng.binomial(np.broadcast_to(trials, p.shape), p)

    def log_likelihood(self, eta, posterior: xr.Dataset, arrays):
        from scipy import stats  # here: scipy.stats costs ~1 s, and reading a panel must not pay it

        y = arrays["count"]
        trials = np.round(arrays["exposure"]).astype(np.int64)
        p = expit(eta)
        if "sigma_od" in posterior:
            # the model's form (add_likelihood), not SciPy's betabinom, which loses its
            # digits as sigma_od -> 0 (log_gamma_ratio_np)
            a, b = beta_shapes(eta, posterior["sigma_od"].values[..., None])
            yf, nf = np.asarray(y, dtype=float), trials.astype(float)
            out = log_gamma_ratio_np(yf, a)
            out += log_gamma_ratio_np(nf - yf, b)
            a += b
            del b
            out -= log_gamma_ratio_np(nf, a)
            del a
            out += yf * eta
            out -= nf * np.logaddexp(0.0, eta)
            out += self.logp_constant(arrays)
            return out
        return stats.binom.logpmf(y, trials, p)

    # ------------------------------------------------------------------ frequentist
    def pooled(self, totals: pd.DataFrame, multiplier: float) -> PooledStats:
        c, e = float(totals["count"].sum()), float(totals["exposure"].sum())
        p = c / e
        se = multiplier * math.sqrt(p * (1 - p) / e)
        inside = 0 < c < e
        log_se = math.sqrt(1 / c + 1 / (e - c)) if inside else np.inf
        lv = math.log(p / (1 - p)) if inside else np.nan
        return PooledStats(total=e, value=multiplier * p, se=se, log_value=lv, log_se=log_se, count=c)

    def glm(self, totals: pd.DataFrame, X: np.ndarray) -> Any:
        # imported here: statsmodels takes about a second to import; only the frequentist fits need it
        import statsmodels.api as sm

        y = totals["count"].to_numpy(float)
        n = totals["exposure"].to_numpy(float)
        return sm.GLM(np.column_stack([y, n - y]), X, family=sm.families.Binomial())

    def glm_defined(self, num, den) -> bool:
        return bool((num > 0).all() and (num < den).all())

    def needs_correction(self, totals: pd.DataFrame) -> bool:
        return bool((totals["count"] <= 0).any() or (totals["count"] >= totals["exposure"]).any())

    def pair_link(self, totals: pd.DataFrame, corrected: bool) -> np.ndarray:
        c = totals["count"].to_numpy(float)
        e = totals["exposure"].to_numpy(float)
        if corrected:
            c, e = c + 0.5, e + 1.0
        return np.log(c / (e - c))

    def shift_totals(self, num, den, mask_remove, mask_add, tau):
        with np.errstate(divide="ignore", invalid="ignore"):
            p = num / den
            p0 = np.where(mask_remove, expit(logit(p) - tau), p)
            p1 = np.where(mask_add, expit(logit(p0) + tau), p0)
        return p1 * den, p0 * den

    def implied_total(self, value: float, half_width: float, multiplier: float, *,
                      z: float = Z95) -> float:
        """``n = p (1 - p) / (h / z)^2`` with ``p = value / multiplier``."""
        p = value / multiplier
        return p * (1 - p) / (half_width / (z * multiplier)) ** 2

    def pooled_half_width(self, count, exposure, multiplier: float):
        """The report's pooled 95% CI half-width of a group."""
        p = count / exposure
        return Z95 * multiplier * np.sqrt(p * (1 - p) / exposure)

    # ------------------------------------------------------------------ simulation
    def simulate(self, eta, size, rng, *, sd_within: float = 0.5) -> dict[str, Any]:
        """Whole-number trials ``round(size)`` and binomial counts."""
        e = np.round(np.asarray(size, dtype=float))
        count = rng.binomial(e.astype(np.int64), expit(eta))
        return {"count": count, "exposure": e}

    def link_of_base(self, base: float) -> float:
        return float(np.log(base / (1 - base)))


BINOMIAL = Binomial()
