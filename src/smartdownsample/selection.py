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
    The same four steps, but each burst of near-identical frames (see
    :mod:`.bursts`) is one unit: a burst lives in the bucket most of its
    frames fall in; quotas are counted in bursts, so no burst anywhere gets a
    second frame before every burst of every bucket has one; the stride runs
    over a bucket's bursts in natural order (which interleaves locations and
    times) and takes each chosen burst's middle frame; further frames of a
    burst are spread evenly over it. Buckets share picks in proportion to the
    square root of their size (:data:`BUCKET_WEIGHT_POWER`), so that small
    buckets of rare looks get more than a strictly proportional share; given
    the images' mean colours, the stride inside a bucket is weighted so that
    a burst of unusual colour for its bucket (fog, sunset, a covered lens) is
    up to four times as likely to be picked (:func:`rarity_weights`).
    Given clusters of bursts that may be one burst split by a missed link
    (:func:`.bursts.find_clusters`), quotas count clusters first and a
    cluster's picks beyond its first follow its frames, as a stride's would;
    and a found burst longer than the stride's step may be several merged
    (look-alike bursts, a long stay), so it may get a stride's share of picks
    before every other burst has one. Given how much each image differs from
    the one before it (:func:`.bursts.frame_changes`), a cluster with several
    picks but no more than its bursts is cut near an even stride's cuts where
    the sequence changes most (:func:`change_cuts`), so that a burst the
    finder split gives its picks to different true bursts.

When ``target`` is smaller than the number of buckets, buckets are chosen by
farthest-point traversal over their features: the largest bucket first, then
repeatedly the bucket most different from all chosen so far (ties: larger,
then lower id). One image is taken from each chosen bucket.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .buckets import MAX_BUCKETS, key_distance, scene_of

__all__ = [
    "BUCKET_WEIGHT_POWER",
    "MIN_COLOUR_SPREAD",
    "RARITY_CAP",
    "RARITY_GAIN",
    "Allocation",
    "allocate_buckets",
    "bucket_offsets",
    "change_cuts",
    "home_buckets",
    "proportional_shares",
    "rarity_weights",
    "select_burst_aware",
    "select_by_buckets",
    "spread_buckets",
    "stride_positions",
    "weighted_stride_positions",
]

IntArray = NDArray[np.int64]


def proportional_shares(
    weights: NDArray[np.integer] | NDArray[np.floating],
    total: int,
    caps: IntArray,
    floors: IntArray | None = None,
) -> IntArray:
    """Split ``total`` in proportion to ``weights`` without exceeding ``caps``.

    Largest-remainder rounding; an item that reaches its cap hands its surplus
    on to the others. Ties go to the larger weight, then the lower index.
    With ``floors``, no item gets less than its floor, and an item whose
    proportional share is below its floor keeps just its floor: the shares
    are ``total`` spread in proportion to ``weights`` *including* what the
    floors already give, not added on top of them.

    Examples
    --------
    >>> import numpy as np
    >>> proportional_shares(np.array([10, 5, 1]), 8, np.array([10, 5, 1])).tolist()
    [5, 3, 0]
    >>> proportional_shares(np.array([10, 5, 1]), 8, np.array([2, 5, 1])).tolist()
    [2, 5, 1]
    >>> caps, floors = np.array([9, 9, 9]), np.array([1, 1, 2])
    >>> proportional_shares(np.array([10, 10, 2]), 6, caps, floors).tolist()
    [2, 2, 2]
    """
    weights = np.asarray(weights, dtype=np.float64)
    caps = np.asarray(caps, dtype=np.int64)
    if total > int(caps.sum()):
        raise ValueError(f"cannot share {total} within caps summing to {int(caps.sum())}")
    if floors is not None:
        return _floored_shares(weights, total, caps, np.asarray(floors, dtype=np.int64))
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


def _floored_shares(
    weights: NDArray[np.float64], total: int, caps: IntArray, floors: IntArray
) -> IntArray:
    """:func:`proportional_shares` with a floor per item: ``clip(level * weight,
    floor, cap)`` summing to ``total``, then largest-remainder rounding.

    For weights of ordinary magnitude (the selection's are frame counts): a
    weight near the float range's ends (1e-300, 1e300) can overflow the level.
    """
    if np.any(floors > caps) or total < int(floors.sum()):
        raise ValueError(f"cannot share {total} above floors summing to {int(floors.sum())}")
    if not np.any(weights > 0):
        weights = np.ones(len(weights), dtype=np.float64)
    positive = weights > 0
    held = int(caps[positive].sum())
    if held + int(floors[~positive].sum()) < total:
        # Weighted items full: the rest goes to the weightless ones, equally.
        shares: IntArray = caps.copy()
        shares[~positive] = _floored_shares(
            np.ones(int((~positive).sum())), total - held, caps[~positive], floors[~positive]
        )
        return shares
    # The level is where sum(clip(level * w, floor, cap)) reaches total; the sum
    # grows with the level, so bisection finds which items sit at a bound, and
    # the level is then solved exactly for the others.
    low, high = 0.0, float(np.max(caps[positive] / weights[positive])) + 1.0
    for _ in range(200):
        level = 0.5 * (low + high)
        if np.clip(level * weights, floors, caps).sum() < total:
            low = level
        else:
            high = level
    ideal = np.clip(high * weights, floors, caps).astype(np.float64)
    free = positive & (high * weights > floors) & (high * weights < caps)
    if free.any():
        rest = total - float(ideal[~free].sum())
        ideal[free] = np.clip(rest * weights[free] / weights[free].sum(), floors[free], caps[free])
    shares = np.maximum(np.floor(ideal + 1e-9).astype(np.int64), floors)
    shares = np.minimum(shares, caps)
    leftover = total - int(shares.sum())
    room = caps - shares
    fractions = np.where(room > 0, ideal - shares, -np.inf)
    order = np.lexsort((np.arange(len(weights)), -weights, -fractions))
    shares[order[:leftover]] += 1
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


