"""Finding images for the command line: folders, list files, CSV files."""

from __future__ import annotations

import io
import json
import logging
import os
import sys
from pathlib import Path

import pytest
from PIL import Image

from smartdownsample import InvalidArgumentError
from smartdownsample.listing import (
    find_images,
    is_image_name,
    list_sources,
    read_csv_file,
    read_json_list,
    read_list_file,
)


def _image(path: Path, colour: tuple[int, int, int] = (90, 120, 60)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fmt = {".png": "PNG", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF", ".webp": "WEBP"}
    Image.new("RGB", (16, 12), colour).save(path, fmt.get(path.suffix.lower(), "JPEG"))
    return path


def _rel(paths: list[str], root: Path) -> list[str]:
    return [Path(p).relative_to(root).as_posix() for p in paths]


def test_every_extension_in_any_case_and_nothing_else(tmp_path: Path) -> None:
    names = [
        "a.jpg", "b.JPG", "c.Jpeg", "d.png", "e.PNG", "f.tif", "g.TIFF", "h.bmp", "i.WebP",
    ]  # fmt: skip
    for name in names:
        _image(tmp_path / "cam" / name)
    for other in ["notes.txt", "clip.mp4", "IMG.JPG.xmp", "ground_truth.csv", "noext"]:
        (tmp_path / "cam" / other).write_text("not an image")
    found = _rel(find_images(tmp_path), tmp_path)
    assert sorted(found) == sorted(f"cam/{name}" for name in names)
    assert is_image_name("X.JPEG") and not is_image_name("x.gif")


def test_recursive_natural_order(tmp_path: Path) -> None:
    for name in ["loc2/IMG_10.jpg", "loc2/IMG_9.jpg", "loc10/IMG_1.jpg", "loc2/z/IMG_1.jpg"]:
        _image(tmp_path / name)
    assert _rel(find_images(tmp_path), tmp_path) == [
        "loc2/IMG_9.jpg",
        "loc2/IMG_10.jpg",
        "loc2/z/IMG_1.jpg",
        "loc10/IMG_1.jpg",
    ]


def test_hidden_folders_and_files_are_skipped(tmp_path: Path) -> None:
    _image(tmp_path / "cam" / "IMG_1.JPG")
    _image(tmp_path / ".thumbnails" / "IMG_1.JPG")
    _image(tmp_path / "cam" / ".cache" / "deep" / "IMG_2.JPG")
    (tmp_path / "cam" / "._IMG_1.JPG").write_bytes(b"\x00\x05\x16\x07 AppleDouble")
    assert _rel(find_images(tmp_path), tmp_path) == ["cam/IMG_1.JPG"]


def test_symlink_loop_is_skipped_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    _image(tmp_path / "a" / "IMG_1.jpg")
    _image(tmp_path / "b" / "IMG_2.jpg")
    os.symlink(tmp_path, tmp_path / "a" / "loop", target_is_directory=True)
    os.symlink(tmp_path / "b", tmp_path / "c-link-to-b", target_is_directory=True)
    with caplog.at_level(logging.WARNING, logger="smartdownsample"):
        found = _rel(find_images(tmp_path), tmp_path)
    assert found == ["a/IMG_1.jpg", "b/IMG_2.jpg"]  # b once, loop not followed
    messages = " ".join(record.getMessage() for record in caplog.records)
    assert "a/loop" in messages and "already searched" in messages


def test_symlinked_folder_outside_the_tree_is_followed(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere"
    _image(outside / "IMG_5.jpg")
    root = tmp_path / "root"
    root.mkdir()
    os.symlink(outside, root / "linked", target_is_directory=True)
    assert _rel(find_images(root), root) == ["linked/IMG_5.jpg"]


def test_find_images_refuses_a_file(tmp_path: Path) -> None:
    path = _image(tmp_path / "x.jpg")
    with pytest.raises(InvalidArgumentError, match=r"not a folder"):
        find_images(path)


def test_list_file_resolves_relative_paths_against_its_folder(tmp_path: Path) -> None:
    lists = tmp_path / "lists"
    lists.mkdir()
    absolute = _image(tmp_path / "abs" / "IMG_1.jpg")
    listing = lists / "images.txt"
    listing.write_text(
        f"\ufeff# camera 1\nsub/IMG 2.jpg\n\n   {absolute}  \r\n../other/IMG_3.JPG\n",
        encoding="utf-8",
    )
    paths = read_list_file(listing)
    assert paths == [
        str(lists / "sub" / "IMG 2.jpg"),
        str(absolute),
        str(lists / ".." / "other" / "IMG_3.JPG"),
    ]


def test_list_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    listing = tmp_path / "latin1.txt"
    listing.write_bytes("caf\xe9.jpg\n".encode("latin-1"))
    with pytest.raises(InvalidArgumentError, match=r"latin1.txt.*UTF-8"):
        read_list_file(listing)


def test_csv_path_column_any_position_and_delimiter(tmp_path: Path) -> None:
    comma = tmp_path / "comma.csv"
    comma.write_text('label,Path,score\ndeer,cam1/a.jpg,0.9\nfox,"cam 2/b, c.jpg",0.8\n,,\n')
    assert _rel(read_csv_file(comma), tmp_path) == ["cam1/a.jpg", "cam 2/b, c.jpg"]
    semicolon = tmp_path / "excel.csv"
    semicolon.write_text("path;label\n/data/x.jpg;deer\ny.jpg;fox\n")
    assert read_csv_file(semicolon) == ["/data/x.jpg", str(tmp_path / "y.jpg")]


def test_csv_without_path_column_names_file_and_fix(tmp_path: Path) -> None:
    bad = tmp_path / "labels.csv"
    bad.write_text("file,label\na.jpg,deer\n")
    with pytest.raises(InvalidArgumentError, match=r"labels\.csv.*no 'path' column.*file, label"):
        read_csv_file(bad)
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InvalidArgumentError, match=r"empty"):
        read_csv_file(empty)


def test_json_array_of_paths_relative_to_its_folder(tmp_path: Path) -> None:
    listed = tmp_path / "lists" / "images.json"
    listed.parent.mkdir()
    listed.write_text('["cam 1/a.jpg", "/data/b.jpg", "  ", "../c.jpg"]', encoding="utf-8")
    assert read_json_list(listed) == [
        str(tmp_path / "lists" / "cam 1" / "a.jpg"),
        "/data/b.jpg",
        str(tmp_path / "lists" / ".." / "c.jpg"),
    ]


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ('{"images": []}', r"holds a dict, not an array of paths"),
        ('["a.jpg", 3]', r"entry 1 is 3, not a path"),
        ("a.jpg\nb.jpg\n", r"not valid JSON"),
    ],
)
def test_json_that_is_not_an_array_of_paths_names_file_and_fix(
    tmp_path: Path, content: str, says: str
) -> None:
    bad = tmp_path / "mine.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(InvalidArgumentError, match=rf"mine\.json.*{says}.*JSON array of image"):
        read_json_list(bad)


