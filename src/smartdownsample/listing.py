"""Finding the images a command-line run works on.

A SOURCE on the command line is one of:

- a folder, searched recursively for files whose extension (any case) is one
  of :data:`IMAGE_EXTENSIONS`; hidden folders and files (name starting with a
  dot, or marked hidden on Windows) are skipped, and so is every folder
  already searched, so symlink loops end;
- a CSV file (``.csv``) with a ``path`` column;
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
import logging
import os
import stat
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from natsort import natsort_keygen, ns

from ._exceptions import InvalidArgumentError

__all__ = [
    "IMAGE_EXTENSIONS",
    "SourceListing",
    "find_images",
    "is_image_name",
    "list_sources",
    "read_csv_file",
    "read_list_file",
]

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp"})
"""File extensions taken as images when a folder is searched (compared in lower case)."""

CSV_EXTENSIONS = frozenset({".csv"})
"""Files with these extensions are read as CSV with a ``path`` column."""

PATH_COLUMN = "path"
"""Name of the CSV column holding image paths (matched ignoring case and spaces)."""

CSV_SNIFF_BYTES = 64 * 1024
"""Bytes read to guess a CSV's delimiter (comma, semicolon or tab)."""

_FILE_ATTRIBUTE_HIDDEN = 0x2
"""Windows' hidden-file attribute bit (``stat.FILE_ATTRIBUTE_HIDDEN``)."""

_NAME_KEY = natsort_keygen(alg=ns.PATH)

FoundCallback = Callable[[int], None]
"""Called with the number of images found so far (for a progress counter)."""


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
    listed.sort(key=lambda entry: (_NAME_KEY(entry.name), entry.name))
    return listed


def _is_dir(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_dir()  # follows symlinks
    except OSError:
        return False


def find_images(folder: str | os.PathLike[str], on_found: FoundCallback | None = None) -> list[str]:
    """All image files under ``folder``, searched recursively.

    Hidden folders and files are skipped. Symbolic links to folders are
    followed, but a folder already searched (a symlink loop, or a second
    link to the same folder) is skipped with a warning. A sub-folder that
    cannot be read is skipped with a warning.

    Parameters
    ----------
    folder : str or os.PathLike
        The folder to search.
    on_found : callable, optional
        Called with the running count of images found, once per folder.

    Returns
    -------
    list of str
        Image paths (``folder`` joined with the relative path), in natural
        order: ``IMG_2`` before ``IMG_10``.

    Raises
    ------
    InvalidArgumentError
        If ``folder`` is not a folder.
    OSError
        If ``folder`` itself cannot be read.

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
    visited: dict[tuple[int, int], str] = {_folder_key(top): top}
    found: list[str] = []
    stack: list[Iterator[os.DirEntry[str]]] = [iter(_sorted_entries(top))]
    while stack:
        entry = next(stack[-1], None)
        if entry is None:
            stack.pop()
            continue
        if _is_hidden(entry):
            continue
        if _is_dir(entry):
            try:
                key = _folder_key(entry.path)
            except OSError as exc:
                logger.warning("skipped folder %s: %s", entry.path, exc.strerror or exc)
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
                logger.warning("skipped folder %s: %s", entry.path, exc.strerror or exc)
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


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8-sig", newline="") as handle:
            return handle.read()
    except UnicodeDecodeError as exc:
        raise InvalidArgumentError(
            f"list file {path!r} is not UTF-8 text ({exc.reason} at byte {exc.start}); "
            "save it as UTF-8, one image path a line"
        ) from exc


def read_list_file(path: str | os.PathLike[str]) -> list[str]:
    """Image paths from a text file, one a line.

    Surrounding white space is removed; blank lines and lines starting with
    ``#`` are ignored. Relative paths are relative to the file's folder.

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
    base = os.path.dirname(name)
    text = _read_text(name)
    paths: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            paths.append(_resolve(line, base))
    return paths


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
    base = os.path.dirname(name)
    text = _read_text(name)
    reader = csv.reader(text.splitlines(), _csv_dialect(text[:CSV_SNIFF_BYTES]))
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
                paths.append(_resolve(value, base))
    return paths


@dataclass
class SourceListing:
    """The images named by the command line's SOURCE arguments.

    Attributes
    ----------
    paths : list of str
        Distinct image paths, in the order found.
    folders : list of str
        The SOURCE arguments that are folders (outputs must stay out of them).
    per_source : list of (str, int)
        Each SOURCE and the number of paths it gave.
    n_duplicates : int
        Paths dropped because an earlier SOURCE already gave them.
    """

    paths: list[str] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    per_source: list[tuple[str, int]] = field(default_factory=list)
    n_duplicates: int = 0


def _paths_of(source: str, on_found: FoundCallback | None) -> list[str]:
    if os.path.isdir(source):
        return find_images(source, on_found)
    extension = os.path.splitext(source)[1].lower()
    if extension in IMAGE_EXTENSIONS:
        return [source]
    if extension in CSV_EXTENSIONS:
        return read_csv_file(source)
    return read_list_file(source)


def list_sources(
    sources: Iterable[str | os.PathLike[str]], on_found: FoundCallback | None = None
) -> SourceListing:
    """List the images of every SOURCE (folder, list file, CSV or image file).

    Parameters
    ----------
    sources : iterable of str or os.PathLike
        Command-line SOURCE arguments.
    on_found : callable, optional
        Progress callback, given the running count of images found in folders.

    Returns
    -------
    SourceListing

    Raises
    ------
    InvalidArgumentError
        If a SOURCE does not exist, or a list or CSV file cannot be used.

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

    for item in sources:
        source = os.fspath(item)
        if not os.path.exists(source):
            kind = "symbolic link to a missing file" if os.path.islink(source) else "path"
            raise InvalidArgumentError(
                f"SOURCE {source!r} does not exist ({kind}); give a folder of images, a text "
                "file with one image path a line, or a CSV file with a 'path' column"
            )
        if os.path.isdir(source):
            listing.folders.append(source)
        elif not stat.S_ISREG(os.stat(source).st_mode):
            raise InvalidArgumentError(
                f"SOURCE {source!r} is neither a folder nor a regular file; give a folder, "
                "a list file or a CSV file"
            )
        paths = _paths_of(source, counted)
        listing.per_source.append((source, len(paths)))
        for path in paths:
            key = os.path.normcase(os.path.abspath(path))
            if key in seen:
                listing.n_duplicates += 1
                continue
            seen.add(key)
            listing.paths.append(path)
        found_before = len(listing.paths)
    if listing.n_duplicates:
        logger.info("%d paths were named more than once and count once", listing.n_duplicates)
    return listing
