"""``nbdid compare``: the frequentist analyses beside the posterior, one table per panel."""

from __future__ import annotations

import argparse
from pathlib import Path

from nbdid.cli._common import parse_families, progress
from nbdid.config import FrequentistConfig, load_config, with_settings
from nbdid.errors import InputError
from nbdid.families import FAMILY_CHOICES, base_name
from nbdid.outputs import open_out_dir

DEFAULT_OUT = "nbdid-compare"
RI_DRAWS_HELP = str(FrequentistConfig().ri_draws)
"""``--ri-draws`` default shown in the help."""


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
                   help="family (" + ", ".join(FAMILY_CHOICES) + ") of an indicator that is not in the registry")
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
                   help="seed of the randomization draws (default: the config's [frequentist] ri_seed)")
    p.set_defaults(func=run_compare)


def run_compare(args: argparse.Namespace) -> int:
    """Handler of ``nbdid compare``."""
    cfg = load_config(args.config)
    families = parse_families(args.family)
    # imported here: the workflow loads statsmodels, PyMC and matplotlib (seconds)
    from nbdid.data_prep.schema import read_panel
    from nbdid.data_prep.synthetic import load_default_panel
    from nbdid.workflow.compare import COMPARE_FILES, compare

    # the options are checked like the config file's [frequentist] values
    with_settings(cfg.frequentist, flags={"ri_draws": "--ri-draws", "ri_seed": "--seed"},
                  ri_draws=args.ri_draws, ri_seed=args.seed)
    if args.data is None:
        panel, source = load_default_panel(), "embedded synthetic default panel"
    else:
        panel = read_panel(args.data, families={k: base_name(v) for k, v in families.items()} or None)
        source = str(args.data)
    from nbdid.analysis.concordance import panel_keys

    present = panel_keys(panel)
    unknown = [k for k in (args.indicators or []) if k not in present]
    if unknown:
        raise InputError(f"the panel has no rows for {', '.join(unknown)} (it has {', '.join(present)})",
                         file=args.data)
    posteriors = args.posteriors
    if posteriors is not None:  # a bad --posteriors folder fails before any work
        from nbdid.workflow.compare import read_summaries

        read_summaries(posteriors, args.indicators or present)
    # one writer per folder; marked unfinished until its last file
    with open_out_dir(args.out, COMPARE_FILES, force=args.force, command="compare"):
        res = compare(panel, indicators=args.indicators, families=families, posteriors=posteriors,
                      fit=not args.no_posterior, config=cfg, ri_draws=args.ri_draws, seed=args.seed,
                      source=source, progress=progress)
        if not args.no_posterior:
            for key, msg in res.info["posterior_notes"].items():
                progress(f"nbdid compare: {key}: {msg}")
        out = res.save(args.out, force=args.force)
    print(res.text())
    print("")
    print(f"Results in {Path(out)}/ (finished in {res.info['seconds']:.0f} s):")
    print("  concordance.csv           every method's DiD, 95% interval, p-value per indicator")
    print("  concordance_summary.csv   which methods call each difference significant")
    print("  concordance_groups.csv    the report's pooled group values vs Tables 5A-11A")
    print("  figures/concordance.png   every method's interval with the published interval (.svg too)")
    print("  compare_info.json         provenance")
    return 0
