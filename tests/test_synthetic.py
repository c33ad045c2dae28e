"""Tests of the synthetic camera-trap data set maker (real files in tmp_path)."""

from __future__ import annotations

import collections
import csv
import datetime as dt
import itertools
import math
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from smartdownsample.paths import natural_order
from smartdownsample.synthetic import (
    GROUND_TRUTH_NAME,
    HABITATS,
    RARE_SCENES,
    SCENES,
    SyntheticDataset,
    SyntheticImage,
    _burst_lengths,
    load_dataset,
    location_habitat,
    make_dataset,
)

EXIF_IFD = 0x8769
DATETIME_ORIGINAL = 0x9003
DATETIME = 0x0132
SMALL_FRAME = (480, 320)


def _thumb(path: str, mode: str = "RGB") -> np.ndarray:
    with Image.open(path) as image:
        return np.asarray(image.convert(mode).resize((32, 32)), dtype=np.float64)


def _channel_stats(path: str) -> tuple[float, float]:
    """(mean brightness, variance of the three channel means) of a 32x32 thumbnail."""
    means = _thumb(path).reshape(-1, 3).mean(axis=0)
    return float(means.mean()), float(means.var())


def _bursts(ds: SyntheticDataset) -> dict[int, list[SyntheticImage]]:
    groups: dict[int, list[SyntheticImage]] = collections.defaultdict(list)
    for image in ds.images:
        groups[image.burst_id].append(image)
    return groups


