"""Reading raw text files from publishers: one place for the checks every loader needs.

Missing files, folders, empty files, spreadsheets and UTF-16/binary files are reported as
one-line :class:`~nbdid.errors.InputError` messages naming the file; an undecodable byte
is reported with its line number.
"""

from __future__ import annotations

import re
from os import PathLike
from pathlib import Path

from nbdid.errors import InputError


def read_raw(path: str | PathLike[str]) -> bytes:
    """The bytes of a text file, after checking it is a non-empty, non-binary file.

    Raises
    ------
    InputError
        If the file is missing, a folder, unreadable, empty, an Excel workbook, or
        UTF-16/binary.
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise InputError("file not found", file=p) from None
    except IsADirectoryError:
        raise InputError("expected a file but found a folder", file=p) from None
    except OSError as err:
        raise InputError(f"cannot read file: {err.strerror or err}", file=p) from None
    if not raw.strip():
        raise InputError("the file is empty", file=p)
    workbook = spreadsheet_kind(raw)
    if workbook is not None:
        raise InputError(spreadsheet_message(workbook, p), file=p)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff") or b"\x00" in raw[:4096]:
        raise InputError(
            "file is UTF-16 or binary, not a CSV text file; save it as CSV (UTF-8)", file=p
        )
    return raw


def decode(raw: bytes, path: str | PathLike[str], encodings: tuple[str, ...]) -> tuple[str, str]:
    """Decode ``raw`` with the first of ``encodings`` that works; return ``(text, encoding)``.

    Raises
    ------
    InputError
        Naming the line of the first byte that no encoding could decode.
    """
    last: UnicodeDecodeError | None = None
    for enc in encodings:
        try:
            return raw.decode(enc), enc
        except UnicodeDecodeError as err:
            last = err
    assert last is not None
    before = raw[: last.start]
    line = before.count(b"\n") + 1 if b"\n" in before else before.count(b"\r") + 1
    names = " or ".join("UTF-8" if e.startswith("utf-8") else e for e in encodings)
    raise InputError(
        f"not {names} text (byte 0x{raw[last.start]:02x}); save the file as CSV (UTF-8)",
        file=path,
        row=line,
    )


# ----------------------------------------------------------------------------------------
# Spreadsheets under a text name, and text in any common encoding
# ----------------------------------------------------------------------------------------

WESTERN_ENCODINGS: tuple[str, ...] = ("cp1252", "latin_1", "iso8859_15")
"""Single-byte encodings a CSV saved by Excel or older tools in the UK is in when it is
not UTF-8 ("CSV (Comma delimited)" on Windows is Windows-1252)."""

_UTF8_MULTIBYTE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]+")


def spreadsheet_kind(raw: bytes) -> str | None:
    """``"xlsx"``, ``"xls"`` or ``"ods"`` when ``raw`` is a spreadsheet file (whatever its
    name), else ``None``."""
    if raw[:8] == b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1":
        return "xls"
    if raw[:4] == b"PK\x03\x04":
        return "ods" if b"opendocument.spreadsheet" in raw[:200] else "xlsx"
    return None


def spreadsheet_message(kind: str, path: str | PathLike[str]) -> str:
    """What to do with a spreadsheet given where a CSV text file was expected."""
    app = "LibreOffice" if kind == "ods" else "Excel"
    name = Path(path).name
    named = f" (although it is named {name})" if not name.lower().endswith(f".{kind}") else ""
    return (f"this is an {app} workbook "
            f"(.{kind}){named}, not a CSV text file: open it in {app} and save the sheet with "
            "'Save As' > 'CSV UTF-8 (Comma delimited) (*.csv)'")


def decode_text(raw: bytes, path: str | PathLike[str]) -> tuple[str, str]:
    """Decode a text file in whatever common encoding it is in; return ``(text,
    encoding)``.

    UTF-8 (with or without a byte-order mark), UTF-16 and UTF-32 (with a byte-order
    mark, or UTF-16 without one) and the single-byte Western encodings of
    :data:`WESTERN_ENCODINGS` (Windows-1252/Latin-1: a CSV saved by Excel, e.g. Welsh
    ward names such as "Ynys Môn") are recognised; a single-byte encoding is chosen by
    ``charset-normalizer``.  A file that mixes valid UTF-8 with stray bytes is refused
    rather than guessed.

    Raises
    ------
    InputError
        For spreadsheets, binary files and undecodable text (naming the line).
    """
    kind = spreadsheet_kind(raw)
    if kind is not None:
        raise InputError(spreadsheet_message(kind, path), file=path)
    boms = ((b"\xef\xbb\xbf", "utf-8-sig"), (b"\xff\xfe\x00\x00", "utf-32"),
            (b"\x00\x00\xfe\xff", "utf-32"), (b"\xff\xfe", "utf-16"), (b"\xfe\xff", "utf-16"))
    for bom, enc in boms:
        if raw.startswith(bom):
            try:
                return raw.decode(enc), enc
            except UnicodeDecodeError as err:
                raise InputError(f"the file starts like {enc.upper()} text but is not (byte "
                                 f"{err.start}); save it as CSV UTF-8", file=path) from None
    head = raw[:4096]
    if b"\x00" in head:
        enc = _bomless_utf16(head)
        if enc is not None:
            try:
                return raw.decode(enc), enc
            except UnicodeDecodeError:
                pass
        if raw[:4] == b"PAR1":
            raise InputError("this is a Parquet file, not CSV; give it a .parquet suffix", file=path)
        raise InputError("this is a binary file, not a CSV text file", file=path)
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as err:
        first_bad = err
    if not _UTF8_MULTIBYTE.search(raw):  # no UTF-8 at all: a single-byte encoding
        from charset_normalizer import from_bytes

        best = from_bytes(raw, cp_isolation=list(WESTERN_ENCODINGS)).best()
        if best is not None:
            enc = str(best.encoding)
            try:
                return raw.decode(enc), enc
            except UnicodeDecodeError:
                pass
    before = raw[: first_bad.start]
    line = before.count(b"\n") + 1
    what = ("is UTF-8 text with a byte that is not UTF-8 (mixed encodings?)"
            if _UTF8_MULTIBYTE.search(raw) else "is neither UTF-8 nor Windows-1252/Latin-1 text")
    raise InputError(
        f"the file {what}: byte 0x{raw[first_bad.start]:02x} at position {first_bad.start}; "
        "save it as UTF-8 (e.g. in Excel: 'CSV UTF-8') and try again",
        file=path, row=line,
    )


def _bomless_utf16(head: bytes) -> str | None:
    """``utf-16-le``/``-be`` when ``head`` looks like mostly-ASCII UTF-16 without a BOM."""
    n = len(head) - len(head) % 2
    if n < 4:
        return None
    even, odd = head[0:n:2], head[1:n:2]
    z_even, z_odd = even.count(0) / len(even), odd.count(0) / len(odd)
    if z_odd > 0.6 and z_even < 0.1:
        return "utf-16-le"
    if z_even > 0.6 and z_odd < 0.1:
        return "utf-16-be"
    return None
