"""smartdownsample: fast, diversity-preserving downsampling of camera-trap images.

Pick exactly N images from a large class while keeping its variety: night
infrared and day, snow and forest, every location and every burst.

Examples
--------
>>> import tempfile
>>> from smartdownsample import make_dataset, sample_diverse
>>> data = make_dataset(tempfile.mkdtemp(), 50, seed=3)
>>> selected = sample_diverse(data.paths, 10, show_progress=False, show_summary=False)
>>> len(selected)
10
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING, Any

from ._exceptions import (
    CacheError,
    CacheWarning,
    DetectionFileError,
    ImageLoadError,
    InvalidArgumentError,
    MissingExtraError,
    SmartDownsampleError,
)
from ._version import __version__
from .api import downsample, sample_diverse
from .result import BucketStats, Failure, SelectionResult

if TYPE_CHECKING:
    from .synthetic import SyntheticDataset, load_dataset, make_dataset

_LAZY = {
    "SyntheticDataset": "synthetic",
    "load_dataset": "synthetic",
    "make_dataset": "synthetic",
}
"""Names imported on first use: the synthetic data maker serves the demo,
tests and benchmarks, and is not loaded by ``import smartdownsample``."""


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f".{module}", __name__), name)


__all__ = [
    "BucketStats",
    "CacheError",
    "CacheWarning",
    "DetectionFileError",
    "Failure",
    "ImageLoadError",
    "InvalidArgumentError",
    "MissingExtraError",
    "SelectionResult",
    "SmartDownsampleError",
    "SyntheticDataset",
    "__version__",
    "downsample",
    "load_dataset",
    "make_dataset",
    "sample_diverse",
]

logging.getLogger(__name__).addHandler(logging.NullHandler())
