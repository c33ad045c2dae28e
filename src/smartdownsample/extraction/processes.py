"""Worker processes that survive decoders that crash or hang.

Image decoders are C code fed with untrusted files. A damaged file may make
one crash the process (a segmentation fault) or never return. Threads cannot
be stopped, so :class:`WorkerPool` runs :func:`.batch.extract_batch` in
separate worker processes and watches them:

* every worker writes the position of the image it is decoding into a small
  shared memory map before it opens the file, so when a worker dies or is
  killed, the parent knows exactly which image was at fault;
* a worker that dies (crash, ``os._exit``, killed by the system) is replaced;
  the image it was decoding is reported as failed ("the decoder crashed ...")
  and the rest of its batch is run again;
* a worker that spends more than ``image_timeout`` seconds on one image is
  killed and replaced the same way, the image is reported as "timed out";
* a failure that cannot be pinned on one image (it happened outside the
  decoding of an image) is retried once, then the batch is split in halves
  until the failing image is found.

Workers are started with ``subprocess`` as ``python -c <bootstrap>`` and talk
to the parent over their standard input and output (length-prefixed pickles).
Unlike ``multiprocessing``'s spawn and forkserver start methods, this never
imports the caller's ``__main__`` module in the workers, so a script that
calls :func:`smartdownsample.sample_diverse` at top level, without an
``if __name__ == "__main__":`` guard, works on every platform, and nothing is
forked from a process that may hold threads. Workers get the caller's import
path and Pillow limits (``Image.MAX_IMAGE_PIXELS``,
``ImageFile.LOAD_TRUNCATED_IMAGES``), send Pillow's warnings back to be
re-issued in the caller, run numerical libraries single-threaded, and ignore
Ctrl-C: the parent kills them when it is interrupted or done (they write no
files). Starting a worker (a new interpreter importing numpy, Pillow and the
extraction modules) costs about 0.15 s of CPU, 0.2-0.4 s of wall time with
the workers starting in parallel, once per run.
"""

from __future__ import annotations

import contextlib
import logging
import math
import mmap
import os
import pickle
import queue
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from .._exceptions import SmartDownsampleError
from .batch import BatchResult, extract_batch, failed_batch

__all__ = [
    "DEFAULT_IMAGE_TIMEOUT",
    "WorkerPool",
    "WorkerStartError",
    "processes_supported",
]

logger = logging.getLogger(__name__)

DEFAULT_IMAGE_TIMEOUT = 60.0
"""Seconds one image may take before its worker is killed and the image is
reported as timed out. A 100-megapixel JPEG decodes in well under a second at
1/8 scale; a minute leaves room for slow network file systems while still
ending a hung decoder."""

WORKER_START_TIMEOUT = 120.0
"""Seconds a new worker may take to import numpy and Pillow and report ready.
Normally 0.2-0.5 s; generous for cold disks and virus scanners."""

MAX_FAILED_STARTS = 3
"""Workers that die or time out before becoming ready, in a row, after which
the pool gives up (:class:`WorkerStartError`) instead of looping."""

MAX_UNPINNED_ATTEMPTS = 2
"""Times a batch is run whole when a failure cannot be pinned on one image,
before it is split in halves to find the culprit."""

POLL_FRACTION = 0.25
"""The parent looks at busy workers' progress at least every quarter of the
image time limit, so a hung image is stopped after at most 1.25 x the limit."""

MIN_POLL_SECONDS = 0.02
"""Lower bound of that polling interval, for tiny test time limits."""

STOP_GRACE_SECONDS = 5.0
"""How long to wait for a killed worker to be reaped and its pipe reader to end."""

SLOT = struct.Struct("<qq")
"""A worker's progress record in the shared map: (task id, image position).
Position -1 means "task received", ``len(batch)`` "computing features"."""

SINGLE_THREADED_MATH = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
}
"""Environment defaults of the workers (the caller's own settings win): each
worker is one of several processes, so numerical libraries must not start a
thread per core in each of them."""

