"""Hostile input files for reliability tests and the soak run (issue 6).

Camera-trap archives hold half-copied files, videos and sidecars with image
extensions, PNGs in odd modes and files with hostile headers. This module
writes one file of each kind into a folder, and says for each kind whether a
correct loader must decode it (and what it must look like) or must report it
as unreadable.

Used by ``tests/test_hostile.py``, ``tests/test_fuzz.py`` (as seeds) and the
soak script.

Examples
--------
>>> import tempfile
>>> files = write_hostile_files(tempfile.mkdtemp())
>>> sorted(files) == sorted(HOSTILE_KINDS)
True
>>> HOSTILE_KINDS["zero_bytes"].outcome
'fail'
"""

from __future__ import annotations

import io
import os
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from PIL import Image, ImageDraw

__all__ = [
    "DATA_DIR",
    "HOSTILE_KINDS",
    "POSTSCRIPT",
    "SCENE_SIZE",
    "HostileKind",
    "bomb_jpeg",
    "bomb_png",
    "hostile_bytes",
    "jpeg_bytes",
    "png_bytes",
    "reference_image",
    "scene",
    "truncation_points",
    "write_hostile_files",
    "ycck_jpeg",
]

Outcome = Literal["ok", "fail", "either"]
"""What a correct loader does with a kind: decode it to the reference image
('ok'), report it as unreadable ('fail'), or either of the two ('either':
a file whose pixels are all present but whose end marker is missing)."""

DATA_DIR = Path(__file__).resolve().parent / "data"
"""Committed fixtures (see data/README.md): files no Python package can write."""

SCENE_SIZE = (160, 120)
"""Width and height of the reference scene: large enough for JPEG DCT scaling
to apply (1/2 for a 32 px thumbnail), small enough to write 40 files in
well under a second. Quadrant edges fall on multiples of 8 and of the
5 px thumbnail cell, so JPEG blocks and thumbnail cells do not straddle them."""

JPEG_QUALITY = 95
"""High quality keeps JPEG error far below the tolerance tests allow."""

BOMB_SIDE = 40_000
"""Declared side of the decompression bombs: 1.6 gigapixels, about 4.8 GB as
RGB, far above Pillow's refusal limit (2 x MAX_IMAGE_PIXELS, 179 MP)."""

WARNING_BOMB_SIDE = 10_000
"""Declared side of a JPEG in Pillow's warning band (89 to 179 MP): 100 MP."""

LONG_NAME_BYTES = 250
"""File name length in bytes: close to the 255-byte limit of most file systems."""

DEEP_PATH_CHARS = 300
"""Minimum length of the deep path: beyond Windows' classic 260-character limit."""

QUADRANT_COLOURS = (
    (220, 40, 40),  # top left: red
    (40, 200, 60),  # top right: green
    (240, 220, 30),  # bottom left: yellow
    (30, 90, 210),  # bottom right: blue
)
"""Four distinct flat colours, so each of the 8 EXIF orientations gives a
different picture (the symmetry group acts faithfully on the corners)."""

MARK_COLOUR = (255, 255, 255)
"""A white square inside the top-left quadrant (few colours: GIF/palette exact)."""


@dataclass(frozen=True)
class HostileKind:
    """One kind of hostile input.

    Attributes
    ----------
    name : str
        Key in :data:`HOSTILE_KINDS` and in :func:`write_hostile_files`'s result.
    outcome : {"ok", "fail", "either"}
        What a correct loader does with it (see :data:`Outcome`).
    description : str
        What the file is, in words.
    """

    name: str
    outcome: Outcome
    description: str


