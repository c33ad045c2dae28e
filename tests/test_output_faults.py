"""Outputs on a full or read-only disk, and inputs never written (issue 6, item 5).

* A full disk: as root, a tiny tmpfs is mounted (256 KiB of space, or 3
  inodes) and filled by the outputs; anywhere, ``RLIMIT_FSIZE`` makes every
  write past a few KiB fail in a subprocess, and standard output is sent to
  ``/dev/full``. The run must exit 1 with one line naming the path and the
  cause, and leave nothing (no partial copy, no temporary file).
* A read-only place: a tmpfs mounted read-only (root) or a folder without
  write permission (other users), for each kind of output.
* Every write the output stage makes fails in turn (an ``OSError`` raised in
  place of the system call): each must end in an ``OutputError`` naming a
  path, with nothing left behind.
* No input file is ever opened for writing, renamed, removed, truncated,
  chmod'ed or touched: an audit hook (``sys.addaudithook``) watches every
  file operation of ``main([...])`` runs in this process (decoding threads
  included), and a ``sitecustomize`` audit hook watches a subprocess run
  with its decoding worker processes.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import resource
import shutil
import stat
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

import pytest

from smartdownsample._exceptions import SmartDownsampleError
from smartdownsample.cli import main
from smartdownsample.listing import list_sources
from smartdownsample.outputs import OutputTransaction
from smartdownsample.synthetic import make_dataset

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX file systems and mounts")

N_IMAGES = 300
"""Synthetic crops (about 1 s to draw); 60 selected ones are ~1.7 MB to copy."""

TARGET = 60

N_LINKED = 7
"""Copies for the subprocess audit: 2,100 distinct images, enough for the
command to decode in worker processes (2,000 and more)."""

SMALL_DISK = "size=256k"
"""A tmpfs that holds a handful of the selected images, then is full."""

FEW_INODES = "size=4m,nr_inodes=3"
"""A tmpfs with room for bytes but for only two new files or folders."""

FILE_SIZE_LIMIT = 8192
"""RLIMIT_FSIZE of the subprocess: every output file is larger (a crop is ~28 KB)."""

ERROR_PREFIX = "smartdownsample: error: "


# ---------------------------------------------------------------- data


@dataclass(frozen=True)
class Source:
    root: Path
    images: list[str]


def _snapshot(root: Path) -> dict[str, tuple[Any, ...]]:
    """Content digest, size, mode and modification time of every entry under ``root``."""
    found: dict[str, tuple[Any, ...]] = {}
    for folder, dirs, names in os.walk(root):
        for name in dirs + names:
            path = os.path.join(folder, name)
            info = os.lstat(path)
            if stat.S_ISREG(info.st_mode):
                with open(path, "rb") as handle:
                    digest = hashlib.blake2b(handle.read(), digest_size=16).hexdigest()
            elif stat.S_ISLNK(info.st_mode):
                digest = os.readlink(path)
            else:
                digest = None
            found[path] = (digest, info.st_size, info.st_mode, info.st_mtime_ns)
    return found


@pytest.fixture(scope="module")
def source(tmp_path_factory: pytest.TempPathFactory) -> Source:
    root = tmp_path_factory.mktemp("source")
    dataset = make_dataset(root / "images", N_IMAGES, seed=3, n_workers=2)
    with contextlib.suppress(ImportError):  # tests/hostile.py (issue 6, item 1)
        from hostile import write_hostile_files

        write_hostile_files(root / "images" / "hostile")
    return Source(root / "images", dataset.paths)


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> str:
    """A feature cache shared by the runs of this module (they then skip decoding)."""
    return str(tmp_path_factory.getbasetemp() / "output-faults-cache" / "features.sqlite")


def _select(source: Source, cache: str | None, *outputs: str) -> list[str]:
    """``select`` arguments; ``cache`` None runs without a cache."""
    return [
        "select",
        str(source.root),
        "--target",
        str(TARGET),
        "--skip-unreadable",
        *(["--no-cache"] if cache is None else ["--cache", cache]),
        "--no-progress",
        "--quiet",
        *outputs,
    ]


def _error_line(err: str) -> str:
    """The single line a failed run printed on stderr."""
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"expected one line on stderr, got:\n{err}"
    assert lines[0].startswith(ERROR_PREFIX), lines[0]
    return lines[0]


def _everything(folder: Path) -> list[str]:
    found = []
    for parent, dirs, names in os.walk(folder):
        for name in dirs + names:
            found.append(os.path.relpath(os.path.join(parent, name), folder))
    return sorted(found)


# ---------------------------------------------------------------- mounts (root only)


def _mount(folder: Path, options: str) -> None:
    if sys.platform != "linux" or os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root on Linux")
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _unmount(folder: Path) -> None:
    done = subprocess.run(["umount", str(folder)], capture_output=True, check=False)
    if done.returncode != 0:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@contextlib.contextmanager
def _tmpfs(folder: Path, options: str) -> Iterator[Path]:
    _mount(folder, options)
    try:
        yield folder
    finally:
        _unmount(folder)


def _used_blocks(folder: Path) -> int:
    info = os.statvfs(folder)
    return info.f_blocks - info.f_bfree


# ---------------------------------------------------------------- full disk


FULL_DISK_CASES = {
    "copy-fills-disk": (
        SMALL_DISK,
        ["--copy-to", "copy", "--out", "selected.txt", "--report", "report.json"],
    ),
    "manifest-fills-disk": (
        "size=16k",
        ["--manifest", "manifest.csv", "--out", "selected.txt"],
    ),
    "no-inodes-left": (FEW_INODES, ["--copy-to", "copy"]),
}


@pytest.mark.parametrize("case", list(FULL_DISK_CASES))
def test_full_disk_fails_cleanly(
    case: str,
    source: Source,
    cache: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    options, outputs = FULL_DISK_CASES[case]
    before = _snapshot(source.root)
    with _tmpfs(tmp_path / "disk", options) as disk:
        args = [str(disk / item) if not item.startswith("--") else item for item in outputs]
        capsys.readouterr()
        code = main(_select(source, cache, *args))
        line = _error_line(capsys.readouterr().err)
        assert code == 1
        assert "No space left on device" in line
        assert str(disk) in line
        assert _everything(disk) == []
        if case != "no-inodes-left":
            assert _used_blocks(disk) == 0
    assert _snapshot(source.root) == before


def test_file_size_limit_fails_cleanly(source: Source, tmp_path: Path) -> None:
    """Every write past 8 KiB fails (EFBIG): portable, any user, in a subprocess."""
    out = tmp_path / "out"
    out.mkdir()
    before = _snapshot(source.root)

    def limit() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_SIZE_LIMIT, FILE_SIZE_LIMIT))

    for outputs in (["--copy-to", str(out / "copy")], ["--manifest", str(out / "m.csv")]):
        done = subprocess.run(
            [sys.executable, "-m", "smartdownsample", *_select(source, None, *outputs)],
            capture_output=True,
            text=True,
            preexec_fn=limit,
            check=False,
        )
        line = _error_line(done.stderr)
        assert done.returncode == 1
        assert os.strerror(errno.EFBIG) in line
        assert str(out) in line
        assert _everything(out) == []
    assert _snapshot(source.root) == before


@pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full")
def test_paths_to_a_full_standard_output(source: Source, cache: str) -> None:
    """``select ... > /dev/full``: one line naming standard output and the cause, exit 1."""
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            [sys.executable, "-m", "smartdownsample", *_select(source, cache)],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    line = _error_line(done.stderr)
    assert done.returncode == 1
    assert "No space left on device" in line
    assert "standard output" in line or "stdout" in line, line


# ---------------------------------------------------------------- read-only place


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """An empty folder no file can be created in: a read-only tmpfs (root) or mode 0555."""
    folder = tmp_path / "read-only"
    if sys.platform == "linux" and os.geteuid() == 0:
        with _tmpfs(folder, "ro,size=64k") as mounted:
            yield mounted
        return
    if os.geteuid() == 0:
        pytest.skip("root writes through permission bits and cannot mount here")
    folder.mkdir()
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


READ_ONLY_OUTPUTS = {
    "--out": "selected.txt",
    "--manifest": "manifest.csv",
    "--report": "report.json",
    "--copy-to": "copy",
    "--link-to": "links",
    "--distribution": "distribution.png",
    "--copy-to (the read-only folder itself)": "",
}


@pytest.mark.parametrize("option", list(READ_ONLY_OUTPUTS))
def test_read_only_destination_fails_cleanly(
    option: str,
    source: Source,
    cache: str,
    read_only_dir: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    writable = tmp_path / "writable"
    target = read_only_dir / READ_ONLY_OUTPUTS[option]
    outputs = [option.split()[0], str(target)]
    if option != "--out":
        outputs += ["--out", str(writable / "selected.txt")]  # written first, then undone
    before = _snapshot(source.root)
    capsys.readouterr()
    code = main(_select(source, cache, *outputs))
    line = _error_line(capsys.readouterr().err)
    # Refused before any image is decoded: by the path checks (2), or, for the copy folder
    # itself, when its lock cannot be created (1).
    assert code == (1 if option.endswith("itself)") else 2), line
    assert str(read_only_dir) in line
    assert any(os.strerror(code) in line for code in (errno.EROFS, errno.EACCES, errno.EPERM)), line
    assert _everything(read_only_dir) == []
    assert not writable.exists(), _everything(writable)
    assert _snapshot(source.root) == before


# ---------------------------------------------------------------- every write fails in turn


WRITE_CALLS = frozenset(
    {
        "open",
        "write",
        "flush",
        "fsync",
        "close",
        "sendfile",
        "copy_file_range",
        "mkdir",
        "replace",
        "rename",
        "link",
        "symlink",
        "chmod",
        "utime",
    }
)
"""System calls (and buffered-file methods) that can fail on a full or read-only disk."""


class _FailAt:
    """A profile hook making the ``at``-th write-like call fail with ``OSError(code)``."""

    def __init__(self, at: int, code: int) -> None:
        self.at = at
        self.code = code
        self.count = 0
        self.where = ""

    def __call__(self, frame: FrameType, event: str, arg: Any) -> None:
        if event != "c_call" or getattr(arg, "__name__", "") not in WRITE_CALLS:
            return
        module = getattr(arg, "__module__", None)
        owner = getattr(arg, "__self__", None)
        if module not in ("posix", "io", "_io") and not isinstance(owner, io.IOBase):
            return
        self.count += 1
        if self.count == self.at:
            self.where = f"{arg.__name__}() in {frame.f_code.co_name}"
            raise OSError(self.code, os.strerror(self.code))


def _write_outputs(sources: list[str], root: str, out: Path, mode: str) -> None:
    """The output stage of ``select``, as :mod:`smartdownsample.cli` runs it."""
    with OutputTransaction() as tx:
        tx.write_lines(out / "selected.txt", sources)
        tx.write_csv(out / "manifest.csv", [{"path": p, "kept": True} for p in sources])
        tx.export_tree(sources, out / "tree", mode="copy" if mode == "copy" else "link", root=root)
        tx.write_json(out / "report.json", {"n_selected": len(sources)})
        tx.commit()


@pytest.mark.parametrize(
    ("mode", "code"),
    [
        pytest.param("copy", errno.ENOSPC, id="copy-ENOSPC"),
        pytest.param("link", errno.EROFS, id="link-EROFS"),
    ],
)
def test_every_failing_write_is_reported_and_undone(
    mode: str, code: int, source: Source, tmp_path: Path
) -> None:
    chosen = sorted(source.images)[:4]
    out = tmp_path / "out"
    out.mkdir()
    _write_outputs(chosen, str(source.root), out, mode)
    complete = _everything(out)
    shutil.rmtree(out)
    problems: list[str] = []
    at = 0
    while True:
        at += 1
        out.mkdir()
        hook = _FailAt(at, code)
        sys.setprofile(hook)
        failed = True
        try:
            _write_outputs(chosen, str(source.root), out, mode)
            failed = False  # a failure the writer may ignore (e.g. chmod on FAT): then complete
        except SmartDownsampleError as exc:
            message = str(exc)
            if "\n" in message or os.strerror(code) not in message or str(out) not in message:
                problems.append(f"{hook.where}: unclear message {message!r}")
        except OSError as exc:
            problems.append(f"{hook.where}: raw {exc!r} escaped")
        finally:
            sys.setprofile(None)
        left = _everything(out)
        if left != ([] if failed else complete):
            problems.append(f"failed at {hook.where} (call {at}): left {left}")
        shutil.rmtree(out)
        if not hook.where:
            break
    assert at > 10
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------- inputs never written


WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

PATH_EVENTS: dict[str, tuple[int, ...]] = {
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.truncate": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "os.rename": (0, 1),
    "os.link": (1,),
    "os.symlink": (1,),
    "shutil.copyfile": (1,),
    "shutil.rmtree": (0,),
    "shutil.move": (0, 1),
    "tempfile.mkstemp": (0,),
    "tempfile.mkdtemp": (0,),
    "sqlite3.connect": (0,),
}
"""Audit events that change the file system, and which arguments are the changed paths."""


class _Auditor:
    """Records file-system changes under ``roots`` and read-opens of files there."""

    def __init__(self, roots: list[Path]) -> None:
        self.roots = [str(r) for r in roots] + [os.path.realpath(r) for r in roots]
        self.violations: list[str] = []
        self.reads = 0

    def _inside(self, path: Any) -> bool:
        if isinstance(path, int) or path is None:
            return False
        try:
            text = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return any(text == root or text.startswith(root + os.sep) for root in self.roots)

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if event == "open":
            path, mode, flags = args
            if not self._inside(path):
                return
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else False
            if mode is None and isinstance(flags, int):
                writes = bool(flags & WRITE_FLAGS)
            if writes:
                self.violations.append(f"open({path!r}, {mode!r}, {flags!r})")
            else:
                self.reads += 1
        elif event in PATH_EVENTS:
            for position in PATH_EVENTS[event]:
                if position < len(args) and self._inside(args[position]):
                    self.violations.append(f"{event}{args!r}")


_ACTIVE: list[_Auditor] = []
_HOOKED: list[bool] = []


def _audit(event: str, args: tuple[Any, ...]) -> None:
    if _ACTIVE:
        _ACTIVE[-1](event, args)


@contextlib.contextmanager
def _audited(roots: list[Path]) -> Iterator[_Auditor]:
    """Audit this process (hooks cannot be removed: ours idles outside this block)."""
    if not _HOOKED:
        sys.addaudithook(_audit)
        _HOOKED.append(True)
    auditor = _Auditor(roots)
    _ACTIVE.append(auditor)
    try:
        yield auditor
    finally:
        _ACTIVE.remove(auditor)


def test_no_input_file_is_written_in_process(
    source: Source, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    cache_file = str(tmp_path / "cache" / "features.sqlite")
    every_output = [
        "--out",
        str(out / "selected.txt"),
        "--manifest",
        str(out / "manifest.csv"),
        "--report",
        str(out / "report.json"),
        "--distribution",
        str(out / "distribution.png"),
        "--thumbnails",
        str(out / "thumbnails.png"),
    ]
    runs: list[list[str]] = [
        # Decodes every image (threads: fewer than 2,000 images), copies the selection.
        _select(source, cache_file, *every_output, "--copy-to", str(out / "copy")),
        # Again over the same outputs, from the cache, linking instead of copying.
        _select(source, cache_file, *every_output, "--overwrite", "--link-to", str(out / "copy")),
        [
            "balance",
            str(source.root),
            "--max-per-class",
            "20",
            "--skip-unreadable",
            "--no-cache",
            "--no-progress",
            "--quiet",
            "--link-to",
            str(out / "balanced"),
            "--report",
            str(out / "balance.json"),
            "--distribution",
            str(out / "balance.png"),
        ],
    ]
    before = _snapshot(source.root)
    for argv in runs:
        with _audited([source.root]) as auditor:
            code = main(argv)
        assert code == 0, capsys.readouterr().err
        assert auditor.violations == [], f"{argv[0]} wrote inputs: {auditor.violations[:5]}"
        if "--copy-to" in argv:  # balance reads only the classes it cuts
            assert auditor.reads >= len(source.images), auditor.reads  # the hook saw the reads
    assert _snapshot(source.root) == before
    assert (out / "copy").is_dir() and (out / "balanced").is_dir()


SITECUSTOMIZE = textwrap.dedent(
    '''
    """Audit hook of test_output_faults: logs file-system use under a root."""
    import os
    import sys

    ROOT = os.environ["SDS_AUDIT_ROOT"]
    LOG = os.environ["SDS_AUDIT_LOG"]
    WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
    PATHS = __PATHS__


    def _inside(path):
        if isinstance(path, int) or path is None:
            return False
        try:
            text = os.path.abspath(os.fsdecode(path))
        except (TypeError, ValueError):
            return False
        return text == ROOT or text.startswith(ROOT + os.sep)


    def _log(kind, event, args):
        # The log lies outside ROOT, so opening it here does not log again.
        line = " ".join([kind, str(os.getpid()), event, repr(args)]).replace("\\n", " ")
        fd = os.open(LOG, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, (line + "\\n").encode("utf-8", "replace"))
        finally:
            os.close(fd)


    def _hook(event, args):
        if event == "open":
            path, mode, flags = args
            if not _inside(path):
                return
            writes = any(c in mode for c in "wax+") if isinstance(mode, str) else False
            if mode is None and isinstance(flags, int):
                writes = bool(flags & WRITE_FLAGS)
            _log("WRITE" if writes else "read", event, args)
        elif event in PATHS:
            for position in PATHS[event]:
                if position < len(args) and _inside(args[position]):
                    _log("WRITE", event, args)


    sys.addaudithook(_hook)
    '''
)
"""Installed through PYTHONPATH in the command's process and its worker processes."""