def test_a_list_file_holding_a_json_array_is_read_as_paths(tmp_path: Path) -> None:
    """json.dump(paths, open("list.txt", "w")): the array, not one path of 1,000 characters."""
    listed = tmp_path / "lists" / "picked.txt"
    listed.parent.mkdir()
    listed.write_text(json.dumps(["cam 1/a.jpg", "/data/b.jpg"]) + "\n", encoding="utf-8")
    assert read_list_file(listed) == [str(tmp_path / "lists" / "cam 1" / "a.jpg"), "/data/b.jpg"]
    not_json = tmp_path / "lines.txt"  # a first name that starts with "[" is still a line
    not_json.write_text("[2019] cam/a.jpg\nb.jpg\n", encoding="utf-8")
    assert _rel(read_list_file(not_json), tmp_path) == ["[2019] cam/a.jpg", "b.jpg"]


def _stdin(monkeypatch: pytest.MonkeyPatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_standard_input_holding_a_json_array_is_read_as_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _image(tmp_path / "a.jpg"), _image(tmp_path / "b.jpg")
    _stdin(monkeypatch, json.dumps([str(first), str(second)]).encode())
    assert read_list_file("-") == [str(first), str(second)]


def test_standard_input_holding_detector_output_names_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _stdin(monkeypatch, json.dumps({"images": [{"file": "a.jpg", "detections": []}]}).encode())
    with pytest.raises(InvalidArgumentError) as caught:
        read_list_file("-")
    message = str(caught.value)
    assert "\n" not in message
    assert "standard input holds a JSON object" in message
    assert "give that file as SOURCE" in message


def test_list_sources_mixes_kinds_and_drops_duplicates(tmp_path: Path) -> None:
    first = _image(tmp_path / "photos" / "IMG_1.jpg")
    second = _image(tmp_path / "photos" / "IMG_2.jpg")
    third = _image(tmp_path / "more" / "IMG_3.png")
    text = tmp_path / "list.txt"
    text.write_text("photos/IMG_2.jpg\nmore/IMG_3.png\n")
    table = tmp_path / "table.csv"
    table.write_text("path\nphotos/IMG_1.jpg\n")
    listing = list_sources([str(tmp_path / "photos"), str(text), str(table), str(third)])
    assert [os.path.abspath(p) for p in listing.paths] == [str(first), str(second), str(third)]
    assert listing.folders == [str(tmp_path / "photos")]
    assert listing.n_duplicates == 3
    assert [count for _, count in listing.per_source] == [2, 2, 1, 1]


def test_missing_source_is_named(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-folder"
    with pytest.raises(InvalidArgumentError, match=r"no-such-folder.*does not exist"):
        list_sources([str(missing)])


def test_found_counter_is_called(tmp_path: Path) -> None:
    for index in range(3):
        _image(tmp_path / f"d{index}" / "IMG_1.jpg")
    counts: list[int] = []
    list_sources([str(tmp_path)], on_found=counts.append)
    assert counts and counts[-1] == 3 and counts == sorted(counts)
