"""Ctrl-C at any point (issue 6, item 3).

An interrupted run must stop within a few seconds, leave no output file or
folder (and no temporary file) behind, leave the feature cache intact, and
the next run must reuse what was cached and select exactly what an
uninterrupted run selects.

The command-line tests run ``python -m smartdownsample select`` in a real
subprocess on 6,400 small JPEGs (800 distinct synthetic crops, copied
into eight "cards") and send SIGINT at several points: while the worker
processes start, in the middle of feature extraction and while the selected
images are copied. The phases are detected by polling for the cache file and
the copy folder, and delays are scaled by the measured extraction time, so
the points hold on slower machines. SIGINT goes either to the whole process
group, as a terminal's Ctrl-C does, or to the main process only, as
``kill -INT`` does.

In-process tests cover what timing cannot reach reliably: a
KeyboardInterrupt raised right after *every* system call and function return
of the output stage, and of saving features to the cache (the signal landing
exactly there), and the library interrupted from another thread.
"""

from __future__ import annotations

import _thread
import contextlib
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from smartdownsample.api import downsample
from smartdownsample.cache import cache_info
from smartdownsample.listing import list_sources
from smartdownsample.outputs import LOCK_NAME, RECORD_NAME, OutputTransaction
from smartdownsample.synthetic import make_dataset

pytestmark = pytest.mark.skipif(
    sys.platform == "win32", reason="sends POSIX signals to process groups"
)

N_DISTINCT = 800
"""Distinct synthetic crops (about 2 s to draw on 2 cores)."""

N_CARDS = 8
"""Copies of the crops (distinct files: links to one file count once): 6,400
files, about 3 s of feature extraction on 2 cores, long enough to be
interrupted in the middle."""

TARGET = 2500
"""Images to keep: copying them takes about a second, long enough to be
interrupted, short enough for the suite."""

STOP_SECONDS = 5.0
"""Longest accepted time from SIGINT to the end of the process, including
removing what was already copied."""

RUN_TIMEOUT = 120.0
"""A run that takes longer than this has hung."""

POLL_SECONDS = 0.002
"""Polling interval when waiting for a phase to begin."""

INTERRUPTED = 130
INTERRUPT_MESSAGE = "smartdownsample: error: interrupted; no output files were written"
TERMINATED = 143
"""128 + SIGTERM: a stop signal (``kill``, ``timeout``) is handled like Ctrl-C."""
TERMINATE_MESSAGE = "smartdownsample: error: stopped by SIGTERM; no output files were written"
CACHE_FILES = ("cache.sqlite", "cache.sqlite-wal", "cache.sqlite-shm")


@pytest.fixture(autouse=True)
def sigint_not_ignored() -> Iterator[None]:
    """Let SIGINT through even if pytest was started with it ignored.

    A shell without job control starts background commands (``cmd &``,
    ``nohup``) with SIGINT ignored; the runs started here would inherit that
    and rightly never see Ctrl-C.
    """
    previous = signal.getsignal(signal.SIGINT)
    if previous is not signal.SIG_IGN:
        yield
        return
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Source:
    root: Path
    paths: list[str]
    stamps: dict[str, tuple[int, int]]


