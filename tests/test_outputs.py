"""Atomic writers, output checks, copied and linked trees, and rollback."""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from smartdownsample import InvalidArgumentError
from smartdownsample.outputs import (
    RECORD_NAME,
    TEMP_PREFIX,
    OutputError,
    OutputTransaction,
    atomic_file,
    check_output_dir,
    check_output_file,
    common_root,
    export_tree,
    write_json,
)


class Boom(Exception):
    """Raised by test generators halfway through a write."""


def _failing_lines(n_good: int, error: BaseException) -> Iterator[str]:
    for index in range(n_good):
        yield f"/images/IMG_{index}.jpg"
    raise error


def _temps(folder: Path) -> list[str]:
    return [name for name in os.listdir(folder) if name.startswith(TEMP_PREFIX)]


def _tree(root: Path) -> list[Path]:
    paths = []
    for index, rel in enumerate(["cam1/dep1/IMG_1.jpg", "cam1/dep2/IMG_2.jpg", "cam2/IMG_3.JPG"]):
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (24, 16), (40 * index, 100, 60)).save(path, "JPEG")
        paths.append(path)
    return paths


def _snapshot(paths: list[Path]) -> dict[Path, tuple[bytes, int]]:
    return {path: (path.read_bytes(), path.stat().st_mtime_ns) for path in paths}


def _files_under(folder: Path) -> list[str]:
    """Files under ``folder``, without the record of what this tool exported there."""
    return sorted(
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p != folder / RECORD_NAME
    )


# ---------------------------------------------------------------- atomic files


def test_writers_write_content(tmp_path: Path) -> None:
    rows = [{"path": "a.jpg", "kept": True, "error": ""}, {"path": "b.jpg", "kept": False}]
    with OutputTransaction() as tx:
        assert tx.write_path_list(tmp_path / "sel.txt", ["/d/a b.jpg", "/d/é/c.jpg"]) == 2
        assert tx.write_csv(tmp_path / "nested" / "m.csv", rows, ["path", "kept", "error"]) == 2
        tx.commit()
    assert (tmp_path / "sel.txt").read_text(encoding="utf-8") == "/d/a b.jpg\n/d/é/c.jpg\n"
    with open(tmp_path / "nested" / "m.csv", newline="", encoding="utf-8") as handle:
        assert list(csv.DictReader(handle)) == [
            {"path": "a.jpg", "kept": "True", "error": ""},
            {"path": "b.jpg", "kept": "False", "error": ""},
        ]
    write_json(tmp_path / "r.json", {"n": 3, "name": "café"})
    assert json.loads((tmp_path / "r.json").read_text(encoding="utf-8")) == {
        "n": 3,
        "name": "café",
    }
    assert _temps(tmp_path) == []
    mode = (tmp_path / "sel.txt").stat().st_mode & 0o777
    assert mode & 0o044  # readable by others as with open(), not mkstemp's 0600


@pytest.mark.parametrize("error", [Boom("disk gone"), KeyboardInterrupt()])
def test_interrupted_path_list_leaves_no_file(tmp_path: Path, error: BaseException) -> None:
    target = tmp_path / "selected.txt"
    with pytest.raises(type(error)), OutputTransaction() as tx:
        tx.write_path_list(target, _failing_lines(1000, error))
        tx.commit()
    assert not target.exists()
    assert _temps(tmp_path) == []


def test_interrupted_write_keeps_the_old_file(tmp_path: Path) -> None:
    target = tmp_path / "report.json"
    target.write_text('{"old": true}\n')
    with pytest.raises(ValueError, match=r"not JSON compliant"):
        write_json(target, {"value": float("nan")})
    assert target.read_text() == '{"old": true}\n'
    assert _temps(tmp_path) == []


def test_atomic_file_reports_an_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with (
        pytest.raises(OutputError, match=r"cannot write .*file/out.txt"),
        atomic_file(blocker / "out.txt") as handle,
    ):
        handle.write("never")


# ---------------------------------------------------------------- checks


def test_non_empty_folder_needs_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    kwargs = {"option": "--copy-to", "source_folders": [], "image_paths": []}
    check_output_dir(out, overwrite=False, **kwargs)  # type: ignore[arg-type]
    (out / "old.txt").write_text("x")
    with pytest.raises(
        InvalidArgumentError, match=r"--copy-to folder .*out.* not empty.*--overwrite"
    ):
        check_output_dir(out, overwrite=False, **kwargs)  # type: ignore[arg-type]
    check_output_dir(out, overwrite=True, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"is a file"):
        check_output_dir(out / "old.txt", overwrite=True, **kwargs)  # type: ignore[arg-type]


