"""Synthetic camera-trap-like image sets for tests, benchmarks and the demo.

:func:`make_dataset` writes a folder tree that looks like the output of a
camera-trap survey: several *locations*, each with its own procedurally drawn
habitat (forest, snow, savanna, grassland), one to three *deployments* per
location, and *bursts* of 3-10 near-identical frames of one animal taken one
second apart.  A fraction of the bursts are infrared night shots (grayscale,
dark, with an IR-lit animal) and a smaller fraction are *rare* scenes (fog,
sunset, overexposed, blocked lens, snow storm) that a good diverse subset must
not miss.  The images are either MegaDetector-like *crops* centred on the
animal, full camera *frames*, or a mix of both.

Everything about the data set is recorded in ``root/ground_truth.csv`` (one row
per image, read back by :func:`load_dataset`), so tests and benchmarks can score
a selection against the truth: which burst, location, scene each image shows.

Drawing is vectorised numpy; Pillow only resizes and encodes.  Every burst's
randomness comes from ``numpy.random.default_rng([seed, burst_id])`` and every
location's from its own stream, so the files are byte-identical for the same
arguments whatever ``n_workers`` is.

Examples
--------
>>> import tempfile
>>> from smartdownsample.synthetic import make_dataset
>>> ds = make_dataset(tempfile.mkdtemp(), n_images=20, seed=1)
>>> len(ds.images)
20
>>> sorted(set(ds.column("kind").tolist()))
['crop']
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import functools
import logging
import math
import operator
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from itertools import repeat
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
from PIL import Image

from smartdownsample._exceptions import InvalidArgumentError

__all__ = [
    "GROUND_TRUTH_NAME",
    "HABITATS",
    "IMAGE_KINDS",
    "RARE_SCENES",
    "SCENES",
    "ImageKind",
    "SyntheticDataset",
    "SyntheticImage",
    "load_dataset",
    "location_habitat",
    "make_dataset",
    "megadetector_document",
    "species_names",
]

logger = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float32]
ByteArray = npt.NDArray[np.uint8]
RGB = tuple[float, float, float]

ImageKind = Literal["crops", "frames", "mixed"]
"""What :func:`make_dataset` writes: detector crops, full frames, or both."""

IMAGE_KINDS: tuple[ImageKind, ...] = ("crops", "frames", "mixed")

RARE_SCENES: tuple[str, ...] = ("fog", "sunset", "overexposed", "blocked_lens", "snow_storm")
"""Unusual conditions that a diverse subset should still contain."""

SCENES: tuple[str, ...] = ("day", "night_ir", *RARE_SCENES)
"""Every value of :attr:`SyntheticImage.scene`."""

HABITATS: tuple[str, ...] = ("forest", "snow", "savanna", "grassland")
"""Habitats of the locations; location ``i`` has ``HABITATS[i % len(HABITATS)]``."""

GROUND_TRUTH_NAME = "ground_truth.csv"
"""File name of the ground-truth table written into the data set's root."""

# --- burst structure -------------------------------------------------------------------------
MIN_BURST_FRAMES = 3  # fewest frames in a burst (camera set to 3-10 shots per trigger)
MAX_BURST_FRAMES = 10  # most frames in a burst
MAX_DEPLOYMENTS = 3  # deployments (card swaps / re-mountings) per location: 1..3
FRAME_INTERVAL_S = 1  # seconds between consecutive frames of a burst
MIN_BURST_GAP_S = 120  # shortest pause between two bursts of one deployment (2 min)
MAX_BURST_GAP_S = 6 * 3600  # longest pause between two bursts (6 h), log-uniform in between
MIN_DEPLOYMENT_GAP_DAYS = 2  # days between the end of a deployment and the next one
MAX_DEPLOYMENT_GAP_DAYS = 14
MAX_START_OFFSET_DAYS = 30  # locations start up to a month after START_DATE
START_DATE = dt.datetime(2024, 3, 1)  # first possible capture day of the survey
LOCATION_WEIGHT_RANGE = (0.5, 1.5)  # relative activity of locations (uneven folder sizes)

# Time-of-day windows (start hour, length in hours) in which each scene's bursts are taken,
# so that capture_time agrees with is_night; the night window wraps past midnight.
DAY_WINDOW = (7.0, 11.0)  # 07:00-18:00
SUNSET_WINDOW = (18.0, 1.5)  # 18:00-19:30
NIGHT_WINDOW = (20.5, 8.5)  # 20:30-05:00
MAX_WINDOW_DELAY_H = 2.0  # a burst moved into its window starts at most this late into it

# --- image geometry --------------------------------------------------------------------------
MIN_CROP_SIDE = 150  # detector crops are 150..600 px on a side
MAX_CROP_SIDE = 600
CROP_MARGIN_RANGE = (1.05, 1.35)  # crop box = animal box times this (detector padding)
CROP_ASPECT_JITTER = (0.85, 1.15)  # extra random stretch of the crop box width
DRAW_SCALE = 4  # frames are drawn at 1/DRAW_SCALE resolution, then upscaled
MIN_FRAME_SIDE = 64  # smallest accepted frame_size side
JITTER_PX = 4  # most an animal (or a crop window) moves between frames of a burst, in px
CROP_EDGE_SOFTNESS_PX = 1.2  # anti-aliasing width of animal edges in crops
FRAME_EDGE_SOFTNESS_PX = 0.8  # same, in the low-resolution frame drawing

# --- noise and exposure ----------------------------------------------------------------------
# Sensor noise: uniform integers 0..amp-1 added to every pixel.  Drawn images are clipped to
# 255 - amp first, so adding the noise can never overflow.  Crops get more, so that their
# JPEGs are not trivially small.
FRAME_NOISE_AMP = 20
CROP_NOISE_AMP = 28
NOISE_PAD = 64  # the noise tile is this much larger than a frame, for random offsets
BRIGHTNESS_FLICKER = 0.02  # std of the per-frame exposure factor within a burst

SNOW_WHITE_BALANCE: RGB = (0.86, 1.0, 1.16)  # cold cast of cameras at snow locations

# --- night infrared --------------------------------------------------------------------------
IR_WEIGHTS: RGB = (0.25, 0.55, 0.20)  # IR response of R, G, B scene colours (leaves glow)
NIGHT_TARGET_MEAN = (45.0, 75.0)  # mean gray level of a night background, drawn per burst
NIGHT_FLOOR = 6.0  # sensor black level at night
NIGHT_SKY_GAIN = 0.12  # IR flash barely reaches the sky / far background
NIGHT_VIGNETTE = 0.5  # the flash is this much weaker in the corners than in the centre
NIGHT_CROP_GAIN = 0.7  # mean background of night crops relative to the burst's target mean
MAX_IR_ANIMAL = 215.0  # brightest IR-lit animal gray level

# --- info strip (date/time bar that many camera models burn into frames) ---------------------
STRIP_FRACTION = 0.026  # bar height as a fraction of the frame height
STRIP_BACKGROUND = 16  # near-black bar
STRIP_TEXT = 232  # light-gray digits
MIN_STRIP_PX = 8  # no bar on frames so small that it would be thinner than this

# --- rare scenes -----------------------------------------------------------------------------
FOG_KEEP = 0.3  # fraction of scene contrast left in fog
FOG_COLOUR: RGB = (200.0, 203.0, 208.0)
SUNSET_GAIN: RGB = (0.95, 0.48, 0.25)  # strong orange/red cast
SUNSET_OFFSET: RGB = (45.0, 12.0, 0.0)
OVEREXPOSED_KEEP = 0.12  # what is left of the scene in a blown-out frame
OVEREXPOSED_LEVEL = 226.0
SNOW_STORM_KEEP = 0.5
SNOW_STORM_HAZE: RGB = (110.0, 112.0, 118.0)
SNOW_FLAKE_DENSITY = (0.004, 0.012)  # flakes per pixel
LEAF_COLOUR: RGB = (82.0, 58.0, 32.0)
HAND_COLOUR: RGB = (188.0, 138.0, 108.0)

# --- output ----------------------------------------------------------------------------------
IMAGE_PREFIX = "IMG_"
EXTENSIONS = (".JPG", ".jpg")  # alternated across locations
EXIF_DATETIME = 0x0132
EXIF_MAKE = 0x010F
EXIF_MODEL = 0x0110
EXIF_IFD = 0x8769
EXIF_DATETIME_ORIGINAL = 0x9003
EXIF_DATETIME_DIGITIZED = 0x9004
EXIF_TIME_FORMAT = "%Y:%m:%d %H:%M:%S"

# Extra entropy words that separate the random streams of the plan, the locations and the
# noise tile from the per-burst streams default_rng([seed, burst_id]).
_PLAN_STREAM = 0x504C414E
_LOCATION_STREAM = 0x4C4F4341
_NOISE_STREAM = 0x4E4F4953


# ==============================================================================================
# Public data classes
# ==============================================================================================


