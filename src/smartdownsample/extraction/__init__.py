"""Feature extraction: files in, one compact feature row per image out.

The modules, in the order a run uses them:

* :mod:`.batch`: the unit of work, :func:`extract_batch` (decode a batch of
  files, compute their rows, mark the unreadable ones), and how a run is cut
  into batches;
* :mod:`.protocols`: what the driver needs of a :class:`BatchRunner` (where
  batches run) and of a :class:`FeatureStore` (a feature cache);
* :mod:`.local`: the local runner, threads or worker processes
  (:func:`local_runner`);
* :mod:`.processes`: the worker processes that survive decoders that crash
  or hang (:class:`~.processes.WorkerPool`);
* :mod:`.dask`: the runner for a Dask cluster (imported on demand; needs the
  ``dask`` extra);
* :mod:`.driver`: :func:`extract_features`, which consults the cache and
  hands the rest to a runner.

Imports go one way (batch <- protocols, processes <- local <- driver; dask
uses batch and protocols), so there is no cycle.
"""

from __future__ import annotations

from .batch import (
    BATCH_SIZE,
    BatchResult,
    batch_size_for,
    extract_batch,
    failed_batch,
    iter_batches,
)
from .driver import ExtractionResult, extract_features
from .local import (
    AUTO_PROCESS_MIN_IMAGES,
    choose_executor,
    local_runner,
    resolve_workers,
    run_batches,
)
from .processes import DEFAULT_IMAGE_TIMEOUT
from .protocols import BatchRunner, CacheToken, FeatureStore

__all__ = [
    "AUTO_PROCESS_MIN_IMAGES",
    "BATCH_SIZE",
    "DEFAULT_IMAGE_TIMEOUT",
    "BatchResult",
    "BatchRunner",
    "CacheToken",
    "ExtractionResult",
    "FeatureStore",
    "batch_size_for",
    "choose_executor",
    "extract_batch",
    "extract_features",
    "failed_batch",
    "iter_batches",
    "local_runner",
    "resolve_workers",
    "run_batches",
]
