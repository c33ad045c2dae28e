"""Argument types and the option groups the subcommands share.

The only module of the command that imports from the extraction code (the
default image timeout), so a move of that code changes one line here.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

from .._types import BACKENDS, STRATEGIES
from ..api import MAX_HASH_SIZE, MIN_HASH_SIZE
from ..extraction import DEFAULT_IMAGE_TIMEOUT
from ..listing import IMAGE_EXTENSIONS
from ._settings import CACHE_ENV, CACHE_FILE

__all__ = [
    "DEFAULT_SEED",
    "DEFAULT_WORKERS",
    "IMAGE_TYPES",
    "add_debug",
    "add_output_options",
    "add_run_options",
    "add_verbosity",
    "fraction",
    "positive_int",
]

DEFAULT_WORKERS = 4
"""Decoding workers (the library's default; 0 means one per core)."""

DEFAULT_SEED = 42
"""The library's default seed, so the CLI and ``sample_diverse`` agree."""

DEFAULT_HASH_SIZE = 8
"""The library's default (and recommended) perceptual hash size."""

IMAGE_TYPES = ", ".join(sorted(ext.lstrip(".") for ext in IMAGE_EXTENSIONS))
"""The image file types folders are searched for, as help and error messages name them."""

ArgumentGroup = argparse._ArgumentGroup
"""An argparse argument group (named here: argparse's own name is private)."""


# ---------------------------------------------------------------- argument types


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``.

    Examples
    --------
    >>> whole_number(0)("3")
    3
    """

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
        if value < minimum:
            wanted = "0 or more" if minimum == 0 else f"at least {minimum}"
            raise argparse.ArgumentTypeError(f"must be {wanted}, got {value}")
        return value

    return parse


positive_int = whole_number(1)
non_negative_int = whole_number(0)


def positive_seconds(text: str) -> float:
    """An argparse type: a positive number of seconds (not NaN)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def fraction(text: str) -> float:
    """An argparse type: a share of the images, above 0 and at most 1."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected a number between 0 and 1 (e.g. 0.1 for 10%), got {text!r}"
        ) from None
    if not (0.0 < value <= 1.0):  # also rejects NaN
        raise argparse.ArgumentTypeError(
            f"must be above 0 and at most 1 (e.g. 0.1 for 10%), got {text!r}"
        )
    return value


def hash_size(text: str) -> int:
    """An argparse type: a perceptual hash size the library accepts."""
    value = positive_int(text)
    if not MIN_HASH_SIZE <= value <= MAX_HASH_SIZE:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_HASH_SIZE} and {MAX_HASH_SIZE} (8 is recommended), got {value}"
        )
    return value


def html_path(text: str) -> str:
    """An argparse type: a report file name ending in ``.html`` or ``.htm``."""
    if not text.lower().endswith((".html", ".htm")):
        raise argparse.ArgumentTypeError(
            f"the report is an HTML page: give a name ending in .html, got {text!r}"
        )
    return text


def png_path(text: str) -> str:
    """An argparse type: a chart file name ending in ``.png``."""
    if not text.lower().endswith(".png"):
        raise argparse.ArgumentTypeError(
            f"charts are PNG files: give a name ending in .png, got {text!r}"
        )
    return text


# ---------------------------------------------------------------- option groups


def add_run_options(parser: argparse.ArgumentParser, *, backend: bool = True) -> None:
    """The ``selection`` group: how images are read, cached and chosen."""
    group = parser.add_argument_group("selection")
    _add_selection_options(group)
    _add_cache_options(group)
    if backend:
        _add_backend_options(group)


def _add_selection_options(group: ArgumentGroup) -> None:
    group.add_argument(
        "--hash-size",
        type=hash_size,
        default=DEFAULT_HASH_SIZE,
        metavar="N",
        help="perceptual hash size (default 8, recommended)",
    )
    group.add_argument(
        "--workers",
        type=non_negative_int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"parallel decoding workers (default {DEFAULT_WORKERS}; 0 = one per core)",
    )
    group.add_argument(
        "--image-timeout",
        type=positive_seconds,
        default=DEFAULT_IMAGE_TIMEOUT,
        metavar="SECONDS",
        help="report an image as failed when decoding it takes longer than this "
        f"(default {DEFAULT_IMAGE_TIMEOUT:g})",
    )
    group.add_argument(
        "--seed",
        type=non_negative_int,
        default=DEFAULT_SEED,
        metavar="N",
        help="random seed; the same seed and images give the same selection "
        f"(default {DEFAULT_SEED})",
    )
    group.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default="burst",
        help="'burst' (default) treats a burst of near-identical frames as one unit; "
        "'spec' is the 1.x bucket stride",
    )
    group.add_argument(
        "--skip-unreadable",
        action="store_true",
        help="skip images that cannot be read and list them in the summary and report "
        "(default: stop at the first one)",
    )
    group.add_argument(
        "--strict",
        action="store_true",
        help="fail (exit 1, writing nothing) when fewer images than the target can be kept "
        "(default: keep what can be read, and warn)",
    )


def _add_cache_options(group: ArgumentGroup) -> None:
    cache = group.add_mutually_exclusive_group()
    cache.add_argument(
        "--cache",
        metavar="FILE",
        help=f"feature cache (SQLite) to reuse between runs (default: {CACHE_FILE} in the user "
        f"cache folder, or in ${CACHE_ENV})",
    )
    cache.add_argument("--no-cache", action="store_true", help="do not use a feature cache")
    group.add_argument(
        "--verify-cache",
        action="store_true",
        help="reuse a cached image only if a digest of the whole file matches too (reads "
        "every file once more; by default size, times and inode are compared, which is free)",
    )


def _add_backend_options(group: ArgumentGroup) -> None:
    group.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help="compute features on this machine (default) or on a Dask cluster "
        '(needs: pip install "smartdownsample[dask]")',
    )
    group.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="Dask scheduler address, e.g. tcp://10.0.0.5:8786 (implies --backend dask; "
        "without it a local Dask cluster is started)",
    )


def add_output_options(parser: argparse.ArgumentParser, *, per_class: bool = False) -> None:
    """The ``outputs`` group of select and balance (``per_class``: balance's wording)."""
    group = parser.add_argument_group("outputs (any combination)")
    _add_file_outputs(group, per_class)
    _add_chart_outputs(group, per_class)
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files and write into non-empty output folders (a copy "
        "or link folder then holds the new selection: what an earlier run put there is "
        "removed, files this tool did not write are kept)",
    )


def _add_file_outputs(group: ArgumentGroup, per_class: bool) -> None:
    group.add_argument(
        "--out",
        metavar="FILE",
        help="write the selected paths, one a line, to FILE ('-' for stdout)",
    )
    group.add_argument(
        "--manifest",
        metavar="FILE.csv",
        help="CSV with every input image: bucket, features, kept or not, and why it failed",
    )
    group.add_argument(
        "--report",
        metavar="FILE.json",
        help="JSON report: parameters, counts, "
        + ("per-class table, " if per_class else "")
        + "bucket table, failures, timing, version",
    )
    group.add_argument(
        "--copy-to",
        metavar="DIR",
        help="copy the selected images into DIR, keeping their folders "
        + ("under ROOT" if per_class else "under their common folder"),
    )
    group.add_argument(
        "--link-to",
        metavar="DIR",
        help="like --copy-to but with hard links where the file system allows, else symbolic "
        "links (a hard link is the same file: editing it edits the original)",
    )


def _add_chart_outputs(group: ArgumentGroup, per_class: bool) -> None:
    group.add_argument(
        "--html",
        type=html_path,
        metavar="FILE.html",
        help="a browsable report page (one self-contained file, opens offline): every bucket "
        "with its kept and excluded images, bursts grouped, the unreadable files"
        + (", one section per class" if per_class else ""),
    )
    suffix = " (one file per downsampled class: FILE-CLASS.png)" if per_class else ""
    group.add_argument(
        "--distribution",
        type=png_path,
        metavar="FILE.png",
        help="save the kept-vs-excluded bar chart per bucket" + suffix,
    )
    group.add_argument(
        "--thumbnails",
        type=png_path,
        metavar="FILE.png",
        help="save 5x5 thumbnail grids of every bucket" + suffix,
    )


def add_verbosity(parser: argparse.ArgumentParser) -> None:
    """The ``messages`` group: progress bars, quiet, debug."""
    group = parser.add_argument_group("messages")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    group.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="only errors (and the selected paths when they go to stdout)",
    )
    add_debug(group)


def add_debug(group: ArgumentGroup) -> None:
    """``--debug``: debug messages and tracebacks."""
    group.add_argument(
        "--debug", action="store_true", help="debug messages, and tracebacks on errors"
    )
