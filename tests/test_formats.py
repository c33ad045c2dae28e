"""Camera-trap formats: MegaDetector and COCO Camera Traps readers, writers, sequences, crops.

Everything runs on real files: JPEG frames painted with "animals" at known
boxes and the JSON files written by :mod:`detections`.
"""

from __future__ import annotations

import calendar
import copy
import dataclasses
import doctest
import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image, ImageOps

from detections import CLASSES, SPECIES_COLOUR, CameraTrapSet, make_camera_trap_set
from smartdownsample import InvalidArgumentError, SmartDownsampleError
from smartdownsample.formats import (
    DetectionFileError,
    ItemTable,
    crop_file_name,
    crop_item,
    load_document,
    read_coco,
    read_detections,
    read_megadetector,
    sequence_ids,
    write_coco,
    write_detections,
    write_megadetector,
)
from smartdownsample.loading import decode_file
from unprivileged import run_python_unprivileged

ALL_MD = {"min_conf": 0.0, "categories": ("animal", "person")}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> CameraTrapSet:
    return make_camera_trap_set(tmp_path_factory.mktemp("formats"))


# ---------------------------------------------------------------- helpers


def rows(table: ItemTable, *, source: bool = True) -> list[tuple[Any, ...]]:
    """Comparable rows (NaN as None, boxes rounded to 1e-9)."""

    def clean(value: float) -> float | None:
        return None if math.isnan(value) else round(value, 9)

    out = []
    for i in range(len(table)):
        row: tuple[Any, ...] = (
            table.frame[i],
            tuple(clean(v) for v in table.box[i].tolist()),
            clean(float(table.confidence[i])),
            table.category[i],
            table.label[i],
            table.sequence[i],
            table.location[i],
            clean(float(table.time[i])),
        )
        out.append((*row, tuple(table.source[i].tolist())) if source else row)
    return out


def md_index(data: CameraTrapSet) -> dict[str, int]:
    return {entry["file"]: i for i, entry in enumerate(data.megadetector_document["images"])}


def expected_md(
    data: CameraTrapSet,
    min_conf: float = 0.2,
    categories: tuple[str, ...] = ("animal",),
    min_class_conf: float = 0.5,
) -> list[tuple[Any, ...]]:
    index = md_index(data)
    out = []
    for frame in data.frames:
        for j, box in enumerate(frame.boxes):
            if box.conf < min_conf or box.category not in categories:
                continue
            label = "unclassified"
            if box.classifications:
                class_id, score = box.classifications[0]
                if score >= min_class_conf:
                    label = CLASSES[int(class_id)]
            out.append(
                (
                    str(frame.path),
                    tuple(round(v, 9) for v in box.bbox),
                    box.conf,
                    box.category,
                    label,
                    None,
                    None,
                    None,
                    (index[frame.name], j),
                )
            )
    return out


def posix(moment: Any) -> float:
    return float(calendar.timegm(moment.timetuple()))


def expected_coco(
    data: CameraTrapSet, exclude: tuple[str, ...] = ("empty",)
) -> list[tuple[Any, ...]]:
    annotations = data.coco_document["annotations"]
    boxed = {
        (ann["image_id"], tuple(ann["bbox"])): a
        for a, ann in enumerate(annotations)
        if "bbox" in ann
    }
    out = []
    for i, frame in enumerate(data.frames):
        meta = (frame.sequence, frame.camera, posix(frame.time))
        true_boxes = [box for box in frame.boxes if box.true]
        label = frame.whole_image_label or (None if true_boxes else "empty")
        if label is not None:
            if label not in exclude:
                out.append((str(frame.path), (None,) * 4, None, label, label, *meta, (i, -1)))
            continue
        width, height = frame.size
        for box in true_boxes:
            if box.species in exclude:
                continue
            x, y, w, h = box.pixel
            norm = tuple(round(v, 9) for v in (x / width, y / height, w / width, h / height))
            name = box.species or ""
            a = boxed[(f"img{i}", box.pixel)]
            out.append((str(frame.path), norm, None, name, name, *meta, (i, a)))
    return out


def partition(ids: Any) -> set[frozenset[int]]:
    groups: dict[Any, set[int]] = {}
    for row, key in enumerate(ids):
        groups.setdefault(key, set()).add(row)
    return {frozenset(group) for group in groups.values()}


