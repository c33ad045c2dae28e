"""Feature extraction: the JPEG fast path against Pillow, batches, runners, the cache protocol.

The fast path (simplejpeg + a small EXIF parser, see :mod:`smartdownsample.loading`)
must give the same thumbnail, capture time and bucket as the Pillow path on every
file, whatever its size, subsampling, progressiveness or EXIF; every file it
does not handle must reach Pillow unchanged.
"""

from __future__ import annotations

import ast
import io
import math
import os
import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from numpy.typing import NDArray
from PIL import Image

from images import quadrants, varied_image, write_cmyk_jpeg, write_jpeg, write_varied_jpegs
from smartdownsample import loading
from smartdownsample._exceptions import ImageLoadError, InvalidArgumentError
from smartdownsample._types import ExecutorKind
from smartdownsample.buckets import bucket_ids
from smartdownsample.extraction import (
    BATCH_SIZE,
    BatchResult,
    batch_size_for,
    choose_executor,
    extract_batch,
    extract_features,
    failed_batch,
    iter_batches,
    local_runner,
    resolve_workers,
    run_batches,
)
from smartdownsample.features import empty_features, features_from_thumbnails
from smartdownsample.loading import DecodedImage, decode_bytes, decode_file, thumbnail_side
from smartdownsample.synthetic import make_dataset

SIDE = thumbnail_side(8)

needs_fast = pytest.mark.skipif(
    not loading.FAST_JPEG_AVAILABLE, reason="simplejpeg is not installed"
)


# ----------------------------------------------------------------------------
# Helpers: JPEG bytes with hand-made EXIF