@dataclass(frozen=True)
class SyntheticImage:
    """Ground truth of one synthetic image.

    Attributes
    ----------
    path : str
        Absolute path of the written JPEG.
    relpath : str
        Path relative to the data set root, with forward slashes.
    location : str
        Camera location, e.g. ``"loc03"``.
    deployment : str
        Deployment of that camera, e.g. ``"dep1"``.
    burst_id : int
        Global burst number, ``0 .. n_bursts - 1``, in folder and time order.
    frame : int
        Index of the frame inside its burst.
    scene : str
        One of :data:`SCENES`.
    is_rare : bool
        Whether ``scene`` is one of :data:`RARE_SCENES`.
    is_night : bool
        Whether the image is an infrared night shot.
    kind : str
        ``"crop"`` or ``"frame"``.
    capture_time : str
        ISO 8601 capture time, e.g. ``"2024-05-01T13:22:05"``.
    width, height : int
        Size of the image in pixels.
    species : str
        The animal drawn (one of the species of :func:`species_names`).
    box_x, box_y, box_w, box_h : float
        The animal's box in the image, normalised ``[x, y, w, h]`` (upper-left
        corner, width and height as fractions of the image, 4 decimals, clamped
        to the image): the box a detector would report. For a crop, the
        animal's box inside the crop. NaN for a data set written before boxes
        were recorded.
    """

    path: str
    relpath: str
    location: str
    deployment: str
    burst_id: int
    frame: int
    scene: str
    is_rare: bool
    is_night: bool
    kind: str
    capture_time: str
    width: int
    height: int
    species: str = ""
    box_x: float = math.nan
    box_y: float = math.nan
    box_w: float = math.nan
    box_h: float = math.nan


_FIELDS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(SyntheticImage))
CSV_COLUMNS: tuple[str, ...] = tuple(name for name in _FIELDS if name != "path")
_INT_FIELDS = frozenset({"burst_id", "frame", "width", "height"})
_BOOL_FIELDS = frozenset({"is_rare", "is_night"})
_FLOAT_FIELDS = frozenset({"box_x", "box_y", "box_w", "box_h"})
_LATER_FIELDS = ("species", *sorted(_FLOAT_FIELDS))
LEGACY_CSV_COLUMNS = tuple(name for name in CSV_COLUMNS if name not in _LATER_FIELDS)
"""Columns of a ground truth written before species and boxes were recorded (still read)."""

BOX_DECIMALS = 4
"""Decimals of the ground-truth boxes, as MegaDetector writes its boxes."""


@dataclass(frozen=True)
class SyntheticDataset:
    """A synthetic data set on disk and its ground truth.

    Attributes
    ----------
    root : str
        Absolute path of the data set folder.
    images : tuple of SyntheticImage
        One entry per image, ordered by burst then frame (folder and time order).
    ground_truth_csv : str
        Path of ``root/ground_truth.csv``.

    Examples
    --------
    >>> import tempfile
    >>> ds = make_dataset(tempfile.mkdtemp(), n_images=12, seed=3)
    >>> ds.column("burst_id")[:3]
    array([0, 0, 0])
    """

    root: str
    images: tuple[SyntheticImage, ...]
    ground_truth_csv: str

    def __len__(self) -> int:
        return len(self.images)

    @property
    def paths(self) -> list[str]:
        """Absolute paths of all images, in the order of :attr:`images`."""
        return [image.path for image in self.images]

    def column(self, name: str) -> npt.NDArray[Any]:
        """Return one ground-truth field for all images as a numpy array.

        Parameters
        ----------
        name : str
            A :class:`SyntheticImage` field, e.g. ``"burst_id"`` (int array),
            ``"is_night"`` (bool array) or ``"location"`` (str array).

        Returns
        -------
        numpy.ndarray
            Values aligned with :attr:`images`.

        Raises
        ------
        KeyError
            If ``name`` is not a field.
        """
        if name not in _FIELDS:
            raise KeyError(f"unknown column {name!r}; choose one of {', '.join(_FIELDS)}")
        values = [getattr(image, name) for image in self.images]
        if name in _INT_FIELDS:
            return np.array(values, dtype=np.int64)
        if name in _BOOL_FIELDS:
            return np.array(values, dtype=bool)
        if name in _FLOAT_FIELDS:
            return np.array(values, dtype=np.float64)
        return np.array(values, dtype=str)


def location_habitat(location: str) -> str:
    """Return the habitat drawn at a location made by :func:`make_dataset`.

    Parameters
    ----------
    location : str
        A location name such as ``"loc05"``.

    Returns
    -------
    str
        One of :data:`HABITATS`.

    Examples
    --------
    >>> location_habitat("loc05")
    'snow'
    """
    digits = location.removeprefix("loc")
    if not digits.isdigit():
        raise InvalidArgumentError(f"not a synthetic location name: {location!r}")
    return HABITATS[int(digits) % len(HABITATS)]


# ==============================================================================================
# Species, cameras
# ==============================================================================================


@dataclass(frozen=True)
class _Species:
    name: str
    colour: RGB  # daylight fur colour
    length_px: tuple[float, float]  # body length in a full frame, when nearest the camera
    aspect: float  # body length / body height
    head: float  # head radius relative to body length
    head_up: float  # 0 = head level with the back (boar), 1 = raised on a neck (deer)
    leg: float  # leg length relative to body length
    ir: float  # gray level of the animal under the IR flash


_SPECIES: dict[str, _Species] = {
    s.name: s
    for s in (
        _Species("deer", (135, 95, 60), (280, 700), 1.9, 0.13, 0.9, 0.45, 165),
        _Species("fox", (190, 95, 40), (140, 380), 2.4, 0.12, 0.3, 0.22, 175),
        _Species("boar", (70, 58, 50), (220, 560), 1.7, 0.16, 0.05, 0.2, 120),
        _Species("hare", (150, 128, 95), (90, 240), 1.5, 0.15, 0.5, 0.12, 160),
        _Species("bird", (45, 42, 50), (70, 200), 1.6, 0.16, 0.6, 0.18, 115),
        _Species("lynx", (172, 140, 100), (170, 420), 2.0, 0.14, 0.4, 0.3, 170),
        _Species("bear", (62, 44, 32), (320, 820), 1.5, 0.17, 0.2, 0.25, 125),
        _Species("elephant", (118, 112, 106), (520, 1000), 1.3, 0.25, 0.3, 0.42, 150),
        _Species("antelope", (178, 122, 70), (260, 620), 1.8, 0.12, 0.85, 0.48, 170),
        _Species("lion", (192, 150, 95), (300, 700), 2.1, 0.17, 0.35, 0.32, 175),
    )
}

_HABITAT_SPECIES: dict[str, tuple[str, ...]] = {
    "forest": ("deer", "boar", "fox", "bear", "lynx", "bird", "hare"),
    "snow": ("deer", "fox", "hare", "lynx", "bear", "bird"),
    "savanna": ("elephant", "antelope", "lion", "hare", "bird", "boar"),
    "grassland": ("deer", "fox", "hare", "bird", "boar", "antelope"),
}

# (make, model, burns a date/time strip into its frames); cycled over locations.
_CAMERAS: tuple[tuple[str, str, bool], ...] = (
    ("SynthCam", "TC-100", True),
    ("SynthCam", "TC-200 IR", False),
    ("WildEye", "WE-4K", True),
    ("TrailSim", "TS-8", False),
    ("WildEye", "WE-2", False),
)


# ==============================================================================================
# Drawing helpers
# ==============================================================================================


