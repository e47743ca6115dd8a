"""Benchmark of national-scale fits (not a test): time split and peak memory.

Run ``python bench/bench_national.py`` (default sizes 58, 580, 2,000 and every English
ward x 2 periods, and every ward x 11 periods; about half an hour on 2 cores) or
``--sizes 58x2,580x2`` for a quick look.  Needs the shared ONS lookup and IMD 2019
ranks (``../shared/data``; ``NBDID_SHARED`` points elsewhere).

Each size runs in a fresh process, so that its peak resident memory (``VmHWM`` of
``/proc/self/status``) is its own:

1. *panel*: :func:`nbdid.workflow.national.national_panel` simulates a **synthetic**
   crime panel on the real ward list (initiative wards + a seeded sample of the others;
   ``x11`` is an annual panel with the initiative starting in the middle);
2. *fit*: :func:`nbdid.fit` with :func:`nbdid.workflow.national.national_model_config`
   (no pairs, the two IMD covariates with their ``post`` interactions, one ward-change
   SD per group) and its sampler (:data:`nbdid.workflow.national.NATIONAL_SAMPLER`:
   4 chains x 1,000 draws after 1,000 warm-up steps, diagonal mass matrix;
   ``--mass-matrix low_rank`` for nutpie's low-rank one), split into compile
   (0 when the compiled model comes from the disk cache), sampling and the rest of the
   fit (predictive replicates, log-likelihood, diagnostics, summaries);
3. *write*: the compressed NetCDF that ``nbdid fit`` writes (size in MB).

It prints one row per size (with the mean leapfrog steps a draw, the bulk ESS of the
DiD and the 1-minute load average when the size finished: the machine may be shared),
the growth per ward between the two largest two-period sizes, and each target against
its measurement: every ward x 2 periods within 5 minutes, every ward x 11 periods within
20 minutes, peak memory under 4 GB.  ``--json FILE`` appends every measurement.
``--cold`` uses an empty compile cache (so the compile is part of the time).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CHILD = r"""
import dataclasses, json, os, sys, time, warnings
warnings.simplefilter("ignore")
t0 = time.perf_counter()
import nbdid
from nbdid.config import RunConfig
from nbdid.outputs import write_netcdf
from nbdid.workflow.national import NATIONAL_SAMPLER, national_config, national_panel
spec = json.loads(sys.argv[1])
t_import = time.perf_counter() - t0
t = time.perf_counter()
res = national_panel(indicator=spec["indicator"], periods=spec["periods"], did=-0.1,
                     wards=spec["wards"], seed=spec["seed"])
t_panel = time.perf_counter() - t
cfg = national_config()
if spec.get("mass_matrix"):
    cfg = RunConfig(model=cfg.model, sampler=dataclasses.replace(cfg.sampler,
                                                                 mass_matrix=spec["mass_matrix"]))
sampler = {k: spec[k] for k in ("draws", "tune", "chains") if spec.get(k)}
t = time.perf_counter()
fit = nbdid.fit(res.panel, spec["indicator"], config=cfg, quiet=True, seed=spec["seed"],
                **sampler)
t_fit = time.perf_counter() - t
t = time.perf_counter()
path = write_netcdf(fit.idata, os.path.join(spec["tmp"], "fit.nc"))
t_write = time.perf_counter() - t
peak = 0
with open("/proc/self/status") as fh:
    for line in fh:
        if line.startswith("VmHWM:"):
            peak = int(line.split()[1]) * 1024
stats = fit.idata.sample_stats
import arviz as az
ess = az.ess(fit.idata.posterior, var_names=["did"])
rows = fit.summary[fit.summary["estimand"] == "did"]
did = rows[rows["scale"].astype(str).str.contains("link")].iloc[0] if (
    rows["scale"].astype(str).str.contains("link").any()) else rows.iloc[0]
