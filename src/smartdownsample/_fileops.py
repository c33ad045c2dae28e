"""File-system steps shared by the outputs and their journal.

Naming, removing and identifying the files this tool creates beside its
outputs, OS locks that end with the process, and making changes durable.
Nothing here knows what an output is: :mod:`smartdownsample.outputs` and
:mod:`smartdownsample._journal` build on it.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import sys
import uuid
from collections.abc import Callable
from typing import Literal

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

LOCKS_UNSUPPORTED = frozenset(
    code
    for code in (
        getattr(errno, "ENOLCK", None),  # a network file system without a lock service
        getattr(errno, "ENOSYS", None),
        getattr(errno, "ENOTSUP", None),
        getattr(errno, "EOPNOTSUPP", None),
    )
    if code is not None
)
"""Lock errors after which a run goes on without the lock rather than fail."""

WINDOWS_LOCK_OFFSET = 1 << 20
"""Byte locked on Windows, past what the file holds: Windows locks are mandatory, and the
start of the file (a pid, a journal's header) must stay readable for a second run."""

Identity = tuple[int, int, int]
"""Inode, size and modification time (ns) of a file: changed if the file was replaced
or edited since."""

LockState = Literal["locked", "held", "unsupported"]
"""What taking an OS lock gave: ours, another process's, or no locks on this file system."""


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


def _identity(path: str) -> Identity:
    info = os.lstat(path)
    return (info.st_ino, info.st_size, info.st_mtime_ns)


def _same_file(fd: int, path: str) -> bool:
    """True if ``path`` still names the file open as ``fd`` (not removed or replaced)."""
    try:
        info = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (info.st_dev, info.st_ino) == (opened.st_dev, opened.st_ino)


def _inside(path: str, folder: str) -> bool:
    """True if ``path`` is ``folder`` or below it (both real, normcased)."""
    return path == folder or path.startswith(folder.rstrip(os.sep) + os.sep)


def _lock(fd: int) -> LockState:
    """Take the OS lock on ``fd`` without waiting.

    The OS drops it when the process ends, however it ends (even SIGKILL).
    """
    try:
        if sys.platform == "win32":
            import msvcrt

            os.lseek(fd, WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (BlockingIOError, PermissionError):
        return "held"
    except OSError as exc:
        if exc.errno in (errno.EACCES, errno.EAGAIN, getattr(errno, "EDEADLK", errno.EAGAIN)):
            return "held"
        if exc.errno not in LOCKS_UNSUPPORTED:
            raise
        return "unsupported"
    return "locked"


def _fsync_folder(folder: str) -> None:
    """Make the names created, renamed or removed in ``folder`` durable, where the
    platform allows (not on Windows, nor on some network file systems): best effort."""
    if sys.platform == "win32":
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError as exc:
        logger.debug("cannot open folder %s to sync it: %s", folder, exc.strerror or exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:
        logger.debug("cannot sync folder %s: %s", folder, exc.strerror or exc)
    finally:
        with contextlib.suppress(OSError):
            os.close(fd)


def _rename_new(source: str, target: str) -> None:
    """Rename ``source`` to ``target``, which must not exist (never replaced).

    A hard link then the removal of ``source`` where the file system has hard
    links (``FileExistsError`` if ``target`` appeared meanwhile), else a rename
    after checking that ``target`` is free.
    """
    try:
        os.link(source, target, follow_symlinks=False)
    except FileExistsError:
        raise
    except (OSError, NotImplementedError) as exc:  # no hard links here: check, then rename
        if isinstance(exc, OSError) and exc.errno not in FALLBACK_TO_SYMLINK:
            raise
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), target) from exc
        os.rename(source, target)
        return
    os.unlink(source)


def _remove_empty_parents(path: str, top: str) -> None:
    """Remove the folders of ``path`` that are now empty, up to ``top`` (kept)."""
    folder = os.path.dirname(path)
    while folder != top and _inside(folder, top):
        try:
            os.rmdir(folder)  # only if empty
        except OSError:
            break
        folder = os.path.dirname(folder)


def _safe_relative(relative: object) -> str | None:
    """A recorded path as a path under its folder, or None if it could leave it."""
    if not isinstance(relative, str) or not relative or os.path.isabs(relative):
        return None
    normal = os.path.normpath(relative)
    parts = normal.split(os.sep)
    if os.pardir in parts or normal == os.curdir or os.path.splitdrive(normal)[0]:
        return None
    return normal


def _until_done(action: Callable[[], None]) -> KeyboardInterrupt | None:
    """Run an idempotent clean-up to its end even if Ctrl-C lands in it; return the Ctrl-C.

    Used once the outputs are committed: what is left to do (deleting the
    replaced files moved aside) must not be left half done.
    """
    interrupted: KeyboardInterrupt | None = None
    while True:
        try:
            action()
        except KeyboardInterrupt as exc:
            interrupted = exc
        else:
            return interrupted
