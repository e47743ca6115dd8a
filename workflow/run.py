"""The main job (``nbdid run``): replicate the report, fit every indicator, compare.

:func:`run` replicates the report's method from its published numbers, fits the
hierarchical Bayesian DiD model of every configured indicator to a ward panel (the
embedded synthetic default unless the config names one), runs the frequentist twin
beside the posterior and returns a :class:`RunResult`.  :meth:`RunResult.save` writes
exactly the files of :func:`run_outputs`:

``comparison.csv``
    one row per indicator: the report's DiD, its overlap-rule interval and verdict, the
    posterior DiD with its 95% interval and probability of benefit, and whether the two
    agree;
``summary.csv``, ``trajectories.csv``, ``diagnostics.csv``
    every fit's estimands, group trajectories and diagnostics gate;
``posteriors/KEY.nc``
    the InferenceData of each fit (config, data hash, seed, versions in its attributes);
``figures/``
    ``forest.png``/``.svg`` (posterior DiDs with the report's intervals),
    ``trajectory_KEY.png`` (the report's Charts 1-7 redone), ``diagnostics.png`` and
    ``tipping_bayes.png``/``.svg`` (the published DiDs against ward-to-ward variation);
``replication/``
    the tables of ``nbdid replicate``;
``concordance.csv``, ``concordance_summary.csv``, ``concordance_groups.csv``
    the report's pooled method recomputed from the panel, a ward-clustered GLM,
    randomization inference and a paired t-test beside the posterior (see
    ``nbdid compare``), with ``figures/concordance.png``/``.svg``;
``run_info.json``
    provenance of the run (panel hash, seed, config, versions, the command line);
``report.html``, ``report.md``, ``tables/``
    the findings report and the publication tables (:mod:`nbdid.workflow.report`;
    ``nbdid report`` rebuilds them from the folder).
"""

from __future__ import annotations

import json
import os
import shlex
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nbdid.analysis.comparison import compare as compare_report
from nbdid.analysis.concordance import format_summary
from nbdid.analysis.figure_tables import forest_table
from nbdid.config import DiagnosticsConfig, RunConfig, load_config, to_toml
from nbdid.data_prep.feasibility import check_did
from nbdid.data_prep.schema import read_panel, validate_panel
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.errors import DesignError, InputError
from nbdid.families import base_name, resolve_family
from nbdid.figures import plot_diagnostics, plot_forest, save_figure
from nbdid.figures.render import FigureRenderer
from nbdid.figures.style import FORMATS as FIGURE_FORMATS
from nbdid.outputs import prepare_out_dir, write_bytes, write_csv, write_netcdf, write_text
from nbdid.provenance import SYNTHETIC_NOTICE, hash_frame, package_versions
from nbdid.workflow.compare import (
    CONCORDANCE_FILES,
    CompareResult,
    concordance_tables,
    is_synthetic,
)
from nbdid.workflow.fit import FitResult, Progress, fit_all
from nbdid.workflow.replicate import (
    REPLICATE_FIGURES,
    REPLICATE_TABLES,
    ReplicationResult,
    replicate,
)
from nbdid.workflow.report import REPORT_PNG, build_report, report_files
from nbdid.workflow.resume import RunCheckpoint

DEFAULT_SOURCE = "embedded synthetic default panel"


FIT_FIGURE_METHODS: dict[str, str] = {
    "trajectory": "plot_trajectories", "wards": "plot_ward_changes",
    "pairs": "plot_pair_differences", "ppc": "plot_ppc", "ppc_values": "plot_ppc_values",
    "rank": "plot_rank",
}
"""The :class:`~nbdid.workflow.fit.FitResult` method that draws each per-indicator
figure (the figures of :meth:`FitResult.figures <nbdid.workflow.fit.FitResult.figures>`,
one at a time: a :class:`~nbdid.figures.render.FigureRenderer` shares them out)."""

FIT_FIGURES: tuple[str, ...] = tuple(FIT_FIGURE_METHODS)
"""Per-indicator figures (file stems ``figures/<name>_KEY``): the group trajectories,
each ward's change, the pair differences, the posterior predictive check (the gate's
statistics, and ArviZ's plot of the observed against replicated ward values) and the
rank plots."""


