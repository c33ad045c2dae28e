"""Outputs never change what the user owns without --overwrite, and then only inside them.

Issue 11, items 1, 2, 3, 4, 12 and 16, on real folders, links and signals:

* ``demo`` keeps existing outputs unless ``--overwrite`` (item 1);
* nothing is written through a symbolic link to a folder inside a copy or
  link folder (item 2);
* an interrupted ``--overwrite`` run (Ctrl-C, SIGTERM, SIGHUP, really sent
  to a real process) puts back every file it replaced (item 3);
* ``--overwrite`` into an earlier copy leaves exactly the new selection,
  removing only what the earlier run put there (item 4);
* one run at a time writes into a copy folder (item 12);
* every output path is checked before any image is decoded (item 16).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from folders import Snapshot, relative_selection, snapshot, temporaries
from smartdownsample.cli import main
from smartdownsample.outputs import (
    LOCK_NAME,
    RECORD_NAME,
    FolderLock,
    OutputError,
    export_tree,
)
from smartdownsample.result import SelectionResult

FAST = ["--no-progress", "--no-cache", "--workers", "1"]
RUN_TIMEOUT = 120.0


pytestmark = pytest.mark.usefixtures("private_cache")


@pytest.fixture
def symlinks(tmp_path: Path) -> None:
    """Skip where symbolic links cannot be made (Windows without the privilege)."""
    try:
        os.symlink(tmp_path, tmp_path / "probe", target_is_directory=True)
    except (OSError, NotImplementedError):
        pytest.skip("cannot make symbolic links here")
    os.unlink(tmp_path / "probe")


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([os.fspath(arg) if isinstance(arg, Path) else str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def one_line(text: str) -> str:
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got: {text!r}"
    return lines[0]


def files_under(folder: Path) -> set[str]:
    """Every file and link under ``folder`` (relative), the tool's record left out."""
    found = set()
    for parent, dirs, names in os.walk(folder):
        for name in names + [d for d in dirs if os.path.islink(os.path.join(parent, d))]:
            path = os.path.join(parent, name)
            if path != os.path.join(folder, RECORD_NAME):
                found.add(os.path.relpath(path, folder).replace(os.sep, "/"))
    return found


# ---------------------------------------------------------------- item 1: demo


