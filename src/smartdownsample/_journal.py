"""The write-ahead journal of a run's outputs, and the recovery of a run that died.

Replacing outputs moves the files they replace aside (hidden names beside
them) and deletes those only once every new file is in place; a run killed
in between (SIGKILL, out of memory, power loss) would leave the user's
files under names nobody can tell apart. So before a run moves or renames
anything, it writes down, in a journal beside the outputs, what it is about
to do:

* each staging file (``.tmp``, ``.part``, ...) and folder it creates, before
  creating it;
* for each file it puts in place (or removes): the name an existing file is
  moved to, whether there was one, and the identity (inode, size, time) of
  the new file; then the folders of all the run's journals;
* last, once every new file is in place, a *committed* mark.

Every folder a run writes into has a journal of its own, a copy or link
folder one for everything below it: ``.smartdownsample-<run>.journal``,
which the run holds an OS lock on while it lives (the OS lets go of it
however the process ends). The next run writing into the folder calls
:func:`recover_interrupted` before anything else: a journal whose lock is
free belongs to a run that is gone, and is completed:

* committed (this journal, or another journal of the same run): the files
  moved aside are deleted, as the run would have deleted them;
* not committed: the run's new files are removed where they are provably its
  own (the identity recorded), and every file moved aside goes back under its
  name; a name taken since by another file keeps that file, and the one moved
  aside comes back beside it (``name (restored).ext``).

Nothing the journal does not name with one of this tool's own hidden names,
or identify as the run's new file, is ever deleted or replaced. Entries are
appended, one JSON object a line, and synced before the step they announce
(staging files and folders with the next sync: a crash of the machine in
between can leave one behind, never lose a file); a line cut short by a
crash is the last one, and announces a step never taken.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import platform
import re
import sys
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from ._exceptions import OutputError
from ._fileops import (
    TEMP_PREFIX,
    Identity,
    _fsync_folder,
    _identity,
    _inside,
    _lock,
    _remove_empty_parents,
    _remove_file,
    _rename_new,
    _safe_relative,
    _same_file,
)
from .report import count_noun

__all__ = ["Journal", "Replacement", "has_journal", "recover_interrupted"]

logger = logging.getLogger(__name__)

JOURNAL_SUFFIX = ".journal"
JOURNAL_FORMAT = 1
"""Version of the journal's lines; a journal of another version is left alone (refused)."""

TOOL = "smartdownsample"

JOURNAL_PATTERN = re.compile(re.escape(TEMP_PREFIX) + r"[0-9a-f]{32}" + re.escape(JOURNAL_SUFFIX))

OPEN_ATTEMPTS = 50
"""Tries at creating a journal that a recovering run is removing at that instant."""

COMMITTED = b'{"committed":true}\n'


def journal_name(run: str) -> str:
    """File name of the journal of run ``run`` (a hex id) in each folder it writes into."""
    return f"{TEMP_PREFIX}{run}{JOURNAL_SUFFIX}"


@dataclass(frozen=True)
class Replacement:
    """A file about to be put in place (or removed), announced before the renames.

    ``target`` is moved to ``aside`` if it exists, then the new file (of
    identity ``new``) renamed to ``target``; ``new`` is None for a file that
    is only removed (moved aside, deleted on commit).
    """

    target: str
    aside: str
    existed: bool
    new: Identity | None


