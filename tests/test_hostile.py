"""Hostile inputs (issue 6, item 1): a correct feature row or a clear failure naming the file.

Every kind in :mod:`hostile` goes through the three entry points a user
reaches: :func:`smartdownsample.loading.decode_file`,
:func:`smartdownsample.extraction.extract_batch` and the public
:func:`smartdownsample.api.downsample` with ``image_loading_errors`` "skip"
and "raise". Readable kinds must look like their reference picture (upright,
composited on white, 16-bit scaled); unreadable kinds must raise or report
:class:`ImageLoadError` naming the file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image, ImageFile

import hostile
from smartdownsample import loading
from smartdownsample._exceptions import ImageLoadError
from smartdownsample.api import downsample
from smartdownsample.extraction import extract_batch
from smartdownsample.features import features_from_thumbnails
from smartdownsample.loading import decode_bytes, decode_file, thumbnail_side

SIDE = 32
"""Thumbnail side for hash size 8 (thumbnail_side(8))."""

HASH_SIZE = 8

MEAN_TOLERANCE = 4.0
"""Largest mean absolute difference (0..255 scale) between a decoded
thumbnail and its lossless reference: JPEG at quality 95 with DCT scaling is
within about 1; a wrong orientation, black transparency or clipped 16-bit data
is off by 50 or more."""

BOMB_SECONDS = 1.0
"""A decompression bomb must be refused within this time (the brief's limit)."""

BOMB_RSS_BYTES = 50 * 1024 * 1024
"""Peak-memory growth allowed while refusing a 40,000 x 40,000 bomb: 4.8 GB as
RGB, 75 MB even decoded at 1/8 by DCT scaling, so 50 MB proves no allocation."""

N_GOOD = 24
"""Ordinary images mixed with the hostile ones in downsample runs."""

FAIL_KINDS = [name for name, kind in hostile.HOSTILE_KINDS.items() if kind.outcome == "fail"]


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """One file of every hostile kind, written once for the module (read-only use)."""
    return hostile.write_hostile_files(tmp_path_factory.mktemp("hostile"), rng_seed=0)


def _write_good(folder: Path, count: int = N_GOOD, seed: int = 1) -> list[str]:
    """Ordinary, distinct JPEGs: smooth random colour fields with a bright patch."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    paths = []
    for index in range(count):
        corners = rng.integers(0, 256, size=(2, 2, 3)).astype(np.float64)
        ys = np.linspace(0, 1, 72)[:, None, None]
        xs = np.linspace(0, 1, 96)[None, :, None]
        top = corners[0, 0] * (1 - xs) + corners[0, 1] * xs
        bottom = corners[1, 0] * (1 - xs) + corners[1, 1] * xs
        pixels = top * (1 - ys) + bottom * ys
        y, x = rng.integers(0, 48), rng.integers(0, 64)
        pixels[y : y + 24, x : x + 32] = 255
        path = folder / f"IMG_{index:04d}.JPG"
        Image.fromarray(pixels.astype(np.uint8)).save(path, quality=90)
        paths.append(str(path))
    return paths


def _reference_thumbnail(name: str) -> NDArray[np.uint8]:
    reference = hostile.reference_image(name)
    assert reference is not None
    return decode_bytes(hostile.png_bytes(reference), SIDE, "reference").thumbnail


def _mean_diff(a: NDArray[np.uint8], b: NDArray[np.uint8]) -> float:
    return float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())


def _assert_names_file(error: ImageLoadError, path: str) -> None:
    assert error.path == path
    assert path in str(error)
    assert error.reason.strip()


# --------------------------------------------------------------------------
# decode_file: each kind on its own
# --------------------------------------------------------------------------


@pytest.mark.parametrize("fast", [True, False], ids=["default", "pillow"])
@pytest.mark.parametrize("name", list(hostile.HOSTILE_KINDS))
def test_decode_file_gives_correct_row_or_named_failure(
    files: dict[str, str], name: str, fast: bool
) -> None:
    """Default path (simplejpeg for plain JPEGs when installed) and Pillow-only path."""
    kind = hostile.HOSTILE_KINDS[name]
    path = files[name]
    try:
        decoded = decode_file(path, SIDE, fast=fast)
    except ImageLoadError as error:
        assert kind.outcome != "ok", f"{name} ({kind.description}) must decode: {error}"
        _assert_names_file(error, path)
        return
    assert kind.outcome != "fail", f"{name} ({kind.description}) decoded instead of failing"
    assert decoded.thumbnail.shape == (SIDE, SIDE, 3)
    assert decoded.thumbnail.dtype == np.uint8
    assert decoded.width >= 1 and decoded.height >= 1
    difference = _mean_diff(decoded.thumbnail, _reference_thumbnail(name))
    assert difference < MEAN_TOLERANCE, f"{name} ({kind.description}) looks wrong: {difference}"


def test_specific_defects_of_release_1x_are_gone(files: dict[str, str]) -> None:
    """The three colour defects of 1.x, checked on their own terms."""
    transparent = decode_file(files["png_rgba_transparent"], SIDE).thumbnail
    assert transparent.min() >= 250, "fully transparent pixels must show as white, not black"
    ramp = decode_file(files["png_16bit"], SIDE).thumbnail[..., 0].astype(np.int16)
    assert ramp.max() - ramp.min() > 200, "a 16-bit ramp must stay a ramp, not clip to white"
    assert (np.diff(ramp, axis=1) >= 0).all()
    cmyk = decode_file(files["jpeg_cmyk"], SIDE).thumbnail
    ycck = decode_file(files["jpeg_ycck"], SIDE).thumbnail
    assert _mean_diff(cmyk, ycck) < MEAN_TOLERANCE, "YCCK and CMYK of one picture must agree"


def test_arithmetic_jpeg_decodes_like_its_huffman_source(files: dict[str, str]) -> None:
    data = hostile.DATA_DIR / "arithmetic.jpg"
    assert b"\xff\xc9" in data.read_bytes(), "fixture must be arithmetic-coded (SOF9)"
    arithmetic = decode_file(files["jpeg_arithmetic"], SIDE).thumbnail
    source = decode_file(hostile.DATA_DIR / "arithmetic_source.jpg", SIDE).thumbnail
    # jpegtran -arithmetic keeps the DCT coefficients: pixels are identical.
    np.testing.assert_array_equal(arithmetic, source)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_shows_the_upright_picture(
    files: dict[str, str], orientation: int
) -> None:
    decoded = decode_file(files[f"exif_orientation_{orientation}"], SIDE)
    upright = _reference_thumbnail("exif_orientation_1")
    assert _mean_diff(decoded.thumbnail, upright) < MEAN_TOLERANCE
    # The test can tell orientations apart: every other placement is far off.
    scene = hostile.scene()
    for op in Image.Transpose:  # the 7 placements other than upright: 45 to 150 off
        wrong = decode_bytes(hostile.png_bytes(scene.transpose(op)), SIDE).thumbnail
        assert _mean_diff(decoded.thumbnail, wrong) > 5 * MEAN_TOLERANCE, op.name
    # width and height are those of the stored image, before orientation.
    stored_portrait = orientation >= 5
    assert (decoded.width, decoded.height) == ((120, 160) if stored_portrait else (160, 120))


@pytest.mark.parametrize("cut_name", ["truncated_mid_scan", "truncated_at_sos"])
def test_truncated_progressive_jpeg_is_reported_or_correct(tmp_path: Path, cut_name: str) -> None:
    data = hostile.jpeg_bytes(hostile.scene(), progressive=True)
    sos = data.find(b"\xff\xda")
    cut = {"truncated_at_sos": sos + 4, "truncated_mid_scan": (sos + len(data)) // 2}[cut_name]
    path = tmp_path / "progressive_cut.jpg"
    path.write_bytes(data[:cut])
    try:
        decoded = decode_file(path, SIDE)
    except ImageLoadError as error:
        _assert_names_file(error, str(path))
        return
    # Progressive scans refine the whole picture: the first ones alone may
    # give the right thumbnail (DCT scaling uses DC coefficients only).
    assert _mean_diff(decoded.thumbnail, _reference_thumbnail("jpeg_progressive")) < MEAN_TOLERANCE


FAST_JPEG = bool(getattr(loading, "FAST_JPEG_AVAILABLE", False))


@pytest.mark.parametrize(
    "decoder",
    [
        pytest.param(
            "fast",
            marks=pytest.mark.skipif(not FAST_JPEG, reason="simplejpeg missing"),
        ),
        pytest.param(
            "pillow",
            marks=pytest.mark.xfail(
                strict=True,
                reason=(
                    "known limitation of the Pillow fallback (used only where simplejpeg "
                    "declines a file): a baseline JPEG whose scan is cut or zero-filled "
                    "but still ends with EOI decodes silently to a wrong picture (Pillow "
                    "drops libjpeg's 'Corrupt JPEG data' warnings); simplejpeg reports it"
                ),
            ),
        ),
    ],
)
@pytest.mark.parametrize("damage", ["cut_keep_eoi", "zero_block"])
def test_damaged_scan_that_keeps_its_end_marker(tmp_path: Path, damage: str, decoder: str) -> None:
    data = hostile.jpeg_bytes(hostile.scene(), quality=85)
    middle = (data.find(b"\xff\xda") + len(data)) // 2  # inside the scan data
    damaged = {
        "cut_keep_eoi": data[:middle] + b"\xff\xd9",
        "zero_block": data[:middle] + bytes(256) + data[middle + 256 :],  # bad card sectors
    }[damage]
    path = tmp_path / "damaged.jpg"
    path.write_bytes(damaged)
    try:
        decoded = decode_file(path, SIDE, fast=decoder == "fast")
    except ImageLoadError as error:
        _assert_names_file(error, str(path))
        return
    assert _mean_diff(decoded.thumbnail, _reference_thumbnail("exif_orientation_1")) < (
        MEAN_TOLERANCE
    )


@pytest.mark.parametrize("fast", [True, False], ids=["default", "pillow"])
def test_truncated_jpeg_is_reported_even_if_the_caller_allows_truncated_images(
    files: dict[str, str], monkeypatch: pytest.MonkeyPatch, fast: bool
) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    path = files["truncated_mid_scan"]
    with pytest.raises(ImageLoadError) as caught:
        decode_file(path, SIDE, fast=fast)
    _assert_names_file(caught.value, path)


_GHOSTSCRIPT_PROBE = """
import json, sys
from smartdownsample import loading
from smartdownsample._exceptions import ImageLoadError
from smartdownsample.api import downsample
from smartdownsample.loading import decode_file
good, eps = sys.argv[1:]
try:
    decode_file(eps, 32)
    outcome = "decoded"
except ImageLoadError as error:
    outcome = "reported: " + str(error)
result = downsample([good, eps], 1, image_loading_errors="skip", show_progress=False)
print(json.dumps({"decode_file": outcome, "failures": [f.path for f in result.failures]}))
"""


def test_postscript_named_jpg_never_runs_ghostscript(tmp_path: Path) -> None:
    """Pillow renders EPS by running the external ``gs`` program when it is installed.

    A file named .jpg must never make this tool run an interpreter on
    untrusted content. A stand-in ``gs`` first on PATH records being run and
    fails, like a broken or refused Ghostscript would.
    """
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    marker = tmp_path / "ghostscript-was-run"
    fake_gs = bin_dir / "gs"
    fake_gs.write_text(f"#!/bin/sh\necho run >> '{marker}'\nexit 1\n")
    fake_gs.chmod(0o755)
    eps = tmp_path / "IMG_0002.jpg"
    eps.write_bytes(hostile.POSTSCRIPT)
    good = _write_good(tmp_path / "good", 1)[0]
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    probe = subprocess.run(
        [sys.executable, "-c", _GHOSTSCRIPT_PROBE, good, str(eps)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert not marker.exists(), "decoding a file named .jpg ran Ghostscript (EPS plugin)"
    assert probe.returncode == 0, f"a failing Ghostscript crashed the run:\n{probe.stderr[-800:]}"
    report = json.loads(probe.stdout)
    assert report["decode_file"].startswith("reported: ") and str(eps) in report["decode_file"]
    assert report["failures"] == [str(eps)]


# --------------------------------------------------------------------------
# Decompression bombs
# --------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["bomb_png", "bomb_jpeg"])
def test_bomb_is_refused_quickly_and_says_why(files: dict[str, str], name: str) -> None:
    assert os.path.getsize(files[name]) < 1024
    started = time.perf_counter()
    with pytest.raises(ImageLoadError) as caught:
        decode_file(files[name], SIDE)
    assert time.perf_counter() - started < BOMB_SECONDS
    _assert_names_file(caught.value, files[name])
    assert "decompression bomb" in caught.value.reason
    assert isinstance(caught.value.__cause__, Image.DecompressionBombError)


_BOMB_MEMORY_PROBE = """
import json, resource, sys, time
from smartdownsample import loading
from smartdownsample._exceptions import ImageLoadError
from smartdownsample.loading import decode_file
out = {}
for path in sys.argv[1:]:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    try:
        decode_file(path, 32)
        reason = None
    except ImageLoadError as error:
        reason = error.reason
    out[path] = {
        "seconds": time.perf_counter() - started,
        "rss_growth": (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) * 1024,
        "reason": reason,
    }
print(json.dumps(out))
"""


def test_bomb_is_refused_without_allocating_it(files: dict[str, str]) -> None:
    """Peak RSS in a fresh process (Pillow allocates outside tracemalloc's view)."""
    bombs = [files["bomb_png"], files["bomb_jpeg"]]
    probe = subprocess.run(
        [sys.executable, "-c", _BOMB_MEMORY_PROBE, *bombs],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    report = json.loads(probe.stdout)
    for path in bombs:
        assert report[path]["reason"] is not None, f"{path} was decoded"
        assert report[path]["rss_growth"] < BOMB_RSS_BYTES, report[path]
        assert report[path]["seconds"] < BOMB_SECONDS, report[path]


def test_bomb_warning_band_reaches_the_caller(tmp_path: Path) -> None:
    """Between 89 and 179 MP Pillow warns; the warning must not be muted.

    What happens (documented): the file is decoded (JPEG at 1/8 scale by DCT
    scaling, so 100 MP costs about 40 MB), Pillow's DecompressionBombWarning
    reaches the caller of decode_file and of downsample (serial and thread
    workers share the process's warning filters), and the image counts as
    readable. With executor="process" the warning is printed by the worker
    process, on its stderr.
    """
    path = tmp_path / "big.jpg"
    path.write_bytes(hostile.bomb_jpeg(hostile.WARNING_BOMB_SIDE))
    with pytest.warns(Image.DecompressionBombWarning):
        decoded = decode_file(path, SIDE)
    assert (decoded.width, decoded.height) == (10_000, 10_000)

    good = _write_good(tmp_path / "good", 6)
    for executor in ("serial", "thread"):
        with pytest.warns(Image.DecompressionBombWarning):
            result = downsample(
                [*good, str(path)],
                3,
                show_progress=False,
                executor=executor,
                n_workers=2,
            )
        assert result.n_selected == 3


def test_importing_the_package_leaves_warning_filters_alone() -> None:
    """1.x muted every warning in the process at import; the bomb warning never showed.

    numpy and Pillow are imported first: numpy adds its own narrow filters.
    """
    code = """
import warnings
import numpy, PIL.Image
before = list(warnings.filters)
import smartdownsample, smartdownsample.api, smartdownsample.loading, smartdownsample.extraction
assert warnings.filters == before, warnings.filters[: len(warnings.filters) - len(before)]
with warnings.catch_warnings(record=True) as caught:
    warnings.warn(PIL.Image.DecompressionBombWarning("could be decompression bomb DOS attack"))
assert [w.category for w in caught] == [PIL.Image.DecompressionBombWarning], caught
"""
    subprocess.run([sys.executable, "-W", "default", "-c", code], check=True, timeout=60)


def test_library_does_not_filter_the_bomb_warning(tmp_path: Path) -> None:
    path = tmp_path / "big.jpg"
    path.write_bytes(hostile.bomb_jpeg(hostile.WARNING_BOMB_SIDE))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        decode_file(path, SIDE)
    assert [w.category for w in caught] == [Image.DecompressionBombWarning]


# --------------------------------------------------------------------------
# extract_batch: a batch mixing every kind with good images
# --------------------------------------------------------------------------


def test_extract_batch_marks_each_hostile_file(files: dict[str, str], tmp_path: Path) -> None:
    good = _write_good(tmp_path / "good", 4)
    names = list(files)
    paths = [good[0], *files.values(), *good[1:]]
    result = extract_batch(paths, HASH_SIZE)

    assert result.features.shape == (len(paths),)
    failed_positions = {position for position, _ in result.errors}
    assert failed_positions == set(np.flatnonzero(~result.ok).tolist())
    assert all(reason.strip() for _, reason in result.errors)
    assert result.ok[0] and result.ok[-3:].all()
    for offset, name in enumerate(names, start=1):
        outcome = hostile.HOSTILE_KINDS[name].outcome
        if outcome == "ok":
            assert result.ok[offset], f"{name} failed in a batch"
        elif outcome == "fail":
            assert not result.ok[offset], f"{name} was not reported"
    # A readable row is exactly the row of that file decoded on its own.
    side = thumbnail_side(HASH_SIZE)
    for position in np.flatnonzero(result.ok):
        decoded = decode_file(paths[position], side)
        alone = features_from_thumbnails(decoded.thumbnail[None], HASH_SIZE)[0]
        row = result.features[position]
        assert row["dhash"] == alone["dhash"]
        np.testing.assert_array_equal(row["mean_rgb"], alone["mean_rgb"])
        assert (row["width"], row["height"]) == (decoded.width, decoded.height)


def test_extract_batch_of_only_failures(files: dict[str, str]) -> None:
    paths = [files[name] for name in FAIL_KINDS]
    result = extract_batch(paths, HASH_SIZE)
    assert not result.ok.any()
    assert [position for position, _ in result.errors] == list(range(len(paths)))


# --------------------------------------------------------------------------
# downsample: skip returns exactly k; raise names the file
# --------------------------------------------------------------------------


def test_downsample_skip_returns_exactly_k_and_reports_each_failure(
    files: dict[str, str], tmp_path: Path
) -> None:
    good = _write_good(tmp_path / "good")
    missing = str(tmp_path / "good" / "deleted after listing.jpg")  # listed, then gone
    replaced = good[5]
    Path(replaced).write_bytes(b"\x00garbage written over a listed file" * 10)
    paths = [*good[:12], *files.values(), missing, *good[12:]]
    must_fail = {files[name] for name in FAIL_KINDS} | {missing, replaced}
    may_fail = {files[n] for n, k in hostile.HOSTILE_KINDS.items() if k.outcome == "either"}

    result = downsample(paths, 30, image_loading_errors="skip", show_progress=False)

    failed = {failure.path for failure in result.failures}
    assert must_fail <= failed <= must_fail | may_fail
    readable = len(paths) - len(failed)
    assert readable > 30
    assert result.n_selected == 30
    assert len(set(result.selected_paths)) == 30
    assert not set(result.selected_paths) & failed
    for failure in result.failures:
        assert paths[failure.index] == failure.path
        assert failure.reason.strip()
        assert failure.path in str(failure)
    reasons = {failure.path: failure.reason for failure in result.failures}
    assert "does not exist" in reasons[missing]
    assert "folder" in reasons[files["directory_named_jpg"]]
    assert "symbolic link" in reasons[files["broken_symlink"]]
    # Keeping everything readable: all good and all readable hostile files come back.
    everything = downsample(paths, len(paths), image_loading_errors="skip", show_progress=False)
    assert set(everything.selected_paths) == set(paths) - failed


@pytest.mark.parametrize("name", FAIL_KINDS)
def test_downsample_raise_names_the_file(
    files: dict[str, str], tmp_path_factory: pytest.TempPathFactory, name: str
) -> None:
    good = _write_good(tmp_path_factory.mktemp("good"), 4)
    bad = files[name]
    with pytest.raises(ImageLoadError) as caught:
        downsample([*good[:2], bad, *good[2:]], 2, show_progress=False)
    _assert_names_file(caught.value, bad)
    assert "skip" in str(caught.value), "the message must say how to skip unreadable files"


def test_downsample_raise_on_file_deleted_after_listing(tmp_path: Path) -> None:
    good = _write_good(tmp_path / "good", 6)
    listed = sorted(str(p) for p in (tmp_path / "good").iterdir())
    os.remove(good[3])
    with pytest.raises(ImageLoadError) as caught:
        downsample(listed, 2, show_progress=False)
    _assert_names_file(caught.value, good[3])
    assert "does not exist" in caught.value.reason


def test_file_replaced_by_another_picture_is_read_fresh(tmp_path: Path) -> None:
    good = _write_good(tmp_path / "good", 4)
    listed = list(good)
    Image.new("RGB", (96, 72), (0, 0, 0)).save(good[1], quality=90)  # replaced after listing
    result = downsample(listed, 4, show_progress=False)
    assert result.ok.all()
    np.testing.assert_allclose(result.features["mean_rgb"][1], 0.0, atol=2.0)


def test_unusual_names_round_trip_exactly(files: dict[str, str], tmp_path: Path) -> None:
    named = [files[n] for n in ("name_with_spaces", "name_non_ascii", "name_long", "deep_path")]
    assert len(os.path.basename(files["name_long"]).encode()) >= 245
    assert len(files["deep_path"]) > 260
    broken = tmp_path / "élan" / "ñandú 鹿 vide.jpg"
    broken.parent.mkdir()
    broken.write_bytes(b"")
    result = downsample([*named, str(broken)], 4, image_loading_errors="skip", show_progress=False)
    assert sorted(result.selected_paths) == sorted(named)
    assert [failure.path for failure in result.failures] == [str(broken)]
    with pytest.raises(ImageLoadError) as caught:
        downsample([*named, str(broken)], 2, show_progress=False)
    _assert_names_file(caught.value, str(broken))


# --------------------------------------------------------------------------
# Files that never end or are far too large (issue 11, item 14)
# --------------------------------------------------------------------------

SPARSE_BYTES = 2 * 1024**3
"""Apparent size of the sparse ``huge.jpg`` (2 GiB; no disk blocks)."""

SPECIAL_SECONDS = 5.0
"""A FIFO, a device or a huge file must be refused within this time (before
the fix: a FIFO blocked forever, /dev/zero grew to gigabytes)."""

needs_posix_specials = pytest.mark.skipif(
    not hasattr(os, "mkfifo") or not os.path.exists("/dev/zero"),
    reason="FIFOs and /dev/zero are POSIX",
)


def _special_files(folder: Path) -> dict[str, str]:
    """A real FIFO, real links to /dev/zero and /dev/urandom, a real 2 GiB sparse JPEG."""
    folder.mkdir(parents=True, exist_ok=True)
    fifo = folder / "pipe.jpg"
    os.mkfifo(fifo)
    zero = folder / "zero.jpg"
    zero.symlink_to("/dev/zero")
    urandom = folder / "urandom.jpg"
    urandom.symlink_to("/dev/urandom")
    huge = folder / "huge.jpg"
    huge.write_bytes(hostile.jpeg_bytes(hostile.scene()))
    os.truncate(huge, SPARSE_BYTES)
    return {"fifo": str(fifo), "zero": str(zero), "urandom": str(urandom), "huge": str(huge)}


@needs_posix_specials
@pytest.mark.timeout(60)
def test_fifo_devices_and_huge_files_are_refused_without_reading(tmp_path: Path) -> None:
    special = _special_files(tmp_path)
    reasons = {}
    for kind, path in special.items():
        started = time.monotonic()
        with pytest.raises(ImageLoadError) as caught:
            decode_file(path, SIDE)
        assert time.monotonic() - started < SPECIAL_SECONDS, kind
        _assert_names_file(caught.value, path)
        reasons[kind] = caught.value.reason
    assert "not a regular file" in reasons["fifo"] and "FIFO" in reasons["fifo"]
    assert "not a regular file" in reasons["zero"] and "device" in reasons["zero"]
    assert "not a regular file" in reasons["urandom"]
    assert f"larger than {loading.MAX_IMAGE_FILE_BYTES:,} bytes" in reasons["huge"]
    assert f"{SPARSE_BYTES:,} bytes" in reasons["huge"]


@needs_posix_specials
@pytest.mark.timeout(60)
@pytest.mark.parametrize("executor", ["serial", "thread", "process"])
def test_folder_with_special_files_finishes_and_reports_them(tmp_path: Path, executor: str) -> None:
    good = _write_good(tmp_path / "good", 12)
    special = _special_files(tmp_path / "good")
    started = time.monotonic()
    result = downsample(
        [*good, *special.values()],
        6,
        image_loading_errors="skip",
        show_progress=False,
        executor=executor,  # type: ignore[arg-type]
        n_workers=2,
    )
    assert time.monotonic() - started < 30
    assert result.n_selected == 6
    reasons = {failure.path: failure.reason for failure in result.failures}
    assert sorted(reasons) == sorted(special.values())
    assert "not a regular file" in reasons[special["fifo"]]
    assert "larger than" in reasons[special["huge"]]


def test_file_at_the_size_cap_is_read_and_one_byte_more_is_not(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = hostile.jpeg_bytes(hostile.scene())
    path = tmp_path / "cap.jpg"
    path.write_bytes(data)
    monkeypatch.setattr(loading, "MAX_IMAGE_FILE_BYTES", len(data))
    assert decode_file(path, SIDE).width > 0
    monkeypatch.setattr(loading, "MAX_IMAGE_FILE_BYTES", len(data) - 1)
    with pytest.raises(ImageLoadError, match="larger than"):
        decode_file(path, SIDE)
