"""Benchmark of a sensitivity sweep (not a test): ``python bench/bench_sweep.py``.

Measured side by side in one run, on the synthetic default panel (two periods, 58
wards, all seven indicators) with the sweep's default sampler (4 chains x 1,000 draws
after 500 tuning steps, ``nbdid.analysis.sensitivity.SWEEP_SAMPLER``):

1. *sweep*: ``run_sweep`` over 8 specifications (the report's pairs and three
   re-matchings, each with and without pair effects) in 2 local worker processes with
   compile-once models.  Reported: wall time, overall indicator-fits per minute, and
   the *warm* rate: warm fits (every fit after a worker's first specification of a
   structure) per minute, ``workers x 60 / mean warm fit time``;
2. *naive*: the same fits done the naive way: ``fit_indicator`` with a fresh PyMC
   model and PyMC's own NUTS (``backend = "pymc"``, every core, same draws, same
   replicates, estimands and diagnostics gate) per fit, measured on 3 fits (one per
   family) and extrapolated per fit.

Targets: >= 30 warm indicator-fits per minute and >= 10x the naive rate.

``python bench/bench_sweep.py --start-latency [--workers N] [--stop-after K]`` measures
instead how soon a big sweep starts (issue #17): a grid of 1,088 specifications x 7
indicators on the synthetic default (3 covariate sets x 3 distances x 5 calipers x
replacement x 1:1/1:2 matching, 4 sample choices, pair effects on/off), run by the
steps of ``run_sweep`` (lazy tasks, resume check, lanes, local workers receiving the
candidate pool once; the workers resolve and fit) until K specifications are done.
Reported: seconds from the start to the tasks built, submitted, the first task running
on a worker and the first fit started (panel built, compiling/sampling begins); the
pickled size of the largest task; and the time the client would have spent matching
every specification before the first submission (before lazy tasks; extrapolated from
a sample).  Targets: first fit started <= 30 s, every task < 10 KB.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
import warnings
from multiprocessing.reduction import ForkingPickler
from pathlib import Path

CONFIG = """
[sweep]
seed = 7
[grid.matching]
published = true
covariates = [["mean_rank", "share_most_deprived_decile"]]
distance = ["mahalanobis", "propensity", "euclidean"]
[grid.model]
pair_effects = [true, false]
"""


def main() -> int:
    """Run the benchmark and print the measurements."""
    warnings.simplefilter("ignore")
    import dataclasses

    from nbdid.analysis.sensitivity import parse_sweep_config
    from nbdid.workflow.sweep import build_tasks, load_pool, resolve_task, run_sweep

    cfg = parse_sweep_config(CONFIG, file="<bench>")
    pool = load_pool(cfg)
    specs, lazy, _ = build_tasks(cfg, pool)
    tasks = [resolve_task(t, pool) for t in lazy]  # panels, forms and structures, for the record
    s = cfg.sweep.sampler
    workers = 2
    print(f"nbdid sweep benchmark: {len(tasks)} specifications x 7 indicators, {s.chains} chains x "
          f"{s.draws} draws (+{s.tune} tune), {os.cpu_count()} cores, {workers} workers",
          flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = run_sweep(cfg, tmp, workers=workers, progress=True, figures=False)
        wall = time.perf_counter() - t0
    r = res.results
    n_fits = len(r)
    # a worker's first specification of a structure includes the compilations
    first = set()
    seen = set()
    for sid in res.fitted_ids:  # completion order
        t = next(t for t in tasks if t.spec_id == sid)
        if t.signature not in seen:
            seen.add(t.signature)
            first.add(sid)
    warm = r[~r["spec_id"].isin(first)]
    mean_warm = float(warm["seconds"].mean())
    warm_rate = workers * 60.0 / mean_warm
    overall = n_fits / wall * 60.0
    print(f"sweep wall time (incl. worker start-up and compilation): {wall:7.1f} s")
    print(f"indicator-fits: {n_fits}; overall rate:                  {overall:7.1f} fits/min")
    print(f"warm fits: {len(warm)}, mean {mean_warm:.2f} s per fit per worker")
    print(f"warm rate ({workers} workers):                              {warm_rate:7.1f} fits/min")
    gate = r["gate"].astype(str).str.startswith("passed").mean()
    print(f"share of fits passing the diagnostics gate:              {gate:7.2f}")

    # naive: the same fit (same design, forms, sampler settings, replicates, estimands and
    # diagnostics gate) with a fresh PyMC model and PyMC's own NUTS (`backend = "pymc"`,
    # every core) per fit: what a sweep costs without compile-once models and nutpie
    from nbdid.config import RunConfig
    from nbdid.models.sampling import CompiledModelCache
    from nbdid.workflow.fit import fit as fit_indicator
    from nbdid.workflow.sweep import ResolvedTask

    task: ResolvedTask = next(t for t in tasks if t.is_main)
    times = []
    for key in ("crime", "out_of_work_benefits", "property_price"):
        cfg_naive = RunConfig(sampler=dataclasses.replace(s, backend="pymc"), model=task.model,
                              diagnostics=task.diagnostics)
        t0 = time.perf_counter()
        fit_indicator(task.panel, key, config=cfg_naive, compiled_cache=CompiledModelCache(),
                      validate=False, parameterization=task.parameterization[key])
        times.append(time.perf_counter() - t0)
        print(f"  naive fit of {key:22s} {times[-1]:6.1f} s (PyMC NUTS, "
              f"{min(s.chains, os.cpu_count() or 1)} cores, fresh model)", flush=True)
    naive_rate = 60.0 / (sum(times) / len(times))
    print(f"naive rate (fresh model + pm.sample per fit, extrapolated): {naive_rate:5.1f} fits/min")
    print(f"ratio warm sweep / naive:                                {warm_rate / naive_rate:7.1f} x")
    print(f"ratio overall sweep (incl. compiles) / naive:            {overall / naive_rate:7.1f} x")
    ok = warm_rate >= 30 and warm_rate / naive_rate >= 10
    print("targets met" if ok else "targets NOT all met (>= 30 warm fits/min, >= 10x naive)")
    return 0


BIG = """
[sweep]
seed = 3
[grid.matching]
published = true
covariates = [["mean_rank"], ["share_most_deprived_decile"], ["mean_rank", "share_most_deprived_decile"]]
distance = ["mahalanobis", "propensity", "euclidean"]
caliper = [false, 0.1, 0.25, 0.5, 1.0]
replace = [false, true]
ratio = [1, 2]
[grid.sample]
drop_poor_balance = [false, 0.5]
drop_boundary_changes = [false, true]
[grid.model]
pair_effects = [true, false]
"""


def _timed_run_spec(task):
    """``run_spec`` with wall-clock marks (runs on a worker: start, panel built, done)."""
    from nbdid.workflow.sweep import fit_spec, resolve_task, shared_object

    started = time.time()
    built = resolve_task(task, shared_object(task.pool_key))
    fitting = time.time()
    rows = fit_spec(built)
    return rows.assign(t_started=started, t_fitting=fitting, t_done=time.time())


class _Enough(Exception):
    """Stops the sweep after the first specifications."""


def start_latency(workers: int = 2, stop_after: int = 1) -> int:
    """Measure how soon a 1,000-specification sweep starts fitting (see the module doc)."""
    wall0, t0 = time.time(), time.perf_counter()
    warnings.simplefilter("ignore")
    from nbdid.analysis.sensitivity import parse_sweep_config
    from nbdid.workflow.sweep import (
        MAX_TASK_BYTES,
        _run_local,
        build_tasks,
        load_pool,
        plan_lanes,
        resolve_task,
        spec_path,
    )

    t_import = time.perf_counter() - t0
    cfg = parse_sweep_config(BIG, file="<bench>")
    pool = load_pool(cfg)
    specs, tasks, _ = build_tasks(cfg, pool)
    t_built = time.perf_counter() - t0
    # the bytes the process pool sends: its own serializer (transport, never a result)
    wire = ForkingPickler.dumps
    sizes = [len(wire(t)) for t in tasks]
    print(f"nbdid sweep start-latency benchmark: {len(tasks)} specifications x "
          f"{len(cfg.sweep.indicator_keys)} indicators, {workers} local workers, "
          f"{os.cpu_count()} cores, load average {os.getloadavg()[0]:.2f} at start", flush=True)
    marks: list = []

    def on_done(task, rows):
        marks.append((time.time(), rows))
        print(f"  spec {task.spec_id[:8]} done at {time.time() - wall0:6.1f} s "
              f"({len(marks)}/{stop_after})", flush=True)
        if len(marks) >= stop_after:
            raise _Enough

    with tempfile.TemporaryDirectory() as tmp:
        todo = [t for t in tasks if not spec_path(Path(tmp), t.spec_id).exists()]
        lanes = plan_lanes(todo, workers)
        t_submit = time.perf_counter() - t0
        try:
            _run_local(lanes, on_done, fn=_timed_run_spec, shared=(todo[0].pool_key, pool))
        except _Enough:
            pass
    rows = [r for _, r in marks]
    first_run = min(float(r["t_started"].iloc[0]) for r in rows) - wall0
    first_fit = min(float(r["t_fitting"].iloc[0]) for r in rows) - wall0
    first_done = min(m for m, _ in marks) - wall0
    # what the client spent before lazy tasks: matching every specification first
    sample = tasks[:: max(1, len(tasks) // 12)][:12]
    t = time.perf_counter()
    for task in sample:
        resolve_task(task, pool)
    per_spec = (time.perf_counter() - t) / len(sample)
    print(f"imports (nbdid, PyMC):                         {t_import:6.1f} s")
    print(f"{len(tasks)} lazy tasks built (pool loaded, grid expanded): {t_built:6.1f} s")
    print(f"resume check + {len(lanes)} lanes planned, submission starts: {t_submit:6.1f} s")
    print(f"first task running on a worker (spawned, pool received): {first_run:6.1f} s")
    print(f"first fit started (panel built on the worker):  {first_fit:6.1f} s   (target <= 30 s)")
    print(f"first specification done ({len(cfg.sweep.indicator_keys)} indicator fits, "
          f"compilations included): {first_done:6.1f} s")
    print(f"largest pickled task: {max(sizes):,} bytes (median {sorted(sizes)[len(sizes) // 2]:,}; "
          f"target < {MAX_TASK_BYTES:,}); candidate pool pickled once per worker: "
          f"{len(wire(pool)):,} bytes")
    print(f"before lazy tasks: matching every specification in the client first, "
          f"{per_spec:.2f} s per specification -> ~{per_spec * len(tasks):.0f} s before the "
          "first submission")
    ok = first_fit <= 30 and max(sizes) < MAX_TASK_BYTES
    print("targets met" if ok else "targets NOT all met (first fit <= 30 s, tasks < 10 KB)")
    return 0


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--start-latency", action="store_true",
                    help="measure how soon a 1,000-specification sweep starts fitting")
    ap.add_argument("--workers", type=int, default=2, help="local workers (--start-latency)")
    ap.add_argument("--stop-after", type=int, default=1,
                    help="stop after this many specifications are done (--start-latency)")
    args = ap.parse_args()
    sys.exit(start_latency(args.workers, args.stop_after) if args.start_latency else main())
