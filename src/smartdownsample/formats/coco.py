"""COCO Camera Traps: read annotations as items, write the kept ones back.

The format (used by most public camera-trap data sets, e.g. on LILA)::

    {"info": {...},
     "images": [{"id": "a1", "file_name": "cam1/IMG_0001.jpg",   # relative to the image folder
                 "width": 1920, "height": 1080,                     # optional
                 "location": "cam1", "seq_id": "s17", "frame_num": 0,
                 "datetime": "2019-06-20 12:34:56"}],               # all optional
     "annotations": [{"id": "n1", "image_id": "a1", "category_id": 3,
                      "bbox": [x, y, w, h]}],                       # bbox optional, in pixels
     "categories": [{"id": 3, "name": "deer"}, {"id": 0, "name": "empty"}]}

An annotation with a box is one item; an image whose (not excluded)
annotations have no box is one whole-image item, labelled with the first such
annotation's category. Box-less annotations of an image that has boxes are
not items (its boxes are). An annotation's ``score`` (or ``conf``), when
present, is the item's confidence.

Frame sizes and orientation
---------------------------
Pixel boxes are normalised by the image's ``width`` and ``height``. Where the
JSON lacks them they are read from the file's header (Pillow, no decode) and,
for EXIF orientations 5-8 (rotated by 90 degrees), swapped: boxes and sizes
are taken in the coordinates of the *oriented* frame, as it is shown. That is
what annotation tools draw on and what COCO training tools assume
(detectron2 applies the EXIF orientation on reading and checks the image's
size against the annotated ``width``/``height``; Ultralytics reads the
"EXIF-corrected" size), and it is the frame MegaDetector detects on, so
items of both formats share one coordinate system and crops are cut from the
oriented frame. Sizes written in the JSON are trusted as they are.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterable
from typing import Any

from numpy.typing import ArrayLike
from PIL import Image

from .._exceptions import DetectionFileError, InvalidArgumentError
from ..loading import _EXPECTED_DECODE_ERRORS, _describe, _exif_info, _open_formats
from ._common import (
    Collector,
    ItemError,
    as_names,
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
from .items import WHOLE_IMAGE, ItemTable

__all__ = [
    "ANNOTATION_SLACK_PX",
    "DEFAULT_EXCLUDE_CATEGORIES",
    "coco_items",
    "frame_size",
    "is_coco",
    "read_coco",
    "write_coco",
]

logger = logging.getLogger(__name__)

DEFAULT_EXCLUDE_CATEGORIES = ("empty",)
"""Category names that are not items by default: COCO Camera Traps files label
empty frames with an ``empty`` annotation."""

ANNOTATION_SLACK_PX = 1.0
"""How many pixels a box may reach outside the frame and still be read (then
clamped): annotation tools round and often let a box touch the last pixel."""

ROTATED_ORIENTATIONS = frozenset({5, 6, 7, 8})
"""EXIF orientations that turn the frame by 90 degrees (width and height swap)."""

FORMAT_FIX = "give a COCO Camera Traps file (images, annotations, categories)"
SIZE_FIX = "check image_root, or add width and height to the image entry"

Box = tuple[float, float, float, float]


def is_coco(document: Any) -> bool:
    """True if ``document`` looks like COCO Camera Traps: images with ``file_name``,
    ``annotations`` and ``categories``.

    >>> is_coco({"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": [],
    ...          "categories": []})
    True
    >>> is_coco({"images": [{"file": "a.jpg", "detections": []}]})
    False
    """
    if not isinstance(document, dict):
        return False
    if not all(isinstance(document.get(key), list) for key in ("images", "annotations")):
        return False
    if not isinstance(document.get("categories"), list):
        return False
    images = [entry for entry in document["images"] if isinstance(entry, dict)]
    return not images or any("file_name" in entry for entry in images)


def frame_size(frame: str) -> tuple[int, int]:
    """(width, height) of the oriented frame, from its header (the pixels are not decoded).

    Raises :class:`ItemError` when the file is missing or not an image.
    """
    try:
        with Image.open(frame, formats=_open_formats()) as image:
            width, height = image.size
            orientation, _ = _exif_info(image)
    except FileNotFoundError as exc:
        raise ItemError(f"frame {frame!r} not found", field="file_name", fix=SIZE_FIX) from exc
    except _EXPECTED_DECODE_ERRORS as exc:
        raise ItemError(
            f"cannot read the size of frame {frame!r}: {_describe(exc)}",
            field="file_name",
            fix=SIZE_FIX,
        ) from exc
    if orientation in ROTATED_ORIENTATIONS:
        width, height = height, width
    return width, height


def _categories(path: str, document: dict[str, Any]) -> dict[Any, str]:
    names: dict[Any, str] = {}
    for k, category in enumerate(document["categories"]):
        if (
            not isinstance(category, dict)
            or not isinstance(category.get("name"), str)
            or isinstance(category.get("id"), (bool, float, list, dict))
            or category.get("id") is None
        ):
            raise DetectionFileError(
                path,
                "not an object with an id and a name",
                field=f"categories[{k}]",
                fix='write it as {"id": 1, "name": "deer"}',
            )
        names[category["id"]] = category["name"]
    return names


def _image_size(entry: dict[str, Any], frame: str) -> tuple[float, float]:
    if entry.get("width") is not None and entry.get("height") is not None:
        return (
            number(entry["width"], "width", positive=True),
            number(entry["height"], "height", positive=True),
        )
    width, height = frame_size(frame)
    return float(width), float(height)


def _confidence(annotation: dict[str, Any], field: str) -> float | None:
    for key in ("score", "conf"):
        if annotation.get(key) is not None:
            return number(annotation[key], f"{field}.{key}")
    return None


class _Reader:
    """One pass over a COCO Camera Traps document."""

    def __init__(
        self,
        path: str,
        document: dict[str, Any],
        root: str,
        excluded: frozenset[str],
        on_error: str,
    ) -> None:
        self.path = path
        self.document = document
        self.root = root
        self.excluded = excluded
        self.collector = Collector(path, check_on_error(on_error))
        self.names = _categories(path, document)
        self.images = expect_list(path, document, "images", FORMAT_FIX)
        self.annotations = expect_list(path, document, "annotations", FORMAT_FIX)
        self.image_index: dict[Any, int] = {}
        self.boxed: dict[int, list[int]] = {}
        self.boxless: dict[int, list[int]] = {}
        self.bad_times = 0

    def image_name(self, index: int) -> str:
        entry = self.images[index]
        name = entry.get("file_name") if isinstance(entry, dict) else None
        return name if isinstance(name, str) else f"images[{index}]"

    def index_images(self) -> None:
        for i, entry in enumerate(self.images):
            name = self.image_name(i)
            image_id = entry.get("id") if isinstance(entry, dict) else None
            problem = None
            if not isinstance(entry, dict) or not isinstance(entry.get("file_name"), str):
                problem = ItemError("has no 'file_name'", field="file_name", fix=FORMAT_FIX)
            elif image_id is None or isinstance(image_id, (bool, float, list, dict)):
                problem = ItemError("missing or not a string or integer", field="id")
            elif image_id in self.image_index:
                problem = ItemError(f"image id {image_id!r} is used twice", field="id")
            if problem is not None:
                self.collector.handle(name, problem)
                continue
            self.image_index[image_id] = i

    def index_annotations(self) -> None:
        for a, annotation in enumerate(self.annotations):
            field = f"annotations[{a}]"
            if not isinstance(annotation, dict):
                self.collector.handle(field, ItemError("not an object", field=field))
                continue
            image_id = annotation.get("image_id")
            index = self.image_index.get(image_id) if isinstance(image_id, (int, str)) else None
            if index is None:
                self.collector.handle(
                    field,
                    ItemError(f"image_id {image_id!r} is not an image", field=f"{field}.image_id"),
                )
                continue
            category_id = annotation.get("category_id")
            name = (
                self.names.get(category_id)
                if isinstance(category_id, (int, str)) and not isinstance(category_id, bool)
                else None
            )
            if name is None:
                self.collector.handle(
                    self.image_name(index),
                    ItemError(
                        f"category_id {category_id!r} is not in categories",
                        field=f"{field}.category_id",
                        fix="add the category to categories",
                    ),
                )
                continue
            if name.casefold() in self.excluded:
                continue
            has_box = annotation.get("bbox") is not None
            (self.boxed if has_box else self.boxless).setdefault(index, []).append(a)

    def metadata(self, entry: dict[str, Any]) -> tuple[str | None, str | None, float]:
        moment = parse_datetime(entry.get("datetime"))
        if entry.get("datetime") is not None and math.isnan(moment):
            self.bad_times += 1
        return (
            text(entry.get("seq_id"), "seq_id"),
            text(entry.get("location"), "location"),
            moment,
        )

    def image_rows(self, index: int) -> list[Any]:
        entry = self.images[index]
        frame = resolve_frame(self.root, entry["file_name"])
        sequence, location, moment = self.metadata(entry)
        rows: list[Any] = []
        if index not in self.boxed:
            first = self.annotations[self.boxless[index][0]]
            name = self.names[first["category_id"]]
            source = (index, WHOLE_IMAGE)
            return [(frame, None, None, name, name, sequence, location, moment, source)]
        size = _image_size(entry, frame)
        for a in self.boxed[index]:
            annotation = self.annotations[a]
            field = f"annotations[{a}]"
            try:
                box = check_box(
                    annotation["bbox"], f"{field}.bbox", scale=size, slack=ANNOTATION_SLACK_PX
                )
                conf = _confidence(annotation, field)
            except ItemError as exc:
                self.collector.handle(entry["file_name"], exc)
                continue
            name = self.names[annotation["category_id"]]
            rows.append((frame, box, conf, name, name, sequence, location, moment, (index, a)))
        return rows

    def read(self) -> ItemTable:
        self.index_images()
        self.index_annotations()
        rows: list[Any] = []
        for index in sorted(set(self.boxed) | set(self.boxless)):
            try:
                rows.extend(self.image_rows(index))
            except ItemError as exc:
                self.collector.handle(self.image_name(index), exc)
        if self.bad_times:
            logger.warning(
                "%s: %d images have a datetime that is not a date and time; "
                "their capture times are taken as unknown",
                self.path,
                self.bad_times,
            )
        return ItemTable.from_rows(rows, self.collector.problems)


def coco_items(
    document: Any,
    json_path: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    exclude_categories: Iterable[str] | str = DEFAULT_EXCLUDE_CATEGORIES,
    on_error: str = "raise",
) -> ItemTable:
    """The items of an already loaded COCO Camera Traps document (see :func:`read_coco`)."""
    path = os.fspath(json_path)
    if not is_coco(document):
        raise DetectionFileError(
            path,
            "not COCO Camera Traps (images[].file_name, annotations, categories)",
            fix=FORMAT_FIX,
        )
    excluded = frozenset(name.casefold() for name in as_names(exclude_categories, "exclude"))
    reader = _Reader(path, document, root_folder(path, image_root), excluded, on_error)
    return reader.read()


def read_coco(
    path: str | os.PathLike[str],
    *,
    image_root: str | os.PathLike[str] | None = None,
    exclude_categories: Iterable[str] | str = DEFAULT_EXCLUDE_CATEGORIES,
    on_error: str = "raise",
) -> ItemTable:
    """Read a COCO Camera Traps file: one item per box, or per image without boxes.

    Parameters
    ----------
    path : str or PathLike
        The JSON file.
    image_root : str or PathLike, optional
        Folder the ``file_name`` values are relative to (default: the JSON's folder).
    exclude_categories : iterable of str, default ("empty",)
        Category names (compared case-insensitively) whose annotations are not items.
    on_error : {"raise", "skip"}
        ``"raise"``: a bad annotation or image (box outside the frame or of
        zero size, unknown category, a frame whose size is needed but that
        cannot be read, a non-numeric field) stops with a
        :class:`~smartdownsample.DetectionFileError` naming file, image and
        field. ``"skip"``: it is skipped, logged and listed in the table's
        ``problems``. A file that is not COCO Camera Traps always raises.

    Frames are opened (header only) just when a box must be normalised and
    the image entry has no ``width`` and ``height``.
    """
    json_path = os.fspath(path)
    return coco_items(
        load_document(json_path),
        json_path,
        image_root=image_root,
        exclude_categories=exclude_categories,
        on_error=on_error,
    )


def write_coco(path: str | os.PathLike[str], document: Any, kept: ItemTable | ArrayLike) -> None:
    """Write ``document`` filtered to the ``kept`` items, atomically.

    Kept: the images holding a kept item (in their order), the annotations of
    kept boxes and, for a kept whole-image item, the image's box-less
    annotations. ``info``, ``categories`` and every other field stay as they were.

    Parameters
    ----------
    path : str or PathLike
        The JSON file to write (parent folders are created).
    document : dict
        The document the items were read from (it is not modified).
    kept : ItemTable or array of (image, annotation) index pairs
        The items to keep (their ``source`` column; -1 is a whole image).
    """
    if not is_coco(document):
        raise InvalidArgumentError(
            "document must be the COCO Camera Traps file the items came from"
        )
    images, annotations = document["images"], document["annotations"]
    wanted = kept_by_image(source_pairs(kept), len(images))
    keep: set[int] = set()
    whole_ids: list[Any] = []
    for i, items in wanted.items():
        for a in items:
            if a == WHOLE_IMAGE:
                whole_ids.append(images[i]["id"])
            elif not 0 <= a < len(annotations) or annotations[a].get("image_id") != images[i]["id"]:
                raise InvalidArgumentError(
                    f"kept refers to annotation {a} of image {i}, which is not one of its "
                    "annotations (was it read from another file?)"
                )
            else:
                keep.add(a)
    for a, annotation in enumerate(annotations):
        if annotation.get("bbox") is None and annotation.get("image_id") in whole_ids:
            keep.add(a)
    out = dict(document)
    out["images"] = [entry for i, entry in enumerate(images) if i in wanted]
    out["annotations"] = [ann for a, ann in enumerate(annotations) if a in keep]
    dump_document(path, out)
