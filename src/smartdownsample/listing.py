"""Finding the images a command-line run works on.

A SOURCE on the command line is one of:

- a folder, searched recursively for files whose extension (any case) is one
  of :data:`IMAGE_EXTENSIONS`; hidden folders and files (name starting with a
  dot, or marked hidden on Windows) are skipped, and so is every folder
  already searched, so symlink loops end;
- a CSV file (``.csv``) with a ``path`` column;
- a JSON file (``.json``) holding one array of paths, as ``json.dump(paths)``
  writes it (detector output, a JSON object, is read by the command line's
  detections route instead);
- any other text file: one path a line (blank lines and lines starting with
  ``#`` are ignored);
- a single image file.

Relative paths in list and CSV files are taken relative to the folder of the
file that names them. Paths are returned as found (a relative SOURCE gives
relative paths), each folder's entries in natural order, duplicates dropped.
Nothing is opened for writing.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import stat
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field

from ._exceptions import InvalidArgumentError, SmartDownsampleError
from .paths import absolute_path, name_key, same_files

__all__ = [
    "IMAGE_EXTENSIONS",
    "STDIN_SOURCE",
    "ListingError",
    "SourceListing",
    "find_images",
    "is_image_name",
    "list_sources",
    "merge_same_files",
    "read_csv_file",
    "read_json_list",
    "read_list_file",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})
"""File extensions taken as images when a folder is searched (compared in lower case)."""

CSV_EXTENSIONS = frozenset({".csv"})
"""Files with these extensions are read as CSV with a ``path`` column."""

PATH_COLUMN = "path"
"""Name of the CSV column holding image paths (matched ignoring case and spaces)."""

JSON_EXTENSIONS = frozenset({".json"})
"""Files with these extensions are read as a JSON array of paths."""

CSV_SNIFF_BYTES = 64 * 1024
"""Bytes read to guess a CSV's delimiter (comma, semicolon or tab)."""

_FILE_ATTRIBUTE_HIDDEN = 0x2
"""Windows' hidden-file attribute bit (``stat.FILE_ATTRIBUTE_HIDDEN``)."""

STDIN_SOURCE = "-"
"""The SOURCE that reads paths from standard input (one a line, or NUL-separated)."""

LINE_SEPARATOR = "\n"
"""The one separator of list lines, as the path lists this package writes use it."""

NUL = "\0"
"""Separator of ``--null`` lists: the one character no path can hold."""

_LINE_PADDING = " \t"
"""Removed around a list line: hand-edited lists pad with these; written paths are absolute."""

_UTF8_BOM = b"\xef\xbb\xbf"

_NOT_UTF8 = re.compile("[\udc80-\udcff]")
"""Surrogate escapes: the bytes of a file that were not UTF-8."""

FoundCallback = Callable[[int], None]
"""Called with the number of images found so far (for a progress counter)."""

FolderErrorCallback = Callable[[str, OSError], None]
"""Called with a folder that cannot be listed and the error; the folder is then skipped."""


def is_image_name(name: str) -> bool:
    """True if ``name`` ends in one of :data:`IMAGE_EXTENSIONS`, in any case.

    Examples
    --------
    >>> is_image_name("IMG_0001.JPG"), is_image_name("notes.txt")
    (True, False)
    """
    return os.path.splitext(name)[1].lower() in IMAGE_EXTENSIONS


def _is_hidden(entry: os.DirEntry[str]) -> bool:
    if entry.name.startswith("."):
        return True
    if os.name == "nt":
        try:
            attributes = getattr(entry.stat(follow_symlinks=False), "st_file_attributes", 0)
        except OSError:
            return False
        return bool(attributes & _FILE_ATTRIBUTE_HIDDEN)
    return False


def _folder_key(path: str) -> tuple[int, int]:
    info = os.stat(path)
    return info.st_dev, info.st_ino


def _sorted_entries(folder: str) -> list[os.DirEntry[str]]:
    with os.scandir(folder) as entries:
        listed = list(entries)
    listed.sort(key=lambda entry: (name_key(entry.name), entry.name))
    return listed


def _is_dir(entry: os.DirEntry[str], failed: FolderErrorCallback) -> bool:
    """True for a folder (symbolic links followed; a dangling link is no folder).

    An entry that cannot be stat'ed (a link into a folder without permission)
    is taken as an image if named like one (its read then fails, named);
    otherwise it may be a folder, so it is a listing failure.
    """
    try:
        return entry.is_dir()  # follows symlinks
    except OSError as exc:
        if not is_image_name(entry.name):
            failed(entry.path, exc)
        return False


