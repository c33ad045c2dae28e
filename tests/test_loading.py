"""Stage 1: every file becomes one RGB thumbnail of the right colour, or a clear error."""

from __future__ import annotations

import math
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageOps

from images import (
    Sample,
    asymmetric,
    quadrants,
    solid,
    write_jpeg,
    write_oriented_jpeg,
    write_png,
    write_png_16bit,
    write_varied_jpegs,
)
from smartdownsample import ImageLoadError
from smartdownsample.buckets import bucket_ids
from smartdownsample.features import features_from_thumbnails
from smartdownsample.loading import (
    decode_bytes,
    decode_file,
    parse_exif_datetime,
    thumbnail_side,
)

SIDE = 32
READABLE_NAMES = [
    "jpeg-baseline",
    "jpeg-progressive",
    "jpeg-subsampled",
    "jpeg-cmyk",
    "png-rgb",
    "png-l",
    "png-la-opaque",
    "png-la-half",
    "png-p",
    "png-p-transparent",
    "png-p-unused-transparency",
    "png-rgba-opaque",
    "png-rgba-half",
    "png-rgba-transparent",
    "png-1bit-white",
    "png-1bit-black",
    "png-16bit",
    "png-16bit-max",
    "tiff-16bit",
    "tiff",
    "bmp",
    "webp",
    "gif",
]
UNREADABLE_KINDS = ["corrupt", "truncated", "empty", "text", "missing", "folder", "broken-symlink"]


@pytest.fixture(params=[True, False], ids=["fast", "pillow"])
def fast(request: pytest.FixtureRequest) -> bool:
    """Both JPEG decoders: the simplejpeg fast path (when installed) and Pillow's."""
    return bool(request.param)


def _sample(catalogue: list[Sample], name: str) -> Sample:
    return next(sample for sample in catalogue if sample.name == name)


# --------------------------------------------------------------------------- every mode


def test_catalogue_covers_every_mode(catalogue: list[Sample]) -> None:
    assert sorted(sample.name for sample in catalogue) == sorted(READABLE_NAMES)
    modes = set()
    for sample in catalogue:
        with Image.open(sample.path) as image:
            modes.add(image.mode)
    # The files really are in the modes the loader must handle.
    assert {"RGB", "L", "LA", "P", "RGBA", "1", "CMYK"} <= modes
    assert modes & {"I;16", "I"}


@pytest.mark.parametrize("name", READABLE_NAMES)
def test_every_mode_gives_an_rgb_thumbnail_of_the_right_colour(
    catalogue: list[Sample], name: str, fast: bool
) -> None:
    sample = _sample(catalogue, name)
    decoded = decode_file(sample.path, SIDE, fast=fast)
    thumb = decoded.thumbnail
    assert thumb.shape == (SIDE, SIDE, 3)
    assert thumb.dtype == np.uint8
    mean = thumb.reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(mean, sample.expected, atol=sample.tolerance + 1e-9)
    # Solid images: the whole thumbnail has that colour, not just its mean.
    assert np.abs(thumb.astype(int) - sample.expected).max() <= sample.tolerance + 2
    with Image.open(sample.path) as image:
        assert (decoded.width, decoded.height) == image.size


def test_sixteen_bit_is_scaled_not_clipped(tmp_path: Path) -> None:
    """1.x clipped 16-bit values to 255; the dark and bright halves must stay apart."""
    array = np.full((64, 96), 10000, dtype=np.uint16)
    array[:, 48:] = 50000
    thumb = decode_file(write_png_16bit(tmp_path / "halves.png", array), SIDE).thumbnail
    left, right = thumb[:, :12].astype(int), thumb[:, 20:].astype(int)
    assert np.abs(left - 10000 * 255 / 65535).max() <= 1.5  # 39
    assert np.abs(right - 50000 * 255 / 65535).max() <= 1.5  # 195


def test_sixteen_bit_gives_mid_gray_bucket_not_white(catalogue: list[Sample]) -> None:
    decoded = decode_file(_sample(catalogue, "png-16bit").path, SIDE)
    row = features_from_thumbnails(decoded.thumbnail[None], 8)
    assert abs(float(row["mean_rgb"][0].mean()) - 117) <= 1
    # 117 < 128: a dark grayscale image.
    assert int(bucket_ids(row)[0]) >> 2 & 0b11 == 0b01


