"""Shared parts of the count families (binomial and Poisson): a count and an exposure."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from nbdid.errors import ModelError
from nbdid.families.base import Z95, ColumnSpec, Fail, Family


def observed_counts(params: tuple, dist: Any, logp: Any, data: Mapping[str, Any]) -> Any:
    """The observed ``y`` (dims ``obs``) as a ``pm.CustomDist``: ``dist`` generates it
    (prior predictive draws, as PyMC's own distribution) and ``logp`` is its log density,
    written with the data-only terms in the ``y_logc`` container
    (:meth:`CountFamily.logp_constant`).  ``params`` are the distribution's inputs."""
    # imported here: PyMC takes seconds to import; only building a model needs it
    import pymc as pm

    return pm.CustomDist("y", *params, dist=dist, logp=logp, observed=data["y_obs"], dims="obs")


def _power_sums(y: Any) -> tuple[Any, Any, Any, Any]:
    """``S_j = sum_{k<y} k^j`` for j = 1..4 (Faulhaber), for the series of
    :func:`log_gamma_ratio` and :func:`log_gamma_ratio_np` (NumPy or PyTensor)."""
    m = y - 1.0
    s1 = m * y / 2.0
    s2 = m * y * (2.0 * m + 1.0) / 6.0
    s3 = s1**2
    s4 = m * y * (2.0 * m + 1.0) * (3.0 * m**2 + 3.0 * m - 1.0) / 30.0
    return s1, s2, s3, s4


def log_gamma_ratio(y: Any, alpha: Any) -> Any:
    """``log Gamma(y + alpha) - log Gamma(alpha) - y log(alpha)`` for counts ``y``,
    accurate for any ``alpha > 0`` (a PyTensor expression, elementwise).

    The negative binomial (:class:`~nbdid.families.poisson.Poisson`) and the
    beta-binomial (:class:`~nbdid.families.binomial.Binomial`) write their log densities
    with it, so that they tend to the Poisson's and the binomial's as the overdispersion
    ``sigma_od`` goes to 0 instead of losing their digits.

    Directly while ``alpha <= 100 y`` (rounding error about 1e-16 alpha log(alpha), a
    relative 1e-10 of the value at most), and beyond that as the series
    ``sum_{k<y} log(1 + k / alpha) = S1/a - S2/(2a^2) + S3/(3a^3) - S4/(4a^4)``
    (``S_j = sum_{k<y} k^j``, ``k / alpha <= 0.01``, truncation error below
    ``y * 1e-11``): the direct difference of two log-gamma values of size
    ``alpha log(alpha)`` loses all its digits as ``alpha`` grows.
    """
    # imported here: PyTensor loads with PyMC; only building a model needs it
    import pytensor.tensor as pt

    large = alpha > 100.0 * y
    safe = pt.switch(large, 1.0, alpha)  # the direct branch's value is discarded there
    direct = pt.gammaln(y + safe) - pt.gammaln(safe) - y * pt.log(safe)
    s1, s2, s3, s4 = _power_sums(y)
    inv = 1.0 / pt.switch(large, alpha, 1.0 + 100.0 * y)  # finite where it is discarded
    series = inv * (s1 - inv * (s2 / 2.0 - inv * (s3 / 3.0 - inv * s4 / 4.0)))
    return pt.switch(large, series, direct)


def log_gamma_ratio_np(y: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """:func:`log_gamma_ratio` in NumPy (the pointwise log-likelihood, LOO).

    SciPy's ``betabinom`` and ``nbinom`` subtract log-gamma values of size
    ``alpha log(alpha)``: at ``sigma_od = 1e-7`` a beta-binomial observation's log
    density was 4.4 units off, at ``1e-9`` 68,612 (1,161 of 6,954 people).  Written for
    the draws x observations arrays of a national fit: the parts that depend on the
    counts alone are computed at their own size, and at most three arrays of the full
    size are alive at once.
    """
    # imported here: SciPy's special functions load only when they are needed
    from scipy.special import gammaln

    y = np.asarray(y, dtype=float)
    alpha = np.asarray(alpha, dtype=float)
    s1, s2, s3, s4 = _power_sums(y)
    large = alpha > 100.0 * y
    # directly where alpha <= 100 y
    work = np.where(large, 1.0, alpha)
    out = gammaln(y + work)
    out -= gammaln(work)
    np.log(work, out=work)
    work *= y
    out -= work
    if large.any():
        # the series beyond (work: 1 / alpha, then the series)
        np.divide(1.0, np.where(large, alpha, 1.0 + 100.0 * y), out=work)
        series = work * (s4 / 4.0)
        np.subtract(s3 / 3.0, series, out=series)
        series *= work
        np.subtract(s2 / 2.0, series, out=series)
        series *= work
        np.subtract(s1, series, out=series)
        series *= work
        np.copyto(out, series, where=large)
    return out


COUNT = ColumnSpec("count", "Int64", "events or people with the outcome (whole number >= 0)", minimum=0)
EXPOSURE = ColumnSpec("exposure", "float64", "trials (binomial, whole number >= count) or "
                      "population/households (poisson, > 0)")


class CountFamily(Family):
    """A count of events or people (``count``) out of an exposure (``exposure``)."""

    columns: ClassVar[tuple[ColumnSpec, ...]] = (COUNT, EXPOSURE)
    required: ClassVar[tuple[str, ...]] = ("count", "exposure")
    deferred: ClassVar[tuple[str, ...]] = ("exposure",)
    weight_column: ClassVar[str] = "exposure"
    y_dtype: ClassVar[str] = "int64"
    overdispersion_choices: ClassVar[tuple[str, ...]] = ("negbin", "ward_period", "none")
    is_count: ClassVar[bool] = True
    ppc_total_label: ClassVar[str] = "total events"

    # ------------------------------------------------------------------ panel rows
    def check_rows(self, cols, rows, fail: Fail, *, require_deferred: bool = True) -> None:
        c, e = cols["count"], cols["exposure"]
        fail("count is empty for {family} indicator '{indicator}'", rows & np.isnan(c), "count")
        if require_deferred:
            fail("exposure is empty for {family} indicator '{indicator}'", rows & np.isnan(e), "exposure")
        has_e = rows & ~np.isnan(e)
        fail("exposure must be positive, not {exposure}", has_e & (e <= 0), "exposure")
        self._check_counts(c, e, has_e & ~np.isnan(c), fail)

    def _check_counts(self, c: np.ndarray, e: np.ndarray, rows: np.ndarray, fail: Fail) -> None:
        """Family-specific checks of rows with both a count and an exposure."""

    def check_bounds(self, cols, rows, fail: Fail, bounds) -> None:
        """Column ranges (:meth:`Family.check_bounds`), then ``count / exposure`` against
        the indicator's ``max_rate``."""
        super().check_bounds(cols, rows, fail, bounds)
        limit = bounds.get("max_rate")
        if limit is None:
            return
        c, e = cols["count"], cols["exposure"]
        with np.errstate(divide="ignore", invalid="ignore"):
            rate = c / e
        bad = rows & ~np.isnan(rate) & (rate > limit)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            fail(f"count {{count}} with exposure {{exposure}} is {rate[i]:.4g} per unit of "
                 f"exposure, above the plausible {limit[i]:g} for indicator '{{indicator}}' "
                 "(a wrong denominator?); correct it, or raise 'bounds.max_rate' of the "
                 "indicator in the config if it is right", bad, "count")

    def degenerate(self, cols, rows) -> tuple[str, str] | None:
        c = cols["count"][rows]
        c = c[~np.isnan(c)]
        if c.size and not c.any():
            return ("every count of indicator '{indicator}' is 0: there is no event to model "
                    "(a wrong column or filter in the source?)", "count")
        return None

    # ------------------------------------------------------------------ model inputs
    def design_arrays(self, frame: pd.DataFrame, indicator: str) -> dict[str, np.ndarray]:
        count = frame["count"].astype("int64").to_numpy()
        exposure = frame["exposure"].astype("float64").to_numpy()
        if (exposure <= 0).any():
            raise ModelError(f"{indicator}: exposure must be > 0")
        return {"count": count, "exposure": exposure}

    def observed(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        return arrays["count"]

    def weights(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        return np.asarray(arrays["exposure"], dtype=float)

    def data_containers(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"exposure": arrays["exposure"], "y_obs": arrays["count"],
                "y_logc": self.logp_constant(arrays)}

    def logp_constant(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Each observation's log-likelihood term that depends on the data alone
        (``-log y!``, ``log C(n, y)``, ...).  Required.

        It is a ``pm.Data`` container (``y_logc``) that :meth:`add_likelihood` adds to
        the log density, so the compiled density has the same value as PyMC's own
        distribution but does not evaluate log-gamma functions of the data at every
        gradient evaluation (PyTensor cannot fold them into constants: the data are
        swapped on refits)."""
        raise NotImplementedError

    def _with_y(self, arrays, y):
        return {"count": y}

    def value_scale(self, y: np.ndarray, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """The count per unit of exposure: a share of the trials (binomial) or a rate."""
        return np.asarray(y, dtype=float) / np.asarray(arrays["exposure"], dtype=float)

    def ppc_scale(self, y: np.ndarray, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Log of the smoothed rate or proportion, ``log((y + 0.5) / exposure)``."""
        return np.log((y + 0.5) / arrays["exposure"])

    # ------------------------------------------------------------------ frequentist
    def ward_totals(self, rows: pd.DataFrame) -> pd.DataFrame:
        count = rows["count"].astype("float64").to_numpy()
        exposure = rows["exposure"].astype("float64").to_numpy()
        return pd.DataFrame({"count": count, "exposure": exposure, "num": count, "den": exposure},
                            index=rows.index)

    def unit_value(self, totals: pd.DataFrame, multiplier: float) -> pd.Series:
        with np.errstate(divide="ignore", invalid="ignore"):
            return multiplier * totals["count"] / totals["exposure"]

    def level(self, totals: pd.DataFrame) -> float:
        """Pooled natural-scale value (proportion or rate) of some wards' totals."""
        return float(totals["count"].sum() / totals["exposure"].sum())

    def glm_defined(self, num, den) -> bool:
        return bool((num > 0).all())

    def needs_correction(self, totals: pd.DataFrame) -> bool:
        return bool((totals["count"] <= 0).any())

    # ------------------------------------------------------------------ simulation
    def simulate_size(self, base, t, rng, *, mean_transactions: float = 40.0) -> float:
        """The ward's baseline exposure with a small drift per period.

        Multiplicative, ``base * (1 + 0.05 z) ** t``, so that it stays positive on long
        panels (an additive ``base * (1 + 0.05 t z)`` went negative by period 10); the
        first two periods are as before.
        """
        return base * max(1 + 0.05 * rng.standard_normal(), 0.5) ** t


__all__ = ["CountFamily", "Z95"]
