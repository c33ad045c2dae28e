"""Running batches on this machine: worker processes, threads, or serially.

Local runs use worker processes for large inputs (:func:`choose_executor`):
they scale past the GIL and, above all, a decoder that crashes or hangs on a
hostile file costs only that file, which is reported as failed ("the decoder
crashed ...", "timed out after 60 s ..."), while the rest of the run goes on
(see :mod:`.processes`). The per-image time limit is ``image_timeout`` of
:func:`local_runner` (default :data:`.processes.DEFAULT_IMAGE_TIMEOUT`);
thread and serial runs honour it too, by giving up the image and leaving its
thread behind (:class:`_WatchedThreads`).
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._exceptions import InvalidArgumentError
from .._types import ExecutorKind
from ..features import empty_features
from .batch import BatchResult, batch_size_for, extract_batch, failed_batch, iter_batches
from .processes import (
    DEFAULT_IMAGE_TIMEOUT,
    MIN_POLL_SECONDS,
    POLL_FRACTION,
    WorkerPool,
    WorkerStartError,
    processes_supported,
)
from .protocols import BatchRunner

__all__ = [
    "AUTO_PROCESS_MIN_IMAGES",
    "checked_timeout",
    "choose_executor",
    "extract_batch_watched",
    "local_runner",
    "resolve_workers",
    "run_batches",
]

logger = logging.getLogger(__name__)

IN_FLIGHT_PER_WORKER = 4
"""Batches queued per worker thread: keeps workers busy while bounding memory."""

THREAD_JOIN_SECONDS = 5.0
"""How long the end of a thread run waits for its threads to finish the
image each is on (they stop before the next one)."""

AUTO_PROCESS_MIN_IMAGES = 2_000
"""From this many images to compute, ``executor="auto"`` uses worker
processes (see :func:`choose_executor` for the measurements behind it)."""


def resolve_workers(n_workers: int | None) -> int:
    """Number of workers to use; ``None`` or 0 means one per CPU core.

    Examples
    --------
    >>> resolve_workers(3)
    3
    """
    if n_workers is None or n_workers == 0:
        return os.cpu_count() or 1
    if n_workers < 0:
        raise InvalidArgumentError(
            f"n_workers must be a positive number of workers (or 0 for one per core), "
            f"got {n_workers}"
        )
    return n_workers


def choose_executor(kind: ExecutorKind, workers: int, n_images: int) -> ExecutorKind:
    """Resolve ``"auto"`` into ``"process"``, ``"thread"`` or ``"serial"``.

    The rule, from ``benchmarks/bench_speed.py`` on 2 cores (features only,
    start-up included, images/s; 5,000 crops of ~50 KiB and 800 full
    1920x1080 frames of ~750 KiB, files in the page cache):

    ==========  ======  ==========  ==========  ===========  ===========
    kind        serial  thread x2   thread x4   process x2   process x4
    ==========  ======  ==========  ==========  ===========  ===========
    crops       1,732   2,032       2,698       2,892        2,667
    frames      153     248         291         269          252
    ==========  ======  ==========  ==========  ===========  ===========

    Starting 2 worker processes took 0.22 s (0.22 s of CPU), 4 took 0.43 s of
    CPU; ``multiprocessing`` pools importing the same modules took 0.41 s
    (forkserver) and 0.57 s (spawn). Crops spend a larger share of their time
    in Python code that holds the GIL (EXIF, thumbnail, batching), so threads
    scale poorly on them; frames are decode-bound, where threads and
    processes are equal.

    * ``"process"`` from :data:`AUTO_PROCESS_MIN_IMAGES` images to compute:
      as fast as threads or faster once the start-up is paid (at 2,000 crops
      a run takes about 0.7 s with processes, 0.8-1.0 s with threads), and
      above all a decoder that crashes or hangs on a hostile file costs
      only that file (see :mod:`.processes`). ``"auto"``
      starts at most one process per CPU core: decoding files from the page
      cache is CPU-bound, and every extra process costs a start-up (pass
      ``executor="process"`` for exactly ``n_workers`` processes, e.g. to
      hide the latency of a network file system);
    * ``"thread"`` below that, when there is more than one batch and more
      than one worker: such runs take about a second or less, where the
      start-up of processes would be a large share;
    * ``"serial"`` for a single batch or a single worker.

    Inside frozen applications, where worker processes cannot be started,
    ``"auto"`` never picks processes.

    Examples
    --------
    >>> choose_executor("auto", 4, 100_000), choose_executor("auto", 4, 300)
    ('process', 'thread')
    >>> choose_executor("auto", 4, 5), choose_executor("thread", 4, 5)
    ('serial', 'thread')
    """
    if kind != "auto":
        return kind
    if n_images >= AUTO_PROCESS_MIN_IMAGES and processes_supported():
        return "process"
    if workers <= 1 or n_images <= batch_size_for(n_images, workers):
        return "serial"
    return "thread"


def run_batches(
    paths: Sequence[str],
    todo: NDArray[np.int64],
    hash_size: int,
    *,
    workers: int,
    executor: ExecutorKind,
    on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    image_timeout: float = DEFAULT_IMAGE_TIMEOUT,
) -> None:
    """Run :func:`extract_batch` over ``paths[todo]`` and hand each result to ``on_batch``.

    Batches are submitted a few at a time, so memory stays bounded however
    many paths there are. Results arrive in completion order, and after a
    worker crash a batch may arrive in several parts.

    With ``executor="process"`` a decoder that crashes or hangs (longer than
    ``image_timeout`` seconds on one image) costs only that image, which is
    reported as failed. Threads and serial runs share the fate of a crashing
    decoder, and cannot stop a hung one; they too report an image that takes
    longer than ``image_timeout`` as timed out and go on with the rest, in a
    new thread, leaving the hung thread behind (see :func:`_run_watched`).
    """
    kind = choose_executor(executor, workers, len(todo))
    if executor == "auto" and kind == "process":
        # CPU-bound decoding gains nothing from more processes than cores,
        # and each one costs a start-up (see choose_executor).
        workers = min(workers, os.cpu_count() or 1)
    size = batch_size_for(len(todo), workers)
    logger.debug("computing %d images with %s x %d, batches of %d", len(todo), kind, workers, size)
    if kind == "process":
        remaining = _run_in_processes(
            paths, todo, hash_size, workers, size, image_timeout, on_batch
        )
        if remaining is None:
            return
        todo, kind = remaining, "thread"
    if kind == "serial":
        workers = 1  # one decoding thread, so that this one can watch the clock
    _run_watched(paths, todo, hash_size, workers, size, image_timeout, on_batch)


def _run_in_processes(
    paths: Sequence[str],
    todo: NDArray[np.int64],
    hash_size: int,
    workers: int,
    size: int,
    image_timeout: float,
    on_batch: Callable[[NDArray[np.int64], BatchResult], None],
) -> NDArray[np.int64] | None:
    """Run in a :class:`WorkerPool`; the indices left over if workers cannot start."""
    n_batches = -(-len(todo) // size)
    try:
        with WorkerPool(workers, image_timeout) as pool:
            pool.run(
                paths,
                iter_batches(todo, size, paths),
                hash_size,
                on_batch,
                expected_batches=n_batches,
            )
    except WorkerStartError as exc:
        logger.warning("%s; continuing with threads", exc)
        return exc.remaining
    return None


class _Dropped(Exception):
    """Raised inside a decoding thread whose job was given up (timed out or run ended)."""


@dataclass(eq=False)  # compared by identity: a batch array has no truth value
class _Job:
    """A batch for a decoding thread, and which of its images is being decoded since when."""

    batch: NDArray[np.int64]
    current: tuple[int, float] | None = None  # (position, monotonic start); one atomic write
    dropped: bool = False
    thread: threading.Thread | None = None  # the thread running it


class _WatchedThreads:
    """Daemon threads decoding batches while the calling thread watches each image's clock.

    A thread cannot be stopped from outside, so an image that takes longer
    than ``image_timeout`` is given up: it is reported as timed out, the rest
    of its batch goes back to the queue, a new thread takes the hung one's
    place, and whatever the hung thread returns later is ignored. It stops by
    itself before its next image if its decoder ever returns; if not, it idles
    in the background (a daemon thread, so it never keeps the program alive).
    """

    def __init__(
        self,
        paths: Sequence[str],
        hash_size: int,
        image_timeout: float,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    ) -> None:
        self.paths = paths
        self.hash_size = hash_size
        self.image_timeout = image_timeout
        self.on_batch = on_batch
        self.jobs: queue.Queue[_Job | None] = queue.Queue()
        self.results: queue.Queue[tuple[_Job, BatchResult | BaseException]] = queue.Queue()
        self.in_flight: list[_Job] = []
        self.threads: list[threading.Thread] = []
        self.left_behind: set[threading.Thread] = set()
        self.stopping = threading.Event()
        self.timed_out = 0

    def start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"smartdownsample-{len(self.threads)}", daemon=True
        )
        self.threads.append(thread)
        thread.start()

    def submit(self, batch: NDArray[np.int64]) -> None:
        job = _Job(batch)
        self.in_flight.append(job)
        self.jobs.put(job)

    def _work(self) -> None:
        while not self.stopping.is_set():
            job = self.jobs.get()
            if job is None:
                return
            job.thread = threading.current_thread()

            def mark(position: int, job: _Job = job) -> None:
                if job.dropped or self.stopping.is_set():
                    raise _Dropped
                job.current = (position, time.monotonic())

            try:
                outcome: BatchResult | BaseException = extract_batch(
                    [self.paths[i] for i in job.batch], self.hash_size, on_image=mark
                )
            except _Dropped:
                outcome = _Dropped()
            except BaseException as exc:  # noqa: BLE001 - re-raised by the watching thread
                outcome = exc
            self.results.put((job, outcome))
            if job.dropped:
                return  # a replacement thread took this one's place

    def wait_one(self) -> None:
        """Hand on the next finished batch, or give up images past the time limit."""
        poll = max(MIN_POLL_SECONDS, self.image_timeout * POLL_FRACTION)
        try:
            job, outcome = self.results.get(timeout=poll)
        except queue.Empty:
            self._check_clocks()
            return
        if job.dropped:
            return
        self.in_flight.remove(job)
        if isinstance(outcome, BaseException):
            raise outcome
        self.on_batch(job.batch, outcome)

    def _check_clocks(self) -> None:
        now = time.monotonic()
        for job in list(self.in_flight):
            current = job.current
            if current is None or now - current[1] <= self.image_timeout:
                continue
            position = current[0]
            job.dropped = True
            self.in_flight.remove(job)
            self.timed_out += 1
            if job.thread is not None:
                self.left_behind.add(job.thread)
            path = self.paths[int(job.batch[position])]
            logger.warning(
                "%s: no result after %g s; counted as failed, its decoding thread is left "
                "behind and a new one goes on",
                path,
                self.image_timeout,
            )
            self.start_thread()
            rest = np.delete(job.batch, position)
            if len(rest):
                self.submit(rest)
            self.on_batch(
                job.batch[position : position + 1],
                failed_batch(
                    1,
                    f"timed out after {self.image_timeout:g} s: the decoder hung on this file "
                    "(damaged file or stalled file system?); its thread was left behind",
                ),
            )

    def close(self) -> None:
        """Stop the threads at their next image and wait (briefly) for the live ones."""
        self.stopping.set()
        for job in self.in_flight:
            job.dropped = True
        for _ in self.threads:
            self.jobs.put(None)
        deadline = time.monotonic() + THREAD_JOIN_SECONDS
        for thread in self.threads:
            if thread not in self.left_behind:  # a hung one would only make us wait
                thread.join(timeout=max(0.0, deadline - time.monotonic()))


def _run_watched(
    paths: Sequence[str],
    todo: NDArray[np.int64],
    hash_size: int,
    workers: int,
    size: int,
    image_timeout: float,
    on_batch: Callable[[NDArray[np.int64], BatchResult], None],
) -> None:
    """Run batches in ``workers`` threads with ``image_timeout`` (see :class:`_WatchedThreads`)."""
    limit = max(1, workers * IN_FLIGHT_PER_WORKER)
    watched = _WatchedThreads(paths, hash_size, image_timeout, on_batch)
    try:
        for _ in range(max(1, workers)):
            watched.start_thread()
        for batch in iter_batches(todo, size, paths):
            watched.submit(batch)
            while len(watched.in_flight) >= limit:
                watched.wait_one()
        while watched.in_flight:
            watched.wait_one()
    finally:
        watched.close()
    if watched.timed_out:
        logger.info("%d image(s) timed out in decoding threads", watched.timed_out)


def extract_batch_watched(
    paths: Sequence[str], hash_size: int, *, image_timeout: float
) -> BatchResult:
    """:func:`.batch.extract_batch` with a time limit per image, in one watched thread.

    For a task that must come back whatever its files do (a Dask task): an
    image that takes longer than ``image_timeout`` seconds is reported as
    timed out and the rest of the batch is decoded by a fresh thread (see
    :class:`_WatchedThreads`; the hung thread is left behind, idle if its
    decoder ever returns).

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> path = os.path.join(tempfile.mkdtemp(), "a.png"); Image.new("RGB", (40, 40)).save(path)
    >>> result = extract_batch_watched([path, path + ".gone"], 8, image_timeout=60)
    >>> result.ok.tolist(), [position for position, _ in result.errors]
    ([True, False], [1])
    """
    count = len(paths)
    features = empty_features(count)
    ok = np.zeros(count, dtype=bool)
    errors: list[tuple[int, str]] = []

    def collect(batch: NDArray[np.int64], result: BatchResult) -> None:
        features[batch] = result.features
        ok[batch] = result.ok
        errors.extend((int(batch[position]), reason) for position, reason in result.errors)

    if count:
        todo = np.arange(count, dtype=np.int64)
        _run_watched(paths, todo, hash_size, 1, count, image_timeout, collect)
    return BatchResult(features, ok, tuple(sorted(errors)))


def checked_timeout(value: object) -> float:
    """``image_timeout`` as a float, or an error naming it and the fix.

    Examples
    --------
    >>> checked_timeout(2)
    2.0
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise InvalidArgumentError(
            f"image_timeout must be a positive number of seconds, got {value!r}"
        )
    return float(value)


def local_runner(
    n_workers: int | None = 4,
    executor: ExecutorKind = "auto",
    *,
    image_timeout: float = DEFAULT_IMAGE_TIMEOUT,
) -> BatchRunner:
    """A :class:`BatchRunner` using this machine's processes or threads.

    Parameters
    ----------
    n_workers : int or None, default 4
        Workers; None or 0 for one per CPU core.
    executor : {"auto", "process", "thread", "serial"}, default "auto"
        See :func:`choose_executor` for what ``"auto"`` picks.
    image_timeout : float, default :data:`DEFAULT_IMAGE_TIMEOUT`
        Seconds one image may take before it is reported as failed: a worker
        process is stopped, a decoding thread (which cannot be stopped) is
        left behind and replaced.

    Examples
    --------
    >>> runner = local_runner(2, "serial")
    >>> callable(runner)
    True
    """
    workers = resolve_workers(n_workers)
    image_timeout = checked_timeout(image_timeout)

    def run(
        paths: Sequence[str],
        todo: NDArray[np.int64],
        hash_size: int,
        *,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    ) -> None:
        run_batches(
            paths,
            todo,
            hash_size,
            workers=workers,
            executor=executor,
            on_batch=on_batch,
            image_timeout=image_timeout,
        )

    return run
