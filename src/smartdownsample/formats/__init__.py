"""Camera-trap formats: MegaDetector batch output and COCO Camera Traps.

Readers turn a file into an :class:`ItemTable` (one row per detection,
annotation with a box, or whole image); writers write the input document
back filtered to the kept items. :func:`read_detections` recognises the
format by the file's content.

This package is imported on demand (``import smartdownsample`` does not load it).
"""

from __future__ import annotations

import os
from typing import Any, Literal

from numpy.typing import ArrayLike

from .._exceptions import DetectionFileError, InvalidArgumentError
from ._common import load_document
from .coco import DEFAULT_EXCLUDE_CATEGORIES, coco_items, is_coco, read_coco, write_coco
from .crops import box_pixels, crop_file_name, crop_item
from .items import SEQUENCE_GAP_SECONDS, WHOLE_IMAGE, ItemTable, Problem, sequence_ids
from .megadetector import (
    DEFAULT_CATEGORIES,
    DEFAULT_MIN_CLASS_CONF,
    DEFAULT_MIN_CONF,
    UNCLASSIFIED,
    is_megadetector,
    megadetector_items,
    read_megadetector,
    write_megadetector,
)

__all__ = [
    "DEFAULT_CATEGORIES",
    "DEFAULT_EXCLUDE_CATEGORIES",
    "DEFAULT_MIN_CLASS_CONF",
    "DEFAULT_MIN_CONF",
    "SEQUENCE_GAP_SECONDS",
    "UNCLASSIFIED",
    "WHOLE_IMAGE",
    "DetectionFileError",
    "Format",
    "ItemTable",
    "Problem",
    "box_pixels",
    "crop_file_name",
    "crop_item",
    "detect_format",
    "load_document",
    "read_coco",
    "read_detections",
    "read_megadetector",
    "sequence_ids",
    "write_coco",
    "write_detections",
    "write_megadetector",
]

Format = Literal["megadetector", "coco"]

MEGADETECTOR_OPTIONS = frozenset({"min_conf", "categories", "min_class_conf"})
COCO_OPTIONS = frozenset({"exclude_categories"})

EXPECTED = (
    "expected MegaDetector batch output (an object with 'images' whose entries have 'file' "
    "and 'detections') or COCO Camera Traps (an object with 'images' whose entries have "
    "'file_name', 'annotations' and 'categories')"
)


def detect_format(document: Any) -> Format | None:
    """``"megadetector"``, ``"coco"``, or None for anything else.

    >>> detect_format({"images": [{"file": "a.jpg", "detections": []}]})
    'megadetector'
    >>> detect_format({"images": [], "annotations": [], "categories": []})
    'coco'
    >>> detect_format([1, 2]) is None
    True
    """
    if is_coco(document):
        return "coco"
    if is_megadetector(document):
        return "megadetector"
    return None


def _describe_content(document: Any) -> str:
    if isinstance(document, dict):
        keys = ", ".join(repr(key) for key in list(document)[:6]) or "none"
        return f"an object with keys {keys}"
    return f"a JSON {type(document).__name__}"


def _require_format(path: str, document: Any) -> Format:
    found = detect_format(document)
    if found is None:
        raise DetectionFileError(
            path,
            "neither MegaDetector output nor COCO Camera Traps: "
            f"found {_describe_content(document)}",
            fix=EXPECTED,
        )
    return found


def read_detections(
    path: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    on_error: str = "raise",
    **options: Any,
) -> ItemTable:
    """Read a MegaDetector results or COCO Camera Traps file, recognised by its content.

    ``options`` are those of :func:`read_megadetector` (``min_conf``,
    ``categories``, ``min_class_conf``) or of :func:`read_coco`
    (``exclude_categories``); an option of the other format is refused,
    naming the format found, so that no filter is silently ignored.

    Raises
    ------
    DetectionFileError
        When the file is missing, not JSON, or neither format (one line naming
        the file and what was expected), or for bad items (see the readers).
    """
    json_path = os.fspath(path)
    document = load_document(json_path)
    found = _require_format(json_path, document)
    allowed = MEGADETECTOR_OPTIONS if found == "megadetector" else COCO_OPTIONS
    unknown = sorted(set(options) - MEGADETECTOR_OPTIONS - COCO_OPTIONS)
    if unknown:
        raise InvalidArgumentError(f"read_detections got unknown options {unknown}")
    foreign = sorted(set(options) - allowed)
    if foreign:
        name = "MegaDetector output" if found == "megadetector" else "COCO Camera Traps"
        raise InvalidArgumentError(
            f"{json_path!r} is {name}, which takes {', '.join(sorted(allowed))}, "
            f"not {', '.join(foreign)}"
        )
    if found == "megadetector":
        return megadetector_items(
            document, json_path, image_root=image_root, on_error=on_error, **options
        )
    return coco_items(document, json_path, image_root=image_root, on_error=on_error, **options)


def write_detections(
    path: str | os.PathLike[str], document: Any, kept: ItemTable | ArrayLike
) -> None:
    """Write ``document`` (either format) filtered to ``kept``; see the writers."""
    found = detect_format(document)
    if found is None:
        raise InvalidArgumentError(f"document is not a detection file: {EXPECTED}")
    writer = write_megadetector if found == "megadetector" else write_coco
    writer(path, document, kept)