def spread_buckets(
    keys: IntArray,
    sizes: IntArray,
    count: int,
    scenes: IntArray | None = None,
    scene_picks: IntArray | None = None,
) -> IntArray:
    """Indices of ``count`` buckets spread over feature space (farthest-point).

    The largest bucket first, then each time the bucket farthest
    (:func:`.buckets.key_distance`) from every bucket chosen so far, ties to
    the larger. With ``scenes`` (a scene number per bucket) and
    ``scene_picks`` (buckets to choose from each scene, summing to
    ``count``), a scene that has its picks is passed over.

    Examples
    --------
    >>> import numpy as np
    >>> spread_buckets(np.array([0, 1, 0b1100]), np.array([50, 40, 5]), 2).tolist()
    [0, 2]
    >>> spread_buckets(np.array([0, 1, 0b1100]), np.array([50, 40, 5]), 2,
    ...                np.array([0, 0, 1]), np.array([2, 0])).tolist()
    [0, 1]
    """
    keys = np.asarray(keys, dtype=np.int64)
    sizes = np.asarray(sizes, dtype=np.int64)
    n = len(keys)
    if count >= n:
        return np.arange(n, dtype=np.int64)
    if scenes is None or scene_picks is None:
        scene_at, left = np.zeros(n, dtype=np.int64), np.array([count], dtype=np.int64)
    else:
        scene_at, left = np.asarray(scenes, dtype=np.int64), np.array(scene_picks, dtype=np.int64)
    if int(left.sum()) != count or np.any(left > np.bincount(scene_at, minlength=len(left))):
        raise ValueError(f"scene_picks must sum to {count} within each scene's buckets")
    chosen = np.zeros(n, dtype=bool)
    nearest = np.full(n, np.iinfo(np.int64).max, dtype=np.int64)
    order: list[int] = []
    while len(order) < count:
        candidates = np.where(chosen | (left[scene_at] == 0), -1, nearest)
        tied = np.flatnonzero(candidates == candidates.max())
        current = int(tied[np.lexsort((keys[tied], -sizes[tied]))[0]])
        order.append(current)
        chosen[current] = True
        left[scene_at[current]] -= 1
        nearest = np.minimum(nearest, key_distance(keys, np.full(n, keys[current])))
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
    units : numpy.ndarray or None
        Bursts in each bucket (from the burst strategy; None from
        :func:`allocate_buckets`).
    """

    keys: IntArray
    sizes: IntArray
    quotas: IntArray
    units: IntArray | None = None


def allocate_buckets(bucket_of: NDArray[np.integer], target: int) -> Allocation:
    """Quota per bucket: at least one each, the rest in proportion to size.

    Examples
    --------
    >>> import numpy as np
    >>> a = allocate_buckets(np.array([0] * 90 + [1] * 9 + [2]), 10)
    >>> a.keys.tolist(), a.quotas.tolist()
    ([0, 1, 2], [7, 2, 1])
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
    [1, 3, 4]
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
    # Dense burst numbers first, so that any integer labels work without overflow.
    _, dense = np.unique(bursts_in, return_inverse=True)
    dense = dense.astype(np.int64).reshape(-1)
    pair_keys, counts = np.unique(dense * MAX_BUCKETS + buckets, return_counts=True)
    pair_burst = pair_keys // MAX_BUCKETS
    pair_bucket = pair_keys % MAX_BUCKETS
    # For each burst: most frames first, then the lower bucket id.
    order = np.lexsort((pair_bucket, -counts, pair_burst))
    best = order[_group_starts(pair_burst[order])]
    result: IntArray = pair_bucket[best][dense]
    return result


BUCKET_WEIGHT_POWER = 0.5
"""The ``"burst"`` strategy shares picks among buckets in proportion to
``size ** 0.5`` (square-root allocation) instead of ``size``: a compromise
between proportional allocation (large buckets dominate) and equal allocation
(every look the same share) that gives small buckets, where rare scenes such
as fog, sunset or a blocked lens end up, more picks without starving the
large ones. On ``benchmarks/bench_quality.py`` (10 synthetic sets, 8 seeds)
it raises rare-scene burst coverage by about 0.1 over proportional shares at
5-10% targets at no cost in burst coverage (picks still go to distinct
bursts). 1.0 gives the spec's proportional shares."""


