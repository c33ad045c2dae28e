"""The full outcome of a selection, for users who want more than a list.

:class:`SelectionResult` holds every input image's features, bucket, burst
and fate; the summary table, the charts and the command line's outputs are
all drawn from it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from .buckets import bucket_ids, bucket_label, decode_bucket

if TYPE_CHECKING:
    from .formats.items import ItemTable

__all__ = ["BucketStats", "Failure", "SelectionResult", "bucket_table"]


@dataclass(frozen=True)
class Failure:
    """An image that could not be read.

    Attributes
    ----------
    path : str
        The path as the caller gave it.
    index : int
        Its index in the caller's list (first occurrence).
    reason : str
        What went wrong.
    """

    path: str
    index: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass(frozen=True)
class BucketStats:
    """Statistics of one bucket.

    Attributes
    ----------
    rank : int
        1 for the largest bucket, as numbered in the summary and the charts.
    key : int
        Bucket id (0..127), see :mod:`smartdownsample.buckets`.
    label : str
        Readable description, e.g. ``"grayscale dark s1 p0"``.
    size, kept : int
        Images in the bucket and images kept from it.
    n_bursts, bursts_kept : int
        Bursts in the bucket and bursts with at least one kept image.
    """

    rank: int
    key: int
    label: str
    size: int
    kept: int
    n_bursts: int
    bursts_kept: int

    @property
    def rate(self) -> float:
        """Fraction of the bucket kept."""
        return self.kept / self.size if self.size else 0.0

    @property
    def stride(self) -> float | None:
        """Average step between kept images (None when nothing was kept)."""
        return self.size / self.kept if self.kept else None

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form (for JSON reports)."""
        return {
            "rank": self.rank,
            "key": self.key,
            "label": self.label,
            **decode_bucket(self.key),
            "size": self.size,
            "kept": self.kept,
            "rate": round(self.rate, 6),
            "stride": None if self.stride is None else round(self.stride, 3),
            "bursts": self.n_bursts,
            "bursts_kept": self.bursts_kept,
        }


def bucket_table(
    bucket_of: NDArray[np.integer], burst_of: NDArray[np.integer], kept: NDArray[np.bool_]
) -> tuple[BucketStats, ...]:
    """Per-bucket statistics, largest bucket first (ties: lower id).

    Entries with a negative bucket (failed images) are ignored.

    Examples
    --------
    >>> import numpy as np
    >>> table = bucket_table(np.array([5, 5, 9]), np.array([0, 0, 1]),
    ...                      np.array([True, False, True]))
    >>> [(b.rank, b.key, b.size, b.kept, b.n_bursts) for b in table]
    [(1, 5, 2, 1, 1), (2, 9, 1, 1, 1)]
    """
    valid = np.asarray(bucket_of) >= 0
    buckets = np.asarray(bucket_of, dtype=np.int64)[valid]
    bursts = np.asarray(burst_of, dtype=np.int64)[valid]
    kept = np.asarray(kept, dtype=bool)[valid]
    keys, sizes = np.unique(buckets, return_counts=True)
    kept_counts = np.bincount(np.searchsorted(keys, buckets[kept]), minlength=len(keys))
    pairs = (
        np.unique(np.stack([buckets, bursts], axis=1), axis=0)
        if len(buckets)
        else np.zeros((0, 2), dtype=np.int64)
    )
    burst_counts = np.bincount(np.searchsorted(keys, pairs[:, 0]), minlength=len(keys))
    kept_pairs = (
        np.unique(np.stack([buckets[kept], bursts[kept]], axis=1), axis=0)
        if kept.any()
        else np.zeros((0, 2), dtype=np.int64)
    )
    bursts_kept = np.bincount(np.searchsorted(keys, kept_pairs[:, 0]), minlength=len(keys))
    order = np.lexsort((keys, -sizes))
    return tuple(
        BucketStats(
            rank=rank,
            key=int(keys[i]),
            label=bucket_label(int(keys[i])),
            size=int(sizes[i]),
            kept=int(kept_counts[i]),
            n_bursts=int(burst_counts[i]),
            bursts_kept=int(bursts_kept[i]),
        )
        for rank, i in enumerate(order, start=1)
    )


