"""The public entry points: :func:`downsample` and :func:`sample_diverse`.

They tie the pipeline stages together::

    paths -> (dedupe, natural sort) -> features (N x F) -> bucket ids (N,)
          -> bursts (N,) -> selected positions (K,) -> SelectionResult
"""

from __future__ import annotations

import logging
import numbers
import os
import re
import secrets
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, Literal, overload

import numpy as np
from numpy.typing import NDArray

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
from .buckets import bucket_ids
from .bursts import find_bursts, find_clusters
from .extract import (
    DEFAULT_IMAGE_TIMEOUT,
    BatchRunner,
    FeatureStore,
    extract_features,
    local_runner,
)
from .result import Failure, SelectionResult, bucket_table
from .selection import select_burst_aware, select_by_buckets

if TYPE_CHECKING:
    from tqdm import tqdm

__all__ = ["downsample", "natural_order", "sample_diverse"]

logger = logging.getLogger(__name__)

MIN_HASH_SIZE = 2
"""A dHash needs at least a 2x2 grid to have two centre bits."""

MAX_HASH_SIZE = 64
"""Beyond 64 the thumbnail would be larger than most camera-trap crops."""

SKIP_HINT = "pass image_loading_errors='skip' (CLI: --skip-unreadable) to skip unreadable files"

_DIGITS = re.compile(r"(\d+)")
_SEPARATORS = re.compile(r"[\\/]+" if os.altsep or os.sep == "\\" else r"/+")


def _name_key(name: str) -> tuple[str | int, ...]:
    """Natural key of one name: text case-folded, digit runs as numbers."""
    parts = _DIGITS.split(name.casefold())
    return tuple(int(part) if index % 2 else part for index, part in enumerate(parts))


def _folder_key(folder: str) -> tuple[tuple[str | int, ...], ...]:
    return tuple(_name_key(part) for part in _SEPARATORS.split(folder))


def natural_order(paths: Sequence[str]) -> NDArray[np.int64]:
    """Positions that sort ``paths`` naturally, folder by folder.

    Folders are ordered by their natural path, and a folder's files come
    before its subfolders' files. Numbers compare as numbers (``img2`` before
    ``img10``) and case is ignored, as in file managers; names with equal
    natural keys are ordered by the exact string, so the order never depends
    on the order of the input. Sort keys exist for one folder at a time, so a
    million paths need little memory.

    Examples
    --------
    >>> natural_order(["b/img10.jpg", "b/IMG2.jpg", "a/x.jpg", "b/c/1.jpg"]).tolist()
    [2, 1, 0, 3]
    """
    folders: dict[str, list[int]] = {}
    for index, path in enumerate(paths):
        folders.setdefault(os.path.dirname(path), []).append(index)
    order = np.empty(len(paths), dtype=np.int64)
    filled = 0
    for folder in sorted(folders, key=lambda name: (_folder_key(name), name)):
        members = folders[folder]
        members.sort(key=lambda i: (_name_key(os.path.basename(paths[i])), paths[i]))
        order[filled : filled + len(members)] = members
        filled += len(members)
    return order


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


