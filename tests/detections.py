"""A small camera-trap set with detector output: real JPEG frames, MegaDetector and COCO JSON.

:func:`make_camera_trap_set` writes 640x480 JPEG frames with painted
"animals" (solid rectangles of a colour per species) at known boxes, in
several camera folders that reuse the same file names, with EXIF capture
times, bursts (sequences of frames 1 s apart, sequences 15 min apart, the
same clock on every camera), day and night scenes, a rare species, people,
empty frames, frames with two animals, low-confidence false boxes, one frame
stored rotated with EXIF orientation 6, and one image MegaDetector failed on.

It writes a MegaDetector batch results file (format 1.4) and an equivalent
COCO Camera Traps file for the same frames, and returns the ground truth
(:class:`CameraTrapSet`), so tests (and later the pipeline tests and a
benchmark) can check every field against what was painted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from images import INVERSE_ORIENTATION, write_jpeg

__all__ = [
    "CLASSES",
    "FRAME_SIZE",
    "SPECIES_COLOUR",
    "CameraTrapSet",
    "Frame",
    "Painted",
    "make_camera_trap_set",
]

FRAME_SIZE = (640, 480)
"""Width and height of every stored frame (the rotated one shows as 480x640)."""

SPECIES_COLOUR: dict[str, tuple[int, int, int]] = {
    "deer": (150, 90, 40),
    "fox": (235, 110, 20),
    "boar": (40, 35, 30),
    "lynx": (205, 185, 120),
    "person": (20, 60, 200),
}
"""Fill colour of each painted object (the crop of a true box is this colour)."""

CLASSES = ("deer", "fox", "boar", "lynx")
"""Classification categories of the MegaDetector file, ids "0".."3" in this order."""

DETECTION_CATEGORIES = {"1": "animal", "2": "person", "3": "vehicle"}
COCO_CATEGORIES = ["empty", *CLASSES, "person"]  # COCO ids 0..5 in this order

START = dt.datetime(2024, 5, 1, 6, 0, 0)
SEQUENCE_SPACING = dt.timedelta(minutes=15)
FRAME_SPACING = dt.timedelta(seconds=1)


@dataclass(frozen=True)
class Painted:
    """One box in one frame, as MegaDetector reports it.

    ``pixel`` is ``(x, y, w, h)`` in the oriented frame; ``bbox`` the
    normalised box written to the MegaDetector file (4 decimals).
    """

    pixel: tuple[int, int, int, int]
    bbox: tuple[float, float, float, float]
    category: str  # detection category name: "animal" or "person"
    species: str | None  # what was painted (None for a false box)
    conf: float
    classifications: list[list[Any]] | None
    true: bool  # painted (True) or a false detection on background (False)


@dataclass(frozen=True)
class Frame:
    """One frame: where it is, its metadata and its boxes."""

    name: str  # relative to the image root, forward slashes
    path: Path
    camera: str
    sequence: str
    time: dt.datetime
    night: bool
    orientation: int  # EXIF orientation tag (1 = upright)
    size: tuple[int, int]  # oriented width, height
    boxes: list[Painted]
    whole_image_label: str | None = None  # COCO image-level label (no boxes), if any


@dataclass(frozen=True)
class CameraTrapSet:
    """The written set and its ground truth."""

    root: Path  # image root: file names in both JSON files are relative to it
    frames: list[Frame]
    megadetector: Path
    coco: Path
    failed_image: str  # the MegaDetector entry with a "failure"
    megadetector_document: dict[str, Any] = field(repr=False)
    coco_document: dict[str, Any] = field(repr=False)


# (camera, species or "person" or "empty", frames, animals per frame, night, extra)
SCENARIOS: list[tuple[str, str, int, int, bool, str]] = [
    ("cam1", "deer", 3, 1, False, ""),
    ("cam1", "deer", 3, 2, False, "low-class"),  # two animals; one weak classification
    ("cam1", "empty", 2, 0, False, ""),
    ("cam1", "person", 2, 1, False, ""),
    ("cam2", "fox", 3, 1, True, "false-box"),  # night; a low-confidence false box
    ("cam2", "lynx", 2, 1, False, ""),  # rare species
    ("cam2", "boar", 2, 1, True, "rotated"),  # one frame stored with EXIF orientation 6
    ("cam2", "empty", 1, 0, True, "false-box"),
    ("cam3", "deer", 2, 1, False, "image-level"),  # COCO labels without boxes
    ("cam3", "fox", 2, 2, True, ""),
]
"""Cameras reuse the same clock (sequence k starts at the same time on each
camera), so only the location keeps their sequences apart."""


def _background(rng: np.random.Generator, size: tuple[int, int], night: bool) -> np.ndarray:
    width, height = size
    base = np.array((70, 70, 70) if night else (90, 150, 80), dtype=np.float32)
    gradient = np.linspace(0.8, 1.2, height, dtype=np.float32)[:, None, None]
    noise = rng.normal(0, 6, (height, width, 1)).astype(np.float32)
    return np.clip(base * gradient + noise, 0, 255).astype(np.uint8)


def _random_box(
    rng: np.random.Generator, size: tuple[int, int], taken: list[tuple[int, int, int, int]]
) -> tuple[int, int, int, int]:
    width, height = size
    for _ in range(100):
        w, h = int(rng.integers(60, 180)), int(rng.integers(50, 150))
        x, y = int(rng.integers(0, width - w)), int(rng.integers(0, height - h))
        if all(x + w <= a or a + c <= x or y + h <= b or b + d <= y for a, b, c, d in taken):
            return x, y, w, h
    raise AssertionError("no free place for a box")


def _normalised(
    pixel: tuple[int, int, int, int], size: tuple[int, int]
) -> tuple[float, float, float, float]:
    width, height = size
    x, y, w, h = pixel
    return (round(x / width, 4), round(y / height, 4), round(w / width, 4), round(h / height, 4))


def _classifications(species: str, score: float) -> list[list[Any]]:
    other = CLASSES[(CLASSES.index(species) + 1) % len(CLASSES)]
    return [[str(CLASSES.index(species)), score], [str(CLASSES.index(other)), 0.03]]


def _boxes(
    rng: np.random.Generator, kind: str, n: int, size: tuple[int, int], weak: bool, false: bool
) -> list[Painted]:
    taken: list[tuple[int, int, int, int]] = []
    boxes = []
    for k in range(n):
        pixel = _random_box(rng, size, taken)
        taken.append(pixel)
        person = kind == "person"
        score = 0.4 if weak and k == 1 else 0.92
        boxes.append(
            Painted(
                pixel=pixel,
                bbox=_normalised(pixel, size),
                category="person" if person else "animal",
                species=kind,
                conf=round(float(rng.uniform(0.6, 0.98)), 3),
                classifications=None if person else _classifications(kind, score),
                true=True,
            )
        )
    if false:
        pixel = _random_box(rng, size, taken)
        boxes.append(
            Painted(
                pixel=pixel,
                bbox=_normalised(pixel, size),
                category="animal",
                species=None,
                conf=round(float(rng.uniform(0.05, 0.15)), 3),
                classifications=[["1", 0.3]],
                true=False,
            )
        )
    return boxes


def _paint(path: Path, frame: Frame, rng: np.random.Generator) -> None:
    pixels = _background(rng, frame.size, frame.night)
    for box in frame.boxes:
        if box.true and box.species is not None:
            x, y, w, h = box.pixel
            pixels[y : y + h, x : x + w] = SPECIES_COLOUR[box.species]
    upright = Image.fromarray(pixels, "RGB")
    operation = INVERSE_ORIENTATION[frame.orientation]
    stored = upright if operation is None else upright.transpose(operation)
    write_jpeg(
        path,
        stored,
        quality=95,
        orientation=None if frame.orientation == 1 else frame.orientation,
        datetime_original=frame.time.strftime("%Y:%m:%d %H:%M:%S"),
    )


def _frames(root: Path, rng: np.random.Generator) -> list[Frame]:
    frames: list[Frame] = []
    counters: dict[str, int] = {}
    sequence_of_camera: dict[str, int] = {}
    for camera, kind, n_frames, n_animals, night, extra in SCENARIOS:
        k = sequence_of_camera.get(camera, 0)
        sequence_of_camera[camera] = k + 1
        start = START + k * SEQUENCE_SPACING
        for f in range(n_frames):
            counters[camera] = counters.get(camera, 0) + 1
            name = f"{camera}/IMG_{counters[camera]:04d}.JPG"
            rotated = extra == "rotated" and f == 1
            size = (FRAME_SIZE[1], FRAME_SIZE[0]) if rotated else FRAME_SIZE
            animals = 0 if kind == "empty" else n_animals
            boxes = _boxes(
                rng,
                kind,
                animals,
                size,
                weak=extra == "low-class" and f == 0,
                false=extra == "false-box" and f == n_frames - 1,
            )
            frames.append(
                Frame(
                    name=name,
                    path=root / camera / name.split("/")[1],
                    camera=camera,
                    sequence=f"{camera}-s{k}",
                    time=start + f * FRAME_SPACING,
                    night=night,
                    orientation=6 if rotated else 1,
                    size=size,
                    boxes=boxes,
                    whole_image_label=kind if extra == "image-level" else None,
                )
            )
    return frames


def _megadetector_document(frames: list[Frame], failed: str) -> dict[str, Any]:
    images: list[dict[str, Any]] = []
    for frame in frames:
        detections = []
        for box in frame.boxes:
            detection: dict[str, Any] = {
                "category": "2" if box.category == "person" else "1",
                "conf": box.conf,
                "bbox": list(box.bbox),
            }
            if box.classifications is not None:
                detection["classifications"] = box.classifications
            detections.append(detection)
        images.append({"file": frame.name, "detections": detections})
    images.insert(3, {"file": failed, "failure": "Failure image access", "detections": None})
    return {
        "info": {
            "format_version": "1.4",
            "detector": "md_v5a.0.0.pt",
            "detection_completion_time": "2024-05-02 10:00:00",
            "detector_metadata": {"typical_detection_threshold": 0.2},
        },
        "detection_categories": dict(DETECTION_CATEGORIES),
        "classification_categories": {str(i): name for i, name in enumerate(CLASSES)},
        "images": images,
    }


def _coco_document(frames: list[Frame]) -> dict[str, Any]:
    category_id = {name: i for i, name in enumerate(COCO_CATEGORIES)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i, frame in enumerate(frames):
        image: dict[str, Any] = {
            "id": f"img{i}",
            "file_name": frame.name,
            "location": frame.camera,
            "seq_id": frame.sequence,
            "frame_num": int(frame.name[-8:-4]),
            "datetime": frame.time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if frame.orientation == 1 and i % 4 != 1:  # some entries lack a size: read from header
            image["width"], image["height"] = frame.size
        images.append(image)
        true_boxes = [box for box in frame.boxes if box.true]
        if frame.whole_image_label is not None:
            annotations.append(
                {"image_id": f"img{i}", "category_id": category_id[frame.whole_image_label]}
            )
            continue
        if not true_boxes:
            annotations.append({"image_id": f"img{i}", "category_id": category_id["empty"]})
        for box in true_boxes:
            annotations.append(
                {
                    "image_id": f"img{i}",
                    "category_id": category_id[box.species or "empty"],
                    "bbox": list(box.pixel),
                }
            )
    for k, annotation in enumerate(annotations):
        annotation["id"] = f"ann{k}"
    return {
        "info": {"version": "1.0", "description": "generated camera-trap test set"},
        "images": images,
        "annotations": annotations,
        "categories": [{"id": i, "name": name} for i, name in enumerate(COCO_CATEGORIES)],
    }


def make_camera_trap_set(folder: str | os.PathLike[str], seed: int = 0) -> CameraTrapSet:
    """Write the frames under ``folder/camera traps`` and both JSON files beside them."""
    root = Path(folder) / "camera traps"
    rng = np.random.default_rng(seed)
    frames = _frames(root, rng)
    for camera in sorted({frame.camera for frame in frames}):
        (root / camera).mkdir(parents=True, exist_ok=True)
    for frame in frames:
        _paint(frame.path, frame, rng)
    failed = "cam1/IMG_9999.JPG"
    megadetector = _megadetector_document(frames, failed)
    coco = _coco_document(frames)
    md_path = root / "md results.json"
    coco_path = root / "coco camera traps.json"
    md_path.write_text(json.dumps(megadetector, indent=1), encoding="utf-8")
    coco_path.write_text(json.dumps(coco, indent=1), encoding="utf-8")
    return CameraTrapSet(root, frames, md_path, coco_path, failed, megadetector, coco)
