"""``smartdownsample cache``: show or empty the feature cache of select, balance and demo."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from typing import Any

from ..report import count_noun
from ._errors import EXIT_OK, CommandError
from ._options import add_debug
from ._settings import CACHE_ENV, CACHE_FILE, default_cache_path

__all__ = ["add_parser", "info_lines", "run_clear", "run_info"]

EXAMPLES = f"""\
examples:
  smartdownsample cache info
  smartdownsample cache clear --cache /data/features.sqlite

The feature cache keeps the features of every image select, balance and demo
have read, so that later runs skip decoding it. By default it is
{CACHE_FILE} in the user cache folder (or in ${CACHE_ENV});
--cache FILE names another."""

ACTIONS: tuple[tuple[str, str], ...] = (
    ("info", "show the cache's path, entries, size, schema and the version that made it"),
    ("clear", "empty the cache (the next runs decode every image again)"),
)
"""The cache subcommands and what they do."""


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add ``cache info`` and ``cache clear`` to the command's subparsers."""
    parser = commands.add_parser(
        "cache",
        help="show or empty the feature cache",
        description="Show or empty the feature cache of select, balance and demo.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    handlers: dict[str, Callable[[argparse.Namespace, float], int]] = {
        "info": run_info,
        "clear": run_clear,
    }
    for name, text in ACTIONS:
        action = actions.add_parser(name, help=text, description=text[0].upper() + text[1:] + ".")
        action.add_argument(
            "--cache",
            metavar="FILE",
            help=f"the cache file (default: {CACHE_FILE} in the user cache folder, "
            f"or in ${CACHE_ENV})",
        )
        add_debug(action.add_argument_group("messages"))
        action.set_defaults(handler=handlers[name], quiet=False)


def _cache_file(args: argparse.Namespace) -> str:
    """The cache named by ``--cache`` or the default one, as an absolute path."""
    path = str(args.cache) if args.cache else default_cache_path()
    return os.path.abspath(os.path.expanduser(path))


def run_info(args: argparse.Namespace, started: float) -> int:
    """Print what the cache holds (``no cache at PATH`` if there is none)."""
    from ..cache import cache_info

    path = _cache_file(args)
    if os.path.exists(path) and not os.path.isfile(path):
        raise CommandError(
            f"{path!r} is not a feature cache file (not a regular file); "
            "give the cache file with --cache FILE"
        )
    info = cache_info(path)
    if not info["exists"]:
        print(f"no cache at {path}")
        return EXIT_OK
    for line in info_lines(info):
        print(line)
    return EXIT_OK


def info_lines(info: Mapping[str, Any]) -> list[str]:
    """The lines of ``cache info`` for what :func:`smartdownsample.cache.cache_info` found.

    Examples
    --------
    >>> info = {"path": "/c/features.sqlite", "entries": 1200, "current_entries": 1000,
    ...         "size_bytes": 2_500_000, "schema_version": 2, "created_by": "smartdownsample 2.1.0",
    ...         "created": "2026-12-01T11:00:00+0000"}
    >>> print("\\n".join(info_lines(info)))
    path: /c/features.sqlite
    entries: 1,200 (1,000 usable by this version)
    size: 2,500,000 bytes
    schema: 2
    created_by: smartdownsample 2.1.0 (2026-12-01T11:00:00+0000)
    """
    created = f" ({info['created']})" if info.get("created") else ""
    return [
        f"path: {info['path']}",
        f"entries: {info['entries']:,} ({info['current_entries']:,} usable by this version)",
        f"size: {info['size_bytes']:,} bytes",
        f"schema: {info['schema_version'] if info['schema_version'] is not None else 'unknown'}",
        f"created_by: {info['created_by'] or 'unknown'}{created}",
    ]


def run_clear(args: argparse.Namespace, started: float) -> int:
    """Empty the cache without asking (``no cache at PATH`` if there is none)."""
    from ..cache import clear_cache

    path = _cache_file(args)
    if not os.path.exists(path):
        print(f"no cache at {path}")
        return EXIT_OK
    removed = clear_cache(path)
    if os.path.exists(path):
        print(f"cleared {count_noun(removed, 'entry', 'entries')} from {path}")
    else:
        print(f"deleted the damaged cache {path} (it held only cached features)")
    return EXIT_OK
