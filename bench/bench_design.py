"""Benchmark of ``nbdid design`` (not a test): ``python bench/bench_design.py``.

Two measurements, chosen with the options (both by default):

``--time``
    Runs :func:`nbdid.workflow.design.design` on the local executor (``--workers``,
    default 2) for ``--indicators`` at ``--areas`` with ``--sims`` simulated studies
    per size (heterogeneity given as fixed values, so that no default-panel fit is
    timed; the refits are the same whatever the source), one true effect plus the
    no-effect studies (frequentist only).  Prints the wall time, the machine's load
    average before and after, the compilations, and per size the median time of one
    simulated study (simulation + frequentist twin + refit, and the refit alone).
    From these it projects the target job -- 200 simulations x 4 sizes (29, 75, 150,
    350) x 7 indicators -- on this machine: per-study times x 200 x 7 / workers, plus
    one compilation per indicator and size.  Sizes not measured are extrapolated with
    a line in the number of areas through the measured ones (a scaled-down run, e.g.
    ``--sims 20 --areas 29,75 --indicators crime,burglary``, is enough for a
    projection).  Target: under 60 minutes.

``--check``
    Are cheap sampler settings good enough?  Simulates ``--check-sims`` crime studies at
    ``--check-areas`` matched pairs and a true rate ratio of 0.85 (heterogeneity from the
    tipping point), fits each with a reference of 4 chains x 1,000 draws after 1,000
    tuning steps and with each of ``--check-samplers`` (default: the design default
    :data:`nbdid.config.DESIGN_SAMPLER`, 1 chain x 400 draws after 300 tuning steps,
    and a lighter 1 x 200 / 200), and compares the assurances (share of studies with
    P(benefit) > 0.95, and with the 95% interval excluding zero) on the *same* panels:
    the paired difference and its Monte Carlo SE, the share of studies whose decision
    differs, and the differences in P(benefit) and in the posterior mean.

The machine is shared: the load average is printed with every number, and the lead
reruns this on an idle machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import tempfile
import time
import warnings

import numpy as np
import pandas as pd

TARGET_SIMS, TARGET_AREAS, TARGET_INDICATORS = 200, (29, 75, 150, 350), 7
REFERENCE_TEXT = "4x1000/1000@0.9"


def load() -> str:
    a, b, c = os.getloadavg()
    return f"load average {a:.1f} / {b:.1f} / {c:.1f} on {os.cpu_count()} cores"


def timing(args: argparse.Namespace) -> None:
    from nbdid.config import DesignConfig
    from nbdid.workflow.design import design

    areas = tuple(int(a) for a in args.areas.split(","))
    keys = tuple(args.indicators.split(","))
    cfg = DesignConfig(indicators=keys, areas=areas, effects=(0.9,), sims=args.sims,
                       sigma_change=0.3)
    print(f"[time] {len(keys)} indicator(s) x sizes {areas} x {args.sims} simulations, sampler "
          f"{cfg.sampler.chains} chain x {cfg.sampler.draws} draws (+{cfg.sampler.tune} tune), "
          f"{args.workers} local workers; {load()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        res = design(cfg, tmp, workers=args.workers, progress=True, bootstrap=50)
        wall = time.perf_counter() - t0
    print(f"[time] wall {wall:.0f} s (simulations {res.info['simulation_seconds']:.0f} s); {load()}")
    print(f"[time] {res.info['bayes_fits']:,} Bayesian refits, {res.info['tasks']} tasks")
    project(res.simulations, areas, keys, args.workers, wall, args.sims)


def from_simulations(args: argparse.Namespace) -> None:
    """The projection from the ``simulations.csv`` of an earlier ``nbdid design`` run."""
    s = pd.read_csv(args.from_sims)
    areas = tuple(int(a) for a in sorted(s["areas"].unique()))
    keys = tuple(dict.fromkeys(s["indicator"]))
    sims = int(s["sim"].max()) + 1
    wall = float("nan")
    if args.wall:
        wall = float(args.wall)
    print(f"[time] from {args.from_sims}: {len(keys)} indicator(s) x sizes {areas} x {sims} "
          f"simulations, assumed {args.workers} workers; {load()} now (not during that run)")
    project(s, areas, keys, args.workers, wall, sims)


def project(s: pd.DataFrame, areas: tuple[int, ...], keys: tuple[str, ...], workers: int,
            wall: float, sims: int) -> None:
    """Per-size study and refit times of ``s`` (simulations.csv rows), and the projection
    of the target job."""
    bayes = s[np.isfinite(s["prob_benefit"])]
    # a worker's first refit of a structure includes its compilation
    first = bayes.groupby(["indicator", "areas"])["fit_seconds"].transform("max")
    compiles = bayes[bayes["fit_seconds"] == first]
    warm = bayes[bayes["fit_seconds"] != first]
    per_study = s.groupby(["indicator", "areas", "sim"])["seconds"].sum().reset_index()
    # studies whose refit compiled the model are not typical (unless nothing else is left)
    key = ["indicator", "areas", "sim"]
    compiled = per_study.merge(compiles[key].drop_duplicates(), on=key, how="left", indicator=True)
    typical = per_study[(compiled["_merge"] == "left_only").to_numpy()]
    if typical["areas"].nunique() == per_study["areas"].nunique():
        per_study = typical
    rows = []
    for a in areas:
        ps = per_study[per_study["areas"] == a]["seconds"]
        wf = warm[warm["areas"] == a]["fit_seconds"]
        rows.append({"areas": a, "study_s": float(ps.median()), "refit_s": float(wf.median()),
                     "compile_s": float(compiles[compiles["areas"] == a]["fit_seconds"].median())})
    t = pd.DataFrame(rows)
    print(t.to_string(index=False, float_format=lambda x: f"{x:.2f}"))
    print("  study_s: one simulated study at both effects (simulate, 4 frequentist methods each, one "
          "refit; studies with a compilation left out); refit_s: a warm refit; compile_s: a worker's first refit (with compilation)")
    study_at, how = per_study_seconds(t)
    per_indicator = float(sum(study_at(a) for a in TARGET_AREAS))
    workers = max(workers, 1)
    study = per_indicator * TARGET_SIMS * TARGET_INDICATORS / workers
    compile_ = float(np.nanmean(t["compile_s"])) * len(TARGET_AREAS) * TARGET_INDICATORS / workers
    total = (study + compile_) / 60
    print(f"[time] per-study seconds at the target sizes ({how}): "
          + ", ".join(f"{a}: {study_at(a):.2f}" for a in TARGET_AREAS))
    print(f"[time] projected {TARGET_SIMS} sims x {len(TARGET_AREAS)} sizes x {TARGET_INDICATORS} "
          f"indicators on {workers} workers: {total:.0f} min ({study / 60:.0f} min of studies "
          f"+ {compile_ / 60:.0f} min of compilation; target < 60 min) at this load "
          f"(measured on {', '.join(keys)}; other indicators assumed alike)")
    print(f"[time] measured wall x scale-up: {wall / 60:.1f} min x "
          f"{TARGET_SIMS * TARGET_INDICATORS * per_indicator / max(sims * len(keys) * float(sum(study_at(a) for a in areas)), 1e-9):.1f}"
          " (the scale-up ignores compilation, which does not grow with the number of studies)")


def per_study_seconds(t: pd.DataFrame):
    """Seconds of one simulated study as a function of the number of matched sets.

    Measured sizes are used as they are; other sizes come from a least-squares line
    ``a + b * areas`` through the measured ones (cost grows with the panel's rows), or
    proportional scaling from a single measured size.
    """
    x = t["areas"].to_numpy(float)
    y = t["study_s"].to_numpy(float)
    measured = dict(zip(x.astype(int), y, strict=True))
    if len(x) >= 2:
        b, a = np.polyfit(x, y, 1)
        b = max(b, 0.0)
        a = float(np.mean(y - b * x))
        how = f"measured at {sorted(measured)}, others from a + b*areas, a={a:.2f} s, b={b:.4f} s"
    else:
        a, b = 0.0, float(y[0] / x[0])
        how = f"measured at {int(x[0])} only, others proportional to areas"

    def at(areas: int) -> float:
        return float(measured.get(areas, max(a + b * areas, 0.0)))

    return at, how


def _sampler(text: str):
    """``"400/300"`` -> 1 chain x 400 draws after 300 tuning steps; ``"4x1000/1000"``;
    ``"400/300@0.8"`` with target acceptance 0.8 (default: the design sampler's)."""
    from nbdid.config import DESIGN_SAMPLER

    text, _, accept = text.partition("@")
    chains, _, rest = text.rpartition("x")
    draws, tune = rest.split("/")
    return dataclasses.replace(DESIGN_SAMPLER, draws=int(draws), tune=int(tune),
                               chains=int(chains or 1),
                               target_accept=float(accept or DESIGN_SAMPLER.target_accept))


def check(args: argparse.Namespace) -> None:
    from nbdid.analysis import assurance as asr
    from nbdid.config import DesignConfig, ModelConfig
    from nbdid.workflow import design as wd
    from nbdid.workflow.sweep import worker_cache

    cfg = DesignConfig(indicators=("crime",), areas=(args.check_areas,), effects=(0.85,),
                       sims=args.check_sims, from_tipping=True)
    het = wd.load_heterogeneity(cfg)
    tasks, _ = wd.build_tasks(cfg, het, ModelConfig())
    names = ["reference", *args.check_samplers.split(",")]
    samplers = {n: _sampler(n if n != "reference" else REFERENCE_TEXT) for n in names}
    print(f"[check] {args.check_sims} crime studies, {args.check_areas} pairs, rate ratio 0.85, "
          f"heterogeneity from the tipping point; samplers (chains x draws / tune): reference "
          f"{REFERENCE_TEXT}, {', '.join(names[1:])}; {load()}", flush=True)
    rows = []
    seconds = dict.fromkeys(names, 0.0)
    for task in tasks:
        for i, sim in enumerate(task.sims):
            panel = wd.simulate(task, i, task.effects[1])
            row = {"sim": sim}
            for n, smp in samplers.items():
                t0 = time.perf_counter()
                out = wd._bayes(dataclasses.replace(task, sampler=smp), panel, task.seeds[i])
                if sim > 0:  # the first fit includes the compilation
                    seconds[n] += time.perf_counter() - t0
                row.update({f"{n}_{k}": v for k, v in out.items()})
            rows.append(row)
            if (sim + 1) % 10 == 0:
                print(f"[check] {sim + 1} studies done; {load()}", flush=True)
    d = pd.DataFrame(rows)
    n = len(d)
    print(f"[check] {worker_cache().compile_count} compilation(s); mean refit: "
          + ", ".join(f"{k} {v / max(n - 1, 1):.2f} s" for k, v in seconds.items()) + f"; {load()}")

    def decisions(name: str, kind: str) -> pd.Series:
        if kind == "P(benefit) > 0.95":
            return (d[f"{name}_prob_benefit"] > 0.95).astype(float)
        return ((d[f"{name}_bayes_upper"] < 0) | (d[f"{name}_bayes_lower"] > 0)).astype(float)

    for kind in ("P(benefit) > 0.95", "interval excludes 0"):
        ref = decisions("reference", kind)
        _, se_ref, _ = asr.proportion(ref)
        print(f"[check] assurance ({kind}): reference {ref.mean():.3f} (its MC SE at {n} studies: "
              f"{se_ref:.3f})")
        for name in names[1:]:
            a = decisions(name, kind)
            diff = a - ref
            se_diff = float(diff.std(ddof=1) / math.sqrt(n))
            print(f"[check]   {name}: {a.mean():.3f}; paired difference {diff.mean():+.3f} (MC SE "
                  f"{se_diff:.3f}); decisions differ in {100 * (diff != 0).mean():.1f}% of studies")
    for name in names[1:]:
        gap = (d[f"{name}_prob_benefit"] - d["reference_prob_benefit"]).abs()
        mgap = (d[f"{name}_bayes_estimate"] - d["reference_bayes_estimate"]).abs()
        print(f"[check] {name}: |P(benefit) - reference| median {gap.median():.4f}, max "
              f"{gap.max():.4f}; |posterior mean - reference| median {mgap.median():.4f} (link "
              f"scale, posterior SD median {d['reference_bayes_sd'].median():.3f}); divergences in "
              f"{(d[f'{name}_divergences'] > 0).mean():.1%} of fits; ESS of the DiD median "
              f"{d[f'{name}_ess_did'].median():.0f}")


def main() -> int:
    """Run the benchmark and print the measurements."""
    warnings.simplefilter("ignore")
    from nbdid.runtime import ignore_environment_notices

    ignore_environment_notices()
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--time", action="store_true", help="only the timing")
    p.add_argument("--check", action="store_true", help="only the sampler check")
    p.add_argument("--sims", type=int, default=10)
    p.add_argument("--areas", default="29,75,150,350")
    p.add_argument("--indicators", default="crime")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--from-sims", metavar="CSV",
                   help="no run: project from the simulations.csv of an earlier nbdid design")
    p.add_argument("--wall", type=float, metavar="S", help="with --from-sims: that run's wall seconds")
    p.add_argument("--check-sims", type=int, default=100)
    p.add_argument("--check-areas", type=int, default=29)
    p.add_argument("--check-samplers", default="400/300,200/200",
                   help="sampler settings to compare with the reference: "
                        "CHAINSxDRAWS/TUNE[@TARGET_ACCEPT], ...")
    args = p.parse_args()
    if args.from_sims:
        from_simulations(args)
        return 0
    both = not (args.time or args.check)
    if args.time or both:
        timing(args)
    if args.check or both:
        check(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
