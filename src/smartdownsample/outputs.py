"""Writing the command line's outputs without ever leaving half a file.

Every file is written to a temporary file in its destination folder and
renamed into place, so a crash, a full disk or Ctrl-C leaves either the old
file or the new one, never a mix. :class:`OutputTransaction` goes further:
it stages several outputs (path list, manifest, report, charts, copied or
linked image trees) and puts them in place together on :meth:`commit`; until
then, or when anything fails, :meth:`~OutputTransaction.rollback` removes
every file and folder it created.

Input images are only ever opened for reading (copies) or not opened at all
(links). Checks that refuse dangerous destinations (a non-empty folder
without ``overwrite``, a folder inside a SOURCE, a file that is an input) are
in :func:`check_output_dir` and :func:`check_output_file`.

A copy or link folder is locked while a run writes into it
(:class:`FolderLock`), never written through a symbolic link inside it, and
holds a record of what this tool put there (:data:`RECORD_NAME`): a later
export into the same folder removes exactly the earlier export's files that
it does not replace, and keeps every other file. Files that are replaced or
removed are first moved aside (hidden, beside them) and only deleted when the
outputs are committed, so a rollback puts every one of them back.

A process killed outright (SIGKILL, out of memory, power loss) rolls nothing
back: every rename is first written down in a journal beside the outputs
(:mod:`smartdownsample._journal`), and the next run that writes there
completes or undoes what the killed run left (:func:`recover_output_file`,
:func:`recover_output_dir`, and the checks and lock that call them) before
anything else.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import itertools
import json
import logging
import os
import shutil
import stat
import sys
import tempfile
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from ._exceptions import InvalidArgumentError, OutputError
from ._fileops import (
    FALLBACK_TO_SYMLINK,
    TEMP_PREFIX,
    Identity,
    _explain,
    _fsync_folder,
    _identity,
    _inside,
    _lock,
    _remove_empty_parents,
    _remove_file,
    _safe_relative,
    _same_file,
    _temp_name,
    _until_done,
)
from ._journal import Journal, Replacement, has_journal, recover_interrupted
from .paths import absolute_path
from .report import count_noun

__all__ = [
    "LOCK_NAME",
    "RECORD_NAME",
    "TEMP_PREFIX",
    "FolderLock",
    "OutputError",
    "OutputTransaction",
    "TreeExport",
    "atomic_file",
    "check_no_links",
    "check_output_dir",
    "check_output_file",
    "check_path_list",
    "common_root",
    "export_tree",
    "lock_output_dir",
    "recover_output_dir",
    "recover_output_file",
    "write_json",
]

logger = logging.getLogger(__name__)

TEXT_ERRORS = "surrogateescape"
"""How text outputs encode file names that are not UTF-8 (surrogate escapes from
``os.fsdecode``): back to their original bytes, so lists and manifests name the
very file, and the list reader gets the same name back."""

OUTPUTS_COMMITTED = "outputs_committed"
"""Attribute set (True) on a KeyboardInterrupt that :meth:`OutputTransaction.commit`
raises after every output was put in place."""

JSON_ERRORS = "backslashreplace"
"""JSON writes such a name's escape as ``\\udcXX``: valid JSON, read back as the same str."""

LINE_BREAKS = ("\n", "\r")
"""Characters a path list of one path a line cannot hold (its reader splits on them)."""

LINE_PADDING = (" ", "\t")
"""What the list reader strips around a line: a name ending in one cannot come back."""

RECORD_NAME = ".smartdownsample.json"
"""File in a copy or link folder listing the files this tool put there (and their
identity), so that a later export removes exactly those and never a file of the user."""

RECORD_FORMAT = 1
"""Version of the record's layout; a record of another version is ignored (files kept)."""

LOCK_NAME = ".smartdownsample.lock"
"""File in a copy or link folder that a run holds an OS lock on while it writes there."""

TreeMode = Literal["copy", "link"]
ProgressCallback = Callable[[int], None]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
"""Permissions of new output files: what ``open`` would give (mkstemp uses 0600)."""


def _create_empty(path: str) -> None:
    """Create ``path`` (it must not exist) with the mode ``open`` would give."""
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))


def _set_mode(path: str) -> None:
    """Give ``path`` the usual mode; file systems with fixed modes (FAT, SMB) refuse: fine."""
    try:
        os.chmod(path, _FILE_MODE)
    except OSError as exc:
        logger.debug("kept the mode of %s: %s", path, exc.strerror or exc)


def _own_stream_fd(info: os.stat_result) -> int | None:
    """The descriptor of this process's stdout or stderr if ``info`` is that file."""
    for stream in (sys.stdout, sys.stderr):
        try:
            fd = stream.fileno()
            if os.path.samestat(info, os.fstat(fd)):
                return fd
        except (OSError, ValueError, AttributeError):
            continue
    return None


def _writes_in_place(path: str) -> bool:
    """True for outputs written directly: a character device (``/dev/null``, a terminal)
    or this process's own standard output or error (``/dev/stdout``); renaming a file
    over them would replace the device, or the ``/dev/stdout`` link, itself."""
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return False
    if stat.S_ISDIR(info.st_mode):
        return False
    return stat.S_ISCHR(info.st_mode) or _own_stream_fd(info) is not None


def _open_in_place(path: str, mode: str, **options: Any) -> IO[Any]:
    """Open a device, or a duplicate of our own stdout / stderr (sharing its offset,
    so nothing printed before or after is overwritten)."""
    fd = _own_stream_fd(os.stat(path))
    if fd is None:
        return open(path, mode, **options)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError, AttributeError):
            stream.flush()
    return os.fdopen(os.dup(fd), mode, **options)


@contextlib.contextmanager
def _in_place(
    path: str, *, binary: bool, newline: str | None, errors: str | None
) -> Iterator[IO[Any]]:
    try:
        if binary:
            with _open_in_place(path, "wb") as handle:
                yield handle
        else:
            options = {"encoding": "utf-8", "errors": errors, "newline": newline}
            with _open_in_place(path, "w", **options) as handle:
                yield handle
    except OSError as exc:
        raise OutputError(f"cannot write {path}: {_explain(exc)}") from exc


