"""Planning the next evaluation (``nbdid design``): Bayesian assurance and frequentist power.

:func:`design` answers "what could a study of N matched sets detect?" by simulation.
For every indicator and design size (number of matched sets) it

1. takes the heterogeneity -- the SDs of ward levels, ward-specific change, set levels
   and ward x period noise, and the baselines -- from a fitted run's posterior draws,
   from a fit of the default panel, from the tipping-point analysis of the report's
   published numbers, or as given values (:mod:`nbdid.analysis.assurance`);
2. simulates ``sims`` panels, each with its own heterogeneity draw (so the results
   integrate over the uncertainty in it), at every true effect and at no effect, with
   :func:`nbdid.models.simulate.simulate_panel`;
3. refits the Bayesian model to each panel -- a refit of one compiled model per
   indicator and design size (:class:`~nbdid.models.sampling.CompiledModelCache`), never
   a compilation per simulation -- and runs the frequentist twin and the report's
   pooled rule (:data:`nbdid.analysis.frequentist.METHOD_REGISTRY`);
4. summarises assurance, power, false-positive rates, type S/M errors and the minimum
   detectable effect with Monte Carlo SEs (:func:`nbdid.analysis.assurance.summarise_simulations`).

The simulations run in tasks of about equal cost (a dozen 29-pair panels, or one
350-pair panel) on the executors of the sensitivity sweep
(:mod:`nbdid.workflow.sweep`): local worker processes or a Dask cluster, tasks of the
same compiled model on the same worker.  Each finished task is written at once,
atomically, to ``cells/<id>.csv``; the id hashes everything that determines its numbers,
so a rerun skips finished tasks and an interrupted design loses only the tasks in
progress.  Seeds come from the design seed, the indicator, the size and the simulation
index, so results do not depend on the executor, the order or the number of workers.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from nbdid.analysis import assurance as asr
from nbdid.analysis.frequentist import METHOD_REGISTRY, AnalysisSettings, prepare
from nbdid.analysis.sensitivity import derived_seed
from nbdid.config import DesignConfig, ModelConfig, RunConfig, SamplerConfig, to_toml
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.errors import InputError, NbdidError
from nbdid.families import get_family
from nbdid.figures import plot_assurance, save_figure
from nbdid.figures.style import FORMATS
from nbdid.models.design import build_design, design_from_dataset
from nbdid.models.simulate import simulate_panel
from nbdid.outputs import open_out_dir, write_csv, write_netcdf, write_text
from nbdid.provenance import SYNTHETIC_NOTICE, package_versions
from nbdid.registry import INDICATORS
from nbdid.runtime import ignore_environment_notices
from nbdid.workflow.fit import fit
from nbdid.workflow.sweep import Progress, _run_dask, _run_local, plan_lanes, worker_cache

Executor = Literal["local", "dask"]
Say = Callable[[str], None]

DESIGN_REVISION = 2
"""Part of every task id: bump it when a change to the simulation or the fits changes
a task's numbers, so that resuming never reuses stale files."""

CELL_DIR = "cells"
HETEROGENEITY_DIR = "heterogeneity"

SIM_COLUMNS: tuple[str, ...] = (
    "indicator", "family", "areas", "matching_ratio", "periods", "sim", "draw", "seed",
    "effect_ratio", "effect_link", *asr.SD_COLUMNS,
    "bayes_estimate", "bayes_sd", "bayes_lower", "bayes_upper", "prob_benefit", "divergences",
    "ess_did", "fit_seconds", "seconds",
    *[c for m in asr.FREQ_METHODS for c in (f"{m}_estimate", f"{m}_p", f"{m}_significant")],
    "error",
)
"""One row per simulated study (indicator x size x simulation x effect): the truth, the
posterior of the DiD (link scale; NaN where the Bayesian model was not fitted) and
each frequentist method's estimate (link scale), p-value and verdict (1/0), and the
time of the Bayesian fit (``fit_seconds``) and of the whole study (``seconds``)."""


