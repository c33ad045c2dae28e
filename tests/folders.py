"""What a folder holds, for the tests of outputs written over the user's files
(``test_copy_safety.py``, ``test_journal.py``)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

from smartdownsample.outputs import LOCK_NAME, TEMP_PREFIX

Snapshot = dict[str, tuple[bytes, int, int]]
"""Relative path -> (bytes, or a link's target; inode; modification time)."""


def snapshot(folder: Path, *, folders: bool = False) -> Snapshot:
    """Bytes (a link's target), inode and modification time of every file under
    ``folder``; with ``folders``, subfolders too (their time left out: it changes with
    every rename inside)."""
    found: Snapshot = {}
    for parent, dirs, names in os.walk(folder):
        for name in names + (dirs if folders else []):
            path = os.path.join(parent, name)
            info = os.lstat(path)
            if stat.S_ISDIR(info.st_mode):
                data, mtime = b"<folder>", 0
            elif stat.S_ISLNK(info.st_mode):
                data, mtime = os.readlink(path).encode(), info.st_mtime_ns
            else:
                data, mtime = Path(path).read_bytes(), info.st_mtime_ns
            found[os.path.relpath(path, folder)] = (data, info.st_ino, mtime)
    return found


def temporaries(folder: Path) -> list[str]:
    """This tool's hidden files under ``folder`` (none may be left once a run ends)."""
    return [
        os.path.join(parent, name)
        for parent, dirs, names in os.walk(folder)
        for name in names + dirs
        if name.startswith(TEMP_PREFIX) or name == LOCK_NAME
    ]


def relative_selection(listing: Path, photos: Path) -> set[str]:
    """The paths of a ``--out`` list, relative to ``photos``."""
    lines = listing.read_text(encoding="utf-8").splitlines()
    return {Path(line).relative_to(photos).as_posix() for line in lines}