@contextlib.contextmanager
def atomic_file(
    path: str | os.PathLike[str],
    *,
    binary: bool = False,
    newline: str | None = None,
    errors: str | None = TEXT_ERRORS,
) -> Iterator[IO[Any]]:
    """Open a temporary file that replaces ``path`` only if the block finishes.

    The parent folder is created if needed. If the block raises (including
    ``KeyboardInterrupt``), the temporary file is deleted and ``path`` is
    left as it was.

    Raises
    ------
    OutputError
        If the file cannot be written (full disk, read-only folder, ...).

    A character device (``/dev/null``) or the process's own standard output
    is written directly instead. So is a staging file of an
    :class:`OutputTransaction` (named with :data:`TEMP_PREFIX`): it is
    temporary already (renamed into place on commit, removed on rollback) and
    named in the transaction's journal, where a second temporary file would
    not be (a killed run would leave it behind). Text is UTF-8; ``errors``
    says how file names that are not UTF-8 are encoded (default: their
    original bytes).

    Examples
    --------
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "out.txt")
    >>> with atomic_file(target) as handle:
    ...     _ = handle.write("hello\\n")
    >>> open(target).read()
    'hello\\n'
    """
    target = absolute_path(os.fspath(path))
    if _writes_in_place(target):
        with _in_place(target, binary=binary, newline=newline, errors=errors) as handle:
            yield handle
        return
    staging = os.path.basename(target).startswith(TEMP_PREFIX)
    temp = ""
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temp = target if staging else _temp_name(os.path.dirname(target), ".tmp")
        mode = ("w" if staging else "x") + ("b" if binary else "")
        encoding = None if binary else "utf-8"
        text_errors = None if binary else errors
        with open(temp, mode, encoding=encoding, errors=text_errors, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        if not staging:
            os.replace(temp, target)
    except OSError as exc:
        if temp and not staging:
            _remove_file(temp)
        raise OutputError(f"cannot write {target}: {_explain(exc)}") from exc
    except BaseException:
        if temp and not staging:
            _remove_file(temp)
        raise


def _write_lines(handle: IO[Any], lines: Iterable[str]) -> int:
    count = 0
    for line in lines:
        handle.write(line)
        handle.write("\n")
        count += 1
    return count


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
"""A spreadsheet reads a cell starting with one of these as a formula (OWASP's list)."""


def spreadsheet_safe(value: object) -> object:
    """A CSV cell a spreadsheet shows as the text it is, never runs as a formula.

    Text that starts like a formula gets a leading apostrophe, as
    spreadsheet-safe CSV writers do (spreadsheets hide it and show the text);
    numbers and other values are left as they are.

    Examples
    --------
    >>> spreadsheet_safe("=HYPERLINK(1)"), spreadsheet_safe("-deer"), spreadsheet_safe(-3)
    ("'=HYPERLINK(1)", "'-deer", -3)
    >>> spreadsheet_safe("/photos/img.jpg")
    '/photos/img.jpg'
    """
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _write_rows(
    handle: IO[Any], rows: Iterable[Mapping[str, Any]], fieldnames: Sequence[str] | None
) -> int:
    iterator = iter(rows)
    first = next(iterator, None)
    names = list(fieldnames) if fieldnames is not None else list(first or ())
    writer = csv.DictWriter(handle, fieldnames=names, extrasaction="raise")
    writer.writeheader()
    count = 0
    for row in itertools.chain(() if first is None else (first,), iterator):
        writer.writerow({key: spreadsheet_safe(value) for key, value in row.items()})
        count += 1
    return count


def _dump_json(handle: IO[Any], data: Any, *, ascii_only: bool = False) -> None:
    # ascii_only: names that are not valid UTF-8 (surrogate escapes) survive as \\udcXX.
    json.dump(data, handle, indent=2, ensure_ascii=ascii_only, allow_nan=False)
    handle.write("\n")


def _path_lines(paths: Iterable[str]) -> Iterator[str]:
    for path in paths:
        problem = _unlistable(path)
        if problem:
            raise OutputError(problem)
        yield path


def _unlistable(path: str) -> str | None:
    """Why ``path`` cannot go into a list of one path a line, or None if it can."""
    if any(mark in path for mark in LINE_BREAKS):
        what = "holds a line break"
    elif path.endswith(LINE_PADDING) or path.startswith(LINE_PADDING):
        what = "starts or ends with white space"
    else:
        return None
    return (
        f"cannot write {path!r} to a list of one path a line: its name {what}, which the "
        "list could not give back; rename the file, or record the selection in a CSV "
        "manifest (--manifest), which quotes it"
    )


def check_path_list(paths: Iterable[str], *, option: str) -> None:
    """Refuse, before any work, image names a path list cannot hold (a line break).

    ``paths`` are checked as the list will hold them (absolute), so only a name
    ending in white space, or holding a line break, is refused.

    Raises
    ------
    InvalidArgumentError
        Naming the first such image and the fix.
    """
    for path in paths:
        problem = _unlistable(absolute_path(path))
        if problem:
            raise InvalidArgumentError(f"{option}: {problem}")


def write_json(path: str | os.PathLike[str], data: Any) -> None:
    """Write ``data`` as indented UTF-8 JSON atomically (NaN is refused).

    Examples
    --------
    >>> import json, os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "report.json")
    >>> write_json(target, {"kept": 3})
    >>> json.load(open(target))
    {'kept': 3}
    """
    with atomic_file(path, errors=JSON_ERRORS) as handle:
        _dump_json(handle, data)


# ---------------------------------------------------------------- checks


def _real(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _refuse_blocked_path(target: str, option: str) -> None:
    """Refuse a path that cannot be created: a file (or broken link) where a folder must be.

    ``--out f/x.txt`` with ``f`` a file would otherwise fail only when the
    outputs are written, after all the decoding.
    """
    current = os.path.dirname(os.path.abspath(target))
    while not os.path.exists(current):
        if os.path.lexists(current):
            raise InvalidArgumentError(
                f"{option} {target!r} cannot be created: {current!r} is a broken symbolic "
                "link; remove it or choose another path"
            )
        parent = os.path.dirname(current)
        if parent == current:
            return
        current = parent
    if not os.path.isdir(current):
        raise InvalidArgumentError(
            f"{option} {target!r} cannot be created: {current!r} is a file, not a folder; "
            "choose another path"
        )
    if not os.access(current, os.W_OK | os.X_OK):
        raise InvalidArgumentError(
            f"{option} {target!r} cannot be written in {current!r}: {_why_unwritable(current)}; "
            "choose a folder you can write to"
        )


def _why_unwritable(folder: str) -> str:
    """``Read-only file system`` or ``Permission denied`` (the system's own words)."""
    try:
        read_only = bool(os.statvfs(folder).f_flag & os.ST_RDONLY)
    except (OSError, AttributeError):  # no statvfs on Windows
        read_only = False
    return os.strerror(errno.EROFS if read_only else errno.EACCES)


def _refuse_non_empty(target: str, option: str) -> None:
    """Refuse a folder holding anything but the lock file of a run (without ``overwrite``)."""
    with os.scandir(target) as entries:
        if any(entry.name != LOCK_NAME for entry in entries):
            raise InvalidArgumentError(
                f"{option} folder {target!r} is not empty; choose a new or empty folder, "
                "or pass --overwrite to write into it"
            )


def check_output_dir(
    dest: str | os.PathLike[str],
    *,
    option: str,
    source_folders: Collection[str],
    image_paths: Collection[str],
    overwrite: bool,
) -> None:
    """Refuse an output folder that could mix with or damage the inputs.

    Refused: a path that is a file; a folder inside (or equal to) a SOURCE
    folder or the folder of any input image (the next run would find the
    outputs as inputs); a folder that contains input images (``--overwrite``
    could replace them); a non-empty folder unless ``overwrite`` (one holding
    an interrupted run's journal is judged by :func:`lock_output_dir`, once
    that run is completed or undone).

    Raises
    ------
    InvalidArgumentError
        Naming the folder, the reason and the fix.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> try:
    ...     check_output_dir(os.path.join(root, "out"), option="--copy-to",
    ...                      source_folders=[root], image_paths=[], overwrite=False)
    ... except ValueError as exc:
    ...     print("refused")
    refused
    """
    target = os.fspath(dest)
    real = _real(target)
    if os.path.exists(target) and not os.path.isdir(target):
        raise InvalidArgumentError(
            f"{option} {target!r} is a file, not a folder; give a folder path"
        )
    _refuse_blocked_path(target, option)
    for folder in source_folders:
        if _inside(real, _real(folder)):
            raise InvalidArgumentError(
                f"{option} folder {target!r} is inside the SOURCE folder {folder!r}; choose a "
                "folder outside it (the next run would take the outputs for input images)"
            )
    image_dirs = {os.path.dirname(absolute_path(path)) for path in image_paths}
    for folder in image_dirs:
        real_folder = _real(folder)
        if _inside(real, real_folder):
            raise InvalidArgumentError(
                f"{option} folder {target!r} is inside {folder!r}, which holds input images; "
                "choose a folder outside the input folders"
            )
        if _inside(real_folder, real):
            raise InvalidArgumentError(
                f"{option} folder {target!r} contains input images (in {folder!r}); choose a "
                "new folder outside the input folders"
            )
    if os.path.isdir(target) and not overwrite and not has_journal(target):
        _refuse_non_empty(target, option)  # else checked by lock_output_dir, after the recovery


def _same_path(a: str, b: str) -> bool:
    """Whether two paths name one file (False if either cannot be stat'ed)."""
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def check_output_file(
    path: str | os.PathLike[str],
    *,
    option: str,
    image_paths: Collection[str],
    overwrite: bool,
    source_files: Collection[str] = (),
) -> None:
    """Refuse an output file that is a folder, an input image, or exists (unless ``overwrite``).

    ``source_files`` (the list, CSV or detector files a command read) are never
    replaced, not even with ``overwrite``.

    First, what an interrupted run left in the file's folder is completed or
    undone (its journal says which; one warning line), so that the file is
    judged as the user had it.

    Raises
    ------
    InvalidArgumentError
        Naming the file, the reason and the fix.
    OutputError
        Another run is writing the file, or an interrupted run's journal
        cannot be completed.

    Examples
    --------
    >>> import os, tempfile
    >>> check_output_file(os.path.join(tempfile.mkdtemp(), "new.txt"), option="--out",
    ...                   image_paths=[], overwrite=False)
    """
    target = os.fspath(path)
    if os.path.isdir(target):
        raise InvalidArgumentError(f"{option} {target!r} is a folder; give a file name")
    _refuse_blocked_path(target, option)
    if _writes_in_place(target):
        return  # /dev/null, a terminal, our own stdout: written directly, nothing replaced
    recover_output_file(target, option=option)
    if not os.path.lexists(target):
        return
    try:
        mode = os.stat(target).st_mode
    except OSError:
        mode = stat.S_IFREG  # a broken symbolic link: replacing it harms nothing
    if not stat.S_ISREG(mode):
        # A device, pipe or socket (/dev/stdout, /dev/null): the atomic rename would
        # replace the special file itself (as root, even in /dev).
        stdout = " or '-' for standard output" if option == "--out" else ""
        raise InvalidArgumentError(
            f"{option} {target!r} is not a regular file (a device, pipe or socket); give the "
            f"path of a file{stdout}"
        )
    for source in source_files:
        if _same_path(target, source):
            raise InvalidArgumentError(
                f"{option} {target!r} is the SOURCE file {source!r}, which it would "
                "replace; choose another name"
            )
    if not overwrite:
        raise InvalidArgumentError(
            f"{option} file {target!r} already exists; choose another name, or pass "
            "--overwrite to replace it"
        )
    real = _real(target)
    name = os.path.normcase(os.path.basename(real))
    for image in image_paths:
        if os.path.normcase(os.path.basename(image)) == name and _real(image) == real:
            raise InvalidArgumentError(
                f"{option} file {target!r} is one of the input images; choose another name"
            )


def recover_output_file(path: str | os.PathLike[str], *, option: str) -> None:
    """Complete or undo what interrupted runs left in the folder of the output file ``path``.

    A run killed while it replaced outputs there left a journal saying what
    it did: committed, its outputs are completed, else undone (the files it
    replaced put back); one warning line says what was done.

    Raises
    ------
    OutputError
        Another run is writing ``path``, or a journal cannot be completed.
    """
    target = os.fspath(path)
    if not _writes_in_place(target):
        full = absolute_path(target)
        recover_interrupted(os.path.dirname(full), full, option=option)


def recover_output_dir(dest: str | os.PathLike[str], *, option: str) -> None:
    """Complete or undo what an interrupted run left in the copy or link folder ``dest``.

    Only if it holds a journal; under the folder's lock (:class:`FolderLock`),
    as :func:`lock_output_dir` does it again later.

    Raises
    ------
    OutputError
        Another run holds the folder, or a journal cannot be completed.
    """
    folder = absolute_path(os.fspath(dest))
    if has_journal(folder):
        with FolderLock(folder, option=option) as lock:
            recover_interrupted(lock.folder, lock.folder, option=option)


# ---------------------------------------------------------------- lock


def _try_lock(fd: int, path: str) -> bool:
    """Take the OS lock on ``fd`` without waiting; False if another process holds it."""
    state = _lock(fd)
    if state == "unsupported":
        logger.warning(
            "cannot lock %s (the file system has no locks); a second run writing into the "
            "same folder at the same time would not be noticed",
            path,
        )
    return state != "held"


def _holder(fd: int) -> str:
    """`` (pid N)`` from the lock file of the run holding it, if it wrote its pid yet."""
    with contextlib.suppress(OSError, ValueError):
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32)
        return f" (pid {int(text.decode('ascii').strip())})"
    return ""


class FolderLock:
    """An exclusive lock on an output folder: one run at a time writes into it.

    The lock is an OS lock (``flock`` on POSIX, ``msvcrt.locking`` on
    Windows) on :data:`LOCK_NAME` inside the folder, holding the pid of the
    run. The OS drops it when the process ends, however it ends, so a lock
    file left by a killed run is never stale: the next run simply takes it.
    The folder (and missing parents) is created by :meth:`acquire` and
    removed again by :meth:`release` if it is then empty.

    Raises
    ------
    OutputError
        From :meth:`acquire`: another run holds the lock (the message names
        the folder and the pid), or the lock file cannot be written.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = os.path.join(tempfile.mkdtemp(), "copy")
    >>> with FolderLock(folder, option="--copy-to"):
    ...     try:
    ...         FolderLock(folder, option="--copy-to").acquire()
    ...     except OutputError:
    ...         print("in use")
    in use
    >>> os.path.exists(folder)
    False
    """

    def __init__(self, folder: str | os.PathLike[str], *, option: str) -> None:
        self.folder = os.path.abspath(os.fspath(folder))
        self.option = option
        self.path = os.path.join(self.folder, LOCK_NAME)
        self._fd: int | None = None
        self._created: list[str] = []

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def acquire(self) -> None:
        """Create the folder if needed and take the lock, or raise :class:`OutputError`."""
        try:
            _make_dirs(self.folder, self._created)
            while self._fd is None:
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
                if not _try_lock(fd, self.path):
                    holder = _holder(fd)
                    os.close(fd)
                    raise OutputError(
                        f"{self.option} folder {self.folder!r} is in use by another "
                        f"smartdownsample run{holder}; wait until it ends, or choose another "
                        "folder"
                    )
                if _same_file(fd, self.path):
                    self._fd = fd
                else:  # the previous holder removed the file between our open and lock
                    os.close(fd)
            os.ftruncate(self._fd, 0)
            os.lseek(self._fd, 0, os.SEEK_SET)
            os.write(self._fd, f"{os.getpid()}\n".encode("ascii"))
        except OSError as exc:
            self.release()
            raise OutputError(f"cannot write {self.path}: {_explain(exc)}") from exc
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """Remove the lock file, drop the lock, remove the folder if we made it and it is empty.

        Finished even if Ctrl-C lands in the middle (which is then raised).
        """
        interrupted = _until_done(self._release)
        if interrupted is not None:
            raise interrupted

    def _release(self) -> None:
        if self._fd is not None:
            if sys.platform != "win32":  # while still locked: no one opens the old file
                _remove_file(self.path)
            with contextlib.suppress(OSError):  # closed already if interrupted right after
                os.close(self._fd)
            self._fd = None
            if sys.platform == "win32":
                _remove_file(self.path)
        for folder in reversed(self._created):
            try:
                os.rmdir(folder)
            except OSError as exc:
                logger.debug("left folder %s in place: %s", folder, exc.strerror or exc)
        self._created.clear()


def lock_output_dir(dest: str | os.PathLike[str], *, option: str, overwrite: bool) -> FolderLock:
    """Lock an output folder checked by :func:`check_output_dir`; check again it is empty.

    Under the lock, what an interrupted run left in the folder is first
    completed or undone (its journal says which; one warning line), then the
    emptiness check is repeated: a run that finished between the first check
    and the lock has filled the folder.

    Raises
    ------
    OutputError
        If another run holds the folder, the lock cannot be written, or an
        interrupted run's journal cannot be completed.
    InvalidArgumentError
        If the folder is not empty and ``overwrite`` is false.
    """
    lock = FolderLock(dest, option=option)
    lock.acquire()
    try:
        recover_interrupted(lock.folder, lock.folder, option=option)
        if not overwrite:
            _refuse_non_empty(os.fspath(dest), option)
    except BaseException:
        lock.release()
        raise
    return lock


# ---------------------------------------------------------------- trees


def common_root(paths: Iterable[str], folders: Iterable[str] = ()) -> str:
    """The deepest folder holding all ``paths`` and ``folders`` (absolute).

    Raises
    ------
    OutputError
        If they share no folder (different drives on Windows).

    Examples
    --------
    >>> common_root(["/data/a/1.jpg", "/data/b/2.jpg"]) == os.path.abspath("/data")
    True
    """
    dirs = {os.path.dirname(absolute_path(path)) for path in paths}
    dirs.update(absolute_path(folder) for folder in folders)
    if not dirs:
        raise OutputError("there are no images to export")
    try:
        return os.path.commonpath(sorted(dirs))
    except ValueError as exc:
        raise OutputError(
            "the images share no common folder (different drives?), so their folder "
            "structure cannot be kept; export each drive's images in a separate run"
        ) from exc


@dataclass
class TreeExport:
    """What :func:`export_tree` did.

    Attributes
    ----------
    dest, root : str
        Destination folder, and the folder whose structure was reproduced.
    mode : {"copy", "link"}
    n_copied, n_hardlinks, n_symlinks, n_present : int
        Files copied, hard-linked, symbolically linked, or already linked.
    n_removed : int
        Files of an earlier export into ``dest`` (listed in its record) that
        this one removed because it did not select them again.
    kept_changed : list of str
        Files of an earlier export that were changed since: kept (relative).
    kept_other : list of str
        Files in ``dest`` this tool did not write: kept (relative).
    created_files, created_dirs : list of str
        What was created (removed again by a rollback).
    replaced : list of (str, str)
        ``(aside, path)``: an existing file moved aside before ``path`` was
        written or removed; put back by a rollback, deleted on commit.
    staged : list of str
        Staging files made beside their targets (renamed into place, or
        removed by a rollback).
    """

    dest: str
    root: str
    mode: TreeMode
    n_copied: int = 0
    n_hardlinks: int = 0
    n_symlinks: int = 0
    n_present: int = 0
    n_removed: int = 0
    kept_changed: list[str] = field(default_factory=list)
    kept_other: list[str] = field(default_factory=list)
    created_files: list[str] = field(default_factory=list)
    created_dirs: list[str] = field(default_factory=list)
    replaced: list[tuple[str, str]] = field(default_factory=list)
    placed: list[str] = field(default_factory=list)
    """Relative paths of the files now in place (for the record)."""
    removed: list[str] = field(default_factory=list)
    """Paths of an earlier export's files moved aside to be deleted on commit."""
    staged: list[str] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        """Files now in place in the destination."""
        return self.n_copied + self.n_hardlinks + self.n_symlinks + self.n_present

    def describe(self) -> str:
        """One line for the final summary."""
        if self.mode == "copy":
            line = f"copied {count_noun(self.n_copied, 'image')} to {self.dest}"
        else:
            parts = [f"{self.n_hardlinks:,} hard links", f"{self.n_symlinks:,} symbolic links"]
            if self.n_present:
                parts.append(f"{self.n_present:,} already there")
            line = (
                f"linked {count_noun(self.n_files, 'image')} into {self.dest} ({', '.join(parts)})"
            )
        if self.n_removed:
            line += f"; removed {count_noun(self.n_removed, 'image')} of an earlier run"
        if self.kept_changed:
            line += (
                f"; kept {count_noun(len(self.kept_changed), 'file')} of an earlier run changed "
                f"since (e.g. {self.kept_changed[0]})"
            )
        if self.kept_other:
            line += (
                f"; kept {count_noun(len(self.kept_other), 'other file')} this tool did not write "
                f"(e.g. {self.kept_other[0]})"
            )
        return line

    def undo(self) -> None:
        """Remove what this export created and put back every file it replaced or removed."""
        self._put_back_files()
        self._remove_folders()

    def _put_back_files(self) -> bool:
        """Remove the new and staging files, put back the others; False if one could not be."""
        for temp in self.staged:
            _remove_file(temp)
        self.staged.clear()
        return _put_back(self.created_files, self.replaced)

    def _remove_folders(self) -> None:
        _remove_folders(self.created_dirs)

    def finish(self) -> None:
        """On commit: delete the files moved aside, and folders left empty by removals."""
        for aside, _ in self.replaced:
            _remove_file(aside)
        for path in self.removed:
            _remove_empty_parents(path, self.dest)
        self.replaced.clear()
        self.removed.clear()
        self.created_files.clear()
        self.created_dirs.clear()
        self.staged.clear()

    def _folders(self) -> set[str]:
        """The folders this export renamed files in."""
        paths = [os.path.join(self.dest, relative) for relative in self.placed] + self.removed
        return {os.path.dirname(path) for path in paths} | {self.dest}


def _remove_folders(created: list[str]) -> None:
    """Remove the folders a rollback left empty (``created`` in the order made)."""
    for folder in reversed(created):
        try:
            os.rmdir(folder)
        except OSError as exc:
            logger.debug("left folder %s in place: %s", folder, exc.strerror or exc)
    created.clear()


def _make_dirs(
    folder: str, created: list[str], before: Callable[[str], None] | None = None
) -> None:
    """Create ``folder`` and its missing parents, listed in ``created`` (and told to
    ``before``, the journal) before each is made."""
    missing: list[str] = []
    current = folder
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for path in reversed(missing):
        created.append(path)  # first: an interrupt right after mkdir still removes it
        if before is not None:
            before(path)
        try:
            os.mkdir(path)
        except FileExistsError:
            created.pop()  # made meanwhile by someone else: not ours to remove
            if not os.path.isdir(path):
                raise


def _make_dirs_noted(folder: str, created: list[str], journal: Journal) -> None:
    """:func:`_make_dirs` for the folder of ``journal``; the journal, made in it
    next, says how many levels were made (an undone run removes them)."""
    before = len(created)
    _make_dirs(folder, created)
    if len(created) > before:
        journal.note_made(len(created) - before)


def check_no_links(
    dest: str | os.PathLike[str], folders: Iterable[str], *, option: str, root: str
) -> None:
    """Refuse an output folder where an export of files in ``folders`` would meet a link.

    ``folders`` are the folders of the input images, ``root`` the folder
    whose structure the export keeps: the same check as the export makes,
    before any image is decoded.

    Raises
    ------
    InvalidArgumentError
        Naming the link and the fix.
    """
    target = os.path.abspath(os.fspath(dest))
    if not os.path.isdir(target):
        return
    checked: set[str] = set()
    for folder in folders:
        relative = os.path.relpath(os.path.abspath(folder), root)
        if relative == os.pardir or relative.startswith(os.pardir + os.sep):
            continue
        try:
            _refuse_links(target, os.path.join(target, relative), checked)
        except OutputError as exc:
            raise InvalidArgumentError(f"{option} folder {os.fspath(dest)!r}: {exc}") from None


def _refuse_links(dest: str, folder: str, checked: set[str]) -> None:
    """Refuse a folder under ``dest`` reached through a symbolic link.

    Writing through it would put (or replace) files outside ``dest``, or
    make two selected files land on one. ``dest`` itself may be a link: the
    user named it.
    """
    relative = os.path.relpath(folder, dest)
    if relative == os.curdir:
        return
    current = dest
    for part in relative.split(os.sep):
        current = os.path.join(current, part)
        if current in checked:
            continue
        try:
            info = os.lstat(current)
        except (FileNotFoundError, NotADirectoryError):
            return  # made by us from here on (or a file in the way: the export says so)
        if stat.S_ISLNK(info.st_mode):
            raise OutputError(
                f"{current!r} is a symbolic link (to {os.path.realpath(current)!r}); nothing "
                "is written through a link inside an output folder: remove the link or "
                "choose another folder"
            )
        checked.add(current)


def _place(
    temp: str, target: str, created: list[str], replaced: list[tuple[str, str]], aside: str
) -> None:
    """Rename ``temp`` to ``target``; an existing ``target`` is first moved to ``aside``.

    ``created`` gets ``target`` if it is new, ``replaced`` the pair ``(aside,
    target)`` otherwise, each *before* the rename: a roll-back after any
    instant removes the new file and puts the old one back. (The journal
    was told ``aside`` before: a run killed now is completed by the next.)
    """
    try:
        info = os.lstat(target)
    except FileNotFoundError:
        created.append(target)
    else:
        if stat.S_ISDIR(info.st_mode):
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), target)
        replaced.append((aside, target))
        os.replace(target, aside)
    os.replace(temp, target)


