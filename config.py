"""Run configuration: TOML files read into frozen dataclasses.

This module is *the* documented place for defaults: every default value nbdid uses
for sampling, modelling, diagnostics and the synthetic panel is a dataclass field
default below.  ``nbdid config`` prints them as a TOML file a user can edit.

A config file has optional top-level keys and sections, for example::

    panel = "my_panel.csv"          # omit to use the embedded (synthetic) default panel
    indicators = ["crime", "burglary"]
    out = "nbdid-results"

    [sampler]
    backend = "nutpie"
    draws = 1000
    seed = 20250701

    [model]
    pair_effects = true
    overdispersion = "ward_period"

    [bounds.columns]                # plausibility bounds of panel values (BoundsConfig)
    exposure = [1, 5e7]

Unknown keys, wrong types and values outside a ``Literal`` or a range are reported as
one-line errors naming the file and the key (:class:`SettingError`).  The range checks
live in the dataclasses' ``__post_init__``, so a value set in Python
(``SamplerConfig(draws=0)``) or on the command line (:func:`with_settings`) is checked
exactly like one read from a file.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import numbers
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from nbdid.errors import InputError
from nbdid.registry import INDICATOR_KEYS, get_indicator

Backend = Literal["nutpie", "pymc"]
Overdispersion = Literal["auto", "negbin", "ward_period", "none"]
PriceLikelihood = Literal["student_t", "normal"]
Parameterization = Literal["auto", "centred", "non_centred"]
MassMatrix = Literal["diag", "low_rank"]
PriorCheck = Literal["did", "all", "off"]
Pointwise = Literal["obs", "ward"]
MatchDistance = Literal["euclidean", "mahalanobis", "propensity"]
"""Distance of the matching engine (:class:`nbdid.analysis.matching.MatchSpec`)."""
MatchMethod = Literal["greedy", "optimal"]
"""Assignment method of the matching engine."""


class SettingError(InputError):
    """A setting outside its allowed range; ``key`` names it (the loader prefixes the
    section or option it came from)."""

    def __init__(self, key: str, message: str, *, file: str | None = None) -> None:
        self.key = key
        self.detail = message
        super().__init__(f"'{key}' {message}", file=file)


def _need(ok: bool, key: str, message: str) -> None:
    if not ok:
        raise SettingError(key, message)


@functools.cache
def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _check_types(obj: Any) -> None:
    """Check the scalar fields of a config dataclass built in Python against their
    annotations, so that a wrong type fails at once with the key's name (a TOML file's
    values are checked by :func:`from_dict` before they get here)."""
    hints = _hints(type(obj))
    for f in dataclasses.fields(obj):
        tp, v = hints[f.name], getattr(obj, f.name)
        if tp is int:
            ok, what = isinstance(v, numbers.Integral) and not isinstance(v, bool), "a whole number"
        elif tp is float:
            ok, what = isinstance(v, numbers.Real) and not isinstance(v, bool), "a number"
        elif tp is bool:
            numpy_bool = type(v).__module__ == "numpy" and "bool" in type(v).__name__
            ok, what = isinstance(v, bool) or numpy_bool, "true or false"
        elif tp is str:
            ok, what = isinstance(v, str), "a string"
        elif get_origin(tp) is Literal:
            ok = isinstance(v, str | bool | int) and v in get_args(tp)
            what = "one of " + ", ".join(repr(a) for a in get_args(tp))
        else:
            continue
        if not ok:
            raise SettingError(f.name, f"must be {what}, not {v!r}")


def _finite(v: float) -> bool:
    return v == v and v not in (float("inf"), float("-inf"))


MAX_SEED = 2**32 - 1
"""Largest seed (NumPy and nutpie seeds are unsigned 32-bit)."""


@dataclass(frozen=True)
class SamplerConfig:
    """How posteriors are sampled.

    Attributes
    ----------
    backend
        ``"nutpie"`` (default: compiled once per model structure, refits swap data)
        or ``"pymc"`` (PyMC's own NUTS, the fallback).
    draws, tune, chains
        Posterior draws and warm-up iterations per chain, and the number of chains.
        2,000 draws a chain keep the bulk and tail ESS of the variance components
        (``sigma_ward``, ``sigma_pair``) above the gate's 400 on the 58-ward panels;
        sensitivity sweeps can use fewer.
    target_accept
        NUTS target acceptance rate (raise it if a fit reports divergences).
    seed
        Random seed; the same seed and data give the same numbers.
    mass_matrix
        nutpie's mass matrix: ``"diag"`` (default) or ``"low_rank"`` (diagonal plus a
        few directions learnt in warm-up, nutpie's ``low_rank_modified_mass_matrix``).
        Since national fits sample each ward's mean level (``ModelConfig.mean_level``)
        low rank no longer pays there: the same leapfrog steps at twice the time on
        580 and 2,000 wards (docs/scale.md).  The PyMC backend ignores it.
    """

    backend: Backend = "nutpie"
    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.9
    seed: int = 20250701
    mass_matrix: MassMatrix = "diag"

    def __post_init__(self) -> None:
        _check_types(self)
        _need(1 <= self.draws <= 10_000_000, "draws", f"must be between 1 and 10000000, not {self.draws}")
        _need(0 <= self.tune <= 10_000_000, "tune", f"must be between 0 and 10000000, not {self.tune}")
        _need(1 <= self.chains <= 64, "chains", f"must be between 1 and 64, not {self.chains}")
        _need(0 < self.target_accept < 1, "target_accept",
              f"must be between 0 and 1 (exclusive), not {self.target_accept}")
        _need(0 <= self.seed <= MAX_SEED, "seed", f"must be between 0 and {MAX_SEED}, not {self.seed}")


PriorDist = Literal["normal", "student_t", "halfnormal", "half_student_t", "exponential",
                    "inverse_gamma_precision"]
"""Distributions a prior can have (see :class:`Prior`)."""

PRIOR_PARAMS: dict[str, tuple[str, ...]] = {
    "normal": ("mu", "sigma"),
    "student_t": ("nu", "mu", "sigma"),
    "halfnormal": ("sigma",),
    "half_student_t": ("nu", "sigma"),
    "exponential": ("rate",),
    "inverse_gamma_precision": ("shape", "rate"),
}
"""Parameters of each prior distribution, in the order they are written."""

LOCATION_DISTS: tuple[str, ...] = ("normal", "student_t")
"""Priors of unbounded coefficients (intercept, effects, DiD, covariate slopes)."""

POSITIVE_DISTS: tuple[str, ...] = ("halfnormal", "half_student_t", "exponential",
                                   "inverse_gamma_precision")
"""Priors of standard deviations (variance components)."""

_PRIOR_ALIASES = {"half_normal": "halfnormal", "half_t": "half_student_t", "t": "student_t",
                  "halfstudent_t": "half_student_t", "studentt": "student_t",
                  "inv_gamma_precision": "inverse_gamma_precision"}


@dataclass(frozen=True)
class Prior:
    """A prior distribution: ``dist`` and its parameters (:data:`PRIOR_PARAMS`).

    Written as text like Stan/brms priors: ``normal(0, 2.5)``, ``student_t(3, 0, 1)``,
    ``halfnormal(1)``, ``half_student_t(3, 1)``, ``exponential(1)`` (rate) or
    ``inverse_gamma_precision(0.001, 0.001)``: the precision ``1 / sigma^2`` of a
    standard deviation has a Gamma(shape, rate) prior, as in BUGS-era analyses
    (``tau ~ dgamma(0.001, 0.001)``).

    >>> Prior.parse("normal(0, 2.5)")
    Prior(dist='normal', params=(0.0, 2.5))
    >>> str(Prior.parse("half_student_t(3,1)"))
    'half_student_t(3, 1)'
    """

    dist: PriorDist
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.dist not in PRIOR_PARAMS:
            raise SettingError("prior", f"has unknown distribution '{self.dist}' (use "
                               f"{', '.join(PRIOR_PARAMS)})")
        names = PRIOR_PARAMS[self.dist]
        params = tuple(float(p) for p in self.params)
        object.__setattr__(self, "params", params)
        _need(len(params) == len(names), "prior",
              f"{self.dist} takes {len(names)} parameter(s) ({', '.join(names)}), not {len(params)}")
        for n, v in zip(names, params, strict=True):
            _need(_finite(v), "prior", f"{self.dist}: {n} must be a finite number, not {v}")
            if n != "mu":
                _need(v > 0, "prior", f"{self.dist}: {n} must be positive, not {v:g}")

    @classmethod
    def parse(cls, text: str | Prior) -> Prior:
        """A prior from its text, e.g. ``"normal(0, 2.5)"`` (case and spaces ignored).

        Raises
        ------
        SettingError
            If the text is not ``name(number, ...)`` with a known name and valid values.
        """
        if isinstance(text, Prior):
            return text
        raw = str(text).strip()
        m = re.fullmatch(r"([A-Za-z_]+)\s*\(([^()]*)\)", raw)
        if m is None:
            raise SettingError("prior", f"must look like normal(0, 2.5), not {raw!r}")
        name = m.group(1).lower()
        name = _PRIOR_ALIASES.get(name, name)
        if name not in PRIOR_PARAMS:
            raise SettingError("prior", f"has unknown distribution '{m.group(1)}' (use "
                               f"{', '.join(PRIOR_PARAMS)})")
        parts = [p.strip() for p in m.group(2).split(",")] if m.group(2).strip() else []
        try:
            values = tuple(float(p) for p in parts)
        except ValueError:
            raise SettingError("prior", f"parameters of {raw!r} must be numbers") from None
        return cls(name, values)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.dist}({', '.join(f'{p:g}' for p in self.params)})"

    @property
    def positive(self) -> bool:
        """Whether this is a prior of a positive quantity (a standard deviation)."""
        return self.dist in POSITIVE_DISTS

    def scaled(self, factor: float) -> Prior:
        """The same prior for a quantity ``factor`` times as large (location and scale
        multiplied; a rate divided; a precision's rate multiplied by ``factor**2``)."""
        p = list(self.params)
        if self.dist == "normal":
            p = [p[0] * factor, p[1] * factor]
        elif self.dist == "student_t":
            p = [p[0], p[1] * factor, p[2] * factor]
        elif self.dist == "halfnormal":
            p = [p[0] * factor]
        elif self.dist == "half_student_t":
            p = [p[0], p[1] * factor]
        elif self.dist == "exponential":
            p = [p[0] / factor]
        else:  # inverse_gamma_precision: tau = 1/sigma^2 scales by 1/factor^2
            p = [p[0], p[1] * factor**2]
        return Prior(self.dist, tuple(p))

    def widened(self, factor: float) -> Prior:
        """The prior with its *scale* multiplied by ``factor`` and its location kept
        (``ModelConfig.prior_scale``; for a positive quantity the same as :meth:`scaled`)."""
        if self.dist == "normal":
            return Prior("normal", (self.params[0], self.params[1] * factor))
        if self.dist == "student_t":
            return Prior("student_t", (self.params[0], self.params[1], self.params[2] * factor))
        return self.scaled(factor)


PRIOR_KEYS: dict[str, str] = {
    "intercept": "the intercept: benchmark wards' pre-period level (link scale)",
    "period": "each period's effect against the first period (common change)",
    "group": "the NBI group's level difference from the benchmark group",
    "did": "the DiD (link-scale treatment x post interaction; each event-study effect)",
    "covariate": "each standardised covariate's main effect and its interaction with post",
    "modification": "each covariate x treatment x post effect modification (--interact)",
    "sigma_ward": "SD of ward levels",
    "sigma_change": "SD of ward changes (each group's with group_change_sd)",
    "sigma_pair": "SD of matched-pair effects",
    "sigma_obs": "SD of observation-level terms (sigma_od, sigma_wp, a Gaussian residual SD)",
}
"""The model's priors by key (``[model.priors]``, ``nbdid fit --prior KEY=...``)."""

SD_PRIOR_KEYS: tuple[str, ...] = tuple(k for k in PRIOR_KEYS if k.startswith("sigma_"))


@dataclass(frozen=True)
class Priors:
    """Priors of the hierarchical model, one per :data:`PRIOR_KEYS` entry.

    ``None`` (the default) means the data-based default of :data:`DEFAULT_PRIORS`; a
    prior given here is used as written, on the link scale (log rate, logit, log
    price) or, for Gaussian outcomes, in the outcome's units.  In a config file::

        [model.priors]
        did = "normal(0, 2.5)"
        sigma_ward = "inverse_gamma_precision(0.001, 0.001)"
    """

    intercept: Prior | None = None
    period: Prior | None = None
    group: Prior | None = None
    did: Prior | None = None
    covariate: Prior | None = None
    modification: Prior | None = None
    sigma_ward: Prior | None = None
    sigma_change: Prior | None = None
    sigma_pair: Prior | None = None
    sigma_obs: Prior | None = None

    def __post_init__(self) -> None:
        for key in PRIOR_KEYS:
            p = getattr(self, key)
            if p is None:
                continue
            if not isinstance(p, Prior):
                try:
                    p = Prior.parse(p)
                except SettingError as err:
                    raise SettingError(key, err.detail) from None
                object.__setattr__(self, key, p)
            if key in SD_PRIOR_KEYS:
                _need(p.positive, key, f"is a standard deviation: its prior must be one of "
                      f"{', '.join(POSITIVE_DISTS)}, not {p.dist}")
            else:
                _need(not p.positive, key, f"is a coefficient: its prior must be one of "
                      f"{', '.join(LOCATION_DISTS)}, not {p.dist}")

    def given(self) -> dict[str, Prior]:
        """The priors set explicitly (not ``None``)."""
        return {k: getattr(self, k) for k in PRIOR_KEYS if getattr(self, k) is not None}

    def with_(self, **priors: str | Prior | None) -> Priors:
        """A copy with some priors replaced (text is parsed): ``p.with_(did="normal(0, 1)")``."""
        unknown = sorted(set(priors) - set(PRIOR_KEYS))
        if unknown:
            raise SettingError(unknown[0], f"is not a prior (use {', '.join(PRIOR_KEYS)})")
        return dataclasses.replace(self, **priors)  # type: ignore[arg-type]


DEFAULT_PRIORS = Priors(
    intercept=Prior("normal", (0.0, 2.5)),
    period=Prior("normal", (0.0, 2.5)),
    group=Prior("normal", (0.0, 2.5)),
    did=Prior("normal", (0.0, 2.5)),
    covariate=Prior("normal", (0.0, 2.5)),
    modification=Prior("normal", (0.0, 2.5)),
    sigma_ward=Prior("halfnormal", (1.0,)),
    sigma_change=Prior("halfnormal", (1.0,)),
    sigma_pair=Prior("halfnormal", (1.0,)),
    sigma_obs=Prior("halfnormal", (1.0,)),
)
"""The default priors, in *data units* (see ``docs/models.md``, "Priors").

They are resolved for each fit (:func:`nbdid.models.priors.resolve_priors`): the
intercept's location is added to the data's own pooled pre-period value on the link
scale, and every location and scale is multiplied by the family's prior unit (1 on
logit and log scales; the SD of the values for Gaussian outcomes).  On a logit or log
scale ``normal(0, 2.5)`` is weakly informative (an odds or rate ratio within
``exp(+-4.9)`` at 95%): it shrinks an interaction estimated with likelihood SD 0.44
(Crowder's seeds) by 3%, where the session-1 default ``normal(0, 0.5)`` halved it."""


@dataclass(frozen=True)
class ModelConfig:
    """Model structure and priors (see ``docs/models.md`` for the maths).

    Attributes
    ----------
    pair_effects
        Include matched-pair random effects.
    ward_change
        Give every ward its own change after the initiative: a random slope on
        ``post`` (``(1 + post | ward)`` in lme4 terms).  Real ward rates diverge and
        converge between periods (the change SD measured on public extracts is 0.3-0.4
        on the log/logit scale), and a model without this term over-predicts the
        spread between wards before the initiative and under-predicts it after
        (posterior predictive p-values of 0.99-1.00 on the default panel,
        ``docs/models.md``).  It is also what makes the DiD interval reflect
        ward-to-ward variation in change, the report's missing ingredient.  Wards seen
        only before or only after get none, and it is switched off (saying so) when
        the panel cannot identify it (no ward seen before and after; one ward per
        group).
    group_change_sd
        One SD of ward changes per group (NBI and benchmark) instead of one shared
        SD.  On unbalanced designs (1:k matching, a large comparison pool) the DiD's
        posterior SD then matches the unequal-variance (Welch) standard error rather
        than the pooled-variance one; with equal group sizes the two agree.  Needs at
        least three wards seen before and after in each group (else one shared SD,
        saying so).
    ward_effects
        Random ward levels.  Off only for fixed effects models (switched off, saying
        so, when each group has one ward).
    ward_corr
        Let ward levels and ward changes correlate (LKJ prior, ``lkj_eta``), e.g.
        when high-crime wards improve most.  Off by default: one ward-level
        correlation is weakly identified by 58 wards and made the sampler struggle on
        indicators with little ward-to-ward spread (``docs/models.md``); the posterior
        predictive check of the post-period spread tells when it is needed.
    overdispersion
        Extra variation of count indicators beyond the binomial/Poisson:
        ``"negbin"`` (negative binomial for Poisson indicators, beta-binomial for
        binomial ones), ``"ward_period"`` (a normal ward x period effect on the link
        scale), ``"none"``, or ``"auto"`` (default): an observation-level term only
        where the panel identifies it, i.e. when most wards have more observations
        than ward-level effects (a level, and a change when modelled) and the panel
        has more observations than the mean has effects (fixed effects, covariate
        terms, and the pair, ward and change effects kept).  So two-period panels with
        ward changes, panels where each ward is seen once, and one ward per group on
        two periods get none.
        For prices (and Gaussian outcomes with a known SD) the same rule drops or
        keeps the ward x period SD ``sigma_wp``.  An explicit choice the data cannot
        identify is kept, with a note saying so.  The resolved value is stored with every
        fit.
    price_likelihood
        Likelihood of ward-period mean log prices.
    event_study
        With more than two periods, estimate one treatment effect per period
        relative to ``reference_period`` instead of a single pre/post DiD.
    reference_period
        Period label used as the event-study reference (default: last pre period).
    parameterization
        Ward levels, ward changes and pair effects ``"centred"`` (best when the data
        pin each one down, e.g. thousands of trials per ward), ``"non_centred"``
        (best when their spread is small next to the noise of the data that inform
        them) or ``"auto"`` (default: chosen per component and indicator from moment
        estimates of the two, see ``docs/models.md``).  ``fit`` and ``build_design``
        also take a dict of forms per component.
    covariates
        Panel columns used as covariates (``nbdid fit --covariates a,b``): ward-level
        (constant within a ward) or ward-period (time-varying).  Each is standardised
        and enters as a main effect and interacted with ``post``, so it may predict
        change (conditional parallel trends).
    interact
        Covariates (among ``covariates``) that also get a covariate x treatment x post
        term (effect modification, ``--interact a``), reported as their own estimands.
    priors
        The priors (:class:`Priors`); unset ones take the data-based defaults of
        :data:`DEFAULT_PRIORS`.
    prior_scale
        Multiplies the scale of every prior except the intercept's (sensitivity
        sweeps; a refit of a compiled model, as the scales are data of the model).
    lkj_eta
        Shape of the LKJ prior on the correlation of ward level and ward change
        (2: mildly favours small correlations).
    mean_level
        Sample each ward's precision-weighted mean level instead of its level (centred
        levels with ward changes only; the same model, see
        :func:`nbdid.models.design.level_weights`).  It removes the level-change
        correlation that costs hundreds of leapfrog steps a draw on national panels
        (national fits switch it on); on the 58-ward study panels the diagonal mass
        matrix absorbs that correlation, and property price samples its change SDs
        worse with it (tail ESS 306 against 1,647), so it is off by default.
    """

    pair_effects: bool = True
    ward_change: bool = True
    group_change_sd: bool = True
    ward_effects: bool = True
    ward_corr: bool = False
    overdispersion: Overdispersion = "auto"
    price_likelihood: PriceLikelihood = "student_t"
    event_study: bool = False
    reference_period: str | None = None
    parameterization: Parameterization = "auto"
    covariates: tuple[str, ...] = ()
    interact: tuple[str, ...] = ()
    priors: Priors = field(default_factory=Priors)
    prior_scale: float = 1.0
    lkj_eta: float = 2.0
    mean_level: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        for name in ("prior_scale", "lkj_eta"):
            v = getattr(self, name)
            _need(_finite(v) and v > 0, name, f"must be a positive number, not {v}")
        if isinstance(self.priors, dict):
            object.__setattr__(self, "priors", Priors(**self.priors))
        for name in ("covariates", "interact"):
            cols = tuple(str(c).strip() for c in getattr(self, name))
            object.__setattr__(self, name, cols)
            for c in cols:
                _need(re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.]*", c) is not None, name,
                      f"must name panel columns (letters, digits, _ and .), not {c!r}")
            _need(len(set(cols)) == len(cols), name, f"lists a column twice: {', '.join(cols)}")
        extra = [c for c in self.interact if c not in self.covariates]
        _need(not extra, "interact", f"names {extra[0] if extra else ''!r}, which is not one of the "
              f"covariates ({', '.join(self.covariates) or 'none'})")

    def with_priors(self, **priors: str | Prior | None) -> ModelConfig:
        """A copy with some priors replaced: ``cfg.with_priors(did="normal(0, 1)")``."""
        return dataclasses.replace(self, priors=self.priors.with_(**priors))


@dataclass(frozen=True)
class DiagnosticsConfig:
    """Thresholds of the diagnostics gate; a fit failing any of them is flagged.

    Attributes
    ----------
    max_rhat
        Largest acceptable rank-normalised split R-hat.
    min_ess_bulk, min_ess_tail
        Smallest acceptable bulk and tail effective sample sizes.
    max_divergences
        Largest acceptable number of divergent transitions.
    min_bfmi
        Smallest acceptable energy Bayesian fraction of missing information.
    ppc_p_range
        Posterior predictive p-values outside this range fail the PPC check.
    prior_sensitivity
        Power-scaling sensitivity (Kallioinen et al. 2024; ``az.psens``) at or above
        which the prior, or the likelihood, is said to matter: a quantity whose prior
        sensitivity reaches it while its likelihood sensitivity does not is
        *prior-dominated*; when both reach it, prior and data *conflict* (priorsense's
        rule and threshold).
    prior_check
        Quantities whose prior-dominance or prior-data conflict fails the gate:
        ``"did"`` (default: the DiD, and the covariate x treatment effects), ``"all"``
        (also every variance component) or ``"off"``.  The others are reported in
        ``diagnostics.csv`` (``prior_flags``) without failing the gate.
    loo_wards
        Also run leave-one-ward-out cross-validation for every fit (one warm refit per
        ward; ``elpd_loo_wards`` in ``diagnostics.csv``), as ``nbdid fit --loo-wards``
        does for one fit.  Off by default: it multiplies the sampling time by the
        number of wards.
    pointwise
        Unit of the stored log-likelihood (``log_likelihood`` group) and of PSIS-LOO:
        ``"obs"`` (default: each ward x period observation) or ``"ward"`` (each ward,
        the sum of its observations: leave-one-ward-out PSIS, the unit a hierarchical
        comparison cares about, at 1/periods of the memory; national fits use it).
    ppc_draws
        Posterior predictive replicates are drawn for at most this many posterior draws
        (every k-th draw of each chain, as the NetCDF file keeps them); ``0`` (default)
        draws them for every draw.  The predictive p-values use the same replicates.
    """

    max_rhat: float = 1.01
    min_ess_bulk: int = 400
    min_ess_tail: int = 400
    max_divergences: int = 0
    min_bfmi: float = 0.3
    ppc_p_range: tuple[float, float] = (0.01, 0.99)
    prior_sensitivity: float = 0.05
    prior_check: PriorCheck = "did"
    loo_wards: bool = False
    pointwise: Pointwise = "obs"
    ppc_draws: int = 0

    def __post_init__(self) -> None:
        _check_types(self)
        _need(_finite(self.max_rhat) and self.max_rhat >= 1, "max_rhat",
              f"must be at least 1 (R-hat of a converged chain), not {self.max_rhat}")
        for name in ("min_ess_bulk", "min_ess_tail", "max_divergences", "ppc_draws"):
            v = getattr(self, name)
            _need(v >= 0, name, f"must be non-negative, not {v}")
        _need(_finite(self.min_bfmi) and 0 <= self.min_bfmi <= 1, "min_bfmi",
              f"must be between 0 and 1, not {self.min_bfmi}")
        rng = self.ppc_p_range
        _need(isinstance(rng, tuple | list) and len(rng) == 2 and
              all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in rng),
              "ppc_p_range", f"must be two probabilities [low, high], not {rng!r}")
        lo, hi = rng
        _need(0 <= lo < hi <= 1, "ppc_p_range",
              f"must be two probabilities [low, high] with low < high, not {list(self.ppc_p_range)}")
        _need(_finite(self.prior_sensitivity) and self.prior_sensitivity > 0, "prior_sensitivity",
              f"must be a positive number, not {self.prior_sensitivity}")


