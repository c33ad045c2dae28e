"""The ``smartdownsample`` command, driven end to end on real image trees."""

from __future__ import annotations

import csv
import doctest
import importlib
import json
import os
import pkgutil
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from smartdownsample import __version__
from smartdownsample.cache import SCHEMA_VERSION
from smartdownsample.cli import CACHE_ENV, default_cache_path, main, resolve_target
from smartdownsample.outputs import RECORD_NAME, TEMP_PREFIX
from smartdownsample.result import SelectionResult
from smartdownsample.synthetic import make_dataset

N_IMAGES = 150
TARGET = 15
FAST = ["--no-progress", "--no-cache", "--workers", "2"]


# ---------------------------------------------------------------- helpers and fixtures


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A synthetic camera-trap folder: photos/<location>/<deployment>/IMG_<n>.JPG (this
    module's own size, in place of conftest's 60-image set)."""
    root = tmp_path_factory.mktemp("photos") / "deer"
    make_dataset(root, N_IMAGES, seed=3)
    return root


@pytest.fixture(scope="module")
def classes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A class tree: deer 90 images, owl 40, fox 12."""
    root = tmp_path_factory.mktemp("classes") / "crops"
    for name, count, seed in [("deer", 90, 1), ("owl", 40, 2), ("fox", 12, 4)]:
        make_dataset(root / name, count, seed=seed, n_locations=3)
    return root


