"""Reading large publisher CSV files in bounded memory.

National inputs are too big to hold in memory as pandas strings: all police.uk street
files for 132 months are about 80 million rows, HM Land Registry's ``pp-complete.csv``
about 31 million rows (4 GB).  The loaders therefore read them as a stream of batches
and fold each batch into small running totals.

Two engines give the same batches (pandas frames of string columns, surrounding
spaces stripped, empty cells as ``<NA>``):

``"pyarrow"``
    :func:`pyarrow.csv.open_csv`, a multi-threaded streaming reader that materialises
    only the requested columns (installed with the ``national`` extra; pandas itself
    uses pyarrow strings when it is present).
``"pandas"``
    ``pandas.read_csv(chunksize=...)``, the fallback when pyarrow is missing.

``engine="auto"`` picks pyarrow when it can be imported.  Errors of the fast engine
(bad UTF-8, a row with the wrong number of fields) are re-raised by re-reading the file
with the pandas engine, which names the line, so a user always sees file, line and
column.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator, Sequence
from os import PathLike
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from nbdid.data_prep.lookups import read_header
from nbdid.data_prep.textfiles import read_raw
from nbdid.errors import InputError

__all__ = [
    "DEFAULT_BATCH_BYTES",
    "Engine",
    "have_pyarrow",
    "iter_csv_batches",
    "resolve_engine",
]

Engine = Literal["auto", "pyarrow", "pandas"]
"""Reader of large CSV files: ``"auto"`` (pyarrow when installed), ``"pyarrow"``, ``"pandas"``."""

DEFAULT_BATCH_BYTES = 16 << 20
"""Bytes of CSV text per batch (pyarrow block size; pandas chunks of similar size)."""

_ROWS_PER_MB = 8_000  # pandas chunk size from the byte budget (~125 bytes per row)


def have_pyarrow() -> bool:
    """Whether pyarrow can be imported (the ``national`` extra)."""
    try:
        return importlib.util.find_spec("pyarrow.csv") is not None
    except (ImportError, ValueError):
        return False


def resolve_engine(engine: Engine | str = "auto") -> Literal["pyarrow", "pandas"]:
    """The engine to use: ``"auto"`` -> pyarrow when installed, else pandas.

    Raises
    ------
    InputError
        For an unknown engine name, or ``"pyarrow"`` when it is not installed.
    """
    if engine == "auto":
        return "pyarrow" if have_pyarrow() else "pandas"
    if engine == "pyarrow":
        if not have_pyarrow():
            raise InputError("engine 'pyarrow' needs the package pyarrow "
                             "(pip install 'nbdid[national]'); or use engine 'pandas'")
        return "pyarrow"
    if engine == "pandas":
        return "pandas"
    raise InputError(f"engine must be auto, pyarrow or pandas, not '{engine}'")


def _clean(df: pd.DataFrame) -> pd.DataFrame:
    """Strings stripped of surrounding spaces, empty cells as <NA> (nullable strings)."""
    out = {}
    for c in df.columns:
        s = df[c].astype("string").str.strip()
        out[c] = s.mask(s == "", pd.NA)
    return pd.DataFrame(out, index=df.index)


def _check_file(p: Path) -> None:
    """Missing/empty/binary files give the same one-line errors as the small-file readers."""
    try:
        with p.open("rb") as fh:
            head = fh.read(1 << 16)
    except FileNotFoundError:
        raise InputError("file not found", file=p) from None
    except IsADirectoryError:
        raise InputError("expected a file but found a folder", file=p) from None
    except OSError as err:
        raise InputError(f"cannot read file: {err.strerror or err}", file=p) from None
    if not head.strip():
        raise InputError("the file is empty", file=p)
    if head[:4] == b"PK\x03\x04" or head[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in head[:4096]:
        read_raw(p)  # raises the matching one-line error


def iter_csv_batches(
    path: str | PathLike[str],
    columns: Sequence[str],
    *,
    names: Sequence[str] | None = None,
    engine: Engine | str = "auto",
    batch_bytes: int = DEFAULT_BATCH_BYTES,
) -> Iterator[tuple[int, pd.DataFrame]]:
    """Stream the ``columns`` of a CSV file as batches of cleaned strings.

    Parameters
    ----------
    path
        CSV file (UTF-8, optional BOM, any line endings).
    columns
        Columns to return, by header name (or by ``names`` for files without header).
    names
        Column names of a file *without* a header row (e.g. Price Paid files); the
        number of fields in every row must equal ``len(names)``.
    engine
        ``"auto"``, ``"pyarrow"`` or ``"pandas"`` (:func:`resolve_engine`).
    batch_bytes
        Approximate CSV bytes per batch.

    Yields
    ------
    (first_line, batch)
        ``first_line`` is the 1-based file line of the batch's first row (the header,
        when there is one, is line 1); ``batch`` has the requested columns as nullable
        strings.

    Raises
    ------
    InputError
        Missing columns, undecodable text or a malformed row, naming file and line.
    """
    p = Path(path)
    _check_file(p)
    eng = resolve_engine(engine)
    done = 1 if names else 2  # first line not yet yielded
    if eng == "pyarrow":
        try:
            for line, batch in _arrow_batches(p, columns, names, batch_bytes):
                yield line, batch
                done = line + len(batch)
            return
        except _ArrowFailed:
            pass  # re-read with pandas, which names the line; skip what was yielded
    for line, batch in _pandas_batches(p, columns, names, batch_bytes):
        if line + len(batch) <= done:
            continue
        if line < done:
            batch = batch.iloc[done - line:]
            line = done
        yield line, batch


class _ArrowFailed(Exception):
    """pyarrow could not parse the file; the pandas reader will say where."""


def _arrow_batches(
    p: Path, columns: Sequence[str], names: Sequence[str] | None, batch_bytes: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    # imported here: pyarrow is the optional 'national' extra; loaded only on the streaming path
    import pyarrow as pa
    import pyarrow.csv as pcsv

    # serial reading: a threaded reader parses blocks ahead and can hold many at once
    read = pcsv.ReadOptions(block_size=int(batch_bytes), column_names=list(names) if names else None,
                            encoding="utf8", use_threads=False)
    conv = pcsv.ConvertOptions(
        include_columns=list(columns),
        column_types={c: pa.string() for c in columns},
        strings_can_be_null=False,
    )
    parse = pcsv.ParseOptions(newlines_in_values=False)
    try:
        reader = pcsv.open_csv(p, read_options=read, convert_options=conv, parse_options=parse)
    except (pa.ArrowInvalid, pa.ArrowKeyError) as err:
        if "include_columns" in str(err) or "not found" in str(err).lower():
            raise _missing_columns(p, columns) from None
        raise _ArrowFailed from None
    line = 1 if names else 2
    try:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            df = batch.to_pandas()
            yield line, _clean(df[list(columns)])
            line += batch.num_rows
    except pa.ArrowInvalid:
        raise _ArrowFailed from None


def _missing_columns(p: Path, columns: Sequence[str]) -> InputError:

    header = read_header(p)
    missing = [c for c in columns if c not in header]
    return InputError(f"missing column(s) {', '.join(missing)} (found {', '.join(header[:12])})",
                      file=p, row=1, column=missing[0] if missing else None)


def _pandas_batches(
    p: Path, columns: Sequence[str], names: Sequence[str] | None, batch_bytes: int
) -> Iterator[tuple[int, pd.DataFrame]]:
    chunk = max(1000, int(batch_bytes / (1 << 20) * _ROWS_PER_MB))
    kw = dict(dtype="string", keep_default_na=False, na_values=[""], chunksize=chunk,
              encoding="utf-8-sig", encoding_errors="strict", engine="c")
    if names:
        kw.update(header=None, names=list(names), usecols=list(columns))
    else:

        header = read_header(p)
        missing = [c for c in columns if c not in header]
        if missing:
            raise _missing_columns(p, columns)
        kw.update(usecols=list(columns))
    line = 1 if names else 2
    try:
        with pd.read_csv(p, **kw) as reader:
            for df in reader:
                if names and df.shape[1] != len(columns):
                    raise InputError("wrong number of fields", file=p, row=line)
                yield line, _clean(df[list(columns)])
                line += len(df)
    except UnicodeDecodeError as err:
        raise InputError(f"not UTF-8 text ({err.reason}); save the file as CSV (UTF-8)",
                         file=p, row=_line_of_byte(p, err.start, line)) from None
    except pd.errors.ParserError as err:
        m = re.search(r"line (\d+)", str(err))
        raise InputError(f"cannot parse: {str(err).strip()}", file=p,
                         row=int(m.group(1)) if m else None) from None


def _line_of_byte(p: Path, offset: int, fallback: int) -> int | None:
    """Line of the first byte that is not UTF-8 (streamed: the file may be large)."""
    del offset  # the decoder's offset is relative to a chunk; find the line directly
    try:
        with p.open("rb") as fh:
            for n, raw in enumerate(fh, start=1):
                try:
                    raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    # bare-CR files have one physical "line": count CRs before the byte
                    return n + raw[: err.start].count(b"\r") if b"\n" not in raw[:-1] else n
    except OSError:
        pass
    return fallback


def read_csv_raw(
    path: str | PathLike[str], columns: Sequence[str], *, engine: Engine | str = "auto",
    as_arrow: bool = False,
) -> Any:
    """The ``columns`` of a small CSV file as strings, *not* cleaned (see :func:`clean_strings`).

    Cheaper than :func:`read_csv_strings` for many small files: concatenate them
    (:func:`concat_raw`) and clean once.  With ``as_arrow`` and the pyarrow engine the
    result is a :class:`pyarrow.Table` (else a pandas frame).  Raises
    :class:`InputError` as :func:`iter_csv_batches` does.
    """
    p = Path(path)
    if resolve_engine(engine) == "pyarrow":
        # imported here: pyarrow is the optional 'national' extra; loaded only on the streaming path
        import pyarrow as pa
        import pyarrow.csv as pcsv

        try:
            t = pcsv.read_csv(
                p, read_options=pcsv.ReadOptions(use_threads=False),
                convert_options=pcsv.ConvertOptions(
                    include_columns=list(columns), column_types={c: pa.string() for c in columns},
                    strings_can_be_null=False))
            t = t.select(list(columns))
            return t if as_arrow else t.to_pandas()
        except (pa.ArrowInvalid, pa.ArrowKeyError, OSError):
            pass  # the reader below names the problem
    return read_csv_strings(p, columns, engine="pandas")


def concat_raw(parts: Sequence[Any]) -> pd.DataFrame:
    """Concatenate :func:`read_csv_raw` results (arrow tables or frames) into one frame."""
    if parts and all(not isinstance(x, pd.DataFrame) for x in parts):
        # imported here: pyarrow is the optional 'national' extra; loaded only on the streaming path
        import pyarrow as pa

        return pa.concat_tables(parts).to_pandas()
    frames = [x if isinstance(x, pd.DataFrame) else x.to_pandas() for x in parts]
    return pd.concat(frames, ignore_index=True)


def fullmatch(s: pd.Series, pattern: str) -> np.ndarray:
    """Whether each value matches ``pattern`` entirely (``<NA>`` -> False), in C when possible.

    pandas runs regular expressions on pyarrow strings one value at a time in Python;
    pyarrow's RE2 engine does the same test in C (for patterns RE2 accepts).
    """
    slow = s.astype("string").str.fullmatch
    try:
        # imported here: pyarrow is the optional 'national' extra; loaded only on the streaming path
        import pyarrow as pa
        import pyarrow.compute as pc
    except ImportError:
        return slow(pattern).fillna(False).to_numpy(dtype=bool)
    try:
        arr = pa.array(s.astype("string"), from_pandas=True)
        out = pc.match_substring_regex(arr, f"^(?:{pattern})$")
    except pa.ArrowInvalid:  # a pattern RE2 does not accept
        return slow(pattern).fillna(False).to_numpy(dtype=bool)
    return out.fill_null(False).to_numpy(zero_copy_only=False).astype(bool)


def remove_whitespace_upper(s: pd.Series) -> pd.Series:
    """Upper case with every whitespace character removed (postcodes), in C when possible."""
    try:
        # imported here: pyarrow is the optional 'national' extra; loaded only on the streaming path
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(s.astype("string"), from_pandas=True)
        arr = pc.replace_substring_regex(pc.utf8_upper(arr), r"\s+", "")
        return pd.Series(pd.arrays.ArrowStringArray(arr), index=s.index).astype("string")
    except ImportError:
        return s.astype("string").str.upper().str.replace(r"\s+", "", regex=True)


def clean_strings(df: pd.DataFrame) -> pd.DataFrame:
    """Strings stripped of surrounding spaces, empty cells as ``<NA>`` (nullable strings)."""
    return _clean(df)


def read_csv_strings(
    path: str | PathLike[str], columns: Sequence[str], *, engine: Engine | str = "auto"
) -> pd.DataFrame:
    """Read the ``columns`` of a (small or medium) CSV file at once; see :func:`iter_csv_batches`."""
    parts = [b for _, b in iter_csv_batches(path, columns, engine=engine, batch_bytes=1 << 30)]
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype="string") for c in columns})
    return parts[0] if len(parts) == 1 else pd.concat(parts, ignore_index=True)
