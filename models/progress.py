"""Progress feedback on stderr: a spinner with elapsed time while a model compiles,
nutpie's own bar (draws per chain) while it samples, and a sweep bar (specifications
done, fits per minute, ETA once the first fits are done).

Animated output only goes to a terminal: with ``quiet`` nothing is shown, and when
stderr is not a terminal (a log file, a pipe, a batch job) the compile spinner becomes
two plain lines (``nbdid: crime: compiling ...`` and ``nbdid: compiled in 20.1 s``) and
the bars are not shown at all.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterator
from typing import Any


def animated(quiet: bool) -> bool:
    """Whether animated progress may be drawn (not quiet, stderr is a terminal)."""
    if quiet:
        return False
    try:
        return bool(sys.stderr.isatty())
    except (AttributeError, ValueError):
        return False


def _line(msg: str) -> None:
    print(f"nbdid: {msg}", file=sys.stderr, flush=True)


@contextlib.contextmanager
def compiling(message: str, *, quiet: bool) -> Iterator[None]:
    """Show ``message`` with a spinner and the elapsed seconds while the block runs,
    then ``compiled in N s`` (a plain line when stderr is not a terminal)."""
    if quiet:
        yield
        return
    t0 = time.perf_counter()
    if not animated(quiet):
        _line(f"{message} (once) ...")
        yield
        _line(f"compiled in {time.perf_counter() - t0:.1f} s")
        return
    # imported here: rich loads only when a progress display is shown in a terminal
    from rich.console import Console
    from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    console = Console(stderr=True)
    with Progress(SpinnerColumn(), TextColumn(f"nbdid: {message}"), TimeElapsedColumn(),
                  console=console, transient=True) as bar:
        bar.add_task("compile", total=None)
        yield
    _line(f"compiled in {time.perf_counter() - t0:.1f} s")


class SweepProgress:
    """A bar of finished specifications with fits per minute and an ETA.

    The ETA is shown once ``min_done`` fits have finished (before that the rate of the
    first fits, which compile, says nothing).  Without a terminal, or with ``quiet``,
    :meth:`advance` does nothing.

    >>> with SweepProgress(26, quiet=False) as p:    # doctest: +SKIP
    ...     p.advance()
    """

    def __init__(self, total: int, *, quiet: bool = False, label: str = "sweep",
                 done: int = 0, min_done: int = 2) -> None:
        self.total, self.done, self.min_done = int(total), int(done), int(min_done)
        self.label = label
        self._start_done = self.done
        self._t0 = time.perf_counter()
        self._bar: Any = None
        self._task: Any = None
        self._on = animated(quiet) and total > 0

    def __enter__(self) -> SweepProgress:
        if self._on:
            # imported here: rich loads only when a progress display is shown in a terminal
            from rich.console import Console
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

            self._bar = Progress(TextColumn(f"nbdid: {self.label}"), BarColumn(),
                                 MofNCompleteColumn(), TextColumn("{task.fields[rate]}"),
                                 console=Console(stderr=True), transient=True)
            self._bar.start()
            self._task = self._bar.add_task(self.label, total=self.total, completed=self.done,
                                            rate=self.rate_text())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None

    def rate_text(self) -> str:
        """``"3.2 fits/min, ETA 4 min"`` (ETA after ``min_done`` fits of this session)."""
        n = self.done - self._start_done
        elapsed = time.perf_counter() - self._t0
        if n < max(1, self.min_done) or elapsed <= 0:
            return "ETA after the first fits"
        per_min = n / elapsed * 60.0
        left = (self.total - self.done) / per_min if per_min > 0 else float("inf")
        eta = f"{left:.0f} min" if left >= 1 else f"{left * 60:.0f} s"
        return f"{per_min:.1f} fits/min, ETA {eta}"

    def advance(self, n: int = 1) -> None:
        """Count ``n`` more finished specifications."""
        self.done += n
        if self._bar is not None:
            self._bar.update(self._task, completed=self.done, rate=self.rate_text())
