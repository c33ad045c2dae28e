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
from smartdownsample.plotting import save_distribution, save_thumbnails
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


def test_each_bucket_grid_shows_its_own_images(
    coloured: tuple[list[str], SelectionResult], tmp_path: Path
) -> None:
    """Three grids in a square layout (2 x 2): #1 top left, #2 top right, #3 bottom left.

    1.x showed the wrong images under the bucket numbers: here each quadrant
    must hold only the colour of its own bucket.
    """
    _, result = coloured
    sheet = _sheet(result, tmp_path)
    height, width, _ = sheet.shape
    quadrants = {
        1: sheet[: height // 2, : width // 2],
        2: sheet[: height // 2, width // 2 :],
        3: sheet[height // 2 :, : width // 2],
    }
    for rank, region in quadrants.items():
        own, _ = BUCKET_COLOURS[rank]
        assert _pixels_of(region, own) > 0, f"bucket #{rank} shows none of its images"
        for other, (colour, _) in BUCKET_COLOURS.items():
            if other != rank:
                assert _pixels_of(region, colour) == 0, f"bucket #{rank} shows #{other}'s images"
    empty = sheet[height // 2 :, width // 2 :]
    assert all(_pixels_of(empty, colour) == 0 for colour, _ in BUCKET_COLOURS.values())


def test_frames_are_green_for_kept_and_red_for_excluded(
    coloured: tuple[list[str], SelectionResult], tmp_path: Path
) -> None:
    """Every cell has a frame of the same area, so frame pixels count the cells."""
    _, result = coloured
    sheet = _sheet(result, tmp_path)
    height, width, _ = sheet.shape
    quadrants = {
        1: sheet[: height // 2, : width // 2],
        2: sheet[: height // 2, width // 2 :],
        3: sheet[height // 2 :, : width // 2],
    }
    for bucket in result.buckets:
        shown = result.bucket_members(bucket.key)[:25]
        kept = int(result.selected[shown].sum())
        region = quadrants[bucket.rank]
        green = _pixels_of(region, KEPT_GREEN)
        red = _pixels_of(region, EXCLUDED_RED)
        assert 0 < kept < len(shown), "the fixture should keep some and exclude some"
        assert green > 0 and red > 0
        # Image pixels per cell are the same, so the colour area counts the cells.
        own, _ = BUCKET_COLOURS[bucket.rank]
        per_cell_image = _pixels_of(region, own) / len(shown)
        assert per_cell_image > 0
        assert green / (green + red) == pytest.approx(kept / len(shown), abs=0.02)


def test_grid_shows_the_first_25_images_in_natural_order(
    coloured: tuple[list[str], SelectionResult],
) -> None:
    _, result = coloured
    bucket = result.buckets[0]
    members = result.bucket_members(bucket.key)
    names = [Path(result.paths[i]).name for i in members]
    assert names == sorted(names)
    assert len(members) == 30


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