def write(path: Path, document: Any) -> Path:
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


# ---------------------------------------------------------------- MegaDetector


def test_megadetector_reads_every_field_as_the_format_means_it(data: CameraTrapSet) -> None:
    table = read_megadetector(data.megadetector, **ALL_MD)  # type: ignore[arg-type]
    assert rows(table) == expected_md(data, 0.0, ("animal", "person"))
    assert table.problems == ()
    # the failed image holds no item; frames are absolute paths under the JSON's folder
    assert all(os.path.isabs(frame) and os.path.exists(frame) for frame in table.frame)
    assert not any(frame.endswith("IMG_9999.JPG") for frame in table.frame)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"min_conf": 0.0},
        {"min_conf": 0.9},
        {"categories": ("person",)},
        {"categories": "person"},
        {"categories": ("animal", "person"), "min_conf": 0.5},
        {"min_class_conf": 0.95},
        {"min_class_conf": 0.35},
    ],
    ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "defaults",
)
def test_megadetector_filters(data: CameraTrapSet, options: dict[str, Any]) -> None:
    table = read_megadetector(data.megadetector, **options)
    categories = options.get("categories", ("animal",))
    categories = (categories,) if isinstance(categories, str) else categories
    expected = expected_md(
        data, options.get("min_conf", 0.2), categories, options.get("min_class_conf", 0.5)
    )
    assert rows(table) == expected
    assert expected  # every filter keeps something in this set


def test_megadetector_defaults_drop_false_boxes_and_people(data: CameraTrapSet) -> None:
    table = read_megadetector(data.megadetector)
    n_true_animals = sum(
        box.true and box.category == "animal" for frame in data.frames for box in frame.boxes
    )
    assert len(table) == n_true_animals
    assert set(table.category) == {"animal"}
    assert "unclassified" in table.label  # the weak classification (0.4 < 0.5)


def test_image_root_resolves_relative_names(data: CameraTrapSet, tmp_path: Path) -> None:
    moved = write(tmp_path / "elsewhere.json", data.megadetector_document)
    table = read_megadetector(moved, image_root=data.root)
    assert rows(table) == expected_md(data)
    default = read_megadetector(moved)  # relative to the JSON's own folder
    assert all(frame.startswith(str(tmp_path)) for frame in default.frame)


def test_megadetector_backslash_names(data: CameraTrapSet, tmp_path: Path) -> None:
    document = copy.deepcopy(data.megadetector_document)
    for entry in document["images"]:
        entry["file"] = entry["file"].replace("/", "\\")
    table = read_megadetector(write(tmp_path / "win.json", document), image_root=data.root)
    assert rows(table) == expected_md(data)


def test_megadetector_rounding_outside_the_frame_is_clamped_not_refused(tmp_path: Path) -> None:
    # MegaDetector rounds to 4 decimals: x + w may exceed 1 by about 1e-4
    document = md_document({**MD_GOOD, "bbox": [0.9, 0.1, 0.10005, 0.2]})
    table = read_megadetector(write(tmp_path / "md.json", document))
    assert table.box[0].tolist() == pytest.approx([0.9, 0.1, 0.1, 0.2])
    assert table.box.max() <= 1 and (table.box[:, 0] + table.box[:, 2]).max() <= 1


def test_megadetector_reading_never_opens_frames(tmp_path: Path) -> None:
    table = read_megadetector(write(tmp_path / "md.json", md_document(MD_GOOD)))
    assert len(table) == 2 and not os.path.exists(table.frame[0])


# ---------------------------------------------------------------- COCO Camera Traps


def test_coco_reads_every_field_as_the_format_means_it(data: CameraTrapSet) -> None:
    table = read_coco(data.coco)
    assert rows(table) == expected_coco(data)
    # the rotated frame has no size in the JSON: read from the header, turned by EXIF
    rotated = [frame for frame in data.frames if frame.orientation != 1]
    assert rotated and "width" not in data.coco_document["images"][data.frames.index(rotated[0])]
    assert str(rotated[0].path) in table.frame
    assert table.whole_image.sum() == sum(f.whole_image_label is not None for f in data.frames)