def _jpeg(image: Image.Image, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", **options)
    return buffer.getvalue()


def _segment(marker: int, payload: bytes) -> bytes:
    return bytes([0xFF, marker]) + struct.pack(">H", len(payload) + 2) + payload


def _with_segments(jpeg: bytes, *segments: bytes) -> bytes:
    """Insert marker segments right after the SOI marker."""
    return jpeg[:2] + b"".join(segments) + jpeg[2:]


Entry = tuple[int, int, int, bytes]
"""(tag, TIFF type, count, value bytes) of one IFD entry."""


def _tiff(order: str, ifd0: Sequence[Entry], sub: Sequence[Entry] | None = None) -> bytes:
    """A TIFF block: IFD0 (plus an Exif sub-IFD pointed to by tag 0x8769)."""
    entries0 = list(ifd0)
    if sub is not None:
        entries0.append((loading.EXIF_IFD_POINTER, 4, 1, b""))  # value patched below
    size0 = 2 + 12 * len(entries0) + 4
    sub_offset = 8 + size0
    size_sub = 0 if sub is None else 2 + 12 * len(sub) + 4
    data_offset = sub_offset + size_sub
    data = bytearray()

    def ifd(entries: Sequence[Entry]) -> bytes:
        out = bytearray(struct.pack(order + "H", len(entries)))
        for tag, kind, count, value in entries:
            if tag == loading.EXIF_IFD_POINTER and sub is not None and value == b"":
                value = struct.pack(order + "I", sub_offset)
            if len(value) <= 4:
                field = value.ljust(4, b"\x00")
            else:
                field = struct.pack(order + "I", data_offset + len(data))
                data.extend(value)
            out += struct.pack(order + "HHI", tag, kind, count) + field
        return bytes(out + struct.pack(order + "I", 0))

    header = (b"II" if order == "<" else b"MM") + struct.pack(order + "HI", 42, 8)
    block = header + ifd(entries0)
    if sub is not None:
        block += ifd(sub)
    return block + bytes(data)


def _short(order: str, value: int) -> bytes:
    return struct.pack(order + "H", value)


def _ascii(text: str) -> bytes:
    return text.encode("latin-1") + b"\x00"


def _exif_segment(tiff: bytes) -> bytes:
    return _segment(0xE1, loading.EXIF_HEADER + tiff)


def _outcome(data: bytes, fast: bool) -> tuple[Any, ...]:
    """Everything a decode gives, comparable across paths (NaN-safe), or the error."""
    try:
        decoded = decode_bytes(data, SIDE, "sample.jpg", fast=fast)
    except ImageLoadError:
        return ("error",)
    capture = "nan" if math.isnan(decoded.capture_time) else decoded.capture_time
    return (decoded.thumbnail.tobytes(), decoded.width, decoded.height, capture)


def _assert_paths_agree(data: bytes) -> None:
    assert _outcome(data, fast=True) == _outcome(data, fast=False)


# ----------------------------------------------------------------------------
# Fast path against Pillow


@needs_fast
def test_fast_and_pillow_paths_give_the_same_buckets(tmp_path: Path) -> None:
    """Issue 4: same bucket for >= 99% of images whichever path decoded them."""
    paths = [str(p) for p in write_varied_jpegs(tmp_path / "varied", 240, seed=5)]
    crops = make_dataset(tmp_path / "crops", 60, kind="crops", seed=3)
    frames = make_dataset(tmp_path / "frames", 30, kind="frames", frame_size=(640, 360), seed=4)
    paths += crops.paths + frames.paths
    fast = [decode_file(path, SIDE) for path in paths]
    slow = [decode_file(path, SIDE, fast=False) for path in paths]
    fast_thumbs = np.stack([d.thumbnail for d in fast])
    slow_thumbs = np.stack([d.thumbnail for d in slow])
    same_bucket = bucket_ids(features_from_thumbnails(fast_thumbs, 8)) == bucket_ids(
        features_from_thumbnails(slow_thumbs, 8)
    )
    assert same_bucket.mean() >= 0.99, f"{(~same_bucket).sum()} of {len(paths)} changed bucket"
    # In fact both use libjpeg-turbo at the same scale: the thumbnails are identical.
    identical = (fast_thumbs == slow_thumbs).all(axis=(1, 2, 3))
    assert identical.mean() >= 0.99
    assert [d.capture_time for d in fast] == pytest.approx(
        [d.capture_time for d in slow], nan_ok=True
    )
    assert [(d.width, d.height) for d in fast] == [(d.width, d.height) for d in slow]


@needs_fast
@pytest.mark.parametrize("size", [(31, 17), (32, 32), (63, 64), (65, 300), (257, 129), (1030, 70)])
@pytest.mark.parametrize("subsampling", [0, 1, 2])
def test_fast_path_scale_matches_pillow_draft(size: tuple[int, int], subsampling: int) -> None:
    rng = np.random.default_rng(size[0] * 7 + subsampling)
    pixels = rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
    data = _jpeg(Image.fromarray(pixels), quality=90, subsampling=subsampling)
    assert loading._decode_jpeg_fast(data, SIDE, "x.jpg") is not None  # really the fast path
    _assert_paths_agree(data)


@needs_fast
@pytest.mark.parametrize(
    "build",
    [
        pytest.param(lambda: _jpeg(quadrants().convert("L"), quality=90), id="grayscale"),
        pytest.param(lambda: _jpeg(quadrants(), quality=90, progressive=True), id="progressive"),
        pytest.param(lambda: _jpeg(quadrants(), quality=90, subsampling=1), id="subsampling-422"),
    ],
)
def test_fast_path_takes_plain_jpegs(build: Any) -> None:
    data = build()
    decoded = loading._decode_jpeg_fast(data, SIDE, "x.jpg")
    assert isinstance(decoded, DecodedImage)
    _assert_paths_agree(data)


@needs_fast
def test_cmyk_jpeg_is_left_to_pillow(tmp_path: Path) -> None:
    path = write_cmyk_jpeg(tmp_path / "red.jpg", (0, 255, 255, 0))
    data = path.read_bytes()
    assert loading._decode_jpeg_fast(data, SIDE, str(path)) is None
    _assert_paths_agree(data)
    mean = decode_file(path, SIDE).thumbnail.reshape(-1, 3).mean(axis=0)
    assert mean[0] > 200 and mean[1] < 60 and mean[2] < 60


@needs_fast
def test_decompression_limit_holds_on_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    data = _jpeg(Image.new("RGB", (300, 200), "green"))
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 20_000)  # 60,000 > twice the limit
    assert loading._decode_jpeg_fast(data, SIDE, "bomb.jpg") is None
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        decode_bytes(data, SIDE, "bomb.jpg")