def _appeared(target: str) -> str:
    return (
        f"{target!r} appeared while this run was working (another run writing the same "
        "output?); nothing was written: choose another name, or pass --overwrite to replace it"
    )


def _place_new(temp: str, target: str, created: list[str]) -> None:
    """Put ``temp`` in place as ``target``, which must not exist: never replaces a file.

    A hard link fails if ``target`` exists, whatever made it an instant ago;
    where a file system has no hard links, the rename follows a last check.
    """
    created.append(target)  # first: a roll-back after the link removes it
    try:
        os.link(temp, target)
    except FileExistsError:
        created.pop()  # not ours: never removed by a roll-back
        raise OutputError(_appeared(target)) from None
    except OSError:  # no hard links here (FAT, some network shares)
        if os.path.lexists(target):
            created.pop()
            raise OutputError(_appeared(target)) from None
        os.replace(temp, target)
        return
    os.unlink(temp)


def _write_into(temp: str, target: str) -> None:
    """Copy a staged file's bytes into a device or our own stdout, then remove it."""
    with open(temp, "rb") as source, _open_in_place(target, "wb") as sink:
        shutil.copyfileobj(source, sink)
        sink.flush()
    _remove_file(temp)


def _put_back(created: list[str], replaced: list[tuple[str, str]]) -> bool:
    """Undo :func:`_place`: remove the new files, put the old ones back.

    False if one could not be put back: the journal is then kept, and the
    next run writing there puts it back.
    """
    done = True
    for path in reversed(created):
        _remove_file(path)
    for aside, path in reversed(replaced):
        if os.path.lexists(aside):
            try:
                os.replace(aside, path)
            except OSError as exc:
                done = False
                logger.warning(
                    "could not put back %s (it is in %s): %s; the next run writing there "
                    "puts it back",
                    path,
                    aside,
                    exc.strerror or exc,
                )
    created.clear()
    replaced.clear()
    return done