def _unit_quotas(
    sizes: IntArray,
    units: IntArray,
    target: int,
    keys: IntArray,
    weight_power: float,
    groups: IntArray | None = None,
    room: IntArray | None = None,
    slots: IntArray | None = None,
) -> IntArray:
    """Per-bucket quotas counted in scenes, clusters, then bursts, then images.

    The picks up to the clusters' ``slots`` (default: one per cluster) are
    first shared between the scenes (:func:`.buckets.scene_of`: night IR and
    day colour) in proportion to ``size ** weight_power``, never more than a
    scene's slots nor (with at least as many picks as buckets) less than its
    buckets: colour images spread over up to four times as many buckets as
    grey ones (the theme applies to colour only), so sharing among buckets
    alone, or one pick per bucket spread over bucket ids, would give night
    images fewer picks per image than day images. A scene with fewer picks
    than buckets gives them to as many of its buckets, one each, spread over
    feature space (:func:`spread_buckets`). Inside a scene with more, every
    bucket gets one pick, then the scene's picks up to its
    number of clusters (``groups``; default: one per burst) are shared in
    proportion to ``size ** weight_power``, never more than a bucket has
    clusters; a scene with more picks than clusters gives
    every cluster one and shares the rest the same way up to the slots.
    Beyond that, picks follow frames as a stride's do: up to the number of
    bursts (``room``: the picks a stride would take from the bucket's
    bursts, at least one each; default: one per burst), each bucket ends
    with its share of the picks in proportion to its size, never more than
    that room and never less than it already has (so a bucket whose one
    cluster is one burst split in two gets no second pick while its frames'
    share is one); only when every burst has its picks, in proportion to
    size up to all its frames, again counting what it already has.

    Examples
    --------
    >>> import numpy as np
    >>> sizes, units, keys = np.array([11, 146]), np.array([2, 30]), np.array([0, 1])
    >>> _unit_quotas(sizes, units, 16, keys, 0.5, groups=np.array([1, 4])).tolist()
    [1, 15]
    """
    total = int(sizes.sum())
    target = min(target, total)
    quotas = np.zeros(len(keys), dtype=np.int64)
    if target <= 0:
        return quotas
    scenes = scene_of(keys)
    scene_weight = np.power(np.bincount(scenes, weights=sizes, minlength=2), weight_power)
    scene_buckets = np.bincount(scenes, minlength=2)
    groups = units if groups is None else groups
    slots = groups if slots is None else slots
    weights = np.power(sizes.astype(np.float64), weight_power)
    first = min(target, int(slots.sum()))
    scene_first = proportional_shares(
        scene_weight, first, np.bincount(scenes, weights=slots, minlength=2).astype(np.int64),
        floors=scene_buckets if target >= len(keys) else None,
    )  # fmt: skip
    # A scene with fewer picks than buckets gives one pick to each of as many of its
    # buckets, spread over feature space; the other scene may still have more.
    spread = np.where(scene_first < scene_buckets, scene_first, 0)
    if spread.any():
        quotas[spread_buckets(keys, sizes, int(spread.sum()), scenes, spread)] = 1
    for scene in np.flatnonzero((scene_buckets > 0) & (scene_first >= scene_buckets)).tolist():
        members = scenes == scene
        share, clusters = int(scene_first[scene]), groups[members]
        if share <= int(clusters.sum()):
            quotas[members] = 1 + proportional_shares(
                weights[members], share - int(members.sum()), clusters - 1
            )
        else:
            quotas[members] = proportional_shares(
                weights[members], share, slots[members], floors=clusters
            )
    # Beyond one per cluster, picks follow frames, as a stride's do: a bucket ends
    # with its frames' share of the picks (no less than it has), not that share
    # on top of what it has.
    room = units if room is None else room
    second = min(target, int(room.sum()))
    if second > first:
        quotas = proportional_shares(sizes, second, room, floors=quotas)
    if target > second:
        quotas = proportional_shares(sizes, target, sizes, floors=quotas)
    return quotas


def _spread_in_units(unit_sizes: IntArray, shares: IntArray) -> tuple[IntArray, IntArray]:
    """(unit index, offset in the unit) of ``shares[u]`` evenly spaced frames per unit.

    One pick is the middle frame (mid-action, least likely cut off); more are
    spread evenly over the burst, first to last, so they differ the most.
    """
    unit_index = np.repeat(np.arange(len(shares), dtype=np.int64), shares)
    share = shares[unit_index]
    size = unit_sizes[unit_index]
    rank = np.arange(len(unit_index), dtype=np.int64) - np.repeat(
        np.cumsum(shares) - shares, shares
    )
    offsets = np.where(
        share == 1,
        (size - 1) // 2,
        np.floor((rank + 0.5) * size / np.maximum(share, 1)).astype(np.int64),
    )
    return unit_index, np.minimum(offsets, size - 1)


def _spread_singles(
    middles: IntArray,
    first_unit: IntArray,
    units: IntArray,
    sizes: IntArray,
    keys: IntArray,
    quotas: IntArray,
    offsets: NDArray[np.float64],
) -> IntArray:
    """One burst from each bucket with a quota, spread over the natural order.

    Used when there are fewer picks than buckets, one each. Buckets are visited largest
    first; the first takes the burst its stride offset points at, each next
    one the burst whose middle frame is farthest (in natural position) from
    every pick so far, so that few picks still reach many folders (locations,
    deployments). Ties go to the tied burst the bucket's offset points at.
    """
    chosen = np.flatnonzero(quotas)
    visit = chosen[np.lexsort((keys[chosen], -sizes[chosen]))]
    taken: list[int] = []
    picks: list[int] = []
    for index in visit:
        lo = int(first_unit[index])
        candidates = middles[lo : lo + int(units[index])]
        if taken:
            marks = np.sort(np.array(taken, dtype=np.int64))
            right = np.searchsorted(marks, candidates)
            after = marks[np.minimum(right, len(marks) - 1)]
            before = marks[np.maximum(right - 1, 0)]
            gaps = np.minimum(np.abs(candidates - after), np.abs(candidates - before))
            tied = np.flatnonzero(gaps == gaps.max())
        else:
            tied = np.arange(len(candidates))
        pick = int(tied[int(offsets[index] * len(tied))])
        picks.append(lo + pick)
        taken.append(int(candidates[pick]))
    return np.array(picks, dtype=np.int64)


