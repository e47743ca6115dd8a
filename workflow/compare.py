"""``nbdid compare``: the frequentist analyses beside the posterior, one table per panel.

:func:`compare` runs the report's pooled method (recomputed from the panel), a
ward-clustered GLM, randomization inference over pair swaps and a paired t-test on
every indicator of a panel, sets the Bayesian posterior beside them (fitted here, or
read from an earlier run's ``summary.csv``) and returns a :class:`CompareResult`.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from nbdid.analysis import frequentist as fq
from nbdid.analysis.concordance import (
    concordance,
    concordance_groups,
    concordance_summary,
    format_summary,
    panel_keys,
    published_intervals,
)
from nbdid.config import RunConfig, to_toml, with_settings
from nbdid.errors import InputError
from nbdid.families import base_name
from nbdid.figures import plot_concordance, save_figure
from nbdid.figures.style import FORMATS
from nbdid.outputs import prepare_out_dir, write_csv, write_text
from nbdid.provenance import SYNTHETIC_NOTICE, hash_frame, package_versions
from nbdid.workflow.fit import Progress, fit_all

CONCORDANCE_FILES: tuple[str, ...] = (
    "concordance.csv",
    "concordance_summary.csv",
    "concordance_groups.csv",
    *(f"figures/concordance.{ext}" for ext in FORMATS),
)
"""Files :meth:`CompareResult.save_concordance` writes (relative to the output folder)."""

COMPARE_FILES: tuple[str, ...] = (*CONCORDANCE_FILES, "compare_info.json")
"""Every file ``nbdid compare`` writes."""

SUMMARY_REQUIRED = ("indicator", "estimand", "scale", "mean", "q2.5", "q97.5")


def is_synthetic(panel: pd.DataFrame) -> bool:
    """Whether any row of ``panel`` is synthetic."""
    return bool(panel["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in panel else False


@dataclass
class CompareResult:
    """Every method's DiD for every indicator of a panel.

    Attributes
    ----------
    concordance
        One row per indicator and method (:func:`nbdid.analysis.concordance.concordance`).
    summary
        Per indicator, which methods call the difference significant.
    groups
        The report's pooled group values per period recomputed from the panel.
    info
        Provenance (panel hash, settings, versions).
    """

    concordance: pd.DataFrame
    summary: pd.DataFrame
    groups: pd.DataFrame
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def synthetic(self) -> bool:
        """Whether the panel was synthetic."""
        return bool(self.summary["synthetic"].any()) if len(self.summary) else False

    def text(self) -> str:
        """Which methods call each difference significant (for the terminal)."""
        return format_summary(self.summary)

    def figure(self) -> Figure:
        """Every method's interval per indicator beside the report's published one."""
        return plot_concordance(self.concordance, published=published_intervals())

    def save_concordance(self, folder: str | os.PathLike[str], *, figure: bool = True) -> None:
        """Write :data:`CONCORDANCE_FILES` into ``folder`` (already checked); without
        ``figure``, the tables only (the caller writes ``figures/concordance.*``)."""
        folder = Path(folder)
        write_csv(self.concordance, folder / "concordance.csv")
        write_csv(self.summary, folder / "concordance_summary.csv")
        write_csv(self.groups, folder / "concordance_groups.csv")
        if figure:
            (folder / "figures").mkdir(exist_ok=True)
            save_figure(self.figure(), folder / "figures" / "concordance")

    def save(self, out: str | os.PathLike[str], *, force: bool = False) -> Path:
        """Write :data:`COMPARE_FILES` into ``out`` (refusing to overwrite without ``force``)."""
        folder = prepare_out_dir(out, COMPARE_FILES, force=force)
        self.save_concordance(folder)
        write_text(json.dumps(self.info, indent=2) + "\n", folder / "compare_info.json")
        return folder


def concordance_tables(
    panel: pd.DataFrame,
    indicators: Sequence[str],
    *,
    summaries: Mapping[str, pd.DataFrame] | None = None,
    posterior_notes: Mapping[str, str] | None = None,
    families: Mapping[str, str] | None = None,
    draws: int | None = None,
    seed: int | None = None,
) -> CompareResult:
    """The concordance tables of a panel given the posterior summaries (no fitting)."""
    conc = concordance(
        panel, indicators, summaries=summaries, posterior_notes=posterior_notes, families=families,
        draws=fq.RI_DRAWS if draws is None else draws, seed=fq.RI_SEED if seed is None else seed,
    )
    return CompareResult(conc, concordance_summary(conc),
                         concordance_groups(panel, indicators, families=families))


def read_summaries(path: str | os.PathLike[str], indicators: Sequence[str]) -> tuple[dict, dict]:
    """Fit summaries by indicator from a run folder's ``summary.csv``.

    Returns ``(summaries, notes)``; indicators absent from the file get a note.

    Raises
    ------
    InputError
        If the folder or file is missing or the file lacks the summary columns.
    """
    p = Path(path)
    f = p / "summary.csv" if p.is_dir() else p
    if not f.is_file():
        raise InputError("no summary.csv here (give the folder of an earlier 'nbdid run')", file=f)
    try:
        df = pd.read_csv(f)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read the summary: {str(err).splitlines()[0]}", file=f) from None
    missing = [c for c in SUMMARY_REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"not a fit summary: missing column(s) {', '.join(missing)}", file=f)
    df["indicator"] = df["indicator"].astype(str)
    summaries, notes = {}, {}
    for key in indicators:
        sub = df[df["indicator"] == key]
        if sub.empty:
            notes[key] = f"not computed: {f} has no posterior for '{key}'"
        else:
            summaries[key] = sub.reset_index(drop=True)
    return summaries, notes


def compare(
    panel: pd.DataFrame,
    *,
    indicators: Sequence[str] | None = None,
    families: Mapping[str, str] | None = None,
    posteriors: str | os.PathLike[str] | Mapping[str, pd.DataFrame] | None = None,
    fit: bool = True,
    config: RunConfig | None = None,
    ri_draws: int | None = None,
    seed: int | None = None,
    source: str = "",
    progress: Progress | None = None,
) -> CompareResult:
    """Every frequentist method and the posterior, for every indicator of a panel.

    Parameters
    ----------
    panel
        Validated ward panel.
    indicators
        Indicator keys (default: every indicator in the panel).
    families
        Families of keys that are not in the registry (``negbin`` allowed).
    posteriors
        Posterior summaries: a folder (or ``summary.csv``) of an earlier ``nbdid run``
        or ``nbdid fit``, or summaries by indicator.  ``None`` fits the Bayesian models
        here when ``fit`` is true.
    fit
        Fit the Bayesian models when ``posteriors`` is not given (``False``: the
        Bayesian rows are empty, with a note).
    config
        Sampler and model settings of the fits, and the randomization-inference
        defaults (``[frequentist]``).
    ri_draws, seed
        Randomization-inference settings (default: ``config.frequentist``).
    source
        Description of where the panel came from (for provenance).
    progress
        Called with progress lines.

    Returns
    -------
    CompareResult
    """
    t0 = time.perf_counter()
    cfg = config or RunConfig()
    # checked like a config file's [frequentist] values (SettingError naming the argument)
    freq = with_settings(cfg.frequentist, flags={"ri_draws": "ri_draws", "ri_seed": "seed"},
                         ri_draws=ri_draws, ri_seed=seed)
    draws, seed = freq.ri_draws, freq.ri_seed
    families = dict(families or {})
    present = panel_keys(panel)
    keys = list(indicators) if indicators else present
    unknown = [k for k in keys if k not in present]
    if unknown:
        raise InputError(f"the panel has no rows for {', '.join(unknown)} (it has {', '.join(present)})")
    say = progress or (lambda _msg: None)
    if is_synthetic(panel):
        say(f"NOTE: {SYNTHETIC_NOTICE}.")
    say(f"Panel: {source or 'given'} ({len(panel)} rows, {panel['ward'].nunique()} wards)")
    summaries: dict = {}
    notes: dict = {}
    if posteriors is not None and not isinstance(posteriors, Mapping):
        summaries, notes = read_summaries(posteriors, keys)
        posterior_source = f"summary.csv of {posteriors}"
    elif posteriors is not None:
        summaries = {k: v for k, v in posteriors.items() if k in keys}
        notes = {k: "not computed: no posterior given" for k in keys if k not in summaries}
        posterior_source = "given"
    elif not fit:
        notes = {k: "not computed: --no-posterior" for k in keys}
        posterior_source = "none (--no-posterior)"
    else:
        batch = fit_all(panel, keys, config=cfg, families=families, validate=False, progress=progress)
        summaries = {k: r.summary for k, r in batch.fits.items()}
        notes = {k: f"not computed: the Bayesian model cannot be fitted: {m}"
                 for k, m in batch.failures.items()}
        posterior_source = "fitted here"
    say("[compare] frequentist analyses ...")
    fam_fq = {k: base_name(v) for k, v in families.items()}
    res = concordance_tables(panel, keys, summaries=summaries, posterior_notes=notes,
                             families=fam_fq, draws=draws, seed=seed)
    synthetic = is_synthetic(panel)
    res.info = {
        "panel": source,
        "panel_sha256": hash_frame(panel),
        "synthetic": synthetic,
        "notice": SYNTHETIC_NOTICE if synthetic else "",
        "indicators": keys,
        "posterior": posterior_source,
        "posterior_notes": notes,
        "randomization": {"draws": draws, "seed": seed, "exact_up_to_pairs": fq.RI_EXACT_MAX_PAIRS},
        "config": to_toml(cfg) if posterior_source == "fitted here" else "",
        "versions": package_versions(),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    return res