def scene(width: int = SCENE_SIZE[0], height: int = SCENE_SIZE[1]) -> Image.Image:
    """The reference picture: four flat coloured quadrants and a white square.

    Examples
    --------
    >>> scene().getpixel((150, 110))
    (30, 90, 210)
    """
    image = Image.new("RGB", (width, height), QUADRANT_COLOURS[3])
    draw = ImageDraw.Draw(image)
    half_w, half_h = width // 2, height // 2
    draw.rectangle((0, 0, half_w - 1, half_h - 1), fill=QUADRANT_COLOURS[0])
    draw.rectangle((half_w, 0, width - 1, half_h - 1), fill=QUADRANT_COLOURS[1])
    draw.rectangle((0, half_h, half_w - 1, height - 1), fill=QUADRANT_COLOURS[2])
    mark = max(1, min(width, height) // 6)
    draw.rectangle((mark, mark, 2 * mark - 1, 2 * mark - 1), fill=MARK_COLOUR)
    return image


def jpeg_bytes(image: Image.Image, **options: object) -> bytes:
    """Encode an image as JPEG (quality :data:`JPEG_QUALITY` unless given)."""
    buffer = io.BytesIO()
    options.setdefault("quality", JPEG_QUALITY)
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def png_bytes(image: Image.Image, **options: object) -> bytes:
    """Encode an image as PNG."""
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    crc = zlib.crc32(kind + data) & 0xFFFFFFFF
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def bomb_png(side: int = BOMB_SIDE) -> bytes:
    """A 100-byte PNG whose IHDR declares ``side x side`` RGB pixels.

    Examples
    --------
    >>> len(bomb_png()) < 200
    True
    """
    bit_depth, colour_type_rgb = 8, 2
    header = struct.pack(">IIBBBBB", side, side, bit_depth, colour_type_rgb, 0, 0, 0)
    pixels = zlib.compress(bytes(64))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", pixels)
        + _png_chunk(b"IEND", b"")
    )


def bomb_jpeg(side: int = BOMB_SIDE) -> bytes:
    """A small baseline JPEG whose SOF0 is forged to declare ``side x side`` pixels."""
    data = bytearray(jpeg_bytes(Image.new("RGB", (64, 64), (100, 110, 120))))
    sof = data.find(b"\xff\xc0")
    # SOF0 layout: marker (2), length (2), precision (1), height (2), width (2).
    struct.pack_into(">HH", data, sof + 5, side, side)
    return bytes(data)


def _cmyk_source() -> Image.Image:
    """A CMYK picture with real black (K) ink, built from the scene."""
    rgb = np.asarray(scene(), dtype=np.int16)
    black = np.full(rgb.shape[:2], 40, dtype=np.int16)
    cmy = np.clip(255 - rgb - black[..., None], 0, 255)
    channels = [Image.fromarray(cmy[..., i].astype(np.uint8)) for i in range(3)]
    return Image.merge("CMYK", [*channels, Image.fromarray(black.astype(np.uint8))])


ADOBE_TRANSFORM_OFFSET = 11
"""Offset of the transform byte after b"Adobe" in the APP14 marker
(version 2 bytes, flags0 2, flags1 2, then transform: 0 CMYK/RGB, 1 YCbCr, 2 YCCK)."""

ADOBE_TRANSFORM_YCCK = 2


def ycck_jpeg(cmyk: Image.Image) -> bytes:
    """Encode a CMYK picture as an Adobe YCCK JPEG (inverted, like Photoshop writes).

    Pillow only writes plain Adobe CMYK (APP14 transform 0, inverted
    channels). YCCK stores (Y, Cb, Cr) of (C, M, Y) seen as RGB plus K; the
    decoder (libjpeg) turns it back into inverted CMYK. So the YCCK planes are
    computed here, written as a 'CMYK' JPEG and the APP14 transform byte is
    patched to 2: libjpeg then applies the YCCK -> CMYK transform on reading.
    """
    cyan, magenta, yellow, black = cmyk.split()
    luma, blue_diff, red_diff = Image.merge("RGB", (cyan, magenta, yellow)).convert("YCbCr").split()

    def invert(band: Image.Image) -> Image.Image:
        return band.point(lambda value: 255 - value)

    # Pillow stores CMYK inverted (Adobe polarity): write 255 - plane so the
    # file holds the YCC planes themselves, and K as Adobe's inverted K.
    stored = Image.merge("CMYK", (invert(luma), invert(blue_diff), invert(red_diff), black))
    data = bytearray(jpeg_bytes(stored))
    adobe = data.find(b"Adobe")
    if adobe < 0:
        raise RuntimeError("Pillow wrote a CMYK JPEG without an Adobe APP14 marker")
    data[adobe + ADOBE_TRANSFORM_OFFSET] = ADOBE_TRANSFORM_YCCK
    return bytes(data)


