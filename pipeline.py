"""``nbdid run`` (the main job) and ``nbdid config``.

``nbdid run`` replicates the report's method from its published numbers, fits the
hierarchical Bayesian DiD model of every configured indicator to the ward panel (the
embedded synthetic default unless the config names one), and writes:

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
    provenance of the run.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from nbdid.config import RunConfig, load_config, to_toml


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``run`` and ``config`` sub-commands."""
    p = sub.add_parser(
        "run",
        help="the main job: replicate the report and fit every indicator",
        description=(
            "Replicate the report's method and fit the hierarchical Bayesian DiD model of all "
            "seven indicators on the embedded synthetic default panel (or the panel a config "
            "names); write comparison tables, figures and posteriors."
        ),
    )
    p.add_argument("--config", metavar="FILE", help="TOML config file (see 'nbdid config')")
    p.add_argument("--out", metavar="DIR", help="output folder (default: the config's 'out', nbdid-results)")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.set_defaults(func=run_main)

    c = sub.add_parser(
        "config",
        help="print the default configuration as TOML",
        description="Print the default configuration (every default nbdid uses) as an editable TOML file.",
    )
    c.set_defaults(func=_print_config)


def _print_config(args: argparse.Namespace) -> int:
    print(to_toml(RunConfig()), end="")
    return 0


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def output_names(indicators: tuple[str, ...]) -> list[str]:
    """Every file ``nbdid run`` writes, relative to the output folder."""
    from nbdid.analysis.commands import REPLICATE_FIGURES, REPLICATE_TABLES

    names = [f"replication/{n}" for n in REPLICATE_TABLES]
    names += [f"figures/{n}" for n in REPLICATE_FIGURES]
    names += ["comparison.csv", "summary.csv", "trajectories.csv", "diagnostics.csv",
              "run_info.json", "figures/forest.png", "figures/forest.svg",
              "figures/diagnostics.png"]
    names += [f"posteriors/{k}.nc" for k in indicators]
    names += [f"figures/trajectory_{k}.png" for k in indicators]
    from nbdid.analysis.compare_commands import CONCORDANCE_FILES

    names += list(CONCORDANCE_FILES)  # frequentist analyses beside the posterior
    return names