def figure_files(stem: str) -> list[str]:
    """The files one figure is saved as (PNG at 300 dpi, PDF and SVG)."""
    return [f"{stem}.{ext}" for ext in FIGURE_FORMATS]


def run_outputs(indicators: Sequence[str], *, report: bool = True) -> list[str]:
    """Every file ``nbdid run`` writes, relative to the output folder (with the findings
    report, ``report.html``, ``report.md`` and ``tables/``, unless ``report`` is false)."""
    names = [f"replication/{n}" for n in REPLICATE_TABLES]
    names += [f"figures/{n}" for n in REPLICATE_FIGURES]
    names += ["comparison.csv", "summary.csv", "trajectories.csv", "diagnostics.csv", "run_info.json"]
    names += figure_files("figures/forest") + figure_files("figures/diagnostics")
    names += [f"posteriors/{k}.nc" for k in indicators]
    for k in indicators:
        for f in FIT_FIGURES:
            names += figure_files(f"figures/{f}_{k}")
    names += list(CONCORDANCE_FILES)  # frequentist analyses beside the posterior
    names += report_files(report)  # the findings report (nbdid report)
    return names


def summary_figures(comparison: pd.DataFrame, diagnostics: pd.DataFrame, *, synthetic: bool,
                    config: DiagnosticsConfig) -> dict[str, Figure]:
    """The run's figures across indicators: ``forest`` (the posterior DiDs beside the
    report's intervals) and ``diagnostics`` (every fit against the gate)."""
    return {
        "forest": plot_forest(forest_table(comparison), synthetic=synthetic),
        "diagnostics": plot_diagnostics(diagnostics, synthetic=synthetic, config=config),
    }


def _panel_checks(config: RunConfig) -> dict[str, Any]:
    """What the schema check of a run's panel needs from its config: the families of
    keys outside the registry, the covariate columns the model uses, the bounds."""
    fams = {k: base_name(v) for k, v in config.families.items()}
    covs = tuple(dict.fromkeys((*config.model.covariates, *config.model.interact)))
    return {"families": fams or None, "covariates": covs, "bounds": config.bounds}


def load_run_panel(config: RunConfig) -> tuple[pd.DataFrame, str]:
    """The panel a run uses and a description of it: the config's ``panel`` file, else
    the embedded synthetic default; checked against the schema (with the config's
    covariate columns and families) and to hold every configured indicator."""
    if config.panel is None:
        panel, source = load_default_panel(), DEFAULT_SOURCE
        if config.model.covariates or config.model.interact:
            panel = validate_panel(panel, **_panel_checks(config))  # names the missing column
    else:
        panel, source = read_panel(config.panel, **_panel_checks(config)), str(config.panel)
    present = set(panel["indicator"].astype(str))
    missing = [k for k in config.indicators if k not in present]
    if missing:
        raise InputError(
            f"the panel has no rows for {', '.join(missing)}; set 'indicators' in the config",
            file=config.panel,
        )
    return panel, source