@pytest.mark.parametrize(
    "exclude", [(), ("empty",), ("EMPTY",), ("empty", "person"), "person"], ids=str
)
def test_coco_exclude_categories(data: CameraTrapSet, exclude: Any) -> None:
    table = read_coco(data.coco, exclude_categories=exclude)
    names = (exclude,) if isinstance(exclude, str) else exclude
    assert rows(table) == expected_coco(data, tuple(name.lower() for name in names))


def test_coco_image_with_several_boxless_annotations_is_one_item(tmp_path: Path) -> None:
    document = {
        "images": [{"id": 7, "file_name": "a.jpg"}],
        "annotations": [
            {"id": 1, "image_id": 7, "category_id": 2},
            {"id": 2, "image_id": 7, "category_id": 2},
        ],
        "categories": [{"id": 2, "name": "deer"}],
    }
    table = read_coco(write(tmp_path / "c.json", document))
    assert len(table) == 1 and table.source.tolist() == [[0, -1]] and table.label == ["deer"]


def test_coco_uses_the_json_size_without_opening_the_frame(tmp_path: Path) -> None:
    document = {
        "images": [{"id": 1, "file_name": "never written.jpg", "width": 200, "height": 100}],
        "annotations": [{"image_id": 1, "category_id": 1, "bbox": [20, 10, 50, 40], "score": 0.7}],
        "categories": [{"id": 1, "name": "fox"}],
    }
    table = read_coco(write(tmp_path / "c.json", document))
    assert table.box.tolist() == [[0.1, 0.1, 0.25, 0.4]]
    assert table.confidence.tolist() == [0.7]


def test_coco_box_half_a_pixel_outside_is_clamped(tmp_path: Path) -> None:
    document = coco_document({"image_id": 1, "category_id": 1, "bbox": [600.5, 10, 40, 20]})
    table = read_coco(write(tmp_path / "c.json", document))
    assert table.box[0].tolist() == pytest.approx([600.5 / 640, 10 / 480, 39.5 / 640, 20 / 480])


# ---------------------------------------------------------------- recognition by content


def test_read_detections_recognises_the_format_by_content(
    data: CameraTrapSet, tmp_path: Path
) -> None:
    # misleading names: the COCO file is called like MegaDetector output and vice versa
    md = write(tmp_path / "coco.json", data.megadetector_document)
    coco = write(tmp_path / "md_results.txt", data.coco_document)
    assert rows(read_detections(md, image_root=data.root)) == expected_md(data)
    assert rows(read_detections(coco, image_root=data.root)) == expected_coco(data)
    assert rows(read_detections(md, image_root=data.root, min_conf=0.0)) == expected_md(data, 0.0)


def test_read_detections_refuses_options_of_the_other_format(data: CameraTrapSet) -> None:
    with pytest.raises(InvalidArgumentError, match=r"COCO Camera Traps.*min_conf"):
        read_detections(data.coco, min_conf=0.5)
    with pytest.raises(InvalidArgumentError, match="exclude_categories"):
        read_detections(data.megadetector, exclude_categories=("empty",))
    with pytest.raises(InvalidArgumentError, match="unknown"):
        read_detections(data.megadetector, min_confidence=0.5)


def test_import_smartdownsample_does_not_import_formats() -> None:
    code = "import smartdownsample, sys; print('smartdownsample.formats' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.strip() == "False"


# ---------------------------------------------------------------- sequences


def test_sequences_from_seq_id(data: CameraTrapSet) -> None:
    table = read_coco(data.coco)
    truth = [data.frames[i].sequence for i in table.source[:, 0].tolist()]
    assert partition(sequence_ids(table).tolist()) == partition(truth)


@pytest.mark.parametrize("keep_location", [True, False], ids=["location", "folder"])
def test_sequences_from_location_or_folder_and_datetime(
    data: CameraTrapSet, tmp_path: Path, keep_location: bool
) -> None:
    document = copy.deepcopy(data.coco_document)
    for image in document["images"]:
        del image["seq_id"]
        if not keep_location:
            del image["location"]
    table = read_coco(write(tmp_path / "c.json", document), image_root=data.root)
    assert all(sequence is None for sequence in table.sequence)
    truth = [data.frames[i].sequence for i in table.source[:, 0].tolist()]
    ids = sequence_ids(table)
    # cameras share one clock: only location (or folder) keeps their sequences apart
    assert partition(ids.tolist()) == partition(truth)
    assert len(set(sequence_ids(table, gap=0.5).tolist())) == len(set(table.frame))