class ListingError(SmartDownsampleError, OSError):
    """A folder could not be listed (permission denied, I/O error, vanished).

    Attributes
    ----------
    folder : str
        The folder that could not be listed.
    reason : str
        What the operating system said.
    """

    def __init__(self, folder: str, reason: str, *, hint: str | None = None) -> None:
        self.folder = folder
        self.reason = reason
        message = f"cannot list folder {folder!r}: {reason}"
        if hint:
            message += f"; {hint}"
        super().__init__(message)


LISTING_HINT = (
    "make it readable, or pass on_error= to find_images / list_sources to skip and record it"
)


def _reason(exc: OSError) -> str:
    return str(exc.strerror or exc)


def _refuse_folder(folder: str, exc: OSError) -> None:
    raise ListingError(folder, _reason(exc), hint=LISTING_HINT) from exc


def find_images(
    folder: str | os.PathLike[str],
    on_found: FoundCallback | None = None,
    *,
    on_error: FolderErrorCallback | None = None,
    exclude: Mapping[tuple[int, int], str] | None = None,
) -> list[str]:
    """All image files under ``folder``, searched recursively.

    Hidden folders and files are skipped. Symbolic links to folders are
    followed, but a folder already searched (a symlink loop, or a second
    link to the same folder) is skipped with a warning. A folder that
    cannot be listed stops the search with :class:`ListingError`, unless
    ``on_error`` is given: it is called with the folder and the error, and
    the folder is skipped.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to search.
    on_found : callable, optional
        Called with the running count of images found, once per folder.
    on_error : callable, optional
        Called with ``(folder, OSError)`` for a sub-folder that cannot be
        listed; the folder is then skipped. Default: raise ListingError.
    exclude : mapping, optional
        Folders not to enter, as ``(st_dev, st_ino)`` -> their name (for
        ``balance``: the other class folders and ROOT).

    Returns
    -------
    list of str
        Image paths (``folder`` joined with the relative path), in natural
        order: ``IMG_2`` before ``IMG_10``.

    Raises
    ------
    InvalidArgumentError
        If ``folder`` is not a folder.
    ListingError
        If ``folder`` or a sub-folder cannot be listed and ``on_error`` is None.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> for name in ["b/IMG_10.JPG", "b/IMG_2.jpg", ".hidden/x.jpg", "notes.txt"]:
    ...     os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
    ...     open(os.path.join(root, name), "wb").close()
    >>> [os.path.relpath(p, root) for p in find_images(root)]
    ['b/IMG_2.jpg', 'b/IMG_10.JPG']
    """
    top = os.fspath(folder)
    if not os.path.isdir(top):
        raise InvalidArgumentError(f"{top!r} is not a folder")
    failed = _refuse_folder if on_error is None else on_error
    visited: dict[tuple[int, int], str] = dict(exclude or {})
    try:
        visited[_folder_key(top)] = top
        entries = _sorted_entries(top)
    except OSError as exc:
        failed(top, exc)
        return []
    found: list[str] = []
    stack: list[Iterator[os.DirEntry[str]]] = [iter(entries)]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if _is_hidden(entry):
            continue
        if _is_dir(entry, failed):
            try:
                key = _folder_key(entry.path)
            except OSError as exc:
                failed(entry.path, exc)
                continue
            if key in visited:
                logger.warning(
                    "skipped folder %s: it is %s, already searched (symbolic link loop or "
                    "second link to the same folder)",
                    entry.path,
                    visited[key],
                )
                continue
            visited[key] = entry.path
            try:
                children = _sorted_entries(entry.path)
            except OSError as exc:
                failed(entry.path, exc)
                continue
            stack.append(iter(children))
            if on_found is not None:
                on_found(len(found))
        elif is_image_name(entry.name):
            found.append(entry.path)
    if on_found is not None:
        on_found(len(found))
    return found


def _resolve(line: str, base: str) -> str:
    return line if os.path.isabs(line) else os.path.join(base, line)


def _read_bytes(name: str) -> bytes:
    if name == STDIN_SOURCE:
        stdin = getattr(sys.stdin, "buffer", None)
        if stdin is None:
            raise InvalidArgumentError(
                f"SOURCE {STDIN_SOURCE!r} reads paths from standard input, which this process "
                "does not have; give a folder, a list file or a CSV file"
            )
        data: bytes = stdin.read()
        return data
    with open(name, "rb") as handle:
        return handle.read()


