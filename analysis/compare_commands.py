"""``nbdid compare``: the frequentist analyses beside the posterior, one table per panel.

Writes, in the output folder,

``concordance.csv``
    one row per indicator and method (the report's pooled method recomputed from the
    panel, a ward-clustered GLM, randomization inference over pair swaps, a paired
    t-test and the Bayesian posterior): estimate and 95% interval in the indicator's
    unit and on the ratio scale, p-value, significance, notes;
``concordance_summary.csv``
    per indicator, which methods call the difference significant, beside the
    report's published verdict (also printed);
``concordance_groups.csv``
    the report's pooled group values per period recomputed from the panel, beside
    Tables 5A-11A (``value_matches``);
``figures/concordance.png`` / ``.svg``
    every method's interval per indicator with the report's published interval;
``compare_info.json``
    provenance (panel hash, settings, versions).

Heavy imports (PyMC, matplotlib, statsmodels) happen inside the handler.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

from nbdid.errors import InputError

CONCORDANCE_FILES: tuple[str, ...] = (
    "concordance.csv",
    "concordance_summary.csv",
    "concordance_groups.csv",
    "figures/concordance.png",
    "figures/concordance.svg",
)
"""Files :func:`write_concordance` writes (relative to the output folder)."""

COMPARE_FILES: tuple[str, ...] = (*CONCORDANCE_FILES, "compare_info.json")

DEFAULT_OUT = "nbdid-compare"
RI_DRAWS_HELP = "10000"
"""``--ri-draws`` default shown in the help (a test checks it equals ``RI_DRAWS``)."""
SUMMARY_REQUIRED = ("indicator", "estimand", "scale", "mean", "q2.5", "q97.5")


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``compare`` sub-command (defaults are resolved in the handler)."""
    p = sub.add_parser(
        "compare",
        help="frequentist DiD analyses beside the posterior (concordance table)",
        description=(
            "Analyse each indicator of a ward panel with the report's pooled method "
            "(recomputed from the panel), a GLM with ward-clustered standard errors, "
            "randomization inference over matched-pair swaps and a paired t-test, set "
            "beside the Bayesian posterior; write a concordance table, a summary of which "
            "methods call the difference significant, and a figure."
        ),
    )
    p.add_argument("--data", metavar="PANEL.csv",
                   help="tidy ward panel (default: the embedded synthetic default panel)")
    p.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="output folder (default: %(default)s)")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.add_argument("--indicators", nargs="+", metavar="KEY",
                   help="indicator keys (default: every indicator in the panel)")
    p.add_argument("--family", action="append", default=[], metavar="KEY=FAMILY",
                   help="family (binomial, poisson, price) of an indicator that is not in the registry")
    post = p.add_mutually_exclusive_group()
    post.add_argument("--posteriors", metavar="RUN_DIR",
                      help="read the posterior from RUN_DIR/summary.csv of an earlier 'nbdid run' "
                           "(or 'nbdid fit') instead of fitting")
    post.add_argument("--no-posterior", action="store_true",
                      help="no Bayesian fits (the Bayesian rows are left empty, with a note)")
    p.add_argument("--config", metavar="FILE",
                   help="TOML config with the sampler settings of the Bayesian fits (see 'nbdid config')")
    p.add_argument("--ri-draws", type=int, metavar="N",
                   help="random pair-swap patterns when there are too many pairs to enumerate all "
                        f"(default: {RI_DRAWS_HELP})")
    p.add_argument("--seed", type=int, metavar="N",
                   help="seed of the randomization draws (default: nbdid.analysis.frequentist.RI_SEED)")
    p.set_defaults(func=run_compare)


