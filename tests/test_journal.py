"""A run killed while it replaces outputs is completed or undone by the next run.

``--overwrite`` moves the files it replaces aside and deletes them once every
new file is in place. A run killed in between (SIGKILL, the out-of-memory
killer, a power cut: no clean-up of any kind runs) leaves a journal beside
the outputs, and the next run writing there completes it (committed) or
undoes it (not committed) before anything else.

The runs here are real processes, really killed with SIGKILL at the
dangerous instants, from outside the product: they start with
``tests/faults`` first on ``PYTHONPATH``, whose ``sitecustomize`` arms
``stop_at`` (``SDS_STOP_AT``): the process signals itself at the N-th
``os.replace`` moving a file aside (or ``os.link`` staging a link), or just
before the first file moved aside is deleted. A run stopped with SIGSTOP
stands for one still going. The runs that recover are an ordinary user's
where permissions matter (``tests/unprivileged.py``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from faults.fault_injection import worker_pythonpath
from faults.stop_at import ENV, spec
from folders import relative_selection, snapshot, temporaries
from smartdownsample.cli import main
from smartdownsample.outputs import (
    LOCK_NAME,
    RECORD_NAME,
    TEMP_PREFIX,
    OutputError,
    OutputTransaction,
    atomic_file,
    check_output_file,
)
from unprivileged import cli_unprivileged

pytestmark = [
    pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals"),
    pytest.mark.usefixtures("private_cache"),
]

FAST = ["--no-progress", "--no-cache", "--workers", "1"]
RUN_TIMEOUT = 120.0

MOVED_ASIDE = spec("after", "replace", "*.old", 2, "KILL")
"""Killed right after the second file was moved aside: some new files in place, not all."""

COMMITTED = spec("before", "unlink", "*.old", 1, "KILL")
"""Killed just before the first replaced file is deleted: every new file is in place."""


def _argv(args: Sequence[object]) -> list[str]:
    return [os.fspath(a) if isinstance(a, Path) else str(a) for a in args]


def run(capsys: pytest.CaptureFixture[str], *args: object) -> tuple[int, str, str]:
    code = main(_argv(args))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def killed(args: Sequence[object], stop: str) -> None:
    """Run the command line in a process that SIGKILLs itself at ``stop``."""
    done = subprocess.run(
        [sys.executable, "-m", "smartdownsample", *_argv(args)],
        env=_env(stop),
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
        check=False,
    )
    assert done.returncode == -signal.SIGKILL, (done.returncode, done.stderr)


def _env(stop: str) -> dict[str, str]:
    env = dict(os.environ, **{ENV: stop})
    env["PYTHONPATH"] = worker_pythonpath(os.environ.get("PYTHONPATH"))
    return env


def files_under(folder: Path) -> set[str]:
    found = set()
    for parent, _, names in os.walk(folder):
        for name in names:
            found.add(os.path.relpath(os.path.join(parent, name), folder).replace(os.sep, "/"))
    return found


def file_outputs(folder: Path) -> list[object]:
    return [
        "--out", folder / "selected.txt",
        "--manifest", folder / "manifest.csv",
        "--report", folder / "report.json",
    ]  # fmt: skip


# ---------------------------------------------------------------- files


@pytest.mark.parametrize(
    ("stop", "committed"),
    [
        pytest.param(MOVED_ASIDE, False, id="moved-aside"),
        pytest.param(COMMITTED, True, id="committed"),
    ],
)
def test_killed_file_outputs_are_completed_or_undone_by_the_next_run(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path, stop: str, committed: bool
) -> None:
    out = tmp_path / "out folder"
    code, _, err = run(capsys, "select", photos, "--target", 8, *FAST, *file_outputs(out))
    assert code == 0, err
    (out / "notes.txt").write_text("the user's own file\n")
    before = snapshot(out, folders=True)
    again = ["select", photos, "--target", 5, "--seed", 3, *FAST, *file_outputs(out)]
    killed([*again, "--overwrite"], stop)
    assert any(name.endswith(".old") for name in os.listdir(out))  # it died in the middle

    code, _, err = run(capsys, *again)  # the same run, without --overwrite
    warning, error = err.strip().splitlines()
    assert code == 2
    assert "selected.txt' already exists" in error  # judged as the user had it
    assert warning.startswith("smartdownsample: warning: an interrupted smartdownsample run in ")
    assert str(out) in warning
    assert temporaries(tmp_path) == []
    if not committed:
        assert "was undone: restored 2 files" in warning
        assert snapshot(out, folders=True) == before  # the same files: bytes, inodes, times
        return
    assert "was completed: deleted 3 files its outputs replaced" in warning
    reference = tmp_path / "reference"
    code, _, err = run(capsys, *again[:-6], *file_outputs(reference))
    assert code == 0, err
    for name in ("selected.txt", "manifest.csv"):
        assert (out / name).read_bytes() == (reference / name).read_bytes()
    report = json.loads((out / "report.json").read_text(encoding="utf-8"))
    assert (report["n_selected"], report["random_seed"]) == (5, 3)
    assert sorted(os.listdir(out)) == sorted(before)
    assert snapshot(out, folders=True)["notes.txt"] == before["notes.txt"]


@pytest.mark.parametrize("first", ["list", "manifest"])
def test_a_run_killed_between_marking_two_journals_is_completed_in_both_folders(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path, first: str
) -> None:
    """Outputs in two folders, two journals; killed after the first was marked committed,
    not yet the second: whichever folder the next run writes into first, both end up with
    the new outputs (the second journal is completed because the first says so, or is
    told so before the first goes)."""
    outputs = {
        "list": ["--out", tmp_path / "lists" / "selected.txt"],
        "manifest": ["--manifest", tmp_path / "tables" / "manifest.csv"],
    }
    both = [*outputs["list"], *outputs["manifest"]]
    code, _, err = run(capsys, "select", photos, "--target", 8, *FAST, *both)
    assert code == 0, err
    again = ["select", photos, "--target", 5, "--seed", 3, *FAST]
    killed([*again, *both, "--overwrite"], COMMITTED)
    second = next(Path(p) for p in temporaries(tmp_path / "tables") if p.endswith(".journal"))
    lines = second.read_bytes().splitlines(keepends=True)
    assert lines[-1] == b'{"committed":true}\n'
    second.write_bytes(b"".join(lines[:-1]))  # as if killed between the two marks

    for name in (first, "manifest" if first == "list" else "list"):
        code, _, err = run(capsys, *again, *outputs[name])
        warning, error = err.strip().splitlines()
        assert code == 2 and "already exists" in error
        assert "was completed: deleted 1 file its outputs replaced" in warning
    reference = tmp_path / "reference"
    code, _, err = run(capsys, *again, "--out", reference / "selected.txt",
                       "--manifest", reference / "manifest.csv")  # fmt: skip
    assert code == 0, err
    for option, path in outputs.values():
        assert Path(path).read_bytes() == (reference / Path(path).name).read_bytes(), option
    assert temporaries(tmp_path) == []


def test_a_file_the_user_changed_since_is_kept_beside_the_one_put_back(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    code, _, err = run(capsys, "select", photos, "--target", 8, *FAST, *file_outputs(out))
    assert code == 0, err
    before = snapshot(out, folders=True)
    again = ["select", photos, "--target", 5, "--seed", 3, *FAST, *file_outputs(out)]
    killed([*again, "--overwrite"], MOVED_ASIDE)  # the new list in place, the manifest aside
    (out / "selected.txt").write_text("my own list\n")  # the user edits the new list

    code, _, err = run(capsys, *again)
    warning = err.strip().splitlines()[0]
    assert code == 2
    assert "was undone: restored 1 file it had moved aside, removed 2 temporary files" in warning
    assert f"kept 1 file changed since (e.g. {out / 'selected.txt'})" in warning
    assert f"({out / 'selected (restored).txt'})" in warning
    assert (out / "selected.txt").read_text() == "my own list\n"
    assert (out / "selected (restored).txt").read_bytes() == before["selected.txt"][0]
    for name in ("manifest.csv", "report.json"):
        assert snapshot(out, folders=True)[name] == before[name]
    assert sorted(os.listdir(out)) == sorted([*before, "selected (restored).txt"])
    assert temporaries(tmp_path) == []


def test_a_run_still_going_is_left_alone(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    """A run stopped (SIGSTOP) in the middle of replacing a file holds its journal: a
    second run writing that file is refused, one writing another file beside it is not."""
    out = tmp_path / "out"
    listing = out / "selected.txt"
    code, _, err = run(capsys, "select", photos, "--target", 8, *FAST, "--out", listing)
    assert code == 0, err
    command = ["select", photos, "--target", 5, "--seed", 3, *FAST, "--out", listing]
    child = subprocess.Popen(
        [sys.executable, "-m", "smartdownsample", *_argv([*command, "--overwrite"])],
        env=_env(spec("after", "replace", "*.old", 1, "STOP")),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _, status = os.waitpid(child.pid, os.WUNTRACED)
        assert os.WIFSTOPPED(status), status
        held = snapshot(out, folders=True)  # its journal, the list moved aside, the new one staged
        assert not listing.exists()  # moved aside, the new one not in place yet

        code, _, err = run(capsys, "select", photos, "--target", 4, *FAST, "--out", listing,
                           "--overwrite")  # fmt: skip
        line = err.strip()
        assert code == 1 and "\n" not in line
        assert f"--out {str(listing)!r} is being written by another smartdownsample run" in line
        assert f"(pid {child.pid})" in line and line.endswith("or choose another path")
        assert snapshot(out, folders=True) == held

        code, _, err = run(capsys, "select", photos, "--target", 4, *FAST, "--out", out / "b.txt")
        assert code == 0, err
        assert {k: v for k, v in snapshot(out, folders=True).items() if k != "b.txt"} == held
    finally:
        os.kill(child.pid, signal.SIGCONT)
        _, err = child.communicate(timeout=RUN_TIMEOUT)
    assert child.returncode == 0, err
    assert len(listing.read_text().splitlines()) == 5  # the stopped run's own list, complete
    assert temporaries(tmp_path) == []


# ---------------------------------------------------------------- trees


TREE_STOPS = [
    pytest.param(
        "--link-to", spec("after", "link", "*.link", 1, "KILL"), "undone: removed 1 temporary file",
        id="link-staging",
    ),
    pytest.param(
        "--copy-to", MOVED_ASIDE, "undone: restored 2 files it had moved aside", id="copy-replacing"
    ),
    pytest.param(
        "--link-to", MOVED_ASIDE, "undone: restored 2 files it had moved aside",
        id="link-removing-earlier-files",
    ),
    pytest.param("--copy-to", COMMITTED, "completed: deleted", id="copy-committed"),
]  # fmt: skip


@pytest.mark.parametrize(("option", "stop", "done_words"), TREE_STOPS)
def test_a_killed_tree_export_is_completed_or_undone_by_the_next_run(
    capsys: pytest.CaptureFixture[str],
    photos: Path,
    tmp_path: Path,
    option: str,
    stop: str,
    done_words: str,
) -> None:
    """``--overwrite`` into an earlier run's copy or links, killed; the next run (an
    ordinary user's) completes or undoes it. Linking, the files moved aside are the
    earlier run's that the new selection drops (the others are linked already)."""
    committed = done_words.startswith("completed")
    dest = tmp_path / "small copy"
    code, _, err = run(capsys, "select", photos, "--target", 12, "--seed", 1, *FAST, option, dest)
    assert code == 0, err
    (dest / "notes.txt").write_text("the user's own file\n")
    before = snapshot(dest, folders=True)
    listing = tmp_path / "new lists" / "selected.txt"
    again = ["select", photos, "--target", 6, "--seed", 2, *FAST, option, dest, "--out", listing]
    killed([*again, "--overwrite"], stop)
    assert temporaries(dest)  # it died in the middle

    done = cli_unprivileged(*_argv(again), timeout=RUN_TIMEOUT)
    *warnings, error = done.stderr.strip().splitlines()
    assert done.returncode == 2
    assert f"folder {str(dest)!r} is not empty" in error
    assert len(warnings) == (1 if committed else 2)  # the list's folder: a temporary file
    assert f"run in {dest} was {done_words}" in "\n".join(warnings)
    assert temporaries(tmp_path) == []
    if not committed:
        assert (
            snapshot(dest, folders=True) == before
        )  # the earlier run's files: bytes, inodes, times
        assert not listing.parent.exists()  # made by the killed run: removed with its list
        return
    assert files_under(dest) == relative_selection(listing, photos) | {"notes.txt", RECORD_NAME}
    record = json.loads((dest / RECORD_NAME).read_text(encoding="utf-8"))
    assert {entry[0] for entry in record["files"]} == relative_selection(listing, photos)
    assert snapshot(dest, folders=True)["notes.txt"] == before["notes.txt"]