@dataclass(frozen=True)
class FrequentistConfig:
    """Settings of the frequentist twin (:mod:`nbdid.analysis.frequentist`).

    Attributes
    ----------
    alpha
        Two-sided level of every interval and significance call (0.05: 95%).
    ri_draws
        Random within-pair swap patterns drawn when the pairs are too many to
        enumerate (randomization inference).
    ri_seed
        Seed of those draws (results are reproducible).
    ri_exact_max_pairs
        Enumerate all ``2^P`` swap patterns up to this many pairs (65,536 patterns).
    """

    alpha: float = 0.05
    ri_draws: int = 10_000
    ri_seed: int = 20250701
    ri_exact_max_pairs: int = 16

    def __post_init__(self) -> None:
        _check_types(self)
        _need(0 < self.alpha < 1, "alpha", f"must be between 0 and 1 (exclusive), not {self.alpha}")
        _need(100 <= self.ri_draws <= 10_000_000, "ri_draws",
              f"must be between 100 and 10000000, not {self.ri_draws}")
        _need(0 <= self.ri_seed <= MAX_SEED, "ri_seed", f"must be between 0 and {MAX_SEED}, not {self.ri_seed}")
        _need(0 <= self.ri_exact_max_pairs <= 24, "ri_exact_max_pairs",
              f"must be between 0 and 24 (2^24 patterns), not {self.ri_exact_max_pairs}")


