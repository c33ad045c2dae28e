"""Stage 1: decode each image once, small, into a canonical RGB thumbnail.

Every image, whatever its format or mode, becomes one ``side x side`` RGB
``uint8`` thumbnail (``side`` is :func:`thumbnail_side` of the hash size).
All features are computed from that thumbnail, so they do not depend on
which decoder produced it.

Decoding is done at the smallest scale the codec allows:

* JPEG: DCT-domain downscaling by 1/2, 1/4 or 1/8, which skips most of the
  inverse DCT work; a 1920x1080 frame is decoded as 240x135.
* Other formats are decoded fully and reduced with an area filter.

JPEG fast path
--------------
With ``simplejpeg`` (a dependency; its wheels bundle libjpeg-turbo on
Windows, macOS and Linux; without it everything goes through Pillow),
baseline and progressive YCbCr, RGB and grayscale JPEGs are decoded by it
instead of Pillow, at exactly the scale Pillow's ``draft`` would pick,
and the EXIF orientation and capture time are read from the APP1 segment by
a small parser. Measured per core on synthetic camera-trap files
(``benchmarks/bench_speed.py``), a bare scaled decode with Pillow's ``draft``
costs 1.29x simplejpeg's on 150-600 px crops of ~50 KiB and 1.05x on
1920x1080 frames of ~750 KiB (OpenCV's ``IMREAD_REDUCED_*`` is as fast as
simplejpeg but a 40 MB dependency that applies EXIF rotation its own way;
PyTurboJPEG needs a system libturbojpeg, which pip cannot install). The whole
fast path (read, header, EXIF, decode, thumbnail) costs 0.22 ms per ~13 KiB
crop against 0.37 ms through Pillow.

Everything else goes through Pillow: other formats, CMYK and YCCK JPEGs,
files larger than ``PIL.Image.MAX_IMAGE_PIXELS`` (so Pillow's
decompression-bomb rules apply), files whose EXIF the small parser does not
fully understand (several EXIF segments, orientation only in XMP, odd or
out-of-range tags), and files libjpeg-turbo rejects for reasons other than
those below, whose error message then comes from Pillow. Both paths give the
same thumbnail, capture time and size: same libjpeg-turbo scaling, same
colour conversion, same area reduction (pinned by the tests, including a
fuzz test of the EXIF parser against Pillow's). Deliberate differences: a
JPEG whose picture data libjpeg-turbo finds damaged (bad Huffman code, a
scan cut short before the end marker, as on a half-written card) is
reported as unreadable on the fast path, where Pillow silently decodes grey
blocks; and a truncated JPEG is reported even when the caller set
``ImageFile.LOAD_TRUNCATED_IMAGES``.

Colour handling fixes the defects of the 1.x release: 16-bit images are
scaled (not clipped to white), transparent pixels are composited on white
(not turned black), palette, CMYK, YCCK, LA and 1-bit images are converted
with Pillow's colour conversions, and the EXIF orientation is applied.
"""

from __future__ import annotations

import calendar
import datetime as dt
import errno
import io
import logging
import math
import os
import re
import stat
import struct
import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, UnidentifiedImageError

from ._exceptions import ImageLoadError

try:  # libjpeg-turbo scaled decoding without Pillow's overhead; Pillow if it is missing
    import simplejpeg as _simplejpeg
except ImportError:  # pragma: no cover - depends on the installation
    _simplejpeg = None

__all__ = [
    "FAST_JPEG_AVAILABLE",
    "DecodedImage",
    "box_pixels",
    "decode_bytes",
    "decode_file",
    "jpeg_decoder",
    "parse_exif_datetime",
    "thumbnail_side",
    "to_rgb",
]

logger = logging.getLogger(__name__)

MIN_THUMBNAIL_SIDE = 32
"""Side of the canonical thumbnail for hash_size <= 8: the 1.x release computed
its colour statistics on a 32x32 resize, and 32 px leaves more than three
source pixels per cell of the 9x8 dHash grid."""

THUMBNAIL_CELLS_PER_HASH = 4
"""For hash sizes above :data:`BASE_HASH_SIZE` the thumbnail grows to 4 px per
hash cell, so each dHash cell still averages over several pixels."""

