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
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .._exceptions import ImageLoadError
from ..features import empty_features, features_from_thumbnails
from ..loading import DecodedImage, decode_file, thumbnail_side

__all__ = [
    "BATCH_SIZE",
    "MIN_BATCH_SIZE",
    "BatchResult",
    "RegionPath",
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


Box = tuple[float, float, float, float]
"""``(x, y, w, h)`` as fractions of the upright frame (see :data:`.loading.Boxes`)."""


class RegionPath(str):
    """A path naming one box of its file: the work of one detection.

    It *is* the frame's path (a ``str``, so runners, logs and ``os.stat``
    treat it as the file), and carries the box, which :func:`extract_batch`
    reduces instead of the whole image. Consecutive entries of one file in a
    batch are decoded once for all their boxes. It pickles as (path, box), so
    the unit of work stays small for worker processes and Dask.

    Examples
    --------
    >>> import pickle
    >>> region = RegionPath("/f/a.jpg", (0.1, 0.2, 0.3, 0.4))
    >>> region == "/f/a.jpg", pickle.loads(pickle.dumps(region)).box
    (True, (0.1, 0.2, 0.3, 0.4))
    """

    box: Box

    def __new__(cls, path: str, box: Box) -> RegionPath:
        region = super().__new__(cls, path)
        region.box = (float(box[0]), float(box[1]), float(box[2]), float(box[3]))
        return region

    def __reduce__(self) -> tuple[Any, ...]:
        return (RegionPath, (str(self), self.box))

    def __repr__(self) -> str:
        return f"RegionPath({str(self)!r}, {self.box!r})"


def _box_of(path: str) -> Box | None:
    return path.box if isinstance(path, RegionPath) else None


def _frame_groups(paths: Sequence[str]) -> Iterator[tuple[int, int]]:
    """``(start, stop)`` of each run of consecutive entries naming one file."""
    start = 0
    for index in range(1, len(paths) + 1):
        if index == len(paths) or str(paths[index]) != str(paths[start]):
            yield start, index
            start = index


def _box_size(box: Box, decoded: DecodedImage) -> tuple[int, int]:
    """Pixel size of ``box`` in the upright frame (at least 1 x 1)."""
    width, height = decoded.upright_size
    return max(1, round(box[2] * width)), max(1, round(box[3] * height))


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
        Image files; a :class:`RegionPath` stands for one box of its file.
        Consecutive entries of one file are decoded once, for all their
        boxes; one that cannot be read fails all of them (same reason).
    hash_size : int
        Hash size for the structure bits.
    on_image : callable, optional
        Called with the position in ``paths`` of each file (its first entry)
        just before it is read; worker processes use it to tell which image
        a crash or hang hit.

    Returns
    -------
    BatchResult
        One feature row per path (for a region: width and height are the
        box's size in pixels); unreadable files are marked, not dropped.

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
    for start, stop in _frame_groups(paths):
        if on_image is not None:
            on_image(start)
        boxes = [_box_of(paths[i]) for i in range(start, stop)]
        wanted = [box for box in boxes if box is not None]
        try:
            decoded = decode_file(
                str(paths[start]), side, boxes=np.array(wanted) if wanted else None
            )
        except ImageLoadError as exc:
            errors.extend((index, exc.reason) for index in range(start, stop))
            continue
        region = 0
        for index, box in zip(range(start, stop), boxes, strict=True):
            capture[index] = decoded.capture_time
            if box is None or decoded.regions is None:
                thumbnails[index] = decoded.thumbnail
                widths[index], heights[index] = decoded.width, decoded.height
            else:
                thumbnails[index] = decoded.regions[region]
                widths[index], heights[index] = _box_size(box, decoded)
                region += 1
        ok[start:stop] = True
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


def iter_batches(
    indices: NDArray[np.int64], size: int = BATCH_SIZE, paths: Sequence[str] | None = None
) -> Iterator[NDArray[np.int64]]:
    """Split an index array into consecutive batches of at most ``size``.

    With ``paths``, a batch also takes the following indices that name the
    same file as its last one (the boxes of one frame, see :class:`RegionPath`),
    so that each frame is decoded once; such a batch may exceed ``size``.

    Examples
    --------
    >>> import numpy as np
    >>> [b.tolist() for b in iter_batches(np.arange(5), 2)]
    [[0, 1], [2, 3], [4]]
    >>> [b.tolist() for b in iter_batches(np.arange(5), 2, ["a", "b", "b", "b", "c"])]
    [[0, 1, 2, 3], [4]]
    """
    start = 0
    while start < len(indices):
        stop = min(start + size, len(indices))
        if paths is not None:
            last = str(paths[int(indices[stop - 1])])
            while stop < len(indices) and str(paths[int(indices[stop])]) == last:
                stop += 1
        yield indices[start:stop]
        start = stop


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