@needs_fast
@pytest.mark.parametrize("seed", range(4))
def test_damaged_picture_data_is_reported_by_the_fast_path(seed: int) -> None:
    """A scan cut short but closed with an end marker (a half-written card) is an error.

    (Zero-filled sectors are caught only when they break the Huffman stream,
    which libjpeg-turbo does not always notice.)
    """
    data = _jpeg(varied_image(np.random.default_rng(seed), (320, 240)), quality=90)
    middle = (data.find(b"\xff\xda") + len(data)) // 2
    damaged = data[:middle] + b"\xff\xd9"
    with pytest.raises(ImageLoadError, match="damaged JPEG picture data") as error:
        decode_bytes(damaged, SIDE, "card/IMG_1.JPG")
    assert error.value.path == "card/IMG_1.JPG"


def test_truncated_jpeg_gets_pillows_error_on_both_paths() -> None:
    data = _jpeg(quadrants((300, 200)), quality=90)[:900]
    for fast in (True, False):
        with pytest.raises(ImageLoadError, match="truncated"):
            decode_bytes(data, SIDE, "cut.jpg", fast=fast)


# ----------------------------------------------------------------------------
# The EXIF parser against Pillow's


DATE = "2024:05:01 13:22:05"
DATE_EPOCH = 1714569725.0


@pytest.mark.parametrize("order", ["<", ">"])
@pytest.mark.parametrize("orientation", range(0, 10))
def test_exif_orientation_agrees_with_pillow(order: str, orientation: int) -> None:
    tiff = _tiff(order, [(0x0112, 3, 1, _short(order, orientation))])
    data = _with_segments(_jpeg(quadrants(), quality=95), _exif_segment(tiff))
    _assert_paths_agree(data)
    if loading.FAST_JPEG_AVAILABLE and 1 <= orientation <= 8:
        info = loading._jpeg_exif_info(data)
        assert info is not None and info[0] == orientation and math.isnan(info[1])


@pytest.mark.parametrize(
    ("ifd0", "sub", "expected"),
    [
        ([(0x0132, 2, 20, _ascii(DATE))], None, DATE_EPOCH),
        ([], [(0x9003, 2, 20, _ascii(DATE))], DATE_EPOCH),
        ([], [(0x9004, 2, 20, _ascii(DATE))], DATE_EPOCH),
        (
            [(0x0132, 2, 20, _ascii("2020:01:01 00:00:00"))],
            [(0x9003, 2, 20, _ascii(DATE))],
            DATE_EPOCH,
        ),
        ([], [(0x9003, 2, 20, _ascii("0000:00:00 00:00:00"))], math.nan),
        ([], [(0x9003, 2, 20, _ascii("2024:02:30 10:00:00"))], math.nan),
        ([], [(0x9003, 2, 20, _ascii("2024:12:31 23:59:60"))], 1735689600.0),
        ([], [(0x9003, 7, 19, DATE.encode())], DATE_EPOCH),
        ([], [(0x9003, 3, 1, b"\x01\x00")], math.nan),
        ([(0x0112, 4, 1, struct.pack("<I", 6))], None, math.nan),
        ([(0x0112, 2, 2, b"6\x00")], None, math.nan),
        ([], [], math.nan),
    ],
)
def test_exif_capture_time_agrees_with_pillow(
    ifd0: list[Entry], sub: list[Entry] | None, expected: float
) -> None:
    data = _with_segments(_jpeg(quadrants(), quality=95), _exif_segment(_tiff("<", ifd0, sub)))
    _assert_paths_agree(data)
    assert decode_bytes(data, SIDE).capture_time == pytest.approx(expected, nan_ok=True)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the bad EXIF