def _copy_file(source: str, temp: str) -> None:
    """Copy ``source`` (opened read-only) to the staging file ``temp``, with its times."""
    shutil.copyfile(source, temp)
    shutil.copystat(source, temp)


def _link_file(source: str, temp: str) -> Literal["hard", "symbolic"]:
    """Link the staging file ``temp`` to ``source``: a hard link, else a symbolic one."""
    try:
        os.link(source, temp, follow_symlinks=True)
    except OSError as exc:
        if exc.errno not in FALLBACK_TO_SYMLINK:
            raise
        logger.debug("hard link of %s failed (%s); making a symbolic link", source, exc)
        if not os.path.exists(source):
            raise
        os.symlink(source, temp)
        return "symbolic"
    return "hard"


@contextlib.contextmanager
def _noting(journal: Journal) -> Iterator[None]:
    """Writing to ``journal``: an error names it."""
    try:
        yield
    except OSError as exc:
        raise OutputError(f"cannot write {journal.path}: {_explain(exc)}") from exc


def _replacement(temp: str | None, target: str) -> Replacement:
    """What putting ``temp`` in place of ``target`` (or removing it) will do, for the journal."""
    aside = _temp_name(os.path.dirname(target), ".old")
    new = None if temp is None else _identity(temp)
    return Replacement(target, aside, os.path.lexists(target), new)


