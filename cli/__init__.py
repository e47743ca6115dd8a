"""The ``nbdid`` command.

Sub-commands are registered by small modules (``register(subparsers)``) listed in
:data:`COMMAND_MODULES`; each keeps heavy imports (PyMC, matplotlib) inside its
handlers so that ``nbdid --help`` and input errors are instant.

Errors caused by input (:class:`~nbdid.errors.NbdidError`) are printed as one line on
stderr with a non-zero exit status and no traceback.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings
from collections.abc import Sequence
from typing import NoReturn

from nbdid.errors import NbdidError
from nbdid.runtime import Terminated, interruption, signals_seen, signals_unwind
from nbdid.version import __version__

__all__ = ["COMMAND_MODULES", "Terminated", "build_parser", "main"]

COMMAND_MODULES: tuple[str, ...] = (
    "nbdid.cli.run",  # run, config
    "nbdid.cli.data",  # data
    "nbdid.cli.ingest",  # ingest
    "nbdid.cli.download",  # download
    "nbdid.cli.build",  # build
    "nbdid.cli.replicate",  # replicate
    "nbdid.cli.fit",  # fit
    "nbdid.cli.compare",  # compare
    "nbdid.cli.match",  # match
    "nbdid.cli.sensitivity",  # sensitivity
    "nbdid.cli.report",  # report
    "nbdid.cli.design",  # design
)


class _OneLineParser(argparse.ArgumentParser):
    """ArgumentParser whose usage errors are a single line."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")



def build_parser() -> argparse.ArgumentParser:
    """Build the argument parser with every registered sub-command."""
    parser = _OneLineParser(
        prog="nbdid",
        description=(
            "Bayesian re-analysis of matched-area evaluations of neighbourhood initiatives "
            "(Everybody Needs Good Neighbourhoods 2)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"nbdid {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_OneLineParser)
    sub.required = True
    for name in COMMAND_MODULES:
        module = importlib.import_module(name)
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nbdid`` command; returns the exit status.

    Called without ``argv`` (the ``nbdid`` program itself) it ends the process as soon
    as the command is done: Python's own clean-up of PyMC's and ArviZ's object graphs
    takes seconds, during which Python has already given Ctrl-C and SIGTERM back their
    default actions, so a signal then killed a finished command with a misleading
    status.  Exit handlers (``atexit``) still run.
    """
    code = _main(argv)
    if argv is None:
        _exit_now(code)
    return code


def _exit_now(code: int) -> NoReturn:
    """Flush, run the exit handlers with Ctrl-C/SIGTERM ignored (the command is done),
    and leave without the interpreter's slow teardown."""
    import atexit
    import signal

    for sig in (signal.SIGINT, getattr(signal, "SIGTERM", None)):
        if sig is not None:
            signal.signal(sig, signal.SIG_IGN)
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`nbdid replicate | head`)
            pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    name = "nbdid"
    try:
        # Ctrl-C (130) and SIGTERM (143) end every command with one line: handlers are
        # installed before anything else happens
        with signals_unwind():
            parser = build_parser()
            args = parser.parse_args(argv)
            args.argv = list(sys.argv[1:] if argv is None else argv)  # recorded in provenance
            name = f"nbdid {args.command}"
            with warnings.catch_warnings():
                # library chatter (arviz refactor notice, numba) is not the user's business
                if not os.environ.get("NBDID_SHOW_WARNINGS"):
                    warnings.simplefilter("ignore", FutureWarning)
                    warnings.simplefilter("ignore", DeprecationWarning)
                    from nbdid.runtime import ignore_environment_notices

                    ignore_environment_notices()
                code = int(args.func(args) or 0)
                if signals_seen():
                    # a library swallowed Ctrl-C/SIGTERM and the command went on to the
                    # end: it wrote nothing after the signal (outputs.atomic_path), but it
                    # was asked to stop
                    raise interruption()
                return code
    except Terminated:
        print(f"{name}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"{name}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `nbdid replicate | head`: the reader has what it wanted
        try:  # no second error when the interpreter flushes the closed pipe at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        except (OSError, ValueError):
            pass
        return 0
    except Exception as err:
        if signals_seen():  # a library that swallowed Ctrl-C/SIGTERM failed after it
            stopped = interruption()
            print(f"{name}: {'terminated' if isinstance(stopped, Terminated) else 'interrupted'}",
                  file=sys.stderr)
            return 143 if isinstance(stopped, Terminated) else 130
        if isinstance(err, NbdidError):
            print(f"{name}: error: {err}", file=sys.stderr)
            return err.exit_code
        raise


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
