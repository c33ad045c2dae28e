"""Feature extraction over many files: batches, workers, failures.

:func:`extract_batch` is the unit of work: it decodes a list of paths and
returns their compact feature rows plus the failures, and it is what local
workers and Dask tasks run. :func:`extract_features` drives it over a whole
path list with local threads or processes, streaming batches so that memory
holds only feature rows, never decoded images.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
from numpy.typing import NDArray

from ._exceptions import ImageLoadError, InvalidArgumentError
from ._types import ExecutorKind
from .features import empty_features, features_from_thumbnails
from .loading import decode_file, thumbnail_side

__all__ = [
    "BATCH_SIZE",
    "BatchResult",
    "ExtractionResult",
    "extract_batch",
    "extract_features",
    "iter_batches",
]

logger = logging.getLogger(__name__)

BATCH_SIZE = 64
"""Images per unit of work: large enough that scheduling and pickling cost
little next to decoding (about 64 x 0.5 ms), small enough for smooth progress."""

IN_FLIGHT_PER_WORKER = 4
"""Batches queued per worker: keeps workers busy while bounding memory."""


@dataclass(frozen=True)
class BatchResult:
    """Features of one batch.

    Attributes
    ----------
    features : numpy.ndarray
        ``(B,)`` rows of :data:`.features.FEATURE_DTYPE` (zeros where failed).
    ok : numpy.ndarray
        ``(B,)`` bool, False where the image failed.
    errors : tuple of (int, str)
        Position in the batch and reason of every failure.
    """

    features: NDArray[np.void]
    ok: NDArray[np.bool_]
    errors: tuple[tuple[int, str], ...]


def extract_batch(paths: Sequence[str], hash_size: int) -> BatchResult:
    """Decode a batch of image files and compute their features.

    Parameters
    ----------
    paths : sequence of str
        Image files.
    hash_size : int
        Hash size for the structure bits.

    Returns
    -------
    BatchResult
        One feature row per path; unreadable files are marked, not dropped.

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> good = os.path.join(folder, "a.png"); Image.new("RGB", (64, 64)).save(good)
    >>> bad = os.path.join(folder, "b.jpg"); _ = open(bad, "wb").write(b"not a jpeg")
    >>> result = extract_batch([good, bad], 8)
    >>> result.ok.tolist(), result.errors[0][0]
    ([True, False], 1)
    """
    side = thumbnail_side(hash_size)
    count = len(paths)
    thumbnails = np.zeros((count, side, side, 3), dtype=np.uint8)
    capture = np.full(count, np.nan)
    widths = np.zeros(count, dtype=np.int32)
    heights = np.zeros(count, dtype=np.int32)
    ok = np.zeros(count, dtype=bool)
    errors: list[tuple[int, str]] = []
    for index, path in enumerate(paths):
        try:
            decoded = decode_file(path, side)
        except ImageLoadError as exc:
            errors.append((index, exc.reason))
            continue
        thumbnails[index] = decoded.thumbnail
        capture[index] = decoded.capture_time
        widths[index] = decoded.width
        heights[index] = decoded.height
        ok[index] = True
    features = empty_features(count)
    if ok.any():
        features[ok] = features_from_thumbnails(thumbnails[ok], hash_size)
    features["capture_time"] = capture
    features["width"] = widths
    features["height"] = heights
    return BatchResult(features, ok, tuple(errors))


@dataclass
class ExtractionResult:
    """Features of a whole path list.

    Attributes
    ----------
    features : numpy.ndarray
        ``(N,)`` feature rows aligned with the paths.
    ok : numpy.ndarray
        ``(N,)`` bool, False for images that could not be read.
    errors : dict of int to str
        Reason per failed index.
    n_cached : int
        How many rows came from the feature cache.
    """

    features: NDArray[np.void]
    ok: NDArray[np.bool_]
    errors: dict[int, str] = field(default_factory=dict)
    n_cached: int = 0


def iter_batches(indices: NDArray[np.int64], size: int = BATCH_SIZE) -> Iterator[NDArray[np.int64]]:
    """Split an index array into consecutive batches of at most ``size``."""
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def resolve_workers(n_workers: int | None) -> int:
    """Number of workers to use; ``None`` or 0 means one per CPU core."""
    if n_workers is None or n_workers == 0:
        return os.cpu_count() or 1
    if n_workers < 0:
        raise InvalidArgumentError(
            f"n_workers must be a positive number of workers (or 0 for one per core), "
            f"got {n_workers}"
        )
    return n_workers


def _make_executor(kind: ExecutorKind, workers: int) -> Executor | None:
    if kind == "serial" or workers <= 1:
        return None
    if kind == "process":
        from ._processes import make_process_pool

        return make_process_pool(workers)
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="smartdownsample")


def choose_executor(kind: ExecutorKind, workers: int, n_images: int) -> ExecutorKind:
    """Resolve ``"auto"``: threads, since decoding releases the GIL (measured)."""
    if kind != "auto":
        return kind
    if workers <= 1 or n_images <= BATCH_SIZE:
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
) -> None:
    """Run :func:`extract_batch` over ``paths[todo]`` and hand each result to ``on_batch``.

    Batches are submitted a few at a time, so memory stays bounded however
    many paths there are. Results arrive in completion order.
    """
    kind = choose_executor(executor, workers, len(todo))
    pool = _make_executor(kind, workers)
    batches = iter_batches(todo)
    if pool is None:
        for batch in batches:
            on_batch(batch, extract_batch([paths[i] for i in batch], hash_size))
        return
    limit = max(1, workers * IN_FLIGHT_PER_WORKER)
    pending: dict[Future[BatchResult], NDArray[np.int64]] = {}
    try:
        from concurrent.futures import FIRST_COMPLETED, wait

        for batch in batches:
            future = pool.submit(extract_batch, [paths[i] for i in batch], hash_size)
            pending[future] = batch
            if len(pending) >= limit:
                done, _ = wait(pending, return_when=FIRST_COMPLETED)
                for finished in done:
                    on_batch(pending.pop(finished), finished.result())
        while pending:
            done, _ = wait(pending, return_when=FIRST_COMPLETED)
            for finished in done:
                on_batch(pending.pop(finished), finished.result())
    finally:
        for future in pending:
            future.cancel()
        pool.shutdown(wait=True, cancel_futures=True)


class BatchRunner(Protocol):
    """Runs :func:`extract_batch` over ``paths[todo]``, calling ``on_batch`` per result.

    :func:`run_batches` is the local runner; the Dask backend provides another.
    """

    def __call__(
        self,
        paths: Sequence[str],
        todo: NDArray[np.int64],
        hash_size: int,
        *,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    ) -> None: ...


class FeatureStore(Protocol):
    """What extraction needs of a feature cache (see :mod:`smartdownsample.cache`)."""

    def lookup(self, paths: Sequence[str]) -> tuple[NDArray[np.void], NDArray[np.bool_], Any]:
        """Cached rows, a hit mask, and an opaque token (file stats) for :meth:`store`."""
        ...

    def store(
        self,
        paths: Sequence[str],
        indices: NDArray[np.int64],
        result: BatchResult,
        token: Any,
    ) -> None:
        """Save fresh rows of ``paths[indices]`` (stats from ``token``)."""
        ...


def local_runner(n_workers: int | None = 4, executor: ExecutorKind = "auto") -> BatchRunner:
    """A :class:`BatchRunner` using this machine's threads or processes."""
    workers = resolve_workers(n_workers)

    def run(
        paths: Sequence[str],
        todo: NDArray[np.int64],
        hash_size: int,
        *,
        on_batch: Callable[[NDArray[np.int64], BatchResult], None],
    ) -> None:
        run_batches(paths, todo, hash_size, workers=workers, executor=executor, on_batch=on_batch)

    return run


