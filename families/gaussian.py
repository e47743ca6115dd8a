"""Gaussian family: a continuous ward-period outcome on its own scale (identity link).

For ward ``w`` in period ``t`` with outcome ``value`` (a mean, e.g. a survey score or a
mean income, or a single measurement such as log employment), optionally its known
sampling SD ``sd`` and its number of people or measurements ``n``::

    value[w,t] ~ Normal(eta[w,t], sqrt(sd[w,t]**2 (+ sigma_wp**2)))        (sd given)
    value[w,t] ~ Normal(eta[w,t], sigma_wp)                                 (sd absent)

The DiD is in the outcome's own units (``did``/``link`` and the population-averaged
``did``/own unit, pooled with weights ``n``, agree up to those weights); there is no
ratio scale.  Without a known SD the residual SD ``sigma_wp`` is estimated; it is then
the observation-level term, so with two periods the ward change is dropped (each
ward-period would otherwise have two effects of its own, see
:func:`nbdid.models.design.resolve_structure`) and, with ``group_change_sd``, the
residual SD is one per group (``sigma_wp_nbi``, ``sigma_wp_benchmark``), so that the
DiD's uncertainty still follows each group's own spread of change (one shared SD when a
group has no observation to spare).  A panel whose mean effects use up every
observation (one ward per group on two periods) cannot estimate a residual SD and is
refused unless it has the ``sd`` column.  With a known SD,
``sigma_wp`` is variation beyond it, kept or dropped by the same rule as for prices.

The default priors are in units of the outcome's SD (:meth:`Gaussian.prior_unit`).
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


def _filled_n(n: np.ndarray) -> np.ndarray:
    n = np.asarray(n, dtype=float)
    return np.where(np.isnan(n), 1.0, n)


class Gaussian(Family):
    """A continuous outcome (``value``) with an optional known SD (``sd``) and size (``n``)."""

    name = "gaussian"
    link = "identity"
    ratio_scale = None
    ppc_total_label = "mean value"
    description = "a continuous outcome on its own scale (a mean score, a log count); identity link"
    columns: ClassVar[tuple[ColumnSpec, ...]] = (
        ColumnSpec("value", "float64", "the ward-period outcome (a mean or a single measurement)"),
        ColumnSpec("n", "Int64", "people or measurements behind the value (>= 1; weights "
                   "pooled group values; empty: 1)"),
        ColumnSpec("sd", "float64", "known sampling SD of the value (> 0; empty for every row: "
                   "a residual SD is estimated)"),
    )
    required: ClassVar[tuple[str, ...]] = ("value",)
    weight_column = "n"
    default_multiplier = 1.0
    default_unit = "units"
    default_base = 0.0
    overdispersion_choices: ClassVar[tuple[str, ...]] = ("ward_period", "none")

    def likelihood_text(self, model_cfg: ModelConfig = None) -> str:
        """The likelihood in words, for the methods section of a report."""
        return ("a normal likelihood of each ward-period's value (its known SD where given, "
                "else an estimated residual SD), identity link")

    def link_fn(self, x):
        return np.asarray(x, dtype=float)

    def inverse_link(self, eta):
        return np.asarray(eta, dtype=float)

    def counterfactual(self, level, effect):
        """``level - effect`` (the effect is additive)."""
        return np.asarray(level, dtype=float) - np.asarray(effect, dtype=float)

    # ------------------------------------------------------------------ panel rows
    def check_rows(self, cols, rows, fail: Fail, *, require_deferred: bool = True) -> None:
        v, n, sd = cols["value"], cols["n"], cols["sd"]
        fail("value is empty for {family} indicator '{indicator}'", rows & np.isnan(v), "value")
        fail("n must be at least 1, not {n}", rows & ~np.isnan(n) & (n < 1), "n")
        fail("sd must be positive, not {sd}", rows & ~np.isnan(sd) & (sd <= 0), "sd")

    # ------------------------------------------------------------------ model inputs
    def design_arrays(self, frame: pd.DataFrame, indicator: str) -> dict[str, np.ndarray]:
        value = frame["value"].astype("float64").to_numpy()
        n = _filled_n(frame["n"].astype("float64").to_numpy()) if "n" in frame else np.ones(len(frame))
        sd = frame["sd"].astype("float64").to_numpy() if "sd" in frame else np.full(len(frame), np.nan)
        known = np.isfinite(sd)
        if known.any() and not known.all():
            i = int(np.flatnonzero(~known)[0])
            raise ModelError(f"{indicator}: sd is given for some rows but not for ward "
                             f"{frame['ward'].iloc[i]}, period {frame['period'].iloc[i]}; give it "
                             "for every row or for none (a residual SD is then estimated)")
        nbi = (frame["group"].astype(str) == "nbi").to_numpy(dtype="float64")
        return {"value": value, "n": n, "sd": sd, "nbi": nbi}

    def observed(self, arrays):
        return arrays["value"]

    def weights(self, arrays):
        return np.asarray(arrays["n"], dtype=float)

    def row_weights(self, rows: pd.DataFrame) -> np.ndarray:
        return _filled_n(rows["n"].astype("float64").to_numpy())

    @staticmethod
    def _known(arrays) -> bool:
        return bool(np.isfinite(np.asarray(arrays["sd"], dtype=float)).all())

    def structure(self, arrays):
        return ("known sd",) if self._known(arrays) else ("residual sd",)

    def needs_obs_term(self, arrays) -> bool:
        return not self._known(arrays)

    def data_containers(self, arrays):
        out = {"y_obs": arrays["value"]}
        if self._known(arrays):
            out["sd_obs"] = arrays["sd"]
        return out

    def _with_y(self, arrays, y):
        return {"value": y}

    def empirical_link(self, arrays):
        return np.asarray(arrays["value"], dtype=float)

    def sampling_variance(self, arrays):
        """``sd**2`` (NaN without a known SD: the automatic parameterisation then picks
        the non-centred forms)."""
        return np.asarray(arrays["sd"], dtype=float) ** 2

    def link_centre(self, arrays, pre) -> float:
        w = np.asarray(arrays["n"], dtype=float)[pre]
        return float(np.sum(w * arrays["value"][pre]) / np.sum(w))

    def prior_unit(self, arrays) -> float:
        """The SD of the values (the default priors are in these units)."""
        sd = float(np.std(np.asarray(arrays["value"], dtype=float), ddof=1))
        return sd if np.isfinite(sd) and sd > 0 else 1.0

    # ------------------------------------------------------------------ PyMC
    def add_likelihood(self, eta: Any, data: Mapping[str, Any], cfg: ModelConfig) -> None:
        import pymc as pm

        if "sd_obs" in data:
            var = data["sd_obs"] ** 2
            if cfg.overdispersion != "none":
                var = var + self._obs_sd("sigma_wp", data, cfg) ** 2
            scale = pm.math.sqrt(var)
        elif cfg.group_change_sd and not cfg.ward_change:
            s_b = self._obs_sd("sigma_wp_benchmark", data, cfg)
            s_n = self._obs_sd("sigma_wp_nbi", data, cfg)
            scale = s_b + (s_n - s_b) * data["treated"]
        else:
            scale = self._obs_sd("sigma_wp", data, cfg)
        pm.Normal("y", mu=eta, sigma=scale, observed=data["y_obs"], dims="obs")

    # ------------------------------------------------------------------ NumPy draws
    def _scale(self, posterior: xr.Dataset, arrays) -> np.ndarray:
        if self._known(arrays):
            var = np.asarray(arrays["sd"], dtype=float) ** 2
            if "sigma_wp" in posterior:
                var = var + posterior["sigma_wp"].values[..., None] ** 2
            return np.sqrt(var)
        if "sigma_wp_nbi" in posterior:
            nbi = np.asarray(arrays["nbi"], dtype=bool)
            return np.where(nbi, posterior["sigma_wp_nbi"].values[..., None],
                            posterior["sigma_wp_benchmark"].values[..., None])
        return posterior["sigma_wp"].values[..., None]

    def expected(self, eta, arrays):
        return eta

    def draw(self, eta, posterior: xr.Dataset, arrays, rng):
        return eta + self._scale(posterior, arrays) * rng.standard_normal(eta.shape)

    def log_likelihood(self, eta, posterior: xr.Dataset, arrays):
        from scipy import stats  # here: scipy.stats costs ~1 s, and reading a panel must not pay it

        return stats.norm.logpdf(arrays["value"], loc=eta, scale=self._scale(posterior, arrays))

    def ppc_scale(self, y, arrays):
        return y

    def ppc_total(self, y, arrays, mask):
        w = np.asarray(arrays["n"], dtype=float)
        return np.sum(y[..., mask] * w[mask], axis=-1) / w[mask].sum()

    # ------------------------------------------------------------------ frequentist
    def ward_totals(self, rows: pd.DataFrame) -> pd.DataFrame:
        n = self.row_weights(rows)
        v = rows["value"].astype("float64").to_numpy()
        sd = rows["sd"].astype("float64").to_numpy() if "sd" in rows else np.full(len(rows), np.nan)
        return pd.DataFrame({"n": n, "num": n * v, "den": n, "sum_sq": n * v**2,
                             "sum_var": n**2 * sd**2, "rows": np.ones(len(rows))}, index=rows.index)

    def totals_link(self, num, den):
        with np.errstate(divide="ignore", invalid="ignore"):
            return num / den

    def unit_value(self, totals, multiplier):
        return multiplier * totals["num"] / totals["den"]

    def level(self, totals) -> float:
        return float(totals["num"].sum() / totals["den"].sum())

    def pooled(self, totals: pd.DataFrame, multiplier: float) -> PooledStats:
        """The weighted mean, with its SE from the known SDs (when given) or from the
        spread of the rows' values."""
        n = float(totals["den"].sum())
        mean = float(totals["num"].sum()) / n
        var_known = float(totals["sum_var"].sum()) if "sum_var" in totals else np.nan
        k = float(totals["rows"].sum()) if "rows" in totals else np.nan
        if np.isfinite(var_known):
            se = math.sqrt(var_known) / n
        elif k > 1:
            spread = max(float(totals["sum_sq"].sum()) / n - mean**2, 0.0)
            se = math.sqrt(spread * k / (k - 1) / k)
        else:
            se = np.nan
        return PooledStats(total=n, value=multiplier * mean, se=multiplier * se,
                           log_value=mean, log_se=se)

    def glm(self, totals: pd.DataFrame, X: np.ndarray) -> Any:
        # imported here: statsmodels takes about a second to import; only the frequentist fits need it
        import statsmodels.api as sm

        y = (totals["num"] / totals["den"]).to_numpy(float)
        return sm.WLS(y, X, weights=totals["den"].to_numpy(float))

    def pair_link(self, totals, corrected):
        return (totals["num"] / totals["den"]).to_numpy(float)

    def shift_totals(self, num, den, mask_remove, mask_add, tau):
        control = num - np.where(mask_remove, den * tau, 0.0)
        treated = control + np.where(mask_add, den * tau, 0.0)
        return treated, control

    # ------------------------------------------------------------------ simulation
    def simulate(self, eta, size, rng, *, sd_within: float = 0.5) -> dict[str, Any]:
        """The mean of ``size`` measurements with SD ``sd_within`` around ``eta``."""
        n = int(size)
        sd = sd_within / math.sqrt(n)
        return {"value": float(eta) + sd * rng.standard_normal(), "n": n, "sd": sd}

    def simulate_size(self, base, t, rng, *, mean_transactions: float = 40.0) -> int:
        """``1 + Poisson(mean_transactions - 1)`` measurements."""
        return int(rng.poisson(mean_transactions - 1)) + 1

    def link_of_base(self, base: float) -> float:
        return float(base)


GAUSSIAN = Gaussian()