FRAME_HEADER = struct.Struct(">Q")
"""Length prefix of every pickled message on the worker pipes."""

_BOOTSTRAP = """\
import signal
signal.signal(signal.SIGINT, signal.SIG_IGN)  # first: Ctrl-C is the parent's business
import importlib.util, pickle, struct, sys
stream = sys.stdin.buffer
setup = pickle.loads(stream.read(struct.unpack(">Q", stream.read(8))[0]))
sys.path[:] = setup["sys_path"]
spec = importlib.util.find_spec("smartdownsample")
if spec is not None and spec.submodule_search_locations is not None:
    sys.modules["smartdownsample"] = importlib.util.module_from_spec(spec)
from smartdownsample.extraction.processes import _worker_main
_worker_main(setup)
"""
"""Worker command. It reads the set-up message (framed like every message):
the parent's import path, so that the worker imports this package exactly as
the parent did, and its slot in the progress map. It then registers the
package without running its ``__init__`` (which imports the whole public API,
plotting and the data set maker), which cuts a worker's start-up by about
40 %: only extraction, loading, features, numpy and Pillow are imported."""


class WorkerStartError(SmartDownsampleError):
    """Worker processes could not be started.

    Attributes
    ----------
    remaining : numpy.ndarray
        Indices whose features were not computed, so a caller can finish them
        another way.
    """

    def __init__(self, message: str, remaining: NDArray[np.int64]) -> None:
        super().__init__(message)
        self.remaining = remaining


class _RemoteTraceback(Exception):
    """Carries a worker's traceback text as the cause of a re-raised error."""

    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text

    def __str__(self) -> str:
        return f'\n"""\nin a worker process:\n{self.text}"""'


def processes_supported() -> bool:
    """Whether worker processes can be started from this interpreter.

    False inside frozen applications (PyInstaller and the like), where
    ``sys.executable`` is the application, not a Python interpreter.

    Examples
    --------
    >>> isinstance(processes_supported(), bool)
    True
    """
    return bool(sys.executable) and not getattr(sys, "frozen", False)


# ----------------------------------------------------------------------------
# Wire format


def _write_frame(stream: IO[bytes], message: object) -> None:
    payload = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(FRAME_HEADER.pack(len(payload)) + payload)
    stream.flush()


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        chunk = stream.read(remaining)
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _read_frame(stream: IO[bytes]) -> object | None:
    """The next message, or None at end of stream."""
    header = _read_exact(stream, FRAME_HEADER.size)
    if header is None:
        return None
    payload = _read_exact(stream, FRAME_HEADER.unpack(header)[0])
    if payload is None:
        return None
    message: object = pickle.loads(payload)
    return message


# ----------------------------------------------------------------------------
# Worker side


def _worker_main(setup: dict[str, Any]) -> None:
    """Loop of a worker process: read tasks from stdin, answer on stdout."""
    with contextlib.suppress(ValueError):  # not in the main thread: nothing to ignore
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    _apply_pillow_settings(setup["pillow"])
    commands = sys.stdin.buffer
    # Keep the real stdout for messages; anything a library prints goes to stderr.
    answers = os.fdopen(os.dup(sys.stdout.fileno()), "wb")
    try:
        stray = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no stderr (pythonw): discard
        stray = os.open(os.devnull, os.O_WRONLY)
    os.dup2(stray, sys.stdout.fileno())
    offset = SLOT.size * int(setup["slot"])
    with open(setup["progress"], "r+b") as handle, mmap.mmap(handle.fileno(), 0) as progress:
        _write_frame(answers, ("ready", os.getpid()))
        while True:
            message = _read_frame(commands)
            if not isinstance(message, tuple) or message[0] != "task":
                return  # "stop" or end of input: the parent is done or gone
            _, task_id, paths, hash_size = message
            SLOT.pack_into(progress, offset, task_id, -1)

            def mark(position: int, task_id: int = task_id) -> None:
                SLOT.pack_into(progress, offset, task_id, position)

            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("default")
                try:
                    result = extract_batch(paths, hash_size, on_image=mark)
                except Exception as exc:  # noqa: BLE001 - forwarded to the parent, which raises it
                    _write_frame(answers, ("error", task_id, _portable(exc), _format(exc)))
                    continue
            SLOT.pack_into(progress, offset, task_id, len(paths))
            notes = [(_portable_category(item.category), str(item.message)) for item in caught]
            _write_frame(answers, ("done", task_id, result, notes))


