"""Stage 2: hash bits, their packing and positions, colour statistics."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from smartdownsample.features import (
    FEATURE_DTYPE,
    _popcount64,
    ahash_size,
    area_resize,
    dhash_bits,
    empty_features,
    features_from_thumbnails,
    hamming_distance,
    pack_bits,
    structure_positions,
)

SIDE = 32
UINT64 = st.integers(min_value=0, max_value=2**64 - 1)


def _thumb(gray: np.ndarray) -> np.ndarray:
    """A (1, S, S, 3) thumbnail whose three channels are ``gray``."""
    return np.repeat(np.asarray(gray, dtype=np.uint8)[None, :, :, None], 3, axis=3)


def _row(thumbs: np.ndarray, hash_size: int = 8) -> np.void:
    return features_from_thumbnails(thumbs, hash_size)[0]


# --------------------------------------------------------------------------- dHash


def test_dhash_bit_is_left_brighter_than_right() -> None:
    falling = np.tile(np.linspace(255, 0, SIDE), (SIDE, 1))  # brighter on the left
    rising = falling[:, ::-1]
    assert int(_row(_thumb(falling))["dhash"]) == 2**64 - 1
    assert int(_row(_thumb(rising))["dhash"]) == 0
    assert int(_row(_thumb(np.full((SIDE, SIDE), 90)))["dhash"]) == 0  # flat: no edge


def test_dhash_bits_on_an_exact_grid() -> None:
    """On a grid already 8 x 9, dhash_bits compares neighbours, row-major."""
    rng = np.random.default_rng(0)
    grid = rng.integers(0, 256, (1, 8, 9)).astype(np.float32)
    expected = [grid[0, r, c] > grid[0, r, c + 1] for r in range(8) for c in range(8)]
    assert dhash_bits(grid, 8)[0].tolist() == expected


@given(st.lists(st.booleans(), min_size=64, max_size=64))
def test_pack_bits_puts_position_p_at_bit_63_minus_p(bits: list[bool]) -> None:
    packed = int(pack_bits(np.array([bits]))[0])
    assert packed == int("".join("1" if b else "0" for b in bits), 2)
    for position, bit in enumerate(bits):
        assert (packed >> (63 - position)) & 1 == bit


def test_pack_bits_single_positions() -> None:
    bits = np.eye(64, dtype=bool)
    packed = pack_bits(bits)
    assert packed.dtype == np.uint64
    assert [int(v) for v in packed] == [1 << (63 - p) for p in range(64)]


def test_packed_dhash_matches_the_bits() -> None:
    rng = np.random.default_rng(3)
    thumbs = rng.integers(0, 256, (20, SIDE, SIDE, 3), dtype=np.uint8)
    rows = features_from_thumbnails(thumbs, 8)
    # Independent exact reference: luma per mille, each pixel split into 9 columns
    # so that the 9 dHash columns of a 32 px row are whole numbers of sub-pixels.
    gray = thumbs.astype(np.int64) @ np.array([299, 587, 114])
    cells = np.repeat(gray, 9, axis=2).reshape(20, 8, 4, 9, 32).sum(axis=(2, 4))
    bits = (cells[:, :, :-1] > cells[:, :, 1:]).reshape(20, 64)
    np.testing.assert_array_equal(rows["dhash"], pack_bits(bits))


def test_packed_dhash_is_always_the_8x8_one() -> None:
    rng = np.random.default_rng(4)
    thumbs = rng.integers(0, 256, (5, SIDE, SIDE, 3), dtype=np.uint8)
    eight = features_from_thumbnails(thumbs, 8)["dhash"]
    for hash_size in (2, 4, 16):
        np.testing.assert_array_equal(features_from_thumbnails(thumbs, hash_size)["dhash"], eight)


# --------------------------------------------------------------------------- structure


def test_structure_positions() -> None:
    assert structure_positions(8) == (27, 36)
    assert structure_positions(4) == (5, 10)
    for hash_size in range(2, 65):
        first, second = structure_positions(hash_size)
        assert 0 <= first < second < hash_size * hash_size


def _single_edge(rows: slice, cols: slice) -> np.ndarray:
    gray = np.zeros((SIDE, SIDE), dtype=np.uint8)
    gray[rows, cols] = 255
    return _thumb(gray)


def _at_27_thumb() -> np.ndarray:
    return _single_edge(slice(12, 16), slice(11, 14))


def _at_36_thumb() -> np.ndarray:
    return _single_edge(slice(16, 20), slice(15, 17))


def test_structure_bits_for_hash_size_8() -> None:
    """A bright block filling dHash cell (3, 3) sets bit 27 only; cell (4, 4) bit 36 only.

    With a 32 px thumbnail, dHash cell rows are 4 px high and cell columns
    32/9 px wide: pixels 11-13 lie inside column cell 3, 15-16 inside cell 4.
    """
    at_27 = _row(_at_27_thumb())
    at_36 = _row(_at_36_thumb())
    assert int(at_27["dhash"]) == 1 << (63 - 27)
    assert int(at_36["dhash"]) == 1 << (63 - 36)
    assert int(at_27["structure"]) == 0b10  # first position is the high bit
    assert int(at_36["structure"]) == 0b01
    both = _row(np.maximum(_at_27_thumb(), _at_36_thumb()))
    assert int(both["structure"]) == 0b11


def test_structure_bits_for_hash_size_4() -> None:
    """4 x 5 grid: rows of 8 px, columns of 6.4 px. Cell (1, 1) is bit 5, (2, 2) bit 10."""
    at_5 = _row(_single_edge(slice(8, 16), slice(7, 12)), hash_size=4)
    at_10 = _row(_single_edge(slice(16, 24), slice(13, 19)), hash_size=4)
    assert int(at_5["structure"]) == 0b10
    assert int(at_10["structure"]) == 0b01
    # An edge elsewhere does not touch the structure bits.
    corner = _row(_single_edge(slice(0, 8), slice(0, 6)), hash_size=4)
    assert int(corner["structure"]) == 0


def test_structure_ignores_edges_away_from_the_centre() -> None:
    row = _row(_single_edge(slice(0, 4), slice(0, 3)))
    assert int(row["dhash"]) != 0
    assert int(row["structure"]) == 0


# --------------------------------------------------------------------------- aHash


def test_ahash_size() -> None:
    assert ahash_size(8) == 4
    assert ahash_size(16) == 8
    assert ahash_size(4) == 2
    assert ahash_size(2) == 2
    assert ahash_size(3) == 2


def test_ahash_bit_is_the_top_left_cell_against_the_mean() -> None:
    bright_corner = np.zeros((SIDE, SIDE))
    bright_corner[:8, :8] = 200  # the 4x4 aHash grid has 8 px cells
    dark_corner = 200 - bright_corner
    assert int(_row(_thumb(bright_corner))["ahash_bit"]) == 1
    assert int(_row(_thumb(dark_corner))["ahash_bit"]) == 0
    assert int(_row(_thumb(np.full((SIDE, SIDE), 128)))["ahash_bit"]) == 0  # equal: not above


def test_ahash_bit_uses_only_the_top_left_cell() -> None:
    elsewhere = np.zeros((SIDE, SIDE))
    elsewhere[24:, 24:] = 255  # bottom-right cell bright: top-left is below the mean
    assert int(_row(_thumb(elsewhere))["ahash_bit"]) == 0
    half = np.zeros((SIDE, SIDE))
    half[:, :4] = 255  # half of the top-left cell bright: 127.5 > mean 31.9
    assert int(_row(_thumb(half))["ahash_bit"]) == 1


# --------------------------------------------------------------------------- colour


@given(arrays(np.uint8, (3, SIDE, SIDE, 3)))
def test_mean_rgb_is_the_channel_mean(thumbs: np.ndarray) -> None:
    rows = features_from_thumbnails(thumbs, 8)
    expected = thumbs.reshape(3, -1, 3).astype(np.float64).mean(axis=1)
    np.testing.assert_allclose(rows["mean_rgb"], expected, atol=1e-3)


def test_mean_rgb_of_a_red_thumbnail() -> None:
    thumbs = np.zeros((1, SIDE, SIDE, 3), dtype=np.uint8)
    thumbs[..., 0] = 250
    thumbs[..., 2] = 10
    assert _row(thumbs)["mean_rgb"].tolist() == [250.0, 0.0, 10.0]


@given(arrays(np.uint8, (3, SIDE, SIDE, 3)))
def test_chroma_is_the_mean_per_pixel_spread_exactly(thumbs: np.ndarray) -> None:
    """Issue 11, item 21: per-pixel chroma, exact whatever the batch."""
    rows = features_from_thumbnails(thumbs, 8)
    spread = thumbs.max(axis=3).astype(np.int64) - thumbs.min(axis=3)
    expected = np.float32(spread.reshape(3, -1).sum(axis=1) / (SIDE * SIDE))
    assert rows["chroma"].tolist() == expected.tolist()
    for index in range(3):
        alone = features_from_thumbnails(thumbs[index : index + 1], 8)[0]
        assert alone["chroma"] == rows[index]["chroma"]


def test_chroma_sees_colours_that_channel_means_hide() -> None:
    """Orange on blue has near-equal channel means, a gray frame has none: chroma tells."""
    thumbs = np.zeros((2, SIDE, SIDE, 3), dtype=np.uint8)
    thumbs[0] = (80, 160, 215)  # blue sky
    thumbs[0, 8:24, 4:28] = (230, 120, 30)  # orange animal: means 136/145/146
    thumbs[1] = _thumb(np.tile(np.arange(SIDE, dtype=np.uint8) * 8, (SIDE, 1)))[0]
    rows = features_from_thumbnails(thumbs, 8)
    assert rows["mean_rgb"][0].var() < 100  # the 1.x rule calls it grayscale
    assert rows["chroma"][0] > 150
    assert rows["chroma"][1] == 0.0


def test_rows_have_the_feature_dtype_and_unknown_metadata() -> None:
    rows = features_from_thumbnails(np.zeros((4, SIDE, SIDE, 3), np.uint8), 8)
    assert rows.dtype == FEATURE_DTYPE
    assert len(rows) == 4
    assert np.isnan(rows["capture_time"]).all()
    empty = features_from_thumbnails(np.zeros((0, SIDE, SIDE, 3), np.uint8), 8)
    assert len(empty) == 0
    assert empty.dtype == FEATURE_DTYPE
    assert np.isnan(empty_features(3)["capture_time"]).all()


def test_batch_rows_equal_single_rows() -> None:
    """Features of an image do not depend on the rest of its batch."""
    rng = np.random.default_rng(5)
    thumbs = rng.integers(0, 256, (7, SIDE, SIDE, 3), dtype=np.uint8)
    batch = features_from_thumbnails(thumbs, 8)
    for index in range(7):
        single = features_from_thumbnails(thumbs[index : index + 1], 8)[0]
        for name in ("dhash", "structure", "ahash_bit"):
            assert batch[index][name] == single[name]
        np.testing.assert_allclose(batch[index]["mean_rgb"], single["mean_rgb"])


@pytest.mark.parametrize("hash_size", [2, 3, 4, 8, 16])
def test_larger_thumbnails_and_hash_sizes(hash_size: int) -> None:
    side = max(SIDE, 4 * (hash_size + 1))
    rng = np.random.default_rng(hash_size)
    rows = features_from_thumbnails(rng.integers(0, 256, (3, side, side, 3), np.uint8), hash_size)
    assert rows["structure"].max() <= 3
    assert set(rows["ahash_bit"].tolist()) <= {0, 1}


def test_area_resize_averages_areas() -> None:
    gray = np.arange(36, dtype=np.float32).reshape(1, 6, 6)
    np.testing.assert_allclose(area_resize(gray, 3, 3)[0], gray[0].reshape(3, 2, 3, 2).mean((1, 3)))
    # Non-integer ratio: the total brightness is kept.
    resized = area_resize(np.ones((1, 32, 32), np.float32) * 7, 8, 9)
    np.testing.assert_allclose(resized, 7, rtol=1e-5)


# --------------------------------------------------------------------------- Hamming


@given(st.lists(st.tuples(UINT64, UINT64), min_size=1, max_size=50))
def test_hamming_distance_matches_python_popcount(pairs: list[tuple[int, int]]) -> None:
    a = np.array([x for x, _ in pairs], dtype=np.uint64)
    b = np.array([y for _, y in pairs], dtype=np.uint64)
    expected = [bin(x ^ y).count("1") for x, y in pairs]
    assert hamming_distance(a, b).tolist() == expected
    assert _popcount64(np.bitwise_xor(a, b)).tolist() == expected


def test_hamming_distance_extremes() -> None:
    top = np.array([2**64 - 1], dtype=np.uint64)
    zero = np.array([0], dtype=np.uint64)
    assert hamming_distance(top, zero).tolist() == [64]
    assert hamming_distance(top, top).tolist() == [0]
    assert hamming_distance(np.array([1 << 63], np.uint64), zero).tolist() == [1]