# ---------------------------------------------------------------- record of an export


def _record_data(export: TreeExport) -> dict[str, Any]:
    """What :data:`RECORD_NAME` holds: every file this export put in place, with its identity."""
    files = [[rel, *_identity(os.path.join(export.dest, rel))] for rel in export.placed]
    return {"tool": "smartdownsample", "format": RECORD_FORMAT, "mode": export.mode, "files": files}


def _read_record(dest: str) -> dict[str, Identity]:
    """The files an earlier export recorded in ``dest`` (empty if none or unusable)."""
    path = os.path.join(dest, RECORD_NAME)
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            raise ValueError("not a regular file")
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        if data.get("format") != RECORD_FORMAT:
            raise ValueError(f"unknown format {data.get('format')!r}")
        found: dict[str, Identity] = {}
        for relative, inode, size, mtime in data["files"]:
            safe = _safe_relative(relative)
            if safe is not None:
                found[safe] = (int(inode), int(size), int(mtime))
        return found
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, TypeError, KeyError, AttributeError) as exc:
        logger.warning(
            "ignored the record %s of an earlier run (%s); the files already in %s are kept",
            path,
            exc,
            dest,
        )
        return {}


def _retire_earlier(export: TreeExport, journal: Journal) -> None:
    """Move aside the earlier export's files that this one did not replace (deleted on commit).

    A recorded file that was changed since (another inode, size or time) is
    the user's now: it is kept, as is every file the record does not list.
    """
    earlier = _read_record(export.dest)
    now = set(export.placed)
    checked: set[str] = set()
    retiring: list[Replacement] = []
    for relative, identity in earlier.items():
        if relative in now:
            continue
        path = os.path.join(export.dest, relative)
        try:
            _refuse_links(export.dest, os.path.dirname(path), checked)
            unchanged = _identity(path) == identity
        except (FileNotFoundError, NotADirectoryError):
            continue  # gone since
        except OutputError:
            unchanged = False
        if not unchanged:
            export.kept_changed.append(relative)
            continue
        retiring.append(_replacement(None, path))
    if retiring:
        with _noting(journal):
            journal.note_replacements(retiring)
    for step in retiring:
        export.replaced.append((step.aside, step.target))  # first: undo puts it back
        export.removed.append(step.target)
        os.replace(step.target, step.aside)
        export.n_removed += 1
    export.kept_other = _other_files(export, now | set(export.kept_changed))


