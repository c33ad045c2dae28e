"""Features of a whole path list: from the feature cache where valid, else computed.

:func:`extract_features` looks every path up in the cache (a
:class:`~.protocols.FeatureStore`), hands the rest to a
:class:`~.protocols.BatchRunner` (by default :func:`~.local.local_runner`)
and stores each fresh batch as it arrives, so memory holds only feature
rows (about 46 bytes an image), never decoded images.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ..features import empty_features
from .batch import BatchResult
from .local import local_runner
from .protocols import BatchRunner, CacheToken, FeatureStore

__all__ = ["ExtractionResult", "extract_features"]


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


def extract_features(
    paths: Sequence[str],
    hash_size: int,
    *,
    runner: BatchRunner | None = None,
    cache: FeatureStore | None = None,
    progress: Callable[[int], None] | None = None,
    on_failure: Callable[[int, str], None] | None = None,
    stats: Sequence[os.stat_result | None] | None = None,
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
    stats : sequence of os.stat_result or None, optional
        ``os.stat`` of each path just taken, passed to the cache's lookup so
        that no file is stat'ed twice.

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
    token: CacheToken | None = None
    if cache is not None and count:
        cached, hit, token = cache.lookup(paths, stats)
        result.features[hit] = cached[hit]
        result.ok[hit] = True
        result.n_cached = int(hit.sum())
        todo = np.flatnonzero(~hit).astype(np.int64)
        if progress is not None and result.n_cached:
            progress(result.n_cached)

    def store(batch: NDArray[np.int64], batch_result: BatchResult) -> None:
        result.features[batch] = batch_result.features
        result.ok[batch] = batch_result.ok
        if cache is not None and token is not None:
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