RARITY_GAIN = 1.0
"""Extra weight per unit of colour rarity in the in-bucket stride (see
:func:`rarity_weights`). A burst whose colour lies ``z`` typical distances
from its bucket's median colour gets weight ``1 + RARITY_GAIN * (z - 1)``
(for ``z > 1``), capped at ``1 + RARITY_GAIN * RARITY_CAP``: fog, sunset,
snow storm, a blown-out or blocked lens are colour outliers of the bucket
they land in. On ``benchmarks/bench_quality.py`` (10 synthetic sets, 8
seeds) a gain of 1 raised rare-scene burst coverage at 5-10% targets by
0.10-0.15 over the plain stride, with no loss of burst coverage and no
measurable change in the feature-space spread; larger gains add little."""

RARITY_CAP = 3.0
"""Largest rarity counted: a burst is at most ``1 + RARITY_GAIN * RARITY_CAP``
(4x) as likely to be picked as a typical one, so outliers cannot crowd out the
systematic spread over the bucket."""

MIN_COLOUR_SPREAD = 2.0
"""Smallest typical colour distance (grey levels) used to scale rarity: in a
bucket of near-identical colours, differences of a level or two are noise."""


def rarity_weights(colours: NDArray[np.floating]) -> NDArray[np.float64]:
    """Weight per unit from how far its colour lies from the group's median colour.

    ``z`` = distance to the median colour / median of those distances (at
    least :data:`MIN_COLOUR_SPREAD`); weight = ``1 + RARITY_GAIN *
    clip(z - 1, 0, RARITY_CAP)``. The typical half of the group weighs 1.

    Examples
    --------
    >>> import numpy as np
    >>> colours = np.array([[100, 100, 100]] * 4 + [[104, 100, 100], [200, 120, 60]])
    >>> rarity_weights(colours).round(2).tolist()
    [1.0, 1.0, 1.0, 1.0, 2.0, 4.0]
    """
    values = np.asarray(colours, dtype=np.float64).reshape(-1, 3)
    if len(values) == 0:
        return np.zeros(0, dtype=np.float64)
    distance = np.sqrt(((values - np.median(values, axis=0)) ** 2).sum(axis=1))
    scale = max(float(np.median(distance)), MIN_COLOUR_SPREAD)
    rarity = np.clip(distance / scale - 1.0, 0.0, RARITY_CAP)
    result: NDArray[np.float64] = 1.0 + RARITY_GAIN * rarity
    return result


def weighted_stride_positions(
    weights: NDArray[np.floating], picks: int, offset: float = 0.5
) -> IntArray:
    """Systematic sampling in proportion to ``weights``, in order: distinct, sorted.

    The items lie end to end on a line, each as long as its weight; ``picks``
    points spaced evenly (the first ``offset`` of a step in) choose the items
    they fall on. Weights longer than a step are first cut to one step, so no
    item is hit twice. Equal weights give :func:`stride_positions`.

    Examples
    --------
    >>> import numpy as np
    >>> weighted_stride_positions(np.ones(10), 3, 0.5).tolist()
    [1, 5, 8]
    >>> heavy = np.array([1, 1, 1, 1, 6, 1, 1, 1, 1.0])   # item 4 always falls under a point
    >>> weighted_stride_positions(heavy, 3, 0.5).tolist()
    [2, 4, 7]
    """
    lengths = np.asarray(weights, dtype=np.float64)
    size = len(lengths)
    if picks <= 0:
        return np.zeros(0, dtype=np.int64)
    if picks >= size:
        return np.arange(size, dtype=np.int64)
    # Cut the k largest weights to the step t they leave: t = rest / (picks - k),
    # with k the fewest for which the next largest weight fits under t.
    largest = np.sort(lengths)[::-1][:picks]
    cut = np.r_[0.0, np.cumsum(largest)[:-1]]
    level = (float(lengths.sum()) - cut) / (picks - np.arange(picks))
    fits = np.flatnonzero(largest <= level * (1.0 + 1e-12))
    if len(fits) and fits[0] > 0:
        lengths = np.minimum(lengths, level[fits[0]])
    ends = np.cumsum(lengths)
    points = (np.arange(picks) + offset) * (float(ends[-1]) / picks)
    chosen = np.minimum(np.searchsorted(ends, points, side="right"), size - 1).astype(np.int64)
    if len(np.unique(chosen)) < picks:  # only by rounding at a cut weight
        return stride_positions(size, picks, offset)
    return chosen


def _one_unit_per_group(
    starts: IntArray, end: int, weights: NDArray[np.float64], picks: int, offset: float
) -> IntArray:
    """Stride over groups of consecutive units (``starts``, up to ``end``), one unit each.

    A group weighs as much as its heaviest unit; a chosen group gives its
    heaviest unit (ties: the one nearest its middle).

    Examples
    --------
    >>> import numpy as np
    >>> _one_unit_per_group(np.array([0, 3, 4]), 6, np.ones(6), 2, 0.5).tolist()
    [1, 4]
    """
    ends = np.r_[starts[1:], end]
    group_weight = np.maximum.reduceat(weights[:end], starts)
    chosen = weighted_stride_positions(group_weight, picks, offset)
    lengths = ends - starts
    members = np.repeat(chosen, lengths[chosen])
    position = np.arange(len(members)) - np.repeat(
        np.cumsum(lengths[chosen]) - lengths[chosen], lengths[chosen]
    )
    unit = starts[members] + position
    middle = (lengths[members] - 1) / 2.0
    best = np.lexsort((np.abs(position - middle), -weights[unit], members))
    first = np.r_[True, members[best][1:] != members[best][:-1]]
    result: IntArray = np.sort(unit[best][first])
    return result


