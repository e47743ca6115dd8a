"""Price family: ward-period mean log prices of property transactions.

For ward ``w`` in period ``t`` with ``n`` transactions, mean log price ``m`` and a
known within-ward-period SD of log prices ``s`` (the ward-period's own SD when it has
at least 10 transactions, else the pooled within SD)::

    m[w,t] ~ StudentT(nu, eta[w,t], sqrt(s[w,t]**2 / n[w,t] (+ sigma_wp**2)))   (or Normal)

``sigma_wp`` is ward x period variation beyond sampling error (left out by
``overdispersion = "auto"`` for two-period panels with ward changes, where every
ward-period already has its own effect); ``nu ~ Gamma(2, 0.1)``.  ``exp(did)`` is the
price ratio for a typical ward.  In pounds, a ward-period's expected arithmetic mean
price is ``exp(eta + s**2 / 2)`` (log-normal prices), pooled with transaction weights
like the report.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd

from nbdid.errors import ModelError
from nbdid.families.base import ColumnSpec, Fail, Family, PooledStats

if TYPE_CHECKING:
    import xarray as xr

    from nbdid.config import ModelConfig

MIN_N_OWN_SD = 10
"""Ward-periods with fewer transactions use the pooled within SD of log prices."""


def pooled_within_sd(n: np.ndarray, sd: np.ndarray) -> float:
    """Pooled within-ward-period SD of log prices, ``sqrt(sum((n-1) s^2) / sum(n-1))``."""
    ok = np.isfinite(sd) & (n >= 2)
    if not ok.any():
        raise ModelError(
            "price panel has no ward-period with two or more transactions and an SD of log "
            "prices; the within-ward SD cannot be estimated"
        )
    return float(np.sqrt(np.sum((n[ok] - 1) * sd[ok] ** 2) / np.sum(n[ok] - 1)))


class Price(Family):
    """Property prices: ``n`` transactions with their mean price and mean and SD of log prices."""

    name = "price"
    link = "log"
    ratio_scale = "price_ratio"
    ppc_total_label = "mean log price"
    generator_sd_fields = ("price_ward_sd", "price_change_sd", "price_within_sd")
    description = "a continuous positive quantity (property price in pounds), modelled on the log scale"
    columns: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("n", "Int64", "number of transactions (>= 1)"),
        ColumnSpec("mean_price", "float64", "mean price in pounds (> 0)"),
        ColumnSpec("mean_log_price", "float64", "mean of log prices"),
        ColumnSpec("sd_log_price", "float64", "SD of log prices (empty when n == 1)"),
    )
    required: ClassVar[tuple[str, ...]] = ("n", "mean_price", "mean_log_price")
    weight_column = "n"
    default_multiplier = 1.0
    default_unit = "£"
    default_base = 150_000.0
    value_label = "mean log price"
    overdispersion_choices: ClassVar[tuple[str, ...]] = ("ward_period", "none")

    def likelihood_text(self, model_cfg: ModelConfig = None) -> str:
        """The likelihood in words, for the methods section of a report."""
        t = getattr(model_cfg, "price_likelihood", "student_t") == "student_t"
        return (f"a {'Student-t' if t else 'normal'} likelihood of each ward-period's mean log "
                "price (its standard error from the sales), identity link on the log scale")

    def link_fn(self, x):
        return np.log(x)

    def inverse_link(self, eta):
        return np.exp(eta)

    def counterfactual(self, level, effect):
        """``level * exp(-effect)`` (the effect is a log price ratio)."""
        return level * np.exp(-np.asarray(effect, dtype=float))

    # ------------------------------------------------------------------ panel rows
    def check_rows(self, cols, rows, fail: Fail, *, require_deferred: bool = True) -> None:
        n, mp, mlp, sdl = cols["n"], cols["mean_price"], cols["mean_log_price"], cols["sd_log_price"]
        fail("number of transactions n must be at least 1, not {n}", rows & (np.isnan(n) | (n < 1)), "n")
        fail("mean_price must be a positive amount, not {mean_price}",
             rows & (np.isnan(mp) | (mp <= 0)), "mean_price")
        fail("mean_log_price is empty", rows & np.isnan(mlp), "mean_log_price")
        fail("sd_log_price must be non-negative, not {sd_log_price}", rows & ~np.isnan(sdl) & (sdl < 0),
             "sd_log_price")
        fail("sd_log_price is empty although n > 1", rows & (n > 1) & np.isnan(sdl), "sd_log_price")
        safe = np.where(mp > 0, mp, 1.0)
        fail("mean_log_price is larger than log(mean_price), which is impossible "
             "(the mean of logs is at most the log of the mean)",
             rows & ~np.isnan(mp) & (mp > 0) & (mlp > np.log(safe) + 1e-6), "mean_log_price")

    def degenerate(self, cols, rows):
        m = cols["mean_log_price"][rows]
        m = m[~np.isnan(m)]
        if m.size > 1 and np.all(m == m[0]):
            return ("every mean_log_price of indicator '{indicator}' is the same: there is no "
                    "variation to model", "mean_log_price")
        return None

    # ------------------------------------------------------------------ model inputs
    def design_arrays(self, frame: pd.DataFrame, indicator: str) -> dict[str, np.ndarray]:
        n = frame["n"].astype("int64").to_numpy()
        if (n < 1).any():
            raise ModelError(f"{indicator}: price rows need n >= 1 transactions")
        sd = (
            frame["sd_log_price"].astype("float64").to_numpy()
            if "sd_log_price" in frame.columns
            else np.full(len(frame), np.nan)
        )
        pooled = pooled_within_sd(n, sd)
        own = np.isfinite(sd) & (n >= MIN_N_OWN_SD)
        out = {
            "n": n,
            "mean_log_price": frame["mean_log_price"].astype("float64").to_numpy(),
            "sd_within": np.where(own, sd, pooled),
        }
        if "mean_price" in frame.columns:
            out["mean_price"] = frame["mean_price"].astype("float64").to_numpy()
        return out

    def observed(self, arrays):
        return arrays["mean_log_price"]

    def weights(self, arrays):
        return np.asarray(arrays["n"], dtype=float)

    def data_containers(self, arrays):
        return {"n_obs_tx": arrays["n"], "sd_within": arrays["sd_within"], "y_obs": arrays["mean_log_price"]}

    def _with_y(self, arrays, y):
        return {"mean_log_price": y}

    def empirical_link(self, arrays):
        return np.asarray(arrays["mean_log_price"], dtype=float)

    def sampling_variance(self, arrays):
        return np.asarray(arrays["sd_within"], dtype=float) ** 2 / np.asarray(arrays["n"], dtype=float)

    def link_centre(self, arrays, pre) -> float:
        w = arrays["n"][pre].astype(float)
        return float(np.sum(w * arrays["mean_log_price"][pre]) / np.sum(w))

    # ------------------------------------------------------------------ PyMC
    def add_likelihood(self, eta: Any, data: Mapping[str, Any], cfg: ModelConfig) -> None:
        import pymc as pm

        var = data["sd_within"] ** 2 / data["n_obs_tx"]
        if cfg.overdispersion != "none":
            sigma_wp = self._obs_sd("sigma_wp", data, cfg)
            var = var + sigma_wp**2
        scale = pm.math.sqrt(var)
        if cfg.price_likelihood == "student_t":
            nu = pm.Gamma("nu", alpha=2.0, beta=0.1)
            pm.StudentT("y", nu=nu, mu=eta, sigma=scale, observed=data["y_obs"], dims="obs")
        else:
            pm.Normal("y", mu=eta, sigma=scale, observed=data["y_obs"], dims="obs")

    # ------------------------------------------------------------------ NumPy draws
    def expected(self, eta, arrays):
        """Expected arithmetic mean price (pounds): ``exp(eta + s**2 / 2)``."""
        return np.exp(eta + arrays["sd_within"] ** 2 / 2.0)

    def draw(self, eta, posterior: xr.Dataset, arrays, rng):
        var = arrays["sd_within"] ** 2 / arrays["n"]
        if "sigma_wp" in posterior:
            var = var + posterior["sigma_wp"].values[..., None] ** 2
        scale = np.sqrt(var)
        if "nu" in posterior:
            eps = rng.standard_t(np.broadcast_to(posterior["nu"].values[..., None], eta.shape))
        else:
            eps = rng.standard_normal(eta.shape)
        return eta + scale * eps

    def log_likelihood(self, eta, posterior: xr.Dataset, arrays):
        from scipy import stats  # here: scipy.stats costs ~1 s, and reading a panel must not pay it

        y = arrays["mean_log_price"]
        var = arrays["sd_within"] ** 2 / arrays["n"]
        if "sigma_wp" in posterior:
            var = var + posterior["sigma_wp"].values[..., None] ** 2
        scale = np.sqrt(var)
        if "nu" in posterior:
            return stats.t.logpdf(y, posterior["nu"].values[..., None], loc=eta, scale=scale)
        return stats.norm.logpdf(y, loc=eta, scale=scale)

    def ppc_scale(self, y, arrays):
        return y

    def ppc_total(self, y, arrays, mask):
        w = np.asarray(arrays["n"], dtype=float)
        return np.sum(y[..., mask] * w[mask], axis=-1) / w[mask].sum()

    # ------------------------------------------------------------------ frequentist
    def ward_totals(self, rows: pd.DataFrame) -> pd.DataFrame:
        n = rows["n"].astype("float64")
        mp = rows["mean_price"].astype("float64")
        sdl = rows["sd_log_price"].astype("float64").fillna(0.0)
        # sum of squared prices from the ward summaries (lognormal within a ward-period)
        sq = (n - 1) * mp**2 * np.expm1(sdl**2) + n * mp**2
        sum_log = n * rows["mean_log_price"].astype("float64")
        return pd.DataFrame({"n": n, "sum_price": n * mp, "sum_log": sum_log, "sum_sq": sq,
                             "num": sum_log, "den": n}, index=rows.index)

    def totals_link(self, num, den):
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / den

    def unit_value(self, totals, multiplier):
        return totals["sum_price"] / totals["n"]

    def level(self, totals) -> float:
        return float(totals["sum_price"].sum() / totals["n"].sum())

    def pooled(self, totals: pd.DataFrame, multiplier: float) -> PooledStats:
        n = float(totals["n"].sum())
        value = float(totals["sum_price"].sum() / n)
        var = max(float(totals["sum_sq"].sum()) - n * value**2, 0.0) / (n - 1) if n > 1 else np.nan
        se = math.sqrt(var / n)
        return PooledStats(total=n, value=value, se=se, log_value=float(totals["sum_log"].sum() / n),
                           log_se=se / value)

    def pooled_log_ratio(self, stats: Mapping[tuple[str, int], PooledStats]) -> float:
        """Log ratio of ratios of the pooled arithmetic mean prices (the report's values)."""
        v = {k: s.value for k, s in stats.items()}
        return math.log(v[("nbi", 1)] / v[("nbi", 0)] / (v[("benchmark", 1)] / v[("benchmark", 0)]))

    def glm(self, totals: pd.DataFrame, X: np.ndarray) -> Any:
        # imported here: statsmodels takes about a second to import; only the frequentist fits need it
        import statsmodels.api as sm

        mean_log = totals["sum_log"] / totals["n"]
        return sm.WLS(mean_log.to_numpy(float), X, weights=totals["n"].to_numpy(float))

    def pair_link(self, totals, corrected):
        return (totals["sum_log"] / totals["n"]).to_numpy(float)

    def shift_totals(self, num, den, mask_remove, mask_add, tau):
        control = num - np.where(mask_remove, den * tau, 0.0)
        treated = control + np.where(mask_add, den * tau, 0.0)
        return treated, control

    # ------------------------------------------------------------------ simulation
    def simulate(self, eta, size, rng, *, sd_within: float = 0.5) -> dict[str, Any]:
        """``size`` transactions with log-normal prices around ``exp(eta)`` (scalar ``eta``)."""
        n = int(size)
        logp = float(eta) + sd_within * rng.standard_normal(n)
        return {
            "n": n,
            "mean_price": float(np.mean(np.exp(logp))),
            "mean_log_price": float(np.mean(logp)),
            "sd_log_price": float(np.std(logp, ddof=1)) if n > 1 else np.nan,
        }

    def simulate_size(self, base, t, rng, *, mean_transactions: float = 40.0) -> int:
        """``1 + Poisson(mean_transactions - 1)`` transactions."""
        return int(rng.poisson(mean_transactions - 1)) + 1

    def truth_value(self, eta, *, sd_within: float = 0.5):
        return np.exp(eta + sd_within**2 / 2)


PRICE = Price()