def test_sequences_without_time_are_frames(data: CameraTrapSet) -> None:
    table = read_megadetector(data.megadetector, **ALL_MD)  # type: ignore[arg-type]
    assert np.isnan(table.time).all()
    ids = sequence_ids(table)
    assert partition(ids.tolist()) == partition(table.frame)
    two = [frame for frame in data.frames if sum(b.true for b in frame.boxes) == 2]
    assert two  # frames with two animals: both boxes in the frame's one sequence
    rows_of = [i for i, frame in enumerate(table.frame) if frame == str(two[0].path)]
    assert len(rows_of) >= 2 and len(set(ids[rows_of].tolist())) == 1


def test_sequences_from_exif_times_and_folders(data: CameraTrapSet) -> None:
    """MegaDetector files carry no times: the frames' EXIF capture times (as the
    loader reads them) and camera folders give the true sequences."""
    table = read_megadetector(data.megadetector, **ALL_MD)  # type: ignore[arg-type]
    frames, row_frame = table.frames()
    times = np.array([decode_file(frame, 8).capture_time for frame in frames])
    timed = dataclasses.replace(table, time=times[row_frame])
    truth = [data.frames[i].sequence for i in _frame_positions(data, timed)]
    assert partition(sequence_ids(timed).tolist()) == partition(truth)


def _frame_positions(data: CameraTrapSet, table: ItemTable) -> list[int]:
    position = {str(frame.path): i for i, frame in enumerate(data.frames)}
    return [position[frame] for frame in table.frame]


def test_sequence_gap_is_inclusive_as_in_megadetector() -> None:
    """Frames exactly ``gap`` apart chain (MegaDetector starts a new sequence only
    when the difference is larger); the chain follows consecutive frames."""
    times = [0.0, 60.0, 120.0, 180.5, 1000.0]
    table = ItemTable.from_rows(
        [
            (f"/c/{i}.jpg", None, None, "animal", "deer", None, "cam", t, (i, 0))
            for i, t in enumerate(times)
        ]
    )
    assert sequence_ids(table).tolist() == [0, 0, 0, 1, 2]
    assert sequence_ids(table, gap=120.5).tolist() == [0, 0, 0, 0, 1]


def test_sequence_ids_are_numbered_by_first_appearance(data: CameraTrapSet) -> None:
    ids = sequence_ids(read_coco(data.coco)).tolist()
    first_seen = list(dict.fromkeys(ids))
    assert first_seen == list(range(len(first_seen)))


# ---------------------------------------------------------------- writers


def filtered_md(document: dict[str, Any], pairs: set[tuple[int, int]]) -> dict[str, Any]:
    expected = copy.deepcopy(document)
    images = []
    for i, entry in enumerate(document["images"]):
        kept = [d for j, d in enumerate(entry["detections"] or []) if (i, j) in pairs]
        if kept:
            images.append({**copy.deepcopy(entry), "detections": kept})
    expected["images"] = images
    return expected


def filtered_coco(document: dict[str, Any], pairs: set[tuple[int, int]]) -> dict[str, Any]:
    expected = copy.deepcopy(document)
    images = {i for i, _ in pairs}
    whole = {document["images"][i]["id"] for i, a in pairs if a == -1}
    expected["images"] = [e for i, e in enumerate(document["images"]) if i in images]
    expected["annotations"] = [
        ann
        for a, ann in enumerate(document["annotations"])
        if any(p == a for _, p in pairs) or ("bbox" not in ann and ann["image_id"] in whole)
    ]
    return expected