def test_a_recovery_that_cannot_write_changes_nothing_and_says_so(
    capsys: pytest.CaptureFixture[str], photos: Path, tmp_path: Path
) -> None:
    """An ordinary user's run cannot put back files in a folder made read-only since:
    one line naming the journal, the file and the fix; nothing is lost, and once the
    folder is writable again the next run completes the recovery."""
    dest = tmp_path / "links"
    code, _, err = run(capsys, "select", photos, "--target", 12, "--seed", 1, *FAST,
                       "--link-to", dest)  # fmt: skip
    assert code == 0, err
    before = snapshot(dest, folders=True)
    again = ["select", photos, "--target", 6, "--seed", 2, *FAST, "--link-to", dest]
    killed([*again, "--overwrite"], MOVED_ASIDE)
    locked = next(Path(p).parent for p in temporaries(dest) if p.endswith(".old"))
    after_kill = snapshot(dest, folders=True)
    locked.chmod(0o555)
    try:
        done = cli_unprivileged(*_argv(again), timeout=RUN_TIMEOUT)
    finally:
        locked.chmod(0o755)
    line = done.stderr.strip()
    assert done.returncode == 1 and "\n" not in line
    assert "cannot complete the outputs of an interrupted smartdownsample run recorded in" in line
    assert "Permission denied" in line and f"make {str(locked)!r} writable and run again" in line
    del after_kill[LOCK_NAME]  # the killed run's lock file, taken over and removed
    assert (
        snapshot(dest, folders=True) == after_kill
    )  # nothing put back in the read-only folder, or elsewhere

    code, _, err = run(capsys, *again)
    assert code == 2 and "was undone" in err
    assert snapshot(dest, folders=True) == before
    assert temporaries(dest) == []


