"""Fuzzing the feature path with mutated real JPEG and PNG bytes (issue 6, item 6).

Hypothesis mutates real files (bit flips, byte insertions and deletions,
truncation, overwritten size fields, inserted markers, headers spliced onto
other files' bodies) and feeds them to
:func:`smartdownsample.loading.decode_bytes` and, written to files, to
:func:`smartdownsample.extraction.extract_batch`. The only exception allowed is
the project's :class:`ImageLoadError` (a reported failure); nothing may hang.

Bounded for CI: each test has a pytest-timeout (120 s) and a fixed number of
examples (about 15 s of CPU together). In CI (``CI`` set) the examples
are derandomized, so a run that passed once passes again; elsewhere each run
explores new inputs.

Longer campaigns, outside CI::

    python -m pytest tests/test_fuzz.py --hypothesis-seed=RANDOM  # repeatedly
    python tests/test_fuzz.py -max_total_time=600 -timeout=10    # needs atheris
"""

from __future__ import annotations

import importlib
import io
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

import hostile
from smartdownsample import loading
from smartdownsample._exceptions import ImageLoadError
from smartdownsample.extraction import extract_batch
from smartdownsample.loading import decode_bytes, thumbnail_side

SIDE = 32
HASH_SIZE = 8
NAME = "fuzzed.jpg"

FAST_JPEG = bool(getattr(loading, "FAST_JPEG_AVAILABLE", False))
"""simplejpeg installed: plain JPEGs are also fuzzed through the Pillow-only path."""

IN_CI = bool(os.environ.get("CI"))
"""Derandomize in CI so that a green run stays green; explore elsewhere."""

DECODE_EXAMPLES = 4000
"""Examples for the decode_bytes fuzz: about 6 s of CPU (~1.5 ms each, both decoders)."""

BATCH_EXAMPLES = 300
"""Examples for the extract_batch fuzz (up to 5 files, each also alone): about 6 s."""

EXAMPLE_DEADLINE_MS = 5000
"""Any one input taking 5 s (tiny files decode in ~1 ms) counts as a hang."""

HEADER_BYTES = 300
"""Mutations land in the first 300 bytes half of the time: headers, tables
and size fields are where decoders branch, and where hostile files differ."""

SEED_SIZE = (48, 40)
"""Seeds are small so decoding is cheap; 48 x 40 still spans several JPEG MCUs."""


def _seed_files() -> dict[str, bytes]:
    """Real encoded files in the formats and variants cameras and tools write."""
    rng = np.random.default_rng(7)
    noise = rng.integers(0, 256, size=(SEED_SIZE[1], SEED_SIZE[0], 3), dtype=np.uint8)
    scene = hostile.scene(*SEED_SIZE)
    photo = Image.blend(scene, Image.fromarray(noise), 0.3)
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees
    exif[0x0132] = "2024:05:01 13:22:05"  # DateTime
    seeds = {
        "jpeg_baseline_exif": hostile.jpeg_bytes(photo, exif=exif, quality=80),
        "jpeg_progressive": hostile.jpeg_bytes(photo, progressive=True, quality=80),
        "jpeg_grey_444": hostile.jpeg_bytes(photo.convert("L"), quality=70),
        "jpeg_cmyk": hostile.jpeg_bytes(photo.convert("CMYK"), quality=80),
        "jpeg_ycck": hostile.ycck_jpeg(photo.convert("CMYK")),
        "jpeg_arithmetic": (hostile.DATA_DIR / "arithmetic.jpg").read_bytes(),
        "png_rgb": hostile.png_bytes(photo),
        "png_rgba_interlaced": hostile.png_bytes(photo.convert("RGBA"), interlace=1),
        "png_palette_transparent": hostile.png_bytes(
            scene.quantize(8), transparency=0, optimize=False
        ),
        "png_16bit": hostile.png_bytes(
            Image.fromarray(np.asarray(photo.convert("L"), dtype=np.uint16) * 257)
        ),
        "png_la": hostile.png_bytes(photo.convert("LA")),
    }
    buffer = io.BytesIO()
    scene.quantize(8).save(buffer, "GIF")
    seeds["gif"] = buffer.getvalue()
    return seeds


