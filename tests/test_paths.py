"""Inputs on a real file system: unlistable folders, links, odd names, stdin and devices.

Every test builds its own tree in ``tmp_path`` with real hard and symbolic
links, FIFOs, names that are not UTF-8 and folders without permissions
(checked in a child process without the capabilities that let root ignore
them), and drives the command line or the library on it.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from smartdownsample import InvalidArgumentError, downsample
from smartdownsample.cli import CACHE_ENV, main
from smartdownsample.listing import ListingError, find_images, list_sources, read_list_file
from smartdownsample.outputs import OutputError, OutputTransaction
from smartdownsample.paths import absolute_path
from unprivileged import cli_unprivileged, run_python_unprivileged

POSIX_ONLY = pytest.mark.skipif(
    os.name == "nt", reason="POSIX file system: symbolic links, FIFOs, /dev, chmod"
)
FAST = ["--no-progress", "--workers", "1"]
QUIET: dict[str, Any] = {"show_progress": False, "n_workers": 1}
COLOURS = [(200, 40, 40), (40, 200, 40), (40, 40, 200), (220, 220, 30), (30, 30, 30)]
NOT_UTF8 = os.fsdecode(b"caf\xe9.jpg")
"""A Latin-1 file name, as Python gives it (surrogate escape for the byte 0xE9)."""


pytestmark = pytest.mark.usefixtures("private_cache")


def _image(path: Path | str, index: int = 0) -> str:
    name = os.fspath(path)
    os.makedirs(os.path.dirname(name), exist_ok=True)
    colour = COLOURS[index % len(COLOURS)]
    Image.new("RGB", (24, 16), colour).save(name, "JPEG")
    return name


def _run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([os.fspath(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _cli(*args: str | Path, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    command = [sys.executable, "-m", "smartdownsample", *(os.fspath(arg) for arg in args)]
    done: subprocess.CompletedProcess[bytes] = subprocess.run(
        command, capture_output=True, timeout=120, check=False, **kwargs
    )
    return done


def _same_files(paths: list[str]) -> set[tuple[int, int]]:
    return {(os.stat(p).st_dev, os.stat(p).st_ino) for p in paths}


# ---------------------------------------------------------------- item 5: unlistable folders


def _tree_with_locked_folder(tmp_path: Path) -> tuple[Path, Path]:
    root = tmp_path / "photos"
    for index in range(3):
        _image(root / "open" / f"IMG_{index}.jpg", index)
    locked = root / "locked"
    for index in range(4):
        _image(locked / f"IMG_{index}.jpg", index)
    locked.chmod(0)
    return root, locked


@POSIX_ONLY
def test_unlistable_folder_stops_the_run_naming_it(tmp_path: Path) -> None:
    root, locked = _tree_with_locked_folder(tmp_path)
    try:
        done = cli_unprivileged("select", str(root), "--target", "3", "--no-cache", *FAST)
    finally:
        locked.chmod(0o755)
    assert done.returncode == 1, done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert str(locked) in lines[0] and "--skip-unreadable" in lines[0]
    assert done.stdout == ""


@POSIX_ONLY
def test_unlistable_folder_is_skipped_and_reported(tmp_path: Path) -> None:
    root, locked = _tree_with_locked_folder(tmp_path)
    report = tmp_path / "out" / "report.json"
    report.parent.mkdir()
    try:
        done = cli_unprivileged(
            "select", str(root), "--target", "3", "--no-cache", *FAST,
            "--skip-unreadable", "--report", str(report), "--out", str(tmp_path / "out" / "s.txt"),
        )  # fmt: skip
    finally:
        locked.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert str(locked) in done.stderr
    assert "1 folder could not be listed (skipped)" in done.stdout
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["n_failed"] == 1
    assert [f["path"] for f in data["failures"]] == [str(locked)]


@POSIX_ONLY
def test_find_images_raises_for_an_unlistable_folder_unless_told_to_skip(tmp_path: Path) -> None:
    root, locked = _tree_with_locked_folder(tmp_path)
    code = textwrap.dedent(
        """
        import sys
        from smartdownsample.listing import ListingError, find_images
        try:
            find_images(sys.argv[1])
        except ListingError as exc:
            print("raised", exc.folder)
        skipped = []
        found = find_images(sys.argv[1], on_error=lambda folder, exc: skipped.append(folder))
        print(len(found), skipped)
        """
    )
    try:
        done = run_python_unprivileged(code, str(root))
    finally:
        locked.chmod(0o755)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [f"raised {locked}", f"3 [{str(locked)!r}]"]
    assert issubclass(ListingError, OSError)


@POSIX_ONLY
def test_link_into_a_folder_without_permission_is_a_listing_failure(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    _image(root / "IMG_0.jpg", 0)
    secret = tmp_path / "secret"
    _image(secret / "cam" / "IMG_1.jpg", 1)
    os.symlink(secret / "cam", root / "cam_link", target_is_directory=True)
    secret.chmod(0)
    try:
        done = cli_unprivileged("select", str(root), "--target", "2", "--no-cache", *FAST)
    finally:
        secret.chmod(0o755)
    assert done.returncode == 1, done.stdout
    assert str(root / "cam_link") in done.stderr and "--skip-unreadable" in done.stderr


@POSIX_ONLY
def test_balance_stops_at_an_unlistable_folder_in_a_class(tmp_path: Path) -> None:
    root = tmp_path / "crops"
    for index in range(3):
        _image(root / "deer" / f"IMG_{index}.jpg", index)
        _image(root / "fox" / "cam" / f"IMG_{index}.jpg", index)
    locked = root / "fox" / "cam"
    locked.chmod(0)
    try:
        stopped = cli_unprivileged("balance", str(root), "--max-per-class", "2", "--no-cache")
        skipped = cli_unprivileged(
            "balance", str(root), "--max-per-class", "2", "--no-cache", "--skip-unreadable"
        )
    finally:
        locked.chmod(0o755)
    assert stopped.returncode == 1 and str(locked) in stopped.stderr
    assert skipped.returncode == 0, skipped.stderr
    assert "1 folder could not be listed (skipped)" in skipped.stderr + skipped.stdout


@POSIX_ONLY
def test_balance_skips_an_unlistable_class_folder_only_when_told(tmp_path: Path) -> None:
    root = tmp_path / "crops"
    for index in range(3):
        _image(root / "deer" / f"IMG_{index}.jpg", index)
        _image(root / "owl" / f"IMG_{index}.jpg", index)
    locked = root / "owl"
    locked.chmod(0)
    report = tmp_path / "b.json"
    try:
        stopped = cli_unprivileged(
            "balance", str(root), "--max-per-class", "2", "--no-cache", "--no-progress"
        )
        skipped = cli_unprivileged(
            "balance", str(root), "--max-per-class", "2", "--no-cache", "--skip-unreadable",
            "--report", str(report),
        )  # fmt: skip
    finally:
        locked.chmod(0o755)
    assert stopped.returncode == 1 and str(locked) in stopped.stderr
    assert len(stopped.stderr.strip().splitlines()) == 1, stopped.stderr
    assert skipped.returncode == 0, skipped.stderr
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["n_failed"] == 1 and data["folders_not_listed"][0]["path"] == str(locked)


# ---------------------------------------------------------------- item 6: one file, many paths


def _linked_tree(tmp_path: Path) -> Path:
    deer = tmp_path / "deer"
    _image(deer / "IMG_1.jpg", 0)
    _image(deer / "IMG_2.jpg", 1)
    _image(deer / "IMG_3.jpg", 2)
    os.link(deer / "IMG_1.jpg", deer / "IMG_1_hard.jpg")
    os.symlink("IMG_2.jpg", deer / "IMG_2_sym.jpg")
    return deer


@POSIX_ONLY
def test_hard_and_symbolic_links_to_one_file_count_once(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    deer = _linked_tree(tmp_path)
    os.symlink(deer, tmp_path / "deer_alias", target_is_directory=True)
    listing = list_sources([str(deer), str(tmp_path / "deer_alias")])
    assert listing.paths == [str(deer / f"IMG_{n}.jpg") for n in (1, 2, 3)]
    assert len(listing.merged) == 7  # the hard link, the symlink, all five through the alias
    assert any("count once" in record.getMessage() for record in caplog.records)


@POSIX_ONLY
def test_library_keeps_one_path_per_file_in_natural_order(tmp_path: Path) -> None:
    deer = _linked_tree(tmp_path)
    given = [str(deer / name) for name in ("IMG_2_sym.jpg", "IMG_1_hard.jpg", "IMG_3.jpg")]
    given += [str(deer / "IMG_1.jpg"), str(deer / "IMG_2.jpg")]
    result = downsample(given, 10, **QUIET)
    assert sorted(result.paths) == sorted(str(deer / f"IMG_{n}.jpg") for n in (1, 2, 3))
    assert len(result.selected_paths) == 3 == len(_same_files(result.selected_paths))
    assert sorted(result.merged) == [(0, 4), (1, 3)]  # (dropped, kept) caller indices
    assert result.failures == ()


@POSIX_ONLY
def test_cli_select_counts_linked_files_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    deer = _linked_tree(tmp_path)
    report = tmp_path / "r.json"
    code, out, err = _run(capsys, "select", deer, "--target", "5", *FAST, "--report", report)
    assert code == 0, err
    assert len(out.splitlines()) == 3
    assert "2 paths name a file already listed" in err
    assert json.loads(report.read_text())["n_links_merged"] == 2


@POSIX_ONLY
def test_balance_merges_a_class_folder_alias_and_a_link_up(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "crops"
    for index in range(3):
        _image(root / "deer" / f"IMG_{index}.jpg", index)
    for index in range(2):
        _image(root / "fox" / f"IMG_{index}.jpg", index + 3)
    os.symlink("deer", root / "deer_alias", target_is_directory=True)
    os.symlink("deer", root / "a_deer", target_is_directory=True)  # a link sorting first
    os.symlink("..", root / "fox" / "up", target_is_directory=True)
    report = tmp_path / "balance.json"
    code, _, err = _run(capsys, "balance", root, "--max-per-class", "10", *FAST, "--report", report)
    assert code == 0, err
    data = json.loads(report.read_text())
    assert [(c["class"], c["n_images"]) for c in data["classes"]] == [("deer", 3), ("fox", 2)]
    assert data["n_images"] == 5 and data["n_selected"] == 5
    assert "deer_alias is a link to the class folder" in err


# ---------------------------------------------------------------- item 9: lists read back


ODD_CHARACTERS = ["\x0b", "\x0c", "\x1c", "\x85", "\u2028"]


@POSIX_ONLY
def test_out_list_reads_back_as_a_source_from_another_folder(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photos = tmp_path / "work" / "photos"
    names = [f"IMG{ch}{n}.jpg" for n, ch in enumerate(ODD_CHARACTERS)] + ["IMG 9 .jpg"]
    for index, name in enumerate(names):
        _image(photos / name, index)
    monkeypatch.chdir(tmp_path / "work")
    code, _, err = _run(
        capsys, "select", "photos", "--target", "100", *FAST, "--out", "lists/keep.txt"
    )
    assert code == 0, err
    written = (tmp_path / "work" / "lists" / "keep.txt").read_bytes().split(b"\n")
    assert written[-1] == b"" and all(os.path.isabs(os.fsdecode(w)) for w in written[:-1])
    monkeypatch.chdir(tmp_path)
    listed = read_list_file(tmp_path / "work" / "lists" / "keep.txt")
    assert sorted(listed) == sorted(str(photos / name) for name in names)
    code, out, err = _run(capsys, "select", "work/lists/keep.txt", "--target", "100", *FAST)
    assert code == 0, err
    assert len(out.split("\n")) == len(names) + 1


@POSIX_ONLY
def test_out_refuses_a_name_with_a_line_break_before_any_work(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    photos = tmp_path / "photos"
    _image(photos / "IMG_1.jpg", 0)
    _image(photos / "IMG\n2.jpg", 1)
    code, _, err = _run(
        capsys, "select", photos, "--target", "2", *FAST, "--out", tmp_path / "keep.txt"
    )
    assert code == 2
    assert "line break" in err and "--manifest" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "keep.txt").exists()
    # A manifest quotes the name, and reads back as a source.
    manifest = tmp_path / "m.csv"
    code, _, err = _run(capsys, "select", photos, "--target", "2", *FAST, "--manifest", manifest)
    assert code == 0, err
    code, out, err = _run(capsys, "select", manifest, "--target", "2", *FAST, "--out", "-")
    assert code == 0, err
    assert out.count(str(photos / "IMG\n2.jpg")) == 1


def _write_path_list(target: Path, names: list[str]) -> int:
    with OutputTransaction() as tx:
        count = tx.write_path_list(target, names)
        tx.commit()
    return count


def test_path_list_writer_refuses_names_it_could_not_give_back(tmp_path: Path) -> None:
    target = tmp_path / "l.txt"
    for name in ["/x/a\nb.jpg", "/x/a\rb.jpg", "/x/a.jpg ", "/x/a.jpg\t"]:
        with pytest.raises(OutputError, match="could not give back"):
            _write_path_list(target, [name])
        assert not target.exists()
    names = [f"/x/IMG{ch}.jpg" for ch in ODD_CHARACTERS]
    assert _write_path_list(target, names) == len(names)
    assert read_list_file(target) == names


def test_crlf_list_and_padding_still_read(tmp_path: Path) -> None:
    image = _image(tmp_path / "a b.jpg")
    listing = tmp_path / "l.txt"
    listing.write_bytes(b"\xef\xbb\xbf# x\r\n  a b.jpg \t\r\n\r\n")
    assert read_list_file(listing) == [os.path.join(str(tmp_path), "a b.jpg")] == [image]


# ---------------------------------------------------------------- item 11: ".." after a link


def _link_and_dotdot(tmp_path: Path) -> tuple[Path, Path]:
    real = tmp_path / "real"
    _image(real / "cam" / "IMG_1.jpg", 0)
    _image(real / "other" / "IMG_2.jpg", 1)
    base = tmp_path / "base"
    base.mkdir()
    os.symlink(real / "cam", base / "link", target_is_directory=True)
    return real, base


@POSIX_ONLY
def test_dotdot_after_a_symlink_is_resolved_like_the_os(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real, base = _link_and_dotdot(tmp_path)
    spelled = os.path.join(str(base), "link", "..", "other", "IMG_2.jpg")
    assert os.path.isfile(spelled) and not os.path.exists(os.path.abspath(spelled))
    assert absolute_path(spelled) == str(real / "other" / "IMG_2.jpg")
    listing = tmp_path / "list.txt"
    listing.write_text(f"{spelled}\n{real / 'cam' / 'IMG_1.jpg'}\n", encoding="utf-8")
    code, out, err = _run(capsys, "select", listing, "--target", "2", *FAST)
    assert code == 0, err
    assert sorted(out.splitlines()) == sorted([spelled, str(real / "cam" / "IMG_1.jpg")])
    result = downsample([spelled], 1, **QUIET)
    assert result.failures == () and result.selected_paths == [spelled]


@POSIX_ONLY
def test_out_through_a_symlink_and_dotdot_goes_where_the_kernel_writes(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    real, base = _link_and_dotdot(tmp_path)
    out = os.path.join(str(base), "link", "..", "keep.txt")
    code, _, err = _run(capsys, "select", real, "--target", "1", *FAST, "--out", out)
    assert code == 0, err
    assert (real / "keep.txt").is_file() and not (base / "keep.txt").exists()


# ---------------------------------------------------------------- item 13: names not UTF-8


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs byte file names")
def test_name_that_is_not_utf8_goes_through_every_output(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    _image(photos / NOT_UTF8, 0)
    _image(photos / "ok.jpg", 1)
    broken = os.fsdecode(b"bro\xefken.jpg")
    (photos / broken).write_bytes(b"not a jpeg")
    out = tmp_path / "out"
    args: list[str | Path] = [
        "select", photos, "--target", "2", *FAST, "--skip-unreadable",
        "--out", out / "keep.txt", "--manifest", out / "m.csv", "--report", out / "r.json",
        "--copy-to", out / "copy",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", CACHE_ENV: str(tmp_path / "c")}
    done = _cli(*args, env=env)  # default cache on; a strict UTF-8 stdout, as in a terminal
    assert done.returncode == 0, done.stderr
    assert b"bro\\udcefken.jpg" in done.stderr  # the warning names it, escaped
    name_bytes = os.fsencode(photos / NOT_UTF8)
    assert name_bytes + b"\n" in (out / "keep.txt").read_bytes()
    assert name_bytes in (out / "m.csv").read_bytes()
    report = json.loads((out / "r.json").read_text(encoding="utf-8"))
    assert [f["path"] for f in report["failures"]] == [str(photos / broken)]
    assert (out / "copy" / NOT_UTF8).read_bytes() == (photos / NOT_UTF8).read_bytes()
    # The list and the manifest read back; the cache gives the features back.
    for source in (out / "keep.txt", out / "m.csv"):
        done = _cli("select", source, "--target", "2", *FAST, "-q", "--skip-unreadable", env=env)
        assert done.returncode == 0, done.stderr
        assert name_bytes + b"\n" in done.stdout
    done = _cli("select", photos, "--target", "2", *FAST, "--skip-unreadable", env=env)
    assert done.returncode == 0 and b"features from cache: 2" in done.stdout + done.stderr


@pytest.mark.skipif(sys.platform in ("win32", "darwin"), reason="needs byte file names")
def test_name_that_is_not_utf8_prints_as_its_bytes(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    _image(photos / NOT_UTF8, 0)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict", CACHE_ENV: str(tmp_path / "c")}
    done = _cli("select", photos, "--target", "1", *FAST, "-q", env=env)
    assert done.returncode == 0, done.stderr
    assert done.stdout == os.fsencode(photos / NOT_UTF8) + b"\n"


# ---------------------------------------------------------------- item 18: stdin, pipes, devices


@POSIX_ONLY
def test_paths_on_standard_input_one_a_line_or_nul_separated(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    names = ["IMG_1.jpg", "IMG 2.jpg", "IMG\n3.jpg"]
    for index, name in enumerate(names):
        _image(photos / name, index)
    env = {**os.environ, CACHE_ENV: str(tmp_path / "c")}
    lines = b"photos/IMG_1.jpg\nphotos/IMG 2.jpg\n"
    done = _cli("select", "-", "--target", "5", *FAST, input=lines, cwd=tmp_path, env=env)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.decode().splitlines()) == ["photos/IMG 2.jpg", "photos/IMG_1.jpg"]
    nul = b"".join(os.fsencode(photos / name) + b"\0" for name in names)
    report = tmp_path / "r.json"
    done = _cli(
        "select", "-", "--null", "--target", "5", *FAST, "--report", report,
        input=nul, cwd=tmp_path, env=env,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert json.loads(report.read_text())["n_selected"] == 3


@POSIX_ONLY
def test_a_pipe_is_read_as_a_list(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    paths = [_image(photos / f"IMG_{n}.jpg", n) for n in range(3)]
    fifo = tmp_path / "paths.fifo"
    os.mkfifo(fifo)

    def feed() -> None:
        with open(fifo, "w", encoding="utf-8") as handle:
            handle.write("\n".join(paths) + "\n")

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    code, out, err = _run(capsys, "select", fifo, "--target", "2", *FAST)
    writer.join(timeout=10)
    assert code == 0, err
    assert len(out.splitlines()) == 2 and set(out.splitlines()) <= set(paths)


@POSIX_ONLY
def test_character_devices_and_own_stdout_are_outputs(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    paths = [_image(photos / f"IMG_{n}.jpg", n) for n in range(3)]
    env = {**os.environ, CACHE_ENV: str(tmp_path / "c")}
    done = _cli("select", photos, "--target", "2", *FAST, "--out", os.devnull, env=env)
    assert done.returncode == 0, done.stderr
    assert os.path.exists(os.devnull) and not os.path.isfile(os.devnull)
    done = _cli(
        "select", photos, "--target", "2", *FAST, "-q", "--out", "/dev/stdout", env=env
    )  # stdout is a pipe here
    assert done.returncode == 0, done.stderr
    assert set(done.stdout.decode().splitlines()) <= set(paths)
    assert len(done.stdout.decode().splitlines()) == 2


@POSIX_ONLY
def test_out_dev_stdout_into_a_redirected_file(tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    paths = [_image(photos / f"IMG_{n}.jpg", n) for n in range(3)]
    env = {**os.environ, CACHE_ENV: str(tmp_path / "c")}
    redirected = tmp_path / "stdout.txt"
    with open(redirected, "wb") as stdout:
        done = subprocess.run(
            [sys.executable, "-m", "smartdownsample", "select", str(photos), "--target", "2",
             *FAST, "--out", "/dev/stdout"],
            stdout=stdout, stderr=subprocess.PIPE, env=env, timeout=120, check=False,
        )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = redirected.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and set(lines) <= set(paths)  # the summary went to stderr
    assert b"done: kept 2 of 3" in done.stderr
    assert os.path.islink("/dev/stdout") or not os.path.isfile("/dev/stdout")


# ---------------------------------------------------------------- item 19: DataFrame, Dask


def test_a_dataframe_is_refused_with_the_column_to_pass(tmp_path: Path) -> None:
    pandas = pytest.importorskip("pandas")
    paths = [_image(tmp_path / f"IMG_{n}.jpg", n) for n in range(3)]
    frame = pandas.DataFrame({"path": paths, "label": ["deer"] * 3})
    with pytest.raises(InvalidArgumentError, match=r"DataFrame.*df\['path'\]"):
        downsample(frame, 2, **QUIET)
    assert len(downsample(frame["path"], 2, **QUIET).selected_paths) == 2


UNGUARDED_SCRIPT = """\
import sys
from smartdownsample import downsample
downsample(sys.argv[1:], 1, backend="dask", show_progress=False)
print("finished")
"""


def test_dask_script_without_main_guard_says_the_fix(tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    paths = [_image(tmp_path / "photos" / f"IMG_{n}.jpg", n) for n in range(3)]
    script = tmp_path / "unguarded.py"
    script.write_text(UNGUARDED_SCRIPT, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, str(script), *paths],
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        cwd=tmp_path,
    )
    assert done.returncode != 0 and "finished" not in done.stdout
    lines = done.stderr.strip().splitlines()
    assert len(lines) < 60, f"{len(lines)} lines of stderr"
    assert 'if __name__ == "__main__":' in lines[-1]
    assert "bootstrapping phase" not in done.stderr


@POSIX_ONLY
def test_csv_written_by_excel_with_quoted_newlines_reads(tmp_path: Path) -> None:
    image = _image(tmp_path / "a\nb.jpg")
    table = tmp_path / "t.csv"
    with open(table, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle).writerows([["path", "label"], ["a\nb.jpg", "deer"]])
    assert list_sources([str(table)]).paths == [image]


@POSIX_ONLY
def test_find_images_does_not_enter_excluded_folders(tmp_path: Path) -> None:
    _image(tmp_path / "fox" / "IMG_1.jpg")
    _image(tmp_path / "deer" / "IMG_1.jpg")
    os.symlink("../deer", tmp_path / "fox" / "deer_link", target_is_directory=True)
    deer = os.stat(tmp_path / "deer")
    found = find_images(tmp_path / "fox", exclude={(deer.st_dev, deer.st_ino): "deer"})
    assert found == [str(tmp_path / "fox" / "IMG_1.jpg")]
    with pytest.raises(InvalidArgumentError):
        find_images(tmp_path / "fox" / "IMG_1.jpg")
    assert isinstance(ListingError("x", "y"), OSError)


def test_a_run_stats_each_file_once_for_identity_and_cache(tmp_path: Path) -> None:
    """On a network file system every stat is a round trip: the identity pass (one path
    per file) and the cache's key share one stat of each file."""
    from collections import Counter

    from smartdownsample.synthetic import make_dataset

    paths = make_dataset(tmp_path / "imgs", 40, seed=1).paths
    cache = str(tmp_path / "features.sqlite")
    downsample(paths, 10, cache=cache, show_progress=False, n_workers=1)
    counts: Counter[str] = Counter()
    real = os.stat

    def counted(path: Any, *args: Any, **kwargs: Any) -> os.stat_result:
        counts[os.fspath(path)] += 1
        return real(path, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(os, "stat", counted)
        result = downsample(paths, 10, cache=cache, show_progress=False, n_workers=1)
    assert result.n_cached == len(paths)
    assert max(counts[os.path.abspath(p)] for p in paths) == 1
