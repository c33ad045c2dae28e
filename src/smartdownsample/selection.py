"""Stage 4: choose exactly ``target`` images from bucketed images.

All functions work on arrays in *natural path order* (folder by folder, then
by file name with numbers compared as numbers) and return sorted positions in
that order. Two strategies:

``"spec"``
    The algorithm of the README: every bucket gets at least one image, the
    rest is shared in proportion to bucket size (largest remainder, never more
    than a bucket holds, surplus handed on), and each bucket is sampled by an
    even stride whose offset ``random_seed`` picks.

``"burst"`` (default)
    The same, but each burst of near-identical frames (see :mod:`.bursts`) is
    one unit: a burst lives in the bucket most of its frames fall in, and the
    stride runs over bursts, so no burst gets a second frame before every
    burst of its bucket has one. Rare looks keep their own buckets.

When ``target`` is smaller than the number of buckets, buckets are chosen by
farthest-point traversal over their features: the largest bucket first, then
repeatedly the bucket most different from all chosen so far (ties: larger,
then lower id). One image is taken from each chosen bucket.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .buckets import MAX_BUCKETS, key_distance

__all__ = [
    "Allocation",
    "allocate_buckets",
    "bucket_offsets",
    "home_buckets",
    "proportional_shares",
    "select_burst_aware",
    "select_by_buckets",
    "spread_buckets",
    "stride_positions",
]

IntArray = NDArray[np.int64]


def proportional_shares(weights: IntArray, total: int, caps: IntArray) -> IntArray:
    """Split ``total`` in proportion to ``weights`` without exceeding ``caps``.

    Largest-remainder rounding; an item that reaches its cap hands its surplus
    on to the others. Ties go to the larger weight, then the lower index.

    Examples
    --------
    >>> import numpy as np
    >>> proportional_shares(np.array([10, 5, 1]), 8, np.array([10, 5, 1])).tolist()
    [5, 2, 1]
    >>> proportional_shares(np.array([10, 5, 1]), 8, np.array([2, 5, 1])).tolist()
    [2, 5, 1]
    """
    weights = np.asarray(weights, dtype=np.float64)
    caps = np.asarray(caps, dtype=np.int64)
    if total > int(caps.sum()):
        raise ValueError(f"cannot share {total} within caps summing to {int(caps.sum())}")
    shares = np.zeros(len(weights), dtype=np.int64)
    free = caps > 0
    remaining = float(total)
    ideal = np.zeros(len(weights), dtype=np.float64)
    while True:
        ideal[:] = 0.0
        weight_sum = weights[free].sum()
        if remaining <= 0 or not free.any():
            break
        if weight_sum <= 0:
            ideal[free] = remaining / free.sum()
        else:
            ideal[free] = remaining * weights[free] / weight_sum
        capped = free & (ideal >= caps)
        if not capped.any():
            break
        shares[capped] = caps[capped]
        remaining -= float(caps[capped].sum())
        free &= ~capped
    floors = np.minimum(np.floor(ideal + 1e-9).astype(np.int64), caps - shares)
    floors[~free] = 0
    shares += floors
    leftover = total - int(shares.sum())
    if leftover > 0:
        room = caps - shares
        fractions = np.where(room > 0, ideal - floors, -1.0)
        # Largest fraction first; ties to the larger weight, then lower index.
        order = np.lexsort((np.arange(len(weights)), -weights, -fractions))
        for index in order:
            if leftover == 0:
                break
            if room[index] > 0:
                shares[index] += 1
                leftover -= 1
    return shares


def stride_positions(size: int, picks: int, offset: float = 0.5) -> IntArray:
    """Evenly spaced positions: every ``size / picks``-th item from ``offset``.

    ``offset`` in [0, 1) shifts the start within the first stride.

    Examples
    --------
    >>> stride_positions(10, 3, 0.0).tolist(), stride_positions(10, 3, 0.5).tolist()
    ([0, 3, 6], [1, 5, 8])
    """
    if picks <= 0:
        return np.zeros(0, dtype=np.int64)
    if picks >= size:
        return np.arange(size, dtype=np.int64)
    positions = np.floor((np.arange(picks) + offset) * (size / picks)).astype(np.int64)
    clipped: IntArray = np.minimum(positions, size - 1)
    return clipped


def spread_buckets(keys: IntArray, sizes: IntArray, count: int) -> IntArray:
    """Indices of ``count`` buckets spread over feature space (farthest-point).

    Examples
    --------
    >>> import numpy as np
    >>> spread_buckets(np.array([0, 1, 0b1100]), np.array([50, 40, 5]), 2).tolist()
    [0, 2]
    """
    keys = np.asarray(keys, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    n = len(keys)
    if count >= n:
        return np.arange(n, dtype=np.int64)
    chosen = np.zeros(n, dtype=bool)
    nearest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    order: list[int] = []
    current = int(np.lexsort((keys, -sizes))[0])
    for _ in range(count):
        order.append(current)
        chosen[current] = True
        nearest = np.minimum(nearest, key_distance(keys, np.full(n, keys[current])))
        if len(order) == count:
            break
        candidates = np.where(chosen, -1, nearest)
        best = candidates.max()
        tied = np.flatnonzero(candidates == best)
        current = int(tied[np.lexsort((keys[tied], -sizes[tied]))[0]])
    return np.sort(np.array(order, dtype=np.int64))


@dataclass(frozen=True)
class Allocation:
    """How many images each bucket gives.

    Attributes
    ----------
    keys : numpy.ndarray
        Bucket ids present, ascending.
    sizes : numpy.ndarray
        Images in each bucket.
    quotas : numpy.ndarray
        Images to keep from each bucket; sums to the target.
    """

    keys: IntArray
    sizes: IntArray
    quotas: IntArray


def allocate_buckets(bucket_of: NDArray[np.integer], target: int) -> Allocation:
    """Quota per bucket: at least one each, the rest in proportion to size.

    Examples
    --------
    >>> import numpy as np
    >>> a = allocate_buckets(np.array([0] * 90 + [1] * 9 + [2]), 10)
    >>> a.keys.tolist(), a.quotas.tolist()
    ([0, 1, 2], [8, 1, 1])
    """
    keys, sizes = np.unique(np.asarray(bucket_of, dtype=np.int64), return_counts=True)
    sizes = sizes.astype(np.int64)
    target = min(target, int(sizes.sum()))
    quotas = np.zeros(len(keys), dtype=np.int64)
    if target <= 0:
        return Allocation(keys, sizes, quotas)
    if target < len(keys):
        quotas[spread_buckets(keys, sizes, target)] = 1
        return Allocation(keys, sizes, quotas)
    quotas[:] = 1
    quotas += proportional_shares(sizes, target - len(keys), sizes - 1)
    return Allocation(keys, sizes, quotas)


def bucket_offsets(keys: IntArray, seed: int) -> NDArray[np.float64]:
    """Stride offset in [0, 1) per bucket, from the seed and the bucket id only.

    Depending on nothing else keeps a bucket's picks stable when other
    buckets change.
    """
    return np.array(
        [np.random.default_rng([seed, int(key)]).random() for key in keys], dtype=np.float64
    )


def _group_starts(sorted_keys: IntArray) -> IntArray:
    return np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])


def select_by_buckets(bucket_of: NDArray[np.integer], target: int, seed: int) -> IntArray:
    """The spec's selection: stride sampling inside each bucket.

    Parameters
    ----------
    bucket_of : numpy.ndarray
        Bucket id per image, images in natural path order.
    target : int
        Number of images to keep.
    seed : int
        Chooses the stride offsets.

    Returns
    -------
    numpy.ndarray
        Sorted positions of the kept images.

    Examples
    --------
    >>> import numpy as np
    >>> select_by_buckets(np.array([0, 0, 0, 0, 1, 1]), 3, seed=1).tolist()
    [0, 2, 5]
    """
    buckets: IntArray = np.asarray(bucket_of, dtype=np.int64)
    allocation = allocate_buckets(buckets, target)
    order = np.argsort(buckets, kind="stable")  # natural order inside each bucket
    starts = _group_starts(buckets[order])
    offsets = bucket_offsets(allocation.keys, seed)
    picked: list[IntArray] = []
    for index, quota in enumerate(allocation.quotas):
        if quota == 0:
            continue
        start = starts[index]
        members = order[start : start + allocation.sizes[index]]
        picked.append(members[stride_positions(len(members), int(quota), offsets[index])])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)


def home_buckets(bucket_of: NDArray[np.integer], burst_of: NDArray[np.integer]) -> IntArray:
    """Bucket of every image after moving each burst to its majority bucket.

    A burst's frames can straddle a bucket boundary (a hash bit flips as the
    animal moves); the burst goes where most of its frames are, ties to the
    lower bucket id.

    Examples
    --------
    >>> import numpy as np
    >>> home_buckets(np.array([3, 5, 5, 1, 2]), np.array([0, 0, 0, 1, 1])).tolist()
    [5, 5, 5, 1, 1]
    """
    buckets: IntArray = np.asarray(bucket_of, dtype=np.int64)
    bursts_in: IntArray = np.asarray(burst_of, dtype=np.int64)
    if len(buckets) == 0:
        return np.zeros(0, dtype=np.int64)
    if buckets.min() < 0 or buckets.max() >= MAX_BUCKETS:
        raise ValueError(f"bucket ids must lie in 0..{MAX_BUCKETS - 1}")
    pair_keys, counts = np.unique(bursts_in * MAX_BUCKETS + buckets, return_counts=True)
    pair_burst = pair_keys // MAX_BUCKETS
    pair_bucket = pair_keys % MAX_BUCKETS
    # For each burst: most frames first, then the lower bucket id.
    order = np.lexsort((pair_bucket, -counts, pair_burst))
    best = order[_group_starts(pair_burst[order])]
    result: IntArray = pair_bucket[best][np.searchsorted(pair_burst[best], bursts_in)]
    return result


def _picks_in_units(
    unit_starts: IntArray, unit_sizes: IntArray, quota: int, offset: float
) -> IntArray:
    """Positions (relative to the bucket's member list) of ``quota`` picks over units."""
    n_units = len(unit_sizes)
    if quota <= n_units:
        chosen = stride_positions(n_units, quota, offset)
        # The middle frame of a burst: mid-action, least likely cut off.
        return unit_starts[chosen] + (unit_sizes[chosen] - 1) // 2
    shares = 1 + proportional_shares(unit_sizes, quota - n_units, unit_sizes - 1)
    picks = [
        start + stride_positions(int(size), int(share), 0.5)
        for start, size, share in zip(unit_starts, unit_sizes, shares, strict=True)
    ]
    return np.concatenate(picks)


def select_burst_aware(
    bucket_of: NDArray[np.integer], burst_of: NDArray[np.integer], target: int, seed: int
) -> IntArray:
    """Burst-aware selection (the default strategy).

    Parameters
    ----------
    bucket_of : numpy.ndarray
        Bucket id per image, images in natural path order.
    burst_of : numpy.ndarray
        Burst number per image (non-decreasing, see :func:`.bursts.find_bursts`).
    target : int
        Number of images to keep.
    seed : int
        Chooses the stride offsets.

    Returns
    -------
    numpy.ndarray
        Sorted positions of the kept images.

    Examples
    --------
    >>> import numpy as np
    >>> buckets = np.zeros(9, int); bursts = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    >>> select_burst_aware(buckets, bursts, 3, seed=0).tolist()
    [1, 4, 7]
    """
    homes = home_buckets(bucket_of, burst_of)
    bursts: IntArray = np.asarray(burst_of, dtype=np.int64)
    allocation = allocate_buckets(homes, target)
    order = np.argsort(homes, kind="stable")
    starts = _group_starts(homes[order])
    offsets = bucket_offsets(allocation.keys, seed)
    picked: list[IntArray] = []
    for index, quota in enumerate(allocation.quotas):
        if quota == 0:
            continue
        start = starts[index]
        members = order[start : start + allocation.sizes[index]]
        member_bursts = bursts[members]
        unit_starts = _group_starts(member_bursts)
        unit_sizes = np.diff(np.r_[unit_starts, len(members)])
        local = _picks_in_units(unit_starts, unit_sizes, int(quota), offsets[index])
        picked.append(members[local])
    return np.sort(np.concatenate(picked)) if picked else np.zeros(0, dtype=np.int64)