def _oriented(orientation: int) -> bytes:
    """The scene stored turned so that EXIF ``orientation`` shows it upright."""
    stored_from_upright: dict[int, tuple[Image.Transpose, ...]] = {
        1: (),
        2: (Image.Transpose.FLIP_LEFT_RIGHT,),
        3: (Image.Transpose.ROTATE_180,),
        4: (Image.Transpose.FLIP_TOP_BOTTOM,),
        5: (Image.Transpose.TRANSPOSE,),
        6: (Image.Transpose.ROTATE_90,),  # the viewer rotates it 90 deg clockwise back
        7: (Image.Transpose.TRANSVERSE,),
        8: (Image.Transpose.ROTATE_270,),
    }
    image = scene()
    for op in stored_from_upright[orientation]:
        image = image.transpose(op)
    exif = Image.Exif()
    exif[0x0112] = orientation
    return jpeg_bytes(image, exif=exif)


def truncation_points(data: bytes) -> dict[str, int]:
    """Byte offsets to cut a baseline JPEG at: header, SOS, mid-scan, before EOI.

    Examples
    --------
    >>> points = truncation_points(jpeg_bytes(scene()))
    >>> sorted(points)
    ['truncated_at_sos', 'truncated_before_eoi', 'truncated_header', 'truncated_mid_scan']
    """
    sos = data.find(b"\xff\xda")
    if sos < 0 or not data.endswith(b"\xff\xd9"):
        raise ValueError("not a complete JPEG with a start-of-scan marker")
    sos_length = int.from_bytes(data[sos + 2 : sos + 4], "big")
    scan_start = sos + 2 + sos_length
    return {
        "truncated_header": 20,  # inside the quantisation tables / JFIF header
        "truncated_at_sos": scan_start,  # whole header, not one byte of scan data
        "truncated_mid_scan": (scan_start + len(data)) // 2,
        "truncated_before_eoi": len(data) - 2,  # all pixels, end marker missing
    }


def _gradient_16bit() -> Image.Image:
    width, height = SCENE_SIZE
    ramp = np.linspace(0, 65535, width).astype(np.uint16)
    return Image.fromarray(np.tile(ramp, (height, 1)))  # mode I;16


