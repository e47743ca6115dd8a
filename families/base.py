"""The likelihood family abstraction: one object per family.

A :class:`Family` holds everything nbdid needs to know about one kind of outcome, so
that no other module branches on a family's name:

* the panel columns it needs and the row checks they must pass (used by the schema);
* its link, the ratio scale of ``exp(did)`` and its default unit;
* the model inputs it takes from a panel (observed values, exposures or weights);
* its PyMC likelihood (with the overdispersion choices it supports);
* its expected value and replicate draw from posterior draws (NumPy);
* its statistics for the frequentist twin (the report's pooled interval, the GLM,
  the randomization statistic from group totals);
* its simulation of new observations (simulators, assurance).

Families are core definitions: the schema (data layer) uses their columns and checks,
the models their likelihoods, the analyses their statistics.  Their PyMC and
statsmodels parts therefore import those libraries inside the methods that need them,
so that reading or validating a panel never loads PyMC.

Adding a family means writing a subclass in its own module and registering it in
:mod:`nbdid.families` (see ``ARCHITECTURE.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import pandas as pd
from scipy import special

from nbdid.families.priors import add_prior, data_name

if TYPE_CHECKING:
    import xarray as xr

    from nbdid.config import ModelConfig

Z95 = 1.96
"""The normal quantile of the report's 95% intervals."""


@dataclass(frozen=True)
class ColumnSpec:
    """One column of the ward panel.

    Attributes
    ----------
    name
        Column name in files and DataFrames.
    dtype
        pandas dtype of the normalised column (``Int64`` columns must hold whole numbers).
    description
        What the column holds (docs, ``nbdid data schema``).
    minimum
        Smallest allowed value of a whole-number column (``None``: no bound checked at
        parse time; a family's row checks add its own bounds).
    """

    name: str
    dtype: str
    description: str
    minimum: int | None = None


Fail = Callable[[str, np.ndarray, str], None]
"""``fail(message, mask, column)``: report the first row of ``mask`` as an input error.
``message`` may use ``{indicator}``, ``{family}`` and ``{<column>}`` (that row's value of
a value column, or ``empty``)."""


@dataclass(frozen=True)
class PooledStats:
    """A group's pooled value under the report's method (one group and period).

    Attributes
    ----------
    total
        The pooled denominator (people, households, transactions, observations).
    value
        The pooled value in the indicator's unit.
    se
        Its standard error under the report's pooled model.
    log_value, log_se
        The pooled value on the link scale and its standard error (for ratio intervals).
    count
        The pooled numerator (count families; ``nan`` otherwise).
    """

    total: float
    value: float
    se: float
    log_value: float
    log_se: float
    count: float = float("nan")


