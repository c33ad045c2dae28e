"""Helpers that write real image files, in every format and mode the loader must handle.

Every ``write_*`` function writes one file with Pillow and returns its path.
:func:`write_catalogue` writes one readable file per format/mode together with
the RGB colour its thumbnail must show, and :func:`write_unreadable` the files
that must fail with :class:`~smartdownsample.ImageLoadError`.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "INVERSE_ORIENTATION",
    "Sample",
    "asymmetric",
    "quadrants",
    "solid",
    "write_catalogue",
    "write_cmyk_jpeg",
    "write_corrupt",
    "write_empty",
    "write_gif",
    "write_jpeg",
    "write_oriented_jpeg",
    "write_png",
    "write_png_16bit",
    "write_text_as_jpeg",
    "write_truncated_jpeg",
    "write_unreadable",
    "write_varied_jpegs",
]

SIZE = (96, 64)
"""Default image size: not square, larger than the 32 px thumbnail."""

EXIF_ORIENTATION = 0x0112
EXIF_DATETIME = 0x0132
EXIF_IFD = 0x8769
EXIF_DATETIME_ORIGINAL = 0x9003

INVERSE_ORIENTATION: dict[int, Image.Transpose | None] = {
    1: None,
    2: Image.Transpose.FLIP_LEFT_RIGHT,
    3: Image.Transpose.ROTATE_180,
    4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE,
    6: Image.Transpose.ROTATE_90,
    7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_270,
}
"""Transposition that turns an upright image into the pixels a camera stores
with a given EXIF orientation (the inverse of what a viewer applies)."""


@dataclass(frozen=True)
class Sample:
    """A readable test file and the colour its thumbnail must show.

    Attributes
    ----------
    name : str
        Short description, used as test id.
    path : Path
        The file.
    expected : tuple of int
        RGB the whole thumbnail must show (mean over pixels).
    tolerance : float
        Allowed absolute difference per channel (lossy formats).
    """

    name: str
    path: Path
    expected: tuple[int, int, int]
    tolerance: float


def solid(colour: tuple[int, int, int], size: tuple[int, int] = SIZE) -> Image.Image:
    """An RGB image of one colour."""
    return Image.new("RGB", size, colour)


def asymmetric(size: tuple[int, int] = SIZE) -> Image.Image:
    """Left half dark, right half bright."""
    width, height = size
    array = np.full((height, width, 3), 30, dtype=np.uint8)
    array[:, width // 2 :] = 225
    return Image.fromarray(array, "RGB")


def quadrants(size: tuple[int, int] = SIZE) -> Image.Image:
    """Four differently coloured quadrants: no flip or rotation leaves it unchanged."""
    width, height = size
    array = np.zeros((height, width, 3), dtype=np.uint8)
    half_w, half_h = width // 2, height // 2
    array[:half_h, :half_w] = (200, 30, 30)  # top left: red
    array[:half_h, half_w:] = (30, 200, 30)  # top right: green
    array[half_h:, :half_w] = (30, 30, 200)  # bottom left: blue
    array[half_h:, half_w:] = (240, 240, 240)  # bottom right: white
    return Image.fromarray(array, "RGB")


def _exif(orientation: int | None, datetime_original: str | None, datetime: str | None) -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[EXIF_ORIENTATION] = orientation
    if datetime is not None:
        exif[EXIF_DATETIME] = datetime
    if datetime_original is not None:
        exif.get_ifd(EXIF_IFD)[EXIF_DATETIME_ORIGINAL] = datetime_original
    return exif.tobytes()


def write_jpeg(
    path: str | os.PathLike[str],
    image: Image.Image,
    *,
    quality: int = 92,
    progressive: bool = False,
    subsampling: int = 0,
    orientation: int | None = None,
    datetime_original: str | None = None,
    datetime: str | None = None,
) -> Path:
    """Save ``image`` as JPEG, optionally with EXIF orientation and capture times."""
    target = Path(path)
    options: dict[str, object] = {
        "quality": quality,
        "progressive": progressive,
        "subsampling": subsampling,
    }
    if orientation is not None or datetime_original is not None or datetime is not None:
        options["exif"] = _exif(orientation, datetime_original, datetime)
    image.save(target, "JPEG", **options)
    return target


def write_oriented_jpeg(
    path: str | os.PathLike[str], upright: Image.Image, orientation: int
) -> Path:
    """Store ``upright`` as a camera would with EXIF ``orientation``.

    The pixels are transposed so that a viewer applying the tag shows
    ``upright`` again (checked with Pillow's own ``ImageOps.exif_transpose``
    in the tests).
    """
    operation = INVERSE_ORIENTATION[orientation]
    stored = upright if operation is None else upright.transpose(operation)
    return write_jpeg(path, stored, orientation=orientation)


def write_png(path: str | os.PathLike[str], image: Image.Image) -> Path:
    """Save ``image`` as PNG in whatever mode it has."""
    target = Path(path)
    image.save(target, "PNG")
    return target


def write_png_16bit(
    path: str | os.PathLike[str], value: int | np.ndarray, size: tuple[int, int] = SIZE
) -> Path:
    """A 16-bit grayscale PNG (Pillow mode ``I;16``) of one value or an array."""
    width, height = size
    array = (
        np.full((height, width), value, dtype=np.uint16)
        if np.isscalar(value)
        else np.asarray(value, dtype=np.uint16)
    )
    image = Image.fromarray(array)
    assert image.mode == "I;16", image.mode
    return write_png(path, image)


def write_cmyk_jpeg(
    path: str | os.PathLike[str],
    cmyk: tuple[int, int, int, int],
    size: tuple[int, int] = SIZE,
) -> Path:
    """A CMYK JPEG of one ink mix (e.g. ``(0, 255, 255, 0)`` is red)."""
    target = Path(path)
    Image.new("CMYK", size, cmyk).save(target, "JPEG", quality=95)
    return target


def write_gif(path: str | os.PathLike[str], colour: tuple[int, int, int]) -> Path:
    """A single-colour GIF (palette image)."""
    target = Path(path)
    solid(colour).convert("P", palette=Image.Palette.ADAPTIVE, colors=4).save(target, "GIF")
    return target


def _palette_image(
    indices: np.ndarray, palette: Sequence[tuple[int, int, int]], transparency: int | None
) -> Image.Image:
    image = Image.fromarray(indices.astype(np.uint8), "L").convert("P")
    flat = [channel for colour in palette for channel in colour]
    image.putpalette(flat + [0] * (768 - len(flat)))
    if transparency is not None:
        image.info["transparency"] = transparency
    return image


def write_catalogue(folder: str | os.PathLike[str]) -> list[Sample]:
    """Write one readable file per format and mode; return them with expected colours.

    Covers JPEG (baseline, progressive, CMYK), PNG in RGB, L, LA, P with and
    without transparency, RGBA (opaque, half and fully transparent), 1-bit and
    16-bit grayscale, TIFF (8 and 16 bit), BMP, WEBP and GIF.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    width, height = SIZE
    samples: list[Sample] = []

    def add(name: str, path: Path, expected: tuple[int, int, int], tolerance: float) -> None:
        samples.append(Sample(name, path, expected, tolerance))

    add("jpeg-baseline", write_jpeg(root / "baseline.jpg", solid((220, 30, 30))), (220, 30, 30), 6)
    add(
        "jpeg-progressive",
        write_jpeg(root / "progressive.jpg", solid((30, 180, 60)), progressive=True),
        (30, 180, 60),
        6,
    )
    add(
        "jpeg-subsampled",
        write_jpeg(root / "subsampled.JPEG", solid((40, 60, 200)), subsampling=2, quality=80),
        (40, 60, 200),
        8,
    )
    add("jpeg-cmyk", write_cmyk_jpeg(root / "cmyk.jpg", (0, 255, 255, 0)), (255, 0, 0), 10)
    add("png-rgb", write_png(root / "rgb.png", solid((10, 120, 240))), (10, 120, 240), 0)
    add("png-l", write_png(root / "gray.png", Image.new("L", SIZE, 77)), (77, 77, 77), 0)
    add(
        "png-la-opaque",
        write_png(root / "la.png", Image.new("LA", SIZE, (200, 255))),
        (200, 200, 200),
        0,
    )
    # L=0 at alpha 128 over white: 255 * (1 - 128/255) = 127.
    add(
        "png-la-half",
        write_png(root / "la-half.png", Image.new("LA", SIZE, (0, 128))),
        (127, 127, 127),
        1,
    )
    indices = np.ones((height, width), dtype=np.uint8)
    add(
        "png-p",
        write_png(root / "palette.png", _palette_image(indices, [(0, 0, 0), (40, 90, 160)], None)),
        (40, 90, 160),
        0,
    )
    # Every pixel uses the transparent index (black in the palette): white, not black.
    add(
        "png-p-transparent",
        write_png(
            root / "palette-transparent.png",
            _palette_image(np.zeros_like(indices), [(0, 0, 0), (40, 90, 160)], 0),
        ),
        (255, 255, 255),
        0,
    )
    # A transparency entry on an unused index must not disturb opaque pixels.
    add(
        "png-p-unused-transparency",
        write_png(
            root / "palette-unused.png",
            _palette_image(indices, [(0, 0, 0), (40, 90, 160)], 0),
        ),
        (40, 90, 160),
        0,
    )
    add(
        "png-rgba-opaque",
        write_png(root / "rgba-opaque.png", Image.new("RGBA", SIZE, (200, 100, 50, 255))),
        (200, 100, 50),
        0,
    )
    add(
        "png-rgba-half",
        write_png(root / "rgba-half.png", Image.new("RGBA", SIZE, (0, 0, 0, 128))),
        (127, 127, 127),
        1,
    )
    # Fully transparent: composited on white (documented choice; 1.x made it black).
    add(
        "png-rgba-transparent",
        write_png(root / "rgba-clear.png", Image.new("RGBA", SIZE, (0, 0, 0, 0))),
        (255, 255, 255),
        0,
    )
    add("png-1bit-white", write_png(root / "bits.png", Image.new("1", SIZE, 1)), (255,) * 3, 0)
    add("png-1bit-black", write_png(root / "bits0.png", Image.new("1", SIZE, 0)), (0,) * 3, 0)
    # 30000 / 65535 of full scale is 117 of 255: mid-gray, not white (1.x clipped it).
    add("png-16bit", write_png_16bit(root / "sixteen.png", 30000), (117, 117, 117), 1)
    add("png-16bit-max", write_png_16bit(root / "sixteen-max.png", 65535), (255, 255, 255), 0)
    tiff16 = root / "sixteen.tif"
    Image.fromarray(np.full((height, width), 30000, dtype=np.uint16)).save(tiff16, "TIFF")
    add("tiff-16bit", tiff16, (117, 117, 117), 1)
    tiff = root / "rgb.tif"
    solid((90, 180, 40)).save(tiff, "TIFF")
    add("tiff", tiff, (90, 180, 40), 0)
    bmp = root / "image.bmp"
    solid((250, 250, 0)).save(bmp, "BMP")
    add("bmp", bmp, (250, 250, 0), 0)
    webp = root / "image.webp"
    solid((0, 128, 255)).save(webp, "WEBP", lossless=True)
    add("webp", webp, (0, 128, 255), 0)
    add("gif", write_gif(root / "image.gif", (200, 0, 200)), (200, 0, 200), 0)
    return samples


