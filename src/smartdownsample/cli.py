"""The ``smartdownsample`` command: ``select``, ``balance`` and ``demo``.

``main(argv)`` parses the arguments, runs the sub-command and returns the
exit code: 0 done, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C), 143
stopped by SIGTERM, 129 by SIGHUP (128 + the signal number, as shells report;
these signals are handled like Ctrl-C: every output is rolled back). Errors
are one line on stderr naming the bad path or value and the fix; ``--debug``
adds the traceback. Progress bars and log messages go to stderr; selected
paths go to stdout (or ``--out``), the summary to stdout (to stderr when the
paths are on stdout, so pipes get only paths).

All output files of a run are staged and put in place together at the end
(:class:`~smartdownsample.outputs.OutputTransaction`): a failed or
interrupted run leaves none of them behind. Input images are never written.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import logging
import math
import os
import re
import shutil
import signal
import sys
import threading
import time
import traceback
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, TYPE_CHECKING, Any, TextIO

from ._exceptions import (
    ImageLoadError,
    InvalidArgumentError,
    MissingExtraError,
    SmartDownsampleError,
)
from ._version import __version__
from .api import MAX_HASH_SIZE, MIN_HASH_SIZE, downsample, natural_order
from .extraction import DEFAULT_IMAGE_TIMEOUT
from .listing import (
    IMAGE_EXTENSIONS,
    STDIN_SOURCE,
    FolderErrorCallback,
    find_images,
    is_image_name,
    list_sources,
    merge_same_files,
)
from .outputs import (
    OutputTransaction,
    TreeExport,
    check_no_links,
    check_output_dir,
    check_output_file,
    check_path_list,
    common_root,
    lock_output_dir,
)
from .paths import absolute_path, file_identity
from .report import count_noun, shortfall, summary_dict

if TYPE_CHECKING:
    from tqdm import tqdm

    from .result import SelectionResult

__all__ = ["build_parser", "default_cache_path", "main", "resolve_target"]

logger = logging.getLogger(__name__)
PACKAGE_LOGGER = "smartdownsample"

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
"""128 + SIGINT, what shells report for a command stopped by Ctrl-C."""

STOP_SIGNALS = ("SIGTERM", "SIGHUP")
"""Signals handled like Ctrl-C (outputs rolled back, exit 128 + the signal number):
``kill``, ``timeout``, a closed terminal, a service manager stopping the job."""

SIGNAL_EXIT_BASE = 128
"""Exit code of a command stopped by signal N is 128 + N, as shells report it."""

DEFAULT_WORKERS = 4
"""Decoding workers (the library's default; 0 means one per core)."""

DEFAULT_SEED = 42
"""The library's default seed, so the CLI and ``sample_diverse`` agree."""

CACHE_ENV = "SMARTDOWNSAMPLE_CACHE_DIR"
"""Environment variable naming the cache folder (overrides the platform default)."""

CACHE_FILE = "features.sqlite"
"""File name of the default feature cache in the cache folder."""

DEMO_DIR = "smartdownsample-demo"
"""Default folder of ``smartdownsample demo``."""

DEMO_IMAGES = 1600
"""Demo size: 1,600 synthetic crops are drawn in ~7 s and selected in ~2 s on 2 cores."""

DEMO_FRACTION = 0.1
"""The demo keeps 10% of its images."""

DEMO_KINDS = ("crops", "mixed")
"""Demo image kinds: ``mixed`` adds full 1920x1080 frames (about 8x slower to draw)."""

MAX_DEMO_WORKERS = 8
"""Processes drawing the demo images (capped by the number of cores)."""

_IMAGE_TYPES = ", ".join(sorted(ext.lstrip(".") for ext in IMAGE_EXTENSIONS))

FLAG_WORDS: tuple[tuple[str, str], ...] = (
    (r"\bimage_loading_errors='skip'", "--skip-unreadable"),
    (r"\bcache=None\b", "--no-cache"),
    (r"\bverify_cache=True\b", "--verify-cache"),
    (r"\btarget_count=(\d+)", r"the target of \1"),
    (r"\btarget_count\b", "the target"),
    (r"\bimage_timeout\b", "--image-timeout"),
    (r"\bn_workers\b", "--workers"),
    (r"\brandom_seed\b", "--seed"),
    (r"\bhash_size\b", "--hash-size"),
    (r"\bbackend='dask'", "--backend dask"),
    (r"the result's failures list them", "the summary and --report list them"),
)
"""The library speaks of its parameters; the command speaks of its flags."""

_FLAG_PATTERNS = tuple((re.compile(pattern), flag) for pattern, flag in FLAG_WORDS)


def in_flag_words(message: str) -> str:
    """A library message with its parameter words said as this command's flags.

    Examples
    --------
    >>> in_flag_words("pass image_loading_errors='skip' to skip unreadable files")
    'pass --skip-unreadable to skip unreadable files'
    >>> in_flag_words("kept 3 images, fewer than target_count=5")
    'kept 3 images, fewer than the target of 5'
    """
    for pattern, flag in _FLAG_PATTERNS:
        message = pattern.sub(flag, message)
    return message


class CommandError(SmartDownsampleError):
    """The command could not do its job (exit code 1); the message says why and what to do."""


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C's KeyboardInterrupt would be.

    Being a KeyboardInterrupt, it takes every clean-up path Ctrl-C takes
    (worker processes stopped, outputs rolled back, cache closed).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


# ---------------------------------------------------------------- argument parsing


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error message (no usage dump) and exit code 2."""

    def error(self, message: str) -> Any:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


def _whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: a whole number of at least ``minimum``."""

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


_positive_int = _whole_number(1)
_non_negative_int = _whole_number(0)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0 or value != value:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def _fraction(text: str) -> float:
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


def _hash_size(text: str) -> int:
    value = _positive_int(text)
    if not MIN_HASH_SIZE <= value <= MAX_HASH_SIZE:
        raise argparse.ArgumentTypeError(
            f"must be between {MIN_HASH_SIZE} and {MAX_HASH_SIZE} (8 is recommended), got {value}"
        )
    return value


def _png_path(text: str) -> str:
    if not text.lower().endswith(".png"):
        raise argparse.ArgumentTypeError(
            f"charts are PNG files: give a name ending in .png, got {text!r}"
        )
    return text


SELECT_EXAMPLES = f"""\
examples:
  smartdownsample select photos/deer --target 1000 --copy-to deer-1000
  smartdownsample select photos/deer --fraction 0.1 --out selected.txt --report report.json
  smartdownsample select images.csv more.txt --target 500 --manifest manifest.csv
  smartdownsample select photos/deer --target 1000 | head

SOURCE is a folder (searched recursively for images: {_IMAGE_TYPES},
any case; hidden folders skipped), a text file with one image path a line, or
a CSV file with a 'path' column (relative paths are taken relative to the list
file's folder), or '-' for paths on standard input (one a line, or
NUL-separated with --null; relative to the current folder), e.g.
  find photos -name '*.JPG' -print0 | smartdownsample select - --null --target 100
One file reached by several paths (hard or symbolic links) counts once.
Without --out, the selected paths are printed on stdout unless
--copy-to, --link-to or --manifest records them."""

BALANCE_EXAMPLES = """\
examples:
  smartdownsample balance crops/ --max-per-class 2000 --copy-to crops-balanced
  smartdownsample balance crops/ --max-per-class 2000 --min-per-class 100 --link-to balanced \\
      --report balance.json

Every immediate subfolder of ROOT is a class. Classes with more than
--max-per-class images are cut to exactly that many with the diversity-keeping
selection; smaller classes are kept whole (their images are not read)."""

DEMO_EXAMPLES = """\
examples:
  smartdownsample demo
  smartdownsample demo /tmp/sds-demo --n-images 4000 --fraction 0.05

Makes a synthetic camera-trap data set in DIR/images (or reuses the one made
before), selects from it and writes DIR/selected.txt, DIR/manifest.csv,
DIR/report.json, DIR/distribution.png and DIR/thumbnails.png (existing ones
only with --overwrite)."""

MAIN_EXAMPLES = """\
commands:
  select   pick N diverse images from folders, list files or CSV files
  balance  cap every class folder of a data set at N images
  demo     make a synthetic data set and run select on it

run 'smartdownsample COMMAND --help' for a command's options and examples."""


def _add_run_options(parser: argparse.ArgumentParser, *, backend: bool = True) -> None:
    group = parser.add_argument_group("selection")
    group.add_argument(
        "--hash-size",
        type=_hash_size,
        default=8,
        metavar="N",
        help="perceptual hash size (default 8, recommended)",
    )
    group.add_argument(
        "--workers",
        type=_non_negative_int,
        default=DEFAULT_WORKERS,
        metavar="N",
        help=f"parallel decoding workers (default {DEFAULT_WORKERS}; 0 = one per core)",
    )
    group.add_argument(
        "--image-timeout",
        type=_positive_seconds,
        default=DEFAULT_IMAGE_TIMEOUT,
        metavar="SECONDS",
        help="report an image as failed when decoding it takes longer than this "
        f"(default {DEFAULT_IMAGE_TIMEOUT:g})",
    )
    group.add_argument(
        "--seed",
        type=_non_negative_int,
        default=DEFAULT_SEED,
        metavar="N",
        help="random seed; the same seed and images give the same selection "
        f"(default {DEFAULT_SEED})",
    )
    group.add_argument(
        "--strategy",
        choices=("burst", "spec"),
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
    if backend:
        group.add_argument(
            "--backend",
            choices=("local", "dask"),
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


def _add_output_options(parser: argparse.ArgumentParser, *, per_class: bool = False) -> None:
    group = parser.add_argument_group("outputs (any combination)")
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
    suffix = " (one file per downsampled class: FILE-CLASS.png)" if per_class else ""
    group.add_argument(
        "--distribution",
        type=_png_path,
        metavar="FILE.png",
        help="save the kept-vs-excluded bar chart per bucket" + suffix,
    )
    group.add_argument(
        "--thumbnails",
        type=_png_path,
        metavar="FILE.png",
        help="save 5x5 thumbnail grids of every bucket" + suffix,
    )
    group.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files and write into non-empty output folders (a copy "
        "or link folder then holds the new selection: what an earlier run put there is "
        "removed, files this tool did not write are kept)",
    )


def _add_verbosity(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("messages")
    group.add_argument("--no-progress", action="store_true", help="no progress bars")
    group.add_argument(
        "--quiet",
        "-q",
        action="store_true",
        help="only errors (and the selected paths when they go to stdout)",
    )
    group.add_argument(
        "--debug", action="store_true", help="debug messages, and tracebacks on errors"
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``smartdownsample`` command.

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

    select = commands.add_parser(
        "select",
        help="pick N diverse images",
        description="Pick exactly N diverse images from folders, list files or CSV files.",
        epilog=SELECT_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    select.add_argument(
        "sources",
        nargs="+",
        metavar="SOURCE",
        help=f"folder, list file or CSV; '{STDIN_SOURCE}' reads paths from standard input",
    )
    select.add_argument(
        "--null",
        action="store_true",
        help="list files and standard input hold NUL-separated paths (find -print0)",
    )
    amount = select.add_mutually_exclusive_group(required=True)
    amount.add_argument("--target", type=_positive_int, metavar="N", help="keep exactly N images")
    amount.add_argument(
        "--fraction",
        type=_fraction,
        metavar="F",
        help="keep this share of the images, 0 < F <= 1 (rounded half up, at least 1)",
    )
    _add_run_options(select)
    _add_output_options(select)
    _add_verbosity(select)
    select.set_defaults(handler=_run_select)

    balance = commands.add_parser(
        "balance",
        help="cap every class folder at N images",
        description="Cap every class (immediate subfolder of ROOT) at N diverse images.",
        epilog=BALANCE_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    balance.add_argument("root", metavar="ROOT", help="folder with one subfolder per class")
    balance.add_argument(
        "--max-per-class",
        type=_positive_int,
        required=True,
        metavar="N",
        help="classes with more images are cut to exactly N",
    )
    balance.add_argument(
        "--min-per-class",
        type=_positive_int,
        metavar="M",
        help="warn about classes with fewer than M images (they are kept whole)",
    )
    _add_run_options(balance)
    _add_output_options(balance, per_class=True)
    _add_verbosity(balance)
    balance.set_defaults(handler=_run_balance)

    demo = commands.add_parser(
        "demo",
        help="run select on a synthetic camera-trap data set",
        description="Make a synthetic camera-trap data set and run select on it.",
        epilog=DEMO_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    demo.add_argument(
        "dir",
        nargs="?",
        default=DEMO_DIR,
        metavar="DIR",
        help=f"folder for the data set and outputs (default ./{DEMO_DIR})",
    )
    demo.add_argument(
        "--n-images",
        type=_positive_int,
        default=DEMO_IMAGES,
        metavar="N",
        help=f"images in the synthetic data set (default {DEMO_IMAGES:,})",
    )
    demo.add_argument(
        "--kind",
        choices=DEMO_KINDS,
        default="crops",
        help="animal crops (default) or a mix of crops and full frames (slower)",
    )
    amount = demo.add_mutually_exclusive_group()
    amount.add_argument("--target", type=_positive_int, metavar="N", help="keep exactly N images")
    amount.add_argument(
        "--fraction",
        type=_fraction,
        metavar="F",
        help=f"keep this share of the images (default {DEMO_FRACTION})",
    )
    demo.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the outputs of an earlier demo run in DIR",
    )
    _add_run_options(demo, backend=False)
    _add_verbosity(demo)
    demo.set_defaults(handler=_run_demo, backend="local", scheduler=None)
    return parser


# ---------------------------------------------------------------- helpers


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


def _cache_path(args: argparse.Namespace) -> str | None:
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


class _LineFormatter(logging.Formatter):
    def __init__(self, debug: bool) -> None:
        super().__init__("%(name)s: %(message)s" if debug else "%(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = in_flag_words(super().format(record))
        return f"smartdownsample: {record.levelname.lower()}: {text}"


class _TqdmHandler(logging.StreamHandler[IO[str]]):
    """Log lines on stderr that do not break progress bars."""

    def emit(self, record: logging.LogRecord) -> None:
        from tqdm import tqdm as bar_class

        try:
            bar_class.write(self.format(record), file=self.stream)
        except (OSError, ValueError):
            self.handleError(record)


@contextlib.contextmanager
def _logging(args: argparse.Namespace) -> Iterator[None]:
    package = logging.getLogger(PACKAGE_LOGGER)
    handler = _TqdmHandler(sys.stderr)
    handler.setFormatter(_LineFormatter(args.debug))
    level = logging.DEBUG if args.debug else logging.ERROR if args.quiet else logging.WARNING
    previous = package.level
    package.addHandler(handler)
    package.setLevel(level)
    show_warning = warnings.showwarning

    def one_line_warning(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        # Python warnings (Pillow's, the cache's) as one line like the log messages;
        # --quiet hides them as it hides logged warnings.
        if args.quiet:
            return
        text = f"{category.__name__}: {message}" if args.debug else str(message)
        print(f"smartdownsample: warning: {_one_line(in_flag_words(text))}", file=sys.stderr)

    warnings.showwarning = one_line_warning
    try:
        yield
    finally:
        warnings.showwarning = show_warning
        package.removeHandler(handler)
        package.setLevel(previous)


def _show_progress(args: argparse.Namespace) -> bool:
    return not (args.no_progress or args.quiet)


class _Bar:
    """A tqdm bar on stderr, or nothing."""

    def __init__(self, enabled: bool, total: int | None, desc: str) -> None:
        self._bar: tqdm[Any] | None = None
        if enabled:
            from tqdm.auto import tqdm as make_bar

            self._bar = make_bar(total=total, desc=desc, unit="img", dynamic_ncols=True)

    def add(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def set(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count - self._bar.n)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _offset(bar: _Bar, done: int) -> Callable[[int], None]:
    """A found-so-far callback for one folder, counting on from ``done``."""

    def update(count: int) -> None:
        bar.set(done + count)

    return update


@contextlib.contextmanager
def _bar(enabled: bool, total: int | None, desc: str) -> Iterator[_Bar]:
    bar = _Bar(enabled, total, desc)
    try:
        yield bar
    finally:
        bar.close()


@dataclass
class _Outputs:
    """The output options of select / balance, checked."""

    out: str | None
    paths_to_stdout: bool
    manifest: str | None
    report: str | None
    copy_to: str | None
    link_to: str | None
    distribution: str | None
    thumbnails: str | None
    overwrite: bool
    locks: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)
    """Locks held on the copy and link folders, released when the command ends."""

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> _Outputs:
        out = "-" if _is_own_stdout(args.out) else args.out
        to_stdout = out == "-" or (
            out is None and not (args.copy_to or args.link_to or args.manifest)
        )
        outputs = cls(
            out=None if out == "-" else out,
            paths_to_stdout=to_stdout,
            manifest=args.manifest,
            report=args.report,
            copy_to=args.copy_to,
            link_to=args.link_to,
            distribution=args.distribution,
            thumbnails=args.thumbnails,
            overwrite=args.overwrite,
            locks=getattr(args, "cleanup", None) or contextlib.ExitStack(),
        )
        seen: dict[str, str] = {}
        for option, path in outputs.named():
            key = os.path.normcase(absolute_path(path))
            if key in seen:
                raise InvalidArgumentError(
                    f"{seen[key]} and {option} both name {path!r}; give each output its own path"
                )
            seen[key] = option
        return outputs

    def named(self) -> list[tuple[str, str]]:
        pairs = [
            ("--out", self.out),
            ("--manifest", self.manifest),
            ("--report", self.report),
            ("--copy-to", self.copy_to),
            ("--link-to", self.link_to),
            ("--distribution", self.distribution),
            ("--thumbnails", self.thumbnails),
        ]
        return [(option, path) for option, path in pairs if path]

    def check(
        self,
        source_folders: Sequence[str],
        image_paths: Sequence[str],
        chart_names: Sequence[str] = ("",),
    ) -> None:
        """Refuse unsafe or occupied destinations before any work is done."""
        for option, folder in (("--copy-to", self.copy_to), ("--link-to", self.link_to)):
            if folder:
                check_output_dir(
                    folder,
                    option=option,
                    source_folders=source_folders,
                    image_paths=image_paths,
                    overwrite=self.overwrite,
                )
        for option, path in (
            ("--out", self.out),
            ("--manifest", self.manifest),
            ("--report", self.report),
        ):
            if path:
                check_output_file(
                    path, option=option, image_paths=image_paths, overwrite=self.overwrite
                )
        if self.out:
            check_path_list(image_paths, option="--out")
        for option, path in (
            ("--distribution", self.distribution),
            ("--thumbnails", self.thumbnails),
        ):
            if not path:
                continue
            for name in chart_names:
                chart = _chart_path(path, name)
                _refuse_inside(option, chart, source_folders)
                check_output_file(
                    chart, option=option, image_paths=image_paths, overwrite=self.overwrite
                )
        for option, folder in (("--copy-to", self.copy_to), ("--link-to", self.link_to)):
            if folder:  # last: the lock creates the folder; held until the command ends
                lock = lock_output_dir(folder, option=option, overwrite=self.overwrite)
                self.locks.callback(lock.release)
                check_no_links(
                    folder,
                    {os.path.dirname(path) for path in image_paths},
                    option=option,
                    root=common_root(image_paths, source_folders),
                )


def _is_own_stdout(path: str | None) -> bool:
    """True if ``path`` (``/dev/stdout``, ``/proc/self/fd/1``) is this process's stdout."""
    if not path or path == "-":
        return False
    try:
        return os.path.samestat(os.stat(path), os.fstat(sys.stdout.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


def _chart_path(path: str, name: str) -> str:
    """``path`` for select; ``stem-NAME.png`` for a balance class."""
    if not name:
        return path
    stem, extension = os.path.splitext(path)
    return f"{stem}-{name}{extension}"


def _refuse_inside(option: str, path: str, folders: Sequence[str]) -> None:
    real = os.path.normcase(os.path.realpath(path))
    for folder in folders:
        base = os.path.normcase(os.path.realpath(folder)).rstrip(os.sep) + os.sep
        if real.startswith(base):
            raise InvalidArgumentError(
                f"{option} {path!r} is inside the SOURCE folder {folder!r}, where the next run "
                "would take it for an input image; save it outside the SOURCE folders"
            )


def _connect_dask(args: argparse.Namespace, stack: contextlib.ExitStack) -> Any:
    """A ``distributed.Client`` for ``--scheduler`` (None: the library decides)."""
    if args.backend != "dask" or not args.scheduler:
        return None
    try:
        import distributed
    except ImportError as exc:
        raise MissingExtraError("the Dask backend", "dask", "distributed") from exc
    try:
        client_class: Any = distributed.Client
        client: Any = client_class(args.scheduler)
    except OSError as exc:
        raise CommandError(
            f"cannot connect to the Dask scheduler at {args.scheduler!r} ({exc}); check the "
            "address (e.g. tcp://host:8786) and that the scheduler is running"
        ) from exc
    stack.callback(client.close)
    return client


def _resolve_backend(args: argparse.Namespace) -> None:
    if args.scheduler and args.backend == "local":
        raise InvalidArgumentError(
            f"--scheduler {args.scheduler!r} needs --backend dask; drop --backend local"
        )
    if args.backend is None:
        args.backend = "dask" if args.scheduler else "local"


def _select(
    args: argparse.Namespace,
    paths: Sequence[str],
    target: int,
    stack: contextlib.ExitStack,
    client_holder: list[Any],
) -> SelectionResult:
    if not client_holder:
        client_holder.append(_connect_dask(args, stack))
    return downsample(
        paths,
        target,
        hash_size=args.hash_size,
        n_workers=args.workers,
        show_progress=_show_progress(args),
        random_seed=args.seed,
        image_loading_errors="skip" if args.skip_unreadable else "raise",
        strategy=args.strategy,
        cache=args.cache_path,
        verify_cache=args.verify_cache,
        backend=args.backend,
        client=client_holder[0],
        image_timeout=args.image_timeout,
    )


def _parameters(args: argparse.Namespace) -> dict[str, Any]:
    names = (
        "target",
        "fraction",
        "max_per_class",
        "min_per_class",
        "hash_size",
        "workers",
        "image_timeout",
        "seed",
        "strategy",
        "skip_unreadable",
        "verify_cache",
        "backend",
        "scheduler",
        "overwrite",
        "n_images",
        "kind",
    )
    params = {name: getattr(args, name) for name in names if hasattr(args, name)}
    params["cache"] = args.cache_path
    return params


def _report_header(command: str, args: argparse.Namespace) -> dict[str, Any]:
    """The fields every JSON report starts with."""
    return {
        "tool": "smartdownsample",
        "version": __version__,
        "command": command,
        "created": _now(),
        "argv": list(args.argv),
    }


def _timing(started: float, listed: float, selected_at: float, finished: float) -> dict[str, float]:
    """Seconds per phase of a run, for the JSON report."""
    return {
        "listing_seconds": round(listed - started, 3),
        "selection_seconds": round(selected_at - listed, 3),
        "outputs_seconds": round(finished - selected_at, 3),
        "total_seconds": round(finished - started, 3),
    }


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


@dataclass
class _Written:
    """What the outputs step wrote, for the summary and the report."""

    lines: list[str] = field(default_factory=list)
    record: dict[str, Any] = field(default_factory=dict)


def _write_common(
    outputs: _Outputs,
    tx: OutputTransaction,
    selected: Sequence[str],
    root: str,
    manifest: tuple[Sequence[str] | None, Any] | None,
    show_progress: bool,
) -> _Written:
    written = _Written()
    if outputs.out:
        count = tx.write_path_list(outputs.out, selected)
        written.lines.append(f"selected paths ({count:,}): {outputs.out}")
        written.record["out"] = outputs.out
    elif outputs.paths_to_stdout:
        written.record["out"] = "stdout"
    if outputs.manifest and manifest is not None:
        fieldnames, rows = manifest
        count = tx.write_csv(outputs.manifest, rows, fieldnames)
        written.lines.append(f"manifest ({count:,} rows): {outputs.manifest}")
        written.record["manifest"] = outputs.manifest
    for option, folder, mode in (
        ("copy_to", outputs.copy_to, "copy"),
        ("link_to", outputs.link_to, "link"),
    ):
        if not folder:
            continue
        desc = "Copying" if mode == "copy" else "Linking"
        with _bar(show_progress and bool(selected), len(selected), desc) as bar:
            export: TreeExport = tx.export_tree(
                selected,
                folder,
                mode="copy" if mode == "copy" else "link",
                root=root,
                progress=bar.add,
            )
        written.lines.append(export.describe())
        written.record[option] = {
            "folder": export.dest,
            "root": export.root,
            "files": export.n_files,
            "copied": export.n_copied,
            "hard_links": export.n_hardlinks,
            "symbolic_links": export.n_symlinks,
            "removed_from_earlier_run": export.n_removed,
            "kept_changed_from_earlier_run": len(export.kept_changed),
            "kept_other_files": len(export.kept_other),
        }
    return written


def _save_charts(
    outputs: _Outputs,
    tx: OutputTransaction,
    result: SelectionResult,
    name: str,
    written: _Written,
) -> None:
    for option, path, save in (
        ("distribution", outputs.distribution, result.save_distribution),
        ("thumbnails", outputs.thumbnails, result.save_thumbnails),
    ):
        if not path:
            continue
        chart = _chart_path(path, name)
        save(tx.temp_for(chart, suffix=".png"))
        written.lines.append(f"{option} chart: {chart}")
        written.record.setdefault(option, []).append(chart)


def _print_paths(paths: Sequence[str]) -> None:
    stream = sys.stdout
    try:
        for path in paths:
            _write_name(stream, path)
            stream.write("\n")
        stream.flush()
    except BrokenPipeError:
        raise
    except OSError as exc:
        _silence_stdout()  # what is still buffered would fail again at exit
        raise CommandError(
            f"cannot write the selected paths to standard output: {exc.strerror or exc}; "
            "free some space where it goes, or write them to a file with --out FILE"
        ) from exc


def _write_name(stream: IO[str], path: str) -> None:
    """Write a path; a name that is not UTF-8 (surrogate escapes) as its original bytes."""
    try:
        stream.write(path)
    except UnicodeEncodeError:
        buffer = getattr(stream, "buffer", None)
        if buffer is None:
            stream.write(path.encode("utf-8", "surrogateescape").decode("utf-8", "replace"))
            return
        stream.flush()
        buffer.write(os.fsencode(path))
        buffer.flush()


STREAM_ERRORS = (("stdout", "surrogateescape"), ("stderr", "backslashreplace"))
"""How stdout and stderr write file names that are not UTF-8: paths on stdout as
their original bytes (for xargs and shells), messages on stderr escaped."""


@contextlib.contextmanager
def _name_safe_streams() -> Iterator[None]:
    """Let stdout and stderr write any file name for the run, then restore them."""
    restore: list[tuple[Any, str]] = []
    for name, errors in STREAM_ERRORS:
        stream: Any = getattr(sys, name, None)
        previous = getattr(stream, "errors", None)
        if previous != "strict" or not hasattr(stream, "reconfigure"):
            continue
        with contextlib.suppress(ValueError, OSError, AttributeError):
            stream.reconfigure(errors=errors)
            restore.append((stream, previous))
    try:
        yield
    finally:
        for stream, previous in restore:
            with contextlib.suppress(ValueError, OSError, AttributeError):
                stream.reconfigure(errors=previous)


def _silence_stdout() -> None:
    with contextlib.suppress(OSError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _info_stream(outputs: _Outputs | None) -> IO[str]:
    return sys.stderr if outputs is not None and outputs.paths_to_stdout else sys.stdout


def _seconds(value: float) -> str:
    return f"{value:.1f} s" if value < 120 else f"{value / 60:.1f} min"


# ---------------------------------------------------------------- select


def _run_select(args: argparse.Namespace, started: float) -> int:
    _resolve_backend(args)
    outputs = _Outputs.from_args(args)
    show = _show_progress(args)
    with _bar(show, None, "Finding images") as bar:
        listing = list_sources(
            args.sources, on_found=bar.set, on_error=_folder_errors(args), null=args.null
        )
    listed = time.perf_counter()
    if not listing.paths:
        raise CommandError(
            f"no images found in {', '.join(repr(s) for s in args.sources)} (looked for "
            f"{_IMAGE_TYPES} files, any case, outside hidden folders); check the SOURCE"
        )
    outputs.check(listing.folders, listing.paths)
    args.cache_path = _cache_path(args)
    target = resolve_target(len(listing.paths), args.target, args.fraction)
    with contextlib.ExitStack() as stack:
        result = _select(args, listing.paths, target, stack, [])
    _check_strict(args, [("", result)])
    selected_at = time.perf_counter()
    root = common_root(listing.paths, listing.folders)
    with OutputTransaction() as tx:
        written = _write_common(
            outputs,
            tx,
            result.selected_paths,
            root,
            (None, result.manifest_rows()),
            show,
        )
        _save_charts(outputs, tx, result, "", written)
        if outputs.report:
            finished = time.perf_counter()
            report = {
                **_report_header("select", args),
                "parameters": {**_parameters(args), "target_count": target},
                "sources": [{"source": s, "images": n} for s, n in listing.per_source],
                "n_duplicates_dropped": listing.n_duplicates,
                "n_links_merged": len(listing.merged),
                **_with_folder_failures(summary_dict(result), listing.failures),
                "outputs": written.record,
                "timing": _timing(started, listed, selected_at, finished),
            }
            tx.write_json(outputs.report, report)
            written.lines.append(f"report: {outputs.report}")
        tx.commit()
    if outputs.paths_to_stdout:
        _print_paths(result.selected_paths)
        written.lines.append("selected paths: printed on stdout")
    if not args.quiet:
        stream = _info_stream(outputs)
        print(result.summary(), file=stream)
        print(
            _final_line(result, time.perf_counter() - started, len(listing.failures)),
            file=stream,
        )
        for line in written.lines:
            print(f"  {line}", file=stream)
    return EXIT_OK


def _check_strict(args: argparse.Namespace, results: Sequence[tuple[str, SelectionResult]]) -> None:
    """With ``--strict``, a selection short of its target fails the run before any output."""
    if not args.strict:
        return
    short = [(name, result) for name, result in results if shortfall(result)]
    if not short:
        return
    name, result = short[0]
    where = f"class {name!r}: " if name else ""
    raise CommandError(
        f"{where}kept {result.n_selected:,} of the {result.target_count:,} images asked for; "
        f"only {count_noun(result.n_readable, 'image')} could be read (--strict); nothing was "
        "written; drop --strict to keep what can be read"
    )


def _final_line(result: SelectionResult, elapsed: float, folders_failed: int = 0) -> str:
    failed = len(result.failures)
    total = len(result.paths)
    return (
        f"done: kept {result.n_selected:,} of {count_noun(total, 'image')} from "
        f"{count_noun(len(result.buckets), 'bucket')}; {failed:,} unreadable"
        f"{' (skipped)' if failed else ''}{_folders_skipped(folders_failed)}; "
        f"{_seconds(elapsed)}"
    )


def _folders_skipped(count: int) -> str:
    if not count:
        return ""
    return f"; {count:,} folder{'' if count == 1 else 's'} could not be listed (skipped)"


def _folder_errors(args: argparse.Namespace) -> FolderErrorCallback:
    """A folder that cannot be listed stops the run, or with --skip-unreadable is skipped."""
    if args.skip_unreadable:

        def skip(folder: str, exc: OSError) -> None:
            logger.warning("skipped folder %s: cannot list it: %s", folder, exc.strerror or exc)

        return skip

    def stop(folder: str, exc: OSError) -> None:
        raise CommandError(
            f"cannot list folder {folder!r}: {exc.strerror or exc}; make it readable, or pass "
            "--skip-unreadable to skip it (it is then listed in the summary and the report)"
        ) from exc

    return stop


def _with_folder_failures(
    summary: dict[str, Any], failures: Sequence[tuple[str, str]]
) -> dict[str, Any]:
    """A report summary whose failures and ``n_failed`` include the folders not listed."""
    if not failures:
        return summary
    folders = [
        {"path": folder, "index": None, "reason": f"cannot list folder: {reason}"}
        for folder, reason in failures
    ]
    return {
        **summary,
        "n_failed": summary["n_failed"] + len(folders),
        "failures": folders + list(summary["failures"]),
    }


# ---------------------------------------------------------------- balance


@dataclass
class _ClassOutcome:
    name: str
    paths: list[str]
    kept: list[str]
    result: SelectionResult | None

    @property
    def action(self) -> str:
        return "kept whole" if self.result is None else "downsampled"

    def as_dict(self) -> dict[str, Any]:
        result = self.result
        return {
            "class": self.name,
            "n_images": len(self.paths),
            "n_kept": len(self.kept),
            "action": self.action,
            "n_failed": 0 if result is None else len(result.failures),
            "n_buckets": None if result is None else len(result.buckets),
            "summary": None if result is None else summary_dict(result),
        }


def _class_folders(root: str) -> tuple[list[str], int]:
    """Immediate non-hidden subfolders of ``root`` (natural order) and loose images in it."""
    names: list[str] = []
    loose = 0
    with os.scandir(root) as entries:
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False
            if is_dir:
                names.append(entry.name)
            elif is_image_name(entry.name):
                loose += 1
    order = natural_order(names)
    return [names[i] for i in order], loose


def _merge_class_aliases(
    root: str, names: list[str]
) -> tuple[list[str], dict[tuple[int, int], str]]:
    """Class folders without links to another class folder, and the folders not to enter.

    A class folder that is a link to another one (``deer_alias -> deer``) is
    not a second class: its images count once, in the folder it links to
    (the real folder, or the first in natural order if all are links).
    Returns the class names and ROOT's and every class folder's identity.
    """
    exclude: dict[tuple[int, int], str] = {}
    root_id = file_identity(root)
    if root_id is not None:
        exclude[root_id] = root
    kept: dict[tuple[int, int], str] = {}
    ranked = sorted(
        range(len(names)), key=lambda i: (os.path.islink(os.path.join(root, names[i])), i)
    )
    aliases: set[str] = set()
    for index in ranked:
        folder = os.path.join(root, names[index])
        identity = file_identity(folder)
        if identity is None:
            continue
        if identity in kept:
            logger.warning(
                "class folder %s is a link to the class folder %s: its images count once, "
                "in class %r",
                folder,
                os.path.join(root, kept[identity]),
                kept[identity],
            )
            aliases.add(names[index])
            continue
        kept[identity] = names[index]
        exclude[identity] = folder
    return [name for name in names if name not in aliases], exclude


def _merge_linked_files(
    classes: list[tuple[str, list[str]]],
) -> tuple[list[tuple[str, list[str]]], int]:
    """Classes without paths that name a file an earlier class (or path) already has."""
    everything = [path for _, found in classes for path in found]
    _, merged = merge_same_files(everything)
    if not merged:
        return classes, 0
    dropped = {path for path, _ in merged}
    return [(name, [p for p in found if p not in dropped]) for name, found in classes], len(merged)


def _balance_manifest(
    outcomes: Sequence[_ClassOutcome],
) -> tuple[list[str], Iterator[dict[str, Any]]]:
    columns: list[str] = ["path", "index", "kept"]
    for outcome in outcomes:
        if outcome.result is not None and outcome.result.paths:
            columns = list(next(outcome.result.manifest_rows()))
            break

    def rows() -> Iterator[dict[str, Any]]:
        for outcome in outcomes:
            if outcome.result is None:
                for index, path in enumerate(outcome.paths):
                    yield {
                        "class": outcome.name,
                        "action": outcome.action,
                        "path": path,
                        "index": index,
                        "kept": True,
                    }
            else:
                for row in outcome.result.manifest_rows():
                    yield {"class": outcome.name, "action": outcome.action, **row}

    return ["class", "action", *columns], rows()


def _run_balance(args: argparse.Namespace, started: float) -> int:
    _resolve_backend(args)
    outputs = _Outputs.from_args(args)
    if args.min_per_class is not None and args.min_per_class > args.max_per_class:
        raise InvalidArgumentError(
            f"--min-per-class {args.min_per_class} is above --max-per-class "
            f"{args.max_per_class}; give a minimum at or below the maximum"
        )
    root = args.root
    if not os.path.isdir(root):
        problem = "does not exist" if not os.path.exists(root) else "is not a folder"
        raise InvalidArgumentError(
            f"ROOT {root!r} {problem}; give the folder that holds one subfolder per class"
        )
    names, loose = _class_folders(root)
    if not names:
        raise CommandError(
            f"ROOT {root!r} has no subfolders; balance expects one subfolder per class "
            "(for a single folder of images use 'smartdownsample select')"
        )
    if loose:
        logger.warning(
            "%d images directly in %s belong to no class folder and are left out", loose, root
        )
    show = _show_progress(args)
    names, folders = _merge_class_aliases(root, names)
    classes: list[tuple[str, list[str]]] = []
    folder_failures: list[tuple[str, str]] = []
    policy = _folder_errors(args)

    def not_listed(folder: str, exc: OSError) -> None:
        folder_failures.append((folder, str(exc.strerror or exc)))
        policy(folder, exc)

    with _bar(show, None, "Finding images") as bar:
        for name in names:
            done = sum(len(found) for _, found in classes)
            found = find_images(
                os.path.join(root, name),
                on_found=_offset(bar, done),
                on_error=not_listed,
                exclude=folders,
            )
            classes.append((name, found))
    classes, n_merged = _merge_linked_files(classes)
    listed = time.perf_counter()
    all_paths = [path for _, found in classes for path in found]
    cap = args.max_per_class
    to_cut = [name for name, found in classes if len(found) > cap]
    outputs.check([root], all_paths, chart_names=to_cut)
    args.cache_path = _cache_path(args)
    for name, found in classes:
        if not found:
            logger.warning("class %r has no images", name)
        elif args.min_per_class is not None and len(found) < args.min_per_class:
            logger.warning(
                "class %r has only %d images, fewer than --min-per-class %d",
                name,
                len(found),
                args.min_per_class,
            )
    outcomes: list[_ClassOutcome] = []
    holder: list[Any] = []
    with contextlib.ExitStack() as stack:
        for number, (name, found) in enumerate(classes, start=1):
            if len(found) <= cap:
                outcomes.append(_ClassOutcome(name, found, list(found), None))
                continue
            if show:
                print(
                    f"[{number}/{len(classes)}] {name}: "
                    f"{count_noun(len(found), 'image')} -> {cap:,}",
                    file=sys.stderr,
                )
            result = _select(args, found, cap, stack, holder)
            outcomes.append(_ClassOutcome(name, found, result.selected_paths, result))
    _check_strict(args, [(o.name, o.result) for o in outcomes if o.result is not None])
    selected_at = time.perf_counter()
    selected = [path for outcome in outcomes for path in outcome.kept]
    with OutputTransaction() as tx:
        written = _write_common(
            outputs, tx, selected, os.path.abspath(root), _balance_manifest(outcomes), show
        )
        for outcome in outcomes:
            if outcome.result is not None:
                _save_charts(outputs, tx, outcome.result, outcome.name, written)
        if not to_cut:
            _no_charts(outputs, cap, written)
        if outputs.report:
            finished = time.perf_counter()
            report = {
                **_report_header("balance", args),
                "parameters": _parameters(args),
                "root": root,
                "n_classes": len(outcomes),
                "n_images": len(all_paths),
                "n_selected": len(selected),
                "n_failed": sum(len(o.result.failures) for o in outcomes if o.result)
                + len(folder_failures),
                "n_images_outside_classes": loose,
                "n_links_merged": n_merged,
                "folders_not_listed": [
                    {"path": folder, "reason": reason} for folder, reason in folder_failures
                ],
                "classes": [outcome.as_dict() for outcome in outcomes],
                "outputs": written.record,
                "timing": _timing(started, listed, selected_at, finished),
            }
            tx.write_json(outputs.report, report)
            written.lines.append(f"report: {outputs.report}")
        tx.commit()
    if outputs.paths_to_stdout:
        _print_paths(selected)
        written.lines.append("selected paths: printed on stdout")
    if not args.quiet:
        stream = _info_stream(outputs)
        print(_class_table(outcomes, cap), file=stream)
        failed = sum(len(o.result.failures) for o in outcomes if o.result)
        print(
            f"done: kept {len(selected):,} of {count_noun(len(all_paths), 'image')} in "
            f"{count_noun(len(outcomes), 'class', 'classes')}; {failed:,} unreadable"
            f"{' (skipped)' if failed else ''}{_folders_skipped(len(folder_failures))}; "
            f"{_seconds(time.perf_counter() - started)}",
            file=stream,
        )
        for line in written.lines:
            print(f"  {line}", file=stream)
    return EXIT_OK


def _no_charts(outputs: _Outputs, cap: int, written: _Written) -> None:
    """Say why ``--distribution``/``--thumbnails`` wrote nothing: no class was cut."""
    charts = (("--distribution", outputs.distribution), ("--thumbnails", outputs.thumbnails))
    for option, path in charts:
        if path:
            message = (
                f"{option}: no chart written: no class has more than --max-per-class "
                f"{cap:,} images, so none was downsampled (charts show downsampled classes)"
            )
            logger.warning("%s", message)
            written.record.setdefault(option.lstrip("-"), [])


def _class_table(outcomes: Sequence[_ClassOutcome], cap: int) -> str:
    width = max([len("class"), *(len(o.name) for o in outcomes)])
    header = f"{'class':<{width}} {'images':>10} {'kept':>10}  action"
    lines = [
        f"smartdownsample balance: at most {cap:,} images per class",
        header,
        "-" * len(header),
    ]
    for outcome in outcomes:
        action = outcome.action
        if outcome.result is not None:
            action += f" ({len(outcome.result.buckets)} buckets"
            if outcome.result.failures:
                action += f", {len(outcome.result.failures)} unreadable"
            action += ")"
        lines.append(
            f"{outcome.name:<{width}} {len(outcome.paths):>10,} {len(outcome.kept):>10,}  {action}"
        )
    lines.append("-" * len(header))
    total = sum(len(o.paths) for o in outcomes)
    kept = sum(len(o.kept) for o in outcomes)
    lines.append(f"{'total':<{width}} {total:>10,} {kept:>10,}")
    return "\n".join(lines)


# ---------------------------------------------------------------- demo


def _demo_dataset(args: argparse.Namespace) -> tuple[list[str], bool]:
    """The demo images (made now, or reused) and whether they were reused."""
    from .synthetic import GROUND_TRUTH_NAME, load_dataset, make_dataset

    folder = args.dir
    images = os.path.join(folder, "images")
    if os.path.exists(os.path.join(images, GROUND_TRUTH_NAME)):
        return load_dataset(images).paths, True
    if os.path.exists(images):
        raise InvalidArgumentError(
            f"{images!r} exists but holds no finished demo data set; choose another DIR "
            "(the demo never deletes files)"
        )
    if os.path.isfile(folder):
        raise InvalidArgumentError(f"demo DIR {folder!r} is a file; give a folder path")
    os.makedirs(folder, exist_ok=True)
    partial = os.path.join(folder, f".images-partial-{uuid.uuid4().hex[:8]}")
    workers = max(1, min(os.cpu_count() or 1, MAX_DEMO_WORKERS))
    if not args.quiet:
        print(
            f"making {args.n_images:,} synthetic camera-trap {args.kind} in {images} ...",
            file=sys.stderr,
        )
    try:
        make_dataset(partial, args.n_images, kind=args.kind, seed=0, n_workers=workers)
        os.replace(partial, images)
    finally:
        if os.path.exists(partial):  # our own half-made folder: interrupted or failed
            shutil.rmtree(partial, ignore_errors=True)
    return load_dataset(images).paths, False


DEMO_OUTPUTS = ("selected.txt", "manifest.csv", "report.json", "distribution.png", "thumbnails.png")
"""Files the demo writes into DIR."""


def _check_demo_outputs(files: Mapping[str, str], overwrite: bool) -> None:
    """Refuse to replace an earlier demo's outputs without ``--overwrite``, as select does."""
    for path in files.values():
        if os.path.lexists(path) and not overwrite:
            raise InvalidArgumentError(
                f"demo output {path!r} already exists; choose another DIR, or pass "
                "--overwrite to replace the outputs in it"
            )
        check_output_file(path, option="demo output", image_paths=(), overwrite=True)


def _run_demo(args: argparse.Namespace, started: float) -> int:
    folder = args.dir
    files = {name: os.path.join(folder, name) for name in DEMO_OUTPUTS}
    _check_demo_outputs(files, args.overwrite)
    paths, reused = _demo_dataset(args)
    if reused and not args.quiet:
        print(
            f"reusing the demo data set in {os.path.join(args.dir, 'images')} "
            f"({count_noun(len(paths), 'image')})",
            file=sys.stderr,
        )
    made = time.perf_counter()
    target = resolve_target(len(paths), args.target, args.fraction or DEMO_FRACTION)
    args.cache_path = _cache_path(args)
    with contextlib.ExitStack() as stack:
        result = _select(args, paths, target, stack, [None])
    selected_at = time.perf_counter()
    with OutputTransaction() as tx:
        tx.write_lines(files["selected.txt"], result.selected_paths)
        tx.write_csv(files["manifest.csv"], result.manifest_rows())
        result.save_distribution(tx.temp_for(files["distribution.png"], suffix=".png"))
        result.save_thumbnails(tx.temp_for(files["thumbnails.png"], suffix=".png"))
        finished = time.perf_counter()
        report = {
            "tool": "smartdownsample",
            "version": __version__,
            "command": "demo",
            "created": _now(),
            "argv": list(args.argv),
            "parameters": {**_parameters(args), "target_count": target},
            "dataset": os.path.join(folder, "images"),
            "dataset_reused": reused,
            **summary_dict(result),
            "outputs": {name: path for name, path in files.items()},
            "timing": {
                "dataset_seconds": round(made - started, 3),
                "selection_seconds": round(selected_at - made, 3),
                "outputs_seconds": round(finished - selected_at, 3),
                "total_seconds": round(finished - started, 3),
            },
        }
        tx.write_json(files["report.json"], report)
        tx.commit()
    if not args.quiet:
        print(result.summary())
        print(_final_line(result, time.perf_counter() - started))
        print(f"demo outputs in {folder}:")
        descriptions = {
            "distribution.png": "kept vs excluded images per bucket (bar chart)",
            "thumbnails.png": "each bucket's kept images, then excluded; kept green, excluded red",
            "selected.txt": "the selected paths, one a line",
            "manifest.csv": "every image with its bucket, burst, features and kept or not",
            "report.json": "parameters, counts, bucket table and timing",
        }
        for name, text in descriptions.items():
            print(f"  {files[name]}  - {text}")
        print(
            "next: smartdownsample select YOUR_FOLDER --target N --copy-to SMALLER_COPY "
            "(see smartdownsample select --help)"
        )
    return EXIT_OK


# ---------------------------------------------------------------- main


def _error(message: str) -> None:
    if sys.stderr is not None:
        print(f"smartdownsample: error: {in_flag_words(message)}", file=sys.stderr)


def _exit_code(code: object) -> int:
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return EXIT_FAILED


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _handle_errors(args: argparse.Namespace, run: Callable[[], int]) -> int:
    try:
        return run()
    except _Stopped as exc:
        name = signal.Signals(exc.signum).name
        _error(f"stopped by {name}; no output files were written")
        return SIGNAL_EXIT_BASE + exc.signum
    except KeyboardInterrupt:
        _error("interrupted; no output files were written")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. piped into `head`): stop quietly.
        _silence_stdout()
        return EXIT_FAILED
    except InvalidArgumentError as exc:
        _debug_trace(args)
        _error(_one_line(str(exc)))
        return EXIT_USAGE
    except ImageLoadError as exc:
        _debug_trace(args)
        _error(
            _one_line(
                f"cannot read image {exc.path!r}: {exc.reason}; pass --skip-unreadable to "
                "skip unreadable images (they are listed in the summary and the report)"
            )
        )
        return EXIT_FAILED
    except SmartDownsampleError as exc:
        _debug_trace(args)
        _error(_one_line(str(exc)))
        return EXIT_FAILED
    except OSError as exc:
        _debug_trace(args)
        where = f"{exc.filename}: " if exc.filename else ""
        _error(_one_line(f"{where}{exc.strerror or exc}; check the path and its permissions"))
        return EXIT_FAILED
    except Exception as exc:  # noqa: BLE001 - the command's last resort: one line, exit 1
        _debug_trace(args)
        hint = "" if args.debug else "; run again with --debug for the traceback"
        _error(_one_line(f"unexpected {type(exc).__name__}: {exc}{hint} and please report it"))
        return EXIT_FAILED


def _debug_trace(args: argparse.Namespace) -> None:
    if args.debug:
        traceback.print_exc(file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``smartdownsample`` command; returns the exit code.

    Parameters
    ----------
    argv : sequence of str, optional
        Arguments without the program name (default ``sys.argv[1:]``).

    Returns
    -------
    int
        0 done, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C), 143 stopped by
        SIGTERM, 129 by SIGHUP.

    Examples
    --------
    >>> main(["--version"])  # doctest: +ELLIPSIS
    smartdownsample ...
    0
    """
    arguments = list(sys.argv[1:] if argv is None else argv)
    if sys.stdout is None or sys.stderr is None:
        # Started with a stream closed (`>&-`): Python has no stream object for it.
        which = "standard output" if sys.stdout is None else "standard error"
        _error(f"{which} is closed; run with it open, or sent to /dev/null (>/dev/null)")
        return EXIT_FAILED
    parser = build_parser()
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exc:
        return _exit_code(exc.code)
    args.argv = arguments
    started = time.perf_counter()
    handler: Callable[[argparse.Namespace, float], int] = args.handler

    def run() -> int:
        with contextlib.ExitStack() as cleanup:
            args.cleanup = cleanup  # output folder locks, released after any roll-back
            return handler(args, started)

    with _name_safe_streams(), _logging(args), _stop_signals():
        return _handle_errors(args, run)


@contextlib.contextmanager
def _stop_signals() -> Iterator[None]:
    """Turn SIGTERM and SIGHUP into :class:`_Stopped` while the command runs.

    Only in the main thread (the only one that may set handlers); a signal
    the caller ignores (``nohup`` ignores SIGHUP) stays ignored. After the
    first one, further stop signals are ignored so that the roll-back
    finishes (SIGKILL still ends the process).
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    numbers = [getattr(signal, name) for name in STOP_SIGNALS if hasattr(signal, name)]

    def stop(signum: int, frame: object) -> None:
        for number in numbers:
            signal.signal(number, signal.SIG_IGN)
        raise _Stopped(signum)

    previous: dict[int, Any] = {}
    for number in numbers:
        if signal.getsignal(number) is not signal.SIG_IGN:
            previous[number] = signal.signal(number, stop)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


if __name__ == "__main__":
    sys.exit(main())