# ----------------------------------------------------------------------------------------
# the task a worker runs
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DesignTask:
    """A run of simulations of one indicator and design size (picklable).

    Attributes
    ----------
    spec_id
        Stable id (the cell file's name; hashes everything that sets the numbers).
    sims, seeds, draws, params
        Simulation indices, their seeds, heterogeneity draw indices and draw values.
    effects, bayes
        True effects (link scale) and whether the Bayesian model is fitted at each.
    forms
        Centred/non-centred forms of the model (fixed per indicator and size, so that
        every refit uses the same compiled model).
    signature
        Model structure and sizes: tasks with equal signatures share a compiled model.
    """

    spec_id: str
    indicator: str
    family: str
    areas: int
    sims: tuple[int, ...]
    seeds: tuple[int, ...]
    draws: tuple[int, ...]
    params: tuple[dict[str, float], ...]
    effects: tuple[float, ...]
    bayes: tuple[bool, ...]
    matching_ratio: int
    periods: int
    first_post: int
    exposures: np.ndarray
    price_sd_within: float
    mean_transactions: float
    lower_is_better: bool
    forms: dict[str, str]
    model: ModelConfig
    sampler: SamplerConfig
    alpha: float
    ri_draws: int
    ri_seed: int
    signature: tuple = ()


def simulate(task: DesignTask, i: int, effect: float) -> pd.DataFrame:
    """The ``i``-th simulated panel of ``task`` at the link-scale ``effect``."""
    p = task.params[i]
    fam = get_family(task.family)
    panel, _truth = simulate_panel(
        fam.name, indicator=task.indicator, n_pairs=task.areas, n_periods=task.periods,
        first_post=task.first_post, did=effect,
        base=float(fam.inverse_link(np.asarray(p["intercept"]))),
        period_change=p["period_change"], group_diff=p["group_diff"],
        sigma_pair=p["sigma_pair"], sigma_ward=p["sigma_ward"], sigma_change=p["sigma_change"],
        sigma_change_nbi=p.get("sigma_change_nbi", p["sigma_change"]),
        sigma_wp=p["sigma_wp"], change_form="step", controls_per_set=task.matching_ratio,
        exposures=task.exposures if len(task.exposures) else None,
        price_sd_within=task.price_sd_within, mean_transactions=task.mean_transactions,
        seed=task.seeds[i], synthetic=True,
    )
    return panel


def _frequentist(task: DesignTask, panel: pd.DataFrame) -> dict[str, float]:
    out: dict[str, float] = {}
    data = prepare(panel, task.indicator, family=task.family)
    settings = AnalysisSettings(alpha=task.alpha, draws=task.ri_draws, seed=task.ri_seed,
                                interval=False)
    for m in asr.FREQ_METHODS:
        r = METHOD_REGISTRY[m].run(data, settings)
        ratio = float(r.ratio)
        out[f"{m}_estimate"] = math.log(ratio) if ratio > 0 and math.isfinite(ratio) else math.nan
        out[f"{m}_p"] = float(r.p_value)
        out[f"{m}_significant"] = math.nan if pd.isna(r.significant) else float(bool(r.significant))
    return out


def _bayes(task: DesignTask, panel: pd.DataFrame, seed: int) -> dict[str, float]:
    # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
    import arviz as az

    t0 = time.perf_counter()
    fam = get_family(task.family)
    design = build_design(panel, task.indicator, fam, pair_effects=task.model.pair_effects,
                          parameterization=task.forms)
    sampler = dataclasses.replace(task.sampler, seed=seed)
    idata = worker_cache().sample(design, task.model, sampler)
    did = idata.posterior["did"].values
    out = asr.posterior_decision(did, lower_is_better=task.lower_is_better)
    out["divergences"] = float(np.asarray(idata.sample_stats["diverging"].values).sum())
    out["ess_did"] = float(az.ess(idata, var_names=["did"])["did"].values)
    out["fit_seconds"] = round(time.perf_counter() - t0, 3)
    return out