def _other_files(export: TreeExport, ours: set[str]) -> list[str]:
    """Files in the folder that this tool did not write (relative, sorted)."""
    found: list[str] = []
    for folder, dirs, names in os.walk(export.dest):
        dirs.sort()
        for name in sorted(names):
            if name.startswith(TEMP_PREFIX) or (
                folder == export.dest and name in (RECORD_NAME, LOCK_NAME)
            ):
                continue
            relative = os.path.relpath(os.path.join(folder, name), export.dest)
            if relative not in ours:
                found.append(relative)
    return found


def export_tree(
    paths: Iterable[str],
    dest: str | os.PathLike[str],
    *,
    mode: TreeMode,
    root: str | None = None,
    progress: ProgressCallback | None = None,
) -> TreeExport:
    """Copy or link files into ``dest``, keeping their folders relative to ``root``.

    ``mode="link"`` makes hard links where the file system allows, else
    symbolic links (absolute). A hard link *is* the input file under a second
    name: editing it edits the input. If anything fails, or on Ctrl-C, every
    file and folder created so far is removed, and every file replaced is put
    back, before the error propagates. Nothing is written through a symbolic
    link to a folder inside ``dest``.

    ``dest`` gets a record (:data:`RECORD_NAME`) of the files put there. If
    it holds the record of an earlier export, that export's files which are
    not exported again and are unchanged since are removed, so that the
    folder holds exactly the new selection plus any file this tool did not
    write (those are kept and counted in ``kept_other``).

    Parameters
    ----------
    paths : iterable of str
        Files to export.
    dest : str or os.PathLike
        Destination folder (created if missing).
    mode : {"copy", "link"}
    root : str, optional
        Folder whose structure is kept (default: :func:`common_root` of ``paths``).
    progress : callable, optional
        Called with 1 after each file.

    Returns
    -------
    TreeExport

    Raises
    ------
    OutputError
        Naming the file that could not be exported and the fix.

    Examples
    --------
    >>> import os, tempfile
    >>> src = tempfile.mkdtemp()
    >>> os.makedirs(os.path.join(src, "cam1"))
    >>> with open(os.path.join(src, "cam1", "a.jpg"), "wb") as handle:
    ...     _ = handle.write(b"jpeg")
    >>> out = os.path.join(tempfile.mkdtemp(), "small")
    >>> export_tree([os.path.join(src, "cam1", "a.jpg")], out, mode="copy", root=src).n_copied
    1
    >>> os.listdir(os.path.join(out, "cam1"))
    ['a.jpg']
    """
    with OutputTransaction() as outputs:
        export = outputs.export_tree(paths, dest, mode=mode, root=root, progress=progress)
        outputs.commit()
    return export


