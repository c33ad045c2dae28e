"""What extraction needs of the places batches run and of a feature cache.

A :class:`BatchRunner` runs :func:`~.batch.extract_batch` over some of the
paths and hands each result back; :func:`~.local.local_runner` and
:class:`~.dask.DaskRunner` are the two this package provides. A
:class:`FeatureStore` is a feature cache (:class:`smartdownsample.cache.FeatureCache`
is the one this package provides): it answers a lookup with the rows it
holds and a :class:`CacheToken`, and is handed that token back with every
fresh batch to store.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from numpy.typing import NDArray

from .batch import BatchResult

__all__ = ["BatchRunner", "CacheToken", "FeatureStore"]


@dataclass(frozen=True)
class CacheToken:
    """What a feature store saw of each file at lookup time, before decoding.

    A file may change while it is decoded; rows are stored with these
    stamps, not with ones taken later, so such a file is recomputed by the
    next run. ``size`` is -1 where the file could not be stat'ed (it is then
    neither a hit nor stored).

    Attributes
    ----------
    keys : list of str
        The absolute paths looked up, aligned with the ``paths`` given.
    size, mtime_ns, inode, ctime_ns : numpy.ndarray
        ``(N,)`` int64 stat fields of each file (``inode`` as signed 64-bit).
    digests : list of bytes or None, optional
        Content digests, when the store verifies file contents.
    """

    keys: list[str]
    size: NDArray[np.int64]
    mtime_ns: NDArray[np.int64]
    inode: NDArray[np.int64]
    ctime_ns: NDArray[np.int64]
    digests: list[bytes | None] | None = None


class BatchRunner(Protocol):
    """Runs :func:`extract_batch` over ``paths[todo]``, calling ``on_batch`` per result.

    :func:`~.local.local_runner` builds the local one (threads or worker
    processes); :func:`~.dask.dask_runner` builds one for a Dask cluster.
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

    def lookup(
        self, paths: Sequence[str], stats: Sequence[os.stat_result | None] | None = None
    ) -> tuple[NDArray[np.void], NDArray[np.bool_], CacheToken]:
        """Cached rows, a hit mask, and what was seen of the files, for :meth:`store`
        (``stats``: ``os.stat`` of the paths just taken, if the caller has them)."""
        ...

    def store(
        self,
        paths: Sequence[str],
        indices: NDArray[np.int64],
        result: BatchResult,
        token: CacheToken,
    ) -> None:
        """Save fresh rows of ``paths[indices]``, stamped with ``token`` (from :meth:`lookup`)."""
        ...
