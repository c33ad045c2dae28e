"""Selecting among detections: an ItemTable in place of a path list.

Real JPEG frames and JSON files from :mod:`detections`; the tables come from
the readers of :mod:`smartdownsample.formats`.
"""

from __future__ import annotations

import dataclasses
import itertools
import logging
import os
import pickle
import shutil
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from detections import CameraTrapSet, make_camera_trap_set
from smartdownsample import ImageLoadError, downsample, sample_diverse
from smartdownsample.cache import open_cache
from smartdownsample.extraction import extract_batch, iter_batches
from smartdownsample.extraction.batch import RegionPath
from smartdownsample.formats import ItemTable, read_detections
from smartdownsample.item_pipeline import merge_by_frame, prepare_items
from smartdownsample.loading import decode_file

ALL_MD = {"min_conf": 0.0, "categories": ("animal", "person")}
QUIET = {"show_progress": False, "n_workers": 2}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> CameraTrapSet:
    return make_camera_trap_set(tmp_path_factory.mktemp("items set"))


@pytest.fixture(scope="module")
def md(data: CameraTrapSet) -> ItemTable:
    return read_detections(data.megadetector, **ALL_MD)


@pytest.fixture(scope="module")
def coco(data: CameraTrapSet) -> ItemTable:
    return read_detections(data.coco)


def true_sequences(data: CameraTrapSet, table: ItemTable) -> list[str]:
    """The painted sequence (camera and visit) of each row."""
    by_path = {os.path.abspath(frame.path): frame.sequence for frame in data.frames}
    return [f"{by_path[os.path.abspath(path)]}" for path in table.frame]


def copy_set(data: CameraTrapSet, where: Path) -> CameraTrapSet:
    """A private copy of the frames and JSON files (for tests that damage a frame)."""
    root = where / "copy of set"
    shutil.copytree(data.root, root)
    return dataclasses.replace(
        data,
        root=root,
        megadetector=root / data.megadetector.name,
        coco=root / data.coco.name,
    )


# ---------------------------------------------------------------- selection


@pytest.mark.parametrize("fixture", ["md", "coco"])
@pytest.mark.parametrize("target", [1, 4, 7, 12])
def test_exact_count_one_row_per_item(
    request: pytest.FixtureRequest, fixture: str, target: int
) -> None:
    table = request.getfixturevalue(fixture)
    result = downsample(table, target, **QUIET)
    assert result.n_selected == target
    assert len(result.paths) == len(table)
    assert result.paths == table.frame
    assert result.items is table
    assert result.selected_indices == sorted(result.selected_indices)
    assert not result.failures


@pytest.mark.parametrize("fixture", ["md", "coco"])
def test_no_two_items_of_one_sequence_below_the_number_of_sequences(
    request: pytest.FixtureRequest, data: CameraTrapSet, fixture: str
) -> None:
    table = request.getfixturevalue(fixture)
    truth = true_sequences(data, table)
    n_sequences = len(set(truth))
    for target in range(1, n_sequences + 1):
        kept = downsample(table, target, **QUIET).selected_indices
        counts = Counter(truth[i] for i in kept)
        assert max(counts.values()) == 1, (target, counts)
    # Above it, every sequence is covered.
    kept = downsample(table, n_sequences + 2, **QUIET).selected_indices
    assert {truth[i] for i in kept} == set(truth)


def test_units_keep_all_boxes_of_a_frame_together(md: ItemTable) -> None:
    result = downsample(md, 3, **QUIET)
    _, frame_of = md.frames()
    for frame in np.unique(frame_of):
        assert len(np.unique(result.burst_ids[frame_of == frame])) == 1
    assert any(np.bincount(frame_of) > 1)  # the set has frames with two boxes


def test_merge_by_frame_joins_chains() -> None:
    units = np.array([0, 1, 2, 3, 4])
    frames = np.array([10, 10, 11, 11, 12])  # 0-1 by frame 10, 2-3 by frame 11
    assert merge_by_frame(units, frames).tolist() == [0, 0, 1, 1, 2]
    units = np.array([0, 1, 1, 2])
    frames = np.array([5, 5, 6, 6])  # 0~1 (frame 5), 1~2 (frame 6): one unit
    assert merge_by_frame(units, frames).tolist() == [0, 0, 0, 0]


def test_manifest_rows_name_the_item(md: ItemTable) -> None:
    result = downsample(md, 5, **QUIET)
    rows = list(result.manifest_rows())
    assert len(rows) == len(md)
    for row, source, box, label in zip(rows, md.source, md.box, md.label, strict=True):
        assert (row["frame"], row["detection"]) == (int(source[0]), int(source[1]))
        assert row["box_w"] == pytest.approx(box[2], abs=1e-6)
        assert row["label"] == label
        assert isinstance(row["confidence"], float)


