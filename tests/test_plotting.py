"""Charts: valid PNGs without a display, the right images in each bucket's grid."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from images import solid, write_png
from smartdownsample import InvalidArgumentError, SelectionResult, downsample, sample_diverse
from smartdownsample.features import empty_features
from smartdownsample.plotting import (
    BORDER,
    GRID_SIDE,
    UNREADABLE_COLOUR,
    save_distribution,
    save_thumbnails,
    shown_members,
)
from smartdownsample.result import bucket_table
from smartdownsample.synthetic import SyntheticDataset

KEPT_GREEN = (46, 160, 67)
EXCLUDED_RED = (200, 40, 40)
MAX_SIDE = 4096

# Three buckets of solid-colour images, sizes 30 > 20 > 10, so ranks are fixed.
# The colours differ from the green and red frames and from the grey of unreadable cells.
BUCKET_COLOURS = {
    1: ((40, 60, 220), 30),  # colour, dark, blue theme
    2: ((230, 210, 40), 20),  # colour, bright, red theme (red is the largest channel)
    3: ((80, 70, 60), 10),  # grayscale (channel variance 67), dark; not a text grey
}


def _pixels_of(region: np.ndarray, colour: tuple[int, int, int]) -> int:
    return int((region == np.array(colour, dtype=np.uint8)).all(axis=-1).sum())


@pytest.fixture(scope="module")
def coloured(tmp_path_factory: pytest.TempPathFactory) -> tuple[list[str], SelectionResult]:
    folder = tmp_path_factory.mktemp("coloured")
    paths = []
    for rank, (colour, count) in BUCKET_COLOURS.items():
        for index in range(count):
            # Interleave names so the buckets are mixed in natural order.
            name = f"img_{index * 3 + rank:03d}.png"
            paths.append(str(write_png(folder / name, solid(colour, (48, 40)))))
    result = downsample(paths, 12, show_progress=False, strategy="spec")
    return paths, result


def test_coloured_fixture_has_three_buckets_of_known_colours(
    coloured: tuple[list[str], SelectionResult],
) -> None:
    _, result = coloured
    assert [bucket.size for bucket in result.buckets] == [30, 20, 10]
    for bucket in result.buckets:
        colour, _ = BUCKET_COLOURS[bucket.rank]
        members = result.bucket_members(bucket.key)
        means = result.features["mean_rgb"][members]
        np.testing.assert_allclose(means, np.tile(colour, (len(members), 1)), atol=0.5)


def test_save_distribution_writes_a_png_in_a_new_folder(
    coloured: tuple[list[str], SelectionResult], tmp_path: Path
) -> None:
    _, result = coloured
    target = tmp_path / "new" / "deeper" / "distribution.png"
    saved = save_distribution(result, target)
    assert Path(saved) == target.resolve()
    with Image.open(target) as image:
        assert image.format == "PNG"
        image.load()
        pixels = np.asarray(image.convert("RGB"))
    # Kept bars in green, excluded bars in red.
    assert _pixels_of(pixels, KEPT_GREEN) > 50
    assert _pixels_of(pixels, EXCLUDED_RED) > 50
    assert os.listdir(target.parent) == ["distribution.png"], "temporary file left behind"


def test_save_thumbnails_writes_a_png_in_a_new_folder(
    coloured: tuple[list[str], SelectionResult], tmp_path: Path
) -> None:
    _, result = coloured
    target = tmp_path / "a" / "b" / "thumbs.png"
    saved = result.save_thumbnails(target)
    assert Path(saved) == target.resolve()
    with Image.open(target) as image:
        assert image.format == "PNG"
        image.load()
    assert os.listdir(target.parent) == ["thumbs.png"]


def _sheet(result: SelectionResult, folder: Path) -> np.ndarray:
    path = save_thumbnails(result, folder / "sheet.png")
    with Image.open(path) as image:
        return np.asarray(image.convert("RGB"))


def _grid_boxes(sheet: np.ndarray) -> dict[int, np.ndarray]:
    """Each bucket's grid (its tiles and their frames), found by its own tile colour."""
    boxes = {}
    for rank, (colour, _) in BUCKET_COLOURS.items():
        rows, cols = np.nonzero((sheet == np.array(colour, dtype=np.uint8)).all(axis=-1))
        assert len(rows), f"bucket #{rank} shows none of its images"
        top, left = max(0, rows.min() - BORDER), max(0, cols.min() - BORDER)
        boxes[rank] = sheet[top : rows.max() + BORDER + 1, left : cols.max() + BORDER + 1]
    return boxes


