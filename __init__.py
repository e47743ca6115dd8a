"""nbdid: Bayesian re-analysis of matched-area evaluations of neighbourhood initiatives.

The package re-analyses *Everybody Needs Good Neighbourhoods 2* (Local Trust, 3ni,
Shared Intelligence and OCSI, July 2025), which compares 29 wards with Big Local /
neighbourhood-based initiatives (NBI) with 29 matched benchmark wards on seven
indicators.

Use it from Python::

    import nbdid

    panel = nbdid.default_panel()                 # SYNTHETIC default panel (or nbdid.read_panel)
    res = nbdid.fit(panel, "crime", draws=1000)   # one indicator -> FitResult
    res.summary, res.diagnostics, res.idata       # tables, gate, ArviZ InferenceData
    fig = res.plot_trajectories()                 # figures are returned, never shown

    run = nbdid.run()                             # the main job -> RunResult
    run.save("nbdid-results")                     # exactly what `nbdid run` writes

The public functions and classes below are loaded on first use, so that ``import
nbdid`` (and the command line's start-up) does not load PyMC, ArviZ or matplotlib
until they are needed.  Sub-packages, from the bottom layer up (see
``ARCHITECTURE.md``): ``nbdid.families``, ``nbdid.download``, ``nbdid.data_prep``,
``nbdid.models``, ``nbdid.analysis``, ``nbdid.figures``, ``nbdid.workflow``,
``nbdid.cli``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nbdid.registry import INDICATOR_KEYS, INDICATORS, get_indicator
from nbdid.version import __version__

_API: dict[str, tuple[str, str]] = {
    # data
    "default_panel": ("nbdid.data_prep.synthetic", "load_default_panel"),
    "read_panel": ("nbdid.data_prep.schema", "read_panel"),
    "validate_panel": ("nbdid.data_prep.schema", "validate_panel"),
    "write_panel": ("nbdid.data_prep.schema", "write_panel"),
    "simulate_panel": ("nbdid.models.simulate", "simulate_panel"),
    # the jobs
    "fit": ("nbdid.workflow.fit", "fit"),
    "fit_all": ("nbdid.workflow.fit", "fit_all"),
    "save_fit": ("nbdid.workflow.fit", "save_fit"),
    "run": ("nbdid.workflow.run", "run"),
    "compare": ("nbdid.workflow.compare", "compare"),
    "replicate": ("nbdid.workflow.replicate", "replicate"),
    "match": ("nbdid.workflow.match", "match"),
    "match_study": ("nbdid.workflow.match", "match_study"),
    "sensitivity": ("nbdid.workflow.sweep", "sensitivity"),
    "report": ("nbdid.workflow.report", "build_report"),
    "design": ("nbdid.workflow.design", "design"),
    # results
    "FitResult": ("nbdid.workflow.fit", "FitResult"),
    "RunResult": ("nbdid.workflow.run", "RunResult"),
    "CompareResult": ("nbdid.workflow.compare", "CompareResult"),
    "ReplicationResult": ("nbdid.workflow.replicate", "ReplicationResult"),
    "MatchResult": ("nbdid.workflow.match", "MatchResult"),
    "StudyMatchResult": ("nbdid.workflow.match", "StudyMatchResult"),
    "SweepOutcome": ("nbdid.workflow.sweep", "SweepOutcome"),
    "Report": ("nbdid.workflow.report", "Report"),
    "DesignResult": ("nbdid.workflow.design", "DesignResult"),
    # settings
    "RunConfig": ("nbdid.config", "RunConfig"),
    "SamplerConfig": ("nbdid.config", "SamplerConfig"),
    "ModelConfig": ("nbdid.config", "ModelConfig"),
    "DiagnosticsConfig": ("nbdid.config", "DiagnosticsConfig"),
    "FrequentistConfig": ("nbdid.config", "FrequentistConfig"),
    "DesignConfig": ("nbdid.config", "DesignConfig"),
    "load_config": ("nbdid.config", "load_config"),
    "load_sweep_config": ("nbdid.analysis.sensitivity", "load_sweep_config"),
    "MatchSpec": ("nbdid.analysis.matching", "MatchSpec"),
    "get_family": ("nbdid.families", "get_family"),
    "FAMILIES": ("nbdid.families", "FAMILIES"),
}
"""Public name -> (module, attribute), imported on first access (PEP 562)."""

__all__ = ["INDICATORS", "INDICATOR_KEYS", "__version__", "get_indicator", *_API]


def __getattr__(name: str) -> Any:
    # Lazy on purpose: the command line imports nbdid for every command, and the
    # workflow pulls in PyMC, ArviZ and matplotlib (seconds).  It also keeps this
    # top-level facade out of the import graph of the layers below it.
    try:
        module, attr = _API[name]
    except KeyError:
        raise AttributeError(f"module 'nbdid' has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module), attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from nbdid.analysis.matching import MatchSpec
    from nbdid.config import (
        DesignConfig,
        DiagnosticsConfig,
        FrequentistConfig,
        ModelConfig,
        RunConfig,
        SamplerConfig,
        load_config,
    )
    from nbdid.data_prep.schema import read_panel, validate_panel, write_panel
    from nbdid.data_prep.synthetic import load_default_panel as default_panel
    from nbdid.families import FAMILIES, get_family
    from nbdid.models.simulate import simulate_panel
    from nbdid.workflow.compare import CompareResult, compare
    from nbdid.workflow.design import DesignResult, design
    from nbdid.workflow.fit import FitResult, fit, fit_all, save_fit
    from nbdid.workflow.match import MatchResult, StudyMatchResult, match, match_study
    from nbdid.workflow.replicate import ReplicationResult, replicate
    from nbdid.workflow.report import Report
    from nbdid.workflow.report import build_report as report
    from nbdid.workflow.run import RunResult, run
    from nbdid.workflow.sweep import SweepOutcome, sensitivity