class Journal:
    """The journal of one run's changes in one folder (and below it).

    Created, and locked, by the first note; :meth:`remove` deletes it.
    Notes raise ``OSError`` (the caller names the output in its message).
    """

    def __init__(self, folder: str, run: str) -> None:
        self.folder = folder
        self.run = run
        self.path = os.path.join(folder, journal_name(run))
        self._fd: int | None = None
        self._made = False
        self._committed = False

    def note_staging(self, path: str, target: str) -> None:
        """Before creating ``path``, a staging file that will become ``target``."""
        self._append([{"stage": self._relative(path), "for": self._relative(target)}])

    def note_folder(self, path: str) -> None:
        """Before creating the folder ``path``."""
        self._append([{"folder": self._relative(path)}])

    def note_made(self, levels: int) -> None:
        """The journal's folder, and its ``levels - 1`` parents, were made by the run."""
        self._append([{"made": levels}])

    def note_replacements(
        self, replacements: Iterable[Replacement], folders: Sequence[str] = ()
    ) -> None:
        """Before the renames, durably: what is put in place, and the run's journal folders."""
        records: list[dict[str, Any]] = [
            {
                "target": self._relative(item.target),
                "aside": self._relative(item.aside),
                "existed": item.existed,
                "new": None if item.new is None else list(item.new),
            }
            for item in replacements
        ]
        if folders:
            records.append({"folders": list(folders)})
        self._append(records, sync=True)

    def mark_committed(self) -> None:
        """Once every new file is in place: the run is then completed, never undone.

        A failure is only logged: the outputs are complete, and the files
        moved aside are deleted right after.
        """
        if self._fd is None or self._committed:
            return
        try:
            _write_all(self._fd, COMMITTED)
            os.fsync(self._fd)
        except OSError as exc:
            logger.debug("could not mark %s committed: %s", self.path, exc.strerror or exc)
        self._committed = True

    def remove(self) -> None:
        """Delete the journal and let go of its lock (idempotent)."""
        self._close(remove=True)

    def keep(self) -> None:
        """Let go of the lock and leave the journal for the next run to complete."""
        self._close(remove=False)

    def _close(self, *, remove: bool) -> None:
        if remove and self._made and sys.platform != "win32":  # while locked
            _remove_file(self.path)
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)
        if remove and self._made and sys.platform == "win32":
            _remove_file(self.path)
        self._made = False

    def _relative(self, path: str) -> str:
        prefix = self.folder.rstrip(os.sep) + os.sep
        if path.startswith(prefix):  # always, as callers join their paths: the cheap way
            return path[len(prefix) :]
        return os.path.relpath(path, self.folder)

    def _append(self, records: Sequence[dict[str, Any]], *, sync: bool = False) -> None:
        fd = self._open()
        _write_all(fd, _lines(records))
        if sync:
            os.fsync(fd)

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        for _ in range(OPEN_ATTEMPTS):
            self._made = True  # first: remove() deletes it whatever happens next
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o666)
            try:
                ours = _lock(fd) != "held" and _same_file(fd, self.path)
            except BaseException:
                os.close(fd)
                raise
            if ours:
                self._fd = fd
                break
            os.close(fd)  # a recovering run found it empty and is removing it
            time.sleep(0.01)
        else:
            raise OSError(errno.EBUSY, os.strerror(errno.EBUSY), self.path)
        header = {"journal": TOOL, "format": JOURNAL_FORMAT, "run": self.run}
        header.update(pid=os.getpid(), host=platform.node())
        _write_all(self._fd, _lines([header]))
        os.fsync(self._fd)
        _fsync_folder(self.folder)
        return self._fd


def _lines(records: Iterable[dict[str, Any]]) -> bytes:
    text = "".join(json.dumps(r, ensure_ascii=True, separators=(",", ":")) + "\n" for r in records)
    return text.encode("ascii")


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


# ---------------------------------------------------------------- reading


@dataclass
class _Entries:
    """What a journal says, its paths made absolute."""

    format: object
    run: str
    pid: object
    host: object
    staging: list[tuple[str, str]] = field(default_factory=list)
    folders_made: list[str] = field(default_factory=list)
    replacements: list[Replacement] = field(default_factory=list)
    folders: list[str] = field(default_factory=list)
    made: int = 0
    committed: bool = False