@pytest.fixture(scope="module")
def crops(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    root = tmp_path_factory.mktemp("crops")
    return make_dataset(root, 240, kind="crops", n_locations=4, seed=11, rare_fraction=0.1)


@pytest.fixture(scope="module")
def frames(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    root = tmp_path_factory.mktemp("frames")
    return make_dataset(root, 90, kind="frames", n_locations=4, seed=12, frame_size=SMALL_FRAME)


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> SyntheticDataset:
    root = tmp_path_factory.mktemp("mixed")
    return make_dataset(root, 80, kind="mixed", n_locations=3, seed=13, frame_size=SMALL_FRAME)


@pytest.fixture(params=["crops", "frames", "mixed"])
def dataset(
    request: pytest.FixtureRequest,
    crops: SyntheticDataset,
    frames: SyntheticDataset,
    mixed: SyntheticDataset,
) -> SyntheticDataset:
    return {"crops": crops, "frames": frames, "mixed": mixed}[request.param]


# --- files and ground truth ----------------------------------------------------------------


@pytest.mark.parametrize(("name", "expected"), [("crops", 240), ("frames", 90), ("mixed", 80)])
def test_exact_count_files_decode(
    name: str,
    expected: int,
    crops: SyntheticDataset,
    frames: SyntheticDataset,
    mixed: SyntheticDataset,
) -> None:
    dataset = {"crops": crops, "frames": frames, "mixed": mixed}[name]
    assert len(dataset.images) == len(dataset) == expected
    assert len(set(dataset.paths)) == expected
    for image in dataset.images:
        assert os.path.isfile(image.path)
        assert image.path == os.path.join(dataset.root, *image.relpath.split("/"))
        with Image.open(image.path) as decoded:
            assert decoded.format == "JPEG"
            assert decoded.mode == "RGB"
            assert decoded.size == (image.width, image.height)
            decoded.load()
    on_disk = [p for p in Path(dataset.root).rglob("*") if p.is_file()]
    assert len(on_disk) == expected + 1  # the images and ground_truth.csv, no temp files


def test_ground_truth_csv_round_trip(crops: SyntheticDataset) -> None:
    assert crops.ground_truth_csv == os.path.join(crops.root, GROUND_TRUTH_NAME)
    with open(crops.ground_truth_csv, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(crops.images)
    assert "path" not in rows[0]
    assert rows[0]["relpath"] == crops.images[0].relpath
    loaded = load_dataset(crops.root)
    assert loaded == crops
    assert load_dataset(Path(crops.root)).images[5].is_night == crops.images[5].is_night


def test_metadata_is_consistent(dataset: SyntheticDataset) -> None:
    for image in dataset.images:
        assert image.scene in SCENES
        assert image.is_rare == (image.scene in RARE_SCENES)
        assert image.is_night == (image.scene == "night_ir")
        assert image.kind in ("crop", "frame")
        assert image.location.startswith("loc")
        assert image.deployment in ("dep1", "dep2", "dep3")
        assert "\\" not in image.relpath
        hour = dt.datetime.fromisoformat(image.capture_time).hour
        if image.is_night:  # night bursts are taken between 20:30 and 05:00 (+ burst length)
            assert hour >= 20 or hour <= 5
        else:
            assert 7 <= hour < 20
    ids = dataset.column("burst_id")
    assert ids[0] == 0
    assert np.all(np.diff(ids) >= 0)
    assert set(ids.tolist()) == set(range(int(ids.max()) + 1))


def test_column_types(crops: SyntheticDataset) -> None:
    assert crops.column("burst_id").dtype == np.int64
    assert crops.column("is_night").dtype == bool
    locations = crops.column("location")
    assert locations.shape == (len(crops.images),)
    assert (locations == crops.images[0].location).any()
    with pytest.raises(KeyError, match="nope"):
        crops.column("nope")


def test_location_habitat() -> None:
    assert [location_habitat(f"loc{i:02d}") for i in range(5)] == [*HABITATS, HABITATS[0]]
    with pytest.raises(ValueError, match="location"):
        location_habitat("camera7")


# --- determinism and parallelism -----------------------------------------------------------


def _bytes(ds: SyntheticDataset) -> list[bytes]:
    return [Path(p).read_bytes() for p in ds.paths]


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    args = {"n_images": 40, "kind": "mixed", "n_locations": 3, "frame_size": SMALL_FRAME}
    a = make_dataset(tmp_path / "a", seed=5, **args)  # type: ignore[arg-type]
    b = make_dataset(tmp_path / "b", seed=5, **args)  # type: ignore[arg-type]
    c = make_dataset(tmp_path / "c", seed=6, **args)  # type: ignore[arg-type]
    assert [i.relpath for i in a.images] == [i.relpath for i in b.images]
    assert _bytes(a) == _bytes(b)
    assert (tmp_path / "a" / GROUND_TRUTH_NAME).read_bytes() == (
        tmp_path / "b" / GROUND_TRUTH_NAME
    ).read_bytes()
    assert _bytes(a) != _bytes(c)


def test_two_workers_same_files(tmp_path: Path) -> None:
    args = {"n_images": 70, "kind": "mixed", "n_locations": 5, "frame_size": SMALL_FRAME}
    one = make_dataset(tmp_path / "one", seed=3, n_workers=1, **args)  # type: ignore[arg-type]
    two = make_dataset(tmp_path / "two", seed=3, n_workers=2, **args)  # type: ignore[arg-type]
    assert [i.relpath for i in one.images] == [i.relpath for i in two.images]
    assert [dataclass_no_path(i) for i in one.images] == [dataclass_no_path(i) for i in two.images]
    assert _bytes(one) == _bytes(two)


def dataclass_no_path(image: SyntheticImage) -> tuple[object, ...]:
    return (image.relpath, image.burst_id, image.frame, image.scene, image.capture_time)


# --- image content ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["crops", "frames"])
def test_night_gray_and_dark_day_colour(
    name: str, crops: SyntheticDataset, frames: SyntheticDataset
) -> None:
    ds = {"crops": crops, "frames": frames}[name]
    night = [_channel_stats(i.path) for i in ds.images if i.scene == "night_ir"]
    day = [_channel_stats(i.path) for i in ds.images if i.scene == "day"]
    assert night
    assert day
    for mean, variance in night:
        assert variance < 100
        assert mean < 128
    colourful = [variance >= 100 for _, variance in day]
    assert sum(colourful) >= 0.7 * len(day)
    assert np.mean([m for m, _ in night]) < np.mean([m for m, _ in day])
    # Night shots are truly grayscale: R = G = B up to JPEG rounding.
    sample = next(i for i in ds.images if i.is_night)
    with Image.open(sample.path) as image:
        pixels = np.asarray(image.convert("RGB"), dtype=np.int16)
    assert np.abs(pixels[..., 0] - pixels[..., 2]).mean() < 2


def test_burst_frames_near_identical(crops: SyntheticDataset, frames: SyntheticDataset) -> None:
    for ds in (crops, frames):
        bursts = _bursts(ds)
        within = []
        between = []
        previous_first = None
        for burst_id in sorted(bursts):
            thumbs = [_thumb(i.path, "L") for i in bursts[burst_id]]
            within += [np.abs(a - b).mean() for a, b in itertools.pairwise(thumbs)]
            if previous_first is not None:
                between.append(np.abs(thumbs[0] - previous_first).mean())
            previous_first = thumbs[0]
        assert np.median(within) * 3 < np.median(between)
        assert np.mean(within) * 3 < np.mean(between)


def test_rare_scenes_look_distinct(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "rare", 60, rare_fraction=1.0, night_fraction=0.0, seed=2)
    assert set(ds.column("scene").tolist()) == set(RARE_SCENES)
    assert ds.column("is_rare").all()
    stats: dict[str, list[np.ndarray]] = collections.defaultdict(list)
    for image in ds.images:
        stats[image.scene].append(_thumb(image.path))
    means = {
        scene: np.mean([t.reshape(-1, 3).mean(0) for t in ts], 0) for scene, ts in stats.items()
    }
    assert means["overexposed"].min() > 215  # near white
    assert means["fog"].mean() > 150  # light gray ...
    assert np.mean([t.std() for t in stats["fog"]]) < 20  # ... and low contrast
    red, _, blue = means["sunset"]
    assert red > blue + 60  # strong orange/red cast
    assert means["snow_storm"].mean() > 140


def test_fractions(tmp_path: Path) -> None:
    night = make_dataset(tmp_path / "night", 30, night_fraction=1.0, rare_fraction=0.0, seed=4)
    assert night.column("is_night").all()
    day = make_dataset(tmp_path / "day", 30, night_fraction=0.0, rare_fraction=0.0, seed=4)
    assert set(day.column("scene").tolist()) == {"day"}


# --- bursts, names, time -----------------------------------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 4, 5, 11, 13, 20, 101, 2000])
def test_burst_lengths_sum_and_range(n: int) -> None:
    lengths = _burst_lengths(n, np.random.default_rng(n))
    assert sum(lengths) == n
    if n >= 3:
        assert all(3 <= k <= 10 for k in lengths)
    else:
        assert lengths == [n]


def test_bursts_structure(dataset: SyntheticDataset) -> None:
    for members in _bursts(dataset).values():
        assert 3 <= len(members) <= 10
        assert [m.frame for m in members] == list(range(len(members)))
        assert len({(m.location, m.deployment, m.scene, m.kind) for m in members}) == 1
        times = [dt.datetime.fromisoformat(m.capture_time) for m in members]
        assert all((b - a).total_seconds() == 1 for a, b in itertools.pairwise(times))
    by_deployment: dict[tuple[str, str], list[SyntheticImage]] = collections.defaultdict(list)
    for image in dataset.images:
        by_deployment[image.location, image.deployment].append(image)
    for members in by_deployment.values():
        for a, b in itertools.pairwise(members):
            if a.burst_id != b.burst_id:  # bursts are minutes to hours apart
                gap = dt.datetime.fromisoformat(b.capture_time) - dt.datetime.fromisoformat(
                    a.capture_time
                )
                assert gap >= dt.timedelta(minutes=2)


def test_natural_sort_follows_capture_time(crops: SyntheticDataset) -> None:
    by_folder: dict[str, list[SyntheticImage]] = collections.defaultdict(list)
    for image in crops.images:
        by_folder[os.path.dirname(image.path)].append(image)
    plain_sort_breaks = False
    for members in by_folder.values():
        time_of = {m.path: m.capture_time for m in members}
        names = list(time_of)
        natural = [names[i] for i in natural_order(names)]
        assert [time_of[p] for p in natural] == sorted(time_of.values())
        plain_sort_breaks |= sorted(time_of) != natural
        assert os.path.basename(natural[0]).startswith("IMG_1.")
    assert plain_sort_breaks  # numbers are not zero-padded on purpose
    assert {os.path.splitext(p)[1] for p in crops.paths} == {".jpg", ".JPG"}


# --- crops vs frames, EXIF ---------------------------------------------------------------------


def test_crop_and_frame_sizes(crops: SyntheticDataset, mixed: SyntheticDataset) -> None:
    assert set(crops.column("kind").tolist()) == {"crop"}
    sides = np.concatenate([crops.column("width"), crops.column("height")])
    assert sides.min() >= 150
    assert sides.max() <= 600
    assert len(set(crops.column("width").tolist())) > 10  # varying sizes and aspect ratios
    assert set(mixed.column("kind").tolist()) == {"crop", "frame"}
    for image in mixed.images:
        if image.kind == "frame":
            assert (image.width, image.height) == SMALL_FRAME
    crop_kib = np.median([os.path.getsize(p) for p in crops.paths]) / 1024
    assert 5 < crop_kib < 80


def test_full_hd_frames(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "hd", 3, kind="frames", seed=1)
    for image in ds.images:
        assert (image.width, image.height) == (1920, 1080)
        assert os.path.getsize(image.path) > 100 * 1024


def _exif_time(path: str) -> str | None:
    with Image.open(path) as image:
        exif = image.getexif()
        original = exif.get_ifd(EXIF_IFD).get(DATETIME_ORIGINAL)
        if original is None:
            return None
        assert exif.get(DATETIME) == original
        return str(original)


def _as_exif(capture_time: str) -> str:
    return dt.datetime.fromisoformat(capture_time).strftime("%Y:%m:%d %H:%M:%S")


def test_exif_where_promised(mixed: SyntheticDataset, crops: SyntheticDataset) -> None:
    for image in mixed.images:
        if image.kind == "frame":
            assert _exif_time(image.path) == _as_exif(image.capture_time)
    with_exif = collections.defaultdict(set)
    for image in crops.images:
        stamp = _exif_time(image.path)
        assert stamp in (None, _as_exif(image.capture_time))
        with_exif[image.location].add(stamp is not None)
    # Crops keep EXIF at half of the locations, consistently within a location.
    assert all(len(flags) == 1 for flags in with_exif.values())
    assert sorted(flags.pop() for flags in with_exif.values()) == [False, False, True, True]


def test_without_exif(tmp_path: Path) -> None:
    ds = make_dataset(tmp_path / "noexif", 8, kind="mixed", with_exif=False, frame_size=(96, 64))
    assert all(_exif_time(p) is None for p in ds.paths)


# --- argument checking and safety --------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_images": 0}, "n_images"),
        ({"n_images": -3}, "n_images"),
        ({"n_images": 2.5}, "n_images"),
        ({"kind": "videos"}, "kind"),
        ({"rare_fraction": -0.1}, "rare_fraction"),
        ({"rare_fraction": 1.5}, "rare_fraction"),
        ({"night_fraction": math.nan}, "night_fraction"),
        ({"night_fraction": 0.8, "rare_fraction": 0.3}, "exceed 1"),
        ({"n_locations": 0}, "n_locations"),
        ({"frame_size": (32, 32)}, "frame_size"),
        ({"jpeg_quality": 0}, "jpeg_quality"),
        ({"n_workers": 0}, "n_workers"),
        ({"seed": -1}, "seed"),
    ],
)
def test_invalid_arguments(tmp_path: Path, kwargs: dict[str, object], message: str) -> None:
    args: dict[str, object] = {"n_images": 5, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_dataset(tmp_path / "bad", **args)  # type: ignore[arg-type]
    assert not (tmp_path / "bad").exists()


def test_never_overwrites(tmp_path: Path) -> None:
    root = tmp_path / "existing"
    root.mkdir()  # an existing empty folder is fine
    make_dataset(root, 5, seed=1)
    with pytest.raises(FileExistsError, match=GROUND_TRUTH_NAME):
        make_dataset(root, 5, seed=1)
    # An image in the way (e.g. from an interrupted run) is refused before writing anything.
    other = tmp_path / "other"
    target = other / "loc00" / "dep1" / "IMG_1.JPG"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"user data")
    with pytest.raises(FileExistsError, match="IMG_1"):
        make_dataset(other, 5, n_locations=1, seed=1)
    assert target.read_bytes() == b"user data"
    assert not (other / GROUND_TRUTH_NAME).exists()


def test_load_dataset_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load_dataset(tmp_path)
    (tmp_path / GROUND_TRUTH_NAME).write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(ValueError, match="columns"):
        load_dataset(tmp_path)