def test_output_folder_inside_a_source_is_refused(tmp_path: Path) -> None:
    images = _tree(tmp_path / "src")
    paths = [str(p) for p in images]
    for dest in [tmp_path / "src", tmp_path / "src" / "small", tmp_path / "src" / "cam2" / "x"]:
        with pytest.raises(InvalidArgumentError, match=r"inside"):
            check_output_dir(
                dest, option="--link-to", source_folders=[str(tmp_path / "src")],
                image_paths=paths, overwrite=True,
            )  # fmt: skip
    # A list-file source: the folders of its images are protected too, and so is
    # a destination holding them.
    with pytest.raises(InvalidArgumentError, match=r"inside .*dep1"):
        check_output_dir(
            tmp_path / "src" / "cam1" / "dep1" / "out", option="--copy-to",
            source_folders=[], image_paths=paths, overwrite=True,
        )  # fmt: skip
    with pytest.raises(InvalidArgumentError, match=r"contains input images"):
        check_output_dir(
            tmp_path, option="--copy-to", source_folders=[], image_paths=paths, overwrite=True
        )
    linked = tmp_path / "alias"
    os.symlink(tmp_path / "src", linked, target_is_directory=True)
    with pytest.raises(InvalidArgumentError, match=r"inside the SOURCE"):
        check_output_dir(
            linked / "out", option="--copy-to", source_folders=[str(tmp_path / "src")],
            image_paths=[], overwrite=False,
        )  # fmt: skip
    check_output_dir(
        tmp_path / "small", option="--copy-to", source_folders=[str(tmp_path / "src")],
        image_paths=paths, overwrite=False,
    )  # fmt: skip


def test_output_file_checks(tmp_path: Path) -> None:
    image = _tree(tmp_path)[0]
    existing = tmp_path / "sel.txt"
    existing.write_text("old")
    kwargs = {"option": "--out", "image_paths": [str(image)]}
    check_output_file(tmp_path / "new.txt", overwrite=False, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"sel.txt.*already exists.*--overwrite"):
        check_output_file(existing, overwrite=False, **kwargs)  # type: ignore[arg-type]
    check_output_file(existing, overwrite=True, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"one of the input images"):
        check_output_file(image, overwrite=True, **kwargs)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgumentError, match=r"is a folder"):
        check_output_file(tmp_path, overwrite=True, **kwargs)  # type: ignore[arg-type]


def test_common_root(tmp_path: Path) -> None:
    images = _tree(tmp_path)
    assert common_root([str(images[0])]) == str(images[0].parent)
    assert common_root([str(p) for p in images]) == str(tmp_path)
    assert common_root([str(images[0])], folders=[str(tmp_path / "cam1")]) == str(tmp_path / "cam1")


# ---------------------------------------------------------------- trees


def test_copy_tree_keeps_structure_bytes_and_times(tmp_path: Path) -> None:
    images = _tree(tmp_path / "src")
    before = _snapshot(images)
    out = tmp_path / "out"
    done: list[int] = []
    export = export_tree(
        [str(images[0]), str(images[2])], out, mode="copy", root=str(tmp_path / "src"),
        progress=done.append,
    )  # fmt: skip
    assert _files_under(out) == ["cam1/dep1/IMG_1.jpg", "cam2/IMG_3.JPG"]
    assert (out / "cam2" / "IMG_3.JPG").read_bytes() == images[2].read_bytes()
    assert (out / "cam2" / "IMG_3.JPG").stat().st_mtime_ns == images[2].stat().st_mtime_ns
    assert not os.path.samefile(out / "cam2" / "IMG_3.JPG", images[2])
    assert (export.n_copied, export.n_files, done) == (2, 2, [1, 1])
    assert "copied 2 images" in export.describe()
    assert _snapshot(images) == before
    assert [p for p in out.rglob("*") if p.name.startswith(TEMP_PREFIX)] == []


def test_link_tree_makes_hard_links(tmp_path: Path) -> None:
    images = _tree(tmp_path / "src")
    out = tmp_path / "links"
    export = export_tree([str(p) for p in images], out, mode="link")
    assert export.root == str(tmp_path / "src")
    assert _files_under(out) == ["cam1/dep1/IMG_1.jpg", "cam1/dep2/IMG_2.jpg", "cam2/IMG_3.JPG"]
    assert os.path.samefile(out / "cam2" / "IMG_3.JPG", images[2])
    assert not (out / "cam2" / "IMG_3.JPG").is_symlink()
    assert export.n_hardlinks == 3
    again = export_tree([str(p) for p in images], out, mode="link")  # already there: kept
    assert again.n_present == 3 and again.created_files == []


