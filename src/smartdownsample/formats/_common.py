"""Helpers shared by the MegaDetector and COCO Camera Traps readers and writers."""

from __future__ import annotations

import calendar
import datetime as dt
import json
import logging
import math
import os
from collections.abc import Iterable
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .._exceptions import DetectionFileError, InvalidArgumentError
from ..loading import parse_exif_datetime
from ..outputs import atomic_file
from .items import ItemTable, Problem

logger = logging.getLogger(__name__)

OnError = Literal["raise", "skip"]
ON_ERROR_VALUES = ("raise", "skip")

SKIP_HINT = "or pass on_error='skip' to skip such items"


class ItemError(Exception):
    """One item (or image) cannot be read; becomes a DetectionFileError or a Problem."""

    def __init__(self, reason: str, *, field: str | None = None, fix: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
        self.fix = fix


def check_on_error(on_error: str) -> OnError:
    if on_error not in ON_ERROR_VALUES:
        raise InvalidArgumentError(f"on_error must be 'raise' or 'skip', got {on_error!r}")
    return "skip" if on_error == "skip" else "raise"


class Collector:
    """Turns :class:`ItemError` into an exception (``raise``) or a :class:`Problem` (``skip``)."""

    def __init__(self, path: str, on_error: OnError) -> None:
        self.path = path
        self.on_error = on_error
        self.problems: list[Problem] = []

    def error(self, image: str, exc: ItemError) -> DetectionFileError:
        fix = exc.fix or "fix the file"
        if self.on_error == "raise":  # skipping already: the hint would say what is done
            fix = f"{fix}, {SKIP_HINT}"
        return DetectionFileError(self.path, exc.reason, image=image, field=exc.field, fix=fix)

    def handle(self, image: str, exc: ItemError) -> None:
        """Raise, or record the problem and let the caller skip the item."""
        error = self.error(image, exc)
        if self.on_error == "raise":
            raise error
        logger.warning("skipped: %s", error)
        self.problems.append(Problem(self.path, image, str(error)))


def load_document(path: str | os.PathLike[str]) -> Any:
    """Read a JSON file; every failure is a one-line :class:`DetectionFileError`.

    NaN and Infinity (which Python's ``json`` writes) are accepted as numbers.
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except FileNotFoundError as exc:
        raise DetectionFileError(name, "the file does not exist", fix="check the path") from exc
    except IsADirectoryError as exc:
        raise DetectionFileError(name, "this is a folder", fix="give the JSON file itself") from exc
    except OSError as exc:
        raise DetectionFileError(
            name, f"cannot read the file: {exc.strerror or exc}", fix="check its read rights"
        ) from exc
    try:
        return json.loads(data)
    except json.JSONDecodeError as exc:
        raise DetectionFileError(
            name,
            f"not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})",
            fix="give a MegaDetector results or COCO Camera Traps .json file",
        ) from exc
    except (UnicodeDecodeError, RecursionError, ValueError) as exc:
        raise DetectionFileError(
            name,
            f"not valid JSON ({type(exc).__name__})",
            fix="give a MegaDetector results or COCO Camera Traps .json file",
        ) from exc


def dump_document(path: str | os.PathLike[str], document: Any) -> None:
    """Write ``document`` as UTF-8 JSON atomically (NaN kept as Python writes it)."""
    with atomic_file(path) as handle:
        json.dump(document, handle, indent=1, ensure_ascii=False)
        handle.write("\n")


def root_folder(json_path: str, root: str | os.PathLike[str] | None) -> str:
    """Folder the file names are relative to: ``root``, else the JSON's folder."""
    folder = os.path.dirname(os.path.abspath(json_path)) if root is None else os.fspath(root)
    return os.path.abspath(folder)


def resolve_frame(root: str, name: str) -> str:
    """Absolute path of an image named in the file (relative to ``root`` or absolute).

    Backslashes are folder separators, as the MegaDetector format allows.

    >>> resolve_frame("/data", "cam1\\\\IMG_1.jpg") == os.path.join("/data", "cam1", "IMG_1.jpg")
    True
    """
    normalised = name.replace("\\", "/") if os.sep == "/" else name
    return os.path.abspath(os.path.join(root, normalised))


def number(value: object, field: str, *, positive: bool = False) -> float:
    """A finite JSON number (not a bool), else :class:`ItemError` naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ItemError(
            f"not a number ({type(value).__name__} {_short(value)})",
            field=field,
            fix="write it as a JSON number",
        )
    try:
        result = float(value)
    except OverflowError:  # an integer beyond any float
        result = math.inf
    if not math.isfinite(result):
        shown = _short(value)
        raise ItemError(f"not a finite number ({shown})", field=field, fix="fix the value")
    if positive and result <= 0:
        raise ItemError(f"must be > 0, got {value!r}", field=field, fix="fix the value")
    return result


def text(value: object, field: str) -> str | None:
    """An optional text field (str, or an int written as a number), else ItemError."""
    if value is None:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise ItemError(
        f"not text ({type(value).__name__} {_short(value)})",
        field=field,
        fix="write it as a JSON string",
    )


def _short(value: object) -> str:
    shown = repr(value)
    return shown if len(shown) <= 40 else shown[:37] + "..."


BOX_TOLERANCE = 1e-3
"""How far (as a fraction of the frame) a normalised box may reach outside the
frame and still be read (then clamped): MegaDetector rounds coordinates to 4
decimals, so ``x + w`` can exceed 1 by about 1e-4."""


def check_box(
    values: object, field: str, *, scale: tuple[float, float] = (1.0, 1.0), slack: float = 0.0
) -> tuple[float, float, float, float]:
    """Validate ``[x, y, w, h]`` and return it normalised and clamped to the frame.

    ``scale`` divides pixel boxes (COCO) by the frame's width and height;
    ``slack`` is extra tolerance in the same units as ``values``.
    """
    if not isinstance(values, (list, tuple)) or len(values) != 4:
        raise ItemError(
            f"not a list of 4 numbers [x, y, w, h] ({_short(values)})",
            field=field,
            fix="write the box as [x, y, width, height]",
        )
    x, y, w, h = (number(v, f"{field}[{i}]") for i, v in enumerate(values))
    width, height = scale
    if w <= 0 or h <= 0:
        raise ItemError(
            f"box of {'negative' if min(w, h) < 0 else 'zero'} size (width {w:g}, height {h:g})",
            field=field,
            fix="remove the box or give it a size",
        )
    tol_x = BOX_TOLERANCE + slack / width
    tol_y = BOX_TOLERANCE + slack / height
    nx, ny, nw, nh = x / width, y / height, w / width, h / height
    if nx < -tol_x or ny < -tol_y or nx + nw > 1 + tol_x or ny + nh > 1 + tol_y:
        raise ItemError(
            f"box {list(values)!r} reaches outside the frame"
            + ("" if scale == (1.0, 1.0) else f" of {width:g}x{height:g} px"),
            field=field,
            fix="fix the box or the image's width and height",
        )
    left, top = _clamp(nx, nw), _clamp(ny, nh)
    if left[1] <= 0 or top[1] <= 0:
        raise ItemError(
            f"box {list(values)!r} lies outside the frame",
            field=field,
            fix="fix the box",
        )
    return left[0], top[0], left[1], top[1]


def _clamp(start: float, size: float) -> tuple[float, float]:
    """Start and size of a 1-D interval clamped to 0..1 (untouched when inside, to keep
    the file's values exact)."""
    if start >= 0 and start + size <= 1:
        return start, size
    low = max(start, 0.0)
    return low, min(start + size, 1.0) - low


def parse_datetime(value: object) -> float:
    """Capture time of a metadata ``datetime`` string in POSIX seconds, NaN if unknown.

    Accepts ISO 8601 (``2019-06-20 12:34:56``, ``2019-06-20T12:34:56Z``,
    with fractions and offsets) and the EXIF form ``2019:06:20 12:34:56``.
    Naive times are read as UTC, as the package reads EXIF times, so that
    differences between times are right whatever the local time zone.

    >>> parse_datetime("2019-06-20 12:34:56"), parse_datetime("2019:06:20 12:34:56")
    (1561034096.0, 1561034096.0)
    >>> parse_datetime("2019-06-20T14:34:56+02:00")
    1561034096.0
    >>> import math; math.isnan(parse_datetime("unknown"))
    True
    """
    if not isinstance(value, str):
        return math.nan
    stripped = value.strip()
    exif = parse_exif_datetime(stripped)
    if not math.isnan(exif):
        return exif
    if stripped.endswith(("Z", "z")):
        stripped = stripped[:-1] + "+00:00"
    try:
        moment = dt.datetime.fromisoformat(stripped)
    except ValueError:
        return math.nan
    if moment.tzinfo is not None:
        return moment.timestamp()
    return float(calendar.timegm(moment.timetuple())) + moment.microsecond / 1e6


def source_pairs(kept: ItemTable | ArrayLike) -> NDArray[np.int64]:
    """The ``source`` pairs of ``kept`` (an ItemTable, or an (N, 2) array of pairs)."""
    pairs = kept.source if isinstance(kept, ItemTable) else np.asarray(kept, dtype=np.int64)
    if pairs.size == 0:
        return np.empty((0, 2), dtype=np.int64)
    if pairs.ndim != 2 or pairs.shape[1] != 2:
        raise InvalidArgumentError(
            f"kept must be an ItemTable or (image, item) index pairs, got shape {pairs.shape}"
        )
    return pairs


def kept_by_image(pairs: NDArray[np.int64], n_images: int) -> dict[int, set[int]]:
    """Kept item indices per image index; refuses image indices outside the document."""
    result: dict[int, set[int]] = {}
    for image, item in pairs.tolist():
        if not 0 <= image < n_images:
            raise InvalidArgumentError(
                f"kept refers to image {image}, but the document has {n_images} images "
                "(was it read from another file?)"
            )
        result.setdefault(image, set()).add(item)
    return result


def expect_list(path: str, document: dict[str, Any], key: str, fix: str) -> list[Any]:
    value = document.get(key)
    if not isinstance(value, list):
        raise DetectionFileError(path, f"is {type(value).__name__}, not a list", field=key, fix=fix)
    return value


def category_names(
    path: str, document: dict[str, Any], key: str, *, required: bool
) -> dict[str, str]:
    """A MegaDetector ``{"id": "name"}`` category table, validated."""
    table = document.get(key)
    if table is None and not required:
        return {}
    if not isinstance(table, dict) or not all(isinstance(v, str) for v in table.values()):
        raise DetectionFileError(
            path,
            "missing or not an object of id -> name strings",
            field=key,
            fix='write it as {"1": "animal", ...}',
        )
    return {str(k): v for k, v in table.items()}


def as_names(values: Iterable[str] | str, parameter: str) -> frozenset[str]:
    """A set of names from a parameter that takes several (a lone string is one name)."""
    names = (values,) if isinstance(values, str) else tuple(values)
    if not all(isinstance(name, str) for name in names):
        raise InvalidArgumentError(f"{parameter} must be names (strings), got {values!r}")
    return frozenset(names)
