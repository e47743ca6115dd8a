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
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import warnings

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
    from nbdid.workflow.sweep import build_tasks, load_pool, run_sweep

    cfg = parse_sweep_config(CONFIG, file="<bench>")
    pool = load_pool(cfg)
    specs, tasks, _ = build_tasks(cfg, pool)
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
    from nbdid.workflow.sweep import SpecTask

    task: SpecTask = next(t for t in tasks if t.is_main)
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


if __name__ == "__main__":
    sys.exit(main())
