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

Given the images' sizes, untimed pairs that fail those limits get a second
hearing on *combined evidence* (:func:`link_evidence`), built from signals
that survive a crop window re-centring on a moving animal: the dHash distance
at the best shift of one grid cell (:func:`shifted_hamming`: the background
slides, the pattern moves with it), the colour shift, and the change of area
and of aspect ratio (a detector's box grows and shrinks a little between
frames; two animals' boxes differ a lot). Sizes are required: at the best
shift, hash and colour alone separate too few unrelated neighbours. Each signal is
divided by its scale (:data:`EVIDENCE_HAMMING_SCALE`,
:data:`EVIDENCE_COLOUR_SCALE`, :data:`EVIDENCE_AREA_SCALE`,
:data:`EVIDENCE_ASPECT_SCALE`) and the pair is linked when the sum is at most
1: a pair that is far on one signal must be close on the others.

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

Defence in depth: a link the finder misses splits a burst in two, and a
selection could pick both halves. :func:`find_clusters` groups consecutive
bursts of a folder whose boundary still looks like a possible link (combined
evidence up to :data:`CLUSTER_EVIDENCE`, looser than a link): the selection
gives a cluster of bursts no more weight than one burst while picks are
scarce (see :func:`.selection.select_burst_aware`), so a missed link costs at
most a second pick once every cluster has one. And where a cluster gets
several picks, the selection cuts it where the sequence changes most
(:func:`frame_changes`), so those picks go to different bursts.

Thresholds were chosen on half of the robustness sweep of
``benchmarks/bench_quality.py --sweep`` (data seed 0 of every variant) and
checked on the other half and on real photographs.
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
    "CLUSTER_EVIDENCE",
    "EVIDENCE_AREA_SCALE",
    "EVIDENCE_ASPECT_SCALE",
    "EVIDENCE_COLOUR_SCALE",
    "EVIDENCE_HAMMING_SCALE",
    "SIZE_EVIDENCE_CAP",
    "BurstRules",
    "burst_links",
    "find_bursts",
    "find_clusters",
    "frame_changes",
    "link_evidence",
    "shifted_hamming",
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

EVIDENCE_HAMMING_SCALE = 50.0
"""Shift-tolerant dHash distance (:func:`shifted_hamming`, of 64) that alone
uses up the combined evidence of a link. On the tuning half of the sweep,
frames of a burst under a sliding crop window differ by a median of 15 (99th
percentile 29) at the best shift; unrelated neighbours in a folder by a median
of 25, and rarely below 15."""

EVIDENCE_COLOUR_SCALE = 80.0
"""Channel-mean shift (0-255) that alone uses up the combined evidence:
burst frames move by a median of 2.4 levels (99th percentile 22, with exposure
drifting inside a burst); unrelated neighbours by a median of 41."""

EVIDENCE_AREA_SCALE = 1.4
"""Change of ``log(width * height)`` that alone uses up the combined evidence:
a detector's box changes its area by a median of 3% between frames of a burst
(99th percentile 24%); two animals' boxes by a median of 90%."""

EVIDENCE_ASPECT_SCALE = 1.0
"""Change of ``log(width / height)`` that alone uses up the combined evidence:
burst frames: median 0.02, 99th percentile 0.14; unrelated: median 0.10."""

CLUSTER_EVIDENCE = 1.5
"""Combined evidence up to which two consecutive bursts of a folder are one
cluster (:func:`find_clusters`): looser than a link (1.0), so that the
boundary of a burst the finder split is almost always inside a cluster, while
scenes, animals and exposures that clearly differ stay apart."""

SIZE_EVIDENCE_CAP = 0.5
"""Most that size and aspect changes add to the combined evidence, of a link
(:class:`BurstRules` ``size_cap``) and across a cluster boundary: a crop
stored at another size, or a box that jumps in size (a detector boxing half
the animal), must not alone keep two frames of one burst apart, while hash
and colour still must agree to half the limit. On a held-out run of the
sweep (``benchmarks/README.md``), whose real-photograph crops are stored at
a random 64-600 px frame by frame, the worst link recall on those sets rose
from 0.911 (size terms uncapped) to 0.977, at precision 0.929 or more, and
the selection passed 75 of 80 checks against 73. Merging too much costs little: beyond one pick per
cluster, a cluster's picks are spread over its frames as a stride would
spread them (see :func:`.selection.select_burst_aware`)."""

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
    evidence: float = 1.0
    """Combined evidence (:func:`link_evidence`) up to which an untimed pair
    is linked when sizes are given; 0 turns the second hearing off."""
    size_cap: float = SIZE_EVIDENCE_CAP
    """Most that size and aspect changes add to a link's evidence
    (:data:`SIZE_EVIDENCE_CAP`; ``inf``: no cap)."""


@dataclass(frozen=True)
class _Columns:
    """The inputs once, as contiguous columns of the dtypes the comparisons use."""

    folders: NDArray[np.int64]
    hashes: NDArray[np.uint64]
    channels: tuple[NDArray[np.float32], ...]
    times: NDArray[np.float64]
    flat: NDArray[np.bool_] | None
    log_area: NDArray[np.float64] | None
    log_aspect: NDArray[np.float64] | None


_COLUMN_0 = np.uint64(sum(1 << (63 - 8 * row) for row in range(8)))
"""dHash bits of grid column 0 (position ``8 * row`` sits at bit ``63 - 8 * row``)."""
_COLUMN_7 = np.uint64(sum(1 << (56 - 8 * row) for row in range(8)))
"""dHash bits of grid column 7."""
_ALL = np.uint64(0xFFFF_FFFF_FFFF_FFFF)
_SHIFTS = tuple(
    (dx, dy) for dy in (-1, 0, 1) for dx in (-1, 0, 1)
)  # one grid cell in every direction, and none


def _shifted(hashes: NDArray[np.uint64], dx: int, dy: int) -> tuple[NDArray[np.uint64], int]:
    """The dHash grid moved ``dx`` columns right and ``dy`` rows down, and the mask
    of the bits still inside the grid."""
    moved = hashes
    valid = _ALL
    if dx == 1:
        moved, valid = (moved >> np.uint64(1)) & ~_COLUMN_0, valid & ~_COLUMN_0
    elif dx == -1:
        moved, valid = (moved << np.uint64(1)) & ~_COLUMN_7, valid & ~_COLUMN_7
    if dy == 1:
        moved, valid = moved >> np.uint64(8), valid & np.uint64(0x00FF_FFFF_FFFF_FFFF)
    elif dy == -1:
        moved, valid = moved << np.uint64(8), valid & np.uint64(0xFFFF_FFFF_FFFF_FF00)
    return moved, int(valid)


def shifted_hamming(a: NDArray[np.uint64], b: NDArray[np.uint64]) -> NDArray[np.float64]:
    """Smallest dHash distance of ``a`` and ``b`` over shifts of one grid cell.

    A crop window that re-centres on a moving animal slides the background
    behind it: the difference pattern moves by a cell, and the plain Hamming
    distance counts every moved edge twice. This compares ``a`` moved by
    -1, 0 or +1 cells in each direction with ``b``, over the bits that stay
    inside the grid, scaled to 64 bits, and keeps the smallest.

    Examples
    --------
    >>> import numpy as np
    >>> row = np.uint64(0b00110110) << np.uint64(8 * 3)   # one row of the grid
    >>> moved = row >> np.uint64(1)                        # one column to the right
    >>> hamming_distance(np.array([row]), np.array([moved])).tolist()
    [4]
    >>> shifted_hamming(np.array([row]), np.array([moved])).tolist()
    [0.0]
    """
    first = np.asarray(a, dtype=np.uint64)
    second = np.asarray(b, dtype=np.uint64)
    best = np.full(first.shape, np.inf)
    for dx, dy in _SHIFTS:
        moved, valid = _shifted(first, dx, dy)
        differing = np.bitwise_count((moved ^ second) & np.uint64(valid))
        np.minimum(best, differing * (64.0 / valid.bit_count()), out=best)
    return best


def link_evidence(
    hashes: NDArray[np.uint64],
    channels: NDArray[np.floating],
    log_area: NDArray[np.floating] | None = None,
    log_aspect: NDArray[np.floating] | None = None,
    step: int = 1,
    size_cap: float = np.inf,
) -> NDArray[np.float64]:
    """Combined distance of images ``k`` and ``k + step``: 1 is a link's limit.

    ``shifted_hamming / EVIDENCE_HAMMING_SCALE + colour shift /
    EVIDENCE_COLOUR_SCALE`` plus, with sizes, ``|change of log area| /
    EVIDENCE_AREA_SCALE + |change of log aspect| / EVIDENCE_ASPECT_SCALE``
    (the size terms together at most ``size_cap``).

    Examples
    --------
    >>> import numpy as np
    >>> hashes = np.zeros(3, np.uint64)
    >>> colours = np.array([[100.0] * 3, [140.0] * 3, [100.0] * 3])
    >>> link_evidence(hashes, colours).tolist()
    [0.5, 0.5]
    >>> link_evidence(hashes, colours, np.log([1.0, 1.0, 4.0]), np.zeros(3)).round(2).tolist()
    [0.5, 1.49]
    """
    values = np.asarray(channels, dtype=np.float64).reshape(len(hashes), 3)
    if len(hashes) <= step:
        return np.zeros(0, dtype=np.float64)
    shift = np.abs(values[step:] - values[:-step]).max(axis=1)
    total = shifted_hamming(hashes[step:], hashes[:-step]) / EVIDENCE_HAMMING_SCALE
    total += shift / EVIDENCE_COLOUR_SCALE
    size_terms = np.zeros(len(total), dtype=np.float64)
    for column, scale in ((log_area, EVIDENCE_AREA_SCALE), (log_aspect, EVIDENCE_ASPECT_SCALE)):
        if column is not None:
            logs = np.asarray(column, dtype=np.float64)
            size_terms += np.abs(logs[step:] - logs[:-step]) / scale
    total += np.minimum(size_terms, size_cap)
    return total


def _log_sizes(
    width: NDArray[np.integer] | None, height: NDArray[np.integer] | None, count: int
) -> tuple[NDArray[np.float64] | None, NDArray[np.float64] | None]:
    """``log(area)`` and ``log(aspect)`` per image (None without both sizes)."""
    if width is None or height is None:
        return None, None
    w = np.maximum(np.asarray(width, dtype=np.float64), 1.0)
    h = np.maximum(np.asarray(height, dtype=np.float64), 1.0)
    if w.shape != (count,) or h.shape != (count,):
        raise ValueError(
            f"width and height must have one value per image ({count}), "
            f"got shapes {w.shape} and {h.shape}"
        )
    return np.log(w * h), np.log(w / h)


def _columns(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    capture_time: NDArray[np.floating],
    contrast: NDArray[np.floating] | None,
    flat_contrast: float,
    width: NDArray[np.integer] | None = None,
    height: NDArray[np.integer] | None = None,
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
    log_area, log_aspect = _log_sizes(width, height, count)
    return _Columns(
        folders=arrays["folder_ids"].astype(np.int64, copy=False),
        hashes=arrays["dhash"].astype(np.uint64, copy=False),
        channels=tuple(np.ascontiguousarray(colours[:, c]) for c in range(3)),
        times=arrays["capture_time"].astype(np.float64, copy=False),
        flat=flat,
        log_area=log_area,
        log_aspect=log_aspect,
    )


def _evidence(columns: _Columns, step: int, size_cap: float) -> NDArray[np.float64]:
    colours = np.stack(columns.channels, axis=1)
    return link_evidence(
        columns.hashes, colours, columns.log_area, columns.log_aspect, step, size_cap
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
    if rules.evidence > 0 and columns.log_area is not None:
        by_looks |= _evidence(columns, step, rules.size_cap) <= rules.evidence
    by_looks &= ~timed
    result &= by_time | by_looks
    return result


def burst_links(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    capture_time: NDArray[np.floating],
    *,
    contrast: NDArray[np.floating] | None = None,
    rules: BurstRules | None = None,
    width: NDArray[np.integer] | None = None,
    height: NDArray[np.integer] | None = None,
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
    columns = _columns(
        folder_ids, dhash, mean_rgb, capture_time, contrast, rules.flat_contrast, width, height
    )
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
    width: NDArray[np.integer] | None = None,
    height: NDArray[np.integer] | None = None,
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
    width, height : numpy.ndarray, optional
        Stored image size in pixels; with both, the combined evidence
        (:func:`link_evidence`) also weighs changes of area and aspect.

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
    links = burst_links(
        folder_ids,
        dhash,
        mean_rgb,
        capture_time,
        contrast=contrast,
        rules=rules,
        width=width,
        height=height,
    )
    return _labels(links)


def _labels(links: NDArray[np.bool_]) -> NDArray[np.int64]:
    """Run numbers 0, 1, 2, ... from "continues the run before it" flags."""
    if len(links) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.cumsum(~links).astype(np.int64) - 1


def find_clusters(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    bursts: NDArray[np.integer],
    *,
    width: NDArray[np.integer] | None = None,
    height: NDArray[np.integer] | None = None,
    max_evidence: float = CLUSTER_EVIDENCE,
    size_cap: float = SIZE_EVIDENCE_CAP,
    capture_time: NDArray[np.floating] | None = None,
    max_seconds: float = BURST_MAX_SECONDS,
    change: NDArray[np.floating] | None = None,
) -> NDArray[np.int64]:
    """Cluster number of every image: runs of bursts that may be one burst split.

    Without both ``width`` and ``height`` every burst is its own cluster
    (hash and colour alone are too weak evidence). With them, consecutive
    bursts of one folder are one cluster when the frames on either
    side of their boundary are within ``max_evidence`` (:func:`link_evidence`),
    or when the frame before the boundary and the one after the next frame
    are (a single odd frame at the cut). Every burst lies in one cluster.
    Given capture times, a boundary between two timed images more than
    ``max_seconds`` apart is never bridged: time decides, as in
    :func:`find_bursts`.

    Parameters
    ----------
    folder_ids, dhash, mean_rgb, width, height
        As for :func:`find_bursts`.
    bursts : numpy.ndarray
        Burst numbers from :func:`find_bursts` (non-decreasing).
    max_evidence : float, default :data:`CLUSTER_EVIDENCE`
        Largest combined evidence across a boundary.
    size_cap : float, default :data:`SIZE_EVIDENCE_CAP`
        Most that a change of size and aspect adds to the evidence.
    capture_time : numpy.ndarray, optional
        EXIF capture time in seconds, NaN where unknown.
    max_seconds : float, default :data:`BURST_MAX_SECONDS`
        Largest time gap bridged between timed images.
    change : numpy.ndarray, optional
        :func:`frame_changes` of these images with these sizes, ``size_cap``
        and ``max_seconds``, when the caller has them already.

    Returns
    -------
    numpy.ndarray
        Non-decreasing cluster numbers, starting at 0.

    Examples
    --------
    >>> import numpy as np
    >>> grey = np.full((4, 3), 100.0); grey[3] = 250.0     # the last image is another scene
    >>> sides = np.full(4, 200)
    >>> find_clusters(np.zeros(4, int), np.zeros(4, np.uint64), grey,
    ...               np.array([0, 0, 1, 2]), width=sides, height=sides).tolist()
    [0, 0, 0, 1]
    >>> find_clusters(np.zeros(4, int), np.zeros(4, np.uint64), grey,
    ...               np.array([0, 0, 1, 2]), width=sides, height=sides,
    ...               capture_time=np.array([0.0, 1.0, 300.0, 301.0])).tolist()
    [0, 0, 1, 2]
    """
    count = len(folder_ids)
    labels = np.asarray(bursts, dtype=np.int64)
    if labels.shape != (count,):
        raise ValueError(f"bursts must have one value per image ({count}), got {labels.shape}")
    links = np.r_[False, labels[1:] == labels[:-1]] if count else np.zeros(0, dtype=bool)
    if width is None or height is None:
        return _labels(links)
    if change is None:
        change = frame_changes(
            folder_ids,
            dhash,
            mean_rgb,
            width=width,
            height=height,
            capture_time=capture_time,
            max_seconds=max_seconds,
            size_cap=size_cap,
        )
    changes = np.asarray(change, dtype=np.float64)
    if changes.shape != (count,):
        raise ValueError(f"change must have one value per image ({count}), got {changes.shape}")
    return _labels(links | (changes <= max_evidence))


def frame_changes(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    *,
    width: NDArray[np.integer] | None = None,
    height: NDArray[np.integer] | None = None,
    capture_time: NDArray[np.floating] | None = None,
    max_seconds: float = BURST_MAX_SECONDS,
    size_cap: float = SIZE_EVIDENCE_CAP,
) -> NDArray[np.float64]:
    """How strongly the sequence changes between each image and the one before it.

    Element ``i`` is the combined evidence (:func:`link_evidence`, size terms
    at most ``size_cap``) across the cut between images ``i - 1`` and ``i``:
    the smallest of ``i - 1`` to ``i``, ``i - 2`` to ``i`` and ``i - 1`` to
    ``i + 1``, so that a single odd frame does not look like two changes.
    It is infinite where a folder starts (and at element 0), and across two
    timed images more than ``max_seconds`` apart (time decides, as in
    :func:`find_bursts`). :func:`find_clusters` joins bursts whose cut is
    at most :data:`CLUSTER_EVIDENCE`; a selection that takes several images
    of one run cuts it where it changes most
    (:func:`.selection.select_burst_aware`).

    Examples
    --------
    >>> import numpy as np
    >>> grey = np.full((5, 3), 100.0); grey[3:] = 180.0      # a new scene from image 3
    >>> frame_changes(np.zeros(5, int), np.zeros(5, np.uint64), grey).tolist()
    [inf, 0.0, 0.0, 1.0, 0.0]
    >>> odd = np.full((5, 3), 100.0); odd[2] = 180.0           # one odd frame: bridged over
    >>> frame_changes(np.zeros(5, int), np.zeros(5, np.uint64), odd).tolist()
    [inf, 0.0, 0.0, 0.0, 0.0]
    """
    count = len(folder_ids)
    changes = np.full(count, np.inf, dtype=np.float64)
    if count < 2:
        return changes
    log_area, log_aspect = _log_sizes(width, height, count)
    folders = np.asarray(folder_ids).astype(np.int64, copy=False)
    hashes = np.asarray(dhash).astype(np.uint64, copy=False)
    colours = np.asarray(mean_rgb, dtype=np.float64).reshape(count, 3)
    times = np.full(count, np.nan) if capture_time is None else np.asarray(capture_time, float)
    if times.shape != (count,):
        raise ValueError(f"capture_time must have one value per image ({count}), got {times.shape}")
    for step in (1, _BRIDGE):
        if count <= step:
            break
        evidence = link_evidence(hashes, colours, log_area, log_aspect, step, size_cap)
        apart = (folders[step:] != folders[:-step]) | (
            np.abs(times[step:] - times[:-step]) > max_seconds  # NaN: untimed, allowed
        )
        evidence[apart] = np.inf
        # evidence[k] spans images k .. k + step, so every cut between them.
        for cut in range(1, step + 1):
            np.minimum(
                changes[cut : count - step + cut], evidence, out=changes[cut : count - step + cut]
            )
    changes[0] = np.inf
    starts = np.r_[True, folders[1:] != folders[:-1]]
    changes[starts] = np.inf
    return changes
