"""Dask backend: feature extraction on a ``distributed`` cluster.

The client splits the paths into batches and submits one task per batch,
:func:`~smartdownsample.extraction.batch.extract_batch`, which decodes the files on a
worker and sends back only the compact feature rows (about 40 bytes per
image). Everything else stays on the client: the feature cache is read before
any task is sent and written as results arrive, and selection runs on the
client exactly as in a local run, so the result is identical bit for bit.

Robustness:

* A worker that dies is survived: Dask reruns its tasks on another worker,
  and a task that raises is retried (:data:`TASK_RETRIES`).
* A batch that keeps killing its workers (a file that crashes the decoder or
  exhausts a worker's memory) ends as ``KilledWorker``; the batch is then
  split in halves and rerun, down to the single file, which is reported as a
  failure with the reason. No image is ever dropped silently.
* Only a few batches per worker thread are submitted at a time
  (:data:`IN_FLIGHT_PER_THREAD`), so ten million paths never sit in the
  scheduler at once.

``distributed`` is an optional dependency: ``pip install "smartdownsample[dask]"``.
"""

from __future__ import annotations

import logging
import math
import multiprocessing
import numbers
import os
import sys
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .._exceptions import InvalidArgumentError, MissingExtraError, SmartDownsampleError
from .._version import __version__
from .batch import BatchResult, extract_batch, failed_batch, iter_batches
from .local import checked_timeout, extract_batch_watched
from .processes import DEFAULT_IMAGE_TIMEOUT

if TYPE_CHECKING:
    from types import ModuleType

    from distributed import Client, Future

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "DaskRunner",
    "dask_runner",
    "require_distributed",
]

logger = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 512
"""Most images per Dask task.

Measured with ``benchmarks/bench_dask.py`` on a 2-core machine (client,
scheduler and 2 worker processes sharing the cores): a task costs 4-7 ms of
scheduling, messaging and result transfer whatever its size (no-op tasks of
0 to 1024 paths), against 0.4-0.8 ms of decoding per camera-trap crop and
about 5 ms per full frame. Per-task cost as a share of decoding, on crops:
about 25 % at 64 images, 6 % at 256, 3 % at 512, 1.7 % at 1024. Beyond 512
the gain is small while progress gets coarser and a lost worker loses more
work.
"""

MIN_BATCH_SIZE = 64
"""Fewest images per task when a small run is spread over many workers: below
this the fixed per-task cost (above) exceeds about a quarter of the decode
time of a batch of crops."""

BATCHES_PER_THREAD = 4
"""Small runs are cut into at least this many batches per worker thread, so
that every worker gets work and the last batch to finish is short."""

IN_FLIGHT_PER_THREAD = 4
"""Tasks submitted ahead per worker thread: keeps each worker fed while the
client handles results, and bounds what the scheduler holds."""

MIN_IN_FLIGHT = 8
"""Tasks submitted ahead even when the cluster has no workers yet (an adaptive
cluster only grows when it sees work waiting)."""

TASK_RETRIES = 2
"""Dask reruns a task that raised this many times before reporting the error
(workers that die are handled separately by the scheduler's
``distributed.scheduler.allowed-failures``)."""

THREADS_REFRESH_SECONDS = 2.0
"""How often the number of worker threads is re-read, so that the amount of
work in flight follows a cluster that grows or shrinks."""

SINGLE_FILE_KILLS = 2
"""A file alone in its task is reported as failed only once its task has ended
in ``KilledWorker`` this many times: a task waiting on a worker that another
file kills goes down with it, so one ``KilledWorker`` does not prove the file
guilty."""

LOCAL_DASHBOARD_ADDRESS = "127.0.0.1:0"
"""Where the LocalCluster started for a run serves its dashboard (shown when
``bokeh`` is installed): this machine only, on a free port, so that two runs
at once never fight over Dask's default port 8787."""

TASK_KEY_PREFIX = "smartdownsample-batch"
"""Prefix of task keys, which the Dask dashboard groups tasks by."""

MISSING_FILE_REASON = "the file does not exist"
"""Start of the reason :func:`~smartdownsample.loading.decode_file` gives for a
missing file; used to spot paths that a worker cannot see."""

WORKER_MISSING_REASON = (
    "the file does not exist on the Dask worker, yet it exists on the client: every "
    "worker must see the images at the same absolute paths (a shared file system "
    "mounted at the same place)"
)
"""Reason reported instead when a worker misses a file the client sees."""

