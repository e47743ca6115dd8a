"""Sensitivity sweep: specifications from a TOML grid, their designs, and the summary.

A sweep refits every indicator under many *specifications*: one choice of matched
design (the report's own pairs or a re-matching from a candidate pool), of sample
(drop a pair, drop badly balanced pairs, drop wards whose boundaries changed) and of
model (pair effects, overdispersion, prior scales, ...).  This module reads the sweep
file (:func:`load_sweep_config`), expands the grid (:func:`expand_specs`), builds each
specification's panel (:func:`resolve_spec`) and summarises the results
(:func:`summarise_sweep`).  Running the fits is :mod:`nbdid.analysis.sweep`; the file
format is documented in ``docs/sensitivity.md``.

Functions here return DataFrames and never draw.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import itertools
import json
import tomllib
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from nbdid.analysis.comparison import report_did_table
from nbdid.analysis.matching import MatchSpec, balance_table, match_wards
from nbdid.config import DiagnosticsConfig, ModelConfig, SamplerConfig, _check_value, from_dict
from nbdid.data_prep.candidates import panel_with_sets, published_sets
from nbdid.errors import InputError
from nbdid.registry import INDICATOR_KEYS, INDICATORS

Distance = Literal["euclidean", "mahalanobis", "propensity"]
Method = Literal["greedy", "optimal"]
LeaveOneOut = Literal["none", "main", "all"]

SWEEP_SAMPLER = SamplerConfig(draws=1000, tune=500, chains=4)
"""Sweep-sized sampler defaults (``[sweep.sampler]`` overrides them).