def run_design_task(task: DesignTask) -> pd.DataFrame:
    """Simulate, refit and test every simulation of ``task`` (the function workers run).

    Returns one row per simulation and effect (:data:`SIM_COLUMNS`).  A study that
    cannot be analysed (e.g. a method that needs events in every cell) gets NaN for
    that method and the reason in ``error``; the study is kept.
    """
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ignore_environment_notices()
        for i, sim in enumerate(task.sims):
            p = task.params[i]
            for effect, fit_bayes in zip(task.effects, task.bayes, strict=True):
                row: dict[str, Any] = dict.fromkeys(SIM_COLUMNS, math.nan)
                row.update(indicator=task.indicator, family=task.family, areas=task.areas,
                           matching_ratio=task.matching_ratio, periods=task.periods, sim=sim,
                           draw=task.draws[i], seed=task.seeds[i], effect_ratio=math.exp(effect),
                           effect_link=effect, error="",
                           **{c: p[c] for c in asr.SD_COLUMNS})
                errors = []
                t0 = time.perf_counter()
                panel = simulate(task, i, effect)
                try:
                    row.update(_frequentist(task, panel))
                except (NbdidError, ValueError, np.linalg.LinAlgError) as err:
                    errors.append(f"frequentist: {err}")
                if fit_bayes:
                    try:
                        row.update(_bayes(task, panel, derived_seed(task.seeds[i], "fit")))
                    except NbdidError as err:
                        errors.append(f"bayes: {err}")
                row["error"] = "; ".join(errors)
                row["seconds"] = round(time.perf_counter() - t0, 3)
                rows.append(row)
    return pd.DataFrame(rows, columns=list(SIM_COLUMNS))


# ----------------------------------------------------------------------------------------
# heterogeneity
# ----------------------------------------------------------------------------------------


def _posterior_file(folder: Path, key: str) -> Path:
    for p in (folder / "posteriors" / f"{key}.nc", folder / f"{key}.nc"):
        if p.is_file():
            return p
    raise InputError(f"no posterior of '{key}' in {folder} (expected posteriors/{key}.nc from "
                     f"'nbdid run' or {key}.nc from 'nbdid fit')", file=folder)


def _from_file(path: Path, key: str, *, source: str, description: str) -> asr.Heterogeneity:
    # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
    import arviz as az

    try:
        idata = az.from_netcdf(path)
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read the posterior: {err}", file=path) from None
    if "constant_data" not in idata.groups() or "posterior" not in idata.groups():
        raise InputError("not an nbdid fit (no posterior or no design in constant_data)", file=path)
    design = design_from_dataset(idata.constant_data)
    if design.indicator != key:
        raise InputError(f"holds a fit of '{design.indicator}', not '{key}'", file=path)
    post = idata.posterior
    n = int(post.sizes["chain"] * post.sizes["draw"])
    syn = str(post.attrs.get("nbdid_synthetic", "")).lower() == "true" or design.synthetic
    desc = description.format(path=path, n=n)
    return asr.heterogeneity_from_posterior(post, design, source=source, description=desc,
                                            synthetic=syn)


def load_heterogeneity(config: DesignConfig, *, out: Path | None = None,
                       say: Say | None = None) -> dict[str, asr.Heterogeneity]:
    """The heterogeneity of every indicator, from the source the config names.

    ``from_run``: the run's ``posteriors/KEY.nc`` (or ``KEY.nc``); ``from_tipping``:
    the published numbers' tipping-point posterior; ``sigma_change`` (...): given
    values; none of these: a fit of the embedded synthetic default panel with
    ``config.source_sampler`` (saved to ``out/heterogeneity/KEY.nc`` and reused from
    there when the design is resumed).
    """
    say = say or (lambda _m: None)
    out_het: dict[str, asr.Heterogeneity] = {}
    for key in config.indicators:
        if config.from_run is not None:
            path = _posterior_file(Path(config.from_run), key)
            out_het[key] = _from_file(path, key, source="run",
                                      description="posterior of the fit in {path} ({n:,} draws)")
        elif config.from_tipping:
            out_het[key] = asr.heterogeneity_from_tipping(key, seed=config.seed)
        elif config.sigma_change is not None:
            out_het[key] = asr.heterogeneity_given(
                key, sigma_change=config.sigma_change, sigma_ward=config.sigma_ward,
                sigma_pair=config.sigma_pair, sigma_wp=config.sigma_wp or 0.0)
        else:
            out_het[key] = _default_fit(config, key, out=out, say=say)
    return out_het


