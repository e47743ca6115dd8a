"""``nbdid data``: the synthetic default panel, validation, the schema.

``nbdid data default --out PANEL.csv``
    Write the synthetic default panel (regenerated when a seed or heterogeneity
    option is given).
``nbdid data validate PANEL.csv``
    Check a panel against the schema and print a per-group summary.
``nbdid data schema``
    Print the panel schema.
``nbdid data national --out PANEL.csv``
    Write a SYNTHETIC national panel on the real English ward list (every ward of
    the ONS lookup with its IMD 2019 covariates; simulated outcomes).

Parsing and printing only; the work is done by :mod:`nbdid.data_prep`.  Library
imports stay inside the handlers so that ``nbdid --help`` does not load pandas.
"""

from __future__ import annotations

import argparse
import dataclasses
import typing
from typing import Any

from nbdid.cli._common import parse_families
from nbdid.config import GeneratorConfig
from nbdid.families import FAMILY_CHOICES

_METAVARS = {"seed": "N", "pair_corr": "CORR", "population_cv": "CV"}
_GEN_HELP = {
    "seed": "random seed of the regenerated panel",
    "ward_sd_rate": "SD of ward effects on the log rate (Poisson indicators)",
    "change_sd_rate": "SD of ward-specific log-rate changes between the periods",
    "overdispersion_rate": "SD of ward x period log-rate noise",
    "ward_sd_logit": "SD of ward effects on the logit scale (binomial indicators)",
    "change_sd_logit": "SD of ward-specific logit changes",
    "overdispersion_logit": "SD of ward x period logit noise",
    "price_ward_sd": "SD of ward effects on the mean log price",
    "price_within_sd": "SD of log prices within a ward-period",
    "price_change_sd": "SD of ward-specific changes of the mean log price",
    "pair_corr": "correlation of the two wards' effects in a matched pair",
    "population_cv": "coefficient of variation of ward populations",
    "share_sd": "ward variation of working-age/children shares and household size",
}


def _generator_fields() -> list[dataclasses.Field]:
    hints = typing.get_type_hints(GeneratorConfig)
    return [f for f in dataclasses.fields(GeneratorConfig) if hints[f.name] in (int, float)]


def _number_type(f: dataclasses.Field):
    return _number(typing.get_type_hints(GeneratorConfig)[f.name])


def register(subparsers: Any) -> None:
    """Add the ``data`` sub-command."""
    data = subparsers.add_parser(
        "data",
        help="write the synthetic default panel, validate a panel, show the schema",
        description="Ward panel utilities: the synthetic default panel, validation, schema.",
    )
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(data))
    dsub.required = True

    d = dsub.add_parser(
        "default",
        help="write the synthetic default panel (SYNTHETIC data calibrated to the report)",
        description=(
            "Write the synthetic default ward panel: simulated wards calibrated so that each "
            "group's pooled value and CI half-width reproduce the report's Tables 5A-11A. "
            "Every row is marked synthetic=true. With --seed or any heterogeneity option the "
            "panel is regenerated; see docs/synthetic_panel.md."
        ),
    )
    d.add_argument("--out", required=True, metavar="PANEL.csv", help="file to write")
    d.add_argument("--force", action="store_true", help="overwrite an existing file")
    for f in _generator_fields():
        opt = "--" + f.name.replace("_", "-")
        d.add_argument(opt, dest=f"gen_{f.name}", type=_number_type(f), default=None,
                       metavar=_METAVARS.get(f.name, "SD"),
                       help=f"{_GEN_HELP.get(f.name, f.name)} (default {f.default})")
    d.set_defaults(func=_cmd_default)

    v = dsub.add_parser(
        "validate",
        help="check a panel file against the schema and summarise it",
        description="Check a ward panel file against the schema; print a per-group summary.",
    )
    v.add_argument("panel", metavar="PANEL.csv")
    v.add_argument("--family", action="append", default=[], metavar="KEY=FAMILY",
                   help="family (" + ", ".join(FAMILY_CHOICES) + ") of an indicator that is not in the registry")
    v.add_argument("--no-exposure", action="store_true",
                   help="allow count rows without exposure (denominators joined later)")
    v.set_defaults(func=_cmd_validate)

    s = dsub.add_parser("schema", help="print the panel schema", description="Print the panel schema.")
    s.set_defaults(func=_cmd_schema)

    n = dsub.add_parser(
        "national",
        help="write a SYNTHETIC national panel: the initiative wards against every English ward",
        description=(
            "Write a synthetic national panel: every English ward of the ONS LSOA-to-ward "
            "lookup with its real IMD 2019 covariates (mean_rank, "
            "share_most_deprived_decile), the study's initiative wards as the study resolves "
            "them, and SIMULATED counts with a known DiD. Fit it with "
            "'nbdid fit --data PANEL.csv --indicator KEY --no-pairs --covariates "
            "mean_rank,share_most_deprived_decile'. Writes PANEL.csv and "
            "PANEL.provenance.json; see docs/scale.md."
        ),
    )
    n.add_argument("--out", required=True, metavar="PANEL.csv", help="file to write")
    n.add_argument("--indicator", default="crime", metavar="KEY",
                   help="count indicator whose family and base rate are simulated (default crime)")
    n.add_argument("--periods", type=_number(int), default=2, metavar="N",
                   help="number of periods: 2 (before/after) or an annual panel, e.g. 11 (default 2)")
    n.add_argument("--first-post", type=_number(int), default=None, metavar="T",
                   help="first post-initiative period (default 1 for two periods, else the middle)")
    n.add_argument("--did", type=_number(float), default=-0.1, metavar="X",
                   help="true DiD on the link scale (default -0.1, about a 10%% fall)")
    n.add_argument("--wards", type=_number(int), default=None, metavar="N",
                   help="every initiative ward plus a random sample of the others, N in all "
                        "(default: every ward)")
    n.add_argument("--seed", type=_number(int), default=0, metavar="N",
                   help="seed of the sample and the simulation (default 0)")
    n.add_argument("--imd", default=None, metavar="PATH",
                   help="IMD 2019 LSOA file (default: ../shared/data)")
    n.add_argument("--lookups", default=None, metavar="PATH",
                   help="ONS LSOA-to-ward lookup file or folder (default: ../shared/data)")
    n.add_argument("--force", action="store_true", help="overwrite existing files")
    n.set_defaults(func=_cmd_national)