def _as_path_list(image_paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    if isinstance(image_paths, (str, bytes, os.PathLike)):
        raise InvalidArgumentError(
            f"image_paths must be a list of paths, got a single path {image_paths!r}; "
            "wrap it in a list, or pass a folder's files (the CLI searches folders)"
        )
    try:
        items = list(image_paths)
    except TypeError as exc:
        raise InvalidArgumentError(
            f"image_paths must be a list of file paths, got {type(image_paths).__name__}"
        ) from exc
    paths: list[str] = []
    for index, item in enumerate(items):
        if isinstance(item, str):
            paths.append(item)
        elif isinstance(item, os.PathLike):
            text = os.fspath(item)
            if not isinstance(text, str):
                raise InvalidArgumentError(
                    f"image_paths[{index}] is a bytes path {text!r}; pass it as str"
                )
            paths.append(text)
        else:
            raise InvalidArgumentError(
                f"image_paths[{index}] must be a str or pathlib.Path, got {item!r} "
                f"({type(item).__name__})"
            )
    return paths


def _distinct(paths: list[str]) -> tuple[list[str], NDArray[np.int64], list[str]]:
    """Distinct paths (first occurrence), their input indices and absolute forms."""
    seen: dict[str, int] = {}
    absolute: list[str] = []
    firsts: list[int] = []
    for index, path in enumerate(paths):
        full = os.path.abspath(path)
        if full == path:
            full = path  # keep one string, not two equal copies, per absolute path
        key = os.path.normcase(full)
        if key in seen:
            continue
        seen[key] = index
        firsts.append(index)
        absolute.append(full)
    return [paths[i] for i in firsts], np.array(firsts, dtype=np.int64), absolute


def _folder_ids(absolute_sorted: Sequence[str]) -> NDArray[np.int64]:
    folders = [os.path.dirname(path) for path in absolute_sorted]
    ids = np.zeros(len(folders), dtype=np.int64)
    for i in range(1, len(folders)):
        ids[i] = ids[i - 1] + (folders[i] != folders[i - 1])
    return ids


class _Progress:
    """A tqdm bar on stderr when wanted, else nothing."""

    def __init__(self, enabled: bool, total: int, desc: str) -> None:
        self._bar: tqdm[Any] | None = None
        if enabled and total:
            from tqdm.auto import tqdm as make_bar

            self._bar = make_bar(total=total, desc=desc, unit="img", dynamic_ncols=True)

    def update(self, count: int) -> None:
        if self._bar is not None:
            self._bar.update(count)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()


def _build_runner(
    backend: Backend,
    n_workers: int | None,
    executor: ExecutorKind,
    client: Any,
    image_timeout: float,
) -> BatchRunner:
    if backend == "dask":
        from ._dask import dask_runner

        runner: BatchRunner = dask_runner(client=client)
        return runner
    return local_runner(n_workers, executor, image_timeout=image_timeout)


def _open_cache(cache: str | os.PathLike[str] | FeatureStore | None, hash_size: int) -> Any:
    if cache is None:
        return None
    if isinstance(cache, (str, os.PathLike)):
        from .cache import open_cache

        return open_cache(cache, hash_size=hash_size)
    return cache


def downsample(
    image_paths: Iterable[str | os.PathLike[str]],
    target_count: int,
    *,
    hash_size: int = 8,
    n_workers: int | None = 4,
    show_progress: bool = True,
    random_seed: int | None = 42,
    image_loading_errors: ErrorPolicy = "raise",
    strategy: Strategy = "burst",
    cache: str | os.PathLike[str] | FeatureStore | None = None,
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
    image_paths : iterable of str or os.PathLike
        Image files. A path given twice counts once.
    target_count : int
        Number of images to keep (>= 0). If fewer images are readable, all
        readable images are kept.
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
        Seconds one image may take in a worker process before it is reported
        as failed ("timed out") and its worker replaced.

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
    started = time.perf_counter()
    target = _check_int("target_count", target_count, 0, "pass how many images to keep")
    hash_size = _check_int(
        "hash_size", hash_size, MIN_HASH_SIZE, "8 is recommended (2..64 are allowed)"
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

    raw_paths = _as_path_list(image_paths)
    paths, input_indices, absolute = _distinct(raw_paths)
    timings: dict[str, float] = {}
    timings["listing"] = time.perf_counter() - started

    stage = time.perf_counter()
    order = natural_order(absolute)
    sorted_abs = [absolute[i] for i in order]
    timings["sorting"] = time.perf_counter() - stage

    stage = time.perf_counter()
    store = _open_cache(cache, hash_size)
    if not isinstance(image_timeout, (int, float)) or not image_timeout > 0:
        raise InvalidArgumentError(
            f"image_timeout must be a positive number of seconds, got {image_timeout!r}"
        )
    runner = _build_runner(backend, n_workers, executor, client, float(image_timeout))

    def fail_fast(index: int, reason: str) -> None:
        position = int(order[index])
        if image_loading_errors == "raise":
            raise ImageLoadError(paths[position], reason, hint=SKIP_HINT)
        logger.warning("skipping unreadable image %s: %s", paths[position], reason)

    bar = _Progress(show_progress, len(sorted_abs), "Computing features")
    try:
        extraction = extract_features(
            sorted_abs,
            hash_size,
            runner=runner,
            cache=store,
            progress=bar.update,
            on_failure=fail_fast,
        )
    finally:
        bar.close()
        if store is not None and store is not cache and hasattr(store, "close"):
            store.close()  # only a cache this call opened; a caller's own stays open
    timings["features"] = time.perf_counter() - stage

    stage = time.perf_counter()
    ok_sorted = extraction.ok
    readable = np.flatnonzero(ok_sorted)
    features_sorted = extraction.features
    buckets_sorted = np.full(len(sorted_abs), -1, dtype=np.int64)
    bursts_sorted = np.full(len(sorted_abs), -1, dtype=np.int64)
    if len(readable):
        feats = features_sorted[readable]
        raw_buckets = bucket_ids(feats).astype(np.int64)
        folders = _folder_ids([sorted_abs[i] for i in readable])
        bursts = find_bursts(
            folders,
            feats["dhash"],
            feats["mean_rgb"],
            feats["capture_time"],
            contrast=feats["contrast"],
            width=feats["width"],
            height=feats["height"],
        )
        bursts_sorted[readable] = bursts
        if strategy == "burst":
            from .selection import home_buckets

            clusters = find_clusters(
                folders,
                feats["dhash"],
                feats["mean_rgb"],
                bursts,
                width=feats["width"],
                height=feats["height"],
                capture_time=feats["capture_time"],
            )
            used_buckets = home_buckets(raw_buckets, clusters)
            picked = select_burst_aware(
                raw_buckets, bursts, target, seed, colour=feats["mean_rgb"], clusters=clusters
            )
        else:
            used_buckets = raw_buckets
            picked = select_by_buckets(raw_buckets, target, seed)
        buckets_sorted[readable] = used_buckets
        chosen_sorted = readable[picked]
    else:
        chosen_sorted = np.zeros(0, dtype=np.int64)
    timings["selection"] = time.perf_counter() - stage

    # Back from natural order to the caller's order.
    count = len(paths)
    features = np.empty_like(features_sorted)
    features[order] = features_sorted
    ok = np.zeros(count, dtype=bool)
    ok[order] = ok_sorted
    bucket_of = np.empty(count, dtype=np.int16)
    bucket_of[order] = buckets_sorted
    burst_of = np.empty(count, dtype=np.int64)
    burst_of[order] = bursts_sorted
    selected = np.zeros(count, dtype=bool)
    selected[order[chosen_sorted]] = True
    failures = tuple(
        Failure(paths[int(order[i])], int(input_indices[order[i]]), reason)
        for i, reason in sorted(extraction.errors.items())
    )

    stage = time.perf_counter()
    result = SelectionResult(
        paths=paths,
        input_indices=input_indices,
        features=features,
        ok=ok,
        bucket_ids=bucket_of,
        burst_ids=burst_of,
        selected=selected,
        natural_order=order,
        buckets=bucket_table(bucket_of, burst_of, selected),
        failures=failures,
        target_count=target,
        hash_size=hash_size,
        random_seed=random_seed,
        strategy=strategy,
        n_input=len(raw_paths),
        n_cached=extraction.n_cached,
        timings=timings,
    )
    timings["report"] = time.perf_counter() - stage
    timings["total"] = time.perf_counter() - started
    if failures:
        logger.warning(
            "%d of %d images could not be read and were skipped (see result.failures)",
            len(failures),
            count,
        )
    if result.n_selected < target:
        logger.info(
            "kept all %d readable images: fewer than target_count=%d",
            result.n_selected,
            target,
        )
    return result


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
    backend: Backend = ...,
    client: Any = ...,
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
    backend: Backend = ...,
    client: Any = ...,
) -> tuple[list[str], list[int]]: ...


def sample_diverse(
    image_paths: Iterable[str | os.PathLike[str]],
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
    backend: Backend = "local",
    client: Any = None,
) -> list[str] | tuple[list[str], list[int]]:
    """Pick exactly ``target_count`` diverse images from a list of paths.

    Parameters
    ----------
    image_paths : list of str or pathlib.Path
        Image files. A path given twice counts once.
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
        Also return the indices of the selected images in ``image_paths``.
    strategy : {"burst", "spec"}, default "burst"
        Burst-aware selection, or the 1.x bucket stride.
    cache : str or os.PathLike, optional
        SQLite feature cache file, so that re-runs skip decoding.
    backend : {"local", "dask"}, default "local"
        Where to compute features.
    client : distributed.Client, optional
        Dask client for ``backend="dask"``.

    Returns
    -------
    list of str, or (list of str, list of int)
        The selected paths in the order of ``image_paths``; with
        ``return_indices=True`` also their indices in ``image_paths``.

    Examples
    --------
    >>> import tempfile
    >>> from smartdownsample import make_dataset, sample_diverse
    >>> data = make_dataset(tempfile.mkdtemp(), 80, seed=2)
    >>> picked = sample_diverse(data.paths, 20, show_progress=False, show_summary=False)
    >>> len(picked)
    20
    """
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
        return result.selected_paths, result.selected_indices
    return result.selected_paths


def _draw(
    save: Callable[[str | os.PathLike[str]], str], path: str | os.PathLike[str] | None
) -> None:
    if path is not None:
        saved = save(path)
        logger.info("saved %s", saved)