# ---------------------------------------------------------------- journals as found


def _journal(folder: Path, *lines: object) -> Path:
    path = folder / f"{TEMP_PREFIX}{'ab' * 16}.journal"
    path.write_bytes(b"".join((json.dumps(line).encode() + b"\n") for line in lines))
    return path


HEADER = {"journal": "smartdownsample", "format": 1, "run": "ab" * 16, "pid": 1, "host": "x"}


@pytest.fixture
def folder(tmp_path: Path) -> Iterator[Path]:
    """A folder with a file of the user's and one beside it, outside."""
    inside = tmp_path / "out"
    inside.mkdir()
    (inside / "mine.txt").write_text("mine\n")
    (tmp_path / "victim.txt").write_text("outside\n")
    yield inside
    assert (tmp_path / "victim.txt").read_text() == "outside\n"


def test_a_journal_cut_short_at_its_creation_is_removed(folder: Path) -> None:
    path = _journal(folder)
    path.write_bytes(b'{"journal": "smartdow')  # killed while writing its header
    check_output_file(folder / "list.txt", option="--out", image_paths=[], overwrite=False)
    assert sorted(os.listdir(folder)) == ["mine.txt"]


def test_a_journal_never_touches_a_file_it_does_not_prove_is_its_own(folder: Path) -> None:
    """A run that did not commit (its mark cut short) is undone, but entries naming files
    outside the folder, files without this tool's hidden names, or a new file of another
    identity than recorded, are ignored: nothing is removed or renamed."""
    before = snapshot(folder.parent, folders=True)
    outside = os.lstat(folder.parent / "victim.txt")
    path = _journal(
        folder,
        HEADER,
        {"stage": "mine.txt", "for": "x.txt"},
        {"stage": "../victim.txt", "for": "x.txt"},
        {"target": "x.txt", "aside": "mine.txt", "existed": True, "new": None},
        {"target": "mine.txt", "aside": "../victim.txt", "existed": True, "new": None},
        {"target": "mine.txt", "aside": f"{TEMP_PREFIX}gone.old", "existed": False,
         "new": [1, 5, 1]},
        {"target": "../victim.txt", "aside": f"{TEMP_PREFIX}gone.old", "existed": False,
         "new": [outside.st_ino, outside.st_size, outside.st_mtime_ns]},
    )  # fmt: skip
    with path.open("ab") as handle:
        handle.write(b'{"committed": tr')  # killed while marking it
    check_output_file(folder / "list.txt", option="--out", image_paths=[], overwrite=False)
    assert snapshot(folder.parent, folders=True) == before  # the journal gone, nothing else changed