4 chains x 1,000 draws after 500 tuning steps: half the main job's draws, and on the
synthetic default 12 of 14 indicator fits (two seeds) pass the gate, against 0 of 14
with 2 chains x 500 draws (R-hat 1.01-1.02 from two short chains).  A warm refit's
fixed costs (gate diagnostics, estimands) dominate, so this costs about 1.5x the time of
the light sampler, not 4x."""

MODEL_GRID_EXCLUDED: tuple[str, ...] = ("event_study", "reference_period")
"""ModelConfig fields that cannot be varied in ``[grid.model]`` (a sweep is pre/post)."""

RESULT_COLUMNS: tuple[str, ...] = (
    "spec_id", "is_main", "indicator", "estimate", "lower", "upper", "prob_benefit", "gate",
    "n_pairs", "n_wards", "max_abs_smd", "scale", "seconds", "error", "synthetic", "notice",
)
"""Result columns of a specification (besides its choices)."""


# ----------------------------------------------------------------------------------------
# configuration
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MatchingGrid:
    """``[grid.matching]``: matched designs to try.

    ``published`` adds the study's own pairs; every combination of the other lists
    adds a re-matching from the candidate pool (none when ``covariates`` is empty).
    A caliper of ``false`` means no caliper.
    """

    published: bool = True
    covariates: tuple[tuple[str, ...], ...] = ()
    distance: tuple[Distance, ...] = ("mahalanobis",)
    caliper: tuple[float | bool, ...] = (False,)
    replace: tuple[bool, ...] = (False,)
    ratio: tuple[int, ...] = (1,)
    exact: tuple[tuple[str, ...], ...] = ((),)
    method: tuple[Method, ...] = ("greedy",)

    def __post_init__(self) -> None:
        for c in self.caliper:
            if c is True or (not isinstance(c, bool) and not c > 0):
                raise InputError(
                    f"'grid.matching.caliper' values must be positive numbers (SDs) or false, not {c!r}"
                )
        for r in self.ratio:
            if r < 1:
                raise InputError(f"'grid.matching.ratio' values must be at least 1, not {r}")
        for name in ("distance", "caliper", "replace", "ratio", "exact", "method"):
            if not getattr(self, name):
                raise InputError(f"'grid.matching.{name}' must list at least one value")
        if any(not c for c in self.covariates) and self.covariates != ((),):
            raise InputError("'grid.matching.covariates' has an empty covariate list")


@dataclass(frozen=True)
class SampleGrid:
    """``[grid.sample]``: which matched sets enter the fit.

    ``leave_one_pair_out``: ``"none"``, ``"main"`` (one extra specification per pair,
    each dropping that pair from the main specification) or ``"all"`` (the same for
    every specification of the grid).  ``drop_poor_balance``: ``false`` or a threshold:
    drop matched sets whose largest absolute standardised difference on the balance
    covariates exceeds it.  ``drop_boundary_changes``: drop wards flagged
    ``boundary_changed`` (a matched set loses its treated ward or all its controls ->
    the set is dropped).
    """

    leave_one_pair_out: LeaveOneOut | bool = "none"
    drop_poor_balance: tuple[float | bool, ...] = (False,)
    drop_boundary_changes: tuple[bool, ...] = (False,)

    def __post_init__(self) -> None:
        loo = self.leave_one_pair_out
        if isinstance(loo, bool):
            object.__setattr__(self, "leave_one_pair_out", "main" if loo else "none")
        for t in self.drop_poor_balance:
            if t is True or (not isinstance(t, bool) and not t > 0):
                raise InputError(
                    "'grid.sample.drop_poor_balance' values must be false or a positive "
                    f"threshold (absolute standardised difference), not {t!r}"
                )
        for name in ("drop_poor_balance", "drop_boundary_changes"):
            if not getattr(self, name):
                raise InputError(f"'grid.sample.{name}' must list at least one value")


@dataclass(frozen=True)
class ModelGrid:
    """``[grid.model]``: lists of values for :class:`nbdid.config.ModelConfig` fields
    (e.g. ``pair_effects``, ``overdispersion``, ``ward_change``) and ``prior_scale``
    (multiplies every prior scale except the data-centred intercept's)."""

    choices: tuple[tuple[str, tuple[Any, ...]], ...] = ()


@dataclass(frozen=True)
class SweepSettings:
    """``[sweep]``: data, indicators, seed and the base sampler/model settings."""

    panel: str = "default"
    candidates: str | None = None
    indicators: tuple[str, ...] | Literal["all"] = "all"
    seed: int = 1
    out: str = "nbdid-sensitivity"
    balance_covariates: tuple[str, ...] | Literal["matching"] = "matching"
    robust_share: float = 0.9
    sampler: SamplerConfig = SWEEP_SAMPLER
    model: ModelConfig = field(default_factory=ModelConfig)
    diagnostics: DiagnosticsConfig = field(default_factory=DiagnosticsConfig)

    def __post_init__(self) -> None:
        if self.indicators != "all":
            for k in self.indicators:
                if k not in INDICATORS:
                    raise InputError(
                        f"'sweep.indicators': unknown indicator '{k}' (use {', '.join(INDICATOR_KEYS)})"
                    )
        if not 0 < self.robust_share <= 1:
            raise InputError(f"'sweep.robust_share' must be in (0, 1], not {self.robust_share}")
        if self.seed < 0:
            raise InputError(f"'sweep.seed' must be a non-negative whole number, not {self.seed}")

    @property
    def indicator_keys(self) -> tuple[str, ...]:
        """The indicators to fit."""
        return INDICATOR_KEYS if self.indicators == "all" else tuple(self.indicators)


@dataclass(frozen=True)
class SweepConfig:
    """A whole sweep file."""

    sweep: SweepSettings = field(default_factory=SweepSettings)
    matching: MatchingGrid = field(default_factory=MatchingGrid)
    sample: SampleGrid = field(default_factory=SampleGrid)
    model: ModelGrid = field(default_factory=ModelGrid)
    source: str | None = None
    text: str = ""


def _as_list(v: Any) -> list:
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _as_list_of_lists(v: Any) -> list:
    if isinstance(v, str):
        return [[v]]
    if isinstance(v, (list, tuple)) and all(isinstance(x, str) for x in v):
        return [list(v)] if v else [[]]
    return list(v) if isinstance(v, (list, tuple)) else [v]


def _table(data: dict, key: str, file: str | None) -> dict:
    v = data.get(key, {})
    if not isinstance(v, dict):
        raise InputError(f"'{key}' must be a [{key}] section", file=file)
    return v


def _unknown(data: dict, allowed: set[str], prefix: str, file: str | None) -> None:
    bad = sorted(set(data) - allowed)
    if bad:
        close = difflib.get_close_matches(bad[0], allowed, n=1)
        hint = f" (did you mean '{prefix}{close[0]}'?)" if close else ""
        raise InputError(f"unknown setting '{prefix}{bad[0]}'{hint}", file=file)


def _model_grid(data: dict, file: str | None) -> ModelGrid:
    hints = typing.get_type_hints(ModelConfig)
    allowed = {f.name for f in dataclasses.fields(ModelConfig)} - set(MODEL_GRID_EXCLUDED)
    _unknown(data, allowed | {"prior_scale"}, "grid.model.", file)
    out = []
    for key, raw in data.items():
        vals = _as_list(raw)
        if not vals:
            raise InputError(f"'grid.model.{key}' must list at least one value", file=file)
        where = f"grid.model.{key}"
        if key == "prior_scale":
            checked = tuple(_check_value(v, float, where, file) for v in vals)
            if any(not v > 0 for v in checked):
                raise InputError(f"'{where}' values must be positive", file=file)
        else:
            checked = tuple(_check_value(v, hints[key], where, file) for v in vals)
        if len(set(checked)) != len(checked):
            raise InputError(f"'{where}' lists a value twice", file=file)
        out.append((key, checked))
    return ModelGrid(tuple(sorted(out)))


def parse_sweep_config(text: str, *, file: str | None = None) -> SweepConfig:
    """Parse the TOML text of a sweep file into a :class:`SweepConfig`.

    Raises
    ------
    InputError
        Invalid TOML, unknown sections or keys, wrong types or values; the message
        names the file and the key.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"not valid TOML: {err}", file=file) from None
    _unknown(data, {"sweep", "grid"}, "", file)
    sweep = dict(_table(data, "sweep", file))
    grid = _table(data, "grid", file)
    _unknown(grid, {"matching", "sample", "model"}, "grid.", file)
    sampler = _table(sweep, "sampler", file)
    if "seed" in sampler:
        raise InputError("set the seed with 'sweep.seed', not 'sweep.sampler.seed'", file=file)
    sweep["sampler"] = {**dataclasses.asdict(SWEEP_SAMPLER), **sampler}
    for k in ("sampler", "model", "diagnostics"):
        sweep.setdefault(k, {})
    if "indicators" in sweep and isinstance(sweep["indicators"], str) and sweep["indicators"] != "all":
        sweep["indicators"] = [sweep["indicators"]]
    settings = from_dict(SweepSettings, sweep, file=file, prefix="sweep.")
    if settings.sampler.draws < 10 or settings.sampler.chains < 1:
        raise InputError("'sweep.sampler' needs draws >= 10 and chains >= 1", file=file)

    m = dict(_table(grid, "matching", file))
    for k in ("distance", "caliper", "replace", "ratio", "method"):
        if k in m:
            m[k] = _as_list(m[k])
    for k in ("covariates", "exact"):
        if k in m:
            m[k] = _as_list_of_lists(m[k])
    m.setdefault("covariates", [])
    if m["covariates"] == [[]]:
        m["covariates"] = []
    if not m["covariates"]:
        m["covariates"] = [()]
    matching = from_dict(MatchingGrid, m, file=file, prefix="grid.matching.")
    if matching.covariates == ((),):
        matching = dataclasses.replace(matching, covariates=())
        if not matching.published:
            raise InputError("'grid.matching' gives no design: set published = true or list "
                             "covariates", file=file)
    s = dict(_table(grid, "sample", file))
    for k in ("drop_poor_balance", "drop_boundary_changes"):
        if k in s:
            s[k] = _as_list(s[k])
    sample = from_dict(SampleGrid, s, file=file, prefix="grid.sample.")
    model = _model_grid(_table(grid, "model", file), file)
    return SweepConfig(settings, matching, sample, model, source=file, text=text)


def load_sweep_config(path: str | Path) -> SweepConfig:
    """Read a sweep TOML file (relative data paths are relative to the file)."""
    p = Path(path)
    if not p.is_file():
        raise InputError("sweep config file not found", file=p)
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InputError("sweep config file is not UTF-8 text", file=p) from None
    cfg = parse_sweep_config(text, file=str(p))
    s = cfg.sweep
    repl = {}
    for key in ("panel", "candidates"):
        v = getattr(s, key)
        if v is not None and not (key == "panel" and v == "default") and not Path(v).is_absolute():
            repl[key] = str((p.parent / v).resolve())
    if repl:
        cfg = dataclasses.replace(cfg, sweep=dataclasses.replace(s, **repl))
    return cfg


# ----------------------------------------------------------------------------------------
# specifications
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Spec:
    """One specification: resolved matching, sample and model choices."""

    matching: str = "published"  # "published" or "matched"
    covariates: tuple[str, ...] = ()
    distance: str = ""
    caliper: float | None = None
    replace: bool = False
    ratio: int = 1
    exact: tuple[str, ...] = ()
    method: str = ""
    drop_pair: int | None = None
    drop_poor_balance: float | None = None
    drop_boundary_changes: bool = False
    model: tuple[tuple[str, Any], ...] = ()

    def choices(self, model_keys: tuple[str, ...] = ()) -> dict[str, Any]:
        """Flat, CSV-friendly choices (``model_keys``: model columns to include)."""
        pub = self.matching == "published"
        out: dict[str, Any] = {
            "matching": self.matching,
            "covariates": "-" if pub else "+".join(self.covariates),
            "distance": "-" if pub else self.distance,
            "caliper": "-" if pub else ("none" if self.caliper is None else f"{self.caliper:g}"),
            "replace": "-" if pub else str(self.replace).lower(),
            "ratio": "-" if pub else str(self.ratio),
            "exact": "-" if pub else ("+".join(self.exact) or "none"),
            "method": "-" if pub else self.method,
            "drop_pair": "none" if self.drop_pair is None else str(self.drop_pair),
            "drop_poor_balance": "none" if self.drop_poor_balance is None else f"{self.drop_poor_balance:g}",
            "drop_boundary_changes": str(self.drop_boundary_changes).lower(),
        }
        model = dict(self.model)
        for k in model_keys:
            v = model.get(k, "default")
            out[k] = str(v).lower() if isinstance(v, bool) else (f"{v:g}" if isinstance(v, float) else str(v))
        return out

    def model_config(self, base: ModelConfig) -> ModelConfig:
        """The :class:`ModelConfig` of this specification."""
        kw = dict(self.model)
        scale = kw.pop("prior_scale", 1.0)
        cfg = dataclasses.replace(base, **kw)
        if scale != 1.0:  # widens every prior but the data-centred intercept's
            cfg = dataclasses.replace(cfg, prior_scale=cfg.prior_scale * scale)
        return cfg

    @property
    def pair_effects(self) -> bool | None:
        """``pair_effects`` chosen by the model grid (``None``: the base model's)."""
        return dict(self.model).get("pair_effects")


def model_keys(cfg: SweepConfig) -> tuple[str, ...]:
    """Model choices that are columns of the result tables."""
    return tuple(k for k, _ in cfg.model.choices)


def main_spec(cfg: SweepConfig, *, has_published: bool = True) -> Spec:
    """The study's main specification: its own pairs, every ward, the base model.

    Without published pairs (a user pool without ``published_pair``), the first
    matching of the grid.
    """
    model = tuple((k, 1.0 if k == "prior_scale" else getattr(cfg.sweep.model, k))
                  for k, _ in cfg.model.choices)
    if has_published:
        return Spec(model=model)
    matched = [s for s in _matchings(cfg) if s.matching == "matched"]
    if not matched:
        raise InputError("the candidate pool has no published pairs (column published_pair) "
                         "and 'grid.matching' lists no covariates to match on", file=cfg.source)
    return dataclasses.replace(matched[0], model=model)


def _matchings(cfg: SweepConfig) -> list[Spec]:
    m = cfg.matching
    out = []
    for cov, dist, cal, rep, ratio, exact, method in itertools.product(
        m.covariates, m.distance, m.caliper, m.replace, m.ratio, m.exact, m.method
    ):
        out.append(Spec(
            matching="matched", covariates=tuple(cov), distance=dist,
            caliper=None if cal is False else float(cal), replace=bool(rep), ratio=int(ratio),
            exact=tuple(exact), method="greedy" if rep else method,
        ))
    if m.published or not out:
        out.insert(0, Spec())
    return out


def _normalise(spec: Spec) -> Spec:
    """Resolve choices that coincide: with replacement, no pair effects."""
    if spec.replace and dict(spec.model).get("pair_effects", True):
        model = dict(spec.model)
        if "pair_effects" in model:
            model["pair_effects"] = False
            spec = dataclasses.replace(spec, model=tuple(sorted(model.items())))
    return spec


def expand_specs(cfg: SweepConfig, *, pairs: list[int] | None = None,
                 has_published: bool = True) -> list[Spec]:
    """Every specification of the grid, main specification first, duplicates removed.

    Parameters
    ----------
    cfg
        The sweep.
    pairs
        Pair numbers for leave-one-pair-out (default: 1..29).
    has_published
        Whether the pool has the study's own pairs.
    """
    matchings = _matchings(cfg) if has_published else [s for s in _matchings(cfg)
                                                        if s.matching == "matched"]
    samples = [(None if t is False else float(t), bool(b))
               for t, b in itertools.product(cfg.sample.drop_poor_balance,
                                             cfg.sample.drop_boundary_changes)]
    names = [k for k, _ in cfg.model.choices]
    models = [tuple(zip(names, vals, strict=True))
              for vals in itertools.product(*(v for _, v in cfg.model.choices))]
    main = main_spec(cfg, has_published=has_published)
    specs = [main]
    for m, (bal, bnd), model in itertools.product(matchings, samples, models):
        specs.append(dataclasses.replace(m, drop_poor_balance=bal, drop_boundary_changes=bnd,
                                         model=model))
    loo = cfg.sample.leave_one_pair_out
    pairs = list(range(1, 30)) if pairs is None else list(pairs)
    if loo == "main":
        specs += [dataclasses.replace(main, drop_pair=p) for p in pairs]
    elif loo == "all":
        specs += [dataclasses.replace(s, drop_pair=p) for s in list(specs) for p in pairs]
    seen, out = set(), []
    for s in specs:
        s = _normalise(s)
        if s not in seen:
            seen.add(s)
            out.append(s)
    return out


def spec_hash(spec: Spec, context: str) -> str:
    """Stable SHA-256 of a specification's resolved choices and the sweep ``context``
    (data hash, indicators, sampler, base model, diagnostics, seed)."""
    payload = json.dumps(
        {"choices": spec.choices(tuple(k for k, _ in spec.model)), "model": spec.model,
         "context": context},
        sort_keys=True, default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def derived_seed(seed: int, *keys: str) -> int:
    """A seed derived from the sweep seed and names (order- and executor-independent)."""
    h = hashlib.sha256(":".join([str(seed), *keys]).encode()).digest()
    return int.from_bytes(h[:4], "little") & 0x7FFFFFFF


# ----------------------------------------------------------------------------------------
# resolving a specification into a panel
# ----------------------------------------------------------------------------------------


@dataclass
class ResolvedSpec:
    """A specification's panel and matched sets (``error`` when it cannot be built)."""

    spec: Spec
    panel: pd.DataFrame | None
    sets: pd.DataFrame | None
    max_abs_smd: float = float("nan")
    error: str = ""

    @property
    def n_sets(self) -> int:
        return 0 if self.sets is None else int(self.sets["set"].nunique())

    @property
    def n_wards(self) -> int:
        return 0 if self.panel is None else int(self.panel["ward"].nunique())


def set_imbalance(sets: pd.DataFrame, treated: pd.DataFrame, controls: pd.DataFrame,
                  covariates: tuple[str, ...]) -> pd.Series:
    """Largest absolute standardised difference per matched set.

    ``|x_treated - mean(x_controls)| / s`` with ``s`` the pooled SD of all treated
    wards and all candidates, ``sqrt((s_t^2 + s_c^2) / 2)`` (the denominator of
    :func:`nbdid.analysis.matching.balance_table`), maximised over ``covariates``.
    """
    t = treated.set_index(treated["ward"].astype(str))
    c = controls.set_index(controls["ward"].astype(str))
    out = pd.Series(0.0, index=pd.Index(sorted(sets["set"].unique()), name="set"))
    for cov in covariates:
        sd = float(np.sqrt((t[cov].astype(float).var(ddof=1) + c[cov].astype(float).var(ddof=1)) / 2))
        xt = sets.groupby("set")["treated_ward"].first().astype(str).map(t[cov].astype(float))
        xc = sets.assign(x=sets["control_ward"].astype(str).map(c[cov].astype(float)))
        xc = xc.groupby("set")["x"].mean()
        d = (xt - xc).abs() / sd if sd > 0 else (xt - xc).abs() * np.inf
        out = np.maximum(out, d.reindex(out.index).fillna(0.0))
    return out


def resolve_spec(spec: Spec, pool, *, balance_covariates: tuple[str, ...] | None = None
                 ) -> ResolvedSpec:
    """Build a specification's panel from the candidate pool.

    Sets are numbered by the treated ward's published pair (when it has one), so
    ``drop_pair = k`` drops the same NBI ward in every design.  Matching failures
    (too few candidates, a separating propensity model) give ``error``.
    """
    cov = pool.covariates
    treated = cov[cov["group"] == "nbi"].sort_values(
        ["published_pair", "ward"], na_position="last").reset_index(drop=True)
    controls = cov[cov["group"] == "benchmark"].reset_index(drop=True)
    if spec.drop_boundary_changes:
        treated = treated[~treated["boundary_changed"].astype(bool)].reset_index(drop=True)
        controls = controls[~controls["boundary_changed"].astype(bool)].reset_index(drop=True)
    bal_cov = tuple(balance_covariates or spec.covariates)
    try:
        if spec.matching == "published":
            sets = published_sets(cov)
            keep_t = set(treated["ward"].astype(str))
            keep_c = set(controls["ward"].astype(str))
            sets = sets[sets["treated_ward"].astype(str).isin(keep_t)
                        & sets["control_ward"].astype(str).isin(keep_c)]
        else:
            ms = MatchSpec(covariates=spec.covariates, distance=spec.distance, ratio=spec.ratio,
                           replace=spec.replace, caliper=spec.caliper, exact=spec.exact,
                           method=spec.method)
            sets = match_wards(treated, controls, ms)
            label = treated["published_pair"].astype("Int64")
            position = np.arange(1, len(treated) + 1)
            number = pd.Series(np.where(label.isna().to_numpy(), position,
                                        label.fillna(0).to_numpy()), index=position)
            sets = sets.assign(set=sets["set"].map(number).astype("int64"))
        if spec.drop_pair is not None:
            sets = sets[sets["set"] != spec.drop_pair]
        max_smd = float("nan")
        if bal_cov:
            if spec.drop_poor_balance is not None and len(sets):
                imb = set_imbalance(sets, treated, controls, bal_cov)
                sets = sets[sets["set"].isin(imb.index[imb <= spec.drop_poor_balance])]
            if len(sets):
                bt = balance_table(treated, controls, sets, bal_cov)
                max_smd = float(bt["smd_after"].abs().max())
        if sets["set"].nunique() < 2:
            return ResolvedSpec(spec, None, sets, max_smd,
                                f"only {sets['set'].nunique()} matched set(s) left")
        panel = panel_with_sets(pool.panel, sets)
        pe = spec.pair_effects
        if pe is False or spec.replace:
            panel["pair"] = pd.array([pd.NA] * len(panel), dtype="Int64")
        return ResolvedSpec(spec, panel.reset_index(drop=True), sets.reset_index(drop=True), max_smd)
    except InputError as err:
        return ResolvedSpec(spec, None, None, error=f"matching failed: {err.message}")


def shape_signature(panel: pd.DataFrame, indicators: tuple[str, ...]) -> tuple:
    """Sizes of each indicator's design (wards, pairs, periods, rows): compiled models
    are reusable between specifications with equal signatures and model settings."""
    out = []
    for key in indicators:
        sub = panel[panel["indicator"] == key]
        out.append((key, sub["ward"].nunique(), sub["pair"].nunique(), sub["period"].nunique(), len(sub)))
    return tuple(out)


# ----------------------------------------------------------------------------------------
# summary
# ----------------------------------------------------------------------------------------


def conclusion(lower: float, upper: float, lower_is_better: bool) -> str:
    """``"benefit"``, ``"harm"`` or ``"unclear"`` from a 95% interval of NBI - benchmark."""
    if not (np.isfinite(lower) and np.isfinite(upper)):
        return "not fitted"
    if lower > 0 or upper < 0:
        better = (upper < 0) if lower_is_better else (lower > 0)
        return "benefit" if better else "harm"
    return "unclear"


# -- moved here from figures/specification_curve.py (figures read verdicts, never compute
# -- them): the per-specification conclusion column the specification curve draws.
def add_conclusions(results: pd.DataFrame) -> pd.DataFrame:
    """A copy of sweep results with a ``conclusion`` column (:func:`conclusion` per row).

    The direction of benefit is the registry's for each row's ``indicator`` (higher is
    better for keys not in the registry); rows without a finite interval get
    ``"not fitted"``.  :func:`nbdid.figures.plot_specification_curve` draws this column.
    """
    out = results.copy()
    lib = [INDICATORS[str(k)].lower_is_better if str(k) in INDICATORS else False
           for k in out["indicator"]]
    out["conclusion"] = [
        conclusion(float(lo), float(hi), b)
        for lo, hi, b in zip(out["lower"], out["upper"], lib, strict=True)
    ]
    return out


def summarise_sweep(results: pd.DataFrame, *, robust_share: float = 0.9) -> pd.DataFrame:
    """How often each conclusion holds across specifications, per indicator.

    Parameters
    ----------
    results
        The sweep table (``sensitivity.csv``): one row per specification x indicator.
    robust_share
        ``main_holds`` is true when at least this share of the fitted specifications
        reach the main specification's conclusion.

    Returns
    -------
    pandas.DataFrame
        One row per indicator: ``n_specs``, ``n_fitted``, ``n_gate_failed``,
        ``share_benefit`` / ``share_harm`` (95% interval excludes zero in the direction
        of benefit / harm), ``share_prob_benefit_gt_0_9``, ``estimate_min/median/max``,
        the main specification's ``main_estimate, main_lower, main_upper,
        main_prob_benefit, main_conclusion``, ``share_main_conclusion`` and
        ``main_holds``; the report's own verdict (``report_conclusion``, from its
        overlap rule) and ``share_report_conclusion``; ``synthetic``/``notice``.
        Shares are over the fitted specifications (finite estimate).
    """
    rep = report_did_table().set_index("indicator")
    rows = []
    for key, sub in results.groupby("indicator", sort=False):
        ind = INDICATORS.get(str(key))
        lib = ind.lower_is_better if ind else False
        fitted = sub[np.isfinite(sub["estimate"].astype(float))]
        concl = [conclusion(lo, hi, lib) for lo, hi in zip(fitted["lower"], fitted["upper"], strict=True)]
        concl = pd.Series(concl, index=fitted.index, dtype=object)
        n = len(fitted)
        main = sub[sub["is_main"].astype(bool)]
        row: dict[str, Any] = {
            "indicator": key,
            "n_specs": len(sub),
            "n_fitted": n,
            "n_gate_failed": int((~fitted["gate"].astype(str).str.startswith("passed")).sum()),
            "share_benefit": float((concl == "benefit").mean()) if n else np.nan,
            "share_harm": float((concl == "harm").mean()) if n else np.nan,
            "share_prob_benefit_gt_0_9": float((fitted["prob_benefit"] > 0.9).mean()) if n else np.nan,
            "estimate_min": float(fitted["estimate"].min()) if n else np.nan,
            "estimate_median": float(fitted["estimate"].median()) if n else np.nan,
            "estimate_max": float(fitted["estimate"].max()) if n else np.nan,
        }
        if len(main) and np.isfinite(float(main["estimate"].iloc[0])):
            m = main.iloc[0]
            mc = conclusion(float(m["lower"]), float(m["upper"]), lib)
            share = float((concl == mc).mean()) if n else np.nan
            row.update(main_estimate=float(m["estimate"]), main_lower=float(m["lower"]),
                       main_upper=float(m["upper"]), main_prob_benefit=float(m["prob_benefit"]),
                       main_conclusion=mc, share_main_conclusion=share,
                       main_holds=bool(share >= robust_share))
        else:
            row.update(main_estimate=np.nan, main_lower=np.nan, main_upper=np.nan,
                       main_prob_benefit=np.nan, main_conclusion="not fitted",
                       share_main_conclusion=np.nan, main_holds=False)
        if key in rep.index:
            r = rep.loc[key]
            rc = ("benefit" if bool(r.report_better) else "harm") if bool(r.report_significant) else "unclear"
            row.update(report_conclusion=rc,
                       share_report_conclusion=float((concl == rc).mean()) if n else np.nan)
        else:
            row.update(report_conclusion="", share_report_conclusion=np.nan)
        for extra in ("synthetic", "notice"):
            if extra in sub:
                row[extra] = sub[extra].iloc[0]
        rows.append(row)
    return pd.DataFrame(rows)


CHOICE_COLUMNS: tuple[str, ...] = tuple(Spec().choices().keys())
"""Choice columns every specification has (model columns come from the grid)."""
