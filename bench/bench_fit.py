"""Benchmark of model fitting (not a test): run ``python bench/bench_fit.py``.

Everything is measured side by side in one run on the synthetic default panel (58
wards, two periods), indicator ``crime``, 4 chains x 1,000 draws after 1,000 tuning
steps (``--draws``/``--tune`` to change), and printed with the ratios to the targets of
issue 17:

1. *cold fit, new process*: a fresh process with an empty compile cache
   (``NBDID_CACHE_DIR`` = a temporary folder) fits crime; then a second fresh process
   with the cache the first filled.  Compile and sampling seconds are printed apart
   (``FitResult.timing``).  Target: the second process starts sampling within a few
   seconds.
2. *warm refit*: :func:`nbdid.workflow.fit.fit` of crime on new data (counts redrawn
   around the old ones) with the model already compiled in the process, end to end
   (sampling, estimands, predictive check, diagnostics), median of ``--repeats``.
   Target <= 1.0 s.
3. *sampling floor*: one log-density + gradient evaluation (nutpie's compiled
   callback called through ctypes, mean of 20,000 calls) times the gradient evaluations the refit made
   (leapfrog steps of the draws, scaled to warm-up + draws), divided by the chains that
   run at once (min(chains, cores)).  The refit is printed as a multiple of it.
4. *PyMC*: ``pm.sample`` (PyMC's NUTS) on the same PyMC model, timed on its *second*
   call in one process (compilation excluded).  Target: refit >= 20x faster.
5. *numpyro*: ``pm.sample(nuts_sampler="numpyro")`` on the same PyMC model (PyMC's JAX
   backend, numpyro's NUTS, chains in parallel on ``--chains`` XLA host devices over the
   machine's cores), timed on its second call like PyMC's; skipped when numpyro or JAX is
   not installed (``pip install numpyro``; not a dependency of nbdid).  Target >= 5x.
6. *brms*: ``update(fit, newdata = )`` of an equivalent brms model (Poisson, offset,
   NBI x post, ward intercepts and changes, pair intercepts), timed after a first fit
   that compiles; skipped when ``Rscript`` or brms is missing, or with ``--no-brms``.
   Target >= 100x.
7. *all seven* (``--all-seven``): a fresh process fits the seven indicators with a
   warm compile cache.  Target <= 60 s.

Every measurement is printed; the machine's load average is printed too, because
timings on a shared machine are not the idle-machine numbers the targets refer to.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings

COLD = r"""
import json, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.workflow.fit import fit
imported = time.perf_counter() - t0
s = json.loads(sys.argv[1])
res = fit(load_default_panel(), "crime", draws=s["draws"], tune=s["tune"], chains=s["chains"])
print("RESULT " + json.dumps({**res.timing, "imports": imported, "fit": res.seconds}))
"""

ALL_SEVEN = r"""
import time, warnings
warnings.simplefilter("ignore")
from nbdid.data_prep.synthetic import load_default_panel
from nbdid.workflow.fit import fit
from nbdid.registry import INDICATOR_KEYS
panel = load_default_panel()
t0 = time.perf_counter()
for key in INDICATOR_KEYS:
    r = fit(panel, key)
    t = r.timing
    print(f"  {key:22s} {r.seconds:6.1f} s (compile {t.get('compile_seconds', 0):.1f} s "
          f"[{t.get('compiled')}], sampling {t.get('sampling_seconds', 0):.1f} s)  {r.gate}", flush=True)
print(f"TOTAL {time.perf_counter() - t0:.1f}")
"""

BRMS = r"""
suppressMessages(library(brms))
args <- commandArgs(trailingOnly = TRUE)
d <- read.csv(args[1]); d2 <- read.csv(args[2])
chains <- as.integer(args[3]); draws <- as.integer(args[4]); tune <- as.integer(args[5])
f <- bf(count ~ offset(log(exposure)) + nbi * post + (1 + post | ward) + (1 | pair))
fit <- brm(f, data = d, family = poisson(), chains = chains, iter = tune + draws,
           warmup = tune, cores = min(chains, parallel::detectCores()), refresh = 0,
           silent = 2, seed = 1)