def test_demo_keeps_existing_outputs_without_overwrite(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "my demo"
    folder.mkdir()
    mine = {"selected.txt": "my list\n", "manifest.csv": "my,table\n"}
    for name, text in mine.items():
        (folder / name).write_text(text)

    code, _, err = run(capsys, "demo", folder, "--n-images", 30, *FAST)
    assert code == 2, err
    line = one_line(err)
    assert str(folder / "selected.txt") in line and "--overwrite" in line
    assert sorted(os.listdir(folder)) == sorted(mine)  # refused before making the data set
    assert {name: (folder / name).read_text() for name in mine} == mine

    code, _, err = run(capsys, "demo", folder, "--n-images", 30, *FAST, "--overwrite")
    assert code == 0, err
    assert len((folder / "selected.txt").read_text().splitlines()) == 3
    assert (folder / "manifest.csv").read_text() != mine["manifest.csv"]


# ---------------------------------------------------------------- item 2: links inside DEST


@pytest.mark.usefixtures("symlinks")
@pytest.mark.parametrize("option", ["--copy-to", "--link-to"])
def test_nothing_is_written_through_a_linked_folder_inside_dest(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path, option: str
) -> None:
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "outside"
    for location in sorted(p for p in photos.iterdir() if p.is_dir()):
        (outside / location.name).mkdir(parents=True)
        (outside / location.name / "keep.txt").write_text("mine")
        os.symlink(outside / location.name, dest / location.name, target_is_directory=True)
    outside_before, dest_before = snapshot(outside), files_under(dest)

    code, _, err = run(
        capsys, "select", photos, "--target", 6, *FAST, option, dest, "--overwrite",
        "--out", tmp_path / "selected.txt",
    )  # fmt: skip
    assert code == 2, err  # refused before decoding
    line = one_line(err)
    assert "symbolic link" in line and str(dest) in line and option in line
    assert snapshot(outside) == outside_before
    assert files_under(dest) == dest_before
    assert not (tmp_path / "selected.txt").exists()
    assert temporaries(tmp_path) == []


@pytest.mark.usefixtures("symlinks")
@pytest.mark.parametrize("mode", ["copy", "link"])
def test_export_refuses_a_linked_folder_and_undoes_everything(tmp_path: Path, mode: str) -> None:
    """The export's own check (the library has no CLI check before it)."""
    source = tmp_path / "src"
    for name in ("a", "b"):
        (source / name).mkdir(parents=True)
        (source / name / "x.jpg").write_bytes(name.encode())
    outside = tmp_path / "outside"
    outside.mkdir()
    dest = tmp_path / "dest"
    (dest / "b").mkdir(parents=True)
    (dest / "b" / "x.jpg").write_bytes(b"earlier")
    os.symlink(outside, dest / "a", target_is_directory=True)
    before = snapshot(dest)
    paths = [str(source / "b" / "x.jpg"), str(source / "a" / "x.jpg")]  # b first: replaced
    with pytest.raises(OutputError, match=r"is a symbolic link .*remove the link"):
        export_tree(paths, dest, mode="link" if mode == "link" else "copy", root=str(source))
    assert os.listdir(outside) == []
    assert snapshot(dest) == before
    assert temporaries(tmp_path) == []


# ---------------------------------------------------------------- item 3: roll back replaced files


def _earlier_copy(capsys: pytest.CaptureFixture[str], photos: Path, dest: Path) -> Snapshot:
    code, _, err = run(capsys, "select", photos, "--target", 8, *FAST, "--copy-to", dest)
    assert code == 0, err
    return snapshot(dest)


def test_ctrl_c_puts_back_the_files_an_overwrite_replaced(
    capsys: pytest.CaptureFixture[str],
    photos: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dest = tmp_path / "copy"
    before = _earlier_copy(capsys, photos, dest)

    def interrupted(self: SelectionResult, path: str | os.PathLike[str]) -> str:
        raise KeyboardInterrupt

    # The copy has replaced every earlier file by then; the thumbnails come last.
    monkeypatch.setattr(SelectionResult, "save_thumbnails", interrupted)
    code, _, err = run(
        capsys, "select", photos, "--target", 8, *FAST, "--copy-to", dest, "--overwrite",
        "--thumbnails", tmp_path / "thumbnails.png",
    )  # fmt: skip
    assert code == 130
    assert "no output files were written" in one_line(err)
    assert snapshot(dest) == before  # the same files: bytes, inodes and times
    assert temporaries(tmp_path) == []


CHILD = """\
import os, signal, sys
# As from an interactive shell: Ctrl-C raises KeyboardInterrupt (a shell's background job,
# such as a CI runner may start, would have SIGINT ignored from the start).
signal.signal(signal.SIGINT, signal.default_int_handler)
from smartdownsample import outputs
from smartdownsample.cli import main

copy = outputs._copy_file
done = []

def copy_then_signal(*args, **kwargs):
    copy(*args, **kwargs)
    done.append(args)
    if len(done) == 3:  # in the middle of the copy: 3 of 8 files replaced
        os.kill(os.getpid(), {signum})

outputs._copy_file = copy_then_signal
sys.exit(main(sys.argv[1:]))
"""

STOPS = [
    pytest.param(signal.SIGINT, 130, "interrupted", id="SIGINT"),
    pytest.param(signal.SIGTERM, 143, "stopped by SIGTERM", id="SIGTERM"),
    pytest.param(
        getattr(signal, "SIGHUP", signal.SIGTERM),
        129,
        "stopped by SIGHUP",
        id="SIGHUP",
        marks=pytest.mark.skipif(not hasattr(signal, "SIGHUP"), reason="no SIGHUP"),
    ),
]


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
@pytest.mark.parametrize(("signum", "exit_code", "words"), STOPS)
def test_a_signal_in_the_middle_of_an_overwrite_puts_everything_back(
    capsys: pytest.CaptureFixture[str],
    photos: Path,
    tmp_path: Path,
    signum: int,
    exit_code: int,
    words: str,
) -> None:
    """A real signal to a real process, 3 files into the copy (replacing an earlier copy)."""
    dest = tmp_path / "copy"
    before = _earlier_copy(capsys, photos, dest)
    out = tmp_path / "out"
    out.mkdir()
    (out / "manifest.csv").write_text("earlier manifest\n")
    done = subprocess.run(
        [
            sys.executable, "-c", CHILD.format(signum=int(signum)),
            "select", str(photos), "--target", "8", *FAST, "--copy-to", str(dest),
            "--overwrite", "--manifest", str(out / "manifest.csv"), "--out",
            str(out / "selected.txt"),
        ],
        capture_output=True, text=True, timeout=RUN_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == exit_code, done.stderr
    assert one_line(done.stderr) == f"smartdownsample: error: {words}; no output files were written"
    assert snapshot(dest) == before
    assert sorted(os.listdir(out)) == ["manifest.csv"]
    assert (out / "manifest.csv").read_text() == "earlier manifest\n"
    assert temporaries(tmp_path) == []


# ---------------------------------------------------------------- item 4: exactly the selection


@pytest.mark.parametrize("option", ["--copy-to", "--link-to"])
def test_overwrite_leaves_exactly_the_new_selection(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path, option: str
) -> None:
    dest = tmp_path / "small set"
    first, second = tmp_path / "first.txt", tmp_path / "second.txt"
    code, _, err = run(
        capsys, "select", photos, "--target", 11, "--seed", 1, *FAST, option, dest, "--out", first
    )
    assert code == 0, err
    (dest / "notes.txt").write_text("mine")
    (dest / "loc00").mkdir(exist_ok=True)
    (dest / "loc00" / "my-pick.jpg").write_bytes(b"mine too")

    code, out, err = run(
        capsys, "select", photos, "--target", 3, "--seed", 2, *FAST, option, dest,
        "--overwrite", "--out", second,
    )  # fmt: skip
    assert code == 0, err
    wanted = relative_selection(second, photos)
    assert files_under(dest) == wanted | {"notes.txt", "loc00/my-pick.jpg"}
    assert (dest / "notes.txt").read_text() == "mine"
    removed = len(relative_selection(first, photos) - wanted)
    assert f"removed {removed:,} images of an earlier run" in out
    assert "kept 2 other files this tool did not write" in out


def test_a_file_of_an_earlier_copy_changed_since_is_kept(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "copy"
    first, preview = tmp_path / "first.txt", tmp_path / "preview.txt"
    args = [photos, *FAST, "--copy-to", dest]
    assert run(capsys, "select", *args, "--target", 11, "--seed", 1, "--out", first)[0] == 0
    # The selection the run below makes (paths only, no copy).
    code, _, err = run(
        capsys, "select", photos, *FAST, "--target", 3, "--seed", 2, "--out", preview
    )
    assert code == 0, err
    edited = sorted(relative_selection(first, photos) - relative_selection(preview, photos))[0]
    with open(dest / edited, "ab") as handle:
        handle.write(b"my edit")

    code, out, err = run(capsys, "select", *args, "--target", 3, "--seed", 2, "--overwrite")
    assert code == 0, err
    assert files_under(dest) == relative_selection(preview, photos) | {edited}
    assert (dest / edited).read_bytes().endswith(b"my edit")
    assert f"kept 1 file of an earlier run changed since (e.g. {Path(edited)})" in out


@pytest.mark.usefixtures("symlinks")
def test_a_record_never_removes_anything_outside_the_folder(tmp_path: Path) -> None:
    source = tmp_path / "src" / "cam"
    source.mkdir(parents=True)
    (source / "a.jpg").write_bytes(b"a")
    victim = tmp_path / "victim.jpg"
    victim.write_bytes(b"mine")
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "b.jpg").write_bytes(b"mine")
    dest = tmp_path / "dest"
    dest.mkdir()
    os.symlink(linked, dest / "via-link", target_is_directory=True)

    def identity(path: Path) -> list[int]:
        info = os.lstat(path)
        return [info.st_ino, info.st_size, info.st_mtime_ns]

    hostile = {
        "tool": "smartdownsample",
        "format": 1,
        "mode": "copy",
        "files": [
            ["../victim.jpg", *identity(victim)],
            [str(victim), *identity(victim)],
            ["via-link/b.jpg", *identity(linked / "b.jpg")],
        ],
    }
    (dest / RECORD_NAME).write_text(json.dumps(hostile))
    export = export_tree([str(source / "a.jpg")], dest, mode="copy", root=str(tmp_path / "src"))
    assert export.n_removed == 0
    assert victim.read_bytes() == b"mine" and (linked / "b.jpg").read_bytes() == b"mine"
    assert (dest / "cam" / "a.jpg").read_bytes() == b"a"


@pytest.mark.skipif(sys.platform != "linux", reason="file names that are not UTF-8")
def test_the_record_keeps_names_that_are_not_utf8(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    odd = os.path.join(os.fsencode(source), b"caf\xe9.jpg")
    with open(odd, "wb") as handle:
        handle.write(b"odd")
    (source / "plain.jpg").write_bytes(b"plain")
    dest = tmp_path / "dest"
    export_tree([os.fsdecode(odd)], dest, mode="copy", root=str(source))
    (dest / RECORD_NAME).read_text(encoding="ascii")  # surrogates escaped, valid JSON
    again = export_tree([str(source / "plain.jpg")], dest, mode="copy", root=str(source))
    assert again.n_removed == 1 and again.kept_other == []
    assert sorted(os.listdir(os.fsencode(dest))) == [os.fsencode(RECORD_NAME), b"plain.jpg"]


# ---------------------------------------------------------------- item 12: one run at a time


HOLDER = """\
import sys
from smartdownsample.outputs import FolderLock
with FolderLock(sys.argv[1], option="--copy-to"):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_folder_another_run_writes_into_is_refused(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    dest = tmp_path / "new copy"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(dest)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        for extra in ([], ["--overwrite"]):
            code, _, err = run(
                capsys, "select", photos, "--target", 4, *FAST, "--copy-to", dest, *extra
            )
            assert code == 1, err
            line = one_line(err)
            assert "in use by another smartdownsample run" in line
            assert f"pid {holder.pid}" in line and str(dest) in line
            assert os.listdir(dest) == [LOCK_NAME]
    finally:
        holder.communicate("", timeout=RUN_TIMEOUT)
    assert holder.returncode == 0
    assert not dest.exists()  # the holder made it, and removed it again

    code, _, err = run(capsys, "select", photos, "--target", 4, *FAST, "--copy-to", dest)
    assert code == 0, err
    assert len(files_under(dest)) == 4 and not (dest / LOCK_NAME).exists()


def test_two_runs_at_once_never_mix_their_selections(photos: Path, tmp_path: Path) -> None:
    dest = tmp_path / "copy"
    runs = []
    for seed in (1, 2):
        command = [
            sys.executable, "-m", "smartdownsample", "select", str(photos), "--target", "9",
            "--seed", str(seed), *FAST, "--copy-to", str(dest), "--overwrite",
            "--out", str(tmp_path / f"selected-{seed}.txt"),
        ]  # fmt: skip
        runs.append(
            subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        )
    outcomes = [(process.wait(RUN_TIMEOUT), process.communicate()[1]) for process in runs]
    succeeded = [seed for seed, (code, _) in zip((1, 2), outcomes, strict=True) if code == 0]
    assert succeeded, outcomes
    # Both may succeed one after the other (--overwrite), never at once.
    last = succeeded[-1] if len(succeeded) == 1 else _last_written(tmp_path)
    assert files_under(dest) == relative_selection(tmp_path / f"selected-{last}.txt", photos)
    for code, err in outcomes:
        if code != 0:
            assert code == 1 and "in use by another smartdownsample run" in one_line(err)
    assert temporaries(tmp_path) == []


def _last_written(folder: Path) -> int:
    times = {seed: (folder / f"selected-{seed}.txt").stat().st_mtime_ns for seed in (1, 2)}
    return max(times, key=lambda seed: times[seed])


def test_lock_is_exclusive_and_leaves_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "a" / "b"
    with FolderLock(folder, option="--link-to") as lock:
        assert (folder / LOCK_NAME).read_text() == f"{os.getpid()}\n"
        with pytest.raises(OutputError, match=r"--link-to folder .* is in use .* \(pid \d+\)"):
            FolderLock(folder, option="--link-to").acquire()
        assert lock.path == str(folder / LOCK_NAME)
    assert not (tmp_path / "a").exists()


# ---------------------------------------------------------------- item 16: checked before decoding


BLOCKED = [
    ("--out", "blocker/selected.txt"),
    ("--manifest", "blocker/manifest.csv"),
    ("--report", "blocker/deeper/report.json"),
    ("--copy-to", "blocker/copy"),
    ("--link-to", "blocker/links"),
    ("--distribution", "blocker/distribution.png"),
    ("--thumbnails", "blocker/thumbnails.png"),
]


@pytest.mark.parametrize(("option", "relative"), BLOCKED, ids=[o for o, _ in BLOCKED])
def test_an_output_under_a_file_is_refused_before_decoding(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path, option: str, relative: str
) -> None:
    source = tmp_path / "source"
    source.mkdir()
    for image in sorted(photos.rglob("*.*"))[:5]:
        shutil.copy(image, source / image.name)
    (source / "broken.jpg").write_bytes(b"not a picture")  # decoding it would fail first
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")

    code, _, err = run(capsys, "select", source, "--target", 2, *FAST, option, tmp_path / relative)
    assert code == 2, err
    line = one_line(err)
    assert option in line and f"{str(blocker)!r} is a file, not a folder" in line
    assert blocker.read_text() == "a file, not a folder"
    assert sorted(os.listdir(tmp_path)) == ["blocker", "source"]


def test_demo_dir_under_a_file_is_refused(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "blocker").write_text("x")
    code, _, err = run(capsys, "demo", tmp_path / "blocker" / "demo", "--n-images", 10, *FAST)
    assert code == 2, err
    assert "is a file" in one_line(err)