def _spread_over_groups(
    starts: IntArray,
    end: int,
    unit_size: IntArray,
    picks: int,
    rarity: NDArray[np.float64] | None = None,
) -> IntArray:
    """``picks`` distinct units from groups of consecutive units, at least one per group.

    Beyond one pick per group, groups get picks in proportion to their frames
    (largest remainder, at most one per unit), and a group's picks are its
    units spread evenly over its frames, first to last, as a stride over
    natural order would: a cluster that merged several bursts gets its
    picks on different ones; one burst split into pieces gets no more than
    its frames' share. With ``rarity`` (:func:`rarity_weights` per unit) a
    unit's frames count that many times, as in the stride over clusters.

    Examples
    --------
    >>> import numpy as np
    >>> sizes = np.array([5, 5, 2, 8, 1, 1])       # groups: units 0-1, 2-3, 4-5
    >>> _spread_over_groups(np.array([0, 2, 4]), 6, sizes, 4).tolist()
    [0, 1, 3, 5]
    """
    ends = np.r_[starts[1:], end]
    counts = ends - starts
    frames = np.add.reduceat(unit_size[:end], starts)
    floors = np.ones(len(starts), dtype=np.int64)
    extra = proportional_shares(frames, picks, counts, floors=floors) - 1
    # One pick: the unit under the group's middle frame (weighted_stride_positions
    # with one pick), for all such groups at once; more: one stride per group.
    first = int(starts[0])
    unit_ends = np.cumsum(unit_size[first:end])
    before = np.r_[0, np.cumsum(frames)[:-1]]
    single = extra == 0
    middle = before[single] + 0.5 * frames[single]
    chosen = [first + np.searchsorted(unit_ends, middle, side="right")]
    lengths = unit_size[:end].astype(np.float64)
    if rarity is not None:  # a burst of unusual colour for its bucket weighs more
        lengths = lengths * rarity[:end]
    chosen += [
        int(starts[g]) + weighted_stride_positions(lengths[starts[g] : ends[g]], 1 + int(k))
        for g, k in zip(np.flatnonzero(~single), extra[~single], strict=True)
    ]
    result: IntArray = np.sort(np.concatenate(chosen))
    return result


