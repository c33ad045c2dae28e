"""MegaDetector batch results (format 1.x): read detections as items, write kept ones back.

The format (https://lila.science/megadetector-output-format) is written by
MegaDetector, AddaxAI and SpeciesNet's converters and read by Timelapse::

    {"info": {"format_version": "1.4", ...},
     "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
     "classification_categories": {"0": "fox", ...},          # optional
     "images": [{"file": "cam1/IMG_0001.jpg",                  # relative to the image folder
                 "detections": [{"category": "1", "conf": 0.93,
                                 "bbox": [x, y, w, h],         # normalised, upper-left origin
                                 "classifications": [["0", 0.91], ...]}]},   # optional
                {"file": "cam1/IMG_0002.jpg", "failure": "Failure image access",
                 "detections": null}]}

MegaDetector applies the EXIF orientation before it detects, so the boxes
are in the coordinates of the oriented frame. Images that failed and video
entries (``frame_rate``) hold no items. Optional non-standard image fields
``seq_id``, ``location`` and ``datetime`` (written by some converters) are
read as metadata.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from typing import Any

from numpy.typing import ArrayLike

from .._exceptions import DetectionFileError, InvalidArgumentError
from ._common import (
    Collector,
    ItemError,
    as_names,
    category_names,
    check_box,
    check_on_error,
    dump_document,
    expect_list,
    kept_by_image,
    load_document,
    number,
    parse_datetime,
    resolve_frame,
    root_folder,
    source_pairs,
    text,
)
from .items import ItemTable

__all__ = [
    "DEFAULT_CATEGORIES",
    "DEFAULT_MIN_CLASS_CONF",
    "DEFAULT_MIN_CONF",
    "UNCLASSIFIED",
    "is_megadetector",
    "megadetector_items",
    "read_megadetector",
    "write_megadetector",
]

logger = logging.getLogger(__name__)

DEFAULT_MIN_CONF = 0.2
"""MegaDetector v5's ``typical_detection_threshold``: below it most boxes are false."""

DEFAULT_CATEGORIES = ("animal",)
"""Detection category names that are items by default: people and vehicles are not."""

DEFAULT_MIN_CLASS_CONF = 0.5
"""A classification below this score does not name the species: the item is unclassified."""

UNCLASSIFIED = "unclassified"
"""Label of a detection without a classification at or above ``min_class_conf``."""

FORMAT_FIX = "give MegaDetector batch output (format 1.x)"

Row = tuple[
    str, tuple[float, float, float, float], float, str, str, str | None, str | None, float,
    tuple[int, int],
]  # fmt: skip


def is_megadetector(document: Any) -> bool:
    """True if ``document`` looks like MegaDetector output: ``images`` of ``file`` + ``detections``.

    One image entry that lacks them does not change the verdict: the reader
    reports it as a bad image.

    >>> is_megadetector({"images": [{"file": "a.jpg", "detections": []}]})
    True
    >>> is_megadetector({"images": [{"file_name": "a.jpg"}], "annotations": []})
    False
    """
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        return False
    images = [entry for entry in document["images"] if isinstance(entry, dict)]
    if not images:
        return "detection_categories" in document and "annotations" not in document
    return any("file" in entry for entry in images) and any(
        "detections" in entry or "failure" in entry for entry in images
    )