def _stamps(root: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file under ``root``."""
    found: dict[str, tuple[int, int]] = {}
    for folder, _, names in os.walk(root):
        for name in names:
            path = os.path.join(folder, name)
            info = os.stat(path, follow_symlinks=False)
            found[path] = (info.st_size, info.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    base = tmp_path_factory.mktemp("distinct")
    dataset = make_dataset(base, N_DISTINCT, seed=1, n_workers=2)
    root = tmp_path_factory.mktemp("cards")
    for path in dataset.paths:
        relative = os.path.relpath(path, base)
        for card in range(N_CARDS):
            target = root / f"card{card}" / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    paths = list_sources([str(root)]).paths
    assert len(paths) == N_DISTINCT * N_CARDS
    return Source(root, paths, _stamps(root))


# ---------------------------------------------------------------- running the command


@dataclass
class Outcome:
    returncode: int
    stderr: str
    stop_seconds: float | None
    """Seconds from SIGINT to exit (None if no signal was sent)."""
    children: list[int]
    """Worker processes seen just before the signal."""


def _command(source: Source, out: Path, cache: Path | None, *extra: str) -> list[str]:
    command = [
        sys.executable,
        "-m",
        "smartdownsample",
        "select",
        str(source.root),
        "--target",
        str(TARGET),
        "--out",
        str(out / "selected.txt"),
        "--manifest",
        str(out / "manifest.csv"),
        "--report",
        str(out / "report.json"),
        "--no-progress",
    ]
    command += ["--no-cache"] if cache is None else ["--cache", str(cache)]
    return [*command, *extra]


def _children(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (read from /proc; empty elsewhere)."""
    found = []
    with contextlib.suppress(OSError):
        for entry in os.listdir("/proc"):
            if not entry.isdigit():
                continue
            try:
                with open(f"/proc/{entry}/stat", "rb") as handle:
                    fields = handle.read().rsplit(b")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                found.append(int(entry))
    return found


def _alive(pid: int) -> bool:
    """True if ``pid`` runs (a zombie waiting to be reaped counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except OSError:
        return False
    return state != b"Z"


FOREGROUND = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
    "os.execv(sys.argv[1], sys.argv[1:])"
)
"""Exec the command with SIGINT at its default, as a terminal's foreground job has it,
whatever this test process has it as at the instant of the fork (a shell starts
background jobs with SIGINT ignored, and an ignored signal is inherited through exec)."""


def _as_foreground_job(command: list[str]) -> list[str]:
    return [sys.executable, "-c", FOREGROUND, *command]


def _command_running(process: subprocess.Popen[bytes]) -> bool:
    """True once the wrapper has exec'd the command (read from /proc; True elsewhere)."""
    try:
        with open(f"/proc/{process.pid}/cmdline", "rb") as handle:
            return FOREGROUND.encode() not in handle.read()
    except OSError:
        return True


def _run(
    command: list[str],
    *,
    trigger: Callable[[subprocess.Popen[bytes]], bool] | None = None,
    to_group: bool = True,
    signum: int = signal.SIGINT,
) -> Outcome:
    """Run ``command``; when ``trigger`` returns True, send ``signum`` (SIGINT).

    ``trigger`` is polled until it returns True or the process ends.
    """
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen(
            _as_foreground_job(command),
            stdout=subprocess.DEVNULL,
            stderr=errors,
            start_new_session=True,  # its own process group, like a terminal's foreground job
        )
        stop_seconds = None
        children: list[int] = []
        try:
            if trigger is not None:
                while process.poll() is None and not (
                    _command_running(process) and trigger(process)
                ):
                    time.sleep(POLL_SECONDS)
                if process.poll() is None:
                    children = _children(process.pid)
                    sent = time.monotonic()
                    if to_group:
                        os.killpg(process.pid, signum)
                    else:
                        process.send_signal(signum)
                    process.wait(RUN_TIMEOUT)
                    stop_seconds = time.monotonic() - sent
            process.wait(RUN_TIMEOUT)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        errors.seek(0)
        text = errors.read().decode("utf-8", "replace")
    return Outcome(process.returncode, text, stop_seconds, children)


def _after_cache_appears(cache: Path, delay: float) -> Callable[[Any], bool]:
    """True ``delay`` seconds after the cache file appears (features are being computed)."""
    seen: list[float] = []

    def ready(_: Any) -> bool:
        if not seen:
            if not cache.exists():
                return False
            seen.append(time.monotonic())
        return time.monotonic() - seen[0] >= delay

    return ready


def _after_copying_starts(folder: Path, delay: float) -> Callable[[Any], bool]:
    """True ``delay`` seconds after the first copied folder appears in the copy folder.

    (The copy folder itself is made, and locked, before the features are computed.)
    """
    seen: list[float] = []

    def ready(_: Any) -> bool:
        if not seen:
            try:
                if set(os.listdir(folder)) <= {LOCK_NAME}:
                    return False
            except FileNotFoundError:
                return False
            seen.append(time.monotonic())
        return time.monotonic() - seen[0] >= delay

    return ready


def _after_workers_start(delay: float) -> Callable[[subprocess.Popen[bytes]], bool]:
    """True ``delay`` seconds after the run started its worker processes.

    A worker needs about half a second to import numpy and Pillow; a delay
    of 0.1 s lands in the middle, where a Ctrl-C reaching the worker would
    kill it with a traceback of its own.
    """
    seen: list[float] = []

    def ready(process: subprocess.Popen[bytes]) -> bool:
        if not seen:
            if not _children(process.pid):
                return False
            seen.append(time.monotonic())
        return time.monotonic() - seen[0] >= delay

    return ready


def _report(out: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((out / "report.json").read_text(encoding="utf-8"))
    return data


def _selected(out: Path) -> list[str]:
    return (out / "selected.txt").read_text(encoding="utf-8").splitlines()


@pytest.fixture(scope="module")
def reference(source: Source, tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], float]:
    """The selection of an uninterrupted run without a cache, and its extraction seconds."""
    out = tmp_path_factory.mktemp("reference")
    outcome = _run(_command(source, out, None))
    assert outcome.returncode == 0, outcome.stderr
    report = _report(out)
    assert report["n_cached"] == 0
    selected = _selected(out)
    assert len(selected) == TARGET
    return selected, float(report["timings"]["features"])


# ---------------------------------------------------------------- checks


def _leftovers(folder: Path) -> list[str]:
    """Everything under ``folder`` (files, links, folders), relative."""
    found = []
    for parent, dirs, names in os.walk(folder):
        for name in dirs + names:
            found.append(os.path.relpath(os.path.join(parent, name), folder))
    return sorted(found)


def _check_cache(cache: Path) -> int:
    """The cache passes SQLite's integrity check and cache_info; returns its entries."""
    if not cache.exists():
        return 0
    conn = sqlite3.connect(f"file:{cache}?mode=ro", uri=True)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        (rows,) = conn.execute("SELECT COUNT(*) FROM features").fetchone()
    finally:
        conn.close()
    info = cache_info(cache)
    assert info["exists"] and info["entries"] == rows
    return int(rows)


def _check_no_workers_left(children: list[int]) -> None:
    deadline = time.monotonic() + STOP_SECONDS
    while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in children if _alive(pid)], "worker processes outlived the run"


def _check_interrupted(
    outcome: Outcome, out: Path, cache_dir: Path, source: Source, signum: int = signal.SIGINT
) -> int:
    """Everything an interrupted run must leave; returns the cache's entries."""
    code, message = (
        (TERMINATED, TERMINATE_MESSAGE)
        if signum == signal.SIGTERM
        else (INTERRUPTED, INTERRUPT_MESSAGE)
    )
    assert outcome.returncode == code, outcome.stderr
    assert outcome.stop_seconds is not None and outcome.stop_seconds < STOP_SECONDS
    assert outcome.stderr.strip().splitlines() == [message], outcome.stderr
    left = _leftovers(out)
    assert left == [], f"outputs or temporary files were left behind: {left[-3:]}"
    assert set(os.listdir(cache_dir)) <= set(CACHE_FILES)
    _check_no_workers_left(outcome.children)
    assert _stamps(source.root) == source.stamps
    return _check_cache(cache_dir / CACHE_FILES[0])


def _check_complete(out: Path, source: Source, expected: list[str], copied: bool) -> None:
    assert _selected(out) == expected
    manifest = (out / "manifest.csv").read_text(encoding="utf-8").splitlines()
    assert len(manifest) == 1 + len(source.paths)
    if copied:
        wanted = sorted(os.path.relpath(path, source.root) for path in expected)
        files = sorted(
            os.path.relpath(os.path.join(parent, name), out / "copy")
            for parent, _, names in os.walk(out / "copy")
            for name in names
            if os.path.join(parent, name) != str(out / "copy" / RECORD_NAME)
        )
        assert files == wanted
    names = {name for name in os.listdir(out) if name.startswith(".")}
    assert not names, f"temporary files left: {names}"


# ---------------------------------------------------------------- command-line tests


@dataclass(frozen=True)
class Point:
    """Where a run is interrupted."""

    name: str
    phase: str  # "workers" start, "cache" file appears, "copy" folder appears
    delay: float  # seconds after the phase starts (fraction of extraction time for "cache")
    to_group: bool
    signum: int = signal.SIGINT


LATE_IN_EXTRACTION = 0.5
"""From this share of the extraction time in, some features must have been computed and
kept. An earlier point (0.35) may land before the first batch on a loaded machine, when
nothing was computed yet; it checks only that the next run resumes from what was kept."""

POINTS = [
    Point("workers-starting", "workers", 0.1, True),
    Point("mid-extraction-kill", "cache", 0.35, False),
    Point("late-extraction", "cache", 0.7, True),
    Point("copying", "copy", 0.15, True),
    Point("copying-sigterm", "copy", 0.15, False, signal.SIGTERM),
    Point("extraction-sigterm-group", "cache", 0.5, True, signal.SIGTERM),
]


@pytest.mark.parametrize("point", POINTS, ids=[p.name for p in POINTS])
def test_ctrl_c_leaves_nothing_and_the_next_run_resumes(
    point: Point, source: Source, reference: tuple[list[str], float], tmp_path: Path
) -> None:
    expected, feature_seconds = reference
    out = tmp_path / "out"
    out.mkdir()
    cache_dir = tmp_path / "cache"
    cache_dir.mkdir()
    cache = cache_dir / CACHE_FILES[0]
    command = _command(source, out, cache, "--copy-to", str(out / "copy"))
    trigger: Callable[[Any], bool]
    if point.phase == "workers":
        trigger = _after_workers_start(point.delay)
    elif point.phase == "cache":
        trigger = _after_cache_appears(cache, point.delay * feature_seconds)
    else:
        trigger = _after_copying_starts(out / "copy", point.delay)

    first = _run(command, trigger=trigger, to_group=point.to_group, signum=point.signum)
    if first.returncode == 0:  # finished before the signal: it must then be complete
        _check_complete(out, source, expected, copied=True)
        return
    entries = _check_interrupted(first, out, cache_dir, source, point.signum)
    if point.phase == "copy":
        assert entries == len(source.paths)  # features were all saved before the outputs
    elif point.phase == "cache" and point.delay >= LATE_IN_EXTRACTION:
        assert entries > 0, "nothing computed before the interrupt was kept"

    second = _run(command)
    assert second.returncode == 0, second.stderr
    assert "Traceback" not in second.stderr
    assert _report(out)["n_cached"] == entries
    _check_complete(out, source, expected, copied=True)
    assert _check_cache(cache) == len(source.paths)
    assert _stamps(source.root) == source.stamps


def test_ctrl_c_during_start_up_leaves_nothing(source: Source, tmp_path: Path) -> None:
    """Even before the command's own handler runs (while Python imports numpy)."""
    out = tmp_path / "out"
    out.mkdir()
    cache = tmp_path / "cache" / CACHE_FILES[0]
    started = time.monotonic()
    outcome = _run(_command(source, out, cache), trigger=lambda _: time.monotonic() - started > 0.1)
    # Python's own KeyboardInterrupt exit (-SIGINT) if the signal came before main() ran.
    assert outcome.returncode in (INTERRUPTED, -signal.SIGINT), outcome.stderr
    assert outcome.stop_seconds is not None and outcome.stop_seconds < STOP_SECONDS
    assert _leftovers(out) == []
    _check_cache(cache)


# ---------------------------------------------------------------- library


def _interrupt_during(
    call: Callable[[], Any], delay: float, interrupt: Callable[[], None]
) -> tuple[Any, float | None]:
    """Run ``call``; ``delay`` seconds in, ``interrupt`` from another thread.

    Returns ``(result, None)`` if the call finished first, else ``(None,
    seconds from the interrupt to KeyboardInterrupt reaching the caller)``.
    """
    lock = threading.Lock()
    state: dict[str, Any] = {"done": False, "fired": None}

    def fire() -> None:
        with lock:
            if not state["done"]:
                state["fired"] = time.monotonic()
                interrupt()

    timer = threading.Timer(delay, fire)
    timer.start()
    try:
        try:
            result = call()
            with lock:
                state["done"] = True
            time.sleep(0.05)  # an interrupt fired in the last instant surfaces here
        except KeyboardInterrupt:
            assert state["fired"] is not None
            return None, time.monotonic() - state["fired"]
    finally:
        timer.cancel()
        timer.join()
    return result, None


def _signal_main_thread() -> None:
    """A real SIGINT delivered to the main thread, as Ctrl-C is."""
    signal.pthread_kill(threading.main_thread().ident or 0, signal.SIGINT)


def test_library_interrupted_from_a_thread_keeps_a_usable_cache(
    source: Source, reference: tuple[list[str], float], tmp_path: Path
) -> None:
    expected, feature_seconds = reference
    cache = tmp_path / "features.sqlite"

    def run() -> Any:
        return downsample(source.paths, TARGET, cache=cache, show_progress=False)

    entries = 0
    interrupted = 0
    for fraction, interrupt in ((0.3, _thread.interrupt_main), (0.5, _signal_main_thread)):
        result, seconds = _interrupt_during(run, fraction * feature_seconds, interrupt)
        if result is not None:  # too fast to interrupt: then it must be right, and complete
            assert result.selected_paths == expected
            entries = _check_cache(cache)
            continue
        interrupted += 1
        assert seconds is not None and seconds < STOP_SECONDS
        now = _check_cache(cache)
        assert now >= entries
        entries = now
    if not interrupted:
        pytest.skip("this machine finished every run before the interrupt")
    result = run()
    assert result.n_cached == entries
    assert result.selected_paths == expected
    assert _check_cache(cache) == len(source.paths)


# ---------------------------------------------------------------- every instant of the output stage


class _InterruptAt:
    """A profile hook raising KeyboardInterrupt at the ``at``-th instant.

    Instants are right after every call into the operating system (``os``
    functions, ``open``) and right after every function of
    :mod:`smartdownsample.outputs` returns (before the caller has stored the
    value). A signal handler runs at such boundaries, so this stands for
    Ctrl-C landing at each point where something on disk has just changed.
    """

    SYSTEM_MODULES = frozenset({"posix", "nt", "io", "_io"})

    def __init__(self, at: int) -> None:
        self.at = at
        self.count = 0
        self.where = ""

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_return":
            if getattr(arg, "__module__", None) not in self.SYSTEM_MODULES:
                return
            what = f"{arg.__name__}() in {frame.f_code.co_name}"
        elif event == "return":
            if not frame.f_code.co_filename.endswith(os.path.join("smartdownsample", "outputs.py")):
                return
            what = f"return of {frame.f_code.co_name}"
        else:
            return
        self.count += 1
        if self.count == self.at:
            self.where = what
            raise KeyboardInterrupt


def _write_outputs(sources: list[str], root: str, out: Path, mode: str) -> None:
    """The output stage of ``select``, as :mod:`smartdownsample.cli` runs it."""
    with OutputTransaction() as tx:
        tx.write_lines(out / "selected.txt", sources)
        tx.write_csv(out / "manifest.csv", [{"path": p, "kept": True} for p in sources])
        tx.export_tree(sources, out / "tree", mode="copy" if mode == "copy" else "link", root=root)
        tx.write_json(out / "report.json", {"n_selected": len(sources)})
        tx.commit()


@pytest.fixture
def fast_folder(tmp_path: Path) -> Iterator[Path]:
    """A folder in memory (/dev/shm) where fsync is free, else ``tmp_path``.

    The test below writes the outputs some 300 times; on a disk each fsync
    costs milliseconds. (Hard links then fall back to symbolic links, which
    is a path of its own worth running.)
    """
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path
        return
    folder = Path(tempfile.mkdtemp(prefix="sds-test-", dir=shm))
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.mark.parametrize("mode", ["copy", "link"])
def test_ctrl_c_at_every_instant_of_writing_outputs(
    mode: str, source: Source, fast_folder: Path
) -> None:
    """Interrupted anywhere, the outputs are all there or none is (no temporary file)."""
    chosen = [source.paths[i] for i in (0, 1, 2, N_DISTINCT + 5)]  # two cards, two folders
    out = fast_folder / "out"
    out.mkdir()
    _write_outputs(chosen, str(source.root), out, mode)
    complete = _leftovers(out)
    shutil.rmtree(out)

    problems: list[str] = []
    at = 0
    while True:
        at += 1
        out.mkdir()
        hook = _InterruptAt(at)
        sys.setprofile(hook)
        try:
            _write_outputs(chosen, str(source.root), out, mode)
        except KeyboardInterrupt:
            pass
        finally:
            sys.setprofile(None)
        left = _leftovers(out)
        if left not in ([], complete):
            problems.append(f"interrupted after {hook.where} (instant {at}): left {left}")
        shutil.rmtree(out)
        if not hook.where:  # ran to the end without reaching instant `at`
            break
    assert at > 20  # the hook did see the output stage
    assert not problems, "\n".join(problems)
    assert _stamps(source.root) == source.stamps


# ---------------------------------------------------------------- every instant of saving features


class _InterruptSaving:
    """A profile hook raising KeyboardInterrupt at the ``at``-th instant of saving rows.

    Instants are right after every SQLite call and every return of a
    function of :mod:`smartdownsample.cache` while rows are queued, written,
    committed or the cache is closed.
    """

    SAVING = frozenset({"store", "_queue", "flush", "_flush", "_write", "close", "__exit__"})

    def __init__(self, at: int) -> None:
        self.at = at
        self.count = 0
        self.where = ""

    def _saving(self, frame: FrameType | None) -> bool:
        while frame is not None:
            code = frame.f_code
            if code.co_name in self.SAVING and code.co_filename.endswith("cache.py"):
                return True
            frame = frame.f_back
        return False

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event == "c_return":
            if not isinstance(getattr(arg, "__self__", None), (sqlite3.Connection, sqlite3.Cursor)):
                return
            what = f"{arg.__name__}() in {frame.f_code.co_name}"
        elif event == "return" and frame.f_code.co_filename.endswith("cache.py"):
            what = f"return of {frame.f_code.co_name}"
        else:
            return
        if not self._saving(frame):
            return
        self.count += 1
        if self.count == self.at:
            self.where = what
            raise KeyboardInterrupt


SAVED_IMAGES = 24
"""Images of the cache test, in batches of :data:`BATCH`: rows are committed
during the run (every :data:`COMMIT_EVERY`) and the last ones on close."""

BATCH = 5
COMMIT_EVERY = 8


def _small_batches(
    paths: Any, todo: Any, hash_size: int, *, on_batch: Callable[[Any, Any], None]
) -> None:
    """A serial runner with small batches (several stores and commits per run)."""
    from smartdownsample.extraction import extract_batch

    for start in range(0, len(todo), BATCH):
        batch = todo[start : start + BATCH]
        on_batch(batch, extract_batch([paths[i] for i in batch], hash_size))


def test_ctrl_c_at_every_instant_of_saving_features(source: Source, fast_folder: Path) -> None:
    """The cache is never damaged, never wrong, never left locked, and says nothing."""
    from smartdownsample.cache import CacheWarning, FeatureCache
    from smartdownsample.extraction import extract_features

    paths = source.paths[:SAVED_IMAGES]
    truth = extract_features(paths, 8, runner=_small_batches).features.tobytes()
    database = fast_folder / "features.sqlite"
    problems: list[str] = []
    at = 0
    while True:
        at += 1
        for suffix in ("", "-wal", "-shm"):
            Path(f"{database}{suffix}").unlink(missing_ok=True)
        hook = _InterruptSaving(at)
        interrupted = FeatureCache(database, hash_size=8, commit_rows=COMMIT_EVERY)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", CacheWarning)
            sys.setprofile(hook)
            try:
                with interrupted:
                    extract_features(paths, 8, runner=_small_batches, cache=interrupted)
            except KeyboardInterrupt:
                pass
            finally:
                sys.setprofile(None)
            # `interrupted` stays referenced, as a notebook's last traceback keeps it.
            with FeatureCache(database, hash_size=8, busy_timeout=0.2) as again:
                result = extract_features(paths, 8, runner=_small_batches, cache=again)
        entries = _check_cache(database)
        where = f"after {hook.where} (instant {at})"
        problems += [f"{where}: {warning.message}" for warning in caught]
        if result.features.tobytes() != truth:
            problems.append(f"{where}: wrong features")
        if entries != SAVED_IMAGES:
            problems.append(f"{where}: the next run saved {entries} of {SAVED_IMAGES} rows")
        del interrupted
        if not hook.where:
            break
    assert at > 10
    assert not problems, "\n".join(problems)


def _state(folder: Path) -> dict[str, tuple[bytes, int]]:
    """Every entry under ``folder``: content (a link's target, nothing for a folder) and inode."""
    found: dict[str, tuple[bytes, int]] = {}
    for parent, dirs, names in os.walk(folder):
        for name in dirs + names:
            path = os.path.join(parent, name)
            info = os.lstat(path)
            if os.path.islink(path):
                data = os.readlink(path).encode()
            elif os.path.isdir(path):
                data = b""
            else:
                data = Path(path).read_bytes()
            found[os.path.relpath(path, folder)] = (data, info.st_ino)
    return found


def _content(state: dict[str, tuple[bytes, int]]) -> dict[str, bytes]:
    """Names and contents (a record's inode numbers and times vary from run to run)."""
    return {
        name: b"record" if os.path.basename(name) == RECORD_NAME else data
        for name, (data, _) in state.items()
    }


@pytest.mark.parametrize("mode", ["copy", "link"])
def test_ctrl_c_at_every_instant_of_an_overwrite(
    mode: str, source: Source, fast_folder: Path
) -> None:
    """Interrupted anywhere while replacing the outputs of an earlier run, the earlier
    outputs are all back (the same files: same inodes) or the new ones all in place
    (issue 11, item 3)."""
    earlier = [source.paths[i] for i in (0, 1, 2, N_DISTINCT + 5)]
    chosen = [source.paths[i] for i in (1, 2, 3, 4, N_DISTINCT + 5)]  # 3 replaced, 2 new, 1 gone
    root = str(source.root)
    out = fast_folder / "out"
    out.mkdir()
    _write_outputs(earlier, root, out, mode)
    _write_outputs(chosen, root, out, mode)
    complete = _content(_state(out))
    assert os.path.relpath(earlier[0], root) not in {
        os.path.relpath(name, "tree") for name in complete
    }
    shutil.rmtree(out)

    problems: list[str] = []
    at = 0
    while True:
        at += 1
        out.mkdir()
        _write_outputs(earlier, root, out, mode)
        before = _state(out)
        hook = _InterruptAt(at)
        sys.setprofile(hook)
        try:
            _write_outputs(chosen, root, out, mode)
        except KeyboardInterrupt:
            pass
        finally:
            sys.setprofile(None)
        left = _state(out)
        if left != before and _content(left) != complete:
            changed = sorted(set(left.items()) ^ set(before.items()))
            problems.append(f"interrupted after {hook.where} (instant {at}): {changed[:3]}")
        shutil.rmtree(out)
        if not hook.where:
            break
    assert at > 20
    assert not problems, "\n".join(problems)
    assert _stamps(source.root) == source.stamps


def test_ctrl_c_after_the_outputs_are_in_place_says_so(
    source: Source, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stop that lands after the commit (while the replaced files are deleted) finishes
    that clean-up and says the outputs were written, not that none were."""
    from smartdownsample.cli import main

    out = tmp_path / "kept.txt"
    out.write_text("an earlier list\n", encoding="utf-8")
    fired: list[str] = []

    def hook(frame: FrameType, event: str, arg: Any) -> None:
        code = frame.f_code
        if (
            event == "call"
            and not fired
            and code.co_name == "_clean_up_after_commit"
            and code.co_filename.endswith("outputs.py")
        ):
            fired.append(code.co_name)
            raise KeyboardInterrupt

    argv = [str(source.root), "--target", "5", "--out", str(out), "--overwrite", "--no-cache"]
    sys.setprofile(hook)
    try:
        code = main(["select", *argv, "--no-progress"])
    finally:
        sys.setprofile(None)
    err = capsys.readouterr().err
    assert fired and code == 130
    assert "interrupted; the output files had all been written" in err
    assert len(out.read_text(encoding="utf-8").splitlines()) == 5
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".smartdownsample")] == []


@pytest.mark.parametrize("instant", ["_announce", "_place_new"])
def test_an_output_made_meanwhile_is_never_replaced_without_overwrite(
    source: Source, tmp_path: Path, capsys: pytest.CaptureFixture[str], instant: str
) -> None:
    """Two runs writing one output without --overwrite: the one that commits second
    finds the other's file, stops with nothing written and leaves that file alone."""
    from smartdownsample.cli import main

    out = tmp_path / "kept.txt"
    report = tmp_path / "report.json"
    made: list[str] = []

    def other_run(frame: FrameType, event: str, arg: Any) -> None:
        code = frame.f_code
        mine = code.co_name == instant and code.co_filename.endswith("outputs.py")
        if event == "call" and not made and mine:
            out.write_text("the other run's list\n", encoding="utf-8")
            made.append(instant)

    argv = [str(source.root), "--target", "5", "--out", str(out), "--report", str(report)]
    sys.setprofile(other_run)
    try:
        code = main(["select", *argv, "--no-cache", "--no-progress"])
    finally:
        sys.setprofile(None)
    err = capsys.readouterr().err
    assert made and code == 1, err
    assert "appeared while this run was working" in err
    assert out.read_text(encoding="utf-8") == "the other run's list\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.txt"]