def _base_folder(name: str) -> str:
    """Where relative paths of a list start: its folder; the current one for stdin and pipes."""
    if name == STDIN_SOURCE:
        return ""
    try:
        regular = stat.S_ISREG(os.stat(name).st_mode)
    except OSError:
        regular = True
    return os.path.dirname(name) if regular else ""


def _read_text(name: str) -> str:
    """The file as text; bytes that are not UTF-8 become surrogate escapes (as in file names)."""
    data = _read_bytes(name)
    if data.startswith(_UTF8_BOM):
        data = data[len(_UTF8_BOM) :]
    return data.decode("utf-8", "surrogateescape")


def _checked(value: str, base: str, name: str, line: int) -> str:
    """``value`` resolved; a value that is not UTF-8 must name an existing file (raw bytes)."""
    path = _resolve(value, base)
    if _NOT_UTF8.search(value) and not os.path.lexists(path):
        raise InvalidArgumentError(
            f"list file {name!r} is not UTF-8 text (line {line}: {value!r} names no file); "
            "save it as UTF-8, one image path a line"
        )
    return path


def _list_entries(text: str, null: bool) -> Iterator[tuple[int, str]]:
    """(line number, path) of each entry: NUL-separated exact names, or lines."""
    if null:
        for number, item in enumerate(text.split(NUL), start=1):
            if item:
                yield number, item
        return
    for number, raw in enumerate(text.split(LINE_SEPARATOR), start=1):
        line = raw[:-1] if raw.endswith("\r") else raw
        line = line.strip(_LINE_PADDING)
        if line and not line.startswith("#"):
            yield number, line


def read_list_file(path: str | os.PathLike[str], *, null: bool = False) -> list[str]:
    """Image paths from a text file, one a line (or NUL-separated with ``null=True``).

    Lines are split on ``\\n`` only (one trailing ``\\r`` is dropped), so names
    holding other line-breaking characters (``\\x0b``, ``\\x85``, U+2028)
    survive; spaces and tabs around a line are removed; blank lines and lines
    starting with ``#`` are ignored. Text that is all one JSON array of
    strings (``json.dump(paths, f)``) is read as that array. NUL-separated
    entries (``find -print0``) are taken exactly. Relative paths are relative
    to the file's folder (to the current folder for ``"-"``, standard input,
    and pipes). Bytes that are not UTF-8 are taken as raw file-name bytes when
    such a file exists.

    Raises
    ------
    InvalidArgumentError
        If the text holds NUL bytes without ``null``, a line that is not
        UTF-8 names no file, or the text is a JSON object (detector output
        is read from a file, not from a list).

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> name = os.path.join(folder, "list.txt")
    >>> with open(name, "w") as handle:
    ...     _ = handle.write("# my images\\na.jpg\\n\\n/data/b.jpg\\n")
    >>> [os.path.relpath(p, folder) if not p.startswith("/data") else p
    ...  for p in read_list_file(name)]
    ['a.jpg', '/data/b.jpg']
    """
    name = os.fspath(path)
    base = _base_folder(name)
    text = _read_text(name)
    parsed = None if null else _parsed_json(text)
    if isinstance(parsed, list):  # json.dump(paths, f), whatever the file's name
        return _json_paths(parsed, base, name)
    if isinstance(parsed, dict):
        where = "standard input" if name == STDIN_SOURCE else f"list file {name!r}"
        raise InvalidArgumentError(
            f"{where} holds a JSON object (detector output?), not image paths; save it to a "
            "file and give that file as SOURCE (MegaDetector results or COCO Camera Traps)"
        )
    if not null and NUL in text:
        raise InvalidArgumentError(
            f"list file {name!r} holds NUL bytes: for NUL-separated paths (find -print0) pass "
            "--null; otherwise save it as UTF-8 text, one image path a line"
        )
    return [_checked(entry, base, name, number) for number, entry in _list_entries(text, null)]