def write_corrupt(path: str | os.PathLike[str], n_bytes: int = 4096, seed: int = 0) -> Path:
    """Random bytes under an image name."""
    target = Path(path)
    target.write_bytes(np.random.default_rng(seed).integers(0, 256, n_bytes, np.uint8).tobytes())
    return target


def write_truncated_jpeg(path: str | os.PathLike[str], size: tuple[int, int] = (256, 192)) -> Path:
    """A JPEG cut in half (a half-copied file)."""
    target = Path(path)
    noise = np.random.default_rng(1).integers(0, 256, (size[1], size[0], 3), np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(noise, "RGB").save(buffer, "JPEG", quality=90)
    data = buffer.getvalue()
    target.write_bytes(data[: len(data) // 2])
    return target


def write_empty(path: str | os.PathLike[str]) -> Path:
    """A zero-byte file."""
    target = Path(path)
    target.write_bytes(b"")
    return target


def write_text_as_jpeg(path: str | os.PathLike[str]) -> Path:
    """A text file with an image extension."""
    target = Path(path)
    target.write_text("this is not an image\n" * 20)
    return target


def write_unreadable(folder: str | os.PathLike[str]) -> dict[str, Path]:
    """Write every kind of unreadable file; return them by kind.

    Kinds: corrupt, truncated, empty, text, missing (never written), folder
    (a directory named like an image), broken-symlink.
    """
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    directory = root / "folder.jpg"
    directory.mkdir(exist_ok=True)
    link = root / "broken-link.jpg"
    if not link.is_symlink():
        link.symlink_to(root / "no-such-target.jpg")
    return {
        "corrupt": write_corrupt(root / "corrupt.jpg"),
        "truncated": write_truncated_jpeg(root / "truncated.jpg"),
        "empty": write_empty(root / "empty.jpg"),
        "text": write_text_as_jpeg(root / "notes.jpg"),
        "missing": root / "missing.jpg",
        "folder": directory,
        "broken-symlink": link,
    }


def varied_image(rng: np.random.Generator, size: tuple[int, int]) -> Image.Image:
    """A random scene: smooth coloured field, a few blobs, brightness and noise."""
    width, height = size
    small_w, small_h = max(8, width // 4), max(8, height // 4)
    coarse = rng.uniform(0, 255, (int(rng.integers(2, 6)), int(rng.integers(2, 6)), 3))
    field = Image.fromarray(coarse.astype(np.uint8), "RGB").resize(
        (small_w, small_h), Image.Resampling.BICUBIC
    )
    array = np.asarray(field, dtype=np.float32).copy()
    yy, xx = np.mgrid[0:small_h, 0:small_w]
    for _ in range(int(rng.integers(0, 4))):
        cx, cy = rng.uniform(0, small_w), rng.uniform(0, small_h)
        radius = rng.uniform(0.05, 0.3) * min(small_w, small_h)
        array[(xx - cx) ** 2 + (yy - cy) ** 2 < radius**2] = rng.uniform(0, 255, 3)
    array *= rng.uniform(0.3, 1.2)  # night-ish to bright
    if rng.random() < 0.3:  # infrared-like grayscale
        array[...] = array.mean(axis=2, keepdims=True)
    scene = Image.fromarray(np.clip(array, 0, 255).astype(np.uint8), "RGB").resize(
        (width, height), Image.Resampling.BILINEAR
    )
    noise = rng.standard_normal((height, width, 1), dtype=np.float32) * rng.uniform(0, 12)
    noisy = np.asarray(scene, dtype=np.float32) + noise
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def write_varied_jpegs(folder: str | os.PathLike[str], count: int, seed: int = 0) -> list[Path]:
    """``count`` random JPEGs of varied sizes, qualities, subsampling and progressiveness."""
    root = Path(folder)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    sizes = [(160, 120), (320, 240), (640, 480), (300, 400), (250, 250), (800, 450), (97, 61)]
    paths = []
    for index in range(count):
        size = sizes[int(rng.integers(len(sizes)))]
        paths.append(
            write_jpeg(
                root / f"varied_{index:04d}.jpg",
                varied_image(rng, size),
                quality=int(rng.integers(60, 96)),
                progressive=bool(rng.random() < 0.3),
                subsampling=int(rng.choice([0, 1, 2])),
            )
        )
    return paths