def test_write_megadetector_keeps_exactly_the_kept_items(
    data: CameraTrapSet, tmp_path: Path
) -> None:
    table = read_megadetector(data.megadetector, **ALL_MD)  # type: ignore[arg-type]
    kept = table.take(np.arange(0, len(table), 3))
    before = copy.deepcopy(data.megadetector_document)
    target = tmp_path / "out dir" / "kept.json"
    write_megadetector(target, data.megadetector_document, kept)
    written = json.loads(target.read_text(encoding="utf-8"))
    pairs = {tuple(pair) for pair in kept.source.tolist()}
    assert written == filtered_md(before, pairs)  # type: ignore[arg-type]
    assert list(written) == list(before)  # same top-level fields, same order
    assert data.megadetector_document == before  # the input document is not modified
    again = read_megadetector(target, image_root=data.root, **ALL_MD)  # type: ignore[arg-type]
    assert rows(again, source=False) == rows(kept, source=False)
    assert not [name for name in os.listdir(target.parent) if name != "kept.json"]


def test_write_coco_keeps_exactly_the_kept_items(data: CameraTrapSet, tmp_path: Path) -> None:
    table = read_coco(data.coco)
    kept = table.take(np.arange(1, len(table), 2))
    assert kept.whole_image.any()
    target = tmp_path / "kept.json"
    write_coco(target, data.coco_document, kept)
    written = json.loads(target.read_text(encoding="utf-8"))
    pairs = {tuple(pair) for pair in kept.source.tolist()}
    assert written == filtered_coco(data.coco_document, pairs)  # type: ignore[arg-type]
    again = read_coco(target, image_root=data.root)
    assert rows(again, source=False) == rows(kept, source=False)


def test_write_detections_picks_the_writer_by_content(data: CameraTrapSet, tmp_path: Path) -> None:
    table = read_coco(data.coco)
    write_detections(tmp_path / "a.json", data.coco_document, table.take([0]))
    assert len(json.loads((tmp_path / "a.json").read_text())["images"]) == 1
    with pytest.raises(InvalidArgumentError):
        write_detections(tmp_path / "b.json", {"x": 1}, table.take([0]))
    with pytest.raises(InvalidArgumentError, match="another file"):
        write_megadetector(tmp_path / "c.json", data.megadetector_document, [[0, 99]])


@given(mask=st.lists(st.booleans(), min_size=64, max_size=64), coco=st.booleans())
def test_write_then_read_round_trips(data: CameraTrapSet, mask: list[bool], coco: bool) -> None:
    if coco:
        table, document, writer = read_coco(data.coco), data.coco_document, write_coco
    else:
        table = read_megadetector(data.megadetector, **ALL_MD)  # type: ignore[arg-type]
        document, writer = data.megadetector_document, write_megadetector
    kept = table.take(np.flatnonzero(mask[: len(table)]))
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "kept.json"
        writer(target, document, kept)
        options: dict[str, Any] = {} if coco else ALL_MD
        again = read_detections(target, image_root=data.root, **options)
    assert rows(again, source=False) == rows(kept, source=False)


# ---------------------------------------------------------------- crops


def oriented(path: Path) -> Image.Image:
    with Image.open(path) as image:
        return ImageOps.exif_transpose(image).convert("RGB")


@pytest.mark.parametrize("fmt", ["megadetector", "coco"])
def test_crops_equal_the_box_cut_at_full_resolution(data: CameraTrapSet, fmt: str) -> None:
    table = (
        read_megadetector(data.megadetector, **ALL_MD)  # type: ignore[arg-type]
        if fmt == "megadetector"
        else read_coco(data.coco)
    )
    frames = {str(frame.path): frame for frame in data.frames}
    checked_rotated = False
    for i in range(len(table)):
        frame = frames[table.frame[i]]
        crop = crop_item(table.frame[i], table.box[i].tolist())
        full = oriented(frame.path)
        assert full.size == frame.size
        if table.whole_image[i]:
            assert np.array_equal(np.asarray(crop), np.asarray(full))
            continue
        box = frame.boxes[table.source[i, 1]] if fmt == "megadetector" else None
        if box is None:  # COCO: the annotation's box in pixels
            box = next(b for b in frame.boxes if b.true and list(b.pixel) == _bbox(data, table, i))
        x, y, w, h = box.pixel
        assert np.array_equal(np.asarray(crop), np.asarray(full.crop((x, y, x + w, y + h))))
        if box.true and box.species is not None:
            mean = np.asarray(crop, dtype=float).reshape(-1, 3).mean(axis=0)
            assert np.abs(mean - SPECIES_COLOUR[box.species]).max() < 8, (frame.name, mean)
            checked_rotated |= frame.orientation != 1
    assert checked_rotated  # the painted animal is found in the EXIF-rotated frame too


