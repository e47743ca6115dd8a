"""``nbdid data`` and ``nbdid ingest``: the command-line side of the data layer.

``nbdid data default --out PANEL.csv``
    Write the synthetic default panel (regenerated when a seed or heterogeneity
    option is given).
``nbdid data validate PANEL.csv``
    Check a panel against the schema and print a per-group summary.
``nbdid data schema``
    Print the panel schema.
``nbdid ingest SOURCE --out FILE.csv ...``
    Build a tidy table from raw public files.  Each source is a module listed in
    :data:`INGEST_SOURCES` with ``add_arguments(parser)`` and
    ``run_ingest(args) -> IngestResult``; modules are imported only when their source
    is used, so a missing or broken source never breaks ``nbdid --help``.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
import json
import sys
import typing
from pathlib import Path
from typing import Any, NoReturn

from nbdid.errors import InputError, OutputError

INGEST_SOURCES: dict[str, str] = {
    "police": "nbdid.data_prep.police",
    "land-registry": "nbdid.data_prep.land_registry",
    "dwp": "nbdid.data_prep.dwp",
    "nomis": "nbdid.data_prep.nomis",
    "population": "nbdid.data_prep.population",
    "imd": "nbdid.data_prep.imd",
}
"""Ingest sources: CLI name -> module implementing ``add_arguments`` and ``run_ingest``."""


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


class _SourceParser(argparse.ArgumentParser):
    """Parser of one ingest source's options; usage errors are one line, exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


# ----------------------------------------------------------------------------------------
# registration
# ----------------------------------------------------------------------------------------


def _generator_fields() -> list[dataclasses.Field]:
    from nbdid.config import GeneratorConfig

    hints = typing.get_type_hints(GeneratorConfig)
    return [f for f in dataclasses.fields(GeneratorConfig) if hints[f.name] in (int, float)]


def register(subparsers: Any) -> None:
    """Add the ``data`` and ``ingest`` sub-commands."""
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
                   help="family (binomial, poisson, price) of an indicator that is not in the registry")
    v.add_argument("--no-exposure", action="store_true",
                   help="allow count rows without exposure (denominators joined later)")
    v.set_defaults(func=_cmd_validate)

    s = dsub.add_parser("schema", help="print the panel schema", description="Print the panel schema.")
    s.set_defaults(func=_cmd_schema)

    ing = subparsers.add_parser(
        "ingest",
        help="build a tidy table from raw public files (police, land-registry, dwp, ...)",
        description=(
            "Build a tidy table from raw public files. Sources: "
            + ", ".join(INGEST_SOURCES)
            + ". Run 'nbdid ingest SOURCE --help' for a source's options. Every source "
            "takes --out FILE.csv and --force; a provenance report is written next to the "
            "table as FILE.provenance.json and FILE.provenance.txt."
        ),
    )
    ing.add_argument("source", choices=list(INGEST_SOURCES), metavar="SOURCE",
                     help="one of: " + ", ".join(INGEST_SOURCES))
    ing.add_argument("source_args", nargs=argparse.REMAINDER, metavar="...",
                     help="options of the source (see 'nbdid ingest SOURCE --help')")
    ing.set_defaults(func=_cmd_ingest)


def _number_type(f: dataclasses.Field):
    from nbdid.config import GeneratorConfig

    tp = typing.get_type_hints(GeneratorConfig)[f.name]

    def conv(text: str):
        try:
            return tp(text)
        except ValueError:
            kind = "a whole number" if tp is int else "a number"
            raise argparse.ArgumentTypeError(f"must be {kind}, not {text!r}") from None

    conv.__name__ = tp.__name__
    return conv


def parse_families(items: list[str]) -> dict[str, str]:
    """Parse ``KEY=FAMILY`` options into a dict (one-line InputError when malformed)."""
    out = {}
    for item in items:
        key, sep, fam = item.partition("=")
        if not sep or not key.strip() or fam.strip() not in ("binomial", "poisson", "price"):
            raise InputError(f"--family must look like KEY=binomial|poisson|price, not {item!r}")
        out[key.strip()] = fam.strip()
    return out


# ----------------------------------------------------------------------------------------
# handlers
# ----------------------------------------------------------------------------------------


def _out_file(out: str, extra: tuple[str, ...] = ()) -> tuple[Path, list[str]]:
    p = Path(out)
    if p.exists() and p.is_dir():
        raise OutputError(f"--out {p} is a folder; give a file name such as {p / 'panel.csv'}")
    if p.suffix.lower() not in (".csv", ".parquet"):
        raise OutputError(f"--out {p} must end in .csv (or .parquet)")
    names = [p.name] + [p.stem + e for e in extra]
    return p, names


def _cmd_default(args: argparse.Namespace) -> int:
    from nbdid.data_prep import synthetic
    from nbdid.outputs import prepare_out_dir

    overrides = {
        f.name: getattr(args, f"gen_{f.name}")
        for f in _generator_fields()
        if getattr(args, f"gen_{f.name}") is not None
    }
    cfg = synthetic.make_config(**overrides)  # invalid settings fail before any file work
    out, names = _out_file(args.out)
    prepare_out_dir(out.parent if str(out.parent) else ".", names, force=args.force)
    if overrides:
        panel = synthetic.generate_panel(cfg)
    else:
        panel = synthetic.load_default_panel()
    from nbdid.data_prep.schema import write_panel

    write_panel(panel, out)
    what = "regenerated synthetic panel" if overrides else "synthetic default panel"
    print(f"wrote {what} ({len(panel)} rows, {panel['ward'].nunique()} wards) to {out}")
    print("NOTE: SYNTHETIC DATA - ward values are simulated and calibrated to the report's "
          "published group figures; they are not real ward data.")
    return 0