def _ellipse_alpha(
    height: int,
    width: int,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    soft: float,
) -> tuple[slice, slice, FloatArray] | None:
    """Anti-aliased coverage of an axis-aligned ellipse, over its bounding box only."""
    rx = max(rx, 0.5)
    ry = max(ry, 0.5)
    x0 = max(math.floor(cx - rx - soft), 0)
    x1 = min(math.ceil(cx + rx + soft) + 1, width)
    y0 = max(math.floor(cy - ry - soft), 0)
    y1 = min(math.ceil(cy + ry + soft) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    xs = (np.arange(x0, x1, dtype=np.float32) - np.float32(cx)) / np.float32(rx)
    ys = (np.arange(y0, y1, dtype=np.float32) - np.float32(cy)) / np.float32(ry)
    d2 = xs[None, :] ** 2 + ys[:, None] ** 2
    # Near the rim 1 - d2 ~ 2 * (distance inside the rim) / radius, so this is a linear ramp
    # of width `soft` pixels centred on the rim.
    ramp = np.float32(min(rx, ry) / (2.0 * soft))
    alpha = np.clip((1.0 - d2) * ramp + 0.5, 0.0, 1.0)
    return slice(y0, y1), slice(x0, x1), alpha.astype(np.float32, copy=False)


def _paint_ellipse(
    canvas: FloatArray,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    colour: RGB,
    soft: float = 1.0,
) -> None:
    """Blend a flat-coloured ellipse into ``canvas`` (H, W, 3) in place."""
    found = _ellipse_alpha(canvas.shape[0], canvas.shape[1], cx, cy, rx, ry, soft)
    if found is None:
        return
    sy, sx, alpha = found
    region = canvas[sy, sx]
    region += alpha[..., None] * (np.asarray(colour, dtype=np.float32) - region)


def _paint_rect(
    canvas: FloatArray, x0: float, x1: float, y0: float, y1: float, colour: RGB
) -> None:
    """Fill an axis-aligned rectangle of ``canvas`` with a flat colour."""
    h, w = canvas.shape[:2]
    ix0, ix1 = max(int(x0), 0), min(math.ceil(x1), w)
    iy0, iy1 = max(int(y0), 0), min(math.ceil(y1), h)
    if ix0 < ix1 and iy0 < iy1:
        canvas[iy0:iy1, ix0:ix1] = np.asarray(colour, dtype=np.float32)


def _smooth_noise(
    rng: np.random.Generator, height: int, width: int, cells: tuple[int, int]
) -> FloatArray:
    """Random field of roughly unit variance that varies over ``cells`` (rows, cols)."""
    small = rng.standard_normal((max(cells[0], 2), max(cells[1], 2))).astype(np.float32)
    image = Image.fromarray(small).resize((width, height), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.float32)


def _scaled(colour: RGB, factor: float) -> RGB:
    return (colour[0] * factor, colour[1] * factor, colour[2] * factor)


def _jittered(rng: np.random.Generator, colour: RGB, amount: float) -> RGB:
    """``colour`` with each channel scaled by a random factor 1 +- ``amount``."""
    f = rng.uniform(1.0 - amount, 1.0 + amount, 3)
    return (colour[0] * float(f[0]), colour[1] * float(f[1]), colour[2] * float(f[2]))


# ==============================================================================================
# Locations (backgrounds)
# ==============================================================================================


@dataclass(frozen=True, eq=False)
class _Location:
    habitat: str
    background: FloatArray  # (h, w, 3) daylight scene at 1/DRAW_SCALE of the frame size
    background_image: Image.Image  # the same as 8-bit RGB, for resizing crop regions
    horizon: float  # horizon height as a fraction of the frame height
    night_map: FloatArray  # (h, w) IR flash reach (falloff with distance, vignette)
    night_reference: float  # mean IR luminance of the background under night_map
    white_balance: RGB
    make: str
    model: str
    info_strip: bool


@dataclass(frozen=True)
class _Palette:
    sky_top: RGB
    sky_horizon: RGB
    ground_far: RGB
    ground_near: RGB
    horizon: tuple[float, float]  # range of the horizon height (fraction of the frame)
    texture: float  # strength of the ground texture


_PALETTES: dict[str, _Palette] = {
    # In the forest the "sky" band is mostly dense foliage.
    "forest": _Palette((38, 72, 34), (92, 122, 78), (66, 86, 48), (74, 100, 44), (0.35, 0.5), 0.2),
    # Snow under auto-exposure: bluish, well below white so it keeps its colour cast.
    "snow": _Palette(
        (128, 152, 198), (168, 188, 222), (172, 194, 228), (150, 176, 222), (0.25, 0.45), 0.06
    ),
    "savanna": _Palette(
        (88, 138, 205), (188, 200, 214), (204, 154, 104), (176, 108, 62), (0.3, 0.5), 0.16
    ),
    "grassland": _Palette(
        (80, 130, 200), (176, 196, 222), (152, 166, 92), (112, 146, 54), (0.28, 0.48), 0.14
    ),
}


@dataclass(frozen=True)
class _Scene:
    """Where habitat objects go: the drawing's size and horizon, and the object scale."""

    width: int
    height: int
    horizon_px: float
    unit: float  # object sizes are tuned for a 480 px wide drawing
    rng: np.random.Generator

    @property
    def ground(self) -> float:
        return self.height - self.horizon_px

    def base_rows(self, n: int, lo: float, hi: float) -> npt.NDArray[np.float64]:
        """Rows (far to near) where ``n`` objects stand, between ``lo`` and ``hi`` of the ground."""
        return np.sort(self.horizon_px + self.rng.uniform(lo, hi, n) * self.ground)


def _draw_habitat_objects(
    canvas: FloatArray, habitat: str, horizon_px: float, rng: np.random.Generator
) -> None:
    """Trees, bushes and rocks of a habitat, painted far to near."""
    h, w = canvas.shape[:2]
    scene = _Scene(w, h, horizon_px, w / 480.0, rng)
    draw = {"forest": _draw_forest, "snow": _draw_snow, "savanna": _draw_savanna}
    draw.get(habitat, _draw_grassland)(canvas, scene)


def _draw_forest(canvas: FloatArray, scene: _Scene) -> None:
    """Canopy gaps, trunks and leaf masses of a forest."""
    for _ in range(int(scene.rng.integers(3, 7))):  # bright gaps in the canopy
        _paint_ellipse(
            canvas,
            scene.rng.uniform(0, scene.width),
            scene.rng.uniform(0, scene.horizon_px * 0.8),
            scene.rng.uniform(6, 22) * scene.unit,
            scene.rng.uniform(4, 14) * scene.unit,
            _jittered(scene.rng, (196, 212, 214), 0.05),
            soft=3 * scene.unit,
        )
    for base in scene.base_rows(int(scene.rng.integers(8, 16)), -0.05, 0.55):
        near = (base - scene.horizon_px) / scene.ground + 0.3
        x = scene.rng.uniform(0, scene.width)
        half = scene.rng.uniform(2.0, 7.0) * scene.unit * near
        _paint_rect(canvas, x - half, x + half, 0, base, _jittered(scene.rng, (62, 46, 34), 0.25))
    for _ in range(int(scene.rng.integers(5, 10))):
        _paint_ellipse(
            canvas,
            scene.rng.uniform(0, scene.width),
            scene.rng.uniform(-0.1, 0.35) * scene.height,
            scene.rng.uniform(40, 110) * scene.unit,
            scene.rng.uniform(20, 50) * scene.unit,
            _jittered(scene.rng, (34, 70, 30), 0.2),
            soft=4 * scene.unit,
        )


def _draw_snow(canvas: FloatArray, scene: _Scene) -> None:
    """A distant tree line and conifers in snow."""
    for _ in range(int(scene.rng.integers(15, 30))):  # distant tree line
        _paint_ellipse(
            canvas,
            scene.rng.uniform(0, scene.width),
            scene.horizon_px,
            scene.rng.uniform(6, 20) * scene.unit,
            scene.rng.uniform(3, 9) * scene.unit,
            _jittered(scene.rng, (52, 72, 68), 0.15),
            soft=2 * scene.unit,
        )
    for base in scene.base_rows(int(scene.rng.integers(3, 8)), 0.0, 0.5):
        near = (base - scene.horizon_px) / scene.ground + 0.4
        x = scene.rng.uniform(0, scene.width)
        height = scene.rng.uniform(60, 150) * scene.unit * near
        colour = _jittered(scene.rng, (30, 56, 42), 0.2)
        for level in range(4):  # a conifer: stacked, narrowing ellipses
            frac = level / 4.0
            _paint_ellipse(
                canvas,
                x,
                base - height * (0.15 + 0.22 * level),
                height * 0.28 * (1.0 - frac * 0.7),
                height * 0.14,
                colour,
                soft=1.5 * scene.unit,
            )


def _draw_savanna(canvas: FloatArray, scene: _Scene) -> None:
    """Flat-topped trees and termite mounds of a savanna."""
    for base in scene.base_rows(int(scene.rng.integers(1, 5)), 0.0, 0.4):
        near = (base - scene.horizon_px) / scene.ground + 0.4
        x = scene.rng.uniform(0, scene.width)
        height = scene.rng.uniform(40, 110) * scene.unit * near
        trunk = 2 * scene.unit * near
        _paint_rect(canvas, x - trunk, x + trunk, base - height, base, (80, 62, 44))
        _paint_ellipse(
            canvas,
            x,
            base - height,
            height * scene.rng.uniform(0.7, 1.1),
            height * 0.18,
            _jittered(scene.rng, (92, 98, 46), 0.15),
            soft=2 * scene.unit,
        )
    for base in scene.base_rows(int(scene.rng.integers(2, 7)), 0.05, 0.95):
        near = (base - scene.horizon_px) / scene.ground + 0.3
        r = scene.rng.uniform(6, 26) * scene.unit * near
        _paint_ellipse(
            canvas,
            scene.rng.uniform(0, scene.width),
            base,
            r,
            r * 0.6,
            _jittered(scene.rng, (142, 100, 76), 0.15),
        )


def _draw_grassland(canvas: FloatArray, scene: _Scene) -> None:
    """Bushes and rocks of a grassland."""
    for base in scene.base_rows(int(scene.rng.integers(3, 9)), 0.0, 0.9):
        near = (base - scene.horizon_px) / scene.ground + 0.3
        r = scene.rng.uniform(10, 36) * scene.unit * near
        _paint_ellipse(
            canvas,
            scene.rng.uniform(0, scene.width),
            base - r * 0.4,
            r,
            r * 0.6,
            _jittered(scene.rng, (60, 92, 40), 0.2),
            soft=2 * scene.unit,
        )
    for base in scene.base_rows(int(scene.rng.integers(0, 4)), 0.1, 0.95):
        near = (base - scene.horizon_px) / scene.ground + 0.3
        r = scene.rng.uniform(6, 20) * scene.unit * near
        _paint_ellipse(
            canvas,
            scene.rng.uniform(0, scene.width),
            base,
            r,
            r * 0.6,
            _jittered(scene.rng, (132, 130, 124), 0.1),
        )


@functools.lru_cache(maxsize=4)
def _location(seed: int, loc_idx: int, width: int, height: int) -> _Location:
    """Draw (once per process) the fixed background of one location at ``width`` x ``height``."""
    rng = np.random.default_rng([seed, _LOCATION_STREAM, loc_idx])
    habitat = HABITATS[loc_idx % len(HABITATS)]
    pal = _PALETTES[habitat]
    horizon = float(rng.uniform(*pal.horizon))
    horizon_px = horizon * height

    rows = np.arange(height, dtype=np.float32)[:, None]
    sky_t = np.clip(rows / max(horizon_px, 1.0), 0.0, 1.0)[..., None]
    ground_t = np.clip((rows - horizon_px) / max(height - horizon_px, 1.0), 0.0, 1.0)[..., None]
    is_ground = np.clip(rows - horizon_px + 0.5, 0.0, 1.0)[..., None]  # soft horizon line
    sky = (
        np.asarray(pal.sky_top, np.float32) * (1 - sky_t)
        + np.asarray(pal.sky_horizon, np.float32) * sky_t
    )
    grd = (
        np.asarray(pal.ground_far, np.float32) * (1 - ground_t)
        + np.asarray(pal.ground_near, np.float32) * ground_t
    )
    column = sky * (1 - is_ground) + grd * is_ground  # (h, 1, 3)

    low = _smooth_noise(rng, height, width, (4, 6))
    mid = _smooth_noise(rng, height, width, (height // 8, width // 8))
    fine = rng.standard_normal((height, width)).astype(np.float32)
    texture = 1.0 + pal.texture * (0.5 * low + 0.35 * mid + 0.25 * fine) * is_ground[..., 0]
    clouds = np.clip(_smooth_noise(rng, height, width, (3, 5)), 0.0, None) * (
        18.0 * (1.0 - is_ground[..., 0])
    )
    canvas = column * texture[..., None] + clouds[..., None]
    for c in range(3):  # slow colour drift across the scene
        canvas[..., c] *= 1.0 + 0.025 * _smooth_noise(rng, height, width, (3, 4))
    canvas = canvas.astype(np.float32, copy=False)
    _draw_habitat_objects(canvas, habitat, horizon_px, rng)
    np.clip(canvas, 0.0, 255.0, out=canvas)

    # IR flash reach: the sky and far background stay dark, the near ground is lit, corners
    # are darker than the centre.
    depth = np.clip((rows - horizon_px) / max(height - horizon_px, 1.0), 0.0, 1.0) ** 0.7
    reach = NIGHT_SKY_GAIN + (1.0 - NIGHT_SKY_GAIN) * depth  # (h, 1)
    xs = np.linspace(-1.0, 1.0, width, dtype=np.float32)[None, :]
    ys = np.linspace(-1.0, 1.0, height, dtype=np.float32)[:, None]
    vignette = 1.0 - NIGHT_VIGNETTE * (xs**2 + ys**2) / 2.0
    night_map = (reach * vignette).astype(np.float32)
    luminance = _ir_luminance(canvas)
    night_reference = float(np.mean(luminance * night_map, dtype=np.float64))

    wb = rng.uniform(0.95, 1.05, 3)
    if habitat == "snow":  # auto white balance on snow leaves a cold blue cast
        wb *= np.asarray(SNOW_WHITE_BALANCE)
    make, model, strip = _CAMERAS[loc_idx % len(_CAMERAS)]
    return _Location(
        habitat=habitat,
        background=canvas,
        background_image=Image.fromarray(canvas.astype(np.uint8)),
        horizon=horizon,
        night_map=night_map,
        night_reference=max(night_reference, 1.0),
        white_balance=(float(wb[0]), float(wb[1]), float(wb[2])),
        make=make,
        model=model,
        info_strip=strip,
    )


def _ir_luminance(image: FloatArray) -> FloatArray:
    r, g, b = IR_WEIGHTS
    lum: FloatArray = image[..., 0] * r + image[..., 1] * g + image[..., 2] * b
    return lum


@functools.lru_cache(maxsize=2)
def _noise_tile(height: int, width: int, amp: int) -> ByteArray:
    """Fixed sensor-noise tile (values 0..amp-1), sliced at random offsets for every image."""
    rng = np.random.default_rng([_NOISE_STREAM, amp])
    return rng.integers(0, amp, (height, width, 3), dtype=np.uint8)


# ==============================================================================================
# Scene colour transforms
# ==============================================================================================


@dataclass(frozen=True)
class _Transform:
    """Per-pixel affine colour map ``out = M @ rgb + offset`` (affine maps keep blends)."""

    matrix: tuple[RGB, RGB, RGB]
    offset: RGB

    def apply(self, image: FloatArray) -> FloatArray:
        r, g, b = image[..., 0], image[..., 1], image[..., 2]
        out = np.empty_like(image)
        for c in range(3):
            m = self.matrix[c]
            out[..., c] = r * m[0] + g * m[1] + b * m[2] + self.offset[c]
        return out

    def colour(self, rgb: RGB) -> RGB:
        """Transformed colour without the offset (for shading before adding the offset)."""
        m = self.matrix
        return (
            m[0][0] * rgb[0] + m[0][1] * rgb[1] + m[0][2] * rgb[2],
            m[1][0] * rgb[0] + m[1][1] * rgb[1] + m[1][2] * rgb[2],
            m[2][0] * rgb[0] + m[2][1] * rgb[1] + m[2][2] * rgb[2],
        )


def _diagonal(gain: RGB, offset: RGB = (0.0, 0.0, 0.0)) -> _Transform:
    return _Transform(
        ((gain[0], 0.0, 0.0), (0.0, gain[1], 0.0), (0.0, 0.0, gain[2])),
        offset,
    )


def _scene_transform(
    scene: str, hour: float, loc: _Location, rng: np.random.Generator
) -> tuple[_Transform, float]:
    """Colour transform of a burst (lighting, IR, fog, ...) and its night target mean."""
    sun = max(math.sin(math.pi * (hour - 5.5) / 14.0), 0.15)  # low in the morning and evening
    light = (0.6 + 0.45 * sun) * float(rng.uniform(0.85, 1.1))  # * clouds / exposure
    warmth = (1.0 - sun) * 0.1  # low sun is warmer (redder, less blue)
    wb = loc.white_balance
    day = (light * wb[0] * (1 + warmth), light * wb[1], light * wb[2] * (1 - 1.2 * warmth))
    night_target = float(rng.uniform(*NIGHT_TARGET_MEAN))
    fog = _jittered(rng, FOG_COLOUR, 0.03)
    if scene == "night_ir":
        gain = night_target / loc.night_reference
        row = (IR_WEIGHTS[0] * gain, IR_WEIGHTS[1] * gain, IR_WEIGHTS[2] * gain)
        return _Transform((row, row, row), (NIGHT_FLOOR,) * 3), night_target
    if scene == "fog":
        return _diagonal((FOG_KEEP,) * 3, _scaled(fog, 1.0 - FOG_KEEP)), 0.0
    if scene == "sunset":
        return _diagonal(SUNSET_GAIN, SUNSET_OFFSET), 0.0
    if scene == "overexposed":
        return _diagonal((OVEREXPOSED_KEEP,) * 3, (OVEREXPOSED_LEVEL,) * 3), 0.0
    if scene == "snow_storm":
        return _diagonal(_scaled(day, SNOW_STORM_KEEP), SNOW_STORM_HAZE), 0.0
    return _diagonal(day), 0.0  # "day" and "blocked_lens"


# ==============================================================================================
# Animals
# ==============================================================================================

# An ellipse (dx, dy, rx, ry) in units of the body length, relative to the body centre.
_Part = tuple[float, float, float, float]


@dataclass(frozen=True)
class _Animal:
    species: _Species
    colour: RGB
    facing: int  # +1 looks right, -1 looks left
    length: float  # body length in full-frame pixels
    ir_level: float  # gray level under the IR flash
    parts: tuple[_Part, ...]
    eye: _Part
    bbox: tuple[float, float, float, float]  # x0, x1, y0, y1 in body lengths
    feet: float  # y of the feet in body lengths


def _make_animal(species: _Species, rng: np.random.Generator, near: float) -> _Animal:
    facing = 1 if rng.random() < 0.5 else -1
    colour = _jittered(rng, species.colour, 0.12)
    length = float(rng.uniform(*species.length_px)) * (0.35 + 0.65 * near)
    ir_level = min(species.ir * (0.55 + 0.4 * near) * float(rng.uniform(0.9, 1.1)), MAX_IR_ANIMAL)
    ry = 0.5 / species.aspect
    head, up = species.head, species.head_up
    hx = facing * (0.5 + 0.3 * head)
    hy = -ry * (0.2 + 1.3 * up)
    parts: list[_Part] = [(0.0, 0.0, 0.5, ry), (hx, hy, head * 1.25, head)]
    if up > 0.4:  # neck
        parts.append((facing * (0.42 + 0.1 * head), hy * 0.5, 0.07 + 0.3 * head, abs(hy) * 0.55))
    leg_rx = 0.015 if species.name == "bird" else 0.035
    leg_top = ry * 0.5
    for lx in (-0.36, -0.24, 0.24, 0.36):
        parts.append((lx, leg_top + species.leg / 2, leg_rx, species.leg / 2 + 0.02))
    parts.append((-facing * 0.52, -ry * 0.3, 0.08, 0.04))  # tail
    eye = (hx + facing * head * 0.55, hy - head * 0.25, head * 0.18, head * 0.18)
    x0 = min(p[0] - p[2] for p in parts)
    x1 = max(p[0] + p[2] for p in parts)
    y0 = min(p[1] - p[3] for p in parts)
    y1 = max(p[1] + p[3] for p in parts)
    return _Animal(
        species=species,
        colour=colour,
        facing=facing,
        length=length,
        ir_level=ir_level,
        parts=tuple(parts),
        eye=eye,
        bbox=(x0, x1, y0, y1),
        feet=leg_top + species.leg,
    )


def _paint_animal(
    canvas: FloatArray,
    animal: _Animal,
    cx: float,
    cy: float,
    scale: float,
    transform: _Transform | None,
    soft: float,
) -> None:
    """Blend the animal, body centre at (cx, cy), ``scale`` canvas px per body length.

    ``transform`` is the burst's colour transform (daylight, fog, ...); ``None`` paints the
    IR-lit gray animal of a night shot.
    """
    h, w = canvas.shape[:2]
    bx0, bx1, by0, by1 = animal.bbox
    x0 = max(math.floor(cx + bx0 * scale - soft), 0)
    x1 = min(math.ceil(cx + bx1 * scale + soft) + 1, w)
    y0 = max(math.floor(cy + by0 * scale - soft), 0)
    y1 = min(math.ceil(cy + by1 * scale + soft) + 1, h)
    if x0 >= x1 or y0 >= y1:
        return
    alpha = np.zeros((y1 - y0, x1 - x0), dtype=np.float32)
    for dx, dy, rx, ry in animal.parts:
        found = _ellipse_alpha(h, w, cx + dx * scale, cy + dy * scale, rx * scale, ry * scale, soft)
        if found is None:
            continue
        sy, sx, part = found
        view = alpha[sy.start - y0 : sy.stop - y0, sx.start - x0 : sx.stop - x0]
        np.maximum(view, part, out=view)
    # Lit from above: the back is brighter than the belly and legs.
    rows = np.linspace(1.12, 0.72, y1 - y0, dtype=np.float32)[:, None, None]
    if transform is None:
        base: RGB = (animal.ir_level,) * 3
        offset: RGB = (0.0, 0.0, 0.0)
        eye_colour: RGB = (MAX_IR_ANIMAL + 25.0,) * 3  # eye shine
    else:
        base = transform.colour(animal.colour)
        offset = transform.offset
        eye_colour = tuple(  # type: ignore[assignment]
            v + o for v, o in zip(transform.colour((20.0, 18.0, 16.0)), offset, strict=True)
        )
    field = rows * np.asarray(base, dtype=np.float32) + np.asarray(offset, dtype=np.float32)
    region = canvas[y0:y1, x0:x1]
    region += alpha[..., None] * (field - region)
    ex, ey, er, _ = animal.eye
    er *= scale
    _paint_ellipse(canvas, cx + ex * scale, cy + ey * scale, er, er, eye_colour, max(soft, 0.5))


# ==============================================================================================
# Overlays (blocked lens, snow flakes)
# ==============================================================================================

_Overlay = tuple[FloatArray, FloatArray]  # alpha (h, w, 1), colour (h, w, 3)


def _make_overlay(scene: str, height: int, width: int, rng: np.random.Generator) -> _Overlay | None:
    if scene == "blocked_lens":
        colour = np.zeros((height, width, 3), dtype=np.float32)
        canvas_alpha = np.zeros((height, width, 3), dtype=np.float32)
        side = min(height, width)
        if rng.random() < 0.6:  # a wet leaf stuck on the lens
            tint = _jittered(rng, LEAF_COLOUR, 0.2)
            blobs = [
                (
                    width * rng.uniform(0.35, 0.65),
                    height * rng.uniform(0.35, 0.65),
                    width * rng.uniform(0.6, 0.85),
                    height * rng.uniform(0.65, 0.9),
                )
            ]
        else:  # a hand over the camera
            tint = _jittered(rng, HAND_COLOUR, 0.1)
            px = width * rng.uniform(0.4, 0.6)
            blobs = [(px, height * 0.75, width * 0.55, height * 0.55)]
            for k in range(4):
                blobs.append(
                    (px + (k - 1.5) * width * 0.16, height * 0.25, width * 0.08, height * 0.4)
                )
        for bx, by, brx, bry in blobs:
            _paint_ellipse(canvas_alpha, bx, by, brx, bry, (1.0, 1.0, 1.0), soft=0.1 * side)
        shade = np.linspace(1.1, 0.8, height, dtype=np.float32)[:, None, None]
        colour[:] = shade * np.asarray(tint, dtype=np.float32)
        return canvas_alpha[..., :1].copy(), colour
    if scene == "snow_storm":
        alpha = np.zeros((height, width, 1), dtype=np.float32)
        n = int(height * width * rng.uniform(*SNOW_FLAKE_DENSITY))
        size = max(1, round(min(height, width) / 150))
        ys = rng.integers(0, max(height - size, 1), n)
        xs = rng.integers(0, max(width - size, 1), n)
        strength = rng.uniform(0.6, 1.0, n).astype(np.float32)
        for dy in range(size):
            for dx in range(size):
                alpha[ys + dy, xs + dx, 0] = strength
        colour = np.full((height, width, 3), 248.0, dtype=np.float32)
        return alpha, colour
    return None


def _apply_overlay(canvas: FloatArray, overlay: _Overlay | None) -> None:
    if overlay is not None:
        alpha, colour = overlay
        canvas += alpha * (colour - canvas)


# ==============================================================================================
# Info strip
# ==============================================================================================

_GLYPHS: dict[str, tuple[str, ...]] = {
    "0": ("111", "101", "101", "101", "111"),
    "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"),
    "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"),
    "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"),
    "7": ("111", "001", "001", "001", "001"),
    "8": ("111", "101", "111", "101", "111"),
    "9": ("111", "101", "111", "001", "111"),
    ":": ("000", "010", "000", "010", "000"),
    "-": ("000", "000", "111", "000", "000"),
    "C": ("111", "100", "100", "100", "111"),
    " ": ("000", "000", "000", "000", "000"),
}
_GLYPH_ROWS = 5
_GLYPH_PITCH = 4  # 3 columns of glyph + 1 of spacing