def test_transparency_is_composited_on_white(tmp_path: Path) -> None:
    array = np.zeros((64, 96, 4), dtype=np.uint8)
    array[:, 48:] = (200, 0, 0, 255)  # right half opaque red, left half fully transparent black
    thumb = decode_file(write_png(tmp_path / "half.png", Image.fromarray(array, "RGBA")), SIDE)
    left = thumb.thumbnail[:, :12].reshape(-1, 3)
    right = thumb.thumbnail[:, 20:].reshape(-1, 3)
    assert (left == 255).all()
    assert (right == (200, 0, 0)).all()


def test_one_bit_pattern_keeps_its_layout(tmp_path: Path) -> None:
    array = np.zeros((64, 96), dtype=bool)
    array[:, 48:] = True
    path = write_png(tmp_path / "bits.png", Image.fromarray(array).convert("1"))
    thumb = decode_file(path, SIDE).thumbnail
    assert (thumb[:, :12] == 0).all()
    assert (thumb[:, 20:] == 255).all()


def test_solid_colours_through_jpeg_keep_their_hue(tmp_path: Path) -> None:
    for colour in [(230, 20, 20), (20, 200, 20), (20, 20, 230), (128, 128, 128)]:
        path = write_jpeg(tmp_path / f"c{colour[0]}_{colour[1]}.jpg", solid(colour, (400, 300)))
        mean = decode_file(path, SIDE).thumbnail.reshape(-1, 3).mean(axis=0)
        np.testing.assert_allclose(mean, colour, atol=6)


# --------------------------------------------------------------------------- EXIF


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_shows_the_image_upright(
    tmp_path: Path, orientation: int, fast: bool
) -> None:
    upright = quadrants((256, 192))
    reference = decode_file(write_jpeg(tmp_path / "upright.jpg", upright), SIDE, fast=fast)
    reference_thumbnail = reference.thumbnail
    path = write_oriented_jpeg(tmp_path / f"o{orientation}.jpg", upright, orientation)
    with Image.open(path) as stored:
        # The helper stores what a camera would: Pillow's own transpose restores it.
        shown = np.asarray(ImageOps.exif_transpose(stored).convert("RGB"), dtype=int)
        assert shown.shape == (192, 256, 3)
        assert np.abs(shown - np.asarray(upright, dtype=int)).mean() < 4
        stored_size = stored.size
    decoded = decode_file(path, SIDE, fast=fast)
    difference = np.abs(decoded.thumbnail.astype(int) - reference_thumbnail.astype(int))
    assert difference.mean() < 4, f"orientation {orientation} not applied"
    # width and height describe the stored image.
    assert (decoded.width, decoded.height) == stored_size


@pytest.mark.parametrize("orientation", [3, 6, 8])
def test_exif_orientation_left_dark_right_bright(
    tmp_path: Path, orientation: int, fast: bool
) -> None:
    upright = asymmetric((300, 200))
    path = write_oriented_jpeg(tmp_path / f"a{orientation}.jpg", upright, orientation)
    thumb = decode_file(path, SIDE, fast=fast).thumbnail.astype(int)
    assert thumb[:, :12].mean() < 50
    assert thumb[:, 20:].mean() > 200


def test_capture_time_from_datetime_original(tmp_path: Path, fast: bool) -> None:
    path = write_jpeg(
        tmp_path / "timed.jpg",
        solid((90, 90, 90)),
        datetime_original="2024:05:01 13:22:05",
        datetime="2020:01:01 00:00:00",
    )
    # DateTimeOriginal wins over the file's DateTime.
    assert decode_file(path, SIDE, fast=fast).capture_time == 1714569725.0


def test_capture_time_falls_back_to_datetime(tmp_path: Path, fast: bool) -> None:
    path = write_jpeg(tmp_path / "dt.jpg", solid((90, 90, 90)), datetime="2024:05:01 13:22:06")
    assert decode_file(path, SIDE, fast=fast).capture_time == 1714569726.0


def test_capture_time_with_orientation(tmp_path: Path, fast: bool) -> None:
    path = write_jpeg(
        tmp_path / "both.jpg",
        solid((90, 90, 90)),
        orientation=6,
        datetime_original="2023:12:31 23:59:59",
    )
    assert decode_file(path, SIDE, fast=fast).capture_time == 1704067199.0


