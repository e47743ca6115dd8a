"""``nbdid fit``: fit the Bayesian DiD model of one indicator of a panel.

Writes ``OUT/KEY.nc`` (the InferenceData with the design and provenance) and
``OUT/summary.csv`` (estimands with the diagnostics gate).
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys

from nbdid.config import PRIOR_KEYS, ModelConfig, RunConfig, SamplerConfig, from_dict, load_config
from nbdid.errors import InputError
from nbdid.families import FAMILY_CHOICES, resolve_family
from nbdid.outputs import check_out_dir, open_out_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``fit`` sub-command."""
    p = subparsers.add_parser(
        "fit",
        help="fit the Bayesian DiD model of one indicator",
        description=(
            "Fit the hierarchical Bayesian difference-in-differences model of one indicator "
            "of a ward panel; writes OUT/KEY.nc (posterior) and OUT/summary.csv. Count "
            "and rate indicators report the DiD under multiplicative parallel trends (did; "
            "the log/logit link) and under additive ones (did_additive, natural scale). "
            "Which model terms the panel can identify is decided from it and printed."
        ),
    )
    p.add_argument("--data", required=True, metavar="PANEL.csv", help="tidy ward panel (CSV)")
    p.add_argument("--indicator", required=True, metavar="KEY", help="indicator key to fit")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--family", choices=FAMILY_CHOICES,
                   help="likelihood family (required for keys not in the registry); "
                        "gaussian: a continuous outcome in column value (optional n, and sd = a "
                        "known SD of each value), DiD in the outcome's units")
    p.add_argument("--no-pairs", action="store_true", help="no matched-pair effects")
    p.add_argument("--event-study", action="store_true",
                   help="one treatment effect per period (panels with > 2 periods)")
    p.add_argument("--lower-is-better", action="store_true", default=None,
                   help="a fall is an improvement (for keys not in the registry)")
    p.add_argument("--prior", action="append", default=[], metavar="KEY=DIST(...)",
                   help="set a prior, e.g. --prior did=normal(0,2.5) or "
                        "--prior sigma_ward=inverse_gamma_precision(0.001,0.001) (repeatable); "
                        f"keys: {', '.join(PRIOR_KEYS)}; distributions: normal(mu,sigma), "
                        "student_t(nu,mu,sigma), halfnormal(sigma), half_student_t(nu,sigma), "
                        "exponential(rate), inverse_gamma_precision(shape,rate); unset priors "
                        "are weakly informative on the data's scale (docs/models.md)")
    p.add_argument("--covariates", metavar="A,B",
                   help="panel columns to adjust for (ward-level or ward-period; standardised; "
                        "a main effect and an interaction with post each)")
    p.add_argument("--interact", metavar="A,B",
                   help="covariates that also modify the DiD (covariate x treatment x post), "
                        "reported as did_modification:NAME")
    p.add_argument("--shared-change-sd", action="store_true",
                   help="one SD of ward changes for both groups (default: one per group)")
    p.add_argument("--no-ward-change", action="store_true",
                   help="no ward-specific change after the initiative")
    p.add_argument("--loo-wards", action="store_true",
                   help="also run leave-one-ward-out cross-validation (one warm refit per "
                        "ward; writes OUT/KEY_loo_wards.csv; or [diagnostics] loo_wards = true)")
    p.add_argument("--config", metavar="FILE", help="TOML config file (see 'nbdid config')")
    p.add_argument("--draws", type=int, metavar="N", help="posterior draws per chain")
    p.add_argument("--tune", type=int, metavar="N", help="warm-up iterations per chain")
    p.add_argument("--chains", type=int, metavar="N", help="number of chains")
    p.add_argument("--seed", type=int, metavar="N", help="random seed (same seed, same numbers)")
    p.add_argument("--backend", choices=("nutpie", "pymc"),
                   help="sampler: nutpie (default, compiled once) or PyMC's NUTS")
    p.add_argument("--mass-matrix", dest="mass_matrix", choices=("diag", "low_rank"),
                   help="nutpie's mass matrix: diag (default) or low_rank (nutpie's low-rank "
                        "update; docs/scale.md compares them)")
    p.add_argument("--national", action="store_true",
                   help="the national preset for a panel of every ward (e.g. from 'nbdid data "
                        "national'): no pairs, the IMD covariates with their post "
                        "interactions, mean-level sampling, 4 x 1,000 draws after 500 "
                        "warm-up steps, per-ward LOO; other flags still override "
                        "(docs/scale.md)")
    p.add_argument("--force", action="store_true", help="overwrite existing results")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=run_fit)