DEFAULT_COLUMN_BOUNDS: dict[str, tuple[float, float]] = {
    "count": (0.0, 1e7),
    "exposure": (1.0, 1e7),
    "n": (1.0, 1e7),
    "mean_price": (1.0, 1e9),
    "mean_log_price": (0.0, 20.8),
    "sd_log_price": (0.0, 5.0),
}
"""Plausible range of each panel value column for one ward and period (see
:class:`BoundsConfig`).  ``count``/``exposure``: events, people, households or trials
(a ward has ~5,000-30,000 residents; 10 million is more than any ward, or any London
borough, holds).  ``n``: property transactions.  ``mean_price``: HM Land Registry
publishes prices from £1 to under £1 billion (Price Paid Data), so no mean can be
outside; ``mean_log_price`` likewise (log £1 = 0, log £1bn = 20.7).
``sd_log_price``: an SD of log prices above 5 would mean prices spread over a factor
of e^10 within one ward."""

DEFAULT_MAX_RATE: dict[str, float] = {
    "crime": 20.0,
    "burglary": 5.0,
    "criminal_damage": 5.0,
    "business_units": 50.0,
}
"""Largest plausible ``count / exposure`` of a ward and period, per indicator (count
indicators of the registry; binomial ones are at most 1 anyway): 20 crimes or 5
criminal-damage offences per resident, 5 burglaries per household, 50 business units
per working-age resident.  City-centre wards, whose few residents make rates high,
stay far below (Westminster's West End: about 1.3 crimes per resident a year)."""


