"""Cutting items out of their frames, and naming the crop files."""

from __future__ import annotations

import os
from collections.abc import Sequence

from PIL import Image

from .._exceptions import DetectionFileError, InvalidArgumentError
from ..loading import (
    _EXPECTED_DECODE_ERRORS,
    _apply_orientation,
    _describe,
    _exif_info,
    _open_formats,
    box_pixels,
    to_rgb,
)
from .items import WHOLE_IMAGE

__all__ = ["box_pixels", "crop_file_name", "crop_item"]

CROP_SUFFIX = ".jpg"


def crop_item(
    frame_path: str | os.PathLike[str],
    box: Sequence[float],
    *,
    source: str | None = None,
    image: str | None = None,
) -> Image.Image:
    """The item's box cut from its frame at full resolution, as an RGB image.

    The EXIF orientation is applied first (boxes are in the oriented frame),
    colours are converted as the feature loader converts them (16-bit scaled,
    transparency on white), and the box is clamped to the frame (at least 1 x 1 px).
    A NaN box gives the whole frame.

    Parameters
    ----------
    frame_path : str or PathLike
        The frame.
    box : sequence of 4 floats
        Normalised ``[x, y, w, h]`` (an :class:`ItemTable` ``box`` row).
    source, image : str, optional
        The JSON file and the image entry's name, for error messages.

    Raises
    ------
    DetectionFileError
        When the frame is missing or cannot be decoded (naming the JSON file
        when ``source`` is given, else the frame).
    """
    frame = os.fspath(frame_path)
    try:
        with Image.open(frame, formats=_open_formats()) as opened:
            orientation, _ = _exif_info(opened)
            opened.load()
            rgb = to_rgb(opened)
    except FileNotFoundError as exc:
        raise _frame_error(frame, "the frame does not exist", source, image) from exc
    except _EXPECTED_DECODE_ERRORS as exc:
        raise _frame_error(
            frame, f"cannot decode the frame: {_describe(exc)}", source, image
        ) from exc
    if orientation != 1:
        rgb = _apply_orientation(rgb, orientation)
    return rgb.crop(box_pixels(box, rgb.width, rgb.height))


def _frame_error(
    frame: str, reason: str, source: str | None, image: str | None
) -> DetectionFileError:
    fix = "check the frame, or the image folder the JSON's file names are relative to"
    if source is None:
        return DetectionFileError(frame, reason, field="pixels", fix=fix)
    return DetectionFileError(
        source, f"{reason} ({frame})", image=image or os.path.basename(frame), field="file", fix=fix
    )


def crop_file_name(
    frame_path: str | os.PathLike[str],
    detection_index: int,
    *,
    root: str | os.PathLike[str] | None = None,
) -> str:
    """File name of the crop of one item: the frame's name and the detection index.

    ``IMG_0001.JPG``'s detection 0 is ``IMG_0001.JPG_det0.jpg`` and its
    whole-image item (index -1) ``IMG_0001.JPG_image.jpg``. The frame's full
    name (with its extension) is kept so that ``a.jpg`` and ``a.png`` in one
    folder never share a crop name: the name is unique per (frame name, index).
    With ``root``, the frame's folders below ``root`` are kept too
    (``cam1/IMG_0001.JPG_det0.jpg``), so frames of the same name in different
    camera folders stay apart.

    >>> crop_file_name("/data/cam1/IMG_0001.JPG", 0)
    'IMG_0001.JPG_det0.jpg'
    >>> crop_file_name("/data/cam1/IMG_0001.JPG", 2, root="/data").replace(os.sep, "/")
    'cam1/IMG_0001.JPG_det2.jpg'
    """
    if isinstance(detection_index, bool) or not isinstance(detection_index, int):
        raise InvalidArgumentError(f"detection_index must be an int, got {detection_index!r}")
    if detection_index < WHOLE_IMAGE:
        raise InvalidArgumentError(
            f"detection_index must be >= 0, or -1 for a whole image, got {detection_index}"
        )
    frame = os.path.abspath(os.fspath(frame_path))
    suffix = "_image" if detection_index == WHOLE_IMAGE else f"_det{detection_index}"
    name = os.path.basename(frame) + suffix + CROP_SUFFIX
    if root is None:
        return name
    folder = os.path.relpath(os.path.dirname(frame), os.path.abspath(os.fspath(root)))
    if folder == os.pardir or folder.startswith(os.pardir + os.sep):
        raise InvalidArgumentError(f"frame {frame!r} is not inside root {os.fspath(root)!r}")
    return name if folder == os.curdir else os.path.join(folder, name)
