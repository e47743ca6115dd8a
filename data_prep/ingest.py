"""Writing what a loader built: the table plus its provenance report, atomically.

Every loader (``ingest_police``, ``ingest_population``, ...) returns an
:class:`~nbdid.data_prep.schema.IngestResult`.  :func:`write_ingest_result` validates a
panel result against the schema, serialises the provenance report, and only then writes
``FILE.csv``, ``FILE.provenance.json`` and ``FILE.provenance.txt`` (each atomically), so
that a failed ingest leaves nothing behind and an existing result is never overwritten
without ``force``.

The report may hold a ``"guards"`` list (:func:`nbdid.data_prep.guards.guard_notices`):
what the correctness guards decided (year map, boundary changes, partial periods).  The
caller (the CLI, ``nbdid build``) prints those on stderr; :func:`guard_lines` formats them.
"""

from __future__ import annotations

import json
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from nbdid.data_prep.schema import IngestResult, validate_panel, write_panel
from nbdid.errors import OutputError
from nbdid.outputs import prepare_out_dir, write_csv, write_text
from nbdid.provenance import hash_frame, package_versions

__all__ = [
    "guard_lines",
    "ingest_out_names",
    "report_text",
    "write_ingest_result",
]

PROVENANCE_SUFFIXES: tuple[str, ...] = (".provenance.json", ".provenance.txt")


def ingest_out_names(out: str | PathLike[str]) -> tuple[Path, list[str]]:
    """The table path and the three file names an ingest writes (table, json, txt).

    Raises
    ------
    OutputError
        When ``out`` is a folder or does not end in ``.csv``/``.parquet``.
    """
    p = Path(out)
    if p.exists() and p.is_dir():
        raise OutputError(f"--out {p} is a folder; give a file name such as {p / 'panel.csv'}")
    if p.suffix.lower() not in (".csv", ".parquet"):
        raise OutputError(f"--out {p} must end in .csv (or .parquet)")
    return p, [p.name] + [p.stem + s for s in PROVENANCE_SUFFIXES]


def prepare_ingest_out(out: str | PathLike[str], *, force: bool) -> Path:
    """Check that the ingest's files may be written (before any work); returns the folder."""
    p, names = ingest_out_names(out)
    return prepare_out_dir(p.parent if str(p.parent) else ".", names, force=force)


def write_ingest_result(
    result: IngestResult,
    out: str | PathLike[str],
    *,
    force: bool = False,
    source: str,
    module: str | None = None,
    command: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Validate and write an ingest result with its provenance report.

    Parameters
    ----------
    result
        What a loader returned.
    out
        Table to write (``.csv`` or ``.parquet``); the report goes next to it as
        ``<stem>.provenance.json`` and ``<stem>.provenance.txt``.
    force
        Overwrite existing files (otherwise an existing file is an
        :class:`~nbdid.errors.OutputError` and nothing is written).
    source, module, command
        Recorded in the report (the source name, the loader module, the command line).

    Returns
    -------
    (table, report)
        The table as written (validated when ``kind == "panel"``) and the full report.
    """
    p, names = ingest_out_names(out)
    folder = prepare_out_dir(p.parent if str(p.parent) else ".", names, force=force)
    table = result.table
    if result.kind == "panel":
        table = validate_panel(table, file=f"<{source} ingest result>",
                               require_exposure=result.require_exposure)
    report: dict[str, Any] = {
        "source": source,
        **({"module": module} if module else {}),
        "kind": result.kind,
        "output": str(p),
        "rows_written": len(table),
        "columns": [str(c) for c in table.columns],
        **({"command": command} if command else {}),
        **result.report,
    }
    report["table_sha256"] = hash_frame(table)
    report["versions"] = package_versions()
    # everything is serialised before anything is written: no partial results
    json_text = json.dumps(report, indent=2, default=json_default, ensure_ascii=False) + "\n"
    txt = report_text(report)
    if result.kind == "panel":
        write_panel(table, p)
    else:
        write_csv(table, p, lineterminator="\n", encoding="utf-8")
    write_text(json_text, folder / names[1])
    write_text(txt, folder / names[2])
    return table, report


def guard_lines(report: dict[str, Any]) -> list[str]:
    """One line per guard notice of a report (for stderr)."""
    out = []
    for g in report.get("guards", []) or []:
        out.append(f"{g.get('guard', 'guard')}: {g.get('message', '')}")
    return out


def json_default(obj: Any) -> Any:
    """JSON encoding of numpy/pandas values in provenance reports."""
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, np.ndarray):
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


def report_text(report: dict[str, Any]) -> str:
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
            plain = isinstance(val, (str, int, float, bool, type(None)))
            lines.append(f"{pad}{key}: {val if plain else json_default(val)}")

    for k, v in report.items():
        emit(k, v, 0)
    return "\n".join(lines) + "\n"