def _grid_origins(sheet: np.ndarray) -> dict[int, tuple[int, int]]:
    origins = {}
    for rank, (colour, _) in BUCKET_COLOURS.items():
        rows, cols = np.nonzero((sheet == np.array(colour, dtype=np.uint8)).all(axis=-1))
        origins[rank] = (int(rows.min()), int(cols.min()))
    return origins


def test_each_bucket_grid_shows_its_own_images(
    coloured: tuple[list[str], SelectionResult], tmp_path: Path
) -> None:
    """Three grids in a square layout (2 x 2): #1 top left, #2 top right, #3 bottom left.

    1.x showed the wrong images under the bucket numbers: here each grid
    must hold only the colour of its own bucket.
    """
    _, result = coloured
    sheet = _sheet(result, tmp_path)
    for rank, region in _grid_boxes(sheet).items():
        for other, (colour, _) in BUCKET_COLOURS.items():
            if other != rank:
                assert _pixels_of(region, colour) == 0, f"bucket #{rank} shows #{other}'s images"
    origins = _grid_origins(sheet)
    assert origins[1][0] == origins[2][0] < origins[3][0]  # #1 and #2 on top, #3 below
    assert origins[1][1] == origins[3][1] < origins[2][1]  # #1 and #3 on the left


def test_frames_are_green_for_kept_and_red_for_excluded(
    coloured: tuple[list[str], SelectionResult], tmp_path: Path
) -> None:
    """Every cell has a frame of the same area, so frame pixels count the cells."""
    _, result = coloured
    sheet = _sheet(result, tmp_path)
    boxes = _grid_boxes(sheet)
    for bucket in result.buckets:
        shown = shown_members(result, bucket.key)
        kept = int(result.selected[shown].sum())
        region = boxes[bucket.rank]
        green = _pixels_of(region, KEPT_GREEN)
        red = _pixels_of(region, EXCLUDED_RED)
        assert 0 < kept < len(shown), "the fixture should keep some and exclude some"
        assert green > 0 and red > 0
        # Image pixels per cell are the same, so the colour area counts the cells.
        own, _ = BUCKET_COLOURS[bucket.rank]
        per_cell_image = _pixels_of(region, own) / len(shown)
        assert per_cell_image > 0
        assert green / (green + red) == pytest.approx(kept / len(shown), abs=0.02)


def test_grid_shows_kept_images_first_then_excluded_in_natural_order(
    coloured: tuple[list[str], SelectionResult],
) -> None:
    _, result = coloured
    bucket = result.buckets[0]
    members = result.bucket_members(bucket.key)
    names = [Path(result.paths[i]).name for i in members]
    assert names == sorted(names)
    assert len(members) == 30
    shown = shown_members(result, bucket.key)
    kept = [i for i in members if result.selected[i]]
    assert shown == (kept + [i for i in members if not result.selected[i]])[:25]