@dataclass(frozen=True)
class BoundsConfig:
    """Plausibility bounds checked when a panel is read, before anything is fitted.

    A value outside its bounds is refused with the file, line and column (a
    binomial exposure of 1e300 would otherwise crash the sampler, and a Poisson
    exposure of 1e300 would be fitted and written).  The bounds are generous; when a
    real ward is outside them, widen them in the config file, e.g.::

        [bounds.columns]
        exposure = [1, 5e7]

        [bounds.max_rate]
        crime = 40
        fly_tipping = 2          # a key outside the registry

    Keys given replace the defaults of those keys only.

    Attributes
    ----------
    columns
        ``[low, high]`` of each panel value column (:data:`DEFAULT_COLUMN_BOUNDS`).
    max_rate
        Largest ``count / exposure`` per indicator (:data:`DEFAULT_MAX_RATE`).
    """

    columns: dict[str, tuple[float, float]] = field(default_factory=lambda: dict(DEFAULT_COLUMN_BOUNDS))
    max_rate: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_MAX_RATE))

    def __post_init__(self) -> None:
        _need(isinstance(self.columns, dict), "columns", "must be a table of [low, high] bounds")
        _need(isinstance(self.max_rate, dict), "max_rate", "must be a table of numbers")
        cols = {**DEFAULT_COLUMN_BOUNDS}
        for name, pair in self.columns.items():
            ok = isinstance(pair, tuple | list) and len(pair) == 2 and all(
                isinstance(x, numbers.Real) and not isinstance(x, bool) and x == x for x in pair)
            _need(ok, f"columns.{name}", f"must be two numbers [low, high], not {pair!r}")
            lo, hi = float(pair[0]), float(pair[1])
            _need(lo < hi, f"columns.{name}", f"must be [low, high] with low < high, not {[lo, hi]}")
            cols[str(name)] = (lo, hi)
        rates = {**DEFAULT_MAX_RATE}
        for key, v in self.max_rate.items():
            _need(isinstance(v, numbers.Real) and not isinstance(v, bool) and v == v and v > 0,
                  f"max_rate.{key}", f"must be a positive number, not {v!r}")
            rates[str(key)] = float(v)
        object.__setattr__(self, "columns", cols)
        object.__setattr__(self, "max_rate", rates)

    def __hash__(self) -> int:
        return hash((tuple(sorted(self.columns.items())), tuple(sorted(self.max_rate.items()))))


FAMILY_NAMES: tuple[str, ...] = ("binomial", "poisson", "negbin", "price", "gaussian")
"""Family names a config may give (``nbdid.families.FAMILY_CHOICES``; a test keeps the
two equal, since the families layer imports this module)."""


@dataclass(frozen=True)
class RunConfig:
    """Configuration of ``nbdid run`` (and the defaults of ``nbdid fit``).

    Attributes
    ----------
    panel
        Path of a ward panel CSV; ``None`` uses the embedded synthetic default panel.
    indicators
        Indicator keys to fit.
    out
        Default output folder.
    sampler, model, diagnostics, frequentist, bounds
        See :class:`SamplerConfig`, :class:`ModelConfig`, :class:`DiagnosticsConfig`,
        :class:`FrequentistConfig`, :class:`BoundsConfig`.
    families
        Likelihood family by indicator key, overriding the registry or naming the family
        of a key outside it (``nbdid fit --config``): ``binomial``, ``poisson``,
        ``negbin``, ``price`` or ``gaussian``.  In a config file::

            [families]
            wellbeing_score = "gaussian"
            crime = "negbin"

        ``nbdid fit --family`` takes precedence.
    """

    panel: str | None = None
    indicators: tuple[str, ...] = INDICATOR_KEYS
    out: str = "nbdid-results"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    frequentist: FrequentistConfig = field(default_factory=FrequentistConfig)
    bounds: BoundsConfig = field(default_factory=BoundsConfig)
    families: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_types(self)
        _need(isinstance(self.families, dict), "families",
              "must be a table of indicator = family names")
        for key, name in self.families.items():
            _need(name in FAMILY_NAMES, f"families.{key}",
                  f"must be one of {', '.join(FAMILY_NAMES)}, not {name!r}")
        _need(isinstance(self.indicators, tuple | list), "indicators",
              f"must be a list of indicator keys, not {self.indicators!r}")
        for key in self.indicators:
            _need(key not in self.families or key in INDICATOR_KEYS, "indicators",
                  f"'{key}' is not one of the report's indicators, the ones 'nbdid run' "
                  f"replicates ({', '.join(INDICATOR_KEYS)}); leave it out of 'indicators' "
                  f"and fit it with 'nbdid fit --indicator {key} --family "
                  f"{self.families.get(key)}' or 'nbdid compare --family "
                  f"{key}={self.families.get(key)}'")
            get_indicator(key)
        dup = sorted({k for k in self.indicators if list(self.indicators).count(k) > 1})
        _need(not dup, "indicators", f"lists {', '.join(dup)} more than once")

    def __hash__(self) -> int:
        return hash((self.panel, tuple(self.indicators), self.out, self.sampler, self.model,
                     self.diagnostics, self.frequentist, self.bounds,
                     tuple(sorted(self.families.items()))))


