"""Resumable runs: ``nbdid run`` records its progress in the output folder and a rerun
after an interruption reuses the indicators that were finished.

While ``nbdid run`` writes into a folder, the folder carries the unfinished-marker of
:func:`nbdid.outputs.open_out_dir`.  :class:`RunCheckpoint` stores in it the run's
fingerprint (hash of the configuration, hash of the panel, seed, nbdid version) and
the indicators whose posterior is already saved (``posteriors/KEY.nc``, written
atomically the moment a fit finishes).  A later ``nbdid run`` into the same folder
(or ``nbdid run --resume``) with the same fingerprint takes those posteriors from disk
instead of sampling again, and fits the rest.

A reused posterior goes through exactly the same post-processing as a fresh one
(:func:`nbdid.workflow.fit.fit` is called with a compiled-model cache that replays
the saved draws), so the tables, figures and files of a resumed run equal those of a
run that was never interrupted (same seed).
"""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path
from typing import Any

import pandas as pd

from nbdid.config import ModelConfig, RunConfig, SamplerConfig, to_toml
from nbdid.errors import InputError
from nbdid.models.sampling import CompiledModelCache, relabel, shared_cache
from nbdid.outputs import OutputSession, write_netcdf
from nbdid.provenance import hash_frame
from nbdid.version import __version__

POSTERIOR_DIR = "posteriors"
REPLAYED_GROUPS = ("posterior", "sample_stats", "observed_data")
"""The groups a sampler returns (the rest of a saved fit is recomputed from them)."""


def run_fingerprint(config: RunConfig, panel: pd.DataFrame) -> dict[str, Any]:
    """What must match for a saved posterior to be reused: the configuration (except
    the output folder, the panel path and the indicator list), the panel's content,
    the seed and the nbdid version."""
    core = dataclasses.replace(config, out="", panel=None, indicators=())
    return {
        "config_sha256": hashlib.sha256(to_toml(core).encode()).hexdigest(),
        "panel_sha256": hash_frame(panel),
        "seed": int(config.sampler.seed),
        "nbdid": __version__,
    }


class ReplayCache:
    """A compiled-model cache that returns saved draws for some indicators and samples
    the others with an inner cache (see :func:`nbdid.workflow.fit.fit`)."""

    def __init__(self, saved: dict[str, Any], inner: CompiledModelCache | None = None) -> None:
        self._saved = dict(saved)
        self.inner = inner if inner is not None else shared_cache()

    @property
    def quiet(self) -> bool:
        return self.inner.quiet

    @quiet.setter
    def quiet(self, value: bool) -> None:
        self.inner.quiet = value

    def replays(self, indicator: str) -> bool:
        """Whether ``indicator``'s draws come from disk."""
        return indicator in self._saved

    def sample(self, design: Any, model_cfg: ModelConfig, sampler_cfg: SamplerConfig) -> Any:
        """The saved draws of ``design.indicator`` (once), else a fresh sample."""
        saved = self._saved.pop(design.indicator, None)
        if saved is None:
            return self.inner.sample(design, model_cfg, sampler_cfg)
        # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
        import arviz as az

        groups = {g: saved[g] for g in REPLAYED_GROUPS if g in saved.groups()}
        return relabel(az.InferenceData(**groups), design)

    refit = sample


@dataclasses.dataclass
class RunCheckpoint:
    """Progress of one ``nbdid run`` in its output folder.

    Attributes
    ----------
    session
        The output folder held by the run (:func:`nbdid.outputs.open_out_dir`).
    fingerprint
        :func:`run_fingerprint` of this run.
    reused
        Indicators whose saved posterior this run takes over from an unfinished run.
    finished
        Indicators whose posterior is saved in the folder.
    cache
        The compiled-model cache the run must fit with (replays :attr:`reused`).
    note
        One line for the user about an earlier unfinished run (empty if none).
    """

    session: OutputSession
    fingerprint: dict[str, Any]
    reused: list[str]
    finished: list[str]
    cache: ReplayCache
    note: str = ""

    @classmethod
    def start(cls, session: OutputSession, config: RunConfig, panel: pd.DataFrame, *,
              resume: bool = False, cache: CompiledModelCache | None = None) -> RunCheckpoint:
        """Look at what an earlier unfinished run left in the folder and record this
        run's fingerprint.

        Parameters
        ----------
        session
            The run's output folder.
        config, panel
            This run's configuration and validated panel.
        resume
            Insist on resuming (``nbdid run --resume``): fail when the folder holds no
            unfinished run of the same configuration, panel and seed.
        cache
            Inner compiled-model cache (default: the process-wide one).

        Raises
        ------
        InputError
            With ``resume``, when there is nothing to resume.
        """
        fp = run_fingerprint(config, panel)
        prev = session.previous
        state = (prev or {}).get("state") or {}
        folder = session.folder
        reusable: dict[str, Any] = {}
        note = ""
        if prev is None:
            if resume:
                raise InputError(f"nothing to resume in {folder}: it holds no unfinished nbdid run")
        elif prev.get("command") != "run" or state.get("fingerprint") != fp:
            what = describe_mismatch(state.get("fingerprint"), fp) if prev.get("command") == "run" \
                else f"an unfinished 'nbdid {prev.get('command', '?')}'"
            if resume:
                raise InputError(f"cannot resume the unfinished run in {folder}: {what}; "
                                 "run without --resume to start over")
            note = f"{folder} holds an unfinished run ({what}); starting over"
        else:
            # imported here: ArviZ takes seconds to import (xarray, scipy, matplotlib); only fitted results need it
            import arviz as az

            for key in state.get("finished", []):
                if key not in config.indicators:
                    continue
                path = folder / POSTERIOR_DIR / f"{key}.nc"
                try:
                    reusable[key] = az.from_netcdf(path)
                except (OSError, ValueError, KeyError):
                    continue  # missing or unreadable: fit it again
            done = ", ".join(reusable) or "no indicator"
            note = (f"resuming the unfinished run in {folder} (started {prev.get('started', '?')}): "
                    f"{done} reused, {len(config.indicators) - len(reusable)} to fit")
        reused = [k for k in config.indicators if k in reusable]
        ckpt = cls(session, fp, reused, list(reused), ReplayCache(reusable, cache), note)
        ckpt._record()
        return ckpt

    def _record(self) -> None:
        self.session.record(fingerprint=self.fingerprint, finished=list(self.finished))

    def saved(self, res: Any) -> None:
        """Save a finished fit's posterior at once and record it (``on_fit`` hook of
        :func:`nbdid.workflow.fit.fit_all`); reused fits are already on disk."""
        if res.indicator in self.finished:
            return
        write_netcdf(res.idata, self.path(res.indicator))
        self.finished.append(res.indicator)
        self._record()

    def path(self, indicator: str) -> Path:
        """Where an indicator's posterior is saved."""
        return self.session.folder / POSTERIOR_DIR / f"{indicator}.nc"


def describe_mismatch(before: dict[str, Any] | None, now: dict[str, Any]) -> str:
    """Which part of the fingerprint differs (for the user)."""
    if not before:
        return "it recorded no progress"
    parts = {"config_sha256": "another configuration", "panel_sha256": "another panel",
             "seed": "another seed", "nbdid": "another nbdid version"}
    diff = [text for k, text in parts.items() if before.get(k) != now.get(k)]
    return "it used " + " and ".join(diff) if diff else "it differs"
