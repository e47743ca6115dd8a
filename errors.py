"""Errors that nbdid reports to users as one line, without a traceback.

Anything a user can cause by what they pass in (a file, a column, an option) raises
:class:`InputError` or :class:`OutputError`.  The CLI prints ``str(err)`` on one line
and exits non-zero; library callers can catch them like any exception.
"""

from __future__ import annotations

from os import PathLike


class NbdidError(Exception):
    """Base class of errors caused by user input or environment, shown as one line."""

    exit_code = 2

    def __str__(self) -> str:  # pragma: no cover - trivial
        return " ".join(str(self.args[0]).split()) if self.args else self.__class__.__name__


class InputError(NbdidError, ValueError):
    """Bad input: a file, row, column or option value that nbdid cannot use.

    Parameters
    ----------
    message
        What is wrong, in plain words.
    file, row, column
        Where it is wrong.  ``row`` is the 1-based line number in the file as a user
        sees it in an editor (the header is line 1) when known.
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | PathLike[str] | None = None,
        row: int | None = None,
        column: str | None = None,
    ) -> None:
        self.message = message
        self.file = None if file is None else str(file)
        self.row = row
        self.column = column
        super().__init__(self._format())

    def _format(self) -> str:
        where = []
        if self.file is not None:
            where.append(self.file)
        if self.row is not None:
            where.append(f"line {self.row}")
        if self.column is not None:
            where.append(f"column '{self.column}'")
        msg = " ".join(str(self.message).split())
        return f"{', '.join(where)}: {msg}" if where else msg


class OutputError(NbdidError, OSError):
    """An output cannot be written: unwritable folder, or it would overwrite results."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class ModelError(NbdidError, RuntimeError):
    """A model cannot be fitted to the data given (one group only, one period, ...)."""

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class DownloadError(NbdidError, OSError):
    """A file could not be fetched, or what came back is not right (one line)."""

    exit_code = 3

    def __init__(self, message: str) -> None:
        super().__init__(" ".join(str(message).split()))


class DesignError(ModelError, InputError):
    """The panel cannot support a difference-in-differences (one group, one period,
    no post period, broken pairs, ...).  Both a :class:`ModelError` (no model can be
    fitted) and an :class:`InputError` (the input must change)."""

    def __init__(self, message: str, *, file: str | PathLike[str] | None = None,
                 row: int | None = None, column: str | None = None) -> None:
        InputError.__init__(self, message, file=file, row=row, column=column)