def _check_value(value: Any, tp: Any, where: str, file: str | None) -> Any:
    """Check (and lightly coerce) ``value`` against the annotation ``tp``."""
    origin = get_origin(tp)
    if tp is Prior:
        try:
            return Prior.parse(value)
        except SettingError as err:
            raise InputError(f"'{where}' {err.detail}", file=file) from None
    if origin is Literal:
        if value not in get_args(tp):
            opts = ", ".join(repr(a) for a in get_args(tp))
            raise InputError(f"'{where}' must be one of {opts}, not {value!r}", file=file)
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        errors = []
        for a in args:
            if a is type(None):
                continue
            try:
                return _check_value(value, a, where, file)
            except InputError as err:
                errors.append(err)
        raise errors[0]
    if origin is dict:
        if not isinstance(value, dict):
            raise InputError(f"'{where}' must be a table ([{where}]), not {value!r}", file=file)
        kt, vt = get_args(tp)
        out = {}
        for k, v in value.items():
            try:
                out[_check_value(k, kt, where, file)] = _check_value(v, vt, f"{where}.{k}", file)
            except SettingError:
                raise
            except InputError as err:
                raise SettingError(f"{where}.{k}", err.message.removeprefix(f"'{where}.{k}' "),
                                   file=file) from None
        return out
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"'{where}' must be a list, not {value!r}", file=file)
        args = get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_check_value(v, args[0], where, file) for v in value)
        if len(args) != len(value):
            raise InputError(f"'{where}' must have {len(args)} items", file=file)
        return tuple(_check_value(v, a, where, file) for v, a in zip(value, args, strict=True))
    if tp is bool:
        if not isinstance(value, bool):
            raise InputError(f"'{where}' must be true or false, not {value!r}", file=file)
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"'{where}' must be a whole number, not {value!r}", file=file)
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"'{where}' must be a number, not {value!r}", file=file)
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise InputError(f"'{where}' must be a string, not {value!r}", file=file)
        return value
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise InputError(f"'{where}' must be a [{where}] section", file=file)
        return from_dict(tp, value, file=file, prefix=f"{where}.")
    return value


def from_dict(cls: type, data: dict[str, Any], *, file: str | None = None, prefix: str = ""):
    """Build the frozen dataclass ``cls`` from a (TOML) dict, checking keys and types."""
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        raise InputError(f"unknown setting '{prefix}{unknown[0]}'{hint}", file=file)
    kwargs = {}
    for k, v in data.items():
        where = f"{prefix}{k}"
        try:
            kwargs[k] = _check_value(v, hints[k], where, file)
        except SettingError:
            raise
        except InputError as err:  # a wrong type: keep the key for callers (SettingError)
            detail = err.message.removeprefix(f"'{where}' ")
            raise SettingError(where, detail, file=file) from None
    try:
        return cls(**kwargs)
    except SettingError as err:
        raise SettingError(f"{prefix}{err.key}", err.detail, file=file) from None
    except InputError as err:
        raise InputError(err.message, file=file) from None


def with_settings(section: Any, *, flags: dict[str, str] | None = None, **values: Any) -> Any:
    """``section`` (a config dataclass) with ``values`` replaced, checked exactly like a
    config file's values (types, then the dataclass's range checks).  ``None`` values
    are ignored (an option not given).

    Parameters
    ----------
    section
        E.g. ``config.sampler``.
    flags
        How the keys are called where the values came from (``{"ri_seed": "--seed"}``),
        for the error message; default ``--key``.
    **values
        New values by field name.

    Raises
    ------
    SettingError
        Naming the option, e.g. ``'--seed' must be between 0 and 4294967295, not -5``.
    """
    given = {k: v for k, v in values.items() if v is not None}
    if not given:
        return section
    merged = {f.name: getattr(section, f.name) for f in dataclasses.fields(section)}
    try:
        return from_dict(type(section), {**merged, **given})
    except SettingError as err:
        name = (flags or {}).get(err.key, "--" + err.key.replace("_", "-"))
        raise SettingError(name, err.detail) from None


def load_config(path: str | Path | None) -> RunConfig:
    """Read a TOML config file into a :class:`RunConfig` (``None`` gives the defaults)."""
    if path is None:
        return RunConfig()
    p = Path(path)
    if not p.is_file():
        raise InputError("config file not found", file=p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("config file is not UTF-8 text", file=p) from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"not valid TOML: {err}", file=p) from None
    cfg = from_dict(RunConfig, data, file=str(p))
    if cfg.panel is not None and not Path(cfg.panel).is_absolute():
        # a relative panel path is relative to the config file, not the working directory
        cfg = dataclasses.replace(cfg, panel=str((p.parent / cfg.panel).resolve()))
    return cfg


def _toml_value(v: Any) -> str:
    if isinstance(v, Prior):
        return _toml_value(str(v))
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    if isinstance(v, dict):
        def key(k: str) -> str:
            return k if re.fullmatch(r"[A-Za-z0-9_-]+", k) else _toml_value(k)

        return "{" + ", ".join(f"{key(str(k))} = {_toml_value(x)}" for k, x in v.items()) + "}"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(cfg: Any, *, _prefix: str = "") -> str:
    """Serialise a config dataclass to TOML (``None`` values are omitted; nested
    dataclasses become ``[section]`` / ``[section.sub]`` tables)."""
    top, sections = [], []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if v is None:
            continue
        if dataclasses.is_dataclass(v) and not isinstance(v, Prior):
            name = f"{_prefix}{f.name}"
            body = to_toml(v, _prefix=f"{name}.")
            sections.append(f"[{name}]\n{body}")
        else:
            top.append(f"{f.name} = {_toml_value(v)}")
    return "\n".join(top) + ("\n\n" if top and sections else "") + "\n\n".join(sections) + (
        "\n" if top and not sections else ""
    )


@dataclass(frozen=True)
class GeneratorConfig:
    """Settings of the synthetic default panel (:mod:`nbdid.data_prep.synthetic`).

    The heterogeneity defaults were MEASURED on public small-area extracts with
    :mod:`nbdid.data_prep.heterogeneity` (method of moments, MSOAs as ward proxies;
    see ``docs/synthetic_panel.md``).  The measured values describe all areas, not only
    deprived matched wards, so they probably overstate the variation among study wards.

    Attributes
    ----------
    seed
        Random seed; the same seed and settings give the same panel, byte for byte.
    ward_sd_rate
        SD of ward effects on the log rate (Poisson indicators).  Measured: 0.39, burglary
        counts of 733 London MSOAs, Dec 2010 + Jan 2011 (police.uk, Metropolitan Police).
    change_sd_rate
        SD of ward-specific changes of the log rate between the two periods.  Measured:
        0.39, the same MSOAs, 2010/11 vs Jun 2021 + Jun 2022, net of short-run noise.
    overdispersion_rate
        SD of ward x period noise on the log rate (negative-binomial-like extra
        variation).  Measured: 0.11, the same MSOAs, Dec 2010 vs Jan 2011.
    ward_sd_logit
        SD of ward effects on the logit scale (binomial indicators).  Measured: 1.02,
        children in relative low income in 8,480 GB MSOAs, 2014/15 (DWP Stat-Xplore);
        log-count SD divided by 1 - 0.3.
    change_sd_logit
        SD of ward-specific logit changes.  Measured: 0.28, the same MSOAs, 2014/15 vs
        2020/21, net of short-run noise.
    overdispersion_logit
        SD of ward x period logit noise (beta-binomial-like).  Measured: 0.078, the same
        MSOAs, 2014/15 vs 2015/16.
    price_ward_sd
        SD of ward effects on the mean log price.  Measured: 0.35, between postcode
        districts in the Land Registry Price Paid extract (1995, 416 districts).
    price_within_sd
        SD of log prices of transactions within a ward-period.  Measured: 0.46, pooled
        within postcode districts in the same extract.
    price_change_sd
        SD of ward-specific changes of the mean log price (assumed, not measurable in
        the extracts).
    pair_corr
        Correlation of the two wards' effects within a matched pair (assumed).
    population_cv
        Coefficient of variation of ward populations (assumed; wards of ~10,000-15,000).
    share_sd
        SD (on the logit / log scale) of ward-to-ward variation in the working-age
        share, children share and household size (assumed).
    """

    seed: int = 20250701
    ward_sd_rate: float = 0.39
    change_sd_rate: float = 0.39
    overdispersion_rate: float = 0.11
    ward_sd_logit: float = 1.02
    change_sd_logit: float = 0.28
    overdispersion_logit: float = 0.078
    price_ward_sd: float = 0.35
    price_within_sd: float = 0.46
    price_change_sd: float = 0.10
    pair_corr: float = 0.5
    population_cv: float = 0.25
    share_sd: float = 0.05

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            if f.name == "seed":
                if v < 0:
                    raise InputError(f"'{f.name}' must be a non-negative whole number, not {v}")
                continue
            if not (v >= 0) or v != v or v == float("inf"):
                raise InputError(f"'{f.name}' must be a non-negative number, not {v}")
        if self.pair_corr > 1:
            raise InputError(f"'pair_corr' must be between 0 and 1, not {self.pair_corr}")
        for name in ("ward_sd_rate", "change_sd_rate", "overdispersion_rate", "ward_sd_logit",
                     "change_sd_logit", "overdispersion_logit", "price_ward_sd",
                     "price_within_sd", "price_change_sd", "population_cv", "share_sd"):
            if getattr(self, name) > 5:
                raise InputError(f"'{name}' must be at most 5 (a standard deviation on the "
                                 f"log/logit scale), not {getattr(self, name)}")