@dataclass
class RunResult:
    """Everything the main job produces.

    Attributes
    ----------
    config
        The run's configuration.
    panel
        The validated panel.
    source
        Where the panel came from.
    fits
        :class:`~nbdid.workflow.fit.FitResult` by indicator.
    failures
        Why an indicator could not be fitted, by indicator.
    replication
        The report's method recomputed (:class:`~nbdid.workflow.replicate.ReplicationResult`).
    comparison
        The report's verdicts beside the posterior, one row per fitted indicator.
    concordance
        The frequentist twin beside the posterior (:class:`~nbdid.workflow.compare.CompareResult`).
    seconds
        Wall time of the run.
    renderer
        The :class:`~nbdid.figures.render.FigureRenderer` that has been drawing the
        run's figures since their data existed (``run(..., renderer=...)``); without
        one, :meth:`save` draws them.  A renderer made with
        ``also=nbdid.workflow.report.report_pngs`` makes the report's PNGs too.
    """

    config: RunConfig
    panel: pd.DataFrame
    source: str
    fits: dict[str, FitResult]
    failures: dict[str, str]
    replication: ReplicationResult
    comparison: pd.DataFrame | None
    concordance: CompareResult
    seconds: float = 0.0
    info: dict[str, Any] = field(default_factory=dict)
    saved_posteriors: dict[str, Path] = field(default_factory=dict)
    """Posteriors already written by a checkpointed run (:meth:`save` does not write
    them again into the same folder)."""
    renderer: FigureRenderer | None = field(default=None, repr=False, compare=False)

    @property
    def synthetic(self) -> bool:
        """Whether the panel is (or contains) the synthetic default panel."""
        return is_synthetic(self.panel)

    @property
    def complete(self) -> bool:
        """Whether every configured indicator was fitted."""
        return not self.failures

    def _concat(self, attr: str) -> pd.DataFrame:
        return pd.concat([getattr(f, attr) for f in self.fits.values()], ignore_index=True)

    @property
    def summary(self) -> pd.DataFrame:
        """Every fit's estimands (``summary.csv``)."""
        return self._concat("summary")

    @property
    def trajectories(self) -> pd.DataFrame:
        """Every fit's group trajectories (``trajectories.csv``)."""
        return self._concat("trajectories")

    @property
    def diagnostics(self) -> pd.DataFrame:
        """Every fit's diagnostics and gate (``diagnostics.csv``)."""
        return self._concat("diagnostics")

    def text(self, *, mark=None) -> str:
        """The terminal report: the replication, the report's verdicts beside the
        posterior, and which methods call each difference significant."""
        parts = [self.replication.text(mark=mark)]
        if self.comparison is not None:
            parts.append("")
            if self.synthetic:
                parts.append(f"*** {SYNTHETIC_NOTICE} ***")
            parts.append(format_comparison(self.comparison))
        parts += ["", format_summary(self.concordance.summary)]
        return "\n".join(parts)

    def figures(self) -> dict[str, Figure]:
        """The run's figures by file stem under ``figures/`` (the replication's and the
        concordance figures are those of :attr:`replication` and :attr:`concordance`)."""
        if not self.fits:
            return {}
        out = summary_figures(self.comparison, self.diagnostics, synthetic=self.synthetic,
                              config=self.config.diagnostics)
        for res in self.fits.values():
            out.update(res.figures())
        return out

    def save(self, out: str | os.PathLike[str], *, force: bool = False,
             report: bool = True) -> Path:
        """Write exactly :func:`run_outputs` into ``out`` (what ``nbdid run`` writes).

        Refuses to overwrite existing results unless ``force``; every file is written
        atomically.  The figures are those the run's :attr:`renderer` drew, if it had
        one, else they are drawn here.  The findings report
        (:mod:`nbdid.workflow.report`) is written last, from the saved files, unless
        ``report`` is false.
        """
        folder = prepare_out_dir(out, run_outputs(self.config.indicators, report=report),
                                 force=force)
        for sub in ("replication", "posteriors", "figures"):
            (folder / sub).mkdir(exist_ok=True)
        self.replication.save_tables(folder / "replication")
        drawn = self.renderer is not None
        if not drawn:
            self.replication.save_figures(folder / "figures")
        for key, res in self.fits.items():
            target = folder / "posteriors" / f"{key}.nc"
            done = self.saved_posteriors.get(key)
            if done is not None and target.exists() and done.resolve() == target.resolve():
                continue  # saved when the fit finished (resumable runs)
            write_netcdf(res.idata, target)
        if self.fits:
            write_csv(self.summary, folder / "summary.csv")
            write_csv(self.trajectories, folder / "trajectories.csv")
            write_csv(self.diagnostics, folder / "diagnostics.csv")
            write_csv(self.comparison, folder / "comparison.csv")
            if not drawn:
                for stem, fig in self.figures().items():
                    save_figure(fig, folder / "figures" / stem)
        self.concordance.save_concordance(folder, figure=not drawn)
        embedded: dict[str, bytes] = {}  # the report's PNGs, if the renderer made them
        if drawn:
            for stem, files in self.renderer.results().items():
                for fmt in FIGURE_FORMATS:
                    write_bytes(files[fmt], folder / "figures" / f"{stem}.{fmt}")
                if REPORT_PNG in files:
                    embedded[stem] = files[REPORT_PNG]
        write_text(json.dumps(self.info, indent=2) + "\n", folder / "run_info.json")
        if report:
            build_report(self, folder=folder, command=self.info.get("command"),
                         embedded=embedded).save(folder, force=force, checked=True)
        return folder


