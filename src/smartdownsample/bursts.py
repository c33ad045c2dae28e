"""Burst finder: runs of near-identical consecutive images.

Camera traps fire bursts of 3-10 frames a second apart. Images are taken in
natural path order (folder by folder, by file number), and each image is
linked to the one before it when they are in the same folder (a folder
change always breaks a burst) and:

* **both have an EXIF capture time**: the times are at most
  :data:`BURST_MAX_SECONDS` apart and the channel means differ by at most
  :data:`BURST_TIMED_MAX_COLOUR_SHIFT`. Time decides: frames of one trigger
  are a second apart, the next trigger comes minutes later, and the dHash of
  a full frame cannot tell two visits to the same place apart;
* **otherwise** (crops often lose their EXIF): on looks alone, their 64-bit
  dHashes differ in at most :data:`BURST_MAX_HAMMING` bits and their channel
  means by at most :data:`BURST_MAX_COLOUR_SHIFT`. When a per-image
  ``contrast`` is given and either image is flat (below
  :data:`BURST_FLAT_CONTRAST`), its dHash is noise and colour alone decides
  (within :data:`BURST_FLAT_MAX_COLOUR_SHIFT`).

An image is also linked across one odd neighbour: if image ``i`` matches
image ``i - 2`` (same folder, same rules), ``i - 2``, ``i - 1`` and ``i`` are
one burst, so a single blurred or mis-exposed frame does not cut a burst in
two.

A split burst costs a selection more than a merged one: its two halves can
both be picked, while a merged pair of bursts still gets its picks spread
over both once it gets more than one. The thresholds lean towards linking:
on the synthetic crops of ``benchmarks/bench_quality.py`` (with contrast)
every one of 30,467 links between frames of a burst is kept, and 8% of
unrelated untimed neighbours in a folder are linked.

The result is a burst number per image, increasing in natural order. It costs
a few vectorised passes: linear in the number of images.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from .features import hamming_distance

__all__ = [
    "BURST_FLAT_CONTRAST",
    "BURST_FLAT_MAX_COLOUR_SHIFT",
    "BURST_MAX_COLOUR_SHIFT",
    "BURST_MAX_HAMMING",
    "BURST_MAX_SECONDS",
    "BURST_TIMED_MAX_COLOUR_SHIFT",
    "BurstRules",
    "burst_links",
    "find_bursts",
    "pair_matches",
]

BURST_MAX_HAMMING = 22
"""Largest dHash distance (of 64 bits) between two frames of one burst judged
on looks. Frames of a burst differ by 3-15 bits as the animal shifts and the
detector's box moves (on the synthetic crops of ``benchmarks/bench_quality.py``:
median 8, 99th percentile 17, 99.9th 22); unrelated images differ by 32 on
average, two visits to one place by 15-50 (median 31). A split burst costs a
selection more than a merged pair of bursts, so the limit sits at the top of
the burst range."""

BURST_MAX_COLOUR_SHIFT = 16.0
"""Largest change of any channel mean (0-255 scale) between two frames of one
burst judged on looks: exposure drifts a few levels inside a burst (median 2,
99th percentile 11, 99.9th 16 on the synthetic crops); a day/night or scene
change is a jump of 30 or more."""

BURST_MAX_SECONDS = 10.0
"""Largest EXIF time gap inside a burst: frames of one trigger are about a
second apart; the next trigger comes after the camera's re-arm delay."""

BURST_TIMED_MAX_COLOUR_SHIFT = 40.0
"""Largest channel-mean change between frames seconds apart that still counts
as one burst: only a light switching (IR flash on or off, a lens covered)
changes the mean that much within a trigger. No dHash limit applies to timed
frames: the dHash of a flat image (blown out, lens blocked) is noise."""

BURST_FLAT_CONTRAST = 3.0
"""Mean grey-level step between horizontal neighbours of the 9x8 dHash grid
below which an image is flat (blown out, lens blocked by a leaf or a hand,
thick fog): its dHash bits are then mostly noise (burst neighbours differ in
20-40 of 64 bits) and such pairs are judged on colour alone. Blown-out crops
step by 0.1-0.3 levels, covered lenses by 2-2.5, textured scenes by 5-20."""

BURST_FLAT_MAX_COLOUR_SHIFT = 24.0
"""Largest channel-mean change between two frames of one burst when either is
flat and untimed: colour is all there is to judge them on, and a blown-out or
covered lens swings in exposure more than a textured scene."""