def test_a_journal_of_another_version_is_refused_in_one_line(folder: Path) -> None:
    path = _journal(folder, dict(HEADER, format=99))
    with pytest.raises(OutputError) as caught:
        check_output_file(folder / "list.txt", option="--out", image_paths=[], overwrite=False)
    message = str(caught.value)
    assert "\n" not in message and str(path) in message and "format 99" in message
    assert sorted(os.listdir(folder)) == sorted(["mine.txt", path.name])


def test_charts_and_pages_are_written_into_their_staging_file(tmp_path: Path) -> None:
    """The chart, HTML and detector-file writers save to a transaction's staging file
    through ``atomic_file``: that file is written in place, so every file on disk while
    they write is one the journal names (a second temporary file would outlive a kill)."""
    target = tmp_path / "charts" / "distribution.png"
    with OutputTransaction() as outputs:
        staged = outputs.temp_for(target, suffix=".png")
        with atomic_file(staged, binary=True) as handle:
            handle.write(b"png")
            handle.flush()
            journal = next(Path(p) for p in temporaries(target.parent) if p.endswith(".journal"))
            named = journal.read_text(encoding="ascii")
            for path in temporaries(target.parent):
                assert path == str(journal) or os.path.basename(path) in named, path
        outputs.commit()
    assert target.read_bytes() == b"png"
    assert temporaries(tmp_path) == []