t <- system.time(update(fit, newdata = d2, recompile = FALSE, refresh = 0, silent = 2,
                        seed = 2))[["elapsed"]]
cat(sprintf("BRMS %.3f\n", t))
"""

PYMC_TARGET, NUMPYRO_TARGET, BRMS_TARGET, REFIT_TARGET, SEVEN_TARGET = 20, 5, 100, 1.0, 60


def _median(xs: list[float]) -> float:
    return float(sorted(xs)[len(xs) // 2])


def _run(code: str, *args: str, env: dict | None = None) -> dict:
    proc = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True,
                          env=env)
    line = [x for x in proc.stdout.splitlines() if x.startswith("RESULT ")]
    if proc.returncode or not line:
        raise RuntimeError(proc.stderr[-2000:])
    return json.loads(line[0][len("RESULT "):])


def _r_env(rscript: str, tmp: str) -> dict:
    """Environment for Rscript.  Debian's ``r-cran-bh`` ships without its ``include``
    folder (the Boost headers are in ``libboost-dev``), so Stan models do not compile
    against it; a library folder in ``tmp`` holding a copy of BH made of symlinks, with
    ``include/boost`` pointing at the system's Boost headers, is put first on R's path."""
    env = dict(os.environ)
    proc = subprocess.run([rscript, "-e", 'cat(find.package("BH", quiet = TRUE))'],
                          capture_output=True, text=True)
    bh = proc.stdout.strip()
    if not bh or os.path.isdir(os.path.join(bh, "include")) or not os.path.isdir("/usr/include/boost"):
        return env
    lib = os.path.join(tmp, "Rlib")
    shim = os.path.join(lib, "BH")
    os.makedirs(os.path.join(shim, "include"))
    for entry in os.listdir(bh):
        os.symlink(os.path.join(bh, entry), os.path.join(shim, entry))
    os.symlink("/usr/include/boost", os.path.join(shim, "include", "boost"))
    env["R_LIBS"] = os.pathsep.join([lib, *filter(None, [env.get("R_LIBS")])])
    return env


def _redrawn(panel, seed: int):
    import numpy as np

    new = panel.copy()
    rows = (new["indicator"] == "crime").to_numpy()
    rng = np.random.default_rng(seed)
    new.loc[rows, "count"] = rng.poisson(new.loc[rows, "count"].astype(float).to_numpy())
    return new


def _floor(cache, res, s) -> tuple[float, float, int]:
    """(floor seconds, seconds per logp+grad evaluation, gradient evaluations)."""
    import numpy as np

    entry = next(iter(cache._entries.values()))
    compiled = entry.compiled
    shared = compiled.shared_data
    compiled = compiled.with_data(**{k: v for k, v in entry.data.items() if k in shared})
    # nutpie's compiled C callback, called through ctypes (about 1 us of call overhead
    # is included, so the floor is slightly pessimistic)
    import ctypes

    fn = compiled.compiled_logp_func.ctypes
    n = compiled.n_dim
    x, grad, logp = np.zeros(n), np.zeros(n), np.zeros(())
    dptr = ctypes.POINTER(ctypes.c_double)
    call_args = (n, x.ctypes.data_as(dptr), grad.ctypes.data_as(dptr), logp.ctypes.data_as(dptr),
                 ctypes.c_void_p(compiled.user_data.ctypes.data))
    reps = 20000
    fn(*call_args)
    t = time.perf_counter()
    for _ in range(reps):
        fn(*call_args)
    per_eval = (time.perf_counter() - t) / reps
    steps = res.idata.sample_stats["n_steps"].values.astype(float)
    evals = int(steps.sum() * (s["draws"] + s["tune"]) / s["draws"])
    lanes = min(s["chains"], os.cpu_count() or 1)
    return per_eval * evals / lanes, per_eval, evals


def _warm_refit(panel, s, repeats: int, label: str):
    """Compile once, then time ``repeats`` warm refits; print refit and floor."""
    from nbdid.models.sampling import CompiledModelCache
    from nbdid.workflow.fit import fit

    cache = CompiledModelCache()
    fit(panel, "crime", compiled_cache=cache, **s)  # compile (or load) once
    warm, sampling = [], []
    res = None
    for rep in range(repeats):
        new = _redrawn(panel, rep + 1)
        t = time.perf_counter()
        res = fit(new, "crime", compiled_cache=cache, **s)
        warm.append(time.perf_counter() - t)
        sampling.append(res.timing["sampling_seconds"])
    assert cache.compile_count == 1, "a warm refit recompiled"
    refit = _median(warm)
    floor, per_eval, evals = _floor(cache, res, s)
    print(f"warm refit{label}, end to end:  {refit:6.2f} s median "
          f"({', '.join(f'{x:.2f}' for x in warm)}); "
          f"sampling {_median(sampling):.2f} s, the rest {refit - _median(sampling):.2f} s", flush=True)
    print(f"sampling floor{label}:          {floor:6.2f} s = {per_eval * 1e6:.1f} us per logp+grad x "
          f"{evals} evaluations / {min(s['chains'], os.cpu_count() or 1)} lanes; "
          f"refit = {refit / floor:.1f} x floor, sampling = {_median(sampling) / floor:.1f} x floor",
          flush=True)
    return cache, refit, res


def main() -> int:
    """Run the benchmark and print the measurements and ratios."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--draws", type=int, default=1000)
    ap.add_argument("--tune", type=int, default=1000)
    ap.add_argument("--chains", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--no-cold", action="store_true", help="skip the two fresh processes")
    ap.add_argument("--no-pymc", action="store_true")
    ap.add_argument("--no-numpyro", action="store_true")
    ap.add_argument("--no-brms", action="store_true")
    ap.add_argument("--all-seven", action="store_true")
    ap.add_argument("--compare-indexed", action="store_true",
                    help="also time the refit with the complete-grid broadcasts switched off")
    a = ap.parse_args()
    warnings.simplefilter("ignore")
    # numpyro runs chains in parallel only on as many XLA devices; set before JAX loads
    os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={a.chains}")

    from nbdid.data_prep.synthetic import load_default_panel

    s = {"draws": a.draws, "tune": a.tune, "chains": a.chains}
    print(f"nbdid fit benchmark: crime, {a.chains} chains x {a.draws} draws (+{a.tune} tune), "
          f"{os.cpu_count()} cores, load average at start {os.getloadavg()[0]:.1f} "
          "(targets assume an idle machine)", flush=True)
    rows: list[tuple[str, str, str]] = []

    if not a.no_cold:
        tmp = tempfile.mkdtemp(prefix="nbdid-bench-cache-")
        env = {**os.environ, "NBDID_CACHE_DIR": tmp}
        env.pop("NBDID_COMPILE_CACHE", None)
        try:
            first = _run(COLD, json.dumps(s), env=env)
            second = _run(COLD, json.dumps(s), env=env)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        for name, r in (("new process, empty compile cache", first),
                        ("new process, warm compile cache", second)):
            print(f"{name:34s} compile {r['compile_seconds']:6.1f} s [{r['compiled']}], "
                  f"sampling {r['sampling_seconds']:5.1f} s, fit {r['fit']:6.1f} s "
                  f"(+ imports {r['imports']:.1f} s)", flush=True)
        rows.append(("compile, warm cache (new process)", f"{second['compile_seconds']:.1f} s",
                     f"a few s (fresh: {first['compile_seconds']:.1f} s)"))

    panel = load_default_panel()
    cache, refit, res = _warm_refit(panel, s, a.repeats, "")
    if a.compare_indexed:
        # the same refit with the complete-grid broadcasts switched off (every term
        # gathered by index), side by side in this run
        from nbdid.models.design import Design

        saved = Design.grid
        Design.grid = property(lambda self: False)
        try:
            _, refit_ix, _ = _warm_refit(panel, s, a.repeats, " (indexed graph)")
        finally:
            Design.grid = saved
        rows.append(("indexed graph / grid graph, refit", f"{refit_ix / refit:.2f} x", "(information)"))
    rows.append(("warm refit end to end", f"{refit:.2f} s", f"<= {REFIT_TARGET} s"))

    if not a.no_pymc:
        import pymc as pm

        entry = next(iter(cache._entries.values()))
        times = []
        with entry.model:
            for _ in range(2):
                t = time.perf_counter()
                pm.sample(draws=a.draws, tune=a.tune, chains=a.chains,
                          cores=min(a.chains, os.cpu_count() or 1), random_seed=1,
                          progressbar=False, compute_convergence_checks=False)
                times.append(time.perf_counter() - t)
        print(f"PyMC pm.sample:          first {times[0]:.1f} s, second {times[1]:.1f} s", flush=True)
        rows.append(("PyMC second call / refit", f"{times[1] / refit:.1f} x", f">= {PYMC_TARGET} x"))

    try:
        if a.no_numpyro:
            raise ImportError("--no-numpyro")
        import jax  # noqa: F401
        import numpyro  # noqa: F401
    except ImportError as exc:
        why = "--no-numpyro" if a.no_numpyro else f"not installed: {exc.name}"
        rows.append(("numpyro / refit", f"skipped ({why})", f">= {NUMPYRO_TARGET} x"))
    else:
        import pymc as pm

        entry = next(iter(cache._entries.values()))
        times = []
        with entry.model:
            for _ in range(2):
                t = time.perf_counter()
                pm.sample(draws=a.draws, tune=a.tune, chains=a.chains, nuts_sampler="numpyro",
                          random_seed=1, progressbar=False, compute_convergence_checks=False)
                times.append(time.perf_counter() - t)
        print(f"numpyro (PyMC's JAX backend): first {times[0]:.1f} s, second {times[1]:.1f} s "
              f"({jax.device_count()} XLA devices)", flush=True)
        rows.append(("numpyro second call / refit", f"{times[1] / refit:.1f} x",
                     f">= {NUMPYRO_TARGET} x"))

    rscript = shutil.which("Rscript")
    if a.no_brms or rscript is None:
        rows.append(("brms update(newdata=) / refit",
                     "skipped (" + ("--no-brms" if a.no_brms else "R not installed") + ")",
                     f">= {BRMS_TARGET} x"))
    else:
        tmp = tempfile.mkdtemp(prefix="nbdid-bench-brms-")
        try:
            for name, frame in (("d1.csv", panel), ("d2.csv", _redrawn(panel, 99))):
                c = frame[frame["indicator"] == "crime"].copy()
                c["nbi"] = (c["group"].astype(str) == "nbi").astype(int)
                c["post"] = (c["period"] == c["period"].max()).astype(int)
                c.to_csv(os.path.join(tmp, name), index=False)
            script = os.path.join(tmp, "b.R")
            with open(script, "w", encoding="utf-8") as fh:
                fh.write(BRMS)
            proc = subprocess.run([rscript, script, os.path.join(tmp, "d1.csv"),
                                   os.path.join(tmp, "d2.csv"), str(a.chains), str(a.draws),
                                   str(a.tune)], capture_output=True, text=True,
                                  env=_r_env(rscript, tmp))
            line = [x for x in proc.stdout.splitlines() if x.startswith("BRMS ")]
            if line:
                b = float(line[0].split()[1])
                print(f"brms update(newdata=):   {b:.1f} s", flush=True)
                rows.append(("brms update(newdata=) / refit", f"{b / refit:.1f} x", f">= {BRMS_TARGET} x"))
            else:
                rows.append(("brms update(newdata=) / refit",
                             "skipped (brms failed: " + proc.stderr.strip().splitlines()[-1][:80]
                             + ")" if proc.stderr.strip() else "skipped (brms failed)",
                             f">= {BRMS_TARGET} x"))
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    if a.all_seven:
        _run_seven(rows)

    print("\nside by side (one run):")
    for name, got, target in rows:
        print(f"  {name:34s} {got:>38s}   target {target}")
    print(f"load average at end {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    return 0


def _run_seven(rows: list) -> None:
    # the first process fills the per-user compile cache; the second is the measurement
    for label in ("warming the compile cache", "measured"):
        t = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", ALL_SEVEN], capture_output=True, text=True)
        wall = time.perf_counter() - t
        print(f"all seven ({label}): {wall:.1f} s wall\n{proc.stdout.rstrip()}", flush=True)
    rows.append(("all seven, warm compile cache", f"{wall:.1f} s", f"<= {SEVEN_TARGET} s"))


if __name__ == "__main__":
    sys.exit(main())