def _bbox(data: CameraTrapSet, table: ItemTable, i: int) -> list[int]:
    return list(data.coco_document["annotations"][table.source[i, 1]]["bbox"])


def test_crop_clamps_to_the_frame_and_is_at_least_one_pixel(data: CameraTrapSet) -> None:
    path = data.frames[0].path
    assert crop_item(path, [0.9, 0.9, 0.5, 0.5]).size == (64, 48)
    assert crop_item(path, [0.5, 0.5, 1e-6, 1e-6]).size == (1, 1)
    assert crop_item(path, [1.0, 1.0, 0.1, 0.1]).size == (1, 1)
    assert crop_item(path, [math.nan] * 4).size == (640, 480)


def test_crop_file_names_say_frame_and_index_and_are_unique(data: CameraTrapSet) -> None:
    table = read_megadetector(data.megadetector, **ALL_MD)  # type: ignore[arg-type]
    names = [
        crop_file_name(frame, int(index), root=data.root)
        for frame, index in zip(table.frame, table.source[:, 1].tolist(), strict=True)
    ]
    assert len(set(names)) == len(names)
    # the same file name in two camera folders gives two crop names
    same = [n for n in names if os.path.basename(n) == "IMG_0001.JPG_det0.jpg"]
    assert len(same) >= 2 and len(set(same)) == len(same)
    assert crop_file_name(data.frames[0].path, 0) == "IMG_0001.JPG_det0.jpg"
    assert crop_file_name("/x/a.jpg", 0) != crop_file_name("/x/a.png", 0)
    assert crop_file_name("/x/a.jpg", -1) == "a.jpg_image.jpg"
    with pytest.raises(InvalidArgumentError):
        crop_file_name("/x/a.jpg", 0, root="/y")


# ---------------------------------------------------------------- bad input


MD_GOOD = {"category": "1", "conf": 0.9, "bbox": [0.1, 0.1, 0.2, 0.2]}


def md_document(detection: Any) -> dict[str, Any]:
    return {
        "info": {"format_version": "1.4"},
        "detection_categories": {"1": "animal"},
        "classification_categories": {"0": "deer"},
        "images": [{"file": "cam1/a.jpg", "detections": [detection, MD_GOOD]}],
    }