def _format(exc: BaseException) -> str:
    return "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))


def _portable(exc: BaseException) -> BaseException | None:
    """The exception if it survives pickling, else None (the traceback text still goes)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except (pickle.PicklingError, TypeError, AttributeError, ValueError):
        return None
    return exc


def _portable_category(category: type[Warning]) -> type[Warning]:
    try:
        pickle.loads(pickle.dumps(category))
    except (pickle.PicklingError, TypeError, AttributeError):
        return UserWarning
    return category


# ----------------------------------------------------------------------------
# Parent side


@dataclass
class _Task:
    task_id: int
    indices: NDArray[np.int64]
    unpinned_failures: int = 0


@dataclass
class _Worker:
    slot: int
    process: subprocess.Popen[bytes]
    started: float
    ready: bool = False
    task: _Task | None = None
    seen: tuple[int, int] = (-1, -1)
    seen_at: float = 0.0
    reader: threading.Thread | None = None


@dataclass
class _Outcome:
    """Counters of one :meth:`WorkerPool.run`, for logging and tests."""

    crashed: int = 0
    timed_out: int = 0
    restarts: int = 0
    failed_images: list[int] = field(default_factory=list)


def _pillow_settings() -> dict[str, Any]:
    """Pillow's process-wide decoding limits, which workers must share with the caller."""
    from PIL import Image, ImageFile

    return {
        "MAX_IMAGE_PIXELS": Image.MAX_IMAGE_PIXELS,
        "LOAD_TRUNCATED_IMAGES": ImageFile.LOAD_TRUNCATED_IMAGES,
    }


def _apply_pillow_settings(settings: dict[str, Any]) -> None:
    from PIL import Image, ImageFile

    Image.MAX_IMAGE_PIXELS = settings["MAX_IMAGE_PIXELS"]
    ImageFile.LOAD_TRUNCATED_IMAGES = settings["LOAD_TRUNCATED_IMAGES"]


def _import_path() -> list[str]:
    """The parent's ``sys.path`` as plain strings, for the workers."""
    return [os.fspath(entry) for entry in sys.path if isinstance(entry, (str, os.PathLike))]


def _describe_exit(code: int | None) -> str:
    if code is None:
        return "it stopped answering"
    if code < 0:
        try:
            return f"killed by signal {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    if sys.platform == "win32" and code >= 0x80000000:
        return f"exit status 0x{code:08X}"
    return f"exit status {code}"