def _cmd_validate(args: argparse.Namespace) -> int:
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
    import pandas as pd

    with pd.option_context("display.width", 120, "display.max_rows", 500):
        shown = summary.assign(
            value=summary["value"].map(lambda v: f"{v:,.2f}"),
            total=summary["total"].map(lambda v: f"{v:,.0f}"),
        ).rename(columns={"total": "exposure_or_n"})
        print(shown.to_string(index=False))
    return 0


def _cmd_schema(args: argparse.Namespace) -> int:
    import pandas as pd

    from nbdid.data_prep.schema import schema_table

    with pd.option_context("display.width", 200, "display.max_colwidth", 100):
        print(schema_table().to_string(index=False))
    return 0


def load_source(name: str):
    """Import the module of ingest source ``name`` (one-line InputError if unavailable)."""
    modname = INGEST_SOURCES[name]
    try:
        module = importlib.import_module(modname)
    except ModuleNotFoundError as err:
        if err.name and (modname == err.name or modname.startswith(err.name + ".")):
            raise InputError(
                f"ingest source '{name}' is not available in this installation "
                f"(module {modname} not found)"
            ) from None
        raise InputError(
            f"ingest source '{name}' needs the package '{err.name}', which is not installed"
        ) from None
    for attr in ("add_arguments", "run_ingest"):
        if not callable(getattr(module, attr, None)):
            raise InputError(f"ingest source '{name}' ({modname}) does not define {attr}()")
    return module


def _cmd_ingest(args: argparse.Namespace) -> int:
    from nbdid.data_prep.schema import IngestResult, validate_panel, write_panel
    from nbdid.outputs import prepare_out_dir, write_csv, write_text

    module = load_source(args.source)
    parser = _SourceParser(
        prog=f"nbdid ingest {args.source}",
        description=(module.__doc__ or "").strip().split("\n\n")[0] or None,
    )
    parser.add_argument("--out", required=True, metavar="FILE.csv",
                        help="table to write (provenance goes to FILE.provenance.json/.txt)")
    parser.add_argument("--force", action="store_true", help="overwrite existing files")
    module.add_arguments(parser)
    sargs = parser.parse_args(args.source_args)

    out, names = _out_file(sargs.out, (".provenance.json", ".provenance.txt"))
    folder = prepare_out_dir(out.parent if str(out.parent) else ".", names, force=sargs.force)

    result = module.run_ingest(sargs)
    if not isinstance(result, IngestResult):
        raise TypeError(f"{INGEST_SOURCES[args.source]}.run_ingest must return an IngestResult")
    table = result.table
    if result.kind == "panel":
        table = validate_panel(table, file=f"<{args.source} ingest result>",
                               require_exposure=result.require_exposure)
    report = {
        "source": args.source,
        "module": INGEST_SOURCES[args.source],
        "kind": result.kind,
        "output": str(out),
        "rows_written": len(table),
        "columns": [str(c) for c in table.columns],
        "command": "nbdid ingest " + " ".join([args.source, *args.source_args]),
        **result.report,
    }
    from nbdid.provenance import hash_frame, package_versions

    report["table_sha256"] = hash_frame(table)
    report["versions"] = package_versions()
    # everything is serialised before anything is written: no partial results
    json_text = json.dumps(report, indent=2, default=_json_default, ensure_ascii=False) + "\n"
    txt = _report_text(report)

    if result.kind == "panel":
        write_panel(table, out)
    else:
        write_csv(table, out, lineterminator="\n", encoding="utf-8")
    write_text(json_text, folder / names[1])
    write_text(txt, folder / names[2])
    print(f"wrote {len(table)} rows ({result.kind}) to {out}; provenance in {folder / names[1]}")
    return 0


def _json_default(obj: Any) -> Any:
    import numpy as np
    import pandas as pd

    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, (np.ndarray,)):
        return obj.tolist()
    if isinstance(obj, pd.DataFrame):
        return obj.to_dict(orient="records")
    if isinstance(obj, pd.Series):
        return obj.to_dict()
    if isinstance(obj, (Path, pd.Timestamp)):
        return str(obj)
    if obj is pd.NA or obj is pd.NaT:
        return None
    return str(obj)


def _report_text(report: dict[str, Any]) -> str:
    """A readable rendering of a provenance report (nested dicts/lists indented)."""
    lines: list[str] = []

    def emit(key: str, val: Any, indent: int) -> None:
        pad = "  " * indent
        if isinstance(val, dict):
            lines.append(f"{pad}{key}:")
            for k, v in val.items():
                emit(str(k), v, indent + 1)
        elif isinstance(val, (list, tuple)) and any(isinstance(v, (dict, list)) for v in val):
            lines.append(f"{pad}{key}:")
            for i, v in enumerate(val, 1):
                emit(f"[{i}]", v, indent + 1)
        elif isinstance(val, (list, tuple)) and sum(len(str(v)) for v in val) > 80:
            lines.append(f"{pad}{key}:")
            lines.extend(f"{pad}  - {v}" for v in val)
        else:
            if isinstance(val, (list, tuple)):
                val = ", ".join(map(str, val))
            lines.append(f"{pad}{key}: {_json_default(val) if not isinstance(val, (str, int, float, bool, type(None))) else val}")

    for k, v in report.items():
        emit(k, v, 0)
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover
    sys.exit(0)
