"""Running a sensitivity sweep (``nbdid sensitivity``): local worker processes or a Dask
cluster, resumable.

:func:`run_sweep` expands the sweep file's grid (:mod:`nbdid.analysis.sensitivity`)
into small, lazy tasks (:class:`SpecTask`: a specification's choices, id and settings,
no data; a few kilobytes pickled), skips the specifications already written, and sends
the rest to the workers.  Each worker receives the candidate pool once, builds each
specification's panel itself (:func:`resolve_task`: the matching and subsetting) and
fits it (:func:`fit_spec`); :func:`run_spec` does both.  The workers run either

* in local worker processes (``executor="local"``, default): one single-process
  :class:`concurrent.futures.ProcessPoolExecutor` (``spawn`` context) per worker, so
  that each worker owns one :class:`~nbdid.models.sampling.CompiledModelCache`; the
  pool is the first thing each process receives (:func:`install_shared`); or
* on an existing Dask cluster (``executor="dask"``, ``scheduler=ADDRESS``): the same
  function submitted with ``dask.distributed.Client(address).submit``, the pool
  scattered to every worker once (``client.scatter(pool, broadcast=True)``).

So a sweep of 1,000 specifications starts fitting within seconds: nothing is matched
in the calling process.

Compiling a model (~20 s) costs far more than a warm refit (~1 s), and a compiled
model is reusable only for the same model structure and dimension sizes.  So the
specifications are grouped by what is known before their panels are built (the
specification's model settings, the indicators and the choices that decide the design
sizes: :attr:`SpecTask.signature`) and each group is given to one worker ("lane"), in
order; a large group is split over idle workers when that pays (it costs one more
compilation per family).  A worker compiles each structure it meets once (its
compiled-model cache); specifications whose matching changes the design sizes add
structures within their lane.

Every finished specification is written at once, atomically, to
``specs/spec_<ID>.csv`` (all indicators' rows and the specification's choices).  The
ID is a stable hash of the resolved choices, the data and the sweep settings, so a
rerun skips the specifications already written (before anything is built) and an
interrupted sweep loses only the fits in progress.  Seeds are derived from the sweep
seed and the specification hash, so results do not depend on execution order or
executor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import threading
import time
import warnings
from collections.abc import Callable
from concurrent.futures import as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from nbdid.analysis.comparison import unit_did_row
from nbdid.analysis.sensitivity import (
    CHOICE_COLUMNS,
    Spec,
    SweepConfig,
    add_conclusions,
    derived_seed,
    expand_specs,
    load_sweep_config,
    model_keys,
    resolve_spec,
    shape_signature,
    spec_hash,
    summarise_sweep,
)
from nbdid.config import DiagnosticsConfig, ModelConfig, RunConfig, SamplerConfig, to_toml
from nbdid.data_prep.candidates import (
    NUMERIC_COVARIATES,
    CandidatePool,
    load_candidate_pool,
    read_candidate_pool,
)
from nbdid.data_prep.schema import read_panel
from nbdid.errors import InputError, NbdidError
from nbdid.families import resolve_family
from nbdid.figures import plot_specification_curve, save_figure
from nbdid.figures.style import FORMATS
from nbdid.models.design import build_design
from nbdid.models.progress import SweepProgress
from nbdid.models.sampling import CompiledModelCache
from nbdid.outputs import atomic_path, open_out_dir, write_csv, write_text
from nbdid.provenance import SYNTHETIC_NOTICE, hash_frame, package_versions
from nbdid.runtime import ignore_environment_notices, process_pool
from nbdid.workflow.fit import fit_all

Executor = Literal["local", "dask"]

COMPILE_COST_SPECS = 4
"""Cost of compiling one structure group, in specification fits (for scheduling)."""

SPEC_DIR = "specs"

FIT_REVISION = 2
"""Part of every specification id: bump it when a change to the models or the sweep
changes a specification's numbers, so that resuming never reuses stale files
(2: forms chosen per specification instead of once per sweep)."""

MAX_TASK_BYTES = 10_000
"""Upper bound of a pickled :class:`SpecTask` (tested): tasks carry no data."""


# ----------------------------------------------------------------------------------------
# tasks: what is sent (small), and what a worker builds from it
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpecTask:
    """One specification to fit, as sent to a worker: what identifies it, no data.

    Built for the whole grid in the calling process in well under a second per
    thousand specifications; a worker turns it into a :class:`ResolvedTask` with the
    candidate pool it received once (:func:`resolve_task`).  Pickled, a task is a few
    kilobytes (:data:`MAX_TASK_BYTES`).

    Attributes
    ----------
    spec_id
        Stable id (first 16 hex digits of the specification hash).
    is_main
        Whether this is the study's main specification.
    spec
        The specification (matching, sample and model choices).
    choices
        The specification's choices (CSV columns).
    indicators
        Indicators to fit.
    sampler, model, diagnostics
        The sampler, the specification's own model (grid choices applied; no pair
        effects with replacement) and the gate's thresholds.
    seed
        The sweep seed (each fit's seed is derived from it and the id).
    balance
        Balance covariates (``max_abs_smd``, ``drop_poor_balance``).
    pool_key
        Id of the candidate pool the worker resolves against (:func:`shared_object`).
    synthetic
        Whether the data are synthetic.
    signature
        What is known of the model structure before the panel is built (model
        settings, indicators and :func:`size_hint`): the lane key of
        :func:`plan_lanes`.
    """

    spec_id: str
    is_main: bool
    spec: Spec
    choices: dict[str, Any]
    indicators: tuple[str, ...]
    sampler: SamplerConfig
    model: ModelConfig
    diagnostics: DiagnosticsConfig
    seed: int
    balance: tuple[str, ...] = ()
    pool_key: str = ""
    synthetic: bool = False
    signature: tuple = ()


@dataclass(frozen=True)
class ResolvedTask:
    """A specification with its panel built, ready to fit (:func:`fit_spec`).

    Attributes
    ----------
    spec_id, is_main, choices, indicators, sampler, model, diagnostics, seed, synthetic
        As in :class:`SpecTask`.
    panel
        The specification's panel (``None`` when it could not be built: ``error``).
    parameterization
        Per indicator, the centred/non-centred form of ward levels, ward changes and
        pair effects, chosen on this specification's own design (see
        :func:`specification_forms`).
    n_pairs, n_wards, max_abs_smd
        Matched sets, wards and the largest absolute standardised difference.
    error
        Why the panel could not be built (``""`` when it was).
    signature
        Model structure + design sizes + forms (specifications with equal signatures
        share compiled models).
    """

    spec_id: str
    is_main: bool
    choices: dict[str, Any]
    panel: pd.DataFrame | None
    indicators: tuple[str, ...]
    sampler: SamplerConfig
    model: ModelConfig
    diagnostics: DiagnosticsConfig
    parameterization: dict[str, dict[str, str]]
    seed: int
    n_pairs: int = 0
    n_wards: int = 0
    max_abs_smd: float = float("nan")
    error: str = ""
    signature: tuple = ()
    synthetic: bool = False


def specification_forms(panel: pd.DataFrame | None, indicators: tuple[str, ...],
                        model: ModelConfig) -> dict[str, dict[str, str]]:
    """Centred/non-centred forms per indicator for one specification's design.

    With ``parameterization = "auto"`` each indicator's forms are chosen on the
    specification's own panel (:func:`nbdid.models.design.choose_parameterization`), as
    ``nbdid fit`` would: a re-matched design can need other forms than the report's
    pairs (closer pairs make pair effects larger against ward effects).  The forms
    are part of the resolved signature, so specifications with equal forms and shapes
    still share one compiled model.
    """
    out: dict[str, dict[str, str]] = {}
    if panel is None:
        return out
    for key in indicators:
        fam = resolve_family(key, None).family
        try:
            d = build_design(panel, key, fam, pair_effects=model.pair_effects,
                             event_study=model.event_study,
                             reference_period=model.reference_period,
                             parameterization=model.parameterization)
        except NbdidError:
            continue  # the fit reports the error
        out[key] = d.forms
    return out


def resolve_task(task: SpecTask, pool: CandidatePool) -> ResolvedTask:
    """Build a task's panel from the candidate pool (on the worker).

    The matching (:func:`nbdid.analysis.sensitivity.resolve_spec`), the forms
    (:func:`specification_forms`) and the resolved signature.  A specification whose
    matching fails gets ``panel=None`` and its ``error``; :func:`fit_spec` turns it
    into error rows.
    """
    res = resolve_spec(task.spec, pool, balance_covariates=task.balance)
    forms = specification_forms(res.panel, task.indicators, task.model)
    sig: tuple = ()
    if res.panel is not None:
        sig = (dataclasses.astuple(task.model), shape_signature(res.panel, task.indicators),
               tuple(sorted((k, tuple(sorted(v.items()))) for k, v in forms.items())))
    return ResolvedTask(
        spec_id=task.spec_id, is_main=task.is_main, choices=task.choices, panel=res.panel,
        indicators=task.indicators, sampler=task.sampler, model=task.model,
        diagnostics=task.diagnostics, parameterization=forms, seed=task.seed,
        n_pairs=res.n_sets, n_wards=res.n_wards, max_abs_smd=res.max_abs_smd, error=res.error,
        signature=sig, synthetic=task.synthetic,
    )


# ----------------------------------------------------------------------------------------
# per-worker state: compiled models and the objects sent once
# ----------------------------------------------------------------------------------------


_LOCAL = threading.local()


def worker_cache():
    """This worker thread's compiled-model cache (one per thread: Dask may run
    several task threads in one process, and a cache is not thread-safe)."""
    cache = getattr(_LOCAL, "cache", None)
    if cache is None:
        cache = _LOCAL.cache = CompiledModelCache()
        _CACHES.append(cache)
    return cache


_CACHES: list[CompiledModelCache] = []


def worker_compilations() -> tuple[int, int]:
    """``(process id, models compiled by this process's worker caches)`` (run on a
    worker at the end of a sweep; the id lets threads of one process count once)."""
    return os.getpid(), sum(c.compile_count for c in _CACHES)


_SHARED: dict[str, Any] = {}
"""Objects sent once to this (worker) process, by key (:func:`install_shared`)."""


def install_shared(key: str, obj: Any) -> None:
    """Keep ``obj`` in this process under ``key``.

    A local worker's first task (a one-process pool runs its tasks in submission
    order, so every later task finds it with :func:`shared_object`).
    """
    _SHARED.setdefault(key, obj)


def shared_object(key: str) -> Any:
    """The object installed in this process under ``key`` (:func:`install_shared`).

    Raises
    ------
    RuntimeError
        If nothing was installed under ``key`` (a worker that missed its first task).
    """
    try:
        return _SHARED[key]
    except KeyError:
        raise RuntimeError(f"this worker process has not received the candidate pool {key}") from None


def pool_key(data_hash: str) -> str:
    """Id of a candidate pool (from its data hash), as carried by every task."""
    return hashlib.sha256(data_hash.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------------------
# the pure per-specification functions
# ----------------------------------------------------------------------------------------


def _row(task: ResolvedTask, key: str, **values) -> dict[str, Any]:
    synthetic = task.synthetic
    base = {"spec_id": task.spec_id, "is_main": task.is_main, **task.choices, "indicator": key,
            "estimate": float("nan"), "lower": float("nan"), "upper": float("nan"),
            "prob_benefit": float("nan"), "gate": "not fitted", "n_pairs": task.n_pairs,
            "n_wards": task.n_wards, "max_abs_smd": task.max_abs_smd, "scale": "",
            "seconds": 0.0, "error": task.error}
    base.update(values)
    base["synthetic"] = synthetic
    base["notice"] = SYNTHETIC_NOTICE if synthetic else ""
    return base


def fit_spec(task: ResolvedTask) -> pd.DataFrame:
    """Fit every indicator of one resolved specification.

    Returns one row per indicator: the choices, the posterior own-unit DiD
    (``estimate``, 95% interval ``lower``/``upper``), ``prob_benefit``, the diagnostics
    ``gate``, sizes, timing and, when a fit is impossible, ``error``.
    """
    if task.panel is None:
        return pd.DataFrame([_row(task, k) for k in task.indicators])
    cfg = RunConfig(indicators=tuple(task.indicators), sampler=task.sampler, model=task.model,
                    diagnostics=task.diagnostics)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        ignore_environment_notices()
        batch = fit_all(task.panel, task.indicators, config=cfg, compiled_cache=worker_cache(),
                        validate=False, quiet=False, failures_from=(NbdidError,),
                        seeds={k: derived_seed(task.seed, task.spec_id, k) for k in task.indicators},
                        parameterizations=task.parameterization)
    rows = []
    for key in task.indicators:
        seconds = round(batch.seconds.get(key, 0.0), 2)
        if key in batch.failures:
            rows.append(_row(task, key, error=batch.failures[key], gate="error", seconds=seconds))
            continue
        res = batch.fits[key]
        u = unit_did_row(res.summary)
        rows.append(_row(task, key, estimate=float(u["mean"]), lower=float(u["q2.5"]),
                         upper=float(u["q97.5"]), prob_benefit=float(u["prob_benefit"]),
                         gate=str(res.diagnostics["gate"].iloc[0]), scale=str(u["scale"]),
                         seconds=seconds))
    return pd.DataFrame(rows)


def run_spec(task: SpecTask, pool: CandidatePool | None = None) -> pd.DataFrame:
    """Build one specification's panel and fit it (the function workers run).

    Parameters
    ----------
    task
        The specification (:class:`SpecTask`).
    pool
        The candidate pool (a Dask worker gets the scattered pool); ``None``: the one
        this process received once (:func:`install_shared`, local workers).

    Returns
    -------
    pandas.DataFrame
        :func:`fit_spec`'s rows (error rows when the matching fails).
    """
    if pool is None:
        pool = shared_object(task.pool_key)
    return fit_spec(resolve_task(task, pool))


# ----------------------------------------------------------------------------------------
# scheduling
# ----------------------------------------------------------------------------------------


def plan_lanes(tasks: list[SpecTask], n_lanes: int) -> list[list[SpecTask]]:
    """Assign tasks to ``n_lanes`` workers, keeping equal signatures together.

    A task's ``signature`` is what is known of its model structure before it runs (for
    a :class:`SpecTask`: model settings, indicators, :func:`size_hint`); sizes and
    forms that only the matching decides are met by the worker's compiled-model cache.
    Groups of equal signature are split in halves while there are idle lanes and a
    group has at least ``2 * COMPILE_COST_SPECS`` tasks; the chunks are then placed
    longest first on the least loaded lane (cost = tasks + one compilation).
    """
    groups: dict[tuple, list[SpecTask]] = {}
    for t in tasks:
        groups.setdefault(t.signature, []).append(t)
    chunks = list(groups.values())
    n_lanes = max(1, n_lanes)
    while len(chunks) < n_lanes:
        chunks.sort(key=len, reverse=True)
        if len(chunks[0]) < 2 * COMPILE_COST_SPECS:
            break
        big = chunks.pop(0)
        half = (len(big) + 1) // 2
        chunks += [big[:half], big[half:]]
    lanes: list[list[SpecTask]] = [[] for _ in range(min(n_lanes, max(1, len(chunks))))]
    load = [0] * len(lanes)
    for chunk in sorted(chunks, key=len, reverse=True):
        i = load.index(min(load))
        lanes[i] += chunk
        load[i] += len(chunk) + COMPILE_COST_SPECS
    return [lane for lane in lanes if lane]


class Progress:
    """Progress of a sweep on stderr: a rich bar of finished specifications with fits
    per minute and an ETA once the first fits are done
    (:class:`nbdid.models.progress.SweepProgress`).

    Shown only in a terminal: silent when ``enabled`` is false (``--quiet``) and when
    stderr is not a terminal (a batch job's log gets the summary, not a bar).
    ``desc`` and ``unit`` name the job and what it counts (``nbdid design`` uses them).
    """

    def __init__(self, total: int, done: int = 0, *, enabled: bool = True,
                 desc: str = "nbdid sensitivity", unit: str = "spec") -> None:
        self.total, self.done, self.enabled = total, done, enabled
        self.desc, self.unit = desc, unit
        self.fitted = 0
        self._bar = SweepProgress(total, quiet=not enabled, done=done,
                                  label=f"{desc.removeprefix('nbdid ')} ({unit}s)").__enter__()

    def update(self, note: str = "") -> None:
        """Count one more finished task (``note`` is kept for callers; not shown)."""
        self.done += 1
        self.fitted += 1
        self._bar.advance()

    def close(self) -> None:
        """Remove the bar."""
        self._bar.__exit__(None, None, None)


def _run_local(lanes: list[list[Any]], on_done: Callable[[Any, pd.DataFrame], None],
               fn: Callable[..., pd.DataFrame] = run_spec,
               shared: tuple[str, Any] | None = None) -> int:
    """Run each lane in its own worker process; returns the models the workers compiled.

    ``shared``: ``(key, object)`` sent once to each worker process, before its first
    task (:func:`install_shared`; ``fn`` finds it with :func:`shared_object`).  Tasks
    are submitted as they are (``fn(task)``), so they stay small.
    """
    # workers exit when this process dies, by any signal (nbdid.runtime.die_with_parent)
    executors = [process_pool(1) for _ in lanes]
    interrupted = False
    try:
        if shared is not None:
            installs = [ex.submit(install_shared, *shared) for ex in executors]
        futures = {}
        for ex, lane in zip(executors, lanes, strict=True):
            for task in lane:  # a one-process pool runs its tasks in submission order
                futures[ex.submit(fn, task)] = task
        if shared is not None:
            for fut in installs:
                fut.result()
        for fut in as_completed(futures):
            on_done(futures[fut], fut.result())
        return sum(ex.submit(worker_compilations).result()[1] for ex in executors)
    except BaseException:
        interrupted = True
        raise
    finally:
        for ex in executors:
            if interrupted:
                _terminate_workers(ex)
            ex.shutdown(wait=not interrupted, cancel_futures=True)


def _terminate_workers(pool: Any) -> None:
    """Stop a process pool's workers now, not after their current fit.

    Interrupted sweeps lose nothing: finished specifications are already on disk, and
    a worker writes nothing itself (its rows are written atomically by the parent).
    """
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        if proc.is_alive():
            proc.terminate()
    for proc in list((getattr(pool, "_processes", None) or {}).values()):
        proc.join(timeout=5)


WAIT_FOR_WORKERS = 300.0
"""Seconds a sweep waits for the first worker of a Dask cluster (adaptive clusters start
with none)."""


def _run_dask(lanes: list[list[Any]], on_done: Callable[[Any, pd.DataFrame], None], scheduler: Any,
              fn: Callable[..., pd.DataFrame] = run_spec, key_prefix: str = "nbdid-spec",
              replan: Callable[[int], list[list[Any]]] | None = None,
              shared: tuple[str, Any] | None = None) -> int:
    """Run each lane on one Dask worker (strict placement: a lane's tasks cannot be
    stolen by other workers, so each structure compiles once per lane).  ``replan``
    re-plans the lanes for the cluster's number of workers.  ``shared``: ``(key,
    object)`` scattered once to the lanes' workers and passed to every task
    (``fn(task, object)``; the data stay on the worker).  Returns the number of models
    the workers compiled."""
    # imported here: dask.distributed is only needed for --executor dask, and importing it
    # costs seconds of start-up time for every local sweep
    try:
        from distributed import Client
        from distributed import as_completed as dask_completed
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise InputError("--executor dask needs dask.distributed (pip install 'dask[distributed]')") from None
    own = isinstance(scheduler, str | os.PathLike) or scheduler is None
    if scheduler is None:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    try:
        if isinstance(scheduler, os.PathLike):  # --scheduler-file (dask scheduler --scheduler-file)
            if not Path(scheduler).is_file():
                raise InputError("no such scheduler file", file=scheduler)
            client = Client(scheduler_file=str(scheduler), timeout="20s")
        else:
            client = Client(scheduler, timeout="20s") if own else scheduler
    except (OSError, TimeoutError) as err:
        raise InputError(f"cannot connect to the Dask scheduler at {scheduler}: {err}") from None
    try:
        workers = sorted(client.scheduler_info()["workers"])
        if not workers:  # an adaptive cluster starts with none
            try:
                client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS)
            except TimeoutError:
                raise InputError(f"the Dask cluster at {scheduler} has no workers (waited "
                                 f"{WAIT_FOR_WORKERS:.0f} s)") from None
            workers = sorted(client.scheduler_info()["workers"])
        if replan is not None:
            lanes = replan(len(workers))
        extra: tuple = ()
        if shared is not None:  # once per worker, not once per task
            used = sorted({workers[i % len(workers)] for i in range(len(lanes))})
            extra = (client.scatter(shared[1], workers=used, broadcast=True),)
        futures = {}
        for i, lane in enumerate(lanes):
            addr = workers[i % len(workers)]
            for task in lane:
                # strict: work stealing would move a task to a worker that has not
                # compiled its model (and compile it again there)
                fut = client.submit(fn, task, *extra, pure=False, workers=[addr],
                                    allow_other_workers=False, key=f"{key_prefix}-{task.spec_id}-{i}")
                futures[fut] = task
        for fut in dask_completed(list(futures)):
            on_done(futures[fut], fut.result())
        counts = dict(client.run(worker_compilations).values())  # one entry per process
        return int(sum(counts.values()))
    finally:
        if own:
            client.close()


# ----------------------------------------------------------------------------------------
# the sweep
# ----------------------------------------------------------------------------------------


@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did."""

    out: Path
    results: pd.DataFrame
    summary: pd.DataFrame
    specs: list[Spec]
    fitted_ids: list[str] = field(default_factory=list)
    skipped_ids: list[str] = field(default_factory=list)
    seconds: float = 0.0
    synthetic: bool = False

    def text(self) -> str:
        """How often each conclusion holds, per indicator (for the terminal)."""
        head = f"*** {SYNTHETIC_NOTICE} ***\n" if self.synthetic else ""
        return head + format_sweep_summary(self.summary)


