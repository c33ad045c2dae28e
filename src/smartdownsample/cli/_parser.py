"""The argument parser of the ``smartdownsample`` command: one subparser per subcommand."""

from __future__ import annotations

import argparse
from typing import Any

from .._version import __version__
from . import balance, cache, demo, select
from ._errors import EXIT_USAGE

__all__ = ["build_parser"]

MAIN_EXAMPLES = """\
commands:
  select   pick N diverse images from folders, list files or CSV files
  balance  cap every class folder of a data set at N images
  demo     make a synthetic data set and run select on it
  cache    show or empty the feature cache (cache info, cache clear)

run 'smartdownsample COMMAND --help' for a command's options and examples."""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage dump) and exit code 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``smartdownsample`` command.

    Every subcommand sets ``handler``: the function that runs it, given the
    parsed arguments and the start time.

    Examples
    --------
    >>> args = build_parser().parse_args(["select", "photos", "--target", "10"])
    >>> args.command, args.sources, args.target
    ('select', ['photos'], 10)
    """
    parser = _Parser(
        prog="smartdownsample",
        description="Pick exactly N diverse images from large camera-trap image sets.",
        epilog=MAIN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for command in (select, balance, demo, cache):
        command.add_parser(commands)
    return parser