def test_unusual_metadata_is_read_by_pillow() -> None:
    """Several EXIF segments, XMP orientation, a dangling sub-IFD pointer, a bad TIFF header."""
    base = _jpeg(quadrants(), quality=95)
    one = _exif_segment(_tiff("<", [(0x0112, 3, 1, _short("<", 3))]))
    two = _exif_segment(_tiff("<", [(0x0132, 2, 20, _ascii(DATE))]))
    xmp = _segment(0xE1, loading.XMP_HEADER + b'<x tiff:Orientation="6"/>')
    dangling = _tiff("<", [(loading.EXIF_IFD_POINTER, 4, 1, struct.pack("<I", 60000))])
    cases = {
        "two-exif": _with_segments(base, one, two),
        "xmp-only": _with_segments(base, xmp),
        "xmp-and-exif": _with_segments(base, one, xmp),
        "xmp-and-exif-without-orientation": _with_segments(base, two, xmp),
        "dangling-pointer": _with_segments(base, _exif_segment(dangling)),
        "bad-header": _with_segments(base, _segment(0xE1, loading.EXIF_HEADER + b"XX*\x00")),
        "exif-twice-prefixed": _with_segments(
            base, _segment(0xE1, loading.EXIF_HEADER * 2 + _tiff("<", []))
        ),
        "fill-bytes": base[:2] + b"\xff\xff" + one + base[2:],
    }
    for name, data in cases.items():
        assert _outcome(data, True) == _outcome(data, False), name
    assert decode_bytes(cases["xmp-only"], SIDE).thumbnail.shape == (SIDE, SIDE, 3)
    # XMP orientation 6 turns the 96x64 quadrants upright-rotated: Pillow's rule holds.
    assert _outcome(cases["xmp-only"], True) != _outcome(base, True)


_TAGS = st.sampled_from([0x0112, 0x0132, 0x8769, 0x9003, 0x9004, 0x010F, 0x0001])
_ENTRY = st.tuples(
    _TAGS,
    st.integers(1, 13),
    st.integers(0, 24),
    st.one_of(st.binary(max_size=24), st.just(_ascii(DATE)), st.just(b"\x06\x00")),
)


@pytest.mark.filterwarnings("ignore::UserWarning")  # Pillow warns about the bad EXIF
@given(
    order=st.sampled_from(["<", ">"]),
    ifd0=st.lists(_ENTRY, max_size=5),
    sub=st.none() | st.lists(_ENTRY, max_size=4),
    cut=st.none() | st.integers(0, 120),
)
def test_exif_fuzz_fast_and_pillow_agree(
    order: str, ifd0: list[Entry], sub: list[Entry] | None, cut: int | None
) -> None:
    """Whatever the EXIF block holds, both paths give the same outcome."""
    tiff = _tiff(order, ifd0, sub)
    if cut is not None:
        tiff = tiff[:cut]
    _assert_paths_agree(_with_segments(_FUZZ_BASE, _exif_segment(tiff)))


_FUZZ_BASE = _jpeg(quadrants(), quality=90)


def test_jpeg_decoder_name() -> None:
    expected = "simplejpeg" if loading.FAST_JPEG_AVAILABLE else "Pillow"
    assert loading.jpeg_decoder() == expected


# ----------------------------------------------------------------------------
# extract_batch, runners


def _features_one_by_one(paths: Sequence[str]) -> NDArray[np.void]:
    rows = empty_features(len(paths))
    for index, path in enumerate(paths):
        decoded = decode_file(path, SIDE)
        row = features_from_thumbnails(decoded.thumbnail[None], 8)[0]
        row["capture_time"] = decoded.capture_time
        row["width"], row["height"] = decoded.width, decoded.height
        rows[index] = row
    return rows