print(json.dumps({
    "wards": int(res.panel["ward"].nunique()), "periods": spec["periods"],
    "rows": len(res.panel), "import_s": t_import, "panel_s": t_panel,
    "compile_s": float(fit.timing.get("compile_seconds", 0.0)),
    "compiled": fit.timing.get("compiled", ""),
    "sampling_s": float(fit.timing.get("sampling_seconds", 0.0)),
    "fit_s": t_fit, "write_s": t_write, "nc_mb": os.path.getsize(path) / 1e6,
    "peak_gb": peak / 1e9, "gate": fit.gate, "did_mean": float(did["mean"]),
    "did_lo": float(did["q2.5"]), "did_hi": float(did["q97.5"]),
    "true_did": -0.1, "rhat_max": float(fit.diagnostics["rhat_max"].iloc[0])
        if "rhat_max" in fit.diagnostics else float("nan"),
    "ess_bulk_min": float(fit.diagnostics["ess_bulk_min"].iloc[0])
        if "ess_bulk_min" in fit.diagnostics else float("nan"),
    "did_ess": float(ess["did"]), "draws": int(stats.sizes["draw"] * stats.sizes["chain"]),
    "steps": float(stats["n_steps"].mean()) if "n_steps" in stats else float("nan"),
    "step_size": float(stats["step_size"].mean()) if "step_size" in stats else float("nan"),
    "load": os.getloadavg()[0],
}))
"""


def parse_sizes(text: str) -> list[tuple[int | None, int]]:
    """``58x2,580x2,allx11`` -> [(58, 2), (580, 2), (None, 11)]."""
    out = []
    for item in text.split(","):
        w, _, p = item.strip().partition("x")
        out.append((None if w == "all" else int(w), int(p or 2)))
    return out


def run_one(wards: int | None, periods: int, args: argparse.Namespace, cache: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="nbdid-national-") as tmp:
        spec = {"wards": wards, "periods": periods, "indicator": args.indicator,
                "seed": args.seed, "tmp": tmp, "draws": args.draws, "tune": args.tune,
                "chains": args.chains, "mass_matrix": args.mass_matrix}
        env = dict(os.environ)
        if cache:
            env["NBDID_CACHE_DIR"] = cache
        proc = subprocess.run([sys.executable, "-c", CHILD, json.dumps(spec)],
                              capture_output=True, text=True, env=env, cwd=tmp, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"size {wards}x{periods} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="58x2,580x2,2000x2,allx2,allx11",
                    help="WARDSxPERIODS, comma separated; 'all' = every English ward")
    ap.add_argument("--indicator", default="crime")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--draws", type=int, default=None, help="default: the national sampler's (1,000)")
    ap.add_argument("--tune", type=int, default=None)
    ap.add_argument("--chains", type=int, default=None)
    ap.add_argument("--cold", action="store_true", help="empty compile cache for each size")
    ap.add_argument("--mass-matrix", choices=("diag", "low_rank"), default=None,
                    help="default: the national sampler's (diag)")
    ap.add_argument("--json", default=None, help="also append each size's measurements to this "
                    "file, one JSON object a line")
    args = ap.parse_args()

    rows = []
    head = (f"{'wards':>6} {'per':>3} {'rows':>7} {'panel':>6} {'compile':>8} {'sample':>7} "
            f"{'post':>6} {'write':>6} {'total':>7} {'peak GB':>8} {'nc MB':>6} {'steps':>6} "
            f"{'ESS did':>7} {'load':>5}  DiD (true -0.100)")
    print(head, flush=True)
    for wards, periods in parse_sizes(args.sizes):
        if args.cold:
            with tempfile.TemporaryDirectory(prefix="nbdid-cache-") as cache:
                r = run_one(wards, periods, args, cache)
        else:
            r = run_one(wards, periods, args, None)
        r["post_s"] = r["fit_s"] - r["compile_s"] - r["sampling_s"]
        r["total_s"] = r["panel_s"] + r["fit_s"] + r["write_s"]
        rows.append(r)
        if args.json:
            with open(args.json, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(r) + "\n")
        print(f"{r['wards']:>6} {r['periods']:>3} {r['rows']:>7} {r['panel_s']:>6.1f} "
              f"{r['compile_s']:>8.1f} {r['sampling_s']:>7.1f} {r['post_s']:>6.1f} "
              f"{r['write_s']:>6.1f} {r['total_s']:>7.1f} {r['peak_gb']:>8.2f} "
              f"{r['nc_mb']:>6.1f} {r['steps']:>6.1f} {r['did_ess']:>7.0f} {r['load']:>5.1f}  "
              f"{r['did_mean']:+.3f} [{r['did_lo']:+.3f}, {r['did_hi']:+.3f}] "
              f"{r['gate']}", flush=True)

    two = sorted((r for r in rows if r["periods"] == 2), key=lambda r: r["wards"])
    if len(two) >= 2:
        a, b = two[-2], two[-1]
        dw = b["wards"] - a["wards"]
        print(f"\ngrowth per ward ({a['wards']} -> {b['wards']} wards, 2 periods): "
              f"{(b['total_s'] - a['total_s']) / dw * 1000:.1f} ms and "
              f"{(b['peak_gb'] - a['peak_gb']) / dw * 1e3:.2f} MB a ward; "
              f"post-processing is {b['post_s'] / max(b['fit_s'], 1e-9):.0%} of the fit at "
              f"{b['wards']} wards")
    print("\ntargets:")
    for r in rows:
        if r["wards"] >= 7000:
            limit = 300 if r["periods"] == 2 else 1200
            print(f"  {r['wards']} wards x {r['periods']}: {r['total_s']:.0f} s "
                  f"(target {limit} s, ratio {r['total_s'] / limit:.2f}); peak "
                  f"{r['peak_gb']:.2f} GB (target 4 GB, ratio {r['peak_gb'] / 4:.2f})")
    if not any(r["wards"] >= 7000 for r in rows):
        print("  (no national-size row: add allx2 / allx11 to --sizes)")


if __name__ == "__main__":
    main()