def _parse(data: bytes, folder: str) -> _Entries | None:
    """The journal's entries, or None if its header was never written in full."""
    records: list[dict[str, Any]] = []
    for line in data.split(b"\n")[:-1]:  # after the last line break: cut short
        try:
            record = json.loads(line)
        except ValueError:
            break
        if not isinstance(record, dict):
            break
        records.append(record)
    if not records or records[0].get("journal") != TOOL:
        return None
    header = records[0]
    entries = _Entries(header.get("format"), str(header.get("run")), header.get("pid"),
                       header.get("host"))  # fmt: skip
    if entries.format == JOURNAL_FORMAT:
        for record in records[1:]:
            _add(entries, record, folder)
    return entries


def _own_name(folder: str, value: object) -> str | None:
    """A recorded staging or aside file: under ``folder``, with this tool's hidden prefix."""
    relative = _safe_relative(value)
    if relative is None or not os.path.basename(relative).startswith(TEMP_PREFIX):
        return None
    return os.path.join(folder, relative)


def _under(folder: str, value: object) -> str | None:
    relative = _safe_relative(value)
    return None if relative is None else os.path.join(folder, relative)


def _add(entries: _Entries, record: dict[str, Any], folder: str) -> None:
    if "stage" in record:
        path = _own_name(folder, record["stage"])
        if path is not None:
            entries.staging.append((path, _under(folder, record.get("for")) or ""))
    elif "folder" in record:
        made = _under(folder, record["folder"])
        if made is not None:
            entries.folders_made.append(made)
    elif "target" in record:
        target = _under(folder, record["target"])
        aside = _own_name(folder, record.get("aside"))
        new = record.get("new")
        identity = tuple(new) if isinstance(new, list) else None
        if target is None or aside is None or (new is not None and not _identity_like(identity)):
            return
        existed = record.get("existed") is not False
        entries.replacements.append(Replacement(target, aside, existed, identity))
    elif isinstance(record.get("made"), int) and not isinstance(record["made"], bool):
        entries.made = max(entries.made, record["made"])
    elif "folders" in record and isinstance(record["folders"], list):
        entries.folders = [f for f in record["folders"] if isinstance(f, str)]
    elif record.get("committed") is True:
        entries.committed = True


def _identity_like(value: object) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 3
        and all(isinstance(n, int) and not isinstance(n, bool) for n in value)
    )


# ---------------------------------------------------------------- recovery


def _journals(folder: str) -> list[str]:
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    return [os.path.join(folder, n) for n in sorted(names) if JOURNAL_PATTERN.fullmatch(n)]


def has_journal(folder: str) -> bool:
    """True if ``folder`` holds the journal of a run (going on, or interrupted)."""
    return bool(_journals(folder))


def recover_interrupted(folder: str, output: str, *, option: str) -> None:
    """Complete what interrupted runs left in ``folder``, before writing ``output`` there.

    Every journal in ``folder`` whose run is gone is completed (see the
    module's description) and removed, with one warning line saying what was
    done. The journal of a run still going is left alone; if that run writes
    ``output`` (a file, or a folder and what is below it), this run is refused.

    Raises
    ------
    OutputError
        Another run is writing ``output``; a journal cannot be completed (a
        read-only folder, ...) or is of another version: one line naming the
        journal and the fix.
    """
    for path in _journals(folder):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue  # its run finished meanwhile
        except OSError as exc:
            raise _cannot(path, exc) from exc
        made: int | None = None
        try:
            made = _recover(fd, path, output, option)
        except OSError as exc:
            raise _cannot(path, exc) from exc
        finally:
            if made is not None and sys.platform != "win32":
                _remove_file(path)  # while locked
            with contextlib.suppress(OSError):
                os.close(fd)
            if made is not None and sys.platform == "win32":
                _remove_file(path)
        _remove_made(folder, made or 0)


def _remove_made(folder: str, levels: int) -> None:
    """Remove ``folder`` and its ``levels - 1`` parents, made by an undone run, if empty."""
    for _ in range(levels):
        try:
            os.rmdir(folder)
        except OSError:
            return
        folder = os.path.dirname(folder)