def _progress(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def parse_families(items: Sequence[str]) -> dict[str, str]:
    """``KEY=FAMILY`` options as a dict."""
    out = {}
    for item in items:
        key, sep, fam = item.partition("=")
        if not sep or not key.strip() or fam.strip() not in ("binomial", "poisson", "negbin", "price"):
            raise InputError(f"--family must look like KEY=binomial|poisson|price, not {item!r}")
        out[key.strip()] = fam.strip()
    return out


def read_summaries(path: str | Path, indicators: Sequence[str]) -> tuple[dict, dict]:
    """Fit summaries by indicator from a run folder's ``summary.csv``.

    Returns ``(summaries, notes)``; indicators absent from the file get a note.

    Raises
    ------
    InputError
        If the folder or file is missing or the file lacks the summary columns.
    """
    import pandas as pd

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


def write_concordance(
    out: Path,
    panel,
    indicators: Sequence[str],
    *,
    summaries: Mapping[str, object] | None = None,
    posterior_notes: Mapping[str, str] | None = None,
    families: Mapping[str, str] | None = None,
    draws: int | None = None,
    seed: int | None = None,
):
    """Compute the concordance tables and write :data:`CONCORDANCE_FILES` into ``out``.

    ``out`` must have been checked with :func:`nbdid.outputs.prepare_out_dir`.

    Returns
    -------
    tuple
        ``(concordance, summary, groups)`` DataFrames.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    from nbdid.analysis import frequentist as fq
    from nbdid.analysis.concordance import (
        concordance,
        concordance_groups,
        concordance_summary,
        published_intervals,
    )
    from nbdid.figures import plot_concordance
    from nbdid.outputs import write_csv, write_figure

    conc = concordance(
        panel, indicators, summaries=summaries, posterior_notes=posterior_notes, families=families,
        draws=fq.RI_DRAWS if draws is None else draws, seed=fq.RI_SEED if seed is None else seed,
    )
    summary = concordance_summary(conc)
    groups = concordance_groups(panel, indicators, families=families)
    out = Path(out)
    write_csv(conc, out / "concordance.csv")
    write_csv(summary, out / "concordance_summary.csv")
    write_csv(groups, out / "concordance_groups.csv")
    fig = plot_concordance(conc, published=published_intervals())
    (out / "figures").mkdir(exist_ok=True)
    write_figure(fig, out / "figures" / "concordance.png")
    write_figure(fig, out / "figures" / "concordance.svg")
    return conc, summary, groups


def run_compare(args: argparse.Namespace) -> int:
    """Handler of ``nbdid compare``."""
    from nbdid.analysis import frequentist as fq
    from nbdid.config import load_config, to_toml
    from nbdid.errors import ModelError
    from nbdid.outputs import prepare_out_dir, write_text
    from nbdid.provenance import SYNTHETIC_NOTICE, hash_frame, package_versions

    t_start = time.perf_counter()
    cfg = load_config(args.config)
    args.ri_draws = cfg.frequentist.ri_draws if args.ri_draws is None else args.ri_draws
    args.seed = cfg.frequentist.ri_seed if args.seed is None else args.seed
    if args.ri_draws < 100:
        raise InputError(f"--ri-draws must be at least 100, not {args.ri_draws}")
    families = parse_families(args.family)
    if args.data is None:
        from nbdid.data_prep.synthetic import load_default_panel

        panel = load_default_panel()
        source = "embedded synthetic default panel"
    else:
        from nbdid.data_prep.schema import read_panel

        panel = read_panel(args.data, families={k: ("poisson" if v == "negbin" else v)
                                               for k, v in families.items()} or None)
        source = str(args.data)
    from nbdid.analysis.concordance import _panel_keys

    present = _panel_keys(panel)
    indicators = list(args.indicators) if args.indicators else present
    unknown = [k for k in indicators if k not in present]
    if unknown:
        raise InputError(f"the panel has no rows for {', '.join(unknown)} (it has {', '.join(present)})",
                         file=args.data)
    summaries: dict = {}
    notes: dict = {}
    if args.posteriors:
        summaries, notes = read_summaries(args.posteriors, indicators)
        posterior_source = f"summary.csv of {args.posteriors}"
    elif args.no_posterior:
        notes = {k: "not computed: --no-posterior" for k in indicators}
        posterior_source = "none (--no-posterior)"
    else:
        posterior_source = "fitted here"
    out = prepare_out_dir(args.out, COMPARE_FILES, force=args.force)
    synthetic = bool(panel["synthetic"].fillna(False).astype(bool).any()) if "synthetic" in panel else False
    if synthetic:
        _progress(f"NOTE: {SYNTHETIC_NOTICE}.")
    _progress(f"Panel: {source} ({len(panel)} rows, {panel['ward'].nunique()} wards)")

    if posterior_source == "fitted here":
        from nbdid.models.fit import fit_indicator
        from nbdid.models.sampling import shared_cache

        cache = shared_cache()
        for i, key in enumerate(indicators, 1):
            t0 = time.perf_counter()
            _progress(f"[{i}/{len(indicators)}] fitting {key} ...")
            try:
                res = fit_indicator(panel, key, config=cfg, family=families.get(key),
                                    compiled_cache=cache, quiet=True)
            except ModelError as err:
                notes[key] = f"not computed: the Bayesian model cannot be fitted: {err}"
                _progress(f"[{i}/{len(indicators)}] {key}: cannot be fitted: {err}")
                continue
            summaries[key] = res.summary
            _progress(f"[{i}/{len(indicators)}] {key}: done in {time.perf_counter() - t0:.1f} s, "
                      f"diagnostics {res.diagnostics['gate'].iloc[0]}")
    for key, msg in notes.items():
        if not args.no_posterior:
            _progress(f"nbdid compare: {key}: {msg}")

    _progress("[compare] frequentist analyses ...")
    fam_fq = {k: ("poisson" if v == "negbin" else v) for k, v in families.items()}
    conc, summary, _ = write_concordance(
        out, panel, indicators, summaries=summaries, posterior_notes=notes, families=fam_fq,
        draws=args.ri_draws, seed=args.seed,
    )
    info = {
        "panel": source,
        "panel_sha256": hash_frame(panel),
        "synthetic": synthetic,
        "notice": SYNTHETIC_NOTICE if synthetic else "",
        "indicators": indicators,
        "posterior": posterior_source,
        "randomization": {"draws": args.ri_draws, "seed": args.seed,
                          "exact_up_to_pairs": fq.RI_EXACT_MAX_PAIRS},
        "config": to_toml(cfg) if posterior_source == "fitted here" else "",
        "versions": package_versions(),
        "seconds": round(time.perf_counter() - t_start, 1),
    }
    write_text(json.dumps(info, indent=2) + "\n", out / "compare_info.json")

    from nbdid.analysis.concordance import format_summary

    print(format_summary(summary))
    print("")
    print(f"Results in {Path(out)}/ (finished in {info['seconds']:.0f} s):")
    print("  concordance.csv           every method's DiD, 95% interval, p-value per indicator")
    print("  concordance_summary.csv   which methods call each difference significant")
    print("  concordance_groups.csv    the report's pooled group values vs Tables 5A-11A")
    print("  figures/concordance.png   every method's interval with the published interval (.svg too)")
    print("  compare_info.json         provenance")
    return 0

