"""Burst finder: runs of near-identical consecutive images.

Camera traps fire bursts of 3-10 frames a second apart. Consecutive images
(in natural path order) are linked into one burst when all of these hold:

* they are in the same folder (a folder change always breaks a burst);
* their 64-bit dHashes differ in at most :data:`BURST_MAX_HAMMING` bits;
* their channel means differ by at most :data:`BURST_MAX_COLOUR_SHIFT`;
* where both have an EXIF capture time, the times are at most
  :data:`BURST_MAX_SECONDS` apart (images without one are judged on looks).

The result is a burst number per image, increasing in natural order. It costs
one vectorised pass: linear in the number of images.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from .features import hamming_distance

__all__ = [
    "BURST_MAX_COLOUR_SHIFT",
    "BURST_MAX_HAMMING",
    "BURST_MAX_SECONDS",
    "burst_links",
    "find_bursts",
]

BURST_MAX_HAMMING = 10
"""Largest dHash distance (of 64 bits) between neighbours of one burst. Frames
of a burst differ by a few bits as the animal shifts; unrelated images of one
place differ by 20 or more."""

BURST_MAX_COLOUR_SHIFT = 12.0
"""Largest change of any channel mean (0-255 scale) between burst neighbours:
exposure drifts a little inside a burst, a day/night or scene change is a jump."""

BURST_MAX_SECONDS = 10.0
"""Largest EXIF time gap inside a burst: frames of one trigger are about a
second apart; the next trigger comes after the camera's re-arm delay."""


def burst_links(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    capture_time: NDArray[np.floating],
    *,
    max_hamming: int = BURST_MAX_HAMMING,
    max_colour_shift: float = BURST_MAX_COLOUR_SHIFT,
    max_seconds: float = BURST_MAX_SECONDS,
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
    """
    count = len(folder_ids)
    links = np.zeros(count, dtype=bool)
    if count < 2:
        return links
    same_folder = folder_ids[1:] == folder_ids[:-1]
    close_hash = hamming_distance(dhash[1:], dhash[:-1]) <= max_hamming
    shift = np.abs(np.asarray(mean_rgb[1:], float) - np.asarray(mean_rgb[:-1], float)).max(axis=1)
    close_colour = shift <= max_colour_shift
    gap = np.abs(np.asarray(capture_time[1:], float) - np.asarray(capture_time[:-1], float))
    close_time = np.isnan(gap) | (gap <= max_seconds)
    links[1:] = same_folder & close_hash & close_colour & close_time
    return links


def find_bursts(
    folder_ids: NDArray[np.integer],
    dhash: NDArray[np.uint64],
    mean_rgb: NDArray[np.floating],
    capture_time: NDArray[np.floating],
    *,
    max_hamming: int = BURST_MAX_HAMMING,
    max_colour_shift: float = BURST_MAX_COLOUR_SHIFT,
    max_seconds: float = BURST_MAX_SECONDS,
) -> NDArray[np.int64]:
    """Burst number (0, 1, 2, ...) of every image, in natural path order.

    Examples
    --------
    >>> import numpy as np
    >>> find_bursts(np.zeros(4, int), np.array([0, 3, 0xFFFF, 0xFFFF], np.uint64),
    ...             np.zeros((4, 3)), np.full(4, np.nan)).tolist()
    [0, 0, 1, 1]
    """
    links = burst_links(
        folder_ids,
        dhash,
        mean_rgb,
        capture_time,
        max_hamming=max_hamming,
        max_colour_shift=max_colour_shift,
        max_seconds=max_seconds,
    )
    if len(links) == 0:
        return np.zeros(0, dtype=np.int64)
    return np.cumsum(~links).astype(np.int64) - 1