class Family:
    """Base class of likelihood families.  Subclasses set the class attributes and
    implement the methods marked "required".

    Class attributes
    ----------------
    name
        Family key (``"binomial"``, ``"poisson"``, ``"price"``, ...).
    link
        Name of the link function (``"logit"``, ``"log"``, ``"identity"``).
    ratio_scale
        Name of the scale of ``exp(did)`` (``"odds_ratio"``, ``"rate_ratio"``,
        ``"price_ratio"``), or ``None`` when the family has no ratio scale (identity link).
    description
        One line for help texts.
    columns
        The family's panel columns (:class:`ColumnSpec`, with what each means for it).
    required
        Names of the columns a row of this family must have (the others may be empty).
    weight_column
        Column whose values weight pooled group values (exposure, transactions).
    default_multiplier, default_unit
        Unit of indicators of this family that are not in the registry.
    y_dtype
        dtype of replicated observations (``"int64"`` for counts).
    overdispersion_choices
        ``ModelConfig.overdispersion`` values the family supports (besides ``"auto"``).
    """

    name: ClassVar[str]
    link: ClassVar[str]
    ratio_scale: ClassVar[str | None]
    description: ClassVar[str]
    columns: ClassVar[tuple[ColumnSpec, ...]]
    required: ClassVar[tuple[str, ...]]
    deferred: ClassVar[tuple[str, ...]] = ()
    """Required columns a table may still lack before it is joined to others (a count
    table before its denominators): validation with ``require_exposure=False`` skips them."""
    weight_column: ClassVar[str]
    default_multiplier: ClassVar[float]
    default_unit: ClassVar[str]
    y_dtype: ClassVar[str] = "float64"
    overdispersion_choices: ClassVar[tuple[str, ...]] = ("none",)
    value_label: ClassVar[str] = "value"
    """What :meth:`value_scale` gives, in words (an axis label)."""
    ppc_total_label: ClassVar[str] = "total"
    """What :meth:`ppc_total` gives, in words (the predictive check's group statistic)."""
    generator_sd_fields: ClassVar[tuple[str, str, str] | None] = None
    """Fields of :class:`nbdid.config.GeneratorConfig` holding the SDs of ward levels,
    ward changes and observation-level noise of this family's synthetic panels (``None``:
    the family has no calibrated synthetic indicator)."""
    is_count: ClassVar[bool] = False
    """A count out of an exposure (``count``, ``exposure``), simulated by count draws."""
    count_within_exposure: ClassVar[bool] = False
    """The count can never exceed its exposure (people out of a population): a rate above
    1 in the data is an error the build stops on."""
    default_base: ClassVar[float]
    """A typical baseline value (proportion, rate per unit exposure, price, mean) of
    simulated panels (:func:`nbdid.models.simulate.simulate_panel`)."""

    def __repr__(self) -> str:
        return f"<family {self.name}>"

    def likelihood_text(self, model_cfg: ModelConfig = None) -> str:
        """The likelihood in words, for the methods section of a report."""
        return f"a {self.name} likelihood, {self.link} link"

    @property
    def ratio_label(self) -> str:
        """The ratio scale in words (``"rate ratio"``), ``"ratio"`` when there is none."""
        return self.ratio_scale.replace("_", " ") if self.ratio_scale else "ratio"

    # ------------------------------------------------------------------ link
    def link_fn(self, x: np.ndarray) -> np.ndarray:
        """The link function (NumPy)."""
        raise NotImplementedError  # required

    def inverse_link(self, eta: np.ndarray) -> np.ndarray:
        """The inverse link (NumPy)."""
        raise NotImplementedError  # required

    # ------------------------------------------------------------------ panel rows
    def check_rows(self, cols: Mapping[str, np.ndarray], rows: np.ndarray, fail: Fail, *,
                   require_deferred: bool = True) -> None:
        """Row checks of this family's rows (``rows`` is the boolean mask of them).

        ``cols`` holds every panel value column parsed as float (NaN when empty or
        absent).  Implementations check presence, ranges and consistency and call
        ``fail(message, mask, column)``; the schema reports the first failing row with
        the indicator's key, file, line and column.  The default checks that required
        columns are not empty.
        """
        for name in self.required:
            if name in self.deferred and not require_deferred:
                continue
            fail(name + " is empty for {family} indicator '{indicator}'", rows & np.isnan(cols[name]), name)

    def check_bounds(self, cols: Mapping[str, np.ndarray], rows: np.ndarray, fail: Fail,
                     bounds: Mapping[str, Any]) -> None:
        """Plausibility checks of this family's rows, after :meth:`check_rows`.

        ``bounds`` maps a value column to its ``(low, high)`` for one ward and period
        (:class:`nbdid.config.BoundsConfig`: documented defaults, overridable in the
        config file), and ``"max_rate"`` to a per-row array of the largest plausible
        ``count / exposure`` (``inf`` where none).  The default checks every column of
        the family that has bounds; families add their own (rates, logs of prices).
        """
        for spec in self.columns:
            if spec.name not in bounds:
                continue
            lo, hi = bounds[spec.name]
            v = cols[spec.name]
            fail(f"{spec.name} {{{spec.name}}} is outside the plausible range for one ward and "
                 f"period ({lo:g} to {hi:g}); correct it, or widen 'bounds.columns.{spec.name}' "
                 "in the config if it is right",
                 rows & ~np.isnan(v) & ((v < lo) | (v > hi)), spec.name)

    def degenerate(self, cols: Mapping[str, np.ndarray], rows: np.ndarray) -> tuple[str, str] | None:
        """Why one indicator's rows (``rows``) hold nothing to model, as ``(message,
        column)``, or ``None``.  E.g. every count zero: the model would only return its
        priors.  The default finds nothing."""
        return None

    # ------------------------------------------------------------------ model inputs
    def design_arrays(self, frame: pd.DataFrame, indicator: str) -> dict[str, np.ndarray]:
        """Observation arrays of the model inputs from an indicator's panel rows
        (``frame`` in ``obs`` order).  Required."""
        raise NotImplementedError

    def observed(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """The observed values (``y``) among the design arrays.  Required."""
        raise NotImplementedError

    def weights(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Weights of pooled group values (exposure, transactions).  Required."""
        raise NotImplementedError

    def data_containers(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``pm.Data`` containers of the likelihood (dims ``obs``), including ``y_obs``."""
        raise NotImplementedError  # required

    def empirical_link(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Each observation's empirical link value (smoothed for zero counts)."""
        raise NotImplementedError  # required

    def sampling_variance(self, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Approximate sampling variance of :meth:`empirical_link`.  Required."""
        raise NotImplementedError

    def link_centre(self, arrays: Mapping[str, np.ndarray], pre: np.ndarray) -> float:
        """Data-based centre of the intercept prior: the link of the pooled pre value."""
        raise NotImplementedError  # required

    # ------------------------------------------------------------------ PyMC
    def add_likelihood(self, eta: Any, data: Mapping[str, Any], cfg: ModelConfig) -> None:
        """Add the observed ``y`` (dims ``obs``) and any overdispersion terms to the
        current PyMC model.  ``cfg`` is a resolved :class:`nbdid.config.ModelConfig`."""
        raise NotImplementedError  # required

    @staticmethod
    def _obs_sd(name: str, data: Mapping[str, Any], cfg: ModelConfig) -> Any:
        """An observation-level SD (``sigma_od``, ``sigma_wp``) with the ``sigma_obs``
        prior of ``cfg`` (resolved: :func:`nbdid.models.priors.resolve_priors`)."""
        return add_prior(name, cfg.priors.sigma_obs, data[data_name("sigma_obs")])

    @classmethod
    def _ward_period_effect(cls, eta: Any, cfg: ModelConfig, data: Mapping[str, Any]) -> Any:
        """``eta`` plus a non-centred normal ward x period effect (``"ward_period"``)."""
        # imported here: PyMC takes seconds to import; only building a model needs it
        import pymc as pm

        sigma_wp = cls._obs_sd("sigma_wp", data, cfg)
        wp_z = pm.Normal("wp_z", 0.0, 1.0, dims="obs")
        return eta + pm.Deterministic("wp_effect", sigma_wp * wp_z, dims="obs")

    # ------------------------------------------------------------------ structure
    def prior_unit(self, arrays: Mapping[str, np.ndarray]) -> float:
        """The unit of the default priors (:data:`nbdid.config.DEFAULT_PRIORS`): 1 on a
        logit or log scale; families on the outcome's own scale return its spread."""
        return 1.0

    def needs_obs_term(self, arrays: Mapping[str, np.ndarray]) -> bool:
        """Whether the likelihood needs an estimated observation-level SD (it has no
        known scale of its own: a Gaussian outcome without a known SD)."""
        return False

    def structure(self, arrays: Mapping[str, np.ndarray]) -> tuple:
        """What the data change in the family's model graph (part of the compiled-model
        cache key, e.g. whether a known SD is given); ``()`` when nothing does."""
        return ()

    def row_weights(self, rows: pd.DataFrame) -> np.ndarray:
        """Weights of panel rows for pooled group values (the :attr:`weight_column`)."""
        return rows[self.weight_column].astype("float64").to_numpy()

    # ------------------------------------------------------------------ NumPy draws
    def expected(self, eta: np.ndarray, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Expected value per unit of weight (proportion, rate, mean price), per draw
        and observation, from link-scale draws ``eta``.  Required."""
        raise NotImplementedError

    def draw(self, eta: np.ndarray, posterior: xr.Dataset, arrays: Mapping[str, np.ndarray],
             rng: np.random.Generator) -> np.ndarray:
        """Replicated observations given link-scale draws ``eta`` (observation-level
        effects already redrawn) and the posterior's family parameters.  Required."""
        raise NotImplementedError

    def log_likelihood(self, eta: np.ndarray, posterior: xr.Dataset, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Pointwise log-likelihood of the observed values given link-scale draws
        ``eta`` (observation-level effects included), per draw and observation, exactly
        as :meth:`add_likelihood`'s distribution computes it.  Required."""
        raise NotImplementedError

    def ppc_scale(self, y: np.ndarray, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Observed or replicated values on the scale of the between-ward variance check."""
        return self.empirical_link({**arrays, **self._with_y(arrays, y)})

    def value_scale(self, y: np.ndarray, arrays: Mapping[str, np.ndarray]) -> np.ndarray:
        """Observed or replicated values (last axis: observations) on the indicator's own
        scale, per unit of weight: the observation itself here (a mean log price, a
        value); count families divide by the exposure (:attr:`value_label` says which)."""
        return np.asarray(y, dtype=float)

    def ppc_total(self, y: np.ndarray, arrays: Mapping[str, np.ndarray], mask: np.ndarray) -> np.ndarray:
        """Group total of observed or replicated values over ``mask`` (last axis)."""
        return y[..., mask].sum(axis=-1)

    def _with_y(self, arrays: Mapping[str, np.ndarray], y: np.ndarray) -> dict[str, np.ndarray]:
        raise NotImplementedError  # required: arrays with the observed values replaced

    # ------------------------------------------------------------------ frequentist
    def ward_totals(self, rows: pd.DataFrame) -> pd.DataFrame:
        """Additive per-row totals of the frequentist twin (summed over periods).

        Returns a frame with ``num`` and ``den`` (the statistic is ``link(num / den)``)
        and any further additive columns :meth:`pooled` and :meth:`unit_value` need.
        Required.
        """
        raise NotImplementedError

    def totals_link(self, num: np.ndarray, den: np.ndarray) -> np.ndarray:
        """Link-scale value of ``num / den`` (the randomization statistic's building block)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return self.link_fn(num / den)

    def unit_value(self, totals: pd.DataFrame, multiplier: float) -> pd.Series:
        """A ward's value in the indicator's own unit from its totals.  Required."""
        raise NotImplementedError

    def pooled(self, totals: pd.DataFrame, multiplier: float) -> PooledStats:
        """The report's pooled value and standard error of a group.  Required."""
        raise NotImplementedError

    def pooled_log_ratio(self, stats: Mapping[tuple[str, int], PooledStats]) -> float:
        """Log ratio of ratios of the groups' pooled values, from :meth:`pooled` results
        keyed by ``(group, post)``."""
        lv = {k: s.log_value for k, s in stats.items()}
        return (lv[("nbi", 1)] - lv[("nbi", 0)]) - (lv[("benchmark", 1)] - lv[("benchmark", 0)])

    def glm(self, totals: pd.DataFrame, X: np.ndarray) -> Any:
        """The statsmodels model of the clustered GLM (not fitted).  Required."""
        raise NotImplementedError

    def glm_defined(self, num: pd.Series, den: pd.Series) -> bool:
        """Whether every group x period cell allows the ratio of ratios."""
        return True

    def counterfactual(self, level: np.ndarray | float, effect: np.ndarray | float) -> np.ndarray:
        """A natural-scale ``level`` with a link-scale ``effect`` removed:
        ``inverse_link(link(level) - effect)``.  Families override it with the closed form."""
        return self.inverse_link(self.link_fn(np.asarray(level, dtype=float)) - np.asarray(effect, dtype=float))

    def level(self, totals: pd.DataFrame) -> float:
        """Pooled natural-scale value (proportion, rate, mean) of some wards' totals.  Required."""
        raise NotImplementedError

    def unit_effect(self, link_effect: np.ndarray | float, level: float, multiplier: float):
        """Own-unit effect of a link-scale effect at the natural-scale ``level``:
        ``multiplier * (level - counterfactual(level, effect))``, increasing in the effect."""
        return multiplier * (level - self.counterfactual(level, link_effect))

    def shift_totals(self, num: np.ndarray, den: np.ndarray, mask_remove: np.ndarray,
                     mask_add: np.ndarray, tau: float) -> tuple[np.ndarray, np.ndarray]:
        """Totals with a constant link-scale effect ``tau`` removed where ``mask_remove``
        and added where ``mask_add`` (the sharp null of randomization inference).
        Returns ``(treated, control)`` numerators."""
        with np.errstate(divide="ignore", invalid="ignore"):
            r = num / den
            lr = self.link_fn(r)
            r0 = np.where(mask_remove, self.inverse_link(lr - tau), r)
            r1 = np.where(mask_add, self.inverse_link(self.link_fn(r0) + tau), r0)
        return r1 * den, r0 * den

    def pair_link(self, totals: pd.DataFrame, corrected: bool) -> np.ndarray:
        """Each row's link-scale value for the paired analysis (smoothed when
        ``corrected``)."""
        return self.totals_link(totals["num"].to_numpy(float), totals["den"].to_numpy(float))

    def needs_correction(self, totals: pd.DataFrame) -> bool:
        """Whether some ward-period has no events (or only events), so logs need smoothing."""
        return False

    # ------------------------------------------------------------------ the report's method
    def implied_total(self, value: float, half_width: float, multiplier: float, *,
                      z: float = Z95) -> float:
        """Pooled denominator implied by a published value and its half-width (the
        inverse of the report's pooled interval, quantile ``z``)."""
        raise ValueError(f"the {self.name} family has no implied denominator")

    # ------------------------------------------------------------------ simulation
    def simulate(self, eta: np.ndarray, size: np.ndarray, rng: np.random.Generator, *,
                 sd_within: float = 0.5) -> dict[str, Any]:
        """Panel column values of new observations with link values ``eta`` and sizes
        ``size`` (exposures, trials or transactions); one ward-period per element."""
        raise NotImplementedError  # required

    def simulate_size(self, base: float, t: int, rng: np.random.Generator, *,
                      mean_transactions: float = 40.0) -> float:
        """The size of a simulated ward-period (exposure, trials or transactions) from a
        ward's baseline exposure ``base`` in period ``t``.  Required for simulation."""
        raise NotImplementedError

    def truth_value(self, eta: np.ndarray, *, sd_within: float = 0.5) -> np.ndarray:
        """The natural-scale value behind a link value (for simulated truths)."""
        return self.inverse_link(eta)

    def link_of_base(self, base: float) -> float:
        """Link value of a typical baseline value (proportion, rate, price)."""
        return float(self.link_fn(np.asarray(base, dtype=float)))


def logit(x: np.ndarray) -> np.ndarray:
    """Logit (NumPy/SciPy)."""
    return special.logit(x)


def expit(x: np.ndarray) -> np.ndarray:
    """Inverse logit (NumPy/SciPy)."""
    return special.expit(x)