def test_box_features_are_the_box_not_the_frame(data: CameraTrapSet, md: ItemTable) -> None:
    result = downsample(md, 2, **QUIET)
    for row in range(len(md)):
        width, height = decode_file(md.frame[row], 8).upright_size
        w, h = md.box[row][2:]
        assert result.features["width"][row] == max(1, round(w * width))
        assert result.features["height"][row] == max(1, round(h * height))
    whole = downsample(list(dict.fromkeys(md.frame)), 2, **QUIET)
    assert not np.array_equal(whole.features["dhash"][:3], result.features["dhash"][:3])


def test_a_frame_is_decoded_once_for_all_its_boxes(md: ItemTable) -> None:
    _, frame_of = md.frames()
    frame = int(np.flatnonzero(np.bincount(frame_of) > 1)[0])
    rows = np.flatnonzero(frame_of == frame)
    jobs = [RegionPath(md.frame[int(r)], tuple(md.box[int(r)])) for r in rows]
    opened: list[int] = []
    result = extract_batch(jobs, 8, on_image=opened.append)
    assert opened == [0]  # one read for both boxes
    assert result.ok.all()
    assert len(set(result.features["dhash"].tolist())) == len(rows)
    assert pickle.loads(pickle.dumps(jobs[1])).box == jobs[1].box


# ---------------------------------------------------------------- failures


def _damage_a_two_box_frame(data: CameraTrapSet, table: ItemTable) -> str:
    _, frame_of = table.frames()
    frame = int(np.flatnonzero(np.bincount(frame_of) > 1)[0])
    path = table.frame[int(np.flatnonzero(frame_of == frame)[0])]
    Path(path).write_bytes(b"not a jpeg at all")
    return path


def test_a_failed_frame_fails_each_of_its_items(
    data: CameraTrapSet, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    private = copy_set(data, tmp_path)
    table = read_detections(private.megadetector, **ALL_MD)
    broken = _damage_a_two_box_frame(private, table)
    rows = [i for i, frame in enumerate(table.frame) if frame == broken]
    with caplog.at_level(logging.WARNING, logger="smartdownsample"):
        result = downsample(table, 5, image_loading_errors="skip", **QUIET)
    assert [f.index for f in result.failures] == rows
    assert {f.path for f in result.failures} == {broken}
    assert len({f.reason for f in result.failures}) == 1
    assert result.n_selected == 5
    assert not result.selected[rows].any()
    assert sum(broken in message for message in caplog.messages) >= len(rows)
    with pytest.raises(ImageLoadError, match="image_loading_errors='skip'") as caught:
        downsample(table, 5, **QUIET)
    assert caught.value.path == broken


# ---------------------------------------------------------------- cache


def test_second_run_reads_boxes_and_whole_images_from_the_cache(
    coco: ItemTable, tmp_path: Path
) -> None:
    assert coco.whole_image.any() and not coco.whole_image.all()
    cache = tmp_path / "features cache.db"
    first = downsample(coco, 6, cache=cache, **QUIET)
    second = downsample(coco, 6, cache=cache, **QUIET)
    assert (first.n_cached, second.n_cached) == (0, len(coco))
    assert np.array_equal(first.features, second.features)
    assert second.selected_indices == first.selected_indices


def test_a_frame_is_stat_ed_once_for_all_its_boxes(md: ItemTable, tmp_path: Path) -> None:
    frames = Counter(md.frame)
    assert max(frames.values()) > 1  # frames with several boxes
    cache = tmp_path / "cache.db"
    downsample(md, 6, cache=cache, **QUIET)
    counts: Counter[str] = Counter()
    real = os.stat

    def counted(path: str, *args: Any, **kwargs: Any) -> os.stat_result:
        counts[os.path.abspath(str(path))] += 1
        return real(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "stat", counted)
        second = downsample(md, 6, cache=cache, **QUIET)
    assert second.n_cached == len(md)
    assert max(counts[os.path.abspath(frame)] for frame in frames) == 1


def test_whole_image_items_share_rows_with_a_folder_run(coco: ItemTable, tmp_path: Path) -> None:
    cache = tmp_path / "cache.db"
    whole = [coco.frame[i] for i in np.flatnonzero(coco.whole_image)]
    downsample(whole, 1, cache=cache, **QUIET)
    result = downsample(coco, 3, cache=cache, **QUIET)
    assert result.n_cached == len(whole)


def test_the_cache_tells_boxes_of_one_frame_apart(md: ItemTable, tmp_path: Path) -> None:
    _, frame_of = md.frames()
    frame = int(np.flatnonzero(np.bincount(frame_of) > 1)[0])
    rows = np.flatnonzero(frame_of == frame).tolist()
    jobs = [RegionPath(md.frame[r], tuple(md.box[r])) for r in rows] + [md.frame[rows[0]]]
    with open_cache(tmp_path / "c.db", hash_size=8) as cache:
        _, hit, token = cache.lookup(jobs)
        cache.store(jobs, np.arange(len(jobs)), extract_batch(jobs, 8), token)
    with open_cache(tmp_path / "c.db", hash_size=8) as cache:
        rows_found, hit, _ = cache.lookup(jobs)
    assert hit.all()
    assert np.array_equal(rows_found, extract_batch(jobs, 8).features)
    assert len(set(rows_found["dhash"].tolist())) == len(jobs)


# ---------------------------------------------------------------- executors


def test_same_selection_with_every_executor(md: ItemTable) -> None:
    picks = {
        executor: downsample(md, 6, executor=executor, **QUIET).selected_indices
        for executor in ("serial", "thread", "process")
    }
    for (_, a), (_, b) in itertools.pairwise(picks.items()):
        assert a == b
    features = [
        downsample(md, 6, executor=executor, **QUIET).features for executor in ("serial", "process")
    ]
    assert np.array_equal(*features)


# ---------------------------------------------------------------- sample_diverse


def test_sample_diverse_returns_the_kept_items(md: ItemTable) -> None:
    kept = sample_diverse(md, 4, show_progress=False, show_summary=False)
    indices = sample_diverse(md, 4, show_progress=False, show_summary=False, return_indices=True)
    assert isinstance(kept, ItemTable)
    assert isinstance(indices, list) and all(isinstance(i, int) for i in indices)
    assert indices == sorted(indices) and len(indices) == 4
    assert kept.frame == [md.frame[i] for i in indices]
    assert np.array_equal(kept.source, md.source[indices])
    assert indices == downsample(md, 4, show_progress=False).selected_indices


def test_a_path_list_still_returns_paths(data: CameraTrapSet) -> None:
    paths = [str(frame.path) for frame in data.frames]
    kept = sample_diverse(paths, 3, show_progress=False, show_summary=False)
    assert isinstance(kept, list) and all(isinstance(p, str) for p in kept)
    assert downsample(paths, 3, show_progress=False).items is None


def test_box_size_is_measured_in_the_upright_frame(data: CameraTrapSet, md: ItemTable) -> None:
    rotated = {os.path.abspath(f.path): f.size for f in data.frames if f.orientation == 6}
    rows = [i for i, frame in enumerate(md.frame) if os.path.abspath(frame) in rotated]
    assert rows, "the set has a frame stored rotated (EXIF orientation 6)"
    result = downsample(md.take(rows), 1, **QUIET)
    for k, row in enumerate(rows):
        upright_w, upright_h = rotated[os.path.abspath(md.frame[row])]
        assert upright_w < upright_h  # shown as portrait, stored as landscape
        w, h = md.box[row][2:]
        assert result.features["width"][k] == round(w * upright_w)
        assert result.features["height"][k] == round(h * upright_h)


@pytest.mark.timeout(120)
def test_same_selection_on_a_dask_cluster(md: ItemTable) -> None:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=True, dashboard_address=":0"
    )
    with cluster, distributed.Client(cluster, set_as_default=False) as client:
        on_dask = downsample(md, 6, backend="dask", client=client, show_progress=False)
    serial = downsample(md, 6, executor="serial", **QUIET)
    assert on_dask.selected_indices == serial.selected_indices
    assert np.array_equal(on_dask.features, serial.features)