def extract_features(
    paths: Sequence[str],
    hash_size: int,
    *,
    runner: BatchRunner | None = None,
    cache: FeatureStore | None = None,
    progress: Callable[[int], None] | None = None,
    on_failure: Callable[[int, str], None] | None = None,
) -> ExtractionResult:
    """Features of every path: from the cache where valid, else computed.

    Parameters
    ----------
    paths : sequence of str
        Image files.
    hash_size : int
        Hash size for the structure bits.
    runner : BatchRunner, optional
        Where batches run; default :func:`local_runner` with 4 workers.
    cache : FeatureStore, optional
        Feature cache; rows found there are not recomputed, new rows are saved.
    progress : callable, optional
        Called with the number of images finished after each batch.
    on_failure : callable, optional
        Called with (index, reason) for each unreadable image as soon as it
        is found; it may raise to stop the run early.

    Returns
    -------
    ExtractionResult

    Examples
    --------
    >>> import os, tempfile
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "a.png"); Image.new("RGB", (40, 40), "red").save(path)
    >>> extract_features([path], 8).features["mean_rgb"].tolist()
    [[255.0, 0.0, 0.0]]
    """
    count = len(paths)
    result = ExtractionResult(empty_features(count), np.zeros(count, dtype=bool))
    todo = np.arange(count, dtype=np.int64)
    token: Any = None
    if cache is not None and count:
        cached, hit, token = cache.lookup(paths)
        result.features[hit] = cached[hit]
        result.ok[hit] = True
        result.n_cached = int(hit.sum())
        todo = np.flatnonzero(~hit).astype(np.int64)
        if progress is not None and result.n_cached:
            progress(result.n_cached)

    def store(batch: NDArray[np.int64], batch_result: BatchResult) -> None:
        result.features[batch] = batch_result.features
        result.ok[batch] = batch_result.ok
        if cache is not None:
            cache.store(paths, batch, batch_result, token)
        for position, reason in batch_result.errors:
            index = int(batch[position])
            result.errors[index] = reason
            if on_failure is not None:
                on_failure(index, reason)
        if progress is not None:
            progress(len(batch))

    if len(todo):
        (runner or local_runner())(paths, todo, hash_size, on_batch=store)
    return result