def _csv_dialect(sample: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t")
    except csv.Error:
        return csv.excel


def read_csv_file(path: str | os.PathLike[str]) -> list[str]:
    """Image paths from the ``path`` column of a CSV file.

    The delimiter (comma, semicolon or tab) is guessed; other columns are
    ignored, empty cells skipped. Relative paths are relative to the file's
    folder.

    Raises
    ------
    InvalidArgumentError
        If the file has no ``path`` column.

    Examples
    --------
    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> name = os.path.join(folder, "images.csv")
    >>> with open(name, "w") as handle:
    ...     _ = handle.write("label,path\\ndeer,cam1/a.jpg\\nfox,cam2/b.jpg\\n")
    >>> [os.path.relpath(p, folder) for p in read_csv_file(name)]
    ['cam1/a.jpg', 'cam2/b.jpg']
    """
    name = os.fspath(path)
    base = _base_folder(name)
    text = _read_text(name)
    reader = csv.reader(io.StringIO(text, newline=""), _csv_dialect(text[:CSV_SNIFF_BYTES]))
    header = next(reader, None)
    if header is None:
        raise InvalidArgumentError(
            f"CSV file {name!r} is empty; give it a header row with a column named "
            f"{PATH_COLUMN!r} and one image path a row"
        )
    columns = [column.strip().lower() for column in header]
    if PATH_COLUMN not in columns:
        raise InvalidArgumentError(
            f"CSV file {name!r} has no {PATH_COLUMN!r} column (its columns: "
            f"{', '.join(header) or 'none'}); name the column of image paths {PATH_COLUMN!r}"
        )
    position = columns.index(PATH_COLUMN)
    paths: list[str] = []
    for row in reader:
        if position < len(row):
            value = row[position].strip()
            if value:
                paths.append(_checked(value, base, name, reader.line_num))
    return paths


def read_json_list(path: str | os.PathLike[str]) -> list[str]:
    """Image paths from a JSON file holding one array of strings.

    Relative paths are relative to the file's folder.

    Raises
    ------
    InvalidArgumentError
        If the file is not JSON, or not an array of strings.

    Examples
    --------
    >>> import json, os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> name = os.path.join(folder, "images.json")
    >>> with open(name, "w") as handle:
    ...     json.dump(["cam1/a.jpg", "cam2/b.jpg"], handle)
    >>> [os.path.relpath(p, folder) for p in read_json_list(name)]
    ['cam1/a.jpg', 'cam2/b.jpg']
    """
    name = os.fspath(path)
    try:
        data = json.loads(_read_text(name))
    except (ValueError, RecursionError) as exc:
        reason = str(exc) if isinstance(exc, ValueError) else "nested too deeply"
        raise InvalidArgumentError(f"{name!r} is not valid JSON ({reason}); {_JSON_FIX}") from None
    if not isinstance(data, list):
        raise InvalidArgumentError(
            f"JSON file {name!r} holds a {type(data).__name__}, not an array of paths; {_JSON_FIX}"
        )
    return _json_paths(data, _base_folder(name), name)


_JSON_FIX = (
    "give a JSON array of image paths, a text file with one path a line, or a CSV file "
    "(detector output is a JSON object: MegaDetector results or COCO Camera Traps)"
)


def _json_paths(data: list[object], base: str, name: str) -> list[str]:
    """The paths of a parsed JSON array: strings, resolved against ``base``."""
    paths: list[str] = []
    for index, value in enumerate(data):
        if not isinstance(value, str) or NUL in value:
            shown = repr(value)[:80]
            raise InvalidArgumentError(
                f"JSON file {name!r}: entry {index} is {shown}, not a path; {_JSON_FIX}"
            )
        if value.strip():
            paths.append(_checked(value.strip(), base, name, index + 1))
    return paths


def _parsed_json(text: str) -> object | None:
    """``text`` parsed, if all of it is a JSON array or object; else None."""
    if not text.lstrip(" \t\r\n").startswith(("[", "{")):
        return None
    try:
        data: object = json.loads(text)
    except (ValueError, RecursionError):
        return None
    return data if isinstance(data, (list, dict)) else None


@dataclass
class SourceListing:
    """The images named by the command line's SOURCE arguments.

    Attributes
    ----------
    paths : list of str
        Distinct image files, in the order found.
    folders : list of str
        The SOURCE arguments that are folders (outputs must stay out of them).
    per_source : list of (str, int)
        Each SOURCE and the number of paths it gave.
    n_duplicates : int
        Paths dropped because an earlier SOURCE already gave them.
    merged : list of (str, str)
        Paths dropped because they name a file already listed under another
        path (a hard link, a symbolic link, a linked folder), with that path.
    failures : list of (str, str)
        Folders that could not be listed (skipped by ``on_error``) and why.
    """

    paths: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    per_source: list[tuple[str, int]] = field(default_factory=list)
    n_duplicates: int = 0
    merged: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[str, str]] = field(default_factory=list)


