"""The selection pipeline as named stages, with the index bookkeeping in one place.

:func:`run` chains them; each can be called and tested alone::

    prepare_paths   caller's list -> one path per file, natural order   (Prepared)
    extract         Prepared -> feature rows in natural order            (ExtractionResult)
    bucket          feature rows -> bucket id per readable image
    find_units      feature rows -> burst id per readable image
    choose          buckets, bursts -> the readable images kept
    assemble        everything -> SelectionResult in the caller's order

Index spaces: the caller's list (``input_indices``), the distinct files in
the caller's order (``Prepared.paths``), the same in natural order
(``Prepared.order``), and the readable subset of that
(``readable``). Only :class:`Prepared` and :func:`assemble` move values from
one space to another.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from ._types import Strategy
from .buckets import bucket_ids
from .bursts import find_bursts, find_clusters, frame_changes
from .extraction import BatchRunner, ExtractionResult, FeatureStore, extract_features
from .paths import (
    as_path_list,
    distinct_paths,
    folder_ids,
    natural_order,
    same_files,
    stat_paths,
)
from .progress import ProgressBar
from .report import count_noun
from .result import Failure, SelectionResult, bucket_table
from .selection import home_buckets, select_burst_aware, select_by_buckets

__all__ = [
    "Chosen",
    "Prepared",
    "Settings",
    "Units",
    "assemble",
    "bucket",
    "choose",
    "extract",
    "find_units",
    "prepare_paths",
    "run",
    "run_stages",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T", bound=np.generic)

FailureHandler = Callable[[str, str], None]
"""Called with (path, reason) for an unreadable image as soon as it is found."""


@dataclass(frozen=True)
class Prepared:
    """The caller's paths, one per file, and their natural order.

    Attributes
    ----------
    n_input : int
        Paths the caller gave (duplicates included).
    paths : list of str
        One path per file, as the caller spelled it, in the caller's order.
    input_indices : numpy.ndarray
        Caller's index of each of :attr:`paths` (its first occurrence).
    absolute : list of str
        Absolute form of each of :attr:`paths`.
    order : numpy.ndarray
        ``order[k]`` is the position in :attr:`paths` of the k-th file in
        natural order.
    merged : tuple of (int, int)
        Caller's indices (dropped, kept) of paths naming a file another path
        names (hard or symbolic links).
    stats : list of os.stat_result or None, or None
        ``os.stat`` of each of :attr:`absolute` (None where it failed), taken
        once for the file identities and handed on to the cache's lookup; None
        if not taken.
    """

    n_input: int
    paths: list[str]
    input_indices: NDArray[np.int64]
    absolute: list[str]
    order: NDArray[np.int64]
    merged: tuple[tuple[int, int], ...] = ()
    stats: list[os.stat_result | None] | None = None

    @property
    def sorted_absolute(self) -> list[str]:
        """Absolute paths in natural order (what extraction reads)."""
        return [self.absolute[int(i)] for i in self.order]

    @property
    def sorted_stats(self) -> list[os.stat_result | None] | None:
        """:attr:`stats` in natural order."""
        return None if self.stats is None else [self.stats[int(i)] for i in self.order]

    def to_caller_order(self, values: NDArray[_T]) -> NDArray[_T]:
        """``values`` given in natural order, rearranged into the caller's order."""
        out = np.empty_like(values)
        out[self.order] = values
        return out


@dataclass(frozen=True)
class Chosen:
    """What :func:`choose` decided for the readable images (natural order)."""

    buckets: NDArray[np.int64]
    """Bucket of each readable image as reported (a burst's images share its home bucket)."""
    picked: NDArray[np.int64]
    """Positions among the readable images that are kept."""


@dataclass
class Timer:
    """Seconds spent per stage, in the order the stages ran."""

    seconds: dict[str, float] = field(default_factory=dict)
    _started: float = field(default_factory=time.perf_counter)

    def lap(self, stage: str) -> None:
        now = time.perf_counter()
        self.seconds[stage] = self.seconds.get(stage, 0.0) + now - self._started
        self._started = now


# ---------------------------------------------------------------- stages