class WorkerPool:
    """Worker processes running :func:`.batch.extract_batch`, with crash and hang recovery.

    Parameters
    ----------
    n_workers : int
        Number of worker processes (at most one per batch is started).
    image_timeout : float
        Seconds one image may take; ``math.inf`` for no limit.

    Examples
    --------
    >>> import os, tempfile, numpy as np
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> paths = [os.path.join(folder, f"{i}.png") for i in range(3)]
    >>> for p in paths: Image.new("RGB", (40, 40), "red").save(p)
    >>> done = []
    >>> with WorkerPool(2, image_timeout=30) as pool:
    ...     pool.run(paths, iter([np.arange(3)]), 8, lambda i, r: done.append(bool(r.ok.all())))
    >>> done
    [True]
    """

    def __init__(self, n_workers: int, image_timeout: float = DEFAULT_IMAGE_TIMEOUT) -> None:
        if n_workers < 1:
            raise ValueError(f"n_workers must be at least 1, got {n_workers}")
        self.n_workers = n_workers
        self.image_timeout = float(image_timeout)
        self.outcome = _Outcome()
        self._workers: list[_Worker | None] = []
        self._events: queue.Queue[tuple[_Worker, object | None]] = queue.Queue()
        self._next_task = 0
        self._failed_starts = 0
        handle, self._progress_path = tempfile.mkstemp(prefix="smartdownsample-progress-")
        try:
            os.write(handle, bytes(SLOT.size * n_workers))
        finally:
            os.close(handle)
        self._progress_file = open(self._progress_path, "r+b")  # noqa: SIM115 - closed in close()
        self._progress = mmap.mmap(self._progress_file.fileno(), 0)

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- workers ------------------------------------------------------------

    def _start(self, slot: int) -> _Worker:
        SLOT.pack_into(self._progress, SLOT.size * slot, -1, -1)
        process = subprocess.Popen(
            [sys.executable, "-c", _BOOTSTRAP],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
            env={**SINGLE_THREADED_MATH, **os.environ},
        )
        worker = _Worker(slot, process, time.monotonic())
        assert process.stdin is not None
        setup = {
            "slot": slot,
            "progress": self._progress_path,
            "sys_path": _import_path(),
            "pillow": _pillow_settings(),
        }
        with contextlib.suppress(OSError):  # if it died at once, its reader reports it
            _write_frame(process.stdin, setup)
        worker.reader = threading.Thread(
            target=self._read_worker,
            args=(worker,),
            name=f"smartdownsample-reader-{slot}",
            daemon=True,
        )
        worker.reader.start()
        return worker

    def _read_worker(self, worker: _Worker) -> None:
        stream = worker.process.stdout
        assert stream is not None
        while True:
            try:
                message = _read_frame(stream)
            except (OSError, pickle.UnpicklingError, EOFError, ValueError) as exc:
                logger.debug("unreadable message from worker %d: %s", worker.process.pid, exc)
                message = None
            self._events.put((worker, message))
            if message is None:
                return

    def _ensure_workers(self, wanted: int) -> None:
        while len(self._workers) < min(wanted, self.n_workers):
            self._workers.append(self._start(len(self._workers)))

    def _stop_worker(self, worker: _Worker) -> int | None:
        """Kill a worker and return its exit status."""
        process = worker.process
        if process.poll() is None:
            with contextlib.suppress(OSError):
                process.kill()
        try:
            code = process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            code = None
        for stream in (process.stdin, process.stdout):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        return code

    def _replace(self, worker: _Worker) -> None:
        if self._workers[worker.slot] is worker:
            self.outcome.restarts += 1
            self._workers[worker.slot] = self._start(worker.slot)

    # -- running ------------------------------------------------------------

    def run(
        self,
        paths: Sequence[str],
        batches: Iterator[NDArray[np.int64]],
        hash_size: int,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
        *,
        expected_batches: int | None = None,
    ) -> None:
        """Run every batch of ``paths`` indices and hand each result to ``on_batch``.

        Results arrive in completion order; a batch may be delivered in
        several parts (the rest of a batch is re-run after a crash).
        ``expected_batches`` bounds how many workers are worth starting.
        """
        pending: deque[_Task] = deque()
        source = iter(batches)
        exhausted = False

        def next_task() -> _Task | None:
            nonlocal exhausted
            if pending:
                return pending.popleft()
            if exhausted:
                return None
            try:
                indices = next(source)
            except StopIteration:
                exhausted = True
                return None
            self._next_task += 1
            return _Task(self._next_task, np.asarray(indices, dtype=np.int64))

        first = next_task()
        if first is None:
            return  # nothing to do: start no worker
        pending.append(first)
        self._ensure_workers(
            max(1, self.n_workers if expected_batches is None else expected_batches)
        )
        try:
            self._loop(paths, hash_size, on_batch, next_task, pending, lambda: exhausted)
            if self.outcome.crashed or self.outcome.timed_out:
                logger.warning(
                    "%d image(s) crashed their decoder and %d hung (over %g s); each was "
                    "reported as failed and its worker process replaced",
                    self.outcome.crashed,
                    self.outcome.timed_out,
                    self.image_timeout,
                )
        except WorkerStartError as exc:
            unfinished = [
                w.task.indices for w in self._workers if w is not None and w.task is not None
            ]
            unfinished += [task.indices for task in pending]
            unfinished += [np.asarray(indices, dtype=np.int64) for indices in source]
            exc.remaining = np.concatenate(unfinished) if unfinished else np.zeros(0, np.int64)
            raise

    def _loop(
        self,
        paths: Sequence[str],
        hash_size: int,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
        next_task: Callable[[], _Task | None],
        pending: deque[_Task],
        exhausted: Callable[[], bool],
    ) -> None:
        while True:
            self._assign(paths, hash_size, next_task, pending)
            busy = [w for w in self._workers if w is not None and w.task is not None]
            if not busy and not pending and exhausted():
                return
            try:
                worker, message = self._events.get(timeout=self._wait_seconds())
            except queue.Empty:
                pass
            else:
                self._handle(worker, message, paths, on_batch, pending)
                while True:  # drain what else has arrived
                    try:
                        worker, message = self._events.get_nowait()
                    except queue.Empty:
                        break
                    self._handle(worker, message, paths, on_batch, pending)
            self._check_clocks(on_batch, pending)

    def _assign(
        self,
        paths: Sequence[str],
        hash_size: int,
        next_task: Callable[[], _Task | None],
        pending: deque[_Task],
    ) -> None:
        for worker in self._workers:
            if worker is None or not worker.ready or worker.task is not None:
                continue
            task = next_task()
            if task is None:
                return
            worker.task = task
            worker.seen = (task.task_id, -2)
            worker.seen_at = time.monotonic()
            message = ("task", task.task_id, [paths[i] for i in task.indices], hash_size)
            assert worker.process.stdin is not None
            with contextlib.suppress(OSError):  # if it died, its reader reports it
                _write_frame(worker.process.stdin, message)

    def _wait_seconds(self) -> float:
        now = time.monotonic()
        poll = max(MIN_POLL_SECONDS, self.image_timeout * POLL_FRACTION)
        wait = poll if math.isfinite(poll) else WORKER_START_TIMEOUT
        for worker in self._workers:
            if worker is not None and not worker.ready:
                wait = min(wait, max(0.0, worker.started + WORKER_START_TIMEOUT - now))
        return max(MIN_POLL_SECONDS, wait)

    def _handle(
        self,
        worker: _Worker,
        message: object,
        paths: Sequence[str],
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
        pending: deque[_Task],
    ) -> None:
        if self._workers[worker.slot] is not worker:
            return  # from a worker already replaced
        if message is None:
            self._failed(worker, None, on_batch, pending)
            return
        if not isinstance(message, tuple):
            raise SmartDownsampleError(f"unexpected message from a worker process: {message!r}")
        kind = message[0]
        if kind == "ready":
            worker.ready = True
            self._failed_starts = 0
            return
        task = worker.task
        if task is None or message[1] != task.task_id:
            raise SmartDownsampleError(f"worker answered a task it was not given: {message[:2]!r}")
        worker.task = None
        if kind == "error":
            _, _, exc, text = message
            remote = _RemoteTraceback(text)
            if isinstance(exc, BaseException):
                raise exc from remote
            raise SmartDownsampleError("feature extraction failed in a worker process") from remote
        _, _, result, notes = message
        for category, text in notes:
            warnings.warn(text, category, stacklevel=2)
        on_batch(task.indices, result)

    def _check_clocks(
        self,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
        pending: deque[_Task],
    ) -> None:
        now = time.monotonic()
        for worker in list(self._workers):
            if worker is None:
                continue
            if not worker.ready:
                if now - worker.started > WORKER_START_TIMEOUT:
                    self._failed(
                        worker,
                        f"did not start within {WORKER_START_TIMEOUT:g} s",
                        on_batch,
                        pending,
                    )
                continue
            if worker.task is None:
                continue
            seen = SLOT.unpack_from(self._progress, SLOT.size * worker.slot)
            if seen != worker.seen:
                worker.seen, worker.seen_at = seen, now
            elif now - worker.seen_at > self.image_timeout:
                self._failed(worker, "timeout", on_batch, pending)

    def _failed(
        self,
        worker: _Worker,
        why: str | None,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
        pending: deque[_Task],
    ) -> None:
        """A worker died (``why`` None), hung ("timeout") or never started."""
        code = self._stop_worker(worker)  # first, so that its progress no longer moves
        task_id, position = SLOT.unpack_from(self._progress, SLOT.size * worker.slot)
        task = worker.task
        worker.task = None
        if not worker.ready:
            self._failed_starts += 1
            if self._failed_starts >= MAX_FAILED_STARTS:
                if task is not None:
                    pending.appendleft(task)
                self._workers[worker.slot] = None
                raise WorkerStartError(
                    "could not start smartdownsample worker processes with "
                    f"{sys.executable!r} ({why or _describe_exit(code)}); "
                    "see the messages above, or pass executor='thread'",
                    np.zeros(0, np.int64),
                )
        if task is not None:
            if why == "timeout":
                self.outcome.timed_out += 1
                reason = (
                    f"timed out after {self.image_timeout:g} s: the decoder hung on this "
                    "file (damaged file or stalled file system?); its worker was stopped"
                )
            else:
                self.outcome.crashed += 1
                reason = (
                    f"the decoder crashed on this file (worker process {_describe_exit(code)}); "
                    "the file is probably damaged"
                )
            self._recover(task, task_id, position, reason, on_batch, pending)
        self._replace(worker)

    def _recover(
        self,
        task: _Task,
        task_id: int,
        position: int,
        reason: str,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
        pending: deque[_Task],
    ) -> None:
        indices = task.indices
        if task_id == task.task_id and 0 <= position < len(indices):
            culprit = indices[position : position + 1]
            logger.info("image %d: %s", int(culprit[0]), reason)
            self.outcome.failed_images.append(int(culprit[0]))
            on_batch(culprit, failed_batch(1, reason))
            rest = np.concatenate([indices[:position], indices[position + 1 :]])
            if len(rest):
                self._next_task += 1
                pending.appendleft(_Task(self._next_task, rest))
            return
        # Not while decoding an image: retry, then bisect to find the culprit.
        task.unpinned_failures += 1
        if task.unpinned_failures < MAX_UNPINNED_ATTEMPTS:
            self._next_task += 1
            pending.appendleft(_Task(self._next_task, indices, task.unpinned_failures))
            return
        if len(indices) == 1:
            self.outcome.failed_images.append(int(indices[0]))
            on_batch(indices, failed_batch(1, reason))
            return
        half = len(indices) // 2
        for part in (indices[half:], indices[:half]):
            self._next_task += 1
            pending.appendleft(_Task(self._next_task, part))

    def close(self) -> None:
        """Stop the workers and remove the progress map.

        Idle workers hold nothing worth saving (they write no files), so they
        are killed rather than waited for: an interpreter exit with numpy
        loaded takes 0.1-0.3 s, paid at the end of every run otherwise; busy
        workers are killed too (after an error nothing they compute is wanted).
        """
        workers = [w for w in self._workers if w is not None]
        self._workers = []
        for worker in workers:
            self._stop_worker(worker)
        for worker in workers:
            if worker.reader is not None:
                worker.reader.join(timeout=STOP_GRACE_SECONDS)
        if not self._progress.closed:
            self._progress.close()
            self._progress_file.close()
        with contextlib.suppress(OSError):
            os.remove(self._progress_path)
