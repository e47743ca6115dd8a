"""Drawing figures in a worker process while the caller works on (``nbdid run``).

``nbdid run`` spends more time drawing its 46 figures (each written as PNG, PDF and
SVG) than anything else but the fits, and a fit keeps about one core busy.  A
:class:`FigureRenderer` takes each figure's *recipe* (a function that builds the
figures and its data: e.g. a fit's bound ``plot_rank`` method) as soon as the data
exist, draws it in a worker process (:func:`nbdid.runtime.process_pool`: spawned,
dies with its parent, leaves Ctrl-C to the parent) and returns the file contents
(:func:`nbdid.figures.style.figure_bytes`) for the caller to write atomically.  So
the figures of one indicator are drawn while the next one is fitted.

What is written does not depend on where a figure was drawn: a worker draws with the
caller's matplotlib settings (the rcParams the caller changed) and warning filters,
and sends back the warnings it caught to be issued again in the caller; the bytes
are those the caller would have written itself (``tests/test_figures_render.py``).
When :meth:`FigureRenderer.results` is called, recipes no worker has started yet are
drawn in the calling process, so the caller and the worker share the remaining work.
An error in a recipe is raised by :meth:`~FigureRenderer.results` as it was raised in
the worker; a worker that died (killed, out of memory) has its figures drawn again in
the calling process.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from concurrent.futures import BrokenExecutor, Future
from dataclasses import dataclass, field
from typing import Any

import matplotlib as mpl
from matplotlib.figure import Figure

from nbdid.figures.style import figure_bytes
from nbdid.runtime import process_pool

Drawn = dict[str, dict[str, bytes]]
"""File contents by figure stem and format (``{"forest": {"png": b"...", ...}}``)."""

_NOT_DRAWING = frozenset({"backend", "backend_fallback", "interactive"})
"""rcParams that choose a backend or interactivity, not what a figure looks like."""


def rc_changes() -> dict[str, Any]:
    """The rcParams this process changed since matplotlib read its settings files
    (a worker applies them, so that it draws as this process would)."""
    orig = mpl.rcParamsOrig
    return {k: v for k, v in mpl.rcParams.items()
            if k not in _NOT_DRAWING and (k not in orig or orig[k] != v)}


def _pattern(regex: Any) -> str:
    """The regular expression of a filter's field: a compiled one's text, ``""`` for
    ``None`` (anything), a plain string (matched exactly) escaped."""
    if regex is None:
        return ""
    if isinstance(regex, str):
        return re.escape(regex) + r"\Z"
    return str(regex.pattern)


def _install_filters(filters: list[tuple[Any, ...]]) -> None:
    """Make ``filters`` (a copy of another process's ``warnings.filters``) this
    process's warning filters."""
    warnings.resetwarnings()
    for action, message, category, module, lineno in reversed(filters):
        warnings.filterwarnings(action, message=_pattern(message), category=category,
                                module=_pattern(module), lineno=lineno)


Also = Callable[[Mapping[str, bytes]], Mapping[str, bytes]]
"""More products made from a figure's files where it was drawn (e.g. the report's
palette PNG): files by format in, products by name out (added to the figure's files)."""


def draw(build: Callable[..., Figure | Mapping[str, Figure]], args: tuple[Any, ...],
         kwargs: dict[str, Any], stem: str | None, also: Also | None = None) -> Drawn:
    """Build the figures of one recipe and render each in every format.

    Parameters
    ----------
    build
        Returns one figure (named ``stem``) or figures by stem.
    args, kwargs
        Passed to ``build``.
    stem
        The name of the figure when ``build`` returns one.
    also
        More products of each figure's files, added to them (see :data:`Also`).

    Returns
    -------
    dict
        File contents by stem and format (:func:`nbdid.figures.style.figure_bytes`),
        with the products of ``also``.
    """
    made = build(*args, **kwargs)
    figures = {stem: made} if isinstance(made, Figure) else dict(made)
    if None in figures:
        raise ValueError(f"{build!r} returned one figure: name it with stem=")
    out: Drawn = {}
    for s, fig in figures.items():
        files = figure_bytes(fig)
        if also is not None:
            files.update(also(files))
        out[str(s)] = files
    return out


def draw_in_worker(build: Callable[..., Figure | Mapping[str, Figure]], args: tuple[Any, ...],
                   kwargs: dict[str, Any], stem: str | None, also: Also | None,
                   rc: dict[str, Any], filters: list[tuple[Any, ...]],
                   ) -> tuple[Drawn, list[tuple[Any, ...]]]:
    """:func:`draw` in a worker process, with the caller's rcParams changes ``rc`` and
    warning filters ``filters``; returns the files and the warnings caught
    (``(message, category, filename, lineno)``, to be issued again by the caller)."""
    with warnings.catch_warnings(record=True) as caught:
        _install_filters(filters)
        with mpl.rc_context(rc):
            drawn = draw(build, args, kwargs, stem, also)
    return drawn, [(w.message, w.category, w.filename, w.lineno) for w in caught]


@dataclass
class _Job:
    build: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    stem: str | None
    also: Also | None = None
    context: tuple[dict[str, Any], list[tuple[Any, ...]]] = field(default_factory=lambda: ({}, []))
    future: Future | None = None
    drawn: Drawn | None = field(default=None, repr=False)

    def draw_here(self) -> Drawn:
        self.drawn = draw(self.build, self.args, self.kwargs, self.stem, self.also)
        return self.drawn


class FigureRenderer:
    """Draws figures in worker processes while the caller goes on (see the module's
    docstring).  Use it as a context manager: leaving the block with an exception
    (Ctrl-C included) stops the workers at once.

    A worker is given one recipe at a time (the others wait here), so that
    :meth:`results` can draw every recipe no worker has started in the calling
    process, the last submitted first, while the workers finish theirs.

    Parameters
    ----------
    workers
        Worker processes (started with the first recipe); 0 draws every figure in the
        calling process when :meth:`results` is called.
    niceness
        How much lower the workers' scheduling priority is (Unix ``nice``): drawing
        is background work, the caller's own work (the fits) goes first.
    also
        More products of every figure's files, made where it is drawn (see
        :data:`Also`; must be picklable, e.g. a module-level function).

    Examples
    --------
    >>> with FigureRenderer(1) as renderer:                         # doctest: +SKIP
    ...     renderer.submit(fit_result.figures)     # figures by stem
    ...     renderer.submit(plot_forest, table, stem="forest")
    ...     files = renderer.results()   # {"forest": {"png": b"...", ...}, ...}
    """

    def __init__(self, workers: int = 1, *, niceness: int = 10, also: Also | None = None) -> None:
        self.workers = int(workers)
        self.niceness = int(niceness)
        self.also = also
        self._pool: Any = None
        self._jobs: list[_Job] = []
        self._waiting: deque[_Job] = deque()  # submitted, not given to a worker yet
        self._busy = 0  # given to a worker, not finished
        self._stopped = False
        self._lock = threading.RLock()  # re-entered by a callback run at once
        self._registry: dict[Any, Any] = {}  # warnings issued again: each shown once

    def __enter__(self) -> FigureRenderer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close(cancel=exc_type is not None)

    def submit(self, build: Callable[..., Figure | Mapping[str, Figure]], *args: Any,
               stem: str | None = None, **kwargs: Any) -> None:
        """Queue ``build(*args, **kwargs)``: figures by stem, or one figure named
        ``stem``.  ``build`` and its arguments go to a worker process (they must be
        picklable: module-level functions, bound methods of result objects); it is
        drawn with this process's rcParams and warning filters as they are now."""
        job = _Job(build, args, dict(kwargs), stem, self.also)
        self._jobs.append(job)
        if self.workers <= 0:
            return
        job.context = (rc_changes(), list(warnings.filters))
        with self._lock:
            self._waiting.append(job)
        self._feed()

    def _feed(self, _done: Future | None = None) -> None:
        """Give waiting recipes to idle workers (also called by a worker's finished
        future, in the pool's thread: it must not raise)."""
        with self._lock:
            if _done is not None:
                self._busy -= 1
            while not self._stopped and self._waiting and self._busy < self.workers:
                job = self._waiting.popleft()
                try:
                    if self._pool is None:
                        self._pool = process_pool(self.workers, ignore_interrupts=True,
                                                  niceness=self.niceness)
                    job.future = self._pool.submit(draw_in_worker, job.build, job.args,
                                                   job.kwargs, job.stem, job.also, *job.context)
                except Exception:  # noqa: BLE001 - a broken or closed pool: drawn in results()
                    self._stopped = True
                    return
                self._busy += 1
                # run in the pool's thread when done (at once, here, if done already)
                job.future.add_done_callback(self._feed)

    def results(self) -> Drawn:
        """Every submitted figure's files (and products of ``also``), by stem, once
        all are drawn.

        Recipes no worker has started are drawn here (the last submitted first), while
        the workers finish theirs.

        Raises
        ------
        Exception
            The error of a recipe, as raised where it ran (that of a recipe that failed
            in a worker as soon as it is seen; else the first in submission order).
        """
        while True:
            self._raise_failed()  # a recipe that failed in a worker ends it at once
            with self._lock:
                job = self._waiting.pop() if self._waiting else None
            if job is None:
                break
            job.draw_here()
        out: Drawn = {}
        for job in self._jobs:
            if job.drawn is None:
                if job.future is None or job.future.cancelled():  # no worker drew it
                    job.draw_here()
                else:
                    try:
                        job.drawn, caught = job.future.result()
                    except BrokenExecutor:  # the worker died (killed): draw it here
                        job.draw_here()
                    else:
                        for message, category, filename, lineno in caught:
                            warnings.warn_explicit(message, category, filename, lineno,
                                                   registry=self._registry)
            out.update(job.drawn)
        return out

    def _raise_failed(self) -> None:
        """Raise the error of the first recipe that failed in a worker (so far)."""
        for job in self._jobs:
            fut = job.future
            if fut is not None and fut.done() and not fut.cancelled():
                err = fut.exception()
                if err is not None and not isinstance(err, BrokenExecutor):
                    raise err

    def close(self, *, cancel: bool = False) -> None:
        """Stop the workers: after their current figures, or at once (``cancel``)."""
        with self._lock:
            self._stopped = True
            pool, self._pool = self._pool, None
        if pool is None:
            return
        if cancel:
            _terminate(pool)
        pool.shutdown(wait=not cancel, cancel_futures=True)


def _terminate(pool: Any) -> None:
    """Stop a process pool's workers now (they write nothing: the caller writes)."""
    if hasattr(pool, "terminate_workers"):  # Python >= 3.14
        pool.terminate_workers()
        return
    procs = list((getattr(pool, "_processes", None) or {}).values())
    for proc in procs:
        if proc.is_alive():
            proc.terminate()
    for proc in procs:
        proc.join(timeout=5)


__all__ = ["Also", "Drawn", "FigureRenderer", "draw", "draw_in_worker", "rc_changes"]