SEEDS = _seed_files()
SEED_NAMES = sorted(SEEDS)

JPEG_MARKERS = [bytes([0xFF, code]) for code in (0xC0, 0xC2, 0xC4, 0xC9, 0xD9, 0xDA, 0xDB, 0xDD)]
PNG_CHUNKS = [b"IHDR", b"IDAT", b"IEND", b"PLTE", b"tRNS", b"eXIf", b"zTXt", b"iCCP"]


@st.composite
def positions(draw: st.DrawFn, length: int) -> int:
    """An offset in ``[0, length]``, biased towards the header."""
    if length == 0:
        return 0
    if draw(st.booleans()):
        return draw(st.integers(0, min(length, HEADER_BYTES)))
    return draw(st.integers(0, length))


@st.composite
def mutated_files(draw: st.DrawFn) -> tuple[str, bytes]:
    """A seed file with one to four mutations applied."""
    seed = draw(st.sampled_from(SEED_NAMES))
    data = bytearray(SEEDS[seed])
    steps = []
    for _ in range(draw(st.integers(1, 4))):
        operation = draw(
            st.sampled_from(
                ["flip", "insert", "delete", "truncate", "size", "marker", "splice", "overwrite"]
            )
        )
        at = draw(positions(len(data)))
        if operation == "flip" and data:
            at = min(at, len(data) - 1)
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif operation == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=64))
        elif operation == "delete":
            del data[at : at + draw(st.integers(1, 256))]
        elif operation == "truncate":
            del data[at:]
        elif operation == "size":
            # Forge a 16- or 32-bit big-endian field: JPEG SOF / PNG IHDR sizes.
            width = draw(st.sampled_from([2, 4]))
            value = draw(st.integers(0, 2 ** (8 * width) - 1))
            data[at : at + width] = value.to_bytes(width, "big")
        elif operation == "marker":
            data[at:at] = draw(st.sampled_from(JPEG_MARKERS + PNG_CHUNKS))
        elif operation == "splice":
            # This file's first bytes on another file's body (or the reverse).
            other = SEEDS[draw(st.sampled_from(SEED_NAMES))]
            cut = draw(positions(len(other)))
            data = data[:at] + bytearray(other[cut:])
        elif operation == "overwrite":
            fill = draw(st.sampled_from([b"\x00", b"\xff"]))
            data[at : at + draw(st.integers(1, 512))] = fill * 512
        steps.append(f"{operation}@{at}")
    return f"{seed}: {', '.join(steps)}", bytes(data)


def _check_decoded_or_reported(
    data: bytes, name: str, side: int = SIDE, *, fast: bool = True
) -> bool:
    """Decode; True if decoded (and sane), False if reported. Anything else raises."""
    try:
        decoded = decode_bytes(data, side, name, fast=fast)
    except ImageLoadError as error:
        assert error.path == name
        assert error.reason.strip()
        assert name in str(error)
        return False
    assert decoded.thumbnail.shape == (side, side, 3)
    assert decoded.thumbnail.dtype == np.uint8
    assert decoded.width >= 1 and decoded.height >= 1
    assert math.isnan(decoded.capture_time) or math.isfinite(decoded.capture_time)
    return True