def test_capture_time_missing_or_invalid_is_nan(tmp_path: Path, fast: bool) -> None:
    plain = write_jpeg(tmp_path / "plain.jpg", solid((90, 90, 90)))
    zeros = write_jpeg(
        tmp_path / "zeros.jpg", solid((90, 90, 90)), datetime_original="0000:00:00 00:00:00"
    )
    png = write_png(tmp_path / "plain.png", solid((90, 90, 90)))
    for path in (plain, zeros, png):
        assert math.isnan(decode_file(path, SIDE, fast=fast).capture_time)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024:05:01 13:22:05", 1714569725.0),
        (b"2024:05:01 13:22:05\x00", 1714569725.0),
        ("1970:01:01 00:00:00", 0.0),
        ("2024:02:30 10:00:00", math.nan),
        ("", math.nan),
        ("    :  :     :  :  ", math.nan),
        (None, math.nan),
        (20240501, math.nan),
    ],
)
def test_parse_exif_datetime(text: object, expected: float) -> None:
    parsed = parse_exif_datetime(text)
    if math.isnan(expected):
        assert math.isnan(parsed)
    else:
        assert parsed == expected


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kind", UNREADABLE_KINDS)
def test_unreadable_files_raise_image_load_error_naming_the_path(
    unreadable: dict[str, Path], kind: str, fast: bool
) -> None:
    path = unreadable[kind]
    with pytest.raises(ImageLoadError) as info:
        decode_file(path, SIDE, fast=fast)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)
    assert info.value.reason
    assert info.value.reason in str(info.value)


def test_unreadable_reasons_are_specific(unreadable: dict[str, Path]) -> None:
    def reason(kind: str) -> str:
        with pytest.raises(ImageLoadError) as info:
            decode_file(unreadable[kind], SIDE)
        return info.value.reason.lower()

    assert "empty" in reason("empty")
    assert "truncated" in reason("truncated")
    assert "folder" in reason("folder") or "directory" in reason("folder")
    assert "link" in reason("broken-symlink")
    assert "not exist" in reason("missing") or "no such" in reason("missing")


def test_decode_bytes_errors_and_success(catalogue: list[Sample]) -> None:
    with pytest.raises(ImageLoadError) as info:
        decode_bytes(b"", SIDE, "memory.jpg")
    assert info.value.path == "memory.jpg"
    with pytest.raises(ImageLoadError):
        decode_bytes(b"\xff\xd8\xff garbage", SIDE, "memory.jpg")
    sample = _sample(catalogue, "png-rgb")
    from_bytes = decode_bytes(sample.path.read_bytes(), SIDE, "x")
    from_file = decode_file(sample.path, SIDE)
    np.testing.assert_array_equal(from_bytes.thumbnail, from_file.thumbnail)


def test_decompression_bomb_warning_is_not_muted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """1.x muted all warnings; Pillow's bomb warning must reach the caller."""
    path = write_png(tmp_path / "big.png", solid((10, 20, 30), (40, 40)))  # 1600 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.warns(Image.DecompressionBombWarning):
        decode_file(path, SIDE)


def test_decompression_bomb_error_names_the_file_and_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write_jpeg(tmp_path / "huge.jpg", solid((10, 20, 30), (100, 100)))  # 10000 pixels
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    with pytest.raises(ImageLoadError) as info:
        decode_file(path, SIDE)
    assert info.value.path == str(path)
    assert "MAX_IMAGE_PIXELS" in str(info.value)


# --------------------------------------------------------------------------- read-only


@pytest.fixture
def recorded_opens() -> Iterator[list[tuple[str, object, int]]]:
    """Record every ``open`` in this thread while the fixture is active (audit hook)."""
    records: list[tuple[str, object, int]] = []
    state = {"active": True}
    owner = threading.get_ident()

    def hook(event: str, args: tuple[object, ...]) -> None:
        if event == "open" and state["active"] and threading.get_ident() == owner:
            path, mode, flags = args
            if isinstance(path, (str, bytes, os.PathLike)):
                records.append((os.fsdecode(path), mode, int(flags or 0)))

    sys.addaudithook(hook)  # cannot be removed; it goes quiet when the test ends
    try:
        yield records
    finally:
        state["active"] = False


def test_decode_file_never_opens_for_writing(
    catalogue: list[Sample], recorded_opens: list[tuple[str, object, int]]
) -> None:
    before = {s.path: (s.path.read_bytes(), s.path.stat().st_mtime_ns) for s in catalogue}
    for sample in catalogue:
        decode_file(sample.path, SIDE)
    touched = [record for record in recorded_opens if Path(record[0]) in before]
    assert {Path(record[0]) for record in touched} == set(before)
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    for path, mode, flags in touched:
        assert not (flags & write_flags), (path, mode, flags)
        if isinstance(mode, str):
            assert not set(mode) & set("wax+"), (path, mode)
    for path, (content, mtime) in before.items():
        assert path.read_bytes() == content
        assert path.stat().st_mtime_ns == mtime


