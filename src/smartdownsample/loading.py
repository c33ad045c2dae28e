"""Stage 1: decode each image once, small, into a canonical RGB thumbnail.

Every image, whatever its format or mode, becomes one ``side x side`` RGB
``uint8`` thumbnail (``side`` is :func:`thumbnail_side` of the hash size).
All features are computed from that thumbnail, so they do not depend on
which decoder produced it.

Decoding is done at the smallest scale the codec allows:

* JPEG: DCT-domain downscaling (Pillow's ``draft``), which skips most of the
  inverse DCT work; a 1920x1080 frame is decoded as 240x135.
* Other formats are decoded fully and reduced with an area filter.

Colour handling fixes the defects of the 1.x release: 16-bit images are
scaled (not clipped to white), transparent pixels are composited on white
(not turned black), palette, CMYK, YCCK, LA and 1-bit images are converted
with Pillow's colour conversions, and the EXIF orientation is applied.
"""

from __future__ import annotations

import calendar
import io
import logging
import math
import os
import struct
import time
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from ._exceptions import ImageLoadError

__all__ = [
    "DecodedImage",
    "decode_bytes",
    "decode_file",
    "parse_exif_datetime",
    "thumbnail_side",
]

logger = logging.getLogger(__name__)

MIN_THUMBNAIL_SIDE = 32
"""Side of the canonical thumbnail for hash_size <= 8: the 1.x release computed
its colour statistics on a 32x32 resize, and 32 px leaves more than three
source pixels per cell of the 9x8 dHash grid."""

THUMBNAIL_CELLS_PER_HASH = 4
"""For larger hash sizes the thumbnail grows to 4 px per hash cell, so each
dHash cell still averages over several pixels."""

WHITE_BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited on white, as image viewers show them
(1.x turned them black, which made every transparent crop a 'night' image)."""

EXIF_ORIENTATION_TAG = 0x0112
EXIF_DATETIME_TAG = 0x0132
EXIF_IFD_POINTER = 0x8769
EXIF_DATETIME_ORIGINAL_TAG = 0x9003
EXIF_DATETIME_DIGITIZED_TAG = 0x9004
EXIF_DATETIME_FORMAT_LENGTH = 19  # "YYYY:MM:DD HH:MM:SS"


def thumbnail_side(hash_size: int) -> int:
    """Side in pixels of the canonical thumbnail used for a hash size.

    Examples
    --------
    >>> thumbnail_side(8), thumbnail_side(16)
    (32, 68)
    """
    return max(MIN_THUMBNAIL_SIDE, THUMBNAIL_CELLS_PER_HASH * (hash_size + 1))


@dataclass(frozen=True)
class DecodedImage:
    """One image reduced to what feature extraction needs.

    Attributes
    ----------
    thumbnail : numpy.ndarray
        ``(side, side, 3)`` uint8 RGB, EXIF orientation applied.
    width, height : int
        Size of the stored image in pixels (before orientation).
    capture_time : float
        EXIF capture time as seconds since the epoch (naive local time read
        as UTC), or NaN when the file has none.
    """

    thumbnail: NDArray[np.uint8]
    width: int
    height: int
    capture_time: float


def parse_exif_datetime(value: object) -> float:
    """Parse an EXIF ``"YYYY:MM:DD HH:MM:SS"`` string into epoch seconds.

    Returns NaN for anything that is not a valid EXIF date and time.

    Examples
    --------
    >>> parse_exif_datetime("2024:05:01 13:22:05")
    1714569725.0
    >>> import math; math.isnan(parse_exif_datetime("0000:00:00 00:00:00"))
    True
    """
    if isinstance(value, bytes):
        value = value.decode("ascii", errors="replace")
    if not isinstance(value, str):
        return math.nan
    text = value.strip().rstrip("\x00")[:EXIF_DATETIME_FORMAT_LENGTH]
    try:
        parsed = time.strptime(text, "%Y:%m:%d %H:%M:%S")
    except ValueError:
        return math.nan
    return float(calendar.timegm(parsed))


def _exif_info(image: Image.Image) -> tuple[int, float]:
    """Return (orientation, capture time) from an opened image's EXIF."""
    try:
        exif = image.getexif()
    except (OSError, ValueError, SyntaxError, KeyError, TypeError) as exc:
        # A damaged EXIF block must not lose the image: the pixels are fine.
        logger.debug(
            "ignoring unreadable EXIF in %s: %s", getattr(image, "filename", "") or "<bytes>", exc
        )
        return 1, math.nan
    if not exif:
        return 1, math.nan
    orientation = exif.get(EXIF_ORIENTATION_TAG, 1)
    if not isinstance(orientation, int) or not 1 <= orientation <= 8:
        orientation = 1
    capture = math.nan
    try:
        sub = exif.get_ifd(EXIF_IFD_POINTER)
    except (OSError, ValueError, SyntaxError, KeyError, TypeError):
        sub = {}
    for source, tag in (
        (sub, EXIF_DATETIME_ORIGINAL_TAG),
        (sub, EXIF_DATETIME_DIGITIZED_TAG),
        (exif, EXIF_DATETIME_TAG),
    ):
        capture = parse_exif_datetime(source.get(tag))
        if not math.isnan(capture):
            break
    return orientation, capture