def _fraction(value: float, parameter: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise InvalidArgumentError(f"{parameter} must be a number from 0 to 1, got {value!r}")
    return float(value)


def _label(
    detection: dict[str, Any], field: str, classes: dict[str, str], min_class_conf: float
) -> str:
    """Species of a detection: its top classification if confident enough."""
    classifications = detection.get("classifications")
    if not classifications:
        return UNCLASSIFIED
    if not isinstance(classifications, list):
        raise ItemError("not a list of [class id, score]", field=f"{field}.classifications")
    best_id, best_score = "", -math.inf
    for k, pair in enumerate(classifications):
        where = f"{field}.classifications[{k}]"
        if not isinstance(pair, list) or len(pair) != 2:
            raise ItemError(f"not a [class id, score] pair ({pair!r})", field=where)
        class_id = text(pair[0], f"{where}[0]") or ""
        score = number(pair[1], f"{where}[1]")
        if score > best_score:
            best_id, best_score = class_id, score
    if best_score < min_class_conf:
        return UNCLASSIFIED
    if best_id not in classes:
        raise ItemError(
            f"class id {best_id!r} is not in classification_categories",
            field=f"{field}.classifications",
            fix="add it to classification_categories",
        )
    return classes[best_id]


def _detection(
    detection: object,
    field: str,
    *,
    detection_names: dict[str, str],
    classes: dict[str, str],
    wanted: frozenset[str],
    min_conf: float,
    min_class_conf: float,
) -> tuple[tuple[float, float, float, float], float, str, str] | None:
    """(box, conf, category, label) of one detection, or None if it is not an item."""
    if not isinstance(detection, dict):
        raise ItemError(f"not an object ({type(detection).__name__})", field=field)
    category_id = text(detection.get("category"), f"{field}.category")
    if category_id is None:
        raise ItemError("missing", field=f"{field}.category", fix="give every detection a category")
    category = detection_names.get(category_id)
    if category is None or category not in wanted:
        return None  # unlisted categories mean "no detection" in the format
    if "conf" not in detection:
        raise ItemError(
            "missing", field=f"{field}.conf", fix="give every detection its confidence 'conf'"
        )
    conf = number(detection["conf"], f"{field}.conf")
    if not 0 <= conf <= 1:
        raise ItemError(f"{conf:g} is outside 0..1", field=f"{field}.conf", fix="fix the value")
    if conf < min_conf:
        return None
    box = check_box(detection.get("bbox"), f"{field}.bbox")
    return box, conf, category, _label(detection, field, classes, min_class_conf)


def _image_rows(
    index: int, entry: dict[str, Any], root: str, options: dict[str, Any], collector: Collector
) -> list[Row]:
    name = entry["file"]
    detections = entry.get("detections")
    if not isinstance(detections, list):
        raise ItemError(
            f"is {type(detections).__name__}, not a list", field="detections", fix=FORMAT_FIX
        )
    sequence = text(entry.get("seq_id"), "seq_id")
    location = text(entry.get("location"), "location")
    moment = parse_datetime(entry.get("datetime"))
    frame = resolve_frame(root, name)
    rows: list[Row] = []
    for j, detection in enumerate(detections):
        try:
            item = _detection(detection, f"detections[{j}]", **options)
        except ItemError as exc:
            collector.handle(name, exc)
            continue
        if item is not None:
            box, conf, category, label = item
            rows.append((frame, box, conf, category, label, sequence, location, moment, (index, j)))
    return rows


def megadetector_items(
    document: Any,
    json_path: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    min_conf: float = DEFAULT_MIN_CONF,
    categories: Iterable[str] | str = DEFAULT_CATEGORIES,
    min_class_conf: float = DEFAULT_MIN_CLASS_CONF,
    on_error: str = "raise",
) -> ItemTable:
    """The items of an already loaded MegaDetector document (see :func:`read_megadetector`)."""
    path = os.fspath(json_path)
    collector = Collector(path, check_on_error(on_error))
    if not is_megadetector(document):
        raise DetectionFileError(
            path, "not MegaDetector batch output (images[].file with detections)", fix=FORMAT_FIX
        )
    detection_names = category_names(path, document, "detection_categories", required=True)
    wanted = as_names(categories, "categories")
    missing = sorted(wanted - set(detection_names.values()))
    if missing:
        logger.warning(
            "%s has no detection category %s (it has %s)",
            path,
            ", ".join(map(repr, missing)),
            ", ".join(map(repr, sorted(set(detection_names.values())))) or "none",
        )
    options = {
        "detection_names": detection_names,
        "classes": category_names(path, document, "classification_categories", required=False),
        "wanted": wanted,
        "min_conf": _fraction(min_conf, "min_conf"),
        "min_class_conf": _fraction(min_class_conf, "min_class_conf"),
    }
    root = root_folder(path, image_root)
    rows: list[Row] = []
    skipped = {"failed": 0, "video": 0}
    for i, entry in enumerate(expect_list(path, document, "images", FORMAT_FIX)):
        if not isinstance(entry, dict) or not isinstance(entry.get("file"), str):
            collector.handle(
                f"images[{i}]", ItemError("has no 'file' name", field="file", fix=FORMAT_FIX)
            )
            continue
        if entry.get("failure") is not None:
            skipped["failed"] += 1
            continue
        if "frame_rate" in entry or "frames_processed" in entry:
            skipped["video"] += 1
            continue
        try:
            rows.extend(_image_rows(i, entry, root, options, collector))
        except ItemError as exc:
            collector.handle(entry["file"], exc)
    for kind, count in skipped.items():
        if count:
            logger.info("%s: %d %s entries hold no items", path, count, kind)
    return ItemTable.from_rows(rows, collector.problems)


def read_megadetector(
    path: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    min_conf: float = DEFAULT_MIN_CONF,
    categories: Iterable[str] | str = DEFAULT_CATEGORIES,
    min_class_conf: float = DEFAULT_MIN_CLASS_CONF,
    on_error: str = "raise",
) -> ItemTable:
    """Read a MegaDetector batch results file: one item per detection kept.

    Parameters
    ----------
    path : str or PathLike
        The results JSON.
    image_root : str or PathLike, optional
        Folder the ``images[].file`` names are relative to (default: the
        JSON's folder). Absolute names are used as they are.
    min_conf : float, default 0.2
        Detections below this confidence are not items.
    categories : iterable of str, default ("animal",)
        Detection category names (``detection_categories`` values) that are items.
    min_class_conf : float, default 0.5
        The top classification at or above this score is the item's label,
        else the label is ``"unclassified"``.
    on_error : {"raise", "skip"}
        ``"raise"``: a bad detection (no ``conf``, a box outside the frame or
        of zero size, a non-numeric field) stops with a
        :class:`~smartdownsample.DetectionFileError` naming file, image and
        field. ``"skip"``: it is skipped, logged and listed in the table's
        ``problems``. A file that is not valid MegaDetector output always raises.

    Frames are not opened.
    """
    json_path = os.fspath(path)
    return megadetector_items(
        load_document(json_path),
        json_path,
        image_root=image_root,
        min_conf=min_conf,
        categories=categories,
        min_class_conf=min_class_conf,
        on_error=on_error,
    )


def write_megadetector(
    path: str | os.PathLike[str], document: Any, kept: ItemTable | ArrayLike
) -> None:
    """Write ``document`` filtered to the ``kept`` items, atomically.

    Everything else is kept as it was: ``info``, the category tables and any
    other field, and every field of the kept images and detections. Images
    with no kept detection are left out, as are detections not kept.

    Parameters
    ----------
    path : str or PathLike
        The JSON file to write (parent folders are created).
    document : dict
        The document the items were read from (it is not modified).
    kept : ItemTable or array of (image, detection) index pairs
        The items to keep (their ``source`` column).
    """
    if not isinstance(document, dict) or not isinstance(document.get("images"), list):
        raise InvalidArgumentError("document must be the MegaDetector results the items came from")
    images = document["images"]
    wanted = kept_by_image(source_pairs(kept), len(images))
    out_images = []
    for i, entry in enumerate(images):
        if i not in wanted:
            continue
        detections = entry.get("detections") or []
        if not all(0 <= j < len(detections) for j in wanted[i]):
            raise InvalidArgumentError(
                f"kept refers to detections {sorted(wanted[i])} of image {i}, "
                f"which has {len(detections)} (was it read from another file?)"
            )
        out_entry = dict(entry)
        out_entry["detections"] = [d for j, d in enumerate(detections) if j in wanted[i]]
        out_images.append(out_entry)
    out = dict(document)
    out["images"] = out_images
    dump_document(path, out)