@pytest.mark.parametrize("size", [1, 2, 3, 8])
def test_batches_never_split_the_boxes_of_a_frame(md: ItemTable, size: int) -> None:
    jobs = prepare_items(md).sorted_absolute
    batches = list(iter_batches(np.arange(len(jobs), dtype=np.int64), size, jobs))
    assert np.array_equal(np.concatenate(batches), np.arange(len(jobs)))
    where = {}
    for number, batch in enumerate(batches):
        for index in batch.tolist():
            assert where.setdefault(str(jobs[index]), number) == number
    assert len({str(job) for job in jobs}) < len(jobs)  # some frame has two boxes


def test_frames_without_times_get_units_from_looks_not_one_each(tmp_path: Path) -> None:
    """Crops of some cameras carry no EXIF: their bursts are found by looks, so a target
    below the number of bursts never keeps two detections of one burst."""
    import json as json_module

    from smartdownsample.synthetic import make_dataset, megadetector_document

    data = make_dataset(tmp_path / "set", 160, seed=4)
    document = megadetector_document(data, tmp_path / "set")
    results = tmp_path / "set" / "detections.json"
    results.write_text(json_module.dumps(document), encoding="utf-8")
    table = read_detections(results)
    burst_of = {os.path.abspath(image.path): image.burst_id for image in data.images}
    n_bursts = len(set(burst_of[os.path.abspath(f)] for f in table.frame))
    for target in (n_bursts // 2, n_bursts - 2):
        result = downsample(table, target, show_progress=False)
        kept = [burst_of[os.path.abspath(result.paths[i])] for i in np.flatnonzero(result.selected)]
        assert len(kept) == target
        assert len(set(kept)) == len(kept), "two detections of one burst were kept"
