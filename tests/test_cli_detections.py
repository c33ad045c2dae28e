"""The command on detector output: select and balance a MegaDetector or COCO Camera Traps file.

Every test calls ``main(argv)`` on real files: the JPEG frames and both JSON
files of :mod:`detections`, written once per module, and JSON files made
from them in ``tmp_path``.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import os
import re
import resource
import signal
import stat
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from detections import CameraTrapSet, make_camera_trap_set
from smartdownsample.cli import main
from smartdownsample.formats import crop_file_name, crop_item, read_coco, read_megadetector
from smartdownsample.listing import is_image_name
from smartdownsample.outputs import RECORD_NAME, TEMP_PREFIX

QUIET = ("--no-progress", "--no-cache", "-q")

CROP_TOLERANCE = 3.0
"""Mean absolute difference (0..255) allowed between a crop file and ``crop_item``:
the crop is saved as JPEG (quality 95), which changes pixels a little."""


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> CameraTrapSet:
    return make_camera_trap_set(tmp_path_factory.mktemp("detections cli"))


def run(capsys: pytest.CaptureFixture[str], *args: str | os.PathLike[str]) -> tuple[int, str, str]:
    code = main([os.fspath(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("smartdownsample: error: "), err
    assert "Traceback" not in err
    return lines[0]


def input_detections(data: CameraTrapSet) -> dict[str, list[dict[str, Any]]]:
    return {
        entry["file"]: entry["detections"]
        for entry in data.megadetector_document["images"]
        if entry.get("detections")
    }


# ---------------------------------------------------------------- select


def test_select_megadetector_keeps_exactly_n_input_detections(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kept.json"
    code, stdout, err = run(
        capsys,
        "select", data.megadetector, "--image-root", data.root, "--target", "7",
        "--out-json", out, *QUIET,
    )  # fmt: skip
    assert code == 0, err
    assert stdout == ""  # --out-json records the selection: no paths on stdout
    kept = json.loads(out.read_text(encoding="utf-8"))
    document = data.megadetector_document
    for key in ("info", "detection_categories", "classification_categories"):
        assert kept[key] == document[key]
    given = input_detections(data)
    detections = [(e["file"], d) for e in kept["images"] for d in e["detections"]]
    assert len(detections) == 7
    assert all(entry["detections"] for entry in kept["images"])  # no empty image kept
    for name, detection in detections:
        assert detection in given[name]  # same box, confidence, classifications
        assert detection["conf"] >= 0.2
        assert document["detection_categories"][detection["category"]] == "animal"
    assert data.failed_image not in {entry["file"] for entry in kept["images"]}


def test_select_megadetector_flags_choose_the_items(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kept.json"
    items = read_megadetector(data.megadetector, min_conf=0.05, categories=("animal", "person"))
    code, _, err = run(
        capsys,
        "select", data.megadetector, "--target", str(len(items)), "--min-conf", "0.05",
        "--category", "animal", "--category", "person", "--out-json", out, *QUIET,
    )  # fmt: skip
    assert code == 0, err
    kept = json.loads(out.read_text(encoding="utf-8"))
    confs = sorted(d["conf"] for e in kept["images"] for d in e["detections"])
    assert len(confs) == len(items)
    assert min(confs) < 0.2  # the false boxes above 0.05 are items now
    categories = {d["category"] for e in kept["images"] for d in e["detections"]}
    assert categories == {"1", "2"}


def test_select_coco_keeps_exactly_n_input_annotations(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "kept.json"
    code, _, err = run(
        capsys,
        "select", data.coco, "--image-root", data.root, "--target", "6", "--out-json", out,
        *QUIET,
    )  # fmt: skip
    assert code == 0, err
    kept = json.loads(out.read_text(encoding="utf-8"))
    document = data.coco_document
    assert kept["info"] == document["info"]
    assert kept["categories"] == document["categories"]
    for annotation in kept["annotations"]:
        assert annotation in document["annotations"]
        assert annotation["category_id"] != 0  # "empty" is excluded by default
    for image in kept["images"]:
        assert image in document["images"]
    kept_ids = {image["id"] for image in kept["images"]}
    assert kept_ids == {annotation["image_id"] for annotation in kept["annotations"]}
    items = read_coco(out, image_root=data.root)
    assert len(items) == 6


def test_select_manifest_has_one_row_per_item(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    manifest = tmp_path / "items.csv"
    report = tmp_path / "report.json"
    code, _, err = run(
        capsys,
        "select", data.megadetector, "--target", "4", "--manifest", manifest,
        "--report", report, *QUIET,
    )  # fmt: skip
    assert code == 0, err
    with manifest.open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    items = read_megadetector(data.megadetector)
    assert len(rows) == len(items)
    assert sum(row["kept"] == "True" for row in rows) == 4
    for column in ("frame", "detection", "box_x", "confidence", "label", "sequence"):
        assert column in rows[0]
    summary = json.loads(report.read_text(encoding="utf-8"))
    assert summary["n_selected"] == 4
    assert summary["detections"]["n_items"] == len(items)
    assert summary["outputs"]["manifest"] == str(manifest)


# ---------------------------------------------------------------- balance


def test_balance_caps_every_species_and_keeps_smaller_ones_whole(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "balanced.json"
    cap = 3
    code, _, err = run(
        capsys,
        "balance", data.megadetector, "--max-per-class", str(cap), "--out-json", out, *QUIET,
    )  # fmt: skip
    assert code == 0, err
    before = Counter(read_megadetector(data.megadetector).label)
    after = Counter(read_megadetector(out, image_root=data.root).label)
    assert max(before.values()) > cap and min(before.values()) < cap  # both kinds present
    assert after == {label: min(count, cap) for label, count in before.items()}
    given = input_detections(data)
    kept = json.loads(out.read_text(encoding="utf-8"))
    assert all(d in given[e["file"]] for e in kept["images"] for d in e["detections"])


def test_balance_of_detections_counts_items_not_images(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ("balance", data.megadetector, "--max-per-class", "3", "--no-progress", "--no-cache")
    code, out, err = run(capsys, *args, "--out", tmp_path / "kept.txt")
    assert code == 0, err
    table = out + err
    assert "at most 3 items per class" in table
    assert "items" in table.splitlines()[1] and "images" not in table.splitlines()[1]
    n_items = len(read_megadetector(data.megadetector))
    assert f" of {n_items:,} items in " in table
    code, out, err = run(capsys, *args, "--min-per-class", "3", "--out", tmp_path / "k2.txt")
    assert code == 0 and re.search(r"has only \d items?, fewer than --min-per-class 3", err)


def test_balance_coco_classes_are_category_names(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "balanced.json"
    code, _, err = run(
        capsys, "balance", data.coco, "--max-per-class", "2", "--out-json", out, *QUIET
    )
    assert code == 0, err
    before = Counter(read_coco(data.coco).label)
    after = Counter(read_coco(out, image_root=data.root).label)
    assert after == {label: min(count, 2) for label, count in before.items()}


# ---------------------------------------------------------------- crops


def test_crops_to_writes_the_kept_boxes(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    items = read_megadetector(data.megadetector)
    crops = tmp_path / "kept crops"
    out = tmp_path / "kept.json"
    code, _, err = run(
        capsys,
        "select", data.megadetector, "--target", str(len(items)), "--crops-to", crops,
        "--out-json", out, *QUIET,
    )  # fmt: skip
    assert code == 0, err
    files = {p for p in crops.rglob("*") if p.is_file() and p.name != RECORD_NAME}
    assert len(files) == len(items)
    rotated = [f for f in data.frames if f.orientation != 1]
    assert rotated and any(row == str(rotated[0].path) for row in items.frame)
    for row in range(len(items)):
        name = crop_file_name(items.frame[row], int(items.source[row, 1]), root=data.root)
        path = crops / name
        assert path in files
        expected = np.asarray(crop_item(items.frame[row], items.box[row]), dtype=np.float64)
        with Image.open(path) as image:
            assert image.format == "JPEG"
            got = np.asarray(image.convert("RGB"), dtype=np.float64)
        assert got.shape == expected.shape
        assert np.abs(got - expected).mean() < CROP_TOLERANCE, name


def test_crops_to_folder_is_checked_before_any_work(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crops = tmp_path / "crops"
    crops.mkdir()
    (crops / "mine.txt").write_text("not ours", encoding="utf-8")
    out = tmp_path / "kept.json"
    code, _, err = run(
        capsys,
        "select", data.megadetector, "--target", "3", "--crops-to", crops, "--out-json", out,
        *QUIET,
    )  # fmt: skip
    assert code == 2
    assert "--crops-to" in one_error_line(err)
    assert not out.exists()
    inside = data.root / "cam1" / "crops"
    code, _, err = run(
        capsys, "select", data.megadetector, "--target", "3", "--crops-to", inside, *QUIET
    )
    assert code == 2
    assert "input images" in one_error_line(err)
    assert not inside.exists()


def test_crops_to_refuses_a_link_out_of_the_folder(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crops = tmp_path / "crops"
    crops.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (crops / "cam1").symlink_to(elsewhere, target_is_directory=True)
    items = read_megadetector(data.megadetector)
    code, _, err = run(
        capsys,
        "select", data.megadetector, "--target", str(len(items)), "--crops-to", crops,
        "--overwrite", *QUIET,
    )  # fmt: skip
    assert code == 2
    assert "symbolic link" in one_error_line(err)
    assert list(elsewhere.iterdir()) == []


SMALL_FILES = 32 * 1024
"""RLIMIT_FSIZE of the run whose last output fails: the crops (solid colours, about
1.5 KiB each) and the JSON fit, the thumbnail chart (about 100 KiB) does not."""


def _limit_file_size() -> None:
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
    resource.setrlimit(resource.RLIMIT_FSIZE, (SMALL_FILES, SMALL_FILES))


def test_crops_and_json_are_rolled_back_when_a_later_output_fails(
    data: CameraTrapSet, tmp_path: Path
) -> None:
    crops = tmp_path / "crops"
    out = tmp_path / "kept.json"
    chart = tmp_path / "thumbnails.png"
    argv = [
        "select", data.megadetector, "--target", "6", "--crops-to", crops, "--out-json", out,
        "--thumbnails", chart, *QUIET,
    ]  # fmt: skip
    done = subprocess.run(
        [sys.executable, "-m", "smartdownsample", *map(os.fspath, argv)],
        capture_output=True,
        text=True,
        preexec_fn=_limit_file_size,
        timeout=120,
        check=False,
    )
    assert done.returncode == 1, done.stderr
    assert ".png: File too large" in one_error_line(done.stderr)  # the chart, written last
    assert not out.exists() and not chart.exists()
    left = [p for p in crops.rglob("*") if p.is_file()] if crops.exists() else []
    assert left == []
    assert not [p for p in tmp_path.rglob("*") if p.name.startswith(TEMP_PREFIX)]


def test_crops_to_overwrite_replaces_an_earlier_run(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    crops = tmp_path / "crops"
    code, _, err = run(
        capsys, "select", data.megadetector, "--target", "8", "--crops-to", crops, *QUIET
    )
    assert code == 0, err
    code, _, err = run(
        capsys, "select", data.megadetector, "--target", "2", "--crops-to", crops, *QUIET
    )
    assert code == 2  # not empty: refused without --overwrite
    code, _, err = run(
        capsys,
        "select", data.megadetector, "--target", "2", "--crops-to", crops, "--overwrite",
        *QUIET,
    )  # fmt: skip
    assert code == 0, err
    files = [p for p in crops.rglob("*.jpg")]
    assert len(files) == 2


# ---------------------------------------------------------------- usage and bad input


@pytest.mark.parametrize(
    "extra",
    [
        ["--min-conf", "0.3"],
        ["--category", "person"],
        ["--exclude-category", "empty"],
        ["--image-root", "."],
        ["--out-json", "x.json"],
        ["--crops-to", "crops"],
    ],
)
def test_detector_flags_on_a_folder_source_are_a_usage_error(
    data: CameraTrapSet, capsys: pytest.CaptureFixture[str], extra: list[str]
) -> None:
    code, _, err = run(capsys, "select", data.root / "cam1", "--target", "2", *extra, *QUIET)
    assert code == 2
    assert extra[0] in one_error_line(err)


def test_flags_of_the_other_format_are_a_usage_error(
    data: CameraTrapSet, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "select", data.megadetector, "--target", "2", "--exclude-category", "x", *QUIET
    )
    assert code == 2
    assert "--exclude-category" in one_error_line(err)
    code, _, err = run(capsys, "select", data.coco, "--target", "2", "--min-conf", "0.5", *QUIET)
    assert code == 2
    assert "--min-conf" in one_error_line(err)


def test_a_json_source_mixed_with_others_is_a_usage_error(
    data: CameraTrapSet, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "select", data.megadetector, data.root / "cam1", "--target", "2", *QUIET
    )
    assert code == 2
    assert "one JSON file per run" in one_error_line(err)


def broken(data: CameraTrapSet, kind: str) -> dict[str, Any]:
    """The MegaDetector document with one fault of ``kind`` in its first image."""
    document = copy.deepcopy(data.megadetector_document)
    first = document["images"][0]
    detection = first["detections"][0]
    if kind == "missing frame":
        first["file"] = "cam1/NOT_THERE.JPG"
    elif kind == "box outside":
        detection["bbox"] = [0.9, 0.1, 0.5, 0.2]
    elif kind == "zero box":
        detection["bbox"] = [0.1, 0.1, 0.0, 0.2]
    elif kind == "no conf":
        del detection["conf"]
    return document


BAD = [
    ("missing frame", "file"),
    ("box outside", "detections[0].bbox"),
    ("zero box", "detections[0].bbox"),
    ("no conf", "detections[0].conf"),
]


@pytest.mark.parametrize(("kind", "field"), BAD)
def test_bad_input_is_one_line_naming_file_image_and_field(
    data: CameraTrapSet,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    field: str,
) -> None:
    path = tmp_path / "bad results.json"
    document = broken(data, kind)
    path.write_text(json.dumps(document), encoding="utf-8")
    code, _, err = run(capsys, "select", path, "--image-root", data.root, "--target", "3", *QUIET)
    assert code == 1
    line = one_error_line(err)
    assert str(path) in line
    assert repr(document["images"][0]["file"]) in line
    assert repr(field) in line
    assert "--skip-unreadable" in line


@pytest.mark.parametrize(("kind", "field"), BAD)
def test_bad_input_is_skipped_and_reported_with_skip_unreadable(
    data: CameraTrapSet,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    field: str,
) -> None:
    path = tmp_path / "bad results.json"
    document = broken(data, kind)
    path.write_text(json.dumps(document), encoding="utf-8")
    report = tmp_path / "report.json"
    out = tmp_path / "kept.json"
    code, _, err = run(
        capsys,
        "select", path, "--image-root", data.root, "--target", "3", "--skip-unreadable",
        "--report", report, "--out-json", out, "--no-progress", "--no-cache",
    )  # fmt: skip
    assert code == 0, err
    assert "Traceback" not in err
    assert field in err and "warning" in err
    skipped = json.loads(report.read_text(encoding="utf-8"))["detections"]["skipped"]
    assert [entry["image"] for entry in skipped] == [document["images"][0]["file"]]
    kept = json.loads(out.read_text(encoding="utf-8"))
    assert sum(len(entry["detections"]) for entry in kept["images"]) == 3


@pytest.mark.parametrize(
    "content",
    ['{"images": [{"name": "a.jpg"}]}', '{"results": []}', '{"images": 3'],
)
def test_a_json_of_neither_format_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    path = tmp_path / "other.json"
    path.write_text(content, encoding="utf-8")
    for argv in (["select", path, "--target", "2"], ["balance", path, "--max-per-class", "2"]):
        code, _, err = run(capsys, *argv, *QUIET)
        assert code == 1
        line = one_error_line(err)
        assert str(path) in line


def test_a_json_array_is_a_list_of_paths_not_detector_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], data: CameraTrapSet
) -> None:
    frames = sorted(str(p) for p in Path(data.root).rglob("*") if is_image_name(p.name))[:6]
    assert len(frames) == 6
    listed = tmp_path / "paths.json"
    listed.write_text(json.dumps(frames), encoding="utf-8")
    out = tmp_path / "kept.txt"
    code, _, err = run(capsys, "select", listed, "--target", "3", "--out", out, *QUIET)
    assert code == 0, err
    kept = out.read_text(encoding="utf-8").splitlines()
    assert len(kept) == 3 and set(kept) <= set(frames)
    # Neither an array of paths nor an object: one line naming the file and both kinds.
    for content in ("[1, 2]", "a.jpg\nb.jpg\n", ""):
        listed.write_text(content, encoding="utf-8")
        code, _, err = run(capsys, "select", listed, "--target", "2", *QUIET)
        assert code == 2
        line = one_error_line(err)
        assert str(listed) in line and "array of image paths" in line and "detector" in line
    code, _, err = run(capsys, "balance", listed, "--max-per-class", "2", *QUIET)
    assert code == 2 and "detector .json" in one_error_line(err)


def test_a_text_list_or_pipe_holding_a_json_array_selects_from_it(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    data: CameraTrapSet,
) -> None:
    """The array written to a .txt file, or piped in: the paths, not one path of it all."""
    frames = sorted(str(p) for p in Path(data.root).rglob("*") if is_image_name(p.name))[:6]
    listed = tmp_path / "picked.txt"
    listed.write_text(json.dumps(frames), encoding="utf-8")
    out = tmp_path / "kept.txt"
    code, _, err = run(capsys, "select", listed, "--target", "3", "--out", out, *QUIET)
    assert code == 0, err
    assert set(out.read_text(encoding="utf-8").splitlines()) <= set(frames)
    piped = io.TextIOWrapper(io.BytesIO(json.dumps(frames).encode()), encoding="utf-8")
    monkeypatch.setattr(sys, "stdin", piped)
    code, _, err = run(capsys, "select", "-", "--target", "3", "--out", tmp_path / "k2.txt", *QUIET)
    assert code == 0, err
    assert (tmp_path / "k2.txt").read_text(encoding="utf-8") == out.read_text(encoding="utf-8")


def test_help_shows_detector_examples(capsys: pytest.CaptureFixture[str]) -> None:
    for command in ("select", "balance"):
        assert main([command, "--help"]) == 0
        text = capsys.readouterr().out
        assert "--out-json" in text and "--crops-to" in text and "--min-conf" in text
        assert ".json" in text.split("examples:")[1]


# ---------------------------------------------------------------- the demo's detections


def test_demo_detections_json_runs_through_select(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from smartdownsample.synthetic import load_dataset

    folder = tmp_path / "demo dir"
    code, _, err = run(capsys, "demo", folder, "--n-images", "36", "--kind", "mixed", *QUIET)
    assert code == 0, err
    results = folder / "detections.json"
    document = json.loads(results.read_text(encoding="utf-8"))
    dataset = load_dataset(folder / "images")
    truth = {Path(image.path).relative_to(folder).as_posix(): image for image in dataset.images}
    classes = document["classification_categories"]
    for entry in document["images"]:
        image = truth[entry["file"]]
        (detection,) = entry["detections"]
        assert detection["bbox"] == [image.box_x, image.box_y, image.box_w, image.box_h]
        assert 0.2 <= detection["conf"] <= 1
        assert classes[detection["classifications"][0][0]] == image.species
    out, crops = tmp_path / "kept.json", tmp_path / "kept-crops"
    code, _, err = run(
        capsys, "select", results, "--target", "10", "--out-json", out, "--crops-to", crops,
        *QUIET,
    )  # fmt: skip
    assert code == 0, err
    kept = json.loads(out.read_text(encoding="utf-8"))
    assert sum(len(entry["detections"]) for entry in kept["images"]) == 10
    assert len(list(crops.rglob("*.jpg"))) == 10


def test_out_json_to_a_device_writes_to_it_and_leaves_it_a_device(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = os.stat(os.devnull)
    code, _, err = run(
        capsys, "select", data.megadetector, "--target", "3", "--out-json", os.devnull, *QUIET
    )
    assert code == 0, err
    after = os.stat(os.devnull)
    assert stat.S_ISCHR(after.st_mode) and after.st_rdev == before.st_rdev
    assert not [p for p in Path(os.path.dirname(os.devnull)).glob(f"{TEMP_PREFIX}*")]


def test_coco_missing_frame_is_one_line_or_skipped(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document = copy.deepcopy(data.coco_document)
    document["images"][0]["file_name"] = "cam1/NOT_THERE.JPG"
    path = tmp_path / "cct.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    argv = ["balance", path, "--image-root", data.root, "--max-per-class", "2", *QUIET]
    code, _, err = run(capsys, *argv)
    assert code == 1
    line = one_error_line(err)
    assert "'cam1/NOT_THERE.JPG'" in line and "'file_name'" in line
    out = tmp_path / "balanced.json"
    code, _, err = run(capsys, *argv, "--skip-unreadable", "--out-json", out)
    assert code == 0, err
    kept = json.loads(out.read_text(encoding="utf-8"))
    assert "cam1/NOT_THERE.JPG" not in {image["file_name"] for image in kept["images"]}


def test_detector_flags_on_a_balance_folder_are_a_usage_error(
    data: CameraTrapSet, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "balance", data.root, "--max-per-class", "2", "--out-json", "x.json", *QUIET
    )
    assert code == 2
    assert "--out-json" in one_error_line(err)


# ---------------------------------------------------------------- found by attacking


def _relabelled(data: CameraTrapSet, where: Path, labels: list[str]) -> Path:
    """The demo detections with classifications cycling through ``labels``."""
    document = copy.deepcopy(data.megadetector_document)
    document["classification_categories"] = {str(i): name for i, name in enumerate(labels)}
    for number, entry in enumerate(document["images"]):
        entry["file"] = os.path.relpath(os.path.join(data.root, entry["file"]), where)
        for detection in entry.get("detections") or []:
            detection["classifications"] = [[str(number % len(labels)), 0.9]]
    path = where / "relabelled.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def test_a_label_never_writes_a_chart_outside_its_folder(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = _relabelled(data, tmp_path, ["deer", "../../../victim", "a/b", "", "x" * 5000])
    out = tmp_path / "one" / "two" / "charts"
    out.mkdir(parents=True)
    victim = tmp_path / "victim.png"
    victim.write_text("precious", encoding="utf-8")
    before = {p for p in tmp_path.rglob("*")}
    code, _, err = run(
        capsys, "balance", source, "--max-per-class", "1", "--distribution", out / "d.png",
        "--thumbnails", out / "t.png", *QUIET,
    )  # fmt: skip
    assert code == 0, err
    assert victim.read_text(encoding="utf-8") == "precious"
    made = {p for p in tmp_path.rglob("*")} - before
    assert made and all(p.parent == out for p in made), sorted(map(str, made))
    assert all(len(p.name.encode()) < 255 for p in made)
    # One chart of each kind per class cut (the empty label is no class of its own):
    # no two classes share a file.
    assert len(made) == 8 and len({p.name[2:] for p in made}) == 4


def test_one_frame_under_two_entries_keeps_both_crops(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    entry = next(e for e in data.megadetector_document["images"] if e.get("detections"))
    frame = os.path.join(data.root, entry["file"])
    twice = {
        "info": {"format_version": "1.4"},
        "detection_categories": {"1": "animal"},
        "images": [
            {"file": frame, "detections": [{"category": "1", "conf": 0.9, "bbox": box}]}
            for box in ([0.1, 0.1, 0.3, 0.3], [0.5, 0.5, 0.3, 0.3])
        ],
    }
    source = tmp_path / "twice.json"
    source.write_text(json.dumps(twice), encoding="utf-8")
    crops = tmp_path / "crops"
    code, out, err = run(
        capsys, "select", source, "--fraction", "1.0", "--crops-to", crops, "--no-progress",
        "--no-cache",
    )  # fmt: skip
    assert code == 0, err
    made = sorted(p for p in crops.rglob("*.jpg"))
    assert len(made) == 2 and "crops (2 JPEG files)" in out + err


@pytest.mark.parametrize(
    "content",
    [
        '["a.jpg", "b\\u0000c.jpg"]',  # a NUL in a path
        "[" * 100_000 + "]" * 100_000,  # nested too deeply
    ],
)
def test_a_json_list_that_cannot_name_files_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    listed = tmp_path / "paths.json"
    listed.write_text(content, encoding="utf-8")
    code, _, err = run(capsys, "select", listed, "--target", "2", "--skip-unreadable", *QUIET)
    assert code == 2
    assert str(listed) in one_error_line(err)


@pytest.mark.parametrize("field", ["bbox", "conf"])
def test_a_number_beyond_any_float_is_a_detection_file_error(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str], field: str
) -> None:
    document = copy.deepcopy(data.megadetector_document)
    detection = next(d for e in document["images"] for d in e.get("detections") or [])
    huge = "1" + "0" * 400
    if field == "bbox":
        detection["bbox"] = [0, 0, 0.5, 0.5]
    else:
        detection["conf"] = 0.5
    text = json.dumps(document).replace(
        '"bbox": [0, 0, 0.5, 0.5]' if field == "bbox" else '"conf": 0.5',
        f'"bbox": [0, 0, {huge}, 0.5]' if field == "bbox" else f'"conf": {huge}',
        1,
    )
    source = tmp_path / "huge.json"
    source.write_text(text, encoding="utf-8")
    frames = os.path.relpath(data.root, tmp_path)
    code, _, err = run(capsys, "select", source, "--image-root", frames, "--target", "2", *QUIET)
    assert code == 1
    line = one_error_line(err)
    assert "not a finite number" in line and field in line


def test_a_text_list_whose_first_path_starts_with_a_brace_is_a_list(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "{cam1}"
    folder.mkdir()
    for index in range(3):
        Image.new("RGB", (40, 30), (40 * index, 90, 60)).save(folder / f"IMG_{index}.jpg")
    listed = tmp_path / "list.txt"
    listed.write_text("".join(f"{{cam1}}/IMG_{i}.jpg\n" for i in range(3)), encoding="utf-8")
    code, _, err = run(capsys, "select", listed, "--target", "2", "--out", tmp_path / "k", *QUIET)
    assert code == 0, err


def test_an_output_never_replaces_a_source_file(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    detector = tmp_path / "md.json"
    detector.write_text(json.dumps(data.megadetector_document), encoding="utf-8")
    root = ("--image-root", str(data.root))
    listed = tmp_path / "paths.txt"
    frames = sorted(str(p) for p in Path(data.root).rglob("*") if is_image_name(p.name))
    listed.write_text("\n".join(frames[:5]) + "\n", encoding="utf-8")
    for argv in (
        ["select", detector, *root, "--target", "2", "--out-json", detector],
        ["select", listed, "--target", "2", "--out", listed],
        ["select", listed, "--target", "2", "--out", tmp_path / "k", "--manifest", listed],
    ):
        before = Path(argv[1]).read_bytes()
        code, _, err = run(capsys, *argv, "--overwrite", *QUIET)
        assert code == 2 and "is the SOURCE file" in one_error_line(err)
        assert Path(argv[1]).read_bytes() == before


def test_out_list_named_json_reads_back_as_a_source(
    data: CameraTrapSet, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    frames = sorted(str(p) for p in Path(data.root).rglob("*") if is_image_name(p.name))
    listed = tmp_path / "in.txt"
    listed.write_text("\n".join(frames[:8]) + "\n", encoding="utf-8")
    kept = tmp_path / "kept.json"
    assert run(capsys, "select", listed, "--target", "4", "--out", kept, *QUIET)[0] == 0
    assert len(json.loads(kept.read_text(encoding="utf-8"))) == 4
    again = tmp_path / "again.txt"
    assert run(capsys, "select", kept, "--target", "2", "--out", again, *QUIET)[0] == 0
    assert set(again.read_text(encoding="utf-8").splitlines()) <= set(frames[:8])