def _new_export(
    paths: Iterable[str], dest: str | os.PathLike[str], mode: TreeMode, root: str | None
) -> tuple[list[str], TreeExport]:
    files = list(paths)
    base = absolute_path(root) if root is not None else common_root(files)
    return files, TreeExport(dest=absolute_path(os.fspath(dest)), root=base, mode=mode)


@dataclass(frozen=True)
class _Staged:
    """A file of an export copied or linked to a staging file beside its target."""

    path: str
    temp: str
    target: str


def _fill_export(
    export: TreeExport, files: list[str], progress: ProgressCallback | None, journal: Journal
) -> None:
    """Copy or link ``files`` as ``export`` says; on failure raise (the transaction undoes it).

    Every file is first staged beside its target, then all are put in place
    (the journal told of each first), then the earlier export's files that
    are not exported again are moved aside.
    """
    try:
        _make_dirs_noted(export.dest, export.created_dirs, journal)
    except OSError as exc:
        raise OutputError(f"cannot create folder {export.dest!r}: {_explain(exc)}") from exc
    checked: set[str] = set()
    staged: list[_Staged] = []
    for path in files:
        item = _stage(export, path, journal, checked)
        if item is not None:
            staged.append(item)
        if progress is not None:
            progress(1)
    with _noting(journal):
        plan = [_replacement(item.temp, item.target) for item in staged]
        journal.note_replacements(plan)
    for item, step in zip(staged, plan, strict=True):
        with _naming(export, item.path, item.target):
            _place(item.temp, item.target, export.created_files, export.replaced, step.aside)
    try:
        _retire_earlier(export, journal)
    except OSError as exc:
        raise OutputError(
            f"cannot remove {exc.filename!r}, a file of an earlier run in "
            f"{export.dest!r}: {_explain(exc)}; nothing was changed in {export.dest!r}"
        ) from exc


def _stage(export: TreeExport, path: str, journal: Journal, checked: set[str]) -> _Staged | None:
    """Copy or link one file to a staging file beside its target (None: linked there already)."""
    source = absolute_path(path)
    relative = os.path.relpath(source, export.root)
    if relative == os.pardir or relative.startswith(os.pardir + os.sep):
        raise OutputError(
            f"{path!r} is not under {export.root!r}, so its folder cannot be kept; "
            "export from a common parent folder"
        )
    target = os.path.join(export.dest, relative)
    export.placed.append(os.path.normpath(relative))
    with _naming(export, path, target):
        folder = os.path.dirname(target)
        _refuse_links(export.dest, folder, checked)
        _make_dirs(folder, export.created_dirs, journal.note_folder)
        if export.mode == "link" and os.path.lexists(target) and os.path.samefile(source, target):
            export.n_present += 1
            return None
        temp = _temp_name(folder, ".part" if export.mode == "copy" else ".link")
        export.staged.append(temp)  # first: a rollback removes it whatever happens
        journal.note_staging(temp, target)
        if export.mode == "copy":
            _copy_file(source, temp)
            export.n_copied += 1
        elif _link_file(source, temp) == "hard":
            export.n_hardlinks += 1
        else:
            export.n_symlinks += 1
    return _Staged(path, temp, target)


@contextlib.contextmanager
def _naming(export: TreeExport, path: str, target: str) -> Iterator[None]:
    """Copying or linking ``path`` to ``target``: an error names both."""
    verb = "copy" if export.mode == "copy" else "link"
    try:
        yield
    except OutputError as exc:
        raise OutputError(f"cannot {verb} {path!r} to {target!r}: {exc}") from exc
    except OSError as exc:
        raise OutputError(
            f"cannot {verb} {path!r} to {target!r}: {_explain(exc)}; nothing was left in "
            f"{export.dest!r}"
        ) from exc


# ---------------------------------------------------------------- transaction