def _draw_info_strip(frame: ByteArray, text: str) -> None:
    """Burn a camera-style black bar with ``text`` into the bottom of ``frame`` in place."""
    h, w = frame.shape[:2]
    strip = max(round(h * STRIP_FRACTION), MIN_STRIP_PX)
    if h < 4 * strip:
        return
    frame[h - strip :] = STRIP_BACKGROUND
    px = max((strip - 2) // (_GLYPH_ROWS + 2), 1)  # size of one glyph pixel
    bits = np.zeros((_GLYPH_ROWS, _GLYPH_PITCH * len(text)), dtype=bool)
    for i, char in enumerate(text):
        for r, row in enumerate(_GLYPHS.get(char, _GLYPHS[" "])):
            for c, bit in enumerate(row):
                bits[r, i * _GLYPH_PITCH + c] = bit == "1"
    big = np.repeat(np.repeat(bits, px, axis=0), px, axis=1)
    y0 = h - strip + (strip - big.shape[0]) // 2
    x0 = px * 2
    bw = min(big.shape[1], w - x0)
    target = frame[y0 : y0 + big.shape[0], x0 : x0 + bw]
    target[big[:, :bw]] = STRIP_TEXT


# ==============================================================================================
# Plan
# ==============================================================================================


@dataclass(frozen=True)
class _BurstPlan:
    burst_id: int
    loc_idx: int
    location: str
    deployment: str
    scene: str
    kind: str  # "crop" or "frame"
    start: dt.datetime
    n_frames: int
    first_number: int  # file number of frame 0
    ext: str
    exif: bool

    def relpath(self, frame: int) -> str:
        number = self.first_number + frame
        return f"{self.location}/{self.deployment}/{IMAGE_PREFIX}{number}{self.ext}"


@dataclass(frozen=True)
class _RenderSettings:
    root: str
    seed: int
    frame_size: tuple[int, int]
    jpeg_quality: int


def _burst_lengths(n_images: int, rng: np.random.Generator) -> list[int]:
    """Burst lengths in 3..10 summing to ``n_images`` (one short burst if n_images < 3)."""
    lengths: list[int] = []
    total = 0
    while total < n_images:
        k = min(int(rng.integers(MIN_BURST_FRAMES, MAX_BURST_FRAMES + 1)), n_images - total)
        lengths.append(k)
        total += k
    if len(lengths) > 1 and lengths[-1] < MIN_BURST_FRAMES:
        for i in range(len(lengths) - 2, -1, -1):  # borrow frames from earlier bursts
            while lengths[i] > MIN_BURST_FRAMES and lengths[-1] < MIN_BURST_FRAMES:
                lengths[i] -= 1
                lengths[-1] += 1
        if lengths[-1] < MIN_BURST_FRAMES:  # every other burst has 3 frames: merge
            last = lengths.pop()
            lengths[-1] += last
    return lengths


def _scene_window(scene: str) -> tuple[float, float]:
    if scene == "night_ir":
        return NIGHT_WINDOW
    if scene == "sunset":
        return SUNSET_WINDOW
    return DAY_WINDOW


def _into_window(t: dt.datetime, scene: str, rng: np.random.Generator) -> dt.datetime:
    """``t`` if its time of day fits the scene, else a random moment early in the next window."""
    start, length = _scene_window(scene)
    hour = t.hour + t.minute / 60.0 + t.second / 3600.0
    into = (hour - start) % 24.0
    if into < length:
        return t
    delay = (24.0 - into) + float(rng.uniform(0.0, min(length * 0.8, MAX_WINDOW_DELAY_H)))
    return t + dt.timedelta(seconds=round(delay * 3600.0))


def _scenes(
    n_bursts: int, rare_fraction: float, night_fraction: float, rng: np.random.Generator
) -> list[str]:
    """The scene of every burst: the rare ones in turn, night IR, day; shuffled."""
    n_rare = math.floor(rare_fraction * n_bursts + 0.5)
    n_night = min(math.floor(night_fraction * n_bursts + 0.5), n_bursts - n_rare)
    first_rare = int(rng.integers(len(RARE_SCENES)))
    scenes = [RARE_SCENES[(first_rare + i) % len(RARE_SCENES)] for i in range(n_rare)]
    scenes += ["night_ir"] * n_night + ["day"] * (n_bursts - n_rare - n_night)
    return [scenes[i] for i in rng.permutation(n_bursts)]


def _locations(n_bursts: int, n_locations: int, rng: np.random.Generator) -> npt.NDArray[np.int64]:
    """The location of every burst: each location one (if there are enough), the rest
    at random locations of uneven activity."""
    weights = rng.uniform(*LOCATION_WEIGHT_RANGE, n_locations)
    n_first = min(n_bursts, n_locations)
    locs: npt.NDArray[np.int64] = np.concatenate(
        [
            rng.permutation(n_locations)[:n_first],
            rng.choice(n_locations, size=n_bursts - n_first, p=weights / weights.sum()),
        ]
    ).astype(np.int64)
    return locs


def _plan(
    n_images: int,
    kind: ImageKind,
    n_locations: int,
    rare_fraction: float,
    night_fraction: float,
    seed: int,
    with_exif: bool,
) -> list[_BurstPlan]:
    rng = np.random.default_rng([seed, _PLAN_STREAM])
    lengths = _burst_lengths(n_images, rng)
    n_bursts = len(lengths)
    scenes = _scenes(n_bursts, rare_fraction, night_fraction, rng)
    locs = _locations(n_bursts, n_locations, rng)
    width = max(2, len(str(n_locations - 1)))

    raw: list[tuple[int, int, dt.datetime, int, str, str, int, bool]] = []
    for loc_idx in range(n_locations):
        members = [int(i) for i in np.flatnonzero(locs == loc_idx)]
        if not members:
            continue
        n_dep = min(int(rng.integers(1, MAX_DEPLOYMENTS + 1)), len(members))
        cuts = sorted(int(c) for c in rng.choice(np.arange(1, len(members)), n_dep - 1, False))
        bounds = [0, *cuts, len(members)]
        t = START_DATE + dt.timedelta(
            seconds=round(float(rng.uniform(0, MAX_START_OFFSET_DAYS * 86400)))
        )
        ext = EXTENSIONS[loc_idx % len(EXTENSIONS)]
        # Crops keep their EXIF at half of the locations (decorrelated from the extension).
        crop_exif = (loc_idx // 2) % 2 == 0
        for dep in range(n_dep):
            number = 1
            for pos in range(bounds[dep], bounds[dep + 1]):
                b = members[pos]
                gap = math.exp(rng.uniform(math.log(MIN_BURST_GAP_S), math.log(MAX_BURST_GAP_S)))
                t = _into_window(t + dt.timedelta(seconds=round(gap)), scenes[b], rng)
                if kind == "mixed":
                    burst_kind = "frame" if (pos + loc_idx) % 2 == 0 else "crop"
                else:
                    burst_kind = "crop" if kind == "crops" else "frame"
                exif = with_exif and (burst_kind == "frame" or crop_exif)
                raw.append((loc_idx, dep, t, b, ext, burst_kind, number, exif))
                number += lengths[b]
                t += dt.timedelta(seconds=FRAME_INTERVAL_S * (lengths[b] - 1))
            t += dt.timedelta(
                days=float(rng.uniform(MIN_DEPLOYMENT_GAP_DAYS, MAX_DEPLOYMENT_GAP_DAYS))
            )
            t = t.replace(microsecond=0)

    raw.sort(key=lambda r: (r[0], r[1], r[2]))
    return [
        _BurstPlan(
            burst_id=burst_id,
            loc_idx=loc_idx,
            location=f"loc{loc_idx:0{width}d}",
            deployment=f"dep{dep + 1}",
            scene=scenes[b],
            kind=burst_kind,
            start=start,
            n_frames=lengths[b],
            first_number=number,
            ext=ext,
            exif=exif,
        )
        for burst_id, (loc_idx, dep, start, b, ext, burst_kind, number, exif) in enumerate(raw)
    ]


# ==============================================================================================
# Rendering
# ==============================================================================================


def _to_bytes(canvas: FloatArray, noise_amp: int) -> ByteArray:
    np.clip(canvas, 0.0, 255.0 - noise_amp, out=canvas)
    return canvas.astype(np.uint8)


@dataclass(frozen=True)
class _Shot:
    """One burst's fixed facts: its random stream, place, light and animal."""

    rng: np.random.Generator
    loc: _Location
    transform: _Transform
    night_target: float
    night: bool
    animal: _Animal
    cx: float
    cy: float
    temperature: int
    frame_w: int
    frame_h: int
    low_w: int
    low_h: int

    @property
    def paint_tf(self) -> _Transform | None:
        return None if self.night else self.transform


def _shot(plan: _BurstPlan, settings: _RenderSettings) -> _Shot:
    """Draw the burst's place, light and animal (the random stream's first draws)."""
    rng = np.random.default_rng([settings.seed, plan.burst_id])
    frame_w, frame_h = settings.frame_size
    low_w = -(-frame_w // DRAW_SCALE)
    low_h = -(-frame_h // DRAW_SCALE)
    loc = _location(settings.seed, plan.loc_idx, low_w, low_h)
    hour = plan.start.hour + plan.start.minute / 60.0
    transform, night_target = _scene_transform(plan.scene, hour, loc, rng)
    # Where the animal stands in the full frame; nearer animals are lower and bigger.
    species = _SPECIES[str(rng.choice(_HABITAT_SPECIES[loc.habitat]))]
    feet_frac = float(rng.uniform(loc.horizon + 0.2 * (1.0 - loc.horizon), 0.97))
    near = (feet_frac - loc.horizon) / (1.0 - loc.horizon)
    animal = _make_animal(species, rng, near)
    cx = float(rng.uniform(0.08, 0.92)) * frame_w
    cy = feet_frac * frame_h - animal.feet * animal.length
    temperature = int(rng.integers(-15, 36))
    return _Shot(
        rng,
        loc,
        transform,
        night_target,
        plan.scene == "night_ir",
        animal,
        cx,
        cy,
        temperature,
        frame_w,
        frame_h,
        low_w,
        low_h,
    )


Box = tuple[float, float, float, float]
Rendered = tuple[Image.Image, dt.datetime, Box]
"""A drawn image, its capture time and the animal's normalised box in it."""


def _animal_box(
    animal: _Animal, cx: float, cy: float, scale: float, width: int, height: int
) -> Box:
    """Normalised ``[x, y, w, h]`` of ``animal`` drawn with its body centre at (cx, cy)
    and ``scale`` px per body length on a ``width`` x ``height`` image, clamped to it.

    Computed from the numbers the drawing uses (no random draw): the pixels do not change.
    """
    bx0, bx1, by0, by1 = animal.bbox
    left, right = (min(max(cx + b * scale, 0.0), float(width)) for b in (bx0, bx1))
    top, bottom = (min(max(cy + b * scale, 0.0), float(height)) for b in (by0, by1))
    return (
        round(left / width, BOX_DECIMALS),
        round(top / height, BOX_DECIMALS),
        round((right - left) / width, BOX_DECIMALS),
        round((bottom - top) / height, BOX_DECIMALS),
    )


def _render_burst(plan: _BurstPlan, shot: _Shot) -> Iterator[Rendered]:
    """Yield the frames of one burst as RGB images with their capture times and boxes."""
    if plan.kind == "frame":
        yield from _render_frames(plan, shot)
    else:
        yield from _render_crops(plan, shot)


def _render_frames(plan: _BurstPlan, shot: _Shot) -> Iterator[Rendered]:
    """A full frame per shot: the location's scene, the animal, overlay, flicker and grain."""
    rng, loc, transform, night, animal = (
        shot.rng,
        shot.loc,
        shot.transform,
        shot.night,
        shot.animal,
    )
    cx, cy, frame_w, frame_h = shot.cx, shot.cy, shot.frame_w, shot.frame_h
    low_w, low_h, paint_tf = shot.low_w, shot.low_h, shot.paint_tf
    temperature = shot.temperature
    scale = low_w / frame_w
    base = transform.apply(loc.background)
    if night:
        base *= loc.night_map[..., None]
    overlay = _make_overlay(plan.scene, low_h, low_w, rng)
    noise = _noise_tile(frame_h + NOISE_PAD, frame_w + NOISE_PAD, FRAME_NOISE_AMP)
    for i in range(plan.n_frames):
        jx, jy = rng.uniform(-JITTER_PX, JITTER_PX, 2)
        flicker = 1.0 + BRIGHTNESS_FLICKER * float(rng.standard_normal())
        oy, ox = (int(v) for v in rng.integers(0, NOISE_PAD, 2))
        canvas = base.copy()
        _paint_animal(
            canvas,
            animal,
            (cx + jx) * scale,
            (cy + jy) * scale,
            animal.length * scale,
            paint_tf,
            FRAME_EDGE_SOFTNESS_PX,
        )
        _apply_overlay(canvas, overlay)
        canvas *= flicker
        small = Image.fromarray(_to_bytes(canvas, FRAME_NOISE_AMP))
        big = np.asarray(small.resize((frame_w, frame_h), Image.Resampling.BILINEAR))
        grain = noise[oy : oy + frame_h, ox : ox + frame_w]
        frame = big + (grain[..., :1] if night else grain)
        t = plan.start + dt.timedelta(seconds=i * FRAME_INTERVAL_S)
        if loc.info_strip:
            _draw_info_strip(frame, f"{t:%Y-%m-%d %H:%M:%S}  {temperature}C")
        box = _animal_box(animal, cx + jx, cy + jy, animal.length, frame_w, frame_h)
        yield Image.fromarray(frame), t, box


def _render_crops(plan: _BurstPlan, shot: _Shot) -> Iterator[Rendered]:
    """A detector box around the animal, at native resolution but 150..600 px a side."""
    rng, loc, transform, night, animal = (
        shot.rng,
        shot.loc,
        shot.transform,
        shot.night,
        shot.animal,
    )
    cx, cy, frame_w, frame_h = shot.cx, shot.cy, shot.frame_w, shot.frame_h
    low_w, low_h, paint_tf = shot.low_w, shot.low_h, shot.paint_tf
    night_target = shot.night_target
    bx0, bx1, by0, by1 = animal.bbox
    margin = float(rng.uniform(*CROP_MARGIN_RANGE))
    region_w = (bx1 - bx0) * animal.length * margin * float(rng.uniform(*CROP_ASPECT_JITTER))
    region_h = (by1 - by0) * animal.length * margin
    # Each frame's window is the box plus 0..2 * pad px, so the box stays below the maximum.
    pad = 2 * JITTER_PX  # room for the per-frame window offset and size changes
    largest = MAX_CROP_SIDE - 2 * pad
    zoom = min(1.0, largest / max(region_w, region_h))
    zoom = max(zoom, MIN_CROP_SIDE / min(region_w, region_h))
    out_w = int(np.clip(round(region_w * zoom), MIN_CROP_SIDE, largest))
    out_h = int(np.clip(round(region_h * zoom), MIN_CROP_SIDE, largest))
    canvas_w, canvas_h = out_w + 2 * pad, out_h + 2 * pad
    # The canvas's part of the frame, in background (low-resolution) pixels.
    box_cx = (cx + (bx0 + bx1) / 2 * animal.length) * low_w / frame_w
    box_cy = (cy + (by0 + by1) / 2 * animal.length) * low_h / frame_h
    box_w = min(canvas_w / zoom * low_w / frame_w, float(low_w))
    box_h = min(canvas_h / zoom * low_h / frame_h, float(low_h))
    left = min(max(box_cx - box_w / 2, 0.0), low_w - box_w)
    top = min(max(box_cy - box_h / 2, 0.0), low_h - box_h)
    region = loc.background_image.resize(
        (canvas_w, canvas_h),
        Image.Resampling.BILINEAR,
        box=(left, top, left + box_w, top + box_h),
    )
    canvas = transform.apply(np.asarray(region, dtype=np.float32))
    if night:  # the flash lights the animal's surroundings, whatever the frame's IR reach
        canvas *= night_target * NIGHT_CROP_GAIN / max(float(canvas.mean()), 1.0)
    centre_x = canvas_w / 2 - (bx0 + bx1) / 2 * animal.length * zoom
    centre_y = canvas_h / 2 - (by0 + by1) / 2 * animal.length * zoom
    _paint_animal(
        canvas, animal, centre_x, centre_y, animal.length * zoom, paint_tf, CROP_EDGE_SOFTNESS_PX
    )
    _apply_overlay(canvas, _make_overlay(plan.scene, canvas_h, canvas_w, rng))
    base_bytes = _to_bytes(canvas, CROP_NOISE_AMP)
    side = MAX_CROP_SIDE + 2 * pad + NOISE_PAD
    noise = _noise_tile(side, side, CROP_NOISE_AMP)
    levels = np.arange(256, dtype=np.float32)
    for i in range(plan.n_frames):
        x0, y0 = (int(v) for v in rng.integers(0, pad + 1, 2))
        x1, y1 = (int(v) for v in rng.integers(0, pad + 1, 2))
        window = base_bytes[y0 : canvas_h - y1, x0 : canvas_w - x1]
        flicker = 1.0 + BRIGHTNESS_FLICKER * float(rng.standard_normal())
        oy, ox = (int(v) for v in rng.integers(0, NOISE_PAD, 2))
        lut = np.clip(levels * flicker + 0.5, 0.0, 255.0).astype(np.uint8).tolist()
        grain = noise[oy : oy + window.shape[0], ox : ox + window.shape[1]]
        crop = Image.fromarray(window + (grain[..., :1] if night else grain)).point(lut * 3)
        box = _animal_box(
            animal, centre_x - x0, centre_y - y0, animal.length * zoom, crop.width, crop.height
        )
        yield crop, plan.start + dt.timedelta(seconds=i * FRAME_INTERVAL_S), box


def _exif_bytes(t: dt.datetime, make: str, model: str) -> bytes:
    exif = Image.Exif()
    stamp = t.strftime(EXIF_TIME_FORMAT)
    exif[EXIF_MAKE] = make
    exif[EXIF_MODEL] = model
    exif[EXIF_DATETIME] = stamp
    ifd = exif.get_ifd(EXIF_IFD)
    ifd[EXIF_DATETIME_ORIGINAL] = stamp
    ifd[EXIF_DATETIME_DIGITIZED] = stamp
    return exif.tobytes()


def _render_chunk(settings: _RenderSettings, plans: Sequence[_BurstPlan]) -> list[SyntheticImage]:
    """Render and write a run of bursts; return their ground truth (worker entry point)."""
    images: list[SyntheticImage] = []
    for plan in plans:
        frame_w, frame_h = settings.frame_size
        loc = _location(
            settings.seed, plan.loc_idx, -(-frame_w // DRAW_SCALE), -(-frame_h // DRAW_SCALE)
        )
        shot = _shot(plan, settings)
        for i, (pixels, t, box) in enumerate(_render_burst(plan, shot)):
            relpath = plan.relpath(i)
            path = os.path.join(settings.root, *relpath.split("/"))
            save_kwargs: dict[str, Any] = {"quality": settings.jpeg_quality}
            if plan.exif:
                save_kwargs["exif"] = _exif_bytes(t, loc.make, loc.model)
            pixels.save(path, format="JPEG", **save_kwargs)
            images.append(
                SyntheticImage(
                    path=path,
                    relpath=relpath,
                    location=plan.location,
                    deployment=plan.deployment,
                    burst_id=plan.burst_id,
                    frame=i,
                    scene=plan.scene,
                    is_rare=plan.scene in RARE_SCENES,
                    is_night=plan.scene == "night_ir",
                    kind=plan.kind,
                    capture_time=t.isoformat(timespec="seconds"),
                    width=pixels.width,
                    height=pixels.height,
                    species=shot.animal.species.name,
                    box_x=box[0],
                    box_y=box[1],
                    box_w=box[2],
                    box_h=box[3],
                )
            )
    return images


# ==============================================================================================
# Public functions
# ==============================================================================================


def _check_fraction(name: str, value: float) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise InvalidArgumentError(f"{name} must be a number in [0, 1], got {value!r}") from None
    if not 0.0 <= value <= 1.0:  # also rejects NaN
        raise InvalidArgumentError(f"{name} must be in [0, 1], got {value!r}")
    return value


def _check_int(name: str, value: int, minimum: int, maximum: int | None = None) -> int:
    try:
        number = operator.index(value)
    except TypeError:
        raise InvalidArgumentError(f"{name} must be an integer, got {value!r}") from None
    if number < minimum or (maximum is not None and number > maximum):
        allowed = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise InvalidArgumentError(f"{name} must be {allowed}, got {number}")
    return number


def _checked_frame_size(frame_size: object) -> tuple[int, int]:
    try:
        fw, fh = (operator.index(v) for v in frame_size)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise InvalidArgumentError(
            f"frame_size must be a (width, height) pair of integers, got {frame_size!r}"
        ) from None
    if min(fw, fh) < MIN_FRAME_SIDE:
        raise InvalidArgumentError(
            f"frame_size sides must be >= {MIN_FRAME_SIDE} px, got {frame_size!r}"
        )
    return fw, fh


def _render_all(
    settings: _RenderSettings, plans: Sequence[_BurstPlan], n_workers: int
) -> list[SyntheticImage]:
    """Render every burst, in ``n_workers`` processes; the images in plan order."""
    if n_workers == 1 or len(plans) == 1:
        return _render_chunk(settings, plans)
    images: list[SyntheticImage] = []
    # Contiguous chunks keep each worker on few locations (their backgrounds are cached).
    size = max(1, math.ceil(len(plans) / (n_workers * 4)))
    chunks = [plans[i : i + size] for i in range(0, len(plans), size)]
    with ProcessPoolExecutor(max_workers=min(n_workers, len(chunks))) as pool:
        for part in pool.map(_render_chunk, repeat(settings), chunks):
            images.extend(part)
    return images


def make_dataset(
    root: str | os.PathLike[str],
    n_images: int = 2000,
    *,
    kind: ImageKind = "crops",
    n_locations: int = 12,
    rare_fraction: float = 0.05,
    night_fraction: float = 0.3,
    seed: int = 0,
    frame_size: tuple[int, int] = (1920, 1080),
    jpeg_quality: int = 85,
    with_exif: bool = True,
    n_workers: int = 1,
) -> SyntheticDataset:
    """Write a synthetic camera-trap image set and its ground truth.

    Images go to ``root/<location>/<deployment>/IMG_<n>.JPG`` (``.jpg`` at every other
    location), numbered from 1 without zero padding in capture order within a deployment,
    so only a *natural* sort puts ``IMG_10`` after ``IMG_9``.  ``root/ground_truth.csv``
    gets one row per image (see :class:`SyntheticImage`; the ``path`` is rebuilt from
    ``relpath`` on loading).

    Parameters
    ----------
    root : str or os.PathLike
        Folder to write into; created if missing.  It may already exist but must not
        contain a ``ground_truth.csv`` or any of the image files to be written.
    n_images : int, default 2000
        Exact number of images.  Bursts have 3-10 frames (a single burst of ``n_images``
        frames if ``n_images < 3``).
    kind : {"crops", "frames", "mixed"}, default "crops"
        ``"crops"``: detector-style crops centred on the animal, 150-600 px a side.
        ``"frames"``: full frames of ``frame_size``.  ``"mixed"``: bursts alternate
        between crops and frames within each location.
    n_locations : int, default 12
        Number of camera locations; location ``i`` has habitat
        ``HABITATS[i % 4]`` (forest, snow, savanna, grassland).
    rare_fraction : float, default 0.05
        Fraction of bursts (rounded) showing one of :data:`RARE_SCENES`, cycled so
        every rare scene appears once there are at least five rare bursts.
    night_fraction : float, default 0.3
        Fraction of bursts (rounded) that are infrared night shots.
        ``rare_fraction + night_fraction`` must not exceed 1.
    seed : int, default 0
        Non-negative seed; the same arguments give byte-identical files.
    frame_size : (int, int), default (1920, 1080)
        Width and height of full frames; crops are cut from scenes of this size.
    jpeg_quality : int, default 85
        JPEG quality, 1-95.
    with_exif : bool, default True
        Write EXIF ``DateTimeOriginal`` / ``DateTime`` (and camera make/model) into all
        frames and into the crops of half of the locations (crops often lose EXIF).
    n_workers : int, default 1
        Processes used for drawing; the output does not depend on it.

    Returns
    -------
    SyntheticDataset
        The root, the ground truth of every image and the CSV path.

    Raises
    ------
    ValueError
        (:class:`~smartdownsample._exceptions.InvalidArgumentError`) for invalid
        arguments.
    FileExistsError
        If ``root/ground_truth.csv`` or one of the image files already exists.

    Examples
    --------
    >>> import tempfile
    >>> ds = make_dataset(tempfile.mkdtemp(), n_images=30, kind="frames",
    ...                   frame_size=(320, 240), seed=7)
    >>> len(ds.paths), ds.images[0].width, ds.images[0].height
    (30, 320, 240)
    """
    started = time.perf_counter()
    n_images = _check_int("n_images", n_images, 1)
    if kind not in IMAGE_KINDS:
        raise InvalidArgumentError(f"kind must be one of {IMAGE_KINDS}, got {kind!r}")
    n_locations = _check_int("n_locations", n_locations, 1)
    rare_fraction = _check_fraction("rare_fraction", rare_fraction)
    night_fraction = _check_fraction("night_fraction", night_fraction)
    if rare_fraction + night_fraction > 1.0:
        raise InvalidArgumentError(
            f"rare_fraction + night_fraction must not exceed 1, got "
            f"{rare_fraction} + {night_fraction}"
        )
    seed = _check_int("seed", seed, 0)
    fw, fh = _checked_frame_size(frame_size)
    jpeg_quality = _check_int("jpeg_quality", jpeg_quality, 1, 95)
    n_workers = _check_int("n_workers", n_workers, 1)

    root_path = Path(root).expanduser().resolve()
    csv_path = root_path / GROUND_TRUTH_NAME
    if csv_path.exists():
        raise FileExistsError(
            f"{csv_path} already exists; make_dataset never overwrites a data set, "
            "choose a new or empty folder"
        )
    plans = _plan(n_images, kind, n_locations, rare_fraction, night_fraction, seed, bool(with_exif))
    for plan in plans:  # refuse before writing anything
        for i in range(plan.n_frames):
            target = root_path.joinpath(*plan.relpath(i).split("/"))
            if target.exists():
                raise FileExistsError(
                    f"{target} already exists; make_dataset never overwrites files, "
                    "choose a new or empty folder"
                )
    for folder in sorted({f"{p.location}/{p.deployment}" for p in plans}):
        root_path.joinpath(*folder.split("/")).mkdir(parents=True, exist_ok=True)

    settings = _RenderSettings(str(root_path), seed, (fw, fh), jpeg_quality)
    images = _render_all(settings, plans, n_workers)
    _write_csv(root_path, images)
    elapsed = time.perf_counter() - started
    logger.info(
        "wrote %d synthetic %s images (%d bursts, %d locations) to %s in %.1f s (%.0f/s)",
        len(images),
        kind,
        len(plans),
        len({p.location for p in plans}),
        root_path,
        elapsed,
        len(images) / max(elapsed, 1e-9),
    )
    return SyntheticDataset(str(root_path), tuple(images), str(csv_path))


def _write_csv(root: Path, images: Sequence[SyntheticImage]) -> None:
    """Write ground_truth.csv atomically (the package's one atomic writer)."""
    from .outputs import atomic_file

    with atomic_file(root / GROUND_TRUTH_NAME, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for image in images:
            writer.writerow([getattr(image, name) for name in CSV_COLUMNS])


def load_dataset(root: str | os.PathLike[str]) -> SyntheticDataset:
    """Read back a data set written by :func:`make_dataset`.

    Parameters
    ----------
    root : str or os.PathLike
        The folder that holds ``ground_truth.csv``.

    Returns
    -------
    SyntheticDataset
        Equal to the one :func:`make_dataset` returned, for the same (resolved) root.

    Raises
    ------
    FileNotFoundError
        If there is no ``ground_truth.csv`` in ``root``.
    ValueError
        If the file does not have the expected columns.

    Examples
    --------
    >>> import tempfile
    >>> ds = make_dataset(tempfile.mkdtemp(), n_images=5)
    >>> load_dataset(ds.root) == ds
    True
    """
    root_path = Path(root).expanduser().resolve()
    csv_path = root_path / GROUND_TRUTH_NAME
    images: list[SyntheticImage] = []
    with csv_path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = tuple(reader.fieldnames or ())
        if columns not in (CSV_COLUMNS, LEGACY_CSV_COLUMNS):
            raise InvalidArgumentError(
                f"{csv_path} is not a synthetic ground truth: expected columns "
                f"{', '.join(CSV_COLUMNS)}, got {reader.fieldnames}"
            )
        for row in reader:
            values: dict[str, Any] = {}
            for name in columns:
                raw = row[name]
                if name in _INT_FIELDS:
                    values[name] = int(raw)
                elif name in _FLOAT_FIELDS:
                    values[name] = float(raw)
                elif name in _BOOL_FIELDS:
                    values[name] = raw == "True"
                else:
                    values[name] = raw
            path = os.path.join(str(root_path), *values["relpath"].split("/"))
            images.append(SyntheticImage(path=path, **values))
    return SyntheticDataset(str(root_path), tuple(images), str(csv_path))


# ==============================================================================================
# Detector output for the data set
# ==============================================================================================

DETECTION_CONF: dict[str, float] = {
    "day": 0.96,
    "night_ir": 0.82,
    "sunset": 0.88,
    "fog": 0.55,
    "overexposed": 0.45,
    "blocked_lens": 0.3,
    "snow_storm": 0.6,
}
"""Confidence of the animal's detection per scene: a detector is surest in daylight and
least sure behind a blocked lens (all above MegaDetector's 0.2 threshold: every animal
is found)."""

CLASS_SCORE_FACTOR = 0.95
"""The species classification's score is the detection's confidence times this: hard
scenes (blocked lens, overexposure) fall below 0.5 and count as unclassified."""


def species_names() -> list[str]:
    """Every species the data sets draw, sorted (the classification categories' order)."""
    return sorted(_SPECIES)


def megadetector_document(
    dataset: SyntheticDataset, relative_to: str | os.PathLike[str]
) -> dict[str, Any]:
    """MegaDetector batch output (format 1.4) for ``dataset``, from its ground truth.

    One ``animal`` detection per image: its box is the animal's (for a crop, the
    animal's box inside the crop), its confidence that of the scene
    (:data:`DETECTION_CONF`), its classification the species drawn. File names are
    relative to ``relative_to``, with forward slashes. An image whose box is unknown
    (a data set written before boxes were recorded) or empty has no detection.
    """
    names = species_names()
    class_id = {name: str(i) for i, name in enumerate(names)}
    base = os.fspath(relative_to)
    images = []
    for image in dataset.images:
        box = [image.box_x, image.box_y, image.box_w, image.box_h]
        detections = []
        if all(math.isfinite(v) for v in box) and box[2] > 0 and box[3] > 0:
            conf = DETECTION_CONF[image.scene]
            detection: dict[str, Any] = {"category": "1", "conf": conf, "bbox": box}
            if image.species in class_id:
                score = round(conf * CLASS_SCORE_FACTOR, 3)
                detection["classifications"] = [[class_id[image.species], score]]
            detections.append(detection)
        relative = os.path.relpath(image.path, base).replace(os.sep, "/")
        images.append({"file": relative, "detections": detections})
    return {
        "info": {
            "format_version": "1.4",
            "detector": "smartdownsample.synthetic ground truth",
            "detector_metadata": {"typical_detection_threshold": 0.2},
        },
        "detection_categories": {"1": "animal", "2": "person", "3": "vehicle"},
        "classification_categories": {class_id[name]: name for name in names},
        "images": images,
    }
