"""What the parsed flags mean for a run: the target, the cache file, the backend."""

from __future__ import annotations

import argparse
import logging
import math
import os
import sys
from collections.abc import Mapping

from .._exceptions import InvalidArgumentError

__all__ = [
    "CACHE_ENV",
    "CACHE_FILE",
    "cache_path",
    "default_cache_path",
    "resolve_backend",
    "resolve_target",
    "show_progress",
]

logger = logging.getLogger(__name__)

CACHE_ENV = "SMARTDOWNSAMPLE_CACHE_DIR"
"""Environment variable naming the cache folder (overrides the platform default)."""

CACHE_FILE = "features.sqlite"
"""File name of the default feature cache in the cache folder."""


def resolve_target(n_images: int, target: int | None, fraction: float | None) -> int:
    """Images to keep: ``target``, or ``fraction`` of ``n_images`` rounded half up (>= 1).

    Examples
    --------
    >>> resolve_target(25, None, 0.1), resolve_target(3, None, 0.1), resolve_target(9, 4, None)
    (3, 1, 4)
    """
    if target is not None:
        return target
    if fraction is None:
        raise InvalidArgumentError("give --target N or --fraction F")
    if n_images <= 0:
        return 0
    return max(1, math.floor(fraction * n_images + 0.5))


def default_cache_path(
    environ: Mapping[str, str] | None = None, platform: str | None = None
) -> str:
    """Where the command line keeps its feature cache by default.

    ``$SMARTDOWNSAMPLE_CACHE_DIR/features.sqlite`` if that variable is set;
    else the user cache folder: ``$XDG_CACHE_HOME`` or ``~/.cache`` on Linux,
    ``~/Library/Caches`` on macOS, ``%LOCALAPPDATA%\\smartdownsample\\Cache``
    on Windows.

    Examples
    --------
    >>> default_cache_path({"XDG_CACHE_HOME": "/c"}, "linux")
    '/c/smartdownsample/features.sqlite'
    """
    env = os.environ if environ is None else environ
    system = sys.platform if platform is None else platform
    if env.get(CACHE_ENV):
        return os.path.join(env[CACHE_ENV], CACHE_FILE)
    home = os.path.expanduser("~")
    if system.startswith("win"):
        base = env.get("LOCALAPPDATA") or os.path.join(home, "AppData", "Local")
        return os.path.join(base, "smartdownsample", "Cache", CACHE_FILE)
    if system == "darwin":
        return os.path.join(home, "Library", "Caches", "smartdownsample", CACHE_FILE)
    base = env.get("XDG_CACHE_HOME") or os.path.join(home, ".cache")
    return os.path.join(base, "smartdownsample", CACHE_FILE)


def cache_path(args: argparse.Namespace) -> str | None:
    """The feature cache of a run: ``--cache``, none with ``--no-cache``, else the default.

    The default cache's folder is made here; if that fails the run goes on
    without a cache, with a warning.
    """
    if args.no_cache:
        return None
    if args.cache:
        return str(args.cache)
    path = default_cache_path()
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
    except OSError as exc:
        logger.warning(
            "cannot create the cache folder %s (%s); running without a cache "
            "(set %s or pass --cache FILE)",
            os.path.dirname(path),
            exc.strerror or exc,
            CACHE_ENV,
        )
        return None
    return path


def resolve_backend(args: argparse.Namespace) -> None:
    """Set ``args.backend``: ``--scheduler`` implies Dask; refuse it with ``--backend local``."""
    if args.scheduler and args.backend == "local":
        raise InvalidArgumentError(
            f"--scheduler {args.scheduler!r} needs --backend dask; drop --backend local"
        )
    if args.backend is None:
        args.backend = "dask" if args.scheduler else "local"


def show_progress(args: argparse.Namespace) -> bool:
    """Progress bars unless ``--no-progress`` or ``--quiet``."""
    return not (args.no_progress or args.quiet)