@dataclass(frozen=True)
class CandidatePoolConfig:
    """Settings of the synthetic candidate pool (:mod:`nbdid.data_prep.candidates`).

    The pool holds the 58 study wards of the default panel (rows unchanged) and
    ``n_candidates`` further synthetic wards that could serve as benchmarks.  Every
    ward has a latent deprivation ``z`` (pool scale: candidates ~ Normal(pool_mean,
    pool_sd)); the study wards' ``z`` is read off their own outcomes.  Covariates are
    computed from ``z`` through simulated LSOAs, outcomes from ``z`` through the
    relation seen in the default panel, so matching on covariates matters.

    Attributes
    ----------
    seed
        Random seed; the same seed and settings give the same pool, byte for byte.
    n_candidates
        Number of synthetic candidate wards besides the 58 study wards.
    pool_mean, pool_sd
        Mean and SD of the candidates' latent deprivation.
    study_mean, study_sd
        Mean and SD of the study wards' latent deprivation (their ordering comes
        from their outcomes).
    lsoas_per_ward
        Simulated LSOAs per ward (the IMD covariates summarise them).
    imd_intercept, imd_slope
        Probit of a ward's typical LSOA rank fraction: ``imd_intercept - imd_slope * z``.
    lsoa_sd
        SD of LSOAs around their ward on that probit scale.
    residual_scale
        Multiplies the outcome residual SDs estimated from the default panel.
    size_sd
        SD of the log size factor applied to a donor study ward's denominators.
    boundary_change_share
        Share of candidate wards flagged ``boundary_changed``.
    """

    seed: int = 20250702
    n_candidates: int = 300
    pool_mean: float = 0.3
    pool_sd: float = 1.0
    study_mean: float = 1.3
    study_sd: float = 0.5
    lsoas_per_ward: int = 7
    imd_intercept: float = -0.6
    imd_slope: float = 0.7
    lsoa_sd: float = 0.35
    residual_scale: float = 1.0
    size_sd: float = 0.2
    boundary_change_share: float = 0.15

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise InputError(f"'seed' must be a non-negative whole number, not {self.seed}")
        if not 1 <= self.n_candidates <= 100_000:
            raise InputError(f"'n_candidates' must be between 1 and 100000, not {self.n_candidates}")
        if self.lsoas_per_ward < 1:
            raise InputError(f"'lsoas_per_ward' must be at least 1, not {self.lsoas_per_ward}")
        for name in ("pool_sd", "study_sd", "imd_slope", "lsoa_sd", "residual_scale", "size_sd"):
            v = getattr(self, name)
            if not (0 <= v <= 10):
                raise InputError(f"'{name}' must be between 0 and 10, not {v}")
        if not 0 <= self.boundary_change_share <= 1:
            raise InputError(
                f"'boundary_change_share' must be between 0 and 1, not {self.boundary_change_share}"
            )


DESIGN_SAMPLER = SamplerConfig(draws=400, tune=300, chains=1, target_accept=0.8)
"""Sampler of each simulated study of ``nbdid design`` (``[sampler]`` of :class:`DesignConfig`).

One chain of 400 draws after 300 tuning steps at target acceptance 0.8: an assurance is
a share of simulated studies whose P(benefit) exceeds a threshold, so each study's
posterior needs only enough draws to place P(benefit) on the right side of it; the
Monte Carlo error of the assurance is dominated by the number of studies.  Target
acceptance 0.8 (nutpie's own default) instead of the fits' 0.9 takes about a quarter
of the leapfrog steps at 350 pairs and gave the same go/no-go decisions as the 0.9
settings against the 4 x 1,000-draw reference at 29 and 150 pairs.
``bench/bench_design.py --check`` compares the assurance with these settings and with
4 chains x 1,000 draws on the same simulated panels (docs/design.md)."""

DESIGN_SOURCE_SAMPLER = SamplerConfig(draws=1000, tune=1000, chains=4)
"""Sampler of the fit of the default panel that supplies the heterogeneity when no run
is given (its posterior draws are the design prior)."""


