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

import logging

from ._exceptions import (
    CacheError,
    ImageLoadError,
    InvalidArgumentError,
    MissingExtraError,
    SmartDownsampleError,
)
from ._version import __version__
from .api import downsample, sample_diverse
from .cache import CacheWarning
from .result import BucketStats, Failure, SelectionResult
from .synthetic import SyntheticDataset, load_dataset, make_dataset

__all__ = [
    "BucketStats",
    "CacheError",
    "CacheWarning",
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
