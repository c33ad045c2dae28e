"""The running shell of the command: ``main``, errors, signals, logging, streams.

``main(argv)`` parses the arguments, runs the subcommand and returns the
exit code. It turns SIGTERM and SIGHUP into a Ctrl-C (every output rolled
back), says every error in one line on stderr in the command's words (its
flags, not the library's parameters), sends log messages and Python warnings
to stderr in the same shape, and lets stdout and stderr write any file name.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import IO, Any, TextIO

from .._exceptions import ImageLoadError, InvalidArgumentError, SmartDownsampleError
from ..outputs import OUTPUTS_COMMITTED
from ._errors import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE
from ._outputs import silence_stdout
from ._parser import build_parser

__all__ = ["in_flag_words", "main"]

PACKAGE_LOGGER = "smartdownsample"

STOP_SIGNALS = ("SIGTERM", "SIGHUP")
"""Signals handled like Ctrl-C (outputs rolled back, exit 128 + the signal number):
``kill``, ``timeout``, a closed terminal, a service manager stopping the job."""

SIGNAL_EXIT_BASE = 128
"""Exit code of a command stopped by signal N is 128 + N, as shells report it."""

FLAG_WORDS: tuple[tuple[str, str], ...] = (
    (r"\bimage_loading_errors='skip'", "--skip-unreadable"),
    (r"\bon_error='skip'", "--skip-unreadable"),
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

STREAM_ERRORS = (("stdout", "surrogateescape"), ("stderr", "backslashreplace"))
"""How stdout and stderr write file names that are not UTF-8: paths on stdout as
their original bytes (for xargs and shells), messages on stderr escaped."""


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


class _Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP, raised where Ctrl-C's KeyboardInterrupt would be.

    Being a KeyboardInterrupt, it takes every clean-up path Ctrl-C takes
    (worker processes stopped, outputs rolled back, cache closed).
    """

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


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


# ---------------------------------------------------------------- errors


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
    """Run the subcommand; say an error in one line and return its exit code."""
    try:
        return run()
    except _Stopped as exc:
        name = signal.Signals(exc.signum).name
        _error(f"stopped by {name}; {_outputs_state(exc)}")
        return SIGNAL_EXIT_BASE + exc.signum
    except KeyboardInterrupt as exc:
        _error(f"interrupted; {_outputs_state(exc)}")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # stdout closed early (e.g. piped into `head`): stop quietly.
        silence_stdout()
        return EXIT_FAILED
    except InvalidArgumentError as exc:
        _debug_trace(args)
        _error(_one_line(str(exc)))
        return EXIT_USAGE
    except ImageLoadError as exc:
        _debug_trace(args)
        _error(
            _one_line(
                f"cannot read image {_shown(exc.path)}: {exc.reason}; pass --skip-unreadable "
                "to skip unreadable images (they are listed in the summary and the report)"
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


SHOWN_PATH_CHARS = 300
"""Longest path quoted whole in an error line (a list holding something else than
paths, e.g. JSON, read as one giant "path", must not flood the terminal)."""


def _shown(path: str) -> str:
    """``repr(path)``, its middle cut when it is very long.

    >>> _shown("a" * 1000)[:5], len(_shown("a" * 1000)) < 400
    ("'aaaa", True)
    """
    if len(path) <= SHOWN_PATH_CHARS:
        return repr(path)
    half = SHOWN_PATH_CHARS // 2
    return f"{path[:half]!r}...{path[-half:]!r} ({len(path):,} characters)"


def _outputs_state(exc: BaseException) -> str:
    if getattr(exc, OUTPUTS_COMMITTED, False):
        return "the output files had all been written"
    return "no output files were written"


def _debug_trace(args: argparse.Namespace) -> None:
    if args.debug:
        traceback.print_exc(file=sys.stderr)


# ---------------------------------------------------------------- signals


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


# ---------------------------------------------------------------- messages and streams


class _LineFormatter(logging.Formatter):
    """``smartdownsample: warning: MESSAGE`` in the command's words (``--debug``: the logger)."""

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
    """The package's log messages and Python warnings on stderr, one line each, for the run."""
    package = logging.getLogger(PACKAGE_LOGGER)
    handler = _TqdmHandler(sys.stderr)
    handler.setFormatter(_LineFormatter(args.debug))
    level = logging.DEBUG if args.debug else logging.ERROR if args.quiet else logging.WARNING
    previous = package.level
    package.addHandler(handler)
    package.setLevel(level)
    show_warning = warnings.showwarning
    warnings.showwarning = _one_line_warnings(args.quiet, args.debug)
    try:
        yield
    finally:
        warnings.showwarning = show_warning
        package.removeHandler(handler)
        package.setLevel(previous)


def _one_line_warnings(quiet: bool, debug: bool) -> Callable[..., None]:
    """A ``warnings.showwarning``: Python warnings (Pillow's, the cache's) as one line.

    Said like the log messages; ``--quiet`` hides them as it hides logged warnings.
    """

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: TextIO | None = None,
        line: str | None = None,
    ) -> None:
        if quiet:
            return
        text = f"{category.__name__}: {message}" if debug else str(message)
        print(f"smartdownsample: warning: {_one_line(in_flag_words(text))}", file=sys.stderr)

    return show


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