def test_extract_batch_reports_failures_in_place_and_calls_on_image(tmp_path: Path) -> None:
    good = [str(write_jpeg(tmp_path / f"g{i}.jpg", quadrants((80 + i, 60)))) for i in range(3)]
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not a jpeg at all")
    paths = [good[0], str(bad), good[1], str(tmp_path / "missing.jpg"), good[2]]
    seen: list[int] = []
    result = extract_batch(paths, 8, on_image=seen.append)
    assert seen == [0, 1, 2, 3, 4]
    assert result.ok.tolist() == [True, False, True, False, True]
    assert [position for position, _ in result.errors] == [1, 3]
    assert "not an image" in result.errors[0][1]
    assert "does not exist" in result.errors[1][1]
    expected = _features_one_by_one(good)
    assert result.features[result.ok].tobytes() == expected.tobytes()
    assert math.isnan(result.features["capture_time"][1])


def test_extract_batch_of_nothing() -> None:
    result = extract_batch([], 8)
    assert len(result.features) == 0 and result.errors == ()


def test_failed_batch() -> None:
    result = failed_batch(3, "decoder crashed")
    assert not result.ok.any()
    assert result.errors == ((0, "decoder crashed"), (1, "decoder crashed"), (2, "decoder crashed"))
    assert np.isnan(result.features["capture_time"]).all()


@pytest.mark.parametrize(("executor", "workers"), [("serial", 1), ("thread", 3)])
def test_runners_give_the_features_of_extract_batch(
    tmp_path: Path, executor: ExecutorKind, workers: int
) -> None:
    data = make_dataset(tmp_path / "data", 70, seed=11)
    paths = data.paths
    collected = empty_features(len(paths))
    calls: list[int] = []

    def on_batch(indices: NDArray[np.int64], result: BatchResult) -> None:
        calls.append(len(indices))
        collected[indices] = result.features

    run_batches(
        paths,
        np.arange(len(paths), dtype=np.int64),
        8,
        workers=workers,
        executor=executor,
        on_batch=on_batch,
    )
    assert sum(calls) == len(paths)
    assert collected.tobytes() == extract_batch(paths, 8).features.tobytes()


class _MemoryStore:
    """A FeatureStore kept in a dict: path -> feature row."""

    def __init__(self, rows: dict[str, np.void]) -> None:
        self.rows = rows
        self.stored: list[int] = []

    def lookup(
        self, paths: Sequence[str], stats: Sequence[os.stat_result | None] | None = None
    ) -> tuple[NDArray[np.void], NDArray[np.bool_], Any]:
        rows = empty_features(len(paths))
        hit = np.zeros(len(paths), dtype=bool)
        for index, path in enumerate(paths):
            if path in self.rows:
                rows[index] = self.rows[path]
                hit[index] = True
        return rows, hit, "token"

    def store(
        self, paths: Sequence[str], indices: NDArray[np.int64], result: BatchResult, token: Any
    ) -> None:
        assert token == "token"
        for position, index in enumerate(indices):
            self.stored.append(int(index))
            if result.ok[position]:
                self.rows[paths[int(index)]] = result.features[position]


def test_extract_features_uses_and_fills_the_store(tmp_path: Path) -> None:
    paths = [str(write_jpeg(tmp_path / f"{i}.jpg", quadrants((70 + i, 50)))) for i in range(4)]
    ghost = str(tmp_path / "gone.jpg")  # cached earlier, deleted since: not decoded again
    row = _features_one_by_one(paths[:1])[0]
    store = _MemoryStore({ghost: row})
    finished: list[int] = []
    result = extract_features(
        [*paths, ghost], 8, runner=local_runner(1, "serial"), cache=store, progress=finished.append
    )
    assert result.n_cached == 1 and result.ok.all()
    assert sorted(store.stored) == [0, 1, 2, 3]
    assert sum(finished) == 5
    again = extract_features([*paths, ghost], 8, cache=store)
    assert again.n_cached == 5
    assert again.features.tobytes() == result.features.tobytes()


