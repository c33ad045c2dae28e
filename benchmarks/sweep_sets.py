"""A family of camera-trap-like crop sets for the robustness sweep of ``bench_quality.py``.

Written independently of :mod:`smartdownsample.synthetic` (whose sets the burst
finder was tuned on): other backgrounds, other animals, another crop model. Each
*variant* changes one way a detector's crops of a burst can differ from frame to
frame, starting from a moderate :data:`BASE`:

* the crop window re-centres on the animal every frame, so the background slides
  behind it (``window_drift``, a fraction of the window) and the box grows and
  shrinks (``size_change``);
* the animal walks (``speed``) and changes pose and size (``pose_change``);
* exposure drifts inside a burst (``exposure_drift`` per frame);
* JPEG quality, crop pixel sizes, burst lengths;
* the same animal comes back to the same place minutes later (``revisit``);
* several cameras share a folder and their files interleave by name
  (``cameras_per_folder``);
* every crop is saved at one square size (``fixed_side``), as crops made for a
  classifier often are: then the box's size and aspect say nothing.

Backgrounds are textured: fractal noise coloured by a habitat palette over a sky /
ground gradient with dark blobs (trunks, rocks), or a real photograph shipped with
scikit-image when it is installed. Some bursts are infrared night shots (grey,
dark); a few are rare scenes (fog, sunset, blown out, a leaf over the lens).

Every image's truth (burst, location, camera, scene, rare flag) is written to
``truth.csv`` in the set's folder. Sets are deterministic for (variant, seed).
No EXIF: crops usually lose it, and then looks alone must find the bursts.

Usage (normally through ``bench_quality.py --sweep``)::

    python benchmarks/sweep_sets.py OUT_DIR [VARIANT ...]
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from PIL import Image

FloatImage = NDArray[np.float32]
TRUTH_NAME = "truth.csv"
SCENE_WIDTH = 1280  # background canvas per camera, pixels
SCENE_HEIGHT = 720
NIGHT_FRACTION = 0.3  # bursts shot at night (IR, grey)
RARE_FRACTION = 0.06  # bursts in a rare scene
RARE_SCENES = ("fog", "sunset", "blown_out", "leaf")
MINUTES_BETWEEN_BURSTS = 6.0  # mean gap between triggers of one camera


@dataclass(frozen=True)
class Variant:
    """How the crops of one set are made (see the module docstring)."""

    name: str
    window_drift: float = 0.05
    size_change: float = 0.05
    speed: float = 0.02
    pose_change: float = 0.04
    exposure_drift: float = 0.0
    jpeg_quality: tuple[int, int] = (75, 92)
    crop_px: tuple[int, int] = (96, 320)
    burst_len: tuple[int, int] = (3, 10)
    revisit: float = 0.0
    cameras_per_folder: int = 1
    n_images: int = 1200
    fixed_side: int | None = None  # every crop resized to this square (classifier input)


BASE = Variant("base")
VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        BASE,
        dataclasses.replace(BASE, name="still", window_drift=0.0, size_change=0.0, speed=0.0),
        dataclasses.replace(BASE, name="drift10", window_drift=0.10, size_change=0.10),
        dataclasses.replace(BASE, name="drift20", window_drift=0.20, size_change=0.20),
        dataclasses.replace(BASE, name="fast", speed=0.08),
        dataclasses.replace(BASE, name="pose", pose_change=0.15),
        dataclasses.replace(BASE, name="exposure", exposure_drift=0.05),
        dataclasses.replace(BASE, name="jpeg60", jpeg_quality=(60, 62)),
        dataclasses.replace(BASE, name="jpeg95", jpeg_quality=(94, 95)),
        dataclasses.replace(BASE, name="tiny", crop_px=(64, 90)),
        dataclasses.replace(BASE, name="large", crop_px=(400, 600), n_images=600),
        dataclasses.replace(BASE, name="short", burst_len=(2, 3)),
        dataclasses.replace(BASE, name="long", burst_len=(10, 15)),
        dataclasses.replace(BASE, name="revisit", revisit=0.5),
        dataclasses.replace(BASE, name="interleaved", cameras_per_folder=3),
        dataclasses.replace(BASE, name="fixed224", fixed_side=224),
        dataclasses.replace(
            BASE,
            name="hard",
            window_drift=0.20,
            size_change=0.20,
            speed=0.06,
            pose_change=0.12,
            exposure_drift=0.04,
            jpeg_quality=(60, 95),
            crop_px=(64, 600),
            burst_len=(2, 15),
            revisit=0.3,
            cameras_per_folder=3,
        ),
    )
}


# ---------------------------------------------------------------------------------------------
# Backgrounds
# ---------------------------------------------------------------------------------------------


def _noise(rng: np.random.Generator, height: int, width: int, octaves: int = 5) -> FloatImage:
    """Fractal value noise in [0, 1]: random grids of doubling size, smoothly upsampled."""
    total = np.zeros((height, width), np.float32)
    amplitude, weight = 1.0, 0.0
    for octave in range(octaves):
        cells = 3 * 2**octave
        grid = rng.random((cells, max(2, cells * width // height))).astype(np.float32)
        layer = Image.fromarray(grid, mode="F").resize((width, height), Image.Resampling.BICUBIC)
        total += amplitude * np.asarray(layer, np.float32)
        weight += amplitude
        amplitude *= 0.55
    total /= weight
    low, high = np.percentile(total, [1, 99])
    return np.clip((total - low) / max(high - low, 1e-6), 0, 1)


PALETTES = (
    ((34, 60, 28), (96, 120, 60), (150, 140, 90)),  # forest
    ((150, 130, 90), (190, 170, 120), (110, 95, 70)),  # savanna
    ((210, 215, 225), (170, 180, 195), (120, 125, 130)),  # snow
    ((70, 110, 50), (120, 160, 70), (90, 80, 60)),  # grassland
    ((90, 85, 80), (140, 130, 120), (60, 55, 50)),  # rock
)


def _photo(index: int) -> FloatImage | None:
    """A real photograph shipped with scikit-image, or None without it."""
    try:
        from skimage import data
    except ImportError:
        return None
    names = ("coffee", "chelsea", "astronaut", "rocket", "motorcycle_left", "hubble_deep_field")
    for name in names[index % len(names) :] + names[: index % len(names)]:
        try:
            image = np.asarray(getattr(data, name)())
        except Exception:  # noqa: BLE001 - some need a download; try the next
            continue
        if image.ndim == 3 and image.shape[2] >= 3:
            resized = Image.fromarray(image[:, :, :3]).resize((SCENE_WIDTH, SCENE_HEIGHT))
            return np.asarray(resized, np.float32)
    return None


def background(seed: int, camera: int) -> FloatImage:
    """The (height, width, 3) float background of one camera: textured, never flat."""
    rng = np.random.default_rng([seed, camera, 1])
    if camera % 4 == 3:
        photo = _photo(camera // 4)
        if photo is not None:
            return photo
    palette = np.array(PALETTES[int(rng.integers(len(PALETTES)))], np.float32)
    texture = _noise(rng, SCENE_HEIGHT, SCENE_WIDTH)
    mix = _noise(rng, SCENE_HEIGHT, SCENE_WIDTH, octaves=3)
    colour = (palette[0] * (1 - mix[..., None]) + palette[1] * mix[..., None]) * (
        0.6 + 0.8 * texture[..., None]
    )
    rows = np.linspace(0, 1, SCENE_HEIGHT, dtype=np.float32)[:, None, None]
    horizon = rng.uniform(0.15, 0.4)
    sky = np.array([150, 175, 205], np.float32) * (0.9 + 0.2 * texture[..., None])
    colour = np.where(rows < horizon, sky, colour)
    yy, xx = np.mgrid[0:SCENE_HEIGHT, 0:SCENE_WIDTH].astype(np.float32)
    for _ in range(int(rng.integers(4, 12))):  # trunks and rocks
        cy, cx = rng.uniform(0, SCENE_HEIGHT), rng.uniform(0, SCENE_WIDTH)
        ry, rx = rng.uniform(20, 300), rng.uniform(10, 90)
        inside = ((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 < 1
        colour[inside] = palette[2] * rng.uniform(0.4, 0.9) * (0.7 + 0.6 * texture[inside, None])
    return np.clip(colour, 0, 255).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Animals and crops
# ---------------------------------------------------------------------------------------------


@dataclass
class Animal:
    colour: NDArray[np.float32]
    size: float  # body half-length, scene pixels
    aspect: float  # body height / length
    x: float
    y: float
    vx: float
    vy: float
    texture_seed: int


def new_animal(rng: np.random.Generator, variant: Variant) -> Animal:
    colours = ((120, 85, 55), (90, 80, 70), (40, 35, 30), (170, 140, 100), (150, 150, 145))
    base = np.array(colours[int(rng.integers(len(colours)))], np.float32)
    angle = rng.uniform(0, 2 * math.pi)
    speed = variant.speed * SCENE_WIDTH * rng.uniform(0.5, 1.5)
    return Animal(
        colour=base * rng.uniform(0.8, 1.2, 3).astype(np.float32),
        size=float(rng.uniform(40, 140)),
        aspect=float(rng.uniform(0.45, 0.8)),
        x=float(rng.uniform(0.25, 0.75) * SCENE_WIDTH),
        y=float(rng.uniform(0.45, 0.8) * SCENE_HEIGHT),
        vx=speed * math.cos(angle),
        vy=0.3 * speed * math.sin(angle),
        texture_seed=int(rng.integers(1 << 30)),
    )


def paint_animal(patch: FloatImage, animal: Animal, left: float, top: float, frame: int) -> None:
    """Draw the animal (body, head, legs, mottled coat) into a patch at (left, top)."""
    height, width = patch.shape[:2]
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    yy += top
    xx += left
    length, tall = animal.size, animal.size * animal.aspect
    direction = 1.0 if animal.vx >= 0 else -1.0
    coat_rng = np.random.default_rng(animal.texture_seed)
    spots = coat_rng.uniform(-1, 1, (6, 3)).astype(np.float32)
    mottle = 0.85 + 0.15 * np.sin(xx / (5 + 3 * abs(spots[0, 0])) + spots[0, 1]) * np.cos(
        yy / (4 + 2 * abs(spots[1, 0]))
    )
    body = ((xx - animal.x) / length) ** 2 + ((yy - animal.y) / tall) ** 2 < 1
    hx, hy = animal.x + direction * length * 0.95, animal.y - tall * 0.7
    head = ((xx - hx) / (tall * 0.6)) ** 2 + ((yy - hy) / (tall * 0.45)) ** 2 < 1
    legs = np.zeros_like(body)
    swing = math.sin(frame * 1.7) * length * 0.12
    for offset in (-0.6, -0.35, 0.4, 0.65):
        lx = animal.x + offset * length + swing * (1 if offset > 0 else -1)
        legs |= (np.abs(xx - lx) < length * 0.06) & (yy > animal.y) & (yy < animal.y + tall * 1.6)
    mask = body | head | legs
    patch[mask] = animal.colour * mottle[mask, None]
    patch[head] *= 0.85


def exposure(image: FloatImage, gain: float, scene: str, night: bool) -> FloatImage:
    """Scene look of a frame: night IR, rare scenes, exposure gain."""
    out = image
    if night:
        grey = out @ np.array([0.3, 0.59, 0.11], np.float32)
        out = np.repeat((grey * 0.45 + 10)[..., None], 3, axis=2)
    if scene == "fog":
        out = out * 0.35 + np.float32(185)
    elif scene == "sunset":
        out = out * np.array([1.1, 0.7, 0.45], np.float32) + np.array([40, 10, 0], np.float32)
    elif scene == "blown_out":
        out = out * 2.2 + 60
    elif scene == "leaf":
        height, width = out.shape[:2]
        yy, xx = np.mgrid[0:height, 0:width]
        leaf = ((yy - height * 0.4) / (height * 0.6)) ** 2 + (
            (xx - width * 0.45) / (width * 0.55)
        ) ** 2 < 1
        out = out.copy()
        out[leaf] = np.array([50, 95, 35], np.float32)
    return np.clip(out * gain, 0, 255)


@dataclass(frozen=True)
class Shot:
    """One image of the set and its truth."""

    camera: int
    time: float  # seconds
    burst: int
    location: int
    scene: str
    rare: bool
    night: bool
    frame: int


def render_burst(
    variant: Variant,
    scene_bg: FloatImage,
    animal: Animal,
    rng: np.random.Generator,
    length: int,
    scene: str,
    night: bool,
) -> list[tuple[Image.Image, int]]:
    """The crops of one burst with their JPEG quality."""
    crop_lo, crop_hi = variant.crop_px
    frames = []
    box_scale = 1.0
    centre_dx = centre_dy = 0.0
    gain = rng.uniform(0.85, 1.15)
    gain_step = variant.exposure_drift * rng.choice([-1.0, 1.0])
    target_long = rng.uniform(crop_lo, crop_hi)
    quality = int(rng.integers(variant.jpeg_quality[0], variant.jpeg_quality[1] + 1))
    for frame in range(length):
        if frame:
            animal.x = float(np.clip(animal.x + animal.vx, 150, SCENE_WIDTH - 150))
            animal.y = float(np.clip(animal.y + animal.vy, 150, SCENE_HEIGHT - 100))
            animal.size *= float(np.clip(1 + variant.pose_change * rng.normal(), 0.7, 1.4))
            animal.size = float(np.clip(animal.size, 25, 180))
            animal.aspect = float(
                np.clip(animal.aspect * (1 + variant.pose_change * rng.normal()), 0.35, 1.0)
            )
            box_scale *= float(np.clip(1 + variant.size_change * rng.uniform(-1, 1), 0.6, 1.6))
            box_scale = float(np.clip(box_scale, 0.7, 1.5))
            gain *= 1 + gain_step * rng.uniform(0.5, 1.5)
        box_w = 2.6 * animal.size * box_scale
        box_h = max(box_w * (animal.aspect + 0.5) / 1.3, 40.0)
        centre_dx = variant.window_drift * box_w * rng.uniform(-1, 1)
        centre_dy = variant.window_drift * box_h * rng.uniform(-1, 1)
        left = round(animal.x - box_w / 2 + centre_dx)
        top = round(animal.y - box_h / 2 + centre_dy - animal.size * animal.aspect * 0.3)
        right, bottom = left + int(box_w), top + int(box_h)
        left, top = max(0, left), max(0, top)
        right, bottom = min(SCENE_WIDTH, right), min(SCENE_HEIGHT, bottom)
        patch = scene_bg[top:bottom, left:right].copy()
        paint_animal(patch, animal, left, top, frame)
        patch = exposure(patch, gain, scene, night)
        noise = rng.normal(0, 3.0, patch.shape).astype(np.float32)
        pixels = np.clip(patch + noise, 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        scale = target_long / max(image.size) * box_scale**0.5
        size = (max(16, round(image.size[0] * scale)), max(16, round(image.size[1] * scale)))
        if variant.fixed_side:  # crops saved at one size, as a classifier's inputs often are
            size = (variant.fixed_side, variant.fixed_side)
        frames.append((image.resize(size, Image.Resampling.BILINEAR), quality))
    return frames


def plan_shots(variant: Variant, seed: int) -> list[tuple[int, int, float, int, str, bool, int]]:
    """(camera, burst, start seconds, length, scene, night, revisit-of) per burst."""
    rng = np.random.default_rng([seed, 0])
    n_cameras = max(3, round(0.3 * math.sqrt(variant.n_images)))
    lo, hi = variant.burst_len
    plans: list[tuple[int, int, float, int, str, bool, int]] = []
    clock = np.zeros(n_cameras)
    total = 0
    burst = 0
    while total < variant.n_images:
        camera = int(rng.integers(n_cameras))
        length = int(rng.integers(lo, hi + 1))
        revisit_of = -1
        previous = [p for p in plans if p[0] == camera]
        if previous and rng.random() < variant.revisit and previous[-1][6] < 0:
            revisit_of = previous[-1][1]
            clock[camera] += rng.uniform(120, 600)  # minutes later, same animal, same place
            scene, night = previous[-1][4], previous[-1][5]
        else:
            clock[camera] += rng.exponential(MINUTES_BETWEEN_BURSTS * 60) + 60
            night = bool(rng.random() < NIGHT_FRACTION)
            scene = "night" if night else "day"
            if rng.random() < RARE_FRACTION:
                scene = RARE_SCENES[int(rng.integers(len(RARE_SCENES)))]
        plans.append((camera, burst, float(clock[camera]), length, scene, night, revisit_of))
        clock[camera] += length * 1.0
        total += length
        burst += 1
    return plans


def make_set(root: str | os.PathLike[str], variant: Variant, seed: int) -> Path:
    """Write one set into ``root`` (created), with ``truth.csv``; returns the folder."""
    out = Path(root)
    out.mkdir(parents=True, exist_ok=True)
    plans = plan_shots(variant, seed)
    backgrounds: dict[int, FloatImage] = {}
    animals: dict[int, Animal] = {}
    rows = []
    per_folder = variant.cameras_per_folder
    for camera, burst, start, length, scene, night, revisit_of in plans:
        if camera not in backgrounds:
            backgrounds[camera] = background(seed, camera)
        rng = np.random.default_rng([seed, burst, 2])
        if revisit_of >= 0:
            animal = dataclasses.replace(animals[revisit_of])
            animal.x += rng.uniform(-0.05, 0.05) * SCENE_WIDTH
        else:
            animal = new_animal(rng, variant)
        animals[burst] = dataclasses.replace(animal)
        frames = render_burst(variant, backgrounds[camera], animal, rng, length, scene, night)
        folder = out / f"site{camera // per_folder:02d}"
        folder.mkdir(exist_ok=True)
        for frame, (image, quality) in enumerate(frames):
            t = start + frame
            # several cameras in a folder: files named by capture time, so they interleave
            name = f"IMG_{int(t):07d}.JPG" if per_folder == 1 else f"{int(t):07d}_cam{camera}.jpg"
            buffer = io.BytesIO()
            image.save(buffer, "JPEG", quality=quality)
            (folder / name).write_bytes(buffer.getvalue())
            rows.append(
                {
                    "path": str(folder / name),
                    "burst": burst,
                    "location": camera,
                    "scene": scene,
                    "rare": int(scene in RARE_SCENES),
                    "revisit_of": revisit_of,
                    "width": image.size[0],
                    "height": image.size[1],
                }
            )
    with open(out / TRUTH_NAME, "w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return out


def ensure_set(data_dir: Path, variant: Variant, seed: int) -> Path:
    """The folder of a cached set, generating it (atomically) if missing."""
    name = f"sweep-{variant.name}-n{variant.n_images}-s{seed}"
    root = data_dir / name
    if (root / TRUTH_NAME).exists():
        return root
    data_dir.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(prefix=f".{name}.", dir=data_dir))
    try:
        make_set(partial, variant, seed)
        with open(partial / TRUTH_NAME) as handle:
            text = handle.read().replace(str(partial), str(root))
        (partial / TRUTH_NAME).write_text(text)
        os.replace(partial, root)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return root


def read_truth(root: Path) -> list[dict[str, str]]:
    with open(root / TRUTH_NAME, newline="") as handle:
        return list(csv.DictReader(handle))


def main(argv: Sequence[str]) -> int:
    if not argv:
        print(__doc__)
        return 2
    names = argv[1:] or list(VARIANTS)
    for name in names:
        root = ensure_set(Path(argv[0]), VARIANTS[name], 0)
        print(root, len(read_truth(root)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