def _one_bucket_result(image: str, count: int, kept: slice) -> SelectionResult:
    """A result of ``count`` images in one bucket, ``kept`` of them selected."""
    buckets = np.zeros(count, dtype=np.int16)
    bursts = np.arange(count, dtype=np.int64)
    selected = np.zeros(count, dtype=bool)
    selected[kept] = True
    return SelectionResult(
        paths=[image] * count,
        input_indices=np.arange(count, dtype=np.int64),
        features=empty_features(count),
        ok=np.ones(count, dtype=bool),
        bucket_ids=buckets,
        burst_ids=bursts,
        selected=selected,
        natural_order=np.arange(count, dtype=np.int64),
        buckets=bucket_table(buckets, bursts, selected),
        failures=(),
        target_count=int(selected.sum()),
        hash_size=8,
        random_seed=42,
        strategy="spec",
    )


def test_every_kept_image_of_a_bucket_is_on_the_sheet(tmp_path: Path) -> None:
    """Issue 11, item 22: the first 25 of a bucket were shown, so late kept images never were.

    40 images, the last 10 kept: all 10 must be on the sheet (green), then 15 excluded (red).
    """
    image = str(write_png(tmp_path / "one.png", solid((90, 140, 200), (24, 24))))
    result = _one_bucket_result(image, 40, slice(30, 40))
    sheet = _sheet(result, tmp_path)
    grids = sheet[_first_frame_row(sheet) :]  # below the legend
    green = _pixels_of(grids, KEPT_GREEN)
    red = _pixels_of(grids, EXCLUDED_RED)
    assert _pixels_of(grids, (90, 140, 200)) > 0
    per_frame = (green + red) / (GRID_SIDE * GRID_SIDE)  # every frame has the same area
    assert (green / per_frame, red / per_frame) == (pytest.approx(10), pytest.approx(15))


def _first_frame_row(sheet: np.ndarray) -> int:
    """First row holding a run of frame colour wider than a legend swatch (a grid's top)."""
    frame = (sheet == np.array(KEPT_GREEN, np.uint8)).all(axis=-1) | (
        sheet == np.array(EXCLUDED_RED, np.uint8)
    ).all(axis=-1)
    wide = np.nonzero(frame.sum(axis=1) > 40)[0]
    assert len(wide)
    return int(wide[0])