def run(
    panel: pd.DataFrame | None = None,
    *,
    config: RunConfig | str | os.PathLike[str] | None = None,
    source: str | None = None,
    progress: Progress | None = None,
    checkpoint: RunCheckpoint | None = None,
    validated: bool = False,
    renderer: FigureRenderer | None = None,
) -> RunResult:
    """Run the main job: replicate the report, fit every indicator, compare.

    Parameters
    ----------
    panel
        Ward panel (validated here); default: the config's ``panel`` file, else the
        embedded synthetic default panel.
    config
        A :class:`~nbdid.config.RunConfig` or the path of a TOML config file.
    source
        Description of the panel for provenance (default: its file or "embedded ...").
    progress
        Called with one line per step.
    checkpoint
        Save each posterior into the output folder the moment its fit finishes, and
        reuse the posteriors an interrupted run saved there
        (:class:`~nbdid.workflow.resume.RunCheckpoint`; ``nbdid run`` passes one).
    validated
        ``panel`` comes from :func:`load_run_panel` with this config, so it has been
        checked against the schema already (``nbdid run`` checks it once, before it
        touches the output folder).
    renderer
        Draw each figure in this :class:`~nbdid.figures.render.FigureRenderer`'s worker
        as soon as its data exist (a fit's figures while the next indicator is fitted);
        :meth:`RunResult.save` writes what it drew (``nbdid run`` passes one).

    Returns
    -------
    RunResult

    Raises
    ------
    DesignError
        Before any work, if an indicator's rows cannot support a DiD (one group, one
        period, ...): see :func:`check_feasible`.
    """
    t_start = time.perf_counter()
    cfg = config if isinstance(config, RunConfig) else load_config(config)
    say = progress or (lambda _msg: None)
    encoding = getattr(panel, "attrs", {}).get("encoding", "") if panel is not None else ""
    if panel is None:
        panel, default_source = load_run_panel(cfg)
        encoding = panel.attrs.get("encoding", "")
    else:
        if not validated:
            panel = validate_panel(panel, **_panel_checks(cfg))
        default_source = "panel given in Python"
        missing = [k for k in cfg.indicators if k not in set(panel["indicator"].astype(str))]
        if missing:
            raise InputError(f"the panel has no rows for {', '.join(missing)}; set 'indicators'")
    source = source or default_source
    indicators = tuple(cfg.indicators)
    check_feasible(panel, cfg)
    if is_synthetic(panel):
        say(f"NOTE: {SYNTHETIC_NOTICE}.")
    say(f"Panel: {source} ({len(panel)} rows, {panel['ward'].nunique()} wards)")

    # 1. the report's own method, from its published numbers
    rep = replicate(indicators)
    say("[replication] Table 1 and B tables recomputed from the published values")
    if renderer is not None:
        renderer.submit(rep.figures)

    # 2. one hierarchical model per indicator; compiled once per structure (each fit's
    # figures drawn by the renderer, if any, while the next one is fitted)
    batch = fit_all(panel, indicators, config=cfg, validate=False, progress=say,
                    compiled_cache=checkpoint.cache if checkpoint is not None else None,
                    on_fit=_on_fit(checkpoint, renderer))
    summaries = {k: r.summary for k, r in batch.fits.items()}
    comparison = compare_report(summaries) if batch.fits else None

    # 3. the frequentist twin beside the posterior
    conc = concordance_tables(
        panel, indicators, summaries=summaries,
        posterior_notes={k: f"not computed: the Bayesian model cannot be fitted: {m}"
                         for k, m in batch.failures.items()},
        draws=cfg.frequentist.ri_draws, seed=cfg.frequentist.ri_seed,
    )
    say("[concordance] frequentist analyses beside the posterior computed")
    synthetic = is_synthetic(panel)
    seconds = round(time.perf_counter() - t_start, 1)
    info = {
        "panel": source,
        "panel_sha256": hash_frame(panel),
        "panel_encoding": encoding,  # how the panel file was decoded (UTF-8, cp1252, ...)
        "synthetic": synthetic,
        "notice": SYNTHETIC_NOTICE if synthetic else "",
        "seed": cfg.sampler.seed,
        "config": to_toml(cfg),
        "versions": package_versions(),
        "fitted": sorted(batch.fits),
        "failed": batch.failures,
        "seconds": seconds,
        # per fit: compiling (0 when compiled earlier in the process) and sampling
        "timing": {k: {"seconds": round(r.seconds, 2), **r.timing} for k, r in batch.fits.items()},
        # the command line that made the run (the CLI replaces it with its own arguments)
        "command": shlex.join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
    }
    if checkpoint is not None and checkpoint.reused:
        info["resumed"] = {"reused": list(checkpoint.reused)}
    res = RunResult(cfg, panel, source, batch.fits, batch.failures, rep, comparison, conc,
                    seconds=seconds, info=info, renderer=renderer)
    if renderer is not None:
        if batch.fits:
            renderer.submit(summary_figures, comparison, res.diagnostics, synthetic=synthetic,
                            config=cfg.diagnostics)
        renderer.submit(conc.figure, stem="concordance")
    if checkpoint is not None:
        res.saved_posteriors = {k: checkpoint.path(k) for k in checkpoint.finished}
    return res


