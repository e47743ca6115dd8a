"""``nbdid design``: how big must the next evaluation be?  Bayesian assurance and
frequentist power of matched-area designs, by simulation (see ``docs/design.md``)."""

from __future__ import annotations

import argparse
import dataclasses
import sys

from nbdid.config import DESIGN_SAMPLER, DesignConfig, SamplerConfig, SettingError, from_dict
from nbdid.errors import InputError
from nbdid.registry import INDICATOR_KEYS

FLAGS: dict[str, str] = {
    "indicators": "--indicator", "areas": "--areas", "effects": "--effect",
    "unit_effects": "--effect-unit", "sims": "--sims", "matching_ratio": "--matching-ratio",
    "periods": "--periods", "post_periods": "--post-periods", "threshold": "--threshold",
    "target": "--target", "alpha": "--alpha", "ri_draws": "--ri-draws", "seed": "--seed",
    "from_run": "--from-run", "from_tipping": "--from-tipping", "sigma_change": "--sigma-change",
    "sigma_ward": "--sigma-ward", "sigma_pair": "--sigma-pair", "sigma_wp": "--sigma-wp",
}
"""The option of each :class:`~nbdid.config.DesignConfig` field (for error messages)."""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``design`` sub-command."""
    p = sub.add_parser(
        "design",
        help="plan the next evaluation: assurance and power of a matched-area design",
        description=(
            "Simulate studies of several sizes (numbers of matched sets) with the heterogeneity "
            "of a fitted run, refit the Bayesian model and run the frequentist twin on each, and "
            "write the assurance (probability that the posterior P(benefit) exceeds the "
            "threshold), the power of each method, the false-positive rate of the report's pooled "
            "rule, type S/M errors and the minimum detectable effect, with Monte Carlo SEs.  "
            "Finished simulations are written to OUT/cells/ as they complete; a rerun reuses them."
        ),
        epilog=("Effects: --effect 0.9 is a ratio (a 10%% fall); --effect=-10%% says the same "
                "(note the '='); --effect-unit -5 is in the indicator's own unit.  Heterogeneity: "
                "--from-run DIR, --from-tipping, --sigma-change X, or (none of these) a fit of the "
                "SYNTHETIC default panel."),
    )
    p.add_argument("--indicator", action="append", metavar="KEY",
                   help="indicator(s) to design for (repeat or comma-separate; default: all seven)")
    p.add_argument("--areas", metavar="N,N,...", default="29,75,150,350",
                   help="numbers of matched sets (NBI areas) to simulate (default 29,75,150,350)")
    p.add_argument("--effect", action="append", metavar="RATIO",
                   help="true effect as a ratio (rate/odds/price ratio; 0.9 or -10%%); several "
                        "allowed (default 0.9)")
    p.add_argument("--effect-unit", action="append", metavar="X",
                   help="true effect in the indicator's own unit (pp, per 1,000, £); several allowed")
    p.add_argument("--sims", type=int, metavar="N", help="simulated studies per size and effect "
                   "(default 200)")
    p.add_argument("--matching-ratio", type=int, metavar="K",
                   help="benchmark areas per NBI area (default 1: matched pairs)")
    p.add_argument("--periods", type=int, metavar="T", help="number of periods (default 2)")
    p.add_argument("--post-periods", type=int, metavar="P",
                   help="periods after the initiative, the last P (default 1)")
    p.add_argument("--threshold", type=float, metavar="P",
                   help="posterior P(benefit) that counts as detecting a benefit (default 0.95)")
    p.add_argument("--target", type=float, metavar="A",
                   help="assurance/power for the minimum detectable effect (default 0.8)")
    p.add_argument("--seed", type=int, metavar="N", help="random seed")
    p.add_argument("--ri-draws", type=int, metavar="N",
                   help="randomization-inference swap patterns per study (default 1000)")
    het = p.add_argument_group("heterogeneity (one source; default: fit the synthetic default panel)")
    src = het.add_mutually_exclusive_group()
    src.add_argument("--from-run", metavar="DIR",
                     help="a fitted run: DIR/posteriors/KEY.nc (nbdid run) or DIR/KEY.nc (nbdid fit)")
    src.add_argument("--from-tipping", action="store_true",
                     help="the tipping-point posterior of the report's published numbers")
    src.add_argument("--sigma-change", type=float, metavar="SD",
                     help="given SD of ward-specific change (link scale); fixed, not integrated over")
    het.add_argument("--sigma-ward", type=float, metavar="SD", help="with --sigma-change: ward SD")
    het.add_argument("--sigma-pair", type=float, metavar="SD", help="with --sigma-change: set SD")
    het.add_argument("--sigma-wp", type=float, metavar="SD",
                     help="with --sigma-change: ward x period noise SD")
    s = p.add_argument_group("sampler of each simulated study (default: 1 chain, 400 draws, 300 tuning)")
    s.add_argument("--draws", type=int, metavar="N")
    s.add_argument("--tune", type=int, metavar="N")
    s.add_argument("--chains", type=int, metavar="N")
    p.add_argument("--executor", choices=("local", "dask"), default="local",
                   help="local worker processes (default) or an existing Dask cluster")
    p.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler address (with --executor dask)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="local worker processes (default: the number of CPUs; 0: this process)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder")
    p.add_argument("--force", action="store_true", help="overwrite the results of an earlier design")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=design_main)


def _split(values: list[str] | None) -> list[str]:
    return [x.strip() for v in values or [] for x in str(v).split(",") if x.strip()]


def _number(text: str, flag: str, kind: type = float):
    try:
        return kind(text)
    except ValueError:
        raise InputError(f"{flag}: '{text}' is not a {'whole ' if kind is int else ''}number") from None


def _ratio(text: str) -> float:
    """``0.9`` -> 0.9; ``-10%`` -> 0.9."""
    if text.endswith("%"):
        return 1.0 + _number(text[:-1], "--effect") / 100.0
    return _number(text, "--effect")


def design_config(args: argparse.Namespace) -> DesignConfig:
    """The :class:`DesignConfig` of the command line (checked like the Python API's,
    errors naming the option)."""
    values: dict = {}
    keys = _split(args.indicator)
    if keys:
        values["indicators"] = tuple(keys)
    values["areas"] = tuple(_number(a, "--areas", int) for a in _split([args.areas]))
    effects = _split(args.effect)
    units = _split(args.effect_unit)
    if effects or not units:
        values["effects"] = tuple(_ratio(e) for e in effects) if effects else DesignConfig.effects
    if not effects and units:
        values["effects"] = ()
    if units:
        values["unit_effects"] = tuple(_number(u, "--effect-unit") for u in units)
    for name in ("sims", "matching_ratio", "periods", "post_periods", "threshold", "target", "seed",
                 "ri_draws", "from_run", "sigma_change", "sigma_ward", "sigma_pair", "sigma_wp"):
        v = getattr(args, name)
        if v is not None:
            values[name] = v
    if args.from_tipping:
        values["from_tipping"] = True
    if "periods" in values and "post_periods" not in values:
        values["post_periods"] = max(1, values["periods"] // 2)
    over = {k: getattr(args, k) for k in ("draws", "tune", "chains") if getattr(args, k) is not None}
    values["sampler"] = from_dict(SamplerConfig, {**dataclasses.asdict(DESIGN_SAMPLER), **over},
                                  prefix="--")
    try:
        return DesignConfig(**values)
    except SettingError as err:
        raise SettingError(FLAGS.get(err.key, err.key), err.detail) from None


def design_main(args: argparse.Namespace) -> int:
    """Handler of ``nbdid design``."""
    if args.workers is not None and args.workers < 0:
        raise InputError(f"--workers must be 0 (this process) or more, not {args.workers}")
    if args.executor == "dask" and not args.scheduler:
        raise InputError("--executor dask needs --scheduler ADDRESS (e.g. tcp://10.0.0.5:8786)")
    if args.scheduler and args.executor != "dask":
        raise InputError("--scheduler is used only with --executor dask")
    if args.sigma_change is None and any(
            getattr(args, n) is not None for n in ("sigma_ward", "sigma_pair", "sigma_wp")):
        raise InputError("--sigma-ward, --sigma-pair and --sigma-wp need --sigma-change")
    cfg = design_config(args)
    unknown = [k for k in cfg.indicators if k not in INDICATOR_KEYS and cfg.from_run is None]
    if unknown:
        raise InputError(f"--indicator: unknown indicator '{unknown[0]}' "
                         f"(use {', '.join(INDICATOR_KEYS)}, or --from-run for others)")
    quiet = args.quiet

    def say(msg: str) -> None:
        if not quiet:
            print(f"nbdid design: {msg}", file=sys.stderr, flush=True)

    # imported here: the workflow loads PyMC, ArviZ and matplotlib (seconds)
    from nbdid.outputs import open_out_dir
    from nbdid.workflow.design import design, output_names

    # one writer per folder, marked unfinished until the last result file is written
    with open_out_dir(args.out, output_names(cfg.indicators), force=args.force,
                      command="design") as session:
        res = design(cfg, session.folder, force=args.force, executor=args.executor,
                     scheduler=args.scheduler, workers=args.workers, progress=not quiet, say=say)
        folder = res.save(session.folder, force=args.force)
    print(res.text())
    print("Heterogeneity (where the simulated studies' variation comes from):")
    for h in res.heterogeneity.values():
        print(f"  {h.statement()}")
    print(f"\n{res.info['simulations']:,} simulated studies per effect, {res.fitted} tasks run now, "
          f"{res.reused} reused from {folder}/cells/ ({res.seconds:.0f} s)")
    print(f"Results in {folder}/:")
    print("  assurance.csv       assurance, power, false positives, type S/M, MDE (+ Monte Carlo SEs)")
    print("  simulations.csv     one row per simulated study")
    print("  heterogeneity.csv   where each indicator's heterogeneity came from")
    print("  summary.md/.txt     the findings in plain words")
    print("  figures/assurance_KEY.png/.pdf/.svg  assurance curves with the frequentist power")
    if res.synthetic:
        print("nbdid design: note: the heterogeneity comes from SYNTHETIC data (see 'notice')",
              file=sys.stderr)
    errors = res.info.get("studies_with_errors", 0)
    if errors:
        print(f"nbdid design: {errors} simulated studies could not be analysed by some method "
              "(column 'error' of simulations.csv)", file=sys.stderr)
    return 0
