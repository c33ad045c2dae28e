"""Measure the per-pixel chroma that tells night-IR frames from colour frames.

The default strategies call an image grayscale when the mean per-pixel chroma
of its thumbnail (``features.chroma``: ``max(R, G, B) - min(R, G, B)``
averaged over the 32x32 thumbnail) is below
:data:`smartdownsample.buckets.GRAYSCALE_CHROMA_THRESHOLD`. This script
prints that measure, and the 1.x channel-mean variance next to it, for
real photographs that installable packages ship, so the threshold can be
chosen between the two classes with a margin:

* colour day frames: scikit-image's astronaut, coffee, chelsea, rocket and
  motorcycle pictures and matplotlib's ``grace_hopper.jpg``, whole and as
  quarter crops (a crop is what the tool sees of a camera-trap animal, and
  quarters include the dullest parts of each photo);
* grayscale frames like night IR: scikit-image's camera, moon, coins, brick,
  grass, gravel, page and clock_motion, and every colour photo above converted to gray, each
  saved as an RGB JPEG (quality 75, chroma subsampled: the compression noise
  a camera adds), plain, with the faint tints IR cameras give (a few grey
  levels of magenta or green) and with per-channel sensor noise;
* the demo's synthetic "orange animal on blue sky" crop, whose channel means
  (136/149/148) fooled the 1.x rule.

Every image goes through the package's own decoder
(:func:`smartdownsample.loading.decode_file`) as a JPEG file, like a
camera-trap image. Needs ``pip install scikit-image`` (not a dependency of
the package). Run: ``python benchmarks/grayscale_threshold.py``.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Iterator
from pathlib import Path

import matplotlib
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from smartdownsample.buckets import GRAYSCALE_CHROMA_THRESHOLD, GRAYSCALE_VARIANCE_THRESHOLD
from smartdownsample.features import chroma_means
from smartdownsample.loading import decode_file, thumbnail_side

COLOUR_SKIMAGE = ("astronaut", "coffee", "chelsea", "rocket", "motorcycle_left")
GRAY_SKIMAGE = ("camera", "moon", "coins", "brick", "grass", "gravel", "page", "clock_motion")
IR_TINTS = {
    "plain": (0, 0, 0),
    "magenta +3": (3, 0, 3),
    "magenta +6": (6, 0, 6),
    "green +4": (0, 4, 0),
    "warm +5": (5, 2, -2),
}
"""Per-channel offsets (grey levels) added to grayscale frames: the faint casts
of IR cameras, whose filters leak a little more red/blue or green."""

JPEG_QUALITY = 75


def _skimage_picture(name: str) -> NDArray[np.uint8]:
    """A picture shipped inside the scikit-image wheel (read from disk, no download)."""
    import skimage

    folder = Path(skimage.__file__).parent / "data"
    path = next(folder.glob(f"{name}.*"))
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB" if image.mode not in ("L", "I;16") else "L"))


def _grace_hopper() -> NDArray[np.uint8]:
    sample = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return np.asarray(Image.open(sample).convert("RGB"))


def _quarters(picture: NDArray[np.uint8]) -> Iterator[tuple[str, NDArray[np.uint8]]]:
    height, width = picture.shape[:2]
    yield "whole", picture
    for row in range(2):
        for col in range(2):
            part = picture[
                row * height // 2 : (row + 1) * height // 2,
                col * width // 2 : (col + 1) * width // 2,
            ]
            yield f"quarter {row}{col}", part


def _gray(picture: NDArray[np.uint8]) -> NDArray[np.uint8]:
    if picture.ndim == 2:
        return picture
    return np.asarray(Image.fromarray(picture).convert("L"))


def _tinted(gray: NDArray[np.uint8], tint: tuple[int, int, int]) -> NDArray[np.uint8]:
    rgb = np.repeat(gray[:, :, None].astype(np.int16), 3, axis=2) + np.array(tint, np.int16)
    return np.clip(rgb, 0, 255).astype(np.uint8)


SENSOR_NOISE = 4.0
"""Standard deviation (grey levels) of independent per-channel noise added to
one variant of every gray frame: the colour noise of a small IR sensor."""


def _noisy(rgb: NDArray[np.uint8]) -> NDArray[np.uint8]:
    rng = np.random.default_rng(0)
    noise = rng.normal(0.0, SENSOR_NOISE, rgb.shape)
    return np.clip(rgb + noise, 0, 255).astype(np.uint8)


def _orange_on_blue() -> NDArray[np.uint8]:
    """An orange animal on a blue sky, as in the demo (channel means near 136/149/148)."""
    sky = np.zeros((240, 320, 3), np.uint8)
    sky[:] = (70, 150, 215)
    yy, xx = np.mgrid[0:240, 0:320]
    body = ((yy - 130) / 70.0) ** 2 + ((xx - 160) / 110.0) ** 2 < 1
    sky[body] = (225, 140, 40)
    return sky


def _measure(folder: Path, name: str, picture: NDArray[np.uint8]) -> tuple[float, float]:
    path = folder / f"{abs(hash(name))}.jpg"
    Image.fromarray(picture).convert("RGB").save(path, quality=JPEG_QUALITY)
    thumbnail = decode_file(path, thumbnail_side(8)).thumbnail
    chroma = float(chroma_means(thumbnail[None])[0])
    variance = float(thumbnail.reshape(-1, 3).mean(axis=0).var())
    return chroma, variance


def _samples() -> Iterator[tuple[str, str, NDArray[np.uint8]]]:
    colour = [(name, _skimage_picture(name)) for name in COLOUR_SKIMAGE]
    colour.append(("grace_hopper", _grace_hopper()))
    for name, picture in colour:
        for part, crop in _quarters(picture):
            yield "colour", f"{name} {part}", crop
    yield "colour", "demo orange animal on blue sky", _orange_on_blue()
    grays = [(name, _gray(_skimage_picture(name))) for name in GRAY_SKIMAGE]
    grays += [(f"{name} as gray", _gray(picture)) for name, picture in colour]
    for name, gray in grays:
        for tint_name, tint in IR_TINTS.items():
            yield "gray", f"{name} {tint_name}", _tinted(gray, tint)
        yield "gray", f"{name} sensor noise", _noisy(_tinted(gray, IR_TINTS["magenta +3"]))


def main() -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args()
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory() as folder:
        for kind, name, picture in _samples():
            chroma, variance = _measure(Path(folder), name, picture)
            rows.append((kind, name, chroma, variance))
    print(f"{'class':7} {'image':40} {'chroma':>7} {'var(means)':>11}")
    for kind, name, chroma, variance in sorted(rows, key=lambda row: row[2]):
        print(f"{kind:7} {name:40} {chroma:7.2f} {variance:11.1f}")
    gray = [row[2] for row in rows if row[0] == "gray"]
    colour = [row[2] for row in rows if row[0] == "colour"]
    print()
    print(f"gray/IR frames:  {len(gray):3d}, chroma {min(gray):.2f} .. {max(gray):.2f}")
    print(f"colour frames:   {len(colour):3d}, chroma {min(colour):.2f} .. {max(colour):.2f}")
    print(f"threshold in use: chroma < {GRAYSCALE_CHROMA_THRESHOLD:g} is grayscale")
    wrong = [r[1] for r in rows if (r[2] < GRAYSCALE_CHROMA_THRESHOLD) != (r[0] == "gray")]
    print(f"misjudged by the chroma rule: {wrong or 'none'}")
    spec = [r[1] for r in rows if (r[3] < GRAYSCALE_VARIANCE_THRESHOLD) != (r[0] == "gray")]
    print(f"misjudged by the 1.x rule (variance < {GRAYSCALE_VARIANCE_THRESHOLD:g}): {spec}")


if __name__ == "__main__":
    main()