@dataclass
class SelectionResult:
    """Everything a selection found out and decided.

    Arrays are aligned with :attr:`paths`: the distinct input paths in the
    caller's order (a path given twice appears once, at its first place).

    Attributes
    ----------
    paths : list of str
        Distinct input paths, caller's order.
    input_indices : numpy.ndarray
        Index of each path in the caller's list (first occurrence).
    features : numpy.ndarray
        Feature rows (:data:`smartdownsample.features.FEATURE_DTYPE`);
        zeros for failed images.
    ok : numpy.ndarray
        False for images that could not be read.
    bucket_ids : numpy.ndarray
        Bucket each image was selected from (-1 for failed images). With the
        ``"burst"`` strategy a burst sits wholly in its majority bucket.
    burst_ids : numpy.ndarray
        Burst number per image, increasing in natural path order (-1 failed).
    selected : numpy.ndarray
        True for kept images.
    natural_order : numpy.ndarray
        Positions into :attr:`paths` in natural path order.
    buckets : tuple of BucketStats
        Largest bucket first.
    failures : tuple of Failure
        Unreadable images, in natural path order.
    target_count, hash_size, random_seed, strategy
        The parameters used.
    n_cached : int
        Images whose features came from the cache.
    merged : tuple of (int, int)
        Paths dropped because they name the same file as a kept path (a hard
        link, a symbolic link, a linked folder): (index of the dropped path,
        index of the kept path), both in the caller's list.
    timings : dict of str to float
        Seconds spent per stage.
    items : ItemTable or None
        For a selection among detections (an :class:`~.formats.ItemTable`
        given in place of paths): the table, its rows aligned with
        :attr:`paths` (each row's frame, repeated for boxes of one frame);
        :attr:`burst_ids` are then the sequences. None for a path list.
    """

    paths: list[str]
    input_indices: NDArray[np.int64]
    features: NDArray[np.void]
    ok: NDArray[np.bool_]
    bucket_ids: NDArray[np.int16]
    burst_ids: NDArray[np.int64]
    selected: NDArray[np.bool_]
    natural_order: NDArray[np.int64]
    buckets: tuple[BucketStats, ...]
    failures: tuple[Failure, ...]
    target_count: int
    hash_size: int
    random_seed: int | None
    strategy: str
    n_input: int = 0
    n_cached: int = 0
    timings: dict[str, float] = field(default_factory=dict)
    merged: tuple[tuple[int, int], ...] = ()
    items: ItemTable | None = None

    @property
    def selected_indices(self) -> list[int]:
        """Indices into the caller's list of the kept images, ascending."""
        return [int(i) for i in np.sort(self.input_indices[self.selected])]

    @property
    def selected_paths(self) -> list[str]:
        """Kept paths in the caller's input order."""
        positions = np.flatnonzero(self.selected)
        order = np.argsort(self.input_indices[positions], kind="stable")
        return [self.paths[int(i)] for i in positions[order]]

    @property
    def n_readable(self) -> int:
        """Images whose features could be computed."""
        return int(self.ok.sum())

    @property
    def n_selected(self) -> int:
        """Images kept."""
        return int(self.selected.sum())

    @property
    def n_bursts(self) -> int:
        """Bursts of near-identical frames found among readable images."""
        valid = self.burst_ids[self.ok]
        return len(np.unique(valid))

    @property
    def bursts_covered(self) -> int:
        """Bursts with at least one kept image."""
        return len(np.unique(self.burst_ids[self.selected]))

    @property
    def raw_bucket_ids(self) -> NDArray[np.int16]:
        """Bucket of each image from its own features alone (-1 failed)."""
        raw = bucket_ids(self.features, self.strategy)
        return np.where(self.ok, raw, -1).astype(np.int16)

    def bucket_members(self, key: int) -> list[int]:
        """Positions (into :attr:`paths`) of a bucket's images, natural order."""
        order = self.natural_order
        return [int(i) for i in order[self.bucket_ids[order] == key]]

    def __len__(self) -> int:
        return self.n_selected

    def __iter__(self) -> Iterator[str]:
        return iter(self.selected_paths)

    def summary(self) -> str:
        """The bucket table as text (what ``show_summary`` prints)."""
        from .report import format_summary

        return format_summary(self)

    def save_distribution(self, path: str | os.PathLike[str]) -> str:
        """Save the kept-vs-excluded bar chart as a PNG; returns the path."""
        from .plotting import save_distribution

        return save_distribution(self, path)

    def save_thumbnails(self, path: str | os.PathLike[str]) -> str:
        """Save the 5x5 thumbnail grids of all buckets as a PNG; returns the path."""
        from .plotting import save_thumbnails

        return save_thumbnails(self, path)

    def save_html(
        self, path: str | os.PathLike[str], *, run: Mapping[str, object] | None = None
    ) -> str:
        """Save a browsable, self-contained HTML report (see :mod:`.htmlreport`).

        ``run`` adds rows to the page's header (inputs, command, ...).
        """
        from .htmlreport import save_html

        return save_html(path, self, run=run)

    def show_distribution(self) -> None:
        """Show the bar chart in a window or notebook (needs a display backend)."""
        from .plotting import show_distribution

        show_distribution(self)

    def show_thumbnails(self) -> None:
        """Show the thumbnail grids in a window or notebook."""
        from .plotting import show_thumbnails

        show_thumbnails(self)

    def manifest_rows(self) -> Iterator[dict[str, Any]]:
        """One plain-data row per distinct input image (see :func:`.report.manifest_rows`)."""
        from .report import manifest_rows

        return manifest_rows(self)
