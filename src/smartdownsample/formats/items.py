"""The item table: one row per detection, annotation with a box, or whole image.

Readers of detector output (:mod:`.megadetector`) and annotation files
(:mod:`.coco`) return an :class:`ItemTable`, a frozen set of parallel
columns. Functions here are small and pure: :meth:`ItemTable.take`,
:meth:`ItemTable.frames` and :func:`sequence_ids`.

Boxes are normalised ``[x, y, w, h]`` (upper-left corner, width and height
as fractions of the frame) in the coordinates of the *oriented* frame, i.e.
after its EXIF orientation is applied, as MegaDetector sees it; a row of NaN
is the whole image.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._exceptions import InvalidArgumentError

__all__ = [
    "SEQUENCE_GAP_SECONDS",
    "WHOLE_IMAGE",
    "ItemTable",
    "Problem",
    "sequence_ids",
]

SEQUENCE_GAP_SECONDS = 60.0
"""Frames of one location (or folder) taken at most this many seconds apart
form one sequence. 60 s is MegaDetector's default for synthesising sequences
from capture times (``SequenceOptions.episode_interval_seconds`` in
``megadetector/data_management/cct_json_utils.py``): longer than a camera's
burst and re-trigger delay (typically 1-30 s), shorter than the gap between
separate visits."""

WHOLE_IMAGE = -1
"""``source[:, 1]`` of an item that is a whole image rather than one box."""


class Problem(NamedTuple):
    """An item skipped while reading (``on_error='skip'``).

    Attributes
    ----------
    file : str
        The JSON file.
    image : str
        The image entry as the file names it.
    reason : str
        What was wrong (the message the error would have had).
    """

    file: str
    image: str
    reason: str


def _floats(values: ArrayLike, width: int = 0) -> NDArray[np.float64]:
    array: NDArray[np.float64] = np.array(values, dtype=np.float64)
    if array.size == 0:
        array = array.reshape((0, width) if width else (0,))
    return array


def _pairs(values: ArrayLike) -> NDArray[np.int64]:
    array: NDArray[np.int64] = np.array(values, dtype=np.int64)
    return array.reshape((0, 2)) if array.size == 0 else array


@dataclass(frozen=True, eq=False)
class ItemTable:
    """Parallel columns, one row per item.

    Attributes
    ----------
    frame : list of str
        Resolved (absolute) path of the frame holding the item.
    box : ndarray of float64, shape (N, 4)
        Normalised ``[x, y, w, h]`` in 0..1 of the oriented frame; NaN for a
        whole-image item.
    confidence : ndarray of float64, shape (N,)
        Detection confidence; NaN when the format has none.
    category : list of str
        Detection category name (MegaDetector) or category name (COCO).
    label : list of str
        Class used for balancing: the top classification at or above
        ``min_class_conf`` else ``"unclassified"`` (MegaDetector), or the
        category name (COCO).
    sequence : list of str or None
        Sequence id from the file's metadata (``seq_id``), None when absent.
    location : list of str or None
        Camera location from the metadata, None when absent.
    time : ndarray of float64, shape (N,)
        Capture time in POSIX seconds (naive times read as UTC, as the EXIF
        times of the rest of the package); NaN when unknown.
    source : ndarray of int64, shape (N, 2)
        Index of the image in the file's ``images`` list, and index of the
        detection inside that image's ``detections`` (MegaDetector) or of the
        annotation in the file's ``annotations`` list (COCO); ``-1`` for a
        whole-image item.
    problems : tuple of Problem
        Items skipped while reading with ``on_error='skip'``.

    Examples
    --------
    >>> table = ItemTable.from_rows(
    ...     [("/f/a.jpg", (0.1, 0.2, 0.3, 0.4), 0.9, "animal", "deer", None, "cam1", 0.0, (0, 0)),
    ...      ("/f/a.jpg", (0.5, 0.5, 0.2, 0.2), 0.3, "animal", "deer", None, "cam1", 0.0, (0, 1)),
    ...      ("/f/b.jpg", None, None, "animal", "fox", None, "cam1", 5.0, (1, -1))])
    >>> len(table), table.label
    (3, ['deer', 'deer', 'fox'])
    >>> table.take([2]).frame
    ['/f/b.jpg']
    >>> table.frames()[1].tolist()
    [0, 0, 1]
    """

    frame: list[str]
    box: NDArray[np.float64]
    confidence: NDArray[np.float64]
    category: list[str]
    label: list[str]
    sequence: list[str | None]
    location: list[str | None]
    time: NDArray[np.float64]
    source: NDArray[np.int64]
    problems: tuple[Problem, ...] = field(default=())

    def __post_init__(self) -> None:
        n = len(self.frame)
        shapes = {
            "box": (self.box.shape, (n, 4)),
            "confidence": (self.confidence.shape, (n,)),
            "time": (self.time.shape, (n,)),
            "source": (self.source.shape, (n, 2)),
        }
        for name, (shape, expected) in shapes.items():
            if shape != expected:
                raise InvalidArgumentError(f"ItemTable.{name} has shape {shape}, not {expected}")
        for name in ("category", "label", "sequence", "location"):
            if len(getattr(self, name)) != n:
                raise InvalidArgumentError(f"ItemTable.{name} has not {n} rows")

    @classmethod
    def from_rows(
        cls,
        rows: Sequence[
            tuple[
                str,
                Sequence[float] | None,
                float | None,
                str,
                str,
                str | None,
                str | None,
                float | None,
                tuple[int, int],
            ]
        ],
        problems: Sequence[Problem] = (),
    ) -> ItemTable:
        """Build a table from ``(frame, box, confidence, category, label, sequence,
        location, time, source)`` tuples; None box, confidence or time is NaN."""
        nan_box = (math.nan,) * 4
        return cls(
            frame=[row[0] for row in rows],
            box=_floats([nan_box if r[1] is None else r[1] for r in rows], 4),
            confidence=_floats([math.nan if r[2] is None else r[2] for r in rows]),
            category=[row[3] for row in rows],
            label=[row[4] for row in rows],
            sequence=[row[5] for row in rows],
            location=[row[6] for row in rows],
            time=_floats([math.nan if r[7] is None else r[7] for r in rows]),
            source=_pairs([row[8] for row in rows]),
            problems=tuple(problems),
        )

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def whole_image(self) -> NDArray[np.bool_]:
        """True for rows that are whole images (no box)."""
        return np.asarray(np.isnan(self.box).all(axis=1))

    def take(self, indices: ArrayLike) -> ItemTable:
        """The rows at ``indices`` (in that order), with the same problems.

        >>> ItemTable.from_rows([]).take([]).frame
        []
        """
        index = np.asarray(indices, dtype=np.int64).reshape(-1)
        if index.size and (index.min() < 0 or index.max() >= len(self)):
            raise InvalidArgumentError(
                f"indices must be from 0 to {len(self) - 1}, got {index.min()}..{index.max()}"
            )
        rows = index.tolist()
        return ItemTable(
            frame=[self.frame[i] for i in rows],
            box=self.box[index],
            confidence=self.confidence[index],
            category=[self.category[i] for i in rows],
            label=[self.label[i] for i in rows],
            sequence=[self.sequence[i] for i in rows],
            location=[self.location[i] for i in rows],
            time=self.time[index],
            source=self.source[index],
            problems=self.problems,
        )

    def frames(self) -> tuple[list[str], NDArray[np.int64]]:
        """Distinct frames in order of first appearance, and each row's frame index.

        >>> ItemTable.from_rows([]).frames()
        ([], array([], dtype=int64))
        """
        positions: dict[str, int] = {}
        row_frame = np.fromiter(
            (positions.setdefault(path, len(positions)) for path in self.frame),
            dtype=np.int64,
            count=len(self.frame),
        )
        return list(positions), row_frame


def _group_key(location: str | None, frame: str) -> str:
    """Camera of a row: its location, else the folder holding its frame."""
    return f"location:{location}" if location is not None else f"folder:{os.path.dirname(frame)}"


def sequence_ids(table: ItemTable, gap: float = SEQUENCE_GAP_SECONDS) -> NDArray[np.int64]:
    """Group rows into sequences; returns a sequence number per row (0, 1, ...).

    * Rows with a ``sequence`` (a ``seq_id`` from the metadata) share a
      sequence exactly when their ids are equal.
    * Otherwise rows of the same ``location`` (or, without one, the same
      folder) whose capture times are within ``gap`` seconds of the previous
      row chain into one sequence, as MegaDetector's sequence tool does.
    * Rows without a time form the sequence of their frame: all boxes of one
      frame are one sequence.

    Numbers follow the first appearance of each sequence in the table.

    Examples
    --------
    >>> rows = [
    ...     ("/c1/a.jpg", None, 0.9, "animal", "deer", "s7", None, None, (0, 0)),
    ...     ("/c1/b.jpg", None, 0.9, "animal", "deer", "s7", None, None, (1, 0)),
    ...     ("/c2/c.jpg", None, 0.9, "animal", "deer", None, "cam2", 0.0, (2, 0)),
    ...     ("/c2/d.jpg", None, 0.9, "animal", "deer", None, "cam2", 50.0, (3, 0)),
    ...     ("/c2/e.jpg", None, 0.9, "animal", "deer", None, "cam2", 200.0, (4, 0)),
    ...     ("/c3/f.jpg", None, 0.9, "animal", "deer", None, None, None, (5, 0)),
    ...     ("/c3/f.jpg", None, 0.8, "animal", "deer", None, None, None, (5, 1)),
    ...     ("/c3/g.jpg", None, 0.8, "animal", "deer", None, None, None, (6, 0)),
    ... ]
    >>> sequence_ids(ItemTable.from_rows(rows)).tolist()
    [0, 0, 1, 1, 2, 3, 3, 4]
    """
    if not gap >= 0:
        raise InvalidArgumentError(f"gap must be a number of seconds >= 0, got {gap!r}")
    keys: list[tuple[str, ...]] = [("",)] * len(table)
    timed: dict[str, list[int]] = {}
    for row, (sequence, location, frame, moment) in enumerate(
        zip(table.sequence, table.location, table.frame, table.time.tolist(), strict=True)
    ):
        if sequence is not None:
            keys[row] = ("seq", sequence)
        elif math.isfinite(moment):
            timed.setdefault(_group_key(location, frame), []).append(row)
        else:
            keys[row] = ("frame", frame)
    for group, rows in timed.items():
        ordered = sorted(rows, key=lambda r: (table.time[r], r))
        number, previous = 0, math.nan
        for row in ordered:
            moment = float(table.time[row])
            if not moment - previous <= gap:  # also true for the first row (NaN)
                number += 1
            keys[row] = ("time", group, str(number))
            previous = moment
    numbers: dict[tuple[str, ...], int] = {}
    return np.fromiter(
        (numbers.setdefault(key, len(numbers)) for key in keys), dtype=np.int64, count=len(keys)
    )
