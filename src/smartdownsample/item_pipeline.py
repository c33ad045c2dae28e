"""The selection pipeline for detections (an :class:`~.formats.ItemTable`), not files.

The stages of :mod:`.pipeline`, with two differences::

    prepare_items   item table -> one job per item, natural frame order  (Prepared)
    extract         as for files: a frame is decoded once for all its boxes
    bucket          as for files
    item_units      sequences: metadata, else EXIF times and folders, else looks
    choose          each sequence is one unit, as a burst is for files
    assemble        as for files, one row per item, plus the table

An item's job is its frame's path, or a :class:`~.extraction.RegionPath`
(the path with the box) for a detection; items of one frame are adjacent,
so each unit of work decodes a frame once for all its boxes. All boxes of
one frame are always one unit.
"""

from __future__ import annotations

import dataclasses
import os
from typing import TYPE_CHECKING

import numpy as np
from numpy.typing import NDArray

from . import pipeline
from .extraction.batch import RegionPath
from .paths import natural_order, stat_paths
from .result import SelectionResult

if TYPE_CHECKING:
    from .formats.items import ItemTable

__all__ = ["item_units", "merge_by_frame", "prepare_items", "run_items"]


def prepare_items(table: ItemTable) -> pipeline.Prepared:
    """Stage 1 for items: one job per row, rows in natural order of their frames.

    Rows of one frame stay together, in table order. The result's
    ``paths`` are the rows' frames (repeated for boxes of one frame),
    ``absolute`` the jobs: the absolute frame path for a whole image, a
    :class:`RegionPath` for a box.

    Examples
    --------
    >>> from smartdownsample.formats import ItemTable
    >>> table = ItemTable.from_rows(
    ...     [("/f/b.jpg", (0.1, 0.1, 0.2, 0.2), 0.9, "animal", "deer", None, None, None, (1, 0)),
    ...      ("/f/a.jpg", None, None, "animal", "deer", None, None, None, (0, -1)),
    ...      ("/f/b.jpg", (0.5, 0.5, 0.2, 0.2), 0.8, "animal", "deer", None, None, None, (1, 1))])
    >>> prepare_items(table).order.tolist()
    [1, 0, 2]
    """
    frames, row_frame = table.frames()
    absolute = [os.path.abspath(frame) for frame in frames]
    rank = np.empty(len(frames), dtype=np.int64)
    rank[natural_order(absolute)] = np.arange(len(frames))
    count = len(table)
    order = np.lexsort((np.arange(count), rank[row_frame])).astype(np.int64)
    whole = table.whole_image
    jobs: list[str] = []
    for row in range(count):
        path = absolute[int(row_frame[row])]
        box = table.box[row]
        jobs.append(path if whole[row] else RegionPath(path, (box[0], box[1], box[2], box[3])))
    frame_stats = stat_paths(absolute)  # once per frame, not once per box
    stats = [frame_stats[int(frame)] for frame in row_frame]
    return pipeline.Prepared(
        count, list(table.frame), np.arange(count, dtype=np.int64), jobs, order, stats=stats
    )


def merge_by_frame(units: NDArray[np.int64], frame_of: NDArray[np.int64]) -> NDArray[np.int64]:
    """Units joined so that all rows of one frame share one; renumbered by first row.

    Examples
    --------
    >>> import numpy as np
    >>> merge_by_frame(np.array([0, 1, 2, 3]), np.array([7, 7, 8, 9])).tolist()
    [0, 0, 1, 2]
    >>> merge_by_frame(np.array([5, 6, 5, 7]), np.array([0, 1, 1, 2])).tolist()
    [0, 0, 0, 1]
    """
    parent = {int(u): int(u) for u in units}

    def find(unit: int) -> int:
        while parent[unit] != unit:
            parent[unit] = parent[parent[unit]]
            unit = parent[unit]
        return unit

    first_unit: dict[int, int] = {}
    for unit, frame in zip(units.tolist(), frame_of.tolist(), strict=True):
        seen = first_unit.setdefault(frame, unit)
        parent[find(unit)] = find(seen)
    numbers: dict[int, int] = {}
    return np.fromiter(
        (numbers.setdefault(find(u), len(numbers)) for u in units.tolist()),
        dtype=np.int64,
        count=len(units),
    )


def item_units(
    table: ItemTable, features: NDArray[np.void], frame_of: NDArray[np.int64]
) -> NDArray[np.int64]:
    """Stage 4 for items: the sequence of each readable row (rows in natural order).

    From the table's metadata (``seq_id``, or location and time) where it has
    them; the times it lacks come from the frames' EXIF capture times
    (``features["capture_time"]``), grouped by location, else folder
    (:func:`~.formats.sequence_ids`). Rows with neither a sequence nor a
    time (crops that lost their EXIF, a camera without a clock) get their
    units from looks, as bursts of files (:func:`.pipeline.find_units`),
    rather than one unit each. All boxes of one frame are one unit
    (:func:`merge_by_frame`).
    """
    from .formats.items import sequence_ids

    times = np.where(np.isnan(table.time), features["capture_time"], table.time)
    untold = np.array([seq is None for seq in table.sequence], dtype=bool) & np.isnan(times)
    looks = pipeline.find_units(features, [os.path.abspath(f) for f in table.frame]).bursts
    if untold.all():
        return merge_by_frame(looks, frame_of)
    units = sequence_ids(dataclasses.replace(table, time=times.astype(np.float64)))
    if untold.any():
        units = np.where(untold, int(units.max()) + 1 + looks, units)
    return merge_by_frame(units, frame_of)


def run_items(table: ItemTable, settings: pipeline.Settings) -> SelectionResult:
    """``settings.target`` items of ``table``, one result row per item.

    ``settings.strategy`` sets the buckets; the choice always treats each
    unit (sequence) as one burst (as ``strategy="burst"`` does for bursts).
    """
    _, frame_of = table.frames()

    def units_of(
        prepared: pipeline.Prepared, readable: NDArray[np.int64], features: NDArray[np.void]
    ) -> pipeline.Units:
        rows = prepared.order[readable]
        return pipeline.Units(item_units(table.take(rows), features, frame_of[rows]))

    result = pipeline.run_stages(lambda: prepare_items(table), units_of, settings, "burst")
    result.items = table
    pipeline.log_outcome(result)
    return result
