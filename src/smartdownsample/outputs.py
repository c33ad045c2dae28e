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
import uuid
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import IO, Any, Literal

from ._exceptions import InvalidArgumentError, SmartDownsampleError
from ._paths import absolute_path
from .report import count_noun

__all__ = [
    "TEMP_PREFIX",
    "OutputError",
    "OutputTransaction",
    "TreeExport",
    "atomic_file",
    "check_output_dir",
    "check_output_file",
    "check_path_list",
    "common_root",
    "export_tree",
    "write_json",
    "write_manifest",
    "write_path_list",
]

logger = logging.getLogger(__name__)

TEMP_PREFIX = ".smartdownsample-"
"""Prefix of temporary files; a dot keeps them hidden (and out of folder searches)."""

FALLBACK_TO_SYMLINK = frozenset(
    code
    for code in (
        errno.EXDEV,  # source and destination on different file systems
        errno.EPERM,  # file system without hard links (FAT, exFAT, some network shares)
        errno.EMLINK,  # too many links to the source file
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
    )
    if code is not None
)
"""``os.link`` errors after which a symbolic link is made instead of a hard link."""

TEXT_ERRORS = "surrogateescape"
"""How text outputs encode file names that are not UTF-8 (surrogate escapes from
``os.fsdecode``): back to their original bytes, so lists and manifests name the
very file, and the list reader gets the same name back."""

JSON_ERRORS = "backslashreplace"
"""JSON writes such a name's escape as ``\\udcXX``: valid JSON, read back as the same str."""

LINE_BREAKS = ("\n", "\r")
"""Characters a path list of one path a line cannot hold (its reader splits on them)."""

LINE_PADDING = (" ", "\t")
"""What the list reader strips around a line: a name ending in one cannot come back."""

TreeMode = Literal["copy", "link"]
ProgressCallback = Callable[[int], None]


class OutputError(SmartDownsampleError):
    """An output could not be written; the message names the path and the fix."""


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_FILE_MODE = 0o666 & ~_umask()
"""Permissions of new output files: what ``open`` would give (mkstemp uses 0600)."""


def _explain(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        return f"{reason}; free some space or choose another destination"
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return f"{reason}; choose a destination you can write to"
    return reason


def _remove_file(path: str) -> None:
    """Delete a file we created; a failure is logged, never raised (we are cleaning up)."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        logger.warning("could not remove the partial file %s: %s", path, exc.strerror or exc)


def _temp_name(folder: str, suffix: str) -> str:
    """A new temporary file name in ``folder`` (not created).

    Callers record the name *before* the file is created, so that a failure
    or Ctrl-C at any instant after the creation still finds it to remove.
    """
    return os.path.join(folder, f"{TEMP_PREFIX}{uuid.uuid4().hex}{suffix}")


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
    is written directly instead. Text is UTF-8; ``errors`` says how file
    names that are not UTF-8 are encoded (default: their original bytes).

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
    temp = ""
    try:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        temp = _temp_name(os.path.dirname(target), ".tmp")
        mode = "xb" if binary else "x"
        encoding = None if binary else "utf-8"
        text_errors = None if binary else errors
        with open(temp, mode, encoding=encoding, errors=text_errors, newline=newline) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, target)
    except OSError as exc:
        if temp:
            _remove_file(temp)
        raise OutputError(f"cannot write {target}: {_explain(exc)}") from exc
    except BaseException:
        if temp:
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


def _dump_json(handle: IO[Any], data: Any) -> None:
    json.dump(data, handle, indent=2, ensure_ascii=False, allow_nan=False)
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


def write_path_list(path: str | os.PathLike[str], paths: Iterable[str]) -> int:
    """Write one path a line (UTF-8) atomically; returns the number of lines.

    The list is read back by :func:`~smartdownsample.listing.read_list_file`:
    lines end in ``\\n`` only, and names that are not UTF-8 keep their
    original bytes. A name holding ``\\n`` or ``\\r`` is refused
    (:class:`OutputError`), since no line list can give it back.

    Examples
    --------
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "selected.txt")
    >>> write_path_list(target, ["a.jpg", "b.jpg"])
    2
    """
    with atomic_file(path, newline="\n") as handle:
        return _write_lines(handle, _path_lines(paths))


def write_manifest(
    path: str | os.PathLike[str],
    rows: Iterable[Mapping[str, Any]],
    fieldnames: Sequence[str] | None = None,
) -> int:
    """Write rows (e.g. ``SelectionResult.manifest_rows()``) as CSV atomically.

    The columns are ``fieldnames``, or the keys of the first row. Returns the
    number of rows.

    Examples
    --------
    >>> import os, tempfile
    >>> target = os.path.join(tempfile.mkdtemp(), "manifest.csv")
    >>> write_manifest(target, [{"path": "a.jpg", "kept": True}])
    1
    >>> open(target).read().splitlines()
    ['path,kept', 'a.jpg,True']
    """
    with atomic_file(path, newline="") as handle:
        return _write_rows(handle, rows, fieldnames)


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


def _inside(path: str, folder: str) -> bool:
    """True if ``path`` is ``folder`` or below it (both real, normcased)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


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
    could replace them); a non-empty folder unless ``overwrite``.

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
    if os.path.isdir(target) and not overwrite:
        with os.scandir(target) as entries:
            if next(entries, None) is not None:
                raise InvalidArgumentError(
                    f"{option} folder {target!r} is not empty; choose a new or empty folder, "
                    "or pass --overwrite to write into it"
                )