@dataclass(frozen=True)
class DesignConfig:
    """Settings of a study-design simulation (``nbdid design``, :mod:`nbdid.workflow.design`).

    Attributes
    ----------
    indicators
        Indicator keys to design for.
    areas
        Design sizes: numbers of matched sets (NBI areas, each with its
        ``matching_ratio`` benchmark areas).
    effects
        True effects on the ratio scale (rate ratio, odds ratio or price ratio; 0.9 is
        a 10% fall).  No effect (1.0) is always simulated for the frequentist methods'
        false-positive rates; list it here to fit the Bayesian model there too.
    unit_effects
        True effects in the indicator's own unit (percentage points, per 1,000, pounds),
        converted to ratios at the NBI group's typical post-period level.
    sims
        Simulated studies per indicator, size and effect.
    matching_ratio
        Benchmark areas per NBI area (1: matched pairs).
    periods, post_periods
        Number of periods, and how many of them (the last) are after the initiative.
    threshold
        Posterior P(benefit) above which a simulated study detects a benefit.
    target
        Assurance (and power) at which the minimum detectable effect and the number of
        areas needed are read off.
    alpha
        Two-sided level of the frequentist tests.
    ri_draws
        Random swap patterns of randomization inference per simulated study.
    seed
        Seed of everything random (the same seed and settings give the same numbers,
        whatever the executor or the order).
    sampler
        Sampler of each simulated study (:data:`DESIGN_SAMPLER`).
    source_sampler
        Sampler of the default-panel fit that supplies the heterogeneity when neither a
        run, the tipping point nor values are given (:data:`DESIGN_SOURCE_SAMPLER`).
    from_run
        Folder of a fitted run: heterogeneity from ``posteriors/KEY.nc`` (``nbdid run``)
        or ``KEY.nc`` (``nbdid fit``).
    from_tipping
        Heterogeneity from the tipping-point analysis of the report's published numbers.
    sigma_change, sigma_ward, sigma_pair, sigma_wp
        Heterogeneity given as fixed values (link scale): SD of ward-specific change
        (required for this source), of ward levels within sets, of set levels and of
        ward x period noise.
    """

    indicators: tuple[str, ...] = INDICATOR_KEYS
    areas: tuple[int, ...] = (29, 75, 150, 350)
    effects: tuple[float, ...] = (0.9,)
    unit_effects: tuple[float, ...] = ()
    sims: int = 200
    matching_ratio: int = 1
    periods: int = 2
    post_periods: int = 1
    threshold: float = 0.95
    target: float = 0.8
    alpha: float = 0.05
    ri_draws: int = 1000
    seed: int = 20250716
    sampler: SamplerConfig = field(default_factory=lambda: DESIGN_SAMPLER)
    source_sampler: SamplerConfig = field(default_factory=lambda: DESIGN_SOURCE_SAMPLER)
    from_run: str | None = None
    from_tipping: bool = False
    sigma_change: float | None = None
    sigma_ward: float | None = None
    sigma_pair: float | None = None
    sigma_wp: float | None = None

    def __post_init__(self) -> None:
        _need(len(self.indicators) > 0, "indicators", "must name at least one indicator")
        _need(len(self.areas) > 0 and all(2 <= a <= 100_000 for a in self.areas), "areas",
              f"must be numbers of matched sets between 2 and 100000, not {list(self.areas)}")
        _need(len(set(self.areas)) == len(self.areas), "areas", f"has repeated sizes: {list(self.areas)}")
        _need(all(_finite(e) and e > 0 for e in self.effects), "effects",
              f"must be positive ratios (0.9 = a 10% fall), not {list(self.effects)}")
        _need(all(_finite(e) for e in self.unit_effects), "unit_effects",
              f"must be finite numbers, not {list(self.unit_effects)}")
        _need(len(self.effects) + len(self.unit_effects) > 0, "effects", "must list at least one effect")
        _need(1 <= self.sims <= 1_000_000, "sims", f"must be between 1 and 1000000, not {self.sims}")
        _need(1 <= self.matching_ratio <= 10, "matching_ratio",
              f"must be between 1 and 10 benchmark areas per NBI area, not {self.matching_ratio}")
        _need(2 <= self.periods <= 50, "periods", f"must be between 2 and 50, not {self.periods}")
        _need(1 <= self.post_periods < self.periods, "post_periods",
              f"must be at least 1 and fewer than the {self.periods} periods, not {self.post_periods}")
        _need(0.5 < self.threshold < 1, "threshold", f"must be between 0.5 and 1, not {self.threshold}")
        _need(0 < self.target < 1, "target", f"must be between 0 and 1, not {self.target}")
        _need(0 < self.alpha < 1, "alpha", f"must be between 0 and 1, not {self.alpha}")
        _need(100 <= self.ri_draws <= 1_000_000, "ri_draws",
              f"must be between 100 and 1000000, not {self.ri_draws}")
        _need(0 <= self.seed <= MAX_SEED, "seed", f"must be between 0 and {MAX_SEED}, not {self.seed}")
        given = self.sigma_change is not None
        sources = [self.from_run is not None, self.from_tipping, given]
        _need(sum(sources) <= 1, "from_run",
              "choose one source of heterogeneity: a run, the tipping point or given values")
        if not given:
            extra = [n for n in ("sigma_ward", "sigma_pair", "sigma_wp") if getattr(self, n) is not None]
            _need(not extra, extra[0] if extra else "sigma_change",
                  "needs sigma_change (heterogeneity given as values)")
        for name in ("sigma_change", "sigma_ward", "sigma_pair", "sigma_wp"):
            v = getattr(self, name)
            _need(v is None or (_finite(v) and 0 <= v <= 5), name,
                  f"must be between 0 and 5 (an SD on the link scale), not {v}")
        if self.from_run is None:  # keys outside the registry need a run's fits
            for key in self.indicators:
                get_indicator(key)

    @property
    def first_post(self) -> int:
        """Index of the first post period."""
        return self.periods - self.post_periods


# ------------------------------------------------------------------------------------------
# nbdid build: the real-data panel
# ------------------------------------------------------------------------------------------

YearType = Literal["financial", "calendar"]
"""Periods of the police indicators: financial years (April-March, ``2010/11``) or
calendar years."""
PartialPeriods = Literal["refuse", "drop-pairs", "shorten", "keep"]
"""What to do when a ward's police force has months missing in a period."""
BoundaryVintage = Literal["study", "lookup"]
"""Ward areas of the report's wards: study era (WD17) or the ward lookup's vintage."""
WardLookup = Literal["lsoa11-wd17", "lsoa11-wd19"]
"""The ONS LSOA-to-ward lookup the loaders are given (the study-era WD17 lookup is
always downloaded beside it)."""
HouseholdsScaling = Literal["none", "population"]
"""Burglary denominator: Census 2011 households as they are, or scaled by population."""
MissingEstimates = Literal["refuse", "nearest"]
"""A denominator estimate the publishers do not serve (e.g. mid-2010 for 2011 LSOAs):
stop, or let the nearest published mid-year serve (stated in the provenance)."""
Apportion = Literal["lsoa_share", "population"]
"""How MSOA counts (DWP, business counts) are split over wards."""

REPORT_BUILD_PERIODS: dict[str, tuple[str, ...]] = {
    "police_financial": ("2010/11", "2020/21"),
    "police_calendar": ("2011", "2021"),
    "children_low_income": ("2014/15", "2020/21"),
    "out_of_work_benefits": ("2011-05", "2021-05"),
    "business_units": ("2011", "2021"),
    "property_price": ("2007-12:2013-11", "2018-12:2024-11"),
}
"""The report's periods in the form ``nbdid build`` asks the publishers for."""

WACG_GROUPS: tuple[str, ...] = (
    "Job seekers", "ESA and incapacity benefits", "Lone parents", "Carers",
    "Others on income related benefits")
"""DWP working-age client groups summed for out-of-work benefits before 2017: the
report's 2011 definition (JSA, IB/SDA/ESA, IS, Carer's Allowance)."""

_FY_RE = re.compile(r"^((?:19|20)\d\d)/(\d\d)$")
_YEAR_RE = re.compile(r"^(?:19|20)\d\d$")
_MONTH_RE = re.compile(r"^(?:19|20)\d\d-(?:0[1-9]|1[0-2])$")
_WINDOW_RE = re.compile(r"^((?:19|20)\d\d-(?:0[1-9]|1[0-2])):((?:19|20)\d\d-(?:0[1-9]|1[0-2]))$")


def _fy_ok(label: str) -> bool:
    m = _FY_RE.match(label)
    return bool(m) and int(m.group(2)) == (int(m.group(1)) + 1) % 100


def period_start(label: str) -> str:
    """First month (``YYYY-MM``) of a build period label.

    >>> period_start("2010/11"), period_start("2011"), period_start("2011-05")
    ('2010-04', '2011-01', '2011-05')
    >>> period_start("2007-12:2013-11")
    '2007-12'
    """
    if _fy_ok(label):
        return f"{label[:4]}-04"
    if _YEAR_RE.match(label):
        return f"{label}-01"
    if _MONTH_RE.match(label):
        return label
    m = _WINDOW_RE.match(label)
    if m:
        return m.group(1)
    raise SettingError("periods", f"'{label}' is not a period label")