def run_main(args: argparse.Namespace) -> int:
    """Handler of ``nbdid run``."""
    import pandas as pd

    from nbdid.analysis.commands import format_report, replicate, write_replication_figures
    from nbdid.analysis.comparison import compare, forest_data
    from nbdid.data_prep.published import load_report_values
    from nbdid.errors import InputError, ModelError
    from nbdid.outputs import prepare_out_dir, write_csv, write_figure, write_netcdf, write_text
    from nbdid.provenance import SYNTHETIC_NOTICE, hash_frame, package_versions

    t_start = time.perf_counter()
    cfg = load_config(args.config)
    indicators = tuple(cfg.indicators)
    # inputs first: nothing touches the output folder until they are known to be good
    if cfg.panel is None:
        from nbdid.data_prep.synthetic import load_default_panel

        panel = load_default_panel()
        source = "embedded synthetic default panel"
    else:
        from nbdid.data_prep.schema import read_panel

        panel = read_panel(cfg.panel)
        source = cfg.panel
    present = set(panel["indicator"].astype(str))
    missing = [k for k in indicators if k not in present]
    if missing:
        raise InputError(
            f"the panel has no rows for {', '.join(missing)}; set 'indicators' in the config",
            file=cfg.panel,
        )
    synthetic = bool(panel["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in panel else False
    out = prepare_out_dir(args.out or cfg.out, output_names(indicators), force=args.force)
    for sub in ("replication", "posteriors", "figures"):
        (out / sub).mkdir(exist_ok=True)
    if synthetic:
        _progress(f"NOTE: {SYNTHETIC_NOTICE}.")
    _progress(f"Panel: {source} ({len(panel)} rows, {panel['ward'].nunique()} wards)")

    # 1. the report's own method, from its published numbers
    tables = replicate(indicators)
    for name, df in tables.items():
        write_csv(df, out / "replication" / name)
    write_replication_figures(tables, out / "figures")
    _progress("[replication] Table 1 and B tables recomputed from the published values")

    # 2. one hierarchical model per indicator; compiled once per structure
    from nbdid.models.fit import fit_indicator
    from nbdid.models.sampling import shared_cache

    cache = shared_cache()
    summaries, fits, failures = {}, {}, {}
    for i, key in enumerate(indicators, 1):
        t0 = time.perf_counter()
        _progress(f"[{i}/{len(indicators)}] fitting {key} ...")
        try:
            res = fit_indicator(panel, key, config=cfg, compiled_cache=cache, quiet=True)
        except ModelError as err:
            failures[key] = str(err)
            _progress(f"[{i}/{len(indicators)}] {key}: cannot be fitted: {err}")
            continue
        write_netcdf(res.idata, out / "posteriors" / f"{key}.nc")
        summaries[key], fits[key] = res.summary, res
        gate = res.diagnostics["gate"].iloc[0]
        _progress(f"[{i}/{len(indicators)}] {key}: done in {time.perf_counter() - t0:.1f} s, diagnostics {gate}")

    if fits:
        summary = pd.concat([f.summary for f in fits.values()], ignore_index=True)
        traj = pd.concat([f.trajectories for f in fits.values()], ignore_index=True)
        diag = pd.concat([f.diagnostics for f in fits.values()], ignore_index=True)
        comp = compare(summaries)
        write_csv(summary, out / "summary.csv")
        write_csv(traj, out / "trajectories.csv")
        write_csv(diag, out / "diagnostics.csv")
        write_csv(comp, out / "comparison.csv")

        # 3. figures
        import matplotlib

        matplotlib.use("Agg", force=False)
        from nbdid.figures import plot_diagnostics, plot_forest, plot_trajectories

        fig = plot_forest(forest_data(comp), synthetic=synthetic)
        write_figure(fig, out / "figures" / "forest.png")
        write_figure(fig, out / "figures" / "forest.svg")
        vals = load_report_values()
        for key, res in fits.items():
            t = res.trajectories.rename(columns={"q2.5": "lower", "q97.5": "upper"})
            fig = plot_trajectories(
                t, report=vals[vals.indicator == key] if key in set(vals.indicator) else None,
                gate=res.diagnostics["gate"].iloc[0], synthetic=synthetic,
            )
            write_figure(fig, out / "figures" / f"trajectory_{key}.png")
        fig = plot_diagnostics(diag, synthetic=synthetic)
        write_figure(fig, out / "figures" / "diagnostics.png")

    # 3b. concordance: the report's pooled method, a clustered GLM, randomization
    # inference and a paired t-test on the same panel, beside the fits made above
    from nbdid.analysis.compare_commands import write_concordance

    _, conc_summary, _ = write_concordance(
        out, panel, indicators, summaries=summaries,
        posterior_notes={k: f"not computed: the Bayesian model cannot be fitted: {m}"
                         for k, m in failures.items()},
        draws=cfg.frequentist.ri_draws, seed=cfg.frequentist.ri_seed,
    )
    _progress("[concordance] frequentist analyses beside the posterior written")

    info = {
        "panel": source,
        "panel_sha256": hash_frame(panel),
        "synthetic": synthetic,
        "notice": SYNTHETIC_NOTICE if synthetic else "",
        "seed": cfg.sampler.seed,
        "config": to_toml(cfg),
        "versions": package_versions(),
        "fitted": sorted(fits),
        "failed": failures,
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    write_text(json.dumps(info, indent=2) + "\n", out / "run_info.json")

    # 4. tell the user what was found and where everything is
    print(format_report(tables))
    if fits:
        print("")
        if synthetic:
            print(f"*** {SYNTHETIC_NOTICE} ***")
        print(format_comparison(comp))
    from nbdid.analysis.concordance import format_summary

    print("")
    print(format_summary(conc_summary))
    print("")
    print(f"Results in {Path(out)}/ (finished in {info['seconds']:.0f} s):")
    print("  comparison.csv            report vs posterior, one row per indicator")
    print("  summary.csv               posterior estimands (link, ratio, own unit, percent)")
    print("  trajectories.csv          posterior group values per period")
    print("  diagnostics.csv           R-hat, ESS, divergences, BFMI, PPC and the gate")
    print("  posteriors/KEY.nc         InferenceData per indicator (open with arviz.from_netcdf)")
    print("  figures/                  forest.png/.svg, trajectory_KEY.png, diagnostics.png,")
    print("                            tipping_bayes.png/.svg (published DiDs vs ward variation)")
    print("  replication/              the report's method recomputed (see 'nbdid replicate')")
    print("  concordance*.csv          frequentist methods beside the posterior (figures/concordance.png)")
    if failures:
        for key, msg in failures.items():
            print(f"nbdid run: error: {key}: {msg}", file=sys.stderr)
        return 1
    return 0


def format_comparison(comp) -> str:
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