def coco_document(annotation: Any, image: dict[str, Any] | None = None) -> dict[str, Any]:
    entry = image or {"id": 1, "file_name": "cam1/a.jpg", "width": 640, "height": 480}
    return {
        "images": [entry],
        "annotations": [annotation, {"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}],
        "categories": [{"id": 1, "name": "deer"}],
    }


ITEM_CASES: dict[str, tuple[Any, str]] = {
    "no-conf": (md_document({"category": "1", "bbox": [0.1, 0.1, 0.2, 0.2]}), "detections[0].conf"),
    "text-conf": (md_document({**MD_GOOD, "conf": "0.9"}), "detections[0].conf"),
    "nan-conf": (md_document({**MD_GOOD, "conf": float("nan")}), "detections[0].conf"),
    "conf-above-1": (md_document({**MD_GOOD, "conf": 1.5}), "detections[0].conf"),
    "box-outside": (md_document({**MD_GOOD, "bbox": [0.8, 0.1, 0.5, 0.2]}), "detections[0].bbox"),
    "box-zero": (md_document({**MD_GOOD, "bbox": [0.1, 0.1, 0.0, 0.2]}), "detections[0].bbox"),
    "box-text": (md_document({**MD_GOOD, "bbox": [0.1, "a", 0.2, 0.2]}), "detections[0].bbox[1]"),
    "box-short": (md_document({**MD_GOOD, "bbox": [0.1, 0.1]}), "detections[0].bbox"),
    "box-missing": (md_document({"category": "1", "conf": 0.9}), "detections[0].bbox"),
    "class-unknown": (
        md_document({**MD_GOOD, "classifications": [["7", 0.9]]}),
        "detections[0].classifications",
    ),
    "class-score-text": (
        md_document({**MD_GOOD, "classifications": [["0", "high"]]}),
        "detections[0].classifications[0][1]",
    ),
    "coco-box-outside": (
        coco_document({"image_id": 1, "category_id": 1, "bbox": [600, 10, 100, 50]}),
        "annotations[0].bbox",
    ),
    "coco-box-zero": (
        coco_document({"image_id": 1, "category_id": 1, "bbox": [10, 10, 0, 5]}),
        "annotations[0].bbox",
    ),
    "coco-box-text": (
        coco_document({"image_id": 1, "category_id": 1, "bbox": [10, 10, "5", 5]}),
        "annotations[0].bbox[2]",
    ),
    "coco-unknown-category": (
        coco_document({"image_id": 1, "category_id": 9, "bbox": [10, 10, 5, 5]}),
        "annotations[0].category_id",
    ),
    "coco-score-text": (
        coco_document({"image_id": 1, "category_id": 1, "bbox": [10, 10, 5, 5], "score": "x"}),
        "annotations[0].score",
    ),
}


@pytest.mark.parametrize("case", sorted(ITEM_CASES))
def test_bad_item_is_one_line_naming_file_image_and_field(tmp_path: Path, case: str) -> None:
    document, field = ITEM_CASES[case]
    path = write(tmp_path / "bad input.json", document)
    with pytest.raises(DetectionFileError) as caught:
        read_detections(path)
    message = str(caught.value)
    assert "\n" not in message
    assert str(path) in message and "'cam1/a.jpg'" in message and f"'{field}'" in message
    assert "on_error='skip'" in message  # says how to go on
    assert caught.value.image == "cam1/a.jpg" and caught.value.field == field


@pytest.mark.parametrize("case", sorted(ITEM_CASES))
def test_bad_item_is_skipped_and_reported_with_on_error_skip(tmp_path: Path, case: str) -> None:
    document, field = ITEM_CASES[case]
    path = write(tmp_path / "bad.json", document)
    table = read_detections(path, on_error="skip")
    assert len(table) == 1  # the good item is still read
    assert len(table.problems) == 1
    file, image, reason = table.problems[0]
    assert (file, image) == (str(path), "cam1/a.jpg") and field in reason


@pytest.mark.parametrize(
    ("kind", "field"),
    [("missing", "file_name"), ("text", "file_name"), ("width-text", "width")],
)
def test_bad_frame_size(tmp_path: Path, kind: str, field: str) -> None:
    (tmp_path / "cam1").mkdir()
    image: dict[str, Any] = {"id": 1, "file_name": "cam1/a.jpg"}
    if kind == "text":
        (tmp_path / "cam1" / "a.jpg").write_text("not an image")
    if kind == "width-text":
        image.update(width="640", height=480)
    document = coco_document({"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}, image)
    path = write(tmp_path / "c.json", document)
    with pytest.raises(DetectionFileError) as caught:
        read_coco(path)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "'cam1/a.jpg'" in message
    assert f"'{field}'" in message
    assert read_coco(path, on_error="skip").problems[0].image == "cam1/a.jpg"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"foo": 1}', "neither MegaDetector output nor COCO Camera Traps"),
        ("[1, 2, 3]", "neither MegaDetector output nor COCO Camera Traps"),
        ('{"images": [{"path": "a.jpg"}]}', "neither MegaDetector output nor COCO Camera Traps"),
        ('{"images": [', "not valid JSON"),
        ("", "not valid JSON"),
        (b"\xff\xfe\x00garbage", "not valid JSON"),
        (None, "does not exist"),
    ],
    ids=["object", "list", "other-images", "cut", "empty", "binary", "missing"],
)
def test_bad_document_is_one_line_naming_the_file(
    tmp_path: Path, content: str | bytes | None, expected: str
) -> None:
    path = tmp_path / "some file.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content is not None:
        path.write_text(content)
    for on_error in ("raise", "skip"):  # nothing to skip: the file itself is unusable
        with pytest.raises(DetectionFileError) as caught:
            read_detections(path, on_error=on_error)
        message = str(caught.value)
        assert "\n" not in message and str(path) in message and expected in message
        assert isinstance(caught.value, SmartDownsampleError)


def test_wrong_reader_names_the_format_expected(data: CameraTrapSet) -> None:
    with pytest.raises(DetectionFileError, match="not COCO Camera Traps"):
        read_coco(data.megadetector)
    with pytest.raises(DetectionFileError, match="not MegaDetector batch output"):
        read_megadetector(data.coco)


def test_crop_of_a_missing_or_broken_frame(tmp_path: Path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    for frame in (tmp_path / "gone.jpg", broken):
        with pytest.raises(DetectionFileError) as caught:
            crop_item(frame, [0.1, 0.1, 0.2, 0.2], source="md.json", image="cam1/x.jpg")
        message = str(caught.value)
        assert "\n" not in message and "'md.json'" in message and "'cam1/x.jpg'" in message
        assert str(frame) in message


def test_one_bad_image_entry_does_not_hide_the_format(tmp_path: Path) -> None:
    md = md_document(MD_GOOD)
    md["images"].insert(0, {"path": "x.jpg", "detections": []})
    coco = coco_document({"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]})
    coco["images"].insert(0, {"id": 2, "name": "x.jpg"})
    for name, document, field in (("md.json", md, "file"), ("c.json", coco, "file_name")):
        path = write(tmp_path / name, document)
        with pytest.raises(DetectionFileError, match=rf"'images\[0\]', field '{field}'"):
            read_detections(path)
        assert len(read_detections(path, on_error="skip").problems) == 1


def test_unparseable_datetime_is_an_unknown_time(tmp_path: Path) -> None:
    image = {"id": 1, "file_name": "a.jpg", "width": 640, "height": 480, "datetime": "unknown"}
    document = coco_document({"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]}, image)
    table = read_coco(write(tmp_path / "c.json", document))
    assert np.isnan(table.time).all()


def test_permission_denied_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "cam1").mkdir()
    frame = tmp_path / "cam1" / "a.jpg"
    Image.new("RGB", (64, 48), (10, 20, 30)).save(frame)
    document = coco_document(
        {"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
        {"id": 1, "file_name": "cam1/a.jpg"},  # no size: the frame must be opened
    )
    coco = write(tmp_path / "c.json", document)
    locked = write(tmp_path / "locked.json", document)
    frame.chmod(0)
    locked.chmod(0)
    code = (
        "import sys\n"
        "from smartdownsample.formats import DetectionFileError, crop_item, read_coco\n"
        "calls = [lambda: read_coco(sys.argv[1]), lambda: read_coco(sys.argv[2]),\n"
        "         lambda: crop_item(sys.argv[3], [0, 0, 0.5, 0.5], source='c.json')]\n"
        "for call in calls:\n"
        "    try:\n"
        "        call()\n"
        "    except DetectionFileError as exc:\n"
        "        print(exc)\n"
    )
    result = run_python_unprivileged(code, str(coco), str(locked), str(frame))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 3, result.stdout
    assert "'cam1/a.jpg', field 'file_name'" in lines[0] and "ermission denied" in lines[0]
    assert str(locked) in lines[1] and "ermission denied" in lines[1]
    assert "'c.json'" in lines[2] and "ermission denied" in lines[2]


def test_bad_parameters_are_refused(data: CameraTrapSet) -> None:
    with pytest.raises(InvalidArgumentError, match="min_conf"):
        read_megadetector(data.megadetector, min_conf=2)
    with pytest.raises(InvalidArgumentError, match="on_error"):
        read_coco(data.coco, on_error="ignore")
    with pytest.raises(InvalidArgumentError):
        ItemTable.from_rows([]).take([0])  # an index outside the table


def test_load_document_reads_nan_as_python_writes_it(tmp_path: Path) -> None:
    path = tmp_path / "nan.json"
    path.write_text('{"x": NaN}')
    assert math.isnan(load_document(path)["x"])


def test_doctests_of_the_formats_package() -> None:
    import smartdownsample._exceptions
    import smartdownsample.formats
    import smartdownsample.formats._common
    import smartdownsample.formats.coco
    import smartdownsample.formats.crops
    import smartdownsample.formats.items
    import smartdownsample.formats.megadetector

    modules = [
        smartdownsample._exceptions,
        smartdownsample.formats,
        smartdownsample.formats._common,
        smartdownsample.formats.coco,
        smartdownsample.formats.crops,
        smartdownsample.formats.items,
        smartdownsample.formats.megadetector,
    ]
    for module in modules:
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