BASE_HASH_SIZE = 8
"""Hash sizes up to this one use the :data:`MIN_THUMBNAIL_SIDE` thumbnail."""

WHITE_BACKGROUND = (255, 255, 255)
"""Transparent pixels are composited on white, as image viewers show them
(1.x turned them black, which made every transparent crop a 'night' image)."""

EXIF_ORIENTATION_TAG = 0x0112
EXIF_DATETIME_TAG = 0x0132
EXIF_IFD_POINTER = 0x8769
EXIF_DATETIME_ORIGINAL_TAG = 0x9003
EXIF_DATETIME_DIGITIZED_TAG = 0x9004
EXIF_DATETIME_FORMAT_LENGTH = 19  # "YYYY:MM:DD HH:MM:SS"
_EXIF_DATETIME_PATTERN = re.compile(
    r"([0-9]{4}):([0-9]{2}):([0-9]{2}) ([0-9]{2}):([0-9]{2}):([0-9]{2})\Z"
)

FAST_JPEG_AVAILABLE: bool = _simplejpeg is not None
"""True when the simplejpeg fast path for JPEG files is installed."""

MAX_IMAGE_FILE_BYTES = 64 * 1024 * 1024
"""Most bytes read for one image (64 MiB). A camera-trap frame is under
50 MB (a 1920x1080 JPEG ~0.8 MB, a 24 MP JPEG ~12 MB, a 16-bit 24 MP TIFF
~48 MB); a larger file named like an image is a video, a disk image or a
sparse file, and reading it whole cost the 1.x release gigabytes of memory.
Larger files are reported as unreadable without being read."""

JPEG_MARKER_PREFIX = 0xFF
"""Every JPEG marker is this byte followed by the marker's code (below)."""

JPEG_SOI = 0xD8  # start of image
JPEG_APP1 = 0xE1  # application segment 1: EXIF or XMP
JPEG_SOS = 0xDA  # start of scan: the entropy-coded picture data follows
JPEG_EOI = 0xD9  # end of image
JPEG_TEM = 0x01  # a standalone marker without a length
JPEG_RST0, JPEG_RST7 = 0xD0, 0xD7  # restart markers, standalone too

JPEG_SIGNATURE = bytes((JPEG_MARKER_PREFIX, JPEG_SOI, JPEG_MARKER_PREFIX))
"""Start of image marker followed by the first marker's 0xFF: every JPEG file starts so."""

JPEG_START_OF_SCAN = bytes((JPEG_MARKER_PREFIX, JPEG_SOS))
JPEG_END_OF_IMAGE = bytes((JPEG_MARKER_PREFIX, JPEG_EOI))

FAST_JPEG_COLOURSPACES = frozenset({"YCbCr", "Gray", "RGB"})
"""JPEG colour spaces the fast path converts exactly as Pillow does. CMYK and
YCCK (Adobe, often stored inverted) are left to Pillow's conversion."""

DRAFT_SCALES = (8, 4, 2, 1)
"""DCT scale denominators Pillow's ``draft`` chooses from, largest first."""

EXIF_HEADER = b"Exif\x00\x00"
XMP_HEADER = b"http://ns.adobe.com/xap/1.0/\x00"
TIFF_SHORT, TIFF_LONG, TIFF_ASCII, TIFF_UNDEFINED, TIFF_IFD = 3, 4, 2, 7, 13
TIFF_ENTRY_SIZE = 12
TIFF_INLINE_SIZE = 4  # values up to 4 bytes sit in the entry itself
TIFF_TYPE_SIZES = {1: 1, 2: 1, 3: 2, 4: 4, 5: 8, 6: 1, 7: 1, 8: 2, 9: 4, 10: 8, 11: 4, 12: 8, 13: 4}
"""Bytes per value of each TIFF field type the EXIF parser accepts."""

TRUNCATED_WARNING = "premature end of jpeg file"
"""libjpeg's warning for a file that ends inside the picture data. Reported as
an unreadable file whatever ``PIL.ImageFile.LOAD_TRUNCATED_IMAGES`` says:
training scripts often set it to True process-wide, and a grey-filled
half-copied image must not silently enter the selection."""