MAIN_GUARD_FIX = (
    'put the script\'s calls to smartdownsample under `if __name__ == "__main__":` '
    "(the worker processes of the local Dask cluster import the script again)"
)
"""The one line that fixes a script without a ``__main__`` guard."""

BatchTask = Callable[[Sequence[str], int], BatchResult]
"""What a task runs on a worker: (paths, hash_size) -> BatchResult."""


def require_distributed() -> ModuleType:
    """Import ``distributed`` or say in one line how to install it.

    The one import guard of the optional ``dask`` extra: the command line
    uses it too, before it connects to a scheduler.
    """
    try:
        import distributed
    except ImportError as exc:
        raise MissingExtraError("the Dask backend", "dask", "distributed") from exc
    return distributed


def _checked_batch_size(value: object) -> int | None:
    """``value`` as a batch size, or an error naming it."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < 1:
        raise InvalidArgumentError(
            f"batch_size must be a whole number of images of at least 1, got {value!r}; "
            f"leave it unset for the default of up to {DEFAULT_BATCH_SIZE}"
        )
    return int(value)


def dask_runner(
    client: Client | None = None,
    *,
    batch_size: int | None = None,
    image_timeout: float | None = DEFAULT_IMAGE_TIMEOUT,
) -> DaskRunner:
    """A batch runner that computes features on a Dask cluster.

    Parameters
    ----------
    client : distributed.Client, optional
        The cluster to use. Default: the current client if one exists, else a
        ``LocalCluster`` (one single-threaded worker process per core) started
        for each run and closed after it, even on error.
    batch_size : int, optional
        Images per task; default: :data:`DEFAULT_BATCH_SIZE`, smaller for
        small runs so that every worker gets work.
    image_timeout : float or None, default 60
        Seconds one image may take on a worker before it is reported as
        failed ("timed out") and the task goes on with the rest of its batch
        (:func:`~smartdownsample.extraction.local.extract_batch_watched`); None:
        no limit.

    Returns
    -------
    DaskRunner
        Callable as ``runner(paths, todo, hash_size, on_batch=...)``, see
        :class:`~smartdownsample.extraction.protocols.BatchRunner`.

    Raises
    ------
    MissingExtraError
        If ``distributed`` is not installed.
    InvalidArgumentError
        For a ``batch_size`` below 1 or a client that cannot be used.

    Examples
    --------
    >>> runner = dask_runner(batch_size=256)
    >>> runner.batch_size_for(10_000, threads=8)
    256

    Usually the runner is built by :func:`smartdownsample.downsample`:

    >>> from distributed import Client, LocalCluster
    >>> from smartdownsample import downsample
    >>> with LocalCluster(n_workers=2) as cluster, Client(cluster) as client:  # doctest: +SKIP
    ...     result = downsample(paths, 1000, backend="dask", client=client)
    """
    task: BatchTask = extract_batch
    if image_timeout is not None:
        task = partial(extract_batch_watched, image_timeout=checked_timeout(image_timeout))
    return DaskRunner(client, batch_size=batch_size, task=task)


class DaskRunner:
    """Runs :func:`~smartdownsample.extraction.batch.extract_batch` as Dask tasks.

    A :class:`~smartdownsample.extraction.protocols.BatchRunner`; build it with
    :func:`dask_runner`.

    Parameters
    ----------
    client : distributed.Client, optional
        See :func:`dask_runner`.
    batch_size : int, optional
        See :func:`dask_runner`.
    task : callable, default :func:`~smartdownsample.extraction.batch.extract_batch`
        The function a task runs, ``task(paths, hash_size) -> BatchResult``.
        It must be importable on the workers or picklable by value.

    Examples
    --------
    >>> from smartdownsample.extraction import extract_features
    >>> runner = DaskRunner(client)  # doctest: +SKIP
    >>> features = extract_features(paths, 8, runner=runner)  # doctest: +SKIP
    """

    def __init__(
        self,
        client: Client | None = None,
        *,
        batch_size: int | None = None,
        task: BatchTask = extract_batch,
    ) -> None:
        self._distributed = require_distributed()
        self.batch_size = _checked_batch_size(batch_size)
        if client is not None and not isinstance(client, self._distributed.Client):
            raise InvalidArgumentError(
                f"client must be a distributed.Client, got {type(client).__name__}; "
                "create one with distributed.Client(address) or leave it unset"
            )
        self.client = client
        self.task = task

    def batch_size_for(self, n_images: int, threads: int) -> int:
        """Images per task for ``n_images`` on ``threads`` worker threads.

        An explicit ``batch_size`` wins; otherwise the run is cut into at
        least :data:`BATCHES_PER_THREAD` batches per thread, each between
        :data:`MIN_BATCH_SIZE` and :data:`DEFAULT_BATCH_SIZE` images.

        Examples
        --------
        >>> runner = DaskRunner()
        >>> runner.batch_size_for(4000, 2), runner.batch_size_for(10**7, 2)
        (500, 512)
        """
        if self.batch_size is not None:
            return self.batch_size
        spread = math.ceil(n_images / (max(1, threads) * BATCHES_PER_THREAD))
        return max(MIN_BATCH_SIZE, min(DEFAULT_BATCH_SIZE, spread))

    def __call__(
        self,
        paths: Sequence[str],
        todo: NDArray[np.int64],
        hash_size: int,
        *,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    ) -> None:
        """Compute features of ``paths[todo]``, calling ``on_batch`` on the client per batch."""
        if len(todo) == 0:
            return
        with self._client_for_run() as client:
            _Run(self, client, paths, hash_size, on_batch).run(todo)

    @contextmanager
    def _client_for_run(self) -> Iterator[Client]:
        """The given client, else the current one, else a LocalCluster closed afterwards."""
        distributed = self._distributed
        client = self.client
        if client is None:
            try:
                client = distributed.Client.current()
            except ValueError:
                client = None
            if client is not None and client.status != "running":
                client = None
        if client is not None:
            if client.status != "running":
                raise InvalidArgumentError(
                    f"the Dask client {client!r} is {client.status}, not running; "
                    "pass an open distributed.Client"
                )
            if client.asynchronous:
                raise InvalidArgumentError(
                    "the Dask client is asynchronous; pass a synchronous distributed.Client "
                    "(created without asynchronous=True)"
                )
            yield client
            return
        workers = os.cpu_count() or 1
        _refuse_in_bootstrapping_child()
        logger.info("starting a Dask LocalCluster of %d worker processes for this run", workers)
        with (
            _local_cluster(distributed, workers) as cluster,
            distributed.Client(cluster, set_as_default=False) as own_client,
        ):
            logger.info("Dask dashboard of this run (needs bokeh): %s", own_client.dashboard_link)
            yield own_client


def _refuse_in_bootstrapping_child() -> None:
    """Stop a worker process that is importing an unguarded script, with one line.

    A spawned process imports the parent's main script before it can work; a
    script that calls smartdownsample outside a ``__main__`` guard would start
    a cluster from there, and multiprocessing refuses with a long traceback in
    every worker. ``SystemExit`` ends that doomed process with the fix alone.
    """
    if getattr(multiprocessing.current_process(), "_inheriting", False):
        raise SystemExit(
            "smartdownsample: error: a Dask worker process importing the script was asked to "
            f"start a cluster; {MAIN_GUARD_FIX}"
        )


def _runs_a_script() -> bool:
    """True when the main module is a script file (its worker processes import it again)."""
    main = sys.modules.get("__main__")
    return main is not None and getattr(main, "__file__", None) is not None


@contextmanager
def _local_cluster(distributed: ModuleType, workers: int) -> Iterator[Any]:
    """A LocalCluster of ``workers`` single-threaded processes; a start that fails in a
    script names the missing ``__main__`` guard, its usual cause, in one line."""
    try:
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=LOCAL_DASHBOARD_ADDRESS,
        )
    except RuntimeError as exc:
        if not _runs_a_script():
            raise
        raise SmartDownsampleError(
            f"the local Dask cluster could not start its worker processes ({exc}); if the "
            f"script calls smartdownsample outside a main guard, {MAIN_GUARD_FIX}"
        ) from None
    with cluster:
        yield cluster


class _Run:
    """State of one run: the batches waiting, the tasks in flight."""

    def __init__(
        self,
        runner: DaskRunner,
        client: Client,
        paths: Sequence[str],
        hash_size: int,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    ) -> None:
        self.distributed = runner._distributed
        self.runner = runner
        self.client = client
        self.paths = paths
        self.hash_size = hash_size
        self.on_batch = on_batch
        self.pending: dict[Future[BatchResult], NDArray[np.int64]] = {}
        self.splits: deque[NDArray[np.int64]] = deque()
        self.threads = 0
        self.threads_read_at = -math.inf
        self.single_kills: dict[int, int] = {}
        self.completed: Any = self.distributed.as_completed(loop=client.loop)
        # Client.nthreads and Client.cancel carry no type hints in distributed.
        self.untyped_client: Any = client

    def worker_threads(self) -> int:
        """Worker threads in the cluster, re-read at most every few seconds."""
        now = time.monotonic()
        if now - self.threads_read_at >= THREADS_REFRESH_SECONDS:
            self.threads = sum(self.untyped_client.nthreads().values())
            self.threads_read_at = now
        return self.threads

    def in_flight_limit(self) -> int:
        return max(MIN_IN_FLIGHT, IN_FLIGHT_PER_THREAD * self.worker_threads())

    def submit(self, batch: NDArray[np.int64]) -> None:
        future: Future[BatchResult] = self.client.submit(
            self.runner.task,
            [self.paths[i] for i in batch],
            self.hash_size,
            key=f"{TASK_KEY_PREFIX}-{uuid.uuid4().hex}",
            pure=False,
            retries=TASK_RETRIES,
        )
        self.pending[future] = batch
        self.completed.add(future)

    def top_up(self, batches: Iterator[NDArray[np.int64]]) -> None:
        limit = self.in_flight_limit()
        while len(self.pending) < limit:
            if self.splits:
                self.submit(self.splits.popleft())
                continue
            batch = next(batches, None)
            if batch is None:
                return
            self.submit(batch)

    def run(self, todo: NDArray[np.int64]) -> None:
        threads = self.worker_threads()
        size = self.runner.batch_size_for(len(todo), threads)
        if threads == 0:
            logger.warning("the Dask cluster has no workers yet; the tasks wait until some join")
        logger.info(
            "computing features of %d images on Dask: %d tasks of up to %d images, "
            "%d worker threads",
            len(todo),
            math.ceil(len(todo) / size),
            size,
            threads,
        )
        batches = iter_batches(todo, size, self.paths)
        try:
            self.top_up(batches)
            for future in self.completed:
                batch = self.pending.pop(future)
                outcome = self.collect(future, batch)
                future.release()
                if outcome is not None:
                    self.on_batch(batch, outcome)
                self.top_up(batches)
        finally:
            if self.pending:
                self.untyped_client.cancel(list(self.pending))
                self.pending.clear()

    def collect(self, future: Future[BatchResult], batch: NDArray[np.int64]) -> BatchResult | None:
        """The batch's result, or None when it was split to be rerun in halves."""
        if future.status == "cancelled":
            raise SmartDownsampleError(
                f"the Dask cluster cancelled a feature task ({future.key}): was the scheduler "
                "restarted or the client closed? Run again; a feature cache (cache=...) keeps "
                "the work already done"
            )
        try:
            result = future.result()
        except self.distributed.KilledWorker as exc:
            return self.worker_died(batch, exc)
        except ImportError as exc:
            raise SmartDownsampleError(
                f"a Dask worker could not run the feature task: {exc}; install "
                f"smartdownsample {__version__} (with the same versions of its dependencies) "
                "in the Python environment of every worker"
            ) from exc
        return self.visibility_hint(batch, result)

    def worker_died(self, batch: NDArray[np.int64], exc: Exception) -> BatchResult | None:
        """Rerun a batch that kept killing workers in halves; report a single file."""
        if len(batch) > 1:
            half = len(batch) // 2
            logger.warning(
                "Dask workers died on a batch of %d images; rerunning it in two halves "
                "to find the file that kills them",
                len(batch),
            )
            self.splits.appendleft(batch[half:])
            self.splits.appendleft(batch[:half])
            return None
        index = int(batch[0])
        kills = self.single_kills.get(index, 0) + 1
        if kills < SINGLE_FILE_KILLS:
            self.single_kills[index] = kills
            self.splits.appendleft(batch)
            return None
        attempts = kills * (getattr(exc, "allowed_failures", 0) + 1)
        reason = (
            f"a Dask worker died each time it decoded this file ({attempts} attempts): the "
            "decoder may crash on it, or it needs more memory than a worker has"
        )
        logger.error("%s: %s", self.paths[int(batch[0])], reason)
        return failed_batch(1, reason)

    def visibility_hint(self, batch: NDArray[np.int64], result: BatchResult) -> BatchResult:
        """Say so when a worker cannot see a file the client sees."""
        missing = [
            position for position, reason in result.errors if reason.startswith(MISSING_FILE_REASON)
        ]
        # One look on the client per batch is enough: a worker that lacks the
        # mount misses every file, and a real missing file is missing here too.
        if not missing or not os.path.exists(self.paths[int(batch[missing[0]])]):
            return result
        hinted = set(missing)
        errors = tuple(
            (position, WORKER_MISSING_REASON if position in hinted else reason)
            for position, reason in result.errors
        )
        return BatchResult(result.features, result.ok, errors)
