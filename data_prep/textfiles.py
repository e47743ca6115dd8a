"""Reading raw text files from publishers: one place for the checks every loader needs.

Missing files, folders, empty files, spreadsheets and UTF-16/binary files are reported as
one-line :class:`~nbdid.errors.InputError` messages naming the file; an undecodable byte
is reported with its line number.
"""

from __future__ import annotations

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
    if raw[:4] == b"PK\x03\x04":
        raise InputError("looks like an Excel workbook (.xlsx); save the sheet as CSV first", file=p)
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
