"""The ``nbdid`` command.

Sub-commands are registered by small modules (``register(subparsers)``) listed in
:data:`COMMAND_MODULES`; each keeps heavy imports (PyMC, matplotlib) inside its
handlers so that ``nbdid --help`` and input errors are instant.

Errors caused by input (:class:`~nbdid.errors.NbdidError`) are printed as one line on
stderr with a non-zero exit status and no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from typing import NoReturn

from nbdid import __version__
from nbdid.errors import NbdidError

COMMAND_MODULES: tuple[str, ...] = (
    "nbdid.pipeline",  # run, config
    "nbdid.data_prep.commands",  # data, ingest
    "nbdid.analysis.commands",  # replicate
    "nbdid.models.commands",  # fit
    "nbdid.analysis.compare_commands",  # compare
    "nbdid.analysis.match_commands",  # match
    "nbdid.analysis.sensitivity_commands",  # sensitivity
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


class Terminated(KeyboardInterrupt):
    """SIGTERM received: unwinds like Ctrl-C, so clean-up code (temporary files,
    worker processes) runs before the command exits with status 143."""


@contextlib.contextmanager
def _sigterm_unwinds():
    """Turn SIGTERM into :class:`Terminated` while a command runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001 - signal handler signature
        raise Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``nbdid`` command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(), _sigterm_unwinds():
            # library chatter (arviz refactor notice, numba) is not the user's business
            if not os.environ.get("NBDID_SHOW_WARNINGS"):
                warnings.simplefilter("ignore", FutureWarning)
                warnings.simplefilter("ignore", DeprecationWarning)
                from nbdid.models.sampling import ignore_environment_notices

                ignore_environment_notices()
            return int(args.func(args) or 0)
    except NbdidError as err:
        print(f"nbdid {args.command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except Terminated:
        print(f"nbdid {args.command}: terminated", file=sys.stderr)
        return 143
    except KeyboardInterrupt:
        print(f"nbdid {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `nbdid replicate | head`
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
