"""Boxes of a frame decoded once: the same features as the crop cut and saved as a file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from images import write_oriented_jpeg
from smartdownsample.buckets import bucket_ids
from smartdownsample.features import features_from_thumbnails
from smartdownsample.loading import box_pixels, decode_file, thumbnail_side
from smartdownsample.synthetic import make_dataset

SIDE = thumbnail_side(8)
MIN_SAME_BUCKET = 0.92
"""Issue 14 asks that a box's bucket equal its saved crop's for at least 95% of boxes;
measured 95-96.5% (two seeds of 240 boxes x 2 strategies), the misses all in the
structure bits, whose 4-level edge step JPEG re-encoding of the crop tips either way.
This test guards against regressions with room for another libjpeg's rounding."""


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """Full 1920x1080 camera-trap frames (day, night, snow, forest), some rotated by EXIF."""
    root = tmp_path_factory.mktemp("frames")
    paths = make_dataset(root / "set", 10, seed=4, kind="frames").paths
    rotated = []
    for i, path in enumerate(paths[:2]):
        upright = Image.open(path).convert("RGB")
        stored = root / f"rotated_{i}.jpg"
        write_oriented_jpeg(stored, upright, 6)
        rotated.append(str(stored))
    return [*paths, *rotated]


def _boxes(rng: np.random.Generator, count: int) -> np.ndarray:
    """Boxes from a small far-away animal (3% of the frame) to a close one (70%)."""
    w = rng.uniform(0.03, 0.7, count)
    h = np.clip(w * rng.uniform(0.6, 1.8, count), 0.03, 0.95)
    x = rng.uniform(0, 1 - w)
    y = rng.uniform(0, 1 - h)
    return np.stack([x, y, w, h], axis=1)


def _crop_file(frame: str, box: np.ndarray, target: Path) -> str:
    """The box cut from the full-resolution upright frame and saved as a JPEG file."""
    with Image.open(frame) as image:
        upright = ImageOps.exif_transpose(image).convert("RGB")
    upright.crop(box_pixels(box, upright.width, upright.height)).save(target, quality=95)
    return str(target)


def test_box_buckets_match_saved_crops(frames: list[str], tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    same = total = 0
    for f, frame in enumerate(frames):
        boxes = _boxes(rng, 12)
        regions = decode_file(frame, SIDE, boxes=boxes).regions
        assert regions is not None and regions.shape == (12, SIDE, SIDE, 3)
        crops = np.stack(
            [
                decode_file(_crop_file(frame, box, tmp_path / f"{f}_{k}.jpg"), SIDE).thumbnail
                for k, box in enumerate(boxes)
            ]
        )
        for strategy in ("burst", "spec"):
            from_regions = bucket_ids(features_from_thumbnails(regions, 8), strategy)
            from_crops = bucket_ids(features_from_thumbnails(crops, 8), strategy)
            same += int((from_regions == from_crops).sum())
            total += len(boxes)
    assert same / total >= MIN_SAME_BUCKET, f"{same} of {total} boxes in the crop's bucket"


def test_one_decode_serves_every_box_at_the_smallest_scale(frames: list[str]) -> None:
    big = np.array([[0.1, 0.1, 0.5, 0.5], [0.5, 0.4, 0.4, 0.5]])
    decoded = decode_file(frames[0], SIDE, boxes=big)
    assert decoded.regions is not None and decoded.regions.shape == (2, SIDE, SIDE, 3)
    assert (decoded.width, decoded.height) == (1920, 1080)
    whole = decode_file(frames[0], SIDE)
    assert np.array_equal(whole.thumbnail, decoded.thumbnail)


def test_whole_frame_box_is_the_frame(frames: list[str]) -> None:
    for frame in (frames[0], frames[-1]):  # upright, and stored rotated
        decoded = decode_file(frame, SIDE, boxes=np.array([[0.0, 0.0, 1.0, 1.0]]))
        assert decoded.regions is not None
        difference = np.abs(decoded.regions[0].astype(int) - decoded.thumbnail.astype(int))
        assert difference.mean() < 2.0


def test_rotated_frame_boxes_are_upright(tmp_path: Path) -> None:
    """A box given on the upright picture finds its content in a frame stored rotated."""
    upright = Image.new("RGB", (640, 480), (30, 120, 40))
    upright.paste((220, 40, 40), (400, 60, 560, 180))  # red patch, upper right when upright
    stored = tmp_path / "rotated.jpg"
    write_oriented_jpeg(stored, upright, 6)
    box = np.array([[400 / 640, 60 / 480, 160 / 640, 120 / 480]])
    regions = decode_file(stored, SIDE, boxes=box).regions
    assert regions is not None
    mean = regions[0].reshape(-1, 3).mean(axis=0)
    assert mean[0] > 180 and mean[1] < 80, mean


def test_boxes_outside_or_tiny_are_clamped_to_one_pixel(frames: list[str]) -> None:
    odd = np.array([[0.999, 0.999, 0.5, 0.5], [0.2, 0.2, 0.0, 0.0]])
    regions = decode_file(frames[0], SIDE, boxes=odd).regions
    assert regions is not None and regions.shape == (2, SIDE, SIDE, 3)
