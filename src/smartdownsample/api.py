"""The public entry points: :func:`downsample` and :func:`sample_diverse`.

Facades that do no work of their own: they check the arguments (each error
names the parameter and the fix), build the runner and open the cache, and
hand over to :func:`smartdownsample.pipeline.run`. ``sample_diverse`` is
``downsample`` plus what the 1.x API printed and drew.
"""

from __future__ import annotations

import logging
import numbers
import os
import secrets
import sys
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeGuard, cast, overload

import numpy as np

from . import item_pipeline, pipeline
from ._exceptions import ImageLoadError, InvalidArgumentError
from ._types import (
    BACKENDS,
    ERROR_POLICIES,
    EXECUTOR_KINDS,
    STRATEGIES,
    Backend,
    ErrorPolicy,
    ExecutorKind,
    Strategy,
)
from .extraction import DEFAULT_IMAGE_TIMEOUT, BatchRunner, FeatureStore, local_runner
from .extraction.local import checked_timeout
from .paths import natural_order
from .result import SelectionResult

if TYPE_CHECKING:
    from .formats.items import ItemTable

__all__ = ["downsample", "natural_order", "sample_diverse"]

logger = logging.getLogger(__name__)

MIN_HASH_SIZE = 2
"""A dHash needs at least a 2x2 grid to have two centre bits."""

MAX_HASH_SIZE = 64
"""Beyond 64 the thumbnail would be larger than most camera-trap crops."""

SKIP_HINT = "pass image_loading_errors='skip' to skip unreadable files"