def test_link_across_file_systems_falls_back_to_symlinks(tmp_path: Path) -> None:
    if not os.path.isdir("/dev/shm") or os.stat("/dev/shm").st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("needs a second file system (/dev/shm)")
    images = _tree(tmp_path / "src")
    other = tempfile.mkdtemp(dir="/dev/shm")
    try:
        out = Path(other) / "links"
        export = export_tree([str(p) for p in images], out, mode="link")
        assert export.n_symlinks == 3 and export.n_hardlinks == 0
        link = out / "cam1" / "dep1" / "IMG_1.jpg"
        assert link.is_symlink() and os.readlink(link) == str(images[0])
        assert "3 symbolic links" in export.describe()
    finally:
        shutil.rmtree(other)


def test_failed_copy_removes_everything_it_made(tmp_path: Path) -> None:
    images = _tree(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep-me.txt").write_text("user file")
    missing = tmp_path / "src" / "cam3" / "gone.jpg"  # vanished after listing
    paths = [str(images[0]), str(images[1]), str(missing), str(images[2])]
    with pytest.raises(OutputError, match=r"cannot copy .*gone.jpg"):
        export_tree(paths, out, mode="copy", root=str(tmp_path / "src"))
    assert _files_under(out) == ["keep-me.txt"]
    assert sorted(os.listdir(out)) == ["keep-me.txt"]  # no empty folders or temp files left


def test_failed_link_removes_everything_it_made(tmp_path: Path) -> None:
    images = _tree(tmp_path / "src")
    out = tmp_path / "out"
    out.mkdir()
    (out / "cam2").write_text("a file where a folder is needed")
    with pytest.raises(OutputError, match=r"cannot link .*IMG_3.JPG"):
        export_tree([str(p) for p in images], out, mode="link", root=str(tmp_path / "src"))
    assert sorted(os.listdir(out)) == ["cam2"]
    assert (out / "cam2").read_text() == "a file where a folder is needed"


def test_interrupted_copy_is_rolled_back(tmp_path: Path) -> None:
    images = _tree(tmp_path / "src")
    out = tmp_path / "out"
    calls: list[int] = []

    def interrupt(count: int) -> None:
        calls.append(count)
        if len(calls) == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        export_tree([str(p) for p in images], out, mode="copy", progress=interrupt)
    assert not out.exists()


# ---------------------------------------------------------------- transaction


def test_transaction_commits_together(tmp_path: Path) -> None:
    images = _tree(tmp_path / "src")
    with OutputTransaction() as outputs:
        outputs.write_lines(tmp_path / "o" / "sel.txt", ["a"])
        outputs.write_csv(tmp_path / "o" / "m.csv", [{"path": "a"}])
        outputs.export_tree([str(images[0])], tmp_path / "copy", mode="copy")
        assert not (tmp_path / "o" / "sel.txt").exists()  # staged only
        assert len(outputs.targets) == 3  # the list, the manifest and the copy's record
        outputs.commit()
    assert (tmp_path / "o" / "sel.txt").read_text() == "a\n"
    assert (tmp_path / "o" / "m.csv").read_text().splitlines() == ["path", "a"]
    assert _files_under(tmp_path / "copy") == ["IMG_1.jpg"]
    assert _temps(tmp_path / "o") == []


@pytest.mark.parametrize("error", [Boom("report failed"), KeyboardInterrupt()])
def test_transaction_rolls_back_everything(tmp_path: Path, error: BaseException) -> None:
    images = _tree(tmp_path / "src")
    (tmp_path / "old.txt").write_text("previous run")
    with pytest.raises(type(error)), OutputTransaction() as outputs:
        outputs.write_lines(tmp_path / "old.txt", ["new"])
        outputs.write_lines(tmp_path / "new" / "deep" / "sel.txt", ["a"])
        outputs.export_tree([str(p) for p in images], tmp_path / "copy", mode="copy")
        outputs.export_tree([str(p) for p in images], tmp_path / "link", mode="link")
        outputs.write_lines(tmp_path / "half.txt", _failing_lines(10, error))
    assert sorted(os.listdir(tmp_path)) == ["old.txt", "src"]
    assert (tmp_path / "old.txt").read_text() == "previous run"
    assert len(list((tmp_path / "src").rglob("*.*"))) == 3