def _default_fit(config: DesignConfig, key: str, *, out: Path | None, say: Say) -> asr.Heterogeneity:
    s = config.source_sampler
    desc = (f"posterior of a fit of the SYNTHETIC default panel's {key} ({s.chains} x {s.draws:,} "
            "draws)")
    saved = out / HETEROGENEITY_DIR / f"{key}.nc" if out is not None else None
    if saved is not None and saved.is_file():
        say(f"{key}: heterogeneity from the saved default-panel fit {saved}")
        return _from_file(saved, key, source="default", description=desc)
    say(f"{key}: fitting the synthetic default panel for its heterogeneity "
        f"({s.chains} chains x {s.draws} draws) ...")
    res = fit(load_default_panel(), key, config=RunConfig(indicators=(key,), sampler=s), quiet=True)
    if not res.passed:
        say(f"{key}: warning: the default-panel fit {res.gate}; its heterogeneity is uncertain")
    if saved is not None:
        # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
        import arviz as az

        keep = az.InferenceData(posterior=res.idata.posterior, constant_data=res.idata.constant_data)
        write_netcdf(keep, saved)
    return asr.heterogeneity_from_posterior(res.idata.posterior, res.design, source="default",
                                            description=desc + f"; diagnostics {res.gate}",
                                            synthetic=True)


# ----------------------------------------------------------------------------------------
# planning
# ----------------------------------------------------------------------------------------


def design_effects(config: DesignConfig, het: asr.Heterogeneity) -> list[asr.Effect]:
    """The true effects of one indicator (ratio-scale and own-unit ones, no duplicates),
    in increasing order of the ratio."""
    post_steps = config.periods - 1
    effects = [asr.Effect(r) for r in config.effects]
    effects += [asr.effect_from_unit(u, het, post_steps=post_steps) for u in config.unit_effects]
    seen: dict[float, asr.Effect] = {}
    for e in effects:
        seen.setdefault(round(e.ratio, 10), e)
    return [seen[k] for k in sorted(seen)]


def _params(het: asr.Heterogeneity, idx: np.ndarray) -> tuple[dict[str, float], ...]:
    d = het.draws.iloc[idx]
    return tuple({c: float(v) for c, v in zip(asr.HET_COLUMNS, row, strict=True)}
                 for row in d[list(asr.HET_COLUMNS)].itertuples(index=False))


def _forms(config: DesignConfig, het: asr.Heterogeneity, key: str, areas: int, effect: float,
           model: ModelConfig) -> dict[str, str]:
    """Centred/non-centred forms for one indicator and size, chosen (as ``nbdid fit``
    would) on a pilot panel simulated at the median heterogeneity draw."""
    med = het.draws.median()
    pilot = DesignTask(
        spec_id="pilot", indicator=key, family=het.family, areas=areas, sims=(0,),
        seeds=(derived_seed(config.seed, "pilot", key, str(areas)),), draws=(0,),
        params=({c: float(med[c]) for c in asr.HET_COLUMNS},), effects=(effect,), bayes=(False,),
        matching_ratio=config.matching_ratio, periods=config.periods,
        first_post=config.first_post, exposures=het.exposures,
        price_sd_within=het.price_sd_within, mean_transactions=het.mean_transactions,
        lower_is_better=False, forms={}, model=model, sampler=config.sampler, alpha=config.alpha,
        ri_draws=config.ri_draws, ri_seed=config.seed)
    panel = simulate(pilot, 0, effect)
    d = build_design(panel, key, get_family(het.family), pair_effects=model.pair_effects,
                     parameterization=model.parameterization)
    return d.forms


