"""The unit of work of feature extraction: one batch of files in, feature rows out.

:func:`extract_batch` decodes a list of paths and returns their compact
feature rows plus the failures. It is what every runner executes: the local
threads and worker processes (:mod:`.local`, :mod:`.processes`) and the Dask
tasks (:mod:`.dask`). :func:`iter_batches` and :func:`batch_size_for` cut a
run into such batches.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .._exceptions import ImageLoadError
from ..features import empty_features, features_from_thumbnails
from ..loading import decode_file, thumbnail_side

__all__ = [
    "BATCH_SIZE",
    "MIN_BATCH_SIZE",
    "BatchResult",
    "batch_size_for",
    "extract_batch",
    "failed_batch",
    "iter_batches",
]

BATCH_SIZE = 64
"""Images per unit of work: large enough that scheduling and pickling cost
little next to decoding (about 64 x 0.5 ms), small enough for smooth progress."""

MIN_BATCH_SIZE = 8
"""Smallest batch used to spread small inputs over the workers."""


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


def extract_batch(
    paths: Sequence[str],
    hash_size: int,
    *,
    on_image: Callable[[int], None] | None = None,
) -> BatchResult:
    """Decode a batch of image files and compute their features.

    Parameters
    ----------
    paths : sequence of str
        Image files.
    hash_size : int
        Hash size for the structure bits.
    on_image : callable, optional
        Called with the position in ``paths`` of each image just before it is
        read; worker processes use it to tell which image a crash or hang hit.

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
        if on_image is not None:
            on_image(index)
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
    if ok.all():
        features = features_from_thumbnails(thumbnails, hash_size)
    elif ok.any():
        features[ok] = features_from_thumbnails(thumbnails[ok], hash_size)
    features["capture_time"] = capture
    features["width"] = widths
    features["height"] = heights
    return BatchResult(features, ok, tuple(errors))


def failed_batch(count: int, reason: str) -> BatchResult:
    """A :class:`BatchResult` of ``count`` images that all failed for ``reason``.

    Examples
    --------
    >>> failed_batch(2, "decoder crashed").errors
    ((0, 'decoder crashed'), (1, 'decoder crashed'))
    """
    return BatchResult(
        empty_features(count),
        np.zeros(count, dtype=bool),
        tuple((position, reason) for position in range(count)),
    )


def iter_batches(indices: NDArray[np.int64], size: int = BATCH_SIZE) -> Iterator[NDArray[np.int64]]:
    """Split an index array into consecutive batches of at most ``size``.

    Examples
    --------
    >>> import numpy as np
    >>> [b.tolist() for b in iter_batches(np.arange(5), 2)]
    [[0, 1], [2, 3], [4]]
    """
    for start in range(0, len(indices), size):
        yield indices[start : start + size]


def batch_size_for(n_images: int, workers: int) -> int:
    """Batch size that gives every worker work on small inputs.

    :data:`BATCH_SIZE`, or less when there are fewer than that many images
    per worker, but never below :data:`MIN_BATCH_SIZE`.

    Examples
    --------
    >>> batch_size_for(100_000, 4), batch_size_for(100, 4), batch_size_for(10, 4)
    (64, 25, 8)
    """
    per_worker = -(-n_images // max(1, workers))
    return max(MIN_BATCH_SIZE, min(BATCH_SIZE, per_worker))