def _one_bit() -> Image.Image:
    image = Image.new("1", SCENE_SIZE, 0)
    ImageDraw.Draw(image).rectangle((SCENE_SIZE[0] // 2, 0, SCENE_SIZE[0], SCENE_SIZE[1]), fill=1)
    return image


def _palette(transparent: bool) -> Image.Image:
    image = scene().quantize(colors=8, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    if transparent:
        image.info["transparency"] = image.getpixel((1, 1))  # the red quadrant's index
    return image


def _la() -> Image.Image:
    grey = scene().convert("L")
    alpha = Image.fromarray(np.tile(np.linspace(0, 255, SCENE_SIZE[0]).astype(np.uint8), (120, 1)))
    return Image.merge("LA", (grey, alpha))


def _rgba_transparent() -> Image.Image:
    image = scene().convert("RGBA")
    image.putalpha(0)  # colourful pixels, every one fully transparent
    return image


def _composite_on_white(image: Image.Image) -> Image.Image:
    rgba = image.convert("RGBA")
    white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
    return Image.alpha_composite(white, rgba).convert("RGB")


def _heic_like(rng: np.random.Generator) -> bytes:
    # ISO base media file: 'ftyp' box, brand heic, compatible brands, then junk.
    ftyp = b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic"
    return struct.pack(">I", 4 + len(ftyp)) + ftyp + rng.bytes(2048)


def _mp4_like(rng: np.random.Generator) -> bytes:
    ftyp = b"ftypisom" + b"\x00\x00\x02\x00" + b"isomiso2avc1mp41"
    return struct.pack(">I", 4 + len(ftyp)) + ftyp + b"\x00\x00\x00\x08free" + rng.bytes(4096)


POSTSCRIPT = (
    b"%!PS-Adobe-3.0 EPSF-3.0\n"
    b"%%BoundingBox: 0 0 100 100\n"
    b"newpath 0 0 moveto 100 100 lineto stroke\n"
    b"showpage\n"
    b"%%EOF\n"
)
"""An EPS document: Pillow renders EPS by running Ghostscript, if installed."""


def _gif() -> bytes:
    buffer = io.BytesIO()
    _palette(transparent=False).save(buffer, "GIF")
    return buffer.getvalue()


def _arithmetic() -> bytes:
    return (DATA_DIR / "arithmetic.jpg").read_bytes()


def _content_builders(rng: np.random.Generator) -> dict[str, Callable[[], bytes]]:
    base = jpeg_bytes(scene())
    cuts = truncation_points(base)
    builders: dict[str, Callable[[], bytes]] = {
        "zero_bytes": lambda: b"",
        "random_bytes": lambda: rng.bytes(3000),
        "text_named_jpg": lambda: b"Camera: trail cam 3\nBattery: 40%\nTemperature: 12 C\n",
        "gif_named_jpg": _gif,
        "heic_like": lambda: _heic_like(rng),
        "mp4_like": lambda: _mp4_like(rng),
        "eps_named_jpg": lambda: POSTSCRIPT,
        "png_16bit": lambda: png_bytes(_gradient_16bit()),
        "png_1bit": lambda: png_bytes(_one_bit()),
        "png_palette": lambda: png_bytes(_palette(transparent=False)),
        "png_palette_transparent": lambda: png_bytes(_palette(transparent=True)),
        "png_la": lambda: png_bytes(_la()),
        "png_rgba_transparent": lambda: png_bytes(_rgba_transparent()),
        "jpeg_cmyk": lambda: jpeg_bytes(_cmyk_source()),
        "jpeg_ycck": lambda: ycck_jpeg(_cmyk_source()),
        "jpeg_progressive": lambda: jpeg_bytes(scene(), progressive=True),
        "jpeg_arithmetic": _arithmetic,
        "bomb_png": bomb_png,
        "bomb_jpeg": bomb_jpeg,
        "tiny_1x1_jpeg": lambda: jpeg_bytes(Image.new("RGB", (1, 1), QUADRANT_COLOURS[1])),
        "tiny_1x1_png": lambda: png_bytes(Image.new("RGB", (1, 1), QUADRANT_COLOURS[3])),
    }
    for name, cut in cuts.items():
        builders[name] = lambda cut=cut: base[:cut]  # type: ignore[misc]
    for orientation in range(1, 9):
        builders[f"exif_orientation_{orientation}"] = lambda o=orientation: _oriented(o)  # type: ignore[misc]
    return builders


_FAIL: Outcome = "fail"
_OK: Outcome = "ok"

_KIND_LIST: tuple[HostileKind, ...] = (
    HostileKind("zero_bytes", _FAIL, "empty file named .jpg (half-copied card)"),
    HostileKind("truncated_header", _FAIL, "JPEG cut inside its header (20 bytes)"),
    HostileKind("truncated_at_sos", _FAIL, "JPEG cut right after the start-of-scan header"),
    HostileKind("truncated_mid_scan", _FAIL, "JPEG cut in the middle of the scan data"),
    HostileKind("truncated_before_eoi", "either", "JPEG missing only its 2-byte EOI marker"),
    HostileKind("random_bytes", _FAIL, "3000 random bytes named .jpg"),
    HostileKind("text_named_jpg", _FAIL, "a text sidecar named .jpg"),
    HostileKind("gif_named_jpg", _OK, "a palette GIF named .jpg (Pillow sniffs content)"),
    HostileKind("heic_like", _FAIL, "ISO-BMFF 'ftypheic' box and junk, named .jpg"),
    HostileKind("mp4_like", _FAIL, "ISO-BMFF 'ftypisom' box (video) and junk, named .jpg"),
    HostileKind(
        "eps_named_jpg",
        _FAIL,
        "PostScript (EPS) named .jpg: must be refused without running Ghostscript",
    ),
    HostileKind("png_16bit", _OK, "16-bit greyscale PNG (I;16), horizontal ramp"),
    HostileKind("png_1bit", _OK, "1-bit PNG, black left half, white right half"),
    HostileKind("png_palette", _OK, "palette PNG (P)"),
    HostileKind("png_palette_transparent", _OK, "palette PNG, red index transparent"),
    HostileKind("png_la", _OK, "greyscale + alpha PNG (LA), alpha ramp"),
    HostileKind("png_rgba_transparent", _OK, "RGBA PNG, colourful but fully transparent"),
    HostileKind("jpeg_cmyk", _OK, "Adobe CMYK JPEG (inverted, APP14 transform 0)"),
    HostileKind("jpeg_ycck", _OK, "Adobe YCCK JPEG (APP14 transform 2)"),
    HostileKind("jpeg_progressive", _OK, "progressive JPEG"),
    HostileKind("jpeg_arithmetic", _OK, "arithmetic-coded JPEG (fixture)"),
    *(
        HostileKind(f"exif_orientation_{o}", _OK, f"JPEG stored turned, EXIF orientation {o}")
        for o in range(1, 9)
    ),
    HostileKind("bomb_png", _FAIL, "100-byte PNG declaring 40,000 x 40,000 pixels"),
    HostileKind("bomb_jpeg", _FAIL, "700-byte JPEG whose SOF declares 40,000 x 40,000"),
    HostileKind("tiny_1x1_jpeg", _OK, "1 x 1 pixel JPEG"),
    HostileKind("tiny_1x1_png", _OK, "1 x 1 pixel PNG"),
    HostileKind("directory_named_jpg", _FAIL, "a folder named like an image"),
    HostileKind("broken_symlink", _FAIL, "symbolic link to a file that does not exist"),
    HostileKind("name_with_spaces", _OK, "good JPEG, spaces in folder and file name"),
    HostileKind("name_non_ascii", _OK, "good JPEG named élan/ñandú 鹿.jpg"),
    HostileKind("name_long", _OK, f"good JPEG, {LONG_NAME_BYTES}-byte file name"),
    HostileKind("deep_path", _OK, f"good JPEG, path longer than {DEEP_PATH_CHARS} characters"),
)

HOSTILE_KINDS: dict[str, HostileKind] = {kind.name: kind for kind in _KIND_LIST}
"""Every kind :func:`write_hostile_files` writes, by name."""

FILESYSTEM_KINDS = frozenset(
    {
        "directory_named_jpg",
        "broken_symlink",
        "name_with_spaces",
        "name_non_ascii",
        "name_long",
        "deep_path",
    }
)
"""Kinds about the path rather than the bytes (no :func:`hostile_bytes`)."""

_PNG_KINDS = frozenset(name for name in HOSTILE_KINDS if name.startswith("png_")) | {
    "tiny_1x1_png",
    "bomb_png",
}


def hostile_bytes(name: str, rng_seed: int = 0) -> bytes:
    """The content of one content kind (not the filesystem kinds).

    Examples
    --------
    >>> hostile_bytes("heic_like")[4:12]
    b'ftypheic'
    """
    if name in FILESYSTEM_KINDS or name not in HOSTILE_KINDS:
        raise KeyError(f"{name!r} is not a content kind of hostile file")
    rng = np.random.default_rng(rng_seed)
    return _content_builders(rng)[name]()


def reference_image(name: str) -> Image.Image | None:
    """How a content or name kind must look once decoded: upright RGB on white.

    Returns None for kinds that must be reported as failures.

    Examples
    --------
    >>> reference_image("png_rgba_transparent").getpixel((0, 0))
    (255, 255, 255)
    >>> reference_image("zero_bytes") is None
    True
    """
    kind = HOSTILE_KINDS[name]
    if kind.outcome == _FAIL:
        return None
    special: dict[str, Callable[[], Image.Image]] = {
        "png_16bit": lambda: Image.fromarray(
            (np.asarray(_gradient_16bit()).astype(np.uint32) >> 8).astype(np.uint8)
        ).convert("RGB"),
        "png_1bit": lambda: _one_bit().convert("RGB"),
        "png_palette": lambda: _palette(transparent=False).convert("RGB"),
        "gif_named_jpg": lambda: _palette(transparent=False).convert("RGB"),
        "png_palette_transparent": lambda: _composite_on_white(
            _palette(transparent=True).convert("RGBA")
        ),
        "png_la": lambda: _composite_on_white(_la()),
        "png_rgba_transparent": lambda: Image.new("RGB", SCENE_SIZE, (255, 255, 255)),
        "jpeg_cmyk": lambda: _cmyk_source().convert("RGB"),
        "jpeg_ycck": lambda: _cmyk_source().convert("RGB"),
        "tiny_1x1_jpeg": lambda: Image.new("RGB", (1, 1), QUADRANT_COLOURS[1]),
        "tiny_1x1_png": lambda: Image.new("RGB", (1, 1), QUADRANT_COLOURS[3]),
    }
    if name in special:
        return special[name]()
    return scene()


def _hostile_name(name: str) -> str:
    return f"{name}.png" if name in _PNG_KINDS else f"{name}.jpg"


def write_hostile_files(folder: str | os.PathLike[str], rng_seed: int = 0) -> dict[str, str]:
    """Write one file (or folder, or link) of every kind in :data:`HOSTILE_KINDS`.

    Parameters
    ----------
    folder : str or path
        Existing or new folder; files are created inside it (some in sub-folders).
    rng_seed : int
        Seed of the random parts (random bytes, junk after box headers).

    Returns
    -------
    dict of str to str
        Kind name -> path written.

    Examples
    --------
    >>> import tempfile, os
    >>> files = write_hostile_files(tempfile.mkdtemp())
    >>> os.path.getsize(files["zero_bytes"]), os.path.isdir(files["directory_named_jpg"])
    (0, True)
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(rng_seed)
    builders = _content_builders(rng)
    written: dict[str, str] = {}
    for name in HOSTILE_KINDS:
        if name in FILESYSTEM_KINDS:
            continue
        path = root / _hostile_name(name)
        path.write_bytes(builders[name]())
        written[name] = str(path)

    good = jpeg_bytes(scene())
    directory = root / "directory_named_jpg.jpg"
    directory.mkdir(exist_ok=True)
    written["directory_named_jpg"] = str(directory)

    link = root / "broken_symlink.jpg"
    if link.is_symlink():
        link.unlink()
    link.symlink_to(root / "this file was deleted.jpg")
    written["broken_symlink"] = str(link)

    named: dict[str, Path] = {
        "name_with_spaces": root / "card 3 copy" / "IMG 0001 (1).jpg",
        "name_non_ascii": root / "élan" / "ñandú 鹿.jpg",
        "name_long": root / "long" / _long_name(),
        "deep_path": _deep_path(root / "deep"),
    }
    for name, path in named.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(good)
        written[name] = str(path)
    return written


def _long_name() -> str:
    suffix = ".jpg"
    stem = "camera_trap_" + "ñ" * 60  # two bytes each in UTF-8
    stem += "x" * (LONG_NAME_BYTES - len(stem.encode()) - len(suffix))
    return stem + suffix


def _deep_path(base: Path) -> Path:
    path = base
    level = 0
    while len(str(path)) < DEEP_PATH_CHARS:
        path = path / f"level_{level:02d}_deployment_folder"
        level += 1
    return path / "IMG_0001.JPG"
