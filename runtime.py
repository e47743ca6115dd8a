"""Process-level helpers shared by every layer (core): warning filters, interrupts
(Ctrl-C and SIGTERM) and worker processes that die with their parent.

Kept free of heavy imports so that the command line can use it before deciding
what else to load.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from multiprocessing import resource_tracker
from typing import Any


def ignore_environment_notices() -> None:
    """Silence PyTensor's notice that it found no BLAS library (pip installs).

    nbdid's models use no matrix products (gathers and elementwise operations), and
    the default sampler (nutpie) runs on numba, not on PyTensor's C code, so the
    notice ("operations that might benefit from BLAS will be severely degraded") does
    not apply.  Call inside a ``warnings.catch_warnings()`` block.
    """
    warnings.filterwarnings(
        "ignore", message="PyTensor could not link to a BLAS installation", category=UserWarning
    )


# ----------------------------------------------------------------------------------------
# Interrupts: Ctrl-C and SIGTERM unwind, and code that swallowed one can re-raise it
# ----------------------------------------------------------------------------------------


class Terminated(KeyboardInterrupt):
    """SIGTERM received: unwinds like Ctrl-C, so clean-up code (temporary files,
    worker processes) runs before the command exits with status 143."""


_SIGNALS_SEEN: list[int] = []
"""Signals received while :func:`signals_unwind` was active (most recent last)."""

_UNWIND_DEPTH = [0]
"""How many :func:`signals_unwind` blocks are active (0: library use, no handlers)."""


def signals_seen() -> int:
    """How many SIGINT/SIGTERM :func:`signals_unwind` has seen so far (to tell whether a
    library that swallows ``KeyboardInterrupt`` was interrupted meanwhile)."""
    return len(_SIGNALS_SEEN)


def interruption(message: str = "") -> KeyboardInterrupt:
    """The exception that ends work stopped by a signal.

    Some libraries catch ``KeyboardInterrupt`` and return what they have (nutpie's
    blocking sampler, PyMC's ``pm.sample``).  Code that notices such a partial result
    raises ``interruption(...)``: :class:`Terminated` when the last signal seen was
    SIGTERM, otherwise ``KeyboardInterrupt`` (Ctrl-C, or no signal recorded).
    """
    if _SIGNALS_SEEN and _SIGNALS_SEEN[-1] == signal.SIGTERM:
        return Terminated(message)
    return KeyboardInterrupt(message)


def raise_if_interrupted(message: str = "") -> None:
    """Raise :func:`interruption` if the running command has received Ctrl-C or SIGTERM.

    A signal normally ends the command where it arrives.  When a library swallowed it
    (Numba's and PyTensor's compilers catch exceptions; an interrupt inside a C callback
    cannot propagate at all), the command would otherwise run on to the end: this is
    the checkpoint that stops it before it starts sampling and before any file is put
    in place.  Outside a :func:`signals_unwind` block (Python API) it does nothing.
    """
    if _UNWIND_DEPTH[0] and _SIGNALS_SEEN:
        raise interruption(message)


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """While the block runs, SIGINT raises ``KeyboardInterrupt`` and SIGTERM raises
    :class:`Terminated`, and both are recorded for :func:`interruption` (the record
    starts empty with each block: one command).

    Only the main thread can install signal handlers; elsewhere this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _SIGNALS_SEEN.clear()

    def on_sigint(signum, frame):  # noqa: ARG001 - signal handler signature
        _SIGNALS_SEEN.append(signum)
        raise KeyboardInterrupt

    def on_sigterm(signum, frame):  # noqa: ARG001 - signal handler signature
        _SIGNALS_SEEN.append(signum)
        raise Terminated

    hook = sys.unraisablehook

    def unraisable(info: Any) -> None:
        # an interrupt raised inside a C callback (LLVM's object cache notifying Numba
        # during a compilation) cannot propagate: Python prints it as "Exception ignored"
        # with a traceback.  It is recorded above; callers check signals_seen().
        if not isinstance(info.exc_value, KeyboardInterrupt):
            hook(info)

    previous = {signal.SIGINT: signal.signal(signal.SIGINT, on_sigint),
                signal.SIGTERM: signal.signal(signal.SIGTERM, on_sigterm)}
    sys.unraisablehook = unraisable
    _UNWIND_DEPTH[0] += 1
    try:
        yield
    finally:
        _UNWIND_DEPTH[0] -= 1
        sys.unraisablehook = hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# ----------------------------------------------------------------------------------------
# Worker processes that never outlive their parent
# ----------------------------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1  # from <linux/prctl.h>


def _set_parent_death_signal(sig: int) -> bool:
    """Ask Linux to send ``sig`` to this process when its parent dies (prctl)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


def _watch_parent(parent_pid: int | None) -> None:
    """Exit this process as soon as its parent is gone (a daemon thread waits on the
    multiprocessing parent's sentinel pipe, else polls the parent PID)."""
    parent = mp.parent_process()

    def wait_for_parent_pipe() -> None:
        parent.join()  # returns when the parent's end of the pipe closes: it died
        os._exit(1)

    def poll_parent_pid() -> None:
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    if parent is not None and parent.sentinel is not None:
        target = wait_for_parent_pipe
    elif parent_pid is not None:
        target = poll_parent_pid
    else:  # pragma: no cover - nothing to watch
        return
    threading.Thread(target=target, name="nbdid-parent-watch", daemon=True).start()


def die_with_parent(parent_pid: int | None = None) -> None:
    """Make this (worker) process exit when its parent dies, by any signal, SIGKILL
    and out-of-memory kills included.

    Use it as the ``initializer`` of a process pool (:func:`process_pool` does), or
    call it first thing in a worker.  On Linux the kernel sends SIGKILL to the worker
    when its parent dies (``prctl(PR_SET_PDEATHSIG)``); elsewhere a daemon thread
    watches the parent (the multiprocessing sentinel pipe, else the parent PID).

    Parameters
    ----------
    parent_pid
        The parent's PID as the parent saw it (``os.getpid()`` there): a worker whose
        parent died before this call ran exits at once.
    """
    if parent_pid is None:
        parent_pid = os.getppid()
    if _set_parent_death_signal(signal.SIGKILL):
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)
        return
    _watch_parent(parent_pid)


def _quiet_resource_tracker() -> None:
    """Start multiprocessing's resource tracker with its stderr sent to ``/dev/null``.

    The tracker is a helper process that outlives an interrupted command by a moment;
    after Ctrl-C or SIGTERM it may warn (with a traceback) about the pool's semaphores it
    cleans up, after nbdid's own one-line message.  Those warnings are about the
    standard library's bookkeeping, not the user's results, so they are not shown.
    """
    if getattr(resource_tracker._resource_tracker, "_fd", None) is not None:
        return  # already running
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        return
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        try:
            os.dup2(devnull, 2)
            resource_tracker.ensure_running()
        finally:
            os.dup2(saved, 2)
            os.close(devnull)
    finally:
        os.close(saved)


def _start_worker(parent_pid: int, ignore_interrupts: bool, niceness: int) -> None:
    """Worker initializer: die with the parent (:func:`die_with_parent`); leave Ctrl-C
    to the parent (the terminal sends SIGINT to every process of the job; the parent
    unwinds and stops its workers, which then print nothing); run at a lower priority."""
    if ignore_interrupts:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    if niceness > 0 and hasattr(os, "nice"):
        with contextlib.suppress(OSError):
            os.nice(niceness)
    die_with_parent(parent_pid)


def process_pool(max_workers: int = 1, *, mp_context: Any = None,
                 ignore_interrupts: bool = False, niceness: int = 0) -> Any:
    """A ``concurrent.futures.ProcessPoolExecutor`` whose workers exit when this
    process dies (see :func:`die_with_parent`); ``spawn`` start method by default
    (fresh interpreters: no threads or compiled models inherited by ``fork``).

    Every parallel step of nbdid (the sensitivity sweep, the design/assurance
    simulations, the figures of ``nbdid run``) starts its local workers through this
    function.  With ``ignore_interrupts`` the workers ignore SIGINT: the parent is the
    one that answers Ctrl-C, by stopping them.  ``niceness`` lowers the workers'
    scheduling priority (Unix ``nice``): background work that should not slow the
    parent down.
    """
    # imported here: concurrent.futures loads only when a worker pool starts (keeps this core module light)
    from concurrent.futures import ProcessPoolExecutor

    ctx = mp_context if mp_context is not None else mp.get_context("spawn")
    _quiet_resource_tracker()
    if not ignore_interrupts and niceness <= 0:
        return ProcessPoolExecutor(max_workers=max_workers, mp_context=ctx,
                                   initializer=die_with_parent, initargs=(os.getpid(),))
    return ProcessPoolExecutor(max_workers=max_workers, mp_context=ctx, initializer=_start_worker,
                               initargs=(os.getpid(), ignore_interrupts, int(niceness)))