_BRIDGE = 2
"""Links are also tested between images this far apart (``i`` and ``i - 2``):
one odd frame inside a burst does not break it."""


@dataclass(frozen=True)
class BurstRules:
    """Thresholds of the burst finder (defaults: the module constants).

    Attributes
    ----------
    max_hamming : int
        :data:`BURST_MAX_HAMMING`.
    max_colour_shift : float
        :data:`BURST_MAX_COLOUR_SHIFT`.
    max_seconds : float
        :data:`BURST_MAX_SECONDS`.
    timed_max_colour_shift : float
        :data:`BURST_TIMED_MAX_COLOUR_SHIFT`.
    flat_contrast : float
        :data:`BURST_FLAT_CONTRAST`.
    flat_max_colour_shift : float
        :data:`BURST_FLAT_MAX_COLOUR_SHIFT`.

    Examples
    --------
    >>> BurstRules(max_seconds=30.0).max_seconds
    30.0
    """

    max_hamming: int = BURST_MAX_HAMMING
    max_colour_shift: float = BURST_MAX_COLOUR_SHIFT
    max_seconds: float = BURST_MAX_SECONDS
    timed_max_colour_shift: float = BURST_TIMED_MAX_COLOUR_SHIFT
    flat_contrast: float = BURST_FLAT_CONTRAST
    flat_max_colour_shift: float = BURST_FLAT_MAX_COLOUR_SHIFT


@dataclass(frozen=True)
class _Columns:
    """The inputs once, as contiguous columns of the dtypes the comparisons use."""

    folders: NDArray[np.int64]
    hashes: NDArray[np.uint64]
    channels: tuple[NDArray[np.float32], ...]
    times: NDArray[np.float64]
    flat: NDArray[np.bool_] | None


def _columns(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    capture_time: NDArray[np.floating],
    contrast: NDArray[np.floating] | None,
    flat_contrast: float,
) -> _Columns:
    count = len(folder_ids)
    colours = np.asarray(mean_rgb, dtype=np.float32).reshape(count, 3)
    arrays = {
        "folder_ids": np.asarray(folder_ids),
        "dhash": np.asarray(dhash),
        "capture_time": np.asarray(capture_time),
    }
    if contrast is not None:
        arrays["contrast"] = np.asarray(contrast)
    for name, array in arrays.items():
        if array.shape != (count,):
            raise ValueError(
                f"{name} must have one value per image ({count}), got shape {array.shape}"
            )
    flat = None if contrast is None else np.asarray(contrast, dtype=np.float64) < flat_contrast
    return _Columns(
        folders=arrays["folder_ids"].astype(np.int64, copy=False),
        hashes=arrays["dhash"].astype(np.uint64, copy=False),
        channels=tuple(np.ascontiguousarray(colours[:, c]) for c in range(3)),
        times=arrays["capture_time"].astype(np.float64, copy=False),
        flat=flat,
    )


def _matches(columns: _Columns, step: int, rules: BurstRules) -> NDArray[np.bool_]:
    """Element ``k``: may images ``k`` and ``k + step`` be one burst?"""
    if len(columns.folders) <= step:
        return np.zeros(0, dtype=bool)
    result: NDArray[np.bool_] = columns.folders[step:] == columns.folders[:-step]
    shift = np.zeros(len(result), dtype=np.float32)
    for channel in columns.channels:
        np.maximum(shift, np.abs(channel[step:] - channel[:-step]), out=shift)
    gap = np.abs(columns.times[step:] - columns.times[:-step])
    timed = ~np.isnan(gap)
    by_time = timed & (gap <= rules.max_seconds) & (shift <= rules.timed_max_colour_shift)
    close_hash = (
        hamming_distance(columns.hashes[step:], columns.hashes[:-step]) <= rules.max_hamming
    )
    by_looks = close_hash & (shift <= rules.max_colour_shift)
    if columns.flat is not None:
        flat_pair = columns.flat[step:] | columns.flat[:-step]
        by_looks |= flat_pair & (shift <= rules.flat_max_colour_shift)
    by_looks &= ~timed
    result &= by_time | by_looks
    return result