def prepare_paths(image_paths: Iterable[str | os.PathLike[str]]) -> Prepared:
    """Stage 1: the caller's paths checked, one per file, in natural order.

    A path given twice counts once (its first place); so does a file reached
    through another path (a hard or symbolic link): the first in natural
    order is kept and the merge recorded.

    Examples
    --------
    >>> prepared = prepare_paths(["b/2.jpg", "a/1.jpg", "b/2.jpg"])
    >>> prepared.paths, prepared.order.tolist(), prepared.n_input
    (['b/2.jpg', 'a/1.jpg'], [1, 0], 3)
    """
    raw = as_path_list(image_paths)
    firsts, absolute = distinct_paths(raw)
    paths = [raw[i] for i in firsts]
    indices = np.array(firsts, dtype=np.int64)
    order = natural_order(absolute)
    stats = stat_paths(absolute)
    dropped = same_files(absolute, order.tolist(), stats)
    if not dropped:
        return Prepared(len(raw), paths, indices, absolute, order, stats=stats)
    merged = tuple(sorted((int(indices[d]), int(indices[k])) for d, k in dropped.items()))
    first_drop, first_keep = next(iter(dropped.items()))
    logger.info(
        "%s name a file already given under another path (hard or symbolic link) and count "
        "once (the result's merged pairs list them), e.g. %s is %s",
        count_noun(len(dropped), "image path"),
        paths[first_drop],
        paths[first_keep],
    )
    keep = np.ones(len(paths), dtype=bool)
    keep[list(dropped)] = False
    renumber = np.cumsum(keep) - 1
    positions = np.flatnonzero(keep)
    return Prepared(
        len(raw),
        [paths[i] for i in positions],
        indices[keep],
        [absolute[i] for i in positions],
        renumber[order[keep[order]]],
        merged,
        [stats[i] for i in positions],
    )


def extract(
    prepared: Prepared,
    hash_size: int,
    *,
    runner: BatchRunner | None = None,
    cache: FeatureStore | None = None,
    show_progress: bool = False,
    on_failure: FailureHandler | None = None,
) -> ExtractionResult:
    """Stage 2: feature rows of every file, in natural order (cache consulted)."""
    sorted_abs = prepared.sorted_absolute

    def failed(index: int, reason: str) -> None:
        if on_failure is not None:
            on_failure(prepared.paths[int(prepared.order[index])], reason)

    with ProgressBar(show_progress, len(sorted_abs), "Computing features") as bar:
        return extract_features(
            sorted_abs,
            hash_size,
            runner=runner,
            cache=cache,
            progress=bar.add,
            on_failure=failed,
            stats=prepared.sorted_stats,
        )


def bucket(features: NDArray[np.void], strategy: Strategy) -> NDArray[np.int64]:
    """Stage 3: the bucket id of each feature row (see :mod:`.buckets`)."""
    return bucket_ids(features, strategy).astype(np.int64)


@dataclass(frozen=True)
class Units:
    """What a selection treats as one: bursts, and clusters of bursts that may be one."""

    bursts: NDArray[np.int64]
    """Burst of each readable image (natural order)."""
    clusters: NDArray[np.int64] | None = None
    """Runs of consecutive bursts the finder may have split (:func:`.bursts.find_clusters`);
    None where units are exact (sequences from detector metadata)."""
    change: NDArray[np.float64] | None = None
    """How much each image differs from the one before it (:func:`.bursts.frame_changes`):
    where a unit with several picks is cut."""


def find_units(features: NDArray[np.void], sorted_paths: list[str]) -> Units:
    """Stage 4: the burst and cluster of each readable image (rows and paths in natural order)."""
    folders = folder_ids(sorted_paths)
    width, height = features["width"], features["height"]
    bursts = find_bursts(
        folders,
        features["dhash"],
        features["mean_rgb"],
        features["capture_time"],
        contrast=features["contrast"],
        width=width,
        height=height,
    )
    change = frame_changes(
        folders,
        features["dhash"],
        features["mean_rgb"],
        width=width,
        height=height,
        capture_time=features["capture_time"],
    )
    clusters = find_clusters(
        folders,
        features["dhash"],
        features["mean_rgb"],
        bursts,
        width=width,
        height=height,
        capture_time=features["capture_time"],
        change=change,
    )
    return Units(bursts, clusters, change)


def choose(
    features: NDArray[np.void],
    buckets: NDArray[np.int64],
    units: Units,
    target: int,
    seed: int,
    strategy: Strategy,
) -> Chosen:
    """Stage 5: which readable images to keep, and the bucket each is reported in.

    With ``strategy="burst"`` a unit (a cluster where there is one, else a
    burst) moves to its majority bucket and is reported there.
    """
    if strategy == "spec":
        return Chosen(buckets, select_by_buckets(buckets, target, seed))
    homes = home_buckets(buckets, units.bursts if units.clusters is None else units.clusters)
    picked = select_burst_aware(
        buckets,
        units.bursts,
        target,
        seed,
        colour=features["mean_rgb"],
        clusters=units.clusters,
        homes=homes,
        change=units.change,
    )
    return Chosen(homes, picked)