def test_sheet_has_a_legend_and_readable_titles(
    coloured: tuple[list[str], SelectionResult], tmp_path: Path
) -> None:
    """A legend (green kept, red excluded, grey unreadable) above the grids; titles of
    text at least 10 px tall (1.x's 9-px bitmap font had letters 6-7 px tall)."""
    _, result = coloured
    sheet = _sheet(result, tmp_path)
    first_grid = _first_frame_row(sheet)
    legend = sheet[: first_grid // 2]
    for colour in (KEPT_GREEN, EXCLUDED_RED, UNREADABLE_COLOUR):
        assert _pixels_of(legend, colour) >= 100, f"no legend swatch of {colour}"
    # The first title line (black text) sits between the legend and the first grid.
    dark = (sheet[:first_grid, : sheet.shape[1] // 2] < 40).all(axis=-1).any(axis=1)
    runs = np.split(np.nonzero(dark)[0], np.nonzero(np.diff(np.nonzero(dark)[0]) > 1)[0] + 1)
    heights = [len(run) for run in runs if len(run)]
    assert len(heights) >= 2, "legend line and title lines"
    assert max(heights[1:]) >= 10, f"title text rows {heights}"


def test_sheet_size_is_bounded_with_many_buckets(tmp_path: Path) -> None:
    """Every bucket id present (128 buckets): the sheet still fits in 4096 px."""
    image_path = str(write_png(tmp_path / "one.png", solid((90, 140, 200), (24, 24))))
    count = 128 * 3
    paths = [image_path] * count  # the grids only read the files
    buckets = np.repeat(np.arange(128, dtype=np.int16), 3)
    bursts = np.arange(count, dtype=np.int64)
    selected = np.zeros(count, dtype=bool)
    selected[::3] = True
    result = SelectionResult(
        paths=paths,
        input_indices=np.arange(count, dtype=np.int64),
        features=empty_features(count),
        ok=np.ones(count, dtype=bool),
        bucket_ids=buckets,
        burst_ids=bursts,
        selected=selected,
        natural_order=np.arange(count, dtype=np.int64),
        buckets=bucket_table(buckets, bursts, selected),
        failures=(),
        target_count=128,
        hash_size=8,
        random_seed=42,
        strategy="spec",
    )
    assert len(result.buckets) == 128
    target = tmp_path / "many.png"
    save_thumbnails(result, target)
    with Image.open(target) as image:
        assert max(image.size) <= MAX_SIDE
        assert min(image.size) >= 1000, "128 grids squeezed too small to see"
    assert target.stat().st_size < 20 * 2**20
    chart = tmp_path / "many-bars.png"
    save_distribution(result, chart)
    with Image.open(chart) as image:
        assert max(image.size) <= MAX_SIDE


@pytest.mark.parametrize("name", ["chart.jpg", "chart", "chart.png.txt"])
def test_paths_not_ending_in_png_are_refused(
    coloured: tuple[list[str], SelectionResult], tmp_path: Path, name: str
) -> None:
    _, result = coloured
    for save in (save_distribution, save_thumbnails):
        with pytest.raises(InvalidArgumentError, match="png"):
            save(result, tmp_path / "out" / name)
    assert not (tmp_path / "out" / name).exists()


def test_upper_case_png_suffix_is_accepted(
    coloured: tuple[list[str], SelectionResult], tmp_path: Path
) -> None:
    _, result = coloured
    saved = save_distribution(result, tmp_path / "CHART.PNG")
    with Image.open(saved) as image:
        assert image.format == "PNG"


def test_sample_diverse_saves_both_charts(dataset: SyntheticDataset, tmp_path: Path) -> None:
    distribution = tmp_path / "charts" / "bars.png"
    thumbnails = tmp_path / "charts" / "sub" / "grids.png"
    selected = sample_diverse(
        dataset.paths[:60],
        12,
        show_progress=False,
        show_summary=False,
        save_distribution=distribution,
        save_thumbnails=str(thumbnails),
    )
    assert len(selected) == 12
    for path in (distribution, thumbnails):
        with Image.open(path) as image:
            assert image.format == "PNG"
            assert min(image.size) > 100


def test_charts_need_no_display_and_leave_pyplot_alone(
    dataset: SyntheticDataset, tmp_path: Path
) -> None:
    """In a fresh process without DISPLAY or MPLBACKEND: saving works, pyplot is never imported."""
    code = (
        "import sys\n"
        "from smartdownsample import downsample\n"
        f"paths = {dataset.paths[:30]!r}\n"
        "result = downsample(paths, 6, show_progress=False)\n"
        f"result.save_distribution({str(tmp_path / 'x' / 'd.png')!r})\n"
        f"result.save_thumbnails({str(tmp_path / 'x' / 't.png')!r})\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    environment = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")
    }
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=environment, timeout=120
    )
    assert completed.returncode == 0, completed.stderr
    for name in ("d.png", "t.png"):
        with Image.open(tmp_path / "x" / name) as image:
            assert image.format == "PNG"


def test_show_switches_work_headless(
    dataset: SyntheticDataset, capsys: pytest.CaptureFixture[str]
) -> None:
    """show_distribution / show_thumbnails draw with pyplot; on Agg they must not fail."""
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    try:
        with warnings.catch_warnings():
            # Agg's plt.show() says it cannot show; that is the point of this test.
            warnings.filterwarnings("ignore", message=".*non-interactive.*")
            selected = sample_diverse(
                dataset.paths[:40],
                8,
                show_progress=False,
                show_summary=False,
                show_distribution=True,
                show_thumbnails=True,
            )
        assert len(selected) == 8
        assert len(set(plt.get_fignums()) - before) == 2, "one bar chart and one grid figure"
    finally:
        plt.close("all")
    assert capsys.readouterr().out == ""
