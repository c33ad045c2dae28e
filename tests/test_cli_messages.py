"""What the command tells its user: shortfalls, safe CSV cells, closed streams, its own words."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from images import solid, write_corrupt, write_jpeg
from smartdownsample.cli import CACHE_ENV, main

FAST = ["--no-progress", "--no-cache", "--workers", "2"]


pytestmark = pytest.mark.usefixtures("private_cache")


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main([os.fspath(a) if isinstance(a, Path) else str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def write_images(folder: Path, count: int, names: list[str] | None = None) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    names = names or [f"IMG_{i:04d}.jpg" for i in range(count)]
    paths = []
    for i, name in enumerate(names):
        colour = ((i * 53) % 256, (i * 97 + 40) % 256, (i * 31 + 90) % 256)
        path = folder / name
        write_jpeg(path, solid(colour))
        paths.append(path)
    return paths


@pytest.fixture
def mostly_broken(tmp_path: Path) -> Path:
    """3 readable images and 10 that cannot be read."""
    folder = tmp_path / "camera"
    write_images(folder, 3)
    for i in range(10):
        write_corrupt(folder / f"broken_{i:02d}.jpg", seed=i)
    return folder


# ---------------------------------------------------------------- 8: fewer than the target


def test_shortfall_warns_and_is_reported(
    capsys: pytest.CaptureFixture[str], mostly_broken: Path, tmp_path: Path
) -> None:
    report = tmp_path / "report.json"
    code, out, err = run(
        capsys, "select", mostly_broken, "--target", 5, "--skip-unreadable", "--report", report,
        "--out", tmp_path / "kept.txt", *FAST,
    )  # fmt: skip
    assert code == 0
    assert "kept 3 images, fewer than the target of 5: only 3 images could be read" in err
    assert "short of the target: kept 3 of the 5 asked for" in out
    data = json.loads(report.read_text(encoding="utf-8"))
    assert data["n_short"] == 2 and data["n_selected"] == 3 and data["target_count"] == 5
    assert len((tmp_path / "kept.txt").read_text(encoding="utf-8").splitlines()) == 3


def test_nothing_readable_warns(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(4):
        write_corrupt(folder / f"b{i}.jpg", seed=i)
    code, _, err = run(capsys, "select", folder, "--target", 2, "--skip-unreadable", *FAST)
    assert code == 0
    assert "kept 0 images, fewer than the target of 2: only 0 images could be read" in err


def test_target_met_gives_no_shortfall_warning(
    capsys: pytest.CaptureFixture[str], mostly_broken: Path
) -> None:
    code, out, err = run(capsys, "select", mostly_broken, "--target", 2, "--skip-unreadable", *FAST)
    assert code == 0
    assert "fewer than the target" not in err and "short of the target" not in out


def test_strict_fails_before_writing(
    capsys: pytest.CaptureFixture[str], mostly_broken: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "kept.txt"
    code, _, err = run(
        capsys, "select", mostly_broken, "--target", 5, "--skip-unreadable", "--strict",
        "--out", out_file, "--manifest", tmp_path / "m.csv", *FAST,
    )  # fmt: skip
    assert code == 1
    line = err.strip().splitlines()[-1]
    assert line.startswith("smartdownsample: error: kept 3 of the 5 images asked for")
    assert "--strict" in line and "nothing was written" in line
    assert not out_file.exists() and not (tmp_path / "m.csv").exists()
    code, _, _ = run(
        capsys, "select", mostly_broken, "--target", 3, "--skip-unreadable", "--strict",
        "--out", out_file, *FAST,
    )  # fmt: skip
    assert code == 0 and out_file.exists()


def test_strict_balance_names_the_short_class(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "classes"
    write_images(root / "deer", 8)
    write_images(root / "owl", 3)
    for i in range(6):
        write_corrupt(root / "owl" / f"x{i}.jpg", seed=i)
    code, _, err = run(
        capsys, "balance", root, "--max-per-class", 5, "--skip-unreadable", "--strict", *FAST
    )
    assert code == 1
    assert "class 'owl': kept 3 of the 5 images asked for" in err


# ---------------------------------------------------------------- 10: spreadsheet-safe CSV


FORMULA_NAMES = ["=1+2.jpg", "+cmd.jpg", "-x.jpg", "@sum.jpg", "\tTAB.jpg", "plain.jpg"]


def test_manifest_cells_cannot_run_as_formulas(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tmp_path / "f"
    write_images(folder, 0, FORMULA_NAMES)
    manifest = tmp_path / "manifest.csv"
    # relative paths make the file name the first character of the cell
    monkeypatch.chdir(folder)
    code, _, err = run(capsys, "select", "--target", 3, "--manifest", manifest, *FAST, "--",
                       *FORMULA_NAMES)  # fmt: skip
    assert code == 0, err
    with open(manifest, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    cells = {row["path"] for row in rows}
    assert cells == {"'" + n if n[0] in "=+-@\t" else n for n in FORMULA_NAMES}
    for row in rows:
        assert row["dhash"].startswith("0x"), "a hash of digits only would become a number"
        int(row["dhash"], 16)


def test_balance_manifest_class_cells_are_safe(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "classes"
    write_images(root / "=HYPERLINK(1)", 6)
    write_images(root / "deer", 2)
    manifest = tmp_path / "balance.csv"
    code, _, err = run(capsys, "balance", root, "--max-per-class", 3, "--manifest", manifest,
                       *FAST)  # fmt: skip
    assert code == 0, err
    with open(manifest, newline="", encoding="utf-8") as handle:
        classes = {row["class"] for row in csv.DictReader(handle)}
    assert classes == {"'=HYPERLINK(1)", "deer"}


# ---------------------------------------------------------------- 15: a closed stdout


def test_closed_stdout_is_one_clean_error(tmp_path: Path) -> None:
    folder = tmp_path / "few"
    write_images(folder, 3)
    env = {**os.environ, CACHE_ENV: str(tmp_path / "cache")}
    command = [sys.executable, "-m", "smartdownsample", "select", str(folder), "--target", "2",
               "-q", *FAST]  # fmt: skip
    closed = subprocess.run(
        ["sh", "-c", 'exec "$@" >&-', "sh", *command],
        capture_output=False,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        env=env,
    )
    assert closed.returncode == 1
    assert closed.stderr.strip().splitlines() == [
        "smartdownsample: error: standard output is closed; run with it open, or sent to "
        "/dev/null (>/dev/null)"
    ]


# ---------------------------------------------------------------- 17: each layer its own words


def test_cli_speaks_of_flags_and_counts_in_english(
    capsys: pytest.CaptureFixture[str], mostly_broken: Path, tmp_path: Path
) -> None:
    bad_cache = tmp_path / "junk.sqlite"
    bad_cache.write_bytes(os.urandom(8192))
    code, out, err = run(
        capsys, "select", mostly_broken, "--target", 1, "--skip-unreadable", "--cache", bad_cache,
        "--no-progress", "--workers", "2",
    )  # fmt: skip
    assert code == 0
    assert "--no-cache" in err and "cache=None" not in err
    assert "the summary and --report list them" in err
    for python_words in ("result.", "image_loading_errors", "target_count", "=None"):
        assert python_words not in err + out
    assert "1 images" not in out + err


def test_one_image_is_singular(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    folder = tmp_path / "one"
    write_images(folder, 1)
    code, out, err = run(capsys, "select", folder, "--target", 1, *FAST)
    out += err
    assert code == 0
    assert "kept 1 of 1 image from 1 bucket;" in out
    assert "1 images" not in out and "1 buckets" not in out


def test_unreadable_error_names_the_flag(
    capsys: pytest.CaptureFixture[str], mostly_broken: Path
) -> None:
    code, _, err = run(capsys, "select", mostly_broken, "--target", 2, *FAST)
    assert code == 1
    assert "--skip-unreadable" in err and "image_loading_errors" not in err


# ---------------------------------------------------------------- 20: charts of a balance


def test_balance_charts_when_no_class_is_cut_says_so(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    root = tmp_path / "classes"
    write_images(root / "deer", 3)
    write_images(root / "owl", 2)
    chart = tmp_path / "dist.png"
    code, _, err = run(
        capsys, "balance", root, "--max-per-class", 10, "--distribution", chart, *FAST
    )
    assert code == 0
    assert "--distribution: no chart written: no class has more than --max-per-class 10" in err
    assert not list(tmp_path.glob("dist*.png"))


# ---------------------------------------------------------------- outputs that cannot be written


def test_unwritable_output_folder_is_refused_before_any_work(tmp_path: Path) -> None:
    """As an ordinary user: a report in a read-only folder fails at once, naming the folder."""
    from unprivileged import cli_unprivileged

    folder = tmp_path / "photos"
    write_images(folder, 4)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        for option, name in (("--report", "r.json"), ("--html", "r.html"), ("--out", "k.txt")):
            run = cli_unprivileged(
                "select", str(folder), "--target", "2", option, str(locked / "sub" / name),
                "--no-cache", "--no-progress", "--workers", "1",
            )  # fmt: skip
            assert run.returncode == 2, run.stderr
            lines = run.stderr.strip().splitlines()
            assert len(lines) == 1 and "Permission denied" in lines[0], run.stderr
            assert str(locked) in lines[0]
    finally:
        locked.chmod(0o755)
    assert list(locked.iterdir()) == []


@pytest.mark.skipif(
    not hasattr(os, "mknod") or not hasattr(os, "geteuid") or os.geteuid() != 0,
    reason="making a device file needs root",
)
@pytest.mark.parametrize(("option", "name"), [("--html", "null.html"), ("--report", "null.json")])
def test_a_device_output_is_written_to_never_replaced(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, option: str, name: str
) -> None:
    import stat

    folder = tmp_path / "photos"
    write_images(folder, 4)
    device = tmp_path / "devices" / name
    device.parent.mkdir()
    os.mknod(device, stat.S_IFCHR | 0o666, os.makedev(1, 3))  # what /dev/null is
    code, _, err = run(capsys, "select", folder, "--target", 2, option, device,
                       "--out", tmp_path / "kept.txt", *FAST)  # fmt: skip
    assert code == 0, err
    assert stat.S_ISCHR(device.lstat().st_mode), "the device was replaced by a file"
    assert sorted(p.name for p in device.parent.iterdir()) == [name]


def test_a_giant_path_is_cut_in_the_error_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A list holding something else than paths (here JSON on one line) is one huge
    "path": the error names it once, cut in the middle, not the whole text twice."""
    listed = tmp_path / "list.txt"
    listed.write_text(json.dumps([f"cam/IMG_{i}.jpg" for i in range(2000)]), encoding="utf-8")
    code = main(["select", str(listed), "--target", "2", "--no-progress", "--no-cache"])
    err = capsys.readouterr().err
    assert code == 1
    assert len(err) < 1000 and err.count("\n") == 1