# --------------------------------------------------------------------------- sizes


def test_thumbnail_side_for_hash_sizes() -> None:
    assert thumbnail_side(8) == 32
    assert thumbnail_side(4) == 32
    assert thumbnail_side(2) == 32
    for hash_size in range(2, 65):
        # At least 32 px and at least 3 px per dHash cell.
        assert thumbnail_side(hash_size) >= max(32, 3 * (hash_size + 1))


@pytest.mark.parametrize("size", [(1, 1), (3, 200), (31, 31), (33, 20), (5000, 40)])
def test_tiny_and_extreme_images(tmp_path: Path, size: tuple[int, int]) -> None:
    path = write_png(tmp_path / f"s{size[0]}x{size[1]}.png", solid((12, 34, 56), size))
    decoded = decode_file(path, SIDE)
    assert decoded.thumbnail.shape == (SIDE, SIDE, 3)
    assert (decoded.thumbnail == (12, 34, 56)).all()
    assert (decoded.width, decoded.height) == size


def test_large_hash_size_thumbnail(catalogue: list[Sample]) -> None:
    side = thumbnail_side(16)
    decoded = decode_file(_sample(catalogue, "jpeg-baseline").path, side)
    assert decoded.thumbnail.shape == (side, side, 3)


def test_path_objects_and_strings_agree(catalogue: list[Sample]) -> None:
    sample = _sample(catalogue, "jpeg-progressive")
    np.testing.assert_array_equal(
        decode_file(sample.path, SIDE).thumbnail, decode_file(str(sample.path), SIDE).thumbnail
    )


# --------------------------------------------------------------------------- draft vs full


def _full_decode_thumbnail(path: Path, side: int) -> np.ndarray:
    """The slow reference: full-resolution decode, orientation, RGB, area resize."""
    with Image.open(path) as image:
        image.load()
        upright = ImageOps.exif_transpose(image).convert("RGB")
    return np.asarray(upright.resize((side, side), Image.Resampling.BOX), dtype=np.uint8)


@pytest.fixture(scope="module")
def varied_jpegs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return write_varied_jpegs(tmp_path_factory.mktemp("varied"), 300, seed=11)


@pytest.fixture(scope="module")
def full_thumbnails(varied_jpegs: list[Path]) -> np.ndarray:
    return np.stack([_full_decode_thumbnail(path, SIDE) for path in varied_jpegs])


def test_fast_and_pillow_jpeg_paths_agree(varied_jpegs: list[Path]) -> None:
    for path in varied_jpegs[:100]:
        a = decode_file(path, SIDE, fast=True)
        b = decode_file(path, SIDE, fast=False)
        assert np.abs(a.thumbnail.astype(int) - b.thumbnail.astype(int)).max() <= 1, path
        assert (a.width, a.height) == (b.width, b.height)


def test_jpeg_draft_decoding_matches_full_decode(
    varied_jpegs: list[Path], full_thumbnails: np.ndarray, fast: bool
) -> None:
    """DCT-domain scaling must not change the buckets of more than 3% of images.

    The reference decodes every file at full resolution with Pillow, converts
    to RGB and area-reduces to 32 x 32, as loading would without ``draft``.
    The two decoders this package really uses (simplejpeg and Pillow's
    ``draft``) agree bit for bit (``tests/test_extract.py``); against a full
    decode, images whose bucket features sit on a threshold may flip: measured
    6 of 300 here, and two full decodes with LANCZOS vs BOX resizing disagree
    on 1% of these images, so 3% bounds the decoder's share of it.
    """
    scaled = np.stack([decode_file(path, SIDE, fast=fast).thumbnail for path in varied_jpegs])
    difference = np.abs(scaled.astype(int) - full_thumbnails.astype(int))
    assert difference.mean() < 2.0
    scaled_rows = features_from_thumbnails(scaled, 8)
    full_rows = features_from_thumbnails(full_thumbnails, 8)
    np.testing.assert_allclose(scaled_rows["mean_rgb"], full_rows["mean_rgb"], atol=3)
    changed = int((bucket_ids(scaled_rows) != bucket_ids(full_rows)).sum())
    count = len(varied_jpegs)
    assert changed <= 0.03 * count, (
        f"{changed} of {count} JPEGs get another bucket than with a full decode"
    )