def _on_fit(checkpoint: RunCheckpoint | None,
            renderer: FigureRenderer | None) -> Callable[[FitResult], None] | None:
    """What :func:`run` does with each finished fit: save its posterior (checkpoint)
    and queue its figures (renderer)."""
    if checkpoint is None and renderer is None:
        return None

    def on_fit(res: FitResult) -> None:
        if checkpoint is not None:
            checkpoint.saved(res)
        if renderer is not None:  # one recipe per figure: the renderer shares them out
            for name, method in FIT_FIGURE_METHODS.items():
                renderer.submit(getattr(res, method), stem=f"{name}_{res.indicator}")

    return on_fit


def check_feasible(panel: pd.DataFrame, config: RunConfig) -> None:
    """Check up front that every configured indicator can support a DiD
    (:func:`nbdid.data_prep.feasibility.check_did`), so that an infeasible panel
    fails before any work or output.

    Raises
    ------
    DesignError
        Naming the indicator and what prevents the DiD.
    """
    for key in config.indicators:
        try:
            check_did(panel, key, pair_effects=config.model.pair_effects,
                      columns=tuple(resolve_family(key, config.families.get(key)).family.required))
        except DesignError as err:
            raise DesignError(f"{err} (indicator '{key}'; remove it from 'indicators' in the "
                              "config to run the others)") from None


def format_comparison(comp: pd.DataFrame) -> str:
    """Readable rendering of the comparison table."""
    lines = [
        f"{'indicator':<24}{'report DiD [overlap-rule interval]':>40}  {'posterior DiD [95% CrI]':>34}  P(benefit)  verdict"
    ]
    for _, r in comp.iterrows():
        m = max(abs(r.report_did), abs(r.posterior_did))
        d = 0 if m >= 100 else 1 if m >= 10 else 2

        def iv(est: float, lo: float, hi: float, sig: bool, d: int = d) -> str:
            return f"{est:,.{d}f} [{lo:,.{d}f}, {hi:,.{d}f}]{' *' if sig else '  '}"

        rep = iv(r.report_did, r.report_did_lower, r.report_did_upper, r.report_significant)
        post = iv(r.posterior_did, r["posterior_q2.5"], r["posterior_q97.5"], r.posterior_significant)
        lines.append(f"{r.indicator:<24}{rep:>40}  {post:>34}  {r.prob_benefit:>10.2f}  {r.verdict}")
    lines.append("(* = significant at 95%; DiD = NBI change minus benchmark change, in the indicator's unit)")
    return "\n".join(lines)