def test_no_input_file_is_written_by_worker_processes(source: Source, tmp_path: Path) -> None:
    """The command in a subprocess, decoding in worker processes, audited everywhere."""
    root = tmp_path / "many"
    for copy in range(N_LINKED):
        for path in source.images:
            target = root / f"card{copy}" / os.path.relpath(path, source.root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)  # distinct files: links to one file count once
    n_images = len(list_sources([str(root)]).paths)
    assert n_images == N_LINKED * N_IMAGES
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "sitecustomize.py").write_text(
        SITECUSTOMIZE.replace("__PATHS__", repr(PATH_EVENTS)),
        encoding="utf-8",
    )
    log = tmp_path / "audit.log"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(hooks), *filter(None, [env.get("PYTHONPATH", "")])])
    env["SDS_AUDIT_ROOT"] = str(root)
    env["SDS_AUDIT_LOG"] = str(log)
    out = tmp_path / "out"
    before = _snapshot(root)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "smartdownsample",
            "select",
            str(root),
            "--fraction",
            "0.2",
            "--cache",
            str(tmp_path / "features.sqlite"),
            "--no-progress",
            "--quiet",
            "--out",
            str(out / "selected.txt"),
            "--manifest",
            str(out / "manifest.csv"),
            "--copy-to",
            str(out / "copy"),
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    lines = log.read_text(encoding="utf-8").splitlines()
    writes = [line for line in lines if line.startswith("WRITE")]
    assert writes == [], writes[:5]
    readers = {int(line.split()[1]) for line in lines if line.startswith("read")}
    assert len(readers) >= 2, "the decoding workers were not audited"
    assert len(lines) >= n_images
    assert _snapshot(root) == before


# ---------------------------------------------------------------- special files


def test_overwrite_never_replaces_a_special_file(
    source: Source, cache: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--out FIFO --overwrite`` (think ``--out /dev/stdout`` as root) must not replace it."""
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    capsys.readouterr()
    code = main(_select(source, cache, "--out", str(fifo), "--overwrite"))
    err = capsys.readouterr().err
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode), "the FIFO was replaced by a regular file"
    assert code == 2
    assert str(fifo) in _error_line(err)