def assemble(
    prepared: Prepared,
    extraction: ExtractionResult,
    bursts: NDArray[np.int64],
    chosen: Chosen,
    *,
    target: int,
    hash_size: int,
    random_seed: int | None,
    strategy: Strategy,
    timings: dict[str, float],
) -> SelectionResult:
    """Stage 6: the result, every array back in the caller's order."""
    readable = np.flatnonzero(extraction.ok)
    count = len(prepared.paths)
    buckets_sorted = np.full(count, -1, dtype=np.int16)
    buckets_sorted[readable] = chosen.buckets
    bursts_sorted = np.full(count, -1, dtype=np.int64)
    bursts_sorted[readable] = bursts
    selected_sorted = np.zeros(count, dtype=bool)
    selected_sorted[readable[chosen.picked]] = True
    order = prepared.order
    bucket_of = prepared.to_caller_order(buckets_sorted)
    burst_of = prepared.to_caller_order(bursts_sorted)
    selected = prepared.to_caller_order(selected_sorted)
    failures = tuple(
        Failure(prepared.paths[int(order[i])], int(prepared.input_indices[order[i]]), reason)
        for i, reason in sorted(extraction.errors.items())
    )
    return SelectionResult(
        paths=prepared.paths,
        input_indices=prepared.input_indices,
        features=prepared.to_caller_order(extraction.features),
        ok=prepared.to_caller_order(extraction.ok),
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
        n_input=prepared.n_input,
        n_cached=extraction.n_cached,
        timings=timings,
        merged=prepared.merged,
    )


# ---------------------------------------------------------------- the whole run


@dataclass(frozen=True)
class Settings:
    """How a run selects: everything but the inputs."""

    target: int
    hash_size: int
    seed: int
    random_seed: int | None
    strategy: Strategy
    runner: BatchRunner | None = None
    cache: FeatureStore | None = None
    show_progress: bool = False
    on_failure: FailureHandler | None = None


UnitFinder = Callable[[Prepared, NDArray[np.int64], NDArray[np.void]], Units]
"""Stage 4 of a kind of input: (prepared, readable positions, their rows) -> units."""


def file_units(
    prepared: Prepared, readable: NDArray[np.int64], features: NDArray[np.void]
) -> Units:
    """Stage 4 for files: bursts and clusters from folders, times and looks."""
    sorted_paths = prepared.sorted_absolute
    return find_units(features, [sorted_paths[i] for i in readable])


def run_stages(
    prepare: Callable[[], Prepared], units_of: UnitFinder, settings: Settings, choice: Strategy
) -> SelectionResult:
    """All stages, timed: ``prepare`` gives the inputs, ``units_of`` their units.

    ``choice`` is the selection rule (``settings.strategy`` for files; the
    burst-aware rule over sequences for detections), ``settings.strategy``
    the bucket rule.
    """
    timer = Timer()
    prepared = prepare()
    timer.lap("listing")
    extraction = extract(
        prepared,
        settings.hash_size,
        runner=settings.runner,
        cache=settings.cache,
        show_progress=settings.show_progress,
        on_failure=settings.on_failure,
    )
    timer.lap("features")
    readable = np.flatnonzero(extraction.ok)
    features = extraction.features[readable]
    if len(readable):
        buckets = bucket(features, settings.strategy)
        units = units_of(prepared, readable, features)
        chosen = choose(features, buckets, units, settings.target, settings.seed, choice)
        bursts = units.bursts
    else:
        bursts = np.zeros(0, dtype=np.int64)
        chosen = Chosen(bursts, bursts)
    timer.lap("selection")
    result = assemble(
        prepared,
        extraction,
        bursts,
        chosen,
        target=settings.target,
        hash_size=settings.hash_size,
        random_seed=settings.random_seed,
        strategy=settings.strategy,
        timings=timer.seconds,
    )
    timer.lap("report")
    timer.seconds["total"] = sum(timer.seconds.values())
    return result


def run(image_paths: Iterable[str | os.PathLike[str]], settings: Settings) -> SelectionResult:
    """The selection of ``settings.target`` images from ``image_paths``."""
    result = run_stages(lambda: prepare_paths(image_paths), file_units, settings, settings.strategy)
    log_outcome(result)
    return result


def log_outcome(result: SelectionResult) -> None:
    if result.failures:
        logger.warning(
            "%d of %d images could not be read and were skipped (the result's failures list them)",
            len(result.failures),
            len(result.paths),
        )
    if result.n_selected < result.target_count:
        logger.warning(
            "kept %s, fewer than target_count=%d: only %s could be read",
            count_noun(result.n_selected, "image"),
            result.target_count,
            count_noun(result.n_readable, "image"),
        )