def check_output_file(
    path: str | os.PathLike[str],
    *,
    option: str,
    image_paths: Collection[str],
    overwrite: bool,
) -> None:
    """Refuse an output file that is a folder, an input image, or exists (unless ``overwrite``).

    Raises
    ------
    InvalidArgumentError
        Naming the file, the reason and the fix.

    Examples
    --------
    >>> import os, tempfile
    >>> check_output_file(os.path.join(tempfile.mkdtemp(), "new.txt"), option="--out",
    ...                   image_paths=[], overwrite=False)
    """
    target = os.fspath(path)
    if os.path.isdir(target):
        raise InvalidArgumentError(f"{option} {target!r} is a folder; give a file name")
    if not os.path.lexists(target):
        return
    if _writes_in_place(target):
        return  # /dev/null, a terminal, our own stdout: written directly, nothing replaced
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
    created_files, created_dirs : list of str
        What was created (removed again by a rollback).
    """

    dest: str
    root: str
    mode: TreeMode
    n_copied: int = 0
    n_hardlinks: int = 0
    n_symlinks: int = 0
    n_present: int = 0
    created_files: list[str] = field(default_factory=list)
    created_dirs: list[str] = field(default_factory=list)

    @property
    def n_files(self) -> int:
        """Files now in place in the destination."""
        return self.n_copied + self.n_hardlinks + self.n_symlinks + self.n_present

    def describe(self) -> str:
        """One line for the final summary."""
        if self.mode == "copy":
            return f"copied {count_noun(self.n_copied, 'image')} to {self.dest}"
        parts = [f"{self.n_hardlinks:,} hard links", f"{self.n_symlinks:,} symbolic links"]
        if self.n_present:
            parts.append(f"{self.n_present:,} already there")
        return f"linked {count_noun(self.n_files, 'image')} into {self.dest} ({', '.join(parts)})"

    def undo(self) -> None:
        """Remove the files and (now empty) folders this export created."""
        for path in reversed(self.created_files):
            _remove_file(path)
        for folder in reversed(self.created_dirs):
            try:
                os.rmdir(folder)
            except OSError as exc:
                logger.debug("left folder %s in place: %s", folder, exc.strerror or exc)
        self.created_files.clear()
        self.created_dirs.clear()


def _make_dirs(folder: str, created: list[str]) -> None:
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
        try:
            os.mkdir(path)
        except FileExistsError:
            created.pop()  # made meanwhile by someone else: not ours to remove
            if not os.path.isdir(path):
                raise


def _copy_file(source: str, target: str) -> None:
    temp = _temp_name(os.path.dirname(target), ".part")
    try:
        shutil.copyfile(source, temp)  # opens source read-only
        shutil.copystat(source, temp)  # keeps modification times
        os.replace(temp, target)
    except BaseException:
        _remove_file(temp)
        raise


def _link_file(source: str, target: str) -> Literal["hard", "symbolic"]:
    temp = os.path.join(os.path.dirname(target), f"{TEMP_PREFIX}{uuid.uuid4().hex}.link")
    kind: Literal["hard", "symbolic"] = "hard"
    try:
        try:
            os.link(source, temp, follow_symlinks=True)
        except OSError as exc:
            if exc.errno not in FALLBACK_TO_SYMLINK:
                raise
            logger.debug("hard link of %s failed (%s); making a symbolic link", source, exc)
            if not os.path.exists(source):
                raise
            os.symlink(source, temp)
            kind = "symbolic"
        os.replace(temp, target)
    except BaseException:
        if os.path.lexists(temp):
            _remove_file(temp)
        raise
    return kind


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
    file and folder created so far is removed before the error propagates.

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
    files, export = _new_export(paths, dest, mode, root)
    _fill_export(export, files, progress)
    return export


def _new_export(
    paths: Iterable[str], dest: str | os.PathLike[str], mode: TreeMode, root: str | None
) -> tuple[list[str], TreeExport]:
    files = list(paths)
    base = absolute_path(root) if root is not None else common_root(files)
    return files, TreeExport(dest=absolute_path(os.fspath(dest)), root=base, mode=mode)


def _fill_export(export: TreeExport, files: list[str], progress: ProgressCallback | None) -> None:
    """Copy or link ``files`` as ``export`` says; on any failure undo it and raise."""
    base, target_root, mode = export.root, export.dest, export.mode
    try:
        _make_dirs(target_root, export.created_dirs)
        for path in files:
            source = absolute_path(path)
            relative = os.path.relpath(source, base)
            if relative == os.pardir or relative.startswith(os.pardir + os.sep):
                raise OutputError(
                    f"{path!r} is not under {base!r}, so its folder cannot be kept; "
                    "export from a common parent folder"
                )
            target = os.path.join(target_root, relative)
            try:
                _make_dirs(os.path.dirname(target), export.created_dirs)
                exists = os.path.lexists(target)
                if mode == "link" and exists and os.path.samefile(source, target):
                    export.n_present += 1
                else:
                    if not exists:
                        # Recorded before it appears: Ctrl-C right after the rename removes it.
                        export.created_files.append(target)
                    if mode == "copy":
                        _copy_file(source, target)
                        export.n_copied += 1
                    elif _link_file(source, target) == "hard":
                        export.n_hardlinks += 1
                    else:
                        export.n_symlinks += 1
            except OSError as exc:
                verb = "copy" if mode == "copy" else "link"
                raise OutputError(
                    f"cannot {verb} {path!r} to {target!r}: {_explain(exc)}; nothing was "
                    f"left in {target_root!r}"
                ) from exc
            if progress is not None:
                progress(1)
    except OSError as exc:
        export.undo()
        raise OutputError(f"cannot create folder {target_root!r}: {_explain(exc)}") from exc
    except BaseException:
        export.undo()
        raise


# ---------------------------------------------------------------- transaction


class OutputTransaction:
    """Stage several outputs and put them in place together.

    Files are written to temporary files beside their targets and renamed on
    :meth:`commit`; trees are exported at once but removed again by
    :meth:`rollback`. Used as a context manager, anything not committed when
    the block ends (error, Ctrl-C) is rolled back.

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

    def __init__(self) -> None:
        self._staged: list[tuple[str, str]] = []
        self._trees: list[TreeExport] = []
        self._created_dirs: list[str] = []
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
        """A new temporary file beside ``path``, renamed to ``path`` on commit."""
        target = absolute_path(os.fspath(path))
        try:
            _make_dirs(os.path.dirname(target), self._created_dirs)
            temp = _temp_name(os.path.dirname(target), suffix)
            self._staged.append((temp, target))  # first: rollback removes it whatever happens
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
        """Stage a list of absolute paths, one a line, that reads back as the same files."""
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
        _fill_export(export, files, progress)
        return export

    def commit(self) -> None:
        """Rename every staged file into place: all of them, or (on failure) none."""
        placed: list[str] = []
        target = ""
        try:
            for temp, target in self._staged:
                _set_mode(temp)  # writers that made their own temp file use 0600
                if not os.path.lexists(target):
                    placed.append(target)  # first: undone even if interrupted after the rename
                os.replace(temp, target)
        except BaseException as exc:
            for path in placed:
                _remove_file(path)
            if isinstance(exc, OSError):
                raise OutputError(f"cannot write {target}: {_explain(exc)}") from exc
            raise
        self.committed = True
        self._staged.clear()
        self._trees.clear()
        self._created_dirs.clear()

    def rollback(self) -> None:
        """Remove every staged temporary file and every exported tree."""
        for temp, _ in self._staged:
            _remove_file(temp)
        self._staged.clear()
        for export in reversed(self._trees):
            export.undo()
        self._trees.clear()
        for folder in reversed(self._created_dirs):
            try:
                os.rmdir(folder)
            except OSError as exc:
                logger.debug("left folder %s in place: %s", folder, exc.strerror or exc)
        self._created_dirs.clear()