DAMAGED_SCAN_WARNINGS = (
    "premature end of data segment",
    "bad huffman code",
    "bad arithmetic code",
    "instead of rst",
)
"""libjpeg warnings (lower case) that mean the entropy-coded picture data is
damaged, as on a half-written card sector: the decoder fills the rest with
grey, and Pillow hides the warning. The fast path reports such files as
unreadable instead of computing features of a wrong picture. (A scan cut
short is always noticed; a zero-filled sector only when it breaks the
Huffman stream.)"""


def thumbnail_side(hash_size: int) -> int:
    """Side in pixels of the canonical thumbnail used for a hash size.

    Examples
    --------
    >>> thumbnail_side(8), thumbnail_side(16)
    (32, 68)
    """
    if hash_size <= BASE_HASH_SIZE:
        return MIN_THUMBNAIL_SIDE
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
    regions: NDArray[np.uint8] | None = None
    """``(K, side, side, 3)`` thumbnails of the boxes asked for, or None."""
    orientation: int = 1
    """EXIF orientation applied (1: stored upright)."""

    @property
    def upright_size(self) -> tuple[int, int]:
        """Width and height as shown, EXIF orientation applied (what boxes refer to)."""
        return _upright_size(self.width, self.height, self.orientation)


Boxes = NDArray[np.float64]
"""``(K, 4)`` boxes ``[x, y, w, h]`` as fractions of the upright image (EXIF
orientation applied), as detectors such as MegaDetector report them."""

ROTATING_ORIENTATIONS = frozenset({5, 6, 7, 8})
"""EXIF orientations that swap width and height."""


def _upright_size(width: int, height: int, orientation: int) -> tuple[int, int]:
    return (height, width) if orientation in ROTATING_ORIENTATIONS else (width, height)