def build_tasks(config: DesignConfig, heterogeneity: dict[str, asr.Heterogeneity],
                model: ModelConfig) -> tuple[list[DesignTask], dict[str, list[asr.Effect]]]:
    """Every task of the design, and each indicator's effects."""
    tasks: list[DesignTask] = []
    effects_by_key: dict[str, list[asr.Effect]] = {}
    for key in config.indicators:
        het = heterogeneity[key]
        effects = design_effects(config, het)
        effects_by_key[key] = effects
        bayes_at_null = any(np.isclose(e.ratio, 1.0) for e in effects)
        links = [0.0] + [e.link for e in effects if not np.isclose(e.ratio, 1.0)]
        fits = [bayes_at_null] + [True] * (len(links) - 1)
        lib = INDICATORS[key].lower_is_better if key in INDICATORS else False
        idx = asr.draw_indices(het, config.sims, config.seed)
        first = next((e for e in links if e != 0.0), 0.0)
        for areas in config.areas:
            forms = _forms(config, het, key, areas, first, model)
            per = asr.sims_per_task(areas, controls_per_set=config.matching_ratio,
                                    periods=config.periods)
            context = json.dumps({
                "revision": DESIGN_REVISION, "heterogeneity": het.fingerprint(),
                "effects": [round(x, 12) for x in links], "bayes": fits,
                "matching_ratio": config.matching_ratio, "periods": config.periods,
                "first_post": config.first_post, "sampler": dataclasses.asdict(config.sampler),
                "model": dataclasses.asdict(model), "alpha": config.alpha,
                "ri_draws": config.ri_draws, "seed": config.seed, "forms": forms,
            }, sort_keys=True, default=str)
            digest = hashlib.sha256(context.encode()).hexdigest()[:12]
            signature = (het.family, areas, config.matching_ratio, config.periods,
                         config.first_post, tuple(sorted(forms.items())), dataclasses.astuple(model))
            for start, stop in asr.task_chunks(config.sims, per):
                sims = tuple(range(start, stop))
                tasks.append(DesignTask(
                    spec_id=f"{key}-{areas}-{start:06d}-{stop:06d}-{digest}", indicator=key,
                    family=het.family, areas=areas, sims=sims,
                    seeds=tuple(asr.sim_seed(config.seed, key, areas, s) for s in sims),
                    draws=tuple(int(idx[s]) for s in sims), params=_params(het, idx[start:stop]),
                    effects=tuple(links), bayes=tuple(fits), matching_ratio=config.matching_ratio,
                    periods=config.periods, first_post=config.first_post,
                    exposures=np.asarray(het.exposures, dtype=float),
                    price_sd_within=het.price_sd_within, mean_transactions=het.mean_transactions,
                    lower_is_better=lib, forms=forms, model=model, sampler=config.sampler,
                    alpha=config.alpha, ri_draws=config.ri_draws,
                    ri_seed=derived_seed(config.seed, "ri"), signature=signature,
                ))
    return tasks, effects_by_key


def cell_path(out: Path, spec_id: str) -> Path:
    """Where a task's rows are written."""
    return out / CELL_DIR / f"{spec_id}.csv"


def read_cell(path: Path) -> pd.DataFrame:
    """Read a written task file back."""
    df = pd.read_csv(path, dtype={"indicator": str, "family": str, "error": str})
    df["error"] = df["error"].fillna("")
    return df