def pair_matches(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    capture_time: NDArray[np.floating],
    step: int = 1,
    *,
    contrast: NDArray[np.floating] | None = None,
    rules: BurstRules | None = None,
) -> NDArray[np.bool_]:
    """Whether image ``k + step`` and image ``k`` may belong to one burst.

    Parameters
    ----------
    folder_ids, dhash, mean_rgb, capture_time, contrast
        As for :func:`find_bursts`.
    step : int, default 1
        Distance in natural order between the compared images.
    rules : BurstRules, optional
        Thresholds (default: the module constants).

    Returns
    -------
    numpy.ndarray
        ``n - step`` booleans (empty when ``n <= step``).

    Examples
    --------
    >>> import numpy as np
    >>> pair_matches(np.array([0, 0, 1]), np.array([0, 1, 1], np.uint64),
    ...              np.zeros((3, 3)), np.full(3, np.nan)).tolist()
    [True, False]
    """
    rules = rules or BurstRules()
    columns = _columns(folder_ids, dhash, mean_rgb, capture_time, contrast, rules.flat_contrast)
    return _matches(columns, step, rules)


def burst_links(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    capture_time: NDArray[np.floating],
    *,
    contrast: NDArray[np.floating] | None = None,
    rules: BurstRules | None = None,
) -> NDArray[np.bool_]:
    """Whether each image continues the burst of the image before it.

    All arrays are aligned and in natural path order. Element 0 is False.

    Examples
    --------
    >>> import numpy as np
    >>> links = burst_links(np.array([0, 0, 1]), np.array([0, 1, 1], np.uint64),
    ...                     np.zeros((3, 3)), np.full(3, np.nan))
    >>> links.tolist()
    [False, True, False]

    An odd frame between two matching ones stays in the burst:

    >>> odd = np.array([0, 0xFFFFFFFF, 0], np.uint64)
    >>> burst_links(np.zeros(3, int), odd, np.zeros((3, 3)), np.full(3, np.nan)).tolist()
    [False, True, True]
    """
    rules = rules or BurstRules()
    count = len(folder_ids)
    links = np.zeros(count, dtype=bool)
    if count < 2:
        return links
    columns = _columns(folder_ids, dhash, mean_rgb, capture_time, contrast, rules.flat_contrast)
    links[1:] = _matches(columns, 1, rules)
    bridged = _matches(columns, _BRIDGE, rules)
    # bridged[k] joins images k and k + 2, hence also the links into k + 1 and k + 2.
    links[1:-1] |= bridged
    links[2:] |= bridged
    return links


def find_bursts(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    capture_time: NDArray[np.floating],
    *,
    contrast: NDArray[np.floating] | None = None,
    rules: BurstRules | None = None,
    max_hamming: int | None = None,
    max_colour_shift: float | None = None,
    max_seconds: float | None = None,
) -> NDArray[np.int64]:
    """Burst number (0, 1, 2, ...) of every image, in natural path order.

    Parameters
    ----------
    folder_ids : numpy.ndarray
        Folder number per image (equal numbers: same folder).
    dhash : numpy.ndarray
        Packed 64-bit dHash per image (``uint64``).
    mean_rgb : numpy.ndarray
        ``(n, 3)`` channel means, 0-255.
    capture_time : numpy.ndarray
        EXIF capture time in seconds, NaN where unknown.
    contrast : numpy.ndarray, optional
        Mean gray-level step of the dHash grid per image; with it, flat images
        are judged on colour alone (see :data:`BURST_FLAT_CONTRAST`).
    rules : BurstRules, optional
        Thresholds (default: the module constants).
    max_hamming, max_colour_shift, max_seconds : optional
        Override single thresholds of ``rules``.

    Returns
    -------
    numpy.ndarray
        Non-decreasing burst numbers, starting at 0.

    Raises
    ------
    ValueError
        If the arrays do not have one entry per image.

    Examples
    --------
    >>> import numpy as np
    >>> find_bursts(np.zeros(4, int), np.array([0, 3, 0xFFFFFFFF, 0xFFFFFFFF], np.uint64),
    ...             np.zeros((4, 3)), np.full(4, np.nan)).tolist()
    [0, 0, 1, 1]
    >>> find_bursts(np.zeros(3, int), np.zeros(3, np.uint64), np.zeros((3, 3)),
    ...             np.array([0.0, 1.0, 300.0])).tolist()
    [0, 0, 1]
    """
    rules = rules or BurstRules()
    rules = replace(
        rules,
        max_hamming=rules.max_hamming if max_hamming is None else max_hamming,
        max_colour_shift=rules.max_colour_shift if max_colour_shift is None else max_colour_shift,
        max_seconds=rules.max_seconds if max_seconds is None else max_seconds,
    )
    links = burst_links(folder_ids, dhash, mean_rgb, capture_time, contrast=contrast, rules=rules)
    if len(links) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.cumsum(~links).astype(np.int64) - 1