class OutputTransaction:
    """Stage several outputs and put them in place together.

    Files are written to temporary files beside their targets and renamed on
    :meth:`commit`; trees are exported at once but removed again by
    :meth:`rollback`. Used as a context manager, anything not committed when
    the block ends (error, Ctrl-C) is rolled back.

    Each folder written into gets a journal (see :mod:`smartdownsample._journal`)
    from the first file staged there until the outputs are committed and the
    files they replaced deleted: a run killed at any instant is completed, or
    undone, by the next run that writes there.

    With ``replace=False`` (a command run without ``--overwrite``, whose outputs
    did not exist when it started) no file is replaced: a target that has
    appeared meanwhile (another run writing the same output) stops the commit
    with nothing written, and each file is put in place with a hard link,
    which fails rather than replace one made in the last instant.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> with OutputTransaction() as outputs:
    ...     n_lines = outputs.write_lines(os.path.join(folder, "a.txt"), ["x"])
    ...     outputs.write_json(os.path.join(folder, "b.json"), {"n": 1})
    ...     outputs.commit()
    >>> sorted(os.listdir(folder))
    ['a.txt', 'b.json']
    """

    def __init__(self, *, replace: bool = True) -> None:
        self.replace = replace
        self._staged: list[tuple[str, str]] = []
        self._trees: list[TreeExport] = []
        self._created_dirs: list[str] = []
        self._replaced: list[tuple[str, str]] = []
        self._journals: dict[str, Journal] = {}
        self._run = uuid.uuid4().hex
        self._restored = True
        self.committed = False

    def __enter__(self) -> OutputTransaction:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if not self.committed:
            self.rollback()

    @property
    def targets(self) -> list[str]:
        """Files staged so far (final paths)."""
        return [target for _, target in self._staged]

    def temp_for(self, path: str | os.PathLike[str], suffix: str = ".tmp") -> str:
        """A new temporary file beside ``path``, renamed to ``path`` on commit.

        For a target written in place (a character device such as ``/dev/null``,
        or our own standard output) the temporary file is made in the system's
        temporary folder and its bytes are written into the target on commit:
        the device itself is never replaced, nor a file made beside it.
        """
        target = absolute_path(os.fspath(path))
        in_place = _writes_in_place(target)
        folder = tempfile.gettempdir() if in_place else os.path.dirname(target)
        try:
            if not in_place:
                _make_dirs_noted(folder, self._created_dirs, self._journal(folder))
            temp = _temp_name(folder, suffix)
            self._staged.append((temp, target))  # first: rollback removes it whatever happens
            if not in_place:
                self._journal(folder).note_staging(temp, target)
            _create_empty(temp)
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {_explain(exc)}") from exc
        return temp

    @contextlib.contextmanager
    def open(
        self,
        path: str | os.PathLike[str],
        *,
        newline: str | None = None,
        errors: str = TEXT_ERRORS,
    ) -> Iterator[IO[str]]:
        """Open the staged temporary file of ``path`` for writing text (UTF-8).

        A character device (``/dev/null``) or the process's own standard
        output is written directly, at once, not on commit.
        """
        target = absolute_path(os.fspath(path))
        if _writes_in_place(target):
            with _in_place(target, binary=False, newline=newline, errors=errors) as handle:
                yield handle
            return
        temp = self.temp_for(path)
        try:
            with open(temp, "w", encoding="utf-8", errors=errors, newline=newline) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write {os.path.abspath(path)}: {_explain(exc)}") from exc

    def write_lines(self, path: str | os.PathLike[str], lines: Iterable[str]) -> int:
        """Stage a file of one line per item; returns the number of lines."""
        with self.open(path, newline="\n") as handle:
            return _write_lines(handle, lines)

    def write_path_list(self, path: str | os.PathLike[str], paths: Iterable[str]) -> int:
        """Stage a list of absolute paths that reads back as the same files: one a line,
        or a JSON array for a ``*.json`` name (as such a SOURCE is read)."""
        if os.fspath(path).lower().endswith(".json"):
            listed = [absolute_path(p) for p in paths]
            with self.open(path, errors=JSON_ERRORS) as handle:
                _dump_json(handle, listed, ascii_only=True)
            return len(listed)
        with self.open(path, newline="\n") as handle:
            return _write_lines(handle, _path_lines(absolute_path(p) for p in paths))

    def write_csv(
        self,
        path: str | os.PathLike[str],
        rows: Iterable[Mapping[str, Any]],
        fieldnames: Sequence[str] | None = None,
    ) -> int:
        """Stage a CSV file; returns the number of rows."""
        with self.open(path, newline="") as handle:
            return _write_rows(handle, rows, fieldnames)

    def write_json(self, path: str | os.PathLike[str], data: Any) -> None:
        """Stage a JSON file."""
        with self.open(path, errors=JSON_ERRORS) as handle:
            _dump_json(handle, data)

    def export_tree(
        self,
        paths: Iterable[str],
        dest: str | os.PathLike[str],
        *,
        mode: TreeMode,
        root: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> TreeExport:
        """:func:`export_tree`, undone by :meth:`rollback`."""
        files, export = _new_export(paths, dest, mode, root)
        self._trees.append(export)  # before anything exists: rollback undoes whatever appears
        _fill_export(export, files, progress, self._journal(export.dest))
        with self.open(os.path.join(export.dest, RECORD_NAME)) as handle:
            _dump_json(handle, _record_data(export), ascii_only=True)
        return export

    def _journal(self, folder: str) -> Journal:
        """This transaction's journal in ``folder`` (made by its first note)."""
        key = os.path.normcase(folder)
        if key not in self._journals:
            self._journals[key] = Journal(folder, self._run)
        return self._journals[key]

    def commit(self) -> None:
        """Rename every staged file into place: all of them, or (on failure) none.

        Files replaced are moved aside first and deleted only once all are in
        place; on failure they are put back. The journals are told of every
        rename before it is made, and marked committed once all are made.
        """
        placed: list[str] = []
        self._replaced.clear()
        target = ""
        try:
            plan = self._announce()
            for (temp, target), step in zip(self._staged, plan, strict=True):
                if step is None:
                    _write_into(temp, target)
                    continue
                _set_mode(temp)  # writers that made their own temp file use 0600
                if self.replace:
                    _place(temp, target, placed, self._replaced, step.aside)
                else:
                    _place_new(temp, target, placed)
        except BaseException as exc:
            self._restored = _put_back(placed, self._replaced) and self._restored
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write {target}: {_explain(exc)}") from exc
            raise
        self.committed = True
        interrupted = _until_done(self._clean_up_after_commit)
        if interrupted is not None:
            # The outputs are in place: whoever reports the interrupt must not say otherwise.
            setattr(interrupted, OUTPUTS_COMMITTED, True)
            raise interrupted

    def _announce(self) -> list[Replacement | None]:
        """Tell each folder's journal, durably, what :meth:`commit` is about to rename
        there, and where the transaction's other journals are (None: written in place)."""
        plan: list[Replacement | None] = []
        steps: dict[str, list[Replacement]] = {}
        for temp, target in self._staged:
            if _writes_in_place(target):
                plan.append(None)
                continue
            if not self.replace and os.path.lexists(target):
                raise OutputError(_appeared(target))
            try:
                step = _replacement(temp, target)
            except OSError as exc:
                raise OutputError(f"cannot write {target}: {_explain(exc)}") from exc
            plan.append(step)
            self._journal(os.path.dirname(target))  # made when staged, unless in place then
            steps.setdefault(os.path.normcase(os.path.dirname(target)), []).append(step)
        folders = [journal.folder for journal in self._journals.values()]
        for key, journal in self._journals.items():
            with _noting(journal):
                journal.note_replacements(steps.get(key, []), folders)
        return plan

    def _clean_up_after_commit(self) -> None:
        """Mark the journals committed, delete the files moved aside, then the journals
        (idempotent: run again if interrupted)."""
        folders = {journal.folder for journal in self._journals.values()}
        for export in self._trees:
            folders |= export._folders()
        for folder in sorted(folders):
            _fsync_folder(folder)  # the renames are durable before the mark
        for journal in self._journals.values():
            journal.mark_committed()
        for aside, _ in self._replaced:
            _remove_file(aside)
        for export in self._trees:
            export.finish()
        for journal in reversed(self._journals.values()):  # the first marked goes last
            journal.remove()
        self._staged.clear()
        self._replaced.clear()
        self._trees.clear()
        self._created_dirs.clear()
        self._journals.clear()

    def rollback(self) -> None:
        """Remove every staged temporary file and every exported tree.

        The journals go last; one whose files could not all be put back is
        kept, for the next run writing there to put them back.
        """
        for temp, _ in self._staged:
            _remove_file(temp)
        self._staged.clear()
        restored = self._restored
        for export in reversed(self._trees):
            restored = export._put_back_files() and restored
        for journal in self._journals.values():
            if restored:
                journal.remove()
            else:
                journal.keep()
        self._journals.clear()
        for export in reversed(self._trees):
            export._remove_folders()
        self._trees.clear()
        _remove_folders(self._created_dirs)
        self._restored = True