def change_cuts(
    change: NDArray[np.floating],
    run_start: IntArray,
    run_end: IntArray,
    picks: IntArray,
    prefer: NDArray[np.floating] | None = None,
) -> IntArray:
    """One pick per piece of each run, cut near an even stride's cuts where it changes most.

    Run ``r`` (images ``run_start[r]`` up to ``run_end[r]``) gets
    ``picks[r]`` images. Its ``picks[r] - 1`` cuts start where an even
    stride's would, and each moves to the largest change within half a step
    of it (ties: the nearest); ``change[i]`` is how much image ``i`` differs
    from image ``i - 1`` (:func:`.bursts.frame_changes`). So no piece is
    longer than two steps and every stretch keeps a stride's share of picks,
    while a burst that ends near a cut gets the cut: a burst the finder
    merged with its neighbour, or split, gives its picks to different bursts
    where an even spread could land two in one. With equal changes the
    pieces are a stride's. Each piece gives its middle image or, with
    ``prefer`` (one value per image), its most preferred image, the nearest
    its middle among equals.

    Examples
    --------
    >>> import numpy as np
    >>> starts, ends = np.array([0]), np.array([20])
    >>> change = np.zeros(20); change[12] = 3.0     # one burst of 12 frames, one of 8
    >>> change_cuts(change, starts, ends, np.array([2])).tolist()
    [5, 15]
    >>> change_cuts(np.zeros(20), starts, ends, np.array([2])).tolist()   # a stride
    [4, 14]
    """
    values = np.asarray(change, dtype=np.float64)
    run_start = np.asarray(run_start, dtype=np.int64)
    run_end = np.asarray(run_end, dtype=np.int64)
    picks = np.minimum(np.asarray(picks, dtype=np.int64), run_end - run_start)
    cum = np.arange(len(values) + 1, dtype=np.float64)  # a cut at i: i images before it
    step = (cum[run_end] - cum[run_start]) / np.maximum(picks, 1)
    # Every cut j = 1 .. picks - 1 of every run, with its run's numbers.
    cuts = np.maximum(picks - 1, 0)
    run = np.repeat(np.arange(len(picks)), cuts)
    j = np.arange(len(run)) - np.repeat(np.cumsum(cuts) - cuts, cuts) + 1
    first, last = run_start[run] + 1, run_end[run] - 1
    base, size = cum[run_start[run]], step[run]
    even = np.clip(np.searchsorted(cum, base + j * size), first, last)
    lo = np.maximum(np.searchsorted(cum, base + (j - 0.5) * size), first)
    hi = np.minimum(np.searchsorted(cum, base + (j + 0.5) * size) - 1, last)
    hi = np.maximum(hi, lo - 1)
    # Candidates: every position in every cut's window (windows are disjoint).
    width = hi - lo + 1
    window = np.repeat(np.arange(len(run)), width)
    position = lo[window] + np.arange(len(window)) - np.repeat(np.cumsum(width) - width, width)
    best = np.lexsort((np.abs(position - even[window]), -values[position], window))
    winner = np.r_[True, window[best][1:] != window[best][:-1]] if len(best) else best.astype(bool)
    chosen = even.copy()
    chosen[window[best][winner]] = position[best][winner]
    # Keep the cuts of a run strictly increasing and inside it, room for every piece.
    shifted = np.maximum.accumulate(chosen - j) if len(chosen) else chosen
    chosen = np.clip(shifted, run_start[run], run_end[run] - picks[run]) + j
    # Pieces: [start, cut 1), [cut 1, cut 2), ... [cut k, end) of every run.
    bounds = np.sort(np.r_[run_start[picks > 0], chosen])
    ends = np.sort(np.r_[run_end[picks > 0], chosen])
    middle: IntArray = np.clip((bounds + ends - 1) // 2, bounds, ends - 1)
    if prefer is None or len(middle) == 0:
        return middle
    # The piece's image of highest preference, the nearest its middle among equals.
    width = ends - bounds
    piece = np.repeat(np.arange(len(bounds)), width)
    position = bounds[piece] + np.arange(len(piece)) - np.repeat(np.cumsum(width) - width, width)
    rank = np.lexsort((np.abs(position - middle[piece]), -np.asarray(prefer)[position], piece))
    head = np.r_[True, piece[rank][1:] != piece[rank][:-1]]
    result: IntArray = position[rank][head]
    return result


def _recut_clusters(
    picked: IntArray,
    clusters: NDArray[np.integer],
    bursts: IntArray,
    change: NDArray[np.floating],
    prefer: NDArray[np.floating] | None,
) -> IntArray:
    """Move the picks of every cluster with several, but no more than its bursts (or
    of one burst only), to :func:`change_cuts`' positions over the cluster.

    While a cluster's picks are scarce (at most one per burst), which bursts
    get them is the question, and where the sequence changes answers it; a
    cluster that is one found burst may be several the finder merged, and
    cut near an even spread's cuts it loses nothing if it is one. Beyond
    that every burst already has its share, spread over its frames; cut
    across the cluster instead, the picks would follow noise in the changes
    inside bursts (on the sweep: 5% more same-burst pairs at 25% targets).
    A cluster keeps its number of picks.
    """
    labels = np.asarray(clusters, dtype=np.int64)
    first = np.r_[True, labels[1:] != labels[:-1]]
    run_start = np.flatnonzero(first)
    run_end = np.r_[run_start[1:], len(labels)]
    new_burst = first | np.r_[True, bursts[1:] != bursts[:-1]]
    bursts_in = np.add.reduceat(new_burst.astype(np.int64), run_start)
    run_of_pick = np.searchsorted(run_start, picked, side="right") - 1
    per_run = np.bincount(run_of_pick, minlength=len(run_start))
    scarce = (per_run > 1) & ((per_run <= bursts_in) | (bursts_in == 1))
    if not scarce.any():
        return picked
    keep = picked[~scarce[run_of_pick]]
    moved = change_cuts(change, run_start[scarce], run_end[scarce], per_run[scarce], prefer)
    result: IntArray = np.sort(np.r_[keep, moved])
    return result


def select_burst_aware(
    bucket_of: NDArray[np.integer],
    burst_of: NDArray[np.integer],
    target: int,
    seed: int,
    weight_power: float = BUCKET_WEIGHT_POWER,
    colour: NDArray[np.floating] | None = None,
    clusters: NDArray[np.integer] | None = None,
    homes: NDArray[np.integer] | None = None,
    change: NDArray[np.floating] | None = None,
) -> IntArray:
    """Burst-aware selection (the default strategy).

    Each burst moves to its majority bucket (:func:`home_buckets`); picks are
    shared between night and day scenes first, then among buckets
    (:func:`_unit_quotas`); quotas are counted in bursts; inside a bucket an even stride
    runs over its bursts in natural order and takes each chosen burst's
    middle frame. With ``colour``, the stride is weighted: a burst whose
    colour is unusual for its bucket is up to 4x as likely to be picked
    (:func:`rarity_weights`). Only when every burst has a pick do bursts get
    more, spread evenly over their frames.

    With ``clusters`` (:func:`.bursts.find_clusters`: runs of bursts that may
    be one burst the finder split), a cluster's bursts share one home bucket,
    quotas are counted in clusters first and the stride runs over a bucket's
    clusters (each weighs as much as its rarest burst, and gives that burst):
    no cluster gets a second pick before every cluster has one, so a missed
    burst link does not turn into two picks of one burst. A cluster or found
    burst longer than the stride's step (``n / target`` images) may be
    several merged, and can take a stride's share of picks
    (``floor(frames * target / n)``): before the other bursts get seconds,
    and, when its scene (night IR or day colour, :func:`.buckets.scene_of`) needs the
    picks for its share, before the other scene's clusters all have one.

    Parameters
    ----------
    bucket_of : numpy.ndarray
        Bucket id per image (0..127), images in natural path order.
    burst_of : numpy.ndarray
        Burst label per image (see :func:`.bursts.find_bursts`; any integer
        labels work, bursts are ordered by label inside a bucket).
    target : int
        Number of images to keep.
    seed : int
        Chooses the stride offsets.
    weight_power : float, default 0.5
        Share picks among buckets in proportion to ``size ** weight_power``
        (see :data:`BUCKET_WEIGHT_POWER`; 1.0: in proportion to size).
    colour : numpy.ndarray, optional
        ``(n, 3)`` mean colour per image (the ``mean_rgb`` feature); without
        it every burst of a bucket weighs the same.
    clusters : numpy.ndarray, optional
        Cluster label per image, each burst wholly inside one cluster and each
        cluster a run of consecutive bursts; without it every burst is its own.
    homes : numpy.ndarray, optional
        :func:`home_buckets` of the units, when the caller has them already.
    change : numpy.ndarray, optional
        How much each image differs from the one before it
        (:func:`.bursts.frame_changes`); used with ``clusters``. A cluster
        that gets several picks, but no more than it has bursts, is cut near
        an even stride's cuts where it changes most, and each piece gives
        its middle image (:func:`change_cuts`), instead of the picks going to
        bursts spread evenly over its frames: a burst the finder split gives
        its picks to different true bursts, where an even spread could land
        two in one.

    Returns
    -------
    numpy.ndarray
        Sorted positions of the kept images: exactly ``min(target, n)``,
        distinct; the same inputs give the same output.

    Examples
    --------
    >>> import numpy as np
    >>> buckets = np.zeros(9, int); bursts = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    >>> select_burst_aware(buckets, bursts, 3, seed=0).tolist()
    [1, 4, 7]
    >>> select_burst_aware(buckets, bursts, 4, seed=0).tolist()   # one burst gets two
    [0, 2, 4, 7]

    Two bursts that may be one burst split (a cluster) weigh as much as one:

    >>> six = np.array([0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5])
    >>> select_burst_aware(np.zeros(12, int), six, 4, seed=2).tolist()
    [0, 2, 6, 8]
    >>> five = np.array([0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4])   # bursts 0 and 1 may be one
    >>> select_burst_aware(np.zeros(12, int), six, 4, seed=2, clusters=five).tolist()
    [0, 4, 6, 10]
    """
    bursts: IntArray = np.asarray(burst_of, dtype=np.int64)
    count = len(bursts)
    labels = _per_image(clusters, count, "clusters", "one label per image", np.int64)
    colours = _per_image(colour, count, "colour", "one RGB mean per image", np.float64, 3)
    changes = _per_image(change, count, "change", "one value per image", np.float64)
    if homes is None:
        homes = home_buckets(bucket_of, bursts if labels is None else labels)
    home: IntArray = np.asarray(homes, dtype=np.int64)
    if count == 0 or target <= 0:
        return np.zeros(0, dtype=np.int64)
    grouped = _group_units(home, bursts, labels)
    # A burst the finder found (clusters given) may be several merged (a run of
    # look-alike bursts, or a long stay): beyond one pick per burst, no run gets fewer
    # picks than a stride over the whole set would take from it. Exact units (detector
    # sequences) get one pick each before any gets a second.
    capacity = np.ones(len(grouped.unit_size), dtype=np.int64)
    if labels is not None:
        capacity = np.maximum(1, grouped.unit_size * min(target, count) // count)
    room = np.add.reduceat(capacity, grouped.first_unit).astype(np.int64)
    slots = None
    if labels is not None:
        slots = _cluster_slots(grouped, capacity, min(target, count) / count)
    quotas = _unit_quotas(
        grouped.sizes, grouped.units, target, grouped.keys, weight_power, grouped.groups, room,
        slots,
    )  # fmt: skip
    unit_weight = _unit_rarity(grouped, colours)
    shares = _unit_shares(
        grouped, quotas, bucket_offsets(grouped.keys, seed), unit_weight, capacity, room,
        clustered=labels is not None,
    )  # fmt: skip
    unit_index, offset_in_unit = _spread_in_units(grouped.unit_size, shares)
    picked = np.sort(grouped.order[grouped.unit_start[unit_index] + offset_in_unit])
    if changes is not None and labels is not None:
        frame_weight = None
        if colours is not None:  # in a piece, a burst of unusual colour for its bucket first
            frame_weight = np.empty(count, dtype=np.float64)
            frame_weight[grouped.order] = np.repeat(unit_weight, grouped.unit_size)
        picked = _recut_clusters(picked, labels, bursts, changes, frame_weight)
    return picked


def _per_image(
    values: NDArray[Any] | None,
    count: int,
    name: str,
    what: str,
    dtype: type[np.generic],
    width: int | None = None,
) -> NDArray[Any] | None:
    """``values`` as an array of ``dtype``, checked to hold one entry (of ``width``) per image."""
    if values is None:
        return None
    array = np.asarray(values, dtype=dtype)
    shape = (count,) if width is None else (count, width)
    if array.shape != shape:
        raise ValueError(f"{name} must have {what}, shape {shape}; got {array.shape}")
    return array


@dataclass(frozen=True)
class _Grouped:
    """Images grouped by home bucket, then burst (a *unit*), then natural position."""

    order: IntArray
    """Image at each grouped position."""
    unit_start: IntArray
    """Grouped position where each unit starts."""
    unit_size: IntArray
    unit_home: IntArray
    keys: IntArray
    """Home buckets present, ascending."""
    first_unit: IntArray
    """First unit of each bucket."""
    units: IntArray
    """Units in each bucket."""
    sizes: IntArray
    """Images in each bucket."""
    middles: IntArray
    """The image in the middle of each unit."""
    group_first: NDArray[np.bool_]
    """Whether each unit starts a cluster (inside its bucket)."""
    groups: IntArray
    """Clusters in each bucket."""


def _group_units(homes: IntArray, bursts: IntArray, clusters: IntArray | None) -> _Grouped:
    """Stage 1 of :func:`select_burst_aware`: units, buckets and clusters, grouped."""
    count = len(homes)
    order = np.lexsort((np.arange(count), bursts, homes))
    grouped_home = homes[order]
    grouped_burst = bursts[order]
    new_unit = np.r_[
        True,
        (grouped_home[1:] != grouped_home[:-1]) | (grouped_burst[1:] != grouped_burst[:-1]),
    ]
    unit_start = np.flatnonzero(new_unit)
    unit_size = np.diff(np.r_[unit_start, count]).astype(np.int64)
    unit_home = grouped_home[unit_start]
    keys, first_unit, units = np.unique(unit_home, return_index=True, return_counts=True)
    sizes = np.bincount(np.searchsorted(keys, grouped_home), minlength=len(keys))
    middles = order[unit_start + (unit_size - 1) // 2]
    # Cluster of every unit: its units are consecutive inside its (one) home bucket.
    unit_group = (
        np.arange(len(unit_start), dtype=np.int64) if clusters is None else clusters[middles]
    )
    group_first = np.r_[
        True,
        (unit_group[1:] != unit_group[:-1]) | (unit_home[1:] != unit_home[:-1]),
    ]
    groups = np.bincount(np.searchsorted(keys, unit_home[group_first]), minlength=len(keys))
    return _Grouped(
        order=order.astype(np.int64),
        unit_start=unit_start.astype(np.int64),
        unit_size=unit_size,
        unit_home=unit_home,
        keys=keys.astype(np.int64),
        first_unit=first_unit.astype(np.int64),
        units=units.astype(np.int64),
        sizes=sizes.astype(np.int64),
        middles=middles.astype(np.int64),
        group_first=group_first,
        groups=groups.astype(np.int64),
    )


def _cluster_slots(grouped: _Grouped, capacity: IntArray, rate: float) -> IntArray:
    """Stage 2: picks each bucket's clusters take before any gets more than a stride's share.

    A cluster takes one pick, or as many as a stride at ``rate`` (picks per
    image) would take from its frames, if more (but no more than its bursts'
    ``capacity``): the finder can merge many bursts into one long cluster
    (look-alike night IR scenes do), and one pick per cluster first would
    then leave its scene with fewer picks than a stride gives it. Rounding
    each cluster down loses up to a pick per cluster, so a scene
    (:func:`.buckets.scene_of`) made of a few long clusters could still end
    below a stride over all its frames; the picks it lacks go to its
    clusters furthest below their stride share (largest-remainder rounding,
    as :func:`proportional_shares`), within their capacity and never past
    the share's ceiling (a cluster of 0.8 picks' frames keeps its one).
    """
    group_start = np.flatnonzero(grouped.group_first)
    frames = np.add.reduceat(grouped.unit_size, group_start)
    held = np.add.reduceat(capacity, group_start)
    stride_share = frames * rate
    group_slots = np.minimum(np.maximum(1, np.floor(stride_share + 1e-9)), held).astype(np.int64)
    bucket = np.searchsorted(grouped.keys, grouped.unit_home[group_start])
    scene = scene_of(grouped.keys)[bucket]
    ceiling = np.maximum(group_slots, np.minimum(held, np.ceil(stride_share - 1e-9)))
    for members in (np.flatnonzero(scene == s) for s in np.unique(scene).tolist()):
        total = min(int(np.floor(stride_share[members].sum() + 1e-9)), int(ceiling[members].sum()))
        if total > int(group_slots[members].sum()):
            group_slots[members] = proportional_shares(
                frames[members], total, ceiling[members].astype(np.int64),
                floors=group_slots[members],
            )  # fmt: skip
    slots: IntArray = np.bincount(bucket, weights=group_slots, minlength=len(grouped.keys)).astype(
        np.int64
    )
    return slots


def _unit_rarity(grouped: _Grouped, colours: NDArray[np.float64] | None) -> NDArray[np.float64]:
    """Stage 2: each unit's :func:`rarity_weights` among its bucket's units (1 without colours)."""
    weight = np.ones(len(grouped.unit_start), dtype=np.float64)
    if colours is None:
        return weight
    for lo, n_units in zip(grouped.first_unit.tolist(), grouped.units.tolist(), strict=True):
        weight[lo : lo + n_units] = rarity_weights(colours[grouped.middles[lo : lo + n_units]])
    return weight


def _unit_shares(
    grouped: _Grouped,
    quotas: IntArray,
    offsets: NDArray[np.float64],
    unit_weight: NDArray[np.float64],
    capacity: IntArray,
    room: IntArray,
    *,
    clustered: bool,
) -> IntArray:
    """Stage 3: how many picks each unit gives, from its bucket's quota."""
    shares = np.zeros(len(grouped.unit_start), dtype=np.int64)
    if quotas.max(initial=0) <= 1 and quotas.sum() < len(grouped.keys):
        # fewer picks than buckets, one each: spread over the natural order
        spread = _spread_singles(
            grouped.middles, grouped.first_unit, grouped.units, grouped.sizes, grouped.keys,
            quotas, offsets,
        )  # fmt: skip
        shares[spread] = 1
        return shares
    group_start = np.flatnonzero(grouped.group_first)
    unit_size = grouped.unit_size
    for index, quota in enumerate(quotas.tolist()):
        if quota == 0:
            continue
        lo = int(grouped.first_unit[index])
        hi = lo + int(grouped.units[index])
        starts = group_start[np.searchsorted(group_start, lo) : np.searchsorted(group_start, hi)]
        if quota <= grouped.groups[index]:
            chosen = _one_unit_per_group(starts, hi, unit_weight, quota, float(offsets[index]))
            shares[chosen] = 1
        elif clustered and quota <= hi - lo:
            shares[_spread_over_groups(starts, hi, unit_size, quota, unit_weight)] = 1
        elif quota <= hi - lo:
            weights = unit_weight[lo:hi]
            shares[lo + weighted_stride_positions(weights, quota, offsets[index])] = 1
        else:  # every burst its stride's share first, then the rest by frames
            sizes_here, within = unit_size[lo:hi], capacity[lo:hi] - 1
            if quota <= room[index]:
                extra = proportional_shares(sizes_here, quota - (hi - lo), within)
            else:
                extra = proportional_shares(
                    sizes_here, quota - (hi - lo), sizes_here - 1, floors=within
                )
            shares[lo:hi] = 1 + extra
    return shares