def load_pool(cfg: SweepConfig) -> CandidatePool:
    """The candidate pool a sweep uses (synthetic default, or the user's files)."""
    s = cfg.sweep
    if s.panel == "default":
        if s.candidates is not None:
            raise InputError("'sweep.candidates' needs 'sweep.panel' to be a panel file, not "
                             "\"default\"", file=cfg.source)
        return load_candidate_pool()
    if s.candidates is not None:
        return read_candidate_pool(s.panel, s.candidates)
    panel = read_panel(s.panel)
    w = panel.drop_duplicates("ward")
    cov = pd.DataFrame({"ward": w["ward"].astype("string").to_numpy(),
                        "group": w["group"].astype("string").to_numpy(),
                        "published_pair": w["pair"].astype("Int64").to_numpy(),
                        "boundary_changed": False})
    panel = panel.assign(pair=pd.array([pd.NA] * len(panel), dtype="Int64"))
    synthetic = bool(panel["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in panel else False
    return CandidatePool(covariates=cov, panel=panel, synthetic=synthetic)


def _check_against_pool(cfg: SweepConfig, pool) -> tuple[str, ...]:
    """Check the grid's columns exist; return the balance covariates."""
    cols = set(pool.covariates.columns)
    m = cfg.matching
    for covs in m.covariates:
        for c in covs:
            if c not in cols:
                hint = ("" if cfg.sweep.candidates or cfg.sweep.panel == "default" else
                        "; matching needs a candidate pool: set 'sweep.candidates' to a ward "
                        "covariate CSV")
                raise InputError(f"'grid.matching.covariates': the candidate pool has no covariate "
                                 f"'{c}' (it has: {', '.join(sorted(cols))}){hint}", file=cfg.source)
    for ex in m.exact:
        for c in ex:
            if c not in cols:
                raise InputError(f"'grid.matching.exact': the candidate pool has no column '{c}'",
                                 file=cfg.source)
    bal = cfg.sweep.balance_covariates
    if bal == "matching":
        seen: list[str] = []
        for covs in m.covariates:
            seen += [c for c in covs if c not in seen]
        if not seen:
            seen = [c for c in NUMERIC_COVARIATES if c in cols]
        bal = tuple(seen)
    for c in bal:
        if c not in cols:
            raise InputError(f"'sweep.balance_covariates': the candidate pool has no covariate '{c}'",
                             file=cfg.source)
    if not bal and any(t is not False for t in cfg.sample.drop_poor_balance):
        raise InputError("'grid.sample.drop_poor_balance' needs covariates (set "
                         "'sweep.balance_covariates')", file=cfg.source)
    present = set(pool.panel["indicator"].astype(str))
    missing = [k for k in cfg.sweep.indicator_keys if k not in present]
    if missing:
        raise InputError(f"the panel has no rows for {', '.join(missing)}; set 'sweep.indicators'",
                         file=cfg.source)
    return tuple(bal)


def output_names(indicators: tuple[str, ...]) -> list[str]:
    """Files of a sweep's output folder (besides ``specs/``)."""
    names = ["sensitivity.csv", "sensitivity_summary.csv", "sweep_info.json"]
    for k in indicators:
        names += [f"figures/spec_curve_{k}.{ext}" for ext in FORMATS]
    return names


def build_tasks(cfg: SweepConfig, pool: CandidatePool) -> tuple[list[Spec], list[SpecTask], str]:
    """Expand the grid into lazy tasks, one per specification (in the calling process).

    Nothing is matched or built here: a task carries the specification, its id and the
    sweep settings (:class:`SpecTask`), and the worker builds the panel
    (:func:`resolve_task`).  The grid's columns are checked against the pool first.

    Returns
    -------
    tuple
        ``(specs, tasks, data_hash)``: the specifications in grid order (main first),
        their tasks in the same order, and the hash of the pool's data.
    """
    bal = _check_against_pool(cfg, pool)
    s = cfg.sweep
    has_pub = bool(pool.covariates["published_pair"].notna().any())
    tr = pool.covariates[pool.covariates["group"] == "nbi"]
    pairs = sorted(int(p) for p in tr["published_pair"].dropna()) if has_pub else list(
        range(1, len(tr) + 1))
    specs = expand_specs(cfg, pairs=pairs, has_published=has_pub)
    data_hash = hash_frame(pool.panel) + hash_frame(pool.covariates)
    context = json.dumps({
        "fit_revision": FIT_REVISION,
        "data": data_hash, "indicators": list(s.indicator_keys),
        "sampler": dataclasses.asdict(s.sampler), "model": dataclasses.asdict(s.model),
        "diagnostics": dataclasses.asdict(s.diagnostics), "seed": s.seed, "balance": list(bal),
    }, sort_keys=True, default=str)
    keys = model_keys(cfg)
    key = pool_key(data_hash)
    synthetic = bool(pool.synthetic)
    tasks = []
    for i, spec in enumerate(specs):
        model = spec.model_config(s.model)
        if spec.replace:
            model = dataclasses.replace(model, pair_effects=False)
        tasks.append(SpecTask(
            spec_id=spec_hash(spec, context)[:16], is_main=(i == 0), spec=spec,
            choices=spec.choices(keys), indicators=s.indicator_keys, sampler=s.sampler,
            model=model, diagnostics=s.diagnostics, seed=s.seed, balance=bal, pool_key=key,
            synthetic=synthetic,
            signature=(dataclasses.astuple(model), s.indicator_keys, size_hint(spec)),
        ))
    return specs, tasks, data_hash


def size_hint(spec: Spec) -> tuple:
    """What decides a specification's design sizes, as far as it is known before matching.

    Without a caliper, replacement, exact constraints or dropping badly balanced sets,
    every treated ward keeps its set: the sizes follow from the ratio, boundary changes
    and a dropped pair.  Otherwise the matching decides them; such specifications are
    grouped by the choices that change sizes (not by covariates or distance).
    """
    predictable = spec.drop_poor_balance is None and (
        spec.matching == "published"
        or (spec.caliper is None and not spec.replace and not spec.exact))
    ratio = 1 if spec.matching == "published" else spec.ratio
    if predictable:
        return ("sets", ratio, spec.drop_boundary_changes, spec.drop_pair is not None)
    return ("matched", ratio, spec.caliper, spec.replace, spec.exact, spec.drop_poor_balance,
            spec.drop_boundary_changes, spec.drop_pair is not None)


def spec_path(out: Path, spec_id: str) -> Path:
    """Where a specification's rows are written."""
    return out / SPEC_DIR / f"spec_{spec_id}.csv"


def read_spec_file(path: Path) -> pd.DataFrame:
    """Read a written specification file back (choices kept as text)."""
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    for col in ("estimate", "lower", "upper", "prob_benefit", "max_abs_smd", "seconds"):
        df[col] = pd.to_numeric(df[col].replace("", "nan"), errors="coerce").astype("float64")
    for col in ("n_pairs", "n_wards"):
        df[col] = pd.to_numeric(df[col]).astype("int64")
    for col in ("is_main", "synthetic"):
        df[col] = df[col].str.lower().eq("true")
    return df


def run_sweep(
    cfg: SweepConfig,
    out: str | os.PathLike[str] | None = None,
    *,
    force: bool = False,
    executor: Executor = "local",
    scheduler: Any = None,
    workers: int | None = None,
    progress: bool = True,
    figures: bool = True,
    shard: tuple[int, int] | None = None,
) -> SweepOutcome:
    """Run (or resume) a sensitivity sweep and write its outputs.

    Parameters
    ----------
    cfg
        The sweep (:func:`nbdid.analysis.sensitivity.load_sweep_config`).
    out
        Output folder (default ``cfg.sweep.out``).
    force
        Overwrite the summary outputs of an earlier run (finished specification files
        with the same id are reused either way: they hold the same numbers).
    executor
        ``"local"`` worker processes or ``"dask"``.
    scheduler
        Dask scheduler address, a ``distributed.Client``, or the path
        (:class:`pathlib.Path`) of a scheduler file, for ``executor="dask"``.
    workers
        Local worker processes (default: the number of CPUs).
    progress
        Show a progress bar on stderr.
    figures
        Draw the specification-curve figures.
    shard
        ``(i, n)``: fit only the i-th of ``n`` slices of the grid (1-based; contiguous
        in grid order, :func:`shard_tasks`) and write only ``specs/`` and
        ``shard_I_of_N.json`` (a SLURM/PBS array job, no scheduler).
        :func:`collect_shards` merges the shards' folders into the outputs of one run.

    Returns
    -------
    SweepOutcome
        For a shard: its own rows only, and no summary.
    """
    t_start = time.perf_counter()
    if shard is not None:
        check_shard(shard)
    if executor not in ("local", "dask"):
        raise InputError(f"unknown executor '{executor}' (use local or dask)")
    if executor == "dask" and scheduler is None:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    pool = load_pool(cfg)
    specs, tasks, data_hash = build_tasks(cfg, pool)
    keys = cfg.sweep.indicator_keys
    if shard is not None:
        tasks = shard_tasks(tasks, shard)
    names = [shard_name(shard)] if shard is not None else output_names(keys)
    # one writer per folder; the folder is marked unfinished until the summary is written
    with open_out_dir(out or cfg.sweep.out, names, force=force,
                      command="sensitivity") as session:
        outdir = session.folder
        (outdir / SPEC_DIR).mkdir(exist_ok=True)

        # resume: finished specifications are skipped before anything is built
        done = {t.spec_id for t in tasks if spec_path(outdir, t.spec_id).exists()}
        todo = [t for t in tasks if t.spec_id not in done]
        skipped = [t.spec_id for t in tasks if t.spec_id in done]
        compilations, n_lanes = 0, 0
        bar = Progress(len(tasks), len(skipped), enabled=progress)
        fitted: list[str] = []
        lock = threading.Lock()

        def on_done(task: SpecTask, rows: pd.DataFrame) -> None:
            with lock:
                write_csv(rows, spec_path(outdir, task.spec_id))
                fitted.append(task.spec_id)
                bad = int((rows["gate"].astype(str) == "error").sum())
                bar.update(f"spec {task.spec_id[:8]}" + (f" ({bad} errors)" if bad else ""))

        try:
            if todo:
                # the workers build the panels (and write error rows for designs that
                # cannot be built); the candidate pool goes to each worker once
                shared = (todo[0].pool_key, pool)
                n = workers or os.cpu_count() or 1
                lanes = plan_lanes(todo, n)
                if executor == "local":
                    compilations = _run_local(lanes, on_done, shared=shared)
                else:  # lanes from the cluster's workers unless --workers says otherwise
                    planned = {"lanes": lanes}

                    def replan(n_workers: int) -> list[list[SpecTask]]:
                        planned["lanes"] = plan_lanes(todo, n_workers)
                        return planned["lanes"]

                    compilations = _run_dask(lanes, on_done, scheduler, shared=shared,
                                             replan=None if workers else replan)
                    lanes = planned["lanes"]
                n_lanes = len(lanes)
        finally:
            bar.close()

        if shard is not None:
            rows = [read_spec_file(spec_path(outdir, t.spec_id)) for t in tasks]
            info = {"shard": f"{shard[0]}/{shard[1]}", "data_sha256": data_hash,
                    "spec_ids": [t.spec_id for t in tasks], "fitted": len(fitted),
                    "reused": len(skipped), "seconds": round(time.perf_counter() - t_start, 1),
                    "versions": package_versions()}
            write_text(json.dumps(info, indent=2) + "\n", outdir / shard_name(shard))
            return SweepOutcome(outdir, pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(),
                                pd.DataFrame(), specs, fitted, skipped,
                                time.perf_counter() - t_start, bool(pool.synthetic))
        results = add_conclusions(pd.concat([read_spec_file(spec_path(outdir, t.spec_id)) for t in tasks],
                                            ignore_index=True))
        summary = summarise_sweep(results, robust_share=cfg.sweep.robust_share)
        write_csv(results, outdir / "sensitivity.csv")
        write_csv(summary, outdir / "sensitivity_summary.csv")
        synthetic = bool(pool.synthetic)
        if figures:
            (outdir / "figures").mkdir(exist_ok=True)
            for key in keys:
                fig = plot_specification_curve(results[results["indicator"] == key],
                                               choices=spec_choice_columns(cfg), synthetic=synthetic)
                save_figure(fig, outdir / "figures" / f"spec_curve_{key}")
        info = {
            "config": cfg.text,
            "config_file": cfg.source,
            "data_sha256": data_hash,
            "synthetic": synthetic,
            "notice": SYNTHETIC_NOTICE if synthetic else "",
            "seed": cfg.sweep.seed,
            "sampler": to_toml(cfg.sweep.sampler),
            "n_specs": len(tasks),
            "fitted": len(fitted),
            "reused": len(skipped),
            "executor": executor,
            # models compiled by the workers (one per structure per lane; 0 when every
            # specification was reused)
            "compilations": compilations,
            "lanes": n_lanes,
            "seconds": round(time.perf_counter() - t_start, 1),
            "versions": package_versions(),
        }
        write_text(json.dumps(info, indent=2) + "\n", outdir / "sweep_info.json")
        return SweepOutcome(outdir, results, summary, specs, fitted, skipped,
                            time.perf_counter() - t_start, synthetic)


def check_shard(shard: tuple[int, int]) -> None:
    """Refuse a shard that is not ``i/n`` with ``1 <= i <= n``."""
    i, n = shard
    if n < 1 or not 1 <= i <= n:
        raise InputError(f"--shard must be I/N with 1 <= I <= N, not {i}/{n}")


def parse_shard(text: str) -> tuple[int, int]:
    """``"3/10"`` -> ``(3, 10)`` (checked)."""
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise InputError(f"--shard must be I/N (e.g. 3/10), not '{text}'") from None
    check_shard((i, n))
    return i, n


def shard_name(shard: tuple[int, int]) -> str:
    """The record a shard writes beside its ``specs/``."""
    return f"shard_{shard[0]}_of_{shard[1]}.json"


def shard_tasks(tasks: list[SpecTask], shard: tuple[int, int]) -> list[SpecTask]:
    """The i-th of n contiguous slices of ``tasks`` (grid order keeps neighbouring
    specifications, which often share a model structure, in one shard)."""
    i, n = shard
    k, r = divmod(len(tasks), n)
    start = (i - 1) * k + min(i - 1, r)
    return tasks[start:start + k + (1 if i <= r else 0)]


def collect_shards(cfg: SweepConfig, dirs: list[str | os.PathLike[str]],
                   out: str | os.PathLike[str] | None = None, *, force: bool = False,
                   figures: bool = True) -> SweepOutcome:
    """Merge the ``specs/`` of sharded runs (``--shard``) into the outputs of one run.

    Every specification of the grid must have its file in one of ``dirs``; they are
    copied into ``out/specs/`` and the tables, figures and ``sweep_info.json`` are
    written as :func:`run_sweep` writes them (nothing is fitted).

    Raises
    ------
    InputError
        If a specification has no file in any of ``dirs``.
    """
    pool = load_pool(cfg)
    _specs, tasks, _ = build_tasks(cfg, pool)
    folders = [Path(d) for d in dirs]
    for d in folders:
        if not (d / SPEC_DIR).is_dir():
            raise InputError(f"no {SPEC_DIR}/ folder (not a sweep or shard output)", file=d)
    found: dict[str, Path] = {}
    for t in tasks:
        for d in folders:
            p = spec_path(d, t.spec_id)
            if p.is_file():
                found[t.spec_id] = p
                break
    missing = [t.spec_id for t in tasks if t.spec_id not in found]
    if missing:
        raise InputError(f"{len(missing)} of {len(tasks)} specifications have no file in the "
                         f"folders given (first: spec_{missing[0]}.csv); run the missing shards")
    target = Path(out or cfg.sweep.out)
    with open_out_dir(target, output_names(cfg.sweep.indicator_keys), force=force,
                      command="sensitivity"):
        (target / SPEC_DIR).mkdir(parents=True, exist_ok=True)
        for spec_id, src in found.items():
            dst = spec_path(target, spec_id)
            if not (dst.exists() and dst.resolve() == src.resolve()):
                with atomic_path(dst) as tmp:
                    tmp.write_bytes(src.read_bytes())
        # every specification is on disk now: run_sweep only rebuilds the outputs
        return run_sweep(cfg, target, force=True, progress=False, figures=figures)


def sensitivity(
    config: SweepConfig | str | os.PathLike[str],
    out: str | os.PathLike[str] | None = None,
    **kwargs: Any,
) -> SweepOutcome:
    """Run (or resume) the sensitivity sweep of a sweep file or :class:`SweepConfig`.

    A thin wrapper of :func:`run_sweep` that reads the file first
    (:func:`nbdid.analysis.sensitivity.load_sweep_config`); keyword arguments are
    :func:`run_sweep`'s (``force``, ``executor``, ``scheduler``, ``workers``,
    ``progress``, ``figures``).  The sweep writes its outputs to ``out`` as it goes (so
    that an interrupted sweep can resume) and returns them.
    """
    cfg = config if isinstance(config, SweepConfig) else load_sweep_config(config)
    return run_sweep(cfg, out, **kwargs)


def spec_choice_columns(cfg: SweepConfig) -> list[str]:
    """Choice columns shown under a specification curve."""
    return list(CHOICE_COLUMNS) + list(model_keys(cfg))


def format_sweep_summary(summary: pd.DataFrame) -> str:
    """Readable rendering of the sweep summary."""
    lines = [f"{'indicator':<22}{'specs':>6}{'gate x':>7}{'benefit':>9}{'harm':>7}{'P>0.9':>7}  "
             f"{'main conclusion':<16}{'holds in':>9}  report"]
    for _, r in summary.iterrows():
        def pct(x: float) -> str:
            return "   -" if x != x else f"{100 * x:4.0f}%"

        lines.append(
            f"{r.indicator:<22}{int(r.n_fitted):>6}{int(r.n_gate_failed):>7}"
            f"{pct(r.share_benefit):>9}{pct(r.share_harm):>7}"
            f"{pct(r.share_prob_benefit_gt_0_9):>7}  {r.main_conclusion:<16}"
            f"{pct(r.share_main_conclusion):>9}  {r.report_conclusion} "
            f"({pct(r.share_report_conclusion).strip()} agree)"
        )
    lines.append("(gate x: fits that failed the diagnostics gate; benefit/harm: share of "
                 "specifications whose 95% interval excludes zero in that direction; P>0.9: share "
                 "with P(benefit) > 0.9)")
    return "\n".join(lines)
