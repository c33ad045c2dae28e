"""Path spellings the way the operating system reads them.

``os.path.abspath`` collapses ``a/link/..`` as text, to ``a``; the kernel
follows ``link`` first and goes to the parent of its target. Every path this
package resolves goes through :func:`absolute_path`, so that an image listed
as ``cam/link/../IMG_1.jpg`` is the file the kernel opens, and an output
named ``out/link/../keep.txt`` is written where ``open`` would write it.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence

__all__ = ["absolute_path", "file_identity", "same_files"]

_WINDOWS = os.name == "nt"
"""Windows collapses ``..`` as text (Win32 path normalisation), so ``abspath`` is right there."""


def absolute_path(path: str) -> str:
    """The absolute form of ``path``, with ``..`` resolved as the OS resolves it.

    ``.`` and repeated separators are dropped as text; a ``..`` that follows a
    symbolic link goes to the parent of the link's target. Symbolic links
    that no ``..`` follows are kept as they are.

    Examples
    --------
    >>> absolute_path("/data/./cam1//IMG_1.jpg")
    '/data/cam1/IMG_1.jpg'
    """
    if _WINDOWS:
        return os.path.abspath(path)
    joined = path if os.path.isabs(path) else os.path.join(os.getcwd(), path)
    if ".." not in joined:
        return os.path.normpath(joined)
    resolved = "//" if joined.startswith("//") and not joined.startswith("///") else "/"
    for part in joined.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if os.path.islink(resolved):
                resolved = os.path.realpath(resolved)
            resolved = os.path.dirname(resolved)
        else:
            resolved = os.path.join(resolved, part)
    return resolved


def file_identity(path: str) -> tuple[int, int] | None:
    """``(st_dev, st_ino)`` of the file ``path`` names (links followed); None if unknown.

    On Windows, ``os.stat`` fills both from the volume serial number and the
    file index; a file system that gives no inode (``st_ino == 0``) gives
    None, so files there are never taken for one another.
    """
    try:
        info = os.stat(path)
    except (OSError, ValueError):
        return None
    if info.st_ino == 0:
        return None
    return info.st_dev, info.st_ino


def same_files(paths: Sequence[str], order: Iterable[int] | None = None) -> dict[int, int]:
    """Paths that name a file an earlier path already names (hard or symbolic links).

    Parameters
    ----------
    paths : sequence of str
        Distinct path spellings.
    order : iterable of int, optional
        Positions in ``paths`` in the order that decides which path of one
        file is kept (default: as given); the first one is kept.

    Returns
    -------
    dict of int to int
        Position of each dropped path -> position of the kept path of the same
        file. Paths that cannot be stat'ed are never dropped (they fail later,
        named, when their image is read).
    """
    first: dict[tuple[int, int], int] = {}
    merged: dict[int, int] = {}
    for position in range(len(paths)) if order is None else order:
        identity = file_identity(paths[position])
        if identity is None:
            continue
        kept = first.setdefault(identity, position)
        if kept != position:
            merged[position] = kept
    return merged