def fit_config(args: argparse.Namespace) -> RunConfig:
    """The config file's settings with the command line's overrides (checked like a
    config file's values, naming the option)."""
    cfg = load_config(args.config)
    if args.national:
        # imported here: the national preset lives in the workflow layer
        from nbdid.workflow.national import national_config

        cfg = national_config(cfg)
    over = {k: getattr(args, k) for k in ("draws", "tune", "chains", "seed", "backend",
                                             "mass_matrix")
            if getattr(args, k) is not None}
    sampler = from_dict(SamplerConfig, {**dataclasses.asdict(cfg.sampler), **over}, prefix="--")
    model = cfg.model
    if args.no_pairs:
        model = dataclasses.replace(model, pair_effects=False)
    if args.event_study:
        model = dataclasses.replace(model, event_study=True)
    if args.shared_change_sd:
        model = dataclasses.replace(model, group_change_sd=False)
    if args.no_ward_change:
        model = dataclasses.replace(model, ward_change=False)
    if args.loo_wards:
        cfg = dataclasses.replace(cfg, diagnostics=dataclasses.replace(cfg.diagnostics, loo_wards=True))
    priors = {k: str(v) for k, v in model.priors.given().items()}
    for item in args.prior:
        key, sep, spec = item.partition("=")
        if not sep or not key.strip() or not spec.strip():
            raise InputError(f"--prior {item!r}: use KEY=DIST(...), e.g. --prior did=normal(0,2.5)")
        priors[key.strip()] = spec.strip()
    data = {"priors": priors,
            "covariates": _names(args.covariates) if args.covariates is not None else list(model.covariates),
            "interact": _names(args.interact) if args.interact is not None else list(model.interact)}
    checked = from_dict(ModelConfig, data, prefix="--")
    model = dataclasses.replace(model, priors=checked.priors, covariates=checked.covariates,
                                interact=checked.interact)
    return dataclasses.replace(cfg, sampler=sampler, model=model)


def _names(text: str) -> list[str]:
    return [c.strip() for c in text.split(",") if c.strip()]


def run_fit(args: argparse.Namespace) -> int:
    """Handler of ``nbdid fit``."""
    key = args.indicator
    if not re.fullmatch(r"[A-Za-z0-9_.-]+", key):
        raise InputError(f"indicator key '{key}' may only contain letters, digits, _ . -")
    cfg = fit_config(args)
    lowo = cfg.diagnostics.loo_wards  # --loo-wards or [diagnostics] loo_wards = true
    choice = resolve_family(key, args.family or cfg.families.get(key))
    quiet = args.quiet

    def say(msg: str) -> None:
        if not quiet:
            print(f"nbdid fit: {msg}", file=sys.stderr, flush=True)

    # imported here: reading a panel and fitting load pandas, PyMC and ArviZ (seconds)
    from nbdid.data_prep.schema import read_panel
    from nbdid.workflow.fit import fit, fit_outputs, save_fit

    # results already in --out are refused before anything else (nothing is created)
    check_out_dir(args.out, fit_outputs(key, loo_wards=lowo), force=args.force)
    say(f"reading {args.data}")
    # the panel next: a bad panel leaves no output folder behind
    panel = read_panel(args.data, families={key: choice.name}, covariates=cfg.model.covariates,
                       bounds=cfg.bounds)
    # one writer per folder; unfinished until both files are written
    with open_out_dir(args.out, fit_outputs(key, loo_wards=lowo), force=args.force,
                      command="fit") as session:
        out = session.folder
        if session.previous is not None:
            say(f"note: {out} holds the files of an earlier command that did not finish; "
                "they are replaced")
        say(f"fitting {key} ({args.family or choice.name}, {cfg.sampler.backend}, "
            f"{cfg.sampler.chains} chains x {cfg.sampler.draws} draws)")
        res = fit(panel, key, config=cfg, family=args.family,
                  lower_is_better=args.lower_is_better, validate=False, quiet=quiet)
        save_fit(res, out, force=args.force)
    # printed whatever --quiet says: the structure the panel allowed, the priors and
    # every diagnostic flag belong with the numbers
    print(res.text())
    say(f"wrote {', '.join(str(out / f) for f in fit_outputs(key, loo_wards=lowo))}; "
        f"diagnostics: {res.gate}")
    if res.synthetic:
        say("note: the data are SYNTHETIC (see the 'notice' column)")
    return 0
