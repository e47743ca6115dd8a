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

Unknown keys, wrong types and values outside a ``Literal`` are reported as one-line
errors naming the file and the key.
"""

from __future__ import annotations

import dataclasses
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
    """

    backend: Backend = "nutpie"
    draws: int = 2000
    tune: int = 1000
    chains: int = 4
    target_accept: float = 0.9
    seed: int = 20250701


@dataclass(frozen=True)
class ModelConfig:
    """Model structure and prior scales (see ``docs/models.md`` for the maths).

    Attributes
    ----------
    pair_effects
        Include matched-pair random effects.
    ward_change
        Give every ward its own change after the initiative: a random slope on
        ``post``, correlated with the ward's level (``(1 + post | ward)`` in lme4
        terms, LKJ prior on the correlation).  Real ward rates diverge and converge
        between periods (the change SD measured on public extracts is 0.3-0.4 on the
        log/logit scale), and a model without this term over-predicts the spread
        between wards before the initiative and under-predicts it after (posterior
        predictive p-values of 0.99-1.00 on the default panel, ``docs/models.md``).
        It is also what makes the DiD interval reflect ward-to-ward variation in
        change, the report's missing ingredient.
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
        scale), ``"none"``, or ``"auto"`` (default): ``"none"`` when ``ward_change``
        is on and the panel has two periods (each ward-period already has its own
        effect, and an observation-level term on top is not identified: it samples
        badly), ``"negbin"`` otherwise.  For prices the same rule drops or keeps the
        ward x period SD ``sigma_wp``.  The resolved value is stored with every fit.
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
        estimates of the two, see ``docs/models.md``).  ``fit_indicator`` and
        ``build_design`` also take a dict of forms per component.
    intercept_sd, effect_sd, did_sd, sigma_ward_scale, sigma_change_scale,
    sigma_pair_scale, sigma_wp_scale
        Prior scales on the link scale (logit, log rate or log price): normal priors
        for the intercept, period and group effects and the DiD, half-normal priors for
        the standard deviations of ward levels, ward changes, pair effects and ward x
        period effects.
    lkj_eta
        Shape of the LKJ prior on the correlation of ward level and ward change
        (2: mildly favours small correlations).
    """

    pair_effects: bool = True
    ward_change: bool = True
    ward_corr: bool = False
    overdispersion: Overdispersion = "auto"
    price_likelihood: PriceLikelihood = "student_t"
    event_study: bool = False
    reference_period: str | None = None
    parameterization: Parameterization = "auto"
    intercept_sd: float = 2.5
    effect_sd: float = 1.0
    did_sd: float = 0.5
    sigma_ward_scale: float = 1.0
    sigma_change_scale: float = 0.5
    sigma_pair_scale: float = 0.5
    sigma_wp_scale: float = 0.5
    lkj_eta: float = 2.0


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
    """

    max_rhat: float = 1.01
    min_ess_bulk: int = 400
    min_ess_tail: int = 400
    max_divergences: int = 0
    min_bfmi: float = 0.3
    ppc_p_range: tuple[float, float] = (0.01, 0.99)


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
    sampler, model, diagnostics
        See :class:`SamplerConfig`, :class:`ModelConfig`, :class:`DiagnosticsConfig`,
        :class:`FrequentistConfig`.
    """

    panel: str | None = None
    indicators: tuple[str, ...] = INDICATOR_KEYS
    out: str = "nbdid-results"
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)
    frequentist: FrequentistConfig = field(default_factory=FrequentistConfig)

    def __post_init__(self) -> None:
        for key in self.indicators:
            get_indicator(key)


def _check_value(value: Any, tp: Any, where: str, file: str | None) -> Any:
    """Check (and lightly coerce) ``value`` against the annotation ``tp``."""
    origin = get_origin(tp)
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
        import difflib

        close = difflib.get_close_matches(unknown[0], names, n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        raise InputError(f"unknown setting '{prefix}{unknown[0]}'{hint}", file=file)
    kwargs = {k: _check_value(v, hints[k], f"{prefix}{k}", file) for k, v in data.items()}
    try:
        return cls(**kwargs)
    except InputError as err:
        raise InputError(err.message, file=file) from None


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
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, (tuple, list)):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def to_toml(cfg: Any) -> str:
    """Serialise a config dataclass to TOML (``None`` values are omitted)."""
    top, sections = [], []
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if v is None:
            continue
        if dataclasses.is_dataclass(v):
            body = to_toml(v)
            sections.append(f"[{f.name}]\n{body}")
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