def _high_bit_depth_to_l(image: Image.Image) -> Image.Image:
    """Scale a 16-bit or 32-bit grayscale image to 8 bits instead of clipping it."""
    array = np.asarray(image)
    if image.mode == "F":
        finite = array[np.isfinite(array)]
        peak = float(finite.max()) if finite.size else 0.0
        # Float images are stored either in [0, 1] or in [0, 255] by convention.
        scale = 255.0 if peak <= 1.0 else 1.0
        scaled = np.clip(np.nan_to_num(array) * scale, 0, 255)
    else:
        values = array.astype(np.int64)
        peak = int(values.max()) if values.size else 0
        # 16-bit data (I;16 and the 'I' mode Pillow uses for 16-bit PNG) is
        # scaled by 1/256; deeper data by its own bit depth.
        bits = max(16, int(peak).bit_length())
        scaled = np.clip(values, 0, None) >> (bits - 8)
    return Image.fromarray(scaled.astype(np.uint8), mode="L")


def _to_rgb(image: Image.Image) -> Image.Image:
    """Convert any Pillow mode to RGB, compositing transparency on white."""
    mode = image.mode
    if mode == "RGB":
        return image
    if mode in ("I", "I;16", "I;16L", "I;16B", "I;16N", "F"):
        return _high_bit_depth_to_l(image).convert("RGB")
    has_alpha = mode in ("RGBA", "LA", "La", "RGBa", "PA") or (
        mode in ("P", "L", "RGB", "1") and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (*WHITE_BACKGROUND, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _reduce(image: Image.Image, side: int) -> NDArray[np.uint8]:
    """Area-average an RGB image down (or scale it up) to side x side."""
    if image.size != (side, side):
        downscaling = image.width >= side and image.height >= side
        resample = Image.Resampling.BOX if downscaling else Image.Resampling.BILINEAR
        image = image.resize((side, side), resample)
    return np.asarray(image, dtype=np.uint8)


def _decode_opened(image: Image.Image, side: int, name: str) -> DecodedImage:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageLoadError(name, f"image declares an empty size {width}x{height}")
    orientation, capture = _exif_info(image)
    if image.format == "JPEG":
        # DCT-domain scaling: decode at 1/2, 1/4 or 1/8 as long as the result
        # stays at least side x side. Colour conversion happens in the codec.
        image.draft("RGB", (side, side))
    image.load()  # multi-frame files (GIF, TIFF) give their first frame
    rgb = _to_rgb(image)
    if orientation != 1:
        rgb = _apply_orientation(rgb, orientation)
    return DecodedImage(_reduce(rgb, side), width, height, capture)


_ORIENTATION_OPS: dict[int, tuple[Image.Transpose, ...]] = {
    2: (Image.Transpose.FLIP_LEFT_RIGHT,),
    3: (Image.Transpose.ROTATE_180,),
    4: (Image.Transpose.FLIP_TOP_BOTTOM,),
    5: (Image.Transpose.TRANSPOSE,),
    6: (Image.Transpose.ROTATE_270,),
    7: (Image.Transpose.TRANSVERSE,),
    8: (Image.Transpose.ROTATE_90,),
}
"""EXIF orientation value -> Pillow transposition that shows the image upright."""


def _apply_orientation(image: Image.Image, orientation: int) -> Image.Image:
    for op in _ORIENTATION_OPS.get(orientation, ()):
        image = image.transpose(op)
    return image


_EXPECTED_DECODE_ERRORS = (
    OSError,
    ValueError,
    SyntaxError,
    EOFError,
    MemoryError,
    IndexError,
    KeyError,
    TypeError,
    ZeroDivisionError,
    AttributeError,
    struct.error,
    Image.DecompressionBombError,
    UnidentifiedImageError,
)
"""What Pillow's decoders are known to raise on damaged or hostile input.
Each is turned into an ImageLoadError naming the file; anything else is a bug
and propagates."""


def _describe(exc: BaseException) -> str:
    if isinstance(exc, Image.DecompressionBombError):
        return (
            f"{exc} Raise PIL.Image.MAX_IMAGE_PIXELS if you trust this file, or skip it "
            "with image_loading_errors='skip'"
        )
    if isinstance(exc, UnidentifiedImageError):
        return "not an image format Pillow can read (wrong extension, video or damaged file?)"
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def decode_bytes(data: bytes, side: int, name: str = "<bytes>") -> DecodedImage:
    """Decode an encoded image held in memory.

    Parameters
    ----------
    data : bytes
        The encoded file content.
    side : int
        Side of the thumbnail to produce (see :func:`thumbnail_side`).
    name : str
        Name used in error messages.

    Raises
    ------
    ImageLoadError
        When the data is empty, not an image, damaged or too large.

    Examples
    --------
    >>> import io
    >>> from PIL import Image
    >>> buffer = io.BytesIO()
    >>> Image.new("RGB", (100, 60), (200, 30, 30)).save(buffer, "PNG")
    >>> decode_bytes(buffer.getvalue(), 32).thumbnail[0, 0].tolist()
    [200, 30, 30]
    """
    if not data:
        raise ImageLoadError(name, "the file is empty (0 bytes)", hint="half-copied card?")
    try:
        with Image.open(io.BytesIO(data)) as image:
            return _decode_opened(image, side, name)
    except ImageLoadError:
        raise
    except _EXPECTED_DECODE_ERRORS as exc:
        raise ImageLoadError(name, _describe(exc)) from exc


def decode_file(path: str | os.PathLike[str], side: int) -> DecodedImage:
    """Read and decode one image file into a :class:`DecodedImage`.

    The file is opened read-only and read in one call, which suits network
    file systems. Errors name the file.

    Examples
    --------
    >>> import tempfile, os
    >>> from PIL import Image
    >>> folder = tempfile.mkdtemp()
    >>> path = os.path.join(folder, "grey.png")
    >>> Image.new("L", (50, 50), 90).save(path)
    >>> decode_file(path, 32).thumbnail.shape
    (32, 32, 3)
    """
    name = os.fspath(path)
    try:
        with open(name, "rb") as handle:
            data = handle.read()
    except IsADirectoryError as exc:
        raise ImageLoadError(name, "this is a folder, not an image file") from exc
    except FileNotFoundError as exc:
        reason = "the file does not exist (moved or deleted?)"
        if os.path.islink(name):
            reason = "broken symbolic link"
        raise ImageLoadError(name, reason) from exc
    except PermissionError as exc:
        raise ImageLoadError(name, "permission denied (check the file's read rights)") from exc
    except OSError as exc:
        raise ImageLoadError(name, f"could not read the file: {exc}") from exc
    return decode_bytes(data, side, name)