def test_extract_features_reports_failures_as_they_come(tmp_path: Path) -> None:
    good = str(write_jpeg(tmp_path / "good.jpg", quadrants()))
    failures: list[tuple[int, str]] = []
    result = extract_features(
        [good, str(tmp_path / "nope.jpg")],
        8,
        runner=local_runner(1, "serial"),
        on_failure=lambda index, reason: failures.append((index, reason)),
    )
    assert result.ok.tolist() == [True, False]
    assert failures == [(1, result.errors[1])]


def test_choose_executor_rule() -> None:
    assert choose_executor("auto", 4, 100_000) == "process"
    assert choose_executor("auto", 4, 300) == "thread"
    assert choose_executor("auto", 1, 300) == "serial"
    assert choose_executor("auto", 4, 5) == "serial"
    kinds: tuple[ExecutorKind, ...] = ("serial", "thread", "process")
    for kind in kinds:
        assert choose_executor(kind, 4, 5) == kind


def test_batch_sizes_and_worker_counts() -> None:
    assert batch_size_for(10**6, 4) == BATCH_SIZE
    assert batch_size_for(100, 4) == 25
    assert batch_size_for(3, 4) == 8
    assert [b.tolist() for b in iter_batches(np.arange(5, dtype=np.int64), 2)] == [
        [0, 1],
        [2, 3],
        [4],
    ]
    assert resolve_workers(None) == (os.cpu_count() or 1)
    with pytest.raises(InvalidArgumentError, match="n_workers"):
        resolve_workers(-1)
    with pytest.raises(InvalidArgumentError, match="image_timeout"):
        local_runner(2, image_timeout=0)


# -- module layout -------------------------------------------------------------------

PACKAGE_DIR = Path(__file__).resolve().parent.parent / "src" / "smartdownsample"


def _module_name(path: Path, package_dir: Path) -> str:
    parts = ["smartdownsample", *path.relative_to(package_dir).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(module: str, is_package: bool, node: ast.ImportFrom | ast.Import) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    base = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        base = base.rpartition(".")[0]
    where = f"{base}.{node.module}" if node.level and node.module else (node.module or base)
    # "from . import x" may name a module: count both the package and its submodules.
    return [where, *(f"{where}.{alias.name}" for alias in node.names)]


def _runtime_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import statement, at any depth, except those under ``if TYPE_CHECKING:``."""
    found: list[ast.Import | ast.ImportFrom] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return found


def import_graph(package_dir: Path) -> dict[str, set[str]]:
    """Which package modules each package module imports (in functions too)."""
    files = {_module_name(path, package_dir): path for path in package_dir.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for module, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names = (
            name
            for node in _runtime_imports(tree)
            for name in _imported(module, path.name == "__init__.py", node)
        )
        graph[module] = {name for name in names if name in files and name != module}
    return graph


def cycles_through(graph: dict[str, set[str]], modules: set[str]) -> list[list[str]]:
    """Import cycles that pass through any of ``modules`` (a module on a path back to itself)."""
    found = []
    for start in sorted(modules):
        stack, seen = [(start, [start])], set()
        while stack:
            node, trail = stack.pop()
            for nxt in sorted(graph.get(node, ())):
                if nxt == start:
                    found.append([*trail, start])
                elif nxt not in seen:
                    seen.add(nxt)
                    stack.append((nxt, [*trail, nxt]))
    return found


def test_extraction_has_no_import_cycle() -> None:
    """Issue 12: ``extract`` and ``_processes`` imported each other (the unit of work
    lived with the pool that runs it)."""
    graph = import_graph(PACKAGE_DIR)
    extraction = {name for name in graph if name.startswith("smartdownsample.extraction.")}
    assert {f"smartdownsample.extraction.{name}" for name in ("batch", "processes")} <= extraction
    assert cycles_through(graph, extraction) == []