def _number(tp: type):
    """An argparse type converting to ``tp`` with a one-line message."""
    def conv(text: str):
        try:
            return tp(text)
        except ValueError:
            kind = "a whole number" if tp is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, not {text!r}") from None

    conv.__name__ = tp.__name__
    return conv


def _cmd_default(args: argparse.Namespace) -> int:
    from nbdid.data_prep import synthetic
    from nbdid.data_prep.ingest import ingest_out_names
    from nbdid.data_prep.schema import write_panel
    from nbdid.outputs import prepare_out_dir

    overrides = {
        f.name: getattr(args, f"gen_{f.name}")
        for f in _generator_fields()
        if getattr(args, f"gen_{f.name}") is not None
    }
    cfg = synthetic.make_config(**overrides)  # invalid settings fail before any file work
    out, _ = ingest_out_names(args.out)
    prepare_out_dir(out.parent if str(out.parent) else ".", [out.name], force=args.force)
    panel = synthetic.generate_panel(cfg) if overrides else synthetic.load_default_panel()
    write_panel(panel, out)
    what = "regenerated synthetic panel" if overrides else "synthetic default panel"
    print(f"wrote {what} ({len(panel)} rows, {panel['ward'].nunique()} wards) to {out}")
    print("NOTE: SYNTHETIC DATA - ward values are simulated and calibrated to the report's "
          "published group figures; they are not real ward data.")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
    import pandas as pd

    from nbdid.data_prep.schema import panel_summary, read_panel

    families = parse_families(args.family)
    panel = read_panel(args.panel, require_exposure=not args.no_exposure, families=families or None)
    summary = panel_summary(panel)
    n_syn = int(panel["synthetic"].sum())
    print(
        f"{args.panel}: valid ward panel: {len(panel)} rows, {panel['indicator'].nunique()} "
        f"indicators, {panel['ward'].nunique()} wards, "
        f"{'paired' if panel['pair'].notna().all() else 'no pairs'}"
        + (f"; {n_syn} rows are SYNTHETIC" if n_syn else "")
    )
    with pd.option_context("display.width", 120, "display.max_rows", 500):
        shown = summary.assign(
            value=summary["value"].map(lambda v: f"{v:,.2f}"),
            total=summary["total"].map(lambda v: f"{v:,.0f}"),
        ).rename(columns={"total": "exposure_or_n"})
        print(shown.to_string(index=False))
    return 0


def _cmd_national(args: argparse.Namespace) -> int:
    from nbdid.workflow.national import national_panel

    res = national_panel(indicator=args.indicator, periods=args.periods,
                         first_post=args.first_post, did=args.did, wards=args.wards,
                         seed=args.seed, imd=args.imd, lookups=args.lookups)
    path = res.save(args.out, force=args.force)
    print(f"wrote {path}")
    print(res.text())
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    import pandas as pd

    from nbdid.data_prep.schema import schema_table

    with pd.option_context("display.width", 200, "display.max_colwidth", 100):
        print(schema_table().to_string(index=False))
    return 0