def _check_int(name: str, value: object, minimum: int, fix: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgumentError(
            f"{name} must be a whole number, got {value!r} ({type(value).__name__}); {fix}"
        )
    number = int(value)
    if number < minimum:
        raise InvalidArgumentError(f"{name} must be at least {minimum}, got {number}; {fix}")
    return number


def _check_choice(name: str, value: object, choices: Sequence[str]) -> None:
    if value not in choices:
        options = ", ".join(repr(c) for c in choices)
        raise InvalidArgumentError(f"{name} must be one of {options}, got {value!r}")


def _build_runner(
    backend: Backend,
    n_workers: int | None,
    executor: ExecutorKind,
    client: Any,
    image_timeout: float,
) -> BatchRunner:
    if backend == "dask":
        from .extraction.dask import dask_runner

        runner: BatchRunner = dask_runner(client=client, image_timeout=image_timeout)
        return runner
    return local_runner(n_workers, executor, image_timeout=image_timeout)


def _is_item_table(value: object) -> TypeGuard[ItemTable]:
    """True for an :class:`~.formats.ItemTable`, without importing :mod:`.formats`
    (an object cannot be one unless that module is loaded)."""
    items = sys.modules.get("smartdownsample.formats.items")
    return items is not None and isinstance(value, items.ItemTable)


def _open_cache(
    cache: str | os.PathLike[str] | FeatureStore | None, hash_size: int, verify: bool
) -> Any:
    if cache is None:
        return None
    if isinstance(cache, (str, os.PathLike)):
        from .cache import open_cache

        return open_cache(cache, hash_size=hash_size, verify_content=verify)
    if verify and not getattr(cache, "verify_content", False):
        raise InvalidArgumentError(
            "verify_cache=True needs a cache path; for a cache object, open it with "
            "open_cache(..., verify_content=True)"
        )
    return cache


def downsample(
    image_paths: Iterable[str | os.PathLike[str]] | ItemTable,
    target_count: int,
    *,
    hash_size: int = 8,
    n_workers: int | None = 4,
    show_progress: bool = True,
    random_seed: int | None = 42,
    image_loading_errors: ErrorPolicy = "raise",
    strategy: Strategy = "burst",
    cache: str | os.PathLike[str] | FeatureStore | None = None,
    verify_cache: bool = False,
    backend: Backend = "local",
    client: Any = None,
    executor: ExecutorKind = "auto",
    image_timeout: float = DEFAULT_IMAGE_TIMEOUT,
) -> SelectionResult:
    """Select exactly ``target_count`` diverse images and return the full outcome.

    This is :func:`sample_diverse` without printing or plotting: it returns a
    :class:`~smartdownsample.result.SelectionResult` with the selected paths
    and indices, every image's features, bucket and burst, the bucket table
    and the failures.

    Parameters
    ----------
    image_paths : iterable of str or os.PathLike, or ItemTable
        Image files (not a DataFrame: pass its column, e.g. ``df["path"]``). A
        file given twice counts once, also under another path (hard or
        symbolic links: ``result.merged``).

        Or detections: an :class:`~smartdownsample.formats.ItemTable` (from
        :func:`~smartdownsample.formats.read_detections`), to select among
        its items (boxes and whole images). Each item's features come from
        its box of the frame (each frame decoded once for all its boxes; the
        cache keys rows by file and box). Items are grouped into sequences
        (the table's ``seq_id``, or location and time; else the frames' EXIF
        capture times and folders; else looks), all boxes of a frame in one,
        and each sequence counts as one burst: at most one item per sequence
        until every sequence has one. A frame that cannot be read fails all
        its items. The result then has one row per item, in table order:
        ``paths`` holds each item's frame (repeated for boxes of one frame),
        ``items`` the table, ``selected_indices`` the kept rows, and
        ``burst_ids`` the sequences.
    target_count : int
        Number of images (or items) to keep (>= 0). If fewer are readable,
        all readable ones are kept.
    hash_size : int, default 8
        dHash size for the structure bits (2..64).
    n_workers : int or None, default 4
        Parallel workers for decoding; None or 0 for one per CPU core.
    show_progress : bool, default True
        Show a progress bar on stderr.
    random_seed : int or None, default 42
        Chooses the stride offsets. The same seed and input give the same
        result; None gives a different selection each run.
    image_loading_errors : {"raise", "skip"}, default "raise"
        On an unreadable file: stop with :class:`ImageLoadError` naming it,
        or skip it, log it and report it in ``result.failures``.
    strategy : {"burst", "spec"}, default "burst"
        ``"burst"`` treats each burst of near-identical frames as one unit;
        ``"spec"`` is the 1.x bucket stride.
    cache : str, os.PathLike or None
        SQLite file caching features between runs; None for no cache.
    verify_cache : bool, default False
        Reuse a cached row only if a digest of the whole file also matches.
        By default a row is reused when the file's size, modification time,
        inode and (on POSIX) change time match, which costs nothing but
        misses a rewrite that keeps all of them (see
        :mod:`smartdownsample.cache`); verifying reads every file once
        more, without decoding it. No effect without ``cache``.
    backend : {"local", "dask"}, default "local"
        Compute features on this machine or on a Dask cluster.
    client : distributed.Client, optional
        Dask client for ``backend="dask"`` (default: the current client, else
        a LocalCluster started for the run).
    executor : {"auto", "thread", "process", "serial"}, default "auto"
        How local workers run. "auto" uses worker processes from 2,000
        images (a crashing or hanging decoder then costs one image, not the
        run) and threads below that.
    image_timeout : float, default 60
        Seconds one image may take before it is reported as failed ("timed
        out"): a worker process is replaced, a decoding thread (locally, or
        on a Dask worker) left behind.

    Returns
    -------
    SelectionResult

    Raises
    ------
    InvalidArgumentError
        For an invalid argument (the message names it and the fix).
    ImageLoadError
        For an unreadable file when ``image_loading_errors="raise"``.

    Examples
    --------
    >>> import tempfile
    >>> from smartdownsample import downsample, make_dataset
    >>> data = make_dataset(tempfile.mkdtemp(), 60, seed=1)
    >>> result = downsample(data.paths, 10, show_progress=False)
    >>> len(result.selected_paths), len(set(result.selected_paths))
    (10, 10)
    """
    target = _check_int("target_count", target_count, 0, "pass how many images to keep")
    hash_size = _check_int(
        "hash_size",
        hash_size,
        MIN_HASH_SIZE,
        "8 is recommended (2..64 are allowed); the 2.0.x release's third argument, "
        "distance_threshold, has no counterpart here",
    )
    if hash_size > MAX_HASH_SIZE:
        raise InvalidArgumentError(
            f"hash_size must be at most {MAX_HASH_SIZE}, got {hash_size}; 8 is recommended"
        )
    if n_workers is not None:
        _check_int("n_workers", n_workers, 0, "use a positive count, or 0/None for one per core")
    if random_seed is not None:
        random_seed = _check_int("random_seed", random_seed, 0, "use a non-negative integer")
    _check_choice("image_loading_errors", image_loading_errors, ERROR_POLICIES)
    _check_choice("strategy", strategy, STRATEGIES)
    _check_choice("backend", backend, BACKENDS)
    _check_choice("executor", executor, EXECUTOR_KINDS)
    seed = secrets.randbits(32) if random_seed is None else random_seed

    store = _open_cache(cache, hash_size, verify_cache)
    runner = _build_runner(backend, n_workers, executor, client, checked_timeout(image_timeout))
    try:
        settings = pipeline.Settings(
            target,
            hash_size,
            seed,
            random_seed,
            strategy,
            runner=runner,
            cache=store,
            show_progress=show_progress,
            on_failure=_failure_policy(image_loading_errors),
        )
        if _is_item_table(image_paths):
            return item_pipeline.run_items(image_paths, settings)
        return pipeline.run(cast("Iterable[str | os.PathLike[str]]", image_paths), settings)
    finally:
        if store is not None and store is not cache and hasattr(store, "close"):
            store.close()  # only a cache this call opened; a caller's own stays open


def _failure_policy(policy: ErrorPolicy) -> pipeline.FailureHandler:
    """Stop at an unreadable image (naming it), or log it and go on."""

    def handle(path: str, reason: str) -> None:
        if policy == "raise":
            raise ImageLoadError(path, reason, hint=SKIP_HINT)
        logger.warning("skipping unreadable image %s: %s", path, reason)

    return handle


@overload
def sample_diverse(
    image_paths: ItemTable,
    target_count: int,
    hash_size: int = ...,
    n_workers: int | None = ...,
    show_progress: bool = ...,
    random_seed: int | None = ...,
    show_summary: bool = ...,
    show_distribution: bool = ...,
    show_thumbnails: bool = ...,
    *,
    save_distribution: str | os.PathLike[str] | None = ...,
    save_thumbnails: str | os.PathLike[str] | None = ...,
    image_loading_errors: ErrorPolicy = ...,
    return_indices: Literal[False] = ...,
    strategy: Strategy = ...,
    cache: str | os.PathLike[str] | FeatureStore | None = ...,
    verify_cache: bool = ...,
    backend: Backend = ...,
    client: Any = ...,
    distance_threshold: float | None = ...,
) -> ItemTable: ...


@overload
def sample_diverse(
    image_paths: ItemTable,
    target_count: int,
    hash_size: int = ...,
    n_workers: int | None = ...,
    show_progress: bool = ...,
    random_seed: int | None = ...,
    show_summary: bool = ...,
    show_distribution: bool = ...,
    show_thumbnails: bool = ...,
    *,
    save_distribution: str | os.PathLike[str] | None = ...,
    save_thumbnails: str | os.PathLike[str] | None = ...,
    image_loading_errors: ErrorPolicy = ...,
    return_indices: Literal[True],
    strategy: Strategy = ...,
    cache: str | os.PathLike[str] | FeatureStore | None = ...,
    verify_cache: bool = ...,
    backend: Backend = ...,
    client: Any = ...,
    distance_threshold: float | None = ...,
) -> list[int]: ...


@overload
def sample_diverse(
    image_paths: Iterable[str | os.PathLike[str]],
    target_count: int,
    hash_size: int = ...,
    n_workers: int | None = ...,
    show_progress: bool = ...,
    random_seed: int | None = ...,
    show_summary: bool = ...,
    show_distribution: bool = ...,
    show_thumbnails: bool = ...,
    *,
    save_distribution: str | os.PathLike[str] | None = ...,
    save_thumbnails: str | os.PathLike[str] | None = ...,
    image_loading_errors: ErrorPolicy = ...,
    return_indices: Literal[False] = ...,
    strategy: Strategy = ...,
    cache: str | os.PathLike[str] | FeatureStore | None = ...,
    verify_cache: bool = ...,
    backend: Backend = ...,
    client: Any = ...,
    distance_threshold: float | None = ...,
) -> list[str]: ...


@overload
def sample_diverse(
    image_paths: Iterable[str | os.PathLike[str]],
    target_count: int,
    hash_size: int = ...,
    n_workers: int | None = ...,
    show_progress: bool = ...,
    random_seed: int | None = ...,
    show_summary: bool = ...,
    show_distribution: bool = ...,
    show_thumbnails: bool = ...,
    *,
    save_distribution: str | os.PathLike[str] | None = ...,
    save_thumbnails: str | os.PathLike[str] | None = ...,
    image_loading_errors: ErrorPolicy = ...,
    return_indices: Literal[True],
    strategy: Strategy = ...,
    cache: str | os.PathLike[str] | FeatureStore | None = ...,
    verify_cache: bool = ...,
    backend: Backend = ...,
    client: Any = ...,
    distance_threshold: float | None = ...,
) -> list[int]: ...


def sample_diverse(
    image_paths: Iterable[str | os.PathLike[str]] | ItemTable,
    target_count: int,
    hash_size: int = 8,
    n_workers: int | None = 4,
    show_progress: bool = True,
    random_seed: int | None = 42,
    show_summary: bool = True,
    show_distribution: bool = False,
    show_thumbnails: bool = False,
    *,
    save_distribution: str | os.PathLike[str] | None = None,
    save_thumbnails: str | os.PathLike[str] | None = None,
    image_loading_errors: ErrorPolicy = "raise",
    return_indices: bool = False,
    strategy: Strategy = "burst",
    cache: str | os.PathLike[str] | FeatureStore | None = None,
    verify_cache: bool = False,
    backend: Backend = "local",
    client: Any = None,
    distance_threshold: float | None = None,
) -> list[str] | list[int] | ItemTable:
    """Pick exactly ``target_count`` diverse images from a list of paths.

    Parameters
    ----------
    image_paths : list of str or pathlib.Path, or ItemTable
        Image files (not a DataFrame: pass its column). A file given twice
        counts once, also under another path (hard or symbolic links).
        Or an :class:`~smartdownsample.formats.ItemTable` of detections, to
        pick ``target_count`` items (see :func:`downsample`).
    target_count : int
        Exact number of images to select (all readable images if fewer).
    hash_size : int, default 8
        Perceptual hash size (8 recommended).
    n_workers : int, default 4
        Parallel workers for feature computation (None or 0: one per core).
    show_progress : bool, default True
        Display a progress bar (stderr).
    random_seed : int, default 42
        Seed for reproducible selection.
    show_summary : bool, default True
        Print the bucket statistics table.
    show_distribution : bool, default False
        Show the kept-vs-excluded bar chart per bucket.
    show_thumbnails : bool, default False
        Show 5x5 thumbnail grids for each bucket (kept images framed green,
        excluded red).
    save_distribution, save_thumbnails : str or os.PathLike, optional
        Also save the chart / grids as PNG files (parent folders are created;
        works without a display).
    image_loading_errors : {"raise", "skip"}, default "raise"
        Stop on an unreadable file, or skip and report it.
    return_indices : bool, default False
        Return the 0-based indices of the selected images in ``image_paths``
        instead of their paths, in the same order (as every upstream release
        does). ``downsample()`` gives both.
    strategy : {"burst", "spec"}, default "burst"
        Burst-aware selection, or the 1.x bucket stride.
    cache : str or os.PathLike, optional
        SQLite feature cache file, so that re-runs skip decoding.
    verify_cache : bool, default False
        Also compare a digest of each file's content before reusing its
        cached row (see :func:`downsample`).
    backend : {"local", "dask"}, default "local"
        Where to compute features.
    client : distributed.Client, optional
        Dask client for ``backend="dask"``.
    distance_threshold : float, optional
        Accepted for code written for the 2.0.x embedding release, where it
        tuned the clustering; it has no effect here (buckets come from looks,
        not embeddings) and a warning says so.

    Returns
    -------
    list of str, list of int, or ItemTable
        The selected paths in the order of ``image_paths``; with
        ``return_indices=True`` their indices in ``image_paths`` instead.
        For an ``ItemTable``: the kept items as an ``ItemTable``
        (``table.take(kept rows)``, in table order); with
        ``return_indices=True`` the kept row indices, ascending.

    Examples
    --------
    >>> import tempfile
    >>> from smartdownsample import make_dataset, sample_diverse
    >>> data = make_dataset(tempfile.mkdtemp(), 80, seed=2)
    >>> picked = sample_diverse(data.paths, 20, show_progress=False, show_summary=False)
    >>> len(picked)
    20
    """
    _check_flags(
        show_progress=show_progress,
        show_summary=show_summary,
        show_distribution=show_distribution,
        show_thumbnails=show_thumbnails,
        return_indices=return_indices,
    )
    if isinstance(random_seed, bool):
        raise InvalidArgumentError(
            f"random_seed must be a whole number or None, got {random_seed!r}; {_POSITIONAL_HINT}"
        )
    if distance_threshold is not None:
        warnings.warn(
            f"distance_threshold={distance_threshold!r} has no effect: it tuned the embedding "
            "clustering of the 2.0.x release, while this version buckets images by their looks; "
            "leave it out",
            UserWarning,
            stacklevel=2,
        )
    result = downsample(
        image_paths,
        target_count,
        hash_size=hash_size,
        n_workers=n_workers,
        show_progress=show_progress,
        random_seed=random_seed,
        image_loading_errors=image_loading_errors,
        strategy=strategy,
        cache=cache,
        verify_cache=verify_cache,
        backend=backend,
        client=client,
    )
    if show_summary:
        print(result.summary())
    _draw(result.save_distribution, save_distribution)
    _draw(result.save_thumbnails, save_thumbnails)
    if show_distribution:
        result.show_distribution()
    if show_thumbnails:
        result.show_thumbnails()
    if return_indices:
        return result.selected_indices
    if result.items is not None:
        return result.items.take(result.selected_indices)
    return result.selected_paths


_POSITIONAL_HINT = (
    "pass the arguments after show_progress by keyword (the 1.9.x and 2.0.x releases "
    "ordered them differently)"
)


def _check_flags(**flags: object) -> None:
    """Each flag must be a bool; a path or a seed there is an argument out of place."""
    for name, value in flags.items():
        if not isinstance(value, (bool, np.bool_)):
            raise InvalidArgumentError(
                f"{name} must be True or False, got {value!r}; {_POSITIONAL_HINT}"
            )


def _draw(
    save: Callable[[str | os.PathLike[str]], str], path: str | os.PathLike[str] | None
) -> None:
    if path is not None:
        saved = save(path)
        logger.info("saved %s", saved)