def _recover(fd: int, path: str, output: str, option: str) -> int | None:
    """Complete the journal open as ``fd``.

    Returns None to leave the journal, else how many levels of folders the
    run made up to the journal's (removed with it if empty: the run is undone).
    """
    folder = os.path.dirname(path)
    state = _lock(fd)
    if state != "held" and not _same_file(fd, path):
        return None  # removed meanwhile: its run finished
    entries = _parse(_read_all(fd), folder)
    if state == "held" or (state == "unsupported" and not _ended(entries)):
        _refuse_if_writing(entries, output, option)
        return None
    if entries is None:
        logger.debug("removed the empty journal %s of a run that stopped at once", path)
        return 0
    if entries.format != JOURNAL_FORMAT:
        raise OutputError(
            f"{path!r} is the journal of an interrupted run of another smartdownsample version "
            f"(format {entries.format!r}); complete it with that version, or remove it once "
            f"the files it names are back, then run again"
        )
    committed = _committed(entries, path)
    outcome = _complete(entries, folder) if committed else _undo(entries)
    if committed:
        _pass_on_commit(entries, path)
    text = outcome.describe(folder, committed)
    if text:
        logger.warning("%s", text)
    return 0 if committed else entries.made


def _ended(entries: _Entries | None) -> bool:
    """Without OS locks: True if the journal's run is provably gone (this host, no such pid)."""
    if entries is None or entries.host != platform.node() or not isinstance(entries.pid, int):
        return False
    if sys.platform == "win32" or entries.pid == os.getpid():
        return False
    try:
        os.kill(entries.pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _refuse_if_writing(entries: _Entries | None, output: str, option: str) -> None:
    """Refuse ``output`` if the live run of ``entries`` writes it (or into it)."""
    if entries is None:
        return
    targets = [target for _, target in entries.staging]
    targets += [item.target for item in entries.replacements]
    mine = os.path.normcase(output)
    if not any(_inside(os.path.normcase(t), mine) for t in targets if t):
        return
    who = f" (pid {entries.pid})" if isinstance(entries.pid, int) else ""
    if isinstance(entries.host, str) and entries.host != platform.node():
        who = f" (pid {entries.pid} on {entries.host})"
    kind = "folder" if os.path.isdir(output) else "path"
    raise OutputError(
        f"{option} {output!r} is being written by another smartdownsample run{who}; wait "
        f"until it ends, or choose another {kind}"
    )


def _committed(entries: _Entries, path: str) -> bool:
    """True if the run marked this journal, or any other of its journals, committed."""
    return entries.committed or any(_says_committed(other) for other in _others(entries, path))


def _others(entries: _Entries, path: str) -> list[str]:
    """The run's journals in its other folders."""
    name, own = journal_name(entries.run), os.path.normcase(path)
    found = (os.path.join(folder, name) for folder in entries.folders)
    return [other for other in found if os.path.normcase(other) != own]


def _says_committed(path: str) -> bool:
    try:
        with open(path, "rb") as handle:
            entries = _parse(handle.read(), os.path.dirname(path))
    except OSError:
        return False
    return entries is not None and entries.format == JOURNAL_FORMAT and entries.committed


def _pass_on_commit(entries: _Entries, path: str) -> None:
    """Mark the run's other journals committed before this one goes: they complete too."""
    for other in _others(entries, path):
        try:
            fd = os.open(other, os.O_RDWR | os.O_APPEND)
        except OSError:
            continue
        try:
            if _lock(fd) != "held" and _same_file(fd, other) and not _says_committed(other):
                _write_all(fd, COMMITTED)
                os.fsync(fd)
        except OSError as exc:
            logger.debug("could not mark %s committed: %s", other, exc.strerror or exc)
        finally:
            os.close(fd)


@dataclass
class _Outcome:
    """What completing a journal did."""

    restored: int = 0
    removed: int = 0
    deleted: int = 0
    temporaries: int = 0
    kept: list[tuple[str, str]] = field(default_factory=list)

    def describe(self, folder: str, committed: bool) -> str:
        """One line, or '' if there was nothing to do."""
        done = []
        if self.restored:
            done.append(f"restored {count_noun(self.restored, 'file')} it had moved aside")
        if self.removed:
            done.append(f"removed {count_noun(self.removed, 'file')} it had written")
        if self.deleted:
            done.append(f"deleted {count_noun(self.deleted, 'file')} its outputs replaced")
        if self.temporaries:
            done.append(f"removed {count_noun(self.temporaries, 'temporary file')}")
        if not done and not self.kept:
            return ""
        how = "completed" if committed else "undone"
        line = f"an interrupted smartdownsample run in {folder} was {how}: " + ", ".join(done)
        if self.kept:
            target, beside = self.kept[0]
            line += (
                f"; kept {count_noun(len(self.kept), 'file')} changed since (e.g. {target}), "
                f"the file the run had replaced is beside it ({beside})"
            )
        return line


def _undo(entries: _Entries) -> _Outcome:
    """Roll back a run that was not committed: remove its new files, put back the others."""
    outcome = _Outcome()
    for item in reversed(entries.replacements):
        have_aside = os.path.lexists(item.aside)
        if item.new is not None and (have_aside or not item.existed) and _is(item.target, item.new):
            os.unlink(item.target)
            outcome.removed += 1
        if have_aside:
            _put_back(item, outcome)
    _remove_staging(entries, outcome)
    for folder in reversed(entries.folders_made):
        with contextlib.suppress(OSError):
            os.rmdir(folder)  # only if empty
    return outcome


def _put_back(item: Replacement, outcome: _Outcome) -> None:
    if not os.path.lexists(item.target):
        _rename_new(item.aside, item.target)
        outcome.restored += 1
    elif os.path.samestat(os.lstat(item.aside), os.lstat(item.target)):
        os.unlink(item.aside)  # put back already, the second name left by a crash
    else:  # the name holds another file now (the user's): keep both
        beside = _free_name(item.target)
        _rename_new(item.aside, beside)
        outcome.kept.append((item.target, beside))


def _complete(entries: _Entries, top: str) -> _Outcome:
    """Finish a committed run: delete the files its outputs replaced or removed."""
    outcome = _Outcome()
    for item in entries.replacements:
        if not os.path.lexists(item.aside):
            continue
        if item.new is not None and not os.path.lexists(item.target):
            _rename_new(item.aside, item.target)  # its output is gone since: keep the earlier
            outcome.restored += 1
            continue
        os.unlink(item.aside)
        outcome.deleted += 1
        if item.new is None:
            _remove_empty_parents(item.target, top)
    _remove_staging(entries, outcome)
    return outcome


def _remove_staging(entries: _Entries, outcome: _Outcome) -> None:
    for path, _ in entries.staging:
        if os.path.lexists(path):
            os.unlink(path)
            outcome.temporaries += 1


def _is(path: str, identity: Identity) -> bool:
    try:
        return _identity(path) == identity
    except OSError:
        return False


def _free_name(path: str) -> str:
    """``name (restored).ext`` beside ``path``, numbered if taken."""
    stem, extension = os.path.splitext(path)
    for number in range(1, 10_000):
        label = "restored" if number == 1 else f"restored {number}"
        candidate = f"{stem} ({label}){extension}"
        if not os.path.lexists(candidate):
            return candidate
    raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), f"{stem} (restored){extension}")


def _cannot(path: str, exc: OSError) -> OutputError:
    """One line naming the journal, the file that failed and the fix."""
    failed = os.fsdecode(exc.filename) if exc.filename else path
    folder = os.path.dirname(failed)
    if exc.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
        fix = f"free some space in {folder!r}"
    elif exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = f"make {folder!r} writable"
    else:
        fix = f"check {failed!r}"
    where = f" ({failed})" if failed != path else ""
    return OutputError(
        f"cannot complete the outputs of an interrupted smartdownsample run recorded in "
        f"{path!r}: {exc.strerror or exc}{where}; {fix} and run again"
    )