def output_names(indicators: tuple[str, ...]) -> list[str]:
    """The files :meth:`DesignResult.save` writes (besides ``cells/`` and
    ``heterogeneity/``)."""
    names = ["assurance.csv", "simulations.csv", "heterogeneity.csv", "summary.md", "summary.txt",
             "design_info.json"]
    for k in indicators:
        names += [f"figures/assurance_{k}.{ext}" for ext in FORMATS]
    return names


# ----------------------------------------------------------------------------------------
# the result
# ----------------------------------------------------------------------------------------


@dataclass
class DesignResult:
    """Everything :func:`design` produces.

    Attributes
    ----------
    config
        The settings used.
    table
        One row per indicator x design size x effect (``assurance.csv``): assurance,
        power per method, false-positive rates, type S/M, minimum detectable effect,
        each with its Monte Carlo SE, and where the heterogeneity came from.
    simulations
        One row per simulated study (``simulations.csv``, :data:`SIM_COLUMNS`).
    heterogeneity
        The heterogeneity of each indicator (:class:`nbdid.analysis.assurance.Heterogeneity`).
    summary
        The findings in plain words (Markdown).
    info
        Provenance (settings, sources, timing, versions; ``design_info.json``).
    """

    config: DesignConfig
    table: pd.DataFrame
    simulations: pd.DataFrame
    heterogeneity: dict[str, asr.Heterogeneity]
    summary: str
    info: dict[str, Any] = field(default_factory=dict)
    fitted: int = 0
    reused: int = 0
    seconds: float = 0.0

    @property
    def synthetic(self) -> bool:
        """Whether any indicator's heterogeneity comes from synthetic data."""
        return any(h.synthetic for h in self.heterogeneity.values())

    def heterogeneity_table(self) -> pd.DataFrame:
        """One row per indicator: the source of its heterogeneity and its SDs."""
        return pd.DataFrame([h.summary() for h in self.heterogeneity.values()])

    def text(self) -> str:
        """The summary for the terminal (plain text)."""
        return markdown_to_text(self.summary)

    def figures(self) -> dict[str, Figure]:
        """Assurance curves per indicator, by file stem (``assurance_KEY``)."""
        out = {}
        for key, t in self.table.groupby("indicator", sort=False):
            out[f"assurance_{key}"] = plot_assurance(t, synthetic=self.heterogeneity[key].synthetic)
        return out

    def save(self, out: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write exactly :func:`output_names` into ``out`` (atomically; refuses to
        overwrite earlier results unless ``force``)."""
        with open_out_dir(out, output_names(self.config.indicators), force=force,
                          command="design") as session:
            folder = session.folder
            write_csv(self.table, folder / "assurance.csv")
            write_csv(self.simulations, folder / "simulations.csv")
            write_csv(self.heterogeneity_table(), folder / "heterogeneity.csv")
            write_text(self.summary, folder / "summary.md")
            write_text(self.text(), folder / "summary.txt")
            (folder / "figures").mkdir(exist_ok=True)
            for stem, fig in self.figures().items():
                save_figure(fig, folder / "figures" / stem)
            write_text(json.dumps(self.info, indent=2, default=str) + "\n",
                       folder / "design_info.json")
        return folder


def markdown_to_text(md: str) -> str:
    """The plain-words summary without Markdown marks."""
    lines = []
    for line in md.splitlines():
        s = line.lstrip("#").strip() if line.startswith("#") else line
        lines.append(s.replace("**", ""))
    return "\n".join(lines) + "\n"


def _describe(table: pd.DataFrame, effects: dict[str, list[asr.Effect]],
              heterogeneity: dict[str, asr.Heterogeneity], config: DesignConfig) -> pd.DataFrame:
    """Add the descriptive columns of ``assurance.csv`` to the summary table."""
    t = table.copy()
    rows = []
    for r in t.itertuples(index=False):
        het = heterogeneity[r.indicator]
        fam = get_family(het.family)
        given = {round(e.ratio, 10): e for e in effects[r.indicator]}
        eff = given.get(round(r.effect_ratio, 10), asr.Effect(r.effect_ratio))
        unit = asr.unit_of_effect(eff, het, post_steps=config.periods - 1)
        mde_unit = (asr.unit_of_effect(asr.Effect(r.mde_ratio), het, post_steps=config.periods - 1)
                    if np.isfinite(r.mde_ratio) else math.nan)
        ind = INDICATORS.get(r.indicator)
        rows.append({
            "family": het.family, "ratio_scale": fam.ratio_scale,
            "unit": ("pp" if ind.unit == "%" else ind.unit) if ind else fam.default_unit,
            "effect_percent": 100 * (r.effect_ratio - 1), "effect_unit": unit,
            "effect_given_in": "unit" if eff.unit is not None else "ratio",
            "mde_percent": 100 * (r.mde_ratio - 1) if np.isfinite(r.mde_ratio) else math.nan,
            "mde_unit": mde_unit,
            "heterogeneity_source": het.source, "heterogeneity": het.description,
            "synthetic": het.synthetic, "notice": SYNTHETIC_NOTICE if het.synthetic else "",
        })
    extra = pd.DataFrame(rows, index=t.index)
    t.insert(1, "family", extra.pop("family"))
    t.insert(3, "matching_ratio", config.matching_ratio)
    t.insert(4, "wards", t["areas"] * (1 + config.matching_ratio))
    t.insert(5, "periods", config.periods)
    pos = t.columns.get_loc("effect_link") + 1
    for c in ("effect_percent", "effect_unit", "unit", "ratio_scale", "effect_given_in"):
        t.insert(pos, c, extra.pop(c))
        pos += 1
    pos = t.columns.get_loc("mde_ratio_se") + 1
    for c in ("mde_percent", "mde_unit"):
        t.insert(pos, c, extra.pop(c))
        pos += 1
    for c in extra.columns:
        t[c] = extra[c]
    t["alpha"] = config.alpha
    return t


# ----------------------------------------------------------------------------------------
# the job
# ----------------------------------------------------------------------------------------


def design(
    config: DesignConfig | None = None,
    out: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    executor: Executor = "local",
    scheduler: Any = None,
    workers: int | None = None,
    progress: bool = True,
    model: ModelConfig | None = None,
    say: Say | None = None,
    bootstrap: int = 200,
) -> DesignResult:
    """Simulate a study design and return its assurance and power (resumable).

    Parameters
    ----------
    config
        The design (:class:`nbdid.config.DesignConfig`; defaults when ``None``).
    out
        Working folder: finished tasks are written to ``out/cells/`` as they complete
        and reused by a later call with the same settings (``None``: nothing is
        written, nothing resumed).  The results themselves are written by
        :meth:`DesignResult.save`.
    force
        Allow ``out`` to hold the results of an earlier design (they are replaced when
        the result is saved).
    executor, scheduler, workers
        ``"local"`` worker processes (``workers``, default: the number of CPUs; ``0``
        runs everything in this process) or ``"dask"`` (an existing cluster at
        ``scheduler``, an address or a ``distributed.Client``).
    progress
        Show a progress bar with an ETA on stderr.
    model
        Model structure and priors of the refits (default :class:`~nbdid.config.ModelConfig`).
    say
        Called with progress lines (heterogeneity fits, plan).
    bootstrap
        Resamples for the Monte Carlo SE of the minimum detectable effect.

    Returns
    -------
    DesignResult

    Raises
    ------
    InputError
        For bad settings, a missing run or a Dask cluster that cannot be reached.
    """
    t_start = time.perf_counter()
    config = config or DesignConfig()
    model = model or ModelConfig()
    say = say or (lambda _m: None)
    if executor not in ("local", "dask"):
        raise InputError(f"unknown executor '{executor}' (use local or dask)")
    if executor == "dask" and scheduler is None:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    if workers is not None and workers < 0:
        raise InputError(f"workers must be 0 (this process) or more, not {workers}")
    if out is None:
        return _design(config, None, executor, scheduler, workers, progress, model, say, bootstrap,
                       t_start)
    with open_out_dir(out, output_names(config.indicators), force=force, command="design") as session:
        (session.folder / CELL_DIR).mkdir(exist_ok=True)
        return _design(config, session.folder, executor, scheduler, workers, progress, model, say,
                       bootstrap, t_start)


def _design(config: DesignConfig, out: Path | None, executor: str, scheduler: Any,
            workers: int | None, progress: bool, model: ModelConfig, say: Say, bootstrap: int,
            t_start: float) -> DesignResult:
    het = load_heterogeneity(config, out=out, say=say)
    for h in het.values():
        say(f"heterogeneity {h.statement()}")
    tasks, effects = build_tasks(config, het, model)
    done: dict[str, pd.DataFrame] = {}
    if out is not None:
        for t in tasks:
            p = cell_path(out, t.spec_id)
            if p.is_file():
                done[t.spec_id] = read_cell(p)
    reused = len(done)
    todo = [t for t in tasks if t.spec_id not in done]
    n_sims = sum(len(t.sims) for t in tasks)
    say(f"{n_sims:,} simulations x {len(tasks[0].effects) if tasks else 0} effects in "
        f"{len(tasks):,} tasks ({reused:,} already done)")
    bar = Progress(len(tasks), reused, enabled=progress, desc="nbdid design", unit="task")
    lock = threading.Lock()

    def on_done(task: DesignTask, rows: pd.DataFrame) -> None:
        with lock:
            if out is not None:
                write_csv(rows, cell_path(out, task.spec_id))
            done[task.spec_id] = rows
            bad = int((rows["error"].astype(str) != "").sum())
            bar.update(f"{task.indicator} {task.areas}" + (f" ({bad} with errors)" if bad else ""))

    t_sim = time.perf_counter()
    try:
        if todo:
            if workers == 0:
                for t in todo:
                    on_done(t, run_design_task(t))
            else:
                n = max(1, workers or os.cpu_count() or 1)
                lanes = plan_lanes(todo, n)
                if executor == "local":
                    _run_local(lanes, on_done, fn=run_design_task)
                else:
                    _run_dask(lanes, on_done, scheduler, fn=run_design_task,
                              key_prefix="nbdid-design")
    finally:
        bar.close()
    sim_seconds = time.perf_counter() - t_sim
    sims = pd.concat([done[t.spec_id] for t in tasks], ignore_index=True)
    lib = {k: (INDICATORS[k].lower_is_better if k in INDICATORS else False) for k in config.indicators}
    table = asr.summarise_simulations(sims, lower_is_better=lib, threshold=config.threshold,
                                      target=config.target, bootstrap=bootstrap)
    table = _describe(table, effects, het, config)
    families = {k: h.family for k, h in het.items()}
    summary = asr.plain_summary(table, families=families, heterogeneity=het,
                                controls_per_set=config.matching_ratio,
                                synthetic=any(h.synthetic for h in het.values()))
    synthetic = any(h.synthetic for h in het.values())
    info = {
        "config": to_toml(config),
        "model": to_toml(model),
        "heterogeneity": {k: h.summary() for k, h in het.items()},
        "synthetic": synthetic,
        "notice": SYNTHETIC_NOTICE if synthetic else "",
        "tasks": len(tasks), "fitted": len(todo), "reused": reused, "simulations": n_sims,
        "bayes_fits": int(np.isfinite(sims["prob_benefit"].to_numpy(float)).sum()),
        "studies_with_errors": int((sims["error"].astype(str) != "").sum()),
        "executor": "this process" if workers == 0 else executor,
        "workers": workers or os.cpu_count(),
        "simulation_seconds": round(sim_seconds, 1),
        "seconds": round(time.perf_counter() - t_start, 1),
        "versions": package_versions(),
    }
    return DesignResult(config, table, sims, het, summary, info, fitted=len(todo), reused=reused,
                        seconds=time.perf_counter() - t_start)