def run(
    capsys: pytest.CaptureFixture[str], *args: str | int | os.PathLike[str]
) -> tuple[int, str, str]:
    code = main([str(arg) if isinstance(arg, int) else os.fspath(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def images_under(folder: Path) -> list[Path]:
    suffixes = {".jpg", ".jpeg", ".png"}
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in suffixes)


def relative_files(folder: Path) -> set[str]:
    """Files under ``folder``, without the record of what this tool exported there."""
    return {
        p.relative_to(folder).as_posix()
        for p in folder.rglob("*")
        if p.is_file() and p != folder / RECORD_NAME
    }


def snapshot(paths: list[Path]) -> dict[Path, tuple[bytes, int, int]]:
    return {p: (p.read_bytes(), p.stat().st_mtime_ns, p.stat().st_ino) for p in paths}


def leftovers(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.startswith(TEMP_PREFIX)]


_WATCHED: set[str] = set()
_WRITES: list[str] = []
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _WATCHED:
        return
    path, mode, flags = args
    if not isinstance(path, (str, bytes)):
        return
    writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool(
        (flags or 0) & _WRITE_FLAGS
    )
    if writing and os.path.realpath(os.fsdecode(path)) in _WATCHED:
        _WRITES.append(f"{os.fsdecode(path)} ({mode or flags})")


_HOOKED: list[bool] = []


@pytest.fixture
def no_writes_to() -> Iterator[Any]:
    """Record every open() for writing of the watched files (audit hook)."""
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED.append(True)

    def watch(paths: list[Path]) -> list[str]:
        _WATCHED.update(os.path.realpath(p) for p in paths)
        return _WRITES

    yield watch
    _WATCHED.clear()
    _WRITES.clear()


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]


# ---------------------------------------------------------------- select


def test_select_folder_prints_exactly_target_paths(
    capsys: pytest.CaptureFixture[str], photos: Path
) -> None:
    code, out, err = run(capsys, "select", photos, "--target", TARGET, *FAST)
    assert code == 0, err
    lines = out.splitlines()
    assert len(lines) == TARGET == len(set(lines))
    everything = {str(p) for p in images_under(photos)}
    assert set(lines) <= everything
    # The summary goes to stderr when the paths are on stdout, so pipes get only paths.
    assert f"done: kept {TARGET} of {N_IMAGES} images" in err
    assert "selected paths: printed on stdout" in err


def test_fraction_rounds_half_up(capsys: pytest.CaptureFixture[str], photos: Path) -> None:
    code, out, err = run(capsys, "select", photos, "--fraction", "0.05", *FAST)
    assert code == 0, err
    assert len(out.splitlines()) == 8  # 150 * 0.05 = 7.5 -> 8
    assert resolve_target(25, None, 0.1) == 3  # 2.5 rounds up
    assert resolve_target(5, None, 0.5) == 3
    assert resolve_target(3, None, 0.1) == 1  # at least one
    assert resolve_target(0, None, 0.1) == 0
    assert resolve_target(40, None, 1.0) == 40
    assert resolve_target(40, 7, None) == 7


def test_list_file_and_csv_inputs(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    images = images_under(photos)
    lists = tmp_path / "lists"
    lists.mkdir()
    relative = [os.path.relpath(p, lists) for p in images]
    (lists / "images.txt").write_text("# all deer\n" + "\n".join(relative) + "\n")
    with open(lists / "images.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["label", "path"])
        writer.writerows(["deer", path] for path in reversed(relative))

    code, from_folder, err = run(capsys, "select", photos, "--target", TARGET, *FAST)
    assert code == 0, err
    expected = {os.path.abspath(p) for p in from_folder.splitlines()}
    for listing in ["images.txt", "images.csv"]:
        code, out, err = run(capsys, "select", lists / listing, "--target", TARGET, *FAST)
        assert code == 0, err
        assert {os.path.abspath(p) for p in out.splitlines()} == expected, listing
    # More than there are: everything readable is kept.
    code, out, err = run(capsys, "select", lists / "images.txt", "--target", 1000, *FAST)
    assert code == 0 and len(out.splitlines()) == N_IMAGES


def test_every_output_kind(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path, no_writes_to: Any
) -> None:
    inputs = images_under(photos)
    before = snapshot(inputs)
    canary = tmp_path / "canary.txt"
    canary.write_text("x")
    writes = no_writes_to([*inputs, canary])
    with open(canary, "a"):  # the hook itself works
        pass
    assert writes == [f"{canary} (a)"]
    writes.clear()

    out_dir = tmp_path / "out"
    code, out, err = run(
        capsys, "select", photos, "--target", TARGET, *FAST,
        "--out", out_dir / "selected.txt",
        "--manifest", out_dir / "manifest.csv",
        "--report", out_dir / "report.json",
        "--copy-to", out_dir / "copy",
        "--link-to", out_dir / "link",
        "--distribution", out_dir / "distribution.png",
        "--thumbnails", out_dir / "thumbnails.png",
    )  # fmt: skip
    assert code == 0, err
    assert writes == [], "an input image was opened for writing"
    assert snapshot(inputs) == before

    selected = (out_dir / "selected.txt").read_text(encoding="utf-8").splitlines()
    assert len(selected) == TARGET == len(set(selected))
    assert "done: kept 15 of 150 images" in out  # summary on stdout when paths go to a file
    assert not any(line in out.splitlines() for line in selected)

    with open(out_dir / "manifest.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == N_IMAGES
    assert {row["path"] for row in rows} == {str(p) for p in inputs}
    assert sorted(row["path"] for row in rows if row["kept"] == "True") == sorted(selected)
    assert all(row["bucket"] != "" and row["error"] == "" for row in rows)

    report = json.loads((out_dir / "report.json").read_text(encoding="utf-8"))
    assert report["version"] == __version__
    assert report["command"] == "select"
    assert (report["n_selected"], report["n_input"], report["n_failed"]) == (TARGET, N_IMAGES, 0)
    assert report["parameters"]["target_count"] == TARGET
    assert report["parameters"]["seed"] == 42
    assert sum(bucket["kept"] for bucket in report["buckets"]) == TARGET
    assert sum(bucket["size"] for bucket in report["buckets"]) == N_IMAGES
    assert report["timing"]["total_seconds"] > 0
    assert report["outputs"]["copy_to"]["files"] == TARGET

    wanted = {Path(p).relative_to(photos).as_posix() for p in selected}
    assert relative_files(out_dir / "copy") == wanted
    assert relative_files(out_dir / "link") == wanted
    for rel in wanted:
        copy, link, source = out_dir / "copy" / rel, out_dir / "link" / rel, photos / rel
        assert copy.read_bytes() == source.read_bytes()
        assert not os.path.samefile(copy, source)
        assert os.path.samefile(link, source)

    for chart in ["distribution.png", "thumbnails.png"]:
        with Image.open(out_dir / chart) as image:
            assert image.format == "PNG" and image.width > 100
        assert (out_dir / chart).stat().st_mode & 0o044
    assert leftovers(tmp_path) == []


def test_unreadable_image_fails_with_its_name_or_is_skipped(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    source = tmp_path / "cards"
    for index, image in enumerate(images_under(photos)[:30]):
        target = source / f"cam{index % 2}" / image.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(image, target)
    broken = source / "cam1" / "IMG_999 half copied.JPG"
    broken.write_bytes(images_under(photos)[0].read_bytes()[:300])

    out = tmp_path / "out"
    code, stdout, err = run(capsys, "select", source, "--target", 5, *FAST, "--out", out / "s.txt")
    assert code == 1
    line = one_line(err)
    assert "IMG_999 half copied.JPG" in line and "--skip-unreadable" in line
    assert "Traceback" not in err
    assert not out.exists() and stdout == ""

    code, stdout, err = run(
        capsys, "select", source, "--target", 5, *FAST, "--skip-unreadable",
        "--out", out / "s.txt", "--report", out / "r.json", "--manifest", out / "m.csv",
    )  # fmt: skip
    assert code == 0, err
    assert len((out / "s.txt").read_text().splitlines()) == 5
    assert "IMG_999 half copied.JPG" in err  # warned on stderr
    assert "1 unreadable (skipped)" in stdout
    report = json.loads((out / "r.json").read_text())
    assert report["n_failed"] == 1 and report["failures"][0]["path"] == str(broken)
    with open(out / "m.csv", newline="") as handle:
        errors = {row["path"]: row["error"] for row in csv.DictReader(handle)}
    assert errors[str(broken)] != "" and len(errors) == 31


def test_refuses_non_empty_output_folder_without_overwrite(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "small"
    dest.mkdir()
    (dest / "notes.txt").write_text("mine")
    code, out, err = run(capsys, "select", photos, "--target", 5, *FAST, "--copy-to", dest)
    assert code == 2
    line = one_line(err)
    assert str(dest) in line and "--overwrite" in line
    assert relative_files(dest) == {"notes.txt"}

    code, out, err = run(
        capsys, "select", photos, "--target", 5, *FAST, "--copy-to", dest, "--overwrite"
    )
    assert code == 0, err
    assert len(relative_files(dest)) == 6 and (dest / "notes.txt").read_text() == "mine"
    # --copy-to records the selection: no path list on stdout, the summary instead.
    assert "done: kept 5 of 150" in out and str(photos / "loc") not in out


def test_refuses_output_inside_a_source(capsys: pytest.CaptureFixture[str], photos: Path) -> None:
    before = {p.relative_to(photos) for p in photos.rglob("*")}
    for option, path in [
        ("--copy-to", photos / "smaller"),
        ("--link-to", photos / "loc00" / "small"),
        ("--distribution", photos / "chart.png"),
    ]:
        code, _, err = run(capsys, "select", photos, "--target", 5, *FAST, option, path)
        assert code == 2, option
        line = one_line(err)
        assert option in line and "inside" in line
    assert {p.relative_to(photos) for p in photos.rglob("*")} == before


def test_existing_output_file_needs_overwrite(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    target = tmp_path / "selected.txt"
    target.write_text("old\n")
    code, _, err = run(capsys, "select", photos, "--target", 4, *FAST, "--out", target)
    assert code == 2 and "already exists" in one_line(err)
    assert target.read_text() == "old\n"
    code, _, err = run(
        capsys, "select", photos, "--target", 4, *FAST, "--out", target, "--overwrite"
    )
    assert code == 0, err
    assert len(target.read_text().splitlines()) == 4


def test_ctrl_c_leaves_no_output_files(
    capsys: pytest.CaptureFixture[str],
    photos: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupted(self: SelectionResult, path: str | os.PathLike[str]) -> str:
        raise KeyboardInterrupt

    # The list, manifest and copied tree are staged by then; the thumbnails come last.
    monkeypatch.setattr(SelectionResult, "save_thumbnails", interrupted)
    out = tmp_path / "out"
    code, stdout, err = run(
        capsys, "select", photos, "--target", TARGET, *FAST,
        "--out", out / "selected.txt", "--manifest", out / "manifest.csv",
        "--report", out / "report.json", "--copy-to", out / "copy",
        "--distribution", out / "distribution.png", "--thumbnails", out / "thumbnails.png",
    )  # fmt: skip
    assert code == 130
    assert "interrupted" in one_line(err)
    assert not out.exists(), sorted(relative_files(out))
    assert stdout == ""


def test_failed_copy_leaves_nothing(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    for location in photos.iterdir():  # a file where each location folder must go
        if location.is_dir():
            (dest / location.name).write_text("blocker")
    before = relative_files(dest)
    code, _, err = run(
        capsys, "select", photos, "--target", 5, *FAST, "--copy-to", dest, "--overwrite",
        "--out", tmp_path / "selected.txt", "--report", tmp_path / "report.json",
    )  # fmt: skip
    assert code == 1
    line = one_line(err)
    assert "cannot copy" in line and str(dest) in line
    assert relative_files(dest) == before
    assert not (tmp_path / "selected.txt").exists() and not (tmp_path / "report.json").exists()
    assert leftovers(tmp_path) == []


def test_default_cache_is_used_and_reused(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    args: list[str | int | Path] = [
        "select",
        photos,
        "--target",
        5,
        "--no-progress",
        "--workers",
        "2",
    ]
    code, first, err = run(capsys, *args)
    assert code == 0, err
    assert (tmp_path / "user-cache" / "features.sqlite").is_file()
    code, second, err = run(capsys, *args)
    assert code == 0, err
    assert f"features from cache: {N_IMAGES}" in err
    assert first == second


def test_quiet_and_debug(capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path) -> None:
    code, out, err = run(capsys, "select", photos, "--target", 3, *FAST, "--quiet")
    assert code == 0 and err == "" and len(out.splitlines()) == 3
    missing = tmp_path / "nowhere"
    code, _, err = run(capsys, "select", missing, "--target", 3, *FAST, "--debug")
    assert code == 2 and "Traceback" in err and str(missing) in err.strip().splitlines()[-1]


def test_no_images_found_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    (tmp_path / "empty" / ".hidden").mkdir(parents=True)
    Image.new("RGB", (8, 8)).save(tmp_path / "empty" / ".hidden" / "x.jpg")
    code, _, err = run(capsys, "select", tmp_path / "empty", "--target", 3, *FAST)
    assert code == 1 and "no images found" in one_line(err)


# ---------------------------------------------------------------- usage and help


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        ([], "required"),
        (["select", "PHOTOS"], "--target --fraction"),
        (["select", "PHOTOS", "--target", "5", "--fraction", "0.1"], "not allowed with"),
        (["select", "PHOTOS", "--fraction", "1.5"], "at most 1"),
        (["select", "PHOTOS", "--fraction", "nan"], "at most 1"),
        (["select", "PHOTOS", "--target", "0"], "at least 1"),
        (["select", "PHOTOS", "--target", "ten"], "'ten'"),
        (["select", "PHOTOS", "--target", "5", "--hash-size", "99"], "between 2 and 64"),
        (["select", "PHOTOS", "--target", "5", "--workers", "-1"], "0 or more"),
        (["select", "PHOTOS", "--target", "5", "--distribution", "d.jpg"], ".png"),
        (["select", "PHOTOS", "--target", "5", "--strategy", "best"], "invalid choice"),
        (["select", "PHOTOS", "--target", "5", "--cache", "c.db", "--no-cache"], "not allowed"),
        (["select", "PHOTOS", "--target", "5", "--out", "a.txt", "--report", "a.txt"], "a.txt"),
        (
            ["select", "PHOTOS", "--target", "5", "--backend", "local", "--scheduler", "tcp://x:1"],
            "--backend dask",
        ),
        (["select", "no/such/folder", "--target", "5"], "no/such/folder"),
        (["balance", "PHOTOS"], "--max-per-class"),
        (["balance", "PHOTOS", "--max-per-class", "5", "--min-per-class", "9"], "above"),
        (["balance", "no/such/root", "--max-per-class", "5"], "no/such/root"),
        (["frobnicate"], "invalid choice"),
        (["select", "PHOTOS", "--target", "5", "--image-timeout", "0"], "positive"),
        (["select", "PHOTOS", "--target", "5", "--image-timeout", "soon"], "soon"),
        (["cache"], "ACTION"),
        (["cache", "purge"], "invalid choice"),
        (["cache", "info", "--target", "5"], "--target"),
    ],
)
def test_bad_usage_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], photos: Path, args: list[str], expected: str
) -> None:
    args = [str(photos) if arg == "PHOTOS" else arg for arg in args]
    code, out, err = run(capsys, *args, *(["--no-progress"] if args[:1] == ["select"] else []))
    assert code == 2
    line = one_line(err)
    assert line.startswith("smartdownsample") and "error" in line
    assert expected in line
    assert out == ""


def test_image_timeout_reaches_the_report(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    code, _, err = run(
        capsys,
        "select",
        photos,
        "--target",
        5,
        "--image-timeout",
        "12.5",
        "--no-cache",
        "--no-progress",
        "--out",
        tmp_path / "keep.txt",
        "--report",
        report,
    )
    assert code == 0, err
    assert json.loads(report.read_text())["parameters"]["image_timeout"] == 12.5


def test_help_and_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.strip() == f"smartdownsample {__version__}"
    code, out, _ = run(capsys, "--help")
    assert code == 0 and "select" in out and "balance" in out and "demo" in out
    for command in ["select", "balance", "demo"]:
        code, out, _ = run(capsys, command, "--help")
        assert code == 0
        assert "examples:" in out and f"smartdownsample {command}" in out.split("examples:")[1]


def test_doctests_of_the_cli_package() -> None:
    import smartdownsample.cli

    names = [info.name for info in pkgutil.iter_modules(smartdownsample.cli.__path__)]
    assert {"_main", "_parser", "select", "balance", "demo", "cache"} <= set(names)
    attempted = 0
    for name in names:
        module = importlib.import_module(f"smartdownsample.cli.{name}")
        result = doctest.testmod(module)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert attempted >= len(names)


def test_default_cache_path_per_platform() -> None:
    assert default_cache_path({CACHE_ENV: "/shared/c"}, "linux") == "/shared/c/features.sqlite"
    assert default_cache_path({"XDG_CACHE_HOME": "/x"}, "linux") == (
        "/x/smartdownsample/features.sqlite"
    )
    home = os.path.expanduser("~")
    assert default_cache_path({}, "linux") == os.path.join(
        home, ".cache", "smartdownsample", "features.sqlite"
    )
    assert default_cache_path({}, "darwin") == os.path.join(
        home, "Library", "Caches", "smartdownsample", "features.sqlite"
    )
    assert default_cache_path({"LOCALAPPDATA": "/appdata"}, "win32") == os.path.join(
        "/appdata", "smartdownsample", "Cache", "features.sqlite"
    )


# ---------------------------------------------------------------- balance


def test_balance_cuts_large_classes_and_keeps_small_ones(
    capsys: pytest.CaptureFixture[str], classes: Path, tmp_path: Path, no_writes_to: Any
) -> None:
    inputs = images_under(classes)
    before = snapshot(inputs)
    writes = no_writes_to(inputs)
    out = tmp_path / "balanced"
    code, stdout, err = run(
        capsys, "balance", classes, "--max-per-class", 30, "--min-per-class", 20, *FAST,
        "--copy-to", out / "copy", "--link-to", out / "link", "--out", out / "kept.txt",
        "--report", out / "report.json", "--manifest", out / "manifest.csv",
        "--distribution", out / "dist.png",
    )  # fmt: skip
    assert code == 0, err
    assert writes == [] and snapshot(inputs) == before
    assert "'fox' has only 12 images, fewer than --min-per-class 20" in err

    for tree in ["copy", "link"]:
        counts: dict[str, int] = {}
        for rel in relative_files(out / tree):
            counts[rel.split("/")[0]] = counts.get(rel.split("/")[0], 0) + 1
        assert counts == {"deer": 30, "owl": 30, "fox": 12}, tree
    fox_copied = {rel for rel in relative_files(out / "copy") if rel.startswith("fox/")}
    fox_all = {p.relative_to(classes).as_posix() for p in images_under(classes / "fox")}
    assert fox_copied == fox_all  # the small class whole
    kept = (out / "kept.txt").read_text().splitlines()
    assert len(kept) == 72
    assert {Path(p).relative_to(classes).as_posix() for p in kept} == relative_files(out / "copy")

    report = json.loads((out / "report.json").read_text())
    table = {row["class"]: row for row in report["classes"]}
    assert [row["class"] for row in report["classes"]] == ["deer", "fox", "owl"]
    assert (table["deer"]["n_images"], table["deer"]["n_kept"]) == (90, 30)
    assert table["deer"]["action"] == "downsampled" and table["deer"]["summary"]["n_selected"] == 30
    assert (table["fox"]["n_kept"], table["fox"]["action"], table["fox"]["summary"]) == (
        12, "kept whole", None,
    )  # fmt: skip
    assert (report["n_images"], report["n_selected"]) == (142, 72)

    with open(out / "manifest.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == 142
    assert sum(row["kept"] == "True" for row in rows) == 72
    assert {row["class"] for row in rows if row["action"] == "kept whole"} == {"fox"}
    assert sorted(p.name for p in out.glob("dist-*.png")) == ["dist-deer.png", "dist-owl.png"]
    assert "deer" in stdout and "kept whole" in stdout and "done: kept 72 of 142" in stdout


def test_balance_without_class_folders_fails(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    Image.new("RGB", (8, 8)).save(tmp_path / "loose.jpg")
    code, _, err = run(capsys, "balance", tmp_path, "--max-per-class", 3, *FAST)
    assert code == 1 and "no subfolders" in one_line(err)


# ---------------------------------------------------------------- demo


def test_demo_makes_outputs_and_reuses_its_data_set(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "demo"
    code, out, err = run(capsys, "demo", folder, "--n-images", 60, "--no-progress")
    assert code == 0, err
    for name in ["distribution.png", "thumbnails.png", "selected.txt", "report.json"]:
        assert (folder / name).is_file(), name
        assert str(folder / name) in out  # tells the user where it is
    assert len((folder / "selected.txt").read_text().splitlines()) == 6
    with open(folder / "manifest.csv", newline="") as handle:
        assert len(list(csv.DictReader(handle))) == 60
    report = json.loads((folder / "report.json").read_text())
    assert report["n_selected"] == 6 and report["dataset_reused"] is False
    assert "kept 6 of 60 images" in out
    assert [p.name for p in folder.iterdir() if p.name.startswith(".")] == []

    code, out, err = run(capsys, "demo", folder, "--target", 10, "--no-progress", "--overwrite")
    assert code == 0, err
    assert "reusing the demo data set" in err
    assert "features from cache: 60" in out
    assert json.loads((folder / "report.json").read_text())["n_selected"] == 10


def test_demo_refuses_a_folder_it_did_not_make(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "holiday.jpg").write_bytes(b"mine")
    code, _, err = run(capsys, "demo", tmp_path, "--no-progress")
    assert code == 2 and "no finished demo data set" in one_line(err)
    assert sorted(os.listdir(tmp_path)) == ["images"]
    assert (tmp_path / "images" / "holiday.jpg").read_bytes() == b"mine"


# ---------------------------------------------------------------- cache


def cache_lines(capsys: pytest.CaptureFixture[str], *args: str | Path) -> list[str]:
    """The stdout lines of a ``cache`` command that must succeed quietly."""
    code, out, err = run(capsys, "cache", *args)
    assert (code, err) == (0, "")
    return out.splitlines()


def test_cache_info_and_clear(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    database = tmp_path / "my cache" / "features.sqlite"
    code, _, err = run(capsys, "select", photos, "--target", 5, *FAST[:1], "--cache", database)
    assert code == 0, err

    lines = cache_lines(capsys, "info", "--cache", database)
    assert lines[:2] == [
        f"path: {database}",
        f"entries: {N_IMAGES} ({N_IMAGES} usable by this version)",
    ]
    size = int(lines[2].removeprefix("size: ").removesuffix(" bytes").replace(",", ""))
    assert size >= database.stat().st_size > 0
    assert lines[3] == f"schema: {SCHEMA_VERSION}"
    assert lines[4].startswith(f"created_by: smartdownsample {__version__} (")
    assert len(lines) == 5

    assert cache_lines(capsys, "clear", "--cache", database) == [
        f"cleared {N_IMAGES} entries from {database}"
    ]
    assert (
        cache_lines(capsys, "info", "--cache", database)[1]
        == "entries: 0 (0 usable by this version)"
    )
    code, _, err = run(capsys, "select", photos, "--target", 5, *FAST[:1], "--cache", database)
    assert code == 0 and "features from cache: 0" in err


def test_cache_commands_without_a_cache(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "no cache here" / "features.sqlite"
    for action in ("info", "clear"):
        assert cache_lines(capsys, action, "--cache", missing) == [f"no cache at {missing}"]
    assert not missing.parent.exists()


def test_cache_commands_use_the_default_cache(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    default = tmp_path / "user-cache" / "features.sqlite"  # $SMARTDOWNSAMPLE_CACHE_DIR
    assert cache_lines(capsys, "info") == [f"no cache at {default}"]
    code, _, err = run(capsys, "select", photos, "--target", 5, *FAST[:1])
    assert code == 0, err
    assert cache_lines(capsys, "info")[:2] == [
        f"path: {default}",
        f"entries: {N_IMAGES} ({N_IMAGES} usable by this version)",
    ]
    assert cache_lines(capsys, "clear") == [f"cleared {N_IMAGES} entries from {default}"]


def test_cache_commands_refuse_what_is_not_a_cache(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    notes = tmp_path / "notes.sqlite"
    notes.write_text("my notes\n")
    for action in ("info", "clear"):
        code, out, err = run(capsys, "cache", action, "--cache", notes)
        assert (code, out) == (1, "")
        line = one_line(err)
        assert line.startswith("smartdownsample: error: ") and str(notes) in line
    assert notes.read_text() == "my notes\n"
    for action in ("info", "clear"):
        code, out, err = run(capsys, "cache", action, "--cache", tmp_path)
        assert (code, out) == (1, "")
        assert "not a feature cache file" in one_line(err)


# ---------------------------------------------------------------- Dask


def test_balance_connects_to_the_scheduler_once_for_every_class(
    capsys: pytest.CaptureFixture[str], classes: Path, tmp_path: Path
) -> None:
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None
    )
    with cluster:
        code, _, err = run(
            capsys, "balance", classes, "--max-per-class", 30, *FAST,
            "--scheduler", cluster.scheduler_address, "--out", tmp_path / "kept.txt",
        )  # fmt: skip
        events = [event for _, event in cluster.scheduler.get_events("all")]
    assert code == 0, err
    assert len((tmp_path / "kept.txt").read_text().splitlines()) == 72
    actions = [(e["action"], e["client"]) for e in events if isinstance(e, dict) and "client" in e]
    added = [client for action, client in actions if action == "add-client"]
    assert len(added) == 1, actions  # one client for the two classes cut (deer and owl)
    assert ("remove-client", added[0]) in actions  # and closed when the selections end