def test_every_seed_decodes() -> None:
    """The fuzz starts from valid files (else it would only test the error path)."""
    for name, data in SEEDS.items():
        assert _check_decoded_or_reported(data, name), name


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # expected: forged sizes
@settings(
    max_examples=DECODE_EXAMPLES,
    deadline=EXAMPLE_DEADLINE_MS,
    derandomize=IN_CI,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(mutated_files())
def test_decode_bytes_reports_or_decodes_mutated_files(sample: tuple[str, bytes]) -> None:
    """Both decoders: the default (simplejpeg for plain JPEGs, if installed) and Pillow."""
    _, data = sample
    _check_decoded_or_reported(data, NAME)
    if FAST_JPEG and data.startswith(b"\xff\xd8"):
        _check_decoded_or_reported(data, NAME, fast=False)


def _write(folder: Path, samples: list[bytes]) -> list[str]:
    paths = []
    for index, data in enumerate(samples):
        suffix = ".png" if data[1:4] == b"PNG" else ".jpg"
        path = folder / f"IMG_{index:04d}{suffix}"
        path.write_bytes(data)
        paths.append(str(path))
    return paths


def test_row_does_not_depend_on_batch_neighbours(tmp_path: Path) -> None:
    """A file's feature row must not change with what else is in its batch.

    Found by the batch fuzz below: features are computed per batch, and the
    row must be the same whether a file is alone, repeated, or among others,
    or cached rows (computed in one batch) would disagree with fresh ones,
    and a resumed run with the cache could select differently.
    """
    names = SEED_NAMES
    paths = _write(tmp_path, [SEEDS[name] for name in names])
    together = extract_batch(paths, HASH_SIZE)
    assert together.ok.all()
    differing = []
    for position, (name, path) in enumerate(zip(names, paths, strict=True)):
        rows = [extract_batch([path], HASH_SIZE).features[0]]
        rows.append(extract_batch([path, path], HASH_SIZE).features[1])
        rows.append(together.features[position])
        if not all(_same_row(rows[0], row) for row in rows[1:]):
            differing.append((name, [hex(int(row["dhash"])) for row in rows]))
    assert not differing, f"rows change with batch neighbours: {differing}"


def _same_row(a: np.void, b: np.void) -> bool:
    for field in a.dtype.names or ():
        left, right = np.asarray(a[field]), np.asarray(b[field])
        if not np.array_equal(left, right, equal_nan=left.dtype.kind == "f"):
            return False
    return True


@pytest.mark.timeout(120)
@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")  # expected: forged sizes
@settings(
    max_examples=BATCH_EXAMPLES,
    deadline=EXAMPLE_DEADLINE_MS,
    derandomize=IN_CI,
    database=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(st.lists(mutated_files(), min_size=1, max_size=5))
def test_extract_batch_survives_mutated_files(samples: list[tuple[str, bytes]]) -> None:
    """A batch never raises; each row is the file's own row, as if decoded alone."""
    with tempfile.TemporaryDirectory() as folder:
        paths = _write(Path(folder), [data for _, data in samples])
        result = extract_batch(paths, HASH_SIZE)
        assert result.features.shape == (len(paths),)
        assert sorted(pos for pos, _ in result.errors) == np.flatnonzero(~result.ok).tolist()
        for position, path in enumerate(paths):
            alone = extract_batch([path], HASH_SIZE)
            assert bool(alone.ok[0]) == bool(result.ok[position])
            if result.ok[position]:
                assert _same_row(alone.features[0], result.features[position])
            else:
                # The same bytes decoded from memory are reported too.
                side = thumbnail_side(HASH_SIZE)
                assert not _check_decoded_or_reported(samples[position][1], path, side)


def _atheris_main() -> None:  # pragma: no cover - manual campaigns only
    """Coverage-guided fuzzing of decode_bytes with atheris (not used by CI)."""
    atheris: Any = importlib.import_module("atheris")  # optional, untyped

    def one_input(data: bytes) -> None:
        _check_decoded_or_reported(data, NAME)

    corpus = Path(tempfile.mkdtemp(prefix="smartdownsample-fuzz-"))
    for name, data in SEEDS.items():
        (corpus / name).write_bytes(data)
    atheris.instrument_all()  # Pillow's Python plugins: header parsing, EXIF, chunks
    atheris.Setup([*sys.argv, str(corpus)], one_input)
    atheris.Fuzz()


if __name__ == "__main__":  # pragma: no cover
    _atheris_main()