@dataclass(frozen=True)
class BuildPeriods:
    """Periods ``nbdid build`` asks the publishers for, per source (``[periods]``).

    Two or more periods each, in time order.  Empty lists mean the report's periods
    (:data:`REPORT_BUILD_PERIODS`).

    Attributes
    ----------
    police
        Crime, burglary and criminal damage: financial years ``"2010/11"`` (with
        ``year_type = "financial"``) or calendar years ``"2011"``.
    children_low_income
        Financial years ``"2014/15"`` (Stat-Xplore CiLIF).
    out_of_work_benefits
        Months ``"2011-05"``: up to 2016-11 from the DWP working-age client group
        (NOMIS), later ones from Stat-Xplore benefit combinations (quarter months).
    business_units
        Years ``"2011"`` (UK Business Counts, March snapshot).
    property_price
        Windows ``"2007-12:2013-11"`` of Price Paid transfer months.
    post_from
        ``"YYYY-MM"``: periods starting in or after it are ``post``; empty: the last
        period of each indicator is post and the earlier ones pre (the report's
        before/after design).
    """

    police: tuple[str, ...] = ()
    children_low_income: tuple[str, ...] = ()
    out_of_work_benefits: tuple[str, ...] = ()
    business_units: tuple[str, ...] = ()
    property_price: tuple[str, ...] = ()
    post_from: str = ""

    def __post_init__(self) -> None:
        checks = {
            "police": (lambda s: _fy_ok(s) or bool(_YEAR_RE.match(s)),
                       "financial years '2010/11' or calendar years '2011'"),
            "children_low_income": (_fy_ok, "financial years such as '2014/15'"),
            "out_of_work_benefits": (lambda s: bool(_MONTH_RE.match(s)), "months such as '2011-05'"),
            "business_units": (lambda s: bool(_YEAR_RE.match(s)), "years such as '2011'"),
            "property_price": (lambda s: bool(_WINDOW_RE.match(s)) and s[:7] <= s[8:],
                               "windows of months such as '2007-12:2013-11'"),
        }
        for name, (ok, what) in checks.items():
            vals = getattr(self, name)
            if not vals:
                continue
            bad = [v for v in vals if not (isinstance(v, str) and ok(v))]
            _need(not bad, name, f"must be {what}, not {bad[0]!r}" if bad else "")
            _need(len(vals) >= 2, name, f"needs two or more periods (before and after), not {list(vals)}")
            starts = [period_start(v) for v in vals]
            _need(starts == sorted(starts) and len(set(starts)) == len(starts), name,
                  f"must be distinct and in time order, not {list(vals)}")
            if name == "police":
                kinds = {_fy_ok(v) for v in vals}
                _need(len(kinds) == 1, name, "must be all financial or all calendar years")
            if name == "property_price":
                for a, b in zip(vals, vals[1:], strict=False):
                    _need(a[8:] < b[:7], name, f"windows {a} and {b} overlap")
        _need(self.post_from == "" or bool(_MONTH_RE.match(self.post_from)), "post_from",
              f"must be YYYY-MM (or empty: the last period is post), not {self.post_from!r}")

    def resolved(self, year_type: str = "financial") -> dict[str, tuple[str, ...]]:
        """Periods per source with the report's periods filled in where none are given."""
        police = self.police or REPORT_BUILD_PERIODS[f"police_{year_type}"]
        return {
            "police": police,
            "children_low_income": self.children_low_income
            or REPORT_BUILD_PERIODS["children_low_income"],
            "out_of_work_benefits": self.out_of_work_benefits
            or REPORT_BUILD_PERIODS["out_of_work_benefits"],
            "business_units": self.business_units or REPORT_BUILD_PERIODS["business_units"],
            "property_price": self.property_price or REPORT_BUILD_PERIODS["property_price"],
        }


@dataclass(frozen=True)
class BuildConfig:
    """Configuration of ``nbdid build`` (a TOML file given with ``--config``).

    Example::

        indicators = ["crime", "burglary", "children_low_income"]
        year_type = "financial"
        partial_periods = "shorten"
        boundaries = "study"

        [periods]
        police = ["2010/11", "2020/21"]

    Attributes
    ----------
    indicators
        Indicator keys to build (default: all seven of the report).
    periods
        :class:`BuildPeriods`.
    year_type
        Police periods: ``"financial"`` (April-March) or ``"calendar"``; must agree with
        ``periods.police`` when that is given.
    partial_periods
        When a ward's police force has months missing in a period (police.uk starts in
        December 2010, Greater Manchester published nothing after July 2019):
        ``"shorten"`` (default: each period cut to the months every force published,
        exposure scaled; pairs whose force published no month of a period dropped),
        ``"drop-pairs"``, ``"keep"`` (partial counts) or ``"refuse"``.
    boundaries
        ``"study"`` (default: the report's wards on their study-era WD17 areas) or
        ``"lookup"`` (the areas of ``ward_lookup``'s vintage).
    ward_lookup
        ONS LSOA-to-ward lookup given to the loaders (the WD17 lookup is downloaded
        beside it, so the guard can report wards whose area changed).
    households_scaling
        Burglary denominator: ``"none"`` (Census 2011 households) or ``"population"``.
    missing_estimates
        A mid-year estimate the year map asks for that is not published for 2011 LSOAs
        (NOMIS serves mid-2011 to mid-2020) and that the year map's entries for the
        report's own periods do not cover (those serve mid-2011 for police 2010/11 and
        mid-2020 for May 2021 and business units 2021:
        ``nbdid.data_prep.yearmap.REPORT_PERIOD_ESTIMATES``; so the report's periods
        build with the default): ``"refuse"`` (default: the build stops before any
        download with one line naming each indicator, period and estimate year, and the
        fix) or ``"nearest"`` (an explicit opt-in: the nearest published year serves,
        stated in the provenance and on stderr).
    apportion
        Splitting MSOA counts over wards: by the share of their LSOAs (default) or
        their population.
    forces
        police.uk force ids to download; empty: the forces of the wards' local
        authorities (every force of England and Wales for a ward list outside the
        study's authorities).
    include_category_b
        Keep Price Paid category B sales (repossessions, buy-to-let, ...).
    report_labels
        Label periods as the report does (``"2011"`` for 2010/11 ...) when they are the
        report's periods, so the report's published values can be compared.
    wacg_groups
        Working-age client groups summed for out-of-work benefits up to 2016-11.
    latest_archive
        Newest police.uk archive that may be used (``"YYYY-MM"``; default: two
        months before today).
    nspl_item
        ArcGIS item id of the postcode directory (default: the pinned NSPL).
    synthetic
        The source files are generated test data: every panel row is marked synthetic.
    """

    indicators: tuple[str, ...] = INDICATOR_KEYS
    periods: BuildPeriods = field(default_factory=BuildPeriods)
    year_type: YearType = "financial"
    partial_periods: PartialPeriods = "shorten"
    boundaries: BoundaryVintage = "study"
    ward_lookup: WardLookup = "lsoa11-wd19"
    households_scaling: HouseholdsScaling = "none"
    missing_estimates: MissingEstimates = "refuse"
    apportion: Apportion = "lsoa_share"
    forces: tuple[str, ...] = ()
    include_category_b: bool = False
    report_labels: bool = True
    wacg_groups: tuple[str, ...] = WACG_GROUPS
    latest_archive: str | None = None
    nspl_item: str | None = None
    synthetic: bool = False

    def __post_init__(self) -> None:
        _check_types(self)
        _need(isinstance(self.indicators, tuple | list) and len(self.indicators) > 0,
              "indicators", "must list at least one indicator key")
        for key in self.indicators:
            _need(key in INDICATOR_KEYS, "indicators",
                  f"'{key}' is not one of the report's indicators ({', '.join(INDICATOR_KEYS)})")
        dup = sorted({k for k in self.indicators if list(self.indicators).count(k) > 1})
        _need(not dup, "indicators", f"lists {', '.join(dup)} more than once")
        if self.periods.police:
            fy = _fy_ok(self.periods.police[0])
            _need(fy == (self.year_type == "financial"), "year_type",
                  f"is '{self.year_type}' but periods.police are "
                  f"{'financial' if fy else 'calendar'} years {list(self.periods.police)}")
        for f in self.forces:
            _need(isinstance(f, str) and re.fullmatch(r"[a-z0-9]+(?:-[a-z0-9]+)*", f) is not None,
                  "forces", f"must be police.uk force ids such as 'merseyside', not {f!r}")
        _need(len(self.wacg_groups) > 0, "wacg_groups", "must name at least one client group")
        _need(self.latest_archive is None or bool(_MONTH_RE.match(self.latest_archive)),
              "latest_archive", f"must be YYYY-MM, not {self.latest_archive!r}")
        _need(self.nspl_item is None or re.fullmatch(r"[0-9a-f]{32}", self.nspl_item) is not None,
              "nspl_item", f"must be an ArcGIS item id (32 hex digits), not {self.nspl_item!r}")

    def resolved_periods(self) -> dict[str, tuple[str, ...]]:
        """Periods per source, the report's where none are given (:meth:`BuildPeriods.resolved`)."""
        return self.periods.resolved(self.year_type)


def load_build_config(path: str | Path | None) -> BuildConfig:
    """Read a TOML build config into a :class:`BuildConfig` (``None`` gives the defaults)."""
    if path is None:
        return BuildConfig()
    p = Path(path)
    if not p.is_file():
        raise InputError("build config file not found", file=p)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise InputError("build config file is not UTF-8 text", file=p) from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"not valid TOML: {err}", file=p) from None
    return from_dict(BuildConfig, data, file=str(p))