def _region_scale(width: int, height: int, orientation: int, boxes: Boxes, side: int) -> int:
    """The largest DCT scale denominator that leaves every box at least ``side`` pixels.

    Examples
    --------
    >>> import numpy as np
    >>> _region_scale(1920, 1080, 1, np.array([[0.1, 0.1, 0.2, 0.3]]), 32)  # 384 x 324 px
    8
    >>> _region_scale(1920, 1080, 1, np.array([[0.5, 0.5, 0.02, 0.05]]), 32)  # 38 x 54 px
    1
    """
    upright_w, upright_h = _upright_size(width, height, orientation)
    smallest = min(float(np.min(boxes[:, 2])) * upright_w, float(np.min(boxes[:, 3])) * upright_h)
    ratio = int(smallest // side)
    return next((scale for scale in DRAFT_SCALES if ratio >= scale), 1)


def box_pixels(
    box: Sequence[float] | NDArray[np.float64], width: int, height: int
) -> tuple[int, int, int, int]:
    """Pixel rectangle ``(left, top, right, bottom)`` of a normalised box, clamped to the frame.

    Edges are rounded to the nearest pixel, as Pillow's ``crop`` and
    MegaDetector's crop tools round; the rectangle is at least 1 x 1 px. A
    NaN box is the whole frame.

    >>> box_pixels([0.1, 0.25, 0.5, 0.5], 640, 480)
    (64, 120, 384, 360)
    >>> box_pixels([0.99, -0.2, 0.5, 0.0], 100, 50)
    (99, 0, 100, 1)
    >>> box_pixels([math.nan] * 4, 100, 50)
    (0, 0, 100, 50)
    """
    x, y, w, h = (float(value) for value in box)
    if any(math.isnan(value) for value in (x, y, w, h)):
        return 0, 0, width, height
    left = min(max(round(x * width), 0), width - 1)
    top = min(max(round(y * height), 0), height - 1)
    right = min(max(round((x + w) * width), left + 1), width)
    bottom = min(max(round((y + h) * height), top + 1), height)
    return left, top, right, bottom


def _reduce_regions(image: Image.Image, boxes: Boxes | None, side: int) -> NDArray[np.uint8] | None:
    """Each box of the upright ``image`` area-reduced to side x side."""
    if boxes is None:
        return None
    regions = np.empty((len(boxes), side, side, 3), dtype=np.uint8)
    for k, box in enumerate(boxes):
        regions[k] = _reduce(image.crop(box_pixels(box, image.width, image.height)), side)
    return regions


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
    match = _EXIF_DATETIME_PATTERN.match(text)
    if match is not None:  # the usual form: skip strptime, which costs ~10 us
        year, month, day, hour, minute, second = (int(group) for group in match.groups())
        fields = (year, month, day, hour, minute, second)
        try:
            dt.datetime(year, month, day, hour, minute, second)
        except ValueError:
            pass  # e.g. a leap second, which strptime accepts: let it decide
        else:
            return float(calendar.timegm(fields))
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


def to_rgb(image: Image.Image) -> Image.Image:
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
    # frombuffer(tobytes()) is the same copy np.asarray makes, with less overhead
    return np.frombuffer(image.tobytes(), dtype=np.uint8).reshape(side, side, 3)


def _decode_opened(
    image: Image.Image, side: int, name: str, boxes: Boxes | None = None
) -> DecodedImage:
    width, height = image.size
    if width < 1 or height < 1:
        raise ImageLoadError(name, f"image declares an empty size {width}x{height}")
    orientation, capture = _exif_info(image)
    if image.format == "JPEG":
        # DCT-domain scaling: decode at 1/2, 1/4 or 1/8 as long as the result
        # (every box of it) stays at least side x side. Colour conversion
        # happens in the codec.
        scale = 1 if boxes is None else _region_scale(width, height, orientation, boxes, side)
        image.draft("RGB", (side, side) if boxes is None else (width // scale, height // scale))
    image.load()  # multi-frame files (GIF, TIFF) give their first frame
    rgb = to_rgb(image)
    if orientation != 1:
        rgb = _apply_orientation(rgb, orientation)
    return DecodedImage(
        _reduce(rgb, side), width, height, capture, _reduce_regions(rgb, boxes, side), orientation
    )


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


def jpeg_decoder() -> str:
    """Name of the decoder used for plain JPEG files.

    Examples
    --------
    >>> jpeg_decoder() in ("simplejpeg", "Pillow")
    True
    """
    return "simplejpeg" if _simplejpeg is not None else "Pillow"


def _draft_scale(width: int, height: int, side: int) -> int:
    """The DCT scale denominator Pillow's ``draft(mode, (side, side))`` picks."""
    ratio = min(width // side, height // side)
    return next((scale for scale in DRAFT_SCALES if ratio >= scale), 1)


def _jpeg_exif_segment(data: bytes) -> tuple[bytes | None, bool] | None:
    """The EXIF APP1 payload (or None) and whether an XMP packet is present.

    Returns None when the marker structure is anything but plain (several
    EXIF segments, bad lengths): Pillow then reads the metadata itself.
    """
    position, size = 2, len(data)
    exif: bytes | None = None
    has_xmp = False
    while position + 4 <= size:
        if data[position] != JPEG_MARKER_PREFIX:
            return None
        marker = data[position + 1]
        if marker == JPEG_MARKER_PREFIX:  # fill byte before a marker
            position += 1
            continue
        if marker in (JPEG_SOS, JPEG_EOI):
            break
        if marker == JPEG_TEM or JPEG_RST0 <= marker <= JPEG_RST7:
            position += 2
            continue
        length = (data[position + 2] << 8) | data[position + 3]
        if length < 2:
            return None
        if marker == JPEG_APP1:
            payload = data[position + 4 : position + 2 + length]
            if payload.startswith(EXIF_HEADER):
                if exif is not None:
                    return None  # Pillow concatenates several segments
                exif = payload[len(EXIF_HEADER) :]
            elif payload.startswith(XMP_HEADER):
                has_xmp = True
        position += 2 + length
    return exif, has_xmp


def _tiff_ifd(tiff: bytes, offset: int, order: str) -> dict[int, tuple[int, int, int]] | None:
    """Entries of one TIFF IFD: tag -> (type, count, offset of the value field)."""
    if offset < 8 or offset + 2 > len(tiff):
        return None
    (count,) = struct.unpack_from(order + "H", tiff, offset)
    start = offset + 2
    if start + count * TIFF_ENTRY_SIZE > len(tiff):
        return None
    entries: dict[int, tuple[int, int, int]] = {}
    for index in range(count):
        at = start + index * TIFF_ENTRY_SIZE
        tag, kind, number = struct.unpack_from(order + "HHI", tiff, at)
        unit = TIFF_TYPE_SIZES.get(kind)
        if unit is None or number == 0 or tag in entries:
            return None  # unknown types, empty or repeated tags: let Pillow decide
        size = unit * number
        if size > TIFF_INLINE_SIZE:
            (where,) = struct.unpack_from(order + "I", tiff, at + 8)
            if where + size > len(tiff):
                return None  # Pillow stops reading the directory there: let it
        entries[tag] = (kind, number, at + 8)
    return entries


def _tiff_int(tiff: bytes, entry: tuple[int, int, int], order: str) -> int | None:
    kind, number, at = entry
    if number != 1:
        return None
    if kind == TIFF_SHORT:
        return int(struct.unpack_from(order + "H", tiff, at)[0])
    if kind in (TIFF_LONG, TIFF_IFD):
        return int(struct.unpack_from(order + "I", tiff, at)[0])
    return None


def _tiff_text(tiff: bytes, entry: tuple[int, int, int], order: str) -> bytes | None:
    kind, number, at = entry
    if kind not in (TIFF_ASCII, TIFF_UNDEFINED):
        return None
    if number > 4:
        (at,) = struct.unpack_from(order + "I", tiff, at)
    if at + number > len(tiff):
        return None
    return tiff[at : at + number]


def _parse_exif(tiff: bytes, has_xmp: bool) -> tuple[int, float] | None:
    """(orientation, capture time) from a TIFF-structured EXIF block.

    Mirrors :func:`_exif_info` for well-formed blocks and returns None for
    anything else, so that Pillow decides in every unusual case.
    """
    if len(tiff) < 8:
        return None
    order = {b"II": "<", b"MM": ">"}.get(tiff[:2])
    if order is None or struct.unpack_from(order + "H", tiff, 2)[0] != 42:
        return None
    ifd0 = _tiff_ifd(tiff, struct.unpack_from(order + "I", tiff, 4)[0], order)
    if ifd0 is None:
        return None
    orientation = 1
    if EXIF_ORIENTATION_TAG in ifd0:
        value = _tiff_int(tiff, ifd0[EXIF_ORIENTATION_TAG], order)
        if value is None:
            return None
        orientation = value if 1 <= value <= 8 else 1
    elif has_xmp:
        return None  # Pillow takes the orientation from XMP then
    sub: dict[int, tuple[int, int, int]] = {}
    if EXIF_IFD_POINTER in ifd0:
        if ifd0[EXIF_IFD_POINTER][0] not in (TIFF_LONG, TIFF_IFD):
            return None
        pointer = _tiff_int(tiff, ifd0[EXIF_IFD_POINTER], order)
        found = None if pointer is None else _tiff_ifd(tiff, pointer, order)
        if found is None:
            return None
        sub = found
    capture = math.nan
    for source, tag in (
        (sub, EXIF_DATETIME_ORIGINAL_TAG),
        (sub, EXIF_DATETIME_DIGITIZED_TAG),
        (ifd0, EXIF_DATETIME_TAG),
    ):
        if tag not in source:
            continue
        text = _tiff_text(tiff, source[tag], order)
        if text is None:
            return None
        capture = parse_exif_datetime(text.removesuffix(b"\x00").decode("latin-1"))
        if not math.isnan(capture):
            break
    return orientation, capture


def _jpeg_exif_info(data: bytes) -> tuple[int, float] | None:
    """(orientation, capture time) of a JPEG file's bytes, or None if unsure."""
    found = _jpeg_exif_segment(data)
    if found is None:
        return None
    exif, has_xmp = found
    if exif is None:
        return None if has_xmp else (1, math.nan)
    try:
        return _parse_exif(exif, has_xmp)
    except struct.error:
        return None


def _decode_jpeg_fast(
    data: bytes, side: int, name: str, boxes: Boxes | None = None
) -> DecodedImage | None:
    """Decode a plain JPEG with simplejpeg, or return None to let Pillow do it.

    Raises ImageLoadError for picture data libjpeg-turbo finds damaged.
    """
    assert _simplejpeg is not None
    try:
        height, width, colourspace, _ = _simplejpeg.decode_jpeg_header(data)
    except ValueError:
        return None
    limit = Image.MAX_IMAGE_PIXELS
    if (
        colourspace not in FAST_JPEG_COLOURSPACES
        or width < 1
        or height < 1
        or (limit is not None and width * height > limit)
    ):
        return None
    info = _jpeg_exif_info(data)
    if info is None:
        return None
    orientation, capture = info
    if boxes is None:
        scale = _draft_scale(width, height, side)
    else:
        scale = _region_scale(width, height, orientation, boxes, side)
    try:
        pixels = _simplejpeg.decode_jpeg(
            data,
            "RGB",
            min_height=-(-height // scale),
            min_width=-(-width // scale),
            strict=True,
        )
    except ValueError as exc:
        warning = str(exc)
        if any(text in warning.lower() for text in DAMAGED_SCAN_WARNINGS):
            raise ImageLoadError(
                name, f"damaged JPEG picture data ({warning}); half-copied or corrupt file?"
            ) from exc
        if TRUNCATED_WARNING in warning.lower():
            raise ImageLoadError(
                name, f"the JPEG file is truncated ({warning}); half-copied file?"
            ) from exc
        return None  # unusual or unsupported: Pillow decides and explains
    image = Image.frombuffer("RGB", (pixels.shape[1], pixels.shape[0]), pixels, "raw", "RGB", 0, 1)
    if orientation != 1:
        image = _apply_orientation(image, orientation)
    return DecodedImage(
        _reduce(image, side),
        width,
        height,
        capture,
        _reduce_regions(image, boxes, side),
        orientation,
    )


BLOCKED_FORMATS = frozenset({"EPS"})
"""Pillow formats never opened: Pillow renders EPS (and PostScript named .jpg)
by running the external Ghostscript interpreter on the file's content, which
must never happen to untrusted camera-trap folders."""

_formats_cache: tuple[int, tuple[str, ...]] = (-1, ())


def _open_formats() -> tuple[str, ...]:
    """Every registered Pillow format except :data:`BLOCKED_FORMATS`, in Pillow's order.

    Recomputed when plugins are registered later (e.g. a HEIF opener).
    """
    global _formats_cache
    Image.init()
    known, formats = _formats_cache
    if known != len(Image.ID):
        formats = tuple(name for name in Image.ID if name not in BLOCKED_FORMATS)
        _formats_cache = (len(Image.ID), formats)
    return formats


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


def _check_jpeg_end(data: bytes, name: str) -> None:
    """Report a JPEG cut off before its end-of-image marker.

    Inside entropy-coded data a 0xFF byte is always followed by 0x00 or a
    restart marker, so after the first start-of-scan the pair FF D9 can only
    be the real end. Checking it here keeps truncated files reported even
    when a program has set Pillow's process-wide LOAD_TRUNCATED_IMAGES.
    """
    if data.endswith(JPEG_END_OF_IMAGE):
        return  # the usual case, without scanning the file
    scan = data.find(JPEG_START_OF_SCAN)
    if scan >= 0 and data.find(JPEG_END_OF_IMAGE, scan) < 0:
        raise ImageLoadError(
            name,
            "the JPEG file is truncated: no end-of-image marker after its picture data",
            hint="half-copied card?",
        )


def decode_bytes(
    data: bytes,
    side: int,
    name: str = "<bytes>",
    *,
    fast: bool = True,
    boxes: Boxes | None = None,
) -> DecodedImage:
    """Decode an encoded image held in memory.

    Parameters
    ----------
    data : bytes
        The encoded file content.
    side : int
        Side of the thumbnail to produce (see :func:`thumbnail_side`).
    name : str
        Name used in error messages.
    fast : bool, default True
        Use the simplejpeg fast path for plain JPEGs when it is installed
        (see the module notes); False always decodes with Pillow. Both give
        the same thumbnail.
    boxes : numpy.ndarray, optional
        ``(K, 4)`` boxes (see :data:`Boxes`): also reduce each to a
        thumbnail (:attr:`DecodedImage.regions`), decoding the image once at
        the smallest DCT scale that keeps every box at least ``side`` pixels.

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
    if data.startswith(JPEG_SIGNATURE):
        _check_jpeg_end(data, name)
    if fast and _simplejpeg is not None and data.startswith(JPEG_SIGNATURE):
        decoded = _decode_jpeg_fast(data, side, name, boxes)
        if decoded is not None:
            return decoded
    try:
        with Image.open(io.BytesIO(data), formats=_open_formats()) as image:
            return _decode_opened(image, side, name, boxes)
    except ImageLoadError:
        raise
    except _EXPECTED_DECODE_ERRORS as exc:
        raise ImageLoadError(name, _describe(exc)) from exc


def _open_image_file(name: str) -> int:
    """Open ``name`` for reading without ever blocking on it; the descriptor.

    ``O_NONBLOCK`` makes opening a FIFO return at once instead of waiting
    for a writer (it changes nothing for regular files), so the caller can
    ``fstat`` the descriptor and refuse what is not a regular file.
    """
    flags = os.O_RDONLY | getattr(os, "O_BINARY", 0) | getattr(os, "O_NONBLOCK", 0)
    return os.open(name, flags | getattr(os, "O_CLOEXEC", 0))


def _read_regular_file(name: str) -> bytes:
    """The bytes of a regular file of at most :data:`MAX_IMAGE_FILE_BYTES`.

    The opened descriptor is checked (not the path, which could be swapped
    in between): a FIFO, socket or device (``/dev/zero``, ``/dev/urandom``,
    a symbolic link to one) is refused before any read, and so is a file
    larger than the cap, without reading it.
    """
    descriptor = _open_image_file(name)
    try:
        info = os.fstat(descriptor)
        _check_regular(name, info)
    except BaseException:
        os.close(descriptor)
        raise
    with os.fdopen(descriptor, "rb") as handle:
        data = handle.read(info.st_size + 1)
        if len(data) > info.st_size:  # the file grew since fstat: read on, up to the cap
            data += handle.read(MAX_IMAGE_FILE_BYTES + 1 - len(data))
    if len(data) > MAX_IMAGE_FILE_BYTES:
        raise ImageLoadError(name, _too_large(len(data)))
    return data


def _check_regular(name: str, info: os.stat_result) -> None:
    """Refuse a folder, a non-regular file, or a file over the size cap."""
    if stat.S_ISDIR(info.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), name)
    if not stat.S_ISREG(info.st_mode):
        raise ImageLoadError(
            name,
            f"not a regular file (a {_file_kind(info.st_mode)}); only regular image files are read",
        )
    if info.st_size > MAX_IMAGE_FILE_BYTES:
        raise ImageLoadError(name, _too_large(info.st_size))


def _file_kind(mode: int) -> str:
    """What a non-regular file is, in words."""
    kinds = (
        (stat.S_ISFIFO, "named pipe (FIFO)"),
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISSOCK, "socket"),
    )
    return next((word for test, word in kinds if test(mode)), "special file")


def _too_large(size: int) -> str:
    return (
        f"the file is larger than {MAX_IMAGE_FILE_BYTES:,} bytes ({size:,} bytes), the most "
        "read for one image (camera-trap images are under 50 MB): is it a video or a disk "
        "image with an image extension?"
    )


def decode_file(
    path: str | os.PathLike[str], side: int, *, fast: bool = True, boxes: Boxes | None = None
) -> DecodedImage:
    """Read and decode one image file into a :class:`DecodedImage`.

    The file is opened read-only and read in one call, which suits network
    file systems. Only regular files of at most :data:`MAX_IMAGE_FILE_BYTES`
    are read: a FIFO, a device (or a link to one) or a larger file is
    reported as unreadable without blocking or reading it. Errors name the
    file. ``fast`` and ``boxes`` are as for :func:`decode_bytes`.

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
        data = _read_regular_file(name)
    except IsADirectoryError as exc:
        raise ImageLoadError(name, "this is a folder, not an image file") from exc
    except FileNotFoundError as exc:
        reason = "the file does not exist (moved or deleted?)"
        if os.path.islink(name):
            reason = "broken symbolic link"
        raise ImageLoadError(name, reason) from exc
    except PermissionError as exc:
        raise ImageLoadError(name, "permission denied (check the file's read rights)") from exc
    except OSError as exc:  # the path is named once, by the error itself
        raise ImageLoadError(name, f"could not read the file: {exc.strerror or exc}") from exc
    return decode_bytes(data, side, name, fast=fast, boxes=boxes)