def _paths_of(
    source: str,
    on_found: FoundCallback | None,
    on_error: FolderErrorCallback | None,
    null: bool,
) -> list[str]:
    if source == STDIN_SOURCE:
        return read_list_file(source, null=null)
    if os.path.isdir(source):
        return find_images(source, on_found, on_error=on_error)
    extension = os.path.splitext(source)[1].lower()
    if extension in IMAGE_EXTENSIONS:
        return [source]
    if extension in CSV_EXTENSIONS:
        return read_csv_file(source)
    if extension in JSON_EXTENSIONS:
        return read_json_list(source)
    return read_list_file(source, null=null)


def _check_source(source: str) -> bool:
    """True if ``source`` is a folder; refuses what cannot be a SOURCE."""
    if source == STDIN_SOURCE:
        return False
    if not os.path.exists(source):
        kind = "symbolic link to a missing file" if os.path.islink(source) else "path"
        raise InvalidArgumentError(
            f"SOURCE {source!r} does not exist ({kind}); give a folder of images, a text "
            "file with one image path a line, or a CSV file with a 'path' column"
        )
    if os.path.isdir(source):
        return True
    mode = os.stat(source).st_mode
    named_like_a_list = os.path.splitext(source)[1].lower() not in IMAGE_EXTENSIONS
    # Pipes and terminals (/dev/stdin, <(find ...)) are read as lists of paths.
    streamed = stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)
    if not (stat.S_ISREG(mode) or (streamed and named_like_a_list)):
        raise InvalidArgumentError(
            f"SOURCE {source!r} is neither a folder nor a regular file; give a folder, "
            "a list file or a CSV file ('-' reads paths from standard input)"
        )
    return False


def merge_same_files(paths: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """``paths`` without those naming a file an earlier path names, and the merged pairs.

    Hard links, symbolic links and linked folders give one file several
    paths; the first path is kept. Pairs are (dropped path, kept path).
    """
    merged = same_files(paths)
    if not merged:
        return paths, []
    kept = [path for position, path in enumerate(paths) if position not in merged]
    pairs = [(paths[drop], paths[keep]) for drop, keep in merged.items()]
    logger.warning(
        "%d %s a file already listed under another path (hard or symbolic link) and "
        "%s once, e.g. %s is %s",
        len(pairs),
        "path names" if len(pairs) == 1 else "paths name",
        "counts" if len(pairs) == 1 else "count",
        pairs[0][0],
        pairs[0][1],
    )
    return kept, pairs


def list_sources(
    sources: Iterable[str | os.PathLike[str]],
    on_found: FoundCallback | None = None,
    *,
    on_error: FolderErrorCallback | None = None,
    null: bool = False,
) -> SourceListing:
    """List the images of every SOURCE (folder, list file, CSV, image file or ``-``).

    Parameters
    ----------
    sources : iterable of str or os.PathLike
        Command-line SOURCE arguments; ``"-"`` reads paths from standard input.
    on_found : callable, optional
        Progress callback, given the running count of images found in folders.
    on_error : callable, optional
        Called with a folder that cannot be listed and the error; the folder
        is skipped and recorded in ``failures``. Default: raise ListingError.
    null : bool, default False
        List files and standard input hold NUL-separated paths (``find -print0``).

    Returns
    -------
    SourceListing

    Raises
    ------
    InvalidArgumentError
        If a SOURCE does not exist, or a list or CSV file cannot be used.
    ListingError
        If a folder cannot be listed and ``on_error`` is None.

    Examples
    --------
    >>> import os, tempfile
    >>> root = tempfile.mkdtemp()
    >>> open(os.path.join(root, "a.png"), "wb").close()
    >>> listing = list_sources([root, os.path.join(root, "a.png")])
    >>> len(listing.paths), listing.n_duplicates
    (1, 1)
    """
    listing = SourceListing()
    seen: set[str] = set()
    found_before = 0

    def counted(count: int) -> None:
        if on_found is not None:
            on_found(found_before + count)

    def skipped(folder: str, exc: OSError) -> None:
        listing.failures.append((folder, _reason(exc)))
        if on_error is not None:
            on_error(folder, exc)

    for item in sources:
        source = os.fspath(item)
        if _check_source(source):
            listing.folders.append(source)
        paths = _paths_of(source, counted, None if on_error is None else skipped, null)
        listing.per_source.append((source, len(paths)))
        for path in paths:
            key = os.path.normcase(absolute_path(path))
            if key in seen:
                listing.n_duplicates += 1
                continue
            seen.add(key)
            listing.paths.append(path)
        found_before = len(listing.paths)
    if listing.n_duplicates:
        logger.info("%d paths were named more than once and count once", listing.n_duplicates)
    listing.paths, listing.merged = merge_same_files(listing.paths)
    return listing
